//! The binary: `check` validates the file and binds; bad files fail with file, line and reason.

use crate::common;

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
    let gateway = GatewayProcess::spawn(&config_text(&slapd, |t| t));
    let status = gateway.terminate();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn explain_prints_ldif_and_changes_nothing() {
    use common::gateway::{okta_user, TestGateway, PEOPLE};
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let existing = gw.post("/Users", &okta_user("ann@example.com", None)).await;
    let id = existing.body["id"].as_str().unwrap().to_owned();
    gw.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, config_text(&slapd, |t| t)).unwrap();
    let explain = |args: &[&str], body: Option<serde_json::Value>| {
        let body_file = dir.path().join("body.json");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scim-gateway"));
        cmd.arg("explain").args(args).arg("-c").arg(&config);
        if let Some(b) = body {
            std::fs::write(&body_file, b.to_string()).unwrap();
            cmd.arg("--body").arg(&body_file);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let before = slapd.search(PEOPLE, "(objectClass=*)").await.len();

    let (ok, out) = explain(&["POST", "/Users"], Some(okta_user("jdoe@example.com", Some("S3cret-pw!"))));
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "dn: uid=jdoe@example.com,ou=people,dc=example,dc=test\nchangetype: add\n\
         objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: inetOrgPerson\n\
         cn: John Doe\ndescription: 00u1abcd2EFGH3ijk4l5\ndisplayName: John Doe\ngivenName: John\n\
         mail: jdoe@example.com\nsn: Doe\nuid: jdoe@example.com\n\n\
         # Password Modify extended operation (RFC 3062) on uid=jdoe@example.com,ou=people,dc=example,dc=test: \
         the directory hashes the new password (not shown)\n"
    );
    assert!(!out.contains("S3cret-pw!"));

    let mut renamed = okta_user("ann.lee@example.com", None);
    renamed["name"] = serde_json::json!({"givenName": "Ann", "familyName": "Lee"});
    let (ok, out) = explain(&["PUT", &format!("/Users/{id}")], Some(renamed));
    assert!(ok, "{out}");
    assert!(out.starts_with("dn: uid=ann@example.com,ou=people,dc=example,dc=test\nchangetype: modrdn\nnewrdn: uid=ann.lee@example.com\ndeleteoldrdn: 1\n"), "{out}");
    assert!(out.ends_with(
        "\ndn: uid=ann.lee@example.com,ou=people,dc=example,dc=test\nchangetype: modify\nreplace: givenName\ngivenName: Ann\n-\n\
         replace: sn\nsn: Lee\n-\nreplace: mail\nmail: ann.lee@example.com\n-\nreplace: cn\ncn: Ann Lee\n-\n"
    ), "{out}");

    let (ok, out) = explain(&["POST", "/Users"], Some(okta_user("ANN@example.com", None)));
    assert!(!ok && out.contains("userName \"ANN@example.com\" is already taken"), "{out}");

    let (ok, out) = explain(&["--dn", &format!("uid=ann@example.com,{PEOPLE}")], None);
    assert!(ok, "{out}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((shown["id"].as_str(), shown["userName"].as_str()), (Some(id.as_str()), Some("ann@example.com")));

    assert_eq!(slapd.search(PEOPLE, "(objectClass=*)").await.len(), before, "explain wrote nothing");
    assert!(slapd.entry(&format!("uid=ann@example.com,{PEOPLE}")).await.is_some());
}
