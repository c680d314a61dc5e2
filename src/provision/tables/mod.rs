//! The SCIM operations over a [`Records`] store (PostgreSQL tables): the same mapping,
//! cache and audit as the LDAP path, without its workarounds. Each write is one call to
//! the store, which makes it whole or refuses it: no undo, no stand-in, no `keep_first`.
//! What the two paths share (body checks, mutability, PATCH, filters → conditions, the
//! rendering) is `scim`, `mapping` and `body`.

mod groups;
mod keys;
mod password;
mod users;

pub use groups::TableGroups;
pub use keys::Keys;
pub use users::TableUsers;

use serde_json::{Map, Value};

use super::{Error, Result};
use crate::directory::records::{Kind, Order, PageQuery, Records, Set};
use crate::directory::{Change, DirectoryError, Entry};
use crate::mapping::{Entity, Translated};
use crate::scim::eval;
use crate::scim::list::{Query, Sort};
use crate::scim::{self, ScimType};

/// What a list needs besides the query: the store, the mapping and how an entry looks as
/// a resource (for the gateway's own check of a filter the store cannot decide).
pub(super) struct Listing<'a> {
    pub store: &'a dyn Records,
    pub kind: Kind,
    pub entity: &'a Entity,
    pub resource: &'a (dyn Fn(&Entry) -> Map<String, Value> + Send + Sync),
    pub keys: &'a Keys,
    /// Who asks and what, so a key is only ever reused by the same caller for the same query.
    pub key: String,
    pub max_candidates: usize,
}

impl Listing<'_> {
    /// The total and the rows of the page `query` asks for. Exact conditions and a sort on
    /// a mapped column are the database's, a page continuing from the previous page's last
    /// key (OFFSET only when none is known); otherwise the gateway filters and sorts at most
    /// `max_candidates` rows.
    pub async fn page(&self, translated: Translated, query: &Query) -> Result<(usize, Vec<Entry>)> {
        let order = match &query.sort {
            Some(sort) => {
                order_column(self.entity, sort).map(|column| Some(Order { column, descending: sort.descending }))
            }
            None => Some(None),
        };
        let (Some(order), true) = (order, translated.exact) else {
            return self.in_gateway(translated, query).await;
        };
        let after = match query.start_index {
            1 => None,
            n => self.keys.get(&self.key, n).await,
        };
        let q =
            PageQuery { filter: translated.filter, order, after, offset: query.start_index - 1, limit: query.count };
        let page = self.store.page(self.kind, &q).await?;
        if let Some(last) = page.last {
            self.keys.put(&self.key, query.start_index + page.rows.len(), last).await;
        }
        Ok((page.total, page.rows))
    }

    async fn in_gateway(&self, translated: Translated, query: &Query) -> Result<(usize, Vec<Entry>)> {
        let found = self.store.find(self.kind, &translated.filter, self.max_candidates).await?;
        let found = found.ok_or_else(|| {
            scim::Error::new(
                ScimType::TooMany,
                format!(
                    "this filter or sortBy is finished by the gateway on at most {} rows ([query] max_candidates), and more match: narrow the filter",
                    self.max_candidates
                ),
            )
        })?;
        let check = query.filter.as_ref().filter(|_| !translated.exact);
        let mut kept: Vec<(Entry, Map<String, Value>)> = found
            .into_iter()
            .map(|e| {
                let r = (self.resource)(&e);
                (e, r)
            })
            .filter(|(_, r)| check.is_none_or(|f| eval::matches(r, f, self.entity.schema)))
            .collect();
        if let Some(sort) = &query.sort {
            kept.sort_by(|(ea, a), (eb, b)| {
                let order = eval::compare_by(a, b, &sort.by, self.entity.schema);
                if sort.descending { order.reverse() } else { order }.then_with(|| ea.dn.cmp(&eb.dn))
            });
        } else {
            kept.sort_by(|(a, _), (b, _)| a.dn.cmp(&b.dn));
        }
        let total = kept.len();
        let page = kept.into_iter().skip(query.start_index - 1).take(query.count).map(|(e, _)| e).collect();
        Ok((total, page))
    }
}

/// The column a sort on `sort.by` orders by, when one plain rule (or `id`, `meta.created`,
/// `meta.lastModified`) stores it; other paths are sorted by the gateway.
fn order_column(entity: &Entity, sort: &Sort) -> Option<String> {
    let p = &sort.by;
    if p.urn.as_deref().is_some_and(|u| !u.eq_ignore_ascii_case(entity.schema)) {
        return None;
    }
    let sub = p.sub_attr.as_deref();
    match (p.name.to_ascii_lowercase().as_str(), sub.map(str::to_ascii_lowercase).as_deref()) {
        ("id", None) => return Some(entity.id_attr.clone()),
        ("meta", Some("created")) => return Some(entity.created_attr.clone()),
        ("meta", Some("lastmodified")) => return Some(entity.modified_attr.clone()),
        _ => {}
    }
    entity
        .rules
        .iter()
        .find(|r| {
            let t = &r.target;
            t.schema.is_none()
                && t.selector.is_none()
                && !r.many
                && r.direction.reads()
                && t.attr.eq_ignore_ascii_case(&p.name)
                && t.sub.as_deref().map(str::to_ascii_lowercase) == sub.map(str::to_ascii_lowercase)
        })
        .map(|r| r.ldap.clone())
}

/// The column values `changes` set: a table column holds one value (the first), emptied
/// when the change removes it. Binary values have no column form here.
fn set_of(changes: Vec<Change>) -> Result<Set> {
    changes
        .into_iter()
        .map(|c| match c {
            Change::Replace(col, v) | Change::Add(col, v) => Ok((col, v.into_iter().next())),
            Change::Delete(col, _) => Ok((col, None)),
            Change::Binary(col, _) | Change::Swap(col, ..) => {
                Err(scim::Error::value(format!("{col}: binary values are not stored in table columns")).into())
            }
        })
        .collect()
}

/// The values of a new row: each column's first value.
fn row_of(attrs: crate::directory::Attributes) -> Set {
    attrs.into_iter().filter_map(|(col, v)| Some((col, Some(v.into_iter().next()?)))).collect()
}

/// The version an update must still find, when the request has an If-Match (already
/// checked against `entry`): decided again by the database in the same statement, so a
/// change between the read and the write is a 412, not overwritten.
fn expected<'a>(entity: &Entity, entry: &'a Entry, if_match: Option<&str>) -> Option<&'a str> {
    if_match.map(str::trim).filter(|m| *m != "*").and_then(|_| entry.first(&entity.version_attr))
}

/// An update that found nothing to write: with an expected version, the record may have
/// changed (412) rather than gone (404); reading it again tells which.
async fn updated(
    store: &dyn Records,
    kind: Kind,
    id: &str,
    version: Option<&str>,
    result: std::result::Result<Entry, DirectoryError>,
) -> Result<Entry> {
    let what = if kind == Kind::Users { "user" } else { "group" };
    match result {
        Err(DirectoryError::NoSuchEntry) if version.is_some() => match store.get(kind, id).await {
            Ok(_) => Err(Error::PreconditionFailed),
            Err(e) => Err(found(what, id)(e)),
        },
        other => other.map_err(found(what, id)),
    }
}

/// A store's answer in provision's terms: no row is 404, a unique index 409.
fn found<'a>(what: &'a str, id: &'a str) -> impl FnOnce(DirectoryError) -> Error + 'a {
    move |e| match e {
        DirectoryError::NoSuchEntry => Error::NotFound(format!("no {what} has the id {id:?}")),
        e => unique(e),
    }
}

fn unique(e: DirectoryError) -> Error {
    match e {
        DirectoryError::NotUnique(why) => Error::Uniqueness(why),
        e => Error::Directory(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_path;

    #[test]
    fn sorts_on_mapped_columns_only() {
        let text = include_str!("../../../presets/postgres.toml")
            .replace("${SCIM_GATEWAY_TOKEN}", "t")
            .replace("${SCIM_GATEWAY_PG_PASSWORD}", "p");
        let loaded = crate::config::Loaded::parse("gateway.toml", text).unwrap();
        let users = crate::mapping::UserMapping::compile(&loaded.config.users).unwrap();
        let by = |p: &str| order_column(&users, &Sort { by: parse_path(p).unwrap().attr, descending: false });
        assert_eq!(by("userName").as_deref(), Some("user_name"));
        assert_eq!(by("name.familyName").as_deref(), Some("family_name"));
        assert_eq!(by("meta.created").as_deref(), Some("created_at"));
        assert_eq!(by("id").as_deref(), Some("id"));
        assert_eq!(by("emails.value"), None, "picked by a selector: the gateway sorts");
        assert_eq!(by("nickName"), None);
    }

    #[test]
    fn changes_become_column_values() {
        let set =
            set_of(vec![Change::Replace("a".into(), vec!["1".into(), "2".into()]), Change::Delete("b".into(), vec![])]);
        assert_eq!(set.unwrap(), vec![("a".into(), Some("1".into())), ("b".into(), None)]);
        assert!(set_of(vec![Change::Binary("p".into(), vec![])]).is_err());
    }
}
