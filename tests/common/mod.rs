//! Test harness: a private OpenLDAP per test, run by `scripts/slapd` (the one place that knows
//! how). Every test starts its own `Slapd`, so tests run in parallel; dropping it stops slapd and
//! deletes its directory. A test that needs slapd and cannot get one panics: it never skips.
#![allow(dead_code)] // the benches use a subset

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use ldap3::{Ldap, LdapConnAsync, LdapError, Scope, SearchEntry};

pub struct Slapd {
    pub url: String,
    pub base_dn: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub service_dn: String,
    pub service_password: String,
    /// `ldaps://127.0.0.1:PORT` when started with TLS.
    pub ldaps_url: Option<String>,
    dir: tempfile::TempDir,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/slapd")
}

/// A port that was free a moment ago; another process may take it before slapd binds it,
/// hence the retries in `Slapd::start`.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

impl Slapd {
    pub fn start() -> Slapd {
        Self::start_with(None, None, None)
    }

    /// With StartTLS on the plain port and an ldaps:// listener, serving `cert` / `key` (PEM).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Slapd {
        Self::start_with(Some((cert, key)), None, None)
    }

    /// As [`Slapd::start_tls`], and TLS clients must present a certificate signed by `client_ca`.
    pub fn start_tls_client_auth(cert: &std::path::Path, key: &std::path::Path, client_ca: &std::path::Path) -> Slapd {
        Self::start_with(Some((cert, key)), None, Some(client_ca))
    }

    /// Preloaded with `ldif` (slapadd, offline: fast for tens of thousands of entries, but no
    /// overlay runs, so no memberOf and no password hashing).
    pub fn start_seeded(ldif: &str) -> Slapd {
        let file = tempfile::NamedTempFile::new().expect("seed file");
        std::fs::write(file.path(), ldif).expect("write seed");
        Self::start_with(None, Some(file.path()), None)
    }

    fn start_with(
        tls: Option<(&std::path::Path, &std::path::Path)>,
        seed: Option<&std::path::Path>,
        client_ca: Option<&std::path::Path>,
    ) -> Slapd {
        raise_file_limit();
        let mut failures = String::new();
        for _ in 0..3 {
            let port = free_port();
            let ldaps_port = tls.map(|_| free_port());
            let started = Self::run_start(port, |cmd| {
                if let (Some((cert, key)), Some(p)) = (tls, ldaps_port) {
                    cmd.env("SLAPD_TLS_CERT", cert).env("SLAPD_TLS_KEY", key).env("SLAPD_LDAPS_PORT", p.to_string());
                }
                if let Some(ca) = client_ca {
                    cmd.env("SLAPD_TLS_CLIENT_CA", ca);
                }
                cmd.envs(seed.map(|p| ("SLAPD_SEED", p)));
            });
            match started {
                Ok(mut slapd) => {
                    slapd.ldaps_url = ldaps_port.map(|p| format!("ldaps://127.0.0.1:{p}"));
                    return slapd;
                }
                Err(e) => failures += &e,
            }
        }
        panic!("scripts/slapd start failed 3 times:\n{failures}");
    }

    /// Two OpenLDAP providers replicating to each other (syncprov + syncrepl, multiprovider):
    /// the second starts as a copy of the first's database, so both hold the same seed with the
    /// same entryUUIDs. Writes to either reach the other (see tests/it/replicated.rs).
    pub fn start_providers() -> [Slapd; 2] {
        let mut failures = String::new();
        for _ in 0..3 {
            let ports = [free_port(), free_port()];
            let peer = |i: usize| format!("ldap://127.0.0.1:{}/", ports[1 - i]);
            let first = match Self::run_start(ports[0], |cmd| {
                cmd.env("SLAPD_SERVER_ID", "1").env("SLAPD_PEERS", peer(0));
            }) {
                Ok(s) => s,
                Err(e) => {
                    failures += &e;
                    continue;
                }
            };
            match Self::run_start(ports[1], |cmd| {
                cmd.env("SLAPD_SERVER_ID", "2").env("SLAPD_PEERS", peer(1)).env("SLAPD_CLONE_FROM", first.dir.path());
            }) {
                Ok(second) => return [first, second],
                Err(e) => failures += &e,
            }
        }
        panic!("scripts/slapd start of two providers failed 3 times:\n{failures}");
    }

    /// `scripts/slapd start` on `port` in a fresh directory, with the test passwords and what
    /// `configure` adds; the script's output on failure (the port may have been taken meanwhile).
    fn run_start(port: u16, configure: impl FnOnce(&mut Command)) -> Result<Slapd, String> {
        const ADMIN_PASSWORD: &str = "admin-secret";
        const SERVICE_PASSWORD: &str = "service-secret";
        // A fresh directory each try: the script seeds the database with slapadd.
        let dir = tempfile::Builder::new().prefix("slapd-").tempdir().expect("create temp dir");
        let mut cmd = Command::new(script());
        cmd.arg("start")
            .arg(dir.path())
            .arg(port.to_string())
            .env("SLAPD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SLAPD_SERVICE_PASSWORD", SERVICE_PASSWORD)
            .env_remove("SLAPD_SEED");
        configure(&mut cmd);
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
        if !out.status.success() {
            return Err(format!(
                "--- port {port}: {}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Slapd {
            url: format!("ldap://127.0.0.1:{port}"),
            base_dn: "dc=example,dc=test".into(),
            admin_dn: "cn=admin,dc=example,dc=test".into(),
            admin_password: ADMIN_PASSWORD.into(),
            service_dn: "cn=scim-gateway,ou=services,dc=example,dc=test".into(),
            service_password: SERVICE_PASSWORD.into(),
            ldaps_url: None,
            dir,
        })
    }

    /// slapd's process id, from its pidfile (benchmarks read its CPU time in /proc).
    pub fn pid(&self) -> u32 {
        let pidfile = self.dir.path().join("slapd.pid");
        let text = std::fs::read_to_string(&pidfile).unwrap_or_else(|e| panic!("read {}: {e}", pidfile.display()));
        text.trim().parse().unwrap_or_else(|e| panic!("{}: {e}", pidfile.display()))
    }

    /// Kills slapd with SIGKILL, as a crash would; the database stays for [`Slapd::restart`].
    pub fn kill(&self) {
        self.run_script("kill");
    }

    /// Starts the killed slapd again on the same port and database; returns once it answers.
    pub fn restart(&self) {
        self.run_script("restart");
    }

    fn run_script(&self, command: &str) {
        let out = Command::new(script()).arg(command).arg(self.dir.path()).output().expect("run scripts/slapd");
        assert!(
            out.status.success(),
            "scripts/slapd {command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A connection bound as `dn`; panics if the bind fails.
    pub async fn bind(&self, dn: &str, password: &str) -> Ldap {
        let (conn, mut ldap) =
            LdapConnAsync::new(&self.url).await.unwrap_or_else(|e| panic!("connect to {}: {e}", self.url));
        ldap3::drive!(conn);
        ldap.simple_bind(dn, password).await.and_then(|r| r.success()).unwrap_or_else(|e| panic!("bind as {dn}: {e}"));
        ldap
    }

    /// Whether `dn` can bind with `password` (a fresh connection, closed after).
    pub async fn can_bind(&self, dn: &str, password: &str) -> bool {
        let Ok((conn, mut ldap)) = LdapConnAsync::new(&self.url).await else { return false };
        ldap3::drive!(conn);
        let ok = ldap.simple_bind(dn, password).await.is_ok_and(|r| r.rc == 0);
        let _ = ldap.unbind().await;
        ok
    }

    /// A connection bound as the rootdn (no ACLs, no size limit).
    pub async fn admin(&self) -> Ldap {
        self.bind(&self.admin_dn, &self.admin_password).await
    }

    /// The entry at `dn` with user and operational attributes, read as admin; None if absent.
    pub async fn entry(&self, dn: &str) -> Option<SearchEntry> {
        let mut ldap = self.admin().await;
        let res = ldap.search(dn, Scope::Base, "(objectClass=*)", vec!["*", "+"]).await.and_then(|r| r.success());
        let _ = ldap.unbind().await;
        match res {
            Ok((mut entries, _)) => entries.pop().map(SearchEntry::construct),
            Err(LdapError::LdapResult { result }) if result.rc == 32 => None, // noSuchObject
            Err(e) => panic!("read {dn}: {e}"),
        }
    }

    /// Subtree search under `base`, user and operational attributes, as admin.
    pub async fn search(&self, base: &str, filter: &str) -> Vec<SearchEntry> {
        let mut ldap = self.admin().await;
        let (entries, _) = ldap
            .search(base, Scope::Subtree, filter, vec!["*", "+"])
            .await
            .and_then(|r| r.success())
            .unwrap_or_else(|e| panic!("search {base} {filter}: {e}"));
        let _ = ldap.unbind().await;
        entries.into_iter().map(SearchEntry::construct).collect()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // Never panic here: a panic while a failed test unwinds would abort the whole binary.
        match Command::new(script()).arg("stop").arg(self.dir.path()).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                eprintln!("scripts/slapd stop {}: {}", self.dir.path().display(), String::from_utf8_lossy(&out.stderr))
            }
            Err(e) => eprintln!("cannot run scripts/slapd stop: {e}"),
        }
    }
}

/// The soft open-file limit of the test process raised to its hard limit, capped at 16,384,
/// once. All integration tests share one process (`tests/it`), and tests/it/edge.rs opens
/// thousands of sockets: with the usual soft limit of 1,024 the others would run out. The
/// cap: children (slapd, Samba, gateways) inherit the limit, and slapd sizes its tables by it.
/// Called by every server start of the harness; tests that want a low limit set it on the
/// gateway's own process ([`process::GatewayProcess::spawn_with_file_limit`]).
pub fn raise_file_limit() {
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(|| {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        let wanted = limit.maximum.unwrap_or(u64::MAX).min(16_384);
        if limit.current.is_some_and(|soft| soft < wanted) {
            setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum })
                .unwrap_or_else(|e| panic!("raise the open-file limit to {wanted}: {e}"));
        }
    });
}

pub mod docker;
pub mod ds389;
pub mod fault;
pub mod filter_gen;
pub mod gateway;
pub mod ldap_store;
pub mod metrics;
pub mod oauth;
pub mod pki;
pub mod postgres;
pub mod postgres_store;
pub mod process;
pub mod samba;
pub mod scenario;

/// LDIF for users `user{first}` … `user{last - 1}` under ou=people, with entryUUIDs left to slapadd.
pub fn users_ldif(range: std::ops::Range<usize>) -> String {
    let mut ldif = String::with_capacity(range.len() * 160);
    for i in range {
        ldif += &format!(
            "dn: uid=user{i},ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: user{i}\ncn: User {i}\nsn: {i}\nmail: user{i}@example.com\n\n"
        );
    }
    ldif
}

/// LDIF for a groupOfNames `cn={name}` under ou=groups listing `members` (user numbers).
pub fn group_ldif(name: &str, members: std::ops::Range<usize>) -> String {
    let mut ldif = format!("dn: cn={name},ou=groups,dc=example,dc=test\nobjectClass: groupOfNames\ncn: {name}\n");
    for i in members {
        ldif += &format!("member: uid=user{i},ou=people,dc=example,dc=test\n");
    }
    ldif + "\n"
}
