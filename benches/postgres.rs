//! The PostgreSQL store (issue 16): SCIM operations through the gateway against the same work
//! done with raw SQL on the same database, as CPU time per request and as throughput ratios.
//! As in benches/cpu.rs, CPU is `utime + stime` from `/proc/PID/stat` before and after a fixed
//! number of requests: the gateway's process, and PostgreSQL's (the postmaster and every
//! backend under it, reaped ones included), so a shared machine moves the throughput columns
//! but not what each process spends.
//!
//! PostgreSQL (scripts/postgres, presets/postgres.sql) is seeded with 10,000 users in groups of
//! 100. The gateway runs as its own process with presets/postgres.toml and `[cache] enabled =
//! false`, so every request reaches the database. At 1 and 16 concurrent clients it measures
//! - Okta's lookup `GET /Users?filter=userName eq "…"`, and `GET /Users/{id}`;
//! - `POST /Users` (Okta's body, no password);
//! - a list page of 100 (`startIndex` past the first page, as Okta's import reads them);
//! - the raw floor of each: prepared statements on plain tokio-postgres connections (as many
//!   as the preset's pool), as the gateway's role: the user's row by `lower(user_name)` or by
//!   id, an `INSERT … RETURNING`, and a page (`ORDER BY id OFFSET … LIMIT 100`) with its
//!   `count(*)`.
//!
//! `cargo bench --bench postgres` prints, per cell: throughput, the gateway's and PostgreSQL's
//! CPU per request, the raw floor's throughput and PostgreSQL CPU per request, and the ratio
//! gateway / raw. Under `cargo test` a smoke version (400 users, a few requests per cell)
//! checks that every cell works; its figures mean nothing.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::future::Future;
use std::sync::Arc;

use common::gateway::{okta_user, q, TOKEN};
use common::postgres::{Postgres, APP_PASSWORD, APP_ROLE, DATABASE};
use common::postgres_store::config;
use common::process::GatewayProcess;
use http::Method;
use support::{cpu_us, cpu_us_tree, measure, Cell, Http};
use tokio_postgres::{Client, NoTls, Statement};

const CONCURRENCY: [usize; 2] = [1, 16];
const GROUP_SIZE: usize = 100;
/// Okta's import page size, and the list page measured.
const PAGE: usize = 100;
/// Connections of the raw client: the preset's `pool_size`.
const RAW_CONNECTIONS: usize = 8;
/// The columns the preset maps for a user.
const COLUMNS: &str = "id, user_name, external_id, given_name, family_name, display_name, email, title, department, active, created_at, updated_at";

/// Requests per cell, by kind.
struct Plan {
    users: usize,
    reads: usize,
    creates: usize,
    pages: usize,
}

fn main() {
    let plan = if support::full() {
        Plan { users: 10_000, reads: 4_000, creates: 1_000, pages: 200 }
    } else {
        Plan { users: 400, reads: 10, creates: 5, pages: 2 }
    };
    support::run(run(plan));
}

/// A cell and what each process spent on it, in CPU µs per request.
struct Costed {
    cell: Cell,
    gateway: f64,
    postgres: f64,
}

#[derive(Clone, Copy)]
struct Pids {
    gateway: u32,
    postmaster: u32,
}

impl Pids {
    async fn costed(&self, load: impl Future<Output = Cell>) -> Costed {
        let before = [cpu_us(self.gateway), cpu_us_tree(self.postmaster)];
        let cell = load.await;
        let after = [cpu_us(self.gateway), cpu_us_tree(self.postmaster)];
        let per = |i: usize| (after[i] - before[i]) as f64 / cell.latencies.len().max(1) as f64;
        Costed { gateway: per(0), postgres: per(1), cell }
    }
}

/// Raw tokio-postgres connections, taken in turn, each with the statements prepared once.
struct Raw {
    conns: Vec<(Client, [Statement; 5])>,
}

impl Raw {
    async fn connect(pg: &Postgres) -> Raw {
        let mut conns = Vec::new();
        for _ in 0..RAW_CONNECTIONS {
            let mut config = tokio_postgres::Config::new();
            config.host("127.0.0.1").port(pg.port).user(APP_ROLE).password(APP_PASSWORD).dbname(DATABASE);
            let (client, connection) = config.connect(NoTls).await.expect("raw connection");
            tokio::spawn(connection);
            let by_name = format!("SELECT {COLUMNS} FROM users WHERE lower(user_name) = lower($1::text)");
            let by_id = format!("SELECT {COLUMNS} FROM users WHERE id = $1::text::uuid");
            let insert = format!(
                "INSERT INTO users (user_name, given_name, family_name, display_name, email, external_id) \
                 VALUES ($1::text, 'John', 'Doe', 'John Doe', $1::text, '00u1abcd2EFGH3ijk4l5') RETURNING {COLUMNS}"
            );
            let page = format!("SELECT {COLUMNS} FROM users ORDER BY id OFFSET $1::int8 LIMIT {PAGE}");
            let mut prepared = Vec::new();
            for sql in [by_name.as_str(), by_id.as_str(), insert.as_str(), page.as_str(), "SELECT count(*) FROM users"]
            {
                prepared.push(client.prepare(sql).await.expect("prepare"));
            }
            conns.push((client, prepared.try_into().unwrap()));
        }
        Raw { conns }
    }

    fn conn(&self, i: usize) -> &(Client, [Statement; 5]) {
        &self.conns[i % self.conns.len()]
    }
}

struct Row {
    op: &'static str,
    concurrency: usize,
    gateway: Costed,
    raw: Costed,
}

async fn run(plan: Plan) {
    let size = plan.users;
    let pg = Postgres::start();
    pg.execute(&format!(
        "INSERT INTO users (user_name, given_name, family_name, display_name, email, external_id) \
         SELECT 'user' || i, 'User', i::text, 'User ' || i, 'user' || i || '@example.com', 'ext-' || i FROM generate_series(0, {last}) i; \
         INSERT INTO groups (display_name) SELECT 'grp' || g FROM generate_series(0, {groups}) g; \
         INSERT INTO memberships (group_id, user_id) SELECT g.id, u.id FROM users u \
           JOIN groups g ON g.display_name = 'grp' || (substr(u.user_name, 5)::int / {GROUP_SIZE}); \
         ANALYZE",
        last = size - 1,
        groups = size.div_ceil(GROUP_SIZE) - 1,
    ))
    .await;
    let ids: Arc<Vec<String>> = Arc::new(
        pg.rows("SELECT id::text AS id FROM users ORDER BY substr(user_name, 5)::int", &[])
            .await
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect(),
    );
    let uncached = config(&pg, None, |t| t + "\n[cache]\nenabled = false\n");
    let gateway = GatewayProcess::spawn(&uncached);
    let http = Http::new(format!("http://127.0.0.1:{}/scim/v2", gateway.port), TOKEN);
    let pids = Pids { gateway: gateway.pid(), postmaster: pg.pid() };
    let raw = Arc::new(Raw::connect(&pg).await);
    // Spread over the table, deterministic from the request's number.
    let spread = move |i: usize| (i * 7_919) % size;
    let pages = size / PAGE - 1;
    http.send(Method::GET, "/Users?count=1", None, 200).await;

    let mut rows = Vec::new();
    for &concurrency in &CONCURRENCY {
        let h = http.clone();
        let gw = pids
            .costed(measure(plan.reads, concurrency, move |i| {
                let (h, path) =
                    (h.clone(), format!("/Users?filter={}", q(&format!(r#"userName eq "user{}""#, spread(i)))));
                async move {
                    h.send(Method::GET, &path, None, 200).await;
                }
            }))
            .await;
        let r = raw.clone();
        let floor = pids
            .costed(measure(plan.reads, concurrency, move |i| {
                let (r, name) = (r.clone(), format!("USER{}", spread(i)));
                async move {
                    let (c, s) = r.conn(i);
                    assert_eq!(c.query(&s[0], &[&name]).await.expect("raw lookup").len(), 1);
                }
            }))
            .await;
        rows.push(Row { op: "lookup userName", concurrency, gateway: gw, raw: floor });

        let (h, by) = (http.clone(), ids.clone());
        let gw = pids
            .costed(measure(plan.reads, concurrency, move |i| {
                let (h, path) = (h.clone(), format!("/Users/{}", by[spread(i)]));
                async move {
                    h.send(Method::GET, &path, None, 200).await;
                }
            }))
            .await;
        let (r, by) = (raw.clone(), ids.clone());
        let floor = pids
            .costed(measure(plan.reads, concurrency, move |i| {
                let (r, id) = (r.clone(), by[spread(i)].clone());
                async move {
                    let (c, s) = r.conn(i);
                    assert_eq!(c.query(&s[1], &[&id]).await.expect("raw get").len(), 1);
                }
            }))
            .await;
        rows.push(Row { op: "GET /Users/{id}", concurrency, gateway: gw, raw: floor });

        let h = http.clone();
        let gw = pids
            .costed(measure(plan.creates, concurrency, move |i| {
                let (h, body) = (h.clone(), okta_user(&format!("new-{concurrency}-{i}@example.com"), None));
                async move {
                    h.send(Method::POST, "/Users", Some(body), 201).await;
                }
            }))
            .await;
        let r = raw.clone();
        let floor = pids
            .costed(measure(plan.creates, concurrency, move |i| {
                let (r, name) = (r.clone(), format!("raw-{concurrency}-{i}@example.com"));
                async move {
                    let (c, s) = r.conn(i);
                    c.query_one(&s[2], &[&name]).await.expect("raw insert");
                }
            }))
            .await;
        rows.push(Row { op: "POST /Users", concurrency, gateway: gw, raw: floor });

        let h = http.clone();
        let gw = pids
            .costed(measure(plan.pages, concurrency, move |i| {
                let (h, path) = (h.clone(), format!("/Users?startIndex={}&count={PAGE}", 1 + PAGE * (1 + i % pages)));
                async move {
                    h.send(Method::GET, &path, None, 200).await;
                }
            }))
            .await;
        let r = raw.clone();
        let floor = pids
            .costed(measure(plan.pages, concurrency, move |i| {
                let (r, offset) = (r.clone(), (PAGE * (1 + i % pages)) as i64);
                async move {
                    let (c, s) = r.conn(i);
                    assert_eq!(c.query(&s[3], &[&offset]).await.expect("raw page").len(), PAGE);
                    c.query_one(&s[4], &[]).await.expect("raw count");
                }
            }))
            .await;
        rows.push(Row { op: "list page of 100", concurrency, gateway: gw, raw: floor });
    }
    report(&rows);
}

fn report(rows: &[Row]) {
    println!(
        "\n{:<20} {:>4} | {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>7} {:>7}",
        "operation", "conc", "ops/s", "gw µs", "pg µs", "raw op/s", "pg µs", "tput", "CPU"
    );
    for r in rows {
        let (g, f) = (&r.gateway, &r.raw);
        println!(
            "{:<20} {:>4} | {:>8.0} {:>8.1} {:>8.1} | {:>8.0} {:>8.1} | {:>6.2}x {:>6.2}x",
            r.op,
            r.concurrency,
            g.cell.throughput(),
            g.gateway,
            g.postgres,
            f.cell.throughput(),
            f.postgres,
            g.cell.throughput() / f.cell.throughput(),
            (g.gateway + g.postgres) / f.postgres,
        );
    }
    println!("gw µs, pg µs: CPU (utime + stime, /proc/PID/stat) per request of the gateway and of PostgreSQL (postmaster and backends)");
    println!("tput: gateway throughput / raw SQL throughput; CPU: (gateway + PostgreSQL) / PostgreSQL for raw SQL, per request");
}
