//! The query side against a slapd seeded with a few thousand users: every filter operator,
//! projection, sorting and paging, with the expected answers computed from the seed.

use crate::common;

use std::collections::HashSet;

use common::gateway::{okta_user, q, Answer, TestGateway};
use common::{group_ldif, users_ldif, Slapd};
use serde_json::{json, Value};

const USERS: usize = 3000;

/// What the seed holds for user `i`: uid `user{i}`, sn `{i}`, mail `user{i}@example.com`.
fn uid(i: usize) -> String {
    format!("user{i}")
}

fn count_where(pred: impl Fn(usize) -> bool) -> usize {
    (0..USERS).filter(|&i| pred(i)).count()
}

fn seeded() -> Slapd {
    Slapd::start_seeded(&[users_ldif(0..USERS), group_ldif("staff", 0..3), group_ldif("ops", 3..4)].concat())
}

async fn list(gw: &TestGateway, filter: &str, extra: &str) -> Answer {
    let a = gw.get(&format!("/Users?filter={}&count=1000{extra}", q(filter))).await;
    assert_eq!(a.status, 200, "{filter}: {:#}", a.body);
    a
}

fn user_names(a: &Answer) -> Vec<String> {
    a.body["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn every_operator_on_thousands_of_users() {
    let slapd = seeded();
    let gw = TestGateway::start(&slapd).await;
    let s = |i: usize| i.to_string();
    let cases: Vec<(&str, usize)> = vec![
        (r#"userName eq "user42""#, 1),
        (r#"USERNAME EQ "USER42""#, 1),
        (r#"userName ne "user42""#, USERS - 1),
        (r#"userName co "99""#, count_where(|i| uid(i).contains("99"))),
        (r#"userName sw "user12""#, count_where(|i| uid(i).starts_with("user12"))),
        (r#"emails ew "7@example.com""#, count_where(|i| s(i).ends_with('7'))),
        (r#"emails.value ew "7@EXAMPLE.com""#, count_where(|i| s(i).ends_with('7'))),
        (r#"emails[type eq "work" and value sw "user29"]"#, count_where(|i| s(i).starts_with("29"))),
        (r#"name.familyName pr"#, USERS),
        (r#"title pr"#, 0),
        (r#"not (title pr)"#, USERS),
        // Ordering on strings: checked by the gateway, comparing as SCIM says (text order).
        (r#"name.familyName gt "2500""#, count_where(|i| s(i).as_str() > "2500")),
        (r#"name.familyName ge "2500""#, count_where(|i| s(i).as_str() >= "2500")),
        (r#"name.familyName lt "1000""#, count_where(|i| s(i).as_str() < "1000")),
        (r#"userName le "user1""#, count_where(|i| uid(i).as_str() <= "user1")),
        // Precedence: and binds tighter than or.
        (
            r#"userName eq "user1" or userName sw "user2" and name.familyName ew "5""#,
            1 + count_where(|i| s(i).starts_with('2') && s(i).ends_with('5')),
        ),
        (
            r#"(userName eq "user1" or userName sw "user2") and name.familyName ew "5""#,
            count_where(|i| s(i).starts_with('2') && s(i).ends_with('5')),
        ),
        (
            r#"userName sw "user1" and not (name.familyName lt "1500")"#,
            count_where(|i| s(i).starts_with('1') && s(i).as_str() >= "1500"),
        ),
        (r#"active eq true and userName sw "user7""#, count_where(|i| s(i).starts_with('7'))),
        (r#"active eq false"#, 0),
        (r#"meta.created gt "2000-01-01T00:00:00Z""#, USERS),
        (r#"meta.lastModified lt "2000-01-01T00:00:00Z""#, 0),
    ];
    for (filter, expected) in cases {
        assert_eq!(gw.total(filter).await as usize, expected, "{filter}");
    }
    // The returned resources match, not just their number.
    let a = list(&gw, r#"name.familyName ge "2995" and name.familyName lt "3""#, "").await;
    let mut names = user_names(&a);
    names.sort();
    assert_eq!(names, ["user2995", "user2996", "user2997", "user2998", "user2999"]);
    gw.stop().await;
}

#[tokio::test]
async fn case_exact_attributes_and_the_candidate_cap() {
    let slapd = seeded();
    let gw = TestGateway::start_with(&slapd, |t| t.replace("max_candidates = 20000", "max_candidates = 100")).await;
    for (name, external) in [("ab@example.com", "Ab-7"), ("AB2@example.com", "AB-7")] {
        let mut u = okta_user(name, None);
        u["externalId"] = external.into();
        assert_eq!(gw.post("/Users", &u).await.status, 201);
    }
    // externalId is caseExact (RFC 7643); the directory's `description` ignores case.
    let a = list(&gw, r#"externalId eq "Ab-7""#, "").await;
    assert_eq!(user_names(&a), ["ab@example.com"]);
    assert_eq!(gw.total(r#"externalId sw "AB""#).await as usize, 1);
    assert_eq!(gw.total(r#"externalId ne "Ab-7" and externalId pr"#).await as usize, 1);
    // More candidates than the cap: refused, saying why, rather than answered partly.
    for too_many in [format!("/Users?filter={}", q(r#"name.familyName gt "1""#)), "/Users?sortBy=userName".to_string()]
    {
        let a = gw.get(&too_many).await;
        a.assert_error(400, Some("tooMany"));
        assert!(a.body["detail"].as_str().unwrap().contains("max_candidates"), "{:#}", a.body);
    }
    // Narrowed by a condition the directory decides, the same requests work.
    assert_eq!(gw.total(r#"userName sw "user123" and name.familyName gt "1235""#).await as usize, 4);
    let a = list(&gw, r#"userName sw "user123""#, "&sortBy=name.familyName&sortOrder=descending").await;
    assert_eq!(user_names(&a)[..3], ["user1239", "user1238", "user1237"]);
    gw.stop().await;
}

#[tokio::test]
async fn projection_in_the_query_and_in_search_bodies() {
    let slapd = seeded();
    let gw = TestGateway::start(&slapd).await;
    let filter = q(r#"userName eq "user7""#);
    let a = gw.get(&format!("/Users?filter={filter}&attributes=userName,name.familyName")).await;
    let r = &a.body["Resources"][0];
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "name", "schemas", "userName"], "{r:#}");
    assert_eq!(r["name"], json!({"familyName": "7"}));
    let a = gw.get(&format!("/Users?filter={filter}&excludedAttributes=emails,meta,name.givenName")).await;
    let r = &a.body["Resources"][0];
    assert!(r.get("emails").is_none() && r.get("meta").is_none() && r["userName"] == "user7", "{r:#}");
    // A user read by id honours the same parameters.
    let id = r["id"].as_str().unwrap();
    let one = gw.get(&format!("/Users/{id}?attributes=emails")).await;
    assert_eq!(one.body["emails"][0]["value"], "user7@example.com");
    assert!(one.body.get("userName").is_none());

    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"user12\" and name.familyName lt \"125\"",
        "attributes": ["userName"], "sortBy": "userName", "sortOrder": "descending", "startIndex": 2, "count": 3,
    });
    let a = gw.post("/Users/.search", &search).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    let mut all: Vec<String> = (0..USERS).map(uid).filter(|u| u.starts_with("user12") && u[4..] < *"125").collect();
    all.sort_by(|a, b| b.cmp(a));
    assert_eq!(a.body["totalResults"], all.len());
    assert_eq!(user_names(&a), all[1..4]);
    assert!(a.body["Resources"][0].get("emails").is_none());

    let groups = json!({"filter": "displayName eq \"staff\"", "excludedAttributes": ["members"]});
    let g = gw.post("/Groups/.search", &groups).await;
    assert_eq!(g.body["totalResults"], 1, "{:#}", g.body);
    assert!(g.body["Resources"][0].get("members").is_none());
    let g = gw.post("/Groups/.search", &json!({"sortBy": "displayName", "attributes": "displayName,members"})).await;
    let names: Vec<&str> =
        g.body["Resources"].as_array().unwrap().iter().map(|r| r["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["ops", "staff"]);
    assert_eq!(g.body["Resources"][1]["members"].as_array().unwrap().len(), 3);
    gw.post("/.search", &json!({"filter": "userName pr"})).await.assert_error(501, None);
    gw.stop().await;
}

#[tokio::test]
async fn sorting_is_stable_across_pages() {
    let slapd = seeded();
    let gw = TestGateway::start(&slapd).await;
    let mut expected: Vec<String> = (0..USERS).map(|i| i.to_string()).collect();
    expected.sort();
    let mut seen = Vec::new();
    for start in (1..=USERS).step_by(700) {
        let a = gw.get(&format!("/Users?sortBy=name.familyName&startIndex={start}&count=700&attributes=name")).await;
        assert_eq!(a.body["totalResults"], USERS);
        seen.extend(
            a.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"]["familyName"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, expected);
    let a = gw.get("/Users?sortBy=userName&sortOrder=descending&count=2&attributes=userName").await;
    assert_eq!(user_names(&a), ["user999", "user998"]);
    gw.stop().await;
}

#[tokio::test]
async fn paging_sees_every_user_once_and_keeps_its_snapshot() {
    let slapd = seeded();
    let gw = TestGateway::start(&slapd).await;
    let mut ids = HashSet::new();
    let mut start = 1;
    loop {
        let a = gw.get(&format!("/Users?startIndex={start}&count=100&attributes=userName")).await;
        assert_eq!(a.body["totalResults"], USERS, "page at {start}");
        assert_eq!(a.body["startIndex"], start);
        let page = a.body["Resources"].as_array().unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() == 100 || start + page.len() - 1 == USERS);
        assert_eq!(a.body["itemsPerPage"], page.len());
        for r in page {
            assert!(ids.insert(r["id"].as_str().unwrap().to_owned()), "seen twice: {r}");
        }
        if start == 1 {
            // A user created during an import shows from the next import, not in the middle.
            assert_eq!(gw.post("/Users", &okta_user("late@example.com", None)).await.status, 201);
        }
        start += page.len();
    }
    assert_eq!(ids.len(), USERS);
    // Every later page came from the snapshot, and costs one directory search: its entries.
    let m = gw.scrape().await;
    let snapshot = |result| m.sum("scim_gateway_cache_lookups_total", &[("cache", "snapshot"), ("result", result)]);
    assert_eq!((snapshot("hit"), snapshot("miss")), ((USERS / 100) as f64, 0.0));
    let ops = async || gw.scrape().await.sum("scim_gateway_ldap_operation_duration_seconds_count", &[]);
    let before = ops().await;
    gw.get("/Users?startIndex=2901&count=100").await;
    assert_eq!(ops().await - before, 1.0);
    let again = gw.get("/Users?startIndex=1&count=1").await;
    assert_eq!(again.body["totalResults"], USERS + 1);
    // count=0 answers the total only; past the end, an empty page with the total.
    let a = gw.get("/Users?count=0").await;
    assert_eq!(
        (a.body["totalResults"].as_u64(), a.body["Resources"].as_array().map(Vec::len)),
        (Some(USERS as u64 + 1), Some(0))
    );
    let a = gw.get(&format!("/Users?startIndex={}", USERS + 10)).await;
    assert_eq!(a.body["Resources"], Value::Array(vec![]));
    assert_eq!(a.body["totalResults"], USERS + 1);
    gw.stop().await;
}
