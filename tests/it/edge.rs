//! Issue 12, the hostile client: each attack against the real binary and a real slapd, and
//! what the gateway does about it now. After every refused or hostile request the test reads
//! the directory itself to show nothing changed. Figures are printed (run with
//! `--nocapture`), compared as ratios within one run, never as absolute times.

use crate::common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::gateway::{config_text, okta_user, q, Answer, TestGateway, TOKEN};
use common::process::GatewayProcess;
use common::Slapd;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The attacks load the machine; one at a time, so that each one's figures are its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const LDAP_OPS: &str = "scim_gateway_ldap_operation_duration_seconds_count";

/// `text` with the setting `key` (commented out or not) set to `value`.
fn set(text: String, key: &str, value: &str) -> String {
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let bare = l.trim_start_matches("# ");
            if !found && (bare.starts_with(&format!("{key} =")) || bare.starts_with(&format!("{key}="))) {
                found = true;
                format!("{key} = {value}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(found, "no {key} in the configuration");
    lines.join("\n")
}

/// Every entry under the suffix, attributes sorted: equal before and after means no write.
async fn dump(slapd: &Slapd) -> Vec<String> {
    let mut entries: Vec<String> = slapd
        .search(&slapd.base_dn, "(objectClass=*)")
        .await
        .into_iter()
        .map(|e| {
            let mut attrs: Vec<String> = e
                .attrs
                .into_iter()
                .filter(|(k, _)| !["pwdLastSuccess", "authTimestamp"].contains(&k.as_str()))
                .map(|(k, mut v)| {
                    v.sort();
                    format!("{k}={v:?}")
                })
                .collect();
            attrs.sort();
            format!("{}: {}", e.dn, attrs.join(" "))
        })
        .collect();
    entries.sort();
    entries
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The gateway's resident memory in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}

/// CPU seconds (user + system) the gateway has used.
fn cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

/// A GET on a connection of its own, as a client arriving during the attack would.
async fn fresh_get(port: u16, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let client = TestGateway::remote(format!("http://127.0.0.1:{port}/scim/v2"));
    let a = client.get(path).await;
    (a.status.as_u16(), started.elapsed())
}

/// One HTTP/1.1 request written by hand; the answer's status line and the rest.
async fn by_hand(port: u16, request: String) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await.expect("answered").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server has closed `s` (reading what it sent, such as HTTP/2 SETTINGS).
/// Polls `closed` until it holds or `limit` passes: the gateway's timers start at accept,
/// which a loaded machine can delay past any fixed sleep.
async fn closes_within(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while !closed(s) {
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

fn closed(s: &mut std::net::TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Opens `n` silent sockets (every fourth sends the HTTP/2 preface and nothing more).
fn open_idle(port: u16, n: usize) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    (0..n)
        .filter_map(|i| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            if i % 4 == 0 {
                let _ = s.write_all(PREFACE);
            }
            s.set_nonblocking(true).unwrap();
            Some(s)
        })
        .collect()
}

fn user_filter(name: &str) -> String {
    format!("/Users?filter={}", q(&format!("userName eq \"{name}\"")))
}

/// Finding 1: silent sockets, HTTP/2 prefaces alone, more than the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_cap_neither_stay_nor_keep_requests_out() {
    let _serial = SERIAL.lock().await;
    common::raise_file_limit();
    let slapd = Slapd::start();
    let text = config_text(&slapd, |t| set(set(t, "max_connections", "200"), "header_read_timeout_secs", "3"));
    let gw = GatewayProcess::spawn(&text);
    let port = gw.port;
    assert_eq!(gw.client().post("/Users", &okta_user("edge@example.com", None)).await.status, 201);
    let before = dump(&slapd).await;
    let lookup = user_filter("edge@example.com");

    for _ in 0..10 {
        fresh_get(port, &lookup).await;
    }
    let mut quiet = Vec::new();
    for _ in 0..60 {
        let (status, took) = fresh_get(port, &lookup).await;
        assert_eq!(status, 200);
        quiet.push(took);
    }

    // 2,000 idle sockets, ten times the cap, then 25 more every 100 ms while requests run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready, opening) = tokio::sync::oneshot::channel();
    let attacker = tokio::task::spawn_blocking({
        let stop = stop.clone();
        move || {
            let mut held = open_idle(port, 2000);
            let mut opened = held.len();
            let _ = ready.send(());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                held.drain(..25.min(held.len()));
                let more = open_idle(port, 25);
                opened += more.len();
                held.extend(more);
                std::thread::sleep(Duration::from_millis(100));
            }
            (held, opened)
        }
    });
    opening.await.unwrap();
    let mut attacked = Vec::new();
    for _ in 0..60 {
        let (status, took) = fresh_get(port, &lookup).await;
        assert_eq!(status, 200, "a normal request during the attack");
        attacked.push(took);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut held, opened) = attacker.await.unwrap();
    let m = gw.client().scrape().await;
    let open = m.sum("scim_gateway_http_connections", &[]);
    let evicted = m.sum("scim_gateway_http_connections_ended_total", &[("reason", "evicted")]);
    assert!(open <= 200.0, "{open} connections open at a cap of 200");
    assert!(evicted > 0.0);

    // Past the first-request deadline (3 s after accept) every silent socket is closed,
    // prefaces too.
    // 8 s: room for a loaded machine, still short of the 10 s default the setting replaced.
    let end = Instant::now() + Duration::from_secs(8);
    let mut still_open = held.len();
    for s in &mut held {
        still_open -= usize::from(closes_within(s, end.saturating_duration_since(Instant::now())).await);
    }
    assert_eq!(still_open, 0, "of {} idle sockets", held.len());
    let m = gw.client().scrape().await;
    assert!(m.sum("scim_gateway_http_connections_ended_total", &[("reason", "no_request")]) > 0.0);

    let (q, a) = (median(quiet), median(attacked));
    let ratio = a.as_secs_f64() / q.as_secs_f64();
    // Every request during the attack was answered (above); how fast is a figure, printed
    // and not asserted, because the machine's other load moves it (BENCHMARKS.md).
    println!(
        "idle sockets: {opened} opened against max_connections 200; median request {q:?} quiet, {a:?} under attack (x{ratio:.2}); {evicted} evicted"
    );
    assert_eq!(dump(&slapd).await, before);
}

/// Finding 1, the other half: an open-file limit below max_connections. The gateway lowers
/// the cap to what the limit allows (keeping descriptors for its directory connections), and
/// should accept still fail it frees an idle connection and backs off instead of spinning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_file_limit_neither_stops_requests_nor_floods_the_log() {
    let _serial = SERIAL.lock().await;
    common::raise_file_limit();
    let slapd = Slapd::start();
    let text = config_text(&slapd, |t| set(t, "max_connections", "5000"));
    let gw = GatewayProcess::spawn_with_file_limit(&text, Some(256));
    let port = gw.port;
    let before = dump(&slapd).await;
    let held = tokio::task::spawn_blocking(move || open_idle(port, 1000)).await.unwrap();
    let started = Instant::now();
    let mut took = Vec::new();
    for _ in 0..20 {
        let (status, t) = fresh_get(port, "/Users?count=1").await;
        assert_eq!(status, 200, "a normal request with 1,000 idle sockets at a 256 file limit");
        took.push(t);
    }
    let m = gw.client().scrape().await;
    let failures = m.sum("scim_gateway_http_accept_failures_total", &[]);
    let open = m.sum("scim_gateway_http_connections", &[]);
    let log = gw.log();
    let warnings = log.matches("accept failed").count();
    println!(
        "file limit 256: {} idle sockets; 20 requests in {:?} (median {:?}); {open} connections open, {failures} failed accepts, {warnings} warnings logged",
        held.len(),
        started.elapsed(),
        median(took)
    );
    assert!(log.contains("max_connections lowered to 192"), "{log}");
    assert!(open <= 192.0, "{open}");
    assert!(warnings <= 5, "one warning per 10 s, not one per attempt: {warnings}");
    drop(held);
    assert_eq!(dump(&slapd).await, before);
}

/// Finding 4: 260 clients trickle their bodies; nobody else gets 429, and they get 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_bodies_take_no_slot_and_are_cut_off() {
    let _serial = SERIAL.lock().await;
    common::raise_file_limit();
    let slapd = Slapd::start();
    let text = config_text(&slapd, |t| set(t, "body_read_timeout_secs", "4"));
    let gw = GatewayProcess::spawn(&text);
    let port = gw.port;
    let before = dump(&slapd).await;
    let mut tricklers = Vec::new();
    for i in 0..260 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let head = format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n{{\"userName\": \"trickle{i}\""
        );
        s.write_all(head.as_bytes()).await.unwrap();
        tricklers.push(tokio::spawn(async move {
            let (mut r, mut w) = s.into_split();
            let writing = tokio::spawn(async move {
                while w.write_all(b" ").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
            let started = Instant::now();
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut answer)).await;
            writing.abort();
            (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = gw.client();
    for _ in 0..20 {
        let a = client.get("/Users?count=1").await;
        assert_eq!(a.status, 200, "a normal request beside 260 trickled bodies: {:#}", a.body);
    }
    let mut cut = Vec::new();
    for t in tricklers {
        let (answer, took) = t.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        cut.push(took);
    }
    println!(
        "trickled bodies: 260 answered 408 and closed after {:?} (median) with body_read_timeout_secs 4",
        median(cut)
    );
    assert_eq!(dump(&slapd).await, before, "no trickled create landed");
}

/// Finding 2: the caps, and the worst PATCH they allow; `/healthz` meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_are_capped_and_the_worst_one_is_bounded() {
    let _serial = SERIAL.lock().await;
    let slapd = Slapd::start();
    let gw = GatewayProcess::spawn(&config_text(&slapd, |t| t));
    let client = gw.client();
    let created = client.post("/Users", &okta_user("patch@example.com", None)).await;
    assert_eq!(created.status, 201);
    let path = format!("/Users/{}", created.body["id"].as_str().unwrap());
    let before = dump(&slapd).await;

    let op = |i: usize| json!({"op": "add", "path": "emails", "value": [{"value": format!("e{i}@example.com")}]});
    client.patch(&path, Value::Array((0..1001).map(op).collect())).await.assert_error(400, Some("invalidValue"));
    let values: Vec<Value> = (0..1001).map(|i| json!({"value": format!("v{i}@example.com")})).collect();
    client
        .patch(&path, json!([{"op": "add", "path": "emails", "value": values}]))
        .await
        .assert_error(400, Some("invalidValue"));
    // Nor may operations grow a list past max_values between them.
    let grow: Vec<Value> = (0..10).map(|k| json!({"op": "add", "path": "emails", "value": (0..101).map(|i| json!({"value": format!("g{k}-{i}@example.com")})).collect::<Vec<_>>()})).collect();
    let refused = client.patch(&path, Value::Array(grow)).await;
    refused.assert_error(400, Some("invalidValue"));
    assert!(refused.body["detail"].as_str().unwrap().contains("max_values"), "{:#}", refused.body);
    let long = "x".repeat(65_537);
    client
        .patch(&path, json!([{"op": "replace", "path": "displayName", "value": long}]))
        .await
        .assert_error(400, Some("invalidValue"));
    let pathless: serde_json::Map<String, Value> = (0..1001).map(|i| (format!("x{i}"), json!("y"))).collect();
    client.patch(&path, json!([{"op": "add", "value": pathless}])).await.assert_error(400, Some("invalidValue"));
    let filter = format!("userName eq \"{}\"", "x".repeat(4100));
    client.get(&format!("/Users?filter={}", q(&filter))).await.assert_error(400, Some("invalidFilter"));
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter});
    client.post("/Users/.search", &search).await.assert_error(400, Some("invalidFilter"));
    assert_eq!(dump(&slapd).await, before, "nothing written by a refused request");

    // The worst within the caps: a list at max_values (999 added to the one stored), then
    // 999 operations that each go through all of it (adds of values it holds, filtered
    // replaces).
    let mut ops = vec![
        json!({"op": "add", "path": "emails", "value": (0..999).map(|i| json!({"value": format!("w{i}@example.com"), "type": "other"})).collect::<Vec<_>>()}),
    ];
    ops.extend((0..999).map(|i| match i % 2 {
        0 => json!({"op": "add", "path": "emails", "value": {"value": format!("w{i}@example.com"), "type": "other"}}),
        _ => json!({"op": "replace", "path": format!("emails[value eq \"w{i}@example.com\"].display"), "value": "W"}),
    }));
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let bytes = body.to_string().len();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = tokio::spawn({
        let (stop, probe) = (stop.clone(), gw.client());
        async move {
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                assert_eq!(probe.get(&format!("{}/healthz", probe.origin())).await.status, 200);
                worst = worst.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            worst
        }
    });
    let cpu_before = cpu(gw.pid());
    let started = Instant::now();
    let answer: Answer = client.call("PATCH", &path, Some(&body), None).await;
    let took = started.elapsed();
    let cpu_used = cpu(gw.pid()) - cpu_before;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let healthz = probe.await.unwrap();
    println!(
        "worst PATCH within the caps ({} KB, 1,000 operations on a 1,000-value list): {} in {took:?}, {cpu_used:.2} CPU-s; slowest /healthz meanwhile {healthz:?}",
        bytes / 1024,
        answer.status
    );
    assert!(answer.status.as_u16() < 500, "{:#}", answer.body);
    if !answer.status.is_success() {
        assert_eq!(dump(&slapd).await, before);
    }
}

/// Finding 3: hundreds of `.search` requests with huge filter values; memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_under_the_stated_bound() {
    let _serial = SERIAL.lock().await;
    let slapd = Slapd::start();
    const MIB: u64 = 1024 * 1024;
    let text = config_text(&slapd, |t| {
        let t = set(t, "max_bytes", &(2 * MIB).to_string());
        let t = set(t, "snapshot_max_bytes", &(2 * MIB).to_string());
        set(set(t, "max_filter_bytes", "65536"), "max_value_bytes", "65536")
    });
    let gw = GatewayProcess::spawn(&text);
    let client = gw.client();
    let before = dump(&slapd).await;
    let search = |op: &str, i: usize, len: usize| {
        let value = format!("{i:06}{}", "m".repeat(len));
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!("userName {op} \"{value}\"")})
    };
    for i in 0..20 {
        assert_eq!(client.post("/Users/.search", &search("eq", i, 100)).await.status, 200);
    }
    let idle = rss(gw.pid());
    // Over the filter cap: refused before any work.
    for i in 0..20 {
        client.post("/Users/.search", &search("eq", i, 500_000)).await.assert_error(400, Some("invalidFilter"));
    }
    // Under it: 60 KB values, each a new cache and snapshot key, half eq, half sw; two
    // rounds of 1,000. Unbounded, each round would add ~90 MiB of keys.
    let mut rounds = Vec::new();
    for round in 0..2 {
        let mut running = Vec::new();
        for worker in 0..8 {
            let client = gw.client();
            running.push(tokio::spawn(async move {
                for i in (round * 1000 + worker..round * 1000 + 1000).step_by(8) {
                    let op = if i % 2 == 0 { "eq" } else { "sw" };
                    let a = client.post("/Users/.search", &search(op, i, 60_000)).await;
                    assert_eq!(a.status, 200, "{:#}", a.body);
                }
            }));
        }
        for r in running {
            r.await.unwrap();
        }
        rounds.push(rss(gw.pid()));
    }
    let (first, second) = (rounds[0], rounds[1]);
    // The README's bound: idle + the caches' bytes + working memory of the requests in
    // flight, which the allocator keeps for reuse (8 at a time here): it does not grow with
    // the number of different filters.
    let bound = idle + 4 * MIB + 96 * MIB;
    println!(
        "memory: RSS {} MiB idle, {} MiB after 1,000 .search requests with 60 KB filter values, {} MiB after 2,000 (bound {} MiB)",
        idle / MIB,
        first / MIB,
        second / MIB,
        bound / MIB
    );
    assert!(
        second < first + 16 * MIB,
        "RSS grows with the number of filters: {} then {} MiB",
        first / MIB,
        second / MIB
    );
    assert!(second < bound, "RSS {} MiB", second / MIB);
    assert_eq!(dump(&slapd).await, before);
}

/// Finding 5: `/readyz` pings at most about once a second and tells nothing; `/metrics`
/// names no directory; both can move to their own address and take a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_cheap_and_tell_nothing() {
    let _serial = SERIAL.lock().await;
    let slapd = Slapd::start();
    let gw = GatewayProcess::spawn(&config_text(&slapd, |t| t));
    let client = gw.client();
    let readyz = format!("{}/readyz", client.origin());
    let pings = |m: &common::metrics::Scrape| m.sum(LDAP_OPS, &[("operation", "ping")]);
    let first = pings(&client.scrape().await);
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..16 {
        let (c, url) = (gw.client(), readyz.clone());
        callers.push(tokio::spawn(async move {
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(4) {
                assert_eq!(c.call("GET", &url, None, Some("")).await.status, 200);
                n += 1;
            }
            n
        }));
    }
    let mut calls = 0;
    for c in callers {
        calls += c.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let m = client.scrape().await;
    let made = pings(&m) - first;
    println!("readyz: {calls} calls from 16 clients in {elapsed:.1} s made {made} LDAP pings");
    assert!(made <= elapsed.ceil() + 1.0, "{made} pings in {elapsed:.1} s");
    let port = slapd.url.rsplit(':').next().unwrap().to_owned();
    for secret in [slapd.url.as_str(), slapd.service_dn.as_str(), &format!(":{port}")] {
        assert!(!m.text.contains(secret), "/metrics names {secret}");
    }

    slapd.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let down = client.call("GET", &readyz, None, Some("")).await;
    down.assert_error(503, None);
    let body = down.body.to_string();
    for secret in [slapd.url.as_str(), slapd.service_dn.as_str(), port.as_str(), "LDAP", "ldap"] {
        assert!(!body.contains(secret), "/readyz names {secret}: {body}");
    }
    assert!(gw.log().contains("readiness: the directory does not answer"), "the details go to the log");
}

#[tokio::test]
async fn probes_on_their_own_address_and_metrics_behind_a_token() {
    let _serial = SERIAL.lock().await;
    let slapd = Slapd::start();
    let probe_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = config_text(&slapd, |t| {
        let t = set(t, "probe_listen", &format!("\"127.0.0.1:{probe_port}\""));
        set(t, "metrics_token", "\"scrape-secret\"")
    });
    let gw = GatewayProcess::spawn(&text);
    let main = gw.client();
    let probes = TestGateway::remote(format!("http://127.0.0.1:{probe_port}/scim/v2"));
    let at = |c: &TestGateway, p: &str| format!("{}{p}", c.origin());
    assert_eq!(main.call("GET", &at(&main, "/healthz"), None, Some("")).await.status, 404);
    assert_eq!(main.call("GET", &at(&main, "/metrics"), None, Some("")).await.status, 404);
    assert_eq!(main.get("/Users?count=1").await.status, 200);
    assert_eq!(probes.call("GET", &at(&probes, "/healthz"), None, Some("")).await.status, 200);
    assert_eq!(probes.call("GET", &at(&probes, "/readyz"), None, Some("")).await.status, 200);
    assert_eq!(probes.get("/Users?count=1").await.status, 404, "no SCIM on the probe address");
    assert_eq!(probes.call("GET", &at(&probes, "/metrics"), None, Some("")).await.status, 401);
    assert_eq!(probes.call("GET", &at(&probes, "/metrics"), None, Some("Bearer wrong")).await.status, 401);
    let scraped = by_hand(
        probe_port,
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{probe_port}\r\nAuthorization: Bearer scrape-secret\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(scraped.starts_with("HTTP/1.1 200") && scraped.contains("# EOF"), "{scraped}");
}

/// Finding 6: request ids, Host, names with control characters, the stand-in DN, 404s.
#[tokio::test]
async fn the_smaller_ones() {
    let _serial = SERIAL.lock().await;
    let slapd = Slapd::start();
    let gw = GatewayProcess::spawn(&config_text(&slapd, |t| t));
    let client = gw.client();
    let port = gw.port;

    let forged =
        client.raw("GET", "/Users?count=1", Vec::new(), None, &[("x-request-id", "abc status=200 caller=admin")]).await;
    let replaced = forged.header("x-request-id").unwrap();
    assert!(uuid_like(replaced), "{replaced}");
    let kept = client.raw("GET", "/Users?count=1", Vec::new(), None, &[("x-request-id", "okta-4b1d_9.x")]).await;
    assert_eq!(kept.header("x-request-id"), Some("okta-4b1d_9.x"));
    let log = gw.settled_log().await;
    assert!(log.contains("okta-4b1d_9.x"), "the client's request id is logged");
    assert!(!log.contains("caller=admin"), "a forged field reached the log");

    // A Host of the client's choosing does not become Location or meta.location.
    let body = okta_user("host@example.com", None).to_string();
    let answer = by_hand(
        port,
        format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(!answer.contains("evil.example"), "{answer}");
    assert!(answer.to_lowercase().contains(&format!("location: http://127.0.0.1:{port}/scim/v2/users/")), "{answer}");
    let ops = client.post("/Groups", &group("Ops")).await;
    assert_eq!(ops.status, 201, "{:#}", ops.body);
    let group_path = format!("/Groups/{}", ops.body["id"].as_str().unwrap());
    let before = dump(&slapd).await;

    for bad in ["x\r\ny@example.com", "nul\u{0}@example.com", "   ", "tab\there"] {
        client.post("/Users", &okta_user(bad, None)).await.assert_error(400, Some("invalidValue"));
    }
    let user_path = format!(
        "/Users/{}",
        client.get(&user_filter("host@example.com")).await.body["Resources"][0]["id"].as_str().unwrap()
    );
    client
        .patch(&user_path, json!([{"op": "replace", "path": "userName", "value": "a\nb"}]))
        .await
        .assert_error(400, Some("invalidValue"));
    for bad in ["  ", "a\u{7}b"] {
        client.post("/Groups", &group(bad)).await.assert_error(400, Some("invalidValue"));
    }
    // The shipped empty_member is cn=empty-group,ou=groups,dc=example,dc=test.
    for name in ["empty-group", "Empty-Group"] {
        client.post("/Groups", &group(name)).await.assert_error(400, Some("invalidValue"));
        client
            .patch(&group_path, json!([{"op": "replace", "path": "displayName", "value": name}]))
            .await
            .assert_error(400, Some("invalidValue"));
    }

    let nowhere = client.call("GET", &format!("{}/nowhere", client.origin()), None, Some("")).await;
    nowhere.assert_error(404, None);
    assert!(!nowhere.body.to_string().contains("/scim"), "{:#}", nowhere.body);
    assert_eq!(dump(&slapd).await, before, "nothing written by a refused request");
}

fn group(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": []})
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Finding 1, kept-alive connections: an HTTP/1.1 one that served a request and then stays
/// silent is closed after `idle_timeout_secs`; an HTTP/2 one that settled its settings but
/// sends no request, after `header_read_timeout_secs`.
#[tokio::test]
async fn kept_alive_connections_close_when_idle() {
    let _serial = SERIAL.lock().await;
    let slapd = Slapd::start();
    let text = config_text(&slapd, |t| set(set(t, "idle_timeout_secs", "2"), "header_read_timeout_secs", "3"));
    let gw = GatewayProcess::spawn(&text);
    let port = gw.port;
    let mut h1 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut h2 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    {
        use std::io::Write;
        h1.write_all(format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).unwrap();
        // The preface and an empty SETTINGS frame: a live HTTP/2 client, without a request.
        h2.write_all(PREFACE).unwrap();
        h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for s in [&mut h1, &mut h2] {
        s.set_nonblocking(true).unwrap();
        assert!(!closed(s), "open while in use");
    }
    // 8 s: room for a loaded machine, still short of the defaults (60 s idle, 10 s first request).
    let limit = Duration::from_secs(8);
    assert!(closes_within(&mut h1, limit).await, "HTTP/1.1 keep-alive idle past idle_timeout_secs");
    assert!(closes_within(&mut h2, limit).await, "HTTP/2 without a request past the first-request deadline");
}
