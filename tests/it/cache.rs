//! The cache's promise (README, "Cache"): writes through the gateway are seen by the next
//! read, changes made in the directory after at most the TTL, and Okta's pre-create lookup
//! costs no directory round trip on a hit.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::gateway::{okta_user, q, TestGateway, PEOPLE};
use common::Slapd;
use ldap3::Mod;
use serde_json::{json, Value};

const LDAP_OPS: &str = "scim_gateway_ldap_operation_duration_seconds_count";
const CACHE: &str = "scim_gateway_cache_lookups_total";

async fn lookup(gw: &TestGateway, user_name: &str) -> Vec<Value> {
    let found = gw.get(&format!("/Users?filter={}", q(&format!("userName eq \"{user_name}\"")))).await;
    assert_eq!(found.status, 200, "{:#}", found.body);
    found.body["Resources"].as_array().unwrap().clone()
}

/// (directory operations, cache hits) so far.
async fn counts(gw: &TestGateway) -> (f64, f64) {
    let m = gw.scrape().await;
    (m.sum(LDAP_OPS, &[]), m.sum(CACHE, &[("result", "hit")]))
}

#[tokio::test]
async fn a_create_right_after_a_negative_lookup_is_found() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    assert!(lookup(&gw, "new@example.com").await.is_empty());
    assert!(lookup(&gw, "NEW@example.com").await.is_empty(), "cached, case-insensitively");
    let created = gw.post("/Users", &okta_user("new@example.com", None)).await;
    assert_eq!(created.status, 201);
    let found = lookup(&gw, "new@example.com").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], created.body["id"]);
    gw.stop().await;
}

#[tokio::test]
async fn renames_and_deletes_are_never_served_stale() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let created = gw.post("/Users", &okta_user("before@example.com", None)).await;
    let path = format!("/Users/{}", created.body["id"].as_str().unwrap());
    // Warm every cache entry the user has.
    assert_eq!(lookup(&gw, "before@example.com").await.len(), 1);
    assert_eq!(lookup(&gw, "after@example.com").await.len(), 0);
    assert_eq!(gw.get(&path).await.body["userName"], "before@example.com");

    let renamed = gw.patch(&path, json!([{"op": "replace", "path": "userName", "value": "after@example.com"}])).await;
    assert_eq!(renamed.status, 200, "{:#}", renamed.body);
    assert!(lookup(&gw, "before@example.com").await.is_empty());
    assert_eq!(lookup(&gw, "after@example.com").await[0]["userName"], "after@example.com");
    let got = gw.get(&path).await.body;
    assert_eq!(
        (got["userName"].as_str(), &got["meta"]["version"]),
        (Some("after@example.com"), &renamed.body["meta"]["version"])
    );

    let replaced = gw.put(&path, &okta_user("before@example.com", None)).await;
    assert_eq!(replaced.status, 200);
    assert!(lookup(&gw, "after@example.com").await.is_empty());
    assert_eq!(gw.get(&path).await.body["userName"], "before@example.com");

    assert_eq!(gw.delete(&path).await.status, 204);
    gw.get(&path).await.assert_error(404, None);
    assert!(lookup(&gw, "before@example.com").await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn the_okta_pre_create_lookup_costs_no_directory_round_trip_on_a_hit() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    assert_eq!(gw.post("/Users", &okta_user("known@example.com", None)).await.status, 201);
    for user_name in ["known@example.com", "unknown@example.com"] {
        lookup(&gw, user_name).await; // a miss for the unknown one: the directory is asked
        let (ops, hits) = counts(&gw).await;
        let found = lookup(&gw, user_name).await;
        let (ops_after, hits_after) = counts(&gw).await;
        println!("{user_name}: {} directory operations, {} cache hits", ops_after - ops, hits_after - hits);
        assert_eq!(ops_after, ops, "{user_name}: the lookup went to the directory");
        assert!(hits_after > hits);
        assert_eq!(found.len(), usize::from(user_name.starts_with("known")));
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_cached_user_in_groups_renders_without_a_round_trip_and_sees_renames() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let user = gw.post("/Users", &okta_user("member@example.com", None)).await.body;
    let member = json!([{"value": user["id"]}]);
    let group = gw.post("/Groups", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Pilots", "members": member})).await;
    assert_eq!(group.status, 201, "{:#}", group.body);
    let shown = |found: &[Value]| found[0]["groups"][0]["display"].as_str().map(str::to_owned);
    assert_eq!(shown(&lookup(&gw, "member@example.com").await).as_deref(), Some("Pilots"));

    let (ops, _) = counts(&gw).await;
    assert_eq!(shown(&lookup(&gw, "member@example.com").await).as_deref(), Some("Pilots"));
    assert_eq!(counts(&gw).await.0, ops, "the user and its groups came from the cache");

    let path = format!("/Groups/{}", group.body["id"].as_str().unwrap());

    // A member added by id: that user shows the group at once; other cached users stay cached.
    let joiner = gw.post("/Users", &okta_user("joiner@example.com", None)).await.body;
    assert!(lookup(&gw, "joiner@example.com").await[0].get("groups").is_none());
    let added = gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": joiner["id"]}]}])).await;
    assert_eq!(added.status, 204, "{:#}", added.body);
    let (ops, _) = counts(&gw).await;
    assert_eq!(shown(&lookup(&gw, "member@example.com").await).as_deref(), Some("Pilots"));
    assert_eq!(counts(&gw).await.0, ops, "a member add elsewhere left this user cached");
    assert_eq!(shown(&lookup(&gw, "joiner@example.com").await).as_deref(), Some("Pilots"));

    let renamed = gw.patch(&path, json!([{"op": "replace", "path": "displayName", "value": "Captains"}])).await;
    assert!(renamed.status.is_success(), "{:#}", renamed.body);
    assert_eq!(shown(&lookup(&gw, "member@example.com").await).as_deref(), Some("Captains"));
    assert_eq!(gw.delete(&path).await.status, 204);
    assert!(lookup(&gw, "member@example.com").await[0].get("groups").is_none());
    gw.stop().await;
}

/// Hits of the kept JSON of cached users so far.
async fn kept(gw: &TestGateway) -> f64 {
    gw.scrape().await.sum(CACHE, &[("cache", "rendered"), ("result", "hit")])
}

/// A cached user's JSON is kept and sent again (issue 18), but only to the same question:
/// other `attributes`, another host name, a write, a group change each get a text of their own.
#[tokio::test]
async fn kept_answers_follow_the_question_and_every_write() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let user = gw.post("/Users", &okta_user("kept@example.com", None)).await.body;
    let path = format!("/Users/{}", user["id"].as_str().unwrap());
    // Three reads of each: the first fills the cache, the second keeps its JSON, the third is sent it.
    let thrice = |path: String| {
        let gw = &gw;
        async move {
            let answers = [gw.get(&path).await, gw.get(&path).await, gw.get(&path).await];
            for a in &answers {
                assert_eq!((a.status.as_u16(), &a.body), (200, &answers[0].body), "{path}");
                assert_eq!(a.header("etag"), answers[0].body["meta"]["version"].as_str(), "{path}");
            }
            answers.into_iter().last().unwrap()
        }
    };
    let before = kept(&gw).await;
    let full = thrice(path.clone()).await;
    assert!(kept(&gw).await > before, "the third read was sent the kept JSON");
    assert_eq!(full.body["name"]["familyName"], "Doe");
    let narrow = thrice(format!("{path}?attributes=userName")).await.body;
    assert!(narrow.get("name").is_none() && narrow["userName"] == "kept@example.com", "{narrow:#}");
    let without = thrice(format!("{path}?excludedAttributes=name")).await.body;
    assert!(without.get("name").is_none() && without.get("emails").is_some(), "{without:#}");
    assert_eq!(thrice(path.clone()).await.body, full.body, "the full answer is still the full one");
    let lookup_path = format!("/Users?filter={}&attributes=userName", q("userName eq \"kept@example.com\""));
    assert_eq!(thrice(lookup_path.clone()).await.body["Resources"][0], narrow);

    // Another name for the same address: another meta.location.
    let port = gw.base.split(':').nth(2).unwrap().split('/').next().unwrap();
    let host = format!("localhost:{port}");
    for _ in 0..2 {
        let other = gw.raw("GET", &path, Vec::new(), None, &[("host", &host)]).await;
        let location = other.body["meta"]["location"].as_str().unwrap();
        assert!(location.starts_with(&format!("http://{host}/")), "{location}");
    }
    assert!(thrice(path.clone()).await.body["meta"]["location"].as_str().unwrap().starts_with("http://127.0.0.1:"));

    // A write: the next read shows it, with its new version; the old one no longer matches.
    let old = full.header("etag").unwrap().to_owned();
    let changed = gw.patch(&path, json!([{"op": "replace", "path": "title", "value": "Pilot"}])).await;
    assert_eq!(changed.status, 200, "{:#}", changed.body);
    let after = thrice(path.clone()).await;
    assert_eq!(after.body["title"], "Pilot");
    assert_ne!(after.header("etag"), Some(old.as_str()));
    assert_eq!(thrice(format!("{path}?attributes=userName,title")).await.body["title"], "Pilot");
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Stale"}]});
    let stale = gw.raw("PATCH", &path, body.to_string().into_bytes(), None, &[("if-match", &old)]).await;
    stale.assert_error(412, None);

    // Its groups: joined, renamed, left.
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Crew",
        "members": [{"value": user["id"]}]});
    let group = gw.post("/Groups", &group).await.body;
    let group_path = format!("/Groups/{}", group["id"].as_str().unwrap());
    assert_eq!(thrice(path.clone()).await.body["groups"][0]["display"], "Crew");
    let renamed =
        gw.patch(&group_path, json!([{"op": "replace", "path": "displayName", "value": "Flight crew"}])).await;
    assert!(renamed.status.is_success(), "{:#}", renamed.body);
    assert_eq!(thrice(path.clone()).await.body["groups"][0]["display"], "Flight crew");
    let left = gw
        .patch(
            &group_path,
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", user["id"].as_str().unwrap())}]),
        )
        .await;
    assert!(left.status.is_success(), "{:#}", left.body);
    assert!(thrice(path.clone()).await.body.get("groups").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn changes_made_in_the_directory_show_after_the_ttl() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| t.replace("ttl_secs = 60", "ttl_secs = 1")).await;
    let created = gw.post("/Users", &okta_user("direct@example.com", None)).await;
    let path = format!("/Users/{}", created.body["id"].as_str().unwrap());
    assert!(lookup(&gw, "outside@example.com").await.is_empty());
    // Three reads: the first fills the cache, the second keeps its JSON, the third is sent it.
    for _ in 0..3 {
        assert!(gw.get(&path).await.body.get("title").is_none());
    }

    let mut admin = slapd.admin().await;
    let dn = format!("uid=direct@example.com,{PEOPLE}");
    admin
        .modify(&dn, vec![Mod::Replace("title", HashSet::from(["Changed directly"]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    let attrs = vec![
        ("objectClass", HashSet::from(["inetOrgPerson"])),
        ("uid", HashSet::from(["outside@example.com"])),
        ("cn", HashSet::from(["Outside"])),
        ("sn", HashSet::from(["Outside"])),
    ];
    admin.add(&format!("uid=outside@example.com,{PEOPLE}"), attrs).await.unwrap().success().unwrap();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gw.get(&path).await.body["title"], "Changed directly");
    assert_eq!(lookup(&gw, "outside@example.com").await.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn with_the_cache_off_every_lookup_asks_the_directory() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| t.replace("enabled = true", "enabled = false")).await;
    assert_eq!(gw.post("/Users", &okta_user("nocache@example.com", None)).await.status, 201);
    let (ops, hits) = counts(&gw).await;
    lookup(&gw, "nocache@example.com").await;
    lookup(&gw, "nocache@example.com").await;
    let (ops_after, hits_after) = counts(&gw).await;
    assert_eq!(ops_after - ops, 2.0, "one search per lookup");
    assert_eq!((hits, hits_after), (0.0, 0.0));
    gw.stop().await;
}

#[tokio::test]
async fn with_the_cache_off_a_list_page_reads_its_users_groups_in_one_search() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| t.replace("enabled = true", "enabled = false")).await;
    let mut ids = Vec::new();
    for name in ["p1@example.com", "p2@example.com", "p3@example.com", "loner@example.com"] {
        ids.push(gw.post("/Users", &okta_user(name, None)).await.body["id"].clone());
    }
    for (name, members) in [("Pilots", &ids[..2]), ("Crew", &ids[1..3])] {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members});
        assert_eq!(gw.post("/Groups", &body).await.status, 201);
    }
    let (ops, _) = counts(&gw).await;
    let page = gw.get("/Users?count=10").await;
    assert_eq!(page.status, 200, "{:#}", page.body);
    // The ids of the result, the page's entries, and one search for every group they name.
    assert_eq!(counts(&gw).await.0 - ops, 3.0, "one group search for the page, not one per user");
    let groups = |user: &str| -> Vec<String> {
        let u = page.body["Resources"].as_array().unwrap().iter().find(|r| r["userName"] == user).unwrap();
        let mut g: Vec<String> =
            u["groups"].as_array().into_iter().flatten().map(|g| g["display"].as_str().unwrap().to_owned()).collect();
        g.sort();
        g
    };
    assert_eq!(groups("p1@example.com"), ["Pilots"]);
    assert_eq!(groups("p2@example.com"), ["Crew", "Pilots"]);
    assert_eq!(groups("p3@example.com"), ["Crew"]);
    assert!(groups("loner@example.com").is_empty());
    gw.stop().await;
}
