//! A gateway running in the test process against a test `Slapd`, and a small SCIM client.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use scim_gateway::config::Loaded;
use scim_gateway::Gateway;
use serde_json::Value;
use tokio::sync::oneshot;

use super::Slapd;

pub const TOKEN: &str = "test-token-3f9a";
pub const PEOPLE: &str = "ou=people,dc=example,dc=test";

pub struct TestGateway {
    /// `http://127.0.0.1:PORT/scim/v2`
    pub base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

/// One answer: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a SCIM error with this status and `scimType`.
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{:#}", self.body);
        assert_eq!(self.body["status"], status.to_string());
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{:#}", self.body);
    }
}

/// The shipped gateway.toml pointed at `slapd`, with the test token; `edit` may change more.
pub fn config_text(slapd: &Slapd, edit: impl Fn(String) -> String) -> String {
    let shipped = include_str!("../../gateway.toml");
    let text = shipped
        .replace("${SCIM_GATEWAY_LDAP_URL:-ldap://127.0.0.1:3890}", &slapd.url)
        .replace("${SCIM_GATEWAY_TOKEN:-demo-token}", TOKEN)
        .replace("${SCIM_GATEWAY_BIND_PASSWORD:-service-secret}", &slapd.service_password);
    edit(text)
}

/// A shipped preset (`presets/{name}`) pointed at a directory, with the test token.
pub fn preset(name: &str, ldap_url: &str, bind_password: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/presets/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    text.replace("${SCIM_GATEWAY_LDAP_URL}", ldap_url)
        .replace("${SCIM_GATEWAY_TOKEN}", TOKEN)
        .replace("${SCIM_GATEWAY_BIND_PASSWORD}", bind_password)
        // presets/postgres.toml: the database password (the URL and sslmode have defaults).
        .replace("${SCIM_GATEWAY_PG_PASSWORD}", bind_password)
}

impl TestGateway {
    pub async fn start(slapd: &Slapd) -> TestGateway {
        Self::start_with(slapd, |t| t).await
    }

    pub async fn start_with(slapd: &Slapd, edit: impl Fn(String) -> String) -> TestGateway {
        Self::from_text(config_text(slapd, edit)).await
    }

    pub async fn from_text(text: String) -> TestGateway {
        super::raise_file_limit();
        let loaded = Arc::new(Loaded::parse("test.toml", text).expect("test config"));
        let gateway = Gateway::new(&loaded).expect("gateway");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let reloader = gateway.reloader();
            gateway.serve(&loaded, &reloader, listener, shutdown).await.expect("serve");
        });
        TestGateway {
            base: format!("http://127.0.0.1:{port}/scim/v2"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// A client of a gateway running elsewhere (another process), at `base`.
    pub fn remote(base: String) -> TestGateway {
        TestGateway { base, client: Client::builder(TokioExecutor::new()).build_http(), stop: None, served: None }
    }

    /// `GET /metrics`, parsed.
    pub async fn scrape(&self) -> super::metrics::Scrape {
        let url = format!("{}/metrics", self.origin());
        let resp = self.client.get(url.parse().unwrap()).await.expect("scrape /metrics");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        super::metrics::Scrape::parse(std::str::from_utf8(&bytes).expect("UTF-8"))
    }

    /// `http://127.0.0.1:PORT`, for endpoints outside the base path.
    pub fn origin(&self) -> &str {
        self.base.trim_end_matches("/scim/v2")
    }

    /// Stops accepting and waits for requests in flight.
    pub async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        if let Some(s) = self.served.take() {
            s.await.expect("server task");
        }
    }

    /// A request with the test token (`auth` overrides the Authorization header; "" sends none).
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>, auth: Option<&str>) -> Answer {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw(method, path, bytes.into_bytes(), auth, &[]).await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        auth: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        // Paths are relative to the SCIM base unless given as absolute URLs.
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let mut req = Request::builder().method(Method::from_bytes(method.as_bytes()).unwrap()).uri(url);
        let auth = auth.map_or_else(|| format!("Bearer {TOKEN}"), str::to_owned);
        if !auth.is_empty() {
            req = req.header("authorization", auth);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/scim+json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.expect("request");
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Answer { status: parts.status, headers: parts.headers, body }
    }

    /// `totalResults` of `GET /Users?filter=…`, asserting a 200.
    pub async fn total(&self, filter: &str) -> u64 {
        let a = self.get(&format!("/Users?filter={}", q(filter))).await;
        assert_eq!(a.status, 200, "{filter}: {:#}", a.body);
        a.body["totalResults"].as_u64().unwrap()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call("POST", path, Some(body), None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call("PUT", path, Some(body), None).await
    }

    pub async fn patch(&self, path: &str, ops: Value) -> Answer {
        let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        self.call("PATCH", path, Some(&body), None).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None, None).await
    }
}

/// Okta's create body (from the reference), for `user_name`.
pub fn okta_user(user_name: &str, password: Option<&str>) -> Value {
    let mut v = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "John", "familyName": "Doe"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "John Doe",
        "locale": "en-US",
        "externalId": "00u1abcd2EFGH3ijk4l5",
        "groups": [],
        "active": true
    });
    if let Some(p) = password {
        v["password"] = p.into();
    }
    v
}

/// Percent-encodes a filter for a query string.
pub fn q(filter: &str) -> String {
    form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

/// The ids of a group resource's members, sorted.
pub fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().map(|x| x["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}
