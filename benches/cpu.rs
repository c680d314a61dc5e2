//! CPU time per request, the gateway's and slapd's apart (issue 18). On a shared machine
//! throughput moves with whatever else runs; what each process spends per request does not,
//! so every cell reads `utime + stime` of the gateway and of slapd from `/proc/PID/stat`
//! before and after a fixed number of requests.
//!
//! slapd is seeded with 10,000 users in groups of 100 (each user's `memberOf` set, as the
//! overlay would). Two gateway binaries run as their own processes with the shipped
//! `gateway.toml`: one with the cache (cached lookups), one with `[cache] enabled = false`
//! (everything else). At 1 and 16 concurrent clients it measures
//! - Okta's lookup `GET /Users?filter=userName eq "…"`, cached and uncached;
//! - `GET /Users/{id}`, `PATCH` `replace active false`, `POST /Users` (Okta's body) and a list
//!   page of 100 (`startIndex` past the first page, as Okta's import reads them);
//! - the raw floor: the same directory operation through a plain ldap3 client (4
//!   connections, like the gateway's pool, bound as the same service account).
//!
//! `cargo bench --bench cpu` prints, per cell: throughput, the gateway's CPU per request,
//! slapd's CPU per request, the load generator's own CPU, and the ratio gateway / raw.
//! `cargo bench --bench cpu -- --wrk` adds the lookups driven by wrk (`apt-get install wrk`),
//! an outside client far lighter than this process's hyper client, as the issue measured them.
//! With `SCIM_BENCH_WRAP="valgrind --tool=callgrind"` (any command prefix, such as
//! `env TOKIO_WORKER_THREADS=1`) the gateways run under it; `-- --profile` makes the run a
//! bounded one (2,000 users, a few hundred requests per cell) and stops the gateways cleanly
//! at the end so that a profiler writes its output (BENCHMARKS.md has the commands).
//! Under `cargo test` a smoke version (400 users, a few requests per cell) checks that every
//! cell works; its figures mean nothing.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use common::gateway::{config_text, okta_user, q, TOKEN};
use common::process::GatewayProcess;
use common::{group_ldif, users_ldif, Slapd};
use http::Method;
use ldap3::{Ldap, Mod, Scope};
use scim_gateway::config::Loaded;
use serde_json::json;
use support::{cpu_us, measure, Cell, Http};

const PEOPLE: &str = "ou=people,dc=example,dc=test";
const GROUPS: &str = "ou=groups,dc=example,dc=test";
const CONCURRENCY: [usize; 2] = [1, 16];
const GROUP_SIZE: usize = 100;
/// Okta's import page size, and the list page measured.
const PAGE: usize = 100;
/// Users the cached cells look up again and again.
const WARM: usize = 256;
/// Connections of the raw client: the shipped pool's size.
const RAW_CONNECTIONS: usize = 4;

/// Requests per cell, by kind.
struct Plan {
    users: usize,
    cached: usize,
    reads: usize,
    writes: usize,
    creates: usize,
    pages: usize,
    /// Seconds per wrk cell.
    wrk_secs: u64,
}

fn main() {
    let wrapper: Vec<String> =
        std::env::var("SCIM_BENCH_WRAP").map(|w| w.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    let profile = std::env::args().any(|a| a == "--profile");
    let plan = if profile {
        // Under a profiler: a bounded run.
        Plan { users: 2_000, cached: 2_000, reads: 400, writes: 200, creates: 100, pages: 20, wrk_secs: 0 }
    } else if support::full() {
        Plan { users: 10_000, cached: 20_000, reads: 4_000, writes: 1_000, creates: 300, pages: 200, wrk_secs: 8 }
    } else {
        Plan { users: 400, cached: 20, reads: 10, writes: 5, creates: 5, pages: 2, wrk_secs: 0 }
    };
    let wrk = support::full() && std::env::args().any(|a| a == "--wrk");
    support::run(run(plan, wrk, wrapper, profile));
}

/// A cell, and what each process spent on it.
struct Costed {
    cell: Cell,
    /// CPU µs per request: the gateway, slapd, this process (the load generator).
    gateway: f64,
    slapd: f64,
    client: f64,
}

/// The processes whose CPU a cell reads.
#[derive(Clone, Copy)]
struct Pids {
    gateway: u32,
    slapd: u32,
    /// Under callgrind: dump the gateway's counts before and after each cell
    /// (`callgrind_control --dump`), so that every cell's instructions land in a file of their own.
    dump: bool,
}

impl Pids {
    fn now(&self) -> [u64; 3] {
        [cpu_us(self.gateway), cpu_us(self.slapd), cpu_us(std::process::id())]
    }

    fn per_request(&self, before: [u64; 3], requests: usize) -> [f64; 3] {
        let after = self.now();
        std::array::from_fn(|i| (after[i] - before[i]) as f64 / requests.max(1) as f64)
    }

    async fn costed(&self, label: String, load: impl Future<Output = Cell>) -> Costed {
        self.dump(&format!("before {label}"));
        let before = self.now();
        let cell = load.await;
        let [gateway, slapd, client] = self.per_request(before, cell.latencies.len());
        self.dump(&format!("{label}, {} requests", cell.latencies.len()));
        Costed { cell, gateway, slapd, client }
    }

    /// The gateway's callgrind counts so far, into a file of their own named `label`.
    fn dump(&self, label: &str) {
        if self.dump {
            let done =
                Command::new("callgrind_control").arg(format!("--dump={label}")).arg(self.gateway.to_string()).output();
            assert!(done.is_ok_and(|o| o.status.success()), "callgrind_control --dump");
        }
    }
}

struct Row {
    op: &'static str,
    client: &'static str,
    concurrency: usize,
    gateway: Costed,
    raw: Option<Costed>,
}

/// The raw floor's client: plain ldap3 connections, taken in turn.
#[derive(Clone)]
struct Raw(Arc<Vec<Ldap>>);

impl Raw {
    fn conn(&self, i: usize) -> Ldap {
        self.0[i % self.0.len()].clone()
    }

    /// A search that must find `want` entries.
    async fn search(&self, i: usize, filter: String, attrs: Arc<Vec<String>>, want: usize) {
        let (found, _) = self
            .conn(i)
            .search(PEOPLE, Scope::Subtree, &filter, attrs.as_ref())
            .await
            .and_then(|r| r.success())
            .expect("raw search");
        assert_eq!(found.len(), want, "{filter}");
    }
}

/// The users' SCIM ids (entryUUID) by uid, read once as admin.
async fn user_ids(slapd: &Slapd) -> HashMap<String, String> {
    let mut ldap = slapd.admin().await;
    let (entries, _) = ldap
        .search(PEOPLE, Scope::OneLevel, "(objectClass=*)", vec!["uid", "entryUUID"])
        .await
        .and_then(|r| r.success())
        .expect("read ids");
    entries
        .into_iter()
        .map(ldap3::SearchEntry::construct)
        .map(|e| (e.attrs["uid"][0].clone(), e.attrs["entryUUID"][0].clone()))
        .collect()
}

async fn run(plan: Plan, wrk: bool, wrapper: Vec<String>, profile: bool) {
    let size = plan.users;
    let mut seed = String::new();
    for k in 0..size {
        seed += users_ldif(k..k + 1).trim_end();
        seed += &format!("\nmemberOf: cn=grp{},{GROUPS}\n\n", k / GROUP_SIZE);
    }
    for g in 0..size.div_ceil(GROUP_SIZE) {
        seed += &group_ldif(&format!("grp{g}"), g * GROUP_SIZE..((g + 1) * GROUP_SIZE).min(size));
    }
    let slapd = Slapd::start_seeded(&seed);
    let ids = Arc::new(user_ids(&slapd).await);
    let config = config_text(&slapd, |t| t);
    let uncached_config = config.replace("[cache]\nenabled = true", "[cache]\nenabled = false");
    assert_ne!(config, uncached_config, "the shipped gateway.toml has [cache] enabled = true");
    let cached_gw = GatewayProcess::spawn_under(&config, &wrapper);
    let uncached_gw = GatewayProcess::spawn_under(&uncached_config, &wrapper);
    let http = |gw: &GatewayProcess| Http::new(format!("http://127.0.0.1:{}/scim/v2", gw.port), TOKEN);
    let (cached, uncached) = (http(&cached_gw), http(&uncached_gw));
    let idle_kib = support::rss_kib(cached_gw.pid());
    let slapd_pid = slapd.pid();
    let dump = wrapper.iter().any(|w| w.contains("callgrind"));
    let at_cached = Pids { gateway: cached_gw.pid(), slapd: slapd_pid, dump };
    let at_uncached = Pids { gateway: uncached_gw.pid(), slapd: slapd_pid, dump };

    // The attributes the gateway reads for a user, for the raw searches.
    let loaded = Loaded::parse("bench.toml", config.clone()).expect("config");
    let built = scim_gateway::Gateway::new(&loaded).expect("gateway");
    let attrs = Arc::new(built.app.user_mapping.read_attrs.clone());
    let mut conns = Vec::new();
    for _ in 0..RAW_CONNECTIONS {
        conns.push(slapd.bind(&slapd.service_dn, &slapd.service_password).await);
    }
    let raw = Raw(Arc::new(conns));

    let lookup = |k: usize| format!("/Users?filter={}", q(&format!(r#"userName eq "user{k}""#)));
    for k in 0..WARM.min(size) {
        cached.send(Method::GET, &lookup(k), None, 200).await;
    }
    // Page 1 takes the snapshot of ids the later pages are read from.
    uncached.send(Method::GET, &format!("/Users?startIndex=1&count={PAGE}"), None, 200).await;
    let pages = size / PAGE - 1;
    // Spread over the directory, deterministic from the request's number.
    let spread = move |i: usize| (i * 7_919) % size;

    let mut rows = Vec::new();
    for (c, &concurrency) in CONCURRENCY.iter().enumerate() {
        let mut row = |op, gateway, raw| rows.push(Row { op, client: "in-process", concurrency, gateway, raw });
        let h = cached.clone();
        let gw = at_cached
            .costed(
                format!("{} c{concurrency}", "cached lookup"),
                measure(plan.cached, concurrency, move |i| {
                    let (h, path) = (h.clone(), lookup(i % WARM.min(size)));
                    async move {
                        h.send(Method::GET, &path, None, 200).await;
                    }
                }),
            )
            .await;
        let search_uid = |n: usize| {
            let (r, a) = (raw.clone(), attrs.clone());
            at_uncached.costed(
                format!("{} c{concurrency}", "raw search"),
                measure(n, concurrency, move |i| {
                    let filter = format!("(&(objectClass=inetOrgPerson)(uid=user{}))", spread(i));
                    let (r, a) = (r.clone(), a.clone());
                    async move { r.search(i, filter, a, 1).await }
                }),
            )
        };
        let floor = search_uid(plan.reads).await;
        row("lookup userName, cached", gw, Some(floor));

        let h = uncached.clone();
        let gw = at_uncached
            .costed(
                format!("{} c{concurrency}", "uncached lookup"),
                measure(plan.reads, concurrency, move |i| {
                    let (h, path) = (h.clone(), lookup(spread(i)));
                    async move {
                        h.send(Method::GET, &path, None, 200).await;
                    }
                }),
            )
            .await;
        let floor = search_uid(plan.reads).await;
        row("lookup userName, uncached", gw, Some(floor));

        let (h, by_uid) = (uncached.clone(), ids.clone());
        let gw = at_uncached
            .costed(
                format!("{} c{concurrency}", "GET by id"),
                measure(plan.reads, concurrency, move |i| {
                    let (h, path) = (h.clone(), format!("/Users/{}", by_uid[&format!("user{}", spread(i))]));
                    async move {
                        h.send(Method::GET, &path, None, 200).await;
                    }
                }),
            )
            .await;
        let (r, a, by_uid) = (raw.clone(), attrs.clone(), ids.clone());
        let floor = at_uncached
            .costed(
                format!("{} c{concurrency}", "raw search by id"),
                measure(plan.reads, concurrency, move |i| {
                    let id = &by_uid[&format!("user{}", spread(i))];
                    let filter = format!("(&(objectClass=inetOrgPerson)(entryUUID={id}))");
                    let (r, a) = (r.clone(), a.clone());
                    async move { r.search(i, filter, a, 1).await }
                }),
            )
            .await;
        row("GET /Users/{id}, uncached", gw, Some(floor));

        // Deactivation, each user once: the upper half of the directory, a slice per concurrency.
        let deactivated = move |i: usize| size / 2 + c * plan.writes + i;
        let (h, by_uid) = (uncached.clone(), ids.clone());
        let gw = at_uncached
            .costed(
                format!("{} c{concurrency}", "PATCH active"),
                measure(plan.writes, concurrency, move |i| {
                    let (h, path) = (h.clone(), format!("/Users/{}", by_uid[&format!("user{}", deactivated(i))]));
                    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "value": {"active": false}}]});
                    async move {
                        h.send(Method::PATCH, &path, Some(body), 200).await;
                    }
                }),
            )
            .await;
        let r = raw.clone();
        let floor = at_uncached
            .costed(
                format!("{} c{concurrency}", "raw modify"),
                measure(plan.writes, concurrency, move |i| {
                    let (mut l, dn) = (r.conn(i), format!("uid=user{},{PEOPLE}", deactivated(i) + 2 * plan.writes));
                    async move {
                        let lock = Mod::Replace("pwdAccountLockedTime", HashSet::from(["000001010000Z"]));
                        l.modify(&dn, vec![lock]).await.and_then(|r| r.success()).expect("raw modify");
                    }
                }),
            )
            .await;
        row("PATCH active", gw, Some(floor));

        let h = uncached.clone();
        let gw = at_uncached
            .costed(
                format!("{} c{concurrency}", "POST"),
                measure(plan.creates, concurrency, move |i| {
                    let (h, body) = (h.clone(), okta_user(&format!("new-{concurrency}-{i}@example.com"), None));
                    async move {
                        h.send(Method::POST, "/Users", Some(body), 201).await;
                    }
                }),
            )
            .await;
        let r = raw.clone();
        let floor = at_uncached
            .costed(
                format!("{} c{concurrency}", "raw add"),
                measure(plan.creates, concurrency, move |i| {
                    let (mut l, name) = (r.conn(i), format!("raw-{concurrency}-{i}@example.com"));
                    async move {
                        let dn = format!("uid={name},{PEOPLE}");
                        let one = |v: &'static str| HashSet::from([v]);
                        let attrs = vec![
                            ("objectClass", HashSet::from(["top", "person", "organizationalPerson", "inetOrgPerson"])),
                            ("uid", HashSet::from([name.as_str()])),
                            ("mail", HashSet::from([name.as_str()])),
                            ("cn", one("John Doe")),
                            ("sn", one("Doe")),
                            ("givenName", one("John")),
                            ("displayName", one("John Doe")),
                            ("description", one("00u1abcd2EFGH3ijk4l5")),
                        ];
                        l.add(&dn, attrs).await.and_then(|r| r.success()).expect("raw add");
                    }
                }),
            )
            .await;
        row("POST /Users", gw, Some(floor));

        let h = uncached.clone();
        let gw = at_uncached
            .costed(
                format!("{} c{concurrency}", "list page"),
                measure(plan.pages, concurrency, move |i| {
                    let (h, path) =
                        (h.clone(), format!("/Users?startIndex={}&count={PAGE}", 1 + PAGE * (1 + i % pages)));
                    async move {
                        h.send(Method::GET, &path, None, 200).await;
                    }
                }),
            )
            .await;
        let (r, a, by_uid) = (raw.clone(), attrs.clone(), ids.clone());
        let floor = at_uncached
            .costed(
                format!("{} c{concurrency}", "raw page"),
                measure(plan.pages, concurrency, move |i| {
                    let first = PAGE * (1 + i % pages);
                    let any: String =
                        (first..first + PAGE).map(|k| format!("(entryUUID={})", by_uid[&format!("user{k}")])).collect();
                    let filter = format!("(&(objectClass=inetOrgPerson)(|{any}))");
                    let (r, a) = (r.clone(), a.clone());
                    async move { r.search(i, filter, a, PAGE).await }
                }),
            )
            .await;
        row("list page of 100", gw, Some(floor));
    }

    report(&rows, &rows);
    // Memory of the cached gateway (issue 18: not to regress): idle, after the load (its caches
    // filled, kept answers included), and with 1,000 connections open, each having been served.
    let loaded_kib = support::rss_kib(cached_gw.pid());
    let connections = if support::full() { 1_000 } else { 50 };
    let open = support::served_connections(cached_gw.port, connections).await;
    let connected_kib = support::rss_kib(cached_gw.pid());
    drop(open);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "cached gateway RSS: idle {:.1} MiB, after the load {:.1} MiB, {} open connections {:.1} MiB (targets: idle <= 15, 1,000 connections <= 64)",
        mib(idle_kib),
        mib(loaded_kib),
        connections,
        mib(connected_kib)
    );
    if wrk {
        let mut outside = Vec::new();
        for &concurrency in &CONCURRENCY {
            for (op, gw, pids, names) in [
                ("lookup userName, cached", &cached_gw, at_cached, WARM),
                ("lookup userName, uncached", &uncached_gw, at_uncached, size),
            ] {
                let gateway = pids.wrk(gw.port, concurrency, names, plan.wrk_secs);
                outside.push(Row { op, client: "wrk", concurrency, gateway, raw: None });
            }
        }
        report(&outside, &rows);
    }
    if profile {
        // A profiler writes its output at exit: stop the gateways cleanly.
        cached_gw.terminate();
        uncached_gw.terminate();
    }
}

impl Pids {
    /// Okta's lookup for random names among the first `names` users, driven by wrk with
    /// `concurrency` connections on one thread for `secs` seconds.
    fn wrk(&self, port: u16, concurrency: usize, names: usize, secs: u64) -> Costed {
        let script = tempfile::NamedTempFile::new().expect("wrk script");
        // Lua's string.format: %% is a literal %, %d the user's number.
        let lua = format!(
            r#"math.randomseed(os.time())
request = function()
  local path = string.format("/scim/v2/Users?filter=userName%%20eq%%20%%22user%d%%22", math.random(0, {last}))
  return wrk.format("GET", path, {{["Authorization"] = "Bearer {TOKEN}"}})
end
"#,
            last = names - 1
        );
        std::fs::write(script.path(), lua).expect("write wrk script");
        let before = self.now();
        let started = Instant::now();
        let out = Command::new("wrk")
            .args(["-t1", &format!("-c{concurrency}"), &format!("-d{secs}s"), "-s"])
            .arg(script.path())
            .arg(format!("http://127.0.0.1:{port}"))
            .output()
            .expect("run wrk (apt-get install wrk)");
        let wall = started.elapsed();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.contains("Non-2xx"),
            "wrk: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let requests: usize = text
            .lines()
            .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.parse().ok()))
            .unwrap_or_else(|| panic!("no request count in wrk's output: {text}"));
        let [gateway, slapd, _] = self.per_request(before, requests);
        // wrk's own CPU is not this process's: the client column stays empty (NaN).
        let latencies = vec![wall / requests.max(1) as u32; requests];
        Costed { cell: Cell { latencies, wall }, gateway, slapd, client: f64::NAN }
    }
}

/// `rows`, each beside the raw floor of its operation and concurrency among `floors`.
fn report(rows: &[Row], floors: &[Row]) {
    println!(
        "\n{:<26} {:>4} {:<10} | {:>8} {:>8} {:>9} {:>9} | {:>8} {:>9} | {:>7}",
        "operation", "conc", "client", "ops/s", "gw µs", "slapd µs", "client µs", "raw op/s", "slapd µs", "gw/raw"
    );
    for r in rows {
        let g = &r.gateway;
        let (raw_ops, raw_slapd, ratio) = match floor(floors, r) {
            Some(f) => (f.cell.throughput(), f.slapd, g.cell.throughput() / f.cell.throughput()),
            None => (f64::NAN, f64::NAN, f64::NAN),
        };
        println!(
            "{:<26} {:>4} {:<10} | {:>8.0} {:>8.1} {:>9.1} {:>9.1} | {:>8.0} {:>9.1} | {:>6.2}x",
            r.op,
            r.concurrency,
            r.client,
            g.cell.throughput(),
            g.gateway,
            g.slapd,
            g.client,
            raw_ops,
            raw_slapd,
            ratio
        );
    }
    println!(
        "gw µs, slapd µs, client µs: CPU (utime + stime, /proc/PID/stat) per request of the gateway, slapd and the load generator"
    );
    println!("targets (gateway µs): cached lookup <= 15, uncached lookup and GET by id <= 60, PATCH active <= 100, POST <= 150, list page <= 1500");
}

/// The raw floor of `r`: its own, or for a wrk row that of the same operation and concurrency.
fn floor<'a>(rows: &'a [Row], r: &'a Row) -> Option<&'a Costed> {
    r.raw
        .as_ref()
        .or_else(|| rows.iter().find(|o| o.op == r.op && o.concurrency == r.concurrency).and_then(|o| o.raw.as_ref()))
}
