//! Reads and writes shared by users and groups: by id, by DN, and modifies.

use super::{Error, Result};
use crate::directory::{dn, Change, Directory, DirectoryError, Entry, LdapFilter, Scope, Search};
use crate::mapping::Entity;

/// One entity's entries in the directory.
pub struct Store<'a> {
    pub dir: &'a dyn Directory,
    pub entity: &'a Entity,
}

impl Store<'_> {
    pub async fn search(&self, base: &str, scope: Scope, filter: LdapFilter, attrs: Vec<String>) -> Result<Vec<Entry>> {
        let search = Search { base: base.to_owned(), scope, filter, attrs };
        Ok(self.dir.search(&search).await?)
    }

    /// The entry with SCIM `id`, with `attrs`.
    pub async fn find(&self, id: &str, attrs: Vec<String>) -> Result<Entry> {
        let kind = self.entity.resource_type.to_ascii_lowercase();
        let not_found = || Error::NotFound(format!("no {kind} with id {id:?}"));
        let filter = self.entity.id_filter(id).ok_or_else(not_found)?;
        let mut found = self.search(&self.entity.base_dn, Scope::Subtree, filter, attrs).await?;
        found.pop().ok_or_else(not_found)
    }

    /// The entry at `dn` (just written), with `attrs`.
    pub async fn read(&self, dn: &str, attrs: Vec<String>) -> Result<Entry> {
        let mut found = self.search(dn, Scope::Base, self.entity.filter.clone(), attrs).await?;
        found.pop().ok_or_else(|| Error::NotFound(format!("{dn} vanished while being written")))
    }

    /// Makes `entry` hold `changes`, renaming it first to `rdn` when its naming value
    /// changes (so its id stays), and undoing the rename if the modify fails. Returns the
    /// entry's DN afterwards.
    pub async fn write(
        &self,
        entry: &Entry,
        rdn: Option<String>,
        mut changes: Vec<Change>,
        stand_in: StandIn<'_>,
    ) -> Result<String> {
        let mut dn = entry.dn.clone();
        if let Some(rdn) = &rdn {
            self.dir.rename(&dn, rdn).await.map_err(|e| match e {
                DirectoryError::AlreadyExists => Error::Uniqueness(format!("an entry named {rdn} already exists")),
                e => e.into(),
            })?;
            dn = dn::child(rdn, dn::split(&entry.dn).1);
            // modrdn already replaced the naming value.
            changes.retain(|c| !c.attr().eq_ignore_ascii_case(&self.entity.rdn_attr));
        }
        if let Err(e) = modify(self.dir, &dn, changes, stand_in).await {
            if rdn.is_some() {
                if let Err(undo) = self.dir.rename(&dn, dn::split(&entry.dn).0).await {
                    tracing::error!(%dn, error = %undo, "could not undo a rename after a failed modify");
                }
            }
            return Err(e);
        }
        Ok(dn)
    }

    /// The allocated number attribute for a new entry, when the entity allocates one: the
    /// highest number in use in the range, plus one.
    pub async fn allocate(&self) -> Result<Option<(String, Vec<String>)>> {
        let Some((attr, lo, hi)) = &self.entity.allocate else { return Ok(None) };
        let filter = self.entity.filter.clone().and(LdapFilter::And(vec![
            LdapFilter::GreaterOrEqual(attr.clone(), lo.to_string()),
            LdapFilter::LessOrEqual(attr.clone(), hi.to_string()),
        ]));
        let used = self.search(&self.entity.base_dn, Scope::Subtree, filter, vec![attr.clone()]).await?;
        let next = match used.iter().filter_map(|e| e.first(attr)?.parse::<u32>().ok()).max() {
            None => *lo,
            Some(m) if m < *hi => m + 1,
            Some(_) => {
                return Err(Error::Config(format!("allocate range [{lo}, {hi}] for {attr} is used up: widen it")))
            }
        };
        Ok(Some((attr.clone(), vec![next.to_string()])))
    }

    /// 412 unless `if_match` is absent, `*`, or the entry's current version.
    pub fn check_version(&self, entry: &Entry, if_match: Option<&str>) -> Result<()> {
        match if_match.map(str::trim) {
            Some(wanted) if wanted != "*" && self.entity.version(entry).as_deref() != Some(wanted) => {
                Err(Error::PreconditionFailed)
            }
            _ => Ok(()),
        }
    }
}

/// A group's member attribute and the DN that stands in while the group has no members.
pub type StandIn<'a> = Option<(&'a str, &'a str)>;

/// One modify, idempotent for members: adding a member twice or removing an absent one is
/// not an error for the IdP, so when the directory says "value exists" or "no such value"
/// ([`value_exists_or_missing`]) the membership changes are redone value by value, ignoring those answers.
/// With a stand-in: adding real members drops it, and a change that would leave the group
/// without members, which the schema refuses (65), is retried with the stand-in added.
pub async fn modify(dir: &dyn Directory, dn: &str, mut changes: Vec<Change>, stand_in: StandIn<'_>) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    if let Some((attr, s)) = stand_in {
        let adds =
            changes.iter().any(|c| matches!(c, Change::Add(a, v) if a.eq_ignore_ascii_case(attr) && !v.is_empty()));
        if adds && dir.compare(dn, attr, s).await? {
            changes.push(Change::Delete(attr.to_owned(), vec![s.to_owned()]));
        }
    }
    match modify_once(dir, dn, &changes, stand_in).await {
        Err(e) if value_exists_or_missing(&e) => {}
        other => return other,
    }
    let (values, others): (Vec<Change>, Vec<Change>) =
        changes.into_iter().partition(|c| matches!(c, Change::Add(_, v) | Change::Delete(_, v) if !v.is_empty()));
    modify_once(dir, dn, &others, stand_in).await?;
    for change in values {
        let (adds, attr, list) = match &change {
            Change::Add(a, v) => (true, a, v),
            Change::Delete(a, v) => (false, a, v),
            Change::Replace(..) | Change::Swap(..) => continue, // partitioned into `others`
        };
        for v in list {
            let one = match adds {
                true => Change::Add(attr.clone(), vec![v.clone()]),
                false => Change::Delete(attr.clone(), vec![v.clone()]),
            };
            match modify_once(dir, dn, &[one], stand_in).await {
                Err(e) if !value_exists_or_missing(&e) => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// "No such value" (16) or "value exists" (20); Active Directory answers an add of a group's
/// existing member with entryAlreadyExists (68), which on a modify can mean nothing else.
fn value_exists_or_missing(e: &Error) -> bool {
    matches!(e, Error::Directory(DirectoryError::Rejected { code: 16 | 20, .. } | DirectoryError::AlreadyExists))
}

/// One modify operation, retried with the stand-in when it would empty the group.
async fn modify_once(dir: &dyn Directory, dn: &str, changes: &[Change], stand_in: StandIn<'_>) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    match (dir.modify(dn, changes).await, stand_in) {
        (Err(DirectoryError::Rejected { code: 65, .. }), Some((attr, s))) => {
            let keeps_stand_in = |c: &Change| !matches!(c, Change::Delete(a, v) if a.eq_ignore_ascii_case(attr) && v.iter().any(|x| x == s));
            let mut retry = vec![Change::Add(attr.to_owned(), vec![s.to_owned()])];
            retry.extend(changes.iter().filter(|c| keeps_stand_in(c)).cloned());
            Ok(dir.modify(dn, &retry).await?)
        }
        (result, _) => Ok(result?),
    }
}
