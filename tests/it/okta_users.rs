//! Okta's user flows (shared/reference/idp-requests.md) end to end against a real slapd:
//! every HTTP answer is checked, and so is the entry read back directly over LDAP.

use crate::common;

use common::gateway::{okta_user, q, TestGateway, PEOPLE};
use common::Slapd;
use serde_json::json;

/// Whether `dn` can bind with `password` (as the application behind the directory would).
async fn can_bind(slapd: &Slapd, dn: &str, password: &str) -> bool {
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&slapd.url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(dn, password).await.unwrap().success().is_ok()
}

#[tokio::test]
async fn create_user_the_okta_way() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;

    // 1. Okta looks the user up first.
    let found =
        gw.get(&format!("/Users?filter={}&startIndex=1&count=100", q(r#"userName eq "jdoe@example.com""#))).await;
    assert_eq!(found.status, 200);
    assert_eq!(
        found.body,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
               "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );
    assert_eq!(found.header("content-type"), Some("application/scim+json"));

    // 2. Then creates it.
    let created = gw.post("/Users", &okta_user("jdoe@example.com", Some("t3mpP@ss!x"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let user = &created.body;
    let id = user["id"].as_str().unwrap();
    assert_eq!(user["userName"], "jdoe@example.com");
    assert_eq!(user["name"], json!({"givenName": "John", "familyName": "Doe"}));
    // Okta's `primary` is not stored by the shipped rules, so it is not claimed back.
    assert_eq!(user["emails"], json!([{"type": "work", "value": "jdoe@example.com"}]));
    assert_eq!(user["externalId"], "00u1abcd2EFGH3ijk4l5");
    assert_eq!(user["active"], true);
    assert!(user.get("password").is_none(), "password must never be returned");
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["location"], format!("{}/Users/{id}", gw.base));
    assert_eq!(created.header("location"), Some(format!("{}/Users/{id}", gw.base).as_str()));
    assert!(user["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert!(user["meta"]["lastModified"].is_string());
    let version = user["meta"]["version"].as_str().unwrap();
    assert!(version.starts_with("W/\""));
    assert_eq!(created.header("etag"), Some(version));

    // The directory holds it, named by uid, with the id as its entryUUID and a hashed password.
    let dn = format!("uid=jdoe@example.com,{PEOPLE}");
    let entry = slapd.entry(&dn).await.expect("entry created");
    assert_eq!(entry.attrs["entryUUID"], [id]);
    assert_eq!(entry.attrs["cn"], ["John Doe"]);
    assert_eq!(entry.attrs["sn"], ["Doe"]);
    assert_eq!(entry.attrs["givenName"], ["John"]);
    assert_eq!(entry.attrs["mail"], ["jdoe@example.com"]);
    assert_eq!(entry.attrs["description"], ["00u1abcd2EFGH3ijk4l5"]);
    assert!(entry.attrs["userPassword"][0].starts_with("{SSHA}"), "the server hashed it");
    assert!(can_bind(&slapd, &dn, "t3mpP@ss!x").await);

    // 3. The lookup now finds it, by userName in any case, and by id.
    let found = gw.get(&format!("/Users?filter={}", q(r#"userName eq "JDOE@example.com""#))).await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], id);
    let read = gw.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created.body);

    // 4. A second create with the same userName (other case) is refused; nothing changes.
    let people_before = slapd.search(PEOPLE, "(objectClass=inetOrgPerson)").await.len();
    let again = gw.post("/Users", &okta_user("JDoe@Example.com", Some("other-pw-1"))).await;
    again.assert_error(409, Some("uniqueness"));
    assert_eq!(slapd.search(PEOPLE, "(objectClass=inetOrgPerson)").await.len(), people_before);
    assert!(can_bind(&slapd, &dn, "t3mpP@ss!x").await, "the first user's password is untouched");
    gw.stop().await;
}

#[tokio::test]
async fn profile_update_with_put_and_rename() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let created = gw.post("/Users", &okta_user("ann@example.com", None)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    // A whole-resource update, as Okta sends it (with id).
    let mut body = okta_user("ann@example.com", None);
    body["id"] = id.clone().into();
    body["name"] = json!({"givenName": "Ann", "familyName": "Smith"});
    body["displayName"] = "Ann Smith".into();
    body["title"] = "Engineer".into();
    body.as_object_mut().unwrap().remove("externalId");
    let put = gw.put(&format!("/Users/{id}"), &body).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    assert_eq!(put.body["name"]["familyName"], "Smith");
    assert_eq!(put.body["title"], "Engineer");
    assert!(put.body.get("externalId").is_none(), "PUT replaces: an omitted attribute is cleared");
    let entry = slapd.entry(&format!("uid=ann@example.com,{PEOPLE}")).await.unwrap();
    assert_eq!(entry.attrs["sn"], ["Smith"]);
    assert_eq!(entry.attrs["cn"], ["Ann Smith"]);
    assert_eq!(entry.attrs["title"], ["Engineer"]);
    assert!(!entry.attrs.contains_key("description"));
    assert_ne!(put.body["meta"]["version"], created.body["meta"]["version"]);

    // A userName change renames the entry in place: same entryUUID, same id.
    body["userName"] = "ann.smith@example.com".into();
    let renamed = gw.put(&format!("/Users/{id}"), &body).await;
    assert_eq!(renamed.status, 200, "{:#}", renamed.body);
    assert_eq!(renamed.body["id"], id.as_str());
    assert_eq!(renamed.body["userName"], "ann.smith@example.com");
    assert!(slapd.entry(&format!("uid=ann@example.com,{PEOPLE}")).await.is_none());
    let moved = slapd.entry(&format!("uid=ann.smith@example.com,{PEOPLE}")).await.expect("renamed entry");
    assert_eq!(moved.attrs["entryUUID"], [id.as_str()]);
    assert_eq!(moved.attrs["uid"], ["ann.smith@example.com"], "the old RDN value is gone");
    assert_eq!(gw.get(&format!("/Users/{id}")).await.body["userName"], "ann.smith@example.com");

    // Renaming onto a taken userName is a conflict and changes nothing.
    gw.post("/Users", &okta_user("taken@example.com", None)).await;
    body["userName"] = "TAKEN@example.com".into();
    gw.put(&format!("/Users/{id}"), &body).await.assert_error(409, Some("uniqueness"));
    assert!(slapd.entry(&format!("uid=ann.smith@example.com,{PEOPLE}")).await.is_some());

    // If-Match with a stale version is refused.
    let stale = created.body["meta"]["version"].as_str().unwrap();
    let ans = gw.raw("PUT", &format!("/Users/{id}"), body.to_string().into_bytes(), None, &[("if-match", stale)]).await;
    ans.assert_error(412, None);
    gw.stop().await;
}

#[tokio::test]
async fn deactivate_reactivate_and_password_push_with_ppolicy() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let created = gw.post("/Users", &okta_user("bob@example.com", Some("Initial-pw1"))).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let dn = format!("uid=bob@example.com,{PEOPLE}");
    assert!(can_bind(&slapd, &dn, "Initial-pw1").await);

    let off = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": false}}])).await;
    assert_eq!(off.status, 200, "{:#}", off.body);
    assert_eq!(off.body["active"], false);
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["pwdAccountLockedTime"], ["000001010000Z"]);
    assert!(!can_bind(&slapd, &dn, "Initial-pw1").await, "a deactivated user cannot log in");
    let listed = gw.get(&format!("/Users?filter={}", q("active eq false"))).await;
    assert_eq!(listed.body["totalResults"], 1);

    let on = gw.patch(&format!("/Users/{id}"), json!([{"op": "Replace", "value": {"active": true}}])).await;
    assert_eq!(on.body["active"], true);
    assert!(!slapd.entry(&dn).await.unwrap().attrs.contains_key("pwdAccountLockedTime"));
    assert!(can_bind(&slapd, &dn, "Initial-pw1").await);

    // Password push: hashed by the server, never echoed.
    let pw = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"password": "N3w-pass!"}}])).await;
    assert_eq!(pw.status, 200, "{:#}", pw.body);
    assert!(pw.body.get("password").is_none());
    assert!(!pw.body.to_string().contains("N3w-pass!"));
    assert!(can_bind(&slapd, &dn, "N3w-pass!").await);
    assert!(!can_bind(&slapd, &dn, "Initial-pw1").await);
    assert!(slapd.entry(&dn).await.unwrap().attrs["userPassword"][0].starts_with("{SSHA}"));
    gw.stop().await;
}

#[tokio::test]
async fn deactivation_by_attribute_value() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace(
            r#"deactivation = { strategy = "ppolicy" }"#,
            r#"deactivation = { strategy = "attribute", attribute = "employeeType", inactive_value = "inactive", active_value = "active" }"#,
        )
    })
    .await;
    let mut body = okta_user("carl@example.com", None);
    body["active"] = false.into();
    let created = gw.post("/Users", &body).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["active"], false);
    let dn = format!("uid=carl@example.com,{PEOPLE}");
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["employeeType"], ["inactive"]);
    let id = created.body["id"].as_str().unwrap();
    let on = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true}])).await;
    assert_eq!(on.body["active"], true);
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["employeeType"], ["active"]);
    assert_eq!(gw.get(&format!("/Users?filter={}", q("active eq true"))).await.body["totalResults"], 1);
    gw.stop().await;
}

#[tokio::test]
async fn import_pages_through_more_than_the_size_limit() {
    let slapd = Slapd::start();
    // 620 users: past slapd's default size limit of 500 for non-root binds.
    let mut admin = slapd.admin().await;
    for i in 0..620 {
        let uid = format!("user{i:04}");
        let attrs = vec![
            ("objectClass", ["inetOrgPerson"].into()),
            ("uid", [uid.as_str()].into()),
            ("cn", [uid.as_str()].into()),
            ("sn", ["Imported"].into()),
        ];
        admin.add(&format!("uid={uid},{PEOPLE}"), attrs).await.unwrap().success().unwrap();
    }
    let gw = TestGateway::start(&slapd).await;
    let mut seen = std::collections::HashSet::new();
    let mut start = 1;
    loop {
        let page = gw.get(&format!("/Users?startIndex={start}&count=100")).await;
        assert_eq!(page.status, 200, "{:#}", page.body);
        assert_eq!(page.body["totalResults"], 620);
        assert_eq!(page.body["startIndex"], start);
        let items = page.body["Resources"].as_array().unwrap();
        assert_eq!(page.body["itemsPerPage"], items.len());
        assert_eq!(items.len(), 100.min(620 - (start - 1)));
        for u in items {
            assert!(seen.insert(u["id"].as_str().unwrap().to_owned()), "a user appeared on two pages");
        }
        start += 100;
        if start > 620 {
            break;
        }
    }
    assert_eq!(seen.len(), 620);
    let past = gw.get("/Users?startIndex=1000&count=100").await;
    assert_eq!((past.body["totalResults"].as_u64(), past.body["itemsPerPage"].as_u64()), (Some(620), Some(0)));
    let counted = gw.get("/Users?count=0").await;
    assert_eq!(counted.body["totalResults"], 620);
    assert_eq!(counted.body["Resources"], json!([]));
    gw.stop().await;
}

#[tokio::test]
async fn projection_and_search_endpoint() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let id = gw.post("/Users", &okta_user("proj@example.com", None)).await.body["id"].as_str().unwrap().to_owned();
    let only = gw.get(&format!("/Users/{id}?attributes=userName,name.givenName")).await;
    assert_eq!(
        only.body,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "proj@example.com",
               "name": {"givenName": "John"}})
    );
    let without = gw.get(&format!("/Users?excludedAttributes=emails,meta&filter={}", q(r#"userName sw "proj""#))).await;
    let r = &without.body["Resources"][0];
    assert!(r.get("emails").is_none() && r.get("meta").is_none() && r["userName"] == "proj@example.com");
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": "emails[type eq \"work\" and value co \"proj@\"]", "attributes": ["userName"], "count": 10});
    let found = gw.post("/Users/.search", &search).await;
    assert_eq!(found.status, 200, "{:#}", found.body);
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(
        found.body["Resources"][0],
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "proj@example.com"})
    );
    gw.stop().await;
}
