//! Accepting connections: plain or TLS (rustls, ALPN h2 + http/1.1, certificate reloadable),
//! HTTP/1.1 and HTTP/2 through hyper-util's auto builder, header-read timeout, graceful shutdown.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::router::{handle, App};
use crate::config::TlsConfig;

/// How long requests in flight may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

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

/// Serves until `shutdown` resolves, then lets requests in flight finish (up to 30 s).
pub async fn serve(
    apps: Arc<ArcSwap<App>>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let apps = apps.clone();
        let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(super::oauth::Peer(peer));
            // The configuration current when the request arrives serves it to the end.
            let app = apps.load_full();
            async move { Ok::<_, std::convert::Infallible>(handle(app, req).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        watcher.watch(builder.serve_connection(TokioIo::new(tls), service).into_owned()).await
                    }
                    Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing requests in flight");
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running after {DRAIN:?}; closing anyway");
    }
}
