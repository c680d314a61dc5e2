//! Inbound TLS: rustls, ALPN h2 + http/1.1, the certificate reloadable in place.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// The inbound certificate and key. [`Certificates::reload`] (on SIGHUP) swaps them in place,
/// so a renewed certificate needs no restart; open connections keep the one they began with.
#[derive(Debug)]
pub struct Certificates {
    cert_file: String,
    key_file: String,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    pub fn load(cfg: &TlsConfig) -> Result<Certificates, String> {
        let (cert_file, key_file) = (cfg.cert_file.as_str().to_owned(), cfg.key_file.as_str().to_owned());
        let current = RwLock::new(Arc::new(read_certified_key(&cert_file, &key_file)?));
        Ok(Certificates { cert_file, key_file, current })
    }

    /// Reads the files again. On any error the certificate in use stays in use.
    pub fn reload(&self) -> Result<(), String> {
        let key = read_certified_key(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        Ok(())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

fn read_certified_key(cert: &str, key: &str) -> Result<CertifiedKey, String> {
    use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("server.tls.cert_file {cert}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("server.tls.cert_file {cert}: no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("server.tls.key_file {key}: {e}"))?;
    // Also checks that the key belongs to the certificate.
    CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
        .map_err(|e| format!("server.tls: {e}"))
}

pub fn tls_acceptor(certs: Arc<Certificates>) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("server.tls: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
