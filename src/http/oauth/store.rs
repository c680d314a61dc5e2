//! What the gateway remembers about its tokens, in this process's memory, bounded: codes
//! already exchanged, the newest refresh token of each family, revoked access tokens, and
//! failed sign-ins. Tokens themselves are signed and self-contained (see the README for
//! what that means with several replicas).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::ops::compute::Op;
use moka::sync::Cache;

use crate::config::LoginLimit;

/// Entries each table holds at most; the least recently used go first.
const CAPACITY: u64 = 100_000;

pub struct Store {
    used_codes: Cache<String, ()>,
    families: Cache<String, Family>,
    revoked_access: Cache<String, ()>,
}

#[derive(Debug, Clone, Copy)]
struct Family {
    /// The generation the next refresh must present (at least).
    next: u32,
    revoked: bool,
}

/// What presenting refresh token generation `gen` of a family does.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Accepted: the new token is this generation.
    Next(u32),
    /// An older generation came back: the family is now revoked.
    Reused,
    Revoked,
}

impl Store {
    pub fn new(code: Duration, access: Duration, refresh: Duration) -> Store {
        let cache =
            |ttl: Duration| Cache::builder().max_capacity(CAPACITY).time_to_live(ttl.max(Duration::from_secs(1)));
        Store {
            // Beyond the code's own lifetime, its signature check refuses it anyway.
            used_codes: cache(code + Duration::from_secs(60)).build(),
            families: Cache::builder().max_capacity(CAPACITY).time_to_idle(refresh.max(Duration::from_secs(1))).build(),
            revoked_access: cache(access + Duration::from_secs(60)).build(),
        }
    }

    /// `true` the first time a code is presented, `false` ever after.
    pub fn use_code(&self, jti: &str) -> bool {
        self.used_codes.entry(jti.to_owned()).or_insert(()).is_fresh()
    }

    /// Records the presentation of generation `gen` of `family`, atomically: of two uses of
    /// the same token, the second is a reuse.
    pub fn rotate(&self, family: &str, gen: u32) -> Rotation {
        let mut outcome = Rotation::Revoked;
        self.families.entry(family.to_owned()).and_compute_with(|known| {
            let state = known.map(|e| e.into_value());
            match state {
                Some(f) if f.revoked => Op::Nop,
                Some(f) if gen < f.next => {
                    outcome = Rotation::Reused;
                    Op::Put(Family { revoked: true, ..f })
                }
                // Unknown here (issued by another replica, or before a restart), or current.
                _ => {
                    outcome = Rotation::Next(gen + 1);
                    Op::Put(Family { next: gen + 1, revoked: false })
                }
            }
        });
        outcome
    }

    pub fn revoke_family(&self, family: &str) {
        self.families.insert(family.to_owned(), Family { next: u32::MAX, revoked: true });
    }

    pub fn family_revoked(&self, family: &str) -> bool {
        self.families.get(family).is_some_and(|f| f.revoked)
    }

    pub fn revoke_access(&self, jti: &str) {
        self.revoked_access.insert(jti.to_owned(), ());
    }

    pub fn access_revoked(&self, jti: &str) -> bool {
        self.revoked_access.contains_key(jti)
    }
}

/// Failed sign-ins per client address and per login name, in fixed windows.
pub struct Limiter {
    failures: Cache<String, Arc<AtomicU32>>,
    limit: LoginLimit,
}

impl Limiter {
    pub fn new(limit: &LoginLimit) -> Limiter {
        let window = Duration::from_secs(limit.window_secs.max(1));
        Limiter { failures: Cache::builder().max_capacity(CAPACITY).time_to_live(window).build(), limit: limit.clone() }
    }

    fn keys(address: &str, user: Option<&str>) -> impl Iterator<Item = String> {
        std::iter::once(format!("a\n{address}")).chain(user.map(|u| format!("u\n{}", u.to_lowercase())))
    }

    /// Whether the next attempt is refused without asking the directory.
    pub fn blocked(&self, address: &str, user: Option<&str>) -> bool {
        Self::keys(address, user).any(|k| {
            let limit = if k.starts_with('a') { self.limit.per_address } else { self.limit.per_user };
            self.failures.get(&k).is_some_and(|n| n.load(Ordering::Relaxed) >= limit)
        })
    }

    pub fn failed(&self, address: &str, user: Option<&str>) {
        for k in Self::keys(address, user) {
            self.failures.get_with(k, Default::default).fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_families_rotate_and_catch_reuse() {
        let s = Store::new(Duration::from_secs(60), Duration::from_secs(60), Duration::from_secs(600));
        assert_eq!(s.rotate("f", 0), Rotation::Next(1));
        assert_eq!(s.rotate("f", 1), Rotation::Next(2));
        assert_eq!(s.rotate("f", 0), Rotation::Reused);
        assert_eq!(s.rotate("f", 2), Rotation::Revoked, "the whole family is gone");
        // A family first seen at a later generation (another replica issued the earlier ones).
        assert_eq!(s.rotate("g", 7), Rotation::Next(8));
        s.revoke_family("g");
        assert_eq!(s.rotate("g", 8), Rotation::Revoked);
        assert!(s.use_code("c") && !s.use_code("c"));
    }

    #[test]
    fn limits_per_address_and_per_user() {
        let l = Limiter::new(&LoginLimit { per_address: 3, per_user: 2, window_secs: 60 });
        l.failed("10.0.0.1", Some("Alice"));
        assert!(!l.blocked("10.0.0.1", Some("alice")));
        l.failed("10.0.0.2", Some("alice"));
        assert!(l.blocked("10.0.0.3", Some("ALICE")), "per user, from any address");
        assert!(!l.blocked("10.0.0.3", Some("bob")));
        l.failed("10.0.0.3", Some("b"));
        l.failed("10.0.0.3", Some("c"));
        l.failed("10.0.0.3", None);
        assert!(l.blocked("10.0.0.3", Some("d")), "per address, whatever the name");
    }
}
