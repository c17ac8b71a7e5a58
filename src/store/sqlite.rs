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
    CATALOG_ROWS, CancelOutcome, Change, DEFAULT_RUN_LEASE, Entry, EntryResult, FIRINGS_KEPT_FOR,
    FileRecord, GitState, ImportCounts, ImportMode, JobChanges, JobIndex, JobRow, JobWrite,
    OVERLAP_REASON, Reaped, RowScope, RunRow, ScheduleRow, StoreError, StoredSummary, continues,
    entity_kind, is_orphan, parse_timestamp, process_owner, redact_url, timestamp,
};
use crate::catalog::file::{BookDef, CatalogFile, ExternalIdDef, LibraryDef, SeriesDef};
use crate::provider::EntityKind;

/// The database: catalog, jobs and runs.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// How long a run this process starts is held between renewals.
    lease: Duration,
}

type Tx = Transaction<'static, sqlx::Sqlite>;

impl SqliteStore {
    /// Opens (creating if needed) the database at a `sqlite:` URL and brings its schema up to
    /// date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let open_error = |error| StoreError::Open { url: redact_url(url), error };
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
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|error| StoreError::Migrate { url: redact_url(url), error })?;
        Ok(SqliteStore { pool, lease: DEFAULT_RUN_LEASE })
    }

    pub fn with_run_lease(self, lease: Duration) -> SqliteStore {
        SqliteStore { lease, ..self }
    }

    pub fn run_lease(&self) -> Duration {
        self.lease
    }

    /// When a lease taken or renewed now runs out.
    fn lease_end(&self) -> String {
        timestamp(Utc::now() + chrono::Duration::from_std(self.lease).unwrap_or_default())
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
        // A seed counts what it added: the rows after it, less the rows before.
        let before = if seed { Some(catalog_rows(&mut tx).await?) } else { None };
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
        if let Some(before) = before {
            counts = catalog_rows(&mut tx).await?.added_since(before);
        }
        tx.commit().await?;
        Ok(counts)
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
        hold(&mut tx, run_id).await?;
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
        hold(&mut tx, run_id).await?;
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
        hold(&mut tx, run_id).await?;
        for (seq, result) in results {
            insert_entry_result(&mut tx, run_id, *seq, result).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn done_entries(
        &self,
        run_id: i64,
    ) -> Result<HashSet<(EntityKind, String)>, StoreError> {
        let rows = sqlx::query(
            "WITH RECURSIVE chain (id) AS (
               SELECT resumes FROM runs WHERE id = ? AND resumes IS NOT NULL
               UNION
               SELECT r.resumes FROM runs r JOIN chain ON r.id = chain.id
               WHERE r.resumes IS NOT NULL)
             SELECT kind, entry FROM run_entries WHERE run_id IN (SELECT id FROM chain)",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| (entity_kind(row.get("kind")), row.get("entry"))).collect())
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

    /// Starts a reconcile pass: a writing one takes SQLite's write lock (`BEGIN IMMEDIATE`)
    /// before its first read and holds it to its commit.
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

    pub async fn claim_slot(
        &self,
        job_id: &str,
        slot: DateTime<Utc>,
        trigger: &str,
        skip: Option<&str>,
    ) -> Result<Option<RunRow>, StoreError> {
        let mut tx = self.write().await?;
        let claimed = sqlx::query(
            "INSERT INTO firings (job_id, slot, trigger, fired_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (job_id, slot) DO NOTHING",
        )
        .bind(job_id)
        .bind(timestamp(slot))
        .bind(if skip.is_some() { "missed" } else { trigger })
        .bind(timestamp(Utc::now()))
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(None);
        }
        let run = match skip {
            Some(reason) => {
                insert_run(&mut tx, job_id, trigger, "skipped", Some(slot), Some(reason), None)
                    .await?
            }
            None => self.insert_started(&mut tx, job_id, trigger, Some(slot)).await?,
        };
        tx.commit().await?;
        Ok(Some(run))
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

    pub async fn create_run(
        &self,
        job_id: &str,
        trigger: &str,
        status: &str,
        slot: Option<DateTime<Utc>>,
        error: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let lease = (status == "running").then(|| self.lease_end());
        let run = insert_run(&mut tx, job_id, trigger, status, slot, error, lease).await?;
        tx.commit().await?;
        Ok(run.id)
    }

    pub async fn start_run(
        &self,
        job_id: &str,
        trigger: &str,
        slot: Option<DateTime<Utc>>,
    ) -> Result<RunRow, StoreError> {
        let mut tx = self.write().await?;
        let run = self.insert_started(&mut tx, job_id, trigger, slot).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// A new run, `running` and held by this process, or `skipped` when another run of the
    /// job is going. The write lock the transaction holds keeps the check and the insert
    /// together.
    async fn insert_started(
        &self,
        tx: &mut Tx,
        job_id: &str,
        trigger: &str,
        slot: Option<DateTime<Utc>>,
    ) -> Result<RunRow, StoreError> {
        if job_is_running(tx, job_id).await? {
            return insert_run(tx, job_id, trigger, "skipped", slot, Some(OVERLAP_REASON), None)
                .await;
        }
        insert_run(tx, job_id, trigger, "running", slot, None, Some(self.lease_end())).await
    }

    pub async fn claim_queued_run(&self) -> Result<Option<RunRow>, StoreError> {
        let mut tx = self.write().await?;
        let next: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, job_id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, job_id)) = next else { return Ok(None) };
        let now = timestamp(Utc::now());
        let row = if job_is_running(&mut tx, &job_id).await? {
            sqlx::query(
                "UPDATE runs SET status = 'skipped', finished_at = ?, error = ? WHERE id = ?
                 RETURNING *",
            )
            .bind(&now)
            .bind(OVERLAP_REASON)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "UPDATE runs SET status = 'running', started_at = ?, owner = ?, lease_until = ?
                 WHERE id = ? RETURNING *",
            )
            .bind(&now)
            .bind(process_owner())
            .bind(self.lease_end())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
        };
        tx.commit().await?;
        run_from_row(&row).map(Some)
    }

    pub async fn renew_lease(&self, run_id: i64) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE runs SET lease_until = ? WHERE id = ? AND status = 'running' AND owner = ?",
        )
        .bind(self.lease_end())
        .bind(run_id)
        .bind(process_owner())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn reap_expired_runs(&self) -> Result<Vec<Reaped>, StoreError> {
        let mut tx = self.write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE status = 'running' AND lease_until < ? ORDER BY id",
        )
        .bind(timestamp(Utc::now()))
        .fetch_all(&mut *tx)
        .await?;
        let reason = "the process running it stopped renewing its lease";
        let reaped = interrupt(&mut tx, &ids, reason).await?;
        tx.commit().await?;
        Ok(reaped)
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
        sqlx::query(
            "DELETE FROM firings
             WHERE job_id = ? AND slot < ? AND slot NOT IN
                   (SELECT slot FROM firings WHERE job_id = ? ORDER BY slot DESC LIMIT ?)",
        )
        .bind(job_id)
        .bind(timestamp(Utc::now() - FIRINGS_KEPT_FOR))
        .bind(job_id)
        .bind(i64::from(keep))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    pub async fn interrupt_own_runs(&self) -> Result<Vec<Reaped>, StoreError> {
        let mut tx = self.write().await?;
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM runs WHERE status = 'running' AND owner = ?")
                .bind(process_owner())
                .fetch_all(&mut *tx)
                .await?;
        let reaped = interrupt(&mut tx, &ids, "curator stopped before the run ended").await?;
        tx.commit().await?;
        Ok(reaped)
    }

    /// A run owned by a live process on this host (a `curator run --wait` beside the server)
    /// is left alone; one owned by another host is too, since its liveness cannot be seen from
    /// here (its lease tells).
    pub async fn interrupt_orphaned_runs(&self) -> Result<Vec<Reaped>, StoreError> {
        let mut tx = self.write().await?;
        let rows = sqlx::query("SELECT id, owner FROM runs WHERE status = 'running'")
            .fetch_all(&mut *tx)
            .await?;
        let orphans: Vec<i64> = rows
            .iter()
            .filter(|row| is_orphan(row.get("owner")))
            .map(|row| row.get("id"))
            .collect();
        let reaped = interrupt(&mut tx, &orphans, "the process running it stopped").await?;
        tx.commit().await?;
        Ok(reaped)
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
                let changes: String = row.get("changes");
                Ok(EntryResult {
                    kind: entity_kind(row.get("kind")),
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

/// One reconcile pass's transaction on SQLite; dropped without `apply`, it rolls back.
pub struct ReconcileTx {
    tx: Tx,
}

/// Rows per multi-row statement: at 14 columns, far below SQLite's 32,766 variables.
const BATCH: usize = 500;

impl ReconcileTx {
    pub async fn library_ids(&mut self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM libraries").fetch_all(&mut *self.tx).await?;
        Ok(rows.into_iter().map(|r| r.get("id")).collect())
    }

    pub async fn manifests(&mut self) -> Result<crate::validate::Manifests, StoreError> {
        manifests(&mut *self.tx).await
    }

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

    pub async fn apply(mut self, changes: &JobChanges<'_>) -> Result<(), StoreError> {
        let tx = &mut self.tx;
        let now = timestamp(Utc::now());
        for chunk in changes.upserts.chunks(BATCH) {
            upsert_jobs(tx, chunk, &now).await?;
        }
        if !changes.upserts.is_empty() {
            // A job whose file comes back (a revert, a move undone) gets its history back.
            let ids: Vec<String> = changes.upserts.iter().map(|j| j.id.clone()).collect();
            sqlx::query(
                "UPDATE runs SET job_deleted_at = NULL
                 WHERE job_deleted_at IS NOT NULL AND job_id IN (SELECT value FROM json_each(?))",
            )
            .bind(json_text(&ids))
            .execute(&mut **tx)
            .await?;
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

/// Fails with `RunLost` unless the run is still going and held by this process: a process
/// whose lease ran out writes nothing more, since another may be doing the same entries.
async fn hold(tx: &mut Tx, run_id: i64) -> Result<(), StoreError> {
    let held: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE id = ? AND status = 'running' AND owner = ?)",
    )
    .bind(run_id)
    .bind(process_owner())
    .fetch_one(&mut **tx)
    .await?;
    if held { Ok(()) } else { Err(StoreError::RunLost { id: run_id }) }
}

/// Whether a run of the job is going, held by a lease that has not run out.
async fn job_is_running(tx: &mut Tx, job_id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE job_id = ? AND status = 'running'
                        AND (lease_until IS NULL OR lease_until >= ?))",
    )
    .bind(job_id)
    .bind(timestamp(Utc::now()))
    .fetch_one(&mut **tx)
    .await?)
}

/// Inserts a run; a running one is held by this process until `lease`.
async fn insert_run(
    tx: &mut Tx,
    job_id: &str,
    trigger: &str,
    status: &str,
    slot: Option<DateTime<Utc>>,
    error: Option<&str>,
    lease: Option<String>,
) -> Result<RunRow, StoreError> {
    let now = timestamp(Utc::now());
    let started = (status == "running").then(|| now.clone());
    let finished = (status == "skipped").then(|| now.clone());
    let owner = (status == "running").then(process_owner);
    let row = sqlx::query(
        "INSERT INTO runs (job_id, trigger, status, slot, queued_at, started_at, finished_at,
                           error, owner, lease_until)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
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
    .bind(lease)
    .fetch_one(&mut **tx)
    .await?;
    run_from_row(&row)
}

/// Marks running runs `interrupted`, with totals counted from the entries they recorded, and
/// queues a continuation of each scheduled one that has attempts left; the caller's
/// transaction holds the write lock.
async fn interrupt(tx: &mut Tx, ids: &[i64], reason: &str) -> Result<Vec<Reaped>, StoreError> {
    let mut reaped = Vec::new();
    for id in ids {
        let row = sqlx::query(
            "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ?,
                 totals = json_patch(totals, (
                     SELECT json_object(
                         'updated', count(*) FILTER (WHERE outcome = 'updated'),
                         'unchanged', count(*) FILTER (WHERE outcome = 'unchanged'),
                         'skipped', count(*) FILTER (WHERE outcome = 'skipped'),
                         'failed', count(*) FILTER (WHERE outcome = 'failed'),
                         'fieldsWritten', coalesce(sum(json_array_length(changes))
                             FILTER (WHERE outcome = 'updated'), 0))
                     FROM run_entries WHERE run_id = runs.id))
             WHERE id = ? AND status = 'running'
             RETURNING job_id, trigger, slot, owner, attempt,
                       cancel_requested_at IS NOT NULL AS cancelled",
        )
        .bind(timestamp(Utc::now()))
        .bind(reason)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { continue };
        let (job_id, trigger): (String, String) = (row.get("job_id"), row.get("trigger"));
        let attempt: i64 = row.get("attempt");
        // A run someone asked to cancel is not handed on.
        let cancelled: bool = row.get("cancelled");
        let continuation = if continues(&trigger, attempt) && !cancelled {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO runs (job_id, trigger, status, slot, queued_at, resumes, attempt)
                 VALUES (?, ?, 'queued', ?, ?, ?, ?) RETURNING id",
            )
            .bind(&job_id)
            .bind(&trigger)
            .bind(row.get::<Option<String>, _>("slot"))
            .bind(timestamp(Utc::now()))
            .bind(id)
            .bind(attempt + 1)
            .fetch_one(&mut **tx)
            .await?;
            Some(id)
        } else {
            None
        };
        reaped.push(Reaped { run_id: *id, job_id, owner: row.get("owner"), continuation });
    }
    Ok(reaped)
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

/// How many libraries, series and books the catalog holds, as `tx` sees it.
async fn catalog_rows(tx: &mut Tx) -> Result<ImportCounts, StoreError> {
    let rows: (i64, i64, i64) = sqlx::query_as(CATALOG_ROWS).fetch_one(&mut **tx).await?;
    Ok(ImportCounts::from(rows))
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
        resumes: row.get("resumes"),
        attempt: row.get("attempt"),
    })
}
