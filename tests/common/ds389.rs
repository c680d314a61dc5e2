//! A private, throwaway 389 Directory Server per test (package `389-ds-base`, installed by
//! scripts/test). `dscreate` builds the instance under a temp dir: lib389's prefix install
//! (`PREFIX`, with a `defaults.inf` that points /etc, /run and /var into the temp dir and turns
//! systemd off) so nothing lands in the system's directories and ns-slapd is started directly.
//! Dropping it stops ns-slapd by PID and deletes the directory. A test that needs 389-ds and
//! cannot get one panics: it never skips.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapError, Scope, SearchEntry};

const DSCREATE: &str = "/usr/sbin/dscreate";
const DEFAULTS: &str = "/usr/share/dirsrv/inf/defaults.inf";
const ADMIN_PASSWORD: &str = "admin-secret";
const SERVICE_PASSWORD: &str = "service-secret";

pub struct Ds389 {
    pub url: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub service_password: String,
    instance: String,
    pid: u32,
    dir: tempfile::TempDir,
}

/// ou=people, ou=groups, and the preset's service account, allowed to manage both OUs.
const SEED: &str = "\
dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=test
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=example,dc=test
objectClass: organizationalUnit
ou: services

dn: uid=scim-gateway,ou=services,dc=example,dc=test
objectClass: account
objectClass: simpleSecurityObject
uid: scim-gateway
userPassword: service-secret

dn: dc=example,dc=test
changetype: modify
add: aci
aci: (targetattr=\"*\")(version 3.0; acl \"scim-gateway\"; allow (all) userdn=\"ldap:///uid=scim-gateway,ou=services,dc=example,dc=test\";)
";

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

impl Ds389 {
    /// An instance for `dc=example,dc=test` seeded with [`SEED`]; about 15 s (dscreate starts and
    /// restarts the server).
    pub fn start() -> Ds389 {
        assert!(
            Path::new(DSCREATE).exists() && Path::new(DEFAULTS).exists(),
            "389 Directory Server is not installed: apt-get install -y 389-ds-base (scripts/test does)"
        );
        let mut failures = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(ds) => return ds,
                Err(e) => failures += &format!("---\n{e}\n"),
            }
        }
        panic!("389-ds failed to start 3 times:\n{failures}");
    }

    fn try_start() -> Result<Ds389, String> {
        let dir = tempfile::Builder::new().prefix("ds389-").tempdir().expect("create temp dir");
        let root = dir.path().to_str().expect("utf-8 temp dir").to_string();
        let port = super::free_port();
        let instance = format!("t{port}");
        let defaults = std::fs::read_to_string(DEFAULTS).expect("read defaults.inf");
        let defaults = defaults
            .replace("with_systemd = 1", "with_systemd = 0")
            .replace("user = dirsrv", "user = root")
            .replace("group = dirsrv", "group = root")
            .replace("= /etc", &format!("= {root}/etc"))
            .replace("= /run", &format!("= {root}/run"))
            .replace("= /var", &format!("= {root}/var"))
            .replace("= /dev/shm", &format!("= {root}/shm"));
        std::fs::create_dir_all(format!("{root}/share/dirsrv/inf")).unwrap();
        std::fs::create_dir_all(format!("{root}/etc/dirsrv")).unwrap();
        std::fs::write(format!("{root}/share/dirsrv/inf/defaults.inf"), defaults).unwrap();
        // dscreate copies the instance's schema and config templates from sysconf_dir.
        run(Command::new("cp")
            .args(["-r", "/etc/dirsrv/schema", "/etc/dirsrv/config"])
            .arg(format!("{root}/etc/dirsrv")))?;
        let inf = format!(
            "[general]\nfull_machine_name = localhost\nselinux = False\n\
             [slapd]\ninstance_name = {instance}\nport = {port}\nsecure_port = 0\n\
             root_password = {ADMIN_PASSWORD}\nself_sign_cert = False\n\
             [backend-userroot]\nsuffix = dc=example,dc=test\ncreate_suffix_entry = True\n"
        );
        std::fs::write(format!("{root}/inst.inf"), inf).unwrap();
        run(Command::new(DSCREATE)
            .arg("from-file")
            .arg(format!("{root}/inst.inf"))
            .env("PREFIX", &root)
            .current_dir(&root))?;
        let pid_file = format!("{root}/run/dirsrv/slapd-{instance}.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("{pid_file}: {e}"))?
            .trim()
            .parse()
            .map_err(|e| format!("{pid_file}: {e}"))?;
        let ds = Ds389 {
            url: format!("ldap://127.0.0.1:{port}"),
            admin_dn: "cn=Directory Manager".into(),
            admin_password: ADMIN_PASSWORD.into(),
            service_password: SERVICE_PASSWORD.into(),
            instance,
            pid,
            dir,
        };
        // On failure `ds` drops here and stops the server.
        let seed = format!("{root}/seed.ldif");
        std::fs::write(&seed, SEED).unwrap();
        run(Command::new("ldapmodify")
            .args(["-x", "-a", "-H", &ds.url, "-D", &ds.admin_dn, "-w", ADMIN_PASSWORD, "-f"])
            .arg(&seed))?;
        Ok(ds)
    }

    /// A connection bound as `dn`, or the bind's error.
    async fn bind(&self, dn: &str, password: &str) -> Result<Ldap, LdapError> {
        let (conn, mut ldap) =
            LdapConnAsync::new(&self.url).await.unwrap_or_else(|e| panic!("connect {}: {e}", self.url));
        ldap3::drive!(conn);
        ldap.simple_bind(dn, password).await.and_then(|r| r.success())?;
        Ok(ldap)
    }

    /// Sets `dn`'s password as Directory Manager with a plain modify (389-ds hashes it). The
    /// gateway's Password Modify extended operation needs TLS on 389-ds, which this server lacks.
    pub async fn set_password(&self, dn: &str, password: &str) {
        let mut ldap = self.bind(&self.admin_dn, &self.admin_password).await.expect("bind as admin");
        let mods = vec![ldap3::Mod::Replace("userPassword", std::collections::HashSet::from([password]))];
        ldap.modify(dn, mods).await.and_then(|r| r.success()).unwrap_or_else(|e| panic!("set password of {dn}: {e}"));
        let _ = ldap.unbind().await;
    }

    /// Whether a simple bind as `dn` succeeds (389-ds refuses locked accounts at bind).
    pub async fn can_bind(&self, dn: &str, password: &str) -> bool {
        match self.bind(dn, password).await {
            Ok(mut ldap) => {
                let _ = ldap.unbind().await;
                true
            }
            Err(_) => false,
        }
    }

    /// The entry at `dn` with user and operational attributes, read as Directory Manager.
    pub async fn entry(&self, dn: &str) -> Option<SearchEntry> {
        let mut ldap = self.bind(&self.admin_dn, &self.admin_password).await.expect("bind as admin");
        let attrs = vec!["*", "+", "nsUniqueId", "nsAccountLock", "entrydn"];
        let res = ldap.search(dn, Scope::Base, "(objectClass=*)", attrs).await.and_then(|r| r.success());
        let _ = ldap.unbind().await;
        match res {
            Ok((mut entries, _)) => entries.pop().map(SearchEntry::construct),
            Err(LdapError::LdapResult { result }) if result.rc == 32 => None, // noSuchObject
            Err(e) => panic!("read {dn}: {e}"),
        }
    }
}

impl Drop for Ds389 {
    fn drop(&mut self) {
        // Never panic here: a panic while a failed test unwinds would abort the whole binary.
        let pid = self.pid.to_string();
        let alive = || Command::new("kill").args(["-0", &pid]).output().is_ok_and(|o| o.status.success());
        let _ = Command::new("kill").arg(&pid).output();
        let deadline = Instant::now() + Duration::from_secs(15);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if alive() {
            eprintln!("ns-slapd {pid} ignored SIGTERM for 15 s; killing it");
            let _ = Command::new("kill").args(["-KILL", &pid]).output();
        }
        // ns-slapd's one file outside the temp dir: its stats semaphore.
        let _ = std::fs::remove_file(format!("/dev/shm/sem.slapd-{}.stats", self.instance));
    }
}
