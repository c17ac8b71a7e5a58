//! Metadata providers: where a job's values come from.
//!
//! A provider answers "what does source X say about the entry with external ID Y" and nothing
//! more. It knows nothing of jobs, groups, locks or the catalog: deciding which of the returned
//! fields may be written is the job's business (`run`). Results are the raw objects of the Codex
//! plugin protocol (`metadata/series/get`, `metadata/book/get`), keyed by its camelCase names.

pub mod anilist;
pub mod directory;
pub mod http;
pub mod openlibrary;
pub mod plugin;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde_json::{Map, Value};

/// One metadata object as a provider returned it, in Codex protocol field names.
pub type Metadata = Map<String, Value>;

/// What a provider can return metadata for, from its manifest's `capabilities.metadataProvider`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    pub series: bool,
    pub book: bool,
}

impl Capabilities {
    /// Refuses a call for a side of the catalog the provider does not serve.
    pub fn require(self, provider: &str, kind: EntityKind) -> Result<(), ProviderError> {
        let (served, only) = match (self.series, self.book) {
            (true, false) => (kind == EntityKind::Series, "series only, not books"),
            (false, true) => (kind == EntityKind::Book, "books only, not series"),
            (series, book) => (series && book, "nothing"),
        };
        if served {
            return Ok(());
        }
        let reason = format!("it provides {only}");
        Err(ProviderError::Unavailable { provider: provider.to_string(), reason })
    }

    /// Reads the protocol's list form (`["series", "book"]`); unknown words are ignored so a
    /// newer plugin's extra kinds do not make it unusable.
    pub fn from_list(kinds: &[String]) -> Self {
        Capabilities {
            series: kinds.iter().any(|k| k == "series"),
            book: kinds.iter().any(|k| k == "book"),
        }
    }
}

/// Which side of the catalog a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    Series,
    Book,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Series => "series",
            EntityKind::Book => "book",
        }
    }
}

/// Why a provider call gave no metadata. [`ProviderError::is_transient`] tells the failures
/// worth retrying with back-off from those that will fail the same way again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("provider `{provider}` has no {kind} with external ID `{external_id}`")]
    NotFound { provider: String, kind: &'static str, external_id: String },
    #[error("provider `{provider}` asked to wait {retry_after:?} before the next call")]
    RateLimited { provider: String, retry_after: Duration },
    #[error("provider `{provider}` did not answer `{method}` within {timeout:?}")]
    Timeout { provider: String, method: String, timeout: Duration },
    #[error("provider `{provider}` answered `{method}` with error {code}: {message}")]
    Rpc { provider: String, method: String, code: i64, message: String },
    #[error("provider `{provider}` cannot be used: {reason}")]
    Unavailable { provider: String, reason: String },
    #[error("provider `{provider}` sent an invalid answer to `{method}`: {reason}")]
    Protocol { provider: String, method: String, reason: String },
    /// The service could not be reached or failed on its side (a refused connection, HTTP 5xx).
    #[error("provider `{provider}` could not be reached: {reason}")]
    Unreachable { provider: String, reason: String },
    /// The service refused the request (an HTTP 4xx other than 404 and 429: a bad token, a
    /// malformed query); the same call gets the same answer.
    #[error(
        "provider `{provider}` refused `{request}` with status {status}{}",
        .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    Refused { provider: String, request: String, status: String, detail: Option<String> },
}

/// JSON-RPC codes a plugin uses for failures on its side that may pass: internal error and
/// upstream API error.
const TRANSIENT_RPC_CODES: [i64; 2] = [-32603, -32004];

impl ProviderError {
    /// Whether the same call may succeed if tried again soon: a timeout, a plugin that died and
    /// is being restarted, a service that is down or failing on its side. A missing entry, an
    /// answer that does not parse and a refused request are not.
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::Timeout { .. }
            | ProviderError::Unavailable { .. }
            | ProviderError::Unreachable { .. } => true,
            ProviderError::Rpc { code, .. } => TRANSIENT_RPC_CODES.contains(code),
            ProviderError::NotFound { .. }
            | ProviderError::RateLimited { .. }
            | ProviderError::Protocol { .. }
            | ProviderError::Refused { .. } => false,
        }
    }
}

impl ProviderError {
    /// A word for the kind of failure, as metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::NotFound { .. } => "not_found",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Timeout { .. } => "timeout",
            ProviderError::Rpc { .. } => "rpc",
            ProviderError::Unavailable { .. } => "unavailable",
            ProviderError::Unreachable { .. } => "unreachable",
            ProviderError::Protocol { .. } => "protocol",
            ProviderError::Refused { .. } => "refused",
        }
    }
}

/// What an entry without an ID for the provider looks like to the provider's match call
/// (`metadata/series/match`, `metadata/book/match`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchQuery {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<i64>,
    /// The first author, for series; books send every author.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// Books only: matched by ISBN first when the entry has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isbn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
}

/// A provider's best candidate for an entry, with how sure it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchCandidate {
    pub external_id: String,
    pub title: String,
    /// From 0 to 1; an ID is attached only at or above the provider's `matchThreshold`.
    pub confidence: f64,
}

/// A title reduced to lower-case letters and digits separated by single spaces, so titles that
/// differ only in case, punctuation or spacing compare equal.
pub fn normalise_title(title: &str) -> String {
    let kept: String = title.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    kept.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The highest-scored of a search's candidates, the first of equals; its confidence is cut by
/// a tenth when another candidate scores as high, since the evidence cannot tell them apart.
pub fn best_candidate(mut scored: Vec<MatchCandidate>) -> Option<MatchCandidate> {
    // A stable sort keeps the caller's order among equals.
    scored.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut best = scored.first().cloned()?;
    if scored.get(1).is_some_and(|second| second.confidence >= best.confidence) {
        best.confidence *= 0.9;
    }
    Some(best)
}

/// An ISBN without hyphens or spaces, its check character upper-case.
pub fn isbn_digits(isbn: &str) -> String {
    isbn.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_uppercase()
}

/// A configured, started provider, with how its recent calls went.
pub struct Provider {
    backend: Backend,
    recent: std::sync::Mutex<Recent>,
    pace: Option<Pace>,
    requests_per_minute: Option<u32>,
}

/// Spaces a provider's calls evenly at its `requestsPerMinute`, shared by every run that uses
/// it in this process.
pub type Pace = std::sync::Arc<governor::DefaultDirectRateLimiter>;

/// A pace of `per_minute` calls, one every `60 s / per_minute` with no burst: a service that
/// counts calls over any minute never sees more than it allows. `None` for 0 (unpaced).
pub fn pace(per_minute: u32) -> Option<Pace> {
    let per_minute = std::num::NonZeroU32::new(per_minute)?;
    let quota = governor::Quota::per_minute(per_minute).allow_burst(std::num::NonZeroU32::MIN);
    Some(std::sync::Arc::new(governor::RateLimiter::direct(quota)))
}

/// The provider itself, by kind.
pub enum Backend {
    Directory(directory::DirectoryProvider),
    Plugin(Box<plugin::PluginProvider>),
    Anilist(anilist::AnilistProvider),
    Openlibrary(openlibrary::OpenLibraryProvider),
}

/// Calls in a row that failed transiently before a started provider shows as failing.
const FAILING_AFTER: u32 = 3;

/// How the provider's latest calls went, for its health.
#[derive(Debug, Default)]
struct Recent {
    /// Calls in a row that failed transiently (the provider could not be reached, timed out,
    /// was restarting); any answer, even "not found", resets it.
    failures_in_a_row: u32,
    last_failure: Option<String>,
}

impl Provider {
    pub fn new(backend: Backend) -> Provider {
        Provider { backend, recent: Default::default(), pace: None, requests_per_minute: None }
    }

    /// The provider with its calls spaced at `per_minute` (0: unpaced).
    pub fn paced(self, per_minute: u32) -> Provider {
        let pace = pace(per_minute);
        Provider { requests_per_minute: pace.is_some().then_some(per_minute), pace, ..self }
    }

    /// Its pace, when it is paced.
    pub fn requests_per_minute(&self) -> Option<u32> {
        self.requests_per_minute
    }

    /// What its calls wait for, when it is paced. Callers wait for it before each call (see
    /// `run::fetch`), so a cancelled run stops waiting at once.
    pub fn pace(&self) -> Option<Pace> {
        self.pace.clone()
    }

    /// The plugin behind it, when it is one.
    pub fn plugin(&self) -> Option<&plugin::PluginProvider> {
        match &self.backend {
            Backend::Plugin(p) => Some(p),
            _ => None,
        }
    }

    /// Why the provider is failing: its last [`FAILING_AFTER`] or more calls failed
    /// transiently. `None` while it answers.
    pub fn failing(&self) -> Option<String> {
        let recent = self.recent.lock().expect("recent calls lock");
        (recent.failures_in_a_row >= FAILING_AFTER).then(|| {
            format!(
                "its last {} calls failed: {}",
                recent.failures_in_a_row,
                recent.last_failure.as_deref().unwrap_or_default()
            )
        })
    }

    /// The name jobs refer to it by, and the key of its external IDs in the catalog.
    pub fn name(&self) -> &str {
        match &self.backend {
            Backend::Directory(p) => p.name(),
            Backend::Plugin(p) => p.name(),
            Backend::Anilist(p) => p.name(),
            Backend::Openlibrary(p) => p.name(),
        }
    }

    pub fn capabilities(&self) -> Capabilities {
        match &self.backend {
            Backend::Directory(p) => p.capabilities(),
            Backend::Plugin(p) => p.capabilities(),
            Backend::Anilist(_) => anilist::CAPABILITIES,
            Backend::Openlibrary(_) => openlibrary::CAPABILITIES,
        }
    }

    /// Fetches the metadata of one series or book by the provider's own ID for it.
    pub async fn get(
        &self,
        kind: EntityKind,
        external_id: &str,
    ) -> Result<Metadata, ProviderError> {
        let result = match &self.backend {
            Backend::Directory(p) => p.get(kind, external_id).await,
            Backend::Plugin(p) => p.get(kind, external_id).await,
            Backend::Anilist(p) => p.get(kind, external_id).await,
            Backend::Openlibrary(p) => p.get(kind, external_id).await,
        };
        self.count(&result);
        result
    }

    /// Counts a call, and its failure, in the metrics.
    fn count<T>(&self, result: &Result<T, ProviderError>) {
        {
            let mut recent = self.recent.lock().expect("recent calls lock");
            match result {
                Err(e) if e.is_transient() => {
                    recent.failures_in_a_row += 1;
                    recent.last_failure = Some(e.to_string());
                }
                // A rate limit says nothing either way about the provider's health.
                Err(ProviderError::RateLimited { .. }) => {}
                _ => recent.failures_in_a_row = 0,
            }
        }
        let provider = self.name().to_string();
        metrics::counter!("curator_provider_calls_total", "provider" => provider.clone())
            .increment(1);
        if let Err(e) = result {
            let kind = e.kind();
            metrics::counter!("curator_provider_errors_total", "provider" => provider, "kind" => kind)
                .increment(1);
        }
    }

    /// Checks that the provider answers: a plugin's `ping`, a directory's folder. An HTTP
    /// service is not called for this: its failures show in its calls' errors.
    pub async fn ping(&self) -> Result<(), ProviderError> {
        match &self.backend {
            Backend::Directory(p) => p.check(),
            Backend::Plugin(p) => p.ping().await,
            Backend::Anilist(_) | Backend::Openlibrary(_) => Ok(()),
        }
    }

    /// The provider's best candidate for an entry that has no ID for it yet.
    pub async fn match_entry(
        &self,
        kind: EntityKind,
        query: &MatchQuery,
    ) -> Result<Option<MatchCandidate>, ProviderError> {
        let result = match &self.backend {
            Backend::Directory(p) => p.match_entry(kind, query).await,
            Backend::Plugin(p) => p.match_entry(kind, query).await,
            Backend::Anilist(p) => p.match_entry(kind, query).await,
            Backend::Openlibrary(p) => p.match_entry(kind, query).await,
        };
        self.count(&result);
        result
    }

    /// Stops the provider's process, if it has one.
    pub async fn shutdown(&self) {
        if let Backend::Plugin(p) = &self.backend {
            p.shutdown().await;
        }
    }
}

/// What a kind of provider serves before it is started; a plugin's comes from its manifest.
fn known_capabilities(kind: crate::config::ProviderKind) -> Option<Capabilities> {
    use crate::config::ProviderKind;
    match kind {
        ProviderKind::Directory => Some(Capabilities { series: true, book: true }),
        ProviderKind::Anilist => Some(anilist::CAPABILITIES),
        ProviderKind::Openlibrary => Some(openlibrary::CAPABILITIES),
        ProviderKind::Plugin => None,
    }
}

/// How a provider is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Started and answering.
    Ok,
    /// Not started yet: it starts at its first use.
    Idle,
    /// Disabled in the config.
    Disabled,
    /// Started, but not answering.
    Failing,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Ok => "ok",
            Health::Idle => "idle",
            Health::Disabled => "disabled",
            Health::Failing => "failing",
        })
    }
}

/// A configured provider as [`Registry::statuses`] sees it.
#[derive(Debug, Clone)]
pub struct ProviderStatus {
    pub name: String,
    /// `plugin`, `anilist`, `openlibrary` or `directory`.
    pub kind: String,
    pub enabled: bool,
    /// `None` for a plugin until it has started in this process (they come from its manifest).
    pub capabilities: Option<Capabilities>,
    pub permissions: Vec<String>,
    pub health: Health,
    /// Why it is failing.
    pub detail: Option<String>,
    /// Its pace, when its calls are spaced.
    pub requests_per_minute: Option<u32>,
}

/// The configured providers, each started on first use and kept for the process's life.
pub struct Registry {
    configs: Vec<crate::config::ProviderConfig>,
    started: tokio::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Provider>>>,
}

impl Registry {
    pub fn new(configs: &[crate::config::ProviderConfig]) -> Self {
        Registry { configs: configs.to_vec(), started: Default::default() }
    }

    /// The provider named `name`, started now if it is not running yet. A plugin that fails to
    /// start is tried again on the next call.
    pub async fn get(&self, name: &str) -> Result<std::sync::Arc<Provider>, ProviderError> {
        let unavailable =
            |reason: String| ProviderError::Unavailable { provider: name.to_string(), reason };
        let config = self
            .configs
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| unavailable("it is not configured".into()))?;
        if !config.enabled {
            return Err(unavailable("it is disabled in the config".into()));
        }
        let mut started = self.started.lock().await;
        if let Some(provider) = started.get(name) {
            return Ok(provider.clone());
        }
        use crate::config::ProviderKind;
        let provider = match config.kind {
            ProviderKind::Directory => {
                let root = config.path.clone().unwrap_or_default();
                Backend::Directory(directory::DirectoryProvider::new(name, root)?)
            }
            ProviderKind::Plugin => Backend::Plugin(Box::new(
                plugin::PluginProvider::start(plugin::PluginConfig {
                    name: name.to_string(),
                    command: config.command.clone().unwrap_or_default(),
                    args: config.args.clone(),
                    env: Vec::new(),
                    settings: config.settings.clone(),
                    // A plugin names the credentials it needs in its own manifest, so any
                    // name is passed on.
                    credentials: {
                        let names: Vec<&str> =
                            config.credentials.keys().map(String::as_str).collect();
                        http::read_credentials(name, &config.credentials, &names)?
                    },
                    timeout: Duration::from_secs(config.timeout_seconds.max(1)),
                    working_dir: None,
                })
                .await?,
            )),
            ProviderKind::Anilist => Backend::Anilist(anilist::AnilistProvider::new(config)?),
            ProviderKind::Openlibrary => {
                Backend::Openlibrary(openlibrary::OpenLibraryProvider::new(config)?)
            }
        };
        let provider = Provider::new(provider).paced(config.pace().unwrap_or(0));
        let provider = std::sync::Arc::new(provider);
        started.insert(name.to_string(), provider.clone());
        Ok(provider)
    }

    /// The provider's write allow-list; empty (nothing allowed) when it is not configured.
    pub fn permissions(&self, name: &str) -> crate::catalog::fields::Permissions {
        let list = self.configs.iter().find(|c| c.name == name).map(|c| c.permissions.as_slice());
        crate::catalog::fields::Permissions::new(list.unwrap_or_default())
    }

    /// What is known of each configured provider, in config order. Nothing is started for
    /// this: a provider not used yet is `idle`, and a started one is asked whether it answers.
    pub async fn statuses(&self) -> Vec<ProviderStatus> {
        let started = self.started.lock().await.clone();
        let mut statuses = Vec::with_capacity(self.configs.len());
        for config in &self.configs {
            let provider = started.get(&config.name);
            let (health, detail) = match provider {
                _ if !config.enabled => (Health::Disabled, None),
                None => (Health::Idle, None),
                Some(p) => match p.ping().await {
                    Ok(()) => match p.failing() {
                        None => (Health::Ok, None),
                        Some(why) => (Health::Failing, Some(why)),
                    },
                    Err(e) => (Health::Failing, Some(e.to_string())),
                },
            };
            statuses.push(ProviderStatus {
                name: config.name.clone(),
                kind: format!("{:?}", config.kind).to_lowercase(),
                enabled: config.enabled,
                capabilities: provider
                    .map(|p| p.capabilities())
                    .or(known_capabilities(config.kind)),
                permissions: config.permissions.clone(),
                health,
                detail,
                requests_per_minute: config.pace(),
            });
        }
        statuses
    }

    /// The lowest confidence at which a match from the provider attaches its ID.
    pub fn match_threshold(&self, name: &str) -> f64 {
        let config = self.configs.iter().find(|c| c.name == name);
        config.map_or(crate::config::MATCH_THRESHOLD, |c| c.match_threshold)
    }

    /// Stops every started provider.
    pub async fn shutdown(&self) {
        let started = std::mem::take(&mut *self.started.lock().await);
        for provider in started.values() {
            provider.shutdown().await;
        }
    }
}
