//! Derived account names that never refuse a real person, on OpenLDAP through the shipped
//! presets/openldap-posix.toml: uid is derived from the userName (cut to 32 characters, plus
//! addressing dropped, folded to ASCII) and made unique with numbered candidates. Every value is
//! read back from slapd itself. Two gateway processes racing creates of the same derived base
//! end with distinct values and no failure.

use crate::common;

use std::collections::BTreeSet;

use common::gateway::{okta_user, q, TestGateway, PEOPLE, TOKEN};
use common::process::GatewayProcess;
use common::Slapd;
use serde_json::json;

fn posix_preset(slapd: &Slapd) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/presets/openldap-posix.toml")).unwrap();
    text.replace("${SCIM_GATEWAY_LDAP_URL}", &slapd.url)
        .replace("${SCIM_GATEWAY_TOKEN}", TOKEN)
        .replace("${SCIM_GATEWAY_BIND_PASSWORD}", &slapd.service_password)
}

/// The uid and homeDirectory of the user whose description (the userName) is `user_name`, from slapd.
async fn login(slapd: &Slapd, user_name: &str) -> (String, String) {
    let found = slapd.search(PEOPLE, &format!("(description={})", ldap3::ldap_escape(user_name))).await;
    assert_eq!(found.len(), 1, "{user_name}");
    let e = &found[0];
    assert_eq!(e.dn, format!("uid={},{PEOPLE}", e.attrs["uid"][0]), "the login names the entry");
    (e.attrs["uid"][0].clone(), e.attrs["homeDirectory"][0].clone())
}

/// A portable Unix login: what the preset's rules promise.
fn valid_login(uid: &str) -> bool {
    (1..=32).contains(&uid.chars().count())
        && uid.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && !uid.ends_with('.')
}

#[tokio::test]
async fn real_names_all_get_a_login() {
    let slapd = Slapd::start();
    let gw = TestGateway::from_text(posix_preset(&slapd)).await;
    let long = "christopher.alexander.montgomery.smithso"; // 40 characters
    assert_eq!(long.len(), 40);
    let cases = [
        (format!("{long}@example.test"), "christopher.alexander.montgomery"),
        ("jane.roe+sales@example.test".into(), "jane.roe"),
        ("Zoë.Müller@example.test".into(), "zoe.muller"),
        ("Łukasz.Żółć@example.test".into(), "lukasz.zolc"),
        ("sam@example.test".into(), "sam"),
        ("sam@sub.example.test".into(), "sam1"),
        ("SAM@other.test".into(), "sam2"),
        ("jane.roe@example.test".into(), "jane.roe1"),
    ];
    let mut logins = BTreeSet::new();
    for (i, (user_name, expected)) in cases.iter().enumerate() {
        // mail is IA5String: an ASCII work address, whatever the userName.
        let mut body = okta_user(user_name, None);
        body["emails"] = json!([{"type": "work", "primary": true, "value": format!("user{i}@example.test")}]);
        let created = gw.post("/Users", &body).await;
        assert_eq!(created.status, 201, "{user_name}: {:#}", created.body);
        assert_eq!(created.body["userName"], user_name.as_str());
        let (uid, home) = login(&slapd, user_name).await;
        assert_eq!(&uid, expected, "{user_name}");
        assert!(valid_login(&uid), "{uid}");
        assert_eq!(home, format!("/home/{uid}"), "the home directory follows the chosen login");
        assert!(logins.insert(uid), "distinct");
    }

    // Okta's lookup finds each by its userName, not by a shared local part.
    let found = gw.get(&format!("/Users?filter={}", q(r#"userName eq "sam@sub.example.test""#))).await;
    assert_eq!(found.body["totalResults"], 1, "{:#}", found.body);
    let id = found.body["Resources"][0]["id"].as_str().unwrap().to_owned();

    // A real userName conflict is a 409 that names the userName; nothing is added.
    let again = gw.post("/Users", &okta_user("sam@sub.example.test", None)).await;
    again.assert_error(409, Some("uniqueness"));
    let detail = again.body["detail"].as_str().unwrap();
    assert!(detail.contains("userName") && detail.contains("sam@sub.example.test"), "{detail}");
    assert_eq!(slapd.search(PEOPLE, "(objectClass=posixAccount)").await.len(), cases.len());

    // The login is stable: a userName change renames nothing, a title change neither.
    let moved = gw
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "userName", "value": "samuel@sub.example.test"}]),
        )
        .await;
    assert_eq!(moved.status, 200, "{:#}", moved.body);
    assert_eq!(login(&slapd, "samuel@sub.example.test").await, ("sam1".into(), "/home/sam1".into()));
    let mut body = okta_user("samuel@sub.example.test", None);
    body["title"] = "Engineer".into();
    assert_eq!(gw.put(&format!("/Users/{id}"), &body).await.status, 200);
    assert_eq!(login(&slapd, "samuel@sub.example.test").await, ("sam1".into(), "/home/sam1".into()));

    // Deleting sam frees "sam" for the next one.
    let sam = gw.get(&format!("/Users?filter={}", q(r#"userName eq "sam@example.test""#))).await;
    let sam_id = sam.body["Resources"][0]["id"].as_str().unwrap();
    assert_eq!(gw.delete(&format!("/Users/{sam_id}")).await.status, 204);
    assert_eq!(gw.post("/Users", &okta_user("sam@fourth.test", None)).await.status, 201);
    assert_eq!(login(&slapd, "sam@fourth.test").await.0, "sam");
    gw.stop().await;
}

#[tokio::test]
async fn a_taken_value_without_candidates_is_named() {
    let slapd = Slapd::start();
    // The same rule without `unique`: the directory's refusal is reported as what it is.
    let text = posix_preset(&slapd).replace("unique = { suffixes = 99 }", "");
    let gw = TestGateway::from_text(text).await;
    assert_eq!(gw.post("/Users", &okta_user("sam@example.test", None)).await.status, 201);
    let taken = gw.post("/Users", &okta_user("sam@sub.example.test", None)).await;
    taken.assert_error(400, Some("invalidValue"));
    let detail = taken.body["detail"].as_str().unwrap();
    assert_eq!(detail, r#"uid "sam" is already used by another account"#);
    assert!(!detail.contains("sub.example.test"), "no DN that does not exist: {detail}");
    assert_eq!(slapd.search(PEOPLE, "(objectClass=posixAccount)").await.len(), 1);
    gw.stop().await;
}

const PROCESSES: usize = 2;
const PER_PROCESS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_processes_pick_distinct_logins() {
    let slapd = Slapd::start();
    let processes: Vec<GatewayProcess> = (0..PROCESSES).map(|_| GatewayProcess::spawn(&posix_preset(&slapd))).collect();
    // Every user has the local part "racer": all at once.
    let elapsed = common::process::race_creates(&processes, "racer", PER_PROCESS).await;
    let entries = slapd.search(PEOPLE, "(description=racer@*)").await;
    let uids: BTreeSet<String> = entries.iter().map(|e| e.attrs["uid"][0].clone()).collect();
    assert_eq!(entries.len(), PROCESSES * PER_PROCESS);
    assert_eq!(uids.len(), entries.len(), "distinct logins: {uids:?}");
    assert!(uids.iter().all(|u| valid_login(u) && u.starts_with("racer")), "{uids:?}");
    let numbers: BTreeSet<&String> = entries.iter().map(|e| &e.attrs["uidNumber"][0]).collect();
    let retries: usize = processes.iter().map(|p| p.log().matches("taken meanwhile").count()).sum();
    println!(
        "race: {} creates from {PROCESSES} processes, all 201, {} distinct uids ({}…), {retries} candidates \
         refused by the directory and retried, {:.2} s ({} distinct uidNumbers: allocation is not part of this)",
        entries.len(),
        uids.len(),
        uids.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        elapsed.as_secs_f64(),
        numbers.len()
    );
}

#[tokio::test]
async fn explain_lists_the_candidates() {
    let slapd = Slapd::start();
    let gw = TestGateway::from_text(posix_preset(&slapd)).await;
    assert_eq!(gw.post("/Users", &okta_user("sam@example.test", None)).await.status, 201);
    gw.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, body) = (dir.path().join("gateway.toml"), dir.path().join("user.json"));
    std::fs::write(&config, posix_preset(&slapd)).unwrap();
    std::fs::write(&body, okta_user("sam@sub.example.test", None).to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scim-gateway"))
        .args(["explain", "POST", "/Users", "-c"])
        .arg(&config)
        .arg("--body")
        .arg(&body)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "# uid: candidates in order, the first no entry below {PEOPLE} holds: \"sam\", \"sam1\", \"sam2\","
        )) && first.ends_with("\"sam99\""),
        "{text}"
    );
    assert!(text.contains(&format!("dn: uid=sam1,{PEOPLE}\nchangetype: add\n")), "{text}");
    assert!(text.contains("homeDirectory: /home/sam1\n"), "{text}");
    assert_eq!(slapd.search(PEOPLE, "(objectClass=posixAccount)").await.len(), 1, "explain wrote nothing");
}
