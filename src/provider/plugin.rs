//! The plugin provider: one metadata plugin run as a child process, spoken to in the Codex plugin
//! protocol (JSON-RPC 2.0 over stdin/stdout, one message per line).
//!
//! This file owns the process's life (spawn, `initialize`, restart with back-off after it dies,
//! `shutdown`) and the routing of answers to concurrent calls. Which plugins may run, and which
//! of the returned fields a job may write, are decided elsewhere (`config`, `run`).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Capabilities, EntityKind, MatchCandidate, MatchQuery, Metadata, ProviderError};

/// Longest line accepted on a plugin's stdout; a longer one means the plugin is broken.
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Longest stderr line forwarded to the log; the rest of that line is dropped.
const MAX_LOG_LINE_BYTES: usize = 4 * 1024;

const FIRST_RESTART_DELAY: Duration = Duration::from_millis(200);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// How long a process gets to exit after `shutdown`, or after closing its stdout, before it is
/// killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long answers written just before an exit are still read once the process is gone.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

const RATE_LIMITED: i64 = -32001;
const NOT_FOUND: i64 = -32002;
/// The wait Codex assumes when a rate-limit error carries no `retryAfterSeconds`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How to run one plugin.
#[derive(Clone)]
pub struct PluginConfig {
    /// The name jobs refer to the provider by; also the `provider` field of its log lines.
    pub name: String,
    /// The program to run: a path, or a name looked up on `PATH`.
    pub command: String,
    pub args: Vec<String>,
    /// Variables set for the plugin on top of curator's own environment, which it inherits.
    pub env: Vec<(String, String)>,
    /// Sent as `adminConfig` in `initialize`, at start and at every restart.
    pub settings: Value,
    /// Sent as `credentials` in `initialize`, and set as environment variables of the same
    /// names, at start and at every restart.
    pub credentials: std::collections::BTreeMap<String, super::http::Secret>,
    /// Deadline of one call, including the wait for and the run of a restart it triggers. Also
    /// bounds `initialize` in [`PluginProvider::start`].
    pub timeout: Duration,
    /// The directory the plugin runs in; curator's own when `None`.
    pub working_dir: Option<PathBuf>,
}

// Credentials reach plugins through `env`, so its values never reach a log line.
impl fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("PluginConfig")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &env_names)
            .field("settings", &self.settings)
            .field("credentials", &self.credentials.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("working_dir", &self.working_dir)
            .finish()
    }
}

/// What a plugin says about itself in answer to `initialize` (Codex `PluginManifest`, the fields
/// curator uses; others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub name: String,
    pub display_name: String,
    pub version: String,
    /// Declared, not checked: Codex does not check it either, and plugins in use declare `1.0`
    /// to `1.2`.
    pub protocol_version: String,
    pub capabilities: ManifestCapabilities,
}

/// The manifest's `capabilities`, of which curator reads only `metadataProvider`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestCapabilities {
    /// The entity kinds the plugin returns metadata for: `"series"`, `"book"`. Absent for
    /// plugins that are not metadata providers.
    #[serde(default)]
    pub metadata_provider: Vec<String>,
}

/// A started plugin. All methods take `&self` and may be called from many tasks at once; each
/// call has the configured timeout. The process is killed when the provider is dropped.
pub struct PluginProvider {
    config: PluginConfig,
    /// The manifest of the first start; a restart that reports a different one is logged.
    manifest: Manifest,
    capabilities: Capabilities,
    /// Held across a restart, so that one call restarts the process and the others wait for it.
    slot: tokio::sync::Mutex<Slot>,
    /// The wait between a process's end and its restart: doubled by each restart, reset by each
    /// answered call.
    restart_delay: Mutex<Duration>,
    /// Calls in a row that timed out; at [`HUNG_AFTER`] the process is taken as hung.
    timeouts_in_a_row: AtomicU64,
    /// How many processes were started, the first included.
    starts: AtomicU64,
}

/// Calls in a row that time out before a plugin is killed and restarted: a process that still
/// runs but answers nothing is as useless as one that died.
const HUNG_AFTER: u64 = 3;

struct Slot {
    connection: Result<Arc<Connection>, Down>,
    shut_down: bool,
}

/// Why no process runs after a failed restart, and since when.
struct Down {
    reason: String,
    since: Instant,
}

/// A JSON-RPC error object as the plugin sent it.
#[derive(Debug, Clone, Deserialize)]
struct RpcError {
    code: i64,
    message: String,
    #[serde(default)]
    data: Option<Value>,
}

/// A call's answer: the `result`, or the `error` the plugin sent instead.
type Answer = Result<Value, RpcError>;

/// Why a call got no answer at all, before it is named by provider and method.
#[derive(Debug, Clone)]
enum Failure {
    /// The process is gone; the text names its exit status.
    Ended(String),
    /// The plugin broke the protocol.
    Invalid(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Ended(reason) | Failure::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl PluginProvider {
    /// Spawns the plugin and sends `initialize` (`adminConfig` from the settings, `logLevel`
    /// `info`). Fails if the process cannot be spawned, does not answer within the timeout, or
    /// answers with something that is not a manifest. No restart is attempted here.
    pub async fn start(config: PluginConfig) -> Result<PluginProvider, ProviderError> {
        let launched = tokio::time::timeout(config.timeout, launch(&config)).await;
        let (connection, manifest) = match launched {
            Ok(launched) => launched?,
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: config.name.clone(),
                    method: "initialize".to_owned(),
                    timeout: config.timeout,
                });
            }
        };
        info!(
            provider = %config.name,
            plugin = %manifest.name,
            version = %manifest.version,
            protocol = %manifest.protocol_version,
            "plugin started"
        );

        Ok(PluginProvider {
            capabilities: Capabilities::from_list(&manifest.capabilities.metadata_provider),
            manifest,
            slot: tokio::sync::Mutex::new(Slot { connection: Ok(connection), shut_down: false }),
            restart_delay: Mutex::new(FIRST_RESTART_DELAY),
            timeouts_in_a_row: AtomicU64::new(0),
            starts: AtomicU64::new(1),
            config,
        })
    }

    /// The configured name, which may differ from the manifest's.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// How many times the plugin's process was started, the first time included.
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::Relaxed)
    }

    /// What the plugin returns metadata for, from the manifest of its first start.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The manifest of the first start.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Fetches one series or book by the plugin's ID for it (`metadata/series/get` or
    /// `metadata/book/get`). The answer must be a JSON object; error -32002 is `NotFound`, -32001
    /// is `RateLimited` (with `data.retryAfterSeconds`, 60 s when absent), other codes `Rpc`.
    pub async fn get(
        &self,
        kind: EntityKind,
        external_id: &str,
    ) -> Result<Metadata, ProviderError> {
        let method = match kind {
            EntityKind::Series => "metadata/series/get",
            EntityKind::Book => "metadata/book/get",
        };
        match self.call(method, Some(json!({ "externalId": external_id }))).await? {
            Ok(Value::Object(metadata)) => Ok(metadata),
            Ok(other) => Err(self.protocol_error(
                method,
                format!("expected a JSON object, got {}", json_type(&other)),
            )),
            Err(error) if error.code == NOT_FOUND => Err(ProviderError::NotFound {
                provider: self.config.name.clone(),
                kind: kind.as_str(),
                external_id: external_id.to_owned(),
            }),
            Err(error) => Err(self.rpc_error(method, error)),
        }
    }

    /// Asks the plugin for its best candidate (`metadata/series/match`, `metadata/book/match`).
    /// The protocol's answer is `{match: SearchResult | null, confidence, alternatives?}`; a bare
    /// `SearchResult` or `null`, which older hosts expected, is read too, a bare result taking its
    /// `relevanceScore` as the confidence (0 when absent, so it never attaches by itself).
    pub async fn match_entry(
        &self,
        kind: EntityKind,
        query: &MatchQuery,
    ) -> Result<Option<MatchCandidate>, ProviderError> {
        let method = match kind {
            EntityKind::Series => "metadata/series/match",
            EntityKind::Book => "metadata/book/match",
        };
        let mut params = serde_json::to_value(query).expect("a match query serialises");
        if kind == EntityKind::Series {
            // The series call takes one `author`; the book call takes the `authors` list.
            let first = query.authors.first().cloned();
            let object = params.as_object_mut().expect("a match query is an object");
            object.remove("authors");
            object.remove("isbn");
            if let Some(author) = first {
                object.insert("author".into(), Value::String(author));
            }
        }
        let answer = match self.call(method, Some(params)).await? {
            Ok(answer) => answer,
            Err(error) if error.code == NOT_FOUND => return Ok(None),
            Err(error) => return Err(self.rpc_error(method, error)),
        };
        read_match(&answer).map_err(|reason| self.protocol_error(method, reason))
    }

    /// Checks that the plugin answers: `ping` must return `"pong"`.
    pub async fn ping(&self) -> Result<(), ProviderError> {
        match self.call("ping", None).await? {
            Ok(Value::String(pong)) if pong == "pong" => Ok(()),
            Ok(other) => {
                Err(self.protocol_error("ping", format!("expected `\"pong\"`, got `{other}`")))
            }
            Err(error) => Err(self.rpc_error("ping", error)),
        }
    }

    /// Sends `shutdown` and waits up to 5 s for the process to exit, then kills it. Later calls
    /// fail with `Unavailable`; the process is not restarted.
    pub async fn shutdown(&self) {
        let connection = {
            let mut slot = self.slot.lock().await;
            slot.shut_down = true;
            match &slot.connection {
                Ok(connection) if connection.failure().is_none() => Arc::clone(connection),
                _ => return,
            }
        };
        lock(&connection.pending).stopping = true;

        let polite = async {
            if let Err(failure) = connection.request("shutdown", None).await {
                let provider = &self.config.name;
                debug!(provider, %failure, "plugin gave no answer to `shutdown`");
            }
            connection.wait_ended().await;
        };
        if tokio::time::timeout(EXIT_GRACE, polite).await.is_err() {
            warn!(provider = %self.config.name, "plugin did not exit after `shutdown`; killing it");
            connection.kill();
            connection.wait_ended().await;
        }
    }

    /// Sends one request on the running process, restarting it first if it has ended, all within
    /// the configured timeout.
    async fn call(&self, method: &str, params: Option<Value>) -> Result<Answer, ProviderError> {
        let deadline = Instant::now() + self.config.timeout;
        let attempt = async {
            let connection = self.connection(deadline).await?;
            connection.request(method, params).await.map_err(|failure| match failure {
                Failure::Ended(reason) => self.unavailable(reason),
                Failure::Invalid(reason) => self.protocol_error(method, reason),
            })
        };
        let answer = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(answer) => answer?,
            Err(_) => {
                self.count_timeout().await;
                return Err(ProviderError::Timeout {
                    provider: self.config.name.clone(),
                    method: method.to_owned(),
                    timeout: self.config.timeout,
                });
            }
        };

        *lock(&self.restart_delay) = FIRST_RESTART_DELAY;
        self.timeouts_in_a_row.store(0, Ordering::Relaxed);
        Ok(answer)
    }

    /// Counts a timed-out call, and kills the process after [`HUNG_AFTER`] in a row so that the
    /// next call restarts it.
    async fn count_timeout(&self) {
        if self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 < HUNG_AFTER {
            return;
        }
        self.timeouts_in_a_row.store(0, Ordering::Relaxed);
        let slot = self.slot.lock().await;
        if let Ok(connection) = &slot.connection
            && connection.failure().is_none()
        {
            warn!(provider = %self.config.name, timeouts = HUNG_AFTER, "plugin stopped answering; killing it to restart it");
            connection.kill();
            // Once it has ended, the next call sees it gone and restarts it.
            let _ = tokio::time::timeout(EXIT_GRACE, connection.wait_ended()).await;
        }
    }

    /// The running connection, or a new one when the process has ended: at most one restart,
    /// after the back-off delay, and only if that delay ends before `deadline`.
    async fn connection(&self, deadline: Instant) -> Result<Arc<Connection>, ProviderError> {
        let mut slot = self.slot.lock().await;
        if slot.shut_down {
            return Err(self.unavailable("it was shut down".to_owned()));
        }
        let (reason, since) = match &slot.connection {
            Ok(connection) => match connection.failure() {
                None => return Ok(Arc::clone(connection)),
                Some((failure, since)) => (failure.to_string(), since),
            },
            Err(down) => (down.reason.clone(), down.since),
        };

        let delay = *lock(&self.restart_delay);
        let restart_at = since + delay;
        if restart_at > deadline {
            let wait = restart_at.saturating_duration_since(Instant::now());
            return Err(self.unavailable(format!("{reason}; the next restart is in {wait:?}")));
        }
        tokio::time::sleep_until(restart_at).await;
        *lock(&self.restart_delay) = (delay * 2).min(MAX_RESTART_DELAY);

        warn!(provider = %self.config.name, %reason, "restarting plugin");
        match launch(&self.config).await {
            Ok((connection, manifest)) => {
                // Capabilities were handed out from the first manifest; switching now would
                // change them under running jobs.
                if manifest != self.manifest {
                    warn!(
                        provider = %self.config.name,
                        version = %manifest.version,
                        "plugin manifest changed on restart; keeping the first one"
                    );
                }
                info!(provider = %self.config.name, "plugin restarted");
                self.starts.fetch_add(1, Ordering::Relaxed);
                slot.connection = Ok(Arc::clone(&connection));
                Ok(connection)
            }
            Err(error) => {
                warn!(provider = %self.config.name, %error, "plugin restart failed");
                let reason = "its last restart failed".to_owned();
                slot.connection = Err(Down { reason, since: Instant::now() });
                Err(error)
            }
        }
    }

    fn unavailable(&self, reason: String) -> ProviderError {
        ProviderError::Unavailable { provider: self.config.name.clone(), reason }
    }

    fn protocol_error(&self, method: &str, reason: String) -> ProviderError {
        ProviderError::Protocol {
            provider: self.config.name.clone(),
            method: method.to_owned(),
            reason,
        }
    }

    fn rpc_error(&self, method: &str, error: RpcError) -> ProviderError {
        rpc_error(&self.config.name, method, error)
    }
}

/// Maps an error answer that has no meaning specific to the method.
fn rpc_error(provider: &str, method: &str, error: RpcError) -> ProviderError {
    if error.code == RATE_LIMITED {
        let retry_after = error
            .data
            .as_ref()
            .and_then(|data| data.get("retryAfterSeconds"))
            .and_then(Value::as_f64)
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .unwrap_or(DEFAULT_RETRY_AFTER);
        return ProviderError::RateLimited { provider: provider.to_owned(), retry_after };
    }
    ProviderError::Rpc {
        provider: provider.to_owned(),
        method: method.to_owned(),
        code: error.code,
        message: error.message,
    }
}

/// Reads a match answer in either of the shapes described at [`PluginProvider::match_entry`].
fn read_match(answer: &Value) -> Result<Option<MatchCandidate>, String> {
    let candidate = |result: &Value, confidence: f64| -> Result<MatchCandidate, String> {
        let external_id = match result.get("externalId") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err("the match has no `externalId`".into()),
        };
        let title = result.get("title").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !(0.0..=1.0).contains(&confidence) {
            return Err(format!("confidence `{confidence}` is outside 0 to 1"));
        }
        Ok(MatchCandidate { external_id, title, confidence })
    };
    match answer {
        Value::Null => Ok(None),
        Value::Object(object) if object.contains_key("match") => {
            let confidence = match object.get("confidence") {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                None | Some(Value::Null) => 0.0,
                Some(other) => return Err(format!("`confidence` is `{other}`, not a number")),
            };
            match &object["match"] {
                Value::Null => Ok(None),
                result @ Value::Object(_) => candidate(result, confidence).map(Some),
                other => Err(format!("`match` is {}, not an object or null", json_type(other))),
            }
        }
        Value::Object(object) => {
            let score = object.get("relevanceScore").and_then(Value::as_f64).unwrap_or(0.0);
            candidate(answer, score).map(Some)
        }
        other => Err(format!("expected an object or null, got {}", json_type(other))),
    }
}

/// Spawns the process and runs `initialize` on it. The caller bounds it in time; dropping the
/// future kills the process.
async fn launch(config: &PluginConfig) -> Result<(Arc<Connection>, Manifest), ProviderError> {
    let connection = Connection::spawn(config)?;

    // The settings go out as `adminConfig` and, for plugins written against older hosts, as the
    // merged `config`; curator has no per-user settings.
    let mut params = json!({
        "config": config.settings,
        "adminConfig": config.settings,
        "userConfig": {},
        "logLevel": "info",
    });
    if !config.credentials.is_empty() {
        let credentials: serde_json::Map<String, Value> = config
            .credentials
            .iter()
            .map(|(key, secret)| (key.clone(), Value::String(secret.expose().to_owned())))
            .collect();
        params["credentials"] = Value::Object(credentials);
    }
    let invalid = |reason| ProviderError::Protocol {
        provider: config.name.clone(),
        method: "initialize".to_owned(),
        reason,
    };
    let manifest = match connection.request("initialize", Some(params)).await {
        Ok(Ok(manifest)) => parse_manifest(manifest).map_err(invalid)?,
        Ok(Err(error)) => return Err(rpc_error(&config.name, "initialize", error)),
        Err(Failure::Invalid(reason)) => return Err(invalid(reason)),
        Err(Failure::Ended(reason)) => {
            return Err(ProviderError::Unavailable { provider: config.name.clone(), reason });
        }
    };
    Ok((Arc::new(connection), manifest))
}

fn parse_manifest(manifest: Value) -> Result<Manifest, String> {
    const OBSOLETE_FORM: &str = "`capabilities.metadataProvider` is a boolean, the obsolete \
                                 form; expected a list such as `[\"series\", \"book\"]`";
    let kinds = manifest.pointer("/capabilities/metadataProvider");
    if kinds.is_some_and(Value::is_boolean) {
        return Err(OBSOLETE_FORM.to_owned());
    }
    serde_json::from_value(manifest).map_err(|error| format!("not a plugin manifest: {error}"))
}

/// One running process: a writer task feeding its stdin, a supervisor task reading its stdout
/// and waiting for its exit, and the calls waiting for answers.
struct Connection {
    next_id: AtomicU64,
    /// Whole request lines for the writer task.
    requests: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    /// Asks the supervisor to kill the process; dropping it (with the connection) does too.
    kill: Mutex<Option<oneshot::Sender<()>>>,
    /// Becomes `true` once the process is gone and every waiting call has been failed.
    ended: watch::Receiver<bool>,
}

#[derive(Default)]
struct Pending {
    waiters: HashMap<u64, oneshot::Sender<Result<Answer, Failure>>>,
    /// Set once, when the connection ends (with the time); later calls fail with it at once.
    closed: Option<(Failure, Instant)>,
    /// `shutdown` was sent, so the exit that follows is no news.
    stopping: bool,
}

impl Connection {
    fn spawn(config: &PluginConfig) -> Result<Connection, ProviderError> {
        let mut command = Command::new(&config.command);
        command
            .args(&config.args)
            .envs(config.env.iter().map(|(name, value)| (name, value)))
            .envs(config.credentials.iter().map(|(name, secret)| (name, secret.expose())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &config.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|error| ProviderError::Unavailable {
            provider: config.name.clone(),
            reason: format!("cannot start `{}`: {error}", config.command),
        })?;
        debug!(provider = %config.name, pid = child.id(), "plugin process spawned");

        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (requests, request_lines) = mpsc::unbounded_channel();
        let (kill, kill_requested) = oneshot::channel();
        let (ended_tx, ended) = watch::channel(false);
        let pending = Arc::new(Mutex::new(Pending::default()));

        tokio::spawn(write_requests(stdin, request_lines));
        tokio::spawn(forward_stderr(stderr, config.name.clone()));
        tokio::spawn(supervise(
            child,
            stdout,
            requests.clone(),
            Arc::clone(&pending),
            kill_requested,
            ended_tx,
            config.name.clone(),
        ));

        Ok(Connection {
            next_id: AtomicU64::new(1),
            requests,
            pending,
            kill: Mutex::new(Some(kill)),
            ended,
        })
    }

    /// Sends one request and waits for its answer, without a deadline of its own: the caller
    /// sets one, and dropping this future forgets the request.
    async fn request(&self, method: &str, params: Option<Value>) -> Result<Answer, Failure> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer_tx, answer) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if let Some((failure, _)) = &pending.closed {
                return Err(failure.clone());
            }
            pending.waiters.insert(id, answer_tx);
        }
        let _waiting = Waiting { pending: &self.pending, id };

        let mut message = json!({ "jsonrpc": "2.0", "id": id, "method": method });
        if let Some(params) = params {
            message["params"] = params;
        }
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        // A closed writer means the process is going away; the supervisor then fails this call
        // with the exit status, which says more than the write error would.
        let _ = self.requests.send(line);

        answer.await.unwrap_or_else(|_| Err(Failure::Ended("its connection was dropped".into())))
    }

    /// Why and since when the connection is closed, or `None` while it is open.
    fn failure(&self) -> Option<(Failure, Instant)> {
        lock(&self.pending).closed.clone()
    }

    fn kill(&self) {
        if let Some(kill) = lock(&self.kill).take() {
            let _ = kill.send(());
        }
    }

    async fn wait_ended(&self) {
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(|ended| *ended).await;
    }
}

/// Removes a call's waiter when the call ends, including when its timeout drops it.
struct Waiting<'a> {
    pending: &'a Mutex<Pending>,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.pending).waiters.remove(&self.id);
    }
}

/// Writes request lines to the plugin's stdin in order. A task rather than a lock around stdin:
/// a call dropped by its timeout in the middle of a write would leave half a line behind.
async fn write_requests(mut stdin: ChildStdin, mut lines: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(line) = lines.recv().await {
        if stdin.write_all(&line).await.is_err() {
            return;
        }
    }
}

/// Routes the process's answers until it ends, then fails every waiting call with the reason
/// and marks the connection closed.
async fn supervise(
    mut child: Child,
    stdout: ChildStdout,
    replies: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    mut kill: oneshot::Receiver<()>,
    ended: watch::Sender<bool>,
    provider: String,
) {
    let responses = read_responses(stdout, replies, Arc::clone(&pending), provider.clone());
    tokio::pin!(responses);

    let (failure, expected) = tokio::select! {
        end = &mut responses => match end {
            Ok(()) => (Failure::Ended(reap(&mut child).await), false),
            Err(reason) => {
                let _ = child.kill().await;
                (Failure::Invalid(reason), false)
            }
        },
        status = child.wait() => {
            let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, &mut responses).await;
            (Failure::Ended(exit_reason(status)), false)
        }
        // Also taken when the connection is dropped with its provider.
        _ = &mut kill => {
            let _ = child.kill().await;
            (Failure::Ended("it was stopped".to_owned()), true)
        }
    };

    let (waiters, stopping) = {
        let mut pending = lock(&pending);
        pending.closed = Some((failure.clone(), Instant::now()));
        (std::mem::take(&mut pending.waiters), pending.stopping)
    };
    if expected || stopping {
        info!(provider, reason = %failure, "plugin stopped");
    } else {
        warn!(provider, reason = %failure, waiting = waiters.len(), "plugin ended");
    }
    for waiter in waiters.into_values() {
        let _ = waiter.send(Err(failure.clone()));
    }
    let _ = ended.send(true);
}

/// Waits for a process whose stdout has closed, killing it if it lingers.
async fn reap(child: &mut Child) -> String {
    match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(status) => exit_reason(status),
        Err(_) => {
            let _ = child.kill().await;
            "it closed its stdout and was killed".to_owned()
        }
    }
}

fn exit_reason(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => format!("its process ended ({status})"),
        Err(error) => format!("its process ended with an unknown status: {error}"),
    }
}

/// Routes each answer on stdout to its call until the output ends (`Ok`) or breaks the protocol
/// (`Err` with the reason).
async fn read_responses(
    stdout: ChildStdout,
    replies: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    provider: String,
) -> Result<(), String> {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        match read_line_capped(&mut reader, &mut line, MAX_LINE_BYTES).await {
            Ok(LineEnd::Eof) => return Ok(()),
            Ok(LineEnd::TooLong) => {
                return Err(format!("it sent a line longer than {MAX_LINE_BYTES} bytes"));
            }
            Err(error) => return Err(format!("reading its stdout failed: {error}")),
            Ok(LineEnd::Line) if line.trim_ascii().is_empty() => {}
            Ok(LineEnd::Line) => route(&line, &replies, &pending, &provider),
        }
    }
}

fn route(
    line: &[u8],
    replies: &mpsc::UnboundedSender<Vec<u8>>,
    pending: &Mutex<Pending>,
    provider: &str,
) {
    if let Some(reply) = refuse_reverse_call(line) {
        // The plugin waits for this answer: without it, it would hang until its own timeout.
        debug!(provider, "refused a call from the plugin to the host");
        let _ = replies.send(reply);
        return;
    }
    let (id, answer) = match parse_response(line) {
        Ok(response) => response,
        Err(why) => {
            let line = String::from_utf8_lossy(&line[..line.len().min(200)]);
            warn!(provider, why, %line, "skipped a line from the plugin that is not a response");
            return;
        }
    };
    let waiter = lock(pending).waiters.remove(&id);
    match waiter {
        Some(waiter) => {
            let _ = waiter.send(answer.map_err(Failure::Invalid));
        }
        None => debug!(provider, id, "dropped an answer to a call that timed out"),
    }
}

/// The answer to a request the plugin makes of the host (`storage/*`, `releases/*`, tagged with
/// `parentRequestId`): error -32601, since curator offers plugins no host services. `None` when
/// the line is not a request.
fn refuse_reverse_call(line: &[u8]) -> Option<Vec<u8>> {
    let message: serde_json::Map<String, Value> = serde_json::from_slice(line).ok()?;
    let method = message.get("method")?.as_str()?;
    let id = message.get("id").filter(|id| !id.is_null())?;
    let error = json!({
        "code": -32601,
        "message": format!("Method not found: {method} (curator offers plugins no host methods)"),
    });
    let mut reply = json!({ "jsonrpc": "2.0", "id": id, "error": error }).to_string().into_bytes();
    reply.push(b'\n');
    Some(reply)
}

/// Reads a line as a JSON-RPC response: its `id` and either its answer or why that answer is
/// invalid. `Err` when the line is not a response at all.
fn parse_response(line: &[u8]) -> Result<(u64, Result<Answer, String>), &'static str> {
    let Ok(Value::Object(mut message)) = serde_json::from_slice::<Value>(line) else {
        return Err("not a JSON object");
    };
    // Reverse calls are answered by `refuse_reverse_call`; a notification is dropped.
    if message.contains_key("method") {
        return Err("a request or notification, which curator does not serve");
    }
    let Some(id) = message.get("id").and_then(Value::as_u64) else {
        return Err("a response without an `id` curator sent");
    };

    let answer = if let Some(error) = message.remove("error") {
        serde_json::from_value::<RpcError>(error)
            .map(Err)
            .map_err(|error| format!("invalid `error` object: {error}"))
    } else if let Some(result) = message.remove("result") {
        Ok(Ok(result))
    } else {
        Err("a response with neither `result` nor `error`".to_owned())
    };
    Ok((id, answer))
}

/// Forwards the plugin's stderr to the debug log, line by line. It reads to the end, however
/// much comes: a plugin blocked on a full stderr pipe would stop answering.
async fn forward_stderr(stderr: ChildStderr, provider: String) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        let truncated = match read_line_capped(&mut reader, &mut line, MAX_LOG_LINE_BYTES).await {
            Ok(LineEnd::Line) => false,
            Ok(LineEnd::TooLong) => true,
            Ok(LineEnd::Eof) | Err(_) => return,
        };
        let text = String::from_utf8_lossy(&line);
        debug!(provider, line = %text.trim_end(), truncated, "plugin stderr");
        if truncated && skip_line(&mut reader).await.is_err() {
            return;
        }
    }
}

/// How [`read_line_capped`] stopped.
#[derive(Debug, PartialEq, Eq)]
enum LineEnd {
    /// A whole line is in the buffer, without its `\n` (the last line may lack one).
    Line,
    /// The line is longer than the cap: its first `cap` bytes are in the buffer, the rest is
    /// still unread.
    TooLong,
    /// The input ended before any byte of a new line.
    Eof,
}

/// Reads one line into `line` (cleared first), holding at most `cap` bytes of it in memory.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<LineEnd> {
    line.clear();
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(if line.is_empty() { LineEnd::Eof } else { LineEnd::Line });
        }
        let newline = buffer.iter().position(|&byte| byte == b'\n');
        let content = &buffer[..newline.unwrap_or(buffer.len())];
        let room = cap - line.len();
        if content.len() > room {
            line.extend_from_slice(&content[..room]);
            reader.consume(room);
            return Ok(LineEnd::TooLong);
        }
        line.extend_from_slice(content);
        let used = content.len() + usize::from(newline.is_some());
        reader.consume(used);
        if newline.is_some() {
            return Ok(LineEnd::Line);
        }
    }
}

/// Discards input up to and including the next `\n`.
async fn skip_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<()> {
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(());
        }
        let newline = buffer.iter().position(|&byte| byte == b'\n');
        let used = newline.map_or(buffer.len(), |at| at + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(());
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// Every critical section is a single map or field update, so a panicking holder cannot leave the
// data half-changed.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    // The echo plugin is built by `cargo test`; `cargo test --lib` alone may find an old one:
    // build it with `cargo build --example echo-plugin`.
    use std::path::Path;
    use std::time::Duration;

    use tokio::task::JoinSet;

    use super::*;

    #[test]
    fn reads_both_shapes_of_a_match_answer() {
        let sdk = json!({"match": {"externalId": "30002", "title": "Berserk"}, "confidence": 0.92});
        let found = read_match(&sdk).unwrap().unwrap();
        assert_eq!((found.external_id.as_str(), found.confidence), ("30002", 0.92));
        assert_eq!(read_match(&json!({"match": null, "confidence": 0.1})).unwrap(), None);
        assert_eq!(read_match(&Value::Null).unwrap(), None);
        let bare = json!({"externalId": 7, "title": "X", "relevanceScore": 0.5});
        assert_eq!(read_match(&bare).unwrap().unwrap().external_id, "7");
        let unsure = read_match(&json!({"externalId": "7", "title": "X"})).unwrap().unwrap();
        assert_eq!(unsure.confidence, 0.0, "a bare result without a score is never attached");
        let bad = read_match(&json!({"match": {"title": "X"}, "confidence": 1})).unwrap_err();
        assert_eq!(bad, "the match has no `externalId`");
        let range =
            read_match(&json!({"match": {"externalId": "1"}, "confidence": 7})).unwrap_err();
        assert_eq!(range, "confidence `7` is outside 0 to 1");
    }

    /// The `echo-plugin` example, which `cargo test` builds next to the test binaries.
    fn echo_plugin() -> String {
        let test_binary = std::env::current_exe().expect("the test binary has a path");
        // target/<profile>/deps/<test binary> -> target/<profile>/examples/echo-plugin
        let profile_dir = test_binary.parent().and_then(Path::parent).expect("a target directory");
        let name = format!("echo-plugin{}", std::env::consts::EXE_SUFFIX);
        let plugin = profile_dir.join("examples").join(name);
        assert!(
            plugin.is_file(),
            "expected the echo plugin at `{}`; build it with `cargo build --example echo-plugin`",
            plugin.display()
        );
        plugin.to_str().expect("a UTF-8 path").to_owned()
    }

    fn echo_config(timeout: Duration) -> PluginConfig {
        PluginConfig {
            name: "echo-test".to_owned(),
            command: echo_plugin(),
            args: Vec::new(),
            env: Vec::new(),
            credentials: Default::default(),
            settings: json!({ "greeting": "hello" }),
            timeout,
            working_dir: None,
        }
    }

    async fn start_echo(timeout: Duration) -> PluginProvider {
        PluginProvider::start(echo_config(timeout)).await.expect("the echo plugin starts")
    }

    #[tokio::test]
    async fn starts_and_reads_the_manifest() {
        let plugin = start_echo(Duration::from_secs(10)).await;

        assert_eq!(plugin.name(), "echo-test", "the configured name, not the manifest's");
        let manifest = plugin.manifest();
        assert_eq!(manifest.name, "echo");
        assert_eq!(manifest.display_name, "Echo");
        assert_eq!(manifest.version, "1.0.0");
        assert_eq!(manifest.protocol_version, "1.2");
        assert_eq!(plugin.capabilities(), Capabilities { series: true, book: true });
        plugin.shutdown().await;

        let mut config = echo_config(Duration::from_secs(10));
        config.env.push(("ECHO_CAPABILITIES".to_owned(), "book".to_owned()));
        let books_only = PluginProvider::start(config).await.expect("the echo plugin starts");
        assert_eq!(books_only.capabilities(), Capabilities { series: false, book: true });
        books_only.shutdown().await;
    }

    #[tokio::test]
    async fn gets_series_and_book_metadata() {
        let plugin = start_echo(Duration::from_secs(10)).await;

        let series = plugin.get(EntityKind::Series, "abc").await.expect("series metadata");
        assert_eq!(series["externalId"], "abc");
        assert_eq!(series["externalUrl"], "https://echo.invalid/series/abc");
        assert_eq!(series["title"], "Echo abc");
        assert_eq!(series["status"], "ongoing");
        assert_eq!(series["totalVolumeCount"], 3, "the length of the ID");
        assert_eq!(series["rating"], json!({ "score": 80, "voteCount": 10, "source": "echo" }));

        let book = plugin.get(EntityKind::Book, "b-1").await.expect("book metadata");
        assert_eq!(book["externalId"], "b-1");
        assert_eq!(book["title"], "Echo book b-1");
        assert_eq!(book["pageCount"], 200);
        plugin.shutdown().await;
    }

    #[tokio::test]
    async fn a_call_from_the_plugin_to_the_host_is_refused_at_once() {
        let plugin = start_echo(Duration::from_secs(3)).await;
        let series = plugin.get(EntityKind::Series, "storage").await.expect("an answer in time");
        let host_said: Value = serde_json::from_str(series["summary"].as_str().unwrap()).unwrap();
        assert_eq!(host_said["error"]["code"], -32601, "{host_said}");
        assert_eq!(
            host_said["error"]["message"],
            "Method not found: storage/get (curator offers plugins no host methods)"
        );
        plugin.shutdown().await;
    }

    #[tokio::test]
    async fn missing_id_is_not_found() {
        let plugin = start_echo(Duration::from_secs(10)).await;

        let error = plugin.get(EntityKind::Series, "missing").await.unwrap_err();
        assert!(
            matches!(
                &error,
                ProviderError::NotFound { provider, kind: "series", external_id }
                    if provider == "echo-test" && external_id == "missing"
            ),
            "expected NotFound for series `missing`, got {error:?}"
        );
        plugin.shutdown().await;
    }

    #[tokio::test]
    async fn rate_limit_carries_retry_after() {
        let plugin = start_echo(Duration::from_secs(10)).await;

        let error = plugin.get(EntityKind::Series, "ratelimited").await.unwrap_err();
        assert!(
            matches!(error, ProviderError::RateLimited { retry_after, .. }
                if retry_after == Duration::from_secs(1)),
            "expected RateLimited with a 1 s wait, got {error:?}"
        );
        plugin.shutdown().await;
    }

    #[tokio::test]
    async fn slow_call_times_out() {
        let timeout = Duration::from_secs(1);
        let plugin = start_echo(timeout).await;

        let error = plugin.get(EntityKind::Series, "slow").await.unwrap_err();
        assert!(
            matches!(&error, ProviderError::Timeout { method, timeout: t, .. }
                if method == "metadata/series/get" && *t == timeout),
            "expected a timeout of `metadata/series/get`, got {error:?}"
        );
        let series = plugin.get(EntityKind::Series, "after").await;
        assert!(series.is_ok(), "expected the plugin to answer after a timeout, got {series:?}");
        plugin.shutdown().await;
    }

    #[tokio::test]
    async fn crash_fails_waiting_call_and_next_call_restarts() {
        let plugin = start_echo(Duration::from_secs(10)).await;

        let began = std::time::Instant::now();
        let (slow, crash) = tokio::join!(plugin.get(EntityKind::Series, "slow"), async {
            // The slow call must be waiting when the process dies.
            tokio::time::sleep(Duration::from_millis(200)).await;
            plugin.get(EntityKind::Series, "crash").await
        });
        for (id, result) in [("slow", slow), ("crash", crash)] {
            assert!(
                matches!(&result, Err(ProviderError::Unavailable { reason, .. })
                    if reason.contains("exit status: 3")),
                "expected call `{id}` to fail naming exit status 3, got {result:?}"
            );
        }
        assert!(began.elapsed() < Duration::from_secs(3), "the slow call failed before its answer");

        let series = plugin.get(EntityKind::Series, "again").await;
        assert!(series.is_ok(), "expected the next call to restart the plugin, got {series:?}");
        plugin.shutdown().await;
    }

    #[tokio::test]
    async fn a_plugin_that_stops_answering_is_restarted() {
        let plugin = start_echo(Duration::from_millis(500)).await;
        for _ in 0..HUNG_AFTER {
            let error = plugin.get(EntityKind::Series, "hang").await.unwrap_err();
            assert!(matches!(error, ProviderError::Timeout { .. }), "{error}");
        }
        let series = plugin.get(EntityKind::Series, "again").await;
        assert!(series.is_ok(), "expected a restarted plugin to answer, got {series:?}");
        assert_eq!(
            plugin.starts(),
            2,
            "killed after {HUNG_AFTER} timeouts in a row, started again"
        );
        plugin.shutdown().await;
    }

    #[tokio::test]
    async fn garbage_line_is_skipped() {
        let plugin = start_echo(Duration::from_secs(10)).await;

        let series = plugin.get(EntityKind::Series, "garbage").await.expect("an answer");
        assert_eq!(series["title"], "Echo garbage");
        plugin.ping().await.expect("the plugin still answers");
        plugin.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_are_routed_by_id() {
        let plugin = Arc::new(start_echo(Duration::from_secs(10)).await);

        let mut calls = JoinSet::new();
        let slow = Arc::clone(&plugin);
        calls.spawn(async move { ("slow".to_owned(), slow.get(EntityKind::Series, "slow").await) });
        // The slow request goes out first, so the answers come back out of order.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for n in 0..20 {
            let plugin = Arc::clone(&plugin);
            let id = format!("series-{n}");
            calls.spawn(async move {
                let metadata = plugin.get(EntityKind::Series, &id).await;
                (id, metadata)
            });
        }

        let mut finished = Vec::new();
        while let Some(joined) = calls.join_next().await {
            let (id, metadata) = joined.expect("the call task does not panic");
            let metadata = metadata.unwrap_or_else(|e| panic!("expected `{id}` to answer: {e}"));
            assert_eq!(metadata["externalId"], id.as_str(), "the answer belongs to its call");
            finished.push(id);
        }
        assert_eq!(finished.len(), 21);
        assert_eq!(finished.last().map(String::as_str), Some("slow"), "the slow call ends last");
        plugin.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_stops_the_process() {
        let plugin = start_echo(Duration::from_secs(10)).await;

        plugin.shutdown().await;

        let connection = match &plugin.slot.lock().await.connection {
            Ok(connection) => Arc::clone(connection),
            Err(down) => panic!("expected the shut-down connection, got down: {}", down.reason),
        };
        let (failure, _) = connection.failure().expect("the connection is closed");
        assert!(
            failure.to_string().contains("exit status: 0"),
            "expected the plugin to exit by itself with status 0, got `{failure}`"
        );
        let ping = plugin.ping().await;
        assert!(
            matches!(&ping, Err(ProviderError::Unavailable { reason, .. })
                if reason.contains("shut down")),
            "expected calls after shutdown to be refused, got {ping:?}"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn over_long_answer_fails_the_call_as_a_protocol_error() {
        // A plugin that starts normally, then answers its next request with a 2 MB line.
        let manifest = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "result": {
                "name": "big",
                "displayName": "Big",
                "version": "1",
                "protocolVersion": "1.2",
                "capabilities": { "metadataProvider": [] },
            },
        });
        let script = format!(
            "read request; echo '{manifest}'; read request; \
             head -c 2000000 /dev/zero | tr '\\0' a; echo; exec sleep 30"
        );
        let mut config = echo_config(Duration::from_secs(10));
        config.command = "sh".to_owned();
        config.args = vec!["-c".to_owned(), script];
        let plugin = PluginProvider::start(config).await.expect("the plugin starts");

        let error = plugin.get(EntityKind::Series, "big").await.unwrap_err();
        assert!(
            matches!(&error, ProviderError::Protocol { method, reason, .. }
                if method == "metadata/series/get" && reason.contains("longer than")),
            "expected a protocol error for the over-long line, got {error:?}"
        );
    }

    #[test]
    fn manifest_errors_name_the_problem() {
        let missing = parse_manifest(json!({ "name": "x", "version": "1" })).unwrap_err();
        assert_eq!(missing, "not a plugin manifest: missing field `displayName`");

        let obsolete = json!({
            "name": "x",
            "displayName": "X",
            "version": "1",
            "protocolVersion": "1.0",
            "capabilities": { "metadataProvider": true },
        });
        assert_eq!(
            parse_manifest(obsolete).unwrap_err(),
            "`capabilities.metadataProvider` is a boolean, the obsolete form; expected a list \
             such as `[\"series\", \"book\"]`"
        );
    }

    #[tokio::test]
    async fn over_long_line_is_cut_at_the_cap() {
        let mut input: &[u8] = b"0123456789\nshort\nlast";
        let mut line = Vec::new();

        assert_eq!(read_line_capped(&mut input, &mut line, 4).await.unwrap(), LineEnd::TooLong);
        assert_eq!(line, b"0123");
        skip_line(&mut input).await.unwrap();
        assert_eq!(read_line_capped(&mut input, &mut line, 8).await.unwrap(), LineEnd::Line);
        assert_eq!(line, b"short");
        assert_eq!(read_line_capped(&mut input, &mut line, 8).await.unwrap(), LineEnd::Line);
        assert_eq!(line, b"last");
        assert_eq!(read_line_capped(&mut input, &mut line, 8).await.unwrap(), LineEnd::Eof);
    }
}
