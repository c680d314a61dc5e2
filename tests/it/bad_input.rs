//! Bad input gets the right SCIM error and leaves the directory exactly as it was.

use crate::common;

use common::gateway::{okta_user, q, TestGateway, PEOPLE, TOKEN};
use common::Slapd;
use serde_json::json;

/// Every entry under people with all its attributes, to compare before and after.
async fn snapshot(slapd: &Slapd) -> Vec<String> {
    let mut all: Vec<String> = slapd
        .search(PEOPLE, "(objectClass=*)")
        .await
        .into_iter()
        .map(|e| {
            let mut attrs: Vec<_> = e.attrs.into_iter().collect();
            attrs.sort();
            format!("{} {attrs:?}", e.dn)
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn each_bad_request_gets_its_error_and_changes_nothing() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let created = gw.post("/Users", &okta_user("kim@example.com", Some("Kim-pw-1"))).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let user = format!("/Users/{id}");
    let before = snapshot(&slapd).await;

    // Malformed JSON, on every write endpoint.
    for (method, path) in [("POST", "/Users"), ("PUT", user.as_str()), ("PATCH", user.as_str())] {
        let a = gw.raw(method, path, b"{\"userName\": ".to_vec(), None, &[]).await;
        a.assert_error(400, Some("invalidSyntax"));
    }
    // Not a User / not a PatchOp.
    let mut wrong = okta_user("new@example.com", None);
    wrong["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:Group"]);
    gw.post("/Users", &wrong).await.assert_error(400, Some("invalidSyntax"));
    gw.post("/Users", &json!(["not", "an", "object"])).await.assert_error(400, Some("invalidSyntax"));
    let no_schema = json!({"Operations": [{"op": "replace", "value": {"active": false}}]});
    gw.call("PATCH", &user, Some(&no_schema), None).await.assert_error(400, Some("invalidSyntax"));
    // Missing or ill-typed values.
    let mut nameless = okta_user("x@example.com", None);
    nameless.as_object_mut().unwrap().remove("userName");
    gw.post("/Users", &nameless).await.assert_error(400, Some("invalidValue"));
    let mut typed = okta_user("y@example.com", None);
    typed["active"] = "sometimes".into();
    gw.post("/Users", &typed).await.assert_error(400, Some("invalidValue"));
    // A number where the schema says string: refused, not stored as text.
    let mut numeric = okta_user("n@example.com", None);
    numeric["userName"] = 7.into();
    gw.post("/Users", &numeric).await.assert_error(400, Some("invalidValue"));
    gw.patch(&user, json!([{"op": "replace", "path": "title", "value": 42}]))
        .await
        .assert_error(400, Some("invalidValue"));
    // A value the mapping requires (name.familyName, as person needs sn): 400, and no entry.
    // (tests/it/rfc_details.rs has the directory's own refusal, without `required`.)
    let mut no_sn = okta_user("z@example.com", None);
    no_sn["name"] = json!({"givenName": "Z"});
    let refused = gw.post("/Users", &no_sn).await;
    refused.assert_error(400, Some("invalidValue"));
    assert!(refused.body["detail"].as_str().unwrap().contains("familyName"), "{:#}", refused.body);
    // Duplicate userName.
    gw.post("/Users", &okta_user("KIM@example.com", None)).await.assert_error(409, Some("uniqueness"));
    // Read-only attributes.
    let mut put = okta_user("kim@example.com", None);
    put["id"] = "00000000-0000-4000-8000-000000000000".into();
    gw.put(&user, &put).await.assert_error(400, Some("mutability"));
    gw.patch(&user, json!([{"op": "replace", "path": "id", "value": "other"}]))
        .await
        .assert_error(400, Some("mutability"));
    gw.patch(&user, json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]))
        .await
        .assert_error(400, Some("mutability"));
    // Bad PATCH operations.
    gw.patch(&user, json!([{"op": "move", "path": "title", "value": "x"}]))
        .await
        .assert_error(400, Some("invalidSyntax"));
    gw.patch(&user, json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]))
        .await
        .assert_error(400, Some("invalidPath"));
    gw.patch(&user, json!([{"op": "remove"}])).await.assert_error(400, Some("noTarget"));
    gw.patch(&user, json!([{"op": "add", "path": "title"}])).await.assert_error(400, Some("invalidValue"));
    // A failing operation after a good one: nothing of the request is applied.
    gw.patch(
        &user,
        json!([{"op": "replace", "path": "title", "value": "Boss"}, {"op": "replace", "path": "id", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    // Filters.
    // Ordering on strings is no longer refused: the gateway checks it (tests/it/query.rs).
    for bad in [
        r#"userName eq"#,
        r#"userName xx "a""#,
        r#"(userName eq "a""#,
        r#"nickName eq "a""#,
        r#"id gt "m""#,
        r#"active gt false"#,
        r#"meta.created co "2026""#,
        r#"emails[type eq "work"] and title lt "m" and title[value eq "x"]"#,
    ] {
        gw.get(&format!("/Users?filter={}", q(bad))).await.assert_error(400, Some("invalidFilter"));
    }
    gw.get(&format!("/Users?filter={}", q(r#"userName gt "m""#))).await.body["totalResults"].as_u64().unwrap();
    gw.get("/Users?count=many").await.assert_error(400, Some("invalidValue"));
    for bad in ["sortOrder=sideways&sortBy=userName", "sortBy=emails%5Btype%20eq%20%22work%22%5D", "sortBy=1"] {
        gw.get(&format!("/Users?{bad}")).await.assert_error(400, Some("invalidValue"));
    }
    // Unknown ids: well-formed, malformed, hostile.
    for unknown in ["00000000-0000-4000-8000-000000000000", "nope", "%2A%29%28uid%3D%2A"] {
        gw.get(&format!("/Users/{unknown}")).await.assert_error(404, None);
        gw.put(&format!("/Users/{unknown}"), &okta_user("kim@example.com", None)).await.assert_error(404, None);
        gw.delete(&format!("/Users/{unknown}")).await.assert_error(404, None);
    }
    // Oversized body (limit 1 MiB), with and without a Content-Length the server can trust.
    let mut huge = okta_user("huge@example.com", None);
    huge["title"] = "x".repeat(2 * 1024 * 1024).into();
    gw.post("/Users", &huge).await.assert_error(413, None);
    // Credentials.
    for auth in ["", "Bearer wrong-token", "Basic a2ltOktpbS1wdy0x", &format!("Token {TOKEN}")] {
        let a = gw.call("POST", "/Users", Some(&okta_user("intruder@example.com", None)), Some(auth)).await;
        a.assert_error(401, None);
        assert_eq!(a.header("www-authenticate"), Some("Bearer realm=\"scim-gateway\""));
        assert!(!a.body.to_string().contains(TOKEN));
    }
    // Unknown endpoints and methods.
    gw.get("/Widgets").await.assert_error(404, None);
    gw.get("/Users/x/y").await.assert_error(404, None);
    gw.call("PATCH", "/Users", None, None).await.assert_error(405, None);

    assert_eq!(snapshot(&slapd).await, before, "bad requests must not change the directory");
    gw.stop().await;
}

#[tokio::test]
async fn directory_down_is_503_with_retry_after() {
    let slapd = Slapd::start();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gw = TestGateway::start_with(&slapd, |t| t.replace(&slapd.url, &format!("ldap://127.0.0.1:{closed}"))).await;
    let started = std::time::Instant::now();
    let a = gw.get("/Users?count=1").await;
    a.assert_error(503, None);
    assert_eq!(a.header("retry-after"), Some("5"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "an answer, not a hang");
    gw.post("/Users", &okta_user("later@example.com", None)).await.assert_error(503, None);
    // Health does not depend on the directory.
    let health = gw.call("GET", &format!("{}/healthz", gw.origin()), None, Some("")).await;
    assert_eq!(health.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn oversized_chunked_body_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let addr = gw.origin().trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    // Up to 2 MiB in chunks; the server may answer and close before all of it is sent.
    for _ in 0..32 {
        let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.clone(), b"\r\n".to_vec()].concat();
        if s.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("urn:ietf:params:scim:api:messages:2.0:Error"));
    gw.stop().await;
}

#[tokio::test]
async fn strict_mapping_refuses_unmapped_attributes() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| t.replacen("strict = false", "strict = true", 1)).await;
    // Okta sends `locale`, which the shipped mapping does not store.
    let refused = gw.post("/Users", &okta_user("strict@example.com", None)).await;
    refused.assert_error(400, Some("invalidValue"));
    assert!(refused.body["detail"].as_str().unwrap().contains("locale"), "{:#}", refused.body);
    assert!(slapd.entry(&format!("uid=strict@example.com,{PEOPLE}")).await.is_none());
    let mut body = okta_user("strict@example.com", None);
    body.as_object_mut().unwrap().remove("locale");
    let created = gw.post("/Users", &body).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let before = snapshot(&slapd).await;
    let ext = json!({"op": "add", "path": "urn:example:params:scim:schemas:extension:acme:2.0:User:costCenter", "value": "42"});
    for op in [json!({"op": "add", "path": "nickName", "value": "JD"}), ext] {
        gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "title", "value": "Boss"}, op]))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    assert_eq!(snapshot(&slapd).await, before);
    gw.stop().await;
}
