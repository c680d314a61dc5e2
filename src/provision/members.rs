//! Membership lookups: SCIM ids ⇄ the values a group's member attribute holds (DNs, or
//! posixGroup uids), always in batches so a 50,000-member group costs searches by the
//! hundred, not by the member.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::store::{modify, Store};
use super::Result;
use crate::cache::{GroupRef, UserCache};
use crate::config::UserGroups;
use crate::directory::{Change, Directory, Entry, LdapFilter, Scope};
use crate::mapping::{member_json, GroupMapping, MemberRef, UserMapping};

/// Values per search filter: keeps filters well under servers' request size limits.
const BATCH: usize = 200;

pub struct Members<'a> {
    pub dir: &'a dyn Directory,
    pub users: &'a UserMapping,
    pub groups: &'a GroupMapping,
    /// The attribute holding an entry's own DN (`entryDN`, `distinguishedName`).
    pub dn_attr: &'a str,
    pub cache: &'a UserCache,
}

impl Members<'_> {
    fn by_uid(&self) -> Option<&str> {
        self.groups.members.by_value_of.as_deref()
    }

    /// Searches `store`'s entries where `attr` equals one of `values`, batch by batch.
    async fn lookup(&self, store: &Store<'_>, attr: &str, values: &[&str], attrs: &[&str]) -> Result<Vec<Entry>> {
        let mut found = Vec::new();
        for chunk in values.chunks(BATCH) {
            let any = LdapFilter::Or(chunk.iter().map(|v| LdapFilter::eq(attr, v)).collect());
            let filter = store.entity.filter.clone().and(any);
            let attrs = attrs.iter().map(|a| a.to_string()).collect();
            found.extend(store.search(&store.entity.base_dn, Scope::Subtree, filter, attrs).await?);
        }
        Ok(found)
    }

    fn user_store(&self) -> Store<'_> {
        Store { dir: self.dir, entity: self.users }
    }

    fn group_store(&self) -> Store<'_> {
        Store { dir: self.dir, entity: self.groups }
    }

    /// What the member attribute holds for each of `ids` that names a user (or, for
    /// DN-based groups, a group); ids naming nothing are absent from the map.
    pub async fn by_id(&self, ids: &[&str]) -> Result<HashMap<String, String>> {
        let ids: Vec<&str> = ids.iter().copied().filter(|id| self.users.id_filter(id).is_some()).collect();
        let mut by_id: HashMap<String, String> = HashMap::new();
        let value_attr = self.by_uid();
        let attrs: Vec<&str> = [Some(self.users.id_attr.as_str()), value_attr].into_iter().flatten().collect();
        for e in self.lookup(&self.user_store(), &self.users.id_attr, &ids, &attrs).await? {
            let value = match value_attr {
                Some(a) => e.first(a).map(str::to_owned),
                None => Some(e.dn.clone()),
            };
            if let (Some(id), Some(v)) = (e.first(&self.users.id_attr), value) {
                by_id.insert(id.to_owned(), v);
            }
        }
        let rest: Vec<&str> = ids.iter().copied().filter(|id| !by_id.contains_key(*id)).collect();
        if value_attr.is_none() && !rest.is_empty() {
            for e in self.lookup(&self.group_store(), &self.groups.id_attr, &rest, &[&self.groups.id_attr]).await? {
                if let Some(id) = e.first(&self.groups.id_attr) {
                    by_id.insert(id.to_owned(), e.dn.clone());
                }
            }
        }
        Ok(by_id)
    }

    /// The member-attribute values for `refs`. An id that names nothing is refused when
    /// `strict` (adding), skipped otherwise (removing: it is not a member anyway).
    pub async fn values(&self, refs: &[MemberRef], strict: bool) -> Result<Vec<String>> {
        let ids: Vec<&str> = refs.iter().map(|r| r.id.as_str()).collect();
        let by_id = self.by_id(&ids).await?;
        let mut values = Vec::with_capacity(refs.len());
        for r in refs {
            match by_id.get(&r.id) {
                Some(v) => values.push(v.clone()),
                None if strict => {
                    return Err(crate::scim::Error::value(format!(
                        "no user or group with id {:?} can be a member",
                        r.id
                    ))
                    .into())
                }
                None => {}
            }
        }
        Ok(values)
    }

    /// The SCIM members for member-attribute values; values naming nothing the gateway
    /// serves (entries outside the bases, the empty-group stand-in) are left out.
    pub async fn resolve(&self, values: &[&str], root: &str) -> Result<Vec<Value>> {
        let user_name = self.users.rule_for("userName").map(|r| r.ldap.as_str());
        let display = self.groups.rule_for("displayName").map(|r| r.ldap.as_str());
        let (match_attr, user_attrs) = match self.by_uid() {
            Some(uid) => (uid, vec![self.users.id_attr.as_str(), uid]),
            None => (self.dn_attr, vec![self.users.id_attr.as_str()]),
        };
        let user_attrs: Vec<&str> = user_attrs.into_iter().chain(user_name).collect();
        let mut members = Vec::with_capacity(values.len());
        let mut seen = HashSet::new();
        for e in self.lookup(&self.user_store(), match_attr, values, &user_attrs).await? {
            if let Some(id) = e.first(&self.users.id_attr) {
                seen.insert(id.to_owned());
                members.push(member_json(id, "User", &format!("{root}/Users"), user_name.and_then(|a| e.first(a))));
            }
        }
        if self.by_uid().is_none() && members.len() < values.len() {
            let attrs: Vec<&str> = [self.groups.id_attr.as_str()].into_iter().chain(display).collect();
            for e in self.lookup(&self.group_store(), self.dn_attr, values, &attrs).await? {
                if let Some(id) = e.first(&self.groups.id_attr).filter(|id| !seen.contains(*id)) {
                    members.push(member_json(id, "Group", &format!("{root}/Groups"), display.and_then(|a| e.first(a))));
                }
            }
        }
        Ok(members)
    }

    /// The groups `user` belongs to, as SCIM `groups` values.
    pub async fn groups_of(&self, user: &Entry, root: &str) -> Result<Vec<Value>> {
        let id_attr = self.groups.id_attr.as_str();
        let display = self.groups.rule_for("displayName").map(|r| r.ldap.as_str());
        let attrs: Vec<&str> = [id_attr].into_iter().chain(display).collect();
        let found = match self.groups.members.user_groups {
            UserGroups::MemberOf => self.member_of(user, &attrs).await?,
            UserGroups::Search => match self.member_value(user) {
                Some(v) => self.lookup(&self.group_store(), &self.groups.members.attr, &[v], &attrs).await?,
                None => Vec::new(),
            }
            .iter()
            .filter_map(|g| {
                Some(GroupRef {
                    id: g.first(id_attr)?.to_owned(),
                    display: display.and_then(|a| g.first(a)).map(str::to_owned),
                })
            })
            .collect(),
        };
        let location = format!("{root}/Groups");
        Ok(found.iter().map(|g| member_json(&g.id, "direct", &location, g.display.as_deref())).collect())
    }

    /// The groups a user's `memberOf` names: from the cache, and the rest from the directory
    /// (then cached), so that rendering a cached user costs no search.
    async fn member_of(&self, user: &Entry, attrs: &[&str]) -> Result<Vec<GroupRef>> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for dn in user.values("memberOf") {
            match self.cache.group(dn).await {
                Some(g) => found.push(GroupRef::clone(&g)),
                None => missing.push(dn.as_str()),
            }
        }
        let ticket = self.cache.ticket();
        let display = attrs.get(1).copied();
        for g in self.lookup(&self.group_store(), self.dn_attr, &missing, attrs).await? {
            if let Some(id) = g.first(&self.groups.id_attr) {
                let group =
                    GroupRef { id: id.to_owned(), display: display.and_then(|a| g.first(a)).map(str::to_owned) };
                self.cache.fill_group(ticket, &g.dn, group.clone()).await;
                found.push(group);
            }
        }
        Ok(found)
    }

    /// What a group's member attribute holds for `user`.
    pub fn member_value<'e>(&self, user: &'e Entry) -> Option<&'e str> {
        match self.by_uid() {
            Some(attr) => user.first(attr),
            None => Some(&user.dn),
        }
    }

    /// Removes a user being deleted from every group that lists it (when configured).
    pub async fn remove_everywhere(&self, user: &Entry) -> Result<()> {
        let Some(value) = self.member_value(user) else { return Ok(()) };
        let attr = &self.groups.members.attr;
        let stand_in = self.groups.members.empty_member.as_deref().map(|s| (attr.as_str(), s));
        for g in self.lookup(&self.group_store(), attr, &[value], &[&self.groups.id_attr]).await? {
            let change = Change::Delete(attr.clone(), vec![value.to_owned()]);
            modify(self.dir, &g.dn, vec![change], stand_in).await?;
        }
        Ok(())
    }
}
