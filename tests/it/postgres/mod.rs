//! The PostgreSQL store (issue 16) against a real PostgreSQL per test (tests/common/postgres.rs):
//! the Okta and Entra flows shared with OpenLDAP, all-or-nothing writes, hostile filters,
//! paging, faults, TLS, and the `check` / `explain` commands. Every refused or failed request is
//! followed by reading the tables themselves with SQL.

mod cli;
mod faults;
mod filters;
mod flows;
mod if_match;
mod writes;
