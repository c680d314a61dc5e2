//! The integration tests, one binary: linking each file apart cost most of a rebuild.
//! `cargo test --test it MODULE::` runs one module.

#[path = "../common/mod.rs"]
mod common;

mod ad_groups;
mod ad_users;
mod bad_input;
mod cache;
mod cli;
mod conformance;
mod container;
mod custom_schema;
mod discovery;
mod edge;
mod entra_users;
mod faults;
mod groups;
mod harness;
mod ldap_filters;
mod log_file;
mod mapping_values;
mod naming;
mod oauth;
mod oauth_browser;
mod oauth_jwt;
mod okta_users;
mod packaging;
mod postgres;
mod presets;
mod query;
mod race;
mod reload;
mod replicated;
mod rfc_details;
mod runtime;
mod secrets;
mod targets;
mod transport;
mod write_faults;
mod writes;
