//! The gateway's own signed tokens (access and refresh tokens, codes, login tickets): JWTs
//! signed with Ed25519 (EdDSA). The `kid` is the key's RFC 7638 thumbprint, so every replica
//! given the same key files names them alike and accepts the others' tokens.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Text;

/// Clock skew allowed between replicas.
const LEEWAY_SECS: u64 = 5;

/// What a token is for: checked on every use, so that no kind passes for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Use {
    Access,
    Refresh,
    Code,
    /// The signed authorization request a login form carries (see `authorize`).
    Login,
}

/// The claims every token has, and the kind-specific ones in `body`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Signed<T> {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub token_use: Use,
    #[serde(flatten)]
    pub body: T,
}

pub struct Keys {
    kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    issuer: String,
    audience: String,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Keys {
    /// Reads the PKCS#8 PEM Ed25519 keys; `audience` tells this target's tokens from another's.
    pub fn load(files: &[Text], issuer: &str, audience: &str) -> Result<Keys, String> {
        use rustls_pki_types::{pem::PemObject, PrivateKeyDer};
        let ders = files.iter().map(|f| {
            let path = f.as_str();
            match PrivateKeyDer::from_pem_file(path) {
                Ok(PrivateKeyDer::Pkcs8(der)) => Ok(der.secret_pkcs8_der().to_vec()),
                Ok(_) => {
                    Err(format!("[auth.oauth] key file {path}: not a PKCS#8 key (openssl genpkey -algorithm ed25519)"))
                }
                Err(e) => Err(format!("[auth.oauth] key file {path}: {e}")),
            }
        });
        Self::from_pkcs8(&ders.collect::<Result<Vec<_>, _>>()?, issuer, audience)
    }

    pub fn from_pkcs8(ders: &[Vec<u8>], issuer: &str, audience: &str) -> Result<Keys, String> {
        let mut verifying = HashMap::new();
        let mut first = None;
        for der in ders {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|e| format!("[auth.oauth] a key file holds no Ed25519 key: {e}"))?;
            let public = pair.public_key().as_ref();
            let kid = thumbprint(public);
            first.get_or_insert_with(|| (kid.clone(), EncodingKey::from_ed_der(der)));
            verifying.insert(kid, DecodingKey::from_ed_der(public));
        }
        let (kid, signing) = first.ok_or("[auth.oauth] key_files names no key")?;
        Ok(Keys { kid, signing, verifying, issuer: issuer.into(), audience: audience.into() })
    }

    /// Whether a token naming `kid` is one of ours.
    pub fn knows(&self, kid: &str) -> bool {
        self.verifying.contains_key(kid)
    }

    /// A token of kind `token_use` for `sub`, valid for `lifetime`, and its `jti`.
    pub fn sign<T: Serialize>(&self, token_use: Use, sub: &str, lifetime: Duration, body: T) -> (String, String) {
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let iat = now();
        let claims = Signed {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: sub.to_owned(),
            exp: iat + lifetime.as_secs(),
            iat,
            jti: jti.clone(),
            token_use,
            body,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        // RFC 9068 names JWT access tokens so that they cannot pass for ID tokens.
        header.typ = Some(if token_use == Use::Access { "at+jwt" } else { "JWT" }.into());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing).expect("an Ed25519 key always signs");
        (token, jti)
    }

    /// The claims of a valid, unexpired token of kind `token_use`; why not, otherwise.
    pub fn verify<T: DeserializeOwned>(&self, token_use: Use, token: &str) -> Result<Signed<T>, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        let key = header.kid.as_deref().and_then(|k| self.verifying.get(k)).ok_or("unknown signing key")?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = LEEWAY_SECS;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Signed<T>>(token, key, &v).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "expired",
            _ => "invalid signature or claims",
        })?;
        if data.claims.token_use != token_use {
            return Err("wrong kind of token");
        }
        Ok(data.claims)
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key (members in lexical order, no spaces).
fn thumbprint(public: &[u8]) -> String {
    let jwk = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(public));
    URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn key() -> Vec<u8> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap().as_ref().to_vec()
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Body {
        client_id: String,
    }

    #[test]
    fn tokens_verify_across_replicas_and_rotation() {
        let (old, new) = (key(), key());
        let before = Keys::from_pkcs8(std::slice::from_ref(&old), "https://gw", "/scim/v2").unwrap();
        let rotated = Keys::from_pkcs8(&[new.clone(), old.clone()], "https://gw", "/scim/v2").unwrap();
        let body = || Body { client_id: "okta".into() };
        let (t, jti) = before.sign(Use::Access, "alice", Duration::from_secs(60), body());
        let claims = rotated.verify::<Body>(Use::Access, &t).unwrap();
        assert_eq!((claims.sub.as_str(), claims.jti, claims.body), ("alice", jti, body()));
        // Kinds, audiences and unknown keys do not mix.
        assert_eq!(rotated.verify::<Body>(Use::Refresh, &t).unwrap_err(), "wrong kind of token");
        let other_target = Keys::from_pkcs8(&[old], "https://gw", "/other").unwrap();
        assert!(other_target.verify::<Body>(Use::Access, &t).is_err());
        let (t2, _) = rotated.sign(Use::Access, "alice", Duration::from_secs(60), body());
        assert_eq!(before.verify::<Body>(Use::Access, &t2).unwrap_err(), "unknown signing key");
        // Expired (beyond the leeway).
        let (t3, _) = rotated.sign(Use::Access, "alice", Duration::ZERO, body());
        let mut stale: Vec<&str> = t3.split('.').collect();
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(stale[1]).unwrap()).unwrap();
        claims["exp"] = (now() - 60).into();
        let forged = URL_SAFE_NO_PAD.encode(claims.to_string());
        stale[1] = &forged;
        assert!(rotated.verify::<Body>(Use::Access, &stale.join(".")).is_err(), "tampered claims");
        assert!(Keys::from_pkcs8(&[], "i", "a").is_err());
    }
}
