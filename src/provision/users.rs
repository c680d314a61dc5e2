//! `/Users`: create, read, list, replace, patch and delete against the directory.

use std::sync::Arc;

use async_trait::async_trait;

use serde_json::{Map, Value};

use super::body;
use super::members::Members;
use super::naming::{refused, Naming};
use super::paging::{Lister, Plan};
use super::store::Store;
use super::write::{undo_of, Sequence, Step};
use super::{audit, unconfirmed, Error, Resources, Result};
use crate::cache::{Ticket, UserCache};
use crate::config::UserGroups;
use crate::dialect::Dialect;
use crate::directory::{dn, Attributes, Change, Directory, DirectoryError, Entry, Scope};
use crate::mapping::{self, Entity, GroupMapping, UserMapping, Write};
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::limits::Limits;
use crate::scim::list::{list_response, list_text, Projection, Query};
use crate::scim::{self, patch, Json, USER_SCHEMA};

pub struct Users {
    dir: Arc<dyn Directory>,
    map: UserMapping,
    /// What the directory refuses that the gateway checks first (AD's sAMAccountName).
    dialect: Dialect,
    /// With groups configured: their mapping and the directory's DN attribute, for `groups`.
    groups: Option<(GroupMapping, String)>,
    cache: Arc<UserCache>,
    lister: Arc<Lister>,
    /// `[limits]`: a PATCH may not grow a list past `max_values`.
    limits: Limits,
}

impl Users {
    pub fn new(
        dir: Arc<dyn Directory>,
        map: UserMapping,
        dialect: Dialect,
        groups: Option<(GroupMapping, String)>,
        cache: Arc<UserCache>,
        lister: Arc<Lister>,
        limits: Limits,
    ) -> Self {
        Users { dir, map, dialect, groups, cache, lister, limits }
    }

    pub fn mapping(&self) -> &UserMapping {
        &self.map
    }
}

#[async_trait]
impl Resources for Users {
    /// `root` is the absolute URL of the SCIM base (`https://host/scim/v2`).
    async fn get(&self, id: &str, projection: &Projection, root: &str) -> Result<Json> {
        if let Some(entry) = self.cache.user(id).await {
            return self.answer(&entry, projection, root).await;
        }
        let ticket = self.cache.ticket();
        let entry = self.find(id).await?;
        self.remember(ticket, &entry).await;
        Ok(Json::of(&self.render(&entry, projection, root).await?))
    }

    async fn list(&self, query: &Query, caller: &str, root: &str) -> Result<Json> {
        if let Some(name) = query.filter.as_ref().and_then(exact_user_name) {
            let found = self.by_user_name(&self.map.stored_user_name(name)).await?;
            let mut resources = Vec::new();
            for e in found.iter().skip(query.start_index - 1).take(query.count) {
                resources.push(self.answer(e, &query.projection, root).await?);
            }
            return Ok(list_text(&resources, found.len(), query.start_index));
        }
        let translated = query.filter.as_ref().map(|f| self.map.ldap_filter(f)).transpose()?;
        let resource = |e: &Entry| self.map.to_resource(e, "");
        let plan = Plan::new(&self.map, query, caller, translated, &resource, self.attrs_for(&query.projection));
        let (total, entries) = self.lister.page(&self.store(), plan).await?;
        let groups = match self.members().filter(|_| query.projection.wants("groups")) {
            Some(m) => m.groups_of_page(&entries, root).await?.into_iter().map(Some).collect(),
            None => vec![None; entries.len()],
        };
        let mut resources = Vec::with_capacity(entries.len());
        for (e, groups) in entries.iter().zip(groups) {
            resources.push(self.render_with(e, &query.projection, root, groups).await?);
        }
        Ok(Json::of(&list_response(resources, total, query.start_index)))
    }

    async fn create(&self, body: &Value, root: &str) -> Result<Value> {
        let res = body::object(body, "User", USER_SCHEMA)?;
        self.refuse_unmapped(res)?;
        self.map.check_mutability(None, res)?;
        let mut w = self.to_write(res).await?;
        let names: Vec<String> = self.map.user_name(&w).into_iter().map(str::to_owned).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        // Also after a conflict: a cached "no such user" is what let the IdP try.
        if let Err(e) = self.ensure_unique(&w, None).await {
            self.cache.forget(None, &names).await;
            return Err(e);
        }
        let allocated: Attributes = self.store().allocate().await?.into_iter().collect();
        let mut naming = Naming::create(self.store(), res, &mut w.attrs).await?;
        // Unique derived values take their first free candidate, and the next one when the
        // directory refuses the add for it ([`Naming`]); a refused add landed nothing.
        let (dn, record, added) = loop {
            let (dn, plan) = self.create_plan(&w, allocated.clone())?;
            let (record, added) = plan.run(self.dir.as_ref(), &dn).await;
            match added {
                Err(Error::Directory(e)) if refused(&e) => {
                    // The userName itself taken meanwhile is a 409; anything else moves on.
                    if let Err(taken) = self.ensure_unique(&w, None).await {
                        self.cache.forget(None, &names).await;
                        return Err(taken);
                    }
                    naming.retry(e, &mut w.attrs).await?;
                }
                added => break (dn, record, added),
            }
        };
        let ticket = self.cache.forget(None, &names).await;
        let entry = match &added {
            Ok(()) => Some(self.read(&dn).await),
            Err(_) => None,
        };
        let id = entry.as_ref().and_then(|e| e.as_ref().ok()?.first(&self.map.id_attr)).unwrap_or("(not read back)");
        audit("User", "create", id, &record, added.is_err());
        added?;
        let entry = entry.expect("read after the add").map_err(unconfirmed)?;
        if !self.map.named_by_user_name() {
            self.keep_first(&entry, &w).await?;
        }
        self.remember(ticket, &entry).await;
        self.render(&entry, &Projection::default(), root).await.map_err(unconfirmed)
    }

    /// PUT: the resource replaces every mapped attribute.
    async fn replace(&self, id: &str, body: &Value, if_match: Option<&str>, root: &str) -> Result<Value> {
        let entry = self.find(id).await?;
        self.store().check_version(&entry, if_match)?;
        let res = body::replacement(body, id, "User", USER_SCHEMA)?;
        self.refuse_unmapped(res)?;
        let before = self.map.patch_base(&entry, &format!("{root}/Users"));
        self.map.check_mutability(Some(&before), res)?;
        let mut w = self.to_write(res).await?;
        Naming::update(self.store(), &entry, &before, res, &mut w.attrs).await?;
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
        let limits = self.limits.clone();
        let res = super::off_worker(move || limits.apply_patch(&mut res, &ops, USER_SCHEMA).map(|()| res)).await?;
        self.refuse_unmapped(&res)?;
        self.map.check_mutability(Some(&before), &res)?;
        let mut w = self.to_write(&res).await?;
        Naming::update(self.store(), &entry, &before, &res, &mut w.attrs).await?;
        let mut updated = self.update(entry, w, root).await?;
        if let Value::Object(obj) = &mut updated {
            projection.apply(obj);
        }
        Ok(Some(updated))
    }

    /// Out of every group first (when the directory does not do it itself), then the entry:
    /// a failure half-way leaves the entry, which the IdP's retry finds and finishes.
    async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let entry = self.find(id).await?;
        self.store().check_version(&entry, if_match)?;
        let mut plan = Sequence::new();
        if let Some(m) = self.members().filter(|m| m.groups.members.remove_deleted_users) {
            for step in m.removal_everywhere(&entry).await? {
                plan = plan.then(step);
            }
        }
        let plan = plan.then(Step::Delete { dn: entry.dn.clone() });
        let (record, deleted) = plan.run(self.dir.as_ref(), &entry.dn).await;
        let id = entry.first(&self.map.id_attr).unwrap_or(id);
        self.cache.forget(Some(id), &self.map.entry_user_name(&entry).into_iter().collect::<Vec<_>>()).await;
        audit("User", "delete", id, &record, deleted.is_err());
        deleted
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
        let dn = written?;
        let entry = self.read(&dn).await.map_err(unconfirmed)?;
        self.remember(ticket, &entry).await;
        self.render(&entry, &Projection::default(), root).await.map_err(unconfirmed)
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
    /// changed attributes, then the password: each undone if a later one fails, and the
    /// password, which cannot be undone, last. Audited from what landed. Returns the DN.
    async fn write(&self, entry: &Entry, w: &Write, id: &str) -> Result<String> {
        let old_name = self.map.entry_user_name(entry);
        if !old_name.is_some_and(|o| self.map.user_name(w).is_some_and(|n| n.eq_ignore_ascii_case(o))) {
            self.ensure_unique(w, Some(id)).await?;
        }
        let plan = self.update_plan(entry, w)?;
        let (record, written) = plan.run(self.dir.as_ref(), &entry.dn).await;
        audit("User", "update", id, &record, written.is_err());
        written.map(|()| record.dn)
    }

    /// The steps of an update: [rename] [modify] [password] [enable]. Active Directory enables
    /// an account only once it has a password, so when both come in one request the enabling
    /// follows the password (if it then fails, the password stays: the audit line says so).
    fn update_plan(&self, entry: &Entry, w: &Write) -> Result<Sequence> {
        let mut changes = self.map.user_changes(entry, w);
        let rdn = self.map.renamed(entry, &w.attrs)?;
        let mut plan = Sequence::new();
        let mut dn = entry.dn.clone();
        if let Some(rdn) = rdn {
            let back = dn::split(&entry.dn).0.to_owned();
            plan = plan.then(Step::Rename { dn: dn.clone(), rdn: rdn.clone(), back });
            dn = dn::child(&rdn, dn::split(&entry.dn).1);
            // modrdn already replaced the naming value.
            changes.retain(|c| !c.attr().eq_ignore_ascii_case(&self.map.rdn_attr));
        }
        let (after_password, changes): (Vec<Change>, Vec<Change>) = changes
            .into_iter()
            .partition(|c| w.password.is_some() && w.active == Some(true) && self.map.enabling_needs_password(c));
        if !changes.is_empty() {
            let bytes = |a: &str| entry.bytes(a).iter().map(|b| b.to_vec()).collect();
            let undo = undo_of(&changes, |a| entry.values(a).to_vec(), bytes);
            plan = plan.then(Step::Modify { dn: dn.clone(), changes, undo, stand_in: None });
        }
        if let Some(password) = &w.password {
            plan = plan.then(Step::Password { dn: dn.clone(), password: password.clone() });
        }
        if !after_password.is_empty() {
            // Irreversible by position: the password before it cannot be taken back.
            plan = plan.then(Step::Enable { dn, changes: after_password });
        }
        Ok(plan)
    }

    /// The DN of a new user for `w` and the steps that add it (with its password, which the
    /// directory adapter sets in the same unit or leaves no entry). One unit, so that a retry
    /// with another candidate name can wrap it.
    fn create_plan(&self, w: &Write, allocated: Attributes) -> Result<(String, Sequence)> {
        let (dn, attrs, binary) = self.map.new_user(w, allocated)?;
        let add = Step::Add { dn: dn.clone(), attrs, binary, password: w.password.clone() };
        Ok((dn, Sequence::new().then(add)))
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
        let plan = Sequence::new().then(Step::Delete { dn: entry.dn.clone() });
        let (record, deleted) = plan.run(self.dir.as_ref(), &entry.dn).await;
        self.cache.forget(id, &[name]).await;
        audit("User", "delete", id.unwrap_or_default(), &record, deleted.is_err());
        deleted?;
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

    /// The answer for `entry`, which may be the cached one: the JSON kept from an identical
    /// earlier request while the cache still holds this entry and the groups it showed, else
    /// rendered now and kept. Not kept when it shows references (a manager), which are read
    /// from the directory for every answer.
    async fn answer(&self, entry: &Arc<Entry>, projection: &Projection, root: &str) -> Result<Json> {
        let Some(id) = entry.first(&self.map.id_attr) else {
            return Ok(Json::of(&self.render(entry, projection, root).await?));
        };
        // Everything besides the entry and its groups that the text depends on. The mapping
        // is the target's own (each target has its cache), and a reload starts a new cache.
        let how = format!("{root}\n{}\n{}", projection.attributes.join(","), projection.excluded.join(","));
        if let Some(json) = self.cache.rendered(id, &how, entry).await {
            return Ok(json);
        }
        let (groups, cached) = match self.members().filter(|_| projection.wants("groups")) {
            Some(m) => {
                let (groups, cached) = m.groups_of_cached(entry, root).await?;
                (Some(groups), cached)
            }
            None => (None, Some(Vec::new())),
        };
        let json = Json::of(&self.render_with(entry, projection, root, groups).await?);
        let references = self.map.references().any(|r| entry.first(&r.ldap).is_some());
        if let Some(cached) = cached.filter(|_| !references) {
            self.cache.keep_rendered(id, &how, entry, &cached, &json).await;
        }
        Ok(json)
    }

    async fn render(&self, entry: &Entry, projection: &Projection, root: &str) -> Result<Value> {
        let groups = match self.members().filter(|_| projection.wants("groups")) {
            Some(m) => Some(m.groups_of(entry, root).await?),
            None => None,
        };
        self.render_with(entry, projection, root, groups).await
    }

    /// [`Self::render`] with the user's `groups` already read (`None`: not shown).
    async fn render_with(
        &self,
        entry: &Entry,
        projection: &Projection,
        root: &str,
        groups: Option<Vec<Value>>,
    ) -> Result<Value> {
        let mut v = self.map.to_resource(entry, &format!("{root}/Users"));
        if let Value::Object(obj) = &mut v {
            self.show_references(entry, obj, root).await?;
        }
        if let (Some(groups), Value::Object(obj)) = (groups.filter(|g| !g.is_empty()), &mut v) {
            obj.insert("groups".into(), Value::Array(groups));
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
