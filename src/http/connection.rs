//! One client connection, served by hyper (HTTP/1.1 or HTTP/2), and what closes it besides
//! the client: no whole request in time after it opened, no request for a while after the
//! last one, the listener needing its place, or shutdown.
//!
//! hyper's own HTTP/1 header timeout only runs once bytes arrive, and HTTP/2 has none: a
//! socket that sends nothing, or only the HTTP/2 preface, stayed open for ever. So each
//! connection counts the requests it is serving, and a watchdog closes it when it has been
//! without one for too long.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::router::{handle, App};

/// Time an HTTP/2 client has to finish its streams after a GOAWAY, or an idle HTTP/1
/// connection to be shut; after it the socket is dropped.
const GRACE: Duration = Duration::from_secs(1);
/// How often a connection's deadline is looked at again; a timeout fires up to this late.
const TICK: Duration = Duration::from_millis(500);

/// Where a request arrived, put in its extensions by the listener.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The address the connection was accepted on (what a valid `Host` names).
    pub local: SocketAddr,
    /// The client's address (OAuth's sign-in limit per address).
    pub peer: SocketAddr,
    pub surface: Surface,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// SCIM and the probes (no `probe_listen`).
    All,
    /// SCIM only: the probes and `/metrics` have their own address.
    Scim,
    /// `/healthz`, `/readyz` and `/metrics` only.
    Probes,
}

/// The time limits of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From accept to the first request (its head complete).
    pub first_request: Duration,
    /// From the end of a request to the start of the next.
    pub idle: Duration,
}

/// The state of one connection, shared by its task, its requests and the listener.
#[derive(Debug)]
pub struct Conn {
    busy: AtomicUsize,
    served: AtomicU64,
    /// When it was accepted, then when its last request ended.
    quiet_since: Mutex<Instant>,
    /// Set by the listener to take the connection's place.
    evict: Notify,
}

/// Held while a request is served on a connection.
pub struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.quiet_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.busy.fetch_sub(1, SeqCst);
    }
}

/// Why a connection ended, for the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed it, or an HTTP error did.
    Closed,
    /// No whole request within `first_request` of opening.
    NoRequest,
    Idle,
    Evicted,
    /// Closed at once: at the cap with no idle connection to give way.
    Refused,
    Shutdown,
}

impl Ended {
    pub fn label(self) -> &'static str {
        match self {
            Ended::Closed => "closed",
            Ended::NoRequest => "no_request",
            Ended::Idle => "idle",
            Ended::Evicted => "evicted",
            Ended::Refused => "refused",
            Ended::Shutdown => "shutdown",
        }
    }
}

impl Conn {
    pub fn new() -> Arc<Conn> {
        Arc::new(Conn {
            busy: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            quiet_since: Mutex::new(Instant::now()),
            evict: Notify::new(),
        })
    }

    /// Marks a request as being served until the guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.served.fetch_add(1, SeqCst);
        self.busy.fetch_add(1, SeqCst);
        Busy(self.clone())
    }

    /// No request in progress; `fresh`: none ever made (the first to give way at the cap).
    pub fn idle(&self, fresh: bool) -> bool {
        self.busy.load(SeqCst) == 0 && (!fresh || self.served.load(SeqCst) == 0)
    }

    pub fn evict(&self) {
        // notify_one keeps the wake-up if the task is not waiting at this instant.
        self.evict.notify_one();
    }

    pub async fn evicted(&self) {
        self.evict.notified().await
    }

    /// When the connection may be closed if nothing happens before, and why.
    fn deadline(&self, d: Deadlines) -> (Instant, Ended) {
        let since = *self.quiet_since.lock().unwrap_or_else(|p| p.into_inner());
        match (self.busy.load(SeqCst), self.served.load(SeqCst)) {
            // Busy: look again after a while (the request has its own timeouts).
            (1.., _) => (Instant::now() + d.idle, Ended::Idle),
            (0, 0) => (since + d.first_request, Ended::NoRequest),
            (0, _) => (since + d.idle, Ended::Idle),
        }
    }
}

/// Serves `io` until the client closes it or one of the limits does.
pub async fn serve<I>(
    io: I,
    builder: &auto::Builder<TokioExecutor>,
    apps: Arc<ArcSwap<App>>,
    conn: &Arc<Conn>,
    (arrival, deadlines): (Arrival, Deadlines),
    mut shutdown: watch::Receiver<bool>,
) -> Ended
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn({
        let conn = conn.clone();
        move |mut req| {
            // The configuration current when the request arrives serves it to the end.
            let app = apps.load_full();
            let busy = conn.begin();
            req.extensions_mut().insert(arrival);
            async move {
                let response = handle(app, req).await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(response)
            }
        }
    });
    let served = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    loop {
        let (at, why) = conn.deadline(deadlines);
        // Look again at least every TICK: a request may have begun or ended meanwhile.
        let at = at.min(Instant::now() + TICK);
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return Ended::Closed;
            }
            () = conn.evicted() => return Ended::Evicted,
            () = stopped(&mut shutdown) => {
                served.as_mut().graceful_shutdown();
                let _ = served.as_mut().await;
                return Ended::Shutdown;
            }
            () = tokio::time::sleep_until(at) => {
                if conn.deadline(deadlines).0 <= Instant::now() && conn.idle(false) {
                    served.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GRACE, served.as_mut()).await;
                    return why;
                }
            }
        }
    }
}

/// Resolves once shutdown has begun (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Not holding the guard `wait_for` returns: the future must stay `Send`.
    let _ = shutdown.wait_for(|stop| *stop).await.is_ok();
}
