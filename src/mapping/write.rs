//! SCIM resource → directory attributes, new entries and modifications, through the rules.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::transform::{render, Piece, Steps};
use super::unique::first;
use super::values::decode;
use super::{Computed, Entity, Error, Result, Rule};
use crate::directory::{dn, Attributes, Binary, Change, Entry};
use crate::scim::json::{as_bool, get_ci};
use crate::scim::schema::Kind;

/// Mapped attribute values, keyed by the rule's LDAP attribute; absent means "no value".
/// Binary values are base64 text until they reach the directory.
pub type Values = BTreeMap<String, Vec<String>>;

impl Entity {
    /// The name a resource is known by (`userName`, `displayName`): present, not blank, and
    /// free of control characters (a `\r\n` or NUL in a name breaks logs, LDIF and DNs).
    pub fn require_name(&self, values: &Values, scim: &str) -> Result<()> {
        let rule = self.rule_for(scim).ok_or_else(|| Error::value(format!("{scim} is not mapped")))?;
        let found = values.get(&rule.ldap).map(Vec::as_slice).unwrap_or_default();
        match found.first() {
            None => Err(Error::value(format!("{scim} is required"))),
            Some(v) if v.trim().is_empty() => Err(Error::value(format!("{scim} must not be blank"))),
            Some(v) if v.chars().any(char::is_control) => {
                Err(Error::value(format!("{scim} must not contain control characters")))
            }
            Some(_) => Ok(()),
        }
    }

    /// The values the rules read from a resource.
    pub fn values(&self, res: &Map<String, Value>) -> Result<Values> {
        let mut values = Values::new();
        for rule in self.rules.iter().filter(|r| r.direction.writes()) {
            let mut found = Vec::new();
            for v in self.lookup(res, rule) {
                found.extend(ldap_value(rule, v)?);
            }
            let v = rule.to_ldap(found)?;
            if v.is_empty() && rule.required {
                return Err(Error::value(format!("{} is required", rule.target)));
            }
            if !v.is_empty() {
                values.insert(rule.ldap.clone(), v);
            }
        }
        for c in &self.computed {
            if let Some(v) = self.render_template(&c.pieces, &c.steps, res, &|a| first(&values, a)) {
                values.insert(c.ldap.clone(), vec![v]);
            }
        }
        Ok(values)
    }

    /// What a template (or constant) gives for `res`, shaped by `steps`; `{ldap:…}` pieces
    /// take what `written` says the entry holds.
    pub(super) fn render_template(
        &self,
        pieces: &[Piece],
        steps: &Steps,
        res: &Map<String, Value>,
        written: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let value_of = |r: &Rule| self.lookup(res, r).into_iter().find_map(|v| ldap_value(r, v).ok().flatten());
        steps.apply(render(pieces, value_of, written))
    }

    /// The templates and constants a write leaves as the entry has them: those the entry holds
    /// whose values are unchanged. An entry made outside the gateway (with a `cn` of its own,
    /// say) keeps it until a value the template is made of changes, even across a deactivation.
    fn kept_computed(&self, entry: &Entry, values: &Values) -> Vec<&str> {
        if self.computed.is_empty() {
            return Vec::new();
        }
        let before = self.patch_base(entry, "");
        let was = |a: &str| entry.first(a).map(String::from);
        let unchanged = |c: &&Computed| {
            let after = values.get(&c.ldap).and_then(|v| v.first()).map(String::as_str);
            !entry.values(&c.ldap).is_empty()
                && self.render_template(&c.pieces, &c.steps, &before, &was).as_deref() == after
        };
        self.computed.iter().filter(unchanged).map(|c| c.ldap.as_str()).collect()
    }

    /// The DN, text attributes and binary attributes of a new entry holding `values` and `extra`.
    pub fn new_entry(&self, values: &Values, extra: Attributes) -> Result<(String, Attributes, Binary)> {
        let dn = dn::child(&self.rdn(values)?, &self.base_dn);
        let mut attrs = vec![("objectClass".to_owned(), self.object_classes.clone())];
        let mut binary = Binary::new();
        for (k, v) in values {
            match self.is_binary(k) {
                true => binary.push((k.clone(), v.iter().filter_map(|b| decode(b)).collect())),
                false => attrs.push((k.clone(), v.clone())),
            }
        }
        attrs.extend(extra);
        Ok((dn, attrs, binary))
    }

    /// The naming value in `values`.
    fn naming_value<'a>(&self, values: &'a Values) -> Option<&'a str> {
        values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.rdn_attr))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    /// The RDN `values` give their entry.
    pub fn rdn(&self, values: &Values) -> Result<String> {
        // The naming value comes from a rule or from a template (computed).
        let rule = self.rules.iter().find(|r| r.ldap.eq_ignore_ascii_case(&self.rdn_attr));
        let what = rule.map_or_else(|| self.rdn_attr.clone(), |r| r.target.to_string());
        let value =
            self.naming_value(values).ok_or_else(|| Error::value(format!("{what} is required: it names the entry")))?;
        Ok(dn::rdn(&self.rdn_attr, value))
    }

    /// The new RDN when `values` change the value that names `entry`.
    pub fn renamed(&self, entry: &Entry, values: &Values) -> Result<Option<String>> {
        let kept = |a: &str| a.eq_ignore_ascii_case(&self.rdn_attr);
        if entry.first(&self.rdn_attr) == self.naming_value(values)
            || self.kept_computed(entry, values).into_iter().any(kept)
        {
            return Ok(None);
        }
        self.rdn(values).map(Some)
    }

    /// The modifications that make `entry` hold `values` for every rule (full replacement,
    /// as PUT means). Only changed attributes are touched. An attribute a rule maps to one
    /// value keeps its other values while its first value stays the same; one that holds
    /// several values for its rule is replaced as a whole when the set (or the first,
    /// primary, value) changes.
    pub fn changes(&self, entry: &Entry, values: &Values) -> Vec<Change> {
        let written = self.rules.iter().filter(|r| r.direction.writes()).map(|r| (&r.ldap, r.ldap_many(), r.binary()));
        let kept = self.kept_computed(entry, values);
        let computed =
            self.computed.iter().filter(|c| !kept.contains(&c.ldap.as_str())).map(|c| (&c.ldap, false, false));
        let mut changes = Vec::new();
        for (ldap, many, binary) in written.chain(computed) {
            let new = values.get(ldap).map_or(&[][..], Vec::as_slice);
            if binary {
                let new: Vec<Vec<u8>> = new.iter().filter_map(|b| decode(b)).collect();
                if entry.bytes(ldap) != new.iter().map(Vec::as_slice).collect::<Vec<_>>() {
                    changes.push(Change::Binary(ldap.clone(), new));
                }
                continue;
            }
            let old = entry.values(ldap);
            let same = match many {
                true => old.first() == new.first() && same_set(old, new),
                false => old.first() == new.first(),
            };
            match (same, new.is_empty()) {
                (true, _) => {}
                (false, false) => {
                    changes.push(Change::Replace(ldap.clone(), if many { new.to_vec() } else { new[..1].to_vec() }))
                }
                (false, true) => changes.push(Change::Delete(ldap.clone(), vec![])),
            }
        }
        changes
    }

    fn is_binary(&self, ldap: &str) -> bool {
        self.rules.iter().any(|r| r.binary() && r.ldap.eq_ignore_ascii_case(ldap))
    }

    /// The values a rule reads from a resource: one, or for a rule of several values all of
    /// them, primary first.
    pub(super) fn lookup<'a>(&self, res: &'a Map<String, Value>, rule: &Rule) -> Vec<&'a Value> {
        let t = &rule.target;
        let container = match &t.schema {
            Some(urn) => get_ci(res, urn).and_then(Value::as_object),
            None => Some(res),
        };
        let Some(v) = container.and_then(|c| get_ci(c, &t.attr)) else { return Vec::new() };
        let items = || match v {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            one => vec![one],
        };
        match (&t.selector, &t.sub) {
            (None, None) if rule.many => items(),
            (None, None) => vec![v],
            (None, Some(sub)) if rule.many => {
                let picked = |i: &Value| self.rules.iter().any(|o| o.target.same_attr(t) && o.target.picks(i));
                let mut elements: Vec<&Value> = items().into_iter().filter(|i| !picked(i)).collect();
                elements.sort_by_key(|i| !is_primary(i));
                elements.into_iter().filter_map(|i| get_ci(i.as_object()?, sub)).collect()
            }
            (None, Some(sub)) => v.as_object().and_then(|o| get_ci(o, sub)).into_iter().collect(),
            (Some(_), sub) => {
                let mut matching: Vec<&Value> = items().into_iter().filter(|i| t.picks(i)).collect();
                matching.sort_by_key(|i| !is_primary(i));
                let item = matching.first().and_then(|i| i.as_object());
                item.zip(sub.as_deref()).and_then(|(o, s)| get_ci(o, s)).into_iter().collect()
            }
        }
    }
}

fn is_primary(item: &Value) -> bool {
    item.as_object().and_then(|o| get_ci(o, "primary")).and_then(as_bool) == Some(true)
}

/// The same values, whatever their order (LDAP value sets are unordered).
fn same_set(a: &[String], b: &[String]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

/// A SCIM value as LDAP text; `None` for "no value".
fn ldap_value(rule: &Rule, v: &Value) -> Result<Option<String>> {
    let boolean = rule.kind() == Some(Kind::Boolean);
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        _ if boolean => match (as_bool(v), &rule.boolean) {
            (Some(b), Some((t, f))) => Ok(Some(if b { t } else { f }.clone())),
            (Some(b), None) => Ok(Some(if b { "TRUE" } else { "FALSE" }.into())),
            (None, _) => Err(Error::value(format!("{} must be a boolean, not {v}", rule.target))),
        },
        // An attribute of a known schema (core, enterprise, or declared in gateway.toml): its
        // type decides, so `"userName": 7` is refused (RFC 7644 §3.12 invalidValue) rather
        // than stored as the text "7".
        _ if rule.kind().is_some() => rule.checked(v).map(Some),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(Error::value(format!("{} must be a single value, not {v}", rule.target))),
    }
}
