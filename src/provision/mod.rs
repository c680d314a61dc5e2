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
