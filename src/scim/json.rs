//! JSON helpers for SCIM resources: attribute names are case-insensitive (RFC 7643 §2.1).

use serde_json::{Map, Value};

/// The key in `obj` that equals `name` ignoring ASCII case.
pub fn key_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name))
}

pub fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    key_ci(obj, name).and_then(|k| obj.get(k))
}

pub fn get_ci_mut<'a>(obj: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = key_ci(obj, name)?.clone();
    obj.get_mut(&key)
}

pub fn remove_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(obj, name)?.clone();
    obj.remove(&key)
}

/// Sets `name` (replacing a key that differs only in case), so a resource never holds
/// `userName` and `username` at once.
pub fn set_ci(obj: &mut Map<String, Value>, name: &str, value: Value) {
    remove_ci(obj, name);
    obj.insert(name.to_owned(), value);
}

/// The object stored at `name`, created when absent or not an object.
pub fn object_ci<'a>(obj: &'a mut Map<String, Value>, name: &str) -> &'a mut Map<String, Value> {
    if !matches!(get_ci(obj, name), Some(Value::Object(_))) {
        set_ci(obj, name, Value::Object(Map::new()));
    }
    match get_ci_mut(obj, name) {
        Some(Value::Object(m)) => m,
        _ => unreachable!("just inserted an object"),
    }
}

/// Interprets SCIM booleans, accepting Entra's `"True"` / `"False"` strings.
pub fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_insensitive_access() {
        let mut obj = json!({"userName": "a"}).as_object().unwrap().clone();
        assert_eq!(get_ci(&obj, "USERNAME"), Some(&json!("a")));
        set_ci(&mut obj, "username", json!("b"));
        assert_eq!(obj.len(), 1);
        object_ci(&mut obj, "name").insert("givenName".into(), json!("x"));
        assert_eq!(obj["name"]["givenName"], "x");
        assert_eq!(as_bool(&json!("False")), Some(false));
        assert_eq!(as_bool(&json!("nope")), None);
    }
}
