//! The operations an identity provider performs, each as a sequence of directory
//! operations: the only layer that calls both the mapping and the directory.

mod admins;
mod body;
mod groups;
mod members;
mod paging;
mod snapshot;
mod store;
#[cfg(test)]
mod tests;
mod users;

pub use admins::{Admin, Admins, Refusal};
pub use groups::Groups;
pub use paging::Lister;
pub use users::Users;

use serde_json::Value;

use crate::directory::DirectoryError;
use crate::scim;
use crate::scim::list::{Projection, Query};

/// The SCIM operations on one resource type. `root` is the absolute URL of the SCIM base
/// (`https://host/scim/v2`), for `meta.location` and references.
#[async_trait::async_trait]
pub trait Resources: Send + Sync {
    async fn get(&self, id: &str, projection: &Projection, root: &str) -> Result<Value>;
    /// `caller` names the credential: results are remembered per caller (see [`Lister`]).
    async fn list(&self, query: &Query, caller: &str, root: &str) -> Result<Value>;
    async fn create(&self, body: &Value, root: &str) -> Result<Value>;
    /// PUT.
    async fn replace(&self, id: &str, body: &Value, if_match: Option<&str>, root: &str) -> Result<Value>;
    /// `None` when the type answers PATCH with 204 No Content (groups, unless `projection`
    /// asks for attributes: rendering a large group's members after every change would cost
    /// what changing them value by value saves).
    async fn patch(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        projection: &Projection,
        root: &str,
    ) -> Result<Option<Value>>;
    async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<()>;
}

/// Why a provisioning operation failed. Turned into a SCIM error response in one place,
/// [`crate::http::response`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scim(#[from] scim::Error),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Uniqueness(String),
    #[error("the resource changed since it was read (If-Match does not match its version)")]
    PreconditionFailed,
    /// The configuration cannot serve this request (e.g. a gidNumber range is used up).
    #[error("{0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The audit trail: one line per write that changed the directory, under the `audit` target.
/// The request span adds who (the credential's name, `caller`) and the request id. Attributes
/// are named, never given: no value, and so no password, ever reaches this line.
fn audit<'a>(resource: &str, action: &str, id: &str, attributes: impl IntoIterator<Item = &'a str>) {
    let attributes = attributes.into_iter().collect::<Vec<_>>().join(",");
    tracing::info!(target: "audit", resource, action, id, attributes, "write");
}
