//! Entry → SCIM User resource.

use serde_json::{json, Map, Value};

use super::{time, Rule, UserMapping, LOCK_ATTR, PERMANENT_LOCK};
use crate::config::Deactivation;
use crate::directory::Entry;
use crate::scim::json::{get_ci_mut, object_ci};
use crate::scim::schema::Kind;
use crate::scim::USER_SCHEMA;

impl UserMapping {
    /// The SCIM representation of `entry`; `location` is the resource's absolute URL
    /// without the id (`https://host/scim/v2/Users`).
    pub fn to_resource(&self, entry: &Entry, location: &str) -> Value {
        let id = entry.first(&self.id_attr).unwrap_or_default();
        let mut res = Map::new();
        let mut schemas = vec![Value::from(USER_SCHEMA)];
        schemas.extend(self.extensions().into_iter().filter(|u| res_has(entry, self, u)).map(Value::from));
        res.insert("schemas".into(), Value::Array(schemas));
        res.insert("id".into(), id.into());
        for rule in &self.rules {
            if let Some(v) = entry.first(&rule.ldap) {
                put(&mut res, rule, typed(rule, v));
            }
        }
        res.insert("active".into(), self.is_active(entry).into());
        let mut meta = json!({"resourceType": "User", "location": format!("{location}/{id}")});
        for (key, attr) in [("created", &self.created_attr), ("lastModified", &self.modified_attr)] {
            if let Some(t) = entry.first(attr).and_then(time::to_rfc3339) {
                meta[key] = t.into();
            }
        }
        if let Some(v) = self.version(entry) {
            meta["version"] = v.into();
        }
        res.insert("meta".into(), meta);
        Value::Object(res)
    }

    /// The weak ETag of an entry's current state.
    pub fn version(&self, entry: &Entry) -> Option<String> {
        entry.first(&self.version_attr).map(|v| format!("W/\"{v}\""))
    }

    pub fn is_active(&self, entry: &Entry) -> bool {
        match &self.deactivation {
            Deactivation::Attribute { attribute, inactive_value, .. } => {
                !entry.values(attribute).iter().any(|v| v.eq_ignore_ascii_case(inactive_value))
            }
            // Temporary lockouts after failed binds are the directory's business, not the IdP's.
            Deactivation::Ppolicy => entry.first(LOCK_ATTR) != Some(PERMANENT_LOCK),
        }
    }
}

fn res_has(entry: &Entry, m: &UserMapping, urn: &str) -> bool {
    m.rules.iter().any(|r| r.target.schema.as_deref() == Some(urn) && entry.first(&r.ldap).is_some())
}

fn typed(rule: &Rule, v: &str) -> Value {
    match rule.def.map(|d| d.kind) {
        Some(Kind::Boolean) => Value::Bool(v.eq_ignore_ascii_case("TRUE")),
        _ => Value::String(v.to_owned()),
    }
}

/// Places `value` where the rule's target says, creating objects and elements on the way.
fn put(res: &mut Map<String, Value>, rule: &Rule, value: Value) {
    let t = &rule.target;
    let container = match &t.schema {
        Some(urn) => object_ci(res, urn),
        None => res,
    };
    match (&t.selector, &t.sub) {
        (None, None) => {
            container.insert(t.attr.clone(), value);
        }
        (None, Some(sub)) => {
            object_ci(container, &t.attr).insert(sub.clone(), value);
        }
        (Some((key, wanted)), sub) => {
            if get_ci_mut(container, &t.attr).is_none() {
                container.insert(t.attr.clone(), Value::Array(Vec::new()));
            }
            let Some(Value::Array(items)) = get_ci_mut(container, &t.attr) else { return };
            let found = items.iter().position(|i| i.get(key).and_then(Value::as_str) == Some(wanted));
            let idx = found.unwrap_or_else(|| {
                // The first element of each multi-valued attribute is its primary one.
                let primary = items.is_empty();
                items.push(json!({ key.clone(): wanted, "primary": primary }));
                items.len() - 1
            });
            if let (Some(sub), Some(obj)) = (sub, items[idx].as_object_mut()) {
                obj.insert(sub.clone(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::directory::Entry;
    use crate::mapping::tests::example;
    use serde_json::json;

    #[test]
    fn entry_to_resource() {
        let m = example();
        let e = Entry::new("uid=jdoe,ou=people,dc=example,dc=test")
            .with("uid", vec!["jdoe@example.com".into()])
            .with("givenName", vec!["John".into()])
            .with("sn", vec!["Doe".into()])
            .with("mail", vec!["jdoe@example.com".into(), "second@example.com".into()])
            .with("entryUUID", vec!["6f1c2a8e-1111-4e2b-9a57-0e7b0f6c1a11".into()])
            .with("createTimestamp", vec!["20261122220530Z".into()])
            .with("modifyTimestamp", vec!["20261122220531Z".into()])
            .with("entryCSN", vec!["20261122220531.000001Z#000000#000#000000".into()])
            .with("pwdAccountLockedTime", vec!["000001010000Z".into()]);
        let r = m.to_resource(&e, "http://h/scim/v2/Users");
        assert_eq!(r["id"], "6f1c2a8e-1111-4e2b-9a57-0e7b0f6c1a11");
        assert_eq!(r["userName"], "jdoe@example.com");
        assert_eq!(r["name"], json!({"givenName": "John", "familyName": "Doe"}));
        assert_eq!(r["emails"], json!([{"type": "work", "primary": true, "value": "jdoe@example.com"}]));
        assert_eq!(r["active"], false);
        assert_eq!(r["meta"]["created"], "2026-11-22T22:05:30Z");
        assert_eq!(r["meta"]["version"], "W/\"20261122220531.000001Z#000000#000#000000\"");
        assert_eq!(r["meta"]["location"], "http://h/scim/v2/Users/6f1c2a8e-1111-4e2b-9a57-0e7b0f6c1a11");
        assert!(r.get("password").is_none());
    }
}
