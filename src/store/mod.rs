//! Persistence: the catalog, jobs, runs and their per-entry results. The domain types and the
//! one interface the rest of curator uses ([`Store`]) live here; `sqlite` is the embedded
//! backend for one process, `postgres` the shared one for several replicas. The URL's scheme
//! picks the backend. Database errors become [`StoreError`] at this boundary, and a missing row
//! becomes `NotFound` rather than a driver error.

pub mod backup;
mod postgres;
mod sqlite;
#[cfg(test)]
#[path = "../../tests/support/testdb.rs"]
mod testdb;
#[cfg(test)]
mod tests;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::file::CatalogFile;
use crate::provider::EntityKind;
use crate::spec::LibraryJob;

/// How long a run's lease lasts unless the config says otherwise: a process that stops
/// renewing it (killed, frozen, cut off from the database) loses the run this long after its
/// last renewal.
pub const DEFAULT_RUN_LEASE: Duration = Duration::from_secs(30);

/// How many times an interrupted scheduled run is continued by another process before its
/// remaining entries are left alone: a run that kills every process that takes it must not
/// be handed on for ever.
pub const MAX_RUN_ATTEMPTS: i64 = 3;

/// How long a claimed slot is remembered at the least, whatever the run history keeps: a
/// replica whose clock lags by less than this cannot fire a slot twice.
pub const FIRINGS_KEPT_FOR: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Why a run's start was passed over.
pub const OVERLAP_REASON: &str = "the previous run of this job is still going";

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend for a database URL, by its scheme: `sqlite:`, or `postgres:` /
    /// `postgresql:`.
    pub fn of(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(StoreError::Unsupported { url: redact_url(url) }),
        }
    }
}

/// The database: catalog, jobs and runs, on whichever backend the URL names.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens the database a URL names (creating an SQLite file if needed) and brings its schema
    /// up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Ok(match Backend::of(url)? {
            Backend::Sqlite => Store::Sqlite(SqliteStore::open(url).await?),
            Backend::Postgres => Store::Postgres(PgStore::open(url).await?),
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// The same store, with runs it starts held for `lease` between renewals.
    pub fn with_run_lease(self, lease: Duration) -> Store {
        match self {
            Store::Sqlite(s) => Store::Sqlite(s.with_run_lease(lease)),
            Store::Postgres(s) => Store::Postgres(s.with_run_lease(lease)),
        }
    }

    /// How long a run this store starts is held between renewals.
    pub fn run_lease(&self) -> Duration {
        match self {
            Store::Sqlite(s) => s.run_lease(),
            Store::Postgres(s) => s.run_lease(),
        }
    }

    /// Seeds the catalog from files: adds what the database lacks and overwrites nothing, so
    /// every start (and every `curator reconcile`) can do it safely. The counts are of what was
    /// added.
    /// A catalog file that cannot be read is a [`crate::config::ConfigError`] naming its line; a
    /// database that refuses the rows is an error naming the database at `url`.
    pub async fn seed_catalogs(
        &self,
        paths: &[PathBuf],
        url: &str,
    ) -> anyhow::Result<Vec<(PathBuf, ImportCounts)>> {
        let mut done = Vec::new();
        for path in paths {
            let catalog = CatalogFile::read(path)?;
            let counts = self.import_catalog(&catalog, ImportMode::Seed).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot add the catalog `{}` to the database `{}`: {e}{}",
                    path.display(),
                    redact_url(url),
                    read_only(&e)
                )
            })?;
            done.push((path.clone(), counts));
        }
        Ok(done)
    }

    /// Starts a reconcile pass. A writing pass holds the backend's lock from its first read to
    /// its commit (SQLite's write lock; a PostgreSQL advisory lock held by the transaction), so
    /// passes from several processes run one after another, each planning against what the one
    /// before wrote. A dry run reads one consistent snapshot and writes nothing.
    pub async fn begin_reconcile(&self, write: bool) -> Result<ReconcileTx, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => ReconcileTx::Sqlite(s.begin_reconcile(write).await?),
            Store::Postgres(s) => ReconcileTx::Postgres(s.begin_reconcile(write).await?),
        })
    }
}

/// Forwards each listed method to the backend in use.
macro_rules! dispatch {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

dispatch! {
    /// Whether the database answers.
    fn ping(&self) -> ();
    /// Loads a catalog file in one transaction; it adds and updates, never deletes.
    fn import_catalog(&self, catalog: &CatalogFile, mode: ImportMode) -> ImportCounts;
    /// The catalog in the import format, optionally for one library.
    fn export_catalog(&self, library: Option<&str>) -> CatalogFile;
    /// The IDs of every library in the catalog.
    fn library_ids(&self) -> HashSet<String>;
    /// A library's series or books, each with this provider's external ID and sync time.
    fn entries(&self, library: &str, kind: EntityKind, provider: &str) -> Vec<Entry>;
    /// Applies one entry's result atomically with its record (and the provider's ID a match
    /// found, in `attach`); fails with `RunLost` once the run is no longer this process's.
    #[allow(clippy::too_many_arguments)]
    fn write_entry(
        &self,
        run_id: i64,
        seq: i64,
        entry: &Entry,
        provider: &str,
        attach: Option<&str>,
        synced: Option<DateTime<Utc>>,
        result: &EntryResult
    ) -> ();
    /// Records an entry the run did not touch (skipped or failed).
    fn record_entry(&self, run_id: i64, seq: i64, result: &EntryResult) -> ();
    /// Records many untouched entries in one transaction.
    fn record_entries(&self, run_id: i64, results: &[(i64, EntryResult)]) -> ();
    /// The entries an interrupted run's chain of earlier attempts already recorded, as
    /// (kind, key): a continuation leaves them alone.
    fn done_entries(&self, run_id: i64) -> HashSet<(EntityKind, String)>;
    /// Every job, by ID.
    fn jobs(&self) -> Vec<JobRow>;
    /// Every job's schedule, without the rest of its spec.
    fn schedules(&self) -> Vec<ScheduleRow>;
    /// One job.
    fn job(&self, id: &str) -> JobRow;
    /// The last applied or refused pass's outcome, for status reads.
    fn last_reconcile(&self) -> Option<StoredSummary>;
    /// Claims a job's slot and creates its run in the same transaction, so a slot is never
    /// claimed without a run to show for it. `None` when the slot was claimed already, by
    /// this process or another: the caller must not run it. With `skip`, the run is recorded
    /// `skipped` for that reason (the slot is claimed as `missed`); otherwise it starts
    /// `running` and held by this process, or `skipped` when another run of the job is going.
    fn claim_slot(
        &self,
        job_id: &str,
        slot: DateTime<Utc>,
        trigger: &str,
        skip: Option<&str>
    ) -> Option<RunRow>;
    /// Each job's latest claimed slot.
    fn last_slots(&self) -> HashMap<String, DateTime<Utc>>;
    /// Creates a run row in `status` (`queued`, `running` or `skipped`).
    fn create_run(
        &self,
        job_id: &str,
        trigger: &str,
        status: &str,
        slot: Option<DateTime<Utc>>,
        error: Option<&str>
    ) -> i64;
    /// Starts a run held by this process, or records it `skipped` when another run of the job
    /// is going (in any process).
    fn start_run(&self, job_id: &str, trigger: &str, slot: Option<DateTime<Utc>>) -> RunRow;
    /// Takes the oldest queued run that no other process is taking: `running` and held by
    /// this process, or `skipped` when another run of its job is going. `None` when none waits.
    fn claim_queued_run(&self) -> Option<RunRow>;
    /// Extends this process's hold on a running run; `false` when the run is no longer its
    /// own (ended, or taken over after the lease ran out).
    fn renew_lease(&self, run_id: i64) -> bool;
    /// Marks every running run whose lease has run out `interrupted`, and queues the rest of
    /// each scheduled one as a continuation.
    fn reap_expired_runs(&self) -> Vec<Reaped>;
    /// Ends a run with its status, totals and error; a run already ended keeps its ending.
    fn finish_run(&self, id: i64, status: &str, totals: &Value, error: Option<&str>) -> ();
    /// Deletes a job's runs beyond the newest `keep` and any older than `max_age`, and its
    /// claimed slots beyond the newest `keep` that are older than [`FIRINGS_KEPT_FOR`].
    fn prune_runs(&self, job_id: &str, keep: u32, max_age: chrono::Duration) -> u64;
    /// Marks this process's running runs `interrupted` (shutdown's last step), queueing the
    /// rest of scheduled ones for whichever process comes next.
    fn interrupt_own_runs(&self) -> Vec<Reaped>;
    /// Marks runs held by a process of this host that is gone `interrupted`, queueing the
    /// rest of scheduled ones.
    fn interrupt_orphaned_runs(&self) -> Vec<Reaped>;
    /// Stores what a plugin's manifest said at its latest start.
    fn save_manifest(
        &self,
        name: &str,
        capabilities: crate::provider::Capabilities,
        manifest: &Value
    ) -> ();
    /// Each plugin's capabilities as its manifest last gave them.
    fn manifests(&self) -> crate::validate::Manifests;
    /// Cancels a run: a queued one at once, a running one by a request its holder acts on.
    fn request_cancel(&self, id: i64) -> CancelOutcome;
    /// Whether someone asked to cancel the run.
    fn cancel_requested(&self, id: i64) -> bool;
    /// One run.
    fn run(&self, id: i64) -> RunRow;
    /// The newest runs, optionally of one job.
    fn runs(&self, job: Option<&str>, limit: i64) -> Vec<RunRow>;
    /// Each job's newest run that was not skipped.
    fn last_runs(&self) -> HashMap<String, RunRow>;
    /// A run's per-entry results, in the order they were recorded.
    fn run_entries(&self, run_id: i64) -> Vec<EntryResult>;
}

impl Store {
    /// Closes every connection, so the files can be removed.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

/// One reconcile pass's transaction (see [`Store::begin_reconcile`]). Dropped without
/// [`ReconcileTx::apply`], it rolls back.
pub enum ReconcileTx {
    Sqlite(sqlite::ReconcileTx),
    Postgres(postgres::ReconcileTx),
}

impl ReconcileTx {
    /// The IDs of every library in the catalog.
    pub async fn library_ids(&mut self) -> Result<HashSet<String>, StoreError> {
        match self {
            ReconcileTx::Sqlite(tx) => tx.library_ids().await,
            ReconcileTx::Postgres(tx) => tx.library_ids().await,
        }
    }

    /// Each plugin's capabilities as its manifest last gave them.
    pub async fn manifests(&mut self) -> Result<crate::validate::Manifests, StoreError> {
        match self {
            ReconcileTx::Sqlite(tx) => tx.manifests().await,
            ReconcileTx::Postgres(tx) => tx.manifests().await,
        }
    }

    /// The file index, the job count, the rows written outside curator, and the index's key.
    pub async fn index(&mut self) -> Result<JobIndex, StoreError> {
        match self {
            ReconcileTx::Sqlite(tx) => tx.index().await,
            ReconcileTx::Postgres(tx) => tx.index().await,
        }
    }

    /// The rows in `scope`, plus every row whose file has no record in the index (the kept
    /// jobs of a file with errors, rows written outside curator), by ID.
    pub async fn job_rows(&mut self, scope: &RowScope) -> Result<Vec<JobRow>, StoreError> {
        match self {
            ReconcileTx::Sqlite(tx) => tx.job_rows(scope).await,
            ReconcileTx::Postgres(tx) => tx.job_rows(scope).await,
        }
    }

    /// Writes a pass's changes and commits them. A pass with nothing to change touches no job
    /// row; only the summary row is written.
    pub async fn apply(self, changes: &JobChanges<'_>) -> Result<(), StoreError> {
        match self {
            ReconcileTx::Sqlite(tx) => tx.apply(changes).await,
            ReconcileTx::Postgres(tx) => tx.apply(changes).await,
        }
    }
}

/// A run found without a live holder and marked `interrupted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped {
    pub run_id: i64,
    pub job_id: String,
    /// The process that held it.
    pub owner: Option<String>,
    /// The queued run that continues it, for a scheduled run with attempts left.
    pub continuation: Option<i64>,
}

/// Hides a password in a database or webhook URL: in the user part (`user:secret@host`) and
/// in a `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:<redacted>{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    };
    if let Some((base, query)) = out.split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}=<redacted>")
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{base}?{}", query.join("&"));
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    /// `url` is already redacted. The driver's error is part of the message, not a source, so
    /// it is printed once.
    #[error("cannot open the database `{url}`: {error}{}", damaged(.error))]
    Open { url: String, error: sqlx::Error },
    #[error(
        "database URL `{url}` is not supported: expected `sqlite:` (for example \
         `sqlite://data/curator.db`) or `postgres:` / `postgresql:` (for example \
         `postgres://curator@db.example.org/curator`)"
    )]
    Unsupported { url: String },
    #[error(
        "run {id} is no longer held by this process: its lease ran out and it was marked \
         interrupted"
    )]
    RunLost { id: i64 },
    /// Like [`StoreError::Open`], the driver's error is part of the message.
    #[error("cannot upgrade the schema of the database `{url}`: {error}{}", damaged(.error))]
    Migrate { url: String, error: sqlx::migrate::MigrateError },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored {what} cannot be read: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

/// What to do about a database file that SQLite finds damaged, as the end of a sentence.
fn damaged(error: &impl std::fmt::Display) -> &'static str {
    let text = error.to_string();
    if text.contains("malformed") || text.contains("not a database") {
        ": the file is damaged; put a backup in its place with `curator db restore FILE`"
    } else {
        ""
    }
}

/// What to do about a database that refuses writes, as the end of a sentence.
pub fn read_only(error: &impl std::fmt::Display) -> &'static str {
    if error.to_string().contains("readonly database") {
        ": the user running curator must be able to write the database file and its folder"
    } else {
        ""
    }
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
    /// The interrupted run this one continues, leaving alone the entries it recorded.
    pub resumes: Option<i64>,
    /// 1 for a first run, one more for each continuation.
    pub attempt: i64,
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

/// Counts of what an import touched: for a seed, of what it added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub libraries: usize,
    pub series: usize,
    pub books: usize,
}

/// The catalog's libraries, series and books, counted in one query by either backend.
pub(crate) const CATALOG_ROWS: &str = "SELECT (SELECT COUNT(*) FROM libraries), \
     (SELECT COUNT(*) FROM series), (SELECT COUNT(*) FROM books)";

impl From<(i64, i64, i64)> for ImportCounts {
    fn from((libraries, series, books): (i64, i64, i64)) -> Self {
        let count = |n: i64| usize::try_from(n).unwrap_or_default();
        ImportCounts { libraries: count(libraries), series: count(series), books: count(books) }
    }
}

impl ImportCounts {
    /// What was added between `before` and these counts of the same catalog; a seed deletes
    /// nothing, so the difference is what it added.
    pub(crate) fn added_since(self, before: ImportCounts) -> ImportCounts {
        ImportCounts {
            libraries: self.libraries.saturating_sub(before.libraries),
            series: self.series.saturating_sub(before.series),
            books: self.books.saturating_sub(before.books),
        }
    }
}

/// This process, as recorded in the runs it holds: `host:pid`.
pub(crate) fn process_owner() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a run's holder is a process of this host that no longer exists (or the run has
/// no holder at all). A holder on another host cannot be seen from here: its lease tells.
fn is_orphan(owner: Option<String>) -> bool {
    match owner.as_deref().and_then(|o| o.rsplit_once(':')) {
        Some((host, pid)) if host == host_name() => {
            !std::path::Path::new("/proc").join(pid).exists()
        }
        Some(_) => false,
        None => true,
    }
}

/// Whether an interrupted run with this trigger and attempt gets a continuation: scheduled
/// and catch-up runs do, up to [`MAX_RUN_ATTEMPTS`]; a manual run is the requester's to
/// repeat.
fn continues(trigger: &str, attempt: i64) -> bool {
    matches!(trigger, "schedule" | "catch-up") && attempt < MAX_RUN_ATTEMPTS
}

fn entity_kind(text: &str) -> EntityKind {
    if text == "book" { EntityKind::Book } else { EntityKind::Series }
}

pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt { what: "timestamp", reason: format!("`{text}`: {e}") })
}
