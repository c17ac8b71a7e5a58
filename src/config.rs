//! The server config (`curator.yaml`) and its environment-variable mirrors. Relative paths in
//! the file are taken from the file's own folder, so a config works from any working directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use crate::catalog::fields;
use crate::spec::yaml;

pub mod check;
pub mod show;

/// The config file used when `--config` is not given and the file exists.
pub const DEFAULT_CONFIG: &str = "curator.yaml";

/// Everything a curator process needs to know, after the file and the environment are merged.
#[derive(Clone)]
pub struct Config {
    /// Where the config came from; `None` when no file was read.
    pub source: Option<PathBuf>,
    /// The database URL, with a relative SQLite path already resolved.
    pub database: String,
    pub jobs_dir: PathBuf,
    pub listen: String,
    /// The zone of jobs that name none.
    pub timezone: chrono_tz::Tz,
    /// Catalog files imported at start-up by `serve`.
    pub catalog: Vec<PathBuf>,
    pub providers: Vec<ProviderConfig>,
    /// The bearer token that guards actions; never printed.
    pub api_token: Option<String>,
    /// Whether reads (the API's and the pages') need the token too.
    pub api_token_for_reads: bool,
    pub retention: Retention,
    pub webhooks: Vec<crate::webhook::WebhookConfig>,
    /// How long a run stays held by the process running it between renewals (renewed every
    /// third of it): when that process dies, another takes the run over this long after.
    pub run_lease: std::time::Duration,
    /// How many queued runs (Run now, continuations) this process runs at once; scheduled
    /// firings start when due whatever the count.
    pub workers: usize,
    /// The log format the file asks for; `--log-format` and `CURATOR_LOG_FORMAT` win over it.
    pub log_format: Option<LogFormat>,
    /// A `RUST_LOG`-style filter the file asks for; `CURATOR_LOG` and `RUST_LOG` win over it.
    pub log_level: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event, coloured on a terminal.
    Human,
    /// One JSON object per line, with the fields of every enclosing span.
    Json,
}

/// How much run history is kept per job; pruning never touches the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    /// The newest runs kept per job.
    #[serde(default = "retention_runs")]
    pub max_runs: u32,
    /// Runs older than this many days are deleted.
    #[serde(default = "retention_days")]
    pub max_age_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { max_runs: retention_runs(), max_age_days: retention_days() }
    }
}

fn retention_runs() -> u32 {
    100
}

fn retention_days() -> u32 {
    90
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("source", &self.source)
            .field("database", &redact_url(&self.database))
            .field("jobs_dir", &self.jobs_dir)
            .field("listen", &self.listen)
            .field("timezone", &self.timezone)
            .field("catalog", &self.catalog)
            .field("providers", &self.providers)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("api_token_for_reads", &self.api_token_for_reads)
            .field("retention", &self.retention)
            .field("run_lease", &self.run_lease)
            .field("workers", &self.workers)
            .field(
                "webhooks",
                &self.webhooks.iter().map(|w| redact_url(&w.url)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A provider as declared in the config.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// The program of a `plugin` provider.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// The folder of a `directory` provider.
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// The fields the provider may write, in Codex's vocabulary (`metadata:write:ratings`).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Provider settings, sent to a plugin as `adminConfig`.
    #[serde(default)]
    pub settings: Value,
    /// Seconds one provider call may take.
    #[serde(default = "timeout_default")]
    pub timeout_seconds: u64,
    /// The service root of a built-in HTTP provider (`anilist`, `openlibrary`); tests and
    /// mirrors point it elsewhere. Defaults to the public service.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Secrets the provider needs, each read from an environment variable or a file when the
    /// provider starts; the config holds only where they are, never the values.
    #[serde(default)]
    pub credentials: std::collections::BTreeMap<String, CredentialSource>,
    /// The lowest match confidence (0 to 1) at which an entry without an ID gets the
    /// provider's ID attached, for jobs with `existingSourceIdsOnly: false`.
    #[serde(default = "match_threshold_default")]
    pub match_threshold: f64,
    /// The most calls a minute this process makes to the provider, spaced evenly, across every
    /// job that uses it; `0` leaves calls unpaced. Filled in at load from the kind's default
    /// ([`ProviderKind::requests_per_minute`]) when the file names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
}

impl ProviderConfig {
    /// The calls a minute the provider is held to: its own setting, else its kind's; `None`
    /// when unpaced.
    pub fn pace(&self) -> Option<u32> {
        self.requests_per_minute.or(self.kind.requests_per_minute()).filter(|n| *n > 0)
    }
}

/// Where a provider credential is read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum CredentialSource {
    /// An environment variable of the curator process.
    Env(String),
    /// A file (a mounted secret); surrounding whitespace is trimmed.
    File(PathBuf),
}

/// The default [`ProviderConfig::match_threshold`]: a candidate must be a near-certain match.
pub const MATCH_THRESHOLD: f64 = 0.8;

/// The most queued runs one process takes at once; past this they only wait on the database
/// and on the providers' pace.
pub const MAX_WORKERS: u32 = 256;

fn match_threshold_default() -> f64 {
    MATCH_THRESHOLD
}

fn enabled_default() -> bool {
    true
}

fn timeout_default() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Plugin,
    Anilist,
    Openlibrary,
    Directory,
}

impl ProviderKind {
    /// The pace a provider of this kind keeps when its config names none: what the public
    /// service accepts from one client. AniList answers `X-RateLimit-Limit: 30` (its documented
    /// 90 a minute is lowered while its API runs degraded); Open Library asks API clients for
    /// about one request a second. Plugins pace themselves and answer -32001 when pushed;
    /// a directory is local.
    pub fn requests_per_minute(self) -> Option<u32> {
        match self {
            ProviderKind::Anilist => Some(30),
            ProviderKind::Openlibrary => Some(60),
            ProviderKind::Plugin | ProviderKind::Directory => None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    database: Option<String>,
    jobs_dir: Option<PathBuf>,
    listen: Option<String>,
    timezone: Option<String>,
    #[serde(default)]
    catalog: Vec<PathBuf>,
    #[serde(default)]
    providers: Vec<ProviderConfig>,
    api_token: Option<String>,
    #[serde(default)]
    api_token_for_reads: bool,
    #[serde(default)]
    retention: Retention,
    #[serde(default)]
    webhooks: Vec<crate::webhook::WebhookConfig>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    run_lease: Option<String>,
    workers: Option<u32>,
}

/// A config (or catalog) file that cannot be used: every problem found in it, in line order.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file, or `environment` when the culprit is a variable.
    pub file: String,
    pub problems: Vec<ConfigProblem>,
}

/// One problem of a file: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// `file:line:column`, or the file alone when no line applies.
    pub location: String,
    pub message: String,
    /// Where in the file, for line order; `None` sorts first.
    pos: Option<yaml::Pos>,
}

impl ConfigError {
    fn at(file: &Path, pos: Option<yaml::Pos>, message: impl Into<String>) -> Self {
        let mut error = ConfigError { file: file.display().to_string(), problems: Vec::new() };
        error.push(pos, message);
        error
    }

    /// Adds a problem at `pos` of the file.
    pub fn push(&mut self, pos: Option<yaml::Pos>, message: impl Into<String>) {
        let location = match pos {
            Some(p) => format!("{}:{}:{}", self.file, p.line, p.column),
            None => self.file.clone(),
        };
        self.problems.push(ConfigProblem { location, message: message.into(), pos });
    }

    /// The problems, one `file:line:col: error: message` line each, in line order.
    pub fn lines(&self) -> String {
        let mut problems = self.problems.clone();
        problems.sort_by_key(|p| p.pos);
        problems.iter().map(|p| format!("{}: error: {}\n", p.location, p.message)).collect()
    }

    /// `curator.yaml: 3 error(s)`.
    pub fn summary(&self) -> String {
        format!("{}: {} error(s)", self.file, self.problems.len())
    }

    /// `Ok(value)` when no problem was found.
    fn or_ok<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.lines(), self.summary())
    }
}

/// Environment values that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub database: Option<String>,
    pub jobs_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub timezone: Option<String>,
    pub api_token: Option<String>,
    /// `CURATOR_API_TOKEN_FOR_READS`: `true` or `1` makes reads need the token.
    pub api_token_for_reads: Option<bool>,
}

impl Overrides {
    /// Reads the `CURATOR_*` variables.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Overrides {
            database: var("CURATOR_DATABASE_URL"),
            jobs_dir: var("CURATOR_JOBS_DIR").map(PathBuf::from),
            listen: var("CURATOR_LISTEN"),
            timezone: var("CURATOR_TIMEZONE"),
            api_token: var("CURATOR_API_TOKEN"),
            api_token_for_reads: var("CURATOR_API_TOKEN_FOR_READS")
                .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")),
        }
    }
}

impl Config {
    /// Loads `path`, or `./curator.yaml` when it exists and `path` is `None`, then applies the
    /// overrides. Without any file, every setting takes its default.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
        };
        let (file, spans, base, mut errors) = match &path {
            Some(p) => {
                let (file, spans, errors) = read_file(p)?;
                (file, spans, p.parent().map(Path::to_path_buf).unwrap_or_default(), errors)
            }
            None => (
                ConfigFile::default(),
                yaml::Spans::default(),
                PathBuf::new(),
                ConfigError { file: "environment".into(), problems: Vec::new() },
            ),
        };
        // A setting's position in the file, when it came from the file.
        let at = |pointer: &str| path.as_ref().map(|_| spans.value(pointer));
        let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };

        // Each check below adds its problem and goes on, so one pass reports them all.
        let database = match overrides.database.clone() {
            Some(url) => resolve_sqlite(&url, Path::new("")),
            None => resolve_sqlite(
                file.database.as_deref().unwrap_or("sqlite://data/curator.db"),
                &base,
            ),
        };
        if let Err(e) = crate::store::Backend::of(&database) {
            let pos = if overrides.database.is_some() { None } else { at("/database") };
            errors.push(pos, e.to_string());
        }
        let run_lease = match &file.run_lease {
            None => crate::store::DEFAULT_RUN_LEASE,
            Some(text) => humantime::parse_duration(text)
                .ok()
                .filter(|lease| *lease >= std::time::Duration::from_secs(1))
                .unwrap_or_else(|| {
                    errors.push(
                        at("/runLease"),
                        format!(
                            "`runLease`: `{text}` is not a duration of a second or more \
                             (for example `30s`)"
                        ),
                    );
                    crate::store::DEFAULT_RUN_LEASE
                }),
        };
        let jobs_dir = match &overrides.jobs_dir {
            Some(dir) => dir.clone(),
            None => resolve(file.jobs_dir.as_deref().unwrap_or(Path::new("jobs.d"))),
        };
        let zone_name = overrides.timezone.clone().or(file.timezone);
        let timezone = match zone_name {
            Some(name) => chrono_tz::Tz::from_str(&name).unwrap_or_else(|_| {
                let (pos, key) = if overrides.timezone.is_some() {
                    (None, "CURATOR_TIMEZONE")
                } else {
                    (at("/timezone"), "timezone")
                };
                let hint = match crate::schedule::zones::classify(&name) {
                    crate::schedule::zones::ZoneName::Unknown { reason, suggestion } => {
                        crate::schedule::zones::unknown_hint(&reason, suggestion.as_deref())
                    }
                    _ => String::new(),
                };
                errors.push(pos, format!("`{key}`: `{name}` is not an IANA time zone{hint}"));
                chrono_tz::UTC
            }),
            None => local_zone(),
        };
        let mut providers = file.providers;
        for (i, provider) in providers.iter_mut().enumerate() {
            provider.path = provider.path.as_deref().map(resolve);
            provider.requests_per_minute =
                provider.requests_per_minute.or(provider.kind.requests_per_minute());
            if let Err((key, message)) = check_provider(provider) {
                errors.push(at(&format!("/providers/{i}{key}")), message);
            }
        }
        for (i, hook) in file.webhooks.iter().enumerate() {
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                let url = redact_url(&hook.url);
                errors.push(
                    at(&format!("/webhooks/{i}/url")),
                    format!("webhook URL `{url}` must start with http:// or https://"),
                );
            }
        }
        if let Some(level) = &file.log_level
            && let Err(e) = tracing_subscriber::EnvFilter::try_new(level)
        {
            errors.push(at("/logLevel"), format!("`logLevel`: `{level}` is not a log filter: {e}"));
        }
        if let Some(workers) = file.workers
            && !(1..=MAX_WORKERS).contains(&workers)
        {
            errors.push(at("/workers"), format!("`workers` must be from 1 to {MAX_WORKERS}"));
        }
        if file.retention.max_runs == 0 {
            errors.push(at("/retention/maxRuns"), "`retention.maxRuns` must be at least 1");
        }
        if let Some(dup) = first_duplicate(providers.iter().map(|p| p.name.as_str())) {
            let i = providers.iter().rposition(|p| p.name == dup).unwrap_or_default();
            errors.push(
                at(&format!("/providers/{i}/name")),
                format!("provider `{dup}` is declared twice"),
            );
        }
        errors.or_ok(Config {
            source: path,
            database,
            jobs_dir,
            listen: overrides.listen.clone().or(file.listen).unwrap_or("127.0.0.1:8080".into()),
            timezone,
            catalog: file.catalog.iter().map(|p| resolve(p)).collect(),
            providers,
            api_token: overrides.api_token.clone().or(file.api_token),
            api_token_for_reads: overrides.api_token_for_reads.unwrap_or(file.api_token_for_reads),
            retention: file.retention,
            webhooks: file.webhooks,
            run_lease,
            workers: file.workers.map_or(4, |n| n as usize),
            log_format: file.log_format,
            log_level: file.log_level,
        })
    }

    /// Where `pointer` (`/providers/0/command`) is written in the config file, as
    /// `file:line:column`; the file alone when the key is not in it, `None` without a file.
    pub fn position(&self, pointer: &str) -> Option<String> {
        let path = self.source.as_ref()?;
        let text = std::fs::read_to_string(path).ok();
        let docs = text.as_deref().and_then(|t| yaml::parse(t).ok()).unwrap_or_default();
        Some(match docs.first().filter(|d| d.spans.has(pointer)) {
            Some(doc) => {
                let pos = doc.spans.value(pointer);
                format!("{}:{}:{}", path.display(), pos.line, pos.column)
            }
            None => path.display().to_string(),
        })
    }

    /// The provider declared under `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// Reads and deserialises the file; the problems of its structure come back beside what could
/// be read, so the checks after it can add theirs.
fn read_file(path: &Path) -> Result<(ConfigFile, yaml::Spans, ConfigError), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::at(path, None, format!("cannot read the config: {e}")))?;
    let docs = yaml::parse(&text)
        .map_err(|e| ConfigError::at(path, Some(e.pos), format!("invalid YAML: {}", e.message)))?;
    let mut errors = ConfigError { file: path.display().to_string(), problems: Vec::new() };
    let Some(doc) = docs.into_iter().next() else {
        return Ok((ConfigFile::default(), yaml::Spans::default(), errors));
    };
    let file = deserialize_each(&doc, &mut errors).unwrap_or_default();
    Ok((file, doc.spans, errors))
}

/// Deserialises a YAML document, reporting every mismatch at the position of its value.
pub fn deserialize_at<T: serde::de::DeserializeOwned>(
    path: &Path,
    doc: &yaml::Document,
) -> Result<T, ConfigError> {
    let mut errors = ConfigError { file: path.display().to_string(), problems: Vec::new() };
    match deserialize_each(doc, &mut errors) {
        Some(value) => errors.or_ok(value),
        None => Err(errors),
    }
}

/// Deserialises `doc`, adding a problem for each mismatch: after each one the offending value is
/// left out and the rest is read again, so one pass finds them all. What is left, when it reads,
/// comes back for the checks of meaning.
fn deserialize_each<T: serde::de::DeserializeOwned>(
    doc: &yaml::Document,
    errors: &mut ConfigError,
) -> Option<T> {
    let mut value = doc.value.clone();
    // Original pointers of the values left out, to map later positions back to the file.
    let mut removed: Vec<String> = Vec::new();
    // Each round removes one value, so the rounds end; the bound only guards against a loop.
    for _ in 0..1000 {
        let e = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(read) => return Some(read),
            Err(e) => e,
        };
        let current = path_to_pointer(e.path());
        let pointer = original_pointer(&doc.value, &removed, &current);
        let inner = e.inner().to_string();
        // A required key whose bad value was left out is not missing: leave out its owner.
        let follows_removal = inner.starts_with("missing field")
            && removed.iter().any(|r| r.starts_with(&format!("{pointer}/")));
        if !follows_removal {
            let (pos, message) = mismatch_message(doc, &pointer, &inner);
            errors.push(Some(pos), message);
        }
        if current.is_empty() || !remove(&mut value, &current) {
            return None;
        }
        removed.push(pointer);
    }
    None
}

/// Removes the value at `pointer`; false when there is none.
fn remove(value: &mut Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else { return false };
    let last = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&last).is_some(),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The pointer in the file of `current`, a pointer into the document after the values in
/// `removed` were left out: an index in an array counts the items left out before it.
fn original_pointer(original: &Value, removed: &[String], current: &str) -> String {
    let mut out = String::new();
    let mut node = Some(original);
    for segment in current.split('/').skip(1) {
        let index = match (node, segment.parse::<usize>()) {
            (Some(Value::Array(items)), Ok(wanted)) => (0..items.len())
                .filter(|i| !removed.contains(&format!("{out}/{i}")))
                .nth(wanted)
                .map(|i| i.to_string()),
            _ => None,
        };
        let segment = index.unwrap_or_else(|| segment.to_string());
        out.push('/');
        out.push_str(&segment);
        node = node.and_then(|n| n.pointer(&format!("/{segment}")));
    }
    out
}

/// Where and how to report serde's `inner` message about the value at `pointer`, in curator's
/// words: the key's path, the value as written, what was expected, and a suggestion.
fn mismatch_message(doc: &yaml::Document, pointer: &str, inner: &str) -> (yaml::Pos, String) {
    let at = yaml::pointer_to_path(pointer);
    let at = if at.is_empty() { String::new() } else { format!("`{at}`: ") };
    let written = || {
        doc.spans.written(pointer).map(str::to_string).unwrap_or_else(|| {
            match doc.value.pointer(pointer) {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            }
        })
    };
    // serde lists what it expected as backticked words after "expected".
    let expected = |text: &str| -> Vec<String> {
        let list = text.split_once(", expected ").map_or("", |(_, l)| l);
        list.split('`').skip(1).step_by(2).map(str::to_string).collect()
    };
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default();
        let known = expected(inner);
        let hint = crate::validate::suggest(key, known.iter().map(String::as_str));
        let tail = if !hint.is_empty() || known.is_empty() {
            hint
        } else {
            let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            format!(": expected one of {}", list.join(", "))
        };
        let path = yaml::pointer_to_path(pointer);
        let path = if path.is_empty() { key.to_string() } else { path };
        return (doc.spans.key(pointer), format!("unknown key `{path}`{tail}"));
    }
    let pos = doc.spans.value(pointer);
    if let Some(rest) = inner.strip_prefix("unknown variant `") {
        let word = rest.split('`').next().unwrap_or_default();
        let known = expected(inner);
        let hint = crate::validate::suggest(word, known.iter().map(String::as_str));
        let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        return (pos, format!("{at}`{word}` is not one of {}{hint}", list.join(", ")));
    }
    let whole = |min: u64, max: u64| {
        format!("{at}`{}` is not a whole number from {min} to {max}", written())
    };
    // Settings counted from 1; every other count may be 0.
    let min = u64::from(matches!(pointer, "/workers" | "/retention/maxRuns"));
    if inner.ends_with("expected u32") {
        let max = if pointer == "/workers" { MAX_WORKERS } else { u32::MAX };
        return (pos, whole(min, u64::from(max)));
    }
    if inner.ends_with("expected u64") || inner.ends_with("expected usize") {
        return (pos, whole(min, u64::MAX));
    }
    if pointer.is_empty()
        && (inner.starts_with("invalid type") || inner.starts_with("invalid length"))
    {
        let message = "the config is a mapping of settings, one `key: value` per line (see \
                       `curator init` for a commented example), not a list or a single value";
        return (pos, message.to_string());
    }
    if pointer == "/listen" && inner.starts_with("invalid type: integer") {
        let port = written();
        let message = format!(
            "{at}`{port}` is a port alone: write an address with it, such as `127.0.0.1:{port}` \
             (this machine only) or `0.0.0.0:{port}` (every interface)"
        );
        return (pos, message);
    }
    if inner.starts_with("invalid type") {
        let expected = inner.rsplit_once(", expected ").map_or("", |(_, e)| e);
        return (pos, format!("{at}`{}` is not {expected}", written()));
    }
    (pos, format!("{at}{inner}"))
}

pub(crate) fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => pointer.push_str(&format!("/{}", yaml::escape_pointer(key))),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    pointer
}

/// Checks one provider; an error carries the pointer of the key at fault under the provider.
fn check_provider(provider: &ProviderConfig) -> Result<(), (String, String)> {
    let fail = |key: &str, message: String| Err((key.to_string(), message));
    let name = &provider.name;
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid_name {
        return fail(
            "/name",
            format!("provider name `{name}` must use lower-case letters, digits, `-` and `_`"),
        );
    }
    match provider.kind {
        ProviderKind::Plugin if provider.command.is_none() => {
            return fail("", format!("provider `{name}` is a plugin but has no `command`"));
        }
        ProviderKind::Directory if provider.path.is_none() => {
            return fail("", format!("provider `{name}` is a directory but has no `path`"));
        }
        _ => {}
    }
    if !(0.0..=1.0).contains(&provider.match_threshold) {
        return fail(
            "/matchThreshold",
            format!(
                "provider `{name}` has `matchThreshold: {}`: a confidence runs from 0 to 1",
                provider.match_threshold
            ),
        );
    }
    for (i, permission) in provider.permissions.iter().enumerate() {
        let known =
            permission.strip_prefix("metadata:write:").is_some_and(fields::known_permission);
        if !known {
            return fail(
                &format!("/permissions/{i}"),
                format!(
                    "provider `{name}` has unknown permission `{permission}`: expected \
                 `metadata:write:<field>` or `metadata:write:*`"
                ),
            );
        }
    }
    Ok(())
}

fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

/// Makes a relative SQLite path relative to the config's folder; other URLs pass through.
fn resolve_sqlite(url: &str, base: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return url.to_string();
    };
    let (path, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
    if path == ":memory:" || Path::new(path).is_absolute() || base.as_os_str().is_empty() {
        return url.to_string();
    }
    let joined = base.join(path);
    match query {
        Some(q) => format!("sqlite://{}?{q}", joined.display()),
        None => format!("sqlite://{}", joined.display()),
    }
}

pub use crate::store::redact_url;

/// The machine's zone by name, resolved in the compiled-in tz database; UTC when unknown.
pub fn local_zone() -> chrono_tz::Tz {
    std::env::var("TZ")
        .ok()
        .map(|tz| tz.trim_start_matches(':').to_string())
        .or_else(|| iana_time_zone::get_timezone().ok())
        .and_then(|name| chrono_tz::Tz::from_str(&name).ok())
        .unwrap_or(chrono_tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db/curator"),
            "postgres://app:<redacted>@db/curator"
        );
        assert_eq!(redact_url("sqlite://data/curator.db"), "sqlite://data/curator.db");
        assert_eq!(
            redact_url("postgres://app@db/curator?sslmode=require&password=hunter2"),
            "postgres://app@db/curator?sslmode=require&password=<redacted>"
        );

        let config = load("database: postgresql://app:hunter2@db/curator\n").unwrap();
        assert_eq!(config.database, "postgresql://app:hunter2@db/curator", "kept for connecting");
        let shown = format!("{config:?}");
        assert!(shown.contains("postgresql://app:<redacted>@db/curator"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn an_unknown_database_scheme_is_refused_naming_both_backends_without_the_password() {
        let error = load("database: mysql://app:hunter2@db/curator\n").err().unwrap();
        let error = &error.problems[0];
        assert!(error.location.ends_with("curator.yaml:1:11"), "{}", error.location);
        assert_eq!(
            error.message,
            "database URL `mysql://app:<redacted>@db/curator` is not supported: \
             expected `sqlite:` (for example `sqlite://data/curator.db`) or `postgres:` / \
             `postgresql:` (for example `postgres://curator@db.example.org/curator`)"
        );
    }

    #[test]
    fn a_provider_without_a_pace_gets_its_kind_s_and_config_show_prints_it() {
        let config = load(
            "providers:\n  - { name: al, kind: anilist }\n  - { name: ol, kind: openlibrary }\n  \
             - { name: mine, kind: anilist, requestsPerMinute: 0 }\n  \
             - { name: local, kind: directory, path: metadata }\n",
        )
        .unwrap();
        let paces: Vec<_> = config.providers.iter().map(|p| p.requests_per_minute).collect();
        assert_eq!(paces, [Some(30), Some(60), Some(0), None]);
        let shown = show::effective(&config, &Overrides::default(), None);
        assert_eq!(shown["settings"]["providers"][0]["requestsPerMinute"], 30);
        assert!(shown["settings"]["providers"][3].get("requestsPerMinute").is_none());
    }

    #[test]
    fn relative_sqlite_paths_follow_the_config_file() {
        assert_eq!(
            resolve_sqlite("sqlite://data/c.db", Path::new("/srv/cur")),
            "sqlite:///srv/cur/data/c.db"
        );
        assert_eq!(resolve_sqlite("sqlite:///abs/c.db", Path::new("/srv")), "sqlite:///abs/c.db");
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curator.yaml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), &Overrides::default())
    }

    #[test]
    fn every_config_error_names_its_line_and_column() {
        let cases = [
            ("runLease: soon\n", "curator.yaml:1:11", "`runLease`: `soon` is not a duration"),
            ("workers: 0\n", "curator.yaml:1:10", "`workers` must be from 1 to 256"),
            ("workers: 4000000000\n", "curator.yaml:1:10", "`workers` must be from 1 to 256"),
            ("workers: -1\n", "curator.yaml:1:10", "`-1` is not a whole number from 1 to 256"),
            ("- a\n- b\n", "curator.yaml:1:1", "the config is a mapping of settings"),
            ("listen: 8081\n", "curator.yaml:1:9", "such as `127.0.0.1:8081` (this machine only)"),
            ("listn: x\n", "curator.yaml:1:1", "unknown key `listn`; did you mean `listen`?"),
            ("timezone: Mars/Base\n", "curator.yaml:1:11", "`Mars/Base` is not an IANA time zone"),
            ("providers:\n  - name: a\n    kind: directory\n", "curator.yaml:2:5", "has no `path`"),
            (
                "providers:\n  - name: a\n    kind: directory\n    path: x\n    permissions: [metadata:write:everything]\n",
                "curator.yaml:5:19",
                "unknown permission `metadata:write:everything`",
            ),
            (
                "providers:\n  - { name: al, kind: anilist, matchThreshold: 80 }\n",
                "curator.yaml:2:48",
                "provider `al` has `matchThreshold: 80`: a confidence runs from 0 to 1",
            ),
            ("retention: { maxRuns: 0 }\n", "curator.yaml:1:23", "must be at least 1"),
            ("webhooks:\n  - url: ftp://x\n", "curator.yaml:2:10", "must start with http://"),
            ("jobsDir: [\n", "curator.yaml:", "invalid YAML"),
        ];
        for (text, location, message) in cases {
            let err = load(text).unwrap_err();
            let err = &err.problems[0];
            assert!(
                err.location.ends_with(location)
                    || location.ends_with(':') && err.location.contains(location),
                "{text:?}: {err:?}"
            );
            assert!(err.message.contains(message), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn a_wrong_value_is_reported_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curator.yaml");
        std::fs::write(&path, "jobsDir: jobs.d\nproviders:\n  - name: x\n    kind: ftp\n").unwrap();
        let err = Config::load(Some(&path), &Overrides::default()).unwrap_err();
        assert!(err.problems[0].location.ends_with("curator.yaml:4:11"), "{err}");
        assert!(err.problems[0].message.contains("providers[0].kind"), "{err}");
    }

    #[test]
    fn every_problem_of_a_config_is_reported_in_line_order_with_a_suggestion() {
        let text = "\
workers: many
listn: 127.0.0.1:8080
runLease: forever
timezone: Europe/Pariss
retention:
  maxRuns: -1
providers:
  - name: shelf
    kind: directry
    path: .
  - name: hub
    kind: anilist
    timeoutSeconds: soon
";
        let err = load(text).unwrap_err();
        let shown = err.to_string().replace(&err.file, "curator.yaml");
        assert_eq!(
            shown,
            "\
curator.yaml:1:10: error: `workers`: `many` is not a whole number from 1 to 256
curator.yaml:2:1: error: unknown key `listn`; did you mean `listen`?
curator.yaml:3:11: error: `runLease`: `forever` is not a duration of a second or more (for example `30s`)
curator.yaml:4:11: error: `timezone`: `Europe/Pariss` is not an IANA time zone; did you mean `Europe/Paris`?
curator.yaml:6:12: error: `retention.maxRuns`: `-1` is not a whole number from 1 to 4294967295
curator.yaml:9:11: error: `providers[0].kind`: `directry` is not one of `plugin`, `anilist`, `openlibrary`, `directory`; did you mean `directory`?
curator.yaml:13:21: error: `providers[1].timeoutSeconds`: `soon` is not a whole number from 0 to 18446744073709551615
curator.yaml: 7 error(s)"
        );
    }
}
