//! Access tokens from an outside authorization server (Entra, an Okta authorization server):
//! JWTs checked against a JWKS the test makes, from a file and over https. Every malformed,
//! misdirected, stale or forged token is refused with RFC 6750 `invalid_token`.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::gateway::{config_text, TestGateway};
use common::Slapd;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

const ISS: &str = "https://login.example.test/tenant-1/v2.0";
const AUD: &str = "api://scim-gateway";

/// An ES256 key of the outside issuer: its PKCS#8 DER and its public JWK.
struct Key {
    der: Vec<u8>,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let rng = ring::rand::SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap().as_ref().to_vec();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng).unwrap();
    let point = pair.public_key().as_ref();
    let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..]));
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"});
    Key { der, jwk }
}

fn jwks(keys: &[&Key]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Entra-like claims, valid for five minutes.
fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "exp": now() + 300, "nbf": now() - 10, "iat": now() - 10,
           "tid": "tenant-1", "azp": "entra-provisioning", "sub": "svc"})
}

fn sign(k: &Key, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_ec_der(&k.der)).unwrap()
}

fn section(source: &str) -> String {
    format!(
        "\n[[auth.jwt]]\nname = \"entra\"\nissuer = \"{ISS}\"\naudience = [\"{AUD}\"]\n{source}\nrequired_claims = {{ tid = \"tenant-1\" }}\n"
    )
}

async fn status(gw: &TestGateway, token: &str) -> (u16, Option<String>) {
    let a = gw.call("GET", "/Users", None, Some(&format!("Bearer {token}"))).await;
    (a.status.as_u16(), a.header("www-authenticate").map(str::to_owned))
}

async fn refused(gw: &TestGateway, token: &str, what: &str) {
    let (code, challenge) = status(gw, token).await;
    assert_eq!(code, 401, "{what} was accepted");
    let challenge = challenge.unwrap_or_default();
    assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
}

#[tokio::test]
async fn outside_jwts_are_checked_against_a_jwks_file() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let (k1, other) = (key("k1"), key("k1"));
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&k1])).unwrap();
    let gw = TestGateway::from_text(
        config_text(&slapd, |t| t) + &section(&format!("jwks_file = {:?}", file.display().to_string())),
    )
    .await;

    assert_eq!(status(&gw, &sign(&k1, "k1", &claims())).await.0, 200);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        sign(&k1, "k1", &c)
    };
    refused(&gw, &with(&|c| c["iss"] = "https://evil.example/v2.0".into()), "wrong issuer").await;
    refused(&gw, &with(&|c| c["aud"] = "api://other".into()), "wrong audience").await;
    refused(&gw, &with(&|c| c["exp"] = (now() - 120).into()), "expired beyond the leeway").await;
    refused(&gw, &with(&|c| c["nbf"] = (now() + 600).into()), "not yet valid").await;
    refused(&gw, &with(&|c| c["tid"] = "tenant-2".into()), "another tenant").await;
    refused(&gw, &with(&|c| drop(c.as_object_mut().unwrap().remove("tid"))), "no tenant").await;
    refused(&gw, &with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))), "no expiry").await;
    refused(&gw, &sign(&k1, "k9", &claims()), "unknown kid").await;
    refused(&gw, &sign(&other, "k1", &claims()), "signed by another key under a known kid").await;
    // Within the leeway (60 s) an expiry just past is still accepted.
    assert_eq!(status(&gw, &with(&|c| c["exp"] = (now() - 5).into())).await.0, 200);

    // alg none, unsigned.
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("{}.{}.", enc(&json!({"alg": "none", "kid": "k1", "typ": "JWT"})), enc(&claims()));
    refused(&gw, &none, "alg none").await;
    let none_sig = format!("{none}AAAA");
    refused(&gw, &none_sig, "alg none with a signature").await;
    // HS256 signed with the public key as the HMAC secret (the key confusion attack), in
    // each form an attacker might try: the JWK text, the x coordinate, the JWKS document.
    for secret in [
        k1.jwk.to_string().into_bytes(),
        URL_SAFE_NO_PAD.decode(k1.jwk["x"].as_str().unwrap()).unwrap(),
        jwks(&[&k1]).into_bytes(),
    ] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let t = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        refused(&gw, &t, "HS256 with the public key").await;
    }
    // ES384 header on an ES256 key.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k1".into());
    let good = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_ec_der(&k1.der)).unwrap();
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[0] = enc(&json!({"alg": "ES384", "kid": "k1"}));
    refused(&gw, &parts.join("."), "algorithm differing from the key's").await;
    refused(&gw, "a.b.c", "garbage").await;
    // The static token still works beside it.
    assert_eq!(gw.get("/Users").await.status, 200);
}

/// A JWKS served over https by the test, counting fetches; `keys` can change underneath.
struct JwksServer {
    url: String,
    ca: std::path::PathBuf,
    keys: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

async fn jwks_server(initial: String) -> JwksServer {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".into()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    let (ca_path, cert, key) = (dir.path().join("ca.pem"), dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let text = |p: &std::path::Path| scim_gateway::config::Text(p.display().to_string());
    let tls_cfg = scim_gateway::config::TlsConfig { cert_file: text(&cert), key_file: text(&key) };
    let certs = Arc::new(scim_gateway::http::Certificates::load(&tls_cfg).unwrap());
    let acceptor = scim_gateway::http::tls_acceptor(certs).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (keys, fetches) = (Arc::new(Mutex::new(initial)), Arc::new(AtomicUsize::new(0)));
    let (k, f) = (keys.clone(), fetches.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (acceptor, k, f) = (acceptor.clone(), k.clone(), f.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = hyper::service::service_fn(move |_req| {
                    f.fetch_add(1, Ordering::SeqCst);
                    let body = k.lock().unwrap().clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from(body),
                        )))
                    }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
            });
        }
    });
    JwksServer { url: format!("https://127.0.0.1:{port}/keys"), ca: ca_path, keys, fetches, _dir: dir }
}

#[tokio::test]
async fn a_jwks_url_is_fetched_over_https_and_again_for_an_unknown_key_at_a_bounded_rate() {
    let slapd = Slapd::start();
    let (k1, k2, k3) = (key("k1"), key("k2"), key("k3"));
    let server = jwks_server(jwks(&[&k1])).await;
    let source = format!(
        "jwks_url = {:?}\njwks_ca_file = {:?}\njwks_min_refresh_secs = 5",
        server.url,
        server.ca.display().to_string()
    );
    let gw = TestGateway::from_text(config_text(&slapd, |t| t) + &section(&source)).await;

    assert_eq!(status(&gw, &sign(&k1, "k1", &claims())).await.0, 200);
    assert_eq!(status(&gw, &sign(&k1, "k1", &claims())).await.0, 200);
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1, "the set is kept");
    // The issuer rotates to k2. Right away, the rate limit holds the fetch back.
    *server.keys.lock().unwrap() = jwks(&[&k1, &k2]);
    refused(&gw, &sign(&k2, "k2", &claims()), "a key not fetched yet").await;
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
    // 5 s between fetches: the requests on either side of this wait fit in it on a loaded machine.
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    assert_eq!(status(&gw, &sign(&k2, "k2", &claims())).await.0, 200, "fetched again for the unknown kid");
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
    // A flood of unknown kids costs no more fetches.
    for _ in 0..10 {
        refused(&gw, &sign(&k3, "k3", &claims()), "unknown kid").await;
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(status(&gw, &sign(&k1, "k1", &claims())).await.0, 200);
}

#[tokio::test]
async fn a_jwks_url_must_be_https() {
    let slapd = Slapd::start();
    let text = config_text(&slapd, |t| t) + &section("jwks_url = \"http://127.0.0.1:1/keys\"");
    let loaded = scim_gateway::config::Loaded::parse("t.toml", text).unwrap();
    let err = scim_gateway::Gateway::new(&loaded).err().expect("refused").to_string();
    assert!(err.contains("https://"), "{err}");
}

/// Entra and Okta sign with RS256: a fixed test RSA key (tests/fixtures/oauth, made with
/// openssl) and its JWKS; the classic confusion, HS256 keyed with the public key's PEM, fails.
#[tokio::test]
async fn rs256_tokens_as_entra_signs_them() {
    use rustls_pki_types::{pem::PemObject, PrivateKeyDer};
    let slapd = Slapd::start();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oauth");
    let jwks = fixtures.join("rsa-test-jwks.json").display().to_string();
    let gw = TestGateway::from_text(config_text(&slapd, |t| t) + &section(&format!("jwks_file = {jwks:?}"))).await;
    let PrivateKeyDer::Pkcs1(der) = PrivateKeyDer::from_pem_file(fixtures.join("rsa-test-key.pem")).unwrap() else {
        panic!("a PKCS#1 key")
    };
    let rsa = EncodingKey::from_rsa_der(der.secret_pkcs1_der());
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("rsa-1".into());
    assert_eq!(status(&gw, &jsonwebtoken::encode(&h, &claims(), &rsa).unwrap()).await.0, 200);
    let mut wrong = claims();
    wrong["aud"] = "api://other".into();
    refused(&gw, &jsonwebtoken::encode(&h, &wrong, &rsa).unwrap(), "RS256 with the wrong audience").await;
    let public_pem = std::fs::read(fixtures.join("rsa-test-public.pem")).unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(&hs, &claims(), &EncodingKey::from_secret(&public_pem)).unwrap();
    refused(&gw, &confused, "HS256 keyed with the RSA public key").await;
}
