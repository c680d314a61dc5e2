//! What Users and Groups both ask of a request body before mapping it: a JSON object that
//! declares the resource's schema, and for a PUT, no `id` other than the resource's own.

use serde_json::{Map, Value};

use super::Result;
use crate::scim::{self, json::get_ci};

/// The body of a POST or PUT: an object that declares `schema` (`kind` names it in errors).
pub fn object<'a>(body: &'a Value, kind: &str, schema: &str) -> Result<&'a Map<String, Value>> {
    let obj = body.as_object().ok_or_else(|| scim::Error::syntax(format!("a {kind} must be a JSON object")))?;
    let schemas = get_ci(obj, "schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(schema)))) {
        return Err(scim::Error::syntax(format!("schemas must contain {schema}")).into());
    }
    Ok(obj)
}

/// The body of a PUT of resource `id`: as [`object`], and `id` is read-only.
pub fn replacement<'a>(body: &'a Value, id: &str, kind: &str, schema: &str) -> Result<&'a Map<String, Value>> {
    let obj = object(body, kind, schema)?;
    if get_ci(obj, "id").is_some_and(|v| v.as_str() != Some(id)) {
        return Err(scim::Error::mutability("id is read-only and differs from the resource's").into());
    }
    Ok(obj)
}
