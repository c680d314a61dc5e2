//! Okta "Push Groups" and Entra group provisioning end to end, for each group flavour; the
//! group entries are read back directly after every step.

use crate::common;

use common::gateway::{member_ids, okta_user, q, TestGateway, PEOPLE};
use common::Slapd;
use serde_json::{json, Value};

const GROUPS: &str = "ou=groups,dc=example,dc=test";
const STAND_IN: &str = "cn=empty-group,ou=groups,dc=example,dc=test";

fn group(name: &str, members: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})
}

/// Creates users and returns their ids.
async fn users(gw: &TestGateway, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for n in names {
        let a = gw.post("/Users", &okta_user(&format!("{n}@example.com"), None)).await;
        assert_eq!(a.status, 201, "{:#}", a.body);
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    ids
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
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let ids = users(&gw, &["amy", "ben", "cal"]).await;
    let (amy, ben, cal) = (&ids[0], &ids[1], &ids[2]);

    let none = gw.get(&format!("/Groups?filter={}&startIndex=1&count=100", q(r#"displayName eq "Engineering""#))).await;
    assert_eq!(none.body["totalResults"], 0);
    let created = gw.post("/Groups", &group("Engineering", json!([]))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{id}");
    assert_eq!(created.body["members"], json!([]));
    assert_eq!(created.body["meta"]["resourceType"], "Group");
    assert_eq!(created.header("location"), Some(format!("{}/Groups/{id}", gw.base).as_str()));
    let dn = format!("cn=Engineering,{GROUPS}");
    assert_eq!(values(&slapd, &dn, "member").await, [STAND_IN], "an empty groupOfNames holds the stand-in");
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["entryUUID"], [id.as_str()]);

    // Okta adds members with a members array (display included).
    let added = gw
        .patch(&format!("{path}?attributes=members"), json!([{"op": "add", "path": "members", "value": [{"value": amy, "display": "amy@example.com"}, {"value": ben}]}]))
        .await;
    assert_eq!(added.status, 200, "{:#}", added.body);
    assert_eq!(member_ids(&added.body), {
        let mut v = vec![amy.clone(), ben.clone()];
        v.sort();
        v
    });
    assert_eq!(added.body["members"][0]["type"], "User");
    assert_eq!(values(&slapd, &dn, "member").await, [user_dn("amy"), user_dn("ben")], "the stand-in left");
    // memberOf on the user, and `groups` in SCIM.
    assert_eq!(values(&slapd, &user_dn("amy"), "memberOf").await, [dn.to_lowercase()]);
    let amy_user = gw.get(&format!("/Users/{amy}")).await;
    assert_eq!(
        amy_user.body["groups"],
        json!([{"value": id, "type": "direct", "display": "Engineering", "$ref": format!("{}/Groups/{id}", gw.base)}])
    );

    // Twice is not an error; removing an absent member is not an error either.
    // Without attributes asked for, a group PATCH answers 204: no member list is read back.
    assert_eq!(gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": amy}]}])).await.status, 204);
    let removed = gw.patch(&path, json!([{"op": "remove", "path": format!("members[value eq \"{amy}\"]")}])).await;
    assert_eq!(removed.status, 204, "{:#}", removed.body);
    assert_eq!(values(&slapd, &dn, "member").await, [user_dn("ben")]);
    assert_eq!(
        gw.patch(&path, json!([{"op": "remove", "path": format!("members[value eq \"{amy}\"]")}])).await.status,
        204
    );

    // An unknown member is refused and changes nothing.
    let unknown = gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": cal}, {"value": "00000000-0000-4000-8000-000000000000"}]}])).await;
    unknown.assert_error(400, Some("invalidValue"));
    assert_eq!(values(&slapd, &dn, "member").await, [user_dn("ben")]);

    // Removing the last member brings the stand-in back; SCIM never shows it.
    let emptied = gw
        .patch(
            &format!("{path}?attributes=members"),
            json!([{"op": "remove", "path": format!("members[value eq \"{ben}\"]")}]),
        )
        .await;
    assert_eq!(emptied.status, 200, "{:#}", emptied.body);
    assert_eq!(emptied.body["members"], json!([]));
    assert_eq!(values(&slapd, &dn, "member").await, [STAND_IN]);

    // Rename, Okta's way: value object with the id; the entry is renamed in place.
    let renamed = gw
        .patch(
            &format!("{path}?excludedAttributes=members"),
            json!([{"op": "replace", "value": {"id": id, "displayName": "Engineering EU"}}]),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:#}", renamed.body);
    assert_eq!(renamed.body["displayName"], "Engineering EU");
    assert!(slapd.entry(&dn).await.is_none());
    let dn = format!("cn=Engineering EU,{GROUPS}");
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["entryUUID"], [id.as_str()]);

    // PUT with the whole list applies the difference.
    gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": amy}, {"value": ben}]}])).await;
    let mut body = group("Engineering EU", json!([{"value": ben}, {"value": cal}]));
    body["id"] = id.clone().into();
    let put = gw.put(&path, &body).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    assert_eq!(values(&slapd, &dn, "member").await, [user_dn("ben"), user_dn("cal")]);

    // Reads that leave members out; filters on displayName and on members.
    let lean = gw.get(&format!("{path}?excludedAttributes=members")).await;
    assert!(lean.body.get("members").is_none());
    assert_eq!(lean.body["displayName"], "Engineering EU");
    let named = gw.get(&format!("{path}?attributes=displayName")).await;
    assert_eq!(
        named.body,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": id, "displayName": "Engineering EU"})
    );
    let by_name =
        gw.get(&format!("/Groups?excludedAttributes=members&filter={}", q(r#"displayName eq "Engineering EU""#))).await;
    assert_eq!(by_name.body["totalResults"], 1);
    assert!(by_name.body["Resources"][0].get("members").is_none());
    let by_member = gw.get(&format!("/Groups?filter={}", q(&format!(r#"members[value eq "{cal}"]"#)))).await;
    assert_eq!(by_member.body["totalResults"], 1, "{:#}", by_member.body);
    let not_member = gw.get(&format!("/Groups?filter={}", q(&format!(r#"members.value eq "{amy}""#)))).await;
    assert_eq!(not_member.body["totalResults"], 0);

    // A duplicate name conflicts; DELETE removes the group (and memberOf with it).
    gw.post("/Groups", &group("Engineering EU", json!([]))).await.assert_error(409, Some("uniqueness"));
    assert_eq!(gw.delete(&path).await.status, 204);
    assert!(slapd.entry(&dn).await.is_none());
    gw.get(&path).await.assert_error(404, None);
    assert!(values(&slapd, &user_dn("ben"), "memberOf").await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn entra_group_flows_and_nested_groups() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let ids = users(&gw, &["dee", "eve"]).await;
    let (dee, eve) = (&ids[0], &ids[1]);
    let created = gw.post("/Groups", &group("Sales", json!([{"value": dee}]))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{id}");
    let dn = format!("cn=Sales,{GROUPS}");
    assert_eq!(values(&slapd, &dn, "member").await, [user_dn("dee")]);

    let lookup = gw.get(&format!("/Groups?excludedAttributes=members&filter={}", q(r#"displayName eq "Sales""#))).await;
    assert_eq!(lookup.body["Resources"][0]["id"], id.as_str());

    assert_eq!(gw.patch(&path, json!([{"op": "Add", "path": "members", "value": [{"value": eve}]}])).await.status, 204);
    assert_eq!(values(&slapd, &dn, "member").await, [user_dn("dee"), user_dn("eve")]);
    let r = gw.patch(&path, json!([{"op": "Remove", "path": "members", "value": [{"value": dee}]}])).await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    assert_eq!(values(&slapd, &dn, "member").await, [user_dn("eve")]);

    // A group as a member of another.
    let parent = gw.post("/Groups", &group("All", json!([{"value": id, "type": "Group"}, {"value": dee}]))).await;
    assert_eq!(parent.status, 201, "{:#}", parent.body);
    let kinds: Vec<&str> =
        parent.body["members"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"Group") && kinds.contains(&"User"), "{kinds:?}");
    assert_eq!(values(&slapd, &format!("cn=All,{GROUPS}"), "member").await, [dn.to_lowercase(), user_dn("dee")]);

    // Replace the whole list; remove all.
    let r = gw
        .patch(
            &format!("{path}?attributes=members"),
            json!([{"op": "replace", "path": "members", "value": [{"value": dee}]}]),
        )
        .await;
    assert_eq!(member_ids(&r.body), std::slice::from_ref(dee));
    assert_eq!(values(&slapd, &dn, "member").await, [user_dn("dee")]);
    let r = gw.patch(&format!("{path}?attributes=members"), json!([{"op": "remove", "path": "members"}])).await;
    assert_eq!(r.body["members"], json!([]));
    assert_eq!(values(&slapd, &dn, "member").await, [STAND_IN]);

    // Deleting a user takes it out of its groups (refint).
    gw.delete(&format!("/Users/{dee}")).await;
    assert_eq!(values(&slapd, &format!("cn=All,{GROUPS}"), "member").await, [dn.to_lowercase()]);
    gw.stop().await;
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
