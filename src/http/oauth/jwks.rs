//! Access tokens from outside authorization servers (Entra, an Okta authorization server):
//! JWTs checked against the issuer's JWKS, read from a file or fetched over https (rustls),
//! kept, re-read hourly, and re-read at once — at most once a minute (`jwks_min_refresh_secs`)
//! — when a token names a key the set lacks (the issuer rotated its keys).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::config::JwtIssuer;

const REFRESH_EVERY: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Signature algorithms accepted from outside: asymmetric only, so a public key can never
/// be used as an HMAC secret.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

enum Source {
    File(String),
    Url { url: http::Uri, client: Box<Https> },
}

struct KeySet {
    keys: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    read: Option<Instant>,
}

pub struct Issuer {
    cfg: JwtIssuer,
    source: Source,
    set: ArcSwap<KeySet>,
    last_fetch: Mutex<Option<Instant>>,
}

impl Issuer {
    pub fn new(cfg: JwtIssuer) -> Result<Issuer, String> {
        let within = format!("[[auth.jwt]] {}", cfg.name);
        if cfg.audience.is_empty() {
            return Err(format!("{within}: audience lists no value"));
        }
        let source = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(f), None) => Source::File(f.as_str().to_owned()),
            (None, Some(u)) => {
                let url: http::Uri = u.as_str().parse().map_err(|e| format!("{within}: jwks_url: {e}"))?;
                if url.scheme_str() != Some("https") {
                    return Err(format!("{within}: jwks_url must be an https:// URL"));
                }
                let client = https_client(cfg.jwks_ca_file.as_ref().map(|t| t.as_str()), &within)?;
                Source::Url { url, client: Box::new(client) }
            }
            _ => return Err(format!("{within}: give exactly one of jwks_file and jwks_url")),
        };
        let issuer = Issuer {
            cfg,
            source,
            set: ArcSwap::from_pointee(KeySet { keys: HashMap::new(), read: None }),
            last_fetch: Mutex::new(None),
        };
        if let Source::File(path) = &issuer.source {
            let text = std::fs::read(path).map_err(|e| format!("{within}: jwks_file {path}: {e}"))?;
            issuer.set.store(Arc::new(parse(&text).map_err(|e| format!("{within}: jwks_file {path}: {e}"))?));
        }
        Ok(issuer)
    }

    /// The key `kid` names, reading the set again when it is stale or lacks that key.
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Option<Algorithm>)> {
        let set = self.set.load();
        let stale = set.read.is_none_or(|t| t.elapsed() > REFRESH_EVERY);
        if let Some(k) = set.keys.get(kid).filter(|_| !stale) {
            return Some(k.clone());
        }
        if let Source::Url { url, client } = &self.source {
            if self.may_fetch() {
                match fetch(client, url).await {
                    Ok(fresh) => self.set.store(Arc::new(fresh)),
                    Err(e) => {
                        tracing::warn!(issuer = %self.cfg.name, error = %e, "cannot read the JWKS; keeping the keys held")
                    }
                }
            }
        }
        self.set.load().keys.get(kid).cloned()
    }

    /// At most one fetch per `jwks_min_refresh_secs`, however many tokens name unknown keys.
    fn may_fetch(&self) -> bool {
        let mut last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(self.cfg.jwks_min_refresh_secs)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// The caller's name (`issuer-name:subject`) if `token` is valid; why not, otherwise.
    pub async fn verify(&self, token: &str, kid: &str, alg: Algorithm) -> Result<String, &'static str> {
        if !ASYMMETRIC.contains(&alg) {
            return Err("signature algorithm not accepted");
        }
        let (key, key_alg) = self.key(kid).await.ok_or("unknown signing key")?;
        if key_alg.is_some_and(|a| a != alg) {
            return Err("signature algorithm does not match the key");
        }
        let mut v = Validation::new(alg);
        v.leeway = self.cfg.leeway_secs;
        v.validate_nbf = true;
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&self.cfg.audience);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "expired",
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => "not yet valid",
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => "wrong issuer",
                jsonwebtoken::errors::ErrorKind::InvalidAudience => "wrong audience",
                _ => "invalid signature or claims",
            })?
            .claims;
        for (name, want) in &self.cfg.required_claims {
            let holds = match &claims[name] {
                Value::String(s) => s == want,
                Value::Array(a) => a.iter().any(|v| v.as_str() == Some(want)),
                _ => false,
            };
            if !holds {
                return Err("a required claim is missing or differs");
            }
        }
        // Entra: appid (v1) / azp (v2) name the calling application; Okta: cid.
        let who = ["azp", "appid", "cid", "client_id", "sub"].iter().find_map(|c| claims[c].as_str()).unwrap_or("?");
        Ok(format!("{}:{who}", self.cfg.name))
    }
}

/// The asymmetric keys of a JWKS document, by `kid`; keys without one, and secret (`oct`)
/// keys, are left out.
fn parse(text: &[u8]) -> Result<KeySet, String> {
    let set: JwkSet = serde_json::from_slice(text).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else { continue };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            continue;
        }
        let alg = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid.clone(), (key, alg));
        }
    }
    Ok(KeySet { keys, read: Some(Instant::now()) })
}

async fn fetch(client: &Https, url: &http::Uri) -> Result<KeySet, String> {
    let got = tokio::time::timeout(FETCH_TIMEOUT, async {
        let resp = client.get(url.clone()).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES).collect().await.map_err(|e| e.to_string())?;
        Ok(body.to_bytes())
    })
    .await
    .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))??;
    parse(&got)
}

fn https_client(ca_file: Option<&str>, within: &str) -> Result<Https, String> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(ca) => {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{within}: jwks_ca_file {ca}: {e}"))? {
                let cert = cert.map_err(|e| format!("{within}: jwks_ca_file {ca}: {e}"))?;
                roots.add(cert).map_err(|e| format!("{within}: jwks_ca_file {ca}: {e}"))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
}
