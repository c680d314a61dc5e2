//! Fault test: under a bounded mixed load (creates with a password, PATCHes, PUTs, group
//! member adds) slapd is
//! killed (SIGKILL) and restarted. The gateway process never crashes, answers 503 rather than
//! hanging while slapd is down, recovers by itself within seconds, and everything it
//! acknowledged with a 2xx is in the directory afterwards.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::{config_text, okta_user, Answer, TestGateway, PEOPLE};
use common::process::GatewayProcess;
use common::Slapd;
use serde_json::{json, Value};

const WORKERS: usize = 6;
/// Requests one worker may send at most, whatever the timing.
const MAX_REQUESTS: usize = 3000;
/// What an IdP waits after a 503 here (shorter than Retry-After, to keep the load up).
const PAUSE_AFTER_503: Duration = Duration::from_millis(50);
/// The longest the load goes on after slapd is back, waiting for acknowledgements.
const RECOVERY_WAIT: Duration = Duration::from_secs(30);

enum Outcome {
    Acked,
    Unavailable,
    Other(String),
}

struct Event {
    started: Instant,
    finished: Instant,
    outcome: Outcome,
}

/// A user whose create was acknowledged, the last title value acknowledged for it, and
/// whether adding it to the group was.
struct User {
    user_name: String,
    id: String,
    acked_title: u32,
    acked_member: bool,
}

/// One request, never longer than 10 s, never a panic: a hang or a broken connection is an outcome.
async fn send(gw: &Arc<TestGateway>, method: &'static str, path: String, body: Value) -> (Event, Option<Answer>) {
    let started = Instant::now();
    let client = gw.clone();
    let task = tokio::spawn(async move { client.call(method, &path, Some(&body), None).await });
    let (outcome, answer) = match tokio::time::timeout(Duration::from_secs(10), task).await {
        Ok(Ok(a)) if a.status.is_success() => (Outcome::Acked, Some(a)),
        Ok(Ok(a)) if a.status == 503 && a.header("retry-after").is_some() => (Outcome::Unavailable, Some(a)),
        Ok(Ok(a)) => (Outcome::Other(format!("{method} {}: {}", a.status, a.body)), Some(a)),
        Ok(Err(e)) => (Outcome::Other(format!("{method}: connection failed: {e}")), None),
        Err(_) => (Outcome::Other(format!("{method}: no answer within 10 s")), None),
    };
    (Event { started, finished: Instant::now(), outcome }, answer)
}

/// Creates users, updates their title (PATCH 1, PUT 2, PATCH 3) and adds them to `group`,
/// until told to stop.
async fn worker(gw: Arc<TestGateway>, w: usize, group: String, run: Arc<Run>) -> (Vec<Event>, Vec<User>) {
    let (mut events, mut users) = (Vec::new(), Vec::new());
    let patch = |title: &str| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "title", "value": title}]})
    };
    for i in 0.. {
        if run.stop.load(Ordering::Relaxed) || events.len() >= MAX_REQUESTS {
            break;
        }
        let user_name = format!("fault-{w}-{i}@example.com");
        let (event, answer) = send(&gw, "POST", "/Users".into(), okta_user(&user_name, Some("Fault-pass-1"))).await;
        let created = matches!(event.outcome, Outcome::Acked);
        run.settle(&event).await;
        events.push(event);
        let Some(id) = answer.filter(|_| created).and_then(|a| a.body["id"].as_str().map(str::to_owned)) else {
            continue;
        };
        let mut user = User { user_name, id, acked_title: 0, acked_member: false };
        let mut put = okta_user(&user.user_name, None);
        put["title"] = "2".into();
        for (title, method, body) in [(1, "PATCH", patch("1")), (2, "PUT", put), (3, "PATCH", patch("3"))] {
            let (event, _) = send(&gw, method, format!("/Users/{}", user.id), body).await;
            if matches!(event.outcome, Outcome::Acked) {
                user.acked_title = title;
            }
            run.settle(&event).await;
            events.push(event);
        }
        let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                         "Operations": [{"op": "add", "path": "members", "value": [{"value": user.id}]}]});
        let (event, _) = send(&gw, "PATCH", format!("/Groups/{group}"), add).await;
        user.acked_member = matches!(event.outcome, Outcome::Acked);
        run.settle(&event).await;
        events.push(event);
        users.push(user);
    }
    (events, users)
}

/// What the workers share: the stop sign, and how many answers were acknowledgements, so the
/// test can wait for the gateway's recovery instead of guessing how long it takes on a busy machine.
#[derive(Default)]
struct Run {
    stop: AtomicBool,
    acks: AtomicUsize,
}

impl Run {
    /// Counts an acknowledgement; backs off a little after a 503, as an IdP does.
    async fn settle(&self, event: &Event) {
        match event.outcome {
            Outcome::Acked => drop(self.acks.fetch_add(1, Ordering::Relaxed)),
            Outcome::Unavailable => tokio::time::sleep(PAUSE_AFTER_503).await,
            Outcome::Other(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_killed_and_restarted_under_load() {
    let slapd = Arc::new(Slapd::start());
    let config = config_text(&slapd, |t| {
        t.replace("connect_timeout_secs = 5", "connect_timeout_secs = 2")
            .replace("operation_timeout_secs = 10", "operation_timeout_secs = 2")
            .replace("request_timeout_secs = 30", "request_timeout_secs = 5")
    });
    let mut gateway = GatewayProcess::spawn(&config);
    let gw = Arc::new(gateway.client());
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "fault"});
    let group = gw.post("/Groups", &group).await;
    assert_eq!(group.status, 201, "{:#}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let run = Arc::new(Run::default());
    let workers: Vec<_> =
        (0..WORKERS).map(|w| tokio::spawn(worker(gw.clone(), w, group_id.clone(), run.clone()))).collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = slapd.clone();
    tokio::task::spawn_blocking(move || s.kill()).await.unwrap();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarting = Instant::now();
    let s = slapd.clone();
    tokio::task::spawn_blocking(move || s.restart()).await.unwrap();
    let up = Instant::now();
    let acks_at_up = run.acks.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // On a loaded machine recovery can take longer than 3 s: keep the load on until every
    // worker has had a chance to be acknowledged again, for RECOVERY_WAIT at most.
    while run.acks.load(Ordering::Relaxed) < acks_at_up + 2 * WORKERS && up.elapsed() < RECOVERY_WAIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.stop.store(true, Ordering::Relaxed);

    let (mut events, mut users) = (Vec::new(), Vec::new());
    for w in workers {
        let (e, u) = w.await.expect("worker");
        events.extend(e);
        users.extend(u);
    }
    assert!(gateway.is_running(), "the gateway process died");

    let count = |f: &dyn Fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
    let acked = count(&|e| matches!(e.outcome, Outcome::Acked));
    let unavailable = count(&|e| matches!(e.outcome, Outcome::Unavailable));
    let other: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.outcome {
            Outcome::Other(what) => Some(what.as_str()),
            _ => None,
        })
        .collect();
    let while_down: Vec<&Event> = events.iter().filter(|e| e.started >= down && e.finished <= restarting).collect();
    let slowest_down = while_down.iter().map(|e| e.finished - e.started).max().unwrap_or_default();
    let recovered = events
        .iter()
        .filter(|e| e.started >= up && matches!(e.outcome, Outcome::Acked))
        .map(|e| e.finished - up)
        .min()
        .expect("no request succeeded after slapd came back");
    println!(
        "fault test: {} requests: {acked} acknowledged, {unavailable} answered 503, {} other; while slapd was down: \
         {} requests, all 503, slowest answer {slowest_down:?}; first acknowledgement {recovered:?} after slapd answered \
         again; {} users created",
        events.len(),
        other.len(),
        while_down.len(),
        users.len()
    );
    assert!(other.is_empty(), "unexpected answers: {other:#?}");
    assert!(!while_down.is_empty(), "no request was sent while slapd was down");
    assert!(while_down.iter().all(|e| matches!(e.outcome, Outcome::Unavailable)));
    // Reconnects back off 2 s at most; 30 s leaves room for requests stuck in their timeouts
    // on a loaded machine and still catches a gateway that needs a restart.
    assert!(recovered < Duration::from_secs(30), "recovered only after {recovered:?}");

    // Everything acknowledged is in the directory: each user, with at least its last
    // acknowledged title (a later update that got a 503 may still have been applied), and
    // in the group when adding it was acknowledged.
    let entries = slapd.search(PEOPLE, "(uid=fault-*)").await;
    let found: HashMap<&str, &ldap3::SearchEntry> = entries.iter().map(|e| (e.attrs["uid"][0].as_str(), e)).collect();
    let group = slapd.entry("cn=fault,ou=groups,dc=example,dc=test").await.expect("the group");
    let members: HashSet<String> = group.attrs["member"].iter().map(|m| m.to_lowercase()).collect();
    let acked_members = users.iter().filter(|u| u.acked_member).count();
    println!("fault test: {acked_members} acknowledged group adds, {} members in the directory", members.len());
    for u in &users {
        let dn = format!("uid={},{PEOPLE}", u.user_name).to_lowercase();
        assert!(!u.acked_member || members.contains(&dn), "{} was acknowledged as a member, is not one", u.user_name);
        let entry =
            found.get(u.user_name.as_str()).unwrap_or_else(|| panic!("{} was acknowledged, not stored", u.user_name));
        assert_eq!(entry.attrs["entryUUID"], [u.id.as_str()]);
        let title: u32 = entry.attrs.get("title").map_or(0, |t| t[0].parse().unwrap());
        assert!(title >= u.acked_title, "{}: title {title}, acknowledged {}", u.user_name, u.acked_title);
    }
    assert_eq!(gw.post("/Users", &okta_user("after-the-fault@example.com", None)).await.status, 201);
}
