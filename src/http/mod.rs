//! The HTTP edge: server, routing, authentication, limits. Requests come in here and
//! leave as SCIM responses; everything below speaks in SCIM and directory terms.

mod auth;
pub mod oauth;
pub mod response;
mod router;
mod server;

pub use auth::Authenticator;
pub use router::App;
pub use server::{serve, tls_acceptor, Certificates};
