//! OpenLDAP as a [`Store`] for the shared flows: the shipped gateway.toml (inetOrgPerson under
//! ou=people named by uid, groupOfNames under ou=groups named by cn, ppolicy deactivation),
//! entries read back as the rootdn.

use async_trait::async_trait;
use ldap3::SearchEntry;

use super::gateway::{TestGateway, PEOPLE};
use super::scenario::{sorted, Store, StoredGroup, StoredUser};
use super::Slapd;

pub const GROUPS: &str = "ou=groups,dc=example,dc=test";
/// The member an empty groupOfNames holds (the shipped gateway.toml's `empty_member`).
pub const STAND_IN: &str = "cn=empty-group,ou=groups,dc=example,dc=test";
/// ppolicy's "locked by an administrator" time: what deactivation writes.
const LOCKED: &str = "000001010000Z";

pub fn user_dn(user_name: &str) -> String {
    format!("uid={user_name},{PEOPLE}")
}

pub fn group_dn(name: &str) -> String {
    format!("cn={name},{GROUPS}")
}

/// The single value of `attr`, if any; more than one is a failure (the gateway writes one).
fn one(entry: &SearchEntry, attr: &str) -> Option<String> {
    let values = entry.attrs.get(attr)?;
    assert_eq!(values.len(), 1, "{} has {attr}: {values:?}", entry.dn);
    values.first().cloned()
}

/// The values of `attr`, lower-cased and sorted.
fn lowered(entry: &SearchEntry, attr: &str) -> Vec<String> {
    sorted(entry.attrs.get(attr).cloned().unwrap_or_default().iter().map(|s| s.to_lowercase()).collect())
}

#[async_trait]
impl Store for Slapd {
    async fn gateway(&self) -> TestGateway {
        TestGateway::start(self).await
    }

    async fn user(&self, user_name: &str) -> Option<StoredUser> {
        let e = self.entry(&user_dn(user_name)).await?;
        let active = match e.attrs.get("pwdAccountLockedTime").map(Vec::as_slice) {
            None => true,
            Some([locked]) if locked == LOCKED => false,
            Some(other) => panic!("{}: pwdAccountLockedTime {other:?}", e.dn),
        };
        Some(StoredUser {
            id: one(&e, "entryUUID").expect("entryUUID"),
            user_name: one(&e, "uid").expect("uid"),
            given_name: one(&e, "givenName"),
            family_name: one(&e, "sn"),
            display_name: one(&e, "cn"),
            email: one(&e, "mail"),
            external_id: one(&e, "description"),
            title: one(&e, "title"),
            department: one(&e, "departmentNumber"),
            employee_number: one(&e, "employeeNumber"),
            active,
            password: one(&e, "userPassword"),
            groups: lowered(&e, "memberOf"),
        })
    }

    async fn group(&self, name: &str) -> Option<StoredGroup> {
        let e = self.entry(&group_dn(name)).await?;
        Some(StoredGroup {
            id: one(&e, "entryUUID").expect("entryUUID"),
            name: one(&e, "cn").expect("cn"),
            members: lowered(&e, "member"),
        })
    }

    async fn user_count(&self) -> usize {
        self.search(PEOPLE, "(objectClass=inetOrgPerson)").await.len()
    }

    async fn seed_users(&self, names: &[String]) {
        let mut admin = self.admin().await;
        for uid in names {
            let attrs = vec![
                ("objectClass", ["inetOrgPerson"].into()),
                ("uid", [uid.as_str()].into()),
                ("cn", [uid.as_str()].into()),
                ("sn", ["Imported"].into()),
            ];
            admin.add(&user_dn(uid), attrs).await.unwrap().success().unwrap();
        }
    }

    async fn can_log_in(&self, user_name: &str, password: &str) -> bool {
        self.can_bind(&user_dn(user_name), password).await
    }

    /// ppolicy hashes a cleartext userPassword on the way in.
    fn hashed(&self, stored: &str) -> bool {
        stored.starts_with("{SSHA}")
    }

    fn user_ref(&self, user_name: &str) -> String {
        user_dn(user_name).to_lowercase()
    }

    fn group_ref(&self, name: &str) -> String {
        group_dn(name).to_lowercase()
    }

    fn empty_members(&self) -> Vec<String> {
        vec![STAND_IN.to_owned()]
    }

    fn nested_groups(&self) -> bool {
        true
    }
}
