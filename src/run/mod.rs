//! The `metadata_refresh` run: plan the entries ([`plan`]), match the ones without an ID when
//! the job allows it, fetch them from the provider with at most `maxConcurrency` calls in
//! flight ([`fetch`]), write only the fields the job may write ([`apply`]), and record one
//! outcome per entry. A preview ([`preview`]) goes through the same steps and writes nothing.

pub mod apply;
pub mod fetch;
pub mod plan;
pub mod preview;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::Retention;
use crate::provider::{EntityKind, MatchCandidate, MatchQuery, Provider, Registry};
use crate::spec::LibraryJob;
use crate::store::{CancelOutcome, Entry, EntryResult, JobRow, OVERLAP_REASON, Store, StoreError};
use crate::webhook::{EventKind, Notifier};

pub use apply::{Selection, decide, judge};
use fetch::{CallError, Calls};
use plan::Plan;

/// How often a run looks for a cancel request made by another process.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Runs jobs, at most one run per job at a time in this process.
pub struct Runner {
    store: Store,
    registry: Arc<Registry>,
    running: Mutex<HashSet<String>>,
    /// The cancellation of each run going on in this process, by run ID.
    cancels: Mutex<HashMap<i64, CancellationToken>>,
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
        let (running, cancels) = (Mutex::default(), Mutex::default());
        Arc::new(Runner { store, registry, running, cancels, notifier, retention })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Cancels a run: a queued run at once; a running one stops making provider calls, lets the
    /// calls in flight finish and ends `cancelled`. The request is stored, so it reaches the
    /// run whichever process runs it; a run of this process hears of it at once.
    pub async fn cancel(&self, run_id: i64) -> Result<CancelOutcome, StoreError> {
        let outcome = self.store.request_cancel(run_id).await?;
        if let Some(token) = self.cancels.lock().expect("cancels lock").get(&run_id) {
            token.cancel();
        }
        Ok(outcome)
    }

    /// Whether a run of the job is going on in this process.
    pub fn is_running(&self, job_id: &str) -> bool {
        self.running.lock().expect("running set lock").contains(job_id)
    }

    /// Runs a job now and waits for the end. A job whose previous run is still going, here or
    /// in another process, gets a `skipped` run instead: a job never runs twice at once.
    #[tracing::instrument(name = "job", skip_all, fields(job.id = %job.id, job.file = %job.source_file))]
    pub async fn run(
        &self,
        job: &JobRow,
        trigger: Trigger,
        slot: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        if !self.running.lock().expect("running set lock").insert(job.id.clone()) {
            tracing::warn!(job.id = %job.id, reason = OVERLAP_REASON, "firing skipped");
            metrics::counter!("curator_runs_total", "status" => "skipped").increment(1);
            return self
                .store
                .create_run(&job.id, trigger.as_str(), "skipped", slot, Some(OVERLAP_REASON))
                .await;
        }
        let result = async {
            let run = self.store.start_run(&job.id, trigger.as_str(), slot).await?;
            if run.status == "running" {
                self.execute(job, run.id).await?;
                self.after(job, run.id).await;
            } else {
                tracing::warn!(job.id = %job.id, reason = OVERLAP_REASON, "firing skipped");
            }
            Ok(run.id)
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

    /// Runs a run row this process already holds (a claimed slot, one taken from the queue).
    #[tracing::instrument(name = "job", skip_all, fields(job.id = %job.id, job.file = %job.source_file))]
    pub async fn run_claimed(&self, job: &JobRow, run_id: i64) -> Result<(), StoreError> {
        if !self.running.lock().expect("running set lock").insert(job.id.clone()) {
            metrics::counter!("curator_runs_total", "status" => "skipped").increment(1);
            return self
                .store
                .finish_run(run_id, "skipped", &json!({}), Some(OVERLAP_REASON))
                .await;
        }
        let result = self.execute(job, run_id).await;
        if result.is_ok() {
            self.after(job, run_id).await;
        }
        self.running.lock().expect("running set lock").remove(&job.id);
        result
    }

    /// Executes a run while a side task renews its lease. A run whose lease is lost (this
    /// process was cut off long enough for another to mark it interrupted) makes no more
    /// provider calls; the store refuses its writes from that moment, so nothing it does is
    /// recorded twice.
    #[tracing::instrument(name = "run", skip_all, fields(run.id = run_id))]
    async fn execute(&self, job: &JobRow, run_id: i64) -> Result<(), StoreError> {
        let (lost, cancel) = (CancellationToken::new(), CancellationToken::new());
        // Renewing stops with the run, however it ends: a run left behind must lose its lease.
        let _renewing = AbortOnDrop(
            tokio::spawn(renew_lease(self.store.clone(), run_id, lost.clone()).in_current_span())
                .abort_handle(),
        );
        match self.execute_held(job, run_id, &lost, cancel).await {
            Err(StoreError::RunLost { .. }) => {
                tracing::warn!("run lost its lease: another process continues it");
                Ok(())
            }
            other => other,
        }
    }

    /// Plans, fetches, applies and records one run; the run row ends in its final status. A
    /// continuation of an interrupted run leaves alone the entries its earlier attempts
    /// recorded.
    async fn execute_held(
        &self,
        job: &JobRow,
        run_id: i64,
        lost: &CancellationToken,
        cancel: CancellationToken,
    ) -> Result<(), StoreError> {
        let spec = &job.spec;
        let provider = match self.provider_for(spec).await {
            Ok(p) => p,
            Err(reason) => return self.fail(run_id, &reason).await,
        };
        let provider_name = provider.name().to_string();
        let mut entries = self.entries(spec).await?;
        let done = self.store.done_entries(run_id).await?;
        if !done.is_empty() {
            entries.retain(|e| !done.contains(&(e.kind, e.key.clone())));
            tracing::info!(done = done.len(), "continuing an interrupted run");
        }
        let mut plan = Plan::new(spec, entries, Utc::now());
        let mut totals = Totals::from(plan.counts);
        tracing::info!(
            entries = plan.work.len(),
            to_match = plan.counts.to_match,
            skipped = plan.skipped.len(),
            requests_per_minute = provider.requests_per_minute(),
            "run planned"
        );
        let skipped: Vec<(i64, EntryResult)> = plan
            .skipped
            .iter()
            .enumerate()
            .map(|(i, (entry, skip))| {
                let seq = (plan.work.len() + i) as i64;
                (seq, apply::result(entry, "skipped", Some(skip.reason(spec)), Vec::new()))
            })
            .collect();
        self.store.record_entries(run_id, &skipped).await?;
        metrics::counter!("curator_entries_total", "outcome" => "skipped")
            .increment(skipped.len() as u64);

        // A cancel request can come from this process (the API) or another one (the CLI); a lost
        // lease stops the calls the same way.
        self.cancels.lock().expect("cancels lock").insert(run_id, cancel.clone());
        let poller =
            tokio::spawn(poll_cancel(self.store.clone(), run_id, cancel.clone()).in_current_span());
        let stop_on_loss = {
            let (lost, cancel) = (lost.clone(), cancel.clone());
            tokio::spawn(async move {
                lost.cancelled().await;
                cancel.cancel();
            })
        };

        let calls = Calls::new(&provider_name, cancel.clone()).paced(provider.pace());
        let context = Arc::new(EntryContext {
            provider,
            calls,
            selection: self.selection(spec),
            threshold: self.registry.match_threshold(&provider_name),
        });
        let limit = Arc::new(Semaphore::new(usize::from(spec.max_concurrency.clamp(1, 16))));
        let mut tasks = JoinSet::new();
        for (seq, entry) in std::mem::take(&mut plan.work).into_iter().enumerate() {
            let (store, context, lost) = (self.store.clone(), context.clone(), lost.clone());
            // Taking the permit before spawning starts the calls in the plan's order.
            let permit =
                limit.clone().acquire_owned().await.expect("the semaphore is never closed");
            tasks.spawn(
                async move {
                    let _permit = permit;
                    let Some(step) = context.process(entry).await else {
                        return Ok(None);
                    };
                    let provider = context.provider.name();
                    let attach = step.attach.as_deref();
                    let written = store
                        .write_entry(
                            run_id,
                            seq as i64,
                            &step.entry,
                            provider,
                            attach,
                            step.synced,
                            &step.result,
                        )
                        .await;
                    if let Err(e) = written {
                        if matches!(e, StoreError::RunLost { .. }) {
                            lost.cancel();
                        }
                        return Err(e);
                    }
                    Ok::<_, StoreError>(Some(step))
                }
                .in_current_span(),
            );
        }
        let mut store_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(Some(step))) => totals.count(&step),
                Ok(Ok(None)) => totals.not_attempted += 1,
                Ok(Err(StoreError::RunLost { .. })) => {}
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
        poller.abort();
        stop_on_loss.abort();
        self.cancels.lock().expect("cancels lock").remove(&run_id);
        if lost.is_cancelled() {
            return Err(StoreError::RunLost { id: run_id });
        }

        let attempted = totals.attempted();
        let (status, error) = if cancel.is_cancelled() {
            let done = format!("cancelled after {attempted} of {} entries", totals.planned);
            ("cancelled", Some(done))
        } else if let Some(reason) = context.calls.gave_up() {
            ("failed", Some(reason))
        } else if totals.failed == 0 {
            ("succeeded", None)
        } else if totals.failed == attempted {
            ("failed", Some(format!("{} of {attempted} entries failed", totals.failed)))
        } else {
            ("partial", Some(format!("{} of {attempted} entries failed", totals.failed)))
        };
        let error = store_error.map(|e| e.to_string()).or(error);
        let (updated, unchanged, failed) = (totals.updated, totals.unchanged, totals.failed);
        match (status, &error) {
            // A failed or partial run is degraded service an operator may want to look at.
            ("failed" | "partial", Some(reason)) => {
                tracing::warn!(status, updated, unchanged, failed, reason, "run finished")
            }
            (_, Some(reason)) => {
                tracing::info!(status, updated, unchanged, failed, reason, "run finished")
            }
            (_, None) => tracing::info!(status, updated, unchanged, failed, "run finished"),
        }
        self.store.finish_run(run_id, status, &totals.to_json(), error.as_deref()).await
    }

    /// The job's provider, started, if it can serve the job's scope.
    async fn provider_for(&self, spec: &LibraryJob) -> Result<Arc<Provider>, String> {
        let provider = self.registry.get(spec.provider_name()).await.map_err(|e| e.to_string())?;
        let capabilities = provider.capabilities();
        if let Some(plugin) = provider.plugin() {
            // Validation and reconcile read it from here, to refuse a scope the plugin lacks.
            let manifest = serde_json::to_value(plugin.manifest()).unwrap_or_default();
            if let Err(e) = self.store.save_manifest(provider.name(), capabilities, &manifest).await
            {
                tracing::warn!(provider = provider.name(), error = %e, "cannot store the plugin's manifest");
            }
        }
        if (spec.scope.series() && !capabilities.series)
            || (spec.scope.books() && !capabilities.book)
        {
            return Err(format!(
                "provider `{}` cannot serve scope `{}` (it provides series: {}, books: {})",
                provider.name(),
                spec.scope.as_str(),
                capabilities.series,
                capabilities.book
            ));
        }
        Ok(provider)
    }

    /// The library's entries in the job's scope, series first.
    async fn entries(&self, spec: &LibraryJob) -> Result<Vec<Entry>, StoreError> {
        let provider = spec.provider_name();
        let mut entries = Vec::new();
        if spec.scope.series() {
            entries.extend(self.store.entries(&spec.library, EntityKind::Series, provider).await?);
        }
        if spec.scope.books() {
            entries.extend(self.store.entries(&spec.library, EntityKind::Book, provider).await?);
        }
        Ok(entries)
    }

    fn selection(&self, spec: &LibraryJob) -> Selection {
        Selection {
            series: spec.series_selection().into_iter().collect(),
            books: spec.book_selection().into_iter().collect(),
            permissions: self.registry.permissions(spec.provider_name()),
        }
    }

    async fn fail(&self, run_id: i64, reason: &str) -> Result<(), StoreError> {
        tracing::warn!(reason, "run failed before any entry");
        self.store.finish_run(run_id, "failed", &Totals::default().to_json(), Some(reason)).await
    }
}

/// Aborts a side task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews a run's lease every third of its length until aborted. A renewal the store refuses
/// means the run is no longer this process's: `lost` tells the run to stop. A renewal that
/// fails (the database is unreachable) is retried at the next tick, while the lease lasts.
async fn renew_lease(store: Store, run_id: i64, lost: CancellationToken) {
    let mut tick = tokio::time::interval(store.run_lease() / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        match store.renew_lease(run_id).await {
            Ok(true) => {}
            Ok(false) => return lost.cancel(),
            Err(e) => tracing::warn!(run.id = run_id, error = %e, "cannot renew the run's lease"),
        }
    }
}

/// Trips `cancel` when a cancel request for the run appears in the database.
async fn poll_cancel(store: Store, run_id: i64, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(CANCEL_POLL) => {}
            () = cancel.cancelled() => return,
        }
        match store.cancel_requested(run_id).await {
            Ok(true) => {
                tracing::info!(run.id = run_id, "cancel requested; no new provider calls");
                cancel.cancel();
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(run.id = run_id, error = %e, "cannot check for a cancel request")
            }
        }
    }
}

/// What every entry task of a run shares.
struct EntryContext {
    provider: Arc<Provider>,
    calls: Calls,
    selection: Selection,
    /// The lowest confidence at which a match attaches an ID.
    threshold: f64,
}

/// One entry's way through a run: what to write and record.
pub(crate) struct Step {
    pub entry: Entry,
    /// The ID a confident match found, stored with the entry's fields.
    pub attach: Option<String>,
    /// When the provider answered; `None` when it did not, so the entry is not marked synced.
    pub synced: Option<DateTime<Utc>>,
    pub result: EntryResult,
    /// What the match call said, for entries that had no ID.
    pub matched: Option<MatchNote>,
}

/// The match call's outcome for one entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum MatchNote {
    /// The candidate is at or above the threshold; its ID is attached.
    Matched { candidate: MatchCandidate },
    /// Nothing at or above the threshold; the best candidate, if any, is named.
    NoConfidentMatch { best: Option<MatchCandidate>, threshold: f64 },
}

impl MatchNote {
    fn describe(&self) -> String {
        match self {
            MatchNote::Matched { candidate } => format!(
                "matched `{}` ({:?}) with confidence {:.2}",
                candidate.external_id, candidate.title, candidate.confidence
            ),
            MatchNote::NoConfidentMatch { best: Some(best), threshold } => format!(
                "no confident match: the best candidate, `{}` ({:?}), has confidence {:.2}, below {threshold}",
                best.external_id, best.title, best.confidence
            ),
            MatchNote::NoConfidentMatch { best: None, .. } => {
                "no confident match: the provider found no candidate".to_string()
            }
        }
    }
}

/// What the provider said about one entry.
pub(crate) enum Answer {
    Metadata(crate::provider::Metadata),
    /// The entry had no ID and the match call found none it was sure of.
    NoMatch,
    /// The call failed; the reason says how.
    Failed(String),
}

/// One entry after its provider calls.
pub(crate) struct Fetched {
    /// The entry, with the matched ID set when a match found one.
    pub entry: Entry,
    pub matched: Option<MatchNote>,
    pub answer: Answer,
}

impl EntryContext {
    /// Matches the entry if it has no ID, then fetches it; `None` when the run was cancelled or
    /// gave up on the provider before the entry's calls were made.
    async fn fetch(&self, mut entry: Entry) -> Option<Fetched> {
        let mut matched = None;
        if entry.external_id.is_none() {
            let query = match_query(&entry);
            let answer = self.calls.call(|| self.provider.match_entry(entry.kind, &query)).await;
            let note = match answer {
                Ok(Some(candidate)) if candidate.confidence >= self.threshold => {
                    entry.external_id = Some(candidate.external_id.clone());
                    MatchNote::Matched { candidate }
                }
                Ok(best) => MatchNote::NoConfidentMatch { best, threshold: self.threshold },
                Err(CallError::Provider(e)) => {
                    let answer = Answer::Failed(format!("match failed: {e}"));
                    return Some(Fetched { entry, matched, answer });
                }
                Err(CallError::Cancelled | CallError::ProviderDown) => return None,
            };
            if matches!(note, MatchNote::NoConfidentMatch { .. }) {
                return Some(Fetched { entry, matched: Some(note), answer: Answer::NoMatch });
            }
            matched = Some(note);
        }
        let id = entry.external_id.clone().unwrap_or_default();
        let answer = match self.calls.call(|| self.provider.get(entry.kind, &id)).await {
            Ok(metadata) => Answer::Metadata(metadata),
            Err(CallError::Provider(e)) => Answer::Failed(e.to_string()),
            Err(CallError::Cancelled | CallError::ProviderDown) => return None,
        };
        Some(Fetched { entry, matched, answer })
    }

    /// Fetches the entry and decides what to write and record.
    async fn process(&self, entry: Entry) -> Option<Step> {
        let Fetched { entry, matched, answer } = self.fetch(entry).await?;
        let note = matched.as_ref().map(MatchNote::describe);
        let step = match answer {
            Answer::Metadata(metadata) => {
                let mut result = decide(&entry, &metadata, &self.selection);
                result.reason = join_reasons(note, result.reason);
                let attach = matched.is_some().then(|| entry.external_id.clone()).flatten();
                Step { entry, attach, synced: Some(Utc::now()), result, matched }
            }
            Answer::NoMatch => {
                let result = apply::result(&entry, "skipped", note, Vec::new());
                Step { entry, attach: None, synced: None, result, matched }
            }
            Answer::Failed(reason) => {
                let reason = join_reasons(note, Some(reason));
                let result = apply::result(&entry, "failed", reason, Vec::new());
                Step { entry, attach: None, synced: None, result, matched }
            }
        };
        Some(step)
    }
}

/// What the provider's match call is told about an entry: its title, year, authors, and for
/// books the ISBN, which providers try first.
fn match_query(entry: &Entry) -> MatchQuery {
    let text = |key: &str| entry.metadata.get(key).and_then(Value::as_str).map(str::to_owned);
    let authors = entry
        .metadata
        .get("authors")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| a.as_str().or_else(|| a.get("name").and_then(Value::as_str)))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    MatchQuery {
        title: text("title")
            .unwrap_or_else(|| entry.key.rsplit('/').next().unwrap_or_default().to_owned()),
        year: entry.metadata.get("year").and_then(Value::as_i64),
        authors,
        isbn: match entry.kind {
            EntityKind::Book => text("isbn"),
            EntityKind::Series => None,
        },
        publisher: text("publisher"),
    }
}

fn join_reasons(first: Option<String>, second: Option<String>) -> Option<String> {
    match (first, second) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// Run totals, stored with the run: the planner's counts, then what became of the entries.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    /// The library's entries in the job's scope.
    candidates: usize,
    skipped_no_id: usize,
    skipped_recent: usize,
    /// Entries the planner kept, matched ones included.
    planned: usize,
    /// Entries without an ID that the match call gave one.
    matched: usize,
    /// Entries without an ID for which no candidate reached the threshold.
    no_confident_match: usize,
    updated: usize,
    unchanged: usize,
    /// Entries fetched but with every differing field held back (locked or not permitted).
    held_back: usize,
    failed: usize,
    /// Planned entries never called: the run was cancelled or gave up on the provider.
    not_attempted: usize,
    fields_written: usize,
}

impl From<plan::PlanCounts> for Totals {
    fn from(counts: plan::PlanCounts) -> Self {
        Totals {
            candidates: counts.candidates,
            skipped_no_id: counts.skipped_no_id,
            skipped_recent: counts.skipped_recent,
            planned: counts.planned,
            ..Totals::default()
        }
    }
}

impl Totals {
    fn count(&mut self, step: &Step) {
        let outcome = step.result.outcome.clone();
        metrics::counter!("curator_entries_total", "outcome" => outcome).increment(1);
        let written = step.result.changes.len() as u64;
        metrics::counter!("curator_fields_written_total").increment(written);
        match &step.matched {
            Some(MatchNote::Matched { .. }) if step.synced.is_some() => self.matched += 1,
            Some(MatchNote::NoConfidentMatch { .. }) => {
                self.no_confident_match += 1;
                return;
            }
            _ => {}
        }
        match step.result.outcome.as_str() {
            "updated" => {
                self.updated += 1;
                self.fields_written += step.result.changes.len();
            }
            "unchanged" => self.unchanged += 1,
            "skipped" => self.held_back += 1,
            _ => self.failed += 1,
        }
    }

    /// Entries whose calls were made.
    fn attempted(&self) -> usize {
        self.updated + self.unchanged + self.held_back + self.failed + self.no_confident_match
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("totals serialise")
    }
}
