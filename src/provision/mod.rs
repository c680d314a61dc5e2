//! The operations an identity provider performs, each as a sequence of directory
//! operations: the only layer that calls both the mapping and the directory.

mod users;

pub use users::Users;

use crate::directory::DirectoryError;
use crate::{mapping, scim};

/// Why a provisioning operation failed. Turned into a SCIM error response in one place,
/// [`crate::http::response`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scim(#[from] scim::Error),
    #[error(transparent)]
    Mapping(#[from] mapping::Error),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Uniqueness(String),
    #[error("the resource changed since it was read (If-Match does not match its version)")]
    PreconditionFailed,
}

pub type Result<T> = std::result::Result<T, Error>;

/// The audit trail: one line per write that changed the directory, under the `audit` target.
/// The request span adds who (the credential's name, `caller`) and the request id. Attributes
/// are named, never given: no value, and so no password, ever reaches this line.
fn audit<'a>(resource: &str, action: &str, id: &str, attributes: impl IntoIterator<Item = &'a str>) {
    let attributes = attributes.into_iter().collect::<Vec<_>>().join(",");
    tracing::info!(target: "audit", resource, action, id, attributes, "write");
}
