//! The HTTP edge: server, routing, authentication, limits. Requests come in here and
//! leave as SCIM responses; everything below speaks in SCIM and directory terms.

mod auth;
mod backend;
mod connection;
mod listener;
pub mod oauth;
mod probe;
pub mod response;
mod router;
mod server;

pub use auth::Authenticator;
pub use backend::Backend;
pub use connection::{Deadlines, Surface};
pub use listener::{serve, Limits};
pub use probe::Readiness;
pub use router::App;
pub use server::{tls_acceptor, Certificates};
