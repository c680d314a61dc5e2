//! Entry → SCIM resource: what the rules say, plus `schemas`, `id` and `meta`.

use serde_json::{json, Map, Value};

use super::{time, Entity, Rule};
use crate::directory::Entry;
use crate::scim::json::{get_ci_mut, object_ci};
use crate::scim::schema::Kind;

impl Entity {
    /// The SCIM representation of `entry` from the rules, with `schemas`, `id` and `meta`;
    /// `location` is the endpoint's absolute URL (`https://host/scim/v2/Users`).
    pub fn base_resource(&self, entry: &Entry, location: &str) -> Map<String, Value> {
        let id = entry.first(&self.id_attr).unwrap_or_default();
        let mut res = Map::new();
        let present = |urn: &String| {
            self.rules.iter().any(|r| r.target.schema.as_ref() == Some(urn) && entry.first(&r.ldap).is_some())
        };
        let mut schemas = vec![Value::from(self.schema)];
        schemas.extend(self.extensions().into_iter().filter(present).map(Value::from));
        res.insert("schemas".into(), Value::Array(schemas));
        res.insert("id".into(), id.into());
        for rule in self.rules.iter().filter(|r| r.direction.reads()) {
            if let Some(v) = entry.first(&rule.ldap) {
                put(&mut res, rule, typed(rule, v));
            }
        }
        let mut meta = json!({"resourceType": self.resource_type, "location": format!("{location}/{id}")});
        for (key, attr) in [("created", &self.created_attr), ("lastModified", &self.modified_attr)] {
            if let Some(t) = entry.first(attr).and_then(time::to_rfc3339) {
                meta[key] = t.into();
            }
        }
        if let Some(v) = self.version(entry) {
            meta["version"] = v.into();
        }
        res.insert("meta".into(), meta);
        res
    }

    /// The weak ETag of an entry's current state.
    pub fn version(&self, entry: &Entry) -> Option<String> {
        entry.first(&self.version_attr).map(|v| format!("W/\"{v}\""))
    }
}

fn typed(rule: &Rule, v: &str) -> Value {
    match rule.def.map(|d| d.kind) {
        Some(Kind::Boolean) => Value::Bool(v.eq_ignore_ascii_case(rule.boolean.as_ref().map_or("TRUE", |(t, _)| t))),
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
