//! A private PostgreSQL per test, run by `scripts/postgres` (the one place that knows how: the
//! unprivileged user, initdb, pg_ctl, the app schema and role). Dropping it stops the server and
//! deletes its directory. A test that needs PostgreSQL and cannot get one panics: it never skips.
//!
//! The tests read rows back as the superuser over the unix socket in the server's directory
//! (trusted, never TLS), so what they see does not depend on the gateway's own connection.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

pub const APP_PASSWORD: &str = "service-secret";
pub const APP_ROLE: &str = "scim_gateway";
pub const DATABASE: &str = "app";

pub struct Postgres {
    pub port: u16,
    /// Whether TCP clients must use TLS (hostssl only).
    pub tls: bool,
    dir: tempfile::TempDir,
}

fn script() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres")
}

impl Postgres {
    /// With the shipped app schema, `presets/postgres.sql`.
    pub fn start() -> Postgres {
        Self::start_with(None)
    }

    /// Serving `cert` / `key` (PEM); plain TCP connections are refused.
    pub fn start_tls(cert: &Path, key: &Path) -> Postgres {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> Postgres {
        let mut failures = String::new();
        for _ in 0..3 {
            // A port free a moment ago: another process may take it first, hence the retries.
            let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().unwrap().port();
            let dir = tempfile::Builder::new().prefix("pg-").tempdir().expect("create temp dir");
            let mut cmd = Command::new(script());
            cmd.arg("start").arg(dir.path()).arg(port.to_string()).env("PG_APP_PASSWORD", APP_PASSWORD);
            cmd.env_remove("PG_SCHEMA").env_remove("PG_TLS_CERT").env_remove("PG_TLS_KEY");
            if let Some((cert, key)) = tls {
                cmd.env("PG_TLS_CERT", cert).env("PG_TLS_KEY", key);
            }
            let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
            if out.status.success() {
                return Postgres { port, tls: tls.is_some(), dir };
            }
            failures += &format!(
                "--- port {port}: {}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // The directory may hold a half-started server: stop it before the TempDir goes.
            let _ = Command::new(script()).arg("stop").arg(dir.path()).output();
        }
        panic!("scripts/postgres start failed 3 times:\n{failures}");
    }

    /// The postmaster's process id (benchmarks read its and its backends' CPU time in /proc).
    pub fn pid(&self) -> u32 {
        let pidfile = self.dir.path().join("data/postmaster.pid");
        let text = std::fs::read_to_string(&pidfile).unwrap_or_else(|e| panic!("read {}: {e}", pidfile.display()));
        text.lines().next().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("{}", pidfile.display()))
    }

    /// Kills the server and its backends with SIGKILL, as a crash would; the data stays for
    /// [`Postgres::restart`].
    pub fn kill(&self) {
        self.run_script("kill");
    }

    /// Starts the killed server again on the same port and data; returns once it accepts.
    pub fn restart(&self) {
        self.run_script("restart");
    }

    fn run_script(&self, command: &str) {
        let out = Command::new(script()).arg(command).arg(self.dir.path()).output().expect("run scripts/postgres");
        assert!(
            out.status.success(),
            "scripts/postgres {command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What the server has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A superuser connection to the app database over the unix socket.
    pub async fn admin(&self) -> Client {
        let mut config = tokio_postgres::Config::new();
        config.host_path(self.dir.path()).port(self.port).user("postgres").dbname(DATABASE);
        let (client, connection) =
            config.connect(NoTls).await.unwrap_or_else(|e| panic!("connect to the test PostgreSQL: {e}"));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// The rows of `sql` (run as the superuser), each as a JSON object keyed by column name:
    /// `to_jsonb` of the row, so every column type reads back without a Rust type for it.
    pub async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<Value> {
        let wrapped = format!("SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]')::text FROM ({sql}) r");
        let row = self.admin().await.query_one(&wrapped, params).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let text: String = row.get(0);
        match serde_json::from_str(&text).expect("jsonb_agg is JSON") {
            Value::Array(rows) => rows,
            other => panic!("{sql}: not an array: {other}"),
        }
    }

    /// The one row of `sql`, or None; panics on more than one.
    pub async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Option<Value> {
        let mut rows = self.rows(sql, params).await;
        assert!(rows.len() <= 1, "{sql}: {} rows", rows.len());
        rows.pop()
    }

    /// `SELECT count(*)` of `table`.
    pub async fn count(&self, table: &str) -> i64 {
        let row = self.admin().await.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await;
        row.unwrap_or_else(|e| panic!("count {table}: {e}")).get(0)
    }

    /// Every row of every table in schema public, in a stable order: what a test compares before
    /// and after a refused request to prove nothing changed.
    pub async fn snapshot(&self) -> Value {
        let admin = self.admin().await;
        let tables = admin
            .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1", &[])
            .await
            .expect("list tables");
        let mut all = serde_json::Map::new();
        for t in tables {
            let name: String = t.get(0);
            // Identifiers from the catalogue, quoted: this is the test reading its own schema.
            let sql = format!(
                "SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY to_jsonb(r)::text), '[]')::text FROM \"{}\" r",
                name.replace('"', "\"\"")
            );
            let text: String = admin.query_one(&sql, &[]).await.expect("read table").get(0);
            all.insert(name, serde_json::from_str(&text).unwrap());
        }
        Value::Object(all)
    }

    /// Runs `sql` (statements separated by `;`) as the superuser.
    pub async fn execute(&self, sql: &str) {
        self.admin().await.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Never panic here: a panic while a failed test unwinds would abort the whole binary.
        match Command::new(script()).arg("stop").arg(self.dir.path()).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("scripts/postgres stop: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("cannot run scripts/postgres stop: {e}"),
        }
    }
}
