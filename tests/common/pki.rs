//! A private certificate authority for TLS tests: the gateway's inbound TLS, LDAPS/StartTLS to
//! slapd, and TLS to PostgreSQL all trust certificates it issues for 127.0.0.1 / localhost.

use std::path::PathBuf;
use std::sync::Arc;

/// A private CA and a certificate for 127.0.0.1 / localhost, as PEM files.
pub struct Pki {
    dir: tempfile::TempDir,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    ca_der: rustls_pki_types::CertificateDer<'static>,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "scim-gateway test CA");
    let issuer = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, issuer.pem()).unwrap();
    let ca_der = issuer.der().clone();
    let mut pki = Pki { dir, issuer, ca, cert: PathBuf::new(), key: PathBuf::new(), ca_der };
    (pki.cert, pki.key, _) = pki.issue("server");
    pki
}

impl Pki {
    /// A new certificate (and key) for 127.0.0.1 / localhost: `<name>.pem`, `<name>-key.pem`, and its DER.
    pub fn issue(&self, name: &str) -> (PathBuf, PathBuf, rustls_pki_types::CertificateDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) =
            (self.dir.path().join(format!("{name}.pem")), self.dir.path().join(format!("{name}-key.pem")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path, cert.der().clone())
    }

    pub fn client_config(&self, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(cfg)
    }
}
