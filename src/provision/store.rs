//! Reads and writes shared by users and groups: by id, by DN, and modifies.

use super::{Error, Result};
use crate::directory::{dn, Change, Directory, DirectoryError, Entry, LdapFilter, Scope, Search};
use crate::mapping::{Allocation, Entity};

/// Reads of the counter a writer may lose to others in a row before giving up (503).
const ALLOCATE_ATTEMPTS: usize = 50;

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

    /// The allocated number attribute for a new entry, when the entity allocates one.
    ///
    /// The counter entry holds the last number handed out. Taking the next is one modify that
    /// deletes the value read and adds its successor: the directory applies it only while the
    /// value is still the one read (else "no such value", 16), so of two writers racing, in
    /// this process or another, one wins and the other reads again. A number is never handed
    /// out twice, and the range is read only once, to start the counter.
    pub async fn allocate(&self) -> Result<Option<(String, Vec<String>)>> {
        let Some(a) = &self.entity.allocate else { return Ok(None) };
        for _ in 0..ALLOCATE_ATTEMPTS {
            let Some(last) = self.counter(a).await? else {
                self.start_counter(a).await?;
                continue;
            };
            let next = match last.checked_add(1) {
                Some(n) if n < a.first => a.first,
                Some(n) if n <= a.last => n,
                _ => {
                    return Err(Error::Config(format!(
                        "allocate range [{}, {}] for {} is used up: widen it",
                        a.first, a.last, a.attr
                    )))
                }
            };
            let swap = Change::Swap(a.attr.clone(), last.to_string(), next.to_string());
            match self.dir.modify(&a.counter, &[swap]).await {
                Ok(()) => return Ok(Some((a.attr.clone(), vec![next.to_string()]))),
                // Taken by another writer since the read: read again.
                Err(DirectoryError::Rejected { code: 16, .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DirectoryError::Unavailable(format!("the {} counter {} is too contended", a.attr, a.counter)).into())
    }

    /// The counter's value; None when there is no counter entry yet.
    async fn counter(&self, a: &Allocation) -> Result<Option<u32>> {
        let any = LdapFilter::Configured("objectClass=*".into());
        let found = self.search(&a.counter, Scope::Base, any, vec![a.attr.clone()]).await?;
        let Some(entry) = found.first() else { return Ok(None) };
        match entry.first(&a.attr).and_then(|v| v.trim().parse::<u32>().ok()) {
            Some(v) => Ok(Some(v)),
            None => Err(Error::Config(format!("the counter entry {} holds no number in {}", a.counter, a.attr))),
        }
    }

    /// Creates the counter at the highest number in use in the range (the one time the range
    /// is read). Another process creating it first is fine: its counter serves both.
    async fn start_counter(&self, a: &Allocation) -> Result<()> {
        let filter = self.entity.filter.clone().and(LdapFilter::And(vec![
            LdapFilter::GreaterOrEqual(a.attr.clone(), a.first.to_string()),
            LdapFilter::LessOrEqual(a.attr.clone(), a.last.to_string()),
        ]));
        let used = self.search(&self.entity.base_dn, Scope::Subtree, filter, vec![a.attr.clone()]).await?;
        let highest = used.iter().filter_map(|e| e.first(&a.attr)?.parse::<u32>().ok()).max();
        let start = highest.unwrap_or(a.first.saturating_sub(1));
        let (attr, value) = dn::split(&a.counter).0.split_once('=').unwrap_or(("cn", "counter"));
        let attrs = vec![
            ("objectClass".to_owned(), vec!["device".to_owned(), "extensibleObject".to_owned()]),
            (attr.to_owned(), vec![value.to_owned()]),
            (a.attr.clone(), vec![start.to_string()]),
        ];
        match self.dir.add(&a.counter, &attrs, &Vec::new(), None).await {
            Ok(()) | Err(DirectoryError::AlreadyExists) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// 412 unless `if_match` is absent, `*`, or the entry's current version.
    pub fn check_version(&self, entry: &Entry, if_match: Option<&str>) -> Result<()> {
        check_version(self.entity, entry, if_match)
    }
}

/// 412 unless `if_match` is absent, `*`, or `entry`'s current version.
pub(super) fn check_version(entity: &Entity, entry: &Entry, if_match: Option<&str>) -> Result<()> {
    match if_match.map(str::trim) {
        Some(wanted) if wanted != "*" && entity.version(entry).as_deref() != Some(wanted) => {
            Err(Error::PreconditionFailed)
        }
        _ => Ok(()),
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
    // Member values one by one first, then everything else in one modify. A failure puts
    // back the member values that landed, so nothing is left half-written.
    let (values, others): (Vec<Change>, Vec<Change>) =
        changes.into_iter().partition(|c| matches!(c, Change::Add(_, v) | Change::Delete(_, v) if !v.is_empty()));
    let mut landed = Vec::new();
    let mut failed = None;
    'values: for change in values {
        let (adds, attr, list) = match change {
            Change::Add(a, v) => (true, a, v),
            Change::Delete(a, v) => (false, a, v),
            Change::Replace(..) | Change::Swap(..) | Change::Binary(..) => continue, // partitioned into `others`
        };
        for v in list {
            let (one, inverse) = match adds {
                true => (Change::Add(attr.clone(), vec![v.clone()]), Change::Delete(attr.clone(), vec![v])),
                false => (Change::Delete(attr.clone(), vec![v.clone()]), Change::Add(attr.clone(), vec![v])),
            };
            match modify_once(dir, dn, &[one], stand_in).await {
                Ok(()) => landed.push(inverse),
                Err(e) if value_exists_or_missing(&e) => {}
                Err(e) => {
                    failed = Some(e);
                    break 'values;
                }
            }
        }
    }
    if failed.is_none() {
        failed = modify_once(dir, dn, &others, stand_in).await.err();
    }
    let Some(e) = failed else { return Ok(()) };
    for inverse in landed.into_iter().rev() {
        match modify_once(dir, dn, &[inverse], stand_in).await {
            Err(undo) if !value_exists_or_missing(&undo) => {
                tracing::error!(%dn, error = %undo, "could not put back a member value after a failed modify")
            }
            _ => {}
        }
    }
    Err(e)
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
