//! SCIM 2.0 (RFC 7643 / 7644) as data: resources, schemas, filters, PATCH and list
//! responses. Pure: nothing here does I/O.

pub mod discovery;
pub mod error;
pub mod eval;
pub mod filter;
pub mod json;
pub mod limits;
pub mod list;
pub mod patch;
pub mod schema;

pub use error::{Error, Result, ScimType};

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

/// A SCIM document as the JSON text sent, with the resource's version for the `ETag` (none for
/// a list). Reads answer with it, so that a cached user's text can be kept and sent again
/// without being rebuilt and serialised for every request.
#[derive(Debug, Clone, PartialEq)]
pub struct Json {
    pub text: Bytes,
    pub version: Option<Arc<str>>,
}

impl Json {
    /// `value` serialised; its `meta.version`, if any, is the version.
    pub fn of(value: &Value) -> Json {
        // to_vec writes straight into the buffer; Display would go through fmt's machinery.
        let text = serde_json::to_vec(value).expect("a JSON value always serialises");
        Json { text: text.into(), version: value["meta"]["version"].as_str().map(Arc::from) }
    }

    /// The document as a tree again (for `explain` and tests).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.text).expect("Json holds serialised JSON")
    }
}

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
