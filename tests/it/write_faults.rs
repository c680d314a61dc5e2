//! Write integrity under faults: a matrix of every write kind × every step k of its LDAP
//! operations × each fault ([`Fault`]: stall past the timeouts, connection reset, refusal),
//! injected by a proxy between the gateway process and slapd. After each cell the directory
//! itself is read (as the rootdn, around the proxy): the subject is entirely as before or
//! entirely as requested (a password that binds counts as part of it), a 2xx means all of it,
//! whatever landed has an audit line with the request's id, and after a 2xx the gateway's
//! cache serves the new state. One slapd, proxy and gateway per kind; kinds run in parallel.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::fault::{FaultProxy, FAULTS};
use common::gateway::{config_text, okta_user, Answer, TestGateway};
use common::process::GatewayProcess;
use common::Slapd;
use serde_json::{json, Value};

const OLD_PASSWORD: &str = "Old-pass-1";
const NEW_PASSWORD: &str = "New-pass-2";
const LATE: &str = "write finished after its answer";

#[derive(Debug, Clone, Copy)]
enum Kind {
    CreateUser,
    PutRename,
    PatchUser,
    DeleteUser,
    CreateGroup,
    PatchMembers,
    RenameGroup,
}

/// What a cell's subject is: the ids its request names.
struct Subject {
    /// The user or group the request writes (None for a create).
    id: Option<String>,
    /// Users created for it, by short name.
    users: BTreeMap<&'static str, String>,
}

struct Matrix {
    kind: Kind,
    slapd: Slapd,
    proxy: FaultProxy,
    process: GatewayProcess,
    gw: TestGateway,
}

impl Matrix {
    async fn start(kind: Kind) -> Matrix {
        let slapd = Slapd::start();
        let proxy = FaultProxy::start(&slapd.url).await;
        let text = config_text(&slapd, |t| {
            t.replace(&slapd.url, &proxy.url)
                // A stalled operation outlives its request (operation timeout above the
                // request's), so the write runs on after a 503; both leave room for the
                // set-up writes of seven matrices sharing a loaded machine.
                .replace("request_timeout_secs = 30", "request_timeout_secs = 3")
                .replace("operation_timeout_secs = 10", "operation_timeout_secs = 5")
                .replace("idle_check_secs = 30", "idle_check_secs = 3600")
                .replace("pool_size = 4", "pool_size = 1")
                .replace("user_groups = \"member_of\" }", "user_groups = \"member_of\", remove_deleted_users = true }")
        });
        let process = GatewayProcess::spawn(&text);
        let gw = process.client();
        Matrix { kind, slapd, proxy, process, gw }
    }

    /// A user `c{n}-{name}@example.com` with the old password, through the gateway.
    async fn user(&self, n: usize, name: &str) -> String {
        let mut body = okta_user(&format!("c{n}-{name}@example.com"), Some(OLD_PASSWORD));
        body["title"] = "Old".into();
        let a = self.gw.post("/Users", &body).await;
        assert_eq!(a.status, 201, "{:#}", a.body);
        a.body["id"].as_str().unwrap().to_owned()
    }

    async fn group(&self, n: usize, members: &[&String]) -> String {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                          "displayName": format!("c{n}-group"), "externalId": "old", "members": members});
        let a = self.gw.post("/Groups", &body).await;
        assert_eq!(a.status, 201, "{:#}", a.body);
        a.body["id"].as_str().unwrap().to_owned()
    }

    async fn prepare(&self, n: usize) -> Subject {
        let mut users = BTreeMap::new();
        let id = match self.kind {
            Kind::CreateUser => None,
            Kind::PutRename | Kind::PatchUser => Some(self.user(n, "old").await),
            Kind::DeleteUser => {
                let (u, other) = (self.user(n, "old").await, self.user(n, "other").await);
                self.group(n, &[&u, &other]).await;
                Some(u)
            }
            Kind::CreateGroup | Kind::PatchMembers | Kind::RenameGroup => {
                for name in ["a", "b", "c"] {
                    users.insert(name, self.user(n, name).await);
                }
                match self.kind {
                    Kind::CreateGroup => None,
                    _ => Some(self.group(n, &[&users["a"]]).await),
                }
            }
        };
        Subject { id, users }
    }

    async fn request(&self, n: usize, s: &Subject, request_id: &str) -> Answer {
        let patch =
            |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let id = s.id.clone().unwrap_or_default();
        let (method, path, body) = match self.kind {
            Kind::CreateUser => {
                let mut body = okta_user(&format!("c{n}-new@example.com"), Some(NEW_PASSWORD));
                body["title"] = "New".into();
                ("POST", "/Users".to_owned(), Some(body))
            }
            Kind::PutRename => {
                let mut body = okta_user(&format!("c{n}-new@example.com"), Some(NEW_PASSWORD));
                body["title"] = "New".into();
                ("PUT", format!("/Users/{id}"), Some(body))
            }
            Kind::PatchUser => (
                "PATCH",
                format!("/Users/{id}"),
                Some(patch(json!([
                    {"op": "replace", "path": "title", "value": "New"},
                    {"op": "replace", "path": "emails[type eq \"work\"].value", "value": format!("c{n}-new@example.com")},
                    {"op": "replace", "path": "name.givenName", "value": "Neo"},
                    {"op": "replace", "path": "password", "value": NEW_PASSWORD},
                ]))),
            ),
            Kind::DeleteUser => ("DELETE", format!("/Users/{id}"), None),
            Kind::CreateGroup => {
                let members: Vec<Value> = s.users.values().map(|id| json!({"value": id})).collect();
                let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                  "displayName": format!("c{n}-new"), "externalId": "new", "members": members});
                ("POST", "/Groups".to_owned(), Some(body))
            }
            Kind::PatchMembers => (
                "PATCH",
                format!("/Groups/{id}"),
                Some(patch(json!([
                    {"op": "add", "path": "members", "value": [{"value": s.users["b"]}]},
                    {"op": "remove", "path": format!("members[value eq \"{}\"]", s.users["a"])},
                    {"op": "add", "path": "members", "value": [{"value": s.users["c"]}]},
                ]))),
            ),
            Kind::RenameGroup => (
                "PATCH",
                format!("/Groups/{id}"),
                Some(patch(
                    json!([{"op": "replace", "value": {"displayName": format!("c{n}-new"), "externalId": "new"}}]),
                )),
            ),
        };
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.gw.raw(method, &path, bytes, None, &[("x-request-id", request_id)]).await
    }

    /// The cell's entries as the directory holds them, with `c{n}-` written as `c#-` so that
    /// cells compare, and whether each user binds with the new password.
    async fn state(&self, n: usize) -> BTreeMap<String, Vec<String>> {
        const ATTRS: [&str; 10] =
            ["uid", "cn", "title", "mail", "givenName", "sn", "description", "member", "memberOf", "displayName"];
        let filter = format!("(|(uid=c{n}-*)(cn=c{n}-*))");
        let norm = |v: &str| v.replace(&format!("c{n}-"), "c#-");
        let mut state = BTreeMap::new();
        for e in self.slapd.search(&self.slapd.base_dn, &filter).await {
            let dn = norm(&e.dn);
            for a in ATTRS {
                if let Some(values) = e.attrs.get(a) {
                    let mut values: Vec<String> = values.iter().map(|v| norm(v).to_lowercase()).collect();
                    values.sort();
                    state.insert(format!("{dn} {a}"), values);
                }
            }
            if e.attrs.contains_key("uid") {
                state.insert(
                    format!("{dn} binds-new-password"),
                    vec![self.slapd.can_bind(&e.dn, NEW_PASSWORD).await.to_string()],
                );
            }
        }
        state
    }

    /// Waits until the gateway's log shows `count` writes finished after their answers.
    async fn settle(&self, late: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.process.log().matches(LATE).count() < late {
            assert!(Instant::now() < deadline, "a write still running 20 s after its answer:\n{}", self.process.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// After a 2xx the gateway (its cache included) shows what the directory holds.
    async fn check_served(&self, s: &Subject, created: &Answer, n: usize) {
        let path = match (self.kind, &s.id) {
            (Kind::CreateUser, _) => format!("/Users/{}", created.body["id"].as_str().unwrap()),
            (Kind::CreateGroup, _) => format!("/Groups/{}", created.body["id"].as_str().unwrap()),
            (Kind::PutRename | Kind::PatchUser | Kind::DeleteUser, Some(id)) => format!("/Users/{id}"),
            (_, Some(id)) => format!("/Groups/{id}"),
            (_, None) => unreachable!(),
        };
        let got = self.gw.get(&path).await;
        match self.kind {
            Kind::DeleteUser => assert_eq!(got.status, 404, "deleted, yet served: {:#}", got.body),
            Kind::CreateUser | Kind::PutRename | Kind::PatchUser => {
                assert_eq!(got.body["title"], "New", "{:#}", got.body);
                if !matches!(self.kind, Kind::PatchUser) {
                    assert_eq!(got.body["userName"], format!("c{n}-new@example.com"));
                }
            }
            Kind::CreateGroup | Kind::RenameGroup => assert_eq!(got.body["displayName"], format!("c{n}-new")),
            Kind::PatchMembers => {
                let mut want = vec![s.users["b"].clone(), s.users["c"].clone()];
                want.sort();
                assert_eq!(common::gateway::member_ids(&got.body), want);
            }
        }
    }
}

/// The audit lines of one request.
fn audit_lines(log: &str, request_id: &str) -> Vec<String> {
    log.lines().filter(|l| l.contains(" audit: ") && l.contains(request_id)).map(str::to_owned).collect()
}

async fn matrix(kind: Kind) {
    let started = Instant::now();
    let m = Matrix::start(kind).await;
    // The control: no fault. Its before and after are what every cell must end in.
    let subject = m.prepare(0).await;
    let before = m.state(0).await;
    m.proxy.count_from_now();
    let answer = m.request(0, &subject, "control").await;
    assert!(answer.status.is_success(), "{kind:?} without a fault: {} {:#}", answer.status, answer.body);
    let (steps, _) = m.proxy.seen();
    let ops = m.proxy.ops();
    let requested = m.state(0).await;
    assert_ne!(before, requested, "{kind:?}: the request changes nothing");
    m.check_served(&subject, &answer, 0).await;

    let (mut n, mut late, mut failures) = (0, 0, Vec::new());
    let mut tally = BTreeMap::<String, usize>::new();
    for k in 1..=steps {
        for fault in FAULTS {
            n += 1;
            let subject = m.prepare(n).await;
            let cell_before = m.state(n).await;
            assert_eq!(cell_before, before, "{kind:?} cell {n}: prepared differently from the control");
            let request_id = format!("cell-{kind:?}-{k}-{fault:?}-{n}");
            m.proxy.arm(k, fault);
            let answer = m.request(n, &subject, &request_id).await;
            let timed_out = answer.status == 503
                && answer.body["detail"].as_str().is_some_and(|d| d.contains("request_timeout_secs"));
            if timed_out {
                late += 1;
                m.settle(late).await;
            }
            m.proxy.count_from_now();
            let after = m.state(n).await;
            let cell = format!("{kind:?} k={k} ({}) {fault:?}: answered {}", ops[k - 1], answer.status);
            let whole = if after == requested {
                "as requested"
            } else if after == before {
                "as before"
            } else {
                failures.push(format!(
                    "{cell}: half-written\n  before {before:?}\n  after  {after:?}\n  wanted {requested:?}"
                ));
                continue;
            };
            *tally.entry(format!("{} → {whole}", answer.status.as_u16())).or_default() += 1;
            if answer.status.is_success() && whole != "as requested" {
                failures.push(format!("{cell}: a 2xx, but the directory is as before"));
            }
            let audit = audit_lines(&m.process.log(), &request_id);
            let written = audit.iter().any(|l| l.contains("outcome=\"written\"") || l.contains("outcome=\"partial\""));
            if whole == "as requested" && !written {
                failures.push(format!("{cell}: landed without an audit line saying so: {audit:?}"));
            }
            if whole == "as before" && written {
                let log = m.process.log();
                let all: Vec<&str> = log.lines().filter(|l| l.contains(&request_id)).collect();
                failures.push(format!("{cell}: an audit line says written, the directory is as before: {all:#?}"));
            }
            if audit.iter().any(|l| l.contains("after_answer=true")) {
                *tally.entry("audited after the answer".into()).or_default() += 1;
            }
            if answer.status.is_success() {
                m.check_served(&subject, &answer, n).await;
            }
        }
    }
    eprintln!(
        "{kind:?}: {steps} steps ({ops:?}) × {} faults = {n} cells in {:.1} s: {tally:?}",
        FAULTS.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{kind:?}: {} of {n} cells failed:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_with_password() {
    matrix(Kind::CreateUser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_put_with_rename_and_password() {
    matrix(Kind::PutRename).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_patch_of_several_attributes_and_password() {
    matrix(Kind::PatchUser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_delete_with_group_clean_up() {
    matrix(Kind::DeleteUser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_create_with_members() {
    matrix(Kind::CreateGroup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_membership_patch() {
    matrix(Kind::PatchMembers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_rename() {
    matrix(Kind::RenameGroup).await;
}

/// SIGTERM right after a create's answer came back 503 (its add's answer withheld): the process
/// waits for the write that is still running, so the directory ends whole, and it says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_write_running_after_its_answer() {
    let mut m = Matrix::start(Kind::CreateUser).await;
    let subject = m.prepare(1).await;
    let before = m.state(1).await;
    // The control names the steps; the fault withholds the add's answer.
    m.proxy.count_from_now();
    let control = m.request(0, &subject, "control").await;
    assert_eq!(control.status, 201, "{:#}", control.body);
    let add = m.proxy.ops().iter().position(|op| *op == "add").expect("a create adds") + 1;
    m.proxy.arm(add, common::fault::Fault::Stall);
    let answer = m.request(1, &subject, "cut-by-shutdown").await;
    assert_eq!(answer.status, 503, "{:#}", answer.body);
    m.process.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.process.is_running() {
        assert!(Instant::now() < deadline, "still running 20 s after SIGTERM:\n{}", m.process.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = m.state(1).await;
    assert!(after == before, "the create, cut by shutdown, left {after:?}");
    let log = m.process.log();
    let audit = audit_lines(&log, "cut-by-shutdown");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0].contains("outcome=\"undone\""), "{audit:?}");
    assert!(log.lines().any(|l| l.contains(LATE) && l.contains("cut-by-shutdown")), "{log}");
    assert!(log.contains("waiting for writes still running after their answer"), "{log}");
}
