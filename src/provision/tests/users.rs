//! Users: create, replace, patch and delete outcomes, uniqueness, keep_first, rename undo,
//! allocation (through the counter entry) and the cache's forgetting on writes.

use serde_json::json;

use super::*;
use crate::directory::DirectoryError;
use crate::provision::Error;

#[tokio::test]
async fn create_writes_one_entry_and_answers_what_it_holds() {
    let s = site(|t| t);
    let mut body = okta_user("jdoe@example.com");
    body["password"] = json!("S3cret-pw!");
    let created = s.users.create(&body, ROOT).await.unwrap();
    let entry = s.user("jdoe@example.com");
    assert_eq!(created["id"].as_str(), entry.first("entryUUID"));
    assert_eq!(created["userName"], "jdoe@example.com");
    assert_eq!(created["meta"]["location"], format!("{ROOT}/Users/{}", created["id"].as_str().unwrap()));
    assert_eq!((entry.first("sn"), entry.first("cn")), (Some("Doe"), Some("John Doe")));
    assert_eq!(entry.first("mail"), Some("jdoe@example.com"));
    assert_eq!(s.dir.password(&entry.dn).as_deref(), Some("S3cret-pw!"));
    assert_eq!(s.entries(PEOPLE).len(), 1);
}

#[tokio::test]
async fn a_taken_user_name_is_refused_and_nothing_is_written() {
    let s = site(|t| t);
    s.create_user("ann@example.com").await;
    let before = s.entries(PEOPLE);
    let e = s.users.create(&okta_user("ANN@example.com"), ROOT).await.unwrap_err();
    assert!(matches!(&e, Error::Uniqueness(m) if m.contains("already taken")), "{e}");
    let mut missing = okta_user("x@example.com");
    missing["name"] = json!({"givenName": "X"});
    assert!(s.users.create(&missing, ROOT).await.is_err(), "sn is required");
    assert_eq!(s.entries(PEOPLE), before);
}

#[tokio::test]
async fn keep_first_removes_the_later_of_two_concurrent_creates() {
    // Named by cn, two creates of one userName get different DNs: nothing atomic stops the second.
    // Without a unique overlay (or past its check-then-write window).
    let s = site_over(directory(), |t| t.replace("rdn_attribute = \"uid\"", "rdn_attribute = \"cn\""));
    let rival = format!("cn=Rival,{PEOPLE}");
    let attrs = |k: &str, v: &str| (k.to_string(), vec![v.to_string()]);
    s.dir.rival_before_next_add(
        &rival,
        vec![
            attrs("objectClass", "inetOrgPerson"),
            attrs("uid", "jdoe@example.com"),
            attrs("cn", "Rival"),
            attrs("sn", "R"),
        ],
    );
    let e = s.users.create(&okta_user("jdoe@example.com"), ROOT).await.unwrap_err();
    assert!(matches!(&e, Error::Uniqueness(m) if m.contains("concurrent create")), "{e}");
    let left: Vec<String> = s.entries(PEOPLE).into_iter().map(|e| e.dn).collect();
    assert_eq!(left, [rival], "the first create's entry alone stays");
}

#[tokio::test]
async fn a_failed_modify_undoes_the_rename() {
    let s = site(|t| t);
    let ann = s.create_user("ann@example.com").await;
    let id = ann["id"].as_str().unwrap();
    let before = s.user("ann@example.com");
    let mut renamed = okta_user("ann.lee@example.com");
    renamed["name"]["familyName"] = json!("Lee");
    s.dir.fail_next_modify(DirectoryError::Rejected { code: 21, text: "invalid syntax".into() });
    let e = s.users.replace(id, &renamed, None, ROOT).await.unwrap_err();
    assert!(matches!(e, Error::Directory(DirectoryError::Rejected { code: 21, .. })), "{e}");
    let after = s.user("ann@example.com");
    assert_eq!((after.first("entryUUID"), after.values("uid")), (before.first("entryUUID"), before.values("uid")));
    assert_eq!(after.first("sn"), Some("Doe"));
    assert_eq!(s.entries(PEOPLE).len(), 1);
    // Without the fault the same request renames and keeps the id.
    let done = s.users.replace(id, &renamed, None, ROOT).await.unwrap();
    assert_eq!((done["id"].as_str(), done["userName"].as_str()), (Some(id), Some("ann.lee@example.com")));
    assert_eq!(s.user("ann.lee@example.com").first("sn"), Some("Lee"));
}

#[tokio::test]
async fn allocation_takes_the_next_number_and_stops_at_the_end_of_the_range() {
    let s = site(|t| {
        t.replacen(
            "strict = false",
            "strict = false\nallocate = { attribute = \"uidNumber\", range = [10000, 10001] }",
            1,
        )
    });
    s.create_user("a@example.com").await;
    s.create_user("b@example.com").await;
    assert_eq!(s.user("a@example.com").first("uidNumber"), Some("10000"));
    assert_eq!(s.user("b@example.com").first("uidNumber"), Some("10001"));
    let e = s.users.create(&okta_user("c@example.com"), ROOT).await.unwrap_err();
    assert!(matches!(&e, Error::Config(m) if m.contains("used up")), "{e}");
    // The counter entry (created on first use, beside the users) holds the last number handed
    // out; no third user was written.
    let counter = format!("cn=scim-gateway-uidNumber,{PEOPLE}");
    assert_eq!(s.dir.entry(&counter).expect("counter").first("uidNumber"), Some("10001"));
    let users: Vec<String> = s.dir.dns(PEOPLE).into_iter().filter(|dn| *dn != counter).collect();
    assert_eq!(users, [s.user("a@example.com").dn, s.user("b@example.com").dn]);
}

#[tokio::test]
async fn deactivation_locks_and_reactivation_unlocks() {
    let s = site(|t| t);
    let id = s.create_user("ann@example.com").await["id"].as_str().unwrap().to_owned();
    let off = patch(json!([{"op": "replace", "value": {"active": false}}]));
    let res = s.users.patch(&id, &off, None, &Projection::default(), ROOT).await.unwrap().unwrap();
    assert_eq!(res["active"], false);
    assert_eq!(s.user("ann@example.com").first("pwdAccountLockedTime"), Some(crate::mapping::PERMANENT_LOCK));
    let on = patch(json!([{"op": "replace", "path": "active", "value": true}]));
    s.users.patch(&id, &on, None, &Projection::default(), ROOT).await.unwrap();
    assert_eq!(s.user("ann@example.com").first("pwdAccountLockedTime"), None);
}

#[tokio::test]
async fn delete_removes_the_entry_and_checks_the_version() {
    let s = site(|t| t);
    let id = s.create_user("ann@example.com").await["id"].as_str().unwrap().to_owned();
    let e = s.users.delete(&id, Some("W/\"stale\"")).await.unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed), "{e}");
    assert_eq!(s.entries(PEOPLE).len(), 1);
    s.users.delete(&id, None).await.unwrap();
    assert!(s.entries(PEOPLE).is_empty());
    assert!(matches!(s.users.delete(&id, None).await, Err(Error::NotFound(_))));
    assert!(matches!(s.users.delete("not-a-uuid", None).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn the_cache_forgets_what_a_write_changes() {
    let s = site(|t| t);
    let id = s.create_user("ann@example.com").await["id"].as_str().unwrap().to_owned();
    // A change behind the gateway's back is not seen while the entry is cached ...
    let dn = s.user("ann@example.com").dn;
    crate::directory::Directory::modify(
        &*s.dir,
        &dn,
        &[crate::directory::Change::Replace("sn".into(), vec!["Zed".into()])],
    )
    .await
    .unwrap();
    assert_eq!(s.get_user(&id).await.unwrap()["name"]["familyName"], "Doe");
    // ... but a write through it is, and so is a delete.
    let title = patch(json!([{"op": "add", "path": "title", "value": "CTO"}]));
    s.users.patch(&id, &title, None, &Projection::default(), ROOT).await.unwrap();
    let got = s.get_user(&id).await.unwrap();
    assert_eq!((got["title"].as_str(), got["name"]["familyName"].as_str()), (Some("CTO"), Some("Zed")));
    s.users.delete(&id, None).await.unwrap();
    assert!(matches!(s.get_user(&id).await, Err(Error::NotFound(_))));

    // Okta's lookup before a create: a cached "no such user" is forgotten by a create that
    // conflicts, so the next lookup finds the user someone else made.
    let lookup = filter("userName eq \"bob@example.com\"");
    let none = s.users.list(&lookup, "okta", ROOT).await.unwrap().value();
    assert_eq!(none["totalResults"], 0);
    let behind = okta_user("bob@example.com");
    let attrs: crate::directory::Attributes =
        [("objectClass", "inetOrgPerson"), ("uid", "bob@example.com"), ("cn", "Bob"), ("sn", "B")]
            .iter()
            .map(|(a, v)| (a.to_string(), vec![v.to_string()]))
            .collect();
    let dn = format!("uid=bob@example.com,{PEOPLE}");
    crate::directory::Directory::add(&*s.dir, &dn, &attrs, &vec![], None).await.unwrap();
    let e = s.users.create(&behind, ROOT).await.unwrap_err();
    assert!(matches!(e, Error::Uniqueness(_)), "{e}");
    let found = s.users.list(&lookup, "okta", ROOT).await.unwrap().value();
    assert_eq!(found["totalResults"], 1, "{found:#}");
}
