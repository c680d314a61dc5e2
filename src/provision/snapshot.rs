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

pub struct Snapshots {
    ids: Cache<String, Arc<Vec<String>>>,
}

impl Snapshots {
    pub fn new(cfg: &QueryConfig) -> Snapshots {
        let ids = Cache::builder()
            .max_capacity(cfg.snapshot_capacity)
            // Weighed by ids held, so a few huge results cannot crowd out memory.
            .weigher(|_: &String, ids: &Arc<Vec<String>>| u32::try_from(ids.len()).unwrap_or(u32::MAX).max(1))
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
