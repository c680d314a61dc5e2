//! SCIM resource → directory attributes, new entries and modifications, through the rules.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::transform::render;
use super::{Entity, Error, Result, Rule};
use crate::directory::{dn, Attributes, Change, Entry};
use crate::scim::json::{as_bool, get_ci};
use crate::scim::schema::Kind;

/// Mapped attribute values, keyed by the rule's LDAP attribute; absent means "no value".
pub type Values = BTreeMap<String, String>;

impl Entity {
    /// The values the rules read from a resource.
    pub fn values(&self, res: &Map<String, Value>) -> Result<Values> {
        let mut values = Values::new();
        for rule in self.rules.iter().filter(|r| r.direction.writes()) {
            let v = lookup(res, rule).map(|v| ldap_value(rule, v)).transpose()?.flatten();
            match rule.steps.apply(v) {
                Some(v) => values.insert(rule.ldap.clone(), v),
                None if rule.required => return Err(Error::InvalidValue(format!("{} is required", rule.target))),
                None => None,
            };
        }
        for c in &self.computed {
            let v = render(&c.pieces, |r| lookup(res, r).and_then(|v| ldap_value(r, v).ok().flatten()));
            if let Some(v) = c.steps.apply(v) {
                values.insert(c.ldap.clone(), v);
            }
        }
        Ok(values)
    }

    /// The DN and attributes of a new entry holding `values` and `extra`.
    pub fn new_entry(&self, values: &Values, extra: Attributes) -> Result<(String, Attributes)> {
        let dn = dn::child(&self.rdn(values)?, &self.base_dn);
        let mut attrs = vec![("objectClass".to_owned(), self.object_classes.clone())];
        attrs.extend(values.iter().map(|(k, v)| (k.clone(), vec![v.clone()])));
        attrs.extend(extra);
        Ok((dn, attrs))
    }

    /// The RDN `values` give their entry.
    pub fn rdn(&self, values: &Values) -> Result<String> {
        let value = values.iter().find(|(k, _)| k.eq_ignore_ascii_case(&self.rdn_attr)).map(|(_, v)| v);
        // The naming value comes from a rule or from a template (computed).
        let rule = self.rules.iter().find(|r| r.ldap.eq_ignore_ascii_case(&self.rdn_attr));
        let what = rule.map_or_else(|| self.rdn_attr.clone(), |r| r.target.to_string());
        let value = value.ok_or_else(|| Error::InvalidValue(format!("{what} is required: it names the entry")))?;
        Ok(dn::rdn(&self.rdn_attr, value))
    }

    /// The new RDN when `values` change the value that names `entry`.
    pub fn renamed(&self, entry: &Entry, values: &Values) -> Result<Option<String>> {
        let current = entry.first(&self.rdn_attr);
        let wanted = values.iter().find(|(k, _)| k.eq_ignore_ascii_case(&self.rdn_attr)).map(|(_, v)| v.as_str());
        if current == wanted {
            return Ok(None);
        }
        self.rdn(values).map(Some)
    }

    /// The modifications that make `entry` hold `values` for every rule (full replacement,
    /// as PUT means). Only changed attributes are touched; an attribute holding several
    /// values keeps them while its first value stays the same.
    pub fn changes(&self, entry: &Entry, values: &Values) -> Vec<Change> {
        let written = self.rules.iter().filter(|r| r.direction.writes()).map(|r| &r.ldap);
        let mut changes = Vec::new();
        for ldap in written.chain(self.computed.iter().map(|c| &c.ldap)) {
            match (entry.values(ldap).first(), values.get(ldap)) {
                (old, new) if old == new => {}
                (_, Some(v)) => changes.push(Change::Replace(ldap.clone(), vec![v.clone()])),
                (Some(_), None) => changes.push(Change::Delete(ldap.clone(), vec![])),
                (None, None) => {}
            }
        }
        changes
    }
}

/// The value a rule reads from a resource.
fn lookup<'a>(res: &'a Map<String, Value>, rule: &Rule) -> Option<&'a Value> {
    let t = &rule.target;
    let container = match &t.schema {
        Some(urn) => get_ci(res, urn)?.as_object()?,
        None => res,
    };
    let v = get_ci(container, &t.attr)?;
    match (&t.selector, &t.sub) {
        (None, None) => Some(v),
        (None, Some(sub)) => get_ci(v.as_object()?, sub),
        (Some((key, wanted)), sub) => {
            let items = v.as_array()?;
            let matches = |i: &&Value| {
                i.as_object()
                    .and_then(|o| get_ci(o, key))
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case(wanted))
            };
            let item = items.iter().find(matches)?.as_object()?;
            get_ci(item, sub.as_deref()?)
        }
    }
}

/// A SCIM value as an LDAP string; `None` for "no value".
fn ldap_value(rule: &Rule, v: &Value) -> Result<Option<String>> {
    let boolean = rule.def.is_some_and(|d| d.kind == Kind::Boolean);
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        _ if boolean => match (as_bool(v), &rule.boolean) {
            (Some(b), Some((t, f))) => Ok(Some(if b { t } else { f }.clone())),
            (Some(b), None) => Ok(Some(if b { "TRUE" } else { "FALSE" }.into())),
            (None, _) => Err(Error::InvalidValue(format!("{} must be a boolean, not {v}", rule.target))),
        },
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(Error::InvalidValue(format!("{} must be a single value, not {v}", rule.target))),
    }
}
