//! Checks that the private OpenLDAP from `common` behaves as the gateway expects.
use crate::common;

use std::collections::HashSet;

use common::Slapd;
use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapConnAsync, Mod, Scope};

async fn add_person(ldap: &mut Ldap, uid: &str) -> String {
    let dn = format!("uid={uid},ou=people,dc=example,dc=test");
    ldap.add(
        &dn,
        vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("uid", HashSet::from([uid])),
            ("cn", HashSet::from([uid])),
            ("sn", HashSet::from(["Test"])),
        ],
    )
    .await
    .and_then(|r| r.success())
    .unwrap_or_else(|e| panic!("add {dn}: {e}"));
    dn
}

#[tokio::test]
async fn service_account_adds_entry_with_entry_uuid() {
    let slapd = Slapd::start();
    let mut svc = slapd.bind(&slapd.service_dn, &slapd.service_password).await;
    let dn = add_person(&mut svc, "alice").await;

    let entry = slapd.entry(&dn).await.expect("alice exists");
    assert_eq!(entry.attrs["uid"], ["alice"]);
    let uuid = &entry.attrs["entryUUID"][0];
    assert_eq!(uuid.len(), 36, "entryUUID {uuid}");
    assert!(entry.attrs.contains_key("createTimestamp"));

    let found = slapd.search(&slapd.base_dn, &format!("(entryUUID={uuid})")).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].dn, dn);
    assert!(slapd.entry("uid=nobody,ou=people,dc=example,dc=test").await.is_none());
}

#[tokio::test]
async fn paged_search_as_service_account_passes_size_limit() {
    const N: usize = 600; // > slapd's default sizelimit of 500
    let slapd = Slapd::start();
    let mut svc = slapd.bind(&slapd.service_dn, &slapd.service_password).await;
    for i in 0..N {
        add_person(&mut svc, &format!("user{i:04}")).await;
    }

    let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> =
        vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(100))];
    let mut stream = svc
        .streaming_search_with(adapters, "ou=people,dc=example,dc=test", Scope::Subtree, "(uid=user*)", vec!["uid"])
        .await
        .expect("start paged search");
    let mut count = 0;
    while stream.next().await.expect("next page entry").is_some() {
        count += 1;
    }
    stream.finish().await.success().expect("paged search result");
    assert_eq!(count, N);
}

#[tokio::test]
async fn password_modify_hashes_and_lock_blocks_bind() {
    let slapd = Slapd::start();
    let mut svc = slapd.bind(&slapd.service_dn, &slapd.service_password).await;
    let dn = add_person(&mut svc, "bob").await;
    svc.extended(PasswordModify { user_id: Some(&dn), old_pass: None, new_pass: Some("bob-secret") })
        .await
        .and_then(|r| r.success())
        .expect("password modify exop");

    let entry = slapd.entry(&dn).await.expect("bob exists");
    let hash = &entry.attrs["userPassword"][0];
    assert!(hash.starts_with("{SSHA}"), "stored userPassword {hash}");
    slapd.bind(&dn, "bob-secret").await.unbind().await.expect("unbind");

    // ppolicy: a locked account cannot bind (49 = invalidCredentials).
    let lock = Mod::Replace("pwdAccountLockedTime", HashSet::from(["000001010000Z"]));
    svc.modify(&dn, vec![lock]).await.and_then(|r| r.success()).expect("lock bob");
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url).await.expect("connect");
    ldap3::drive!(conn);
    let rc = ldap.simple_bind(&dn, "bob-secret").await.expect("bind request").rc;
    assert_eq!(rc, 49, "locked bind");
}
