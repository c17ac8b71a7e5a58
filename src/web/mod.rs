//! The HTTP side of `curator serve`: the JSON API under `/api/v1` (`api`), the read-only pages
//! (`ui`), and `/healthz`, `/readyz` and `/metrics`. Handlers are thin: they read the store and
//! the scheduler, or queue work for the server's workers. Who may do what is decided here, in
//! [`Access`]; every failure becomes one JSON shape through [`ApiError`].

pub mod api;
pub mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::config::Config;
use crate::provider::Registry;
use crate::run::Runner;
use crate::schedule::scheduler::Scheduler;
use crate::store::{Store, StoreError};

/// What the handlers share: the server's store, config, runner, scheduler and providers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub runner: Arc<Runner>,
    pub scheduler: Arc<Scheduler>,
    pub registry: Arc<Registry>,
    pub access: Arc<Access>,
    /// Wakes the server's queue worker when a run is queued, so Run now starts at once.
    pub queued: Arc<Notify>,
    /// Set once the server's first reconcile pass has finished.
    pub ready: Arc<AtomicBool>,
    /// Where `jobs.d/` is inside its Git work tree (`jobs.d`, `deploy/jobs.d`), for the
    /// repository paths of job files; `None` outside Git.
    pub jobs_dir_in_repo: Option<PathBuf>,
}

impl AppState {
    /// Whether the first reconcile pass has finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// The whole HTTP surface: API, pages, health, readiness and metrics.
pub fn router(state: AppState) -> Router {
    let (api, _) = api::router().split_for_parts();
    Router::new()
        .merge(api)
        .merge(ui::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard_reads))
        .layer(axum::middleware::from_fn(api_error_shape))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Gives the API's answers that did not come from a handler (an unknown route, a method a
/// route does not take, a query or path that does not parse) the one error shape.
async fn api_error_shape(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    // A page whose query or path did not parse gets an HTML page like any other page error.
    if !path.starts_with("/api/") && is_text && status == StatusCode::BAD_REQUEST {
        let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
        let message = rejection_message(&String::from_utf8_lossy(&text), &path, &query);
        return ui::error_page(status, message);
    }
    // A path nothing serves gets a page saying so, not an empty answer.
    let is_empty = response.headers().get(header::CONTENT_TYPE).is_none();
    if !path.starts_with("/api/") && status == StatusCode::NOT_FOUND && is_empty {
        let message = format!("there is no page at `{path}`: the jobs are at /");
        return ui::error_page(status, message);
    }
    if !path.starts_with("/api/")
        || is_json
        || !(status.is_client_error() || status.is_server_error())
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("no-route", no_route_message(&path)),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method-not-allowed", format!("`{method}` is not allowed on `{path}`"))
        }
        _ if status.is_client_error() => ("bad-request", rejection_message(&text, &path, &query)),
        _ => ("internal", "the server failed to answer; its log has the details".into()),
    };
    let body = ErrorBody {
        status: status.as_u16(),
        code: code.into(),
        message,
        file: None,
        repository_path: None,
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        response.headers_mut().insert(header::ALLOW, allow.clone());
    }
    response
}

/// Why no route took `path`; under `/api/v1/jobs/`, most likely a job ID with its `/` unencoded.
fn no_route_message(path: &str) -> String {
    let routes = "the routes are in /api/v1/openapi.json";
    let Some(rest) = path.strip_prefix("/api/v1/jobs/").filter(|r| r.contains('/')) else {
        return format!("no route `{path}`: {routes}");
    };
    // `manga/curated-status/runs` keeps its last segment when it names a route of a job.
    let (id, tail) = match rest.rsplit_once('/') {
        Some((id, last @ ("runs" | "run" | "preview"))) if id.contains('/') => {
            (id, format!("/{last}"))
        }
        _ => (rest, String::new()),
    };
    let encoded = format!("/api/v1/jobs/{}{tail}", id.replace('/', "%2F"));
    format!("no route `{path}`: a job ID's `/` is written `%2F` (`{encoded}`)")
}

/// The reason a query or path that did not parse was refused, in words instead of the parser's:
/// "`sample` must be a whole number, not `abc`", "`abc` is not a run number".
fn rejection_message(text: &str, path: &str, query: &str) -> String {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("Failed to deserialize query string: ")
        && let Some((field, reason)) = rest.split_once(": ")
    {
        let value = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == field)
            .map(|(_, value)| value.replace('+', " "))
            .unwrap_or_default();
        return if reason.contains("digit") || reason.contains("number") {
            format!("`{field}` must be a whole number, not `{value}`")
        } else {
            format!("`{field}`: `{value}` is not a valid value")
        };
    }
    if let Some(rest) = text.strip_prefix("Invalid URL: Cannot parse `")
        && let Some((value, _)) = rest.split_once('`')
    {
        return if path.contains("/runs/") {
            format!("`{value}` is not a run number")
        } else {
            format!("`{value}` is not a whole number")
        };
    }
    lower_first(text)
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Paths anyone may read, token or not: probes, the API's description, the pages' assets and
/// the page that asks for the token.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz", "/api/v1/openapi.json", "/login"];

/// Applies the read rule to every request but the open paths; actions check their own rule on
/// top of it.
async fn guard_reads(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    if OPEN_PATHS.contains(&path) || path.starts_with("/static/") {
        return next.run(request).await;
    }
    match state.access.check_read(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) if !path.starts_with("/api/") && path != "/metrics" => ui::login_redirect(e),
        Err(e) => e.into_response(),
    }
}

/// Headers every answer carries: pages run only curator's own script and style, are never
/// framed, and no answer is sniffed into another type.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// Who may read and who may act. Actions (run now, preview, cancel) need the bearer token when
/// one is configured; without one they are allowed only while the server listens on loopback
/// alone, where only this machine's users can reach it. Reads are open unless
/// `apiTokenForReads` asks for the token on them too.
#[derive(Debug, Clone)]
pub struct Access {
    token: Option<String>,
    reads_need_token: bool,
    /// The address the server listens on, named in refusals.
    listen: SocketAddr,
}

impl Access {
    /// The rules for a server listening on `listen`. Asking for the token on reads without
    /// configuring one is an error: it would lock everyone out.
    pub fn new(config: &Config, listen: SocketAddr) -> anyhow::Result<Access> {
        if config.api_token_for_reads && config.api_token.is_none() {
            anyhow::bail!(
                "`apiTokenForReads` is set but no API token is: set `apiToken` or \
                 CURATOR_API_TOKEN"
            );
        }
        Ok(Access {
            token: config.api_token.clone(),
            reads_need_token: config.api_token_for_reads,
            listen,
        })
    }

    /// Checks a read: open, or the token when reads need it.
    pub fn check_read(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match &self.token {
            Some(token) if self.reads_need_token => check_bearer(headers, token),
            _ => Ok(()),
        }
    }

    /// Checks an action: the token when one is configured, else a loopback-only listener.
    pub fn check_action(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match &self.token {
            Some(token) => check_bearer(headers, token),
            None if self.listen.ip().is_loopback() => Ok(()),
            None => Err(ApiError::Forbidden(format!(
                "actions are refused: the server listens on `{}`, beyond this machine, and no \
                 API token is configured; set `apiToken` or CURATOR_API_TOKEN, or listen on \
                 127.0.0.1",
                self.listen
            ))),
        }
    }

    /// Whether a token is configured (the pages say so next to their buttons).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

/// The cookie the pages keep the token in after `/login`: `HttpOnly`, so no script reads it,
/// and `SameSite=Strict`, so no other site's page can send it.
pub const TOKEN_COOKIE: &str = "curator_token";

/// Accepts the token as `Authorization: Bearer`, or as the pages' cookie.
fn check_bearer(headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = || {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == TOKEN_COOKIE)
            .map(|(_, value)| value)
    };
    match bearer.or_else(cookie) {
        None => Err(ApiError::Unauthorized("this needs `Authorization: Bearer <token>`".into())),
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("the bearer token is not the API token".into())),
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The one shape of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status, repeated for clients that only keep the body.
    pub status: u16,
    /// A stable word for the kind of error: `not-found`, `bad-request`, `unauthorized`,
    /// `forbidden`, `managed-in-git`, `conflict`, `unavailable`, `internal`, and for requests
    /// no handler took, `no-route` and `method-not-allowed`.
    pub code: String,
    /// One sentence for a person.
    pub message: String,
    /// For `managed-in-git`: the job file to edit, as the server sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// For `managed-in-git`: the file's path in its Git repository, when it is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_path: Option<String>,
}

/// Every way a request can fail. 4xx errors say exactly what was wrong; a 5xx says only that
/// the server failed, and its cause is logged once, here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A write to a job: jobs change only through their files.
    #[error("{message}")]
    ManagedInGit { message: String, file: String, repository_path: Option<String> },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => ApiError::NotFound { what, id },
            other => ApiError::Internal(other.into()),
        }
    }
}

impl ApiError {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::ManagedInGit { .. } => (StatusCode::CONFLICT, "managed-in-git"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The error as its JSON body.
    pub fn body(&self) -> ErrorBody {
        let (status, code) = self.status();
        let (file, repository_path) = match self {
            ApiError::ManagedInGit { file, repository_path, .. } => {
                (Some(file.clone()), repository_path.clone())
            }
            _ => (None, None),
        };
        let message = match self {
            ApiError::Internal(_) => {
                "the server failed to answer; its log has the details".to_string()
            }
            other => other.to_string(),
        };
        ErrorBody { status: status.as_u16(), code: code.into(), message, file, repository_path }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let (status, _) = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Where `dir` sits inside its Git work tree (`jobs.d`), if it is in one: job files are named
/// by their path in the repository.
pub fn jobs_dir_in_repo(dir: &std::path::Path) -> Option<PathBuf> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let top = String::from_utf8(output.stdout).ok()?;
    if !output.status.success() || top.trim().is_empty() {
        return None;
    }
    let dir = std::fs::canonicalize(dir).ok()?;
    let top = std::fs::canonicalize(top.trim()).ok()?;
    dir.strip_prefix(&top).ok().map(std::path::Path::to_path_buf)
}

/// The Prometheus recorder, installed once per process; `None` if another recorder was set.
pub fn metrics_handle() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
            let seconds = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.install_recorder())
                .map_err(|e| tracing::warn!(error = %e, "metrics are not recorded"))
                .ok()
        })
        .as_ref()
}

/// Describes curator's metrics once, so `/metrics` carries their help text and units.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("curator_jobs", "Jobs in the database, by whether they are enabled");
    describe_counter!("curator_runs_total", "Runs ended, by status");
    describe_counter!("curator_entries_total", "Entries a run handled, by outcome");
    describe_counter!("curator_fields_written_total", "Metadata fields written by runs");
    describe_counter!("curator_provider_calls_total", "Provider calls, by provider");
    describe_counter!(
        "curator_provider_errors_total",
        "Provider calls that failed, by provider and kind of error"
    );
    describe_counter!("curator_reconcile_passes_total", "Reconcile passes, by result");
    describe_gauge!("curator_reconcile_invalid_files", "Job files with errors at the last pass");
    describe_histogram!(
        "curator_reconcile_duration_seconds",
        Unit::Seconds,
        "How long a reconcile pass took"
    );
    describe_histogram!(
        "curator_scheduler_lateness_seconds",
        Unit::Seconds,
        "How late a scheduled firing started against its due time"
    );
}

#[cfg(test)]
mod tests;
