//! The binary: `check` validates the file and binds; bad files fail with file, line and reason.

mod common;

use std::process::Command;

use common::gateway::config_text;
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
    // Against the real subschema: the shipped mapping is sound, with one honest warning.
    assert!(out.contains("warning: [users] sn is required by the object classes"), "{out}");
    assert!(!out.contains("error:"), "{out}");

    // A misspelled attribute and a MUST attribute no rule writes are caught before any request.
    let typo = good.replace("ldap = \"title\"", "ldap = \"titel\"");
    let (ok, out) = run(&["check"], &typo);
    assert!(!ok && out.contains("error: [users] attribute titel is not in the directory's schema"), "{out}");
    let no_sn = good.replacen(
        "scim = \"name.familyName\"\nldap = \"sn\"",
        "scim = \"name.familyName\"\nldap = \"initials\"",
        1,
    );
    let (ok, out) = run(&["check"], &no_sn);
    assert!(!ok && out.contains("error: [users] a create leaves sn empty"), "{out}");
    let posix = good.replace("\"inetOrgPerson\"]", "\"inetOrgPerson\", \"posixAccount\"]");
    let (ok, out) = run(&["check"], &posix);
    for must in ["uidNumber", "gidNumber", "homeDirectory"] {
        assert!(!ok && out.contains(&format!("a create leaves {must} empty")), "{must}: {out}");
    }

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
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config_text(&slapd, |t| t)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scim-gateway"))
        .args(["serve", "-c"])
        .arg(&path)
        .env("SCIM_GATEWAY_PORT", port.to_string())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the gateway did not start listening");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
