//! What ships outside the container: the Kubernetes manifests (deploy/kubernetes) validated
//! against the Kubernetes schemas with kubernetes-validate, with every gateway.toml they mount
//! passing `scim-gateway check --offline` as the pod would see it; and the .deb (cargo-deb):
//! installed with dpkg, its unit verified with systemd-analyze, its binary and configuration
//! checked, then purged.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::docker::{output, repo, run};

/// Kubernetes release the manifests are validated against.
const KUBERNETES: &str = "1.30.0";

/// The virtualenv python holding kubernetes-validate (scripts/kubernetes-venv).
fn python() -> PathBuf {
    let python = std::env::var("SCIM_KUBERNETES_PYTHON").unwrap_or_else(|_| {
        panic!("SCIM_KUBERNETES_PYTHON is not set: run scripts/test, or export SCIM_KUBERNETES_PYTHON=$(scripts/kubernetes-venv)")
    });
    let python = PathBuf::from(python);
    assert!(python.exists(), "SCIM_KUBERNETES_PYTHON={} does not exist: run scripts/kubernetes-venv", python.display());
    python
}

fn manifests() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["deploy/kubernetes", "deploy/kubernetes/sidecar"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path.to_str().unwrap().to_owned());
            }
        }
    }
    files.sort();
    files
}

fn validate(files: &[String]) -> std::process::Output {
    let validator = python().with_file_name("kubernetes-validate");
    let mut args = vec!["--strict", "--quiet", "-k", KUBERNETES];
    args.extend(files.iter().map(String::as_str));
    output(validator.to_str().unwrap(), &args)
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let files = manifests();
    assert!(files.len() >= 7, "{files:?}");
    let out = validate(&files);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // The validator does bite: a misspelt field in a copy of the Deployment is refused.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes/deployment.yaml")).unwrap();
    let broken = dir.path().join("deployment.yaml");
    std::fs::write(&broken, text.replacen("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1)).unwrap();
    assert!(!validate(&[broken.to_str().unwrap().to_owned()]).status.success(), "a misspelt field passed");
}

#[test]
fn every_mounted_gateway_toml_passes_check() {
    let root = tempfile::tempdir().unwrap();
    let mut args = vec![
        repo().join("tests/kubernetes/mounts.py").to_str().unwrap().to_owned(),
        root.path().to_str().unwrap().to_owned(),
    ];
    args.extend(manifests());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let listing = run(python().to_str().unwrap(), &args);
    let containers: Vec<serde_json::Value> = listing.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = containers.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["scim-gateway/scim-gateway", "legacy-app/scim-gateway"]);
    for c in &containers {
        let config = c["config"].as_str().unwrap();
        let mut check = Command::new(env!("CARGO_BIN_EXE_scim-gateway"));
        check.args(["check", "--offline", "-c", config]).env_clear();
        for (k, v) in c["env"].as_object().unwrap() {
            check.env(k, v.as_str().unwrap());
        }
        let out = check.output().unwrap();
        assert!(out.status.success(), "{}: {}", c["name"], String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("configuration valid"));
    }
}

/// `dpkg -P` on drop, so a failed test leaves no package behind.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["-P", "scim-gateway"]).output();
    }
}

fn is_root() -> bool {
    run("id", &["-u"]) == "0"
}

#[test]
fn deb_installs_with_a_unit_that_verifies_and_a_configuration_that_checks() {
    assert!(is_root(), "dpkg -i needs root: run this test as root (CI does)");
    let out = output("cargo", &["deb", "--version"]);
    assert!(out.status.success(), "cargo-deb missing: cargo install cargo-deb --locked (scripts/test does)");
    // The binary cargo test built (dev profile): no release build just for this. cargo-deb strips it.
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("scim-gateway.deb");
    let manifest = repo().join("Cargo.toml");
    let target = Path::new(env!("CARGO_BIN_EXE_scim-gateway")).parent().unwrap().parent().unwrap().to_owned();
    let out = Command::new("cargo")
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "-o",
            deb.to_str().unwrap(),
        ])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo deb: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let contents = run("dpkg-deb", &["-c", deb.to_str().unwrap()]);
    for file in ["./usr/bin/scim-gateway", "./etc/scim-gateway/gateway.toml", "scim-gateway.service"] {
        assert!(contents.contains(file), "{file} not in the package:\n{contents}");
    }
    let conffiles = run("dpkg-deb", &["-I", deb.to_str().unwrap(), "conffiles"]);
    assert!(conffiles.contains("/etc/scim-gateway/gateway.toml"), "{conffiles}");

    let _installed = Installed;
    run("dpkg", &["-i", deb.to_str().unwrap()]);
    let unit =
        run("dpkg", &["-L", "scim-gateway"]).lines().find(|l| l.ends_with("/scim-gateway.service")).unwrap().to_owned();
    let verify = output("systemd-analyze", &["verify", &unit]);
    let said = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    assert!(
        verify.status.success() && !said.contains("scim-gateway.service:"),
        "systemd-analyze verify {unit}:\n{said}"
    );
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "LimitNOFILE=16384",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in {unit}");
    }
    let security = output("systemd-analyze", &["security", "--offline=yes", &unit]);
    println!(
        "FIGURE systemd-analyze security: {}",
        String::from_utf8_lossy(&security.stdout).lines().last().unwrap_or_default()
    );

    // The credentials directory is root's only; the installed binary checks the installed file
    // with credentials where systemd would put them.
    let mode = run("stat", &["-c", "%a %U", "/etc/scim-gateway/credentials"]);
    assert_eq!(mode, "700 root");
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("okta-token"), "t0ken\n").unwrap();
    std::fs::write(credentials.path().join("bind-password"), "pw\n").unwrap();
    let check = Command::new("/usr/bin/scim-gateway")
        .args(["check", "--offline", "-c", "/etc/scim-gateway/gateway.toml"])
        .env("CREDENTIALS_DIRECTORY", credentials.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(run("/usr/bin/scim-gateway", &["--version"]).starts_with("scim-gateway "));

    run("dpkg", &["-P", "scim-gateway"]);
    assert!(!Path::new("/usr/bin/scim-gateway").exists());
    assert!(!Path::new("/etc/scim-gateway").exists(), "purge left /etc/scim-gateway");
}

#[test]
fn check_offline_still_refuses_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let shipped = std::fs::read_to_string(repo().join("gateway.toml")).unwrap();
    std::fs::write(&path, shipped.replacen("scim = \"userName\"", "scim = \"userName[\"", 1)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scim-gateway"))
        .args(["check", "--offline", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("gateway.toml") && said.contains("userName["), "{said}");
}
