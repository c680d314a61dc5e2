//! A private Samba Active Directory DC for the AD tests, run by `scripts/samba`.
//!
//! Samba's ports are fixed, so each DC gets its own loopback address 127.0.0.N (claimed with
//! `ip addr add`, which fails when another DC holds it). Provisioning takes 5-20 s, so it is
//! done once into a template under target/tmp that later DCs copy, and the test binary shares ONE
//! DC ([`Samba::shared`]) among its tests: each test works in its own OU. userPrincipalName
//! and sAMAccountName are unique across the domain, so user and group names must differ
//! between tests too, across modules (ad_users, ad_groups). The DC follows the test process: `scripts/samba`
//! stops it, drops the address and deletes its directory once the process has exited.
//! A test that needs Samba and cannot get it panics: it never skips.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};

pub const BASE: &str = "DC=example,DC=test";
pub const ADMIN: &str = "Administrator@example.test";
pub const ADMIN_PASSWORD: &str = "Adm1n-Secret!x";

pub struct Samba {
    pub addr: String,
    /// `ldaps://127.0.0.N`
    pub ldaps_url: String,
    /// `ldap://127.0.0.N` (StartTLS or nothing: simple binds need TLS)
    pub ldap_url: String,
    /// PEM of the CA that signed the DC's certificate.
    pub ca_file: PathBuf,
    ca_der: rustls_pki_types::CertificateDer<'static>,
    /// Milliseconds spent provisioning (or copying the provisioned template) and starting.
    pub prepare_ms: u64,
    pub start_ms: u64,
    /// Whether this start provisioned (no template yet) rather than copied.
    pub provisioned: bool,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/samba")
}

/// Claims a free 127.0.0.N on `lo`: `ip addr add` refuses an address that is already there.
fn claim_address() -> String {
    let first = 100 + (std::process::id() % 100) as u8;
    for n in (first..=250).chain(100..first) {
        let addr = format!("127.0.0.{n}");
        let out = Command::new("ip").args(["addr", "add", &format!("{addr}/32"), "dev", "lo"]).output();
        match out {
            Ok(o) if o.status.success() => return addr,
            Ok(o) if String::from_utf8_lossy(&o.stderr).contains("File exists") => continue,
            Ok(o) => panic!("ip addr add {addr}/32 dev lo: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => panic!("cannot run ip (iproute2): {e}"),
        }
    }
    panic!("no free address in 127.0.0.100-250 for a Samba DC");
}

/// A private CA and the DC's certificate for `addr`, written into `dir`.
fn pki(dir: &std::path::Path, addr: &str) -> (PathBuf, rustls_pki_types::CertificateDer<'static>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "scim-gateway Samba test CA");
    let issuer = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![addr.to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, issuer.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    let key_path = dir.join("key.pem");
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    // Samba refuses a private key that others can read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (ca, issuer.der().clone())
}

impl Samba {
    /// The DC this test binary shares, provisioned and started on first use.
    pub fn shared() -> &'static Samba {
        static SAMBA: OnceLock<Samba> = OnceLock::new();
        SAMBA.get_or_init(Samba::start)
    }

    fn start() -> Samba {
        super::raise_file_limit();
        let started = Instant::now();
        let addr = claim_address();
        // Not a TempDir: the DC outlives every test; scripts/samba deletes the directory (its
        // certificates in tls/ included) once this process has exited.
        let dir = tempfile::Builder::new().prefix("samba-").tempdir().expect("temp dir").keep();
        let tls = dir.join("tls");
        std::fs::create_dir(&tls).unwrap();
        let (ca_file, ca_der) = pki(&tls, &addr);
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .arg(&addr)
            .arg(std::process::id().to_string())
            .env("SAMBA_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Provisioned once under target/tmp, copied for every later DC.
            .env("SAMBA_TEMPLATE_ROOT", env!("CARGO_TARGET_TMPDIR"))
            .env("SAMBA_TLS_CERT", tls.join("cert.pem"))
            .env("SAMBA_TLS_KEY", tls.join("key.pem"))
            .env("SAMBA_TLS_CA", &ca_file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
        if !out.status.success() {
            let _ = Command::new("ip").args(["addr", "del", &format!("{addr}/32"), "dev", "lo"]).status();
            panic!(
                "scripts/samba start failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let timing = std::fs::read_to_string(dir.join("timing")).unwrap_or_default();
        let field = |name: &str| {
            timing.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()).unwrap_or_default()
        };
        let samba = Samba {
            ldaps_url: format!("ldaps://{addr}"),
            ldap_url: format!("ldap://{addr}"),
            addr,
            ca_file,
            ca_der,
            prepare_ms: field("prepare_ms"),
            start_ms: field("start_ms"),
            provisioned: field("provisioned") == 1,
        };
        eprintln!(
            "samba: DC on {} ready in {:.1} s ({} {} ms, start {} ms)",
            samba.addr,
            started.elapsed().as_secs_f64(),
            if samba.provisioned { "provision" } else { "copy of the provisioned template" },
            samba.prepare_ms,
            samba.start_ms
        );
        samba
    }

    fn settings(&self) -> LdapConnSettings {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        LdapConnSettings::new().set_config(Arc::new(cfg))
    }

    /// An LDAPS connection bound as `user` (a UPN); the bind's result as is.
    pub async fn try_bind(&self, user: &str, password: &str) -> Result<Ldap, LdapError> {
        let (conn, mut ldap) = LdapConnAsync::with_settings(self.settings(), &self.ldaps_url).await?;
        ldap3::drive!(conn);
        ldap.simple_bind(user, password).await?.success()?;
        Ok(ldap)
    }

    /// Whether `user` can log in with `password` (as an application behind AD would).
    pub async fn can_bind(&self, user: &str, password: &str) -> bool {
        self.try_bind(user, password).await.is_ok()
    }

    /// A connection bound as the domain Administrator.
    pub async fn admin(&self) -> Ldap {
        self.try_bind(ADMIN, ADMIN_PASSWORD).await.unwrap_or_else(|e| panic!("bind as {ADMIN}: {e}"))
    }

    /// The entry at `dn` with `attrs` (binary values in `bin_attrs`), as Administrator.
    pub async fn entry(&self, dn: &str, attrs: &[&str]) -> Option<SearchEntry> {
        let mut ldap = self.admin().await;
        let res = ldap.search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec()).await.and_then(|r| r.success());
        let _ = ldap.unbind().await;
        match res {
            Ok((mut entries, _)) => entries.pop().map(SearchEntry::construct),
            Err(LdapError::LdapResult { result }) if result.rc == 32 => None,
            Err(e) => panic!("read {dn}: {e}"),
        }
    }

    /// Entries under `base` matching `filter`, with `attrs`, as Administrator.
    pub async fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> Vec<SearchEntry> {
        let mut ldap = self.admin().await;
        let (entries, _) = ldap
            .search(base, Scope::Subtree, filter, attrs.to_vec())
            .await
            .and_then(|r| r.success())
            .unwrap_or_else(|e| panic!("search {base} {filter}: {e}"));
        let _ = ldap.unbind().await;
        entries.into_iter().map(SearchEntry::construct).collect()
    }

    /// A fresh organizational unit `OU={name},DC=example,DC=test`: one per test, so tests
    /// sharing the DC never see each other's entries.
    pub async fn ou(&self, name: &str) -> String {
        let dn = format!("OU={name},{BASE}");
        let mut ldap = self.admin().await;
        let attrs = vec![("objectClass", ["top", "organizationalUnit"].into()), ("ou", [name].into())];
        ldap.add(&dn, attrs).await.and_then(|r| r.success()).unwrap_or_else(|e| panic!("add {dn}: {e}"));
        let _ = ldap.unbind().await;
        dn
    }
}

/// `unicodePwd`'s value for `password`: the UTF-16LE of the password in double quotes.
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

impl Samba {
    /// presets/active-directory.toml pointed at this DC over LDAPS (bound as Administrator,
    /// trusting the test CA), with users and groups in `ou`.
    pub fn preset(&self, ou: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/presets/active-directory.toml");
        let text = std::fs::read_to_string(path).expect("AD preset");
        text.replace("${SCIM_GATEWAY_LDAP_URL}", &self.ldaps_url)
            .replace("${SCIM_GATEWAY_TOKEN}", super::gateway::TOKEN)
            .replace("${SCIM_GATEWAY_BIND_PASSWORD}", ADMIN_PASSWORD)
            .replace("scim-gateway@example.test", ADMIN)
            .replace("# ca_file = \"/etc/scim-gateway/ad-ca.pem\"", &format!("ca_file = {:?}", self.ca_file))
            .replace("OU=SCIM,DC=example,DC=test", ou)
    }
}
