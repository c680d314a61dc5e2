//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format. Each gateway has
//! its own registry rather than a global one, so several gateways can share a process (tests).
//! Label values come from small fixed sets (route templates, operation names, outcomes), never
//! from request data, so no client can make the series count grow.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The target's name (`default` for the top-level sections).
    target: String,
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LdapLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectLabels {
    /// The server's place in `[directory] url` (1 for the first): never the URL itself.
    server: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 1 ms to 16 s, doubling: from a cached lookup to a request that hit its timeout.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    requests: Histograms<RequestLabels>,
    /// Set when scraped, from the in-flight limiter.
    pub in_flight: Gauge,
    ldap_operations: Histograms<LdapLabels>,
    /// Open pooled connections; kept by the pool as it connects and discards.
    pub ldap_connections: Gauge,
    ldap_connects: Family<ConnectLabels, Counter>,
    ldap_drops: Family<DropLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
    /// Open client connections; kept by the listener.
    pub connections: Gauge,
    connections_ended: Family<EndLabels, Counter>,
    accept_failures: Counter,
}

impl Metrics {
    pub fn new(pool_size: usize) -> Metrics {
        let mut registry = Registry::with_prefix("scim_gateway");
        let requests = Histograms::<RequestLabels>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests by target, method, route template and status, with their latency",
            requests.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("http_requests_in_flight", "HTTP requests being served", in_flight.clone());
        let ldap_operations = Histograms::<LdapLabels>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "ldap_operation_duration_seconds",
            "Directory operations by kind and outcome, with their latency (retries included)",
            ldap_operations.clone(),
        );
        let pool = Gauge::<i64>::default();
        pool.set(pool_size as i64);
        registry.register("ldap_pool_size", "Connections the pool may hold", pool);
        let ldap_connections = Gauge::default();
        registry.register("ldap_connections", "Open, bound directory connections", ldap_connections.clone());
        let ldap_connects = Family::<ConnectLabels, Counter>::default();
        registry.register("ldap_connects", "Attempts to open and bind a connection, by server", ldap_connects.clone());
        let ldap_drops = Family::<DropLabels, Counter>::default();
        registry.register(
            "ldap_connections_dropped",
            "Pooled connections given up: found closed, failed the idle check, or failed an operation",
            ldap_drops.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register("cache_lookups", "Cache lookups by cache and result (hit or miss)", cache.clone());
        let connections = Gauge::default();
        registry.register("http_connections", "Open client connections", connections.clone());
        let connections_ended = Family::<EndLabels, Counter>::default();
        registry.register(
            "http_connections_ended",
            "Client connections that ended, by reason: closed (by the client), no_request, idle, evicted (gave way at max_connections), refused (at max_connections, none idle), shutdown",
            connections_ended.clone(),
        );
        let accept_failures = Counter::default();
        registry.register(
            "http_accept_failures",
            "Failed accepts (out of file descriptors and the like)",
            accept_failures.clone(),
        );
        Metrics {
            registry,
            requests,
            in_flight,
            ldap_operations,
            ldap_connections,
            ldap_connects,
            ldap_drops,
            cache,
            connections,
            connections_ended,
            accept_failures,
        }
    }

    pub fn request(&self, target: &str, method: &http::Method, route: String, status: u16, elapsed: Duration) {
        let method = match *method {
            http::Method::GET => "GET",
            http::Method::POST => "POST",
            http::Method::PUT => "PUT",
            http::Method::PATCH => "PATCH",
            http::Method::DELETE => "DELETE",
            _ => "other",
        };
        let target = target.to_owned();
        self.requests.get_or_create(&RequestLabels { target, method, route, status }).observe(elapsed.as_secs_f64());
    }

    pub fn ldap_operation(&self, operation: &'static str, outcome: &'static str, elapsed: Duration) {
        self.ldap_operations.get_or_create(&LdapLabels { operation, outcome }).observe(elapsed.as_secs_f64());
    }

    /// `server`: the position of the server in the URL list, from 1.
    pub fn ldap_connect(&self, server: usize, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.ldap_connects.get_or_create(&ConnectLabels { server: server.to_string(), outcome }).inc();
    }

    pub fn connection_ended(&self, reason: &'static str) {
        self.connections_ended.get_or_create(&EndLabels { reason }).inc();
    }

    pub fn accept_failed(&self) {
        self.accept_failures.inc();
    }

    /// `reason`: `closed`, `idle_check` or `failed`.
    pub fn ldap_connection_dropped(&self, reason: &'static str) {
        self.ldap_connections.dec();
        self.ldap_drops.get_or_create(&DropLabels { reason }).inc();
    }

    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        self.cache.get_or_create(&CacheLabels { cache, result: if hit { "hit" } else { "miss" } }).inc();
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
