//! Routing of SCIM endpoints below the base path, and the per-request envelope: in-flight
//! cap, auth, body limit, timeout, request id, the access log line and request metrics.

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
use super::response::{self, Body, Error};
use crate::directory::Directory;
use crate::metrics::{self, Metrics};
use crate::provision::{self, Groups, Resources, Users};
use crate::scim::discovery::{Advertised, Discovery, ResourceType};
use crate::scim::list::Query;

/// Everything a request needs, shared by all connections: one per target (the default one
/// holds the others in `targets`).
pub struct App {
    /// The target's name: `default`, or a `[[targets]]` name.
    pub name: String,
    pub base_path: String,
    /// `https://host` prefix for `meta.location`; from the Host header when `None`.
    pub public_url: Option<String>,
    pub tls: bool,
    pub max_body: usize,
    pub request_timeout: Duration,
    /// One permit per request in flight, `max_in_flight` in all (shared by the targets).
    pub in_flight: Arc<Semaphore>,
    pub max_in_flight: usize,
    pub auth: Authenticator,
    /// For `/readyz`.
    pub directory: Arc<dyn Directory>,
    pub metrics: Arc<Metrics>,
    pub users: Users,
    pub groups: Option<Groups>,
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
            "Users" => Some(&self.users),
            "Groups" => self.groups.as_ref().map(|g| g as &dyn Resources),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Entry point for every request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let app = app.target_for(req.uri().path());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let span = tracing::info_span!("request", id = %request_id, target_name = %app.name, method = %req.method(), path = %req.uri().path(), caller = tracing::field::Empty);
    let started = Instant::now();
    let (method, template) = (req.method().clone(), template(&app.base_path, req.uri().path()));
    let mut resp = async {
        // Probes and scrapes stay answerable under overload: they are cheap and bounded.
        let _permit = match template.as_str() {
            "/healthz" | "/readyz" | "/metrics" => None,
            _ => match app.in_flight.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => return response::error(&Error::Overloaded, app.auth.challenge()),
            },
        };
        // Its own task, so that a bug that panics costs one request a 500, not the connection.
        let task = tokio::spawn({
            let app = app.clone();
            async move { route(&app, req).await }.in_current_span()
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
                abort.abort();
                response::error(&Error::Timeout, app.auth.challenge())
            }
        }
    }
    .instrument(span.clone())
    .await;
    span.in_scope(|| {
        tracing::info!(status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "done")
    });
    app.metrics.request(&app.name, &method, template, resp.status().as_u16(), started.elapsed());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

async fn route(app: &App, req: Request<Incoming>) -> Result<Response<Body>> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET {
        match path.as_str() {
            "/healthz" => return Ok(response::empty(StatusCode::OK)),
            "/readyz" => {
                // Ready when every target's directory answers.
                for a in std::iter::once(app).chain(app.targets.iter().map(|t| t.as_ref())) {
                    a.directory.ping().await.map_err(provision::Error::from)?;
                }
                return Ok(response::empty(StatusCode::OK));
            }
            "/metrics" => {
                app.metrics.in_flight.set((app.max_in_flight - app.in_flight.available_permits()) as i64);
                return Ok(response::text(metrics::CONTENT_TYPE, app.metrics.encode()));
            }
            _ => {}
        }
    }
    let Some(rest) = path.strip_prefix(&app.base_path).filter(|r| r.is_empty() || r.starts_with('/')) else {
        return Err(Error::NoRoute(format!("nothing at {path}; the SCIM base path is {}", app.base_path)));
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
    let query_params = || Query::from_pairs(pairs(&query).iter().map(|(k, v)| (k.as_str(), v.as_str())));
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
                    Ok(response::json(StatusCode::OK, &service.list(&query_params()?, caller, &root).await?))
                }
                (&Method::POST, [".search"]) => {
                    let q = Query::from_body(&body_json(app, req).await?)?;
                    Ok(response::json(StatusCode::OK, &service.list(&q, caller, &root).await?))
                }
                (&Method::POST, []) => {
                    let body = body_json(app, req).await?;
                    Ok(response::resource(StatusCode::CREATED, &service.create(&body, &root).await?))
                }
                (&Method::GET, [id]) => Ok(ok(service.get(id, &query_params()?.projection, &root).await?)),
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

/// Absolute URL of the SCIM root, for `meta.location` and discovery. HTTP/2 carries the
/// host in the URI's authority, HTTP/1.1 in the Host header.
fn root_url(app: &App, req: &Request<Incoming>) -> String {
    let origin = app.public_url.clone().unwrap_or_else(|| {
        let header = || req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
        let host = req.uri().authority().map(|a| a.as_str()).or_else(header).unwrap_or("localhost");
        format!("{}://{host}", if app.tls { "https" } else { "http" })
    });
    format!("{}{}", origin.trim_end_matches('/'), app.base_path)
}

fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// The JSON body, refused beyond the configured size before it is read whole.
async fn body_json(app: &App, req: Request<Incoming>) -> Result<Value> {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > app.max_body) {
        return Err(Error::PayloadTooLarge(app.max_body));
    }
    let bytes: Bytes = Limited::new(req.into_body(), app.max_body)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => Error::PayloadTooLarge(app.max_body),
            Err(e) => Error::BadJson(format!("the body could not be read: {e}")),
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| Error::BadJson(e.to_string()))
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
