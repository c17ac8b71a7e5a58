//! The SQLite backend: one file, WAL, and `BEGIN IMMEDIATE` for every write transaction, so a
//! second process (a `curator reconcile` beside `serve`) waits for the lock instead of failing
//! halfway with "database is locked".

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool, Transaction};

use super::{
    CancelOutcome, Change, Entry, EntryResult, FileRecord, GitState, ImportCounts, ImportMode,
    JobChanges, JobIndex, JobRow, JobWrite, RowScope, RunRow, ScheduleRow, StoreError,
    StoredSummary, parse_timestamp, timestamp,
};
use crate::catalog::file::{BookDef, CatalogFile, ExternalIdDef, LibraryDef, SeriesDef};
use crate::provider::EntityKind;

/// The database: catalog, jobs and runs.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

type Tx = Transaction<'static, sqlx::Sqlite>;

impl Store {
    /// Opens (creating if needed) the database at a `sqlite:` URL and brings its schema up to
    /// date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open { url: url.to_string(), source };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = Path::new(options.get_filename()).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| open_error(sqlx::Error::Io(e)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Store { pool })
    }

    async fn write(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Closes every connection, so the files can be removed.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ----- catalog -----

    /// Loads a catalog file in one transaction. Entries absent from the file are left alone:
    /// an import adds and updates, it never deletes. [`ImportMode::Upsert`] makes the file's
    /// values win; [`ImportMode::Seed`] only adds what is missing, so a start-up import never
    /// undoes what runs wrote since.
    pub async fn import_catalog(
        &self,
        catalog: &CatalogFile,
        mode: ImportMode,
    ) -> Result<ImportCounts, StoreError> {
        let seed = mode == ImportMode::Seed;
        let mut tx = self.write().await?;
        let mut counts = ImportCounts::default();
        for library in &catalog.libraries {
            let sql = if seed {
                "INSERT INTO libraries (id, name) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"
            } else {
                "INSERT INTO libraries (id, name) VALUES (?, ?)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name"
            };
            sqlx::query(sql).bind(&library.id).bind(&library.name).execute(&mut *tx).await?;
            counts.libraries += 1;
            for series in &library.series {
                let series_id = upsert_entity(
                    &mut tx,
                    if seed {
                        "INSERT INTO series (library_id, key, metadata, locks) VALUES (?, ?, ?, ?)
                         ON CONFLICT (library_id, key) DO UPDATE SET key = key
                         RETURNING id"
                    } else {
                        "INSERT INTO series (library_id, key, metadata, locks) VALUES (?, ?, ?, ?)
                         ON CONFLICT (library_id, key) DO UPDATE
                         SET metadata = excluded.metadata, locks = excluded.locks
                         RETURNING id"
                    },
                    Value::String(library.id.clone()),
                    &series.id,
                    &series.metadata,
                    &series.locks,
                )
                .await?;
                upsert_ids(&mut tx, EntityKind::Series, series_id, &series.external_ids, seed)
                    .await?;
                counts.series += 1;
                for book in &series.books {
                    let book_id = upsert_entity(
                        &mut tx,
                        if seed {
                            "INSERT INTO books (series_id, key, metadata, locks) VALUES (?, ?, ?, ?)
                             ON CONFLICT (series_id, key) DO UPDATE SET key = key
                             RETURNING id"
                        } else {
                            "INSERT INTO books (series_id, key, metadata, locks) VALUES (?, ?, ?, ?)
                             ON CONFLICT (series_id, key) DO UPDATE
                             SET metadata = excluded.metadata, locks = excluded.locks
                             RETURNING id"
                        },
                        Value::from(series_id),
                        &book.id,
                        &book.metadata,
                        &book.locks,
                    )
                    .await?;
                    upsert_ids(&mut tx, EntityKind::Book, book_id, &book.external_ids, seed)
                        .await?;
                    counts.books += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Seeds the catalog from files: adds what the database lacks and overwrites nothing, so
    /// every start (and every `curator reconcile`) can do it safely.
    pub async fn seed_catalogs(
        &self,
        paths: &[std::path::PathBuf],
    ) -> Result<Vec<(std::path::PathBuf, ImportCounts)>, crate::config::ConfigError> {
        let mut done = Vec::new();
        for path in paths {
            let catalog = CatalogFile::read(path)?;
            let counts = self.import_catalog(&catalog, ImportMode::Seed).await.map_err(|e| {
                crate::config::ConfigError {
                    location: path.display().to_string(),
                    message: e.to_string(),
                }
            })?;
            done.push((path.clone(), counts));
        }
        Ok(done)
    }

    /// Writes the catalog back out in the import format, optionally for one library.
    pub async fn export_catalog(&self, library: Option<&str>) -> Result<CatalogFile, StoreError> {
        let libraries =
            sqlx::query("SELECT id, name FROM libraries ORDER BY id").fetch_all(&self.pool).await?;
        let mut out = CatalogFile::default();
        for row in libraries {
            let id: String = row.get("id");
            if library.is_some_and(|l| l != id) {
                continue;
            }
            let mut def = LibraryDef { id: id.clone(), name: row.get("name"), series: vec![] };
            let series = sqlx::query(
                "SELECT id, key, metadata, locks FROM series WHERE library_id = ? ORDER BY key",
            )
            .bind(&id)
            .fetch_all(&self.pool)
            .await?;
            for s in series {
                let series_id: i64 = s.get("id");
                let mut books = Vec::new();
                let rows = sqlx::query(
                    "SELECT id, key, metadata, locks FROM books WHERE series_id = ? ORDER BY key",
                )
                .bind(series_id)
                .fetch_all(&self.pool)
                .await?;
                for b in rows {
                    let book_id: i64 = b.get("id");
                    books.push(BookDef {
                        id: b.get("key"),
                        metadata: json_object(b.get("metadata"))?,
                        locks: json_list(b.get("locks"))?,
                        external_ids: self.external_ids(EntityKind::Book, book_id).await?,
                    });
                }
                def.series.push(SeriesDef {
                    id: s.get("key"),
                    metadata: json_object(s.get("metadata"))?,
                    locks: json_list(s.get("locks"))?,
                    external_ids: self.external_ids(EntityKind::Series, series_id).await?,
                    books,
                });
            }
            out.libraries.push(def);
        }
        if let Some(wanted) = library
            && out.libraries.is_empty()
        {
            return Err(StoreError::NotFound { what: "library", id: wanted.to_string() });
        }
        Ok(out)
    }

    async fn external_ids(
        &self,
        kind: EntityKind,
        row_id: i64,
    ) -> Result<std::collections::BTreeMap<String, ExternalIdDef>, StoreError> {
        let sql = match kind {
            EntityKind::Series => {
                "SELECT provider, external_id, last_synced_at FROM series_external_ids
                 WHERE series_id = ?"
            }
            EntityKind::Book => {
                "SELECT provider, external_id, last_synced_at FROM book_external_ids
                 WHERE book_id = ?"
            }
        };
        let rows = sqlx::query(sql).bind(row_id).fetch_all(&self.pool).await?;
        let mut ids = std::collections::BTreeMap::new();
        for row in rows {
            let synced: Option<String> = row.get("last_synced_at");
            ids.insert(
                row.get("provider"),
                ExternalIdDef {
                    id: row.get("external_id"),
                    last_synced_at: synced.as_deref().map(parse_timestamp).transpose()?,
                },
            );
        }
        Ok(ids)
    }

    /// The IDs of every library in the catalog.
    pub async fn library_ids(&self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM libraries").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| r.get("id")).collect())
    }

    /// A library's series or books, each with this provider's external ID and sync time.
    pub async fn entries(
        &self,
        library: &str,
        kind: EntityKind,
        provider: &str,
    ) -> Result<Vec<Entry>, StoreError> {
        let sql = match kind {
            EntityKind::Series => {
                "SELECT s.id, s.key, s.metadata, s.locks, x.external_id, x.last_synced_at
                 FROM series s
                 LEFT JOIN series_external_ids x ON x.series_id = s.id AND x.provider = ?
                 WHERE s.library_id = ?
                 ORDER BY s.key"
            }
            EntityKind::Book => {
                "SELECT b.id, s.key || '/' || b.key AS key, b.metadata, b.locks,
                        x.external_id, x.last_synced_at
                 FROM books b
                 JOIN series s ON s.id = b.series_id
                 LEFT JOIN book_external_ids x ON x.book_id = b.id AND x.provider = ?
                 WHERE s.library_id = ?
                 ORDER BY s.key, b.key"
            }
        };
        let rows = sqlx::query(sql).bind(provider).bind(library).fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                let synced: Option<String> = row.get("last_synced_at");
                Ok(Entry {
                    kind,
                    row_id: row.get("id"),
                    key: row.get("key"),
                    metadata: json_object(row.get("metadata"))?,
                    locks: json_list(row.get("locks"))?,
                    external_id: row.get("external_id"),
                    last_synced_at: synced.as_deref().map(parse_timestamp).transpose()?,
                })
            })
            .collect()
    }

    /// Applies one entry's result atomically: its changed fields, the provider's
    /// `last_synced_at` when `synced` is set, and the run's record of the entry. Values are
    /// merged into the row as it is now, so a concurrent write to another field is kept.
    ///
    /// `attach` is the provider's ID for an entry that had none (a confident match): it is
    /// stored in the same transaction, so an entry never keeps an ID without its fields.
    #[allow(clippy::too_many_arguments)]
    pub async fn write_entry(
        &self,
        run_id: i64,
        seq: i64,
        entry: &Entry,
        provider: &str,
        attach: Option<&str>,
        synced: Option<DateTime<Utc>>,
        result: &EntryResult,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        if let Some(external_id) = attach {
            let sql = match entry.kind {
                EntityKind::Series => {
                    "INSERT INTO series_external_ids (series_id, provider, external_id)
                     VALUES (?, ?, ?)
                     ON CONFLICT (series_id, provider) DO UPDATE SET external_id = excluded.external_id"
                }
                EntityKind::Book => {
                    "INSERT INTO book_external_ids (book_id, provider, external_id)
                     VALUES (?, ?, ?)
                     ON CONFLICT (book_id, provider) DO UPDATE SET external_id = excluded.external_id"
                }
            };
            sqlx::query(sql)
                .bind(entry.row_id)
                .bind(provider)
                .bind(external_id)
                .execute(&mut *tx)
                .await?;
        }
        if !result.changes.is_empty() {
            let (select, update) = match entry.kind {
                EntityKind::Series => (
                    "SELECT metadata FROM series WHERE id = ?",
                    "UPDATE series SET metadata = ? WHERE id = ?",
                ),
                EntityKind::Book => (
                    "SELECT metadata FROM books WHERE id = ?",
                    "UPDATE books SET metadata = ? WHERE id = ?",
                ),
            };
            let current: String = sqlx::query_scalar(select)
                .bind(entry.row_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: entry.kind.as_str(),
                    id: entry.key.clone(),
                })?;
            let mut metadata = json_object(current)?;
            for Change { field, after, .. } in &result.changes {
                metadata.insert(field.clone(), after.clone());
            }
            sqlx::query(update)
                .bind(Value::Object(metadata).to_string())
                .bind(entry.row_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(at) = synced {
            let sql = match entry.kind {
                EntityKind::Series => {
                    "UPDATE series_external_ids SET last_synced_at = ?
                     WHERE series_id = ? AND provider = ?"
                }
                EntityKind::Book => {
                    "UPDATE book_external_ids SET last_synced_at = ?
                     WHERE book_id = ? AND provider = ?"
                }
            };
            sqlx::query(sql)
                .bind(timestamp(at))
                .bind(entry.row_id)
                .bind(provider)
                .execute(&mut *tx)
                .await?;
        }
        insert_entry_result(&mut tx, run_id, seq, result).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an entry the run did not touch (skipped or failed).
    pub async fn record_entry(
        &self,
        run_id: i64,
        seq: i64,
        result: &EntryResult,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        insert_entry_result(&mut tx, run_id, seq, result).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records many untouched entries in one transaction.
    pub async fn record_entries(
        &self,
        run_id: i64,
        results: &[(i64, EntryResult)],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for (seq, result) in results {
            insert_entry_result(&mut tx, run_id, *seq, result).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ----- jobs -----

    /// Every job, by ID.
    pub async fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Every job's schedule, without the rest of its spec.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, enabled, content_hash, created_at,
                    json_extract(spec, '$.schedule') AS schedule
             FROM jobs ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let schedule: String = row.get("schedule");
                let created: String = row.get("created_at");
                Ok(ScheduleRow {
                    created_at: parse_timestamp(&created)?,
                    id: row.get("id"),
                    enabled: row.get("enabled"),
                    content_hash: row.get("content_hash"),
                    schedule: serde_json::from_str(&schedule).map_err(|e| StoreError::Corrupt {
                        what: "job schedule",
                        reason: e.to_string(),
                    })?,
                })
            })
            .collect()
    }

    pub async fn job(&self, id: &str) -> Result<JobRow, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "job", id: id.to_string() })?;
        job_from_row(&row)
    }

    /// Starts a reconcile pass. A writing pass takes SQLite's write lock (`BEGIN IMMEDIATE`)
    /// before its first read and holds it to its commit, so passes from several processes (a
    /// `curator reconcile` beside `serve`) run one after another, each planning against what
    /// the one before wrote. A dry run reads one consistent snapshot and writes nothing.
    ///
    /// The lock lives here, not in the reconciler, so another backend can take its own kind
    /// (PostgreSQL: an advisory lock held by the transaction).
    pub async fn begin_reconcile(&self, write: bool) -> Result<ReconcileTx, StoreError> {
        let tx = if write { self.write().await? } else { self.pool.begin().await? };
        Ok(ReconcileTx { tx })
    }

    /// The last applied or refused pass's outcome, for status reads.
    pub async fn last_reconcile(&self) -> Result<Option<StoredSummary>, StoreError> {
        let row = sqlx::query("SELECT finished_at, summary FROM reconcile_state WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let finished: String = row.get("finished_at");
        let summary: String = row.get("summary");
        Ok(Some(StoredSummary {
            finished_at: parse_timestamp(&finished)?,
            summary: serde_json::from_str(&summary).map_err(|e| StoreError::Corrupt {
                what: "reconcile summary",
                reason: e.to_string(),
            })?,
        }))
    }

    // ----- firings -----

    /// Claims a job's slot; `false` when it was claimed already, and the caller must not run it.
    pub async fn claim_firing(
        &self,
        job_id: &str,
        slot: DateTime<Utc>,
        trigger: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "INSERT INTO firings (job_id, slot, trigger, fired_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (job_id, slot) DO NOTHING",
        )
        .bind(job_id)
        .bind(timestamp(slot))
        .bind(trigger)
        .bind(timestamp(Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Each job's latest claimed slot.
    pub async fn last_slots(&self) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let rows = sqlx::query("SELECT job_id, MAX(slot) AS slot FROM firings GROUP BY job_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let slot: String = row.get("slot");
                Ok((row.get("job_id"), parse_timestamp(&slot)?))
            })
            .collect()
    }

    // ----- runs -----

    /// Creates a run row in `status` (`queued`, `running` or `skipped`).
    pub async fn create_run(
        &self,
        job_id: &str,
        trigger: &str,
        status: &str,
        slot: Option<DateTime<Utc>>,
        error: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let now = timestamp(Utc::now());
        let started = (status == "running").then(|| now.clone());
        let finished = (status == "skipped").then(|| now.clone());
        let owner = (status == "running").then(process_owner);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (job_id, trigger, status, slot, queued_at, started_at, finished_at,
                               error, owner)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(job_id)
        .bind(trigger)
        .bind(status)
        .bind(slot.map(timestamp))
        .bind(&now)
        .bind(started)
        .bind(finished)
        .bind(error)
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Takes the oldest queued run, marking it running; `None` when none waits.
    pub async fn claim_queued_run(&self) -> Result<Option<RunRow>, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "UPDATE runs SET status = 'running', started_at = ?, owner = ?
             WHERE id = (SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1)
             RETURNING *",
        )
        .bind(timestamp(Utc::now()))
        .bind(process_owner())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Ends a run with its status, totals and error.
    pub async fn finish_run(
        &self,
        id: i64,
        status: &str,
        totals: &Value,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            // A run already ended (marked interrupted at shutdown, say) keeps that ending.
            "UPDATE runs SET status = ?, totals = ?, error = ?, finished_at = ?
             WHERE id = ? AND status IN ('queued', 'running')",
        )
        .bind(status)
        .bind(totals.to_string())
        .bind(error)
        .bind(timestamp(Utc::now()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores what a plugin's manifest said at its latest start.
    pub async fn save_manifest(
        &self,
        name: &str,
        capabilities: crate::provider::Capabilities,
        manifest: &Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO provider_manifests (name, series, book, manifest, seen_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET series = excluded.series, book = excluded.book,
                 manifest = excluded.manifest, seen_at = excluded.seen_at",
        )
        .bind(name)
        .bind(capabilities.series)
        .bind(capabilities.book)
        .bind(manifest.to_string())
        .bind(timestamp(Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Each plugin's capabilities as its manifest last gave them.
    pub async fn manifests(&self) -> Result<crate::validate::Manifests, StoreError> {
        manifests(&self.pool).await
    }

    /// Cancels a run: a queued run ends `cancelled` at once; a running one gets a cancel
    /// request that the process running it acts on. A run that already ended is left as it is.
    pub async fn request_cancel(&self, id: i64) -> Result<CancelOutcome, StoreError> {
        let mut tx = self.write().await?;
        let now = timestamp(Utc::now());
        let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "run", id: id.to_string() })?;
        let outcome = match status.as_str() {
            "queued" => {
                sqlx::query(
                    "UPDATE runs SET status = 'cancelled', finished_at = ?, cancel_requested_at = ?,
                                     error = 'cancelled before it started'
                     WHERE id = ?",
                )
                .bind(&now)
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                CancelOutcome::Cancelled
            }
            "running" => {
                sqlx::query(
                    "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, ?)
                     WHERE id = ?",
                )
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                CancelOutcome::Requested
            }
            _ => CancelOutcome::AlreadyEnded(status),
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Whether someone asked to cancel the run.
    pub async fn cancel_requested(&self, id: i64) -> Result<bool, StoreError> {
        let at: Option<Option<String>> =
            sqlx::query_scalar("SELECT cancel_requested_at FROM runs WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(at.flatten().is_some())
    }

    /// Deletes a job's runs beyond the newest `keep` and any older than `max_age`, with their
    /// entries. Runs still going are never pruned.
    pub async fn prune_runs(
        &self,
        job_id: &str,
        keep: u32,
        max_age: chrono::Duration,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let cutoff = timestamp(Utc::now() - max_age);
        let done = sqlx::query(
            "DELETE FROM runs
             WHERE job_id = ? AND status NOT IN ('queued', 'running')
               AND (queued_at < ? OR id NOT IN
                    (SELECT id FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT ?))",
        )
        .bind(job_id)
        .bind(cutoff)
        .bind(job_id)
        .bind(i64::from(keep))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Marks this process's runs that are still going as `interrupted`: shutdown's last step
    /// once the grace period is over.
    pub async fn interrupt_own_runs(&self) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE runs SET status = 'interrupted', finished_at = ?,
                             error = 'curator stopped before the run ended'
             WHERE status = 'running' AND owner = ?",
        )
        .bind(timestamp(Utc::now()))
        .bind(process_owner())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Marks runs left `running` by a process that is gone as `interrupted`. A run owned by a
    /// live process on this host (a `curator run --wait` beside the server) is left alone; one
    /// owned by another host is too, since its liveness cannot be seen from here.
    pub async fn interrupt_orphaned_runs(&self) -> Result<u64, StoreError> {
        let rows = sqlx::query("SELECT id, owner FROM runs WHERE status = 'running'")
            .fetch_all(&self.pool)
            .await?;
        let host = host_name();
        let orphans: Vec<i64> = rows
            .iter()
            .filter(|row| {
                let owner: Option<String> = row.get("owner");
                match owner.as_deref().and_then(|o| o.rsplit_once(':')) {
                    Some((h, pid)) if h == host => !Path::new("/proc").join(pid).exists(),
                    Some(_) => false,
                    None => true,
                }
            })
            .map(|row| row.get("id"))
            .collect();
        let mut tx = self.write().await?;
        for id in &orphans {
            sqlx::query(
                "UPDATE runs SET status = 'interrupted', finished_at = ?,
                                 error = 'the process running it stopped'
                 WHERE id = ? AND status = 'running'",
            )
            .bind(timestamp(Utc::now()))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(orphans.len() as u64)
    }

    pub async fn run(&self, id: i64) -> Result<RunRow, StoreError> {
        let row = sqlx::query("SELECT * FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "run", id: id.to_string() })?;
        run_from_row(&row)
    }

    /// The newest runs, optionally of one job.
    pub async fn runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = match job {
            Some(job) => {
                sqlx::query("SELECT * FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT ?")
                    .bind(job)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM runs ORDER BY id DESC LIMIT ?")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(run_from_row).collect()
    }

    /// Each job's newest run that was not skipped.
    pub async fn last_runs(&self) -> Result<HashMap<String, RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE id IN
               (SELECT MAX(id) FROM runs WHERE status <> 'skipped' GROUP BY job_id)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| run_from_row(r).map(|run| (run.job_id.clone(), run))).collect()
    }

    /// A run's per-entry results, in the order they were recorded.
    pub async fn run_entries(&self, run_id: i64) -> Result<Vec<EntryResult>, StoreError> {
        let rows = sqlx::query("SELECT * FROM run_entries WHERE run_id = ? ORDER BY seq")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                let kind: String = row.get("kind");
                let changes: String = row.get("changes");
                Ok(EntryResult {
                    kind: if kind == "book" { EntityKind::Book } else { EntityKind::Series },
                    entry: row.get("entry"),
                    title: row.get("title"),
                    outcome: row.get("outcome"),
                    reason: row.get("reason"),
                    changes: serde_json::from_str(&changes).map_err(|e| StoreError::Corrupt {
                        what: "run entry changes",
                        reason: e.to_string(),
                    })?,
                })
            })
            .collect()
    }
}

async fn manifests<'e, E: sqlx::SqliteExecutor<'e>>(
    executor: E,
) -> Result<crate::validate::Manifests, StoreError> {
    let rows = sqlx::query("SELECT name, series, book FROM provider_manifests")
        .fetch_all(executor)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let capabilities =
                crate::provider::Capabilities { series: row.get("series"), book: row.get("book") };
            (row.get("name"), capabilities)
        })
        .collect())
}

/// One reconcile pass's transaction (see [`Store::begin_reconcile`]). Dropped without
/// [`ReconcileTx::apply`], it rolls back.
pub struct ReconcileTx {
    tx: Tx,
}

/// Rows per multi-row statement: at 14 columns, far below SQLite's 32,766 variables.
const BATCH: usize = 500;

impl ReconcileTx {
    /// The IDs of every library in the catalog.
    pub async fn library_ids(&mut self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM libraries").fetch_all(&mut *self.tx).await?;
        Ok(rows.into_iter().map(|r| r.get("id")).collect())
    }

    /// Each plugin's capabilities as its manifest last gave them.
    pub async fn manifests(&mut self) -> Result<crate::validate::Manifests, StoreError> {
        manifests(&mut *self.tx).await
    }

    /// The file index, the job count, the rows written outside curator, and the index's key.
    /// The index comes back as one JSON value: 10,000 rows through the driver one at a time
    /// take several times longer than SQLite takes to fold them into one.
    pub async fn index(&mut self) -> Result<JobIndex, StoreError> {
        let row = sqlx::query(
            "SELECT
               (SELECT json_group_array(json_array(path, stamp, stable, git_commit, git_dirty))
                FROM job_files) AS files,
               (SELECT json_group_array(json_array(id, source_file)) FROM jobs_touched)
                 AS touched,
               (SELECT COUNT(*) FROM jobs) AS job_count,
               (SELECT cache_key FROM reconcile_state WHERE id = 1) AS cache_key,
               (SELECT provenance_head FROM reconcile_state WHERE id = 1) AS provenance_head",
        )
        .fetch_one(&mut *self.tx)
        .await?;
        type Record = (String, i64, i64, Option<String>, Option<i64>);
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            what: "job file index",
            reason: e.to_string(),
        };
        let files: Vec<Record> =
            serde_json::from_str(&row.get::<String, _>("files")).map_err(corrupt)?;
        let touched: Vec<(String, String)> =
            serde_json::from_str(&row.get::<String, _>("touched")).map_err(corrupt)?;
        let files = files
            .into_iter()
            .map(|(path, stamp, stable, commit, dirty)| {
                let record = FileRecord {
                    path: path.clone(),
                    stamp,
                    stable: stable != 0,
                    git: dirty.map(|dirty| GitState { commit, dirty: dirty != 0 }),
                };
                (path, record)
            })
            .collect();
        Ok(JobIndex {
            files,
            job_count: usize::try_from(row.get::<i64, _>("job_count")).unwrap_or_default(),
            touched,
            cache_key: row.get("cache_key"),
            provenance_head: row.get("provenance_head"),
        })
    }

    /// The rows in `scope`, plus every row whose file has no record in the index (the kept
    /// jobs of a file with errors, rows written outside curator), by ID.
    pub async fn job_rows(&mut self, scope: &RowScope) -> Result<Vec<JobRow>, StoreError> {
        let rows = if scope.all {
            sqlx::query("SELECT * FROM jobs ORDER BY id").fetch_all(&mut *self.tx).await?
        } else {
            // Each branch reads an index, not the table: rows carry their YAML and spec, and
            // 10,000 of them are megabytes.
            sqlx::query(
                "SELECT * FROM jobs WHERE rowid IN (
                   SELECT j.rowid FROM json_each(?1) AS f JOIN jobs AS j ON j.source_file = f.value
                   UNION
                   SELECT j.rowid FROM json_each(?2) AS i JOIN jobs AS j ON j.id = i.value
                   UNION
                   SELECT rowid FROM jobs INDEXED BY jobs_by_source_file
                   WHERE source_file NOT IN (SELECT path FROM job_files))
                 ORDER BY id",
            )
            .bind(json_text(&scope.files))
            .bind(json_text(&scope.ids))
            .fetch_all(&mut *self.tx)
            .await?
        };
        rows.iter().map(job_from_row).collect()
    }

    /// Writes a pass's changes and commits them. A pass with nothing to change touches no job
    /// row; only the summary row is written.
    pub async fn apply(mut self, changes: &JobChanges<'_>) -> Result<(), StoreError> {
        let tx = &mut self.tx;
        let now = timestamp(Utc::now());
        for chunk in changes.upserts.chunks(BATCH) {
            upsert_jobs(tx, chunk, &now).await?;
        }
        for job in changes.refreshes {
            sqlx::query(
                "UPDATE jobs SET source = ?, source_line = ?, source_commit = ?, source_dirty = ?
                 WHERE id = ?",
            )
            .bind(&job.source)
            .bind(job.source_line)
            .bind(job.git.as_ref().and_then(|g| g.commit.as_deref()))
            .bind(job.git.as_ref().map(|g| g.dirty))
            .bind(&job.id)
            .execute(&mut **tx)
            .await?;
        }
        if !changes.deletes.is_empty() {
            let ids = json_text(&changes.deletes);
            sqlx::query(
                "UPDATE runs SET job_deleted_at = ?
                 WHERE job_deleted_at IS NULL AND job_id IN (SELECT value FROM json_each(?))",
            )
            .bind(&now)
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
            sqlx::query("DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?))")
                .bind(&ids)
                .execute(&mut **tx)
                .await?;
        }
        if !changes.git_by_file.is_empty() {
            let list: Vec<Value> = changes
                .git_by_file
                .iter()
                .map(|(file, git)| {
                    let commit = git.as_ref().and_then(|g| g.commit.clone());
                    serde_json::json!([file, commit, git.as_ref().map(|g| i64::from(g.dirty))])
                })
                .collect();
            // Only rows whose state differs are written: a row rewritten with its own values
            // would still count as touched.
            sqlx::query(
                "UPDATE jobs SET source_commit = v.git_commit, source_dirty = v.git_dirty
                 FROM (SELECT value ->> 0 AS file, value ->> 1 AS git_commit,
                              value ->> 2 AS git_dirty
                       FROM json_each(?)) AS v
                 WHERE jobs.source_file = v.file
                   AND (jobs.source_commit IS NOT v.git_commit
                        OR jobs.source_dirty IS NOT v.git_dirty)",
            )
            .bind(Value::Array(list).to_string())
            .execute(&mut **tx)
            .await?;
        }
        for chunk in changes.files.chunks(BATCH) {
            upsert_files(tx, chunk).await?;
        }
        if !changes.forget_files.is_empty() {
            sqlx::query("DELETE FROM job_files WHERE path IN (SELECT value FROM json_each(?))")
                .bind(json_text(&changes.forget_files))
                .execute(&mut **tx)
                .await?;
        }
        // Everything written so far is the reconciler's own: drift is what gets listed after
        // this commit.
        let touched: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs_touched)")
            .fetch_one(&mut **tx)
            .await?;
        if touched {
            sqlx::query("DELETE FROM jobs_touched").execute(&mut **tx).await?;
        }
        sqlx::query(
            "INSERT INTO reconcile_state (id, finished_at, summary) VALUES (1, ?, ?)
             ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at,
                                            summary = excluded.summary",
        )
        .bind(&now)
        .bind(changes.summary.to_string())
        .execute(&mut **tx)
        .await?;
        if let Some((key, head)) = &changes.index_key {
            sqlx::query(
                "UPDATE reconcile_state SET cache_key = ?, provenance_head = ? WHERE id = 1",
            )
            .bind(key)
            .bind(head)
            .execute(&mut **tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

async fn upsert_jobs(tx: &mut Tx, jobs: &[&JobWrite], now: &str) -> Result<(), StoreError> {
    let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO jobs (id, name, library_id, provider, enabled, spec, source, source_file,
                           source_line, content_hash, source_commit, source_dirty, created_at,
                           updated_at) ",
    );
    query.push_values(jobs, |mut row, job| {
        row.push_bind(job.id.clone())
            .push_bind(job.name.clone())
            .push_bind(job.library_id.clone())
            .push_bind(job.provider.clone())
            .push_bind(job.enabled)
            .push_bind(job.spec_json.to_string())
            .push_bind(job.source.clone())
            .push_bind(job.source_file.clone())
            .push_bind(job.source_line)
            .push_bind(job.content_hash.clone())
            .push_bind(job.git.as_ref().and_then(|g| g.commit.clone()))
            .push_bind(job.git.as_ref().map(|g| g.dirty))
            .push_bind(now.to_string())
            .push_bind(now.to_string());
    });
    // created_at is left alone: an update is the same job, with the same run history.
    query.push(
        " ON CONFLICT (id) DO UPDATE SET
            name = excluded.name, library_id = excluded.library_id,
            provider = excluded.provider, enabled = excluded.enabled, spec = excluded.spec,
            source = excluded.source, source_file = excluded.source_file,
            source_line = excluded.source_line, content_hash = excluded.content_hash,
            source_commit = excluded.source_commit, source_dirty = excluded.source_dirty,
            updated_at = excluded.updated_at",
    );
    query.build().execute(&mut **tx).await?;
    Ok(())
}

async fn upsert_files(tx: &mut Tx, files: &[FileRecord]) -> Result<(), StoreError> {
    let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO job_files (path, stamp, stable, git_commit, git_dirty) ",
    );
    query.push_values(files, |mut row, file| {
        row.push_bind(file.path.clone())
            .push_bind(file.stamp)
            .push_bind(file.stable)
            .push_bind(file.git.as_ref().and_then(|g| g.commit.clone()))
            .push_bind(file.git.as_ref().map(|g| g.dirty));
    });
    query.push(
        " ON CONFLICT (path) DO UPDATE SET
            stamp = excluded.stamp, stable = excluded.stable, git_commit = excluded.git_commit,
            git_dirty = excluded.git_dirty",
    );
    query.build().execute(&mut **tx).await?;
    Ok(())
}

fn json_text(items: &[String]) -> String {
    serde_json::to_string(items).expect("a list of strings serialises")
}

/// This process, as recorded in the runs it owns: `host:pid`.
fn process_owner() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

async fn upsert_entity(
    tx: &mut Tx,
    sql: &'static str,
    parent: Value,
    key: &str,
    metadata: &Map<String, Value>,
    locks: &[String],
) -> Result<i64, StoreError> {
    let query = sqlx::query_scalar(sql);
    let query = match parent {
        Value::Number(n) => query.bind(n.as_i64()),
        other => query.bind(other.as_str().map(String::from)),
    };
    let id: i64 = query
        .bind(key)
        .bind(Value::Object(metadata.clone()).to_string())
        .bind(serde_json::to_string(locks).expect("a list of strings serialises"))
        .fetch_one(&mut **tx)
        .await?;
    Ok(id)
}

/// Sets each provider's ID; a changed ID resets the sync time, since the old one described
/// another entry, and a time given in the file wins.
async fn upsert_ids(
    tx: &mut Tx,
    kind: EntityKind,
    row_id: i64,
    ids: &std::collections::BTreeMap<String, ExternalIdDef>,
    seed: bool,
) -> Result<(), StoreError> {
    let sql = match (kind, seed) {
        (EntityKind::Series, true) => {
            "INSERT INTO series_external_ids (series_id, provider, external_id, last_synced_at)
             VALUES (?, ?, ?, ?) ON CONFLICT (series_id, provider) DO NOTHING"
        }
        (EntityKind::Book, true) => {
            "INSERT INTO book_external_ids (book_id, provider, external_id, last_synced_at)
             VALUES (?, ?, ?, ?) ON CONFLICT (book_id, provider) DO NOTHING"
        }
        (EntityKind::Series, false) => {
            "INSERT INTO series_external_ids (series_id, provider, external_id, last_synced_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (series_id, provider) DO UPDATE SET
               last_synced_at = CASE
                 WHEN excluded.last_synced_at IS NOT NULL THEN excluded.last_synced_at
                 WHEN external_id = excluded.external_id THEN last_synced_at
                 ELSE NULL END,
               external_id = excluded.external_id"
        }
        (EntityKind::Book, false) => {
            "INSERT INTO book_external_ids (book_id, provider, external_id, last_synced_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (book_id, provider) DO UPDATE SET
               last_synced_at = CASE
                 WHEN excluded.last_synced_at IS NOT NULL THEN excluded.last_synced_at
                 WHEN external_id = excluded.external_id THEN last_synced_at
                 ELSE NULL END,
               external_id = excluded.external_id"
        }
    };
    for (provider, id) in ids {
        sqlx::query(sql)
            .bind(row_id)
            .bind(provider)
            .bind(&id.id)
            .bind(id.last_synced_at.map(timestamp))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn insert_entry_result(
    tx: &mut Tx,
    run_id: i64,
    seq: i64,
    result: &EntryResult,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO run_entries (run_id, seq, kind, entry, title, outcome, reason, changes)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(run_id)
    .bind(seq)
    .bind(result.kind.as_str())
    .bind(&result.entry)
    .bind(&result.title)
    .bind(&result.outcome)
    .bind(&result.reason)
    .bind(serde_json::to_string(&result.changes).expect("changes serialise"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn json_object(text: String) -> Result<Map<String, Value>, StoreError> {
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(StoreError::Corrupt { what: "metadata", reason: "not a JSON object".into() }),
        Err(e) => Err(StoreError::Corrupt { what: "metadata", reason: e.to_string() }),
    }
}

fn json_list(text: String) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt { what: "locks", reason: e.to_string() })
}

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<JobRow, StoreError> {
    let spec_text: String = row.get("spec");
    let spec_json: Value = serde_json::from_str(&spec_text)
        .map_err(|e| StoreError::Corrupt { what: "job spec", reason: e.to_string() })?;
    let spec = serde_json::from_value(spec_json.clone())
        .map_err(|e| StoreError::Corrupt { what: "job spec", reason: e.to_string() })?;
    let created: String = row.get("created_at");
    let updated: String = row.get("updated_at");
    Ok(JobRow {
        id: row.get("id"),
        name: row.get("name"),
        library_id: row.get("library_id"),
        provider: row.get("provider"),
        enabled: row.get("enabled"),
        spec,
        spec_json,
        source: row.get("source"),
        source_file: row.get("source_file"),
        source_line: row.get("source_line"),
        content_hash: row.get("content_hash"),
        git: row
            .get::<Option<bool>, _>("source_dirty")
            .map(|dirty| GitState { commit: row.get("source_commit"), dirty }),
        created_at: parse_timestamp(&created)?,
        updated_at: parse_timestamp(&updated)?,
    })
}

fn run_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RunRow, StoreError> {
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        let text: Option<String> = row.get(name);
        text.as_deref().map(parse_timestamp).transpose()
    };
    let totals: String = row.get("totals");
    Ok(RunRow {
        id: row.get("id"),
        job_id: row.get("job_id"),
        trigger: row.get("trigger"),
        status: row.get("status"),
        slot: time("slot")?,
        queued_at: time("queued_at")?.unwrap_or_default(),
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
        totals: serde_json::from_str(&totals)
            .map_err(|e| StoreError::Corrupt { what: "run totals", reason: e.to_string() })?,
        error: row.get("error"),
        job_deleted_at: time("job_deleted_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn only_runs_of_dead_processes_become_interrupted() {
        let (_dir, store) = store().await;
        let live = store.create_run("a", "manual", "running", None, None).await.unwrap();
        let dead = store.create_run("b", "manual", "running", None, None).await.unwrap();
        sqlx::query("UPDATE runs SET owner = ? WHERE id = ?")
            .bind(format!("{}:4294967295", host_name()))
            .bind(dead)
            .execute(&store.pool)
            .await
            .unwrap();

        assert_eq!(store.interrupt_orphaned_runs().await.unwrap(), 1);
        assert_eq!(store.run(live).await.unwrap().status, "running", "this process is alive");
        let dead = store.run(dead).await.unwrap();
        assert_eq!(dead.status, "interrupted");
        assert_eq!(dead.error.as_deref(), Some("the process running it stopped"));
    }

    fn job(id: &str, file: &str) -> JobWrite {
        JobWrite {
            id: id.into(),
            name: id.into(),
            library_id: "manga".into(),
            provider: "curated".into(),
            enabled: true,
            spec_json: serde_json::json!({
                "apiVersion": "curator/v1", "kind": "LibraryJob", "library": "manga",
                "schedule": {"cron": "0 4 * * *"}, "type": "metadata_refresh",
                "provider": "curated", "scope": "series_only", "fieldGroups": ["ratings"],
            }),
            source: String::new(),
            source_file: file.into(),
            source_line: 1,
            content_hash: "h".into(),
            git: None,
        }
    }

    #[tokio::test]
    async fn a_second_reconcile_waits_for_the_first_and_sees_what_it_wrote() {
        let (_dir, store) = store().await;
        let first = store.begin_reconcile(true).await.unwrap();
        let second = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_reconcile(true).await.unwrap();
                tx.index().await.unwrap().job_count
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second pass waits for the first one's lock");

        let a = job("a", "a.yaml");
        first.apply(&JobChanges { upserts: vec![&a], ..JobChanges::default() }).await.unwrap();
        assert_eq!(second.await.unwrap(), 1, "and plans against what the first wrote");
    }

    #[tokio::test]
    async fn rows_written_outside_a_pass_are_listed_until_the_next_pass_commits() {
        let (_dir, store) = store().await;
        let (a, b) = (job("a", "a.yaml"), job("b", "b.yaml"));
        let changes = JobChanges { upserts: vec![&a, &b], ..JobChanges::default() };
        store.begin_reconcile(true).await.unwrap().apply(&changes).await.unwrap();
        let touched = |store: Store| async move {
            store.begin_reconcile(false).await.unwrap().index().await.unwrap().touched
        };
        assert!(touched(store.clone()).await.is_empty(), "the reconciler's own writes");

        sqlx::query("UPDATE jobs SET enabled = 0, source_file = 'c.yaml' WHERE id = 'a'")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM jobs WHERE id = 'b'").execute(&store.pool).await.unwrap();
        let mut listed = touched(store.clone()).await;
        listed.sort();
        let expected = [("a", "a.yaml"), ("a", "c.yaml"), ("b", "b.yaml")]
            .map(|(id, file)| (id.to_string(), file.to_string()));
        assert_eq!(listed, expected);

        store.begin_reconcile(true).await.unwrap().apply(&JobChanges::default()).await.unwrap();
        assert!(touched(store).await.is_empty(), "a committed pass has looked at them");
    }

    #[tokio::test]
    async fn a_reopened_database_keeps_its_rows_and_schema() {
        let (dir, store) = store().await;
        store.create_run("a", "manual", "queued", None, None).await.unwrap();
        drop(store);
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let again = Store::open(&url).await.unwrap();
        assert_eq!(again.runs(None, 10).await.unwrap().len(), 1);
    }
}
