//! `/Groups`: groups and their members. A PATCH's member operations are applied in order to
//! the member set and written as one change of just the values that differ; the member list
//! is read only to show it, or when an operation replaces or removes all of it.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use serde_json::Value;

use super::body;
use super::members::net_change;
use super::members::Members;
use super::paging::{Lister, Plan};
use super::store::Store;
use super::users::refuse_unmapped;
use super::write::{undo_of, Sequence, Step};
use super::{audit, unconfirmed, Error, Resources, Result};
use crate::cache::UserCache;
use crate::config::UserGroups;
use crate::directory::{dn, Change, Directory, DirectoryError, Entry};
use crate::mapping::{member_refs, split_member_ops, GroupMapping, MemberOp, MemberRef, UserMapping, Values};
use crate::scim::json::get_ci;
use crate::scim::list::{list_response, Projection, Query};
use crate::scim::{self, patch, Json, GROUP_SCHEMA};

pub struct Groups {
    dir: Arc<dyn Directory>,
    map: GroupMapping,
    users: UserMapping,
    dn_attr: String,
    /// Cached users carry `memberOf`, which group writes change.
    user_cache: Arc<UserCache>,
    lister: Arc<Lister>,
}

impl Groups {
    pub fn new(
        dir: Arc<dyn Directory>,
        map: GroupMapping,
        users: UserMapping,
        dn_attr: String,
        user_cache: Arc<UserCache>,
        lister: Arc<Lister>,
    ) -> Self {
        Groups { dir, map, users, dn_attr, user_cache, lister }
    }

    pub fn mapping(&self) -> &GroupMapping {
        &self.map
    }
}

#[async_trait]
impl Resources for Groups {
    /// `root` is the absolute URL of the SCIM base (`https://host/scim/v2`).
    async fn get(&self, id: &str, projection: &Projection, root: &str) -> Result<Json> {
        let with_members = projection.wants("members");
        let entry = self.store().find(id, self.attrs_for(projection, with_members)).await?;
        Ok(Json::of(&self.render(&entry, projection, root, with_members).await?))
    }

    async fn list(&self, query: &Query, caller: &str, root: &str) -> Result<Json> {
        let translated = match &query.filter {
            Some(f) => {
                let ids = self.map.member_ids(f);
                let resolved = self.members().by_id(&ids.iter().map(String::as_str).collect::<Vec<_>>()).await?;
                let t = self.map.ldap_filter(f, &resolved)?;
                if !t.exact && self.map.mentions_members(f) {
                    return Err(scim::Error::filter(
                        "a condition on members cannot be combined with conditions the gateway checks itself \
                         (ordering on strings, case-exact attributes)",
                    )
                    .into());
                }
                Some(t)
            }
            None => None,
        };
        let with_members = query.projection.wants("members");
        let resource = |e: &Entry| self.map.to_resource(e, "", None);
        let attrs = self.attrs_for(&query.projection, with_members);
        let plan = Plan::new(&self.map, query, caller, translated, &resource, attrs);
        let (total, entries) = self.lister.page(&self.store(), plan).await?;
        let mut resources = Vec::with_capacity(entries.len());
        for e in &entries {
            resources.push(self.render(e, &query.projection, root, with_members).await?);
        }
        Ok(Json::of(&list_response(resources, total, query.start_index)))
    }

    async fn create(&self, body: &Value, root: &str) -> Result<Value> {
        let res = body::object(body, "Group", GROUP_SCHEMA)?;
        refuse_unmapped(&self.map, res, &["members"])?;
        self.map.check_mutability(None, res)?;
        let values = self.map.values(res)?;
        self.require_display_name(&values)?;
        let refs = member_refs(get_ci(res, "members").unwrap_or(&Value::Null))?;
        let mut members = self.members().values(&refs, true).await?;
        dedup_ci(&mut members);
        let attr = self.map.members.attr.clone();
        let mut extra = Vec::new();
        match (&self.map.members.empty_member, members.is_empty()) {
            (Some(stand_in), true) => extra.push((attr, vec![stand_in.clone()])),
            (_, false) => extra.push((attr, members)),
            (None, true) => {}
        }
        extra.extend(self.store().allocate().await?);
        extra.extend(self.map.members.on_create.iter().cloned());
        let (dn, attrs, binary) = self.map.new_entry(&values, extra)?;
        self.refuse_stand_in(&dn)?;
        let add = Sequence::new().then(Step::Add { dn: dn.clone(), attrs, binary, password: None });
        let (record, added) = add.run(self.dir.as_ref(), &dn).await;
        self.members_changed(Some(&refs)).await;
        let entry = match &added {
            Ok(()) => Some(self.store().read(&dn, self.attrs(true)).await),
            Err(_) => None,
        };
        let id = entry.as_ref().and_then(|e| e.as_ref().ok()?.first(&self.map.id_attr)).unwrap_or("(not read back)");
        audit("Group", "create", id, &record, added.is_err());
        added.map_err(|e| match e {
            Error::Directory(DirectoryError::AlreadyExists) => {
                Error::Uniqueness(format!("a group named like this already exists ({dn})"))
            }
            e => e,
        })?;
        let entry = entry.expect("read after the add").map_err(unconfirmed)?;
        self.render(&entry, &Projection::default(), root, true).await.map_err(unconfirmed)
    }

    /// PUT: attributes and the whole member list; members change by the difference only.
    async fn replace(&self, id: &str, body: &Value, if_match: Option<&str>, root: &str) -> Result<Value> {
        let entry = self.store().find(id, self.attrs(true)).await?;
        self.store().check_version(&entry, if_match)?;
        let res = body::replacement(body, id, "Group", GROUP_SCHEMA)?;
        refuse_unmapped(&self.map, res, &["members"])?;
        self.map.check_mutability(Some(&self.map.patch_base(&entry, "")), res)?;
        let values = self.map.values(res)?;
        let refs = member_refs(get_ci(res, "members").unwrap_or(&Value::Null))?;
        let wanted = self.members().values(&refs, true).await?;
        let member_changes = self.difference(&entry, wanted);
        let dn = self.update(&entry, values, member_changes, None).await?;
        let entry = self.store().read(&dn, self.attrs(true)).await.map_err(unconfirmed)?;
        self.render(&entry, &Projection::default(), root, true).await.map_err(unconfirmed)
    }

    async fn patch(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        projection: &Projection,
        root: &str,
    ) -> Result<Option<Value>> {
        let (member_ops, others) = split_member_ops(patch::parse(body)?)?;
        // Only a whole replacement or removal needs the current members.
        let needs_members = member_ops.iter().any(|m| matches!(m, MemberOp::Replace(_) | MemberOp::RemoveAll));
        let entry = self.store().find(id, self.attrs(needs_members)).await?;
        self.store().check_version(&entry, if_match)?;
        let mut res = self.map.patch_base(&entry, &format!("{root}/Groups"));
        let before = res.clone();
        patch::apply(&mut res, &others, GROUP_SCHEMA)?;
        refuse_unmapped(&self.map, &res, &["members"])?;
        self.map.check_mutability(Some(&before), &res)?;
        let values = self.map.values(&res)?;
        let attr = &self.map.members.attr;
        // Adds and removes by id touch only those users' memberOf; the rest may touch any.
        let mut touched = Some(Vec::new());
        for op in &member_ops {
            match (op, &mut touched) {
                (MemberOp::Add(refs) | MemberOp::Remove(refs), Some(t)) => t.extend(refs.iter().cloned()),
                _ => touched = None,
            }
        }
        // Every id the operations name, resolved in batched searches; then the operations
        // applied in order to the member set, and one change written.
        let ids: Vec<&str> = member_ops
            .iter()
            .flat_map(|op| match op {
                MemberOp::Add(refs) | MemberOp::Remove(refs) | MemberOp::Replace(refs) => refs.as_slice(),
                MemberOp::RemoveAll => &[],
            })
            .map(|r| r.id.as_str())
            .collect();
        let by_id = self.members().by_id(&ids).await?;
        let current: Option<Vec<String>> = needs_members.then(|| self.map.member_values(&entry).cloned().collect());
        let (adds, deletes) = net_change(&member_ops, current.as_deref(), &by_id)?;
        let mut member_changes = vec![Change::Add(attr.clone(), adds), Change::Delete(attr.clone(), deletes)];
        member_changes.retain(|c| !matches!(c, Change::Add(_, v) | Change::Delete(_, v) if v.is_empty()));
        let dn = self.update(&entry, values, member_changes, touched.as_deref()).await?;
        if projection.is_empty() {
            return Ok(None);
        }
        let with_members = projection.wants("members");
        let entry = self.store().read(&dn, self.attrs(with_members)).await.map_err(unconfirmed)?;
        self.render(&entry, projection, root, with_members).await.map(Some).map_err(unconfirmed)
    }

    async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let entry = self.store().find(id, self.map.read_attrs.clone()).await?;
        self.store().check_version(&entry, if_match)?;
        let delete = Sequence::new().then(Step::Delete { dn: entry.dn.clone() });
        let (record, deleted) = delete.run(self.dir.as_ref(), &entry.dn).await;
        self.members_changed(None).await;
        self.user_cache.forget_groups();
        audit("Group", "delete", entry.first(&self.map.id_attr).unwrap_or(id), &record, deleted.is_err());
        deleted
    }
}

impl Groups {
    /// Writes `values` and the member changes; returns the group's DN afterwards.
    /// `touched`: the only members whose membership the changes may alter (None: any).
    async fn update(
        &self,
        entry: &Entry,
        values: Values,
        mut changes: Vec<Change>,
        touched: Option<&[MemberRef]>,
    ) -> Result<String> {
        self.require_display_name(&values)?;
        changes.splice(0..0, self.map.changes(entry, &values));
        let rdn = self.map.renamed(entry, &values)?;
        if let Some(rdn) = &rdn {
            self.refuse_stand_in(&crate::directory::dn::child(rdn, crate::directory::dn::split(&entry.dn).1))?;
        }
        // A rename or a new display name changes what users' `groups` show; members alone do not.
        let described = rdn.is_some() || changes.iter().any(|c| !c.attr().eq_ignore_ascii_case(&self.map.members.attr));
        // A rename changes the DN every member's memberOf holds.
        let touched = touched.filter(|_| rdn.is_none());
        let steps = self.update_steps(entry, rdn, changes);
        let (record, written) = steps.run(self.dir.as_ref(), &entry.dn).await;
        self.members_changed(touched).await;
        if described {
            self.user_cache.forget_groups();
        }
        audit("Group", "update", entry.first(&self.map.id_attr).unwrap_or_default(), &record, written.is_err());
        written.map(|()| record.dn)
    }

    /// [rename] [modify]: the rename first (so the id stays), undone if the modify fails.
    fn update_steps(&self, entry: &Entry, rdn: Option<String>, mut changes: Vec<Change>) -> Sequence {
        let mut steps = Sequence::new();
        let mut dn = entry.dn.clone();
        if let Some(rdn) = rdn {
            let back = dn::split(&entry.dn).0.to_owned();
            steps = steps.then(Step::Rename { dn: dn.clone(), rdn: rdn.clone(), back });
            dn = dn::child(&rdn, dn::split(&entry.dn).1);
            // modrdn already replaced the naming value.
            changes.retain(|c| !c.attr().eq_ignore_ascii_case(&self.map.rdn_attr));
        }
        let stand_in = self.map.members.empty_member.clone().map(|s| (self.map.members.attr.clone(), s));
        for changes in per_modify(changes) {
            let bytes = |a: &str| entry.bytes(a).iter().map(|b| b.to_vec()).collect();
            let undo = undo_of(&changes, |a| entry.values(a).to_vec(), bytes);
            steps = steps.then(Step::Modify { dn: dn.clone(), changes, undo, stand_in: stand_in.clone() });
        }
        steps
    }

    /// After any group write, whether or not it succeeded: the members' `memberOf` may have
    /// changed (so may a renamed group's DN in it), and cached users carry it. `touched` names
    /// the only users it can have changed; None drops every cached user.
    async fn members_changed(&self, touched: Option<&[MemberRef]>) {
        if self.map.members.user_groups != UserGroups::MemberOf {
            return;
        }
        match touched {
            Some(refs) => {
                for r in refs {
                    self.user_cache.forget(Some(&r.id), &[]).await;
                }
            }
            None => self.user_cache.forget_users(),
        }
    }

    /// The adds and deletes that turn `entry`'s members into `wanted` (DNs compare ignoring case).
    fn difference(&self, entry: &Entry, wanted: Vec<String>) -> Vec<Change> {
        let current: Vec<&String> = self.map.member_values(entry).collect();
        let have: HashSet<String> = current.iter().map(|v| v.to_lowercase()).collect();
        let want: HashSet<String> = wanted.iter().map(|v| v.to_lowercase()).collect();
        let mut adds: Vec<String> = wanted.into_iter().filter(|v| !have.contains(&v.to_lowercase())).collect();
        dedup_ci(&mut adds);
        let deletes: Vec<String> = current.into_iter().filter(|v| !want.contains(&v.to_lowercase())).cloned().collect();
        let attr = &self.map.members.attr;
        [Change::Add(attr.clone(), adds), Change::Delete(attr.clone(), deletes)]
            .into_iter()
            .filter(|c| !matches!(c, Change::Add(_, v) | Change::Delete(_, v) if v.is_empty()))
            .collect()
    }

    async fn render(&self, entry: &Entry, projection: &Projection, root: &str, with_members: bool) -> Result<Value> {
        let members = match with_members {
            true => {
                let values: Vec<&str> = self.map.member_values(entry).map(String::as_str).collect();
                Some(self.members().resolve(&values, root).await?)
            }
            false => None,
        };
        let mut v = self.map.to_resource(entry, &format!("{root}/Groups"), members);
        if let Value::Object(obj) = &mut v {
            projection.apply(obj);
        }
        Ok(v)
    }

    fn require_display_name(&self, values: &Values) -> Result<()> {
        Ok(self.map.require_name(values, "displayName")?)
    }

    /// A group may not take the DN of the empty-group stand-in: every "empty" group would
    /// then list a real member.
    fn refuse_stand_in(&self, dn: &str) -> Result<()> {
        match &self.map.members.empty_member {
            Some(s) if crate::directory::dn::same(dn, s) => Err(scim::Error::value(
                "this displayName names the entry that stands in for empty groups (empty_member)",
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// The attributes to read; the member list only when it is needed.
    fn attrs(&self, with_members: bool) -> Vec<String> {
        self.attrs_for(&Projection::default(), with_members)
    }

    /// What a read for an answer showing `projection` asks for.
    fn attrs_for(&self, projection: &Projection, with_members: bool) -> Vec<String> {
        let mut attrs = self.map.read_attrs_for(projection);
        if with_members {
            attrs.push(self.map.members.attr.clone());
        }
        attrs
    }

    fn store(&self) -> Store<'_> {
        Store { dir: self.dir.as_ref(), entity: &self.map }
    }

    fn members(&self) -> Members<'_> {
        Members {
            dir: self.dir.as_ref(),
            users: &self.users,
            groups: &self.map,
            dn_attr: &self.dn_attr,
            cache: &self.user_cache,
        }
    }
}

/// Member values one modify carries at most. Each value costs the directory its own work
/// (the memberof overlay rewrites every member's entry: about 8 ms a value on the test
/// machine), so a change of thousands goes as several modifies, each within
/// `operation_timeout_secs`, each undone if a later one fails.
const MEMBER_VALUES_PER_MODIFY: usize = 500;

/// `changes` as the modifies that carry them: one, unless member values exceed
/// [`MEMBER_VALUES_PER_MODIFY`]; the attributes other than members go with the first.
fn per_modify(changes: Vec<Change>) -> Vec<Vec<Change>> {
    let mut modifies: Vec<Vec<Change>> = Vec::new();
    let (mut current, mut values) = (Vec::new(), 0);
    for change in changes {
        let (adds, attr, list) = match change {
            Change::Add(a, v) if !v.is_empty() => (true, a, v),
            Change::Delete(a, v) if !v.is_empty() => (false, a, v),
            other => {
                current.push(other);
                continue;
            }
        };
        for chunk in list.chunks(MEMBER_VALUES_PER_MODIFY) {
            if values + chunk.len() > MEMBER_VALUES_PER_MODIFY {
                modifies.push(std::mem::take(&mut current));
                values = 0;
            }
            values += chunk.len();
            current.push(match adds {
                true => Change::Add(attr.clone(), chunk.to_vec()),
                false => Change::Delete(attr.clone(), chunk.to_vec()),
            });
        }
    }
    if !current.is_empty() {
        modifies.push(current);
    }
    modifies
}

/// Removes case-insensitive duplicates, keeping the first spelling.
fn dedup_ci(values: &mut Vec<String>) {
    let mut seen = HashSet::new();
    values.retain(|v| seen.insert(v.to_lowercase()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_member_changes_go_as_several_modifies() {
        let values = |n: usize| (0..n).map(|i| format!("uid=u{i}")).collect::<Vec<_>>();
        let title = Change::Replace("description".into(), vec!["x".into()]);
        let small = per_modify(vec![title.clone(), Change::Add("member".into(), values(3))]);
        assert_eq!(small.len(), 1, "one modify for a usual change");
        let big = per_modify(vec![
            title.clone(),
            Change::Add("member".into(), values(1200)),
            Change::Delete("member".into(), values(100)),
        ]);
        let sizes: Vec<usize> = big
            .iter()
            .map(|m| m.iter().map(|c| if let Change::Add(_, v) | Change::Delete(_, v) = c { v.len() } else { 0 }).sum())
            .collect();
        assert_eq!(sizes, [500, 500, 300]);
        assert_eq!(big[0][0], title, "the other attributes go with the first");
        assert!(per_modify(Vec::new()).is_empty());
    }
}
