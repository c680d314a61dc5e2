//! What a target's users and groups live in: an LDAP directory (served through
//! `provision::Users`/`Groups` and the [`Directory`] trait) or a record store such as
//! PostgreSQL (through `provision::TableUsers`/`TableGroups` and [`Records`]). The HTTP
//! layer only pings it for `/readyz`; `check` and `explain` pick the side they speak.

use std::sync::Arc;

use crate::directory::records::Records;
use crate::directory::{Directory, Result};

#[derive(Clone)]
pub enum Backend {
    Directory(Arc<dyn Directory>),
    Records(Arc<dyn Records>),
}

impl Backend {
    /// Proves the store answers with the gateway's credentials.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Backend::Directory(d) => d.ping().await,
            Backend::Records(r) => r.ping().await,
        }
    }

    /// The LDAP directory, when the target has one.
    pub fn directory(&self) -> Option<&Arc<dyn Directory>> {
        match self {
            Backend::Directory(d) => Some(d),
            Backend::Records(_) => None,
        }
    }
}
