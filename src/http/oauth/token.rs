//! `POST /oauth/token` (RFC 6749 §3.2: authorization_code, refresh_token,
//! client_credentials) and `POST /oauth/revoke` (RFC 7009). Clients authenticate with
//! `client_secret_basic` or `client_secret_post`; errors are RFC 6749 §5.2 JSON.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authorize::CodeBody;
use super::jwt::{Signed, Use};
use super::store::Rotation;
use super::{audit, form, no_store, param, secret_matches, AccessBody, OAuth};
use crate::config::{Grant, OAuthClient};
use crate::http::response::Body;
use crate::provision::Admin;

/// The only scope: the whole SCIM API of the target.
const SCOPE: &str = "scim";

#[derive(Debug, Serialize, Deserialize)]
struct RefreshBody {
    client_id: String,
    dn: String,
    /// The family: every refresh token descending from one authorization.
    fam: String,
    gen: u32,
}

/// An RFC 6749 §5.2 error.
struct Failure {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// `invalid_client` after Basic authentication: the challenge to send.
    basic: bool,
}

fn fail(error: &'static str, description: impl Into<String>) -> Failure {
    let status = match error {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "slow_down" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    Failure { status, error, description: description.into(), basic: false }
}

impl Failure {
    fn response(self) -> Response<Body> {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut r = no_store(self.status, "application/json", body.to_string().into_bytes());
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.basic { "Basic realm=\"scim-gateway\"" } else { "Bearer realm=\"scim-gateway\"" };
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        r
    }
}

pub async fn token(oauth: &OAuth, req: Request<Bytes>, peer: &str) -> Response<Body> {
    match grant(oauth, req, peer).await {
        Ok(body) => no_store(StatusCode::OK, "application/json", body.to_string().into_bytes()),
        Err(f) => f.response(),
    }
}

async fn grant(oauth: &OAuth, req: Request<Bytes>, peer: &str) -> Result<serde_json::Value, Failure> {
    let (client, pairs) = authenticated(oauth, req, peer).await?;
    let grant_type = param(&pairs, "grant_type").unwrap_or_default();
    let id = client.client_id.as_str();
    let allowed = |g: Grant| {
        if client.grants.contains(&g) {
            Ok(())
        } else {
            audit(grant_type, id, "", peer, "refused: grant not allowed for this client");
            Err(fail("unauthorized_client", format!("client {id} may not use the {grant_type} grant")))
        }
    };
    match grant_type {
        "client_credentials" => {
            allowed(Grant::ClientCredentials)?;
            audit("client_credentials", id, id, peer, "granted");
            Ok(access(oauth, id, id, None))
        }
        "authorization_code" => {
            allowed(Grant::AuthorizationCode)?;
            let code = exchange(oauth, client, &pairs, peer)?;
            let refresh = (code.body.dn.as_str(), code.jti.as_str(), 0);
            audit("authorization_code", id, &code.sub, peer, "granted");
            Ok(access(oauth, id, &code.sub, Some(refresh)))
        }
        "refresh_token" => {
            allowed(Grant::AuthorizationCode)?;
            let (admin, fam, gen) = refresh(oauth, client, &pairs, peer).await?;
            audit("refresh_token", id, &admin.login, peer, "granted");
            Ok(access(oauth, id, &admin.login, Some((&admin.dn, &fam, gen))))
        }
        "" => Err(fail("invalid_request", "grant_type is missing")),
        other => Err(fail("unsupported_grant_type", format!("{other:?} is not supported"))),
    }
}

/// The token response: an access token, and a refresh token of `(dn, family, generation)`.
fn access(oauth: &OAuth, client: &str, sub: &str, refresh: Option<(&str, &str, u32)>) -> serde_json::Value {
    let lifetime = oauth.cfg.access_token();
    let fam = refresh.map(|(_, fam, _)| fam.to_owned());
    let body = AccessBody { client_id: client.to_owned(), scope: SCOPE.into(), fam };
    let (token, _) = oauth.keys.sign(Use::Access, sub, lifetime, body);
    let mut out =
        json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime.as_secs(), "scope": SCOPE});
    if let Some((dn, fam, gen)) = refresh {
        let body = RefreshBody { client_id: client.to_owned(), dn: dn.to_owned(), fam: fam.to_owned(), gen };
        out["refresh_token"] = oauth.keys.sign(Use::Refresh, sub, oauth.cfg.refresh_token(), body).0.into();
    }
    out
}

/// Checks a code: signed by us, for this client, unused, its redirect URI and PKCE verifier.
fn exchange(
    oauth: &OAuth,
    client: &OAuthClient,
    pairs: &[(String, String)],
    peer: &str,
) -> Result<Signed<CodeBody>, Failure> {
    let id = client.client_id.as_str();
    let refuse = |why: &str| {
        audit("authorization_code", id, "", peer, &format!("refused: {why}"));
        Err(fail("invalid_grant", why.to_owned()))
    };
    let Ok(code) = oauth.keys.verify::<CodeBody>(Use::Code, param(pairs, "code").unwrap_or_default()) else {
        return refuse("the code is invalid or expired");
    };
    let request = &code.body.request;
    if request.client_id != id {
        return refuse("the code was issued to another client");
    }
    if !oauth.store.use_code(&code.jti) {
        // RFC 6749 §4.1.2: a code used twice revokes what it granted.
        oauth.store.revoke_family(&code.jti);
        return refuse("the code was already used; the tokens it granted are revoked");
    }
    if request.redirect_given && param(pairs, "redirect_uri") != Some(request.redirect_uri.as_str()) {
        return refuse("redirect_uri differs from the authorization request's");
    }
    match (&request.code_challenge, param(pairs, "code_verifier")) {
        (None, None) => {}
        (Some(challenge), Some(verifier)) => {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                return refuse("the PKCE code_verifier does not match");
            }
        }
        (Some(_), None) => return refuse("code_verifier is missing (the request used PKCE)"),
        (None, Some(_)) => return refuse("code_verifier given, but the request used no PKCE"),
    }
    Ok(code)
}

/// Checks a refresh token and that its admin may still authorize, then rotates it.
async fn refresh(
    oauth: &OAuth,
    client: &OAuthClient,
    pairs: &[(String, String)],
    peer: &str,
) -> Result<(Admin, String, u32), Failure> {
    let id = client.client_id.as_str();
    let refuse = |who: &str, why: &str| {
        audit("refresh_token", id, who, peer, &format!("refused: {why}"));
        Err(fail("invalid_grant", why.to_owned()))
    };
    let Ok(token) = oauth.keys.verify::<RefreshBody>(Use::Refresh, param(pairs, "refresh_token").unwrap_or_default())
    else {
        return refuse("", "the refresh token is invalid or expired");
    };
    let b = &token.body;
    if b.client_id != id {
        return refuse(&token.sub, "the refresh token was issued to another client");
    }
    // The directory first: a failure there must leave the token usable for a retry.
    let admin = match oauth.admins.recheck(&b.dn).await {
        Ok(Ok(admin)) => admin,
        Ok(Err(refusal)) => {
            oauth.store.revoke_family(&b.fam);
            return refuse(
                &token.sub,
                &format!("the person who authorized may no longer do so ({})", refusal.as_str()),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "refresh: the directory did not answer");
            return Err(fail("temporarily_unavailable", "the directory is unavailable; retry later"));
        }
    };
    match oauth.store.rotate(&b.fam, b.gen) {
        Rotation::Next(gen) => Ok((admin, b.fam.clone(), gen)),
        Rotation::Reused => {
            refuse(&token.sub, "the refresh token was already used; all tokens of this authorization are revoked")
        }
        Rotation::Revoked => refuse(&token.sub, "the refresh token was revoked"),
    }
}

/// The client, authenticated by Basic or by the body, and the form's pairs.
async fn authenticated<'a>(
    oauth: &'a OAuth,
    req: Request<Bytes>,
    peer: &str,
) -> Result<(&'a OAuthClient, Vec<(String, String)>), Failure> {
    let basic = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(basic_credentials);
    let pairs = form(req).await.map_err(|why| fail("invalid_request", why))?;
    let (id, secret, by_basic) = match (basic, param(&pairs, "client_secret")) {
        (Some(Some((id, secret))), None) => (id, secret, true),
        (Some(_), Some(_)) => return Err(fail("invalid_request", "use one client authentication method, not two")),
        (Some(None), None) => {
            return Err(Failure { basic: true, ..fail("invalid_client", "malformed Basic credentials") })
        }
        (None, Some(secret)) => (param(&pairs, "client_id").unwrap_or_default().to_owned(), secret.to_owned(), false),
        (None, None) => return Err(fail("invalid_client", "client authentication is missing")),
    };
    let invalid = |why: &str| {
        audit("client_authentication", &id, "", peer, &format!("refused: {why}"));
        Err(Failure { basic: by_basic, ..fail("invalid_client", "client authentication failed") })
    };
    if oauth.limiter.blocked(peer, None) {
        audit("client_authentication", &id, "", peer, "refused: too many failures from this address");
        return Err(fail("slow_down", "too many failed attempts from this address; wait and retry"));
    }
    let Some(client) = oauth.client(&id) else {
        oauth.limiter.failed(peer, None);
        return invalid("unknown client");
    };
    if !secret_matches(oauth, client, &secret).await {
        oauth.limiter.failed(peer, None);
        return invalid("wrong secret");
    }
    if param(&pairs, "client_id").is_some_and(|c| c != id) {
        return Err(fail("invalid_request", "client_id differs from the authenticated client"));
    }
    Ok((client, pairs))
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1); `None` when malformed.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8().ok().map(|c| c.into_owned());
    Some((decode(id)?, decode(secret)?))
}

/// RFC 7009: revokes a refresh token's whole family, or one access token (on this replica).
/// Unknown or invalid tokens get 200 too, as the RFC says.
pub async fn revoke(oauth: &OAuth, req: Request<Bytes>, peer: &str) -> Response<Body> {
    let (client, pairs) = match authenticated(oauth, req, peer).await {
        Ok(c) => c,
        Err(f) => return f.response(),
    };
    let id = client.client_id.as_str();
    let Some(token) = param(&pairs, "token") else {
        return fail("invalid_request", "token is missing").response();
    };
    if let Ok(t) = oauth.keys.verify::<RefreshBody>(Use::Refresh, token) {
        if t.body.client_id != id {
            audit("revocation", id, &t.sub, peer, "refused: token of another client");
            return fail("unauthorized_client", "the token was issued to another client").response();
        }
        oauth.store.revoke_family(&t.body.fam);
        audit("revocation", id, &t.sub, peer, "refresh token family revoked");
    } else if let Ok(t) = oauth.keys.verify::<AccessBody>(Use::Access, token) {
        if t.body.client_id != id {
            audit("revocation", id, &t.sub, peer, "refused: token of another client");
            return fail("unauthorized_client", "the token was issued to another client").response();
        }
        oauth.store.revoke_access(&t.jti);
        audit("revocation", id, &t.sub, peer, "access token revoked");
    } else {
        audit("revocation", id, "", peer, "nothing to revoke: unknown or expired token");
    }
    no_store(StatusCode::OK, "application/json", b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_client_credentials_are_form_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20client:p%3Ass+w"));
        assert_eq!(basic_credentials(&h), Some(("my client".into(), "p:ss w".into())));
        assert_eq!(basic_credentials("Basic !!"), None);
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
