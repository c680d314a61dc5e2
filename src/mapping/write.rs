//! SCIM User resource → directory attributes, new entries and modifications.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Error, Result, Rule, UserMapping, LOCK_ATTR, PERMANENT_LOCK};
use crate::config::Deactivation;
use crate::directory::{dn, Attributes, Change, Entry};
use crate::scim::json::{as_bool, get_ci};
use crate::scim::schema::Kind;

/// What a resource asks the directory to hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Write {
    /// Mapped attribute values, keyed by the rule's LDAP attribute; absent means "no value".
    pub attrs: BTreeMap<String, String>,
    /// `None` when the resource does not say.
    pub active: Option<bool>,
    pub password: Option<String>,
}

impl UserMapping {
    pub fn to_write(&self, res: &Map<String, Value>) -> Result<Write> {
        let mut w = Write::default();
        for rule in &self.rules {
            if let Some(v) = lookup(res, rule).map(|v| ldap_value(rule, v)).transpose()?.flatten() {
                w.attrs.insert(rule.ldap.clone(), v);
            }
        }
        if !self.rules.iter().any(|r| r.target.is("userName") && w.attrs.contains_key(&r.ldap)) {
            return Err(Error::InvalidValue("userName is required".into()));
        }
        w.active = match get_ci(res, "active") {
            None | Some(Value::Null) => None,
            Some(v) => {
                Some(as_bool(v).ok_or_else(|| Error::InvalidValue(format!("active must be a boolean, not {v}")))?)
            }
        };
        w.password = match get_ci(res, "password") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if !p.is_empty() => Some(p.clone()),
            // Never echo the value: it is a password.
            Some(_) => return Err(Error::InvalidValue("password must be a non-empty string".into())),
        };
        Ok(w)
    }

    /// The DN and attributes of a new entry for `w`.
    pub fn new_entry(&self, w: &Write) -> Result<(String, Attributes)> {
        let dn = dn::child(&self.rdn(w)?, &self.base_dn);
        let mut attrs = vec![("objectClass".to_owned(), self.object_classes.clone())];
        attrs.extend(w.attrs.iter().map(|(k, v)| (k.clone(), vec![v.clone()])));
        match (&self.deactivation, w.active) {
            (Deactivation::Attribute { attribute, inactive_value, .. }, Some(false)) => {
                attrs.push((attribute.clone(), vec![inactive_value.clone()]))
            }
            (Deactivation::Attribute { attribute, active_value: Some(v), .. }, _) => {
                attrs.push((attribute.clone(), vec![v.clone()]))
            }
            (Deactivation::Ppolicy, Some(false)) => attrs.push((LOCK_ATTR.into(), vec![PERMANENT_LOCK.into()])),
            _ => {}
        }
        Ok((dn, attrs))
    }

    /// The RDN `w` gives its entry.
    pub fn rdn(&self, w: &Write) -> Result<String> {
        let value = w.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(&self.rdn_attr)).map(|(_, v)| v);
        let rule = self.rules.iter().find(|r| r.ldap.eq_ignore_ascii_case(&self.rdn_attr)).expect("checked at compile");
        let value =
            value.ok_or_else(|| Error::InvalidValue(format!("{} is required: it names the entry", rule.target)))?;
        Ok(dn::rdn(&self.rdn_attr, value))
    }

    /// The new RDN when `w` changes the value that names `entry`.
    pub fn renamed(&self, entry: &Entry, w: &Write) -> Result<Option<String>> {
        let current = entry.first(&self.rdn_attr);
        let wanted = w.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(&self.rdn_attr)).map(|(_, v)| v.as_str());
        if current == wanted {
            return Ok(None);
        }
        self.rdn(w).map(Some)
    }

    /// The modifications that make `entry` hold `w` for every mapped attribute (full
    /// replacement, as PUT means). Only changed attributes are touched; an attribute
    /// holding several values keeps them while its first value stays the same.
    pub fn changes(&self, entry: &Entry, w: &Write) -> Vec<Change> {
        let mut changes = Vec::new();
        for rule in &self.rules {
            let new = w.attrs.get(&rule.ldap);
            match (entry.values(&rule.ldap).first(), new) {
                (old, new) if old == new => {}
                (_, Some(v)) => changes.push(Change::Replace(rule.ldap.clone(), vec![v.clone()])),
                (Some(_), None) => changes.push(Change::Delete(rule.ldap.clone(), vec![])),
                (None, None) => {}
            }
        }
        match w.active {
            Some(active) if active != self.is_active(entry) => changes.push(self.activation(active)),
            _ => {}
        }
        changes
    }

    fn activation(&self, active: bool) -> Change {
        match (&self.deactivation, active) {
            (Deactivation::Attribute { attribute, inactive_value, .. }, false) => {
                Change::Replace(attribute.clone(), vec![inactive_value.clone()])
            }
            (Deactivation::Attribute { attribute, active_value, .. }, true) => {
                Change::Replace(attribute.clone(), active_value.iter().cloned().collect())
            }
            (Deactivation::Ppolicy, false) => Change::Replace(LOCK_ATTR.into(), vec![PERMANENT_LOCK.into()]),
            (Deactivation::Ppolicy, true) => Change::Replace(LOCK_ATTR.into(), vec![]),
        }
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
        _ if boolean => match as_bool(v) {
            Some(b) => Ok(Some(if b { "TRUE" } else { "FALSE" }.into())),
            None => Err(Error::InvalidValue(format!("{} must be a boolean, not {v}", rule.target))),
        },
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(Error::InvalidValue(format!("{} must be a single value, not {v}", rule.target))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::tests::example;
    use serde_json::json;

    fn write(v: Value) -> Result<Write> {
        example().to_write(v.as_object().unwrap())
    }

    #[test]
    fn okta_create_body() {
        let w = write(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "jdoe@example.com",
            "name": {"givenName": "John", "familyName": "Doe"},
            "emails": [{"primary": true, "value": "jdoe@example.com", "type": "work"}],
            "displayName": "John Doe", "externalId": "00u1abcd2EFGH3ijk4l5",
            "groups": [], "password": "t3mpP@ss", "active": true
        }))
        .unwrap();
        assert_eq!(w.attrs["uid"], "jdoe@example.com");
        assert_eq!(w.attrs["mail"], "jdoe@example.com");
        assert_eq!(w.attrs["sn"], "Doe");
        assert_eq!((w.active, w.password.as_deref()), (Some(true), Some("t3mpP@ss")));
        let (dn, attrs) = example().new_entry(&w).unwrap();
        assert_eq!(dn, "uid=jdoe@example.com,ou=people,dc=example,dc=test");
        assert!(attrs.iter().any(|(k, v)| k == "objectClass" && v.contains(&"inetOrgPerson".to_string())));
        assert!(!attrs.iter().any(|(k, _)| k == "userPassword"));
    }

    #[test]
    fn bad_values() {
        assert!(write(json!({"name": {"givenName": "x"}})).unwrap_err().to_string().contains("userName is required"));
        assert!(write(json!({"userName": {"a": 1}})).is_err());
        assert!(write(json!({"userName": "a", "active": "maybe"})).is_err());
        let e = write(json!({"userName": "a", "password": 42})).unwrap_err().to_string();
        assert!(!e.contains("42"));
        assert_eq!(write(json!({"userName": "a", "active": "False"})).unwrap().active, Some(false));
    }

    #[test]
    fn diff_touches_only_changes() {
        let m = example();
        let entry = Entry::new("uid=a,ou=people,dc=example,dc=test")
            .with("uid", vec!["a".into()])
            .with("sn", vec!["Old".into()])
            .with("mail", vec!["a@x".into(), "b@x".into()])
            .with("title", vec!["t".into()]);
        let w = write(json!({"userName": "a", "name": {"familyName": "New"},
                             "emails": [{"type": "work", "value": "a@x"}], "active": false}))
        .unwrap();
        assert_eq!(
            m.changes(&entry, &w),
            vec![
                Change::Replace("sn".into(), vec!["New".into()]),
                Change::Delete("title".into(), vec![]),
                Change::Replace(LOCK_ATTR.into(), vec![PERMANENT_LOCK.into()]),
            ]
        );
        assert_eq!(m.renamed(&entry, &w).unwrap(), None);
        let w2 = write(json!({"userName": "b,c"})).unwrap();
        assert_eq!(m.renamed(&entry, &w2).unwrap().as_deref(), Some(r"uid=b\2cc"));
    }
}
