//! Bearer and Basic credentials. Static secrets are kept only as SHA-256 digests and compared
//! in constant time, so neither their content nor their length leaks through timing. Bearer
//! JWTs (the gateway's own OAuth tokens, outside issuers') are checked by [`oauth::Tokens`].

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::oauth::{self, OAuth, Tokens};
use super::response::Error;
use crate::config::AuthConfig;
use crate::provision::Admins;

pub struct Authenticator {
    bearer: Vec<(String, [u8; 32])>,
    /// Digest of `username:password`.
    basic: Vec<(String, [u8; 32])>,
    tokens: Tokens,
    /// The target's authorization server, with `[auth.oauth]`.
    pub oauth: Option<OAuth>,
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Result<Self, String> {
        Self::with_oauth(cfg, "", None)
    }

    /// With `[auth.oauth]` and `[[auth.jwt]]`: `admins` decides who may authorize (see [`oauth::build`]).
    pub fn with_oauth(cfg: &AuthConfig, base_path: &str, admins: Option<Admins>) -> Result<Self, String> {
        let (tokens, oauth) = oauth::build(cfg, base_path, admins)?;
        let bearer = cfg.bearer.iter().map(|b| Ok((b.name.clone(), digest(b.secret()?.expose().as_bytes()))));
        let basic = cfg.basic.iter().map(|b| {
            let pair = format!("{}:{}", b.username.as_str(), b.secret()?.expose());
            Ok((b.name.clone(), digest(pair.as_bytes())))
        });
        Ok(Authenticator {
            bearer: bearer.collect::<Result<_, String>>()?,
            basic: basic.collect::<Result<_, String>>()?,
            tokens,
            oauth,
        })
    }

    pub fn has_bearer(&self) -> bool {
        !self.bearer.is_empty()
    }

    /// Whether OAuth 2.0 access tokens (the gateway's own or an outside issuer's) are accepted.
    pub fn has_oauth(&self) -> bool {
        !self.tokens.is_empty()
    }

    pub fn has_basic(&self) -> bool {
        !self.basic.is_empty()
    }

    /// The `WWW-Authenticate` challenge for a 401.
    pub fn challenge(&self) -> &'static str {
        if self.bearer.is_empty() && self.tokens.is_empty() {
            "Basic realm=\"scim-gateway\""
        } else {
            "Bearer realm=\"scim-gateway\""
        }
    }

    /// The caller named by an `Authorization` header: a static credential's name, or
    /// whom a valid access token was issued to. A JWT that fails its checks is
    /// [`Error::InvalidToken`] (RFC 6750 `invalid_token`), anything else [`Error::Unauthorized`].
    pub async fn caller(&self, header: Option<&str>) -> Result<String, Error> {
        if let Some(name) = self.authenticate(header) {
            return Ok(name.to_owned());
        }
        let bearer = header.and_then(|h| h.trim().split_once(' ')).filter(|(s, _)| s.eq_ignore_ascii_case("bearer"));
        match bearer {
            Some((_, token)) => match self.tokens.verify(token.trim()).await {
                Some(Ok(caller)) => Ok(caller),
                Some(Err(why)) => Err(Error::InvalidToken(why)),
                None => Err(Error::Unauthorized),
            },
            None => Err(Error::Unauthorized),
        }
    }

    /// The name of the static credential in an `Authorization` header, if it is a valid one.
    fn authenticate(&self, header: Option<&str>) -> Option<&str> {
        let (scheme, value) = header?.trim().split_once(' ')?;
        let (table, presented) = if scheme.eq_ignore_ascii_case("bearer") {
            (&self.bearer, digest(value.trim().as_bytes()))
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
            (&self.basic, digest(&decoded))
        } else {
            return None;
        };
        // Check every entry, so the time taken does not say which one matched.
        let mut found = None;
        for (name, expected) in table {
            if bool::from(expected.ct_eq(&presented)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let cfg: AuthConfig = toml::from_str(
            "[[bearer]]\nname = \"okta\"\ntoken = \"t0ken\"\n[[basic]]\nname = \"b\"\nusername = \"u\"\npassword = \"p:w\"\n",
        )
        .unwrap();
        Authenticator::new(&cfg).unwrap()
    }

    #[test]
    fn accepts_only_valid_credentials() {
        let a = auth();
        assert_eq!(a.authenticate(Some("Bearer t0ken")), Some("okta"));
        assert_eq!(a.authenticate(Some("bearer  t0ken ")), Some("okta"));
        assert_eq!(a.authenticate(Some("Bearer t0ke")), None);
        assert_eq!(a.authenticate(Some("Bearer")), None);
        assert_eq!(a.authenticate(None), None);
        let basic = base64::engine::general_purpose::STANDARD.encode("u:p:w");
        assert_eq!(a.authenticate(Some(&format!("Basic {basic}"))), Some("b"));
        assert_eq!(a.authenticate(Some("Basic !!!")), None);
        assert_eq!(a.authenticate(Some("Digest t0ken")), None);
    }
}
