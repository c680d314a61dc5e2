//! Who may authorize an OAuth client: a person of the users' subtree who signs in with
//! their directory password, is active, and is a member of the configured admin group —
//! checked at sign-in and again at every refresh, so that taking someone out of the group
//! (or deactivating them) ends the access they granted.

use std::sync::Arc;

use super::Result;
use crate::directory::{Directory, DirectoryError, Entry, LdapFilter, Scope, Search};
use crate::mapping::UserMapping;

/// A person allowed to authorize, as found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub dn: String,
    /// The login name as the directory holds it.
    pub login: String,
}

/// Why a person may not authorize. Only audit lines say which; the person is told less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoSuchUser,
    /// The login name matches more than one person: a mapping to fix, never a guess.
    Ambiguous,
    BadPassword,
    Inactive,
    NotAdmin,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoSuchUser => "no_such_user",
            Refusal::Ambiguous => "ambiguous_login",
            Refusal::BadPassword => "bad_password",
            Refusal::Inactive => "inactive",
            Refusal::NotAdmin => "not_in_admin_group",
        }
    }
}

pub struct Admins {
    dir: Arc<dyn Directory>,
    map: UserMapping,
    login_attr: String,
    group_dn: Option<String>,
    group_attr: String,
}

impl Admins {
    /// `group_dn` `None`: no one may sign in (a gateway that offers only client credentials).
    pub fn new(
        dir: Arc<dyn Directory>,
        map: UserMapping,
        login_attr: &str,
        group_dn: Option<&str>,
        group_attr: &str,
    ) -> std::result::Result<Admins, String> {
        for a in [login_attr, group_attr] {
            if !crate::mapping::valid_ldap_name(a) {
                return Err(format!("[auth.oauth] {a:?} is not an LDAP attribute name"));
            }
        }
        Ok(Admins {
            dir,
            map,
            login_attr: login_attr.to_owned(),
            group_dn: group_dn.map(str::to_owned),
            group_attr: group_attr.to_owned(),
        })
    }

    /// Checks `login` and `password` with a bind as the person, then that they may authorize.
    pub async fn sign_in(&self, login: &str, password: &str) -> Result<std::result::Result<Admin, Refusal>> {
        if self.group_dn.is_none() {
            return Ok(Err(Refusal::NotAdmin));
        }
        let search = Search {
            base: self.map.base_dn.clone(),
            scope: Scope::Subtree,
            filter: self.map.filter.clone().and(LdapFilter::eq(&self.login_attr, login)),
            attrs: self.attrs(),
        };
        let entry = match self.dir.search_at_most(&search, 1).await? {
            Some(mut found) if found.len() == 1 => found.pop().expect("one"),
            Some(_) => return Ok(Err(Refusal::NoSuchUser)),
            None => return Ok(Err(Refusal::Ambiguous)),
        };
        if !self.dir.authenticate(&entry.dn, password).await? {
            return Ok(Err(Refusal::BadPassword));
        }
        self.allowed(entry).await
    }

    /// Whether the person at `dn` still exists, is active and is in the admin group.
    pub async fn recheck(&self, dn: &str) -> Result<std::result::Result<Admin, Refusal>> {
        let search =
            Search { base: dn.to_owned(), scope: Scope::Base, filter: self.map.filter.clone(), attrs: self.attrs() };
        match self.dir.search(&search).await?.pop() {
            Some(entry) => self.allowed(entry).await,
            None => Ok(Err(Refusal::NoSuchUser)),
        }
    }

    fn attrs(&self) -> Vec<String> {
        let mut attrs = self.map.read_attrs.clone();
        attrs.push(self.login_attr.clone());
        attrs
    }

    async fn allowed(&self, entry: Entry) -> Result<std::result::Result<Admin, Refusal>> {
        if !self.map.is_active(&entry) {
            return Ok(Err(Refusal::Inactive));
        }
        let Some(group) = &self.group_dn else { return Ok(Err(Refusal::NotAdmin)) };
        let member = match self.dir.compare(group, &self.group_attr, &entry.dn).await {
            Ok(m) => m,
            Err(DirectoryError::NoSuchEntry) => {
                tracing::warn!(%group, "[auth.oauth] admin_group does not exist: no one may authorize");
                false
            }
            Err(e) => return Err(e.into()),
        };
        if !member {
            return Ok(Err(Refusal::NotAdmin));
        }
        let login = entry.first(&self.login_attr).unwrap_or_default().to_owned();
        Ok(Ok(Admin { dn: entry.dn, login }))
    }
}
