//! What the gateway remembers about users between requests, so that Okta's lookups (a
//! `userName eq` filter before every create, GETs by id) cost no directory round trip.
//!
//! The promise, also in the README: a write through this gateway drops everything it touched
//! before it answers, so the next read through the same gateway sees the write. A change made
//! anywhere else (in the directory, through another gateway) shows after at most the TTL.
//! Writes never trust the cache: they read the entry from the directory first.
//!
//! A read that fills the cache races with writes: it may have read the directory just before
//! a write landed. Every write bumps a generation; a fill keeps what it stored only if no
//! write happened since its [`Ticket`] was taken, so a stale read never outlives a write.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::Duration;

use moka::future::Cache;

use crate::config::CacheConfig;
use crate::directory::Entry;
use crate::metrics::Metrics;
use crate::scim::Json;

/// Share of `[cache] max_bytes` each cache may hold, in eighths: entries and their rendered
/// JSON are the bulk.
const USERS_SHARE: u64 = 3;
const RENDERED_SHARE: u64 = 3;
const NAMES_SHARE: u64 = 1;
const GROUPS_SHARE: u64 = 1;
/// What moka itself keeps per entry (hash, timestamps, list links), on top of key and value.
const PER_ENTRY: usize = 96;

fn rendered_key(id: &str, how: &str) -> String {
    format!("{id}\n{how}")
}

/// A cache's weight for one entry: bytes of key and value plus the bookkeeping, so that
/// keys taken from client strings (userNames from filters) count like everything else.
fn weight(key: &str, value: usize) -> u32 {
    u32::try_from(key.len() + value + PER_ENTRY).unwrap_or(u32::MAX)
}

pub struct UserCache {
    caches: Option<Caches>,
    metrics: Arc<Metrics>,
}

struct Caches {
    /// id → the user's entry, DN included.
    users: Cache<String, Arc<Entry>>,
    /// Lower-cased userName → id, or `None` for a name the directory did not have.
    names: Cache<String, Option<String>>,
    /// Lower-cased group DN → the group's id and display name: what a user's `groups` shows
    /// for each `memberOf` value, so that a cached user renders without a directory search.
    groups: Cache<String, Arc<GroupRef>>,
    /// Id and how it was asked for (see [`UserCache::rendered`]) → a cached user's JSON.
    rendered: Cache<String, Arc<Rendering>>,
    generation: AtomicU64,
}

/// A user's JSON, and what it was rendered from: valid only while the cache still holds that
/// very entry and those very groups (compared by address; the weak references keep the
/// addresses from being reused). Any write, expiry or eviction of either replaces or drops
/// them, so a rendering can never outlive what it shows.
struct Rendering {
    json: Json,
    entry: Weak<Entry>,
    /// Lower-cased group DN and the group the rendering named.
    groups: Vec<(String, Weak<GroupRef>)>,
}

impl Rendering {
    fn weight(&self) -> usize {
        let groups: usize = self.groups.iter().map(|(dn, _)| dn.len() + 16).sum();
        self.json.text.len() + self.json.version.as_ref().map_or(0, |v| v.len()) + groups
    }
}
/// A group as a user's `groups` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub display: Option<String>,
}

/// Taken before reading the directory; a fill with an outdated ticket is dropped.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl UserCache {
    pub fn new(cfg: &CacheConfig, metrics: Arc<Metrics>) -> UserCache {
        let ttl = Duration::from_secs(cfg.ttl_secs);
        let eighth = cfg.max_bytes / 8;
        let caches = cfg.enabled.then(|| Caches {
            users: Cache::builder()
                .max_capacity(eighth * USERS_SHARE)
                .weigher(|k: &String, e: &Arc<Entry>| weight(k, e.weight()))
                .time_to_live(ttl)
                .build(),
            names: Cache::builder()
                .max_capacity(eighth * NAMES_SHARE)
                .weigher(|k: &String, id: &Option<String>| weight(k, id.as_ref().map_or(0, String::len)))
                .time_to_live(ttl)
                .build(),
            groups: Cache::builder()
                .max_capacity(eighth * GROUPS_SHARE)
                .weigher(|k: &String, g: &Arc<GroupRef>| {
                    weight(k, g.id.len() + g.display.as_ref().map_or(0, String::len))
                })
                .time_to_live(ttl)
                .build(),
            rendered: Cache::builder()
                .max_capacity(eighth * RENDERED_SHARE)
                .weigher(|k: &String, r: &Arc<Rendering>| weight(k, r.weight()))
                .time_to_live(ttl)
                .build(),
            generation: AtomicU64::new(0),
        });
        UserCache { caches, metrics }
    }

    pub async fn user(&self, id: &str) -> Option<Arc<Entry>> {
        let found = self.caches.as_ref()?.users.get(id).await;
        self.metrics.cache_lookup("user", found.is_some());
        found
    }

    /// `Some(None)`: the directory had no such user when last asked.
    pub async fn name(&self, user_name: &str) -> Option<Option<String>> {
        let found = self.caches.as_ref()?.names.get(&user_name.to_lowercase()).await;
        self.metrics.cache_lookup("name", found.is_some());
        found
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.caches.as_ref().map_or(0, |c| c.generation.load(SeqCst)))
    }

    /// Remembers what a read found for `user_name`: the user (id and entry), or nobody.
    pub async fn fill(&self, ticket: Ticket, user_name: Option<&str>, user: Option<(&str, &Entry)>) {
        let Some(c) = &self.caches else { return };
        if c.generation.load(SeqCst) != ticket.0 {
            return;
        }
        let name = user_name.map(str::to_lowercase);
        if let Some((id, entry)) = user {
            c.users.insert(id.to_owned(), Arc::new(entry.clone())).await;
        }
        if let Some(name) = &name {
            c.names.insert(name.clone(), user.map(|(id, _)| id.to_owned())).await;
        }
        // A write that began after the check above may have dropped its keys before we stored
        // ours: take them back out.
        if c.generation.load(SeqCst) != ticket.0 {
            self.drop_keys(c, user.map(|(id, _)| id), name.as_deref()).await;
        }
    }

    /// Drops what a write touched (call it whether or not the write succeeded: a failed one
    /// may have changed part of the entry). Returns the ticket for refilling from a read-back.
    pub async fn forget(&self, id: Option<&str>, user_names: &[&str]) -> Ticket {
        let Some(c) = &self.caches else { return Ticket(0) };
        let generation = c.generation.fetch_add(1, SeqCst) + 1;
        for name in user_names {
            self.drop_keys(c, None, Some(&name.to_lowercase())).await;
        }
        self.drop_keys(c, id, None).await;
        Ticket(generation)
    }

    /// Drops every cached user (names stay): a group write may change any member's `memberOf`.
    pub fn forget_users(&self) {
        if let Some(c) = &self.caches {
            c.generation.fetch_add(1, SeqCst);
            c.users.invalidate_all();
            c.rendered.invalidate_all();
        }
    }

    /// The JSON kept for user `id` asked for as `how` (the projection and base URL: whatever
    /// else changes the text), if it was rendered from `entry` — the entry the cache holds
    /// now — and from the groups the cache holds now.
    pub async fn rendered(&self, id: &str, how: &str, entry: &Arc<Entry>) -> Option<Json> {
        let c = self.caches.as_ref()?;
        let found = c.rendered.get(&rendered_key(id, how)).await;
        let mut valid = found.filter(|r| std::ptr::eq(r.entry.as_ptr(), Arc::as_ptr(entry)));
        if let Some(r) = &valid {
            for (dn, group) in &r.groups {
                let now = c.groups.get(dn).await;
                if !now.is_some_and(|now| std::ptr::eq(group.as_ptr(), Arc::as_ptr(&now))) {
                    valid = None;
                    break;
                }
            }
        }
        self.metrics.cache_lookup("rendered", valid.is_some());
        valid.map(|r| r.json.clone())
    }

    /// Keeps `json`, rendered from `entry` and `groups` (each with its lower-cased DN, as
    /// [`Self::group`] gave it), for [`Self::rendered`] — unless the cache holds another entry
    /// for `id` by now (a write happened, or `entry` was never the cached one).
    pub async fn keep_rendered(
        &self,
        id: &str,
        how: &str,
        entry: &Arc<Entry>,
        groups: &[(String, Arc<GroupRef>)],
        json: &Json,
    ) {
        let Some(c) = &self.caches else { return };
        let current = c.users.get(id).await;
        if !current.is_some_and(|now| Arc::ptr_eq(&now, entry)) {
            return;
        }
        let groups = groups.iter().map(|(dn, g)| (dn.clone(), Arc::downgrade(g))).collect();
        let rendering = Rendering { json: json.clone(), entry: Arc::downgrade(entry), groups };
        c.rendered.insert(rendered_key(id, how), Arc::new(rendering)).await;
    }

    /// The group at `dn` with the DN it is cached under, as [`Self::keep_rendered`] takes it.
    pub async fn group_at(&self, dn: &str) -> Option<(String, Arc<GroupRef>)> {
        let key = dn.to_lowercase();
        let found = self.caches.as_ref()?.groups.get(&key).await;
        self.metrics.cache_lookup("group", found.is_some());
        found.map(|g| (key, g))
    }

    pub async fn group(&self, dn: &str) -> Option<Arc<GroupRef>> {
        let found = self.caches.as_ref()?.groups.get(&dn.to_lowercase()).await;
        self.metrics.cache_lookup("group", found.is_some());
        found
    }

    /// Remembers the group at `dn`, unless a write happened since `ticket`.
    pub async fn fill_group(&self, ticket: Ticket, dn: &str, group: GroupRef) {
        let Some(c) = &self.caches else { return };
        if c.generation.load(SeqCst) == ticket.0 {
            c.groups.insert(dn.to_lowercase(), Arc::new(group)).await;
            if c.generation.load(SeqCst) != ticket.0 {
                c.groups.invalidate(&dn.to_lowercase()).await;
            }
        }
    }

    /// Drops every cached group: one was renamed, deleted or had its attributes changed.
    pub fn forget_groups(&self) {
        if let Some(c) = &self.caches {
            c.generation.fetch_add(1, SeqCst);
            c.groups.invalidate_all();
            c.rendered.invalidate_all();
        }
    }

    async fn drop_keys(&self, c: &Caches, id: Option<&str>, name: Option<&str>) {
        if let Some(id) = id {
            c.users.invalidate(id).await;
        }
        if let Some(name) = name {
            c.names.invalidate(name).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> UserCache {
        UserCache::new(&CacheConfig::default(), Arc::new(Metrics::new(1)))
    }

    #[tokio::test]
    async fn a_fill_that_raced_a_write_is_dropped() {
        let c = cache();
        let entry = Entry::new("uid=a,ou=people");
        let before = c.ticket();
        c.forget(Some("1"), &["A"]).await;
        c.fill(before, Some("A"), Some(("1", &entry))).await;
        assert!(c.user("1").await.is_none() && c.name("a").await.is_none());
        let after = c.forget(Some("1"), &["A"]).await;
        c.fill(after, Some("A"), Some(("1", &entry))).await;
        assert_eq!(c.name("a").await, Some(Some("1".into())));
        assert_eq!(c.user("1").await.unwrap().dn, entry.dn);
    }

    #[tokio::test]
    async fn groups_by_dn_until_a_group_write() {
        let c = cache();
        let g = GroupRef { id: "g1".into(), display: Some("Admins".into()) };
        let before = c.ticket();
        c.fill_group(before, "cn=Admins,ou=groups", g.clone()).await;
        assert_eq!(c.group("CN=admins,OU=groups").await.as_deref(), Some(&g));
        c.forget_groups();
        assert!(c.group("cn=admins,ou=groups").await.is_none());
        c.fill_group(before, "cn=Admins,ou=groups", g).await;
        assert!(c.group("cn=admins,ou=groups").await.is_none(), "a fill older than the write is dropped");
    }

    #[tokio::test]
    async fn negative_entries_and_the_off_switch() {
        let c = cache();
        c.fill(c.ticket(), Some("Nobody"), None).await;
        assert_eq!(c.name("NOBODY").await, Some(None));
        c.forget(None, &["nobody"]).await;
        assert_eq!(c.name("nobody").await, None);
        let off = UserCache::new(&CacheConfig { enabled: false, ..CacheConfig::default() }, Arc::new(Metrics::new(1)));
        off.fill(off.ticket(), Some("x"), None).await;
        assert_eq!(off.name("x").await, None);
    }

    #[tokio::test]
    async fn bounded_by_bytes_keys_included() {
        let cfg = CacheConfig { max_bytes: 400_000, ..CacheConfig::default() };
        let c = UserCache::new(&cfg, Arc::new(Metrics::new(1)));
        let huge = "x".repeat(10_000);
        for i in 0..200 {
            c.fill(c.ticket(), Some(&format!("{i}{huge}")), None).await;
        }
        let names = &c.caches.as_ref().unwrap().names;
        names.run_pending_tasks().await;
        assert!(names.weighted_size() <= 100_000, "{}", names.weighted_size());
        assert!(names.entry_count() < 20, "{}", names.entry_count());
    }
}
