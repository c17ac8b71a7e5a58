//! The read-only pages: jobs by library, one job, one run, and the token form. Templates live
//! in `templates/` and escape everything they print; the script and style in `static/` are
//! compiled in, so the pages need no build step and load nothing from elsewhere.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::api::{self, JobFilter, JobSummary, RunSummary};
use super::{ApiError, AppState, TOKEN_COOKIE};

/// The templates' own filters.
mod filters {
    /// A reason as HTML: escaped first, then each backticked part (`` `curated` ``) set as code,
    /// so markup in a reason stays text.
    #[askama::filter_fn]
    pub fn code_spans<T: std::fmt::Display>(
        text: T,
        _: &dyn askama::Values,
    ) -> askama::Result<String> {
        Ok(super::code_spans(&text.to_string()))
    }
}

/// `text` escaped for HTML, with each pair of backticks around a part turned into `<code>`; a
/// lone backtick stays as written.
pub(crate) fn code_spans(text: &str) -> String {
    let escaped = askama::filters::escape(text, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default();
    let parts: Vec<&str> = escaped.split('`').collect();
    let mut out = String::with_capacity(escaped.len());
    for (i, part) in parts.iter().enumerate() {
        let closed = i + 1 < parts.len();
        match (i % 2, closed) {
            (1, true) => {
                out.push_str("<code>");
                out.push_str(part);
                out.push_str("</code>");
            }
            (1, false) => {
                out.push('`');
                out.push_str(part);
            }
            _ => out.push_str(part),
        }
    }
    out
}

/// The pages, as the OpenAPI document lists them (`/jobs/{id}` is served as `/jobs/{*id}`: a
/// job ID keeps its `/`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(jobs_page, job_page, run_page, login_page, login, script, style))]
pub struct PagesDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(jobs_page))
        .route("/jobs/{*id}", get(job_page))
        .route("/runs/{id}", get(run_page))
        .route("/login", get(login_page).post(login))
        .route("/static/app.js", get(script))
        .route("/static/app.css", get(style))
}

/// What every page shows around its content: the banner and the version the script polls.
pub struct Page {
    /// The version of jobs and runs the page was rendered at.
    pub version: String,
    pub invalid_files: Vec<BannerFile>,
    /// A refused plan or an unreadable directory.
    pub reconcile_problem: Option<String>,
    pub jobs_dir: String,
}

/// One invalid file in the banner, at its first error.
pub struct BannerFile {
    /// `jobs.d/manga/typo.yaml:7`
    pub location: String,
    pub message: String,
    /// Further errors in the same file.
    pub more: usize,
}

async fn page(state: &AppState) -> Result<Page, ApiError> {
    let version = api::changes_view(state).await?.version;
    let status = api::reconcile_view(state).await?;
    let dir = state.config.jobs_dir.display().to_string();
    let jobs_dir = state.jobs_dir_in_repo.as_ref().map_or(dir.clone(), |p| p.display().to_string());
    let (invalid_files, reconcile_problem) = match status {
        None => (Vec::new(), None),
        Some(status) => {
            let files = status
                .invalid_files
                .iter()
                .map(|f| {
                    let first = f.errors.first();
                    BannerFile {
                        location: match first {
                            Some(e) => format!("{}:{}", f.file, e.line),
                            None => f.file.clone(),
                        },
                        message: first.map(|e| e.message.clone()).unwrap_or_default(),
                        more: f.errors.len().saturating_sub(1),
                    }
                })
                .collect();
            let problem = status
                .refused
                .as_ref()
                .and_then(|r| r.get("message").and_then(Value::as_str).map(String::from))
                .or(status.directory_error.clone());
            (files, problem)
        }
    };
    Ok(Page { version, invalid_files, reconcile_problem, jobs_dir })
}

/// A page that failed: a short HTML answer with the error's status.
struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = self.0.body();
        if let ApiError::Internal(cause) = &self.0 {
            tracing::error!(error = format!("{cause:#}"), "page failed");
        }
        let status = StatusCode::from_u16(body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let html = ErrorTemplate { status: body.status, message: body.message };
        (status, html).into_response()
    }
}

/// The HTML answer of a page request that failed before any handler ran (a query or path that
/// did not parse).
pub(crate) fn error_page(status: StatusCode, message: String) -> Response {
    (status, ErrorTemplate { status: status.as_u16(), message }).into_response()
}

#[derive(Template, WebTemplate)]
#[template(
    source = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
              content=\"width=device-width, initial-scale=1\"><title>{{ status }} · curator</title>\
              <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main id=\"main\">\
              <h1>{{ status }}</h1><p>{{ message }}</p><p><a href=\"/\">Jobs</a></p></main></body></html>",
    ext = "html"
)]
struct ErrorTemplate {
    status: u16,
    message: String,
}

/// A job as a row of the jobs page.
pub struct JobLine {
    pub id: String,
    pub name: String,
    pub library: String,
    pub enabled: bool,
    pub schedule_words: String,
    pub cron: String,
    pub zone: String,
    pub next_local: Option<String>,
    pub next_utc: String,
    pub provider: String,
    pub scope: String,
    pub groups: String,
    pub last_run: Option<RunLine>,
}

/// A run as a row.
pub struct RunLine {
    pub id: i64,
    pub job_id: String,
    pub status: String,
    pub trigger: String,
    pub when: String,
    pub finished: String,
    pub totals: String,
    pub error: Option<String>,
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn run_line(run: &RunSummary) -> RunLine {
    let totals = match &run.totals {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| v.as_u64().is_none_or(|n| n > 0))
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    RunLine {
        id: run.id,
        job_id: run.job_id.clone(),
        status: run.status.clone(),
        trigger: run.trigger.clone(),
        when: when(run.started_at.unwrap_or(run.queued_at)),
        finished: run.finished_at.map_or_else(|| "not yet".into(), when),
        totals,
        error: run.error.clone(),
    }
}

fn job_line(job: &JobSummary) -> JobLine {
    let schedule = job.schedule.as_ref();
    let mut groups: Vec<&str> = job.field_groups.iter().map(String::as_str).collect();
    groups.extend(job.extra_fields.iter().map(String::as_str));
    let book: Vec<&str> =
        job.book_field_groups.iter().chain(&job.book_extra_fields).map(String::as_str).collect();
    let mut groups = groups.join(", ");
    if !book.is_empty() {
        if !groups.is_empty() {
            groups.push_str("; ");
        }
        groups.push_str(&format!("books: {}", book.join(", ")));
    }
    let next = job.next_fire.as_ref();
    JobLine {
        id: job.id.clone(),
        name: job.name.clone(),
        library: job.library.clone(),
        enabled: job.enabled,
        schedule_words: schedule.map_or("unusable schedule".into(), |s| s.description.clone()),
        cron: schedule.map_or(String::new(), |s| s.cron.clone()),
        zone: schedule.map_or(String::new(), |s| s.timezone.clone()),
        next_local: next.map(|n| {
            let local = DateTime::parse_from_rfc3339(&n.local)
                .map_or(n.local.clone(), |t| t.format("%a %Y-%m-%d %H:%M").to_string());
            let zone = schedule.map_or("", |s| s.timezone.as_str());
            format!("{local} {zone}")
        }),
        // A job in UTC needs no second line.
        next_utc: next
            .filter(|_| schedule.is_some_and(|s| s.timezone != "UTC"))
            .map_or(String::new(), |n| n.utc.format("%Y-%m-%d %H:%M UTC").to_string()),
        provider: job.provider.clone(),
        scope: job.scope.clone(),
        groups,
        last_run: job.last_run.as_ref().map(run_line),
    }
}

/// One library's jobs.
pub struct LibraryJobs {
    pub id: String,
    pub jobs: Vec<JobLine>,
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs.html")]
struct JobsTemplate {
    page: Page,
    libraries: Vec<LibraryJobs>,
}

/// The jobs page: every job by library.
#[utoipa::path(get, path = "/", tag = "pages",
    responses((status = 200, description = "The jobs page", content_type = "text/html")))]
async fn jobs_page(State(state): State<AppState>) -> Result<JobsTemplate, PageError> {
    let filter = JobFilter { library: None, provider: None };
    let jobs = api::job_summaries(&state, &filter).await?;
    let mut libraries: Vec<LibraryJobs> = Vec::new();
    let mut lines: Vec<JobLine> = jobs.iter().map(job_line).collect();
    lines.sort_by(|a, b| (&a.library, &a.id).cmp(&(&b.library, &b.id)));
    for line in lines {
        match libraries.last_mut() {
            Some(library) if library.id == line.library => library.jobs.push(line),
            _ => libraries.push(LibraryJobs { id: line.library.clone(), jobs: vec![line] }),
        }
    }
    Ok(JobsTemplate { page: page(&state).await?, libraries })
}

/// A fire time as the job page prints it.
pub struct NextRun {
    pub local: String,
    pub utc: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "job.html")]
struct JobTemplate {
    page: Page,
    job: JobLine,
    next_runs: Vec<NextRun>,
    source: String,
    source_location: String,
    commit: String,
    edit_path: String,
    runs: Vec<RunLine>,
    /// The history's neighbouring pages, by offset.
    newer_offset: Option<usize>,
    older_offset: Option<usize>,
    needs_token: bool,
}

/// Runs per page of a job's history.
const RUNS_PER_PAGE: usize = 20;

/// One job's page: YAML, source, commit, history, Run now and Preview.
#[utoipa::path(get, path = "/jobs/{id}", tag = "pages",
    params(("id" = String, Path, description = "The job ID, its `/` as is (`/jobs/manga/curated-status`)"),
        ("offset" = Option<usize>, Query, description = "The run history's page")),
    responses((status = 200, description = "The job page", content_type = "text/html"),
        (status = 404, description = "No such job", content_type = "text/html")))]
async fn job_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<OffsetParams>,
) -> Result<JobTemplate, PageError> {
    let detail = api::job_detail(&state, &id).await?;
    let offset = params.offset.unwrap_or(0);
    let runs = api::run_page(&state, Some(&id), RUNS_PER_PAGE, offset).await?;
    let zone = detail.summary.schedule.as_ref().map_or(String::new(), |s| s.timezone.clone());
    let next_runs = detail
        .next_fire_times
        .iter()
        .map(|f| NextRun {
            local: DateTime::parse_from_rfc3339(&f.local)
                .map_or(f.local.clone(), |t| format!("{} {zone}", t.format("%a %Y-%m-%d %H:%M"))),
            utc: f.utc.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect();
    let commit = match &detail.summary.git {
        None => "not in a Git work tree".to_string(),
        Some(api::GitView { commit: Some(c), dirty: false }) => c.clone(),
        Some(api::GitView { commit: Some(c), dirty: true }) => {
            format!("{c}, with uncommitted changes")
        }
        Some(api::GitView { commit: None, .. }) => "never committed".to_string(),
    };
    let edit_path = detail.repository_path.clone().unwrap_or_else(|| detail.file.clone());
    Ok(JobTemplate {
        page: page(&state).await?,
        job: job_line(&detail.summary),
        next_runs,
        source_location: format!("{}:{}", edit_path, detail.source_line),
        source: detail.source,
        commit,
        edit_path,
        runs: runs.runs.iter().map(run_line).collect(),
        newer_offset: (offset > 0).then(|| offset.saturating_sub(RUNS_PER_PAGE)),
        older_offset: runs.next_offset,
        needs_token: state.access.has_token(),
    })
}

/// Which page of a list a page shows.
#[derive(Debug, Deserialize)]
struct OffsetParams {
    offset: Option<usize>,
}

#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
struct RunTemplate {
    page: Page,
    run: RunLine,
    job_exists: bool,
    entries: Vec<api::EntryView>,
    entries_total: usize,
    prev_offset: Option<usize>,
    next_offset: Option<usize>,
}

const ENTRIES_PER_PAGE: usize = 100;

/// One run's page: its entries, before -> after.
#[utoipa::path(get, path = "/runs/{id}", tag = "pages",
    params(("id" = i64, Path, description = "The run ID"),
        ("offset" = Option<usize>, Query, description = "The entries' page")),
    responses((status = 200, description = "The run page", content_type = "text/html"),
        (status = 404, description = "No such run", content_type = "text/html")))]
async fn run_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<OffsetParams>,
) -> Result<RunTemplate, PageError> {
    let offset = params.offset.unwrap_or(0);
    let detail = api::run_detail(&state, id, ENTRIES_PER_PAGE, offset).await?;
    let job_exists = detail.run.job_deleted_at.is_none();
    Ok(RunTemplate {
        page: page(&state).await?,
        run: run_line(&detail.run),
        job_exists,
        entries: detail.entries,
        entries_total: detail.entries_total,
        prev_offset: (offset > 0).then(|| offset.saturating_sub(ENTRIES_PER_PAGE)),
        next_offset: detail.next_offset,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginTemplate {
    page: Page,
    reason: String,
}

/// The form that asks for the API token when reads need it.
#[utoipa::path(get, path = "/login", tag = "pages",
    responses((status = 200, description = "The token form", content_type = "text/html")))]
async fn login_page(State(state): State<AppState>) -> Result<LoginTemplate, PageError> {
    let reason = "This server asks for its API token before it shows jobs or runs them.".into();
    Ok(LoginTemplate { page: blank_page(&state), reason })
}

/// The frame of a page that may show nothing of the jobs (the token form).
fn blank_page(state: &AppState) -> Page {
    Page {
        version: String::new(),
        invalid_files: Vec::new(),
        reconcile_problem: None,
        jobs_dir: state.config.jobs_dir.display().to_string(),
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

/// Checks a token and keeps it in an `HttpOnly`, `SameSite=Strict` cookie.
#[utoipa::path(post, path = "/login", tag = "pages",
    request_body(content_type = "application/x-www-form-urlencoded", description = "`token=<the API token>`"),
    responses((status = 303, description = "Kept; on to the jobs page"),
        (status = 400, description = "A token no cookie can hold", content_type = "text/html"),
        (status = 401, description = "Not the API token", content_type = "text/html")))]
async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let mut headers = axum::http::HeaderMap::new();
    let bearer = format!("Bearer {}", form.token.trim());
    if let Ok(value) = bearer.parse() {
        headers.insert(header::AUTHORIZATION, value);
    }
    let token_ok = state.access.has_token() && state.access.check_action(&headers).is_ok();
    // A cookie value cannot hold spaces, quotes, commas, semicolons or backslashes.
    let cookie_safe =
        form.token.trim().bytes().all(|b| b.is_ascii_graphic() && !b"\",;\\".contains(&b));
    if token_ok && !cookie_safe {
        let reason = "This token cannot be kept in a browser cookie: the pages need a token of \
                      letters, digits and punctuation other than quotes, commas, semicolons and \
                      backslashes. The API takes it as `Authorization: Bearer` all the same."
            .into();
        let page = LoginTemplate { page: blank_page(&state), reason };
        return (StatusCode::BAD_REQUEST, page).into_response();
    }
    if !token_ok {
        let reason = "That is not the API token. Try again.".into();
        let page = LoginTemplate { page: blank_page(&state), reason };
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    let cookie = format!(
        "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000",
        form.token.trim()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// A page read without the token when reads need it: off to the token form.
pub fn login_redirect(_error: ApiError) -> Response {
    Redirect::to("/login").into_response()
}

/// The pages' script.
#[utoipa::path(get, path = "/static/app.js", tag = "pages",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
async fn script() -> impl IntoResponse {
    let headers = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, include_str!("../../static/app.js"))
}

/// The pages' style.
#[utoipa::path(get, path = "/static/app.css", tag = "pages",
    responses((status = 200, description = "CSS", content_type = "text/css")))]
async fn style() -> impl IntoResponse {
    let headers =
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")];
    (headers, include_str!("../../static/app.css"))
}
