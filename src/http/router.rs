//! Routing of SCIM endpoints below the base path, and the per-request envelope: in-flight
//! cap, auth, body limit, timeout, request id, the access log line and request metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::auth::Authenticator;
use super::backend::Backend;
use super::connection::{Arrival, Surface};
use super::probe::Readiness;
use super::response::{self, Body, Error};
use crate::config::Secret;
use crate::mapping::{GroupMapping, UserMapping};
use crate::metrics::{self, Metrics};
use crate::provision::{self, Resources};
use crate::scim::discovery::{Advertised, Discovery, ResourceType};
use crate::scim::limits::Limits;
use crate::scim::list::Query;

/// Everything a request needs, shared by all connections: one per target (the default one
/// holds the others in `targets`).
pub struct App {
    /// The target's name: `default`, or a `[[targets]]` name.
    pub name: String,
    pub base_path: String,
    /// `https://host` prefix for `meta.location`; when `None`, see [`root_url`].
    pub public_url: Option<String>,
    pub tls: bool,
    pub max_body: usize,
    pub body_read_timeout: Duration,
    pub limits: Limits,
    pub request_timeout: Duration,
    /// One permit per request in flight, `max_in_flight` in all (shared by the targets).
    pub in_flight: Arc<Semaphore>,
    pub max_in_flight: usize,
    pub auth: Authenticator,
    /// What the users and groups live in (`/readyz`, `check`, `explain`).
    pub backend: Backend,
    pub readiness: Readiness,
    /// Asked of `/metrics` callers when set.
    pub metrics_token: Option<Secret>,
    pub metrics: Arc<Metrics>,
    pub users: Arc<dyn Resources>,
    pub groups: Option<Arc<dyn Resources>>,
    /// The compiled rules, for `check` and `explain`.
    pub user_mapping: UserMapping,
    pub group_mapping: Option<GroupMapping>,
    /// What discovery offers per resource type; documents are built per request since
    /// their URLs follow the Host.
    pub advertised: Vec<(ResourceType, Vec<Advertised>)>,
    /// The other targets, each at its own base path.
    pub targets: Vec<Arc<App>>,
}

impl App {
    /// The target whose base path `path` is below (the longest such), else this one.
    pub fn target_for(self: &Arc<Self>, path: &str) -> Arc<App> {
        let below =
            |a: &&Arc<App>| path.strip_prefix(a.base_path.as_str()).is_some_and(|r| r.is_empty() || r.starts_with('/'));
        let best = self.targets.iter().filter(below).max_by_key(|a| a.base_path.len());
        match best {
            Some(t) if !below(&self) || t.base_path.len() > self.base_path.len() => t.clone(),
            _ => self.clone(),
        }
    }

    fn discovery(&self, root: &str) -> Discovery {
        Discovery::new(root, &self.advertised, self.auth.has_bearer(), self.auth.has_basic(), self.auth.has_oauth())
    }

    /// The service behind `/Users` or `/Groups`.
    pub fn resources(&self, endpoint: &str) -> Option<&dyn Resources> {
        match endpoint {
            "Users" => Some(self.users.as_ref()),
            "Groups" => self.groups.as_deref(),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Entry point for every request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let app = app.target_for(req.uri().path());
    let request_id = request_id(req.headers().get("x-request-id"));
    let span = tracing::info_span!("request", id = %request_id, target_name = %app.name, method = %req.method(), path = %req.uri().path(), caller = tracing::field::Empty);
    let started = Instant::now();
    let (method, template) = (req.method().clone(), template(&app.base_path, req.uri().path()));
    // A write is never cut short: past the timeout the client gets its 503, and the write
    // runs on to its end (compensation, cache invalidation, audit line included).
    let write = is_write(&method, &template);
    let version = req.version();
    let mut resp = async {
        // The body first, then the in-flight slot: a slot stands for work on the directory
        // and the CPU, which a client still sending its body is not yet asking for. Taken
        // before, 260 clients trickling their bodies held all 256 slots and everyone else got
        // 429. Bodies being read are bounded instead by max_connections, max_body_bytes and
        // body_read_timeout_secs.
        let (parts, body) = req.into_parts();
        let req = match read_body(&app, &parts, body).await {
            Ok(body) => Request::from_parts(parts, body),
            Err(e) => return response::error(&e, app.auth.challenge()),
        };
        // Probes and scrapes stay answerable under overload: they are cheap and bounded.
        let permit = match template.as_str() {
            "/healthz" | "/readyz" | "/metrics" => None,
            _ => match app.in_flight.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return response::error(&Error::Overloaded, app.auth.challenge()),
            },
        };
        let answered = Arc::new(AtomicBool::new(false));
        // Its own task, so that a bug that panics costs one request a 500, not the connection.
        // The permit goes with it: a write running on after its answer still counts in flight.
        let task = tokio::spawn({
            let (app, answered) = (app.clone(), answered.clone());
            provision::ANSWERED
                .scope(answered.clone(), async move {
                    let _permit = permit;
                    let result = route(&app, req).await;
                    if answered.load(Ordering::Acquire) {
                        let status =
                            result.as_ref().map_or_else(|e| response::status(e).as_u16(), |r| r.status().as_u16());
                        tracing::warn!(status, "write finished after its answer (the client was told 503)");
                    }
                    result
                })
                .in_current_span()
        });
        let abort = task.abort_handle();
        match tokio::time::timeout(app.request_timeout, task).await {
            Ok(Ok(Ok(r))) => r,
            Ok(Ok(Err(e))) => response::error(&e, app.auth.challenge()),
            Ok(Err(panicked)) => {
                tracing::error!(error = %panicked, "request handler panicked");
                response::error(&Error::Internal, app.auth.challenge())
            }
            Err(_) => {
                match write {
                    true => answered.store(true, Ordering::Release),
                    false => abort.abort(),
                }
                response::error(&Error::Timeout, app.auth.challenge())
            }
        }
    }
    .instrument(span.clone())
    .await;
    span.in_scope(|| {
        // The access line: its own target, written in batches (see `logs`).
        tracing::info!(target: "access", status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "done")
    });
    app.metrics.request(&app.name, &method, template, resp.status().as_u16(), started.elapsed());
    if resp.status() == StatusCode::REQUEST_TIMEOUT && version < http::Version::HTTP_2 {
        // The rest of the body may still come: the connection cannot carry another request.
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Whether a request may change the directory (and so must never be cancelled half-way).
fn is_write(method: &Method, template: &str) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) && !template.ends_with("/.search")
}

/// The caller's `X-Request-Id` when it is an id (letters, digits, `-_.:`, 1 to 64), else a
/// new one: it is written into log lines, where a free-form value could forge fields.
fn request_id(sent: Option<&HeaderValue>) -> String {
    let valid =
        |v: &&str| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    sent.and_then(|v| v.to_str().ok()).filter(valid).map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

async fn route(app: &App, req: Request<Bytes>) -> Result<Response<Body>> {
    let path = req.uri().path().to_owned();
    let surface = req.extensions().get::<Arrival>().map_or(Surface::All, |a| a.surface);
    if req.method() == Method::GET && surface != Surface::Scim {
        match path.as_str() {
            "/healthz" => return Ok(response::empty(StatusCode::OK)),
            "/readyz" => {
                // Ready when every target's directory answers.
                let all = std::iter::once(app).chain(app.targets.iter().map(|t| t.as_ref()));
                return match app.readiness.check(all.map(|a| (a.name.as_str(), &a.backend))).await {
                    true => Ok(response::empty(StatusCode::OK)),
                    false => Err(Error::NotReady),
                };
            }
            "/metrics" => {
                if let Some(token) = &app.metrics_token {
                    let sent = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                    let given = sent.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
                    if !bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.expose().as_bytes())) {
                        return Err(Error::Unauthorized);
                    }
                }
                app.metrics.in_flight.set((app.max_in_flight - app.in_flight.available_permits()) as i64);
                return Ok(response::text(metrics::CONTENT_TYPE, app.metrics.encode()));
            }
            _ => {}
        }
    }
    // Unknown paths are answered alike, without naming the base path: the caller may not
    // have authenticated.
    let rest = path.strip_prefix(&app.base_path).filter(|r| r.is_empty() || r.starts_with('/'));
    let Some(rest) = rest.filter(|_| surface != Surface::Probes) else {
        return Err(Error::NoRoute("no such endpoint".into()));
    };
    if let (Some(oauth), Some(endpoint)) = (&app.auth.oauth, rest.strip_prefix("/oauth/")) {
        if let Some(answer) = super::oauth::route(oauth, endpoint, req).await {
            return answer;
        }
        return Err(Error::NoRoute(format!("no OAuth endpoint at {rest}")));
    }
    let header = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let caller = app.auth.caller(header(header::AUTHORIZATION)).await?;
    let caller = caller.as_str();
    tracing::Span::current().record("caller", caller);

    let root = root_url(app, &req);
    let query = req.uri().query().unwrap_or_default().to_owned();
    let if_match = header(header::IF_MATCH).map(str::to_owned);
    let method = req.method().clone();
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let mut segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let Some(first) = segments.first_mut() {
        *first = canonical(first);
    }
    let query_params = || {
        let pairs = pairs(&query);
        if let Some((_, filter)) = pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case("filter")) {
            app.limits.check_filter(filter)?;
        }
        Query::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(Error::from)
    };
    let ok = |v: Value| response::resource(StatusCode::OK, &v);

    match (&method, segments.as_slice()) {
        (&Method::GET, ["ServiceProviderConfig"]) => {
            Ok(response::json(StatusCode::OK, &app.discovery(&root).service_provider_config))
        }
        (&Method::GET, ["ResourceTypes"]) => {
            Ok(response::json(StatusCode::OK, &app.discovery(&root).resource_types_list()))
        }
        (&Method::GET, ["Schemas"]) => Ok(response::json(StatusCode::OK, &app.discovery(&root).schemas_list())),
        (&Method::GET, ["ResourceTypes", id]) => discovered(app.discovery(&root).resource_type(id).cloned(), id),
        (&Method::GET, ["Schemas", id]) => discovered(app.discovery(&root).schema(id).cloned(), id),
        // RFC 7644 §3.4.2 and §3.4.3: a query at the root spans every resource type; optional.
        (&Method::GET, []) | (&Method::POST, [".search"]) => {
            Err(Error::NotImplemented("queries across resource types are not supported: query /Users or /Groups"))
        }
        (_, [endpoint, tail @ ..]) if app.resources(endpoint).is_some() => {
            let service = app.resources(endpoint).expect("checked by the guard");
            match (&method, tail) {
                (&Method::GET, []) => {
                    Ok(response::text_json(StatusCode::OK, service.list(&query_params()?, caller, &root).await?))
                }
                (&Method::POST, [".search"]) => {
                    let q = Query::from_body(&body_json(app, req).await?)?;
                    Ok(response::text_json(StatusCode::OK, service.list(&q, caller, &root).await?))
                }
                (&Method::POST, []) => {
                    let body = body_json(app, req).await?;
                    Ok(response::resource(StatusCode::CREATED, &service.create(&body, &root).await?))
                }
                (&Method::GET, [id]) => {
                    Ok(response::text_json(StatusCode::OK, service.get(id, &query_params()?.projection, &root).await?))
                }
                (&Method::PUT, [id]) => {
                    let body = body_json(app, req).await?;
                    Ok(ok(service.replace(id, &body, if_match.as_deref(), &root).await?))
                }
                (&Method::PATCH, [id]) => {
                    let projection = query_params()?.projection;
                    let body = body_json(app, req).await?;
                    match service.patch(id, &body, if_match.as_deref(), &projection, &root).await? {
                        Some(v) => Ok(ok(v)),
                        None => Ok(response::empty(StatusCode::NO_CONTENT)),
                    }
                }
                (&Method::DELETE, [id]) => {
                    service.delete(id, if_match.as_deref()).await?;
                    Ok(response::empty(StatusCode::NO_CONTENT))
                }
                (_, [] | [_]) => Err(Error::MethodNotAllowed),
                _ => Err(Error::NoRoute(format!("no SCIM endpoint at {rest}"))),
            }
        }
        (_, ["ServiceProviderConfig" | "ResourceTypes" | "Schemas", ..]) => Err(Error::MethodNotAllowed),
        _ => Err(Error::NoRoute(format!("no SCIM endpoint at {rest}"))),
    }
}

/// The endpoint names RFC 7644 defines.
const ENDPOINTS: [&str; 7] = ["Users", "Groups", "Me", "Bulk", "ServiceProviderConfig", "ResourceTypes", "Schemas"];

/// `segment` spelled as RFC 7644 spells the endpoint it names, whatever its case: some
/// clients lowercase paths (`/users`).
fn canonical(segment: &str) -> &str {
    ENDPOINTS.iter().find(|e| e.eq_ignore_ascii_case(segment)).copied().unwrap_or(segment)
}

/// The route a path takes, as a template (`/Users/{id}`) for metric labels: ids never become
/// label values, and every unknown path shares one.
fn template(base_path: &str, path: &str) -> String {
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return path.to_owned();
    }
    let Some(rest) = path.strip_prefix(base_path).filter(|r| r.is_empty() || r.starts_with('/')) else {
        return "unmatched".to_owned();
    };
    match rest.split('/').filter(|s| !s.is_empty()).map(canonical).collect::<Vec<_>>().as_slice() {
        [r] if ENDPOINTS.contains(r) => format!("/{r}"),
        [r, ".search"] if ENDPOINTS.contains(r) => format!("/{r}/.search"),
        ["oauth", e @ ("authorize" | "token" | "revoke")] => format!("/oauth/{e}"),
        [r, _] if ENDPOINTS.contains(r) => format!("/{r}/{{id}}"),
        _ => "unmatched".to_owned(),
    }
}

fn discovered(doc: Option<Value>, id: &str) -> Result<Response<Body>> {
    doc.map(|d| response::json(StatusCode::OK, &d))
        .ok_or_else(|| Error::NoRoute(format!("no discovery document {id:?}")))
}

/// Absolute URL of the SCIM root, for `Location`, `meta.location` and discovery: the
/// configured `public_url`. Without one, the host the request names (the URI's authority in
/// HTTP/2, the Host header in HTTP/1.1) only when it is the address the connection arrived
/// on, else that address: a client cannot make the gateway name a host of its choosing.
fn root_url(app: &App, req: &Request<Bytes>) -> String {
    let origin = app.public_url.clone().unwrap_or_else(|| {
        let header = || req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
        let named = req.uri().authority().map(|a| a.as_str()).or_else(header);
        let host = match (named, req.extensions().get::<Arrival>()) {
            (Some(h), Some(a)) if names(h, a.local) => h.to_owned(),
            (_, Some(a)) => a.local.to_string(),
            (_, None) => "localhost".to_owned(),
        };
        format!("{}://{host}", if app.tls { "https" } else { "http" })
    });
    format!("{}{}", origin.trim_end_matches('/'), app.base_path)
}

/// Whether a Host value names `local`: the same address, or `localhost` on a loopback one.
fn names(host: &str, local: std::net::SocketAddr) -> bool {
    host.parse::<std::net::SocketAddr>().is_ok_and(|h| h == local)
        || (local.ip().is_loopback() && host.eq_ignore_ascii_case(&format!("localhost:{}", local.port())))
}

fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// The body, refused beyond the configured size before it is read whole, and cut off when
/// it takes longer than `body_read_timeout` to arrive.
async fn read_body(app: &App, parts: &http::request::Parts, body: Incoming) -> Result<Bytes> {
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > app.max_body) {
        return Err(Error::PayloadTooLarge(app.max_body));
    }
    let read = Limited::new(body, app.max_body).collect();
    let collected = tokio::time::timeout(app.body_read_timeout, read).await.map_err(|_| Error::BodyTimeout)?;
    let collected = collected.map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
        Ok(_) => Error::PayloadTooLarge(app.max_body),
        Err(e) => Error::BadJson(format!("the body could not be read: {e}")),
    })?;
    Ok(collected.to_bytes())
}

/// The JSON body, within `[limits]`.
async fn body_json(app: &App, req: Request<Bytes>) -> Result<Value> {
    let value = serde_json::from_slice(req.body()).map_err(|e| Error::BadJson(e.to_string()))?;
    app.limits.check_body(&value)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::template;

    #[test]
    fn metric_routes_are_templates() {
        let t = |p: &str| template("/scim/v2", p);
        assert_eq!(t("/scim/v2/Users"), "/Users");
        assert_eq!(t("/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"), "/Users/{id}");
        assert_eq!(t("/scim/v2/Users/.search"), "/Users/.search");
        assert_eq!(t("/scim/v2/Groups/x"), "/Groups/{id}");
        assert_eq!(t("/readyz"), "/readyz");
        assert_eq!(t("/scim/v2/users/x"), "/Users/{id}", "endpoint names ignore case");
        assert_eq!(t("/scim/v2/oauth/token"), "/oauth/token");
        for unknown in ["/scim/v2/Users/a/b", "/scim/v2/Nope", "/scim/v2x/Users", "/x", "/scim/v2"] {
            assert_eq!(t(unknown), "unmatched", "{unknown}");
        }
    }
}
