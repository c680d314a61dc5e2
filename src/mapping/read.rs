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
        self.resource(entry, location, false)
    }

    /// [`Self::base_resource`] with what is never shown too (write-only and `returned =
    /// "never"` values): the base a PATCH applies to, so that it keeps them.
    pub fn patch_base(&self, entry: &Entry, location: &str) -> Map<String, Value> {
        self.resource(entry, location, true)
    }

    fn resource(&self, entry: &Entry, location: &str, hidden: bool) -> Map<String, Value> {
        let id = entry.first(&self.id_attr).unwrap_or_default();
        let mut res = Map::new();
        let present = |urn: &String| {
            self.rules.iter().any(|r| r.target.schema.as_ref() == Some(urn) && !entry.bytes(&r.ldap).is_empty())
        };
        let mut schemas = vec![Value::from(self.schema)];
        schemas.extend(self.extensions().into_iter().filter(present).map(Value::from));
        res.insert("schemas".into(), Value::Array(schemas));
        res.insert("id".into(), id.into());
        for rule in self.rules.iter().filter(|r| hidden || (r.direction.reads() && !r.hidden())) {
            let values: Vec<Value> = rule.to_scim(entry).iter().map(|v| typed(rule, v)).collect();
            let primary_rule = self.rules.iter().any(|o| o.target.same_attr(&rule.target) && o.target.picks_primary());
            if !values.is_empty() {
                put(&mut res, rule, values, primary_rule);
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

    /// Replaces the DN a reference rule put in `res` with the SCIM fields of the entry it
    /// names (`value`, `$ref`, `displayName`), or removes it when it names no resource.
    pub fn set_reference(&self, res: &mut Map<String, Value>, rule: &Rule, to: Option<Map<String, Value>>) {
        let t = &rule.target;
        let container = match &t.schema {
            Some(urn) => match get_ci_mut(res, urn).and_then(Value::as_object_mut) {
                Some(c) => c,
                None => return,
            },
            None => res,
        };
        match to {
            Some(fields) => object_ci(container, &t.attr).extend(fields),
            None => {
                crate::scim::json::remove_ci(container, &t.attr);
            }
        }
    }

    /// The weak ETag of an entry's current state.
    pub fn version(&self, entry: &Entry) -> Option<String> {
        entry.first(&self.version_attr).map(|v| format!("W/\"{v}\""))
    }
}

fn typed(rule: &Rule, v: &str) -> Value {
    match rule.kind() {
        Some(Kind::Boolean) => Value::Bool(v.eq_ignore_ascii_case(rule.boolean.as_ref().map_or("TRUE", |(t, _)| t))),
        _ => rule.typed_number(v).unwrap_or_else(|| Value::String(v.to_owned())),
    }
}

/// Places `values` where the rule's target says, creating objects and elements on the way.
/// `primary_rule`: a `[primary eq true]` rule stores the primary element of this attribute.
/// An element shows `primary` only when a rule stores it (that selector, or a `.primary`
/// rule): the gateway never claims a primary the directory does not hold.
fn put(res: &mut Map<String, Value>, rule: &Rule, mut values: Vec<Value>, primary_rule: bool) {
    let t = &rule.target;
    let container = match &t.schema {
        Some(urn) => object_ci(res, urn),
        None => res,
    };
    let first = values.remove(0);
    match (&t.selector, &t.sub) {
        (None, None) if rule.many => {
            values.insert(0, first);
            container.insert(t.attr.clone(), Value::Array(values));
        }
        (None, None) => {
            container.insert(t.attr.clone(), first);
        }
        (None, Some(sub)) if !rule.many => {
            object_ci(container, &t.attr).insert(sub.clone(), first);
        }
        (selector, sub) => {
            values.insert(0, first);
            if !matches!(get_ci_mut(container, &t.attr), Some(Value::Array(_))) {
                container.insert(t.attr.clone(), Value::Array(Vec::new()));
            }
            let Some(Value::Array(items)) = get_ci_mut(container, &t.attr) else { return };
            // A selector rule fills the element of its type; a rule of several values fills
            // the elements without a type, in order (streetAddress and locality of one address).
            let mut slots: Vec<usize> = match selector {
                Some(_) => items.iter().position(|i| t.picks(i)).into_iter().collect(),
                // Not the element of a [primary eq true] rule.
                None => (0..items.len())
                    .filter(|&i| items[i].get("type").is_none() && !(primary_rule && items[i]["primary"] == true))
                    .collect(),
            };
            for (n, value) in values.into_iter().enumerate() {
                let idx = match slots.get(n) {
                    Some(&i) => i,
                    None => {
                        items.push(t.selector_element().unwrap_or_else(|| json!({})));
                        slots.push(items.len() - 1);
                        items.len() - 1
                    }
                };
                if let (Some(sub), Some(obj)) = (sub, items[idx].as_object_mut()) {
                    obj.insert(sub.clone(), value);
                }
            }
        }
    }
}
