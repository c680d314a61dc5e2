//! Okta "Push Groups" and Entra group provisioning end to end, for each group flavour; the
//! group entries are read back directly after every step. The groupOfNames flows are shared
//! with the PostgreSQL store (tests/common/scenario.rs); the other flavours are LDAP's own.

use crate::common;

use common::gateway::{member_ids, TestGateway, PEOPLE};
use common::ldap_store::{GROUPS, STAND_IN};
use common::scenario::{self, create_users as users};
use common::Slapd;
use serde_json::{json, Value};

fn group(name: &str, members: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})
}

/// The values of `attr` on `dn`, lower-cased and sorted.
async fn values(slapd: &Slapd, dn: &str, attr: &str) -> Vec<String> {
    let entry = slapd.entry(dn).await.unwrap_or_else(|| panic!("{dn} missing"));
    let mut v: Vec<String> =
        entry.attrs.get(attr).cloned().unwrap_or_default().iter().map(|s| s.to_lowercase()).collect();
    v.sort();
    v
}

fn user_dn(name: &str) -> String {
    format!("uid={name}@example.com,{PEOPLE}")
}

#[tokio::test]
async fn okta_push_groups_with_group_of_names() {
    scenario::okta_push_groups(&Slapd::start()).await;
}

#[tokio::test]
async fn entra_group_flows_and_nested_groups() {
    scenario::entra_group_flows(&Slapd::start()).await;
}

#[tokio::test]
async fn group_of_unique_names() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace(r#"filter = "(objectClass=groupOfNames)""#, r#"filter = "(objectClass=groupOfUniqueNames)""#)
            .replace(r#"object_classes = ["top", "groupOfNames"]"#, r#"object_classes = ["top", "groupOfUniqueNames"]"#)
            .replace(r#"flavour = "groupOfNames""#, r#"flavour = "groupOfUniqueNames""#)
            .replace(r#"user_groups = "member_of""#, r#"user_groups = "search""#)
    })
    .await;
    let ids = users(&gw, &["fay", "gus"]).await;
    let created = gw.post("/Groups", &group("Ops", json!([{"value": ids[0]}, {"value": ids[1]}]))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let dn = format!("cn=Ops,{GROUPS}");
    assert_eq!(values(&slapd, &dn, "uniqueMember").await, [user_dn("fay"), user_dn("gus")]);
    let path = format!("/Groups/{}", created.body["id"].as_str().unwrap());
    gw.patch(&path, json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}])).await;
    gw.patch(&path, json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])}])).await;
    assert_eq!(values(&slapd, &dn, "uniqueMember").await, [STAND_IN]);
    let user = gw.get(&format!("/Users/{}", ids[0])).await;
    assert!(user.body.get("groups").is_none());
    gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": ids[0]}]}])).await;
    assert_eq!(gw.get(&format!("/Users/{}", ids[0])).await.body["groups"][0]["display"], "Ops", "found by search");
    gw.stop().await;
}

#[tokio::test]
async fn posix_groups_with_member_uid_and_gid_allocation() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace(r#"filter = "(objectClass=groupOfNames)""#, r#"filter = "(objectClass=posixGroup)""#)
            .replace(r#"object_classes = ["top", "groupOfNames"]"#, r#"object_classes = ["top", "posixGroup"]"#)
            .replace(
                r#"members = { flavour = "groupOfNames", empty_member = "cn=empty-group,ou=groups,dc=example,dc=test", user_groups = "member_of" }"#,
                r#"members = { flavour = "posixGroup", user_groups = "search", remove_deleted_users = true }
allocate = { attribute = "gidNumber", range = [5000, 5001] }"#,
            )
    })
    .await;
    let ids = users(&gw, &["hal", "ivy"]).await;
    let a = gw.post("/Groups", &group("devs", json!([{"value": ids[0]}]))).await;
    assert_eq!(a.status, 201, "{:#}", a.body);
    let b = gw.post("/Groups", &group("admins", json!([]))).await;
    assert_eq!(b.status, 201, "{:#}", b.body);
    assert_eq!(values(&slapd, &format!("cn=devs,{GROUPS}"), "gidNumber").await, ["5000"]);
    assert_eq!(values(&slapd, &format!("cn=admins,{GROUPS}"), "gidNumber").await, ["5001"]);
    assert_eq!(values(&slapd, &format!("cn=devs,{GROUPS}"), "memberUid").await, ["hal@example.com"]);
    assert!(values(&slapd, &format!("cn=admins,{GROUPS}"), "memberUid").await.is_empty(), "posixGroup may be empty");
    // The range is used up: a clear server-side error, nothing created.
    let full = gw.post("/Groups", &group("more", json!([]))).await;
    full.assert_error(500, None);
    assert!(full.body["detail"].as_str().unwrap().contains("range [5000, 5001] for gidNumber is used up"));
    assert!(slapd.entry(&format!("cn=more,{GROUPS}")).await.is_none());

    let path = format!("/Groups/{}", b.body["id"].as_str().unwrap());
    let added = gw
        .patch(
            &format!("{path}?attributes=members"),
            json!([{"op": "add", "path": "members", "value": [{"value": ids[0]}, {"value": ids[1]}]}]),
        )
        .await;
    assert_eq!(member_ids(&added.body).len(), 2, "{:#}", added.body);
    assert_eq!(
        values(&slapd, &format!("cn=admins,{GROUPS}"), "memberUid").await,
        ["hal@example.com", "ivy@example.com"]
    );
    let hal = gw.get(&format!("/Users/{}", ids[0])).await;
    assert_eq!(hal.body["groups"].as_array().unwrap().len(), 2, "{:#}", hal.body);
    // A group cannot be a posixGroup member.
    gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": a.body["id"]}]}]))
        .await
        .assert_error(400, Some("invalidValue"));
    // Deleting a user removes its memberUid everywhere (refint does not follow memberUid).
    assert_eq!(gw.delete(&format!("/Users/{}", ids[0])).await.status, 204);
    assert!(values(&slapd, &format!("cn=devs,{GROUPS}"), "memberUid").await.is_empty());
    assert_eq!(values(&slapd, &format!("cn=admins,{GROUPS}"), "memberUid").await, ["ivy@example.com"]);
    gw.stop().await;
}
