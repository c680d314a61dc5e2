//! OAuth test kit: a gateway configured as an authorization server over a test `Slapd` with a
//! directory admin in an admin group, a form-posting client, and the sign-in done over HTTP.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use ldap3::Mod;
use serde_json::Value;
use std::collections::HashSet;

use super::gateway::{config_text, TestGateway, PEOPLE};
use super::Slapd;

pub const ADMIN_GROUP: &str = "cn=scim-admins,ou=groups,dc=example,dc=test";
pub const ALICE: &str = "uid=alice,ou=people,dc=example,dc=test";
pub const ALICE_PASSWORD: &str = "Alice-pw-4711";
pub const BOB: &str = "uid=bob,ou=people,dc=example,dc=test";
pub const BOB_PASSWORD: &str = "Bob-pw-0815";
pub const OKTA_SECRET: &str = "okta-client-secret-0123456789";
pub const ENTRA_SECRET: &str = "entra-client-secret-9876543210";
pub const CALLBACK: &str = "http://127.0.0.1:1/callback";

/// Alice (an admin) and Bob (not one), with passwords the directory hashes, and the group.
pub async fn seed(slapd: &Slapd) {
    let mut ldap = slapd.admin().await;
    for (dn, uid, pw) in [(ALICE, "alice", ALICE_PASSWORD), (BOB, "bob", BOB_PASSWORD)] {
        let attrs = vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("uid", HashSet::from([uid])),
            ("cn", HashSet::from([uid])),
            ("sn", HashSet::from([uid])),
            ("userPassword", HashSet::from([pw])),
        ];
        ldap.add(dn, attrs).await.and_then(|r| r.success()).unwrap_or_else(|e| panic!("add {dn}: {e}"));
    }
    let group = vec![
        ("objectClass", HashSet::from(["groupOfNames"])),
        ("cn", HashSet::from(["scim-admins"])),
        ("member", HashSet::from([ALICE])),
    ];
    ldap.add(ADMIN_GROUP, group).await.and_then(|r| r.success()).expect("add admin group");
    let _ = ldap.unbind().await;
}

/// Takes Alice out of the admin group (Bob stands in: groupOfNames needs a member).
pub async fn remove_alice_from_admins(slapd: &Slapd) {
    let mut ldap = slapd.admin().await;
    let mods = vec![Mod::Add("member", HashSet::from([BOB])), Mod::Delete("member", HashSet::from([ALICE]))];
    ldap.modify(ADMIN_GROUP, mods).await.and_then(|r| r.success()).expect("modify admin group");
    let _ = ldap.unbind().await;
}

/// A fresh Ed25519 key as a PKCS#8 PEM file.
pub fn key_file(dir: &std::path::Path, name: &str) -> PathBuf {
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let b64 = STANDARD.encode(der.as_ref());
    let path = dir.join(name);
    std::fs::write(&path, format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")).unwrap();
    path
}

/// The `[auth.oauth]` section: Okta (authorization code, redirect `callback`) and Entra
/// (client credentials) as clients; `extra` goes into `[auth.oauth]` itself.
pub fn oauth_section(keys: &[PathBuf], callback: &str, extra: &str) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("{:?}", k.display().to_string())).collect();
    format!(
        r#"
[auth.oauth]
issuer = "http://127.0.0.1"
key_files = [{keys}]
admin_group = "{ADMIN_GROUP}"
{extra}

[[auth.oauth.client]]
client_id = "okta"
secret_hash = "{okta}"
redirect_uris = ["{callback}", "https://other.example/cb"]
grants = ["authorization_code"]

[[auth.oauth.client]]
client_id = "entra"
secret_hash = "{entra}"
grants = ["client_credentials"]
"#,
        keys = keys.join(", "),
        okta = scim_gateway::http::oauth::hash_secret(OKTA_SECRET),
        entra = scim_gateway::http::oauth::hash_secret(ENTRA_SECRET),
    )
}

/// A gateway with the shipped configuration plus `section`.
pub async fn gateway(slapd: &Slapd, section: &str) -> TestGateway {
    TestGateway::from_text(config_text(slapd, |t| t) + section).await
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A set cookie's `name=value`.
    pub fn cookie(&self) -> Option<String> {
        self.header("set-cookie").and_then(|c| c.split(';').next()).map(str::to_owned)
    }
}

/// A plain HTTP client for forms and pages.
pub struct Web {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Web {
    fn default() -> Self {
        Web { client: Client::builder(TokioExecutor::new()).build_http() }
    }
}

impl Web {
    pub async fn send(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.expect("request");
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        Reply { status: parts.status, headers: parts.headers, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", url, headers, Vec::new()).await
    }

    pub async fn form(&self, url: &str, pairs: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(headers);
        self.send("POST", url, &h, body.into_bytes()).await
    }

    /// The token endpoint, the client authenticated with Basic.
    pub async fn token(&self, gw: &TestGateway, client: &str, secret: &str, pairs: &[(&str, &str)]) -> Reply {
        self.token_at(gw, "token", client, secret, pairs).await
    }

    /// `endpoint` (token or revoke), the client authenticated with Basic.
    pub async fn token_at(
        &self,
        gw: &TestGateway,
        endpoint: &str,
        client: &str,
        secret: &str,
        pairs: &[(&str, &str)],
    ) -> Reply {
        let basic = format!("Basic {}", STANDARD.encode(format!("{client}:{secret}")));
        self.form(&format!("{}/oauth/{endpoint}", gw.base), pairs, &[("authorization", &basic)]).await
    }
}

/// The value of the hidden `ticket` field of a sign-in page.
pub fn ticket(page: &str) -> String {
    let start = page.find("name=\"ticket\" value=\"").expect("a ticket field") + "name=\"ticket\" value=\"".len();
    page[start..][..page[start..].find('"').unwrap()].to_owned()
}

/// The authorize URL for Okta's client.
pub fn authorize_url(gw: &TestGateway, redirect: &str, state: &str, extra: &str) -> String {
    let q = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "{}/oauth/authorize?response_type=code&client_id=okta&redirect_uri={}&state={}{extra}",
        gw.base,
        q(redirect),
        q(state)
    )
}

/// Signs in over plain HTTP (page, cookie, form) and returns the Location it redirects to.
pub async fn sign_in(web: &Web, gw: &TestGateway, url: &str, login: &str, password: &str) -> Reply {
    let page = web.get(url, &[]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let cookie = page.cookie().expect("a login cookie");
    let ticket = ticket(&page.text);
    let form = [("ticket", ticket.as_str()), ("username", login), ("password", password)];
    web.form(&format!("{}/oauth/authorize", gw.base), &form, &[("cookie", &cookie)]).await
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The number of entries under ou=people (to show a hostile request changed nothing).
pub async fn people(slapd: &Slapd) -> usize {
    slapd.search(PEOPLE, "(objectClass=*)").await.len()
}
