//! Query parameters, projection and list responses (RFC 7644 §3.4.2, §3.9).

use serde_json::{json, Map, Value};

use super::filter::{parse_filter, parse_path, AttrPath, Filter};
use super::json::{key_ci, remove_ci};
use super::{Error, Json, Result, ScimType, LIST_RESPONSE_SCHEMA};

/// The largest page the gateway returns; advertised as `filter.maxResults`.
pub const MAX_COUNT: usize = 1000;

/// A list or search request, from the query string or a `.search` body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub filter: Option<Filter>,
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
    pub projection: Projection,
    pub sort: Option<Sort>,
}

/// `sortBy` / `sortOrder` (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub by: AttrPath,
    pub descending: bool,
}

/// `attributes` / `excludedAttributes`, as lower-cased dotted paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

impl Query {
    /// Reads `key=value` pairs (already percent-decoded).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Query> {
        let mut q = Query { start_index: 1, count: MAX_COUNT, ..Query::default() };
        let mut descending = false;
        for (key, value) in pairs {
            match key.to_ascii_lowercase().as_str() {
                "filter" => q.filter = Some(filter(value)?),
                "startindex" => q.start_index = number(key, value)?.max(1) as usize,
                "count" => q.count = (number(key, value)?.max(0) as usize).min(MAX_COUNT),
                "attributes" => q.projection.attributes = split(value),
                "excludedattributes" => q.projection.excluded = split(value),
                "sortby" => q.sort = Some(Sort { by: sort_by(value)?, descending: false }),
                "sortorder" => descending = sort_order(value)?,
                _ => {}
            }
        }
        if let Some(sort) = &mut q.sort {
            sort.descending = descending;
        }
        Ok(q)
    }

    /// What identifies the result regardless of the page: the filter in canonical form and
    /// the order, for the snapshot of its ids.
    pub fn result_key(&self) -> String {
        let filter = self.filter.as_ref().map(|f| lower_names(f).to_string()).unwrap_or_default();
        let sort = match &self.sort {
            Some(s) => format!("{}{}", lower(&s.by), if s.descending { " desc" } else { "" }),
            None => String::new(),
        };
        format!("{filter}\n{sort}")
    }

    /// Reads a `SearchRequest` body (`POST …/.search`).
    pub fn from_body(body: &Value) -> Result<Query> {
        let obj = body.as_object().ok_or_else(|| Error::syntax("a SearchRequest must be a JSON object"))?;
        let text = |v: &Value| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Array(a) => Ok(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(Error::value(format!("unexpected value {v}"))),
        };
        let pairs: Vec<(String, String)> = obj
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
            .map(|(k, v)| Ok((k.clone(), text(v)?)))
            .collect::<Result<_>>()?;
        Self::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

fn filter(text: &str) -> Result<Filter> {
    parse_filter(text).map_err(|e| Error::new(ScimType::InvalidFilter, format!("filter {text:?}: {e}")))
}

/// `f` with attribute names and URNs lower-cased: they are case-insensitive, values are not.
fn lower_names(f: &Filter) -> Filter {
    let pair = |a: &Filter, b: &Filter| (Box::new(lower_names(a)), Box::new(lower_names(b)));
    match f {
        Filter::And(a, b) => {
            let (a, b) = pair(a, b);
            Filter::And(a, b)
        }
        Filter::Or(a, b) => {
            let (a, b) = pair(a, b);
            Filter::Or(a, b)
        }
        Filter::Not(a) => Filter::Not(Box::new(lower_names(a))),
        Filter::Present(p) => Filter::Present(lower(p)),
        Filter::Compare { path, op, value } => Filter::Compare { path: lower(path), op: *op, value: value.clone() },
        Filter::ValuePath { path, filter } => {
            Filter::ValuePath { path: lower(path), filter: Box::new(lower_names(filter)) }
        }
    }
}

/// `name` or `urn:…:name`, lower-cased, as projections name attributes.
fn top_level(p: &AttrPath) -> String {
    match &p.urn {
        Some(urn) => format!("{}:{}", urn.to_ascii_lowercase(), p.name.to_ascii_lowercase()),
        None => p.name.to_ascii_lowercase(),
    }
}

fn lower(p: &AttrPath) -> AttrPath {
    AttrPath {
        urn: p.urn.as_deref().map(str::to_ascii_lowercase),
        name: p.name.to_ascii_lowercase(),
        sub_attr: p.sub_attr.as_deref().map(str::to_ascii_lowercase),
    }
}

fn sort_by(value: &str) -> Result<AttrPath> {
    match parse_path(value) {
        Ok(p) if p.filter.is_none() => Ok(p.attr),
        Ok(_) => Err(Error::value(format!("sortBy must be an attribute path, not {value:?}"))),
        Err(e) => Err(Error::value(format!("sortBy {value:?}: {e}"))),
    }
}

/// Whether the order is descending.
fn sort_order(value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "ascending" => Ok(false),
        "descending" => Ok(true),
        _ => Err(Error::value(format!("sortOrder is ascending or descending, not {value:?}"))),
    }
}

fn number(key: &str, value: &str) -> Result<i64> {
    value.trim().parse().map_err(|_| Error::value(format!("{key} must be an integer, not {value:?}")))
}

/// The comma-separated paths of `attributes` / `excludedAttributes`. A value filter in a path
/// (`emails[type eq "work"]`) is not a projection RFC 7644 defines: the path stands for its
/// attribute (`emails`), rather than for nothing; commas inside the brackets do not split.
fn split(value: &str) -> Vec<String> {
    let (mut paths, mut path, mut depth, mut quoted) = (Vec::new(), String::new(), 0usize, false);
    for c in value.chars() {
        match c {
            '"' if depth > 0 => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted && depth > 0 => depth -= 1,
            ',' if depth == 0 => paths.push(std::mem::take(&mut path)),
            _ if depth == 0 => path.push(c),
            _ => {}
        }
    }
    paths.push(path);
    paths.into_iter().map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect()
}

impl Projection {
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Whether the answer includes the top-level attribute `attr`, so that an expensive
    /// one (a group's members) is not read when it would be dropped.
    pub fn wants(&self, attr: &str) -> bool {
        let attr = attr.to_ascii_lowercase();
        let named = |list: &[String], whole_only: bool| {
            list.iter().any(|a| *a == attr || (!whole_only && a.starts_with(&format!("{attr}."))))
        };
        (self.attributes.is_empty() || named(&self.attributes, false)) && !named(&self.excluded, true)
    }

    /// [`Projection::wants`] for an attribute of the core schema (`schema` is `None`) or of
    /// an extension, which may also be asked for or excluded whole by its URN.
    pub fn wants_in(&self, schema: Option<&str>, attr: &str) -> bool {
        let Some(urn) = schema else { return self.wants(attr) };
        let urn = urn.to_ascii_lowercase();
        let listed = |list: &[String]| list.contains(&urn);
        !listed(&self.excluded) && (listed(&self.attributes) || self.wants(&format!("{urn}:{attr}")))
    }

    /// The attributes a filter and a sort order look at, as a projection: what checking them
    /// in the gateway must read.
    pub fn needed_by(filter: Option<&Filter>, sort: Option<&Sort>) -> Projection {
        fn collect(f: &Filter, out: &mut Vec<String>) {
            match f {
                Filter::And(a, b) | Filter::Or(a, b) => {
                    collect(a, out);
                    collect(b, out);
                }
                Filter::Not(a) => collect(a, out),
                Filter::Present(p) | Filter::Compare { path: p, .. } | Filter::ValuePath { path: p, .. } => {
                    out.push(top_level(p))
                }
            }
        }
        let mut attributes = Vec::new();
        if let Some(f) = filter {
            collect(f, &mut attributes);
        }
        attributes.extend(sort.map(|s| top_level(&s.by)));
        attributes.sort();
        attributes.dedup();
        Projection { attributes, excluded: Vec::new() }
    }

    /// Keeps what was asked for; `id` and `schemas` always stay (RFC 7643 §7 "returned").
    pub fn apply(&self, resource: &mut Map<String, Value>) {
        if !self.attributes.is_empty() {
            prune(resource, "", &self.attributes);
        }
        for path in &self.excluded {
            remove_path(resource, path);
        }
    }
}

/// Removes every attribute not named (or not holding one named) in `wanted`. Extension
/// objects are walked with their URN as prefix, so `urn:…:User:department` works as a path.
fn prune(obj: &mut Map<String, Value>, prefix: &str, wanted: &[String]) {
    obj.retain(|key, value| {
        let lower = key.to_ascii_lowercase();
        if prefix.is_empty() && matches!(lower.as_str(), "id" | "schemas") {
            return true;
        }
        let path = format!("{prefix}{lower}");
        let whole = wanted.iter().any(|a| *a == path || path.starts_with(&format!("{a}.")));
        if whole {
            return true;
        }
        let separator = if lower.starts_with("urn:") { ':' } else { '.' };
        let inner_prefix = format!("{path}{separator}");
        match value {
            Value::Object(inner) if wanted.iter().any(|a| a.starts_with(&inner_prefix)) => {
                prune(inner, &inner_prefix, wanted);
                !inner.is_empty()
            }
            _ => false,
        }
    });
}

fn remove_path(obj: &mut Map<String, Value>, path: &str) {
    if matches!(path, "id" | "schemas") {
        return;
    }
    // An extension attribute: `urn:…:User:department`.
    if let Some((urn, attr)) = path.rsplit_once(':').filter(|(u, _)| u.starts_with("urn:")) {
        if let Some(Value::Object(ext)) = key_ci(obj, urn).cloned().and_then(|k| obj.get_mut(&k)) {
            remove_path(ext, attr);
        }
        return;
    }
    match path.split_once('.') {
        Some((attr, sub)) => {
            if let Some(Value::Object(inner)) = key_ci(obj, attr).cloned().and_then(|k| obj.get_mut(&k)) {
                remove_ci(inner, sub);
            }
        }
        None => {
            remove_ci(obj, path);
        }
    }
}

/// A `ListResponse` for one page.
pub fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    // Built by hand: `json!` would copy every resource through serde's serializer
    // (a fifth of a lookup's CPU time in the profile, see BENCHMARKS.md); this moves them.
    let mut list = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
    });
    list["Resources"] = Value::Array(resources);
    list
}

/// [`list_response`] of resources already serialised, as the same text `serde_json` writes for
/// it (keys in order, no spaces): a cached user's text is copied in, not parsed and rebuilt.
pub fn list_text(resources: &[Json], total: usize, start_index: usize) -> Json {
    let mut text = Vec::with_capacity(160 + resources.iter().map(|r| r.text.len() + 1).sum::<usize>());
    text.extend_from_slice(b"{\"Resources\":[");
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        text.extend_from_slice(&r.text);
    }
    let tail = format!(
        "],\"itemsPerPage\":{},\"schemas\":[\"{LIST_RESPONSE_SCHEMA}\"],\"startIndex\":{start_index},\"totalResults\":{total}}}",
        resources.len()
    );
    text.extend_from_slice(tail.as_bytes());
    Json { text: text.into(), version: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_text_is_list_response_serialised() {
        let users = [json!({"id": "1", "userName": "a\"b", "meta": {"version": "W/\"1\""}}), json!({"id": "2"})];
        for n in 0..=2 {
            let texts: Vec<Json> = users[..n].iter().map(Json::of).collect();
            let expected = Json::of(&list_response(users[..n].to_vec(), 7, 3));
            assert_eq!(list_text(&texts, 7, 3), expected, "{n} resources");
        }
    }

    #[test]
    fn query_parameters() {
        let q = Query::from_pairs([("filter", "userName eq \"a\""), ("startIndex", "0"), ("count", "5000")]).unwrap();
        assert!(q.filter.is_some());
        assert_eq!((q.start_index, q.count), (1, MAX_COUNT));
        let q = Query::from_pairs([("count", "-3"), ("attributes", "userName, name.givenName")]).unwrap();
        assert_eq!(q.count, 0);
        assert_eq!(q.projection.attributes, ["username", "name.givenname"]);
        let q = Query::from_pairs([("attributes", r#"emails[type eq "work"],phoneNumbers[value co ","].value, id"#)]);
        assert_eq!(q.unwrap().projection.attributes, ["emails", "phonenumbers.value", "id"]);
        assert_eq!(Query::from_pairs([("filter", "userName eq")]).unwrap_err().kind, ScimType::InvalidFilter);
        assert_eq!(Query::from_pairs([("count", "ten")]).unwrap_err().kind, ScimType::InvalidValue);
        let body = json!({"schemas": [], "filter": "userName pr", "startIndex": 3, "attributes": ["userName"]});
        let q = Query::from_body(&body).unwrap();
        assert_eq!((q.start_index, q.projection.attributes.len()), (3, 1));
    }

    #[test]
    fn sorting_parameters() {
        let q = Query::from_pairs([("sortOrder", "DESCENDING"), ("sortBy", "name.familyName")]).unwrap();
        let sort = q.sort.clone().unwrap();
        assert!(sort.descending);
        assert_eq!((sort.by.name.as_str(), sort.by.sub_attr.as_deref()), ("name", Some("familyName")));
        assert!(Query::from_pairs([("sortBy", "userName")]).unwrap().sort.is_some_and(|s| !s.descending));
        assert!(Query::from_pairs([("sortOrder", "descending")]).unwrap().sort.is_none());
        for (k, v) in [("sortBy", "emails[type eq \"work\"]"), ("sortBy", "1x"), ("sortOrder", "up")] {
            assert_eq!(Query::from_pairs([(k, v)]).unwrap_err().kind, ScimType::InvalidValue, "{k}={v}");
        }
        let body = json!({"sortBy": "userName", "sortOrder": "descending", "filter": "title pr"});
        let from_body = Query::from_body(&body).unwrap();
        let from_query =
            Query::from_pairs([("filter", "TITLE  PR"), ("sortby", "USERNAME"), ("sortorder", "descending")]).unwrap();
        assert_eq!(from_body.result_key(), from_query.result_key());
        assert_ne!(from_body.result_key(), q.result_key());
    }

    #[test]
    fn projection() {
        let resource = json!({
            "schemas": ["s"], "id": "1", "userName": "u", "name": {"givenName": "g", "familyName": "f"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "d", "division": "v"},
        });
        let mut r = resource.as_object().unwrap().clone();
        let p = Projection {
            attributes: split("name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            excluded: vec![],
        };
        p.apply(&mut r);
        assert_eq!(
            Value::Object(r),
            json!({"schemas": ["s"], "id": "1", "name": {"givenName": "g"},
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "d"}})
        );
        let mut r = resource.as_object().unwrap().clone();
        Projection { attributes: vec![], excluded: split("name.familyName,userName,id") }.apply(&mut r);
        assert!(r.contains_key("id") && !r.contains_key("userName"));
        assert_eq!(r["name"], json!({"givenName": "g"}));
        let mut r = resource.as_object().unwrap().clone();
        Projection { attributes: split("name"), excluded: vec![] }.apply(&mut r);
        assert!(Projection { attributes: split("name.givenName"), excluded: vec![] }.wants("NAME"));
        assert!(!Projection { attributes: split("displayName"), excluded: vec![] }.wants("members"));
        assert!(!Projection { attributes: vec![], excluded: split("members") }.wants("members"));
        assert!(Projection { attributes: vec![], excluded: split("members.display") }.wants("members"));
        assert_eq!(r["name"], resource["name"]);
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let only = |a: &str| Projection { attributes: split(a), excluded: vec![] };
        assert!(only(ext).wants_in(Some(ext), "department"));
        assert!(only(&format!("{ext}:department")).wants_in(Some(ext), "department"));
        assert!(!only(&format!("{ext}:division")).wants_in(Some(ext), "department"));
        assert!(!only("userName").wants_in(Some(ext), "department"));
        assert!(!Projection { attributes: vec![], excluded: split(ext) }.wants_in(Some(ext), "department"));
        assert!(Projection::default().wants_in(Some(ext), "department"));
    }

    #[test]
    fn attributes_a_filter_needs() {
        let q = Query::from_pairs([
            ("filter", "emails[type eq \"work\"] and (name.familyName gt \"m\" or not (urn:x:Ext:cost pr))"),
            ("sortBy", "Title"),
        ])
        .unwrap();
        let p = Projection::needed_by(q.filter.as_ref(), q.sort.as_ref());
        assert_eq!(p.attributes, ["emails", "name", "title", "urn:x:ext:cost"]);
    }
}
