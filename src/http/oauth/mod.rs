//! The gateway as a small OAuth 2.0 authorization server for its own SCIM API, per target:
//! the authorization code grant with a directory sign-in (Okta's way), client credentials
//! (Entra's way), refresh tokens rotated on use, revocation (RFC 7009); and the check of
//! bearer JWTs on SCIM calls, the gateway's own and those of outside issuers.

mod authorize;
mod jwks;
mod jwt;
mod page;
mod store;
mod token;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use super::response::{Body, Error};
use crate::config::{AuthConfig, OAuthClient, OAuthConfig};
use crate::provision::Admins;
use jwt::{Keys, Use};
use store::{Limiter, Store};

/// Form bodies (sign-in, token and revocation requests) are small.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// How long a login page may stay open before its form is refused.
const LOGIN_TICKET: Duration = Duration::from_secs(600);
/// Client secrets checked at once (argon2 takes memory and CPU by design).
const HASHING_AT_ONCE: usize = 4;

/// What an access token carries besides the standard claims.
#[derive(Debug, Serialize, Deserialize)]
struct AccessBody {
    client_id: String,
    scope: String,
    /// The refresh token family it came with: revoking the family refuses it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fam: Option<String>,
}

/// The authorization server of one target.
pub struct OAuth {
    cfg: OAuthConfig,
    keys: Arc<Keys>,
    store: Arc<Store>,
    limiter: Limiter,
    admins: Admins,
    hashing: tokio::sync::Semaphore,
    /// Cookies get `Secure` when the gateway is reached over https (its `issuer` says).
    secure: bool,
    cookie_path: String,
}

/// Checks bearer JWTs on SCIM calls: the gateway's own and outside issuers'.
pub struct Tokens {
    own: Option<(Arc<Keys>, Arc<Store>)>,
    outside: Vec<jwks::Issuer>,
}

/// Builds the JWT checks of `auth`, and its authorization server when `[auth.oauth]` is set.
/// `admins` comes with `[auth.oauth]`.
pub fn build(auth: &AuthConfig, base_path: &str, admins: Option<Admins>) -> Result<(Tokens, Option<OAuth>), String> {
    let outside = auth.jwt.iter().map(|j| jwks::Issuer::new(j.clone())).collect::<Result<Vec<_>, _>>()?;
    let (Some(cfg), Some(admins)) = (&auth.oauth, admins) else {
        return Ok((Tokens { own: None, outside }, None));
    };
    for c in &cfg.clients {
        argon2::PasswordHash::new(c.secret_hash.as_str()).map_err(|e| {
            format!("[[auth.oauth.client]] {}: secret_hash is not a PHC string ({e}); make one with `scim-gateway hash-secret`", c.client_id)
        })?;
        if c.grants.contains(&crate::config::Grant::AuthorizationCode) && c.redirect_uris.is_empty() {
            return Err(format!(
                "[[auth.oauth.client]] {}: the authorization code grant needs redirect_uris",
                c.client_id
            ));
        }
    }
    let keys = Arc::new(Keys::load(&cfg.key_files, &cfg.issuer, base_path)?);
    let store = Arc::new(Store::new(cfg.code(), cfg.access_token(), cfg.refresh_token()));
    let oauth = OAuth {
        cfg: cfg.clone(),
        keys: keys.clone(),
        store: store.clone(),
        limiter: Limiter::new(&cfg.login_limit),
        admins,
        hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
        secure: cfg.issuer.starts_with("https://"),
        cookie_path: format!("{base_path}/oauth"),
    };
    Ok((Tokens { own: Some((keys, store)), outside }, Some(oauth)))
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.own.is_none() && self.outside.is_empty()
    }

    /// `None` when `token` is no JWT of a configured issuer's; else the caller's name, or why
    /// the token is refused.
    pub async fn verify(&self, token: &str) -> Option<Result<String, &'static str>> {
        if self.is_empty() || token.split('.').count() != 3 {
            return None;
        }
        // `alg: none` and unknown algorithms fail to parse here.
        let Ok(header) = jsonwebtoken::decode_header(token) else { return Some(Err("malformed token")) };
        let Some(kid) = header.kid.as_deref() else { return Some(Err("the token names no signing key")) };
        if let Some((keys, store)) = self.own.as_ref().filter(|(k, _)| k.knows(kid)) {
            return Some(keys.verify::<AccessBody>(Use::Access, token).and_then(|c| {
                if store.access_revoked(&c.jti) || c.body.fam.as_deref().is_some_and(|f| store.family_revoked(f)) {
                    return Err("revoked");
                }
                Ok(if c.sub == c.body.client_id {
                    format!("oauth:{}", c.sub)
                } else {
                    format!("oauth:{}:{}", c.body.client_id, c.sub)
                })
            }));
        }
        let mut why = "unknown signing key";
        for issuer in &self.outside {
            match issuer.verify(token, kid, header.alg).await {
                Ok(caller) => return Some(Ok(caller)),
                Err("unknown signing key") => {}
                Err(e) => why = e,
            }
        }
        Some(Err(why))
    }
}

impl OAuth {
    fn client(&self, id: &str) -> Option<&OAuthClient> {
        self.cfg.clients.iter().find(|c| c.client_id == id)
    }
}

/// Requests below `{base_path}/oauth/`. `None` when `endpoint` is not an OAuth endpoint.
pub async fn route(oauth: &OAuth, endpoint: &str, req: Request<Bytes>) -> Option<Result<Response<Body>, Error>> {
    let peer = req
        .extensions()
        .get::<super::connection::Arrival>()
        .map_or_else(|| "unknown".to_owned(), |a| a.peer.ip().to_string());
    Some(match (req.method(), endpoint) {
        (&Method::GET, "authorize") => Ok(authorize::page(oauth, &req)),
        (&Method::POST, "authorize") => authorize::sign_in(oauth, req, &peer).await,
        (&Method::POST, "token") => Ok(token::token(oauth, req, &peer).await),
        (&Method::POST, "revoke") => Ok(token::revoke(oauth, req, &peer).await),
        (_, "authorize" | "token" | "revoke") => Err(Error::MethodNotAllowed),
        _ => return None,
    })
}

/// An audit line for a grant, refresh, refusal or revocation: who, which client, from
/// where — never a secret, a code or a token.
fn audit(action: &str, client: &str, subject: &str, peer: &str, outcome: &str) {
    tracing::info!(target: "audit", resource = "oauth", action, client, subject, address = peer, outcome, "oauth");
}

/// The pairs of a form body (`application/x-www-form-urlencoded`), read up to a bound.
/// A repeated parameter makes the request invalid (RFC 6749 §3.1).
async fn form(req: Request<Bytes>) -> Result<Vec<(String, String)>, &'static str> {
    let form_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| {
        t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !form_type {
        return Err("the body must be application/x-www-form-urlencoded");
    }
    let body = req.into_body();
    if body.len() > MAX_FORM_BYTES {
        return Err("the body is too large");
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err("a parameter is repeated");
    }
    Ok(pairs)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// A response that no cache keeps (RFC 6749 §5.1).
fn no_store(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Checks `secret` against the client's argon2 hash, off the async threads and a few at a time.
async fn secret_matches(oauth: &OAuth, client: &OAuthClient, secret: &str) -> bool {
    use argon2::PasswordVerifier;
    let Ok(_permit) = oauth.hashing.acquire().await else { return false };
    let (hash, secret) = (client.secret_hash.as_str().to_owned(), secret.to_owned());
    tokio::task::spawn_blocking(move || {
        argon2::PasswordHash::new(&hash)
            .is_ok_and(|h| argon2::Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// An argon2id PHC string for a client secret (`scim-gateway hash-secret`).
pub fn hash_secret(secret: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_hash_to_phc_strings_that_verify() {
        use argon2::PasswordVerifier;
        let phc = hash_secret("s3cret");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let parsed = argon2::PasswordHash::new(&phc).unwrap();
        assert!(argon2::Argon2::default().verify_password(b"s3cret", &parsed).is_ok());
        assert!(argon2::Argon2::default().verify_password(b"s3cre", &parsed).is_err());
    }
}
