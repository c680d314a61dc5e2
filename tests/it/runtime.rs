//! The gateway in production shape: /metrics, /readyz, the in-flight cap, graceful shutdown,
//! failover between directory URLs and the pool's idle check, against a real slapd.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::{okta_user, q, Answer, TestGateway, TOKEN};
use common::Slapd;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const IN_FLIGHT: &str = "scim_gateway_http_requests_in_flight";
const HTTP: &str = "scim_gateway_http_request_duration_seconds_count";
const LDAP: &str = "scim_gateway_ldap_operation_duration_seconds_count";

#[tokio::test]
async fn metrics_are_scraped_and_parse() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let created = gw.post("/Users", &okta_user("metrics@example.com", None)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    gw.get(&format!("/Users/{id}")).await;
    gw.get("/Users/00000000-0000-0000-0000-000000000000").await.assert_error(404, None);
    gw.get(&format!("/Users?filter={}", q(r#"userName eq "metrics@example.com""#))).await;
    gw.call("GET", "/Users", None, Some("Bearer wrong")).await.assert_error(401, None);

    let m = gw.scrape().await;
    let http = |method, route, status| m.sum(HTTP, &[("method", method), ("route", route), ("status", status)]);
    assert_eq!(http("POST", "/Users", "201"), 1.0);
    assert_eq!(http("GET", "/Users/{id}", "200"), 1.0);
    assert_eq!(http("GET", "/Users/{id}", "404"), 1.0);
    assert_eq!(http("GET", "/Users", "200"), 1.0);
    assert_eq!(http("GET", "/Users", "401"), 1.0);
    assert_eq!(m.sum(LDAP, &[("operation", "add"), ("outcome", "ok")]), 1.0);
    assert!(m.sum(LDAP, &[("operation", "search"), ("outcome", "ok")]) >= 2.0);
    assert_eq!(m.sum("scim_gateway_ldap_pool_size", &[]), 4.0);
    let open = m.sum("scim_gateway_ldap_connections", &[]);
    assert!((1.0..=4.0).contains(&open), "{open} connections");
    assert!(m.sum("scim_gateway_ldap_connects_total", &[("server", "1"), ("outcome", "ok")]) >= 1.0);
    // The create filled the cache: the GET by id and the lookup were hits.
    assert!(m.sum("scim_gateway_cache_lookups_total", &[("result", "hit")]) >= 2.0);
    assert_eq!(m.sum(IN_FLIGHT, &[]), 0.0);
    // Labels come from templates and fixed sets, never from request data.
    assert!(!m.text.contains(&id) && !m.text.contains("metrics@example.com"));
    // /metrics is unauthenticated, like the probes, and counted too.
    assert_eq!(gw.scrape().await.sum(HTTP, &[("route", "/metrics"), ("status", "200")]), 1.0);
    gw.stop().await;
}

#[tokio::test]
async fn readyz_follows_the_directory() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    assert_eq!(probe(&gw, "/readyz").await.status, 200);

    slapd.kill();
    let started = Instant::now();
    // A check's answer serves for a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let down = probe(&gw, "/readyz").await;
    down.assert_error(503, None);
    assert_eq!(down.header("retry-after"), Some("5"));
    assert!(started.elapsed() < Duration::from_secs(10), "answered, not hung");
    assert_eq!(probe(&gw, "/healthz").await.status, 200, "alive while the directory is down");

    slapd.restart();
    let started = Instant::now();
    while probe(&gw, "/readyz").await.status != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "not ready 10 s after slapd came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("ready again {:?} after slapd restarted", started.elapsed());
    gw.stop().await;
}

/// An unauthenticated GET outside the SCIM base path.
async fn probe(gw: &TestGateway, path: &str) -> Answer {
    gw.call("GET", &format!("{}{path}", gw.origin()), None, Some("")).await
}

/// A POST /Users whose body is held back, so the request stays in flight until [`Self::finish`].
struct HeldRequest {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl HeldRequest {
    async fn start(gw: &TestGateway, user_name: &str) -> HeldRequest {
        let body = okta_user(user_name, None).to_string().into_bytes();
        let addr = gw.origin().trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..10]).await.unwrap();
        HeldRequest { stream, rest: body[10..].to_vec() }
    }

    /// Sends the rest of the body and returns the status of the answer.
    async fn finish(mut self) -> u16 {
        self.stream.write_all(&self.rest).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read_to_end(&mut answer)).await;
        read.expect("answered within 10 s").unwrap();
        let answer = String::from_utf8_lossy(&answer);
        answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {answer:?}"))
    }
}

/// Waits until the gateway reports `n` requests in flight.
async fn wait_in_flight(gw: &TestGateway, n: f64) {
    for _ in 0..200 {
        if gw.scrape().await.sum(IN_FLIGHT, &[]) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never {n} requests in flight");
}

#[tokio::test]
async fn beyond_the_in_flight_cap_requests_get_429() {
    let slapd = Slapd::start();
    let proxy = Proxy::start(&slapd.url).await;
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace(&slapd.url, &proxy.url)
            .replace("max_in_flight = 256", "max_in_flight = 2")
            .replace("pool_size = 4", "pool_size = 1")
    })
    .await;
    // The pool's one connection opens, then goes silent: requests that need the directory
    // stay in flight until the operation timeout (10 s: time for the scrape and the refused
    // request on a loaded machine). (A request whose body is still arriving
    // takes no slot: tests/it/edge.rs.)
    assert_eq!(gw.get("/Users?count=1").await.status, 200);
    proxy.freeze();
    let held: Vec<_> = (0..2)
        .map(|i| {
            let client = TestGateway::remote(gw.base.clone());
            tokio::spawn(async move {
                client.get(&format!("/Users?filter={}", q(&format!("userName eq \"held{i}\"")))).await.status
            })
        })
        .collect();
    wait_in_flight(&gw, 2.0).await;

    let refused = gw.get("/Users").await;
    refused.assert_error(429, None);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(probe(&gw, "/healthz").await.status, 200, "probes are not capped");

    for h in held {
        let status = h.await.unwrap().as_u16();
        assert!(status == 200 || status == 503, "{status}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let addr = gw.origin().trim_start_matches("http://").to_owned();
    let held = HeldRequest::start(&gw, "inflight@example.com").await;
    // Its head is in, its body is not: the request has begun (it takes an in-flight slot
    // only once its body is read).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = tokio::spawn(gw.stop());
    let started = Instant::now();
    while TcpStream::connect(&addr).await.is_ok() {
        assert!(started.elapsed() < Duration::from_secs(5), "still accepting after the shutdown signal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!stopping.is_finished(), "stopped with a request in flight");
    assert_eq!(held.finish().await, 201);
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("stopped after the request").unwrap();
    assert!(slapd.entry("uid=inflight@example.com,ou=people,dc=example,dc=test").await.is_some());
}

#[tokio::test]
async fn a_dead_first_url_fails_over_to_the_next() {
    let slapd = Slapd::start();
    let dead =
        format!("ldap://127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port());
    let urls = format!("url = [\"{dead}\", \"{}\"]", slapd.url);
    let gw = TestGateway::start_with(&slapd, |t| t.replace(&format!("url = \"{}\"", slapd.url), &urls)).await;
    for i in 0..10 {
        let created = gw.post("/Users", &okta_user(&format!("failover{i}@example.com"), None)).await;
        assert_eq!(created.status, 201, "{:#}", created.body);
    }
    let m = gw.scrape().await;
    let connects =
        |server: &str, outcome| m.sum("scim_gateway_ldap_connects_total", &[("server", server), ("outcome", outcome)]);
    // Servers are named by their place in the list, never by URL.
    assert!(connects("2", "ok") >= 1.0);
    let failed = connects("1", "error");
    assert!(!m.text.contains(&dead) && !m.text.contains(&slapd.url));
    // Tried, then skipped while backing off: not once per request.
    assert!((1.0..=4.0).contains(&failed), "{failed} attempts on the dead server");
    gw.stop().await;
}

/// A TCP proxy to `upstream` whose [`Proxy::freeze`] makes the connections open at that
/// moment go silent without closing, as a firewall dropping idle connections does.
struct Proxy {
    url: String,
    freeze: Arc<tokio::sync::Notify>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ldap://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("ldap://").to_owned();
        let freeze = Arc::new(tokio::sync::Notify::new());
        let notify = freeze.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut server = TcpStream::connect(&upstream).await.unwrap();
                let frozen = notify.clone().notified_owned();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = frozen => std::future::pending().await,
                    }
                });
            }
        });
        Proxy { url, freeze }
    }

    fn freeze(&self) {
        self.freeze.notify_waiters();
    }
}

#[tokio::test]
async fn an_idle_connection_that_went_silent_is_replaced_before_use() {
    let slapd = Slapd::start();
    let proxy = Proxy::start(&slapd.url).await;
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace(&slapd.url, &proxy.url)
            .replace("pool_size = 4", "pool_size = 1")
            .replace("idle_check_secs = 30", "idle_check_secs = 1")
            // The idle check waits this long for the silent connection; a loaded slapd
            // answers the create and the PATCH well within it.
            .replace("operation_timeout_secs = 10", "operation_timeout_secs = 4")
    })
    .await;
    let created = gw.post("/Users", &okta_user("idle@example.com", None)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    proxy.freeze();
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let patched = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "title", "value": "t"}])).await;
    assert_eq!(patched.status, 200, "{:#}", patched.body);
    let m = gw.scrape().await;
    // The check caught the dead connection: no directory operation was sent into it.
    let dropped = |reason| m.sum("scim_gateway_ldap_connections_dropped_total", &[("reason", reason)]);
    assert_eq!((dropped("idle_check"), dropped("failed")), (1.0, 0.0));
    assert_eq!(m.sum(LDAP, &[("outcome", "unavailable")]), 0.0);
    assert_eq!(m.sum("scim_gateway_ldap_connects_total", &[("outcome", "ok")]), 2.0);
    gw.stop().await;
}
