//! Membership lookups: SCIM ids ⇄ the values a group's member attribute holds (DNs, or
//! posixGroup uids), always in batches so a 50,000-member group costs searches by the
//! hundred, not by the member.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::store::Store;
use super::write::Step;
use super::Result;
use crate::cache::{GroupRef, UserCache};
use crate::config::UserGroups;
use crate::directory::{Change, Directory, Entry, LdapFilter, Scope};
use crate::mapping::{member_json, GroupMapping, MemberOp, MemberRef, UserMapping};

/// A cached group with the DN it is cached under.
pub type Cached = (String, Arc<GroupRef>);

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

    /// What a group's reference needs: its id, and its display name when mapped.
    fn group_attrs(&self) -> Vec<&str> {
        let display = self.groups.rule_for("displayName").map(|r| r.ldap.as_str());
        [self.groups.id_attr.as_str()].into_iter().chain(display).collect()
    }

    /// The groups each of `users` (a list page) belongs to, as [`Self::groups_of`] gives
    /// them one by one. With `memberOf`, the groups no cache holds are read for the whole page
    /// in batches, not in a search per user: with the cache off, a page of 100 users cost 100
    /// group searches. A user whose `memberOf` names a group the batch did not find (spelled
    /// otherwise than the group's DN, or outside the groups' base) takes the one-user path.
    pub async fn groups_of_page(&self, users: &[Entry], root: &str) -> Result<Vec<Vec<Value>>> {
        let mut all = Vec::with_capacity(users.len());
        if self.groups.members.user_groups != UserGroups::MemberOf {
            for user in users {
                all.push(self.groups_of(user, root).await?);
            }
            return Ok(all);
        }
        let attrs = self.group_attrs();
        let mut known: HashMap<String, GroupRef> = HashMap::new();
        let (mut missing, mut asked) = (Vec::new(), HashSet::new());
        for dn in users.iter().flat_map(|u| u.values("memberOf")) {
            let key = dn.to_lowercase();
            if known.contains_key(&key) || asked.contains(&key) {
                continue;
            }
            match self.cache.group(dn).await {
                Some(g) => {
                    known.insert(key, GroupRef::clone(&g));
                }
                None => {
                    missing.push(dn.as_str());
                    asked.insert(key);
                }
            }
        }
        let ticket = self.cache.ticket();
        for g in self.lookup(&self.group_store(), self.dn_attr, &missing, &attrs).await? {
            if let Some(group) = self.group_ref(&g, &attrs) {
                self.cache.fill_group(ticket, &g.dn, group.clone()).await;
                known.insert(g.dn.to_lowercase(), group);
            }
        }
        let location = format!("{root}/Groups");
        for user in users {
            let refs: Option<Vec<&GroupRef>> =
                user.values("memberOf").iter().map(|dn| known.get(&dn.to_lowercase())).collect();
            all.push(match refs {
                Some(refs) => {
                    refs.iter().map(|g| member_json(&g.id, "direct", &location, g.display.as_deref())).collect()
                }
                None => self.groups_of(user, root).await?,
            });
        }
        Ok(all)
    }

    /// A group entry read with [`Self::group_attrs`], as a user's `groups` names it.
    fn group_ref(&self, g: &Entry, attrs: &[&str]) -> Option<GroupRef> {
        let id = g.first(&self.groups.id_attr)?;
        Some(GroupRef { id: id.to_owned(), display: attrs.get(1).and_then(|a| g.first(a)).map(str::to_owned) })
    }

    /// The groups `user` belongs to, as SCIM `groups` values.
    pub async fn groups_of(&self, user: &Entry, root: &str) -> Result<Vec<Value>> {
        let id_attr = self.groups.id_attr.as_str();
        let display = self.groups.rule_for("displayName").map(|r| r.ldap.as_str());
        let attrs = self.group_attrs();
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

    /// [`Self::groups_of`], and when each of them came from the cache (`memberOf` naming only
    /// cached groups), those cached groups: what a rendering of `user` kept for later
    /// depends on (see [`UserCache::keep_rendered`]).
    pub async fn groups_of_cached(&self, user: &Entry, root: &str) -> Result<(Vec<Value>, Option<Vec<Cached>>)> {
        if self.groups.members.user_groups == UserGroups::MemberOf {
            let mut cached = Vec::new();
            for dn in user.values("memberOf") {
                match self.cache.group_at(dn).await {
                    Some(g) => cached.push(g),
                    None => break,
                }
            }
            if cached.len() == user.values("memberOf").len() {
                let location = format!("{root}/Groups");
                let values =
                    cached.iter().map(|(_, g)| member_json(&g.id, "direct", &location, g.display.as_deref())).collect();
                return Ok((values, Some(cached)));
            }
        }
        Ok((self.groups_of(user, root).await?, None))
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
        for g in self.lookup(&self.group_store(), self.dn_attr, &missing, attrs).await? {
            if let Some(group) = self.group_ref(&g, attrs) {
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

    /// The steps that take a user being deleted out of every group that lists it (each undone,
    /// should a later step fail, by adding it back).
    pub async fn removal_everywhere(&self, user: &Entry) -> Result<Vec<Step>> {
        let Some(value) = self.member_value(user) else { return Ok(Vec::new()) };
        let attr = &self.groups.members.attr;
        let stand_in = self.groups.members.empty_member.as_ref().map(|s| (attr.clone(), s.clone()));
        let groups = self.lookup(&self.group_store(), attr, &[value], &[&self.groups.id_attr]).await?;
        Ok(groups
            .into_iter()
            .map(|g| Step::Modify {
                dn: g.dn,
                changes: vec![Change::Delete(attr.clone(), vec![value.to_owned()])],
                undo: vec![Change::Add(attr.clone(), vec![value.to_owned()])],
                stand_in: stand_in.clone(),
            })
            .collect())
    }
}

/// The member values to add and to delete that apply `ops` in order (RFC 7644 §3.5.2: each
/// operation sees the result of the ones before), as one change. `by_id`: what the member
/// attribute holds for each id (an id missing there names nothing: refused when added,
/// skipped when removed). `current`: the group's members, needed (and read) only when an
/// operation replaces or removes them all; with it the change is minimal, without it adds and
/// deletes may name values already so, which [`super::store::modify`] tolerates.
pub fn net_change(
    ops: &[MemberOp],
    current: Option<&[String]>,
    by_id: &HashMap<String, String>,
) -> Result<(Vec<String>, Vec<String>)> {
    let now: &[String] = current.unwrap_or_default();
    let mut wanted = Wanted::default();
    for op in ops {
        if matches!(op, MemberOp::RemoveAll | MemberOp::Replace(_)) {
            wanted.clear(now);
        }
        match op {
            MemberOp::Add(refs) | MemberOp::Replace(refs) => {
                for r in refs {
                    let v = by_id.get(&r.id).ok_or_else(|| {
                        super::Error::from(crate::scim::Error::value(format!(
                            "no user or group with id {:?} can be a member",
                            r.id
                        )))
                    })?;
                    wanted.set(v, true);
                }
            }
            MemberOp::Remove(refs) => refs.iter().filter_map(|r| by_id.get(&r.id)).for_each(|v| wanted.set(v, false)),
            MemberOp::RemoveAll => {}
        }
    }
    let had: HashSet<String> = now.iter().map(|v| v.to_lowercase()).collect();
    let known = current.is_some();
    let (mut adds, mut deletes) = (Vec::new(), Vec::new());
    for (v, present) in wanted.order {
        let has = had.contains(&v.to_lowercase());
        match present {
            true if !known || !has => adds.push(v),
            false if !known || has => deletes.push(v),
            _ => {}
        }
    }
    Ok((adds, deletes))
}

/// Member values touched by a PATCH, in first-touched order, with whether each ends up a member.
#[derive(Default)]
struct Wanted {
    order: Vec<(String, bool)>,
    /// Lower-cased value → position in `order` (DNs compare ignoring case).
    index: HashMap<String, usize>,
}

impl Wanted {
    fn set(&mut self, value: &str, present: bool) {
        match self.index.get(&value.to_lowercase()) {
            Some(&i) => self.order[i].1 = present,
            None => {
                self.index.insert(value.to_lowercase(), self.order.len());
                self.order.push((value.to_owned(), present));
            }
        }
    }

    /// No member any more: those the group has (`now`) and those touched so far.
    fn clear(&mut self, now: &[String]) {
        now.iter().for_each(|v| self.set(v, false));
        self.order.iter_mut().for_each(|(_, present)| *present = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str) -> MemberRef {
        MemberRef { id: id.into(), kind: None }
    }

    fn by_id() -> HashMap<String, String> {
        ["a", "b", "c"].iter().map(|i| (i.to_string(), format!("uid={i},ou=p"))).collect()
    }

    #[test]
    fn operations_apply_in_order() {
        // add B, then replace with A: only A (the reproduction).
        let ops = [MemberOp::Add(vec![r("b")]), MemberOp::Replace(vec![r("a")])];
        let now = vec!["uid=c,ou=p".to_owned()];
        let (adds, deletes) = net_change(&ops, Some(&now), &by_id()).unwrap();
        assert_eq!((adds, deletes), (vec!["uid=a,ou=p".to_owned()], vec!["uid=c,ou=p".to_owned()]));
        // Replace, then add: both; remove all, then add: the added one only.
        let ops = [MemberOp::Replace(vec![r("a")]), MemberOp::Add(vec![r("b")])];
        let (adds, deletes) = net_change(&ops, Some(&now), &by_id()).unwrap();
        assert_eq!(adds, ["uid=a,ou=p", "uid=b,ou=p"]);
        assert_eq!(deletes, ["uid=c,ou=p"]);
        let ops = [MemberOp::RemoveAll, MemberOp::Add(vec![r("c")])];
        assert_eq!(net_change(&ops, Some(&now), &by_id()).unwrap(), (vec![], vec![]), "C stays: no change at all");
    }

    #[test]
    fn without_the_member_list_the_last_word_counts() {
        // 5,000 adds of the same few ids fold into one add; add then remove is a remove.
        let mut ops: Vec<MemberOp> = (0..5000).map(|i| MemberOp::Add(vec![r(["a", "b"][i % 2])])).collect();
        ops.push(MemberOp::Remove(vec![r("b"), r("unknown")]));
        let (adds, deletes) = net_change(&ops, None, &by_id()).unwrap();
        assert_eq!((adds, deletes), (vec!["uid=a,ou=p".to_owned()], vec!["uid=b,ou=p".to_owned()]));
        let unknown = net_change(&[MemberOp::Add(vec![r("nope")])], None, &by_id()).unwrap_err();
        assert!(matches!(unknown, super::super::Error::Scim(_)));
    }
}
