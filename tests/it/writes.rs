//! Write integrity, item by item (issue 19), against a real slapd: a refused request never
//! changes the password; group PATCH operations apply in order and fold into one change;
//! numbers allocated by two gateway processes at once are all distinct; the in-flight limit
//! holds across a reload; DELETE leaves no group reference and answers a retry with 404.
//! The fault matrix is tests/it/write_faults.rs.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fault::{Fault, FaultProxy};
use common::gateway::{config_text, member_ids, okta_user, preset, TestGateway, PEOPLE};
use common::process::GatewayProcess;
use common::Slapd;
use serde_json::{json, Value};

const OLD: &str = "Old-pass-1";
const NEW: &str = "New-pass-2";
/// Not IA5: slapd refuses it for `mail` ("invalid per syntax").
const BAD_MAIL: &str = "jöe@example.com";
const GROUPS: &str = "ou=groups,dc=example,dc=test";

/// The user attributes a write may change, as the directory holds them.
async fn user_attrs(slapd: &Slapd, dn: &str) -> Option<Vec<(String, Vec<String>)>> {
    let e = slapd.entry(dn).await?;
    let keep = ["uid", "cn", "sn", "givenName", "displayName", "mail", "title", "description"];
    Some(keep.iter().filter_map(|a| Some((a.to_string(), e.attrs.get(*a)?.clone()))).collect())
}

fn group_body(name: &str, members: &[&Value]) -> Value {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})
}

#[tokio::test]
async fn a_refused_request_never_changes_the_password() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let created = gw.post("/Users", &okta_user("pw@example.com", Some(OLD))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let dn = format!("uid=pw@example.com,{PEOPLE}");
    let before = user_attrs(&slapd, &dn).await.expect("created");

    // PATCH: a new password and a mail the directory refuses.
    let patched = gw
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "replace", "path": "password", "value": NEW},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": BAD_MAIL},
            ]),
        )
        .await;
    patched.assert_error(400, Some("invalidValue"));
    assert!(slapd.can_bind(&dn, OLD).await && !slapd.can_bind(&dn, NEW).await, "the password changed");
    assert_eq!(user_attrs(&slapd, &dn).await.as_ref(), Some(&before));

    // PUT: a rename, a new password and the same bad mail: the rename is undone too.
    let mut body = okta_user("pw-renamed@example.com", Some(NEW));
    body["emails"][0]["value"] = BAD_MAIL.into();
    gw.put(&format!("/Users/{id}"), &body).await.assert_error(400, Some("invalidValue"));
    assert!(slapd.entry(&format!("uid=pw-renamed@example.com,{PEOPLE}")).await.is_none(), "the rename stayed");
    assert!(slapd.can_bind(&dn, OLD).await && !slapd.can_bind(&dn, NEW).await, "the password changed");
    assert_eq!(user_attrs(&slapd, &dn).await.as_ref(), Some(&before));
    // The gateway serves what the directory holds.
    let got = gw.get(&format!("/Users/{id}")).await;
    assert_eq!(got.body["userName"], "pw@example.com");
}

#[tokio::test]
async fn group_patch_applies_operations_in_order_and_delete_leaves_no_reference() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace("user_groups = \"member_of\" }", "user_groups = \"member_of\", remove_deleted_users = true }")
    })
    .await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let u = gw.post("/Users", &okta_user(&format!("{name}@example.com"), None)).await;
        assert_eq!(u.status, 201, "{:#}", u.body);
        ids.push(u.body["id"].clone());
    }
    let g = gw.post("/Groups", &group_body("ordered", &[&ids[2]])).await;
    assert_eq!(g.status, 201, "{:#}", g.body);
    let gid = g.body["id"].as_str().unwrap();
    // add B, then replace with A: A only (RFC 7644 §3.5.2), not A and B.
    let patched = gw
        .patch(
            &format!("/Groups/{gid}"),
            json!([
                {"op": "add", "path": "members", "value": [{"value": ids[1]}]},
                {"op": "replace", "path": "members", "value": [{"value": ids[0]}]},
            ]),
        )
        .await;
    assert_eq!(patched.status, 204, "{:#}", patched.body);
    let dn_of = |n: &str| format!("uid={n}@example.com,{PEOPLE}");
    let members = slapd.entry(&format!("cn=ordered,{GROUPS}")).await.unwrap().attrs["member"].clone();
    assert_eq!(members, [dn_of("a")]);
    assert_eq!(member_ids(&gw.get(&format!("/Groups/{gid}")).await.body), [ids[0].as_str().unwrap()]);

    // DELETE: out of the group first, then the entry; a retry gets 404 and changes nothing.
    let user = ids[0].as_str().unwrap();
    assert_eq!(gw.delete(&format!("/Users/{user}")).await.status, 204);
    gw.delete(&format!("/Users/{user}")).await.assert_error(404, None);
    let group = slapd.entry(&format!("cn=ordered,{GROUPS}")).await.unwrap();
    assert!(!group.attrs["member"].iter().any(|m| m.eq_ignore_ascii_case(&dn_of("a"))), "{:?}", group.attrs);
}

/// Issue 12's "5,000 add-member operations made 10,003 LDAP operations": now the ids are
/// resolved in batches and written in one modify. Counted at the wire by the proxy.
#[tokio::test]
async fn five_thousand_member_operations_cost_a_few_dozen_ldap_operations() {
    const USERS: usize = 5000;
    let slapd = Slapd::start_seeded(&common::users_ldif(0..USERS));
    let proxy = FaultProxy::start(&slapd.url).await;
    // What is counted is operations, not time: generous timeouts keep a loaded machine from
    // turning the count into a 503 (slapd's memberof overlay rewrites 5,000 entries).
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace(&slapd.url, &proxy.url)
            .replace("request_timeout_secs = 30", "request_timeout_secs = 600")
            .replace("operation_timeout_secs = 10", "operation_timeout_secs = 300")
            // Issue 12's figure was for 5,000 operations: above the shipped cap of 1,000.
            .replace("max_operations = 1000", "max_operations = 5000")
            .replace("max_values = 1000", "max_values = 5000")
    })
    .await;
    let ids: Vec<String> =
        slapd.search(PEOPLE, "(uid=user*)").await.iter().map(|e| e.attrs["entryUUID"][0].clone()).collect();
    assert_eq!(ids.len(), USERS);
    let g = gw.post("/Groups", &group_body("big", &[])).await;
    assert_eq!(g.status, 201, "{:#}", g.body);
    let ops: Vec<Value> =
        ids.iter().map(|id| json!({"op": "add", "path": "members", "value": [{"value": id}]})).collect();
    proxy.count_from_now();
    let started = Instant::now();
    let patched = gw.patch(&format!("/Groups/{}", g.body["id"].as_str().unwrap()), Value::Array(ops)).await;
    assert_eq!(patched.status, 204, "{:#}", patched.body);
    let (ldap_ops, _) = proxy.seen();
    eprintln!(
        "{USERS} add-member operations in one PATCH: {ldap_ops} LDAP operations ({:?}) in {:.1} s",
        proxy.ops(),
        started.elapsed().as_secs_f64()
    );
    let members = slapd.entry(&format!("cn=big,{GROUPS}")).await.unwrap().attrs["member"].len();
    assert_eq!(members, USERS, "the stand-in gone, every user a member");
    // The group's search, one per 200 ids, and per 500 values a stand-in check and a modify
    // (plus a bind per connection opened).
    let binds = proxy.ops().iter().filter(|o| **o == "bind").count();
    assert!(ldap_ops - binds <= 1 + USERS / 200 + 2 * (USERS / 500), "{ldap_ops} LDAP operations");
}

/// Two gateway processes allocate uidNumbers (and the posix preset's gidNumbers) at once:
/// every number distinct, without reading the range per allocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_allocated_by_two_processes_at_once_are_distinct() {
    const PER_PROCESS: usize = 12;
    let slapd = Slapd::start();
    let config = preset("openldap-posix.toml", &slapd.url, &slapd.service_password);
    let processes = [GatewayProcess::spawn(&config), GatewayProcess::spawn(&config)];
    let clients: Vec<Arc<TestGateway>> = processes.iter().map(|p| Arc::new(p.client())).collect();
    let creates: Vec<_> = (0..2 * PER_PROCESS)
        .map(|i| {
            let client = clients[i % 2].clone();
            tokio::spawn(async move { client.post("/Users", &okta_user(&format!("alloc{i}@example.com"), None)).await })
        })
        .collect();
    for c in creates {
        let a = c.await.unwrap();
        assert_eq!(a.status, 201, "{:#}", a.body);
    }
    let users = slapd.search(PEOPLE, "(objectClass=posixAccount)").await;
    let numbers: HashSet<&String> = users.iter().map(|e| &e.attrs["uidNumber"][0]).collect();
    assert_eq!((users.len(), numbers.len()), (2 * PER_PROCESS, 2 * PER_PROCESS), "a uidNumber handed out twice");
    let counter = slapd.entry(&format!("cn=scim-gateway-uidNumber,{PEOPLE}")).await.expect("the counter entry");
    let highest = numbers.iter().map(|n| n.parse::<u32>().unwrap()).max().unwrap();
    assert_eq!(counter.attrs["uidNumber"], [highest.to_string()]);
    assert_eq!(highest, 10000 + 2 * PER_PROCESS as u32 - 1, "no number skipped without a failure");
}

/// A reload keeps the one in-flight limit: with max_in_flight = 1 and a write held up by the
/// directory, a request after SIGHUP still gets 429 (a new limit would have let it run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_limit_survives_a_reload() {
    let slapd = Slapd::start();
    let proxy = FaultProxy::start(&slapd.url).await;
    let config = config_text(&slapd, |t| {
        t.replace(&slapd.url, &proxy.url)
            .replace("max_in_flight = 256", "max_in_flight = 1")
            .replace("operation_timeout_secs = 10", "operation_timeout_secs = 4")
            .replace("pool_size = 4", "pool_size = 1")
    });
    let process = GatewayProcess::spawn(&config);
    let gw = Arc::new(process.client());
    let created = gw.post("/Users", &okta_user("busy@example.com", None)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    // The PATCH's modify (its 2nd LDAP operation) goes unanswered for operation_timeout_secs.
    proxy.arm(2, Fault::Stall);
    let held = tokio::spawn({
        let (gw, id) = (gw.clone(), id.clone());
        async move { gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "title", "value": "x"}])).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.seen().1 {
        assert!(Instant::now() < deadline, "the PATCH never reached its modify");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process.signal("HUP");
    while !process.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", process.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = gw.get(&format!("/Users/{id}")).await;
    assert_eq!(during.status, 429, "a second request ran beside the held one after the reload");
    // The held write ends (undone: the directory did not answer), and the slot frees.
    assert_eq!(held.await.unwrap().status, 503);
    assert_eq!(gw.get(&format!("/Users/{id}")).await.status, 200);
}
