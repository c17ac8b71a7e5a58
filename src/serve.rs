//! `curator serve`: one process with the reconciler, the watcher, the scheduler, the run
//! workers and the HTTP listener. Start-up reconciles once and catches up on slots missed
//! while curator was down; after that a file change, SIGHUP or the periodic resync triggers a
//! pass, and each pass re-syncs the scheduler.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use tokio::sync::{Notify, mpsc, watch as tokio_watch};
use tracing::Instrument as _;

use crate::config::Config;
use crate::provider::Registry;
use crate::reconcile::{self, Guard, Options};
use crate::run::{Runner, Trigger};
use crate::schedule::scheduler::{Firing, Scheduler};
use crate::schedule::{SystemClock, Timing};
use crate::store::{JobRow, OVERLAP_REASON, Reaped, RunRow, Store};
use crate::watch;
use crate::web;
use crate::webhook::{EventKind, Notifier};

/// A full rescan even when no event came: the watcher's backstop.
const RESYNC_EVERY: Duration = Duration::from_secs(300);
/// How often the run queue (runs requested by `curator run` without `--wait`, continuations of
/// interrupted runs) is checked, and runs whose holder's lease ran out are swept.
const QUEUE_POLL_EVERY: Duration = Duration::from_secs(2);
/// How long shutdown waits for running runs before it marks them interrupted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What the server's tasks share.
struct Server {
    store: Store,
    config: Config,
    runner: Arc<Runner>,
    scheduler: Arc<Scheduler>,
    notifier: Notifier,
    /// Runs started by this process and not yet ended.
    in_flight: AtomicUsize,
    /// Runs taken from the queue and not yet ended, at most `config.workers`: a replica takes
    /// only what it can run, and leaves the rest of the queue to the others.
    queue_workers: AtomicUsize,
    /// Woken when a queue worker is free again, so the next queued run starts at once.
    worker_freed: Notify,
    /// Rung when a run is queued through the API, so the queue is read at once.
    queued: Arc<Notify>,
}

impl Server {
    /// Runs a run this process holds on its own task, counted so shutdown can wait for it.
    fn spawn_run(self: &Arc<Self>, job: JobRow, run: RunRow) {
        if run.status != "running" {
            let reason = run.error.as_deref().unwrap_or_default();
            let (job_id, file, run_id) = (&job.id, &job.source_file, run.id);
            return tracing::warn!(job.id = %job_id, job.file = %file, run.id = run_id, reason, "firing skipped");
        }
        let server = self.clone();
        server.in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Err(e) = server.runner.run_claimed(&job, run.id).await {
                let (job_id, file, run_id) = (&job.id, &job.source_file, run.id);
                tracing::error!(job.id = %job_id, job.file = %file, run.id = run_id, error = %e, "run could not be recorded");
            }
            server.in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Logs runs found without a live holder: each is marked interrupted, and a scheduled one is
/// continued by a queued run that any process may take.
fn log_reaped(reaped: &[Reaped], why: &str) {
    for run in reaped {
        let owner = run.owner.as_deref().unwrap_or("none");
        match run.continuation {
            Some(next) => tracing::warn!(
                job.id = %run.job_id, run.id = run.run_id, owner, continued_by = next, why,
                "run interrupted: its remaining entries are queued"
            ),
            None => tracing::warn!(
                job.id = %run.job_id, run.id = run.run_id, owner, why,
                "run interrupted"
            ),
        }
    }
}

/// Runs the server until SIGINT or SIGTERM; a second signal stops it at once.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    limit_malloc_arenas();
    // Installed first: a signal that arrives before its handler exists ends the process.
    let hangup = hangup_signal();
    let mut stop_signals = StopSignals::install();
    let _lock = lock_database(&config.database)?;
    if web::metrics_handle().is_some() {
        web::describe_metrics();
    }
    let store = Store::open(&config.database).await?.with_run_lease(config.run_lease);
    for (path, counts) in store.seed_catalogs(&config.catalog, &config.database).await? {
        // Every start seeds; only a seed that added something is news.
        if counts == crate::store::ImportCounts::default() {
            tracing::debug!(file = %path.display(), "catalog seeded, nothing added");
        } else {
            tracing::info!(file = %path.display(), libraries = counts.libraries, series = counts.series, books = counts.books, "catalog seeded");
        }
    }

    let registry = Arc::new(Registry::new(&config.providers));
    // A provider that cannot start is reported now, not at the first run that needs it.
    for problem in crate::config::check::check(&config).await {
        tracing::warn!(location = %problem.location, problem = %problem.message, "config problem");
    }
    let notifier = Notifier::start(config.webhooks.clone());
    let runner = Runner::new(store.clone(), registry.clone(), notifier.clone(), config.retention);
    let scheduler = Scheduler::new(Arc::new(SystemClock));
    let server = Arc::new(Server {
        store,
        config,
        runner,
        scheduler,
        notifier,
        in_flight: AtomicUsize::new(0),
        queue_workers: AtomicUsize::new(0),
        worker_freed: Notify::new(),
        queued: Arc::new(Notify::new()),
    });
    let (stop_tx, stop_rx) = tokio_watch::channel(false);

    let listener = tokio::net::TcpListener::bind(&server.config.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", server.config.listen))?;
    let local = listener.local_addr()?;
    let ready = Arc::new(AtomicBool::new(false));
    let state = web::AppState {
        store: server.store.clone(),
        config: Arc::new(server.config.clone()),
        runner: server.runner.clone(),
        scheduler: server.scheduler.clone(),
        registry: registry.clone(),
        access: Arc::new(web::Access::new(&server.config, local)?),
        queued: server.queued.clone(),
        ready: ready.clone(),
        jobs_dir_in_repo: web::jobs_dir_in_repo(&server.config.jobs_dir),
    };
    // Serving starts before the first pass: probes get an answer (`/readyz` says not yet).
    let http =
        axum::serve(listener, web::router(state)).with_graceful_shutdown(stopped(stop_rx.clone()));
    let http = tokio::spawn(async move { http.await });
    tracing::info!(listen = %local, "listening");
    let orphans = server.store.interrupt_orphaned_runs().await?;
    log_reaped(&orphans, "the process running it stopped");

    // The watch starts before the first pass, so a file saved during that pass is not missed.
    let (signal_tx, signal_rx) = mpsc::channel(1);
    let watching = start_watch(&server.config, signal_tx.clone());
    let mut invalid = BTreeSet::new();
    pass(&server, &mut invalid).await;
    ready.store(true, Ordering::SeqCst);
    catch_up(&server).await;
    release_freed_memory();

    let reconciler = tokio::spawn(reconcile_loop(
        server.clone(),
        invalid,
        (watching, signal_tx, signal_rx),
        hangup,
        stop_rx.clone(),
    ));
    let fire = {
        let server = server.clone();
        move |firing: Firing| {
            let server = server.clone();
            // Every line about a firing names its job; the file is known once the job is read.
            let span = tracing::info_span!(
                "firing",
                job.id = %firing.job_id,
                job.file = tracing::field::Empty,
                slot = %firing.slot
            );
            tokio::spawn(async move { fire(&server, firing).await }.instrument(span));
        }
    };
    let timer = tokio::spawn(server.scheduler.clone().run(fire, stopped(stop_rx.clone())));
    let queue = tokio::spawn(queue_loop(server.clone(), stop_rx.clone()));

    shutdown(&server, &mut stop_signals, stop_tx, [timer, queue, reconciler]).await;
    registry.shutdown().await;
    server.notifier.flush(Duration::from_secs(5)).await;
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}

/// The first signal stops new runs and waits for running ones up to the grace period; a
/// second signal, or the end of the grace, marks what is left `interrupted` and returns.
async fn shutdown(
    server: &Server,
    signals: &mut StopSignals,
    stop: tokio_watch::Sender<bool>,
    tasks: [tokio::task::JoinHandle<()>; 3],
) {
    signals.next().await;
    tracing::info!(grace_s = SHUTDOWN_GRACE.as_secs(), "shutting down: no new runs start");
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let running = server.in_flight.load(Ordering::SeqCst);
    if running > 0 {
        tracing::info!(
            runs = running,
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "waiting for running runs"
        );
    }
    let drained = async {
        while server.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = drained => tracing::info!("running runs finished"),
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("grace period over"),
        _ = signals.next() => tracing::warn!("second signal: stopping now"),
    }
    match server.store.interrupt_own_runs().await {
        Ok(runs) if runs.is_empty() => {}
        Ok(runs) => {
            tracing::warn!(runs = runs.len(), "unfinished runs marked interrupted");
            log_reaped(&runs, "curator stopped before the run ended");
        }
        Err(e) => tracing::error!(error = %e, "cannot mark unfinished runs interrupted"),
    }
}

/// Caps glibc's malloc arenas at two. By default every worker thread may get its own, and a
/// server that stays up for months keeps each one's high-water mark: many arenas, much
/// resident memory that is neither used nor returned.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called once, at start-up.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands memory freed after a pass back to the system. A pass over 100,000 files builds a
/// plan of hundreds of megabytes that is gone a moment later, but glibc keeps freed heap
/// mapped, so without this the server would stay at its peak for its whole life.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own heap to the kernel; it
    // touches no memory the program can still reach.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Holds a lock file beside an SQLite database for the server's lifetime: SQLite serves one
/// server at a time, and a second one would mark the first one's runs and claims as its own.
/// PostgreSQL takes no lock file: replicas share it, and the database keeps them apart.
pub(crate) fn lock_database(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Ok(None);
    };
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(None);
    }
    let lock_path = format!("{path}.serve-lock");
    if let Some(parent) = std::path::Path::new(&lock_path).parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file `{lock_path}`"))?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::{Seek, Write};
            file.set_len(0).ok();
            file.seek(std::io::SeekFrom::Start(0)).ok();
            let _ = writeln!(file, "{}", std::process::id());
            Ok(Some(file))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            anyhow::bail!(
                "another `curator serve` (pid {}) is using the database `{path}`: SQLite serves \
                 one server at a time",
                holder.trim()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock `{lock_path}`"))
        }
    }
}

/// One scheduled firing: claim the slot (with its run), then run the job's current version.
/// Every replica fires every slot; the one whose claim lands runs it.
async fn fire(server: &Arc<Server>, firing: Firing) {
    // The timer's lateness, before any database work: what the schedule promised.
    let late_ms = (server.scheduler.now() - firing.due).num_milliseconds();
    let job = match server.store.job(&firing.job_id).await {
        Ok(job) => job,
        Err(e) => return tracing::warn!(error = %e, "fired job is gone"),
    };
    tracing::Span::current().record("job.file", job.source_file.as_str());
    let trigger = Trigger::Schedule.as_str();
    let run = match server.store.claim_slot(&job.id, firing.slot, trigger, None).await {
        Ok(Some(run)) => run,
        Ok(None) => return tracing::debug!("slot already claimed"),
        Err(e) => return tracing::error!(error = %e, "cannot claim the slot"),
    };
    metrics::histogram!("curator_scheduler_lateness_seconds").record(late_ms.max(0) as f64 / 1e3);
    tracing::info!(run.id = run.id, late_ms, "job fired");
    server.spawn_run(job, run);
}

/// After downtime: a job that missed slots runs once (`catchUp: true`) or gets a `skipped`
/// record saying what it missed. Slots are counted from the job's last claimed slot, or from
/// when the job was created if it never fired.
async fn catch_up(server: &Arc<Server>) {
    let (jobs, last) = match (server.store.schedules().await, server.store.last_slots().await) {
        (Ok(jobs), Ok(last)) => (jobs, last),
        (Err(e), _) | (_, Err(e)) => {
            return tracing::error!(error = %e, "cannot check for missed firings");
        }
    };
    let now = server.scheduler.now();
    for job in jobs.into_iter().filter(|j| j.enabled) {
        let Ok(timing) = Timing::new(&job.id, &job.schedule, server.config.timezone) else {
            continue;
        };
        let since = last.get(&job.id).copied().unwrap_or(job.created_at).max(job.created_at);
        let Some((slot, count)) = timing.missed(since, now) else { continue };
        let catch_up = job.schedule.catch_up;
        let reason = (!catch_up).then(|| {
            format!(
                "missed {count} slot(s) while curator was down, latest {slot}; catchUp is false"
            )
        });
        // Loaded before the claim: a claimed slot whose run cannot start would be lost.
        let full = match server.store.job(&job.id).await {
            Ok(full) => full,
            Err(e) => {
                tracing::error!(job.id = %job.id, error = %e, "cannot load the job to catch up");
                continue;
            }
        };
        let trigger = Trigger::CatchUp.as_str();
        let run = match server.store.claim_slot(&job.id, slot, trigger, reason.as_deref()).await {
            Ok(Some(run)) => run,
            // Another replica caught up on it, or fired it, first.
            Ok(None) => continue,
            Err(e) => {
                let file = &full.source_file;
                tracing::error!(job.id = %job.id, job.file = %file, error = %e, "cannot claim the missed slot");
                continue;
            }
        };
        let file = full.source_file.clone();
        if catch_up {
            tracing::info!(job.id = %job.id, job.file = %file, missed = count, latest = %slot, "missed slots while down: running once to catch up");
            server.spawn_run(full, run);
        } else {
            tracing::info!(job.id = %job.id, job.file = %file, missed = count, latest = %slot, "missed slots while down: not catching up");
        }
    }
}

/// One reconcile pass followed by a scheduler sync, then one log line with the counts: when it
/// is written, the scheduler already has the new schedules. Errors are logged, not fatal: the
/// server keeps its last good state. Files that became invalid since the last pass are
/// announced to the webhooks once.
async fn pass(server: &Server, invalid: &mut BTreeSet<String>) {
    let started = std::time::Instant::now();
    let plan = match reconcile::reconcile(&server.store, &server.config, Options::default()).await {
        Ok(plan) => Some(plan),
        Err(e) => {
            tracing::error!(error = %e, "reconcile failed");
            None
        }
    };
    metrics::histogram!("curator_reconcile_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    match server.store.schedules().await {
        Ok(jobs) => {
            let enabled = jobs.iter().filter(|j| j.enabled).count();
            metrics::gauge!("curator_jobs", "enabled" => "true").set(enabled as f64);
            metrics::gauge!("curator_jobs", "enabled" => "false")
                .set((jobs.len() - enabled) as f64);
            server.scheduler.sync(&jobs, server.config.timezone, server.scheduler.now())
        }
        Err(e) => tracing::error!(error = %e, "cannot read jobs for the scheduler"),
    }
    let result = match &plan {
        None => "failed",
        Some(p) if p.refused.is_some() => "refused",
        Some(p) if p.has_errors() => "errors",
        Some(_) => "applied",
    };
    metrics::counter!("curator_reconcile_passes_total", "result" => result).increment(1);
    let Some(plan) = plan else { return };
    for d in plan.report.diagnostics() {
        tracing::warn!(job.file = %d.file, "{d}");
    }
    for p in plan.update.iter().filter(|p| p.drift) {
        let fields: Vec<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
        tracing::warn!(
            job.id = %p.id,
            job.file = %p.file,
            fields = ?fields,
            "drift: a job row changed outside curator was put back"
        );
    }
    if let Some(reason) = plan.refused.as_ref().filter(|r| r.guard == Guard::OlderCommit) {
        // Another replica pulled first; this one applies once its checkout catches up.
        tracing::warn!(reason = %reason, "reconcile held back: the database has newer jobs");
    } else if let Some(reason) = &plan.refused {
        // The server never overrides a guard: an operator applies such a plan by hand.
        let apply_with = match reason.guard {
            Guard::MassDelete => "curator reconcile --allow-mass-delete",
            _ => "curator reconcile --allow-empty",
        };
        tracing::error!(reason = %reason, apply_with, "reconcile refused: nothing applied");
    } else if let Some(error) = &plan.directory_error {
        tracing::error!(error = %error, "the jobs directory cannot be read");
    }
    let c = plan.counts();
    if !plan.applied {
        // The counts are the plan's, not what happened: say so, so no one reads them as done.
        tracing::info!(
            pending_create = c.create,
            pending_update = c.update,
            pending_delete = c.delete,
            scheduled = server.scheduler.len(),
            "reconcile pass applied nothing"
        );
    } else {
        tracing::info!(
            created = c.create,
            updated = c.update,
            deleted = c.delete,
            unchanged = c.unchanged,
            kept = c.kept,
            skipped = c.skipped,
            applied = plan.applied,
            scheduled = server.scheduler.len(),
            "reconciled"
        );
    }
    let now_invalid: BTreeSet<String> = plan
        .report
        .files
        .iter()
        .filter(|f| f.has_errors())
        .map(|f| f.file.display().to_string())
        .collect();
    for file in plan.report.files.iter().filter(|f| f.has_errors()) {
        let name = file.file.display().to_string();
        if !invalid.contains(&name) {
            let detail = json!({ "file": name, "diagnostics": file.diagnostics });
            server.notifier.send(EventKind::FileInvalid, detail);
        }
    }
    metrics::gauge!("curator_reconcile_invalid_files").set(now_invalid.len() as f64);
    *invalid = now_invalid;
    drop(plan);
    release_freed_memory();
}

async fn reconcile_loop(
    server: Arc<Server>,
    mut invalid: BTreeSet<String>,
    (mut watching, signal_tx, mut signal): (Option<Watching>, mpsc::Sender<()>, mpsc::Receiver<()>),
    mut hangup: tokio::signal::unix::Signal,
    mut stop: tokio_watch::Receiver<bool>,
) {
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.tick().await;
    loop {
        tokio::select! {
            Some(()) = signal.recv() => {
                settle(&mut signal).await;
                tracing::debug!("jobs directory changed");
            }
            _ = hangup.recv() => tracing::info!("SIGHUP: reconciling"),
            _ = resync.tick() => tracing::debug!("periodic resync"),
            _ = stop.changed() => return,
        }
        pass(&server, &mut invalid).await;
        // A deleted and recreated directory is a new inode that the old watch does not see,
        // and a repository made or removed since has a reflog other than the one it watches.
        let identity = dir_identity(&server.config.jobs_dir);
        let stale = match &watching {
            Some((watch, id)) => *id != identity || watch.misses_commits(&server.config.jobs_dir),
            None => true,
        };
        if stale {
            watching = start_watch(&server.config, signal_tx.clone());
            // What changed between the pass and the new watch raised no event: one more pass
            // looks.
            if watching.is_some() {
                let _ = signal_tx.try_send(());
            }
        }
    }
}

/// How long the watcher must stay quiet before a pass starts, and the longest a pass waits for
/// that. The debouncer times each file on its own, so a thousand files written over a second
/// arrive as a signal at every one of its ticks (a quarter of its window); without settling,
/// each would be a pass.
const SETTLE: Duration = Duration::from_millis(100);
const SETTLE_AT_MOST: Duration = Duration::from_secs(1);

/// Waits for the watcher's signals to pause (see [`SETTLE`]).
async fn settle(signal: &mut mpsc::Receiver<()>) {
    let deadline = tokio::time::Instant::now() + SETTLE_AT_MOST;
    loop {
        let quiet = (tokio::time::Instant::now() + SETTLE).min(deadline);
        match tokio::time::timeout_at(quiet, signal.recv()).await {
            Ok(Some(())) if tokio::time::Instant::now() < deadline => {}
            _ => return,
        }
    }
}

/// A live watch and the inode of the directory it watches.
type Watching = (watch::Watch, Option<u64>);

fn start_watch(config: &Config, signal: mpsc::Sender<()>) -> Option<Watching> {
    match watch::watch(&config.jobs_dir, signal) {
        Ok(w) => Some((w, dir_identity(&config.jobs_dir))),
        Err(e) => {
            tracing::warn!(dir = %config.jobs_dir.display(), error = %e, "cannot watch the jobs directory; relying on the periodic resync");
            None
        }
    }
}

fn dir_identity(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| m.ino())
}

/// Runs the runs queued by `curator run` without `--wait`.
async fn queue_loop(server: Arc<Server>, mut stop: tokio_watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(QUEUE_POLL_EVERY);
    loop {
        let sweep = tokio::select! {
            _ = tick.tick() => true,
            _ = server.worker_freed.notified() => false,
            _ = server.queued.notified() => false,
            _ = stop.changed() => return,
        };
        if sweep {
            match server.store.reap_expired_runs().await {
                Ok(reaped) => {
                    log_reaped(&reaped, "the process running it stopped renewing its lease")
                }
                Err(e) => tracing::error!(error = %e, "cannot sweep runs with expired leases"),
            }
        }
        while server.queue_workers.load(Ordering::SeqCst) < server.config.workers {
            let claimed = match server.store.claim_queued_run().await {
                Ok(Some(run)) if run.status == "running" => run,
                Ok(Some(run)) => {
                    let (job_id, reason) = (&run.job_id, OVERLAP_REASON);
                    tracing::warn!(job.id = %job_id, run.id = run.id, reason, "queued run skipped");
                    continue;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the run queue");
                    break;
                }
            };
            let job = match server.store.job(&claimed.job_id).await {
                Ok(job) => job,
                Err(e) => {
                    let reason = e.to_string();
                    let _ = server
                        .store
                        .finish_run(claimed.id, "failed", &json!({}), Some(&reason))
                        .await;
                    continue;
                }
            };
            let worker = server.clone();
            worker.in_flight.fetch_add(1, Ordering::SeqCst);
            worker.queue_workers.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Err(e) = worker.runner.run_claimed(&job, claimed.id).await {
                    tracing::error!(job.id = %job.id, job.file = %job.source_file, error = %e, "queued run could not be recorded");
                }
                worker.queue_workers.fetch_sub(1, Ordering::SeqCst);
                worker.in_flight.fetch_sub(1, Ordering::SeqCst);
                worker.worker_freed.notify_one();
            });
        }
    }
}

async fn stopped(mut stop: tokio_watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn hangup_signal() -> tokio::signal::unix::Signal {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .expect("a SIGHUP handler can be installed")
}

/// SIGINT and SIGTERM, either of which asks the server to stop.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> StopSignals {
        use tokio::signal::unix::{SignalKind, signal};
        StopSignals {
            interrupt: signal(SignalKind::interrupt()).expect("a SIGINT handler can be installed"),
            terminate: signal(SignalKind::terminate()).expect("a SIGTERM handler can be installed"),
        }
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
