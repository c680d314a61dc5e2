//! `/Users` over a table: each write one statement in one transaction, uniqueness from the
//! database's unique index (409), the password hashed here or refused.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::password;
use super::{expected, found, row_of, set_of, unique, updated, Keys, Listing};
use crate::cache::{Ticket, UserCache};
use crate::config::PasswordColumn;
use crate::directory::records::{Kind, MemberChange, Records, Set};
use crate::directory::Entry;
use crate::mapping::{member_json, GroupMapping, Translated, UserMapping, Write};
use crate::provision::body;
use crate::provision::store::check_version;
use crate::provision::users::refuse_unmapped;
use crate::provision::{audit_line, off_worker, Resources, Result};
use crate::scim::limits::Limits;
use crate::scim::list::{list_response, Projection, Query};
use crate::scim::{self, patch, Json, USER_SCHEMA};

pub struct TableUsers {
    store: Arc<dyn Records>,
    map: UserMapping,
    /// With groups: their mapping, for a user's `groups`.
    groups: Option<GroupMapping>,
    password: Option<PasswordColumn>,
    cache: Arc<UserCache>,
    keys: Arc<Keys>,
    limits: Limits,
    max_candidates: usize,
}

impl TableUsers {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Records>,
        map: UserMapping,
        groups: Option<GroupMapping>,
        password: Option<PasswordColumn>,
        cache: Arc<UserCache>,
        keys: Arc<Keys>,
        limits: Limits,
        max_candidates: usize,
    ) -> Self {
        TableUsers { store, map, groups, password, cache, keys, limits, max_candidates }
    }

    pub fn mapping(&self) -> &UserMapping {
        &self.map
    }
}

#[async_trait]
impl Resources for TableUsers {
    async fn get(&self, id: &str, projection: &Projection, root: &str) -> Result<Json> {
        let entry = match self.cache.user(id).await {
            Some(e) => e.as_ref().clone(),
            None => {
                let ticket = self.cache.ticket();
                let entry = self.find(id).await?;
                self.remember(ticket, &entry).await;
                entry
            }
        };
        let groups = self.groups_of(std::slice::from_ref(&entry), projection, root).await?;
        Ok(Json::of(&self.render(&entry, projection, root, groups.into_iter().next().flatten())))
    }

    async fn list(&self, query: &Query, caller: &str, root: &str) -> Result<Json> {
        let translated = match &query.filter {
            Some(f) => self.map.ldap_filter(f)?,
            None => Translated { filter: self.map.filter.clone(), exact: true },
        };
        let resource = |e: &Entry| match self.map.to_resource(e, "") {
            Value::Object(r) => r,
            _ => Map::new(),
        };
        let listing = Listing {
            store: self.store.as_ref(),
            kind: Kind::Users,
            entity: &self.map,
            resource: &resource,
            keys: &self.keys,
            key: format!("User\n{caller}\n{}", query.result_key()),
            max_candidates: self.max_candidates,
        };
        let (total, entries) = listing.page(translated, query).await?;
        let groups = self.groups_of(&entries, &query.projection, root).await?;
        let resources = entries.iter().zip(groups).map(|(e, g)| self.render(e, &query.projection, root, g)).collect();
        Ok(Json::of(&list_response(resources, total, query.start_index)))
    }

    async fn create(&self, body: &Value, root: &str) -> Result<Value> {
        let res = body::object(body, "User", USER_SCHEMA)?;
        refuse_unmapped(&self.map, res, &["active", "password", "groups"])?;
        self.map.check_mutability(None, res)?;
        let w = self.map.to_write(res)?;
        let mut row = row_of(self.map.new_record(&w));
        row.extend(self.password_column(&w)?);
        let names: Vec<&str> = self.map.user_name(&w).into_iter().collect();
        let created = self.store.create(Kind::Users, &row, &[]).await;
        // Also after a conflict: a cached "no such user" is what let the IdP try.
        let ticket = self.cache.forget(None, &names).await;
        let entry = created.map_err(unique)?;
        audit_line("User", "create", &entry.dn, &columns(&row), "written");
        self.remember(ticket, &entry).await;
        Ok(self.render(&entry, &Projection::default(), root, None))
    }

    async fn replace(&self, id: &str, body: &Value, if_match: Option<&str>, root: &str) -> Result<Value> {
        let entry = self.find(id).await?;
        check_version(&self.map, &entry, if_match)?;
        let res = body::replacement(body, id, "User", USER_SCHEMA)?;
        refuse_unmapped(&self.map, res, &["active", "password", "groups"])?;
        let before = self.map.patch_base(&entry, &format!("{root}/Users"));
        self.map.check_mutability(Some(&before), res)?;
        let w = self.map.to_write(res)?;
        self.update(&entry, &w, expected(&self.map, &entry, if_match), root).await
    }

    async fn patch(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        projection: &Projection,
        root: &str,
    ) -> Result<Option<Value>> {
        let ops = patch::parse(body)?;
        let entry = self.find(id).await?;
        check_version(&self.map, &entry, if_match)?;
        let mut res = self.map.patch_base(&entry, &format!("{root}/Users"));
        let before = res.clone();
        let limits = self.limits.clone();
        let res = off_worker(move || limits.apply_patch(&mut res, &ops, USER_SCHEMA).map(|()| res)).await?;
        refuse_unmapped(&self.map, &res, &["active", "password", "groups"])?;
        self.map.check_mutability(Some(&before), &res)?;
        let w = self.map.to_write(&res)?;
        let mut updated = self.update(&entry, &w, expected(&self.map, &entry, if_match), root).await?;
        if let Value::Object(obj) = &mut updated {
            projection.apply(obj);
        }
        Ok(Some(updated))
    }

    async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let entry = self.find(id).await?;
        check_version(&self.map, &entry, if_match)?;
        let deleted = self.store.delete(Kind::Users, id).await;
        self.cache.forget(Some(id), &self.map.entry_user_name(&entry).into_iter().collect::<Vec<_>>()).await;
        deleted.map_err(found("user", id))?;
        audit_line("User", "delete", &entry.dn, "", "written");
        Ok(())
    }
}

impl TableUsers {
    /// Makes the row hold `w` in one UPDATE (every PATCH operation, `active` and the
    /// password together), then answers with the row as stored.
    async fn update(&self, entry: &Entry, w: &Write, version: Option<&str>, root: &str) -> Result<Value> {
        let id = entry.dn.as_str();
        let mut set = set_of(self.map.user_changes(entry, w))?;
        set.extend(self.password_column(w)?);
        let names: Vec<&str> = self.map.entry_user_name(entry).into_iter().chain(self.map.user_name(w)).collect();
        let written = self.store.update(Kind::Users, id, version, &set, &MemberChange::default()).await;
        let ticket = self.cache.forget(Some(id), &names).await;
        let entry = updated(self.store.as_ref(), Kind::Users, id, version, written).await?;
        audit_line("User", "update", id, &columns(&set), "written");
        self.remember(ticket, &entry).await;
        Ok(self.render(&entry, &Projection::default(), root, None))
    }

    /// The password's column and hash, or 400 when this target stores no passwords.
    fn password_column(&self, w: &Write) -> Result<Option<(String, Option<String>)>> {
        let Some(clear) = &w.password else { return Ok(None) };
        let Some(p) = &self.password else {
            return Err(scim::Error::value(
                "this gateway does not store passwords for this target (no [users] password = { column, scheme })",
            )
            .into());
        };
        let hashed = password::hash(p.scheme, clear).map_err(scim::Error::value)?;
        Ok(Some((p.column.clone(), Some(hashed))))
    }

    async fn find(&self, id: &str) -> Result<Entry> {
        self.store.get(Kind::Users, id).await.map_err(found("user", id))
    }

    async fn remember(&self, ticket: Ticket, entry: &Entry) {
        self.cache.fill(ticket, self.map.entry_user_name(entry), Some((&entry.dn, entry))).await;
    }

    /// Each user's `groups` from the membership table, one query for all of `users`; `None`
    /// each when not shown.
    async fn groups_of(&self, users: &[Entry], projection: &Projection, root: &str) -> Result<Vec<Option<Vec<Value>>>> {
        let Some(groups) = self.groups.as_ref().filter(|_| projection.wants("groups")) else {
            return Ok(vec![None; users.len()]);
        };
        let ids: Vec<String> = users.iter().map(|u| u.dn.clone()).collect();
        let rows = self.store.groups_of(&ids).await?;
        let display = groups.rule_for("displayName").map(|r| r.ldap.clone());
        let location = format!("{root}/Groups");
        Ok(ids
            .iter()
            .map(|id| {
                let of = rows.iter().filter(|(u, _)| u == id);
                Some(
                    of.map(|(_, g)| {
                        member_json(&g.dn, "direct", &location, display.as_deref().and_then(|d| g.first(d)))
                    })
                    .collect(),
                )
            })
            .collect())
    }

    fn render(&self, entry: &Entry, projection: &Projection, root: &str, groups: Option<Vec<Value>>) -> Value {
        let mut v = self.map.to_resource(entry, &format!("{root}/Users"));
        if let Value::Object(obj) = &mut v {
            if let Some(groups) = groups.filter(|g| !g.is_empty()) {
                obj.insert("groups".into(), Value::Array(groups));
            }
            projection.apply(obj);
        }
        v
    }
}

/// The columns a write set, for the audit line (names only: never a value, never a hash).
pub(super) fn columns(set: &Set) -> String {
    set.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(",")
}
