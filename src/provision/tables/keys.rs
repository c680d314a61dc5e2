//! Where each page of a table's list ended, so the next page continues from that key
//! (keyset pagination: page 500 costs what page 1 does) instead of making the database
//! skip 50,000 rows. Kept per caller and query like the LDAP path's snapshots, bounded in
//! bytes and time by the same `[query] snapshot_max_bytes` / `snapshot_ttl_secs`; a page
//! whose key is gone (expired, evicted, or a startIndex no page ended at) uses OFFSET.

use std::time::Duration;

use moka::future::Cache;

use crate::config::QueryConfig;
use crate::directory::records::Key;

/// What moka keeps per entry besides key and value.
const PER_ENTRY: usize = 96;

pub struct Keys {
    ends: Cache<String, Key>,
}

impl Keys {
    pub fn new(cfg: &QueryConfig) -> Keys {
        let ends = Cache::builder()
            .max_capacity(cfg.snapshot_max_bytes)
            .weigher(|k: &String, v: &Key| {
                let bytes = k.len() + v.id.len() + v.value.as_ref().map_or(0, String::len) + PER_ENTRY;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .time_to_live(Duration::from_secs(cfg.snapshot_ttl_secs))
            .build();
        Keys { ends }
    }

    /// The key of the row before `start_index` in the result `query` names.
    pub async fn get(&self, query: &str, start_index: usize) -> Option<Key> {
        self.ends.get(&format!("{start_index}\n{query}")).await
    }

    /// Remembers that the row before `next_index` has `key`.
    pub async fn put(&self, query: &str, next_index: usize, key: Key) {
        self.ends.insert(format!("{next_index}\n{query}"), key).await;
    }
}
