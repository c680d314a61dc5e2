//! Accepting connections: the cap on open connections, backing off when accept fails, TLS
//! handshakes, and graceful shutdown across every listening address.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;

use super::connection::{self, Arrival, Conn, Deadlines, Ended, Surface};
use super::router::App;
use crate::metrics::Metrics;

/// How long requests in flight may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Waits between failed accepts: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// Failed accepts are logged at most this often, with their count.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Interval of HTTP/2 keep-alive pings, and how long an answer may take: a peer that does
/// not answer is gone and its connection is closed.
const H2_PING: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(20));

/// The connection settings of `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub deadlines: Deadlines,
    pub max_connections: usize,
}

/// The open connections, oldest first.
struct Registry {
    open: Mutex<(u64, BTreeMap<u64, Arc<Conn>>)>,
    max: usize,
    emptied: Notify,
    metrics: Arc<Metrics>,
}

impl Registry {
    /// A place for a new connection. At the cap the oldest idle connection gives way, first
    /// among those that never made a request: so idle sockets, however many, cannot keep a
    /// client with a request out, and a keep-alive client loses its connection only to
    /// another with a request. With none idle the new one is refused (closed at once, which
    /// a client notices at once, rather than waiting unaccepted in the backlog).
    fn admit(&self) -> Option<(u64, Arc<Conn>)> {
        let mut guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (next, open) = &mut *guard;
        if open.len() >= self.max {
            let victim = Self::oldest_idle(open, true).or_else(|| Self::oldest_idle(open, false));
            let Some(victim) = victim else {
                self.metrics.connection_ended(Ended::Refused.label());
                return None;
            };
            open.remove(&victim).expect("found above").evict();
            self.metrics.connection_ended(Ended::Evicted.label());
        }
        *next += 1;
        let conn = Conn::new();
        open.insert(*next, conn.clone());
        self.metrics.connections.set(open.len() as i64);
        Some((*next, conn))
    }

    fn oldest_idle(open: &BTreeMap<u64, Arc<Conn>>, fresh: bool) -> Option<u64> {
        open.iter().find(|(_, c)| c.idle(fresh)).map(|(id, _)| *id)
    }

    /// Closes the oldest idle connection, to free a file descriptor.
    fn shed(&self) {
        let mut guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let open = &mut guard.1;
        if let Some(id) = Self::oldest_idle(open, true).or_else(|| Self::oldest_idle(open, false)) {
            open.remove(&id).expect("found above").evict();
            self.metrics.connection_ended(Ended::Evicted.label());
        }
        self.metrics.connections.set(open.len() as i64);
    }

    fn leave(&self, id: u64, why: Ended) {
        let mut guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let open = &mut guard.1;
        // An evicted connection was counted when it was chosen.
        if open.remove(&id).is_some() {
            self.metrics.connection_ended(why.label());
        }
        self.metrics.connections.set(open.len() as i64);
        if open.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    fn is_empty(&self) -> bool {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).1.is_empty()
    }
}

/// Serves every listener until `shutdown` resolves, then lets requests in flight finish
/// (30 s at most).
pub async fn serve(
    apps: Arc<ArcSwap<App>>,
    listeners: Vec<(TcpListener, Surface)>,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.deadlines.first_request);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(H2_PING.0)).keep_alive_timeout(H2_PING.1);
    let metrics = apps.load().metrics.clone();
    let registry = Arc::new(Registry {
        open: Mutex::new((0, BTreeMap::new())),
        max: within_file_limit(limits.max_connections.max(1)),
        emptied: Notify::new(),
        metrics,
    });
    let (stop, stopping) = watch::channel(false);
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|(listener, surface)| {
            let accept = Accept {
                apps: apps.clone(),
                builder: builder.clone(),
                registry: registry.clone(),
                tls: tls.clone(),
                deadlines: limits.deadlines,
                surface,
                stopping: stopping.clone(),
            };
            tokio::spawn(accept.run(listener))
        })
        .collect();
    shutdown.await;
    let _ = stop.send(true);
    for a in accepting {
        let _ = a.await;
    }
    tracing::info!("shutting down: finishing requests in flight");
    let deadline = tokio::time::Instant::now() + DRAIN;
    let drained = async {
        loop {
            let emptied = registry.emptied.notified();
            if registry.is_empty() {
                return;
            }
            emptied.await;
        }
    };
    if tokio::time::timeout_at(deadline, drained).await.is_err() {
        tracing::warn!("requests still running after {DRAIN:?}; closing anyway");
        return;
    }
    // A write that outlived its answer (a 503 on the request timeout) still holds its in-flight
    // permit: exiting now would cut it where it stands, the half-write that running it on avoids.
    let app = apps.load();
    let running = app.max_in_flight - app.in_flight.available_permits();
    if running > 0 {
        tracing::info!(running, "shutting down: waiting for writes still running after their answer");
        let all = u32::try_from(app.max_in_flight).unwrap_or(u32::MAX);
        if tokio::time::timeout_at(deadline, app.in_flight.acquire_many(all)).await.is_err() {
            tracing::warn!("writes still running after {DRAIN:?}; closing anyway");
        }
    }
}

/// Descriptors left to everything but client connections: the directory pools, listeners,
/// log files, certificates being read.
const RESERVED_FILES: usize = 64;

/// `max_connections`, lowered to what the process's open-file limit allows: past it accept
/// fails, and so do the directory connections the requests need.
fn within_file_limit(max: usize) -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok());
    match soft {
        Some(files) if max + RESERVED_FILES > files => {
            let lowered = files.saturating_sub(RESERVED_FILES).max(1);
            tracing::warn!(
                max_connections = max,
                open_file_limit = files,
                "max_connections lowered to {lowered}: the open-file limit is too low for it (raise LimitNOFILE)"
            );
            lowered
        }
        _ => max,
    }
}

/// One listening address's accept loop.
struct Accept {
    apps: Arc<ArcSwap<App>>,
    builder: auto::Builder<TokioExecutor>,
    registry: Arc<Registry>,
    tls: Option<TlsAcceptor>,
    deadlines: Deadlines,
    surface: Surface,
    stopping: watch::Receiver<bool>,
}

impl Accept {
    async fn run(self, listener: TcpListener) {
        let mut stopping = self.stopping.clone();
        let mut backoff = Duration::ZERO;
        // Failures not yet logged, and when the next warning may be written.
        let (mut unreported, mut next_warning) = (0u64, tokio::time::Instant::now());
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = connection::stopped(&mut stopping) => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    backoff = Duration::ZERO;
                    self.start(stream);
                }
                Err(e) => {
                    // Out of file descriptors and the like: free one, wait, and say so at
                    // most every WARN_EVERY rather than once per attempt.
                    unreported += 1;
                    if tokio::time::Instant::now() >= next_warning {
                        tracing::warn!(error = %e, failures = unreported, "accept failed; backing off (file limit too low for max_connections?)");
                        (unreported, next_warning) = (0, tokio::time::Instant::now() + WARN_EVERY);
                    }
                    self.registry.metrics.accept_failed();
                    self.registry.shed();
                    backoff = (backoff * 2).clamp(BACKOFF.0, BACKOFF.1);
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    fn start(&self, stream: TcpStream) {
        let Some((id, conn)) = self.registry.admit() else { return };
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else { return self.registry.leave(id, Ended::Closed) };
        let Ok(peer) = stream.peer_addr() else { return self.registry.leave(id, Ended::Closed) };
        let context = (Arrival { local, peer, surface: self.surface }, self.deadlines);
        let apps = self.apps.clone();
        let (builder, registry, tls) = (self.builder.clone(), self.registry.clone(), self.tls.clone());
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            let why = match tls {
                None => connection::serve(stream, &builder, apps, &conn, context, stopping).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream));
                    tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(tls)) => connection::serve(tls, &builder, apps, &conn, context, stopping).await,
                            Ok(Err(e)) => { tracing::debug!(error = %e, "TLS handshake failed"); Ended::Closed }
                            Err(_) => { tracing::debug!("TLS handshake timed out"); Ended::NoRequest }
                        },
                        () = conn.evicted() => Ended::Evicted,
                    }
                }
            };
            registry.leave(id, why);
        });
    }
}
