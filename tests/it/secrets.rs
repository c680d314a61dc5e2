//! No token, bind password or user password appears in the logs or answers of a full flow,
//! with every log level on (the gateway's own and, through the log bridge, ldap3's).

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::gateway::{okta_user, TestGateway, TOKEN};
use common::Slapd;
use serde_json::json;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The capture is this test's alone: the other tests of the `it` binary run their gateways
/// in the same process, and their lines (audit lines among them) must not land in it. So it
/// is not the global subscriber but the default of this test's runtime: its one thread, where
/// the in-process gateway's tasks run, and its blocking pool (CPU-bound PATCH work). ldap3's
/// `log` records reach it through the bridge, which follows the current default.
///
/// tracing-core decides whether a callsite is on once, when some thread first reaches it, and
/// while a single dispatcher is registered it asks only *that thread's* default. A span first
/// reached by another test's thread (which has none) would then be off for this capture too:
/// audit lines without their request span, no `caller` (seen once in a full local run). A second registered
/// dispatcher, kept for the test's life, makes tracing-core ask every registered one.
#[test]
fn secrets_stay_out_of_logs_and_answers() {
    let _ask_every_dispatcher = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let logs = Captured::default();
    let writer = logs.clone();
    let capture: tracing::Dispatch = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .into();
    let _this_thread = capture.clone().set_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // A pool thread keeps the capture for its life, which ends with the runtime's.
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&capture)))
        .build()
        .unwrap();
    runtime.block_on(flow(logs));
}

async fn flow(logs: Captured) {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let (first_pw, second_pw) = ("Very-Secret-Pw-1", "Even-More-Secret-2");
    let mut answers = String::new();
    let created = gw.post("/Users", &okta_user("sec@example.com", Some(first_pw))).await;
    assert_eq!(created.status, 201);
    answers += &created.body.to_string();
    let id = created.body["id"].as_str().unwrap().to_owned();
    for a in [
        gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"password": second_pw}}])).await,
        gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"password": 12}}])).await,
        gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": false}}])).await,
        gw.put(&format!("/Users/{id}"), &okta_user("sec@example.com", Some(second_pw))).await,
        gw.post("/Users", &okta_user("sec@example.com", Some(first_pw))).await,
        gw.call("GET", "/Users", None, Some(&format!("Bearer {TOKEN}x"))).await,
        gw.call("GET", "/Users", None, Some(&format!("Basic {TOKEN}"))).await,
    ] {
        answers += &a.body.to_string();
    }
    // A gateway whose bind password is wrong logs the failure, not the password.
    let wrong_bind = "Wrong-Bind-Password-9";
    let bad = TestGateway::start_with(&slapd, |t| {
        t.replace(&format!("\"{}\"", slapd.service_password), &format!("\"{wrong_bind}\""))
    })
    .await;
    answers += &bad.get("/Users").await.body.to_string();
    bad.stop().await;
    gw.stop().await;

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("caller=okta") || logs.contains("caller=\"okta\""),
        "the capture works and names callers: {logs}"
    );
    assert!(logs.contains("could not bind"), "the bind failure is logged");
    for secret in [TOKEN, first_pw, second_pw, wrong_bind, slapd.service_password.as_str()] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
        assert!(!answers.contains(secret), "{secret} appears in an answer");
    }

    // One audit line per write: the caller, the action, the id and the attribute names, no value.
    let audit: Vec<&str> = logs.lines().filter(|l| l.contains(" audit: ")).collect();
    let line = |action: &str, attribute: &str| {
        audit.iter().any(|l| {
            l.contains("caller=\"okta\"")
                && l.contains(&format!("action=\"{action}\""))
                && l.contains(&id)
                && l.contains(attribute)
        })
    };
    assert!(line("create", "password") && line("create", "uid,"), "{audit:#?}");
    assert!(line("update", "password") && line("update", "pwdAccountLockedTime"), "{audit:#?}");
    assert_eq!(audit.len(), 4, "create, password, deactivation, PUT (its password): {audit:#?}");
    for value in ["sec@example.com", "John", "Doe", "00u1abcd2EFGH3ijk4l5"] {
        assert!(!audit.iter().any(|l| l.contains(value)), "{value} appears in an audit line");
    }
}
