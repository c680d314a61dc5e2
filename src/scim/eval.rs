//! A SCIM filter evaluated on a resource, and resources ordered by `sortBy` (RFC 7644
//! §3.4.2.2–3). The gateway uses these where the directory cannot answer exactly: ordering on
//! strings without an LDAP ordering rule, case-exact attributes over case-ignoring LDAP
//! matching rules, and sorting. Pure; the caller bounds how many resources it evaluates.
//!
//! Semantics: attribute names are case-insensitive; strings compare case-insensitively unless
//! the schema says `caseExact`; `dateTime` values compare as instants; a multi-valued
//! attribute matches when any of its values does, and a complex one without a sub-attribute
//! compares its `value`; `ne` is the negation of `eq` (so an absent attribute is `ne`
//! anything); ordering on booleans, and any comparison of mismatched types, is false.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::filter::{AttrPath, CompareOp, Filter};
use super::json::{as_bool, get_ci};
use super::schema::{self, AttrDef, Kind};

/// Whether `resource` (of the core schema `schema`) matches `filter`.
pub fn matches(resource: &Map<String, Value>, filter: &Filter, schema: &str) -> bool {
    eval(&Scope::Resource(resource, schema), filter)
}

/// Orders two resources by `path` (`sortBy`); resources without a value come last in
/// ascending order (first in descending order: the whole order is reversed).
pub fn compare_by(a: &Map<String, Value>, b: &Map<String, Value>, path: &AttrPath, schema: &str) -> Ordering {
    let key = |r| sort_key(r, path, schema);
    match (key(a), key(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Where paths are resolved: the resource, or one element of a multi-valued attribute
/// inside a value filter (`emails[type eq "work"]`).
enum Scope<'a> {
    Resource(&'a Map<String, Value>, &'a str),
    Element(&'a Value, Option<&'static AttrDef>),
}

fn eval(scope: &Scope, f: &Filter) -> bool {
    match f {
        Filter::And(a, b) => eval(scope, a) && eval(scope, b),
        Filter::Or(a, b) => eval(scope, a) || eval(scope, b),
        Filter::Not(a) => !eval(scope, a),
        Filter::Present(path) => leaves(scope, path).0.iter().any(|v| present(v)),
        Filter::Compare { path, op, value } => {
            let (values, def) = leaves(scope, path);
            let hit = |op| values.iter().any(|v| compare(v, op, value, def));
            match op {
                CompareOp::Ne => !hit(CompareOp::Eq),
                op => hit(*op),
            }
        }
        Filter::ValuePath { path, filter } => {
            let Scope::Resource(res, schema) = scope else { return false };
            let (container, def) = attribute(res, schema, path);
            let elements: Vec<&Value> = match container {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(v @ Value::Object(_)) => vec![v],
                _ => Vec::new(),
            };
            elements.into_iter().any(|e| eval(&Scope::Element(e, def), filter))
        }
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// The top-level attribute `path` names (in its extension object when it has a URN), with
/// its definition when the schema knows it.
fn attribute<'a>(
    res: &'a Map<String, Value>,
    schema: &str,
    path: &AttrPath,
) -> (Option<&'a Value>, Option<&'static AttrDef>) {
    let urn = path.urn.as_deref().unwrap_or(schema);
    let container =
        if urn.eq_ignore_ascii_case(schema) { Some(res) } else { get_ci(res, urn).and_then(Value::as_object) };
    (container.and_then(|c| get_ci(c, &path.name)), definition(urn, schema, &path.name))
}

/// The definition of attribute `name` of schema `urn`; core schemas include the common
/// attributes (`id`, `externalId`, `meta`).
fn definition(urn: &str, core: &str, name: &str) -> Option<&'static AttrDef> {
    let common = || urn.eq_ignore_ascii_case(core).then(|| schema::find(schema::COMMON, name)).flatten();
    schema::definitions(urn).and_then(|d| schema::find(d, name)).or_else(common)
}

/// The values `path` designates, flattened over multi-valued attributes, and the definition
/// of the leaf (for `caseExact` and the type).
fn leaves<'a>(scope: &Scope<'a>, path: &AttrPath) -> (Vec<&'a Value>, Option<&'static AttrDef>) {
    let (top, def, sub) = match scope {
        Scope::Resource(res, schema) => {
            let (v, def) = attribute(res, schema, path);
            (v, def, path.sub_attr.as_deref())
        }
        // Inside `emails[…]`, `type` names a sub-attribute of the element.
        Scope::Element(e, parent) => {
            let v = e.as_object().and_then(|o| get_ci(o, &path.name));
            let def = parent.and_then(|p| schema::find(p.sub, &path.name));
            (v, def, path.sub_attr.as_deref())
        }
    };
    let items: Vec<&Value> = match top {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    };
    let (sub, leaf_def) = leaf_of(def, sub);
    let values = match sub {
        Some(s) => items.into_iter().filter_map(|i| i.as_object().and_then(|o| get_ci(o, s))).collect(),
        None => items,
    };
    (values, leaf_def)
}

/// The sub-attribute a path compares and its definition: complex values compare on `value`
/// unless a sub-attribute is named.
fn leaf_of<'s>(def: Option<&'static AttrDef>, sub: Option<&'s str>) -> (Option<&'s str>, Option<&'static AttrDef>) {
    let sub = sub.or_else(|| def.filter(|d| d.kind == Kind::Complex).map(|_| "value"));
    match sub {
        Some(s) => (Some(s), def.and_then(|d| schema::find(d.sub, s))),
        None => (None, def),
    }
}

/// A value in a form that orders as SCIM says it should.
#[derive(Debug, PartialEq, PartialOrd)]
enum Key {
    Bool(bool),
    Number(f64),
    Time(OffsetDateTime),
    Text(String),
}

fn key(v: &Value, def: Option<&AttrDef>) -> Option<Key> {
    let kind = def.map(|d| d.kind);
    match v {
        Value::Bool(b) => Some(Key::Bool(*b)),
        Value::Number(n) => n.as_f64().map(Key::Number),
        Value::String(s) if kind == Some(Kind::Boolean) => as_bool(v).map(Key::Bool).or(Some(Key::Text(s.clone()))),
        Value::String(s) if kind == Some(Kind::DateTime) => OffsetDateTime::parse(s, &Rfc3339).ok().map(Key::Time),
        Value::String(s) if def.is_some_and(|d| d.case_exact) => Some(Key::Text(s.clone())),
        Value::String(s) => Some(Key::Text(s.to_lowercase())),
        _ => None,
    }
}

fn compare(actual: &Value, op: CompareOp, expected: &Value, def: Option<&AttrDef>) -> bool {
    if expected.is_null() {
        return op == CompareOp::Eq && actual.is_null();
    }
    let (Some(a), Some(e)) = (key(actual, def), key(expected, def)) else { return false };
    match (&a, &e, op) {
        (Key::Text(a), Key::Text(e), CompareOp::Co) => a.contains(e.as_str()),
        (Key::Text(a), Key::Text(e), CompareOp::Sw) => a.starts_with(e.as_str()),
        (Key::Text(a), Key::Text(e), CompareOp::Ew) => a.ends_with(e.as_str()),
        (_, _, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) => false,
        (Key::Bool(_), Key::Bool(_), CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le) => false,
        _ if std::mem::discriminant(&a) != std::mem::discriminant(&e) => false,
        _ => match (a.partial_cmp(&e), op) {
            (Some(o), CompareOp::Eq) => o == Ordering::Equal,
            (Some(o), CompareOp::Ne) => o != Ordering::Equal,
            (Some(o), CompareOp::Gt) => o == Ordering::Greater,
            (Some(o), CompareOp::Ge) => o != Ordering::Less,
            (Some(o), CompareOp::Lt) => o == Ordering::Less,
            (Some(o), CompareOp::Le) => o != Ordering::Greater,
            _ => false,
        },
    }
}

/// The value a resource sorts by: for a multi-valued attribute, its primary value or else
/// its first (RFC 7644 §3.4.2.3).
fn sort_key(res: &Map<String, Value>, path: &AttrPath, schema: &str) -> Option<Key> {
    let (top, def) = attribute(res, schema, path);
    let one = match top? {
        Value::Array(items) => {
            items.iter().find(|i| i.get("primary").and_then(as_bool) == Some(true)).or(items.first())?
        }
        v => v,
    };
    let (sub, leaf_def) = leaf_of(def, path.sub_attr.as_deref());
    let leaf = match sub {
        Some(s) => one.as_object().and_then(|o| get_ci(o, s))?,
        None => one,
    };
    key(leaf, leaf_def)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::{parse_filter, parse_path};
    use crate::scim::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "id": "2819c223", "userName": "BJensen", "externalId": "Ab-1", "active": true, "title": "Tour Guide",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                       {"value": "babs@jensen.org", "type": "home"}],
            "meta": {"created": "2026-01-23T04:56:22Z", "lastModified": "2026-05-13T04:42:34+02:00"},
            ENTERPRISE_USER_SCHEMA: {"department": "Tour Operations", "employeeNumber": "701984"},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn is(filter: &str) -> bool {
        matches(&user(), &parse_filter(filter).unwrap(), USER_SCHEMA)
    }

    #[test]
    fn every_operator() {
        for (f, want) in [
            (r#"userName eq "bjensen""#, true),
            (r#"username EQ "BJENSEN""#, true),
            (r#"userName ne "bjensen""#, false),
            (r#"userName ne "other""#, true),
            (r#"userName co "jen""#, true),
            (r#"userName sw "bj""#, true),
            (r#"userName ew "sen""#, true),
            (r#"userName ew "bj""#, false),
            (r#"userName gt "bja""#, true),
            (r#"userName ge "bjensen""#, true),
            (r#"userName lt "bjensen""#, false),
            (r#"userName le "BJENSEN""#, true),
            (r#"title pr"#, true),
            (r#"nickName pr"#, false),
            (r#"nickName ne "x""#, true),
            (r#"nickName eq null"#, false),
            (r#"name.familyName lt "k""#, true),
            (r#"active eq true"#, true),
            (r#"active eq "True""#, true),
            (r#"active gt false"#, false),
            (r#"active co "t""#, false),
        ] {
            assert_eq!(is(f), want, "{f}");
        }
    }

    #[test]
    fn case_exact_attributes() {
        assert!(is(r#"externalId eq "Ab-1""#));
        assert!(!is(r#"externalId eq "ab-1""#));
        assert!(!is(r#"id eq "2819C223""#));
        assert!(is(r#"externalId gt "AA""#) && !is(r#"externalId gt "aa""#));
    }

    #[test]
    fn multi_valued_and_value_paths() {
        assert!(is(r#"emails eq "babs@jensen.org""#));
        assert!(is(r#"emails.value ew "example.com""#));
        assert!(is(r#"emails.type eq "home""#));
        assert!(is(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!is(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(is(r#"emails[not (type eq "home")]"#));
        assert!(!is(r#"phoneNumbers[type eq "work"]"#));
    }

    #[test]
    fn extensions_dates_and_logic() {
        assert!(is(&format!(r#"{ENTERPRISE_USER_SCHEMA}:department sw "tour""#)));
        assert!(is(&format!(r#"{ENTERPRISE_USER_SCHEMA}:employeeNumber gt "70""#)));
        assert!(is(r#"meta.created gt "2026-01-23T05:56:21+01:00""#));
        assert!(!is(r#"meta.created gt "2026-01-23T05:56:22+01:00""#));
        // 04:42:34+02:00 is 02:42:34Z: compared as instants, not as text.
        assert!(is(r#"meta.lastModified lt "2026-05-13T03:00:00Z""#));
        assert!(is(r#"title pr and (userName eq "x" or not (active eq false))"#));
        assert!(!is(r#"title pr and not (title pr)"#));
    }

    #[test]
    fn sorting() {
        let mut a = user();
        let mut b = user();
        a.insert("userName".into(), "alice".into());
        b.insert("userName".into(), "Bob".into());
        let by = |p: &str| parse_path(p).unwrap().attr;
        assert_eq!(compare_by(&a, &b, &by("userName"), USER_SCHEMA), Ordering::Less);
        b.remove("userName");
        assert_eq!(compare_by(&a, &b, &by("userName"), USER_SCHEMA), Ordering::Less, "no value sorts last");
        b.insert("emails".into(), json!([{"value": "z@x", "type": "home"}, {"value": "a@x", "primary": true}]));
        assert_eq!(compare_by(&a, &b, &by("emails"), USER_SCHEMA), Ordering::Greater, "by the primary value");
        b.insert("meta".into(), json!({"created": "2025-01-01T00:00:00Z"}));
        assert_eq!(compare_by(&a, &b, &by("meta.created"), USER_SCHEMA), Ordering::Greater);
    }
}
