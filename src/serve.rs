//! `curator serve`: one process with the reconciler, the watcher, the scheduler, the run
//! workers and the HTTP listener. Start-up reconciles once; after that a file change, SIGHUP
//! or the periodic resync triggers a pass, and each pass re-syncs the scheduler.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use chrono::Utc;
use tokio::sync::{mpsc, watch as tokio_watch};

use crate::catalog::file::CatalogFile;
use crate::config::Config;
use crate::provider::Registry;
use crate::reconcile::{self, Options};
use crate::run::{Runner, Trigger};
use crate::schedule::scheduler::{Firing, Scheduler};
use crate::store::{ImportMode, Store};
use crate::watch;

/// A full rescan even when no event came: the watcher's backstop.
const RESYNC_EVERY: Duration = Duration::from_secs(300);
/// How often the run queue (runs requested by `curator run` without `--wait`) is checked.
const QUEUE_POLL_EVERY: Duration = Duration::from_secs(2);
/// How long shutdown waits for running runs before it stops anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = Store::open(&config.database).await?;
    let interrupted = store.interrupt_orphaned_runs().await?;
    if interrupted > 0 {
        tracing::warn!(
            runs = interrupted,
            "runs left running by a stopped process marked interrupted"
        );
    }
    for path in &config.catalog {
        let catalog = CatalogFile::read(path)?;
        let counts = store.import_catalog(&catalog, ImportMode::Seed).await?;
        tracing::info!(file = %path.display(), libraries = counts.libraries, series = counts.series, books = counts.books, "catalog seeded");
    }

    let registry = Arc::new(Registry::new(&config.providers));
    let runner = Runner::new(store.clone(), registry.clone());
    let scheduler = Scheduler::new();
    let (stop_tx, stop_rx) = tokio_watch::channel(false);
    let in_flight = Arc::new(AtomicUsize::new(0));

    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "listening");

    // The watch starts before the first pass, so a file saved during that pass is not missed.
    let (signal_tx, signal_rx) = mpsc::channel(1);
    let watching = start_watch(&config, signal_tx.clone());
    pass(&store, &config, &scheduler).await;
    let reconciler = tokio::spawn(reconcile_loop(
        store.clone(),
        config.clone(),
        scheduler.clone(),
        (watching, signal_tx, signal_rx),
        stop_rx.clone(),
    ));

    let fire = {
        let (runner, store, in_flight) = (runner.clone(), store.clone(), in_flight.clone());
        move |firing: Firing| {
            let (runner, store, in_flight) = (runner.clone(), store.clone(), in_flight.clone());
            in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                match store.job(&firing.job_id).await {
                    Ok(job) => {
                        tracing::info!(job.id = %job.id, slot = %firing.slot, "job fired");
                        if let Err(e) = runner.run(&job, Trigger::Schedule, Some(firing.slot)).await
                        {
                            tracing::error!(job.id = %job.id, error = %e, "run could not be recorded");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job.id = %firing.job_id, error = %e, "fired job is gone")
                    }
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    };
    let timer = tokio::spawn(scheduler.clone().run(fire, stopped(stop_rx.clone())));
    let queue = tokio::spawn(queue_loop(runner.clone(), in_flight.clone(), stop_rx.clone()));

    let app = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let server = axum::serve(listener, app).with_graceful_shutdown(stopped(stop_rx.clone()));
    let http = tokio::spawn(async move { server.await });

    shutdown_signal().await;
    tracing::info!("shutting down: no new runs start");
    let _ = stop_tx.send(true);
    let _ = tokio::join!(timer, queue, reconciler);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if in_flight.load(Ordering::SeqCst) > 0 {
        tracing::warn!(
            runs = in_flight.load(Ordering::SeqCst),
            "runs still going at the end of the grace period; they will be marked interrupted at the next start"
        );
    }
    registry.shutdown().await;
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}

/// One reconcile pass, logged, followed by a scheduler sync. Errors are logged, not fatal:
/// the server keeps its last good state.
async fn pass(store: &Store, config: &Config, scheduler: &Scheduler) {
    match reconcile::reconcile(store, config, Options::default()).await {
        Ok(plan) => {
            for d in plan.report.diagnostics() {
                tracing::warn!(job.file = %d.file, "{d}");
            }
            for p in plan.update.iter().filter(|p| p.drift) {
                let fields: Vec<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
                tracing::warn!(
                    job.id = %p.id,
                    fields = ?fields,
                    "drift: a job row changed outside curator was put back"
                );
            }
            if let Some(reason) = &plan.refused {
                tracing::error!(reason = %reason, "reconcile refused: nothing applied");
            } else if let Some(error) = &plan.directory_error {
                tracing::error!(error = %error, "the jobs directory cannot be read");
            }
            let c = plan.counts();
            tracing::info!(
                created = c.create,
                updated = c.update,
                deleted = c.delete,
                unchanged = c.unchanged,
                kept = c.kept,
                skipped = c.skipped,
                applied = plan.applied,
                "reconciled"
            );
        }
        Err(e) => tracing::error!(error = %e, "reconcile failed"),
    }
    match store.jobs().await {
        Ok(jobs) => scheduler.sync(&jobs, config.timezone, Utc::now()),
        Err(e) => tracing::error!(error = %e, "cannot read jobs for the scheduler"),
    }
}

async fn reconcile_loop(
    store: Store,
    config: Config,
    scheduler: Arc<Scheduler>,
    (mut watching, signal_tx, mut signal): (Option<Watching>, mpsc::Sender<()>, mpsc::Receiver<()>),
    mut stop: tokio_watch::Receiver<bool>,
) {
    let mut hangup = hangup_signal();
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.tick().await;
    loop {
        tokio::select! {
            Some(()) = signal.recv() => tracing::debug!("jobs directory changed"),
            _ = hangup.recv() => tracing::info!("SIGHUP: reconciling"),
            _ = resync.tick() => tracing::debug!("periodic resync"),
            _ = stop.changed() => return,
        }
        pass(&store, &config, &scheduler).await;
        // A deleted and recreated directory is a new inode that the old watch does not see.
        let identity = dir_identity(&config.jobs_dir);
        if watching.as_ref().map(|(_, id)| *id) != Some(identity) {
            watching = start_watch(&config, signal_tx.clone());
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
async fn queue_loop(
    runner: Arc<Runner>,
    in_flight: Arc<AtomicUsize>,
    mut stop: tokio_watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(QUEUE_POLL_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        loop {
            let claimed = match runner.store().claim_queued_run().await {
                Ok(Some(run)) => run,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the run queue");
                    break;
                }
            };
            let job = match runner.store().job(&claimed.job_id).await {
                Ok(job) => job,
                Err(e) => {
                    let reason = e.to_string();
                    let _ = runner
                        .store()
                        .finish_run(claimed.id, "failed", &serde_json::json!({}), Some(&reason))
                        .await;
                    continue;
                }
            };
            let (runner, in_flight) = (runner.clone(), in_flight.clone());
            in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Err(e) = runner.run_claimed(&job, claimed.id).await {
                    tracing::error!(job.id = %job.id, error = %e, "queued run could not be recorded");
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
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

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
