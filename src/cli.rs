//! The command line: argument definitions and one function per subcommand. Each returns an
//! [`Exit`]; `main` maps errors and exits in one place.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::catalog::file::CatalogFile;
use crate::config::{Config, LogFormat, Overrides};
use crate::provider::Registry;
use crate::reconcile::{self, Options};
use crate::run::{Runner, Trigger};
use crate::schedule::{self, Timing};
use crate::store::{CancelOutcome, GitState, ImportMode, JobRow, RunRow, Store, StoreError};
use crate::validate::{self, Context, spelled_out};

pub mod reference;

/// Exit codes: 0 fine, 1 errors found, 2 usage or I/O error, 3 changes pending (dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Invalid = 1,
    Usage = 2,
    Pending = 3,
}

/// The version line: the release and the commit it was built from.
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CURATOR_COMMIT"), ")");

#[derive(Debug, Parser)]
#[command(
    name = "curator",
    version = VERSION,
    about = "Scheduled metadata-refresh jobs for a library, declared as YAML files in jobs.d/"
)]
pub struct Cli {
    /// The config file [default: ./curator.yaml when it exists]
    #[arg(long, global = true, env = "CURATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: the config's `logFormat`, else human]
    #[arg(long, global = true, value_enum, env = "CURATOR_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check job files: structure by the JSON Schema, then meaning.
    Validate {
        /// Files or directories [default: the config's jobs directory]
        paths: Vec<PathBuf>,
        /// Skip the checks that need a config (provider, library).
        #[arg(long)]
        no_config: bool,
        /// How to print the report: text for people, json for tools, github for annotations.
        #[arg(long, value_enum, default_value = "text")]
        output: validate::Output,
    },
    /// Print the job file's JSON Schema.
    Schema,
    /// Sync jobs.d/ into the database once, or show the plan with --dry-run.
    Reconcile {
        /// Show the plan without applying it; exit 3 when it has changes.
        #[arg(long)]
        dry_run: bool,
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Let an empty or missing jobs directory delete every job.
        #[arg(long)]
        allow_empty: bool,
        /// Let the plan delete more than half of the jobs.
        #[arg(long)]
        allow_mass_delete: bool,
        /// Apply the plan even though the database was last reconciled from a newer commit
        /// (after the branch was deliberately moved back).
        #[arg(long)]
        allow_older_commit: bool,
    },
    /// Run the server: watcher, scheduler, workers and HTTP.
    Serve,
    /// List or show jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Run a job now.
    Run {
        id: String,
        /// Run it in this process and wait for the end, instead of queueing it for the server.
        #[arg(long)]
        wait: bool,
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Show what a run of the job would change on a few entries, writing nothing.
    Preview {
        id: String,
        /// How many planned entries to fetch, from 1 to 100.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
        sample: u16,
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// List, show or cancel runs.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Import or export the catalog.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Create a working setup in DIR: config, an example job, its schema, offline metadata, CI.
    Init {
        /// The folder to set up; created when missing.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Check the config, or show the settings in effect.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Back up or restore the database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Exit 0 when a running server answers its health check, 1 otherwise.
    Healthcheck {
        /// The URL to ask [default: /healthz on the config's `listen` address]
        #[arg(long)]
        url: Option<String>,
        /// How long to wait for the answer, like `5s`.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page, or write one page per command into a folder.
    Man {
        /// Write `curator.1`, `curator-validate.1`, ... into this folder instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the next fire times of a cron expression.
    Schedule {
        cron: String,
        /// An IANA zone [default: the config's timezone]
        #[arg(long)]
        timezone: Option<String>,
        /// Start from this RFC 3339 instant [default: now]
        #[arg(long)]
        from: Option<String>,
        /// How many fire times, from 1 to 1000.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
        count: u16,
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Every job with its schedule, next fire time and last run.
    List {
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// One job with its spec, source and recent runs.
    Show {
        id: String,
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs, newest first.
    List {
        #[arg(long)]
        job: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// One run with its per-entry outcomes.
    Show {
        run: i64,
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Cancel a queued or running run: no new provider calls, the calls in flight finish.
    Cancel { run: i64 },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Upsert libraries, series, books, IDs and locks from a YAML or JSON file.
    Import { file: PathBuf },
    /// Write the catalog out in the import format.
    Export {
        #[arg(long)]
        library: Option<String>,
        #[arg(long, value_enum, default_value = "yaml")]
        format: ExportFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config alone: its keys, that providers can start, that the database opens.
    Check,
    /// Print the settings in effect after the file and `CURATOR_*` variables, secrets masked.
    Show {
        /// How to print the answer: text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Write a consistent copy of the SQLite database to FILE, even while the server runs.
    Backup { file: PathBuf },
    /// Replace the SQLite database with FILE, a backup; refused while a server uses it.
    Restore { file: PathBuf },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Yaml,
    Json,
}

/// Runs one subcommand.
pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let overrides = Overrides::from_env();
    match cli.command {
        Command::Schema => {
            print!("{}", crate::spec::schema_json());
            Ok(Exit::Ok)
        }
        Command::Init { dir } => crate::init::init(&dir),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            // Written whole, so a closed stdout is an error to handle rather than a panic.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "curator", &mut script);
            std::io::stdout().write_all(&script)?;
            Ok(Exit::Ok)
        }
        Command::Man { dir } => man_cmd(dir.as_deref()),
        Command::Config { command: ConfigCommand::Check } => {
            config_check(cli.config.as_deref(), &overrides).await
        }
        Command::Config { command: ConfigCommand::Show { output } } => {
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            let value = crate::config::show::effective(&config, &overrides, cli.log_format);
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&value)?),
                Output::Text => print!("{}", crate::config::show::render_text(&value)),
            }
            Ok(Exit::Ok)
        }
        Command::Validate { paths, no_config, output } => {
            validate_cmd(cli.config, &overrides, paths, no_config, output).await
        }
        Command::Schedule { cron, timezone, from, count, output } => {
            // The config only supplies the default zone; with `--timezone` none is read.
            let zone = match timezone {
                Some(name) => {
                    if let schedule::zones::ZoneName::Deprecated { canonical, .. } =
                        schedule::zones::classify(&name)
                    {
                        eprintln!("warning: `{name}` is a deprecated alias of `{canonical}`");
                    }
                    schedule::parse_zone(&name).map_err(|e| anyhow::anyhow!(e))?
                }
                None => Config::load(cli.config.as_deref(), &overrides)?.timezone,
            };
            schedule_cmd(zone, &cron, from, count, output)
        }
        command => {
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            match command {
                Command::Reconcile {
                    dry_run,
                    output,
                    allow_empty,
                    allow_mass_delete,
                    allow_older_commit,
                } => {
                    let options = Options {
                        dry_run,
                        allow_empty,
                        allow_mass_delete,
                        allow_older_commit,
                        now: None,
                    };
                    reconcile_cmd(&config, options, output).await
                }
                Command::Serve => crate::serve::serve(config).await.map(|()| Exit::Ok),
                Command::Jobs { command: JobsCommand::List { output } } => {
                    jobs_list(&config, output).await
                }
                Command::Jobs { command: JobsCommand::Show { id, output } } => {
                    jobs_show(&config, &id, output).await
                }
                Command::Run { id, wait, output } => run_cmd(&config, &id, wait, output).await,
                Command::Runs { command: RunsCommand::List { job, limit, output } } => {
                    runs_list(&config, job.as_deref(), limit, output).await
                }
                Command::Runs { command: RunsCommand::Show { run, output } } => {
                    runs_show(&config, run, output).await
                }
                Command::Runs { command: RunsCommand::Cancel { run } } => {
                    runs_cancel(&config, run).await
                }
                Command::Preview { id, sample, output } => {
                    preview_cmd(&config, &id, usize::from(sample), output).await
                }
                Command::Catalog { command: CatalogCommand::Import { file } } => {
                    catalog_import(&config, &file).await
                }
                Command::Catalog { command: CatalogCommand::Export { library, format } } => {
                    catalog_export(&config, library.as_deref(), format).await
                }
                Command::Db { command: DbCommand::Backup { file } } => {
                    let done = crate::store::backup::backup(&config.database, &file).await?;
                    println!("backed up to {} ({} bytes)", done.file.display(), done.bytes);
                    Ok(Exit::Ok)
                }
                Command::Db { command: DbCommand::Restore { file } } => {
                    db_restore(&config, &file).await
                }
                Command::Healthcheck { url, timeout } => {
                    healthcheck_cmd(&config, url.as_deref(), timeout).await
                }
                Command::Schema
                | Command::Validate { .. }
                | Command::Schedule { .. }
                | Command::Init { .. }
                | Command::Completions { .. }
                | Command::Man { .. }
                | Command::Config { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

async fn validate_cmd(
    config_path: Option<PathBuf>,
    overrides: &Overrides,
    paths: Vec<PathBuf>,
    no_config: bool,
    output: validate::Output,
) -> anyhow::Result<Exit> {
    let config = if no_config {
        None
    } else if config_path.is_some() || PathBuf::from(crate::config::DEFAULT_CONFIG).is_file() {
        // A config that cannot be read is reported and exits 2 in `main`, as for every command.
        Some(Config::load(config_path.as_deref(), overrides)?)
    } else {
        None
    };
    // The library check needs the database; validate never creates one just to look.
    let (libraries, manifests) = match &config {
        Some(c) if database_exists(&c.database) => match Store::open(&c.database).await {
            Ok(store) => (store.library_ids().await.ok(), store.manifests().await.ok()),
            Err(_) => (None, None),
        },
        _ => (None, None),
    };
    let root =
        config.as_ref().map(|c| c.jobs_dir.clone()).unwrap_or_else(|| PathBuf::from("jobs.d"));
    let paths = if paths.is_empty() { vec![root.clone()] } else { paths };
    let ctx = Context {
        config: config.as_ref(),
        libraries: libraries.as_ref(),
        manifests: manifests.as_ref(),
    };
    let report = match validate::check_paths(&paths, &root, &ctx) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Usage);
        }
    };
    match output {
        // anstream drops the colour unless stdout is a terminal (and honours NO_COLOR).
        validate::Output::Text => {
            let _ = write!(anstream::stdout(), "{}", validate::render_text(&report, true));
        }
        other => print!("{}", validate::render(&report, other)),
    }
    let exit = if report.has_io_errors() {
        Exit::Usage
    } else if report.error_count() > 0 {
        Exit::Invalid
    } else {
        Exit::Ok
    };
    // The process ends next: freeing ten thousand files' reports one by one is wasted time.
    std::mem::forget(report);
    Ok(exit)
}

/// Whether the database is there to be read. A PostgreSQL database always is: its server
/// holds it, and curator never creates one.
fn database_exists(url: &str) -> bool {
    if matches!(crate::store::Backend::of(url), Ok(crate::store::Backend::Postgres)) {
        return true;
    }
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    std::path::Path::new(path).is_file()
}

async fn reconcile_cmd(config: &Config, options: Options, output: Output) -> anyhow::Result<Exit> {
    // A dry run writes nothing: without a database yet, it plans against a scratch one that
    // starts as a first real run would, and removes it afterwards.
    let scratch = (options.dry_run && !database_exists(&config.database))
        .then(|| std::env::temp_dir().join(format!("curator-dry-run-{}.db", std::process::id())));
    let url = match &scratch {
        Some(path) => format!("sqlite://{}", path.display()),
        None => config.database.clone(),
    };
    let store = Store::open(&url).await?;
    // As `serve` does at start-up, so jobs for the config's catalog find their libraries; a dry
    // run against the real database instead counts the catalog's libraries in (see reconcile).
    if !options.dry_run || scratch.is_some() {
        store.seed_catalogs(&config.catalog, &config.database).await?;
    }
    let plan = reconcile::reconcile(&store, config, options).await;
    if let Some(path) = &scratch {
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    let plan = plan?;
    match output {
        Output::Text => {
            // Colour is for a person at a terminal, and never against NO_COLOR.
            let color = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let style = reconcile::Style { color };
            print!("{}", reconcile::render_text(&plan, options.dry_run, style))
        }
        Output::Json => print!("{}", reconcile::render_json(&plan, options.dry_run)),
    }
    Ok(if plan.has_errors() {
        Exit::Invalid
    } else if options.dry_run && plan.has_changes() {
        Exit::Pending
    } else {
        Exit::Ok
    })
}

/// A job's effective zone, next fire time and schedule in words.
fn timing_of(job: &JobRow, config: &Config) -> Option<Timing> {
    Timing::new(&job.id, &job.spec.schedule, config.timezone).ok()
}

fn next_fire(job: &JobRow, config: &Config) -> Option<DateTime<Utc>> {
    let timing = timing_of(job, config)?;
    job.enabled.then(|| timing.next_slot(Utc::now()).map(|s| timing.fire_time(s))).flatten()
}

async fn jobs_list(config: &Config, output: Output) -> anyhow::Result<Exit> {
    let store = Store::open(&config.database).await?;
    let jobs = store.jobs().await?;
    let last = store.last_runs().await?;
    let invalid = invalid_files(&store, config).await?;
    if output == Output::Json {
        let list: Vec<Value> = jobs
            .iter()
            .map(|j| {
                let timing = timing_of(j, config);
                json!({
                    "id": j.id, "name": j.name, "library": j.library_id, "provider": j.provider,
                    "enabled": j.enabled, "cron": j.spec.schedule.cron,
                    "timezone": timing.as_ref().map(|t| t.zone.name()),
                    "scope": j.spec.scope.as_str(),
                    "nextFireAt": next_fire(j, config),
                    "sourceFile": j.source_file,
                    "git": j.git,
                    "fileInvalid": invalid.contains_key(&j.source_file),
                    "lastRun": last.get(&j.id).map(|r| json!({"id": r.id, "status": r.status, "finishedAt": r.finished_at})),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(Exit::Ok);
    }
    let mut rows = vec![
        ["ID", "LIBRARY", "ENABLED", "SCHEDULE", "NEXT RUN", "PROVIDER", "SCOPE", "LAST RUN"]
            .map(String::from)
            .to_vec(),
    ];
    for job in &jobs {
        let timing = timing_of(job, config);
        let zone = timing.as_ref().map_or(config.timezone, |t| t.zone);
        let next = match next_fire(job, config) {
            Some(t) => {
                format!("{} {}", t.with_timezone(&zone).format("%Y-%m-%d %H:%M"), zone.name())
            }
            None if !job.enabled => "disabled".into(),
            None => "never".into(),
        };
        let last_run = last.get(&job.id).map_or("-".into(), |r| format!("#{} {}", r.id, r.status));
        rows.push(vec![
            job.id.clone(),
            job.library_id.clone(),
            if job.enabled { "yes".into() } else { "no".into() },
            job.spec.schedule.cron.clone(),
            next,
            job.provider.clone(),
            job.spec.scope.as_str().into(),
            last_run,
        ]);
    }
    print!("{}", spelled_out(&table(&rows)));
    if jobs.is_empty() {
        println!("no jobs: run `curator reconcile` (or start `curator serve`) to load jobs.d/");
    }
    let stale: BTreeSet<&str> = jobs
        .iter()
        .filter(|j| invalid.contains_key(&j.source_file))
        .map(|j| j.source_file.as_str())
        .collect();
    for file in stale {
        eprintln!(
            "warning: {} has errors since the last pass; its jobs keep their last good version \
             (`curator validate` shows why)",
            config.jobs_dir.join(file).display()
        );
    }
    Ok(Exit::Ok)
}

async fn jobs_show(config: &Config, id: &str, output: Output) -> anyhow::Result<Exit> {
    let store = Store::open(&config.database).await?;
    let runs = store.runs(Some(id), 10).await?;
    let job = match store.job(id).await {
        Ok(job) => job,
        Err(StoreError::NotFound { .. }) if runs.iter().any(|r| r.job_deleted_at.is_some()) => {
            bail!("job `{id}` was deleted; its runs are kept: `curator runs list --job {id}`")
        }
        Err(StoreError::NotFound { .. }) => return Err(missing_job(&store, id).await),
        Err(e) => return Err(e.into()),
    };
    let file_errors = invalid_files(&store, config).await?.remove(&job.source_file);
    let timing = timing_of(&job, config);
    let fires: Vec<DateTime<Utc>> = match &timing {
        Some(t) if job.enabled => {
            t.next_slots(Utc::now(), 3).into_iter().map(|s| t.fire_time(s)).collect()
        }
        _ => Vec::new(),
    };
    if output == Output::Json {
        let value = json!({
            "job": job,
            "timezone": timing.as_ref().map(|t| t.zone.name()),
            "jitterMs": timing.as_ref().map(|t| t.jitter.as_millis() as u64),
            "nextFireTimes": fires,
            "fileInvalid": file_errors.is_some(),
            "fileErrors": file_errors,
            "runs": runs,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(Exit::Ok);
    }
    let mut out = String::new();
    let _ = writeln!(out, "job:       {}", job.id);
    let _ = writeln!(out, "name:      {}", validate::one_line(&job.name));
    let _ = writeln!(
        out,
        "source:    {}:{}",
        config.jobs_dir.join(&job.source_file).display(),
        job.source_line
    );
    if let Some(errors) = &file_errors {
        let _ = writeln!(
            out,
            "invalid:   the file has errors since the last pass ({}); this job keeps its last \
             good version until they are fixed",
            first_error(errors)
        );
    }
    let _ = writeln!(out, "hash:      {}", job.content_hash);
    let _ = writeln!(out, "git:       {}", git_line(job.git.as_ref()));
    let _ = writeln!(out, "enabled:   {}", job.enabled);
    if let Some(t) = &timing {
        let _ = writeln!(
            out,
            "schedule:  {} ({}) in {}",
            job.spec.schedule.cron,
            t.describe(),
            t.zone.name()
        );
        if let Some(window) = &job.spec.schedule.jitter {
            let delay =
                humantime::format_duration(std::time::Duration::from_secs(t.jitter.as_secs()));
            let _ = writeln!(out, "jitter:    +{delay} (fixed for this job, within {window})");
        }
    }
    for f in &fires {
        let zone = timing.as_ref().map_or(config.timezone, |t| t.zone);
        let _ = writeln!(
            out,
            "next:      {} ({})",
            f.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z"),
            f.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    let _ = writeln!(out, "\n{}", job.source.trim_end());
    if !runs.is_empty() {
        let _ = writeln!(out, "\nrecent runs:");
        for run in &runs {
            let _ = writeln!(out, "  {}", run_line(run));
        }
    }
    print!("{}", spelled_out(&out));
    Ok(Exit::Ok)
}

/// The errors the last reconcile pass found in each job file, keyed by the file's path under
/// the jobs directory: a job from such a file keeps its last good version until it is fixed.
async fn invalid_files(
    store: &Store,
    config: &Config,
) -> anyhow::Result<HashMap<String, Vec<crate::reconcile::FileError>>> {
    let Some(status) = crate::reconcile::last_status(store).await? else {
        return Ok(HashMap::new());
    };
    Ok(status
        .invalid_files
        .into_iter()
        .map(|f| (crate::spec::relative_path(&config.jobs_dir, Path::new(&f.file)), f.errors))
        .collect())
}

/// "line 4, column 9: `schedule.cron`: …", for the first error of a file.
fn first_error(errors: &[crate::reconcile::FileError]) -> String {
    let more = match errors.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    errors.first().map_or_else(String::new, |e| {
        format!("line {}, column {}: {}{more}", e.line, e.column, e.message)
    })
}

/// The error and its causes, each said once: an error that already quotes its cause in its
/// own message (most driver errors do) does not have it repeated after it.
pub fn described(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

/// A job file's Git state in words.
fn git_line(git: Option<&GitState>) -> String {
    match git {
        None => "not in a Git work tree".into(),
        Some(GitState { commit: Some(commit), dirty: false }) => format!("commit {commit}"),
        Some(GitState { commit: Some(commit), dirty: true }) => {
            format!("commit {commit}, with uncommitted changes")
        }
        Some(GitState { commit: None, dirty: true }) => "never committed".into(),
        Some(GitState { commit: None, dirty: false }) => {
            "committed before the history this clone holds".into()
        }
    }
}

async fn run_cmd(config: &Config, id: &str, wait: bool, output: Output) -> anyhow::Result<Exit> {
    let store = Store::open(&config.database).await?.with_run_lease(config.run_lease);
    let job = known_job(&store, id).await?;
    if !wait {
        let run_id =
            store.create_run(&job.id, Trigger::Manual.as_str(), "queued", None, None).await?;
        // The server holds the database's lock; if this process can take it, none is running.
        if let Ok(Some(_free)) = crate::serve::lock_database(&config.database) {
            println!("queued run {run_id} of `{id}`");
            eprintln!(
                "warning: no `curator serve` is running for this database: start one to run it, \
                 or run the job here with `curator run {id} --wait`"
            );
        } else {
            println!(
                "queued run {run_id} of `{id}`: a running `curator serve` starts it within seconds"
            );
        }
        return Ok(Exit::Ok);
    }
    let registry = Arc::new(Registry::new(&config.providers));
    let notifier = crate::webhook::Notifier::start(config.webhooks.clone());
    let runner = Runner::new(store.clone(), registry.clone(), notifier.clone(), config.retention);
    let interrupt = tokio::spawn(cancel_on_interrupt(runner.clone(), job.id.clone()));
    let run_id = runner.run(&job, Trigger::Manual, None).await;
    interrupt.abort();
    registry.shutdown().await;
    notifier.flush(std::time::Duration::from_secs(30)).await;
    let run = store.run(run_id?).await?;
    show_run(&store, &run, output).await?;
    Ok(match run.status.as_str() {
        "succeeded" => Exit::Ok,
        _ => Exit::Invalid,
    })
}

/// The job `id`; when there is none, the error names the closest job ID there is.
async fn known_job(store: &Store, id: &str) -> anyhow::Result<JobRow> {
    match store.job(id).await {
        Err(StoreError::NotFound { .. }) => Err(missing_job(store, id).await),
        other => Ok(other?),
    }
}

/// "job `exampel` does not exist; did you mean `example`?"
async fn missing_job(store: &Store, id: &str) -> anyhow::Error {
    let jobs = match store.jobs().await {
        Ok(jobs) => jobs,
        Err(e) => return e.into(),
    };
    let hint = validate::suggest(id, jobs.iter().map(|j| j.id.as_str()));
    anyhow::anyhow!("job `{id}` does not exist{hint}")
}

/// Ctrl-C while `run --wait` runs: the first cancels the run (the calls in flight finish and
/// are written), the second leaves at once, and the run is marked `interrupted` later.
async fn cancel_on_interrupt(runner: Arc<Runner>, job_id: String) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    let running =
        runner.store().runs(Some(&job_id), 1).await.ok().and_then(|runs| runs.into_iter().next());
    if let Some(run) = running.filter(|r| r.status == "running") {
        eprintln!(
            "cancelling run {}: the calls in flight finish first (Ctrl-C again to leave now)",
            run.id
        );
        let _ = runner.cancel(run.id).await;
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

async fn runs_list(
    config: &Config,
    job: Option<&str>,
    limit: i64,
    output: Output,
) -> anyhow::Result<Exit> {
    let store = Store::open(&config.database).await?;
    let runs = store.runs(job, limit).await?;
    // A job without runs must exist; a deleted job's runs are still listed.
    if let Some(job) = job.filter(|_| runs.is_empty()) {
        known_job(&store, job).await?;
    }
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        for run in &runs {
            println!("{}", spelled_out(&run_line(run)));
        }
        if runs.is_empty() {
            println!("no runs");
        }
    }
    Ok(Exit::Ok)
}

async fn runs_show(config: &Config, id: i64, output: Output) -> anyhow::Result<Exit> {
    let store = Store::open(&config.database).await?;
    let run = store.run(id).await?;
    show_run(&store, &run, output).await?;
    Ok(Exit::Ok)
}

async fn runs_cancel(config: &Config, id: i64) -> anyhow::Result<Exit> {
    let store = Store::open(&config.database).await?;
    match store.request_cancel(id).await? {
        CancelOutcome::Cancelled => println!("run {id} cancelled before it started"),
        CancelOutcome::Requested => println!(
            "cancel requested for run {id}: it makes no new provider calls, lets the calls in \
             flight finish and ends `cancelled` (`curator runs show {id}`)"
        ),
        CancelOutcome::AlreadyEnded(status) if status == "cancelled" => {
            println!("run {id} is already cancelled")
        }
        CancelOutcome::AlreadyEnded(status) => {
            eprintln!("error: run {id} already ended `{status}`: there is nothing to cancel");
            return Ok(Exit::Invalid);
        }
    }
    Ok(Exit::Ok)
}

async fn preview_cmd(
    config: &Config,
    id: &str,
    sample: usize,
    output: Output,
) -> anyhow::Result<Exit> {
    let store = Store::open(&config.database).await?;
    let job = known_job(&store, id).await?;
    let registry = Arc::new(Registry::new(&config.providers));
    let notifier = crate::webhook::Notifier::start(Vec::new());
    let runner = Runner::new(store, registry.clone(), notifier, config.retention);
    let preview = runner.preview(&job, sample).await;
    registry.shutdown().await;
    let preview = match preview {
        Ok(preview) => preview,
        Err(e) => {
            eprintln!("error: cannot preview `{id}`: {e}");
            return Ok(Exit::Invalid);
        }
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&preview)?),
        Output::Text => print!("{}", spelled_out(&preview.render())),
    }
    Ok(Exit::Ok)
}

fn run_line(run: &RunRow) -> String {
    let when = run.started_at.unwrap_or(run.queued_at).format("%Y-%m-%d %H:%M:%S UTC");
    let error = run.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
    let deleted = if run.job_deleted_at.is_some() { " [job deleted]" } else { "" };
    format!("#{} {}{deleted} {} {} {}{error}", run.id, run.job_id, run.trigger, when, run.status)
}

async fn show_run(store: &Store, run: &RunRow, output: Output) -> anyhow::Result<()> {
    let entries = store.run_entries(run.id).await?;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&json!({ "run": run, "entries": entries }))?);
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(out, "run {}", run_line(run));
    if let Some(earlier) = run.resumes {
        let _ = writeln!(
            out,
            "continues run {earlier} (attempt {}): the entries it recorded are not repeated",
            run.attempt
        );
    }
    if let Value::Object(totals) = &run.totals {
        let parts: Vec<String> = totals.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "totals: {}", parts.join(", "));
    }
    for e in &entries {
        let title = e.title.as_deref().map(|t| format!(" \"{t}\"")).unwrap_or_default();
        let reason = e.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        let _ = writeln!(out, "  {:<9} {} {}{title}{reason}", e.outcome, e.kind.as_str(), e.entry);
        for c in &e.changes {
            let _ = writeln!(out, "      {}: {} -> {}", c.field, c.before, c.after);
        }
    }
    print!("{}", spelled_out(&out));
    Ok(())
}

async fn catalog_import(config: &Config, file: &std::path::Path) -> anyhow::Result<Exit> {
    let catalog = match CatalogFile::read(file) {
        Ok(catalog) => catalog,
        Err(e) => {
            eprint!("{}", e.lines());
            println!("{}", e.summary());
            return Ok(Exit::Invalid);
        }
    };
    let store = Store::open(&config.database).await?;
    let counts = store.import_catalog(&catalog, ImportMode::Upsert).await?;
    println!(
        "imported {}: {} libraries, {} series, {} books",
        file.display(),
        counts.libraries,
        counts.series,
        counts.books
    );
    Ok(Exit::Ok)
}

async fn catalog_export(
    config: &Config,
    library: Option<&str>,
    format: ExportFormat,
) -> anyhow::Result<Exit> {
    let store = Store::open(&config.database).await?;
    let catalog = store.export_catalog(library).await?;
    let value = serde_json::to_value(&catalog)?;
    match format {
        ExportFormat::Json => println!("{}", serde_json::to_string_pretty(&value)?),
        ExportFormat::Yaml => {
            let mut text = String::new();
            saphyr::YamlEmitter::new(&mut text)
                .dump(&crate::spec::yaml::to_yaml(&value))
                .context("cannot write YAML")?;
            println!("{}", text.trim_start_matches("---\n"));
        }
    }
    Ok(Exit::Ok)
}

fn schedule_cmd(
    zone: chrono_tz::Tz,
    cron: &str,
    from: Option<String>,
    count: u16,
    output: Output,
) -> anyhow::Result<Exit> {
    let start = match from {
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .with_context(|| {
                format!("`{text}` is not an RFC 3339 time (like 2026-12-03T04:00:00Z)")
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let cron_parsed = match schedule::parse_cron(cron) {
        Ok(c) => c,
        Err(e) => bail!("invalid cron expression `{cron}`: {e}"),
    };
    let timing = Timing { cron: cron_parsed, zone, jitter: std::time::Duration::ZERO };
    let slots = timing.next_slots(start, usize::from(count));
    if output == Output::Json {
        let list: Vec<Value> = slots
            .iter()
            .map(|t| json!({ "utc": t, "local": t.with_timezone(&zone).to_rfc3339() }))
            .collect();
        let value = json!({ "cron": cron, "timezone": zone.name(), "description": timing.describe(), "fireTimes": list });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{cron}: {} ({})", timing.describe(), zone.name());
        for t in &slots {
            println!(
                "{}  {}",
                t.format("%Y-%m-%d %H:%M:%S UTC"),
                t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z")
            );
        }
    }
    Ok(Exit::Ok)
}

async fn config_check(
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> anyhow::Result<Exit> {
    use crate::config::check::Severity;
    let config = match Config::load(path, overrides) {
        Ok(config) => config,
        Err(e) => {
            eprint!("{}", e.lines());
            println!("{}, 0 warning(s)", e.summary());
            return Ok(Exit::Usage);
        }
    };
    let problems = crate::config::check::check(&config).await;
    for problem in &problems {
        eprintln!("{problem}");
    }
    let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
    let source = config.source.as_ref().map_or("defaults".into(), |p| p.display().to_string());
    if errors > 0 {
        println!("{source}: {errors} error(s), {} warning(s)", problems.len() - errors);
        return Ok(Exit::Invalid);
    }
    println!(
        "{source}: ok ({} provider(s), database {}, {} warning(s))",
        config.providers.len(),
        crate::config::redact_url(&config.database),
        problems.len()
    );
    Ok(Exit::Ok)
}

async fn db_restore(config: &Config, file: &std::path::Path) -> anyhow::Result<Exit> {
    // Held until the new database is in place, so no server starts on a half-swapped one.
    let _lock = crate::serve::lock_database(&config.database)
        .context("cannot restore now; stop the server first")?;
    let done = crate::store::backup::restore(&config.database, file).await?;
    let db = crate::store::backup::sqlite_path(&config.database).unwrap_or_default();
    println!("restored {} from {}", db.display(), file.display());
    if done.from_version < done.to_version {
        println!("upgraded its schema from version {} to {}", done.from_version, done.to_version);
    }
    match (&done.previous, &done.unreadable) {
        (Some(previous), None) => {
            println!("the database it replaced is kept as {}", previous.display());
        }
        (Some(previous), Some(why)) => println!(
            "the database it replaced could not be read ({why}); its files are kept as they were, \
             as {}",
            previous.display()
        ),
        (None, _) => {}
    }
    Ok(Exit::Ok)
}

/// `curator(1)` on stdout, or a page per command in `dir`, all from the clap definitions.
fn man_cmd(dir: Option<&std::path::Path>) -> anyhow::Result<Exit> {
    let command = <Cli as clap::CommandFactory>::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
        return Ok(Exit::Ok);
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the folder `{}`", dir.display()))?;
    let mut written = Vec::new();
    man_pages(command, dir, &mut written)?;
    for path in &written {
        println!("{}", path.display());
    }
    Ok(Exit::Ok)
}

/// Writes the page of `command` and of each subcommand, named like `curator-db-backup.1`.
fn man_pages(
    command: clap::Command,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let name = command.get_display_name().unwrap_or(command.get_name()).to_string();
    let man = clap_mangen::Man::new(command.clone().name(name.clone()));
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    man.render(&mut page)?;
    std::fs::write(&path, page).with_context(|| format!("cannot write `{}`", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let sub = sub.clone().display_name(format!("{name}-{}", sub.get_name()));
        man_pages(sub, dir, written)?;
    }
    Ok(())
}

/// Asks a running server's `/healthz`; for container health checks, where no HTTP client is
/// installed.
async fn healthcheck_cmd(
    config: &Config,
    url: Option<&str>,
    timeout: std::time::Duration,
) -> anyhow::Result<Exit> {
    let url = match url {
        Some(url) => url.to_string(),
        None => format!("http://{}/healthz", local_address(&config.listen)),
    };
    let parsed = reqwest::Url::parse(&url);
    if !parsed.as_ref().is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        let why = parsed.err().map(|e| format!(" ({e})")).unwrap_or_default();
        eprintln!(
            "error: `{url}` is not an http:// or https:// URL{why}; for example \
             `--url http://127.0.0.1:8080/healthz`"
        );
        return Ok(Exit::Usage);
    }
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => {
            println!("{url}: {}", response.status());
            Ok(Exit::Ok)
        }
        Ok(response) => {
            eprintln!("error: `{url}` answered {}", response.status());
            Ok(Exit::Invalid)
        }
        Err(e) => {
            eprintln!("error: `{url}` did not answer: {e}");
            Ok(Exit::Invalid)
        }
    }
}

/// The address to reach a server listening on `listen` from the same host: a wildcard bind
/// (`0.0.0.0`, `[::]`) is reached on loopback.
fn local_address(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    }
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}
