//! A small pool of bound LDAP connections. An ldap3 [`Ldap`] handle multiplexes requests
//! over one connection, so a slot is shared, not checked out; a slot whose connection
//! failed is emptied and reconnected on next use.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use tokio::sync::Mutex;

use super::error::from_ldap;
use crate::config::{DirectoryConfig, Secret};
use crate::directory::{DirectoryError, Result};

pub struct Pool {
    url: String,
    bind_dn: String,
    bind_password: Secret,
    settings: LdapConnSettings,
    pub timeout: Duration,
    slots: Vec<Mutex<Option<Ldap>>>,
    next: AtomicUsize,
}

/// A connection handle and the slot it came from, to report it broken.
pub struct Lease {
    pub ldap: Ldap,
    slot: usize,
}

impl Pool {
    pub fn new(cfg: &DirectoryConfig) -> std::result::Result<Pool, String> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(cfg.connect_timeout()).set_starttls(cfg.starttls);
        if let Some(ca) = &cfg.ca_file {
            settings = settings.set_config(Arc::new(tls_config(ca.as_str())?));
        }
        Ok(Pool {
            url: cfg.url.get_ref().as_str().to_owned(),
            bind_dn: cfg.bind_dn.as_str().to_owned(),
            bind_password: cfg.bind_password()?,
            settings,
            timeout: cfg.operation_timeout(),
            slots: (0..cfg.pool_size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// A bound connection, opening one when the slot is empty.
    pub async fn get(&self) -> Result<Lease> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut guard = self.slots[slot].lock().await;
        if let Some(ldap) = guard.as_mut() {
            if !ldap.is_closed() {
                return Ok(Lease { ldap: ldap.clone(), slot });
            }
        }
        let ldap = self.connect().await?;
        *guard = Some(ldap.clone());
        Ok(Lease { ldap, slot })
    }

    /// Forgets a connection that failed, so the next use of its slot reconnects.
    pub async fn discard(&self, lease: &Lease) {
        *self.slots[lease.slot].lock().await = None;
    }

    async fn connect(&self) -> Result<Ldap> {
        let (conn, mut ldap) =
            LdapConnAsync::with_settings(self.settings.clone(), &self.url).await.map_err(from_ldap)?;
        ldap3::drive!(conn);
        let bound = ldap.with_timeout(self.timeout).simple_bind(&self.bind_dn, self.bind_password.expose()).await;
        match bound.map_err(from_ldap)?.success() {
            Ok(_) => Ok(ldap),
            // A refused service bind is a configuration problem: say which, never the password.
            Err(e) => Err(DirectoryError::Unavailable(format!(
                "the service account {} could not bind: {}",
                self.bind_dn,
                from_ldap(e)
            ))),
        }
    }
}

fn tls_config(ca_file: &str) -> std::result::Result<rustls::ClientConfig, String> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| format!("directory.ca_file {ca_file}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("directory.ca_file {ca_file}: {e}"))?;
        roots.add(cert).map_err(|e| format!("directory.ca_file {ca_file}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
