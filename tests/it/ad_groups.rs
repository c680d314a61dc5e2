//! Okta "Push Groups" and Entra group provisioning against a real Samba AD DC through the
//! shipped preset: `group` entries with groupType, `member` DNs, memberOf on users, and a
//! group of more than 1,500 members read completely through range retrieval.

use crate::common;

use std::collections::HashSet;

use common::gateway::{member_ids, okta_user, q, TestGateway};
use common::samba::Samba;
use serde_json::{json, Value};

fn group(name: &str, members: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})
}

/// The userName of the user called `n` here. The `it` binary shares one Samba DC between
/// modules, and userPrincipalName and sAMAccountName are unique across the domain: the
/// `.grp` keeps these users apart from ad_users' amy, ben and eve.
fn user_name(n: &str) -> String {
    format!("{n}.grp@example.test")
}

/// Creates users (with passwords, so enabled) and returns their ids.
async fn users(gw: &TestGateway, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for n in names {
        let a = gw.post("/Users", &okta_user(&user_name(n), Some("Group-pass-1"))).await;
        assert_eq!(a.status, 201, "{:#}", a.body);
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// The values of `attr` on `dn`, lower-cased and sorted (empty when the entry has none).
async fn values(samba: &Samba, dn: &str, attr: &str) -> Vec<String> {
    let e = samba.entry(dn, &[attr]).await.unwrap_or_else(|| panic!("{dn} missing"));
    let mut v: Vec<String> = e.attrs.get(attr).cloned().unwrap_or_default().iter().map(|s| s.to_lowercase()).collect();
    v.sort();
    v
}

fn guid(samba_entry: &ldap3::SearchEntry) -> String {
    let raw = match samba_entry.bin_attrs.get("objectGUID") {
        Some(v) => v[0].clone(),
        None => samba_entry.attrs["objectGUID"][0].clone().into_bytes(),
    };
    uuid::Uuid::from_bytes_le(raw.try_into().unwrap()).to_string()
}

#[tokio::test]
async fn okta_push_groups() {
    let samba = Samba::shared();
    let ou = samba.ou("okta-groups").await;
    let gw = TestGateway::from_text(samba.preset(&ou)).await;
    let ids = users(&gw, &["amy", "ben", "cal"]).await;
    let (amy, ben, cal) = (&ids[0], &ids[1], &ids[2]);
    let user_dn = |n: &str| format!("cn={},{ou}", user_name(n)).to_lowercase();

    let none = gw.get(&format!("/Groups?filter={}&startIndex=1&count=100", q(r#"displayName eq "Engineering""#))).await;
    assert_eq!(none.body["totalResults"], 0, "{:#}", none.body);
    let created = gw.post("/Groups", &group("Engineering", json!([]))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{id}");
    assert_eq!(created.body["members"], json!([]));
    let dn = format!("CN=Engineering,{ou}");
    let e = samba.entry(&dn, &["groupType", "sAMAccountName", "objectGUID", "member"]).await.expect("AD group");
    assert_eq!(e.attrs["groupType"], ["-2147483646"], "global security group");
    assert_eq!(e.attrs["sAMAccountName"], ["Engineering"]);
    assert_eq!(guid(&e), id);
    assert!(!e.attrs.contains_key("member"), "an AD group may be empty: no stand-in");

    let added = gw
        .patch(
            &format!("{path}?attributes=members"),
            json!([{"op": "add", "path": "members", "value": [{"value": amy, "display": "amy"}, {"value": ben}]}]),
        )
        .await;
    assert_eq!(added.status, 200, "{:#}", added.body);
    assert_eq!(member_ids(&added.body), {
        let mut v = vec![amy.clone(), ben.clone()];
        v.sort();
        v
    });
    assert_eq!(values(samba, &dn, "member").await, [user_dn("amy"), user_dn("ben")]);
    // AD computes memberOf; the gateway shows it as the user's groups.
    assert_eq!(values(samba, &user_dn("amy"), "memberOf").await, [dn.to_lowercase()]);
    let amy_user = gw.get(&format!("/Users/{amy}")).await;
    assert_eq!(
        amy_user.body["groups"],
        json!([{"value": id, "type": "direct", "display": "Engineering", "$ref": format!("{}/Groups/{id}", gw.base)}])
    );

    // Adding twice and removing an absent member are not errors.
    assert_eq!(gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": amy}]}])).await.status, 204);
    let removed = gw.patch(&path, json!([{"op": "remove", "path": format!("members[value eq \"{amy}\"]")}])).await;
    assert_eq!(removed.status, 204, "{:#}", removed.body);
    assert_eq!(values(samba, &dn, "member").await, [user_dn("ben")]);
    let again = gw.patch(&path, json!([{"op": "remove", "path": format!("members[value eq \"{amy}\"]")}])).await;
    assert_eq!(again.status, 204, "{:#}", again.body);
    // An unknown member (a GUID that names nothing) is refused; nothing changes.
    let unknown = gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": cal}, {"value": "00000000-0000-4000-8000-000000000000"}]}])).await;
    unknown.assert_error(400, Some("invalidValue"));
    assert_eq!(values(samba, &dn, "member").await, [user_dn("ben")]);

    // Rename: the entry moves, objectGUID stays.
    let renamed = gw
        .patch(
            &format!("{path}?excludedAttributes=members"),
            json!([{"op": "replace", "value": {"id": id, "displayName": "Engineering EU"}}]),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:#}", renamed.body);
    assert!(samba.entry(&dn, &["cn"]).await.is_none());
    let dn = format!("CN=Engineering EU,{ou}");
    let e = samba.entry(&dn, &["objectGUID", "sAMAccountName"]).await.expect("renamed group");
    assert_eq!(guid(&e), id);
    assert_eq!(e.attrs["sAMAccountName"], ["Engineering EU"]);

    // PUT with the whole list applies the difference.
    let mut body = group("Engineering EU", json!([{"value": ben}, {"value": cal}]));
    body["id"] = id.clone().into();
    let put = gw.put(&path, &body).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    assert_eq!(values(samba, &dn, "member").await, [user_dn("ben"), user_dn("cal")]);
    let by_member = gw.get(&format!("/Groups?filter={}", q(&format!(r#"members[value eq "{cal}"]"#)))).await;
    assert_eq!(by_member.body["totalResults"], 1, "{:#}", by_member.body);
    let by_name =
        gw.get(&format!("/Groups?excludedAttributes=members&filter={}", q(r#"displayName eq "Engineering EU""#))).await;
    assert_eq!(by_name.body["Resources"][0]["id"], id.as_str());

    // A duplicate name conflicts; DELETE removes the group and AD drops memberOf.
    gw.post("/Groups", &group("Engineering EU", json!([]))).await.assert_error(409, Some("uniqueness"));
    assert_eq!(gw.delete(&path).await.status, 204);
    assert!(samba.entry(&dn, &["cn"]).await.is_none());
    gw.get(&path).await.assert_error(404, None);
    assert!(values(samba, &user_dn("ben"), "memberOf").await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn entra_group_flows_nested_groups_and_group_types() {
    let samba = Samba::shared();
    let ou = samba.ou("entra-groups").await;
    let preset =
        samba.preset(&ou).replace(r#"group_type = "global_security""#, r#"group_type = "universal_distribution""#);
    let gw = TestGateway::from_text(preset).await;
    let ids = users(&gw, &["dee", "eve"]).await;
    let (dee, eve) = (&ids[0], &ids[1]);
    let user_dn = |n: &str| format!("cn={},{ou}", user_name(n)).to_lowercase();
    let created = gw.post("/Groups", &group("Sales/EMEA", json!([{"value": dee}]))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{id}");
    let dn = format!("CN=Sales/EMEA,{ou}");
    let e = samba.entry(&dn, &["groupType", "sAMAccountName"]).await.expect("AD group");
    assert_eq!(e.attrs["groupType"], ["8"], "universal distribution group");
    assert_eq!(e.attrs["sAMAccountName"], ["Sales_EMEA"], "characters AD refuses are replaced");
    assert_eq!(values(samba, &dn, "member").await, [user_dn("dee")]);

    assert_eq!(gw.patch(&path, json!([{"op": "Add", "path": "members", "value": [{"value": eve}]}])).await.status, 204);
    let r = gw.patch(&path, json!([{"op": "Remove", "path": "members", "value": [{"value": dee}]}])).await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    assert_eq!(values(samba, &dn, "member").await, [user_dn("eve")]);

    // A group as a member of another.
    let parent = gw.post("/Groups", &group("All", json!([{"value": id, "type": "Group"}, {"value": dee}]))).await;
    assert_eq!(parent.status, 201, "{:#}", parent.body);
    let kinds: HashSet<&str> =
        parent.body["members"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, HashSet::from(["Group", "User"]));

    // Replace the whole list; remove all (the group is left empty).
    let r = gw
        .patch(
            &format!("{path}?attributes=members"),
            json!([{"op": "replace", "path": "members", "value": [{"value": dee}]}]),
        )
        .await;
    assert_eq!(member_ids(&r.body), std::slice::from_ref(dee));
    let r = gw.patch(&format!("{path}?attributes=members"), json!([{"op": "remove", "path": "members"}])).await;
    assert_eq!(r.body["members"], json!([]), "{:#}", r.body);
    assert!(values(samba, &dn, "member").await.is_empty());

    // Deleting a user takes it out of its groups (AD's own link maintenance).
    assert_eq!(gw.delete(&format!("/Users/{dee}")).await.status, 204);
    assert_eq!(values(samba, &format!("CN=All,{ou}"), "member").await, [dn.to_lowercase()]);
    gw.stop().await;
}

#[tokio::test]
async fn a_group_larger_than_one_range_reads_completely() {
    const N: usize = 1600;
    let samba = Samba::shared();
    let ou = samba.ou("large").await;
    let started = std::time::Instant::now();
    let mut admin = samba.admin().await;
    let dns: Vec<String> = (0..N).map(|i| format!("CN=big{i:04}@example.test,{ou}")).collect();
    // Eight adds in flight on the one connection: the DC is never idle waiting for the next.
    let mut adding = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (mut ldap, ou) = (admin.clone(), ou.clone());
        adding.spawn(async move {
            for i in (lane..N).step_by(8) {
                let (cn, sam) = (format!("big{i:04}@example.test"), format!("big{i:04}"));
                let attrs = vec![
                    ("objectClass", HashSet::from(["top", "person", "organizationalPerson", "user"])),
                    ("sAMAccountName", HashSet::from([sam.as_str()])),
                    ("userPrincipalName", HashSet::from([cn.as_str()])),
                ];
                ldap.add(&format!("CN={cn},{ou}"), attrs).await.unwrap().success().unwrap();
            }
        });
    }
    while let Some(done) = adding.join_next().await {
        done.expect("adds");
    }
    let group_dn = format!("CN=Everyone Big,{ou}");
    let members: HashSet<&str> = dns.iter().map(String::as_str).collect();
    let attrs = vec![
        ("objectClass", HashSet::from(["top", "group"])),
        ("sAMAccountName", HashSet::from(["everyone-big"])),
        ("member", members),
    ];
    admin.add(&group_dn, attrs).await.unwrap().success().unwrap();
    eprintln!("ad_groups: {N} users and a {N}-member group added in {:.1} s", started.elapsed().as_secs_f64());

    // Samba answers explicit ranges (Windows imposes them at 1500).
    let (found, _) = admin
        .search(&group_dn, ldap3::Scope::Base, "(objectClass=*)", vec!["member;range=0-99"])
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = ldap3::SearchEntry::construct(found.into_iter().next().unwrap());
    assert_eq!(e.attrs["member;range=0-99"].len(), 100, "{:?}", e.attrs.keys());

    // Through the gateway: ranges of 100 and of 1500 (AD's own), and no ranges at all.
    for range in [Some(100), Some(1500), None] {
        let mut text = samba.preset(&ou).replace("page_size = 1000", "page_size = 250");
        if let Some(r) = range {
            text = text.replace("# range_size = 1500", &format!("range_size = {r}"));
        }
        let gw = TestGateway::from_text(text).await;
        let listed = gw.get(&format!("/Groups?filter={}", q(r#"displayName eq "Everyone Big""#))).await;
        assert_eq!(listed.body["totalResults"], 1, "{:#}", listed.body);
        let members = listed.body["Resources"][0]["members"].as_array().expect("members").clone();
        let ids: HashSet<&str> = members.iter().map(|m| m["value"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), N, "range size {range:?}: every member, once");
        let id = listed.body["Resources"][0]["id"].as_str().unwrap();
        let read = gw.get(&format!("/Groups/{id}")).await;
        assert_eq!(read.body["members"].as_array().unwrap().len(), N);
        // Users: more than one LDAP page, counted exactly.
        assert_eq!(gw.get("/Users?count=0").await.body["totalResults"], N);
        gw.stop().await;
    }
}
