//! If-Match on a table is decided by the UPDATE itself (the row's version in its WHERE): a
//! write made with a version that changed since is refused with 412 and writes nothing.

use serde_json::json;

use crate::common::gateway::{okta_user, TestGateway};
use crate::common::postgres::Postgres;
use crate::common::postgres_store::config;

#[tokio::test]
async fn a_stale_version_is_412_and_changes_nothing() {
    let pg = Postgres::start();
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let created = gw.post("/Users", &okta_user("ann@example.com", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let path = format!("/Users/{}", created.body["id"].as_str().unwrap());
    let etag = created.headers["etag"].to_str().unwrap().to_owned();
    let patch = |title: &str| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "title", "value": title}]})
        .to_string()
        .into_bytes()
    };

    let first = gw.raw("PATCH", &path, patch("First"), None, &[("if-match", &etag)]).await;
    assert_eq!(first.status, 200, "{:#}", first.body);
    assert_ne!(first.headers["etag"].to_str().unwrap(), etag, "every write moves the version");

    let before = pg.snapshot().await;
    let stale = gw.raw("PATCH", &path, patch("Second"), None, &[("if-match", &etag)]).await;
    assert_eq!(stale.status, 412, "{:#}", stale.body);
    assert_eq!(pg.snapshot().await, before, "a refused write changes no row");

    let gone =
        gw.raw("PATCH", "/Users/00000000-0000-0000-0000-000000000000", patch("x"), None, &[("if-match", &etag)]).await;
    assert_eq!(gone.status, 404, "{:#}", gone.body);
}
