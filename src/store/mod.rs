//! Persistence: the catalog, jobs, runs and their per-entry results. The domain types live
//! here; `sqlite` is the embedded backend. Database errors become [`StoreError`] at this
//! boundary, and a missing row becomes `NotFound` rather than a driver error.

mod sqlite;

pub use sqlite::{ReconcileTx, Store};

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::provider::EntityKind;
use crate::spec::LibraryJob;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("cannot open the database `{url}`: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot upgrade the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored {what} cannot be read: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

/// A job as the reconciler last applied it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRow {
    pub id: String,
    pub name: String,
    pub library_id: String,
    pub provider: String,
    pub enabled: bool,
    #[serde(skip)]
    pub spec: LibraryJob,
    /// The normalized spec, as stored.
    #[serde(rename = "spec")]
    pub spec_json: Value,
    /// The document's YAML as written.
    pub source: String,
    /// The file under `jobs.d/` it came from.
    pub source_file: String,
    pub source_line: i64,
    /// SHA-256 of the document's normalized spec: comments and layout do not change it.
    pub content_hash: String,
    /// Where the file stands in Git; `None` when `jobs.d/` is not in a Git work tree.
    pub git: Option<GitState>,
    pub created_at: DateTime<Utc>,
    /// When the reconciler last changed the job's spec or file; refreshing its line, comments
    /// or commit leaves it.
    pub updated_at: DateTime<Utc>,
}

/// What the scheduler needs of a job: much smaller than a [`JobRow`] when there are 100,000.
#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub id: String,
    pub enabled: bool,
    /// Changes whenever the spec does; an unchanged hash keeps the job's queued slot.
    pub content_hash: String,
    pub schedule: crate::spec::Schedule,
    /// When the job was first reconciled: missed slots are counted from here at the latest.
    pub created_at: DateTime<Utc>,
}

impl From<&JobRow> for ScheduleRow {
    fn from(job: &JobRow) -> Self {
        ScheduleRow {
            id: job.id.clone(),
            enabled: job.enabled,
            content_hash: job.content_hash.clone(),
            schedule: job.spec.schedule.clone(),
            created_at: job.created_at,
        }
    }
}

/// What the reconciler writes for one job.
#[derive(Debug, Clone)]
pub struct JobWrite {
    pub id: String,
    pub name: String,
    pub library_id: String,
    pub provider: String,
    pub enabled: bool,
    pub spec_json: Value,
    pub source: String,
    pub source_file: String,
    pub source_line: i64,
    pub content_hash: String,
    pub git: Option<GitState>,
}

/// A job file's place in Git.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    /// The commit that last changed the file; `None` when Git has never committed it (or, in a
    /// shallow clone, when that commit is older than the history it holds).
    pub commit: Option<String>,
    /// Whether the work tree holds changes to the file that are not committed (modified,
    /// staged, untracked or ignored).
    pub dirty: bool,
}

/// A valid job file as the reconciler last read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The path under `jobs.d/`, as in [`JobRow::source_file`].
    pub path: String,
    /// A hash of the file's size, times and inode, taken before it was read: while it matches,
    /// the file has not been written since.
    pub stamp: i64,
    /// Whether the file had been modified well before it was read. When not, a second write
    /// within the same tick of the file system's clock could leave the stamp as it was, so the
    /// file is read again.
    pub stable: bool,
    pub git: Option<GitState>,
}

/// What a reconcile pass reads before it looks at the directory.
#[derive(Debug, Clone, Default)]
pub struct JobIndex {
    /// The valid files of the last applied pass, by path.
    pub files: HashMap<String, FileRecord>,
    pub job_count: usize,
    /// (job ID, source file) of every row written outside curator since the last applied pass.
    pub touched: Vec<(String, String)>,
    /// The key the file index was built under; `None` before the first applied pass.
    pub cache_key: Option<String>,
    /// The Git HEAD the stored commits were read at.
    pub provenance_head: Option<String>,
}

/// Which job rows a pass loads in full.
#[derive(Debug, Clone, Default)]
pub struct RowScope {
    /// Every row.
    pub all: bool,
    /// Rows from these files (paths under `jobs.d/`).
    pub files: Vec<String>,
    /// Rows with these IDs.
    pub ids: Vec<String>,
}

/// Everything one reconcile pass writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct JobChanges<'a> {
    /// Jobs created or updated: every column is written.
    pub upserts: Vec<&'a JobWrite>,
    /// Jobs whose spec is unchanged but whose line, YAML text or Git state moved on.
    pub refreshes: &'a [JobWrite],
    /// Job IDs to delete; their runs are marked as belonging to a deleted job.
    pub deletes: Vec<String>,
    /// New Git state for every job of an unchanged file, by file.
    pub git_by_file: &'a [(String, Option<GitState>)],
    /// File records to store, and paths to forget (deleted files, files now with errors).
    pub files: Vec<FileRecord>,
    pub forget_files: Vec<String>,
    /// The key and HEAD the file index now matches; `None` leaves the stored ones (a refused
    /// pass applies nothing, so its index is still the old one).
    pub index_key: Option<(String, Option<String>)>,
    /// The pass's outcome, stored for status reads.
    pub summary: Value,
}

/// The last reconcile pass's outcome, as stored.
#[derive(Debug, Clone)]
pub struct StoredSummary {
    pub finished_at: DateTime<Utc>,
    pub summary: Value,
}
/// One series or book as a run sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntityKind,
    /// The row ID in `series` or `books`.
    pub row_id: i64,
    /// `frieren` for a series, `frieren/frieren-v01` for a book.
    pub key: String,
    pub metadata: Map<String, Value>,
    pub locks: Vec<String>,
    /// This provider's ID for the entry, if it has one.
    pub external_id: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
}

impl Entry {
    pub fn title(&self) -> Option<String> {
        self.metadata.get("title").and_then(Value::as_str).map(String::from)
    }
}

/// One field a run changed, or would change.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// What a run did with one entry.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EntryResult {
    pub kind: EntityKind,
    pub entry: String,
    pub title: Option<String>,
    /// `updated`, `unchanged`, `skipped` or `failed`.
    pub outcome: String,
    /// Why an entry was skipped or failed, or which fields were held back.
    pub reason: Option<String>,
    pub changes: Vec<Change>,
}

/// One run of a job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRow {
    pub id: i64,
    pub job_id: String,
    /// `schedule`, `manual` or `catch-up`.
    pub trigger: String,
    /// `queued`, `running`, `succeeded`, `partial`, `failed`, `cancelled`, `interrupted`,
    /// `skipped`.
    pub status: String,
    /// The cron slot a scheduled run is for.
    pub slot: Option<DateTime<Utc>>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub totals: Value,
    pub error: Option<String>,
    /// When the run's job was deleted; `None` while it exists.
    pub job_deleted_at: Option<DateTime<Utc>>,
}

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome", content = "status")]
pub enum CancelOutcome {
    /// The run was queued and is now `cancelled`.
    Cancelled,
    /// The run is going; it stops making provider calls and ends `cancelled`.
    Requested,
    /// The run had already ended, with this status.
    AlreadyEnded(String),
}

/// Whether an import overwrites what the database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// The file's metadata, locks and IDs replace the stored ones.
    Upsert,
    /// Only entries, IDs and libraries the database lacks are added.
    Seed,
}

/// Counts of what an import touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub libraries: usize,
    pub series: usize,
    pub books: usize,
}

pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt { what: "timestamp", reason: format!("`{text}`: {e}") })
}
