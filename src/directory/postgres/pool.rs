//! Connections to PostgreSQL: deadpool-postgres over tokio-postgres, TLS with rustls (ring).
//!
//! Why deadpool-postgres + tokio-postgres rather than sqlx: the gateway builds statements
//! at run time from the operator's columns, so sqlx's compile-time checking buys nothing;
//! tokio-postgres is the smaller dependency, speaks the protocol directly (text parameters,
//! SQLSTATE codes) and shares the tokio/rustls stack the gateway already has. deadpool adds
//! a bounded pool with wait/create timeouts and recycling of broken connections, so a
//! database restart heals without restarting the gateway.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{tokio_postgres, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{DirectoryConfig, SslMode};

/// The pool for `cfg`: connects lazily (a database down at start is a 503, not a failed
/// start), each connection with `statement_timeout` set to `operation_timeout_secs`.
pub fn pool(cfg: &DirectoryConfig) -> Result<Pool, String> {
    let url = &cfg.url.get_ref().0[0];
    let mut pg = tokio_postgres::Config::from_str(url).map_err(|e| format!("[directory] url: {e}"))?;
    if let Some(p) = cfg.database_password()? {
        pg.password(p.expose());
    }
    pg.connect_timeout(cfg.connect_timeout());
    pg.application_name("scim-gateway");
    let statement_ms = cfg.operation_timeout().as_millis();
    pg.options(format!("-c statement_timeout={statement_ms}"));
    pg.ssl_mode(match cfg.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    let tls = MakeRustlsConnect::new(tls_config(cfg)?);
    let manager = Manager::from_config(pg, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let wait = Some(cfg.connect_timeout());
    Pool::builder(manager)
        .max_size(cfg.pool_size.max(1))
        .timeouts(Timeouts { wait, create: wait, recycle: Some(Duration::from_secs(2)) })
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| format!("[directory] pool: {e}"))
}

/// rustls for `sslmode`: verify-full checks the chain (against `ca_file`, or the system's
/// roots) and the host name; require encrypts without checking, as libpq's `require` does.
fn tls_config(cfg: &DirectoryConfig) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if cfg.sslmode == SslMode::Require {
        let verifier = Arc::new(Unchecked(provider));
        return Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(ca) => {
            let ca = ca.as_str();
            let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("directory.ca_file {ca}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("directory.ca_file {ca}: {e}"))?;
                roots.add(cert).map_err(|e| format!("directory.ca_file {ca}: {e}"))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `sslmode = "require"`: any certificate, signatures still checked so the session is
/// encrypted to whoever holds the key the certificate names.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
