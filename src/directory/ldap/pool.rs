//! A bounded pool of bound LDAP connections.
//!
//! An ldap3 [`Ldap`] handle multiplexes requests over one connection, so a slot is shared,
//! not checked out. A slot whose connection failed is emptied and reconnected on next use.
//! A connection idle for a while is checked with a root DSE read first: firewalls drop idle
//! connections silently, and a write sent into one would hang until its timeout.
//!
//! Servers are tried in the configured order. One that failed is skipped until its backoff
//! ends (doubling up to [`BACKOFF_MAX`]), so a dead directory costs an immediate 503 instead
//! of a connect attempt per request, and is tried again within seconds once it is back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use tokio::sync::Mutex;

use super::error::from_ldap;
use crate::config::{DirectoryConfig, Secret};
use crate::directory::{DirectoryError, Result};
use crate::metrics::Metrics;

const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub struct Pool {
    servers: Vec<Server>,
    bind_dn: String,
    bind_password: Secret,
    settings: LdapConnSettings,
    pub timeout: Duration,
    idle_check: Duration,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
    metrics: Arc<Metrics>,
}

struct Slot {
    conn: Option<Ldap>,
    last_used: Instant,
    /// Bumped on every reconnect, so a late report of a failure cannot drop its successor.
    generation: u64,
}

struct Server {
    url: String,
    backoff: std::sync::Mutex<Backoff>,
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    last_error: String,
}

/// A connection handle and the slot it came from, to report it broken.
pub struct Lease {
    pub ldap: Ldap,
    slot: usize,
    generation: u64,
}

impl Pool {
    pub fn new(cfg: &DirectoryConfig, metrics: Arc<Metrics>) -> std::result::Result<Pool, String> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(cfg.connect_timeout()).set_starttls(cfg.starttls);
        if let Some(tls) = tls_config(cfg)? {
            settings = settings.set_config(Arc::new(tls));
        }
        let servers = cfg.url.get_ref().0.iter().map(|url| Server { url: url.clone(), backoff: Default::default() });
        let slot = || Mutex::new(Slot { conn: None, last_used: Instant::now(), generation: 0 });
        Ok(Pool {
            servers: servers.collect(),
            bind_dn: cfg.bind_dn.as_str().to_owned(),
            bind_password: cfg.bind_password()?,
            settings,
            timeout: cfg.operation_timeout(),
            idle_check: cfg.idle_check(),
            slots: (0..cfg.pool_size.max(1)).map(|_| slot()).collect(),
            next: AtomicUsize::new(0),
            metrics,
        })
    }

    /// A bound connection, opening one when the slot is empty or its connection is dead.
    pub async fn get(&self) -> Result<Lease> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[index].lock().await;
        let idle = slot.last_used.elapsed() >= self.idle_check;
        if let Some(ldap) = slot.conn.as_mut() {
            let reason = if ldap.is_closed() {
                "closed"
            } else if idle && !self.answers(ldap).await {
                "idle_check"
            } else {
                let ldap = ldap.clone();
                slot.last_used = Instant::now();
                return Ok(Lease { ldap, slot: index, generation: slot.generation });
            };
            slot.conn = None;
            self.metrics.ldap_connection_dropped(reason);
        }
        let ldap = self.connect().await?;
        self.metrics.ldap_connections.inc();
        slot.conn = Some(ldap.clone());
        slot.last_used = Instant::now();
        slot.generation += 1;
        Ok(Lease { ldap, slot: index, generation: slot.generation })
    }

    /// Forgets a connection that failed, so the next use of its slot reconnects.
    pub async fn discard(&self, lease: &Lease) {
        let mut slot = self.slots[lease.slot].lock().await;
        if slot.generation == lease.generation && slot.conn.take().is_some() {
            self.metrics.ldap_connection_dropped("failed");
        }
    }

    /// The idle check: a root DSE read, which any LDAP server answers cheaply.
    async fn answers(&self, ldap: &Ldap) -> bool {
        let mut ldap = ldap.clone();
        let read = ldap.with_timeout(self.timeout).search("", ldap3::Scope::Base, "(objectClass=*)", vec!["1.1"]);
        match read.await.and_then(|r| r.success()) {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(error = %e, "an idle directory connection is dead; reconnecting");
                false
            }
        }
    }

    /// Opens and binds a connection to the first server not backing off.
    async fn connect(&self) -> Result<Ldap> {
        let mut why = Vec::new();
        for (position, server) in self.servers.iter().enumerate() {
            if let Some(waiting) = server.waiting() {
                why.push(waiting);
                continue;
            }
            let opened = self.open(&server.url).await;
            self.metrics.ldap_connect(position + 1, opened.is_ok());
            match opened {
                Ok(ldap) => {
                    server.succeeded();
                    return Ok(ldap);
                }
                Err(e) => {
                    tracing::warn!(server = %server.url, error = %e, "cannot connect to the directory");
                    why.push(format!("{}: {e}", server.url));
                    server.failed(e.to_string());
                }
            }
        }
        Err(DirectoryError::Unavailable(why.join("; ")))
    }

    /// Binds as `dn` with `password` on a new connection to the first server that answers,
    /// then closes it: `false` for wrong credentials (result 49), an error when no server answers.
    pub async fn check_password(&self, dn: &str, password: &str) -> Result<bool> {
        let mut why = Vec::new();
        for server in &self.servers {
            if let Some(waiting) = server.waiting() {
                why.push(waiting);
                continue;
            }
            let mut ldap = match self.connect_to(&server.url).await {
                Ok(ldap) => ldap,
                Err(e) => {
                    why.push(format!("{}: {e}", server.url));
                    continue;
                }
            };
            let bound = ldap.with_timeout(self.timeout).simple_bind(dn, password).await;
            let _ = ldap.unbind().await;
            return match bound.map_err(from_ldap)? {
                r if r.rc == 0 => Ok(true),
                r if r.rc == 49 => Ok(false),
                r => Err(super::error::from_result(r)),
            };
        }
        Err(DirectoryError::Unavailable(why.join("; ")))
    }

    async fn connect_to(&self, url: &str) -> Result<Ldap> {
        let (conn, ldap) = LdapConnAsync::with_settings(self.settings.clone(), url).await.map_err(from_ldap)?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn open(&self, url: &str) -> Result<Ldap> {
        let mut ldap = self.connect_to(url).await?;
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

impl Server {
    /// Why this server is skipped now, if it is backing off.
    fn waiting(&self) -> Option<String> {
        let b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let left = b.until?.checked_duration_since(Instant::now())?;
        Some(format!("{}: {} (next attempt in {} ms)", self.url, b.last_error, left.as_millis()))
    }

    fn failed(&self, error: String) {
        let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        b.failures = b.failures.saturating_add(1);
        let delay = BACKOFF_FIRST.saturating_mul(1 << (b.failures - 1).min(8)).min(BACKOFF_MAX);
        b.until = Some(Instant::now() + delay);
        b.last_error = error;
    }

    fn succeeded(&self) {
        *self.backoff.lock().unwrap_or_else(|p| p.into_inner()) = Backoff::default();
    }
}

/// The TLS client configuration, when the defaults (system roots, no client certificate) won't do.
fn tls_config(cfg: &DirectoryConfig) -> std::result::Result<Option<rustls::ClientConfig>, String> {
    use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let client = cfg.client_cert_file.as_ref().zip(cfg.client_key_file.as_ref());
    if cfg.ca_file.is_none() && client.is_none() {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(ca) => {
            let ca = ca.as_str();
            let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("directory.ca_file {ca}: {e}"))?;
            for cert in certs {
                roots
                    .add(cert.map_err(|e| format!("directory.ca_file {ca}: {e}"))?)
                    .map_err(|e| format!("directory.ca_file {ca}: {e}"))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    Ok(Some(match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let (cert, key) = (cert.as_str(), key.as_str());
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| format!("directory.client_cert_file {cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("directory.client_key_file {key}: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("directory client certificate: {e}"))?
        }
    }))
}
