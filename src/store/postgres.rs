//! The PostgreSQL backend, for several `curator serve` replicas on one database. What makes
//! them safe together lives in the SQL: a slot is claimed by a unique key, a run is taken with
//! `FOR UPDATE SKIP LOCKED` and held by a lease on the database's clock, entries are written
//! only while the lease holds, and reconcile passes queue behind an advisory lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row, Transaction};

use super::{
    CATALOG_ROWS, CancelOutcome, DEFAULT_RUN_LEASE, Entry, EntryResult, FIRINGS_KEPT_FOR,
    FileRecord, GitState, ImportCounts, ImportMode, JobChanges, JobIndex, JobRow, JobWrite,
    OVERLAP_REASON, Reaped, RowScope, RunRow, ScheduleRow, StoreError, StoredSummary, continues,
    entity_kind, is_orphan, process_owner, redact_url,
};
use crate::catalog::file::{BookDef, CatalogFile, ExternalIdDef, LibraryDef, SeriesDef};
use crate::provider::EntityKind;

/// The advisory lock a writing reconcile pass holds until its commit.
const RECONCILE_LOCK: i64 = 0x6375_7261_746f_7201;
/// The class of the per-job advisory locks that keep a job's overlap check and its new run
/// together (the key within the class is a hash of the job ID).
const JOB_LOCK_CLASS: i32 = 0x6375_7261;

/// The database: catalog, jobs and runs, shared by every replica.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// How long a run this process starts is held between renewals.
    lease: Duration,
}

type Tx = Transaction<'static, sqlx::Postgres>;

impl PgStore {
    /// Connects to the database at a `postgres:` URL and brings its schema up to date. The
    /// migrator takes its own lock, so replicas that start together upgrade it once.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let open_error = |error| StoreError::Open { url: redact_url(url), error };
        // Notices (`relation already exists, skipping` from the migrator) are not worth a log
        // line at every start.
        let options = PgConnectOptions::from_str(url)
            .map_err(open_error)?
            .options([("client_min_messages", "warning")]);
        // One direct attempt first: the pool retries until its timeout and then reports only
        // that it timed out, not that the server refused or the password was wrong.
        let probe = PgConnection::connect_with(&options).await.map_err(open_error)?;
        probe.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| StoreError::Migrate { url: redact_url(url), error })?;
        Ok(PgStore { pool, lease: DEFAULT_RUN_LEASE })
    }

    pub fn with_run_lease(self, lease: Duration) -> PgStore {
        PgStore { lease, ..self }
    }

    pub fn run_lease(&self) -> Duration {
        self.lease
    }

    fn lease_seconds(&self) -> f64 {
        self.lease.as_secs_f64()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ----- catalog -----

    pub async fn import_catalog(
        &self,
        catalog: &CatalogFile,
        mode: ImportMode,
    ) -> Result<ImportCounts, StoreError> {
        let seed = mode == ImportMode::Seed;
        let mut tx = self.pool.begin().await?;
        let mut counts = ImportCounts::default();
        // A seed counts what it added: the rows after it, less the rows before.
        let before = if seed { Some(catalog_rows(&mut tx).await?) } else { None };
        // On conflict a seed "updates" the key to itself, so RETURNING still gives the row ID.
        let (library_sql, series_sql, book_sql) = if seed {
            (
                "INSERT INTO libraries (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                "INSERT INTO series (library_id, key, metadata, locks) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (library_id, key) DO UPDATE SET key = EXCLUDED.key RETURNING id",
                "INSERT INTO books (series_id, key, metadata, locks) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (series_id, key) DO UPDATE SET key = EXCLUDED.key RETURNING id",
            )
        } else {
            (
                "INSERT INTO libraries (id, name) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                "INSERT INTO series (library_id, key, metadata, locks) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (library_id, key) DO UPDATE
                 SET metadata = EXCLUDED.metadata, locks = EXCLUDED.locks RETURNING id",
                "INSERT INTO books (series_id, key, metadata, locks) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (series_id, key) DO UPDATE
                 SET metadata = EXCLUDED.metadata, locks = EXCLUDED.locks RETURNING id",
            )
        };
        for library in &catalog.libraries {
            sqlx::query(library_sql)
                .bind(&library.id)
                .bind(&library.name)
                .execute(&mut *tx)
                .await?;
            counts.libraries += 1;
            for series in &library.series {
                let series_id: i64 = sqlx::query_scalar(series_sql)
                    .bind(&library.id)
                    .bind(&series.id)
                    .bind(Value::Object(series.metadata.clone()))
                    .bind(locks_json(&series.locks))
                    .fetch_one(&mut *tx)
                    .await?;
                upsert_ids(&mut tx, EntityKind::Series, series_id, &series.external_ids, seed)
                    .await?;
                counts.series += 1;
                for book in &series.books {
                    let book_id: i64 = sqlx::query_scalar(book_sql)
                        .bind(series_id)
                        .bind(&book.id)
                        .bind(Value::Object(book.metadata.clone()))
                        .bind(locks_json(&book.locks))
                        .fetch_one(&mut *tx)
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

    pub async fn export_catalog(&self, library: Option<&str>) -> Result<CatalogFile, StoreError> {
        let libraries = sqlx::query(
            "SELECT id, name FROM libraries WHERE $1::text IS NULL OR id = $1 ORDER BY id",
        )
        .bind(library)
        .fetch_all(&self.pool)
        .await?;
        let mut out = CatalogFile::default();
        for row in libraries {
            let id: String = row.get("id");
            let mut def = LibraryDef { id: id.clone(), name: row.get("name"), series: vec![] };
            let series = sqlx::query(
                "SELECT id, key, metadata, locks FROM series WHERE library_id = $1 ORDER BY key",
            )
            .bind(&id)
            .fetch_all(&self.pool)
            .await?;
            for s in series {
                let series_id: i64 = s.get("id");
                let mut books = Vec::new();
                let rows = sqlx::query(
                    "SELECT id, key, metadata, locks FROM books WHERE series_id = $1 ORDER BY key",
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
    ) -> Result<BTreeMap<String, ExternalIdDef>, StoreError> {
        let sql = match kind {
            EntityKind::Series => {
                "SELECT provider, external_id, last_synced_at FROM series_external_ids
                 WHERE series_id = $1"
            }
            EntityKind::Book => {
                "SELECT provider, external_id, last_synced_at FROM book_external_ids
                 WHERE book_id = $1"
            }
        };
        let rows = sqlx::query(sql).bind(row_id).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let def = ExternalIdDef {
                    id: row.get("external_id"),
                    last_synced_at: row.get("last_synced_at"),
                };
                (row.get("provider"), def)
            })
            .collect())
    }

    pub async fn library_ids(&self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM libraries").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| r.get("id")).collect())
    }

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
                 LEFT JOIN series_external_ids x ON x.series_id = s.id AND x.provider = $1
                 WHERE s.library_id = $2
                 ORDER BY s.key"
            }
            EntityKind::Book => {
                "SELECT b.id, s.key || '/' || b.key AS key, b.metadata, b.locks,
                        x.external_id, x.last_synced_at
                 FROM books b
                 JOIN series s ON s.id = b.series_id
                 LEFT JOIN book_external_ids x ON x.book_id = b.id AND x.provider = $1
                 WHERE s.library_id = $2
                 ORDER BY s.key, b.key"
            }
        };
        let rows = sqlx::query(sql).bind(provider).bind(library).fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                Ok(Entry {
                    kind,
                    row_id: row.get("id"),
                    key: row.get("key"),
                    metadata: json_object(row.get("metadata"))?,
                    locks: json_list(row.get("locks"))?,
                    external_id: row.get("external_id"),
                    last_synced_at: row.get("last_synced_at"),
                })
            })
            .collect()
    }

    /// The changed fields are merged into the row as it is now (`||`), so a concurrent write
    /// to another field is kept.
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
        let mut tx = self.pool.begin().await?;
        hold(&mut tx, run_id).await?;
        if let Some(external_id) = attach {
            let sql = match entry.kind {
                EntityKind::Series => {
                    "INSERT INTO series_external_ids (series_id, provider, external_id)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (series_id, provider)
                     DO UPDATE SET external_id = EXCLUDED.external_id"
                }
                EntityKind::Book => {
                    "INSERT INTO book_external_ids (book_id, provider, external_id)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (book_id, provider)
                     DO UPDATE SET external_id = EXCLUDED.external_id"
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
            let update = match entry.kind {
                EntityKind::Series => "UPDATE series SET metadata = metadata || $1 WHERE id = $2",
                EntityKind::Book => "UPDATE books SET metadata = metadata || $1 WHERE id = $2",
            };
            let changed: Map<String, Value> =
                result.changes.iter().map(|c| (c.field.clone(), c.after.clone())).collect();
            let done = sqlx::query(update)
                .bind(Value::Object(changed))
                .bind(entry.row_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                let what = entry.kind.as_str();
                return Err(StoreError::NotFound { what, id: entry.key.clone() });
            }
        }
        if let Some(at) = synced {
            let sql = match entry.kind {
                EntityKind::Series => {
                    "UPDATE series_external_ids SET last_synced_at = $1
                     WHERE series_id = $2 AND provider = $3"
                }
                EntityKind::Book => {
                    "UPDATE book_external_ids SET last_synced_at = $1
                     WHERE book_id = $2 AND provider = $3"
                }
            };
            sqlx::query(sql).bind(at).bind(entry.row_id).bind(provider).execute(&mut *tx).await?;
        }
        insert_entry_results(&mut tx, run_id, std::slice::from_ref(&(seq, result))).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_entry(
        &self,
        run_id: i64,
        seq: i64,
        result: &EntryResult,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        hold(&mut tx, run_id).await?;
        insert_entry_results(&mut tx, run_id, &[(seq, result)]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_entries(
        &self,
        run_id: i64,
        results: &[(i64, EntryResult)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        hold(&mut tx, run_id).await?;
        let refs: Vec<(i64, &EntryResult)> = results.iter().map(|(seq, r)| (*seq, r)).collect();
        insert_entry_results(&mut tx, run_id, &refs).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn done_entries(
        &self,
        run_id: i64,
    ) -> Result<HashSet<(EntityKind, String)>, StoreError> {
        let rows = sqlx::query(
            "WITH RECURSIVE chain (id) AS (
               SELECT resumes FROM runs WHERE id = $1 AND resumes IS NOT NULL
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

    pub async fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, enabled, content_hash, created_at, spec -> 'schedule' AS schedule
             FROM jobs ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ScheduleRow {
                    created_at: row.get("created_at"),
                    id: row.get("id"),
                    enabled: row.get("enabled"),
                    content_hash: row.get("content_hash"),
                    schedule: serde_json::from_value(row.get("schedule")).map_err(|e| {
                        StoreError::Corrupt { what: "job schedule", reason: e.to_string() }
                    })?,
                })
            })
            .collect()
    }

    pub async fn job(&self, id: &str) -> Result<JobRow, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "job", id: id.to_string() })?;
        job_from_row(&row)
    }

    /// A writing pass takes an advisory lock held by its transaction, so passes from several
    /// replicas run one after another. A dry run reads one repeatable snapshot.
    pub async fn begin_reconcile(&self, write: bool) -> Result<ReconcileTx, StoreError> {
        let tx = if write {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(RECONCILE_LOCK)
                .execute(&mut *tx)
                .await?;
            tx
        } else {
            self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?
        };
        Ok(ReconcileTx { tx })
    }

    pub async fn last_reconcile(&self) -> Result<Option<StoredSummary>, StoreError> {
        let row = sqlx::query("SELECT finished_at, summary FROM reconcile_state WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| StoredSummary {
            finished_at: row.get("finished_at"),
            summary: row.get("summary"),
        }))
    }

    // ----- firings -----

    /// Replicas that fire the same slot race on the firings key: the second insert waits for
    /// the first one's transaction and then finds the row.
    pub async fn claim_slot(
        &self,
        job_id: &str,
        slot: DateTime<Utc>,
        trigger: &str,
        skip: Option<&str>,
    ) -> Result<Option<RunRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO firings (job_id, slot, trigger, fired_at)
             VALUES ($1, $2, $3, clock_timestamp())
             ON CONFLICT (job_id, slot) DO NOTHING",
        )
        .bind(job_id)
        .bind(slot)
        .bind(if skip.is_some() { "missed" } else { trigger })
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

    pub async fn last_slots(&self) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let rows = sqlx::query("SELECT job_id, MAX(slot) AS slot FROM firings GROUP BY job_id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|row| (row.get("job_id"), row.get("slot"))).collect())
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
        let mut tx = self.pool.begin().await?;
        let lease = (status == "running").then(|| self.lease_seconds());
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
        let mut tx = self.pool.begin().await?;
        let run = self.insert_started(&mut tx, job_id, trigger, slot).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// A new run, `running` and held by this process, or `skipped` when another run of the
    /// job is going. The job's advisory lock keeps the check and the insert together across
    /// replicas.
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
        insert_run(tx, job_id, trigger, "running", slot, None, Some(self.lease_seconds())).await
    }

    /// A queued run another replica is taking is skipped over, not waited for.
    pub async fn claim_queued_run(&self) -> Result<Option<RunRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let next: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, job_id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, job_id)) = next else { return Ok(None) };
        let row = if job_is_running(&mut tx, &job_id).await? {
            sqlx::query(
                "UPDATE runs SET status = 'skipped', finished_at = clock_timestamp(), error = $1
                 WHERE id = $2 RETURNING *",
            )
            .bind(OVERLAP_REASON)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "UPDATE runs SET status = 'running', started_at = clock_timestamp(), owner = $1,
                                 lease_until = clock_timestamp() + make_interval(secs => $2)
                 WHERE id = $3 RETURNING *",
            )
            .bind(process_owner())
            .bind(self.lease_seconds())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
        };
        tx.commit().await?;
        run_from_row(&row).map(Some)
    }

    pub async fn renew_lease(&self, run_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET lease_until = clock_timestamp() + make_interval(secs => $1)
             WHERE id = $2 AND status = 'running' AND owner = $3",
        )
        .bind(self.lease_seconds())
        .bind(run_id)
        .bind(process_owner())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Runs another replica is sweeping at the same moment are skipped over.
    pub async fn reap_expired_runs(&self) -> Result<Vec<Reaped>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE status = 'running' AND lease_until < clock_timestamp()
             ORDER BY id FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await?;
        let reason = "the process running it stopped renewing its lease";
        let reaped = interrupt(&mut tx, &ids, reason).await?;
        tx.commit().await?;
        Ok(reaped)
    }

    pub async fn finish_run(
        &self,
        id: i64,
        status: &str,
        totals: &Value,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            // A run already ended (marked interrupted at shutdown, say) keeps that ending.
            "UPDATE runs SET status = $1, totals = $2, error = $3, finished_at = clock_timestamp()
             WHERE id = $4 AND status IN ('queued', 'running')",
        )
        .bind(status)
        .bind(totals)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn prune_runs(
        &self,
        job_id: &str,
        keep: u32,
        max_age: chrono::Duration,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "DELETE FROM runs
             WHERE job_id = $1 AND status NOT IN ('queued', 'running')
               AND (queued_at < $2 OR id NOT IN
                    (SELECT id FROM runs WHERE job_id = $1 ORDER BY id DESC LIMIT $3))",
        )
        .bind(job_id)
        .bind(Utc::now() - max_age)
        .bind(i64::from(keep))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM firings
             WHERE job_id = $1 AND slot < $2 AND slot NOT IN
                   (SELECT slot FROM firings WHERE job_id = $1 ORDER BY slot DESC LIMIT $3)",
        )
        .bind(job_id)
        .bind(Utc::now() - FIRINGS_KEPT_FOR)
        .bind(i64::from(keep))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    pub async fn interrupt_own_runs(&self) -> Result<Vec<Reaped>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE status = 'running' AND owner = $1 FOR UPDATE",
        )
        .bind(process_owner())
        .fetch_all(&mut *tx)
        .await?;
        let reaped = interrupt(&mut tx, &ids, "curator stopped before the run ended").await?;
        tx.commit().await?;
        Ok(reaped)
    }

    /// Only holders on this host can be seen to be gone; the others' leases tell.
    pub async fn interrupt_orphaned_runs(&self) -> Result<Vec<Reaped>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, owner FROM runs WHERE status = 'running' FOR UPDATE SKIP LOCKED",
        )
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

    pub async fn save_manifest(
        &self,
        name: &str,
        capabilities: crate::provider::Capabilities,
        manifest: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provider_manifests (name, series, book, manifest, seen_at)
             VALUES ($1, $2, $3, $4, clock_timestamp())
             ON CONFLICT (name) DO UPDATE SET series = EXCLUDED.series, book = EXCLUDED.book,
                 manifest = EXCLUDED.manifest, seen_at = EXCLUDED.seen_at",
        )
        .bind(name)
        .bind(capabilities.series)
        .bind(capabilities.book)
        .bind(manifest)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn manifests(&self) -> Result<crate::validate::Manifests, StoreError> {
        manifests(&self.pool).await
    }

    /// The run's row is locked while its status is read, so a claim or a sweep in another
    /// replica cannot change it in between.
    pub async fn request_cancel(&self, id: i64) -> Result<CancelOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "run", id: id.to_string() })?;
        let outcome = match status.as_str() {
            "queued" => {
                sqlx::query(
                    "UPDATE runs SET status = 'cancelled', finished_at = clock_timestamp(),
                                     cancel_requested_at = clock_timestamp(),
                                     error = 'cancelled before it started'
                     WHERE id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                CancelOutcome::Cancelled
            }
            "running" => {
                sqlx::query(
                    "UPDATE runs
                     SET cancel_requested_at = COALESCE(cancel_requested_at, clock_timestamp())
                     WHERE id = $1",
                )
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

    pub async fn cancel_requested(&self, id: i64) -> Result<bool, StoreError> {
        let at: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT cancel_requested_at FROM runs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(at.flatten().is_some())
    }

    pub async fn run(&self, id: i64) -> Result<RunRow, StoreError> {
        let row = sqlx::query("SELECT * FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "run", id: id.to_string() })?;
        run_from_row(&row)
    }

    pub async fn runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE $1::text IS NULL OR job_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(job)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    pub async fn last_runs(&self) -> Result<HashMap<String, RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (job_id) * FROM runs WHERE status <> 'skipped'
             ORDER BY job_id, id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| run_from_row(r).map(|run| (run.job_id.clone(), run))).collect()
    }

    pub async fn run_entries(&self, run_id: i64) -> Result<Vec<EntryResult>, StoreError> {
        let rows = sqlx::query("SELECT * FROM run_entries WHERE run_id = $1 ORDER BY seq")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(EntryResult {
                    kind: entity_kind(row.get("kind")),
                    entry: row.get("entry"),
                    title: row.get("title"),
                    outcome: row.get("outcome"),
                    reason: row.get("reason"),
                    changes: serde_json::from_value(row.get("changes")).map_err(|e| {
                        StoreError::Corrupt { what: "run entry changes", reason: e.to_string() }
                    })?,
                })
            })
            .collect()
    }
}

/// One reconcile pass's transaction on PostgreSQL; dropped without `apply`, it rolls back and
/// releases the advisory lock.
pub struct ReconcileTx {
    tx: Tx,
}

/// Rows per multi-row statement: at 14 columns, far below PostgreSQL's 65,535 parameters.
const BATCH: usize = 1000;

impl ReconcileTx {
    pub async fn library_ids(&mut self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM libraries").fetch_all(&mut *self.tx).await?;
        Ok(rows.into_iter().map(|r| r.get("id")).collect())
    }

    pub async fn manifests(&mut self) -> Result<crate::validate::Manifests, StoreError> {
        manifests(&mut *self.tx).await
    }

    pub async fn index(&mut self) -> Result<JobIndex, StoreError> {
        let files = sqlx::query("SELECT path, stamp, stable, git_commit, git_dirty FROM job_files")
            .fetch_all(&mut *self.tx)
            .await?
            .iter()
            .map(|row| {
                let path: String = row.get("path");
                let record = FileRecord {
                    path: path.clone(),
                    stamp: row.get("stamp"),
                    stable: row.get("stable"),
                    git: row
                        .get::<Option<bool>, _>("git_dirty")
                        .map(|dirty| GitState { commit: row.get("git_commit"), dirty }),
                };
                (path, record)
            })
            .collect();
        let touched: Vec<(String, String)> =
            sqlx::query_as("SELECT id, source_file FROM jobs_touched")
                .fetch_all(&mut *self.tx)
                .await?;
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM jobs) AS job_count,
                    (SELECT cache_key FROM reconcile_state WHERE id = 1) AS cache_key,
                    (SELECT provenance_head FROM reconcile_state WHERE id = 1) AS provenance_head",
        )
        .fetch_one(&mut *self.tx)
        .await?;
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
            sqlx::query(
                "SELECT * FROM jobs
                 WHERE source_file = ANY($1) OR id = ANY($2)
                    OR NOT EXISTS (SELECT 1 FROM job_files f WHERE f.path = jobs.source_file)
                 ORDER BY id",
            )
            .bind(&scope.files)
            .bind(&scope.ids)
            .fetch_all(&mut *self.tx)
            .await?
        };
        rows.iter().map(job_from_row).collect()
    }

    pub async fn apply(mut self, changes: &JobChanges<'_>) -> Result<(), StoreError> {
        let tx = &mut self.tx;
        let now = Utc::now();
        for chunk in changes.upserts.chunks(BATCH) {
            upsert_jobs(tx, chunk, now).await?;
        }
        if !changes.upserts.is_empty() {
            // A job whose file comes back (a revert, a move undone) gets its history back.
            let ids: Vec<&str> = changes.upserts.iter().map(|j| j.id.as_str()).collect();
            sqlx::query(
                "UPDATE runs SET job_deleted_at = NULL
                 WHERE job_deleted_at IS NOT NULL AND job_id = ANY($1)",
            )
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
        }
        for job in changes.refreshes {
            sqlx::query(
                "UPDATE jobs SET source = $1, source_line = $2, source_commit = $3,
                                 source_dirty = $4
                 WHERE id = $5",
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
            sqlx::query(
                "UPDATE runs SET job_deleted_at = $1
                 WHERE job_deleted_at IS NULL AND job_id = ANY($2)",
            )
            .bind(now)
            .bind(&changes.deletes)
            .execute(&mut **tx)
            .await?;
            sqlx::query("DELETE FROM jobs WHERE id = ANY($1)")
                .bind(&changes.deletes)
                .execute(&mut **tx)
                .await?;
        }
        if !changes.git_by_file.is_empty() {
            let files: Vec<&str> = changes.git_by_file.iter().map(|(f, _)| f.as_str()).collect();
            let commits: Vec<Option<String>> = changes
                .git_by_file
                .iter()
                .map(|(_, g)| g.as_ref().and_then(|g| g.commit.clone()))
                .collect();
            let dirty: Vec<Option<bool>> =
                changes.git_by_file.iter().map(|(_, g)| g.as_ref().map(|g| g.dirty)).collect();
            // Only rows whose state differs are written: a row rewritten with its own values
            // would still count as touched.
            sqlx::query(
                "UPDATE jobs SET source_commit = v.git_commit, source_dirty = v.git_dirty
                 FROM UNNEST($1::text[], $2::text[], $3::bool[]) AS v (file, git_commit, git_dirty)
                 WHERE jobs.source_file = v.file
                   AND (jobs.source_commit IS DISTINCT FROM v.git_commit
                        OR jobs.source_dirty IS DISTINCT FROM v.git_dirty)",
            )
            .bind(&files)
            .bind(&commits)
            .bind(&dirty)
            .execute(&mut **tx)
            .await?;
        }
        for chunk in changes.files.chunks(BATCH) {
            upsert_files(tx, chunk).await?;
        }
        if !changes.forget_files.is_empty() {
            sqlx::query("DELETE FROM job_files WHERE path = ANY($1)")
                .bind(&changes.forget_files)
                .execute(&mut **tx)
                .await?;
        }
        // Everything written so far is the reconciler's own: drift is what gets listed after
        // this commit.
        sqlx::query("DELETE FROM jobs_touched").execute(&mut **tx).await?;
        sqlx::query(
            "INSERT INTO reconcile_state (id, finished_at, summary) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET finished_at = EXCLUDED.finished_at,
                                            summary = EXCLUDED.summary",
        )
        .bind(now)
        .bind(&changes.summary)
        .execute(&mut **tx)
        .await?;
        if let Some((key, head)) = &changes.index_key {
            sqlx::query(
                "UPDATE reconcile_state SET cache_key = $1, provenance_head = $2 WHERE id = 1",
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

async fn manifests<'e, E: sqlx::PgExecutor<'e>>(
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

async fn upsert_jobs(
    tx: &mut Tx,
    jobs: &[&JobWrite],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new(
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
            .push_bind(job.spec_json.clone())
            .push_bind(job.source.clone())
            .push_bind(job.source_file.clone())
            .push_bind(job.source_line)
            .push_bind(job.content_hash.clone())
            .push_bind(job.git.as_ref().and_then(|g| g.commit.clone()))
            .push_bind(job.git.as_ref().map(|g| g.dirty))
            .push_bind(now)
            .push_bind(now);
    });
    // created_at is left alone: an update is the same job, with the same run history.
    query.push(
        " ON CONFLICT (id) DO UPDATE SET
            name = EXCLUDED.name, library_id = EXCLUDED.library_id,
            provider = EXCLUDED.provider, enabled = EXCLUDED.enabled, spec = EXCLUDED.spec,
            source = EXCLUDED.source, source_file = EXCLUDED.source_file,
            source_line = EXCLUDED.source_line, content_hash = EXCLUDED.content_hash,
            source_commit = EXCLUDED.source_commit, source_dirty = EXCLUDED.source_dirty,
            updated_at = EXCLUDED.updated_at",
    );
    query.build().execute(&mut **tx).await?;
    Ok(())
}

async fn upsert_files(tx: &mut Tx, files: &[FileRecord]) -> Result<(), StoreError> {
    let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new(
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
            stamp = EXCLUDED.stamp, stable = EXCLUDED.stable, git_commit = EXCLUDED.git_commit,
            git_dirty = EXCLUDED.git_dirty",
    );
    query.build().execute(&mut **tx).await?;
    Ok(())
}

/// Fails with `RunLost` unless the run is still going and held by this process. The shared
/// row lock makes a sweep that would interrupt the run wait for this entry's commit, so the
/// continuation it queues sees the entry as done.
async fn hold(tx: &mut Tx, run_id: i64) -> Result<(), StoreError> {
    let held = sqlx::query(
        "SELECT 1 FROM runs WHERE id = $1 AND status = 'running' AND owner = $2 FOR SHARE",
    )
    .bind(run_id)
    .bind(process_owner())
    .fetch_optional(&mut **tx)
    .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::RunLost { id: run_id }),
    }
}

/// Whether a run of the job is going, held by a lease that has not run out. Takes the job's
/// advisory lock first, held to the end of the caller's transaction.
async fn job_is_running(tx: &mut Tx, job_id: &str) -> Result<bool, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(JOB_LOCK_CLASS)
        .bind(job_id)
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE job_id = $1 AND status = 'running'
                        AND (lease_until IS NULL OR lease_until >= clock_timestamp()))",
    )
    .bind(job_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Inserts a run; a running one is held by this process for `lease_seconds`.
async fn insert_run(
    tx: &mut Tx,
    job_id: &str,
    trigger: &str,
    status: &str,
    slot: Option<DateTime<Utc>>,
    error: Option<&str>,
    lease_seconds: Option<f64>,
) -> Result<RunRow, StoreError> {
    let running = status == "running";
    let row = sqlx::query(
        "INSERT INTO runs (job_id, trigger, status, slot, queued_at, started_at, finished_at,
                           error, owner, lease_until)
         VALUES ($1, $2, $3, $4, clock_timestamp(),
                 CASE WHEN $5 THEN clock_timestamp() END,
                 CASE WHEN $3 = 'skipped' THEN clock_timestamp() END,
                 $6, $7, clock_timestamp() + make_interval(secs => $8))
         RETURNING *",
    )
    .bind(job_id)
    .bind(trigger)
    .bind(status)
    .bind(slot)
    .bind(running)
    .bind(error)
    .bind(running.then(process_owner))
    .bind(lease_seconds)
    .fetch_one(&mut **tx)
    .await?;
    run_from_row(&row)
}

/// Marks running runs `interrupted`, with totals counted from the entries they recorded, and
/// queues a continuation of each scheduled one that has attempts left; the caller's
/// transaction holds the rows.
async fn interrupt(tx: &mut Tx, ids: &[i64], reason: &str) -> Result<Vec<Reaped>, StoreError> {
    let mut reaped = Vec::new();
    for id in ids {
        let row = sqlx::query(
            "UPDATE runs SET status = 'interrupted', finished_at = clock_timestamp(), error = $1,
                 totals = totals || (
                     SELECT jsonb_build_object(
                         'updated', count(*) FILTER (WHERE outcome = 'updated'),
                         'unchanged', count(*) FILTER (WHERE outcome = 'unchanged'),
                         'skipped', count(*) FILTER (WHERE outcome = 'skipped'),
                         'failed', count(*) FILTER (WHERE outcome = 'failed'),
                         'fieldsWritten', coalesce(sum(jsonb_array_length(changes))
                             FILTER (WHERE outcome = 'updated'), 0))
                     FROM run_entries WHERE run_id = runs.id)
             WHERE id = $2 AND status = 'running'
             RETURNING job_id, trigger, slot, owner, attempt,
                       cancel_requested_at IS NOT NULL AS cancelled",
        )
        .bind(reason)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { continue };
        let (job_id, trigger): (String, String) = (row.get("job_id"), row.get("trigger"));
        let attempt: i32 = row.get("attempt");
        // A run someone asked to cancel is not handed on.
        let cancelled: bool = row.get("cancelled");
        let continuation = if continues(&trigger, i64::from(attempt)) && !cancelled {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO runs (job_id, trigger, status, slot, queued_at, resumes, attempt)
                 VALUES ($1, $2, 'queued', $3, clock_timestamp(), $4, $5) RETURNING id",
            )
            .bind(&job_id)
            .bind(&trigger)
            .bind(row.get::<Option<DateTime<Utc>>, _>("slot"))
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
    ids: &BTreeMap<String, ExternalIdDef>,
    seed: bool,
) -> Result<(), StoreError> {
    let (table, column) = match kind {
        EntityKind::Series => ("series_external_ids", "series_id"),
        EntityKind::Book => ("book_external_ids", "book_id"),
    };
    let on_conflict = if seed {
        "DO NOTHING".to_string()
    } else {
        format!(
            "DO UPDATE SET
               last_synced_at = CASE
                 WHEN EXCLUDED.last_synced_at IS NOT NULL THEN EXCLUDED.last_synced_at
                 WHEN {table}.external_id = EXCLUDED.external_id THEN {table}.last_synced_at
                 ELSE NULL END,
               external_id = EXCLUDED.external_id"
        )
    };
    let sql = format!(
        "INSERT INTO {table} ({column}, provider, external_id, last_synced_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT ({column}, provider) {on_conflict}"
    );
    for (provider, id) in ids {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(row_id)
            .bind(provider)
            .bind(&id.id)
            .bind(id.last_synced_at)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn insert_entry_results(
    tx: &mut Tx,
    run_id: i64,
    results: &[(i64, &EntryResult)],
) -> Result<(), StoreError> {
    for chunk in results.chunks(BATCH) {
        let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "INSERT INTO run_entries (run_id, seq, kind, entry, title, outcome, reason, changes) ",
        );
        query.push_values(chunk, |mut row, (seq, result)| {
            row.push_bind(run_id)
                .push_bind(*seq)
                .push_bind(result.kind.as_str())
                .push_bind(result.entry.clone())
                .push_bind(result.title.clone())
                .push_bind(result.outcome.clone())
                .push_bind(result.reason.clone())
                .push_bind(serde_json::to_value(&result.changes).expect("changes serialise"));
        });
        query.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn locks_json(locks: &[String]) -> Value {
    Value::Array(locks.iter().cloned().map(Value::String).collect())
}

fn json_object(value: Value) -> Result<Map<String, Value>, StoreError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::Corrupt { what: "metadata", reason: "not a JSON object".into() }),
    }
}

fn json_list(value: Value) -> Result<Vec<String>, StoreError> {
    serde_json::from_value(value)
        .map_err(|e| StoreError::Corrupt { what: "locks", reason: e.to_string() })
}

fn job_from_row(row: &PgRow) -> Result<JobRow, StoreError> {
    let spec_json: Value = row.get("spec");
    let spec = serde_json::from_value(spec_json.clone())
        .map_err(|e| StoreError::Corrupt { what: "job spec", reason: e.to_string() })?;
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
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn run_from_row(row: &PgRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: row.get("id"),
        job_id: row.get("job_id"),
        trigger: row.get("trigger"),
        status: row.get("status"),
        slot: row.get("slot"),
        queued_at: row.get("queued_at"),
        started_at: row.get("started_at"),
        finished_at: row.get("finished_at"),
        totals: row.get("totals"),
        error: row.get("error"),
        job_deleted_at: row.get("job_deleted_at"),
        resumes: row.get("resumes"),
        attempt: i64::from(row.get::<i32, _>("attempt")),
    })
}
