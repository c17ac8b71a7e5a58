//! What the built-in HTTP providers (`anilist`, `openlibrary`) share: one client per provider
//! with its per-call timeout and User-Agent, credentials read when the provider starts and kept
//! out of every printout, and the one mapping from HTTP answers to [`ProviderError`]s. Each
//! provider owns only its requests and the reading of its answers.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::ProviderError;
use crate::config::{CredentialSource, ProviderConfig};

/// The User-Agent of every request, so a service's operators can tell curator's traffic apart.
pub const USER_AGENT: &str = concat!("curator/", env!("CARGO_PKG_VERSION"));

/// The wait assumed when a 429 answer carries no usable `Retry-After`, as Codex assumes for a
/// rate-limit error without `retryAfterSeconds`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The largest answer read; a bigger one is refused rather than held in memory.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The most of an error answer's own text quoted in an error.
const MAX_DETAIL_CHARS: usize = 200;

/// A credential's value. It prints as `<redacted>` in `Debug` and `Display`, so it cannot reach
/// a log line, an error, the API or the database by being formatted; [`Secret::expose`] is the
/// one way to read it, at the moment it is put on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Reads every configured credential of provider `provider`, refusing names it does not use.
/// A variable that is unset or empty, or a file that cannot be read or is empty, makes the
/// provider unavailable with a reason naming the variable or file, never a value.
pub fn read_credentials(
    provider: &str,
    sources: &BTreeMap<String, CredentialSource>,
    known: &[&str],
) -> Result<BTreeMap<String, Secret>, ProviderError> {
    let unavailable =
        |reason: String| ProviderError::Unavailable { provider: provider.to_string(), reason };
    let mut secrets = BTreeMap::new();
    for (key, source) in sources {
        if !known.contains(&key.as_str()) {
            let expected = match known {
                [] => "it takes no credentials".to_string(),
                _ => format!(
                    "expected {}",
                    known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
            };
            return Err(unavailable(format!("credential `{key}` is not used: {expected}")));
        }
        let value = match source {
            CredentialSource::Env(name) => match std::env::var(name) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    return Err(unavailable(format!(
                        "credential `{key}` comes from environment variable `{name}`, which is \
                         not set"
                    )));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(unavailable(format!(
                        "credential `{key}` comes from environment variable `{name}`, which is \
                         not valid UTF-8"
                    )));
                }
            },
            CredentialSource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    return Err(unavailable(format!(
                        "credential `{key}` comes from file `{}`, which cannot be read: {}",
                        path.display(),
                        io_reason(&e)
                    )));
                }
            },
        };
        // A mounted secret usually ends in a newline; no credential format keeps edge spaces.
        let value = value.trim();
        if value.is_empty() {
            let origin = match source {
                CredentialSource::Env(name) => format!("environment variable `{name}`"),
                CredentialSource::File(path) => format!("file `{}`", path.display()),
            };
            return Err(unavailable(format!("credential `{key}` from {origin} is empty")));
        }
        secrets.insert(key.clone(), Secret::new(value));
    }
    Ok(secrets)
}

/// A provider's `settings` read into its own settings type; none given means the defaults.
pub fn read_settings<T: serde::de::DeserializeOwned + Default>(
    config: &ProviderConfig,
) -> Result<T, ProviderError> {
    if config.settings.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(config.settings.clone()).map_err(|e| ProviderError::Unavailable {
        provider: config.name.clone(),
        reason: format!("its `settings` are invalid: {e}"),
    })
}

/// An I/O error in words, without the OS error number.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

/// One provider's HTTP client: its service root, the per-call timeout, and its secrets.
pub struct HttpClient {
    provider: String,
    base: Url,
    client: reqwest::Client,
    /// The most one request may take, from connecting to the last byte of the answer.
    timeout: Duration,
    /// Every secret the provider holds, so an error quoting the service's answer can never
    /// quote one back.
    secrets: Vec<Secret>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.provider)
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// One request, before it is sent.
pub struct Call<'a> {
    pub method: Method,
    /// A path under the service root (`isbn/9780140328721.json`; empty for the root itself).
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub json: Option<&'a Value>,
    pub bearer: Option<&'a Secret>,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str) -> Self {
        Call { method: Method::GET, path, query: &[], json: None, bearer: None }
    }

    pub fn post_json(path: &'a str, body: &'a Value) -> Self {
        Call { method: Method::POST, path, query: &[], json: Some(body), bearer: None }
    }
}

/// A successful answer, or the service saying the thing asked for does not exist.
#[derive(Debug)]
pub enum Answer {
    Found(Value),
    /// HTTP 404; the body, when it is JSON, for services that explain themselves in it.
    Missing(Value),
}

impl HttpClient {
    /// A client for `config`'s provider, rooted at its `baseUrl` or at `default_base`.
    pub fn new(
        config: &ProviderConfig,
        default_base: &str,
        secrets: Vec<Secret>,
    ) -> Result<HttpClient, ProviderError> {
        let unavailable =
            |reason: String| ProviderError::Unavailable { provider: config.name.clone(), reason };
        let raw = config.base_url.as_deref().unwrap_or(default_base);
        let base = parse_base(raw).map_err(unavailable)?;
        let timeout = Duration::from_secs(config.timeout_seconds.max(1));
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| unavailable(format!("cannot build its HTTP client: {e}")))?;
        Ok(HttpClient { provider: config.name.clone(), base, client, timeout, secrets })
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The error for an entry the service does not know.
    pub fn not_found(&self, kind: super::EntityKind, external_id: &str) -> ProviderError {
        ProviderError::NotFound {
            provider: self.provider.clone(),
            kind: kind.as_str(),
            external_id: external_id.to_string(),
        }
    }

    /// The service root, always ending in `/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Sends `call` and reads its JSON answer, mapping every failure to a [`ProviderError`]:
    ///
    /// - 404: [`Answer::Missing`], for the provider to name what was missing;
    /// - 429: [`ProviderError::RateLimited`] with the `Retry-After` wait (seconds or an
    ///   HTTP date), [`DEFAULT_RETRY_AFTER`] when it has none;
    /// - 5xx, and a connection that fails: [`ProviderError::Unreachable`] (transient);
    /// - no full answer within the timeout: [`ProviderError::Timeout`] (transient);
    /// - any other 4xx: [`ProviderError::Refused`] (permanent);
    /// - a 2xx whose body is not JSON: [`ProviderError::Protocol`].
    ///
    /// Errors name the method and the URL path, never the query string or a header.
    pub async fn send(&self, call: Call<'_>) -> Result<Answer, ProviderError> {
        let mut url = self.base.join(call.path).map_err(|e| ProviderError::Protocol {
            provider: self.provider.clone(),
            method: format!("{} {}", call.method, call.path),
            reason: format!("cannot form the URL: {e}"),
        })?;
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(call.query);
        }
        let request_line = format!("{} {}", call.method, url.path());
        let mut request = self.client.request(call.method.clone(), url);
        if let Some(body) = call.json {
            request = request.json(body);
        }
        if let Some(token) = call.bearer {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    ProviderError::Unavailable {
                        provider: self.provider.clone(),
                        reason: "its token holds characters an HTTP header cannot carry".into(),
                    }
                })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        request = request.header(reqwest::header::ACCEPT, "application/json");

        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Err(self.transport_error(&request_line, e)),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.read_body(&request_line, &mut response).await?;
        tracing::debug!(
            provider = %self.provider,
            request = %request_line,
            status = status.as_u16(),
            bytes = body.len(),
            "provider answered"
        );

        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = retry_after(&headers, SystemTime::now());
            return Err(ProviderError::RateLimited {
                provider: self.provider.clone(),
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            });
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(Answer::Missing(serde_json::from_slice(&body).unwrap_or(Value::Null)));
        }
        if status.is_server_error() {
            return Err(ProviderError::Unreachable {
                provider: self.provider.clone(),
                reason: format!("`{request_line}` answered {}", status_words(status)),
            });
        }
        if !status.is_success() {
            return Err(ProviderError::Refused {
                provider: self.provider.clone(),
                request: request_line,
                status: status_words(status),
                detail: self.detail(&body),
            });
        }
        serde_json::from_slice(&body).map(Answer::Found).map_err(|e| ProviderError::Protocol {
            provider: self.provider.clone(),
            method: request_line,
            reason: format!("the answer is not JSON: {e}"),
        })
    }

    /// Reads the body, refusing one above [`MAX_BODY_BYTES`].
    async fn read_body(
        &self,
        request_line: &str,
        response: &mut reqwest::Response,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(ProviderError::Protocol {
                            provider: self.provider.clone(),
                            method: request_line.to_string(),
                            reason: format!(
                                "the answer is larger than {} MiB",
                                MAX_BODY_BYTES / 1024 / 1024
                            ),
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(self.transport_error(request_line, e)),
            }
        }
    }

    /// A request that got no complete answer: too slow, or the connection failed.
    fn transport_error(&self, request_line: &str, error: reqwest::Error) -> ProviderError {
        if error.is_timeout() {
            return ProviderError::Timeout {
                provider: self.provider.clone(),
                method: request_line.to_string(),
                timeout: self.timeout,
            };
        }
        // reqwest's own message names the full URL, query string included: use its causes.
        let error = error.without_url();
        let mut reason = String::new();
        let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&error);
        while let Some(c) = cause {
            reason = c.to_string();
            cause = c.source();
        }
        if reason.is_empty() {
            reason = error.to_string();
        }
        let what = if error.is_connect() { "could not connect" } else { "failed" };
        ProviderError::Unreachable {
            provider: self.provider.clone(),
            reason: format!("`{request_line}` {what}: {}", self.redact(&reason.to_lowercase())),
        }
    }

    /// The service's own words about a refusal: a GraphQL error message, a JSON `error`, or the
    /// start of a text body; with any secret the provider holds cut out.
    fn detail(&self, body: &[u8]) -> Option<String> {
        let text = match serde_json::from_slice::<Value>(body) {
            Ok(json) => json
                .pointer("/errors/0/message")
                .or_else(|| json.get("error"))
                .or_else(|| json.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            Err(_) => std::str::from_utf8(body).ok().map(str::to_owned),
        }?;
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return None;
        }
        let mut text = self.redact(&text);
        if text.chars().count() > MAX_DETAIL_CHARS {
            text = text.chars().take(MAX_DETAIL_CHARS).collect::<String>() + "…";
        }
        Some(text)
    }

    /// `text` with every secret the provider holds replaced by `<redacted>`, for quoting a
    /// service's own words in an error.
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.expose().is_empty())
            .fold(text.to_string(), |text, s| text.replace(s.expose(), "<redacted>"))
    }
}

/// Checks a configured service root; a missing final `/` is added so paths join under it.
fn parse_base(raw: &str) -> Result<Url, String> {
    let mut base = Url::parse(raw).map_err(|e| format!("base URL `{raw}` is not a URL: {e}"))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!("base URL `{raw}` must start with http:// or https://"));
    }
    if base.query().is_some() || !base.username().is_empty() || base.password().is_some() {
        return Err(format!(
            "base URL `{}` must not carry a query or credentials: configure `credentials`",
            crate::config::redact_url(raw)
        ));
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

/// A status as `503 Service Unavailable`.
fn status_words(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The wait a `Retry-After` header asks for: a number of seconds, or an HTTP date (a date in
/// the past means no wait). `None` when the header is missing or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let header = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            headers
        };
        assert_eq!(retry_after(&header("120"), now), Some(Duration::from_secs(120)));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        let later = header("Sun, 06 Nov 1994 08:50:07 GMT");
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        let past = header("Sun, 06 Nov 1994 08:00:00 GMT");
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO), "a past date means no wait");
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn secrets_print_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "<redacted> <redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn base_urls_get_a_final_slash_and_refuse_queries_and_passwords() {
        assert_eq!(
            parse_base("http://127.0.0.1:9/api").unwrap().as_str(),
            "http://127.0.0.1:9/api/"
        );
        assert_eq!(
            parse_base("https://graphql.anilist.co").unwrap().as_str(),
            "https://graphql.anilist.co/"
        );
        assert!(parse_base("ftp://x").unwrap_err().contains("must start with http://"));
        let err = parse_base("https://u:hunter2@x/").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(parse_base("https://x/?key=1").is_err());
    }
}
