//! Several targets in one gateway: two directories, each behind its own base path, tokens and
//! mapping; metrics and audit lines name the target; SIGHUP reloads every target.

use crate::common;

use std::time::{Duration, Instant};

use common::gateway::{config_text, okta_user, TestGateway, PEOPLE, TOKEN};
use common::process::GatewayProcess;
use common::Slapd;
use serde_json::json;

/// A second target, `acme`, in front of `slapd` with its own token and a small mapping that
/// keeps only the local part of the userName.
fn acme_target(slapd: &Slapd, token: &str) -> String {
    target_text(&slapd.service_password, token).replace("{url}", &slapd.url)
}

/// The `acme` target's text, its directory URL left as `{url}`.
fn target_text(password: &str, token: &str) -> String {
    format!(
        r#"
[[targets]]
name = "acme"
base_path = "/acme/scim/v2"

[[targets.auth.bearer]]
name = "acme-okta"
token = "{token}"

[targets.directory]
url = "{{url}}"
bind_dn = "cn=scim-gateway,ou=services,dc=example,dc=test"
bind_password = "{password}"

[targets.cache]
enabled = false

[targets.users]
base_dn = "{PEOPLE}"
filter = "(objectClass=inetOrgPerson)"
rdn_attribute = "uid"
object_classes = ["inetOrgPerson"]
deactivation = {{ strategy = "ppolicy" }}

[[targets.users.attribute]]
scim = "userName"
ldap = "uid"
replace = ["@.*$", ""]

[[targets.users.attribute]]
scim = "name.familyName"
ldap = "sn"

[[targets.users.attribute]]
ldap = "cn"
template = "{{name.givenName}} {{name.familyName}}"
"#
    )
}

#[tokio::test]
async fn two_directories_behind_one_gateway() {
    let (a, b) = (Slapd::start(), Slapd::start());
    let config = config_text(&a, |t| t + &acme_target(&b, "acme-token-1"));
    let gw = GatewayProcess::spawn(&config);
    let default = gw.client();
    let acme = TestGateway::remote(format!("http://127.0.0.1:{}/acme/scim/v2", gw.port));
    let bearer = |t: &str| format!("Bearer {t}");
    let acme_call = async |method: &str, path: &str, body: Option<&serde_json::Value>, token: &str| {
        acme.call(method, path, body, Some(&bearer(token))).await
    };

    // Each target writes to its own directory, through its own mapping.
    let created = default.post("/Users", &okta_user("ann@example.com", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let created = acme_call("POST", "/Users", Some(&okta_user("bob@example.com", None)), "acme-token-1").await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["userName"], "bob");
    assert!(created.header("location").unwrap().contains("/acme/scim/v2/Users/"), "{:?}", created.headers);
    assert!(a.entry(&format!("uid=ann@example.com,{PEOPLE}")).await.is_some());
    assert!(b.entry(&format!("uid=ann@example.com,{PEOPLE}")).await.is_none());
    assert!(b.entry(&format!("uid=bob,{PEOPLE}")).await.is_some());
    assert!(a.entry(&format!("uid=bob,{PEOPLE}")).await.is_none());
    let listed = acme_call("GET", "/Users", None, "acme-token-1").await;
    assert_eq!(listed.body["totalResults"], 1, "{:#}", listed.body);
    let schema = acme_call("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", None, "acme-token-1").await;
    let names: Vec<&str> =
        schema.body["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"emails"), "acme maps no emails: {names:?}");

    // Credentials are per target.
    acme_call("GET", "/Users", None, TOKEN).await.assert_error(401, None);
    default.call("GET", "/Users", None, Some(&bearer("acme-token-1"))).await.assert_error(401, None);

    // Metrics and audit lines name the target.
    let scrape = default.scrape().await;
    let acme_posts = scrape.sum(
        "scim_gateway_http_request_duration_seconds_count",
        &[("target", "acme"), ("method", "POST"), ("route", "/Users")],
    );
    assert_eq!(acme_posts, 1.0);
    assert_eq!(
        scrape.sum("scim_gateway_http_request_duration_seconds_count", &[("target", "default"), ("method", "POST")]),
        1.0
    );
    // Without colours: the log is for a terminal.
    let log = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap().replace_all(&gw.log(), "").into_owned();
    let audit = |target: &str| log.lines().any(|l| l.contains("audit") && l.contains(&format!("target_name={target}")));
    assert!(audit("acme") && audit("default"), "{log}");

    // SIGHUP reloads the targets too: acme's token rotates.
    std::fs::write(gw.config_path(), config_text(&a, |t| t + &acme_target(&b, "acme-token-2"))).unwrap();
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while acme_call("GET", "/Users", None, "acme-token-2").await.status != 200 {
        assert!(Instant::now() < deadline, "the new acme token was not accepted after SIGHUP:\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    acme_call("GET", "/Users", None, "acme-token-1").await.assert_error(401, None);
    assert_eq!(default.get("/Users").await.status, 200);
    let me = json!({"op": "replace", "value": {"active": false}});
    let id = created.body["id"].as_str().unwrap();
    let patched = acme_call(
        "PATCH",
        &format!("/Users/{id}"),
        Some(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [me]})),
        "acme-token-2",
    )
    .await;
    assert_eq!(patched.status, 200, "{:#}", patched.body);
    assert_eq!(patched.body["active"], false);
}

#[test]
fn target_mistakes_name_their_line() {
    let shipped = include_str!("../../gateway.toml").to_owned();
    let slapd = |t: String| t.replace("{url}", "ldap://127.0.0.1:1");
    let good = shipped.clone() + &slapd(target_text("pw", "t-1"));
    let loaded = scim_gateway::config::Loaded::parse("g.toml", good.clone()).unwrap();
    scim_gateway::Gateway::new(&loaded).unwrap();
    let line_of = |text: &str, needle: &str| text[..text.rfind(needle).unwrap()].matches('\n').count() + 1;
    for (bad, needle, why) in [
        (
            good.replace("base_path = \"/acme/scim/v2\"", "base_path = \"/scim/v2\""),
            "name = \"acme\"",
            "repeats the name or base_path",
        ),
        (good.replace("name = \"acme\"", "name = \"default\""), "name = \"default\"", "repeats the name"),
        // In the target's own rules (the last ones in the file).
        (replace_last(&good, "scim = \"name.familyName\"", "scim = \"name.nope\""), "name.nope", "no sub-attribute"),
    ] {
        let err = scim_gateway::config::Loaded::parse("g.toml", bad.clone())
            .map_err(|e| e.to_string())
            .and_then(|l| scim_gateway::Gateway::new(&l).map(drop).map_err(|e| e.to_string()))
            .unwrap_err();
        assert!(err.contains(why), "{err}");
        assert!(err.contains(&format!("g.toml:{}:", line_of(&bad, needle))), "{err}");
    }
}

fn replace_last(text: &str, from: &str, to: &str) -> String {
    let at = text.rfind(from).unwrap();
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

/// `scim-gateway ARGS -c FILE` with `config` as the file: (success, stdout + stderr).
fn run(args: &[&str], config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, okta_user("carl@example.com", None).to_string()).unwrap();
    let args: Vec<&str> = args.iter().map(|a| if *a == "BODY" { body.to_str().unwrap() } else { a }).collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scim-gateway"))
        .args(&args)
        .arg("-c")
        .arg(&path)
        .env_remove("SCIM_GATEWAY_CONFIG")
        .output()
        .expect("run scim-gateway");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.replace(path.to_str().unwrap(), "gateway.toml"))
}

#[tokio::test]
async fn check_binds_every_target_and_explain_asks_the_one_named() {
    let (a, b) = (Slapd::start(), Slapd::start());
    let config = config_text(&a, |t| t + &acme_target(&b, "acme-token-1"));
    let (ok, out) = run(&["check"], &config);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("configuration valid; bound to {}", a.url)), "{out}");
    assert!(out.contains(&format!("[[targets]] acme: bound to {}", b.url)), "{out}");

    // A target whose directory is down fails the check, by name.
    let dead = config_text(&a, |t| t + &target_text(&b.service_password, "acme-token-1"))
        .replace("{url}", "ldap://127.0.0.1:1");
    let (ok, out) = run(&["check"], &dead);
    assert!(!ok && out.contains("[[targets]] acme: directory:"), "{out}");

    // explain --target runs the request through that target's mapping, over its directory.
    let before = b.search(PEOPLE, "(objectClass=*)").await.len();
    let (ok, out) = run(&["explain", "--target", "acme", "POST", "/Users", "--body", "BODY"], &config);
    assert!(ok, "{out}");
    assert!(out.starts_with(&format!("dn: uid=carl,{PEOPLE}\nchangetype: add\n")), "{out}");
    let (ok, out) = run(&["explain", "POST", "/Users", "--body", "BODY"], &config);
    assert!(ok && out.starts_with(&format!("dn: uid=carl@example.com,{PEOPLE}\n")), "{out}");
    let (ok, out) = run(&["explain", "--target", "nope", "POST", "/Users", "--body", "BODY"], &config);
    assert!(!ok && out.contains("no target is called \"nope\": the targets are default, acme"), "{out}");
    assert_eq!(b.search(PEOPLE, "(objectClass=*)").await.len(), before, "explain wrote nothing");
}
