//! `/Users`: create, read, list, replace, patch and delete against the directory.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{audit, Error, Result};
use crate::cache::{Ticket, UserCache};
use crate::directory::{dn, Directory, DirectoryError, Entry, LdapFilter, Scope, Search};
use crate::mapping::{UserMapping, Write};
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::json::get_ci;
use crate::scim::list::{list_response, Projection, Query};
use crate::scim::{self, patch, USER_SCHEMA};

pub struct Users {
    dir: Arc<dyn Directory>,
    map: UserMapping,
    cache: UserCache,
}

impl Users {
    pub fn new(dir: Arc<dyn Directory>, map: UserMapping, cache: UserCache) -> Self {
        Users { dir, map, cache }
    }

    pub fn mapping(&self) -> &UserMapping {
        &self.map
    }

    /// `location` is the absolute URL of the `/Users` endpoint, used for `meta.location`.
    pub async fn get(&self, id: &str, projection: &Projection, location: &str) -> Result<Value> {
        if let Some(entry) = self.cache.user(id).await {
            return Ok(self.render(&entry, projection, location));
        }
        let ticket = self.cache.ticket();
        let entry = self.find(id).await?;
        self.remember(ticket, &entry).await;
        Ok(self.render(&entry, projection, location))
    }

    pub async fn list(&self, query: &Query, location: &str) -> Result<Value> {
        if let Some(name) = query.filter.as_ref().and_then(exact_user_name) {
            let found = self.by_user_name(name).await?;
            let page = found.iter().skip(query.start_index - 1).take(query.count);
            let resources = page.map(|e| self.render(e, &query.projection, location)).collect();
            return Ok(list_response(resources, found.len(), query.start_index));
        }
        let filter = match &query.filter {
            Some(f) => self.map.ldap_filter(f)?,
            None => self.map.filter.clone(),
        };
        // Ids first (cheap), then the attributes of only the page asked for.
        let ids = self.search(&self.map.base_dn, Scope::Subtree, filter, vec![self.map.id_attr.clone()]).await?;
        let page: Vec<&str> = ids
            .iter()
            .skip(query.start_index - 1)
            .take(query.count)
            .filter_map(|e| e.first(&self.map.id_attr))
            .collect();
        let mut resources = Vec::with_capacity(page.len());
        if !page.is_empty() {
            let any = LdapFilter::Or(page.iter().map(|id| LdapFilter::eq(&self.map.id_attr, id)).collect());
            let entries = self
                .search(
                    &self.map.base_dn,
                    Scope::Subtree,
                    self.map.filter.clone().and(any),
                    self.map.read_attrs.clone(),
                )
                .await?;
            let by_id: HashMap<&str, &Entry> =
                entries.iter().filter_map(|e| Some((e.first(&self.map.id_attr)?, e))).collect();
            // Keep the order of the id search, so pages never overlap or skip.
            resources.extend(
                page.iter().filter_map(|id| by_id.get(id)).map(|e| self.render(e, &query.projection, location)),
            );
        }
        Ok(list_response(resources, ids.len(), query.start_index))
    }

    pub async fn create(&self, body: &Value, location: &str) -> Result<Value> {
        let w = self.map.to_write(user_object(body)?)?;
        let (dn, attrs) = self.map.new_entry(&w)?;
        let added = self.add(&dn, &attrs, &w).await;
        // Also after a conflict: a cached "no such user" is what let the IdP try.
        let ticket = self.cache.forget(None, &self.map.user_name(&w).into_iter().collect::<Vec<_>>()).await;
        added?;
        let entry = self.read(&dn).await;
        let id = entry.as_ref().ok().and_then(|e| e.first(&self.map.id_attr)).unwrap_or("(not read back)");
        let password = w.password.as_ref().map(|_| PASSWORD);
        audit("User", "create", id, attrs.iter().map(|(a, _)| a.as_str()).chain(password));
        let entry = entry?;
        if !self.map.named_by_user_name() {
            self.keep_first(&entry, &w).await?;
        }
        self.remember(ticket, &entry).await;
        Ok(self.render(&entry, &Projection::default(), location))
    }

    /// Adds the entry and sets its password, or leaves no entry behind.
    async fn add(&self, dn: &str, attrs: &crate::directory::Attributes, w: &Write) -> Result<()> {
        self.ensure_unique(w, None).await?;
        self.dir.add(dn, attrs).await.map_err(|e| self.conflict(e, w))?;
        if let Some(password) = &w.password {
            if let Err(e) = self.dir.set_password(dn, password).await {
                // A user without the password the IdP set is worse than none: undo the add.
                if let Err(undo) = self.dir.delete(dn).await {
                    tracing::error!(%dn, error = %undo, "could not remove a user whose password was refused");
                }
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Two creates of one userName can both pass [`Self::ensure_unique`]. Named by the
    /// userName's attribute, the second gets the same DN and the directory refuses it; named
    /// otherwise, nothing atomic stops it (OpenLDAP's unique overlay checks, then writes, too).
    /// So look again: when an entry with a lower version (entryCSN: written earlier) holds the
    /// name, the new one is removed and the create fails as a conflict.
    async fn keep_first(&self, entry: &Entry, w: &Write) -> Result<()> {
        let (id_attr, version_attr) = (&self.map.id_attr, &self.map.version_attr);
        let (Some(name), Some(version)) = (self.map.user_name(w), entry.first(version_attr)) else {
            return Ok(());
        };
        let filter = self.map.user_name_filter(name);
        let holders =
            self.search(&self.map.base_dn, Scope::Subtree, filter, vec![id_attr.clone(), version_attr.clone()]).await?;
        let id = entry.first(id_attr);
        let earlier = |h: &Entry| h.first(id_attr) != id && h.first(version_attr).is_some_and(|v| v < version);
        if !holders.iter().any(earlier) {
            return Ok(());
        }
        self.dir.delete(&entry.dn).await?;
        self.cache.forget(id, &[name]).await;
        audit("User", "delete", id.unwrap_or_default(), []);
        Err(Error::Uniqueness(format!("userName {name:?} was taken by a concurrent create")))
    }

    /// PUT: the resource replaces every mapped attribute.
    pub async fn replace(&self, id: &str, body: &Value, if_match: Option<&str>, location: &str) -> Result<Value> {
        let entry = self.find(id).await?;
        self.check_version(&entry, if_match)?;
        let res = user_object(body)?;
        if get_ci(res, "id").is_some_and(|v| v.as_str() != Some(id)) {
            return Err(scim::Error::mutability("id is read-only and differs from the resource's").into());
        }
        let w = self.map.to_write(res)?;
        self.update(entry, w, location).await
    }

    pub async fn patch(&self, id: &str, body: &Value, if_match: Option<&str>, location: &str) -> Result<Value> {
        let ops = patch::parse(body)?;
        let entry = self.find(id).await?;
        self.check_version(&entry, if_match)?;
        let Value::Object(mut res) = self.map.to_resource(&entry, location) else {
            unreachable!("resources are objects")
        };
        patch::apply(&mut res, &ops)?;
        let w = self.map.to_write(&res)?;
        self.update(entry, w, location).await
    }

    pub async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let entry = self.find(id).await?;
        self.check_version(&entry, if_match)?;
        let deleted = self.dir.delete(&entry.dn).await;
        let id = entry.first(&self.map.id_attr).unwrap_or(id);
        self.cache.forget(Some(id), &self.map.entry_user_name(&entry).into_iter().collect::<Vec<_>>()).await;
        deleted?;
        audit("User", "delete", id, []);
        Ok(())
    }

    /// Makes `entry` hold `w`, then reads it back.
    async fn update(&self, entry: Entry, w: Write, location: &str) -> Result<Value> {
        let id = entry.first(&self.map.id_attr).unwrap_or_default().to_owned();
        let written = self.write(&entry, &w, &id).await;
        let names: Vec<&str> = self.map.entry_user_name(&entry).into_iter().chain(self.map.user_name(&w)).collect();
        let ticket = self.cache.forget(Some(&id), &names).await;
        let (dn, changed) = written?;
        if !changed.is_empty() {
            audit("User", "update", &id, changed.iter().map(String::as_str));
        }
        let entry = self.read(&dn).await?;
        self.remember(ticket, &entry).await;
        Ok(self.render(&entry, &Projection::default(), location))
    }

    /// A rename when the naming value changes (so the id stays), then one modify of the
    /// changed attributes, then the password. Returns the DN and the names of what changed.
    async fn write(&self, entry: &Entry, w: &Write, id: &str) -> Result<(String, Vec<String>)> {
        let old_name = self.map.entry_user_name(entry);
        if !old_name.is_some_and(|o| self.map.user_name(w).is_some_and(|n| n.eq_ignore_ascii_case(o))) {
            self.ensure_unique(w, Some(id)).await?;
        }
        let mut changes = self.map.changes(entry, w);
        let mut changed: Vec<String> = changes.iter().map(|c| c.attr().to_owned()).collect();
        let mut dn = entry.dn.clone();
        let renamed = self.map.renamed(entry, w)?;
        if let Some(rdn) = &renamed {
            self.dir.rename(&dn, rdn).await.map_err(|e| self.conflict(e, w))?;
            dn = dn::child(rdn, dn::split(&entry.dn).1);
            // modrdn already replaced the naming value.
            changes.retain(|c| !c.attr().eq_ignore_ascii_case(&self.map.rdn_attr));
        }
        if !changes.is_empty() {
            if let Err(e) = self.dir.modify(&dn, &changes).await {
                if renamed.is_some() {
                    self.undo_rename(&dn, entry).await;
                }
                return Err(e.into());
            }
        }
        if let Some(password) = &w.password {
            self.dir.set_password(&dn, password).await?;
            changed.push(PASSWORD.into());
        }
        Ok((dn, changed))
    }

    async fn undo_rename(&self, dn: &str, original: &Entry) {
        if let Err(e) = self.dir.rename(dn, dn::split(&original.dn).0).await {
            tracing::error!(%dn, error = %e, "could not undo a rename after a failed modify");
        }
    }

    /// 409 when another user already has `w`'s userName (case-insensitively, as LDAP matches).
    async fn ensure_unique(&self, w: &Write, except_id: Option<&str>) -> Result<()> {
        let Some(name) = self.map.user_name(w) else { return Ok(()) };
        let found = self
            .search(&self.map.base_dn, Scope::Subtree, self.map.user_name_filter(name), vec![self.map.id_attr.clone()])
            .await?;
        if found.iter().any(|e| e.first(&self.map.id_attr) != except_id) {
            return Err(Error::Uniqueness(format!("userName {name:?} is already taken")));
        }
        Ok(())
    }

    /// The users named `name`: Okta's lookup before each create, from the cache when it can be.
    async fn by_user_name(&self, name: &str) -> Result<Vec<Arc<Entry>>> {
        let named = |e: &Entry| self.map.entry_user_name(e).is_some_and(|n| n.to_lowercase() == name.to_lowercase());
        match self.cache.name(name).await {
            Some(None) => return Ok(Vec::new()),
            Some(Some(id)) => {
                // The name may have moved to another user since: only a matching entry counts.
                if let Some(entry) = self.cache.user(&id).await.filter(|e| named(e)) {
                    return Ok(vec![entry]);
                }
            }
            None => {}
        }
        let ticket = self.cache.ticket();
        let found = self.search(
            &self.map.base_dn,
            Scope::Subtree,
            self.map.user_name_filter(name),
            self.map.read_attrs.clone(),
        );
        let found = found.await?;
        match found.as_slice() {
            [] => self.cache.fill(ticket, Some(name), None).await,
            [one] => self.remember(ticket, one).await,
            // The directory does not keep this userName unique: nothing to remember it by.
            _ => {}
        }
        Ok(found.into_iter().map(Arc::new).collect())
    }

    /// Caches `entry` under its id and userName, unless a write happened since `ticket`.
    async fn remember(&self, ticket: Ticket, entry: &Entry) {
        if let Some(id) = entry.first(&self.map.id_attr) {
            self.cache.fill(ticket, self.map.entry_user_name(entry), Some((id, entry))).await;
        }
    }

    fn conflict(&self, e: DirectoryError, w: &Write) -> Error {
        match e {
            DirectoryError::AlreadyExists => {
                Error::Uniqueness(format!("an entry named {} already exists", self.map.rdn(w).unwrap_or_default()))
            }
            e => e.into(),
        }
    }

    fn check_version(&self, entry: &Entry, if_match: Option<&str>) -> Result<()> {
        match if_match {
            Some(wanted) if wanted.trim() != "*" && self.map.version(entry).as_deref() != Some(wanted.trim()) => {
                Err(Error::PreconditionFailed)
            }
            _ => Ok(()),
        }
    }

    fn render(&self, entry: &Entry, projection: &Projection, location: &str) -> Value {
        let mut v = self.map.to_resource(entry, location);
        if let Value::Object(obj) = &mut v {
            projection.apply(obj);
        }
        v
    }

    async fn find(&self, id: &str) -> Result<Entry> {
        let not_found = || Error::NotFound(format!("no user with id {id:?}"));
        let filter = self.map.id_filter(id).ok_or_else(not_found)?;
        let mut found = self.search(&self.map.base_dn, Scope::Subtree, filter, self.map.read_attrs.clone()).await?;
        found.pop().ok_or_else(not_found)
    }

    async fn read(&self, dn: &str) -> Result<Entry> {
        let mut found = self.search(dn, Scope::Base, self.map.filter.clone(), self.map.read_attrs.clone()).await?;
        found.pop().ok_or_else(|| Error::NotFound(format!("{dn} vanished while being written")))
    }

    async fn search(&self, base: &str, scope: Scope, filter: LdapFilter, attrs: Vec<String>) -> Result<Vec<Entry>> {
        let search = Search { base: base.to_owned(), scope, filter, attrs };
        Ok(self.dir.search(&search).await?)
    }
}

/// How a password change shows in the audit line: by name, as every attribute does.
const PASSWORD: &str = "password";

/// `userName eq "x"`: the lookup Okta and Entra ID make before creating a user.
fn exact_user_name(filter: &Filter) -> Option<&str> {
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value: Value::String(name) }
            if path.name.eq_ignore_ascii_case("userName")
                && path.sub_attr.is_none()
                && path.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(USER_SCHEMA)) =>
        {
            Some(name)
        }
        _ => None,
    }
}

/// The body of a POST or PUT: an object that declares the User schema.
fn user_object(body: &Value) -> Result<&Map<String, Value>> {
    let obj = body.as_object().ok_or_else(|| scim::Error::syntax("a User must be a JSON object"))?;
    let schemas = get_ci(obj, "schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(USER_SCHEMA)))) {
        return Err(scim::Error::syntax(format!("schemas must contain {USER_SCHEMA}")).into());
    }
    Ok(obj)
}
