//! HTTP responses, and the one place where any failure becomes a SCIM error response.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::directory::DirectoryError;
use crate::provision;
use crate::scim;
use crate::scim::{Json, ScimType, ERROR_SCHEMA};

pub type Body = Full<Bytes>;

/// Seconds an IdP should wait before retrying when the directory is unavailable.
const RETRY_AFTER_UNAVAILABLE: &str = "5";
/// ... and when the gateway is at its in-flight cap, which clears as fast as requests finish.
const RETRY_AFTER_OVERLOADED: &str = "1";

/// Why a request failed, from the HTTP layer down.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication required: a valid bearer token or Basic credential")]
    Unauthorized,
    /// A bearer JWT that failed its checks (RFC 6750 §3.1 `invalid_token`).
    #[error("the access token is not accepted: {0}")]
    InvalidToken(&'static str),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    NoRoute(String),
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// Optional parts of RFC 7644 the gateway does not offer (e.g. queries across resource types).
    #[error("{0}")]
    NotImplemented(&'static str),
    #[error("the request took longer than the configured request_timeout_secs")]
    Timeout,
    #[error("the request body took longer than body_read_timeout_secs to arrive")]
    BodyTimeout,
    /// `/readyz`: why goes to the log, not to the unauthenticated caller.
    #[error("the directory does not answer")]
    NotReady,
    #[error("the gateway is serving as many requests as it may (server.max_in_flight); retry shortly")]
    Overloaded,
    #[error("internal error: the gateway logged it with this request's X-Request-Id")]
    Internal,
    #[error("the body is not valid JSON: {0}")]
    BadJson(String),
    #[error(transparent)]
    Provision(#[from] provision::Error),
}

impl From<scim::Error> for Error {
    fn from(e: scim::Error) -> Self {
        Error::Provision(e.into())
    }
}

pub fn json(status: StatusCode, value: &Value) -> Response<Body> {
    text_json(status, Json { version: None, ..Json::of(value) })
}

/// JSON already serialised (a read's answer), with its `ETag` when it has a version.
pub fn text_json(status: StatusCode, json: Json) -> Response<Body> {
    let mut r = Response::new(Full::new(json.text));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/scim+json"));
    if let Some(v) = json.version.and_then(|v| HeaderValue::from_str(&v).ok()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// A resource, with its `ETag` (and `Location` when created).
pub fn resource(status: StatusCode, value: &Value) -> Response<Body> {
    let mut r = json(status, value);
    let meta = &value["meta"];
    if let Some(v) = meta["version"].as_str().and_then(|v| HeaderValue::from_str(v).ok()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED {
        if let Some(l) = meta["location"].as_str().and_then(|l| HeaderValue::from_str(l).ok()) {
            r.headers_mut().insert(header::LOCATION, l);
        }
    }
    r
}

pub fn text(content_type: &'static str, text: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// Status and `scimType` of each failure (RFC 7644 §3.12).
fn classify(e: &Error) -> (StatusCode, Option<ScimType>) {
    use provision::Error as P;
    match e {
        Error::Unauthorized | Error::InvalidToken(_) => (StatusCode::UNAUTHORIZED, None),
        Error::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, None),
        Error::NoRoute(_) => (StatusCode::NOT_FOUND, None),
        Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, None),
        Error::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, None),
        Error::Timeout | Error::NotReady => (StatusCode::SERVICE_UNAVAILABLE, None),
        Error::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, None),
        Error::Overloaded => (StatusCode::TOO_MANY_REQUESTS, None),
        Error::Internal => (StatusCode::INTERNAL_SERVER_ERROR, None),
        Error::BadJson(_) => (StatusCode::BAD_REQUEST, Some(ScimType::InvalidSyntax)),
        Error::Provision(p) => match p {
            // Every client error in SCIM's terms, whichever layer found it (invalidValue,
            // invalidFilter, mutability, …): one arm.
            P::Scim(e) => (StatusCode::BAD_REQUEST, Some(e.kind)),
            P::NotFound(_) => (StatusCode::NOT_FOUND, None),
            P::Uniqueness(_) => (StatusCode::CONFLICT, Some(ScimType::Uniqueness)),
            P::PreconditionFailed => (StatusCode::PRECONDITION_FAILED, None),
            P::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
            // Retried by the IdP: a PATCH or PUT again changes nothing more, a create gets 409.
            P::Unconfirmed(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            P::Directory(d) => match d {
                DirectoryError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
                DirectoryError::AlreadyExists | DirectoryError::NotUnique(_) => {
                    (StatusCode::CONFLICT, Some(ScimType::Uniqueness))
                }
                DirectoryError::NoSuchEntry => (StatusCode::NOT_FOUND, None),
                DirectoryError::Rejected { .. } | DirectoryError::PasswordPolicy(_) => {
                    (StatusCode::BAD_REQUEST, Some(ScimType::InvalidValue))
                }
                DirectoryError::AccessDenied(_) => (StatusCode::FORBIDDEN, None),
                DirectoryError::SizeLimit | DirectoryError::Unsupported(_) | DirectoryError::Other { .. } => {
                    (StatusCode::INTERNAL_SERVER_ERROR, None)
                }
            },
        },
    }
}

/// The status `e` is answered with.
pub fn status(e: &Error) -> StatusCode {
    classify(e).0
}

/// The SCIM error response for `e`. Details name attributes and directory diagnostics,
/// never a credential or a password: those never enter an error's text.
pub fn error(e: &Error, challenge: &'static str) -> Response<Body> {
    let (status, scim_type) = classify(e);
    // Not for /readyz: the probe logged why itself, once per check, not once per call.
    if status.is_server_error() && !matches!(e, Error::NotImplemented(_) | Error::NotReady) {
        tracing::warn!(error = %e, "request failed");
    }
    let mut body = json!({"schemas": [ERROR_SCHEMA], "status": status.as_u16().to_string(), "detail": e.to_string()});
    if let Some(t) = scim_type {
        body["scimType"] = t.as_str().into();
    }
    let mut r = json(status, &body);
    let headers = r.headers_mut();
    match status {
        StatusCode::UNAUTHORIZED => {
            let value = match e {
                Error::InvalidToken(why) => HeaderValue::from_str(&format!(
                    "Bearer realm=\"scim-gateway\", error=\"invalid_token\", error_description=\"{why}\""
                ))
                .unwrap_or(HeaderValue::from_static(challenge)),
                _ => HeaderValue::from_static(challenge),
            };
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_UNAVAILABLE));
        }
        StatusCode::TOO_MANY_REQUESTS => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_OVERLOADED));
        }
        _ => {}
    }
    r
}
