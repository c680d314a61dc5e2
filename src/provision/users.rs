//! `/Users`: create, read, list, replace, patch and delete against the directory.

use std::sync::Arc;

use async_trait::async_trait;

use serde_json::{Map, Value};

use super::members::Members;
use super::store::Store;
use super::{Error, Resources, Result};
use crate::config::UserGroups;
use crate::directory::{Directory, DirectoryError, Entry, Scope};
use crate::mapping::{Entity, GroupMapping, UserMapping, Write};
use crate::scim::json::get_ci;
use crate::scim::list::{list_response, Projection, Query};
use crate::scim::{self, patch, USER_SCHEMA};

pub struct Users {
    dir: Arc<dyn Directory>,
    map: UserMapping,
    /// With groups configured: their mapping and the directory's DN attribute, for `groups`.
    groups: Option<(GroupMapping, String)>,
}

impl Users {
    pub fn new(dir: Arc<dyn Directory>, map: UserMapping, groups: Option<(GroupMapping, String)>) -> Self {
        Users { dir, map, groups }
    }

    pub fn mapping(&self) -> &UserMapping {
        &self.map
    }
}

#[async_trait]
impl Resources for Users {
    /// `root` is the absolute URL of the SCIM base (`https://host/scim/v2`).
    async fn get(&self, id: &str, projection: &Projection, root: &str) -> Result<Value> {
        let entry = self.find(id).await?;
        self.render(&entry, projection, root).await
    }

    async fn list(&self, query: &Query, root: &str) -> Result<Value> {
        let filter = match &query.filter {
            Some(f) => self.map.ldap_filter(f)?,
            None => self.map.filter.clone(),
        };
        let (total, entries) = self.store().page(filter, query, self.attrs()).await?;
        let mut resources = Vec::with_capacity(entries.len());
        for e in &entries {
            resources.push(self.render(e, &query.projection, root).await?);
        }
        Ok(list_response(resources, total, query.start_index))
    }

    async fn create(&self, body: &Value, root: &str) -> Result<Value> {
        let res = user_object(body)?;
        self.refuse_unmapped(res)?;
        let w = self.map.to_write(res)?;
        self.ensure_unique(&w, None).await?;
        let allocated = self.store().allocate().await?;
        let (dn, attrs) = self.map.new_user(&w, allocated.into_iter().collect())?;
        self.dir.add(&dn, &attrs).await.map_err(|e| self.conflict(e, &w))?;
        if let Some(password) = &w.password {
            if let Err(e) = self.dir.set_password(&dn, password).await {
                // A user without the password the IdP set is worse than none: undo the add.
                if let Err(undo) = self.dir.delete(&dn).await {
                    tracing::error!(%dn, error = %undo, "could not remove a user whose password was refused");
                }
                return Err(e.into());
            }
        }
        let entry = self.read(&dn).await?;
        self.render(&entry, &Projection::default(), root).await
    }

    /// PUT: the resource replaces every mapped attribute.
    async fn replace(&self, id: &str, body: &Value, if_match: Option<&str>, root: &str) -> Result<Value> {
        let entry = self.find(id).await?;
        self.store().check_version(&entry, if_match)?;
        let res = user_object(body)?;
        if get_ci(res, "id").is_some_and(|v| v.as_str() != Some(id)) {
            return Err(scim::Error::mutability("id is read-only and differs from the resource's").into());
        }
        self.refuse_unmapped(res)?;
        let w = self.map.to_write(res)?;
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
        let Value::Object(mut res) = self.map.to_resource(&entry, &format!("{root}/Users")) else {
            unreachable!("resources are objects")
        };
        patch::apply(&mut res, &ops, USER_SCHEMA)?;
        self.refuse_unmapped(&res)?;
        let w = self.map.to_write(&res)?;
        let mut updated = self.update(entry, w, root).await?;
        if let Value::Object(obj) = &mut updated {
            projection.apply(obj);
        }
        Ok(Some(updated))
    }

    async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let entry = self.find(id).await?;
        self.store().check_version(&entry, if_match)?;
        self.dir.delete(&entry.dn).await?;
        match self.members() {
            Some(m) if m.groups.members.remove_deleted_users => m.remove_everywhere(&entry).await,
            _ => Ok(()),
        }
    }
}

impl Users {
    /// Makes `entry` hold `w`: a rename when the naming value changes (so the id stays),
    /// then one modify of the changed attributes, then the password.
    async fn update(&self, entry: Entry, w: Write, root: &str) -> Result<Value> {
        let id = entry.first(&self.map.id_attr).unwrap_or_default().to_owned();
        let old_name = self.map.entry_user_name(&entry);
        if !old_name.is_some_and(|o| self.map.user_name(&w).is_some_and(|n| n.eq_ignore_ascii_case(o))) {
            self.ensure_unique(&w, Some(&id)).await?;
        }
        let changes = self.map.user_changes(&entry, &w);
        let rdn = self.map.renamed(&entry, &w.attrs)?;
        let dn = self.store().write(&entry, rdn, changes, None).await?;
        if let Some(password) = &w.password {
            self.dir.set_password(&dn, password).await?;
        }
        let entry = self.read(&dn).await?;
        self.render(&entry, &Projection::default(), root).await
    }

    /// With `strict`, a request naming attributes no rule stores is refused, not half-applied.
    fn refuse_unmapped(&self, res: &Map<String, Value>) -> Result<()> {
        refuse_unmapped(&self.map, res, &["active", "password", "groups"])
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
        let mut attrs = self.map.read_attrs.clone();
        if self.groups.as_ref().is_some_and(|(g, _)| g.members.user_groups == UserGroups::MemberOf) {
            attrs.push("memberOf".into());
        }
        attrs
    }

    fn members(&self) -> Option<Members<'_>> {
        let (groups, dn_attr) = self.groups.as_ref()?;
        Some(Members { dir: self.dir.as_ref(), users: &self.map, groups, dn_attr })
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

/// The body of a POST or PUT: an object that declares the User schema.
fn user_object(body: &Value) -> Result<&Map<String, Value>> {
    let obj = body.as_object().ok_or_else(|| scim::Error::syntax("a User must be a JSON object"))?;
    let schemas = get_ci(obj, "schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(USER_SCHEMA)))) {
        return Err(scim::Error::syntax(format!("schemas must contain {USER_SCHEMA}")).into());
    }
    Ok(obj)
}
