//! `/Users`: create, read, list, replace, patch and delete against the directory.

use std::sync::Arc;

use async_trait::async_trait;

use serde_json::{Map, Value};

use super::body;
use super::members::Members;
use super::paging::{Lister, Plan};
use super::store::Store;
use super::{audit, Error, Resources, Result};
use crate::cache::{Ticket, UserCache};
use crate::config::UserGroups;
use crate::dialect::Dialect;
use crate::directory::{Attributes, Binary, Directory, DirectoryError, Entry, Scope};
use crate::mapping::{self, Entity, GroupMapping, Translated, UserMapping, Write};
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::list::{list_response, Projection, Query};
use crate::scim::{self, patch, USER_SCHEMA};

pub struct Users {
    dir: Arc<dyn Directory>,
    map: UserMapping,
    /// What the directory refuses that the gateway checks first (AD's sAMAccountName).
    dialect: Dialect,
    /// With groups configured: their mapping and the directory's DN attribute, for `groups`.
    groups: Option<(GroupMapping, String)>,
    cache: Arc<UserCache>,
    lister: Arc<Lister>,
}

impl Users {
    pub fn new(
        dir: Arc<dyn Directory>,
        map: UserMapping,
        dialect: Dialect,
        groups: Option<(GroupMapping, String)>,
        cache: Arc<UserCache>,
        lister: Arc<Lister>,
    ) -> Self {
        Users { dir, map, dialect, groups, cache, lister }
    }

    pub fn mapping(&self) -> &UserMapping {
        &self.map
    }
}

#[async_trait]
impl Resources for Users {
    /// `root` is the absolute URL of the SCIM base (`https://host/scim/v2`).
    async fn get(&self, id: &str, projection: &Projection, root: &str) -> Result<Value> {
        if let Some(entry) = self.cache.user(id).await {
            return self.render(&entry, projection, root).await;
        }
        let ticket = self.cache.ticket();
        let entry = self.find(id).await?;
        self.remember(ticket, &entry).await;
        self.render(&entry, projection, root).await
    }

    async fn list(&self, query: &Query, caller: &str, root: &str) -> Result<Value> {
        if let Some(name) = query.filter.as_ref().and_then(exact_user_name) {
            let found = self.by_user_name(&self.map.stored_user_name(name)).await?;
            let mut resources = Vec::new();
            for e in found.iter().skip(query.start_index - 1).take(query.count) {
                resources.push(self.render(e, &query.projection, root).await?);
            }
            return Ok(list_response(resources, found.len(), query.start_index));
        }
        let translated = match &query.filter {
            Some(f) => self.map.ldap_filter(f)?,
            None => Translated { filter: self.map.filter.clone(), exact: true },
        };
        let resource = |e: &Entry| match self.map.to_resource(e, "") {
            Value::Object(r) => r,
            _ => Map::new(),
        };
        let plan = Plan {
            translated,
            query,
            key: format!("User\n{caller}\n{}", query.result_key()),
            resource: &resource,
            schema: USER_SCHEMA,
            attrs: self.attrs_for(&query.projection),
        };
        let (total, entries) = self.lister.page(&self.store(), plan).await?;
        let mut resources = Vec::with_capacity(entries.len());
        for e in &entries {
            resources.push(self.render(e, &query.projection, root).await?);
        }
        Ok(list_response(resources, total, query.start_index))
    }

    async fn create(&self, body: &Value, root: &str) -> Result<Value> {
        let res = body::object(body, "User", USER_SCHEMA)?;
        self.refuse_unmapped(res)?;
        self.map.check_mutability(None, res)?;
        let w = self.to_write(res).await?;
        let allocated = self.store().allocate().await?;
        let (dn, attrs, binary) = self.map.new_user(&w, allocated.into_iter().collect())?;
        let added = self.add(&dn, &attrs, &binary, &w).await;
        // Also after a conflict: a cached "no such user" is what let the IdP try.
        let ticket = self.cache.forget(None, &self.map.user_name(&w).into_iter().collect::<Vec<_>>()).await;
        added?;
        let entry = self.read(&dn).await;
        let id = entry.as_ref().ok().and_then(|e| e.first(&self.map.id_attr)).unwrap_or("(not read back)");
        let password = w.password.as_ref().map(|_| PASSWORD);
        audit(
            "User",
            "create",
            id,
            attrs.iter().map(|(a, _)| a.as_str()).chain(binary.iter().map(|(a, _)| a.as_str())).chain(password),
        );
        let entry = entry?;
        if !self.map.named_by_user_name() {
            self.keep_first(&entry, &w).await?;
        }
        self.remember(ticket, &entry).await;
        self.render(&entry, &Projection::default(), root).await
    }

    /// PUT: the resource replaces every mapped attribute.
    async fn replace(&self, id: &str, body: &Value, if_match: Option<&str>, root: &str) -> Result<Value> {
        let entry = self.find(id).await?;
        self.store().check_version(&entry, if_match)?;
        let res = body::replacement(body, id, "User", USER_SCHEMA)?;
        self.refuse_unmapped(res)?;
        let before = self.map.patch_base(&entry, &format!("{root}/Users"));
        self.map.check_mutability(Some(&before), res)?;
        let w = self.to_write(res).await?;
        self.update(entry, w, root).await
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
        self.store().check_version(&entry, if_match)?;
        let mut res = self.map.patch_base(&entry, &format!("{root}/Users"));
        self.show_references(&entry, &mut res, root).await?;
        let before = res.clone();
        patch::apply(&mut res, &ops, USER_SCHEMA)?;
        self.refuse_unmapped(&res)?;
        self.map.check_mutability(Some(&before), &res)?;
        let w = self.to_write(&res).await?;
        let mut updated = self.update(entry, w, root).await?;
        if let Value::Object(obj) = &mut updated {
            projection.apply(obj);
        }
        Ok(Some(updated))
    }

    async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let entry = self.find(id).await?;
        self.store().check_version(&entry, if_match)?;
        let deleted = self.dir.delete(&entry.dn).await;
        let id = entry.first(&self.map.id_attr).unwrap_or(id);
        self.cache.forget(Some(id), &self.map.entry_user_name(&entry).into_iter().collect::<Vec<_>>()).await;
        deleted?;
        audit("User", "delete", id, []);
        match self.members() {
            Some(m) if m.groups.members.remove_deleted_users => m.remove_everywhere(&entry).await,
            _ => Ok(()),
        }
    }
}

impl Users {
    /// Makes `entry` hold `w`, then reads it back.
    async fn update(&self, entry: Entry, w: Write, root: &str) -> Result<Value> {
        let id = entry.first(&self.map.id_attr).unwrap_or_default().to_owned();
        let written = match self.write(&entry, &w, &id).await {
            // A value the modify deletes changed since the read (another writer set a bit of
            // userAccountControl, say): nothing was overwritten. Read again and redo once.
            Err(Error::Directory(DirectoryError::Rejected { code: 16, .. })) => match self.find(&id).await {
                Ok(fresh) => self.write(&fresh, &w, &id).await,
                Err(e) => Err(e),
            },
            other => other,
        };
        let names: Vec<&str> = self.map.entry_user_name(&entry).into_iter().chain(self.map.user_name(&w)).collect();
        let ticket = self.cache.forget(Some(&id), &names).await;
        let (dn, changed) = written?;
        if !changed.is_empty() {
            audit("User", "update", &id, changed.iter().map(String::as_str));
        }
        let entry = self.read(&dn).await?;
        self.remember(ticket, &entry).await;
        self.render(&entry, &Projection::default(), root).await
    }

    /// What `res` asks the directory to hold, with references (a manager's id) resolved to DNs.
    async fn to_write(&self, res: &Map<String, Value>) -> Result<Write> {
        let mut w = self.map.to_write(res)?;
        // Refused here when the directory could not hold it.
        mapping::check_user(self.dialect, &w.attrs).map_err(scim::Error::value)?;
        for rule in self.map.references() {
            for value in w.attrs.get_mut(&rule.ldap).into_iter().flatten() {
                let unknown = || scim::Error::value(format!("{}: no user has the id {value:?}", rule.target));
                let dn = match self.cache.user(value).await {
                    Some(e) => e.dn.clone(),
                    None => match self.find(value).await {
                        Ok(e) => e.dn,
                        Err(Error::NotFound(_)) => return Err(unknown().into()),
                        Err(e) => return Err(e),
                    },
                };
                *value = dn;
            }
        }
        Ok(w)
    }

    /// Shows each reference (a manager's DN) as the SCIM id, `$ref` and display name of the
    /// user it names: one read of that entry. A DN naming no user served here is left out.
    async fn show_references(&self, entry: &Entry, res: &mut Map<String, Value>, root: &str) -> Result<()> {
        let display = self.map.rule_for("displayName").map(|r| r.ldap.clone());
        for rule in self.map.references() {
            let Some(dn) = entry.first(&rule.ldap) else { continue };
            let attrs = [Some(self.map.id_attr.clone()), display.clone()].into_iter().flatten().collect();
            let target = match self.store().read(dn, attrs).await {
                Ok(e) => Some(e),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            let fields = target.as_ref().and_then(|t| {
                let id = t.first(&self.map.id_attr)?;
                let mut fields = Map::new();
                fields.insert("value".into(), id.into());
                fields.insert("$ref".into(), format!("{root}/Users/{id}").into());
                if let Some(name) = display.as_deref().and_then(|a| t.first(a)) {
                    fields.insert("displayName".into(), name.into());
                }
                Some(fields)
            });
            self.map.set_reference(res, rule, fields);
        }
        Ok(())
    }

    /// With `strict`, a request naming attributes no rule stores is refused, not half-applied.
    fn refuse_unmapped(&self, res: &Map<String, Value>) -> Result<()> {
        refuse_unmapped(&self.map, res, &["active", "password", "groups"])
    }

    /// A rename when the naming value changes (so the id stays), then one modify of the
    /// changed attributes, then the password. Returns the DN and the names of what changed.
    async fn write(&self, entry: &Entry, w: &Write, id: &str) -> Result<(String, Vec<String>)> {
        let old_name = self.map.entry_user_name(entry);
        if !old_name.is_some_and(|o| self.map.user_name(w).is_some_and(|n| n.eq_ignore_ascii_case(o))) {
            self.ensure_unique(w, Some(id)).await?;
        }
        let changes = self.map.user_changes(entry, w);
        let mut changed: Vec<String> = changes.iter().map(|c| c.attr().to_owned()).collect();
        let rdn = self.map.renamed(entry, &w.attrs)?;
        // The password first: AD enables an account only once it has one.
        if let Some(password) = &w.password {
            self.dir.set_password(&entry.dn, password).await?;
            changed.push(PASSWORD.into());
        }
        let dn = self.store().write(entry, rdn, changes, None).await?;
        Ok((dn, changed))
    }

    /// Adds the entry with its password, or leaves no entry behind.
    async fn add(&self, dn: &str, attrs: &Attributes, binary: &Binary, w: &Write) -> Result<()> {
        self.ensure_unique(w, None).await?;
        self.dir.add(dn, attrs, binary, w.password.as_deref()).await.map_err(|e| self.conflict(e, w))
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
        let attrs = vec![id_attr.clone(), version_attr.clone()];
        let holders = self.store().search(&self.map.base_dn, Scope::Subtree, filter, attrs).await?;
        let id = entry.first(id_attr);
        let earlier = |h: &Entry| h.first(id_attr) != id && h.first(version_attr).is_some_and(|v| older(v, version));
        if !holders.iter().any(earlier) {
            return Ok(());
        }
        self.dir.delete(&entry.dn).await?;
        self.cache.forget(id, &[name]).await;
        audit("User", "delete", id.unwrap_or_default(), []);
        Err(Error::Uniqueness(format!("userName {name:?} was taken by a concurrent create")))
    }

    /// The users whose stored userName is `name`: Okta's lookup before each create, from the
    /// cache when it can be.
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
        let filter = self.map.user_name_filter(name);
        let found = self.store().search(&self.map.base_dn, Scope::Subtree, filter, self.attrs()).await?;
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

    /// 409 when another user already has `w`'s userName (case-insensitively, as LDAP matches).
    async fn ensure_unique(&self, w: &Write, except_id: Option<&str>) -> Result<()> {
        let Some(name) = self.map.user_name(w) else { return Ok(()) };
        let found = self
            .store()
            .search(&self.map.base_dn, Scope::Subtree, self.map.user_name_filter(name), vec![self.map.id_attr.clone()])
            .await?;
        if found.iter().any(|e| e.first(&self.map.id_attr) != except_id) {
            return Err(Error::Uniqueness(format!("userName {name:?} is already taken")));
        }
        Ok(())
    }

    fn conflict(&self, e: DirectoryError, w: &Write) -> Error {
        match e {
            DirectoryError::AlreadyExists => Error::Uniqueness(format!(
                "an entry named {} already exists",
                self.map.rdn(&w.attrs).unwrap_or_default()
            )),
            e => e.into(),
        }
    }

    async fn render(&self, entry: &Entry, projection: &Projection, root: &str) -> Result<Value> {
        let mut v = self.map.to_resource(entry, &format!("{root}/Users"));
        if let Value::Object(obj) = &mut v {
            self.show_references(entry, obj, root).await?;
        }
        if let (Some(m), Value::Object(obj)) = (self.members(), &mut v) {
            if projection.wants("groups") {
                let groups = m.groups_of(entry, root).await?;
                if !groups.is_empty() {
                    obj.insert("groups".into(), Value::Array(groups));
                }
            }
        }
        if let Value::Object(obj) = &mut v {
            projection.apply(obj);
        }
        Ok(v)
    }

    /// What a read asks for: the mapped attributes, and `memberOf` when `groups` come from it.
    fn attrs(&self) -> Vec<String> {
        self.attrs_for(&Projection::default())
    }

    /// What a read for an answer showing `projection` asks for.
    fn attrs_for(&self, projection: &Projection) -> Vec<String> {
        let mut attrs = self.map.read_attrs_for(projection);
        let member_of = self.groups.as_ref().is_some_and(|(g, _)| g.members.user_groups == UserGroups::MemberOf);
        if member_of && projection.wants("groups") {
            attrs.push("memberOf".into());
        }
        attrs
    }

    fn members(&self) -> Option<Members<'_>> {
        let (groups, dn_attr) = self.groups.as_ref()?;
        Some(Members { dir: self.dir.as_ref(), users: &self.map, groups, dn_attr, cache: &self.cache })
    }

    fn store(&self) -> Store<'_> {
        Store { dir: self.dir.as_ref(), entity: &self.map }
    }

    async fn find(&self, id: &str) -> Result<Entry> {
        self.store().find(id, self.attrs()).await
    }

    async fn read(&self, dn: &str) -> Result<Entry> {
        self.store().read(dn, self.attrs()).await
    }
}

/// 400 when `entity` is strict and `res` carries attributes it does not store.
pub(super) fn refuse_unmapped(entity: &Entity, res: &Map<String, Value>, handled: &[&str]) -> Result<()> {
    let unmapped = if entity.strict { entity.unmapped(res, handled) } else { Vec::new() };
    match unmapped.is_empty() {
        true => Ok(()),
        false => Err(scim::Error::value(format!(
            "not stored by this gateway (strict = true): {}; map them in gateway.toml or leave them out",
            unmapped.join(", ")
        ))
        .into()),
    }
}

/// Whether version `a` was written before `b`: numbers (AD's uSNChanged) compare as numbers,
/// anything else (OpenLDAP's entryCSN, a timestamp) as text.
fn older(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => a < b,
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
