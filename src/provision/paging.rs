//! One page of a list: the ordered ids of the whole result (from a snapshot after page 1),
//! then the page's entries by id. What the directory cannot decide exactly, and `sortBy`,
//! the gateway finishes on a bounded candidate set.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::snapshot::Snapshots;
use super::store::Store;
use super::Result;
use crate::config::QueryConfig;
use crate::directory::{Entry, LdapFilter, Scope, Search};
use crate::mapping::{Entity, Translated};
use crate::metrics::Metrics;
use crate::scim::eval;
use crate::scim::filter::Filter;
use crate::scim::list::{Projection, Query};
use crate::scim::{self, ScimType};

/// The list machinery shared by users and groups.
pub struct Lister {
    snapshots: Snapshots,
    max_candidates: usize,
    metrics: Arc<Metrics>,
}

/// How a resource type answers one list request.
pub struct Plan<'a> {
    /// The directory's part: exactly the result, or a superset when `translated.exact` is false.
    translated: Translated,
    query: &'a Query,
    /// Who asks, and what: snapshots are never shared across callers or resource types.
    key: String,
    /// The resource an entry maps to, for checking the filter and sorting in the gateway.
    resource: &'a Resource<'a>,
    schema: &'static str,
    /// The attributes of the page's entries (what the answer shows).
    attrs: Vec<String>,
}

/// An entry as its resource type's mapping shows it (a JSON object).
pub type Resource<'a> = dyn Fn(&Entry) -> Value + Send + Sync + 'a;

impl<'a> Plan<'a> {
    /// `caller`'s list `query` of the resource type `entity` maps: `translated` is the
    /// directory's part of the query's filter, `None` without a filter (every entry of the
    /// type); `attrs`, what the page's entries are read with.
    pub fn new(
        entity: &Entity,
        query: &'a Query,
        caller: &str,
        translated: Option<Translated>,
        resource: &'a Resource<'a>,
        attrs: Vec<String>,
    ) -> Plan<'a> {
        Plan {
            translated: translated.unwrap_or_else(|| Translated { filter: entity.filter.clone(), exact: true }),
            query,
            key: format!("{}\n{caller}\n{}", entity.resource_type, query.result_key()),
            resource,
            schema: entity.schema,
            attrs,
        }
    }
}

impl Lister {
    pub fn new(cfg: &QueryConfig, metrics: Arc<Metrics>) -> Lister {
        Lister { snapshots: Snapshots::new(cfg), max_candidates: cfg.max_candidates.max(1), metrics }
    }

    /// The total and the entries of the page `plan.query` asks for, in the result's order.
    pub async fn page(&self, store: &Store<'_>, plan: Plan<'_>) -> Result<(usize, Vec<Entry>)> {
        let q = plan.query;
        let cached = match q.start_index {
            1 => None,
            _ => {
                let found = self.snapshots.get(&plan.key).await;
                self.metrics.cache_lookup("snapshot", found.is_some());
                found
            }
        };
        let ids = match cached {
            Some(ids) => ids,
            None => {
                let ids = Arc::new(self.ordered_ids(store, &plan).await?);
                self.snapshots.put(plan.key.clone(), ids.clone()).await;
                ids
            }
        };
        let page: Vec<&str> = ids.iter().skip(q.start_index - 1).take(q.count).map(String::as_str).collect();
        Ok((ids.len(), by_ids(store, &page, plan.attrs).await?))
    }

    /// The ids of the whole result, in order. When the directory's answer is exact and no
    /// order is asked for, ids alone are read; otherwise at most `max_candidates` entries,
    /// with just what the filter and the order look at.
    async fn ordered_ids(&self, store: &Store<'_>, plan: &Plan<'_>) -> Result<Vec<String>> {
        let q = plan.query;
        let entity = store.entity;
        let id_attr = &entity.id_attr;
        let check = q.filter.as_ref().filter(|_| !plan.translated.exact);
        let mut search = Search {
            base: entity.base_dn.clone(),
            scope: Scope::Subtree,
            filter: plan.translated.filter.clone(),
            attrs: vec![id_attr.clone()],
        };
        if check.is_none() && q.sort.is_none() {
            let found = store.dir.search(&search).await?;
            return Ok(found.iter().filter_map(|e| e.first(id_attr)).map(str::to_owned).collect());
        }
        search.attrs.extend(entity.read_attrs_for(&Projection::needed_by(check, q.sort.as_ref())));
        let found =
            store.dir.search_at_most(&search, self.max_candidates).await?.ok_or_else(|| too_many(self, check))?;
        let mut kept: Vec<(&str, Map<String, Value>)> = found
            .iter()
            .filter_map(|e| match (plan.resource)(e) {
                Value::Object(r) => Some((e.first(id_attr)?, r)),
                _ => None,
            })
            .filter(|(_, r)| check.is_none_or(|f| eval::matches(r, f, plan.schema)))
            .collect();
        if let Some(sort) = &q.sort {
            kept.sort_by(|(id_a, a), (id_b, b)| {
                let order = eval::compare_by(a, b, &sort.by, plan.schema);
                // Ties in id order, so that pages of equal values never overlap.
                if sort.descending { order.reverse() } else { order }.then_with(|| id_a.cmp(id_b))
            });
        }
        Ok(kept.into_iter().map(|(id, _)| id.to_owned()).collect())
    }
}

fn too_many(lister: &Lister, check: Option<&Filter>) -> scim::Error {
    let why = match check {
        Some(_) => "this filter has conditions the directory cannot decide exactly (ordering on strings, case-exact attributes), which the gateway checks",
        None => "sortBy is done by the gateway, which sorts",
    };
    scim::Error::new(
        ScimType::TooMany,
        format!(
            "{why} on at most {} entries ([query] max_candidates), and more match: narrow the filter with a condition the directory decides (eq, sw, co, pr)",
            lister.max_candidates
        ),
    )
}

/// The entries with these ids, in the same order: one search, since a page holds at most
/// [`scim::list::MAX_COUNT`] ids.
async fn by_ids(store: &Store<'_>, ids: &[&str], attrs: Vec<String>) -> Result<Vec<Entry>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let id_attr = &store.entity.id_attr;
    let any = LdapFilter::Or(ids.iter().map(|id| LdapFilter::eq(id_attr, id)).collect());
    let filter = store.entity.filter.clone().and(any);
    let mut entries = store.search(&store.entity.base_dn, Scope::Subtree, filter, attrs).await?;
    let position: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    entries.sort_by_key(|e| e.first(id_attr).and_then(|id| position.get(id).copied()).unwrap_or(usize::MAX));
    Ok(entries)
}
