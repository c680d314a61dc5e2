//! SQLSTATE → [`DirectoryError`]: the terms provision and the HTTP layer already act on
//! (409 for a unique index, 400 for data the table refuses, 503 for a database that is
//! down, busy or too slow). Messages name constraints and columns, never values: a
//! violation's DETAIL (which quotes the row) is not passed on.

use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::{tokio_postgres, PoolError};

use crate::directory::DirectoryError;

/// The LDAP result codes the rest of the gateway already reads for these refusals.
pub const INVALID_SYNTAX: u32 = 21;
const CONSTRAINT: u32 = 19;

pub fn db_error(e: tokio_postgres::Error) -> DirectoryError {
    let Some(db) = e.as_db_error() else {
        // No answer from the server: the connection broke or never came.
        return DirectoryError::Unavailable(format!("database connection: {e}"));
    };
    let code = db.code();
    let class = &code.code()[..2];
    let what = db.constraint().or(db.column()).map(|c| format!(" ({c})")).unwrap_or_default();
    match class {
        _ if *code == SqlState::UNIQUE_VIOLATION => {
            DirectoryError::NotUnique(format!("a unique index{what} already holds this value"))
        }
        _ if *code == SqlState::FOREIGN_KEY_VIOLATION => {
            DirectoryError::Rejected { code: CONSTRAINT, text: format!("a referenced row does not exist{what}") }
        }
        _ if *code == SqlState::INSUFFICIENT_PRIVILEGE => DirectoryError::AccessDenied(db.message().to_owned()),
        // Integrity (NOT NULL, CHECK) and data exceptions (a value the column's type cannot
        // hold): the request's data, refused whole.
        "23" => DirectoryError::Rejected { code: CONSTRAINT, text: db.message().to_owned() },
        "22" => DirectoryError::Rejected { code: INVALID_SYNTAX, text: db.message().to_owned() },
        // Connection, resources, operator intervention (shutdown, statement_timeout),
        // serialization failures and deadlocks; and a connection the server refuses (password,
        // pg_hba.conf, TLS required, database missing), which the operator fixes without a
        // gateway restart: retry later, `/readyz` failing meanwhile, as an LDAP bind failure does.
        "08" | "53" | "57" | "40" | "28" | "3D" => DirectoryError::Unavailable(db.message().to_owned()),
        _ => DirectoryError::Other { code: 80, text: format!("{} ({})", db.message(), code.code()) },
    }
}

pub fn pool_error(e: PoolError) -> DirectoryError {
    match e {
        PoolError::Backend(e) => db_error(e),
        e => DirectoryError::Unavailable(format!("database pool: {e}")),
    }
}
