//! Docker for the container tests: the images built once per test binary from a local Debian
//! base (`scripts/docker-base`, no registry needed) and the gateway binary `cargo test` built,
//! and containers removed when dropped.
//!
//! The images take the debug binary (stripped) through the Dockerfile's `prebuilt` target: it
//! is already built for the tests, where a release build costs minutes more on a small CI
//! machine. What the tests check (user, read-only root, signals, probes, the configuration the
//! image ships) does not depend on the profile; the image size README gives is the release one.
//!
//! No Docker is a loud failure. Only `SCIM_GATEWAY_DOCKER=skip`, for machines where Docker cannot
//! run at all, turns these tests into a printed skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const GATEWAY_IMAGE: &str = "scim-gateway-test/gateway";
pub const OPENLDAP_IMAGE: &str = "scim-gateway-test/openldap";
pub const BASE_IMAGE: &str = "scim-gateway-test/bookworm";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `program args`, panicking with its output unless it succeeds; its stdout, trimmed.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = output(program, args);
    assert!(
        out.status.success(),
        "{program} {}: {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        // The legacy builder builds only the stages up to --target, and needs no buildx plugin.
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// False (after saying why) only when Docker cannot run and the caller allowed a skip.
pub fn available() -> bool {
    let info = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    match info {
        Ok(out) if out.status.success() => true,
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => format!("cannot run docker: {e}"),
            };
            if std::env::var("SCIM_GATEWAY_DOCKER").as_deref() == Ok("skip") {
                eprintln!("SKIPPED: Docker cannot run here (SCIM_GATEWAY_DOCKER=skip): {why}");
                return false;
            }
            panic!(
                "Docker is not available: {why}\nscripts/test installs docker.io and starts dockerd; \
                 where Docker cannot run at all, set SCIM_GATEWAY_DOCKER=skip"
            );
        }
    }
}

/// Builds the base, the gateway image and the OpenLDAP image, once per test binary.
pub fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = repo().join("scripts/docker-base");
        run(script.to_str().unwrap(), &[BASE_IMAGE]);
        // A small context: the stripped binary, the shipped gateway.toml and scripts/slapd.
        let context = tempfile::tempdir().expect("temp dir");
        let ctx = context.path();
        std::fs::copy(repo().join("gateway.toml"), ctx.join("gateway.toml")).expect("copy gateway.toml");
        std::fs::create_dir(ctx.join("scripts")).unwrap();
        std::fs::copy(repo().join("scripts/slapd"), ctx.join("scripts/slapd")).expect("copy scripts/slapd");
        let binary = ctx.join("scim-gateway");
        run("strip", &["-o", binary.to_str().unwrap(), env!("CARGO_BIN_EXE_scim-gateway")]);
        build(
            &repo().join("docker/Dockerfile"),
            ctx,
            GATEWAY_IMAGE,
            &["--target", "prebuilt", "--build-arg", "BINARY=scim-gateway"],
        );
        build(&repo().join("docker/openldap/Dockerfile"), ctx, OPENLDAP_IMAGE, &[]);
    });
}

fn build(dockerfile: &Path, context: &Path, tag: &str, extra: &[&str]) {
    let base = format!("BASE_IMAGE={BASE_IMAGE}");
    let mut args = vec!["build", "-q", "-f", dockerfile.to_str().unwrap(), "-t", tag, "--build-arg", &base];
    args.extend_from_slice(extra);
    args.push(context.to_str().unwrap());
    run("docker", &args);
}

/// The size of an image in bytes.
pub fn image_size(image: &str) -> u64 {
    run("docker", &["image", "inspect", "-f", "{{.Size}}", image]).parse().expect("size")
}

/// A name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Containers and networks removed on drop, whatever the test did.
#[derive(Default)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub compose: Option<Compose>,
}

/// A compose project to take `down -v`: its `-p NAME -f FILE` arguments and the variables the
/// file needs even to be read.
pub struct Compose {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Never panic here: a panic while a failed test unwinds would abort the binary.
        if let Some(Compose { args, env }) = &self.compose {
            let _ = Command::new("docker-compose")
                .args(args)
                .envs(env.iter().cloned())
                .args(["down", "-v", "-t", "1"])
                .output();
        }
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        for n in &self.networks {
            let _ = Command::new("docker").args(["network", "rm", n]).output();
        }
    }
}

/// The host port Docker published for a container's 8080.
pub fn published_port(container: &str) -> u16 {
    let mapping = run("docker", &["port", container, "8080/tcp"]);
    let first = mapping.lines().next().unwrap_or_default();
    first.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("docker port: {mapping}"))
}

/// The status of `GET path` on 127.0.0.1:`port` (HTTP/1.0, no credentials); None if no answer.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(3))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits (30 s at most) until `/readyz` on 127.0.0.1:`port` answers 200.
pub fn wait_ready(port: u16, logs_of: &str) {
    let start = std::time::Instant::now();
    while http_status(port, "/readyz") != Some(200) {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let logs = output("docker", &["logs", logs_of]);
            panic!(
                "not ready on {port} within 30 s; logs of {logs_of}:\n{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
