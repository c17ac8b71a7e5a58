//! The `metadata_refresh` run: plan the entries, fetch them from the provider with at most
//! `maxConcurrency` calls in flight, write only the fields the job may write, and record one
//! outcome per entry. Which fields may be written is decided here and nowhere else: the
//! provider's permissions ∩ the job's groups and extra fields ∩ the fields returned, minus
//! locked fields, and only values that changed.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::catalog::fields::{self, Permissions};
use crate::config::Retention;
use crate::provider::{EntityKind, Metadata, ProviderError, Registry};
use crate::store::{Change, Entry, EntryResult, JobRow, Store, StoreError};
use crate::webhook::{EventKind, Notifier};

/// How often a rate-limited call is retried before the entry fails.
const MAX_RATE_LIMIT_WAITS: u32 = 5;
/// The longest a single rate-limit wait may last, whatever the provider asks.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(300);

/// Runs jobs, at most one run per job at a time in this process.
pub struct Runner {
    store: Store,
    registry: Arc<Registry>,
    running: Mutex<HashSet<String>>,
    notifier: Notifier,
    retention: Retention,
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
    /// The one run after downtime that missed one or more slots.
    CatchUp,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::CatchUp => "catch-up",
        }
    }
}

impl Runner {
    /// A runner that notifies `notifier` of failed and partial runs and keeps each job's
    /// history within `retention`.
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        notifier: Notifier,
        retention: Retention,
    ) -> Arc<Runner> {
        let running = Mutex::new(HashSet::new());
        Arc::new(Runner { store, registry, running, notifier, retention })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether a run of the job is going on in this process.
    pub fn is_running(&self, job_id: &str) -> bool {
        self.running.lock().expect("running set lock").contains(job_id)
    }

    /// Runs a job now and waits for the end. A job whose previous run is still going gets a
    /// `skipped` run instead: a job never runs twice at once.
    pub async fn run(
        &self,
        job: &JobRow,
        trigger: Trigger,
        slot: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        if !self.running.lock().expect("running set lock").insert(job.id.clone()) {
            let reason = "the previous run of this job is still going";
            tracing::warn!(job.id = %job.id, reason, "firing skipped");
            metrics::counter!("curator_runs_total", "status" => "skipped").increment(1);
            return self
                .store
                .create_run(&job.id, trigger.as_str(), "skipped", slot, Some(reason))
                .await;
        }
        let result = async {
            let run_id =
                self.store.create_run(&job.id, trigger.as_str(), "running", slot, None).await?;
            self.execute(job, run_id).await?;
            self.after(job, run_id).await;
            Ok(run_id)
        }
        .await;
        self.running.lock().expect("running set lock").remove(&job.id);
        result
    }

    /// After a run: notify of a failure, and prune the job's history. Neither may fail the run.
    async fn after(&self, job: &JobRow, run_id: i64) {
        let run = self.store.run(run_id).await;
        if let Ok(run) = &run {
            metrics::counter!("curator_runs_total", "status" => run.status.clone()).increment(1);
        }
        match run {
            Ok(run) if run.status == "failed" || run.status == "partial" => {
                let kind = if run.status == "failed" {
                    EventKind::RunFailed
                } else {
                    EventKind::RunPartial
                };
                let detail = json!({
                    "job": job.id, "jobName": job.name, "library": job.library_id,
                    "runId": run.id, "trigger": run.trigger, "status": run.status,
                    "error": run.error, "totals": run.totals,
                });
                self.notifier.send(kind, detail);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the finished run"),
        }
        let max_age = chrono::Duration::days(i64::from(self.retention.max_age_days));
        match self.store.prune_runs(&job.id, self.retention.max_runs, max_age).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(job.id = %job.id, pruned, "old runs pruned"),
            Err(e) => tracing::warn!(job.id = %job.id, error = %e, "cannot prune old runs"),
        }
    }

    /// Runs an already created, running run row (one claimed from the queue).
    pub async fn run_claimed(&self, job: &JobRow, run_id: i64) -> Result<(), StoreError> {
        if !self.running.lock().expect("running set lock").insert(job.id.clone()) {
            let reason = "the previous run of this job is still going";
            metrics::counter!("curator_runs_total", "status" => "skipped").increment(1);
            return self.store.finish_run(run_id, "skipped", &json!({}), Some(reason)).await;
        }
        let result = self.execute(job, run_id).await;
        if result.is_ok() {
            self.after(job, run_id).await;
        }
        self.running.lock().expect("running set lock").remove(&job.id);
        result
    }

    /// Plans, fetches, applies and records one run; the run row ends in its final status.
    #[tracing::instrument(skip_all, fields(job.id = %job.id, run.id = run_id))]
    async fn execute(&self, job: &JobRow, run_id: i64) -> Result<(), StoreError> {
        let spec = &job.spec;
        let provider_name = spec.provider_name().to_string();
        let provider = match self.registry.get(&provider_name).await {
            Ok(p) => p,
            Err(e) => return self.fail(run_id, &e.to_string()).await,
        };
        let capabilities = provider.capabilities();
        if (spec.scope.series() && !capabilities.series)
            || (spec.scope.books() && !capabilities.book)
        {
            let reason = format!(
                "provider `{provider_name}` cannot serve scope `{}` (it provides series: {}, books: {})",
                spec.scope.as_str(),
                capabilities.series,
                capabilities.book
            );
            return self.fail(run_id, &reason).await;
        }

        // Plan: the library's entries in scope, then the filters, least recently synced first.
        let mut entries = Vec::new();
        if spec.scope.series() {
            entries.extend(
                self.store.entries(&spec.library, EntityKind::Series, &provider_name).await?,
            );
        }
        if spec.scope.books() {
            entries
                .extend(self.store.entries(&spec.library, EntityKind::Book, &provider_name).await?);
        }
        let now = Utc::now();
        let window = chrono::Duration::seconds(
            spec.skip_recently_synced_within_s.min(i64::MAX as u64) as i64,
        );
        let mut work = Vec::new();
        let mut skipped = Vec::new();
        for entry in entries {
            let reason = if entry.external_id.is_none() {
                Some(format!("no ID: the entry has no `{provider_name}` external ID"))
            } else if spec.skip_recently_synced_within_s > 0
                && entry.last_synced_at.is_some_and(|t| t > now - window)
            {
                Some(format!(
                    "recent: synced from `{provider_name}` within {}s",
                    spec.skip_recently_synced_within_s
                ))
            } else {
                None
            };
            match reason {
                Some(reason) => skipped.push((entry, reason)),
                None => work.push(entry),
            }
        }
        work.sort_by(|a, b| {
            (a.last_synced_at, a.kind as u8, &a.key).cmp(&(b.last_synced_at, b.kind as u8, &b.key))
        });
        tracing::info!(entries = work.len(), skipped = skipped.len(), "run planned");

        let mut totals = Totals::default();
        let skipped_results: Vec<(i64, EntryResult)> = skipped
            .iter()
            .enumerate()
            .map(|(i, (entry, reason))| {
                totals.count_skip(reason);
                let seq = (work.len() + i) as i64;
                (seq, result(entry, "skipped", Some(reason.clone()), Vec::new()))
            })
            .collect();
        self.store.record_entries(run_id, &skipped_results).await?;

        // Fetch and apply, at most `maxConcurrency` calls in flight.
        let selection = Arc::new(Selection {
            series: spec.series_selection().into_iter().collect(),
            books: spec.book_selection().into_iter().collect(),
            permissions: self.registry.permissions(&provider_name),
        });
        let limit = Arc::new(Semaphore::new(usize::from(spec.max_concurrency.clamp(1, 16))));
        let mut tasks = JoinSet::new();
        for (seq, entry) in work.into_iter().enumerate() {
            let (store, provider, selection, limit) =
                (self.store.clone(), provider.clone(), selection.clone(), limit.clone());
            let provider_name = provider_name.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
                let external_id = entry.external_id.clone().unwrap_or_default();
                let fetched = fetch(&provider, entry.kind, &external_id).await;
                let (outcome, synced) = match fetched {
                    Ok(metadata) => (decide(&entry, &metadata, &selection), Some(Utc::now())),
                    Err(e) => (result(&entry, "failed", Some(e.to_string()), Vec::new()), None),
                };
                store
                    .write_entry(run_id, seq as i64, &entry, &provider_name, synced, &outcome)
                    .await?;
                Ok::<_, StoreError>(outcome)
            });
        }
        let mut store_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(outcome)) => totals.count(&outcome),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "entry could not be recorded");
                    totals.failed += 1;
                    store_error.get_or_insert(e);
                }
                Err(e) => {
                    tracing::error!(error = %e, "entry task ended abnormally");
                    totals.failed += 1;
                }
            }
        }

        let attempted = totals.updated + totals.unchanged + totals.held_back + totals.failed;
        let status = if totals.failed == 0 {
            "succeeded"
        } else if totals.failed == attempted {
            "failed"
        } else {
            "partial"
        };
        let error = store_error.map(|e| e.to_string()).or_else(|| {
            (totals.failed > 0).then(|| format!("{} of {attempted} entries failed", totals.failed))
        });
        tracing::info!(
            status,
            updated = totals.updated,
            unchanged = totals.unchanged,
            failed = totals.failed,
            "run finished"
        );
        self.store.finish_run(run_id, status, &totals.to_json(), error.as_deref()).await
    }

    async fn fail(&self, run_id: i64, reason: &str) -> Result<(), StoreError> {
        tracing::warn!(reason, "run failed before any entry");
        self.store.finish_run(run_id, "failed", &Totals::default().to_json(), Some(reason)).await
    }
}

/// Calls the provider, waiting out rate limits rather than failing on them.
async fn fetch(
    provider: &crate::provider::Provider,
    kind: EntityKind,
    external_id: &str,
) -> Result<Metadata, ProviderError> {
    let mut waits = 0;
    loop {
        match provider.get(kind, external_id).await {
            Err(ProviderError::RateLimited { retry_after, .. }) if waits < MAX_RATE_LIMIT_WAITS => {
                waits += 1;
                tracing::warn!(
                    provider = provider.name(),
                    wait_s = retry_after.as_secs_f64(),
                    "provider asked to wait"
                );
                tokio::time::sleep(retry_after.min(MAX_RATE_LIMIT_WAIT)).await;
            }
            other => return other,
        }
    }
}

/// What a job may write: its selected fields per side, and the provider's allow-list.
pub struct Selection {
    pub series: HashSet<&'static str>,
    pub books: HashSet<&'static str>,
    pub permissions: Permissions,
}

/// Decides one entry's outcome from the provider's answer. Pure: the caller writes it.
pub fn decide(entry: &Entry, response: &Metadata, selection: &Selection) -> EntryResult {
    let selected = match entry.kind {
        EntityKind::Series => &selection.series,
        EntityKind::Book => &selection.books,
    };
    let mut changes = Vec::new();
    let mut unchanged = 0;
    let mut held: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for field in fields::fields(entry.kind) {
        let Some(value) = response.get(field.response_key).filter(|v| !v.is_null()) else {
            continue;
        };
        if !selected.contains(field.name) {
            continue;
        }
        if !selection.permissions.allows(field) {
            held.entry("not permitted").or_default().push(field.name.to_string());
            continue;
        }
        if let Err(expected) = fields::check_shape(field, value) {
            held.entry("refused")
                .or_default()
                .push(format!("{} (`{value}`: {expected})", field.name));
            continue;
        }
        let current = entry.metadata.get(field.name).cloned().unwrap_or(Value::Null);
        if &current == value {
            unchanged += 1;
        } else if entry.locks.iter().any(|l| l == field.name) {
            held.entry("locked").or_default().push(field.name.to_string());
        } else {
            changes.push(Change {
                field: field.name.to_string(),
                before: current,
                after: value.clone(),
            });
        }
    }
    let reason = (!held.is_empty()).then(|| {
        held.iter()
            .map(|(why, names)| format!("{why}: {}", names.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let outcome = if !changes.is_empty() {
        "updated"
    } else if unchanged == 0 && (held.contains_key("locked") || held.contains_key("not permitted"))
    {
        // Everything that differed was held back: the entry was skipped, and the reason says why.
        "skipped"
    } else {
        "unchanged"
    };
    result(entry, outcome, reason, changes)
}

fn result(
    entry: &Entry,
    outcome: &str,
    reason: Option<String>,
    changes: Vec<Change>,
) -> EntryResult {
    EntryResult {
        kind: entry.kind,
        entry: entry.key.clone(),
        title: entry.title(),
        outcome: outcome.to_string(),
        reason,
        changes,
    }
}

/// Run totals, stored with the run.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    updated: usize,
    unchanged: usize,
    /// Entries fetched but with every differing field held back (locked or not permitted).
    held_back: usize,
    failed: usize,
    skipped_no_id: usize,
    skipped_recent: usize,
    fields_written: usize,
}

impl Totals {
    fn count(&mut self, outcome: &EntryResult) {
        metrics::counter!("curator_entries_total", "outcome" => outcome.outcome.clone())
            .increment(1);
        metrics::counter!("curator_fields_written_total").increment(outcome.changes.len() as u64);
        match outcome.outcome.as_str() {
            "updated" => {
                self.updated += 1;
                self.fields_written += outcome.changes.len();
            }
            "unchanged" => self.unchanged += 1,
            "skipped" => self.held_back += 1,
            _ => self.failed += 1,
        }
    }

    fn count_skip(&mut self, reason: &str) {
        metrics::counter!("curator_entries_total", "outcome" => "skipped").increment(1);
        if reason.starts_with("no ID") {
            self.skipped_no_id += 1;
        } else {
            self.skipped_recent += 1;
        }
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("totals serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(metadata: Value, locks: &[&str]) -> Entry {
        Entry {
            kind: EntityKind::Series,
            row_id: 1,
            key: "frieren".into(),
            metadata: metadata.as_object().unwrap().clone(),
            locks: locks.iter().map(|l| l.to_string()).collect(),
            external_id: Some("frieren".into()),
            last_synced_at: None,
        }
    }

    fn selection(fields: &[&'static str], permissions: &[&str]) -> Selection {
        Selection {
            series: fields.iter().copied().collect(),
            books: HashSet::new(),
            permissions: Permissions::new(
                &permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ),
        }
    }

    #[test]
    fn only_selected_permitted_unlocked_changed_fields_are_written() {
        let e = entry(
            json!({"status": "ongoing", "totalVolumeCount": 10, "summary": "old", "year": 2020}),
            &["summary"],
        );
        let response = json!({"status": "ended", "totalVolumeCount": 12, "summary": "new", "year": 2020, "genres": ["X"]});
        let s =
            selection(&["status", "totalVolumeCount", "summary", "year"], &["metadata:write:*"]);
        let r = decide(&e, response.as_object().unwrap(), &s);
        assert_eq!(r.outcome, "updated");
        let written: Vec<&str> = r.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            written,
            ["status", "totalVolumeCount"],
            "genres is outside the groups, summary is locked, year is unchanged"
        );
        assert_eq!(r.reason.as_deref(), Some("locked: summary"));
    }

    #[test]
    fn a_field_outside_the_permissions_is_held_back() {
        let e = entry(json!({"status": "ongoing"}), &[]);
        let response = json!({"status": "ended"});
        let s = selection(&["status"], &["metadata:write:ratings"]);
        let r = decide(&e, response.as_object().unwrap(), &s);
        assert_eq!(r.outcome, "skipped");
        assert!(r.changes.is_empty());
        assert_eq!(r.reason.as_deref(), Some("not permitted: status"));
    }

    #[test]
    fn a_value_that_does_not_fit_is_refused_not_stored() {
        let e = entry(json!({"status": "ongoing"}), &[]);
        let response = json!({"status": "completed"});
        let s = selection(&["status"], &["metadata:write:*"]);
        let r = decide(&e, response.as_object().unwrap(), &s);
        assert!(r.changes.is_empty());
        assert!(r.reason.unwrap().starts_with("refused: status"));
    }
}
