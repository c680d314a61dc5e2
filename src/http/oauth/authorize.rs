//! `GET /oauth/authorize` (RFC 6749 §4.1.1): the sign-in page; `POST`: the sign-in, which
//! sends the browser back to the client with a code.
//!
//! The page is plain HTML (no script). Its form carries a *login ticket*: the checked
//! authorization request, signed by the gateway and bound to a random value that is also
//! set as a `SameSite=Strict` cookie. A form posted from elsewhere lacks the cookie, and a
//! ticket cannot be forged or altered, so the POST needs no server-side session (any
//! replica can take it). The browser is only ever sent to a redirect URI listed for the client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::jwt::Use;
use super::page::{error_page, login_page};
use super::{audit, form, no_store, param, OAuth, LOGIN_TICKET};
use crate::config::Grant;
use crate::http::response::{Body, Error};

const COOKIE: &str = "scimgw_login";
const MAX_LOGIN: usize = 256;
const MAX_PASSWORD: usize = 1024;
const MAX_STATE: usize = 2048;

/// A checked authorization request, as the login form carries it (and the code, later).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI: then the token request must repeat it.
    pub redirect_given: bool,
    pub state: Option<String>,
    /// PKCE (RFC 7636), S256 only.
    pub code_challenge: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Ticket {
    #[serde(flatten)]
    request: AuthRequest,
    csrf: String,
}

/// What a code carries: the request it answers and who signed in.
#[derive(Debug, Serialize, Deserialize)]
pub struct CodeBody {
    #[serde(flatten)]
    pub request: AuthRequest,
    pub dn: String,
}

/// Where the request may not go back to the client: an error page, never a redirect.
struct Refused(&'static str, String);

/// GET: checks the request and shows the sign-in page.
pub fn page(oauth: &OAuth, req: &Request<Bytes>) -> Response<Body> {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    let request = match check(oauth, &query) {
        Ok(Ok(r)) => r,
        Ok(Err((to, state, error, description))) => {
            let mut params = vec![("error", error), ("error_description", description)];
            params.extend(state.as_deref().map(|s| ("state", s)));
            return back(&to, &params);
        }
        Err(Refused(title, detail)) => return error_page(StatusCode::BAD_REQUEST, title, &detail),
    };
    let mut nonce = [0u8; 32];
    if ring::rand::SystemRandom::new().fill(&mut nonce).is_err() {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No randomness",
            "the gateway could not draw a random value",
        );
    }
    let csrf = URL_SAFE_NO_PAD.encode(nonce);
    let client = request.client_id.clone();
    let (ticket, _) = oauth.keys.sign(Use::Login, &client, LOGIN_TICKET, Ticket { request, csrf: csrf.clone() });
    let mut r = login_page(StatusCode::OK, &client, &ticket, "", "");
    let secure = if oauth.secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={csrf}; Path={}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        oauth.cookie_path,
        LOGIN_TICKET.as_secs()
    );
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie is ASCII"));
    r
}

/// An error for the client: its redirect URI, the request's state, the error and its description.
type Redirect = (String, Option<String>, &'static str, &'static str);

/// The request, or an error to send back to the client's (listed) redirect URI, or one
/// to show here because the client or its redirect URI is unknown.
fn check(oauth: &OAuth, query: &[(String, String)]) -> Result<Result<AuthRequest, Redirect>, Refused> {
    let mut names: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Refused("Invalid request", "a parameter is repeated".into()));
    }
    let p = |name| param(query, name);
    let client_id = p("client_id").ok_or_else(|| Refused("Invalid request", "client_id is missing".into()))?;
    let client = oauth
        .client(client_id)
        .ok_or_else(|| Refused("Unknown client", format!("no client {client_id:?} is configured in [auth.oauth]")))?;
    let redirect_uri = match (p("redirect_uri"), client.redirect_uris.as_slice()) {
        (Some(uri), listed) if listed.iter().any(|l| l == uri) => uri,
        (Some(uri), _) => {
            return Err(Refused(
                "Redirect URI not allowed",
                format!("{uri:?} is not among the redirect_uris of client {client_id:?}; an administrator of the gateway may add it"),
            ))
        }
        (None, [only]) => only.as_str(),
        (None, _) => return Err(Refused("Invalid request", "redirect_uri is missing".into())),
    };
    let state = p("state").map(str::to_owned);
    let to = |error, description| Ok(Err((redirect_uri.to_owned(), state.clone(), error, description)));
    if !client.grants.contains(&Grant::AuthorizationCode) {
        return to("unauthorized_client", "this client may not use the authorization code grant");
    }
    if p("response_type") != Some("code") {
        return to("unsupported_response_type", "only response_type=code is supported");
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return to("invalid_request", "state is too long");
    }
    let code_challenge = match (p("code_challenge"), p("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256"))
            if (43..=128).contains(&c.len())
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(c.to_owned())
        }
        _ => return to("invalid_request", "PKCE needs code_challenge_method=S256 and a valid code_challenge"),
    };
    Ok(Ok(AuthRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        redirect_given: p("redirect_uri").is_some(),
        state,
        code_challenge,
    }))
}

/// POST: signs the person in and sends the browser back with a code.
pub async fn sign_in(oauth: &OAuth, req: Request<Bytes>, peer: &str) -> Result<Response<Body>, Error> {
    let cookie = cookie(&req);
    let pairs = match form(req).await {
        Ok(p) => p,
        Err(why) => return Ok(error_page(StatusCode::BAD_REQUEST, "Invalid request", why)),
    };
    let ticket_text = param(&pairs, "ticket").unwrap_or_default();
    let ticket = oauth
        .keys
        .verify::<Ticket>(Use::Login, ticket_text)
        .ok()
        .filter(|t| cookie.as_deref().is_some_and(|c| bool::from(c.as_bytes().ct_eq(t.body.csrf.as_bytes()))));
    let Some(ticket) = ticket else {
        audit("sign_in", "", "", peer, "refused: form without a valid ticket and cookie (CSRF or expired)");
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "Sign-in form not accepted",
            "the form expired or was not sent from this gateway's page; start again from your identity provider",
        ));
    };
    let request = ticket.body.request;
    // The configuration may have changed (SIGHUP) since the page was shown.
    if oauth.client(&request.client_id).is_none_or(|c| !c.redirect_uris.contains(&request.redirect_uri)) {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "the client or its redirect URI is no longer configured",
        ));
    }
    let (login, password) =
        (param(&pairs, "username").unwrap_or_default(), param(&pairs, "password").unwrap_or_default());
    let client = request.client_id.clone();
    if login.len() > MAX_LOGIN || password.len() > MAX_PASSWORD {
        return Ok(login_page(StatusCode::BAD_REQUEST, &client, ticket_text, "", "The name or password is too long."));
    }
    if oauth.limiter.blocked(peer, Some(login)) {
        audit("sign_in", &client, login, peer, "refused: too many failed sign-ins");
        let wait = oauth.cfg.login_limit.window_secs.div_ceil(60);
        let text = format!("Too many failed sign-ins. Wait {wait} minute(s) and try again.");
        let mut r = login_page(StatusCode::TOO_MANY_REQUESTS, &client, ticket_text, login, &text);
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(oauth.cfg.login_limit.window_secs));
        return Ok(r);
    }
    let admin = match oauth.admins.sign_in(login, password).await {
        Ok(Ok(admin)) => admin,
        Ok(Err(refusal)) => {
            oauth.limiter.failed(peer, Some(login));
            audit("sign_in", &client, login, peer, &format!("refused: {}", refusal.as_str()));
            let text = "Sign-in failed: the name or password is wrong, or this account may not authorize the gateway.";
            return Ok(login_page(StatusCode::UNAUTHORIZED, &client, ticket_text, login, text));
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: the directory did not answer");
            return Ok(error_page(StatusCode::SERVICE_UNAVAILABLE, "Directory unavailable", "try again in a moment"));
        }
    };
    let state = request.state.clone();
    let to = request.redirect_uri.clone();
    let (code, _) = oauth.keys.sign(Use::Code, &admin.login, oauth.cfg.code(), CodeBody { request, dn: admin.dn });
    audit("authorization_code", &client, &admin.login, peer, "issued");
    let mut params = vec![("code", code.as_str())];
    params.extend(state.as_deref().map(|s| ("state", s)));
    let mut r = back(&to, &params);
    let expired = format!("{COOKIE}=; Path={}; Max-Age=0; HttpOnly; SameSite=Strict", oauth.cookie_path);
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&expired).expect("ASCII"));
    Ok(r)
}

fn cookie(req: &Request<Bytes>) -> Option<String> {
    req.headers().get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_owned())
        },
    )
}

/// 303 to a listed redirect URI with `params` added to its query.
fn back(to: &str, params: &[(&str, &str)]) -> Response<Body> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.extend_pairs(params);
    let sep = if to.contains('?') { '&' } else { '?' };
    let location = format!("{to}{sep}{}", q.finish());
    let mut r = no_store(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", Vec::new());
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => {
            error_page(StatusCode::BAD_REQUEST, "Invalid redirect URI", "the redirect URI cannot be sent to a browser")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_go_back_with_the_query_kept() {
        let r = back("https://idp.example/cb?x=1", &[("error", "access_denied"), ("state", "a b&c")]);
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "https://idp.example/cb?x=1&error=access_denied&state=a+b%26c");
    }
}
