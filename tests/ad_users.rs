mod common;
use common::samba::Samba;

#[tokio::test]
async fn harness() {
    let s = Samba::shared();
    let mut l = s.admin().await;
    let (e, _) = l
        .search("", ldap3::Scope::Base, "(objectClass=*)", vec!["defaultNamingContext"])
        .await
        .unwrap()
        .success()
        .unwrap();
    println!("{:?}", e.len());
    assert!(!s.can_bind("Administrator@example.test", "wrong").await);
}
