//! What the benchmarks share: how they are run, and how they summarise timings.
#![allow(dead_code)] // each benchmark uses a subset

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// `cargo bench` passes `--bench`: the full run. Under `cargo test` a bench target runs
/// without it, and runs its small smoke version.
pub fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Runs the benchmark's body on a multi-threaded runtime.
pub fn run<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime").block_on(body)
}

pub fn median(d: Vec<Duration>) -> Duration {
    percentile(d, 50.0)
}

/// The `p`th percentile (nearest rank) of `d`.
pub fn percentile(mut d: Vec<Duration>, p: f64) -> Duration {
    d.sort();
    let rank = ((p / 100.0) * d.len() as f64).ceil() as usize;
    d[rank.clamp(1, d.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One measured cell: every operation's latency, and the wall time for all of them.
pub struct Cell {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
}

impl Cell {
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `op(i)` for i in 0..n, `concurrency` at a time, each client taking the next i.
pub async fn measure<F, Fut>(n: usize, concurrency: usize, op: F) -> Cell
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return lat;
                    }
                    let t = Instant::now();
                    op(i).await;
                    lat.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    for c in clients {
        latencies.extend(c.await.expect("client task"));
    }
    Cell { latencies, wall: started.elapsed() }
}

/// A bare HTTP client: the load generator shares the machine, so it only checks the status.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: Arc<str>,
    authorization: Arc<str>,
}

impl Http {
    /// A client for the SCIM root `base`, sending `token` as a bearer token.
    pub fn new(base: String, token: &str) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.into(),
            authorization: format!("Bearer {token}").into(),
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, want: u16) -> Bytes {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", &*self.authorization);
        if body.is_some() {
            req = req.header("content-type", "application/scim+json");
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let resp = self.client.request(req.body(Full::new(body)).unwrap()).await.expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&bytes));
        bytes
    }
}

/// Resident memory of a process (`VmRSS`), KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value")
}

/// `n` connections to `port`, each having been served a request (`/healthz`), kept open.
pub async fn served_connections(port: u16, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 256];
        let got = s.read(&mut buf).await.expect("read");
        assert!(buf[..got].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..got]));
        open.push(s);
    }
    open
}

/// CPU time (user + system) a process has used so far, all its threads, dead ones included:
/// `utime + stime` from `/proc/PID/stat`, in clock ticks turned into microseconds.
pub fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start at field 3 (state), so utime (14) and stime (15) are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 2..];
    let field = |i: usize| rest.split_whitespace().nth(i).and_then(|v| v.parse::<u64>().ok()).expect("stat field");
    (field(11) + field(12)) * 1_000_000 / clock_ticks()
}

/// `getconf CLK_TCK`, the unit of `/proc/PID/stat`'s times (100 on Linux, but asked).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = std::process::Command::new("getconf").arg("CLK_TCK").output().expect("run getconf CLK_TCK");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("CLK_TCK is a number")
    })
}

/// CPU time of a process and of its children, as [`cpu_us`]: its own, its children's that it
/// has reaped (`cutime + cstime`), and its live children's. For servers that fork a process
/// per connection (PostgreSQL's backends under the postmaster).
pub fn cpu_us_tree(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 2..];
    let field = |i: usize| rest.split_whitespace().nth(i).and_then(|v| v.parse::<u64>().ok()).expect("stat field");
    // cutime and cstime (16, 17) follow utime and stime.
    let reaped = (field(13) + field(14)) * 1_000_000 / clock_ticks();
    let children: u64 = std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| {
            // A child may end between the listing and the read (an autovacuum worker): skipped,
            // its time is in the parent's cutime by the next reading.
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
            (number(1)? == u64::from(pid)).then_some((number(11)? + number(12)?) * 1_000_000 / clock_ticks())
        })
        .sum();
    cpu_us(pid) + reaped + children
}
