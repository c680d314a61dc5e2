//! The gateway against raw LDAP, side by side in one run. slapd is seeded with 10,000 and then
//! 50,000 users, in groups of 100; at 1, 16 and 64 concurrent clients over
//! loopback it measures
//! - raw directory operations through the gateway's own pool (`LdapDirectory`, no HTTP):
//!   search by uid, add, modify, group member add: the floor the gateway can approach;
//! - the gateway binary's SCIM equivalents: Okta's pre-create lookup (cold and cached),
//!   POST user, PATCH active, PATCH group add member, GET by id;
//!
//! and prints throughput, p50, p99 and the ratio gateway / raw, then the gateway's resident
//! memory idle and with 1,000 open connections. The paged import (`count=100`) is measured
//! by `benches/import.rs`.
//!
//! `cargo bench --bench gateway` runs it in full; plain `cargo test --all-targets` runs a small
//! smoke version (500 users, a few operations per cell) that checks every operation works.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::sync::Arc;
use std::time::Instant;

use common::gateway::{config_text, okta_user, q, TOKEN};
use common::process::GatewayProcess;
use common::{group_ldif, users_ldif, Slapd};
use http::Method;
use scim_gateway::config::Loaded;
use scim_gateway::directory::{Change, Directory, LdapFilter, Scope, Search};
use serde_json::{json, Value};
use support::{measure, ms, percentile, rss_kib, served_connections, Cell, Http};

const PEOPLE: &str = "ou=people,dc=example,dc=test";
const GROUPS: &str = "ou=groups,dc=example,dc=test";
const CONCURRENCY: [usize; 3] = [1, 16, 64];
/// Users per seeded group.
const GROUP_SIZE: usize = 100;

struct Plan {
    sizes: &'static [usize],
    /// Operations per (operation, concurrency) cell.
    ops: fn(usize) -> usize,
    /// Creates per cell: slapd's adds slow down with the directory's size (its substring
    /// indexes on uid, mail and cn grow with every entry), so fewer of them.
    adds: fn(usize) -> usize,
    connections: usize,
}

fn main() {
    let plan = if support::full() {
        Plan {
            sizes: &[10_000, 50_000],
            ops: |size| (size / 16).min(1_000),
            adds: |size| if size > 10_000 { 100 } else { 300 },
            connections: 1_000,
        }
    } else {
        Plan { sizes: &[500], ops: |_| 8, adds: |_| 8, connections: 50 }
    };
    support::run(run(plan));
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// The users' and groups' SCIM ids (entryUUID), read once as admin.
async fn ids(slapd: &Slapd, base: &str, attr: &str) -> std::collections::HashMap<String, String> {
    let mut ldap = slapd.admin().await;
    let (entries, _) = ldap
        .search(base, ldap3::Scope::OneLevel, "(objectClass=*)", vec![attr, "entryUUID"])
        .await
        .and_then(|r| r.success())
        .expect("read ids");
    entries
        .into_iter()
        .map(ldap3::SearchEntry::construct)
        .map(|e| (e.attrs[attr][0].clone(), e.attrs["entryUUID"][0].clone()))
        .collect()
}

/// The group user `k` joins: one it is not in, spread so that clients rarely share an entry.
fn target_group(k: usize, groups: usize) -> usize {
    let g = k % groups;
    if g == k / GROUP_SIZE {
        (g + 1) % groups
    } else {
        g
    }
}

struct Row {
    size: usize,
    op: &'static str,
    raw: &'static str,
    concurrency: usize,
    gateway: Cell,
    floor: Cell,
}

async fn run(plan: Plan) {
    let mut rows = Vec::new();
    let mut memory = Vec::new();
    for &size in plan.sizes {
        let groups = size / GROUP_SIZE;
        // Each user is in one group, and says so in memberOf as the overlay would have
        // (slapadd runs no overlay): rendering a user then shows its `groups`, as in production.
        let mut seed = String::new();
        for k in 0..size {
            seed += users_ldif(k..k + 1).trim_end();
            seed += &format!("\nmemberOf: cn=grp{},{GROUPS}\n\n", k / GROUP_SIZE);
        }
        for g in 0..groups {
            seed += &group_ldif(&format!("grp{g}"), g * GROUP_SIZE..(g + 1) * GROUP_SIZE);
        }
        let started = Instant::now();
        let slapd = Slapd::start_seeded(&seed);
        println!("seeded {size} users and {groups} groups in {:.1} s", started.elapsed().as_secs_f64());
        let user_ids = Arc::new(ids(&slapd, PEOPLE, "uid").await);
        let group_ids = Arc::new(ids(&slapd, GROUPS, "cn").await);

        // Long timeouts: at 64 clients, slapd's serialised adds queue for seconds at 50,000 users.
        let config = config_text(&slapd, |t| {
            t.replace("operation_timeout_secs = 10", "operation_timeout_secs = 120")
                .replace("request_timeout_secs = 30", "request_timeout_secs = 120")
        });
        let gateway = GatewayProcess::spawn(&config);
        let idle = rss_kib(gateway.pid());
        let http = Http::new(format!("http://127.0.0.1:{}/scim/v2", gateway.port), TOKEN);
        // The raw floor: the gateway's own directory code and pool, in this process.
        let loaded = Loaded::parse("bench.toml", config).expect("config");
        let built = scim_gateway::Gateway::new(&loaded).expect("gateway");
        let dir: Arc<dyn Directory> = built.app.backend.directory().expect("an LDAP target").clone();
        let read_attrs = built.app.user_mapping.read_attrs.clone();
        let user_filter =
            |uid: &str| LdapFilter::Configured("(objectClass=inetOrgPerson)".into()).and(LdapFilter::eq("uid", uid));

        let n = (plan.ops)(size);
        // Users are taken from disjoint quarters per kind of operation, so that nothing a
        // cell does (cache fills, locks) changes what a later one measures.
        // The first `warm` users of each quarter are left out: the cached lookups use them.
        let quarter = size / 4;
        let warm = 256.min(quarter / 2);
        let fresh = move |q: usize, c: usize, i: usize| q * quarter + warm + (c * n + i) % (quarter - warm);
        for k in 0..warm {
            http.send(Method::GET, &format!("/Users?filter={}", q(&format!(r#"userName eq "user{k}""#))), None, 200)
                .await;
        }

        for (c, &concurrency) in CONCURRENCY.iter().enumerate() {
            let mut cell = |op: &'static str, raw: &'static str, gateway: Cell, floor: Cell| {
                rows.push(Row { size, op, raw, concurrency, gateway, floor })
            };
            // The raw floor of a lookup: the gateway's own search for users of one quarter.
            let searches = |quarter: usize| {
                let (d, attrs) = (dir.clone(), read_attrs.clone());
                measure(n, concurrency, move |i| {
                    let (d, attrs) = (d.clone(), attrs.clone());
                    let filter = user_filter(&format!("user{}", fresh(quarter, c, i)));
                    let search = Search { base: PEOPLE.into(), scope: Scope::Subtree, filter, attrs };
                    async move { assert_eq!(d.search(&search).await.expect("search").len(), 1) }
                })
            };

            // Okta's pre-create lookup; users never read before (cold), then a warmed set.
            let floor = searches(0).await;
            let h = http.clone();
            let cold = measure(n, concurrency, move |i| {
                let (h, path) =
                    (h.clone(), format!("/Users?filter={}", q(&format!(r#"userName eq "user{}""#, fresh(0, c, i)))));
                async move {
                    h.send(Method::GET, &path, None, 200).await;
                }
            })
            .await;
            let h = http.clone();
            let cached = measure(n * 4, concurrency, move |i| {
                let (h, path) =
                    (h.clone(), format!("/Users?filter={}", q(&format!(r#"userName eq "user{}""#, i % warm))));
                async move {
                    h.send(Method::GET, &path, None, 200).await;
                }
            })
            .await;
            let floor2 = searches(0).await;
            cell("lookup userName, cold", "search uid", cold, floor);
            cell("lookup userName, cached", "search uid", cached, floor2);

            // GET by id, users not read before.
            let (h, ids) = (http.clone(), user_ids.clone());
            let get = measure(n, concurrency, move |i| {
                let (h, path) = (h.clone(), format!("/Users/{}", ids[&format!("user{}", fresh(1, c, i))]));
                async move {
                    h.send(Method::GET, &path, None, 200).await;
                }
            })
            .await;
            let floor = searches(1).await;
            cell("GET /Users/{id}", "search uid", get, floor);

            // Creates, with the attributes the gateway writes for Okta's body.
            let h = http.clone();
            let adds = (plan.adds)(size);
            let post = measure(adds, concurrency, move |i| {
                let (h, body) = (h.clone(), okta_user(&format!("new-{size}-{concurrency}-{i}@example.com"), None));
                async move {
                    h.send(Method::POST, "/Users", Some(body), 201).await;
                }
            })
            .await;
            let d = dir.clone();
            let floor = measure(adds, concurrency, move |i| {
                let d = d.clone();
                let name = format!("raw-{size}-{concurrency}-{i}@example.com");
                async move {
                    let attrs = vec![
                        (
                            "objectClass".to_owned(),
                            ["top", "person", "organizationalPerson", "inetOrgPerson"].map(String::from).to_vec(),
                        ),
                        ("uid".into(), vec![name.clone()]),
                        ("cn".into(), vec!["John Doe".into()]),
                        ("sn".into(), vec!["Doe".into()]),
                        ("givenName".into(), vec!["John".into()]),
                        ("displayName".into(), vec!["John Doe".into()]),
                        ("mail".into(), vec![name.clone()]),
                        ("description".into(), vec!["00u1abcd2EFGH3ijk4l5".into()]),
                    ];
                    d.add(&format!("uid={name},{PEOPLE}"), &attrs, &vec![], None).await.expect("add");
                }
            })
            .await;
            cell("POST /Users", "add", post, floor);

            // Deactivation: the gateway reads the user, then locks it (ppolicy).
            let (h, ids) = (http.clone(), user_ids.clone());
            let patch = measure(n, concurrency, move |i| {
                let (h, path) = (h.clone(), format!("/Users/{}", ids[&format!("user{}", fresh(2, c, i))]));
                let body = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
                async move {
                    h.send(Method::PATCH, &path, Some(body), 200).await;
                }
            })
            .await;
            let d = dir.clone();
            let floor = measure(n, concurrency, move |i| {
                let (d, dn) = (d.clone(), format!("uid=user{},{PEOPLE}", fresh(3, c, i)));
                async move {
                    let lock = Change::Replace("pwdAccountLockedTime".into(), vec!["000001010000Z".into()]);
                    d.modify(&dn, &[lock]).await.expect("modify");
                }
            })
            .await;
            cell("PATCH active", "modify", patch, floor);

            // Okta's group push: add one member.
            let (h, uids, gids) = (http.clone(), user_ids.clone(), group_ids.clone());
            let member = measure(n, concurrency, move |i| {
                let k = fresh(3, c, i);
                let path = format!("/Groups/{}", gids[&format!("grp{}", target_group(k, groups))]);
                let body = patch_body(
                    json!([{"op": "add", "path": "members", "value": [{"value": uids[&format!("user{k}")]}]}]),
                );
                let h = h.clone();
                async move {
                    h.send(Method::PATCH, &path, Some(body), 204).await;
                }
            })
            .await;
            let d = dir.clone();
            let floor = measure(n, concurrency, move |i| {
                let k = fresh(2, c, i);
                let (d, group) = (d.clone(), format!("cn=grp{},{GROUPS}", target_group(k, groups)));
                async move {
                    let add = Change::Add("member".into(), vec![format!("uid=user{k},{PEOPLE}")]);
                    d.modify(&group, &[add]).await.expect("member add");
                }
            })
            .await;
            cell("PATCH group add member", "modify member", member, floor);
        }

        // Memory: after the load, idle, and with many connections open, each having been served.
        let loaded_rss = rss_kib(gateway.pid());
        let open = served_connections(gateway.port, plan.connections).await;
        let connected = rss_kib(gateway.pid());
        drop(open);
        memory.push((size, idle, loaded_rss, connected));
        drop(gateway);
        // Each size as soon as it is done.
        report(&rows, &memory, plan.connections);
        rows.clear();
        memory.clear();
    }
}

fn report(rows: &[Row], memory: &[(usize, u64, u64, u64)], connections: usize) {
    println!(
        "\n{:<7} {:<26} {:>4} | {:>9} {:>8} {:>8} | {:<14} {:>9} {:>8} {:>8} | {:>7}",
        "users",
        "gateway operation",
        "conc",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "raw LDAP",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "gw/raw"
    );
    for r in rows {
        let stats = |c: &Cell| {
            (c.throughput(), ms(percentile(c.latencies.clone(), 50.0)), ms(percentile(c.latencies.clone(), 99.0)))
        };
        let (g, f) = (stats(&r.gateway), stats(&r.floor));
        println!(
            "{:<7} {:<26} {:>4} | {:>9.0} {:>8.2} {:>8.2} | {:<14} {:>9.0} {:>8.2} {:>8.2} | {:>6.2}x",
            r.size,
            r.op,
            r.concurrency,
            g.0,
            g.1,
            g.2,
            r.raw,
            f.0,
            f.1,
            f.2,
            g.0 / f.0
        );
    }
    println!("targets: uncached >= 0.8x raw, cached lookups >= 3x raw");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for (size, idle, loaded, connected) in memory {
        println!(
            "gateway RSS ({size} users): idle at start {:.1} MiB, after the load {:.1} MiB, {connections} open connections {:.1} MiB (targets: idle <= 15, 1,000 connections <= 64)",
            mib(*idle),
            mib(*loaded),
            mib(*connected)
        );
    }
}
