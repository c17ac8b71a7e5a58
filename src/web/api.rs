//! The JSON API under `/api/v1`, and the OpenAPI document that describes it, generated from
//! these handlers and types. Jobs are read-only here: Git owns them, so every write answers 409
//! with the file to edit. The views built here serve the pages too.

use std::collections::HashMap;
use std::path::Path as FsPath;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, ErrorBody};
use crate::run::Trigger;
use crate::schedule::Timing;
use crate::store::{EntryResult, JobRow, RunRow};

type ApiResult<T> = Result<T, ApiError>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "curator",
        description = "Scheduled metadata-refresh jobs, declared as YAML files in Git. Jobs are \
                       read-only here: any write answers 409 with the file to edit. Job IDs \
                       contain `/`: encode it as `%2F` in paths."
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "jobs", description = "Jobs as the last reconcile applied them"),
        (name = "runs", description = "Runs and their per-entry outcomes"),
        (name = "actions", description = "Run now, preview, cancel: need the API token when one is configured"),
        (name = "status", description = "Reconcile status, providers, health"),
        (name = "catalog", description = "Libraries, series and books"),
        (name = "pages", description = "The read-only pages, in HTML"),
    )
)]
struct ApiDoc;

/// Every API route, each registered with its OpenAPI description: a route cannot exist
/// without being documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_jobs, create_job))
        .routes(routes!(get_job, post_job, replace_job, patch_job, delete_job))
        .routes(routes!(job_runs))
        .routes(routes!(run_now))
        .routes(routes!(preview))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(cancel_run))
        .routes(routes!(reconcile_status))
        .routes(routes!(providers))
        .routes(routes!(libraries))
        .routes(routes!(library_series))
        .routes(routes!(one_series))
        .routes(routes!(changes))
        .routes(routes!(openapi_json))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The OpenAPI document, built once.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = router().split_for_parts().1;
        doc.merge(<super::ui::PagesDoc as OpenApi>::openapi());
        doc
    })
}

// ----- views -----

/// A fire time in UTC and in the job's zone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FireTime {
    pub utc: DateTime<Utc>,
    /// The same instant in the job's zone, RFC 3339 with its offset.
    pub local: String,
}

/// A job's schedule, resolved.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub cron: String,
    /// The expression in words (`At 04:00`).
    pub description: String,
    /// The zone it fires in: the job's own, or the server's default.
    pub timezone: String,
    pub catch_up: bool,
    /// The jitter window as written (`10m`), if any.
    pub jitter: Option<String>,
    /// The fixed delay this job's firings get within the window, in milliseconds.
    pub jitter_ms: u64,
}

/// Where a job file stands in Git.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GitView {
    /// The commit that last changed the file; null when Git never committed it.
    pub commit: Option<String>,
    /// Whether the work tree holds uncommitted changes to the file.
    pub dirty: bool,
}

/// One run, without its entries.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub id: i64,
    pub job_id: String,
    /// `schedule`, `manual` or `catch-up`.
    pub trigger: String,
    /// `queued`, `running`, `succeeded`, `partial`, `failed`, `cancelled`, `interrupted` or
    /// `skipped`.
    pub status: String,
    /// The cron slot a scheduled run is for.
    pub slot: Option<DateTime<Utc>>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Counts by outcome (`updated`, `unchanged`, `failed`, `skippedNoId`, ...).
    #[schema(value_type = Object)]
    pub totals: Value,
    pub error: Option<String>,
    /// When the run's job was deleted; null while it exists.
    pub job_deleted_at: Option<DateTime<Utc>>,
}

impl From<RunRow> for RunSummary {
    fn from(r: RunRow) -> Self {
        RunSummary {
            id: r.id,
            job_id: r.job_id,
            trigger: r.trigger,
            status: r.status,
            slot: r.slot,
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            totals: r.totals,
            error: r.error,
            job_deleted_at: r.job_deleted_at,
        }
    }
}

/// A job as listed: what runs when, and what happened last.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: String,
    pub name: String,
    pub library: String,
    /// The provider's configured name.
    pub provider: String,
    pub enabled: bool,
    /// Null when the stored schedule cannot be resolved.
    pub schedule: Option<ScheduleView>,
    /// `series_only`, `books_only` or `series_and_books`.
    pub scope: String,
    pub field_groups: Vec<String>,
    pub extra_fields: Vec<String>,
    pub book_field_groups: Vec<String>,
    pub book_extra_fields: Vec<String>,
    /// The next firing; null for a disabled job.
    pub next_fire: Option<FireTime>,
    /// The file under `jobs.d/` the job comes from.
    pub source_file: String,
    pub git: Option<GitView>,
    /// The newest run that was not skipped.
    pub last_run: Option<RunSummary>,
}

/// One job in full.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobDetail {
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The normalized spec, defaults included.
    #[schema(value_type = Object)]
    pub spec: Value,
    /// The YAML document as written in its file.
    pub source: String,
    /// The line of the file the document starts on.
    pub source_line: i64,
    /// The file as the server sees it.
    pub file: String,
    /// The file's path in its Git repository, when `jobs.d/` is in one.
    pub repository_path: Option<String>,
    /// SHA-256 of the normalized spec.
    pub content_hash: String,
    /// The next three firings; empty for a disabled job.
    pub next_fire_times: Vec<FireTime>,
    /// The errors the job's file had at the last reconcile pass; empty when it had none.
    /// While it has some, the job keeps running its last good version.
    pub file_errors: Vec<FileErrorView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One field a run changed, or would change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeView {
    pub field: String,
    #[schema(value_type = Object)]
    pub before: Value,
    #[schema(value_type = Object)]
    pub after: Value,
}

/// What a run did with one series or book.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    /// `series` or `book`.
    pub kind: String,
    /// `frieren`, or `frieren/frieren-v01` for a book.
    pub entry: String,
    pub title: Option<String>,
    /// `updated`, `unchanged`, `skipped` or `failed`.
    pub outcome: String,
    /// Why it was skipped or failed, or which fields were held back.
    pub reason: Option<String>,
    pub changes: Vec<ChangeView>,
}

impl From<EntryResult> for EntryView {
    fn from(e: EntryResult) -> Self {
        EntryView {
            kind: e.kind.as_str().into(),
            entry: e.entry,
            title: e.title,
            outcome: e.outcome,
            reason: e.reason,
            changes: e
                .changes
                .into_iter()
                .map(|c| ChangeView { field: c.field, before: c.before, after: c.after })
                .collect(),
        }
    }
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// The `offset` of the next page; null on the last one.
    pub next_offset: Option<usize>,
}

/// One run with a page of its entries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunDetail {
    pub run: RunSummary,
    pub entries: Vec<EntryView>,
    /// How many entries the run recorded in all.
    pub entries_total: usize,
    /// The `offset` of the next page of entries; null on the last one.
    pub next_offset: Option<usize>,
}

/// A run that was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    pub run: RunSummary,
}

/// The last reconcile pass.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileView {
    pub finished_at: DateTime<Utc>,
    /// Whether the plan was applied; false when it was refused.
    pub applied: bool,
    /// The HEAD of the work tree `jobs.d/` is in.
    pub commit: Option<String>,
    /// Jobs created, updated, deleted, unchanged, kept and skipped by the pass.
    #[schema(value_type = Object)]
    pub counts: Value,
    /// Why the plan was refused (`guard`, `message`).
    #[schema(value_type = Object)]
    pub refused: Option<Value>,
    pub directory_error: Option<String>,
    /// Files with errors: their jobs keep their last good version until they are fixed.
    pub invalid_files: Vec<InvalidFileView>,
}

/// A job file with errors.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvalidFileView {
    /// The file, as the server reached it.
    pub file: String,
    pub errors: Vec<FileErrorView>,
}

/// One error in a job file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileErrorView {
    pub line: usize,
    pub column: usize,
    /// The offending value's path (`schedule.cron`); empty for the document.
    pub path: String,
    pub code: String,
    pub message: String,
}

impl From<crate::reconcile::FileError> for FileErrorView {
    fn from(e: crate::reconcile::FileError) -> FileErrorView {
        FileErrorView {
            line: e.line,
            column: e.column,
            path: e.path,
            code: e.code,
            message: e.message,
        }
    }
}

/// A configured provider and how it is doing.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    pub name: String,
    /// `plugin`, `anilist`, `openlibrary` or `directory`.
    pub kind: String,
    pub enabled: bool,
    /// What it returns metadata for; for a plugin, from the manifest of its latest start (null
    /// before its first).
    pub capabilities: Option<CapabilitiesView>,
    /// Its write allow-list, in Codex's vocabulary.
    pub permissions: Vec<String>,
    /// `ok`, `idle` (not started: started at its first use), `disabled` or `failing`.
    pub health: String,
    /// Why it is failing.
    pub detail: Option<String>,
    /// The calls a minute this process makes to it at most, evenly spaced; null when unpaced.
    pub requests_per_minute: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CapabilitiesView {
    pub series: bool,
    pub book: bool,
}

/// A library of the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct LibraryView {
    pub id: String,
    pub name: String,
    pub series: usize,
    pub books: usize,
}

/// A provider's ID for an entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalIdView {
    pub id: String,
    pub last_synced_at: Option<DateTime<Utc>>,
}

/// A series with its fields, locks, external IDs and books.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesView {
    pub id: String,
    /// Field values by Codex field name.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Fields no run overwrites.
    pub locks: Vec<String>,
    /// Provider name to that provider's ID.
    pub external_ids: HashMap<String, ExternalIdView>,
    pub books: Vec<BookView>,
}

/// A book with its fields, locks and external IDs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookView {
    pub id: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub locks: Vec<String>,
    pub external_ids: HashMap<String, ExternalIdView>,
}

/// A page of a library's series.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPage {
    pub series: Vec<SeriesView>,
    pub total: usize,
    pub next_offset: Option<usize>,
}

/// What the pages poll to refresh themselves.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangesView {
    /// Changes whenever a reconcile pass ends or a recent run starts, ends or is queued.
    pub version: String,
    /// Whether the server has finished its first reconcile pass.
    pub ready: bool,
}

// ----- parameters -----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only jobs of this library.
    pub library: Option<String>,
    /// Only jobs of this provider (`curated` or `plugin:curated`).
    pub provider: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items, from 1 to 200 (default 20).
    pub limit: Option<usize>,
    /// How many items to skip (default 0).
    pub offset: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    /// Only runs of this job.
    pub job: Option<String>,
    /// How many runs, from 1 to 200 (default 20).
    pub limit: Option<usize>,
    /// How many runs to skip (default 0).
    pub offset: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// How many entries to sample, from 1 to 100 (default 5).
    pub sample: Option<usize>,
}

const MAX_PAGE: usize = 200;

fn page(limit: Option<usize>, offset: Option<usize>) -> ApiResult<(usize, usize)> {
    let limit = limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be from 1 to {MAX_PAGE}, not `{limit}`"
        )));
    }
    Ok((limit, offset.unwrap_or(0)))
}

// ----- building views -----

fn fire_time(t: DateTime<Utc>, zone: chrono_tz::Tz) -> FireTime {
    FireTime { utc: t, local: t.with_timezone(&zone).to_rfc3339() }
}

fn timing(state: &AppState, job: &JobRow) -> Option<Timing> {
    Timing::new(&job.id, &job.spec.schedule, state.config.timezone).ok()
}

/// Resolves job schedules as [`Timing::new`] does, but parses each distinct cron expression
/// once: ten thousand jobs usually share a few expressions, and parsing one also searches for
/// its next date to prove it can fire.
#[derive(Default)]
pub struct Timings {
    /// Each expression parsed, with its words; `None` when it does not parse.
    crons: HashMap<String, Option<(croner::Cron, String)>>,
}

impl Timings {
    /// The job's timing and its schedule in words.
    fn get(&mut self, state: &AppState, job: &JobRow) -> Option<(Timing, String)> {
        use crate::schedule::{jitter_for, parse_cron, parse_jitter, parse_zone};
        let schedule = &job.spec.schedule;
        let parsed = self.crons.entry(schedule.cron.clone()).or_insert_with(|| {
            let cron = parse_cron(&schedule.cron).ok()?;
            let words = cron.describe();
            Some((cron, words))
        });
        let (cron, words) = parsed.clone()?;
        let zone = match &schedule.timezone {
            Some(name) => parse_zone(name).ok()?,
            None => state.config.timezone,
        };
        let window = match &schedule.jitter {
            Some(text) => parse_jitter(text).ok()?,
            None => std::time::Duration::ZERO,
        };
        Some((Timing { cron, zone, jitter: jitter_for(&job.id, window) }, words))
    }
}

/// A job's list view; `last` is its newest run that was not skipped.
pub fn summary(
    state: &AppState,
    timings: &mut Timings,
    job: &JobRow,
    last: Option<&RunRow>,
) -> JobSummary {
    let resolved = timings.get(state, job);
    let (timing, words) = match resolved {
        Some((timing, words)) => (Some(timing), words),
        None => (None, String::new()),
    };
    let spec = &job.spec;
    let next_fire = job
        .enabled
        .then(|| {
            let t = timing.as_ref()?;
            let next = state
                .scheduler
                .next_fire(&job.id)
                .or_else(|| t.next_slot(Utc::now()).map(|s| t.fire_time(s)))?;
            Some(fire_time(next, t.zone))
        })
        .flatten();
    JobSummary {
        id: job.id.clone(),
        name: job.name.clone(),
        library: job.library_id.clone(),
        provider: job.provider.clone(),
        enabled: job.enabled,
        schedule: timing.as_ref().map(|t| ScheduleView {
            cron: spec.schedule.cron.clone(),
            description: words.clone(),
            timezone: t.zone.name().to_string(),
            catch_up: spec.schedule.catch_up,
            jitter: spec.schedule.jitter.clone(),
            jitter_ms: t.jitter.as_millis() as u64,
        }),
        scope: spec.scope.as_str().to_string(),
        field_groups: spec.field_groups.iter().map(|g| g.as_str().to_string()).collect(),
        extra_fields: spec.extra_fields.iter().map(|f| f.as_str().to_string()).collect(),
        book_field_groups: spec.book_field_groups.iter().map(|g| g.as_str().into()).collect(),
        book_extra_fields: spec.book_extra_fields.iter().map(|f| f.as_str().into()).collect(),
        next_fire,
        source_file: job.source_file.clone(),
        git: job.git.as_ref().map(|g| GitView { commit: g.commit.clone(), dirty: g.dirty }),
        last_run: last.cloned().map(RunSummary::from),
    }
}

/// Every job passing `filter`, by ID.
pub async fn job_summaries(state: &AppState, filter: &JobFilter) -> ApiResult<Vec<JobSummary>> {
    let jobs = state.store.jobs().await?;
    let last = state.store.last_runs().await?;
    let wanted_provider =
        filter.provider.as_deref().map(|p| p.strip_prefix("plugin:").unwrap_or(p));
    let mut timings = Timings::default();
    Ok(jobs
        .iter()
        .filter(|j| filter.library.as_deref().is_none_or(|l| j.library_id == l))
        .filter(|j| wanted_provider.is_none_or(|p| j.provider == p))
        .map(|j| summary(state, &mut timings, j, last.get(&j.id)))
        .collect())
}

/// One job in full.
pub async fn job_detail(state: &AppState, id: &str) -> ApiResult<JobDetail> {
    let job = state.store.job(id).await?;
    let last = state.store.runs(Some(id), 20).await?;
    let last = last.into_iter().find(|r| r.status != "skipped");
    let summary = summary(state, &mut Timings::default(), &job, last.as_ref());
    let next_fire_times = match timing(state, &job) {
        Some(t) if job.enabled => t
            .next_slots(Utc::now(), 3)
            .into_iter()
            .map(|s| fire_time(t.fire_time(s), t.zone))
            .collect(),
        _ => Vec::new(),
    };
    let (file, repository_path) = job_file(state, &job.source_file);
    let file_errors = crate::reconcile::last_status(&state.store)
        .await?
        .and_then(|s| s.invalid_files.into_iter().find(|f| f.file == file))
        .map_or_else(Vec::new, |f| f.errors.into_iter().map(FileErrorView::from).collect());
    Ok(JobDetail {
        summary,
        spec: job.spec_json.clone(),
        source: job.source.clone(),
        source_line: job.source_line,
        file,
        repository_path,
        content_hash: job.content_hash.clone(),
        next_fire_times,
        file_errors,
        created_at: job.created_at,
        updated_at: job.updated_at,
    })
}

/// A job file as the server sees it, and its path in the Git repository.
pub fn job_file(state: &AppState, source_file: &str) -> (String, Option<String>) {
    let file = state.config.jobs_dir.join(source_file);
    let in_repo = state.jobs_dir_in_repo.as_ref().map(|dir| slashed(&dir.join(source_file)));
    (file.display().to_string(), in_repo)
}

fn slashed(path: &FsPath) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The last reconcile pass, for the API and the pages' banner.
pub async fn reconcile_view(state: &AppState) -> ApiResult<Option<ReconcileView>> {
    let status = crate::reconcile::last_status(&state.store).await?;
    Ok(status.map(|s| ReconcileView {
        finished_at: s.finished_at,
        applied: s.applied,
        commit: s.commit,
        counts: serde_json::to_value(s.counts).unwrap_or_default(),
        refused: s.refused.map(|r| serde_json::to_value(r).unwrap_or_default()),
        directory_error: s.directory_error,
        invalid_files: s
            .invalid_files
            .into_iter()
            .map(|f| InvalidFileView {
                file: f.file,
                errors: f.errors.into_iter().map(FileErrorView::from).collect(),
            })
            .collect(),
    }))
}

/// A run with one page of its entries.
pub async fn run_detail(
    state: &AppState,
    id: i64,
    limit: usize,
    offset: usize,
) -> ApiResult<RunDetail> {
    let run = state.store.run(id).await?;
    // Every entry is read and one page kept: runs hold thousands of entries at most.
    let entries = state.store.run_entries(id).await?;
    let total = entries.len();
    let page: Vec<EntryView> =
        entries.into_iter().skip(offset).take(limit).map(EntryView::from).collect();
    let next_offset = (offset + page.len() < total).then_some(offset + page.len());
    Ok(RunDetail { run: run.into(), entries: page, entries_total: total, next_offset })
}

/// A page of runs, newest first, optionally of one job.
pub async fn run_page(
    state: &AppState,
    job: Option<&str>,
    limit: usize,
    offset: usize,
) -> ApiResult<RunPage> {
    // Retention keeps about a hundred runs per job, so reading up to the page's end is cheap.
    let wanted = i64::try_from(offset + limit + 1).unwrap_or(i64::MAX);
    let rows = state.store.runs(job, wanted).await?;
    let more = rows.len() > offset + limit;
    let runs: Vec<RunSummary> =
        rows.into_iter().skip(offset).take(limit).map(RunSummary::from).collect();
    Ok(RunPage { next_offset: more.then_some(offset + runs.len()), runs })
}

/// The fingerprint the pages poll.
pub async fn changes_view(state: &AppState) -> ApiResult<ChangesView> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    if let Some(last) = state.store.last_reconcile().await? {
        hasher.update(crate::store::timestamp(last.finished_at));
        hasher.update(last.summary.to_string());
    }
    for run in state.store.runs(None, 50).await? {
        hasher.update(format!("\0{}:{}", run.id, run.status));
    }
    let ready = state.is_ready();
    hasher.update([u8::from(ready)]);
    Ok(ChangesView { version: hex::encode(&hasher.finalize()[..12]), ready })
}

// ----- jobs -----

/// Jobs, optionally of one library or provider.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobFilter),
    responses((status = 200, body = [JobSummary]), (status = 401, body = ErrorBody)))]
async fn list_jobs(
    State(state): State<AppState>,
    Query(filter): Query<JobFilter>,
) -> ApiResult<Json<Vec<JobSummary>>> {
    Ok(Json(job_summaries(&state, &filter).await?))
}

/// One job: its spec, YAML as written, source file, commit and next fire times.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job ID, with `/` encoded as `%2F`")),
    responses((status = 200, body = JobDetail), (status = 404, body = ErrorBody)))]
async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDetail>> {
    Ok(Json(job_detail(&state, &id).await?))
}

/// Creating a job: refused, jobs are files in Git.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    responses((status = 409, body = ErrorBody, description = "Jobs are managed in Git")))]
async fn create_job(State(state): State<AppState>) -> ApiError {
    let dir = state.config.jobs_dir.display().to_string();
    let repository_path = state.jobs_dir_in_repo.as_deref().map(slashed);
    let shown = repository_path.clone().unwrap_or_else(|| dir.clone());
    ApiError::ManagedInGit {
        message: format!(
            "jobs are managed in Git: add a YAML file under `{shown}` and commit it; the API \
             cannot create jobs"
        ),
        file: dir,
        repository_path,
    }
}

/// Posting to a job: refused, the job's file is the place to edit.
#[utoipa::path(post, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job ID, with `/` encoded as `%2F`")),
    responses((status = 409, body = ErrorBody, description = "Jobs are managed in Git")))]
async fn post_job(State(state): State<AppState>, Path(id): Path<String>) -> ApiError {
    managed_in_git(&state, &id, "change").await
}

/// Replacing a job: refused, the job's file is the place to edit.
#[utoipa::path(put, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job ID, with `/` encoded as `%2F`")),
    responses((status = 409, body = ErrorBody, description = "Jobs are managed in Git")))]
async fn replace_job(State(state): State<AppState>, Path(id): Path<String>) -> ApiError {
    managed_in_git(&state, &id, "change").await
}

/// Changing a job: refused, the job's file is the place to edit.
#[utoipa::path(patch, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job ID, with `/` encoded as `%2F`")),
    responses((status = 409, body = ErrorBody, description = "Jobs are managed in Git")))]
async fn patch_job(State(state): State<AppState>, Path(id): Path<String>) -> ApiError {
    managed_in_git(&state, &id, "change").await
}

/// Deleting a job: refused, delete its file (or its document) instead.
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job ID, with `/` encoded as `%2F`")),
    responses((status = 409, body = ErrorBody, description = "Jobs are managed in Git")))]
async fn delete_job(State(state): State<AppState>, Path(id): Path<String>) -> ApiError {
    managed_in_git(&state, &id, "delete").await
}

/// The 409 for a write to job `id`, naming its file (or, for an unknown job, where its file
/// would go).
async fn managed_in_git(state: &AppState, id: &str, verb: &str) -> ApiError {
    let source_file = match state.store.job(id).await {
        Ok(job) => job.source_file,
        Err(crate::store::StoreError::NotFound { .. }) => return unknown_job_write(state, id),
        Err(e) => return e.into(),
    };
    let (file, repository_path) = job_file(state, &source_file);
    let shown = repository_path.clone().unwrap_or_else(|| file.clone());
    ApiError::ManagedInGit {
        message: format!(
            "job `{id}` is managed in Git: to {verb} it, edit `{shown}` and commit; the API \
             cannot change jobs"
        ),
        file,
        repository_path,
    }
}

/// The 409 for a write to a job that does not exist: no file to name, so it says where jobs
/// come from.
fn unknown_job_write(state: &AppState, id: &str) -> ApiError {
    let dir = state.config.jobs_dir.display().to_string();
    let repository_path = state.jobs_dir_in_repo.as_deref().map(slashed);
    let shown = repository_path.clone().unwrap_or_else(|| dir.clone());
    ApiError::ManagedInGit {
        message: format!(
            "job `{id}` does not exist: jobs are created by adding a YAML file under `{shown}` \
             and committing it; the API cannot create or change jobs"
        ),
        file: dir,
        repository_path,
    }
}

/// A page of a job's runs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/runs", tag = "runs",
    params(("id" = String, Path, description = "The job ID, with `/` encoded as `%2F`"), PageParams),
    responses((status = 200, body = RunPage), (status = 400, body = ErrorBody)))]
async fn job_runs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<RunPage>> {
    let (limit, offset) = page(params.limit, params.offset)?;
    let runs = run_page(&state, Some(&id), limit, offset).await?;
    if runs.runs.is_empty() && offset == 0 {
        // An unknown job is a 404; a job without runs (or a deleted one with runs) is not.
        state.store.job(&id).await?;
    }
    Ok(Json(runs))
}

// ----- actions -----

/// Queues a run of the job now, as `curator run ID` does; the server starts it at once.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/run", tag = "actions",
    params(("id" = String, Path, description = "The job ID, with `/` encoded as `%2F`")),
    responses((status = 202, body = Queued, description = "Queued; `Location` names the run"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn run_now(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.access.check_action(&headers)?;
    let job = state.store.job(&id).await?;
    let run_id =
        state.store.create_run(&job.id, Trigger::Manual.as_str(), "queued", None, None).await?;
    state.queued.notify_one();
    tracing::info!(job.id = %job.id, run.id = run_id, "run queued through the API");
    let run = state.store.run(run_id).await?;
    let location = format!("/api/v1/runs/{run_id}");
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(Queued { run: run.into() }))
        .into_response())
}

/// Previews the job on a sample of entries: the same plan and provider calls as a run, with
/// nothing written, and for every field of each entry what a run would do and which layer
/// (groups, permissions, the provider's answer, the value's shape, a lock) stops it. The body
/// is `curator preview ID --output json`'s.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/preview", tag = "actions",
    params(("id" = String, Path, description = "The job ID, with `/` encoded as `%2F`"), PreviewParams),
    responses((status = 200, body = serde_json::Value, description = "The preview: `formatVersion`, \
            `job`, `provider`, `sample`, `plan` counts, and `entries`, each with `outcome` and its \
            `fields` (`field`, `verdict`: `change` with `before`/`after`, `unchanged`, or `blocked` \
            with `layer`)"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The job's provider cannot be used")),
    security(("bearer" = [])))]
async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<PreviewParams>,
) -> ApiResult<Json<crate::run::preview::Preview>> {
    state.access.check_action(&headers)?;
    let sample = params.sample.unwrap_or(crate::run::preview::DEFAULT_SAMPLE);
    if !(1..=MAX_SAMPLE).contains(&sample) {
        return Err(ApiError::BadRequest(format!(
            "`sample` must be from 1 to {MAX_SAMPLE}, not `{sample}`"
        )));
    }
    let job = state.store.job(&id).await?;
    match state.runner.preview(&job, sample).await {
        Ok(preview) => Ok(Json(preview)),
        Err(crate::run::preview::PreviewError::Store(e)) => Err(e.into()),
        Err(crate::run::preview::PreviewError::Provider(reason)) => {
            Err(ApiError::Conflict(format!("cannot preview `{id}`: {reason}")))
        }
    }
}

/// The most entries one preview may sample.
const MAX_SAMPLE: usize = 100;

/// What became of a cancel request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cancelled {
    /// `cancelled` (it was queued and will not start), `requested` (it is running: it makes no
    /// new provider calls, lets the calls in flight finish and ends `cancelled`), or
    /// `already-cancelled`.
    pub outcome: String,
    pub run: RunSummary,
}

/// Cancels a queued or running run.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "actions",
    params(("id" = i64, Path, description = "The run ID")),
    responses((status = 200, body = Cancelled, description = "Cancelled, or already cancelled"),
        (status = 202, body = Cancelled, description = "Requested: the running run stops soon"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The run already ended otherwise")),
    security(("bearer" = [])))]
async fn cancel_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    use crate::store::CancelOutcome;
    state.access.check_action(&headers)?;
    let (status, outcome) = match state.runner.cancel(id).await? {
        CancelOutcome::Cancelled => (StatusCode::OK, "cancelled"),
        CancelOutcome::Requested => (StatusCode::ACCEPTED, "requested"),
        CancelOutcome::AlreadyEnded(ended) if ended == "cancelled" => {
            (StatusCode::OK, "already-cancelled")
        }
        CancelOutcome::AlreadyEnded(ended) => {
            return Err(ApiError::Conflict(format!(
                "run {id} already ended `{ended}`: there is nothing to cancel"
            )));
        }
    };
    tracing::info!(run.id = id, outcome, "run cancel through the API");
    let run = state.store.run(id).await?.into();
    Ok((status, Json(Cancelled { outcome: outcome.into(), run })).into_response())
}

// ----- runs -----

/// A page of runs, newest first, optionally of one job.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunFilter),
    responses((status = 200, body = RunPage), (status = 400, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    Query(filter): Query<RunFilter>,
) -> ApiResult<Json<RunPage>> {
    let (limit, offset) = page(filter.limit, filter.offset)?;
    Ok(Json(run_page(&state, filter.job.as_deref(), limit, offset).await?))
}

/// One run with a page of its per-entry outcomes.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = i64, Path, description = "The run ID"), PageParams),
    responses((status = 200, body = RunDetail), (status = 404, body = ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<RunDetail>> {
    let (limit, offset) = page(params.limit.or(Some(MAX_PAGE)), params.offset)?;
    Ok(Json(run_detail(&state, id, limit, offset).await?))
}

// ----- status -----

/// The last reconcile pass: counts, refusal, and every file with errors.
#[utoipa::path(get, path = "/api/v1/reconcile", tag = "status",
    responses((status = 200, body = ReconcileView),
        (status = 404, body = ErrorBody, description = "No pass has run yet")))]
async fn reconcile_status(State(state): State<AppState>) -> ApiResult<Json<ReconcileView>> {
    reconcile_view(&state)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound { what: "reconcile pass", id: "last".into() })
}

/// The configured providers, with capabilities and health.
#[utoipa::path(get, path = "/api/v1/providers", tag = "status",
    responses((status = 200, body = [ProviderView])))]
async fn providers(State(state): State<AppState>) -> ApiResult<Json<Vec<ProviderView>>> {
    let statuses = state.registry.statuses().await;
    // A plugin not started by this process is known by the manifest of its last start.
    let stored = state.store.manifests().await?;
    Ok(Json(
        statuses
            .into_iter()
            .map(|s| ProviderView {
                capabilities: s
                    .capabilities
                    .or_else(|| stored.get(&s.name).copied())
                    .map(|c| CapabilitiesView { series: c.series, book: c.book }),
                name: s.name,
                kind: s.kind,
                enabled: s.enabled,
                permissions: s.permissions,
                health: s.health.to_string(),
                detail: s.detail,
                requests_per_minute: s.requests_per_minute,
            })
            .collect(),
    ))
}

/// What the pages poll: a version that changes when jobs or runs do.
#[utoipa::path(get, path = "/api/v1/changes", tag = "status",
    responses((status = 200, body = ChangesView)))]
async fn changes(State(state): State<AppState>) -> ApiResult<Json<ChangesView>> {
    Ok(Json(changes_view(&state).await?))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "status",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "status",
    responses((status = 200, description = "`ok`", content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// The database answers and the first reconcile pass has been loaded.
#[utoipa::path(get, path = "/readyz", tag = "status",
    responses((status = 200, description = "`ready`", content_type = "text/plain"),
        (status = 503, body = ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> ApiResult<&'static str> {
    if let Err(e) = state.store.ping().await {
        return Err(ApiError::Unavailable(format!("the database does not answer: {e}")));
    }
    if !state.is_ready() {
        return Err(ApiError::Unavailable("the first reconcile pass has not finished".into()));
    }
    Ok("ready\n")
}

/// Metrics in Prometheus's text format.
#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics() -> ApiResult<Response> {
    let handle = super::metrics_handle()
        .ok_or_else(|| ApiError::Unavailable("metrics are not recorded".into()))?;
    handle.run_upkeep();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response())
}

// ----- catalog -----

/// The catalog's libraries, with their series and book counts.
#[utoipa::path(get, path = "/api/v1/libraries", tag = "catalog",
    responses((status = 200, body = [LibraryView])))]
async fn libraries(State(state): State<AppState>) -> ApiResult<Json<Vec<LibraryView>>> {
    let catalog = state.store.export_catalog(None).await?;
    Ok(Json(
        catalog
            .libraries
            .into_iter()
            .map(|l| LibraryView {
                books: l.series.iter().map(|s| s.books.len()).sum(),
                series: l.series.len(),
                id: l.id,
                name: l.name,
            })
            .collect(),
    ))
}

/// A page of a library's series, with fields, locks, external IDs and books.
#[utoipa::path(get, path = "/api/v1/libraries/{id}/series", tag = "catalog",
    params(("id" = String, Path, description = "The library ID"), PageParams),
    responses((status = 200, body = SeriesPage), (status = 404, body = ErrorBody)))]
async fn library_series(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<SeriesPage>> {
    let (limit, offset) = page(params.limit, params.offset)?;
    let library = state.store.export_catalog(Some(&id)).await?.libraries.remove(0);
    let total = library.series.len();
    let series: Vec<SeriesView> =
        library.series.into_iter().skip(offset).take(limit).map(series_view).collect();
    let next_offset = (offset + series.len() < total).then_some(offset + series.len());
    Ok(Json(SeriesPage { series, total, next_offset }))
}

/// One series of a library.
#[utoipa::path(get, path = "/api/v1/libraries/{id}/series/{series}", tag = "catalog",
    params(("id" = String, Path, description = "The library ID"),
        ("series" = String, Path, description = "The series ID")),
    responses((status = 200, body = SeriesView), (status = 404, body = ErrorBody)))]
async fn one_series(
    State(state): State<AppState>,
    Path((id, series)): Path<(String, String)>,
) -> ApiResult<Json<SeriesView>> {
    let library = state.store.export_catalog(Some(&id)).await?.libraries.remove(0);
    library
        .series
        .into_iter()
        .find(|s| s.id == series)
        .map(|s| Json(series_view(s)))
        .ok_or(ApiError::NotFound { what: "series", id: format!("{id}/{series}") })
}

fn external_ids(
    ids: std::collections::BTreeMap<String, crate::catalog::file::ExternalIdDef>,
) -> HashMap<String, ExternalIdView> {
    ids.into_iter()
        .map(|(p, d)| (p, ExternalIdView { id: d.id, last_synced_at: d.last_synced_at }))
        .collect()
}

fn series_view(s: crate::catalog::file::SeriesDef) -> SeriesView {
    SeriesView {
        id: s.id,
        metadata: Value::Object(s.metadata),
        locks: s.locks,
        external_ids: external_ids(s.external_ids),
        books: s
            .books
            .into_iter()
            .map(|b| BookView {
                id: b.id,
                metadata: Value::Object(b.metadata),
                locks: b.locks,
                external_ids: external_ids(b.external_ids),
            })
            .collect(),
    }
}
