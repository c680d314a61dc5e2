//! `/Groups` over a table and its membership table: a create with its members, a PUT, and
//! a PATCH of attributes and members (Okta's and Entra's forms) are each one transaction.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::users::columns;
use super::{expected, found, row_of, set_of, unique, updated, Keys, Listing};
use crate::directory::records::{Kind, MemberChange, Records};
use crate::directory::Entry;
use crate::mapping::{member_json, member_refs, split_member_ops, GroupMapping, MemberOp, Translated, UserMapping};
use crate::provision::body;
use crate::provision::store::check_version;
use crate::provision::users::refuse_unmapped;
use crate::provision::{audit_line, off_worker, Resources, Result};
use crate::scim::json::get_ci;
use crate::scim::limits::Limits;
use crate::scim::list::{list_response, Projection, Query};
use crate::scim::{self, patch, Json, GROUP_SCHEMA};

pub struct TableGroups {
    store: Arc<dyn Records>,
    map: GroupMapping,
    users: UserMapping,
    keys: Arc<Keys>,
    limits: Limits,
    max_candidates: usize,
}

impl TableGroups {
    pub fn new(
        store: Arc<dyn Records>,
        map: GroupMapping,
        users: UserMapping,
        keys: Arc<Keys>,
        limits: Limits,
        max_candidates: usize,
    ) -> Self {
        TableGroups { store, map, users, keys, limits, max_candidates }
    }

    pub fn mapping(&self) -> &GroupMapping {
        &self.map
    }
}

#[async_trait]
impl Resources for TableGroups {
    async fn get(&self, id: &str, projection: &Projection, root: &str) -> Result<Json> {
        let entry = self.find(id).await?;
        Ok(Json::of(&self.render(&entry, projection, root).await?))
    }

    async fn list(&self, query: &Query, caller: &str, root: &str) -> Result<Json> {
        let translated = match &query.filter {
            // A member is named by its id, which is what the membership table holds.
            Some(f) => {
                let ids = self.map.member_ids(f).into_iter().map(|id| (id.clone(), id)).collect();
                self.map.ldap_filter(f, &ids)?
            }
            None => Translated { filter: self.map.filter.clone(), exact: true },
        };
        let resource = |e: &Entry| match self.map.to_resource(e, "", None) {
            Value::Object(r) => r,
            _ => Map::new(),
        };
        let listing = Listing {
            store: self.store.as_ref(),
            kind: Kind::Groups,
            entity: &self.map,
            resource: &resource,
            keys: &self.keys,
            key: format!("Group\n{caller}\n{}", query.result_key()),
            max_candidates: self.max_candidates,
        };
        let (total, entries) = listing.page(translated, query).await?;
        let mut resources = Vec::with_capacity(entries.len());
        for e in &entries {
            resources.push(self.render(e, &query.projection, root).await?);
        }
        Ok(Json::of(&list_response(resources, total, query.start_index)))
    }

    async fn create(&self, body: &Value, root: &str) -> Result<Value> {
        let res = body::object(body, "Group", GROUP_SCHEMA)?;
        refuse_unmapped(&self.map, res, &["members"])?;
        self.map.check_mutability(None, res)?;
        let values = self.map.values(res)?;
        self.map.require_name(&values, "displayName")?;
        let members = self.member_ids(res.get("members").or_else(|| get_ci(res, "members")))?;
        let row = row_of(values.into_iter().collect());
        let entry = self.store.create(Kind::Groups, &row, &members).await.map_err(unique)?;
        audit_line("Group", "create", &entry.dn, &with_members(columns(&row), !members.is_empty()), "written");
        self.render(&entry, &Projection::default(), root).await
    }

    /// PUT: the attributes and the whole member list, in one transaction.
    async fn replace(&self, id: &str, body: &Value, if_match: Option<&str>, root: &str) -> Result<Value> {
        let entry = self.find(id).await?;
        check_version(&self.map, &entry, if_match)?;
        let res = body::replacement(body, id, "Group", GROUP_SCHEMA)?;
        refuse_unmapped(&self.map, res, &["members"])?;
        let before = self.map.patch_base(&entry, &format!("{root}/Groups"));
        self.map.check_mutability(Some(&before), res)?;
        let values = self.map.values(res)?;
        self.map.require_name(&values, "displayName")?;
        let set = set_of(self.map.changes(&entry, &values))?;
        let add = self.member_ids(get_ci(res, "members"))?;
        let members = MemberChange { replace: true, add, remove: Vec::new() };
        let version = expected(&self.map, &entry, if_match);
        let written = self.store.update(Kind::Groups, id, version, &set, &members).await;
        let entry = updated(self.store.as_ref(), Kind::Groups, id, version, written).await?;
        audit_line("Group", "replace", id, &with_members(columns(&set), true), "written");
        self.render(&entry, &Projection::default(), root).await
    }

    async fn patch(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        projection: &Projection,
        root: &str,
    ) -> Result<Option<Value>> {
        let (member_ops, rest) = split_member_ops(patch::parse(body)?.into_iter().collect())?;
        let members = fold(member_ops, self.limits.max_members)?;
        let entry = self.find(id).await?;
        check_version(&self.map, &entry, if_match)?;
        let mut set = Vec::new();
        if !rest.is_empty() {
            let mut res = self.map.patch_base(&entry, &format!("{root}/Groups"));
            let before = res.clone();
            let limits = self.limits.clone();
            let res = off_worker(move || limits.apply_patch(&mut res, &rest, GROUP_SCHEMA).map(|()| res)).await?;
            refuse_unmapped(&self.map, &res, &["members"])?;
            self.map.check_mutability(Some(&before), &res)?;
            let values = self.map.values(&res)?;
            self.map.require_name(&values, "displayName")?;
            set = set_of(self.map.changes(&entry, &values))?;
        }
        if set.is_empty() && members.is_empty() {
            return Ok(None);
        }
        let version = expected(&self.map, &entry, if_match);
        let written = self.store.update(Kind::Groups, id, version, &set, &members).await;
        let entry = updated(self.store.as_ref(), Kind::Groups, id, version, written).await?;
        audit_line("Group", "update", id, &with_members(columns(&set), !members.is_empty()), "written");
        match projection.is_empty() {
            true => Ok(None),
            false => self.render(&entry, projection, root).await.map(Some),
        }
    }

    async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let entry = self.find(id).await?;
        check_version(&self.map, &entry, if_match)?;
        self.store.delete(Kind::Groups, id).await.map_err(found("group", id))?;
        audit_line("Group", "delete", id, "", "written");
        Ok(())
    }
}

impl TableGroups {
    async fn find(&self, id: &str) -> Result<Entry> {
        self.store.get(Kind::Groups, id).await.map_err(found("group", id))
    }

    /// The user ids a `members` value lists, within `[limits] max_members`.
    fn member_ids(&self, value: Option<&Value>) -> Result<Vec<String>> {
        let refs = member_refs(value.unwrap_or(&Value::Null))?;
        if refs.len() > self.limits.max_members {
            return Err(too_many_members(self.limits.max_members).into());
        }
        refs.into_iter()
            .map(|r| match r.kind.as_deref() {
                Some(k) if !k.eq_ignore_ascii_case("User") => {
                    Err(scim::Error::value(format!("member {}: only users can be members here, not {k}", r.id)).into())
                }
                _ => Ok(r.id),
            })
            .collect()
    }

    async fn render(&self, entry: &Entry, projection: &Projection, root: &str) -> Result<Value> {
        let members = match projection.wants("members") {
            true => {
                let users = self.store.members(&entry.dn, self.limits.max_members).await?;
                let display = self.users.rule_for("displayName").or_else(|| self.users.rule_for("userName"));
                let location = format!("{root}/Users");
                let shown = |u: &Entry| display.and_then(|r| u.first(&r.ldap)).map(str::to_owned);
                Some(users.iter().map(|u| member_json(&u.dn, "User", &location, shown(u).as_deref())).collect())
            }
            false => None,
        };
        let mut v = self.map.to_resource(entry, &format!("{root}/Groups"), members);
        if let Value::Object(obj) = &mut v {
            projection.apply(obj);
        }
        Ok(v)
    }
}

/// A PATCH's member operations, in order, as one change: what each later operation says wins.
fn fold(ops: Vec<MemberOp>, max: usize) -> Result<MemberChange> {
    let mut change = MemberChange::default();
    let ids = |refs: Vec<crate::mapping::MemberRef>| refs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    for op in ops {
        match op {
            MemberOp::Add(refs) => {
                for id in ids(refs) {
                    change.remove.retain(|r| r != &id);
                    change.add.push(id);
                }
            }
            MemberOp::Remove(refs) => {
                for id in ids(refs) {
                    change.add.retain(|a| a != &id);
                    change.remove.push(id);
                }
            }
            MemberOp::RemoveAll => change = MemberChange { replace: true, ..MemberChange::default() },
            MemberOp::Replace(refs) => change = MemberChange { replace: true, add: ids(refs), remove: Vec::new() },
        }
        if change.add.len() + change.remove.len() > max {
            return Err(too_many_members(max).into());
        }
    }
    Ok(change)
}

fn too_many_members(max: usize) -> scim::Error {
    scim::Error::value(format!("more than {max} members in one request ([limits] max_members)"))
}

fn with_members(columns: String, members: bool) -> String {
    match (columns.is_empty(), members) {
        (_, false) => columns,
        (true, true) => "members".into(),
        (false, true) => format!("{columns},members"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::MemberRef;

    fn refs(ids: &[&str]) -> Vec<MemberRef> {
        ids.iter().map(|id| MemberRef { id: id.to_string(), kind: None }).collect()
    }

    #[test]
    fn member_operations_fold_in_order() {
        let c = fold(vec![MemberOp::Add(refs(&["a", "b"])), MemberOp::Remove(refs(&["a", "c"]))], 10).unwrap();
        assert_eq!(
            (c.replace, c.add, c.remove),
            (false, vec!["b".to_string()], vec!["a".to_string(), "c".to_string()])
        );
        let c =
            fold(vec![MemberOp::Add(refs(&["a"])), MemberOp::Replace(refs(&["x"])), MemberOp::Add(refs(&["y"]))], 10)
                .unwrap();
        assert_eq!((c.replace, c.add), (true, vec!["x".to_string(), "y".to_string()]));
        let c = fold(vec![MemberOp::Add(refs(&["a"])), MemberOp::RemoveAll], 10).unwrap();
        assert!(c.replace && c.add.is_empty() && c.remove.is_empty());
        assert!(fold(vec![MemberOp::Add(refs(&["a", "b", "c"]))], 2).is_err());
    }
}
