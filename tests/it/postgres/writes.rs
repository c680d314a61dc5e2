//! Every write in one transaction: a PATCH whose later operation fails, a group created with
//! members one of which is refused, a group PUT that cannot finish all leave every table as it
//! was (read with SQL before and after). Uniqueness from the database's unique index is 409;
//! passwords are hashed into the configured column, or refused when none is configured; bad
//! input never reaches the tables.

use serde_json::{json, Value};

use crate::common::gateway::{okta_user, TestGateway};
use crate::common::postgres::Postgres;
use crate::common::postgres_store::{argon2_verifies, config};
use crate::common::scenario::create_users;

fn group(name: &str, members: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})
}

fn patch(ops: Value) -> Vec<u8> {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}).to_string().into_bytes()
}

const NOBODY: &str = "00000000-0000-4000-8000-000000000000";

/// A user PATCH of several operations whose last one the database refuses (a userName taken
/// in another case: the unique index) changes nothing, not even the operations before it.
#[tokio::test]
async fn user_patch_is_all_or_nothing() {
    let pg = Postgres::start();
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let ids = create_users(&gw, &["amy", "ben"]).await;
    let before = pg.snapshot().await;
    let ops = json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "replace", "path": "active", "value": false},
        {"op": "replace", "path": "userName", "value": "BEN@example.com"},
    ]);
    gw.patch(&format!("/Users/{}", ids[0]), ops).await.assert_error(409, Some("uniqueness"));
    assert_eq!(pg.snapshot().await, before, "no operation of the refused PATCH landed");

    // An operation the gateway refuses before it writes (an immutable attribute) is 400, also
    // after valid ones.
    let ops = json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "id", "value": NOBODY},
    ]);
    let refused = gw.patch(&format!("/Users/{}", ids[0]), ops).await;
    assert_eq!(refused.status, 400, "{:#}", refused.body);
    assert_eq!(pg.snapshot().await, before);

    // The same operations without the bad one land together.
    let ops = json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "replace", "path": "active", "value": false},
    ]);
    assert_eq!(gw.patch(&format!("/Users/{}", ids[0]), ops).await.status, 200);
    let row = pg.row("SELECT display_name, title, active FROM users WHERE id::text = $1", &[&ids[0]]).await.unwrap();
    assert_eq!(row, json!({"display_name": "Changed", "title": "Boss", "active": false}));
    gw.stop().await;
}

/// A value the table itself refuses (an app's CHECK constraint): 400 invalidValue, in the
/// database's terms (the constraint's name, never an LDAP result code), and nothing lands.
#[tokio::test]
async fn a_value_the_table_refuses_is_400_and_changes_nothing() {
    let pg = Postgres::start();
    pg.execute("ALTER TABLE users ADD CONSTRAINT title_short CHECK (length(title) <= 20)").await;
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let ids = create_users(&gw, &["amy"]).await;
    let before = pg.snapshot().await;
    let ops = json!([
        {"op": "replace", "path": "active", "value": false},
        {"op": "replace", "path": "title", "value": "Senior Vice President of Everything"},
    ]);
    let refused = gw.patch(&format!("/Users/{}", ids[0]), ops).await;
    refused.assert_error(400, Some("invalidValue"));
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("title_short"), "{detail}");
    assert!(!detail.contains("LDAP"), "{detail}");
    assert_eq!(pg.snapshot().await, before, "neither operation landed");
    gw.stop().await;
}

/// A group PATCH that adds a member and then renames onto a taken name: neither lands.
#[tokio::test]
async fn group_patch_is_all_or_nothing() {
    let pg = Postgres::start();
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let ids = create_users(&gw, &["amy", "ben", "cal"]).await;
    let sales = gw.post("/Groups", &group("Sales", json!([{"value": ids[0]}]))).await;
    assert_eq!(sales.status, 201, "{:#}", sales.body);
    assert_eq!(gw.post("/Groups", &group("Ops", json!([]))).await.status, 201);
    let path = format!("/Groups/{}", sales.body["id"].as_str().unwrap());
    let before = pg.snapshot().await;

    let ops = json!([
        {"op": "add", "path": "members", "value": [{"value": ids[1]}]},
        {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
        {"op": "replace", "path": "displayName", "value": "OPS"},
    ]);
    gw.patch(&path, ops).await.assert_error(409, Some("uniqueness"));
    assert_eq!(pg.snapshot().await, before, "members and name as they were");

    // Members added, then one that does not exist: 400, and the first is not added either.
    let ops = json!([
        {"op": "add", "path": "members", "value": [{"value": ids[1]}]},
        {"op": "add", "path": "members", "value": [{"value": ids[2]}, {"value": NOBODY}]},
    ]);
    gw.patch(&path, ops).await.assert_error(400, Some("invalidValue"));
    assert_eq!(pg.snapshot().await, before);
    gw.stop().await;
}

/// A group created with its members is one transaction: an unknown member leaves no group row
/// and no membership row; a good create writes the group and every membership.
#[tokio::test]
async fn group_create_with_members_is_all_or_nothing() {
    let pg = Postgres::start();
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let ids = create_users(&gw, &["amy", "ben"]).await;
    let before = pg.snapshot().await;
    let bad =
        gw.post("/Groups", &group("Sales", json!([{"value": ids[0]}, {"value": ids[1]}, {"value": NOBODY}]))).await;
    bad.assert_error(400, Some("invalidValue"));
    assert_eq!(pg.snapshot().await, before, "no group and no membership row");

    let good = gw.post("/Groups", &group("Sales", json!([{"value": ids[0]}, {"value": ids[1]}]))).await;
    assert_eq!(good.status, 201, "{:#}", good.body);
    let gid = good.body["id"].as_str().unwrap();
    let rows =
        pg.rows("SELECT user_id::text AS u FROM memberships WHERE group_id::text = $1 ORDER BY 1", &[&gid]).await;
    let mut want: Vec<Value> = ids.iter().map(|i| json!({"u": i})).collect();
    want.sort_by_key(|v| v["u"].as_str().unwrap().to_owned());
    assert_eq!(rows, want);

    // A duplicate name (other case) is the unique index's 409; nothing is added.
    let before = pg.snapshot().await;
    gw.post("/Groups", &group("SALES", json!([{"value": ids[0]}]))).await.assert_error(409, Some("uniqueness"));
    assert_eq!(pg.snapshot().await, before);
    gw.stop().await;
}

/// A group PUT replaces name and members in one transaction: a refused member or a taken
/// name leaves both as they were.
#[tokio::test]
async fn group_put_is_all_or_nothing() {
    let pg = Postgres::start();
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let ids = create_users(&gw, &["amy", "ben", "cal"]).await;
    let sales = gw.post("/Groups", &group("Sales", json!([{"value": ids[0]}, {"value": ids[1]}]))).await;
    assert_eq!(gw.post("/Groups", &group("Ops", json!([]))).await.status, 201);
    let gid = sales.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{gid}");
    let before = pg.snapshot().await;

    let mut body = group("Sales EU", json!([{"value": ids[2]}, {"value": NOBODY}]));
    body["id"] = gid.clone().into();
    gw.put(&path, &body).await.assert_error(400, Some("invalidValue"));
    assert_eq!(pg.snapshot().await, before);

    let mut body = group("ops", json!([{"value": ids[2]}]));
    body["id"] = gid.clone().into();
    gw.put(&path, &body).await.assert_error(409, Some("uniqueness"));
    assert_eq!(pg.snapshot().await, before);

    let mut body = group("Sales EU", json!([{"value": ids[1]}, {"value": ids[2]}]));
    body["id"] = gid.clone().into();
    let put = gw.put(&path, &body).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    let row = pg
        .row(
            "SELECT g.display_name, array(SELECT m.user_id::text FROM memberships m WHERE m.group_id = g.id ORDER BY 1) AS members \
             FROM groups g WHERE g.id::text = $1",
            &[&gid],
        )
        .await
        .unwrap();
    let mut want = vec![ids[1].clone(), ids[2].clone()];
    want.sort();
    assert_eq!(row, json!({"display_name": "Sales EU", "members": want}));
    gw.stop().await;
}

/// The preset hashes passwords with argon2id into password_hash (checked with the argon2
/// crate, as the application would); without a password column a password is refused and no
/// row is written.
#[tokio::test]
async fn passwords_hashed_into_the_column_or_refused() {
    let pg = Postgres::start();
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let created = gw.post("/Users", &okta_user("pat@example.com", Some("Sup3r-secret!"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let row = pg.row("SELECT password_hash FROM users WHERE user_name = 'pat@example.com'", &[]).await.unwrap();
    let hash = row["password_hash"].as_str().expect("a hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(argon2_verifies(hash, "Sup3r-secret!"));
    assert!(!argon2_verifies(hash, "sup3r-secret!"));
    // Two users with the same password get different hashes (a salt each).
    gw.post("/Users", &okta_user("quinn@example.com", Some("Sup3r-secret!"))).await;
    let other = pg.row("SELECT password_hash FROM users WHERE user_name = 'quinn@example.com'", &[]).await.unwrap();
    assert_ne!(other["password_hash"], row["password_hash"]);
    gw.stop().await;

    // Without the password rule: refused, nothing written, the cleartext nowhere.
    let gw = TestGateway::from_text(config(&pg, None, |t| {
        let line = t.lines().find(|l| l.starts_with("password = {")).expect("the preset's password rule").to_owned();
        t.replace(&line, "")
    }))
    .await;
    let before = pg.snapshot().await;
    let refused = gw.post("/Users", &okta_user("rae@example.com", Some("An0ther-secret"))).await;
    assert_eq!(refused.status, 400, "{:#}", refused.body);
    assert!(!refused.body.to_string().contains("An0ther-secret"));
    let id = created.body["id"].as_str().unwrap();
    let push =
        gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"password": "An0ther-secret"}}])).await;
    assert_eq!(push.status, 400, "{:#}", push.body);
    assert_eq!(pg.snapshot().await, before);
    gw.stop().await;
}

/// Requests the gateway must refuse never reach the tables, and the answer says why.
#[tokio::test]
async fn bad_input_leaves_the_tables_unchanged() {
    let pg = Postgres::start();
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    let ids = create_users(&gw, &["amy"]).await;
    let sales = gw.post("/Groups", &group("Sales", json!([{"value": ids[0]}]))).await;
    let gid = sales.body["id"].as_str().unwrap().to_owned();
    let before = pg.snapshot().await;
    let user = format!("/Users/{}", ids[0]);
    let group_path = format!("/Groups/{gid}");
    let core = "urn:ietf:params:scim:schemas:core:2.0:User";
    let cases: Vec<(&str, &str, String, Vec<u8>)> = vec![
        ("not JSON", "POST", "/Users".into(), b"{\"userName\": ".to_vec()),
        ("no userName", "POST", "/Users".into(), json!({"schemas": [core]}).to_string().into_bytes()),
        ("NUL in a value", "POST", "/Users".into(), okta_user("nul\u{0}@example.com", None).to_string().into_bytes()),
        ("empty userName", "POST", "/Users".into(), okta_user("", None).to_string().into_bytes()),
        (
            "active not a boolean",
            "PATCH",
            user.clone(),
            patch(json!([{"op": "replace", "path": "active", "value": "maybe"}])),
        ),
        ("unknown op", "PATCH", user.clone(), patch(json!([{"op": "explode", "path": "title", "value": "x"}]))),
        ("bad path", "PATCH", user.clone(), patch(json!([{"op": "replace", "path": "title[", "value": "x"}]))),
        ("remove userName", "PATCH", user.clone(), patch(json!([{"op": "remove", "path": "userName"}]))),
        (
            "member not a uuid",
            "PATCH",
            group_path.clone(),
            patch(json!([{"op": "add", "path": "members", "value": [{"value": "'; DROP TABLE users; --"}]}])),
        ),
        ("id not a uuid", "GET", "/Users/'%20OR%201=1".into(), Vec::new()),
        ("bad filter", "GET", "/Users?filter=userName%20eq".into(), Vec::new()),
        ("unmapped filter attribute", "GET", "/Users?filter=nickName%20eq%20%22x%22".into(), Vec::new()),
        (
            "PUT without userName",
            "PUT",
            user.clone(),
            json!({"schemas": [core], "id": ids[0]}).to_string().into_bytes(),
        ),
        ("delete unknown", "DELETE", format!("/Users/{NOBODY}"), Vec::new()),
    ];
    for (what, method, path, body) in cases {
        let answer = gw.raw(method, &path, body, None, &[]).await;
        let status = answer.status.as_u16();
        assert!((400..500).contains(&status), "{what}: {status} {:#}", answer.body);
        assert_eq!(answer.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{what}");
        assert_eq!(pg.snapshot().await, before, "{what} changed a table");
    }
    gw.stop().await;
}
