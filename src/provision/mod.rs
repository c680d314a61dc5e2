//! The operations an identity provider performs, each as a sequence of directory
//! operations: the only layer that calls both the mapping and the directory.

mod admins;
mod body;
mod groups;
mod members;
mod naming;
mod paging;
mod snapshot;
mod store;
mod tables;
#[cfg(test)]
mod tests;
mod users;
mod write;

pub use admins::{Admin, Admins, Refusal};
pub use groups::Groups;
pub use paging::Lister;
pub use tables::{Keys, TableGroups, TableUsers};
pub use users::Users;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::directory::DirectoryError;
use crate::scim;
use crate::scim::list::{Projection, Query};
use crate::scim::Json;

/// The SCIM operations on one resource type. `root` is the absolute URL of the SCIM base
/// (`https://host/scim/v2`), for `meta.location` and references.
#[async_trait::async_trait]
pub trait Resources: Send + Sync {
    /// Reads answer with JSON text: a cached user's is kept, not rebuilt (see [`Json`]).
    async fn get(&self, id: &str, projection: &Projection, root: &str) -> Result<Json>;
    /// `caller` names the credential: results are remembered per caller (see [`Lister`]).
    async fn list(&self, query: &Query, caller: &str, root: &str) -> Result<Json>;
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
    /// The write landed (its audit line says so) but reading the result back failed. Not a
    /// 4xx, which promises the directory unchanged.
    #[error("the write is done (see the audit log), but reading the result back failed: {0}")]
    Unconfirmed(String),
    /// The configuration cannot serve this request (e.g. a gidNumber range is used up).
    #[error("{0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Runs CPU-bound work (a PATCH of a large resource) on tokio's blocking pool rather than
/// on an async worker, so that probes and other requests keep being served and the request
/// timeout fires on time: a PATCH computing for 20 s on a worker stalled `/healthz` for 20 s.
async fn off_worker<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        // A panic is the request's (the router answers 500); cancellation only happens when
        // the runtime shuts down.
        Err(e) => std::panic::resume_unwind(e.try_into_panic().unwrap_or_else(|e| Box::new(e.to_string()))),
    }
}

tokio::task_local! {
    /// Set by the HTTP layer when it has answered a request (503, the timeout) whose write
    /// goes on: the audit line then says the write completed after the answer.
    pub static ANSWERED: Arc<AtomicBool>;
}

/// What a failure after a write landed becomes: see [`Error::Unconfirmed`].
fn unconfirmed(e: Error) -> Error {
    Error::Unconfirmed(e.to_string())
}

/// The audit trail: one line per write that changed the directory, under the `audit` target,
/// written from what [`write::Sequence::run`] recorded, whether the request succeeded or not.
/// `outcome`: `written` (all of it), `undone` (part landed, then was put back after a later
/// step failed: the directory is as before), `partial` (an undo failed too, or a password's
/// answer never came: the listed attributes are what it holds). `after_answer`: the client
/// was answered (503) before the write ended. The request span adds who (the credential's
/// name, `caller`) and the request id. Attributes are named, never given: no value, and so no
/// password, ever reaches this line.
fn audit(resource: &str, action: &str, id: &str, record: &write::Record, failed: bool) {
    let Some(outcome) = record.outcome(failed) else { return };
    audit_line(resource, action, id, &record.attributes().join(","), outcome);
}

/// The audit line itself, for every store: a table's transaction is `written` or nothing.
fn audit_line(resource: &str, action: &str, id: &str, attributes: &str, outcome: &str) {
    let after_answer = ANSWERED.try_with(|a| a.load(Ordering::Acquire)).unwrap_or(false);
    tracing::info!(target: "audit", resource, action, id, attributes, outcome, after_answer, "write");
}
