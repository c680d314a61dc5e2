//! Short-lived ordered snapshots of list results, so that page k of an import costs the
//! `count` entries it shows and not a new search of the whole result.
//!
//! A snapshot is the ordered ids of one result, keyed by the caller, the resource type and
//! the normalised filter and order (never the page). Page 1 (`startIndex=1`) always searches
//! the directory again and replaces the snapshot, so every new import starts from fresh data;
//! later pages use it while it lives (`[query] snapshot_ttl_secs`). Entries are always read
//! fresh by id: an entry deleted since page 1 is missing from its page, one created since
//! shows from the next page 1. See docs/query.md for why not VLV.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::config::QueryConfig;

/// A `String`'s own size next to its bytes.
const PER_ID: usize = 24;
/// What moka keeps per entry besides key and value.
const PER_ENTRY: usize = 96;

pub struct Snapshots {
    ids: Cache<String, Arc<Vec<String>>>,
}

impl Snapshots {
    pub fn new(cfg: &QueryConfig) -> Snapshots {
        let ids = Cache::builder()
            .max_capacity(cfg.snapshot_max_bytes)
            // Weighed in bytes, the key (made of the client's filter) included, so neither a
            // few huge results nor many huge filters can grow memory past the bound.
            .weigher(|key: &String, ids: &Arc<Vec<String>>| {
                let bytes = key.len() + ids.iter().map(|id| id.len() + PER_ID).sum::<usize>() + PER_ENTRY;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .time_to_live(Duration::from_secs(cfg.snapshot_ttl_secs))
            .build();
        Snapshots { ids }
    }

    pub async fn get(&self, key: &str) -> Option<Arc<Vec<String>>> {
        self.ids.get(key).await
    }

    pub async fn put(&self, key: String, ids: Arc<Vec<String>>) {
        self.ids.insert(key, ids).await;
    }
}
