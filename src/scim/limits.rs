//! How much one request may ask of the gateway (`[limits]`), checked on the parsed body and
//! the filter before any work: every later step is then linear in bounded inputs.

use serde_json::Value;

use serde_json::Map;

use super::json::get_ci;
use super::patch::{self, Operation};
use super::{Error, Result, ScimType};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: usize,
    pub max_values: usize,
    pub max_members: usize,
    pub max_value_bytes: usize,
    pub max_filter_bytes: usize,
}

impl Limits {
    /// A filter no longer than `max_filter_bytes` (400 invalidFilter).
    pub fn check_filter(&self, filter: &str) -> Result<()> {
        match filter.len() > self.max_filter_bytes {
            true => Err(Error::new(
                ScimType::InvalidFilter,
                format!(
                    "the filter is {} bytes; at most {} ([limits] max_filter_bytes)",
                    filter.len(),
                    self.max_filter_bytes
                ),
            )),
            false => Ok(()),
        }
    }

    /// A request body within the limits: a `.search` filter, PATCH operations (a path-less
    /// one counts once per attribute it sets), array lengths and string sizes (400).
    pub fn check_body(&self, body: &Value) -> Result<()> {
        let Some(obj) = body.as_object() else { return Ok(()) };
        if let Some(Value::String(f)) = get_ci(obj, "filter") {
            self.check_filter(f)?;
        }
        if let Some(Value::Array(ops)) = get_ci(obj, "Operations") {
            let counted: usize = ops
                .iter()
                .map(|op| match op.as_object().map(|o| (get_ci(o, "path"), get_ci(o, "value"))) {
                    Some((None | Some(Value::Null), Some(Value::Object(v)))) => v.len().max(1),
                    _ => 1,
                })
                .sum();
            if counted > self.max_operations {
                return Err(Error::value(format!(
                    "the PATCH has {counted} operations (a path-less one counts once per attribute); at most {} ([limits] max_operations)",
                    self.max_operations
                )));
            }
        }
        self.check_values(body, "")
    }

    fn check_values(&self, v: &Value, name: &str) -> Result<()> {
        match v {
            Value::String(s) if s.len() > self.max_value_bytes => Err(Error::value(format!(
                "a value of {} is {} bytes; at most {} ([limits] max_value_bytes)",
                shown(name),
                s.len(),
                self.max_value_bytes
            ))),
            Value::Array(items) if items.len() > self.max_values(name) => Err(self.too_many(name, items.len())),
            Value::Array(items) => items.iter().try_for_each(|i| self.check_values(i, name)),
            Value::Object(o) => o.iter().try_for_each(|(k, v)| {
                if k.len() > self.max_value_bytes {
                    return Err(Error::value(format!("an attribute name is {} bytes long", k.len())));
                }
                self.check_values(v, k)
            }),
            _ => Ok(()),
        }
    }
}

impl Limits {
    /// Applies a PATCH one operation at a time, refusing one that leaves a multi-valued
    /// attribute with more than `max_values` values: every operation costs at most one pass
    /// over lists that stay this short, so the whole PATCH is O(operations × max_values).
    pub fn apply_patch(&self, resource: &mut Map<String, Value>, ops: &[Operation], schema: &str) -> Result<()> {
        for op in ops {
            patch::apply(resource, std::slice::from_ref(op), schema)?;
            self.check_lists(resource)?;
        }
        Ok(())
    }

    /// The lists of a resource and of its extension objects.
    fn check_lists(&self, resource: &Map<String, Value>) -> Result<()> {
        for (name, v) in resource {
            match v {
                Value::Array(a) if a.len() > self.max_values(name) => return Err(self.too_many(name, a.len())),
                Value::Object(inner) if name.starts_with("urn:") => self.check_lists(inner)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn max_values(&self, name: &str) -> usize {
        match name.eq_ignore_ascii_case("members") {
            true => self.max_members,
            false => self.max_values,
        }
    }

    fn too_many(&self, name: &str, n: usize) -> Error {
        let key = if self.max_values(name) == self.max_members { "max_members" } else { "max_values" };
        Error::value(format!("{} has {n} values; at most {} ([limits] {key})", shown(name), self.max_values(name)))
    }
}

/// The attribute named in an error: its name as sent, cut short (it came from the client).
fn shown(name: &str) -> String {
    match name {
        "" => "the body".into(),
        n => format!("{:?}", n.chars().take(64).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits { max_operations: 3, max_values: 4, max_members: 6, max_value_bytes: 10, max_filter_bytes: 20 }
    }

    #[test]
    fn each_limit_has_its_scim_type() {
        let l = limits();
        assert!(l.check_body(&json!({"emails": [{"value": "a"}], "userName": "0123456789"})).is_ok());
        assert_eq!(l.check_body(&json!({"userName": "0123456789x"})).unwrap_err().kind, ScimType::InvalidValue);
        assert_eq!(l.check_body(&json!({"emails": [1, 2, 3, 4, 5]})).unwrap_err().kind, ScimType::InvalidValue);
        assert!(l.check_body(&json!({"members": [1, 2, 3, 4, 5, 6]})).is_ok());
        assert!(l.check_body(&json!({"members": [1, 2, 3, 4, 5, 6, 7]})).unwrap_err().detail.contains("max_members"));
        let f = json!({"filter": "userName eq \"0123456\""});
        assert_eq!(l.check_body(&f).unwrap_err().kind, ScimType::InvalidFilter);
        assert_eq!(l.check_filter(&"x".repeat(21)).unwrap_err().kind, ScimType::InvalidFilter);
        let ops = |n: usize| json!({"Operations": vec![json!({"op": "remove", "path": "x"}); n]});
        assert!(l.check_body(&ops(3)).is_ok());
        assert_eq!(l.check_body(&ops(4)).unwrap_err().kind, ScimType::InvalidValue);
        let pathless = json!({"Operations": [{"op": "add", "value": {"a": 1, "b": 2, "c": 3, "d": 4}}]});
        assert!(l.check_body(&pathless).unwrap_err().detail.contains("4 operations"));
    }

    #[test]
    fn a_patch_cannot_grow_a_list_past_max_values() {
        let l = limits();
        let body = json!({"schemas": [crate::scim::PATCH_OP_SCHEMA], "Operations": [
            {"op": "add", "path": "emails", "value": ["a", "b", "c"]},
            {"op": "add", "path": "emails", "value": ["d"]},
            {"op": "add", "path": "emails", "value": ["e"]}]});
        let ops = patch::parse(&body).unwrap();
        let mut r = Map::new();
        let e = l.apply_patch(&mut r, &ops, crate::scim::USER_SCHEMA).unwrap_err();
        assert!(e.detail.contains("5 values"), "{e}");
    }
}
