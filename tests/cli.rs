//! The binary: `check` validates the file and binds; bad files fail with file, line and reason.

mod common;

use std::process::Command;

use common::gateway::config_text;
use common::process::GatewayProcess;
use common::Slapd;

fn run(args: &[&str], config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scim-gateway"))
        .args(args)
        .arg("-c")
        .arg(&path)
        .env_remove("SCIM_GATEWAY_CONFIG")
        .output()
        .expect("run scim-gateway");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.replace(path.to_str().unwrap(), "gateway.toml"))
}

#[test]
fn check_validates_and_binds() {
    let slapd = Slapd::start();
    let good = config_text(&slapd, |t| t);
    let (ok, out) = run(&["check"], &good);
    assert!(ok, "{out}");
    assert!(out.contains("configuration valid"), "{out}");

    // A wrong bind password: named failure, no password in the output.
    let (ok, out) = run(&["check"], &good.replace(&format!("\"{}\"", slapd.service_password), "\"not-the-password\""));
    assert!(!ok);
    assert!(out.contains("could not bind"), "{out}");
    assert!(!out.contains("not-the-password") && !out.contains(&slapd.service_password), "{out}");
}

#[test]
fn bad_files_name_the_line() {
    let slapd = Slapd::start();
    let good = config_text(&slapd, |t| t);
    let line_of = |needle: &str| good.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let cases = [
        (
            good.replace("scim = \"title\"", "scim = \"titel\""),
            line_of("scim = \"title\""),
            "titel is not an attribute",
        ),
        (good.replace("ldap = \"sn\"", "ldap = \"s n\""), line_of("ldap = \"sn\""), "not an LDAP attribute name"),
        (good.replace("page_size = 500", "page_size = \"lots\""), line_of("page_size = 500"), "invalid type"),
        (
            good.replace("starttls = false", "starttls = false\nbogus = 1"),
            line_of("starttls = false") + 1,
            "unknown field",
        ),
        (
            good.replace("filter = \"(objectClass=inetOrgPerson)\"", "filter = \"(objectClass=\""),
            line_of("filter = \"(objectClass"),
            "not a valid LDAP filter",
        ),
        (
            good.replace("rdn_attribute = \"uid\"", "rdn_attribute = \"ou\""),
            line_of("rdn_attribute = "),
            "rdn_attribute ou",
        ),
    ];
    for (text, line, reason) in cases {
        let (ok, out) = run(&["check"], &text);
        assert!(!ok, "{reason}: accepted");
        assert!(out.contains(&format!("gateway.toml:{line}:")), "{reason}: expected line {line} in {out}");
        assert!(out.contains(reason), "expected {reason:?} in {out}");
    }
    // A missing environment variable, and a secret file that does not exist.
    let (ok, out) =
        run(&["check"], &good.replace(&format!("\"{}\"", slapd.service_password), "\"${SCIM_TEST_UNSET_VAR}\""));
    assert!(!ok && out.contains("SCIM_TEST_UNSET_VAR is not set"), "{out}");
    let (ok, out) =
        run(&["check"], &good.replace("token = \"test-token-3f9a\"", "token_file = \"/nonexistent/token\""));
    assert!(!ok && out.contains("cannot read token_file"), "{out}");
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let slapd = Slapd::start();
    let gateway = GatewayProcess::spawn(&config_text(&slapd, |t| t));
    let status = gateway.terminate();
    assert!(status.success(), "{status}");
}
