//! PostgreSQL going away and coming back, and TLS to it. Killed (SIGKILL, server and backends),
//! the gateway answers 503 with Retry-After and `/readyz` says not ready, rather than hanging;
//! restarted, it recovers by itself, without a restart of its own, and nothing it refused is in
//! the tables. Over TLS (rustls, the server's certificate checked against a private CA) the
//! flows work, and the server sees an encrypted session; a wrong CA gets no data through.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::gateway::{okta_user, q, Answer, TestGateway};
use crate::common::pki::pki;
use crate::common::postgres::Postgres;
use crate::common::postgres_store::config;

async fn readyz(gw: &TestGateway) -> u16 {
    gw.raw("GET", &format!("{}/readyz", gw.origin()), Vec::new(), Some(""), &[]).await.status.as_u16()
}

/// Polls `probe` every 100 ms until it holds, for at most `within`.
async fn eventually<F: AsyncFn() -> bool>(what: &str, within: Duration, probe: F) {
    let deadline = Instant::now() + within;
    while !probe().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request that must come back within `limit` (the pool's and statement's timeouts bound it).
async fn timely(gw: &TestGateway, method: &str, path: &str, body: Option<&serde_json::Value>) -> Answer {
    let limit = Duration::from_secs(15);
    tokio::time::timeout(limit, gw.call(method, path, body, None))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within {limit:?}"))
}

fn assert_unavailable(a: &Answer, what: &str) {
    assert_eq!(a.status, 503, "{what}: {:#}", a.body);
    let retry: u64 = a.header("retry-after").unwrap_or_else(|| panic!("{what}: no Retry-After")).parse().unwrap();
    assert!(retry >= 1, "{what}: Retry-After {retry}");
    assert_eq!(a.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
}

#[tokio::test]
async fn killed_database_is_503_then_recovers_without_a_gateway_restart() {
    let pg = Postgres::start();
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let before = gw.post("/Users", &okta_user("before@example.com", None)).await;
    assert_eq!(before.status, 201, "{:#}", before.body);
    let id = before.body["id"].as_str().unwrap().to_owned();
    eventually("/readyz 200", Duration::from_secs(5), async || readyz(&gw).await == 200).await;

    pg.kill();
    let lookup = format!("/Users?filter={}", q(r#"userName eq "before@example.com""#));
    assert_unavailable(&timely(&gw, "GET", &lookup, None).await, "lookup");
    assert_unavailable(&timely(&gw, "GET", &format!("/Users/{id}"), None).await, "read");
    let refused = timely(&gw, "POST", "/Users", Some(&okta_user("during@example.com", None))).await;
    assert_unavailable(&refused, "create");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "title", "value": "during"}]});
    assert_unavailable(&timely(&gw, "PATCH", &format!("/Users/{id}"), Some(&patch)).await, "patch");
    eventually("/readyz 503", Duration::from_secs(5), async || readyz(&gw).await == 503).await;
    assert!(!refused.body.to_string().contains("service-secret"), "no secret in the answer");

    pg.restart();
    eventually("reads again", Duration::from_secs(30), async || gw.get(&lookup).await.status == 200).await;
    eventually("/readyz 200 again", Duration::from_secs(5), async || readyz(&gw).await == 200).await;
    let after = gw.post("/Users", &okta_user("after@example.com", None)).await;
    assert_eq!(after.status, 201, "{:#}", after.body);
    assert_eq!(gw.get(&lookup).await.body["Resources"][0]["id"], id.as_str());
    // What was refused did not land; what was acknowledged did.
    let names = pg.rows("SELECT user_name, title FROM users ORDER BY user_name", &[]).await;
    assert_eq!(
        names,
        [
            json!({"user_name": "after@example.com", "title": null}),
            json!({"user_name": "before@example.com", "title": null})
        ]
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls_to_the_database_with_a_private_ca() {
    let ca = pki();
    let pg = Postgres::start_tls(&ca.cert, &ca.key);
    let gw = TestGateway::from_text(config(&pg, Some(&ca.ca), |t| t)).await;
    let created = gw.post("/Users", &okta_user("tls@example.com", Some("Tls-pass-1"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(gw.total(r#"userName eq "tls@example.com""#).await, 1);
    // The server's own view: every session of the gateway's role is encrypted.
    let sessions = pg
        .rows(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.usename = 'scim_gateway'",
            &[],
        )
        .await;
    assert!(!sessions.is_empty() && sessions.iter().all(|s| s["ssl"] == true), "{sessions:?}");
    gw.stop().await;

    // A CA that did not sign the server's certificate: nothing gets through, and nothing is written.
    let other = pki();
    let gw = TestGateway::from_text(config(&pg, Some(&other.ca), |t| t)).await;
    let refused = timely(&gw, "POST", "/Users", Some(&okta_user("mitm@example.com", None))).await;
    assert_unavailable(&refused, "create over an unverified server");
    eventually("/readyz 503", Duration::from_secs(5), async || readyz(&gw).await == 503).await;
    assert_eq!(pg.count("users").await, 1);
    gw.stop().await;

    // Plain TCP to a server that only takes TLS: the server refuses the session (pg_hba);
    // unavailable, and not ready.
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    assert_unavailable(&timely(&gw, "GET", "/Users", None).await, "plain TCP to a TLS-only server");
    let refused = timely(&gw, "POST", "/Users", Some(&okta_user("plain@example.com", None))).await;
    assert_unavailable(&refused, "plain TCP to a TLS-only server");
    assert!(!refused.body.to_string().contains("service-secret"), "no secret in the answer");
    eventually("/readyz 503", Duration::from_secs(5), async || readyz(&gw).await == 503).await;
    assert_eq!(pg.count("users").await, 1);
    gw.stop().await;
}
