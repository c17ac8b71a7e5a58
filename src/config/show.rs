//! `curator config show`: the settings in effect after the file, the `CURATOR_*` variables and
//! the defaults, each with where it came from. Secrets never print: the API token, passwords in
//! URLs, webhook paths (a chat webhook's path is its key) and provider values whose key names a
//! secret are masked.

use serde_json::{Map, Value, json};

use super::{Config, LogFormat, Overrides, redact_url};
use crate::spec::yaml;

/// What a masked value reads as.
pub const MASK: &str = "<redacted>";

/// Top-level settings and the environment variables that override them.
const SETTINGS: &[(&str, Option<&str>)] = &[
    ("database", Some("CURATOR_DATABASE_URL")),
    ("jobsDir", Some("CURATOR_JOBS_DIR")),
    ("listen", Some("CURATOR_LISTEN")),
    ("timezone", Some("CURATOR_TIMEZONE")),
    ("apiToken", Some("CURATOR_API_TOKEN")),
    ("apiTokenForReads", Some("CURATOR_API_TOKEN_FOR_READS")),
    ("workers", None),
    ("runLease", None),
    ("logFormat", Some("CURATOR_LOG_FORMAT")),
    ("logLevel", Some("CURATOR_LOG")),
    ("catalog", None),
    ("providers", None),
    ("retention", None),
    ("webhooks", None),
];

/// The effective settings as JSON, secrets masked, with `source` (the file read, if any) and
/// `origins` (`file`, `default`, or the variable that set each top-level setting).
pub fn effective(config: &Config, overrides: &Overrides, flag_format: Option<LogFormat>) -> Value {
    let log_level = std::env::var("CURATOR_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|v| !v.is_empty())
        .or(config.log_level.clone());
    let log_format = flag_format.or(config.log_format).unwrap_or(LogFormat::Human);
    let providers: Vec<Value> = config
        .providers
        .iter()
        .map(|p| {
            let mut value = serde_json::to_value(p).unwrap_or(Value::Null);
            // Credentials name where a secret is read (a variable, a file), never the secret:
            // they are shown as written.
            let sources = value.as_object_mut().and_then(|o| o.remove("credentials"));
            mask_secrets(&mut value);
            if let (Some(object), Some(sources)) = (value.as_object_mut(), sources) {
                object.insert("credentials".into(), sources);
            }
            value
        })
        .collect();
    let webhooks: Vec<Value> = config
        .webhooks
        .iter()
        .map(|w| json!({ "url": mask_url(&w.url), "events": w.events }))
        .collect();
    let settings = json!({
        "database": redact_url(&config.database),
        "jobsDir": config.jobs_dir,
        "listen": config.listen,
        "timezone": config.timezone.name(),
        "apiToken": config.api_token.as_ref().map(|_| MASK),
        "apiTokenForReads": config.api_token_for_reads,
        "workers": config.workers,
        "runLease": humantime::format_duration(config.run_lease).to_string(),
        "logFormat": log_format,
        "logLevel": log_level,
        "catalog": config.catalog,
        "providers": providers,
        "retention": config.retention,
        "webhooks": webhooks,
    });
    let written = file_keys(config);
    let env_set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    let mut origins = Map::new();
    for (key, var) in SETTINGS {
        let origin = match (*key, *var) {
            ("logFormat", _) if env_set("CURATOR_LOG_FORMAT") => "CURATOR_LOG_FORMAT",
            ("logFormat", _) if flag_format.is_some() => "--log-format",
            ("logLevel", _) if env_set("CURATOR_LOG") => "CURATOR_LOG",
            ("logLevel", _) if env_set("RUST_LOG") => "RUST_LOG",
            (_, Some(var)) if env_set(var) && overridden(overrides, key) => var,
            _ if written.iter().any(|k| k == key) => "file",
            _ => "default",
        };
        origins.insert(key.to_string(), Value::String(origin.into()));
    }
    json!({ "source": config.source, "settings": settings, "origins": origins })
}

fn overridden(overrides: &Overrides, key: &str) -> bool {
    match key {
        "database" => overrides.database.is_some(),
        "jobsDir" => overrides.jobs_dir.is_some(),
        "listen" => overrides.listen.is_some(),
        "timezone" => overrides.timezone.is_some(),
        "apiToken" => overrides.api_token.is_some(),
        "apiTokenForReads" => overrides.api_token_for_reads.is_some(),
        _ => false,
    }
}

/// The top-level keys the config file writes.
fn file_keys(config: &Config) -> Vec<String> {
    let Some(text) = config.source.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) else {
        return Vec::new();
    };
    match yaml::parse(&text).ok().and_then(|docs| docs.into_iter().next()).map(|d| d.value) {
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The effective settings as text: YAML, with each setting's origin in a comment.
pub fn render_text(effective: &Value) -> String {
    let mut out = String::new();
    match effective["source"].as_str() {
        Some(source) => out.push_str(&format!("# read from {source}; secrets masked\n")),
        None => out.push_str("# no config file: defaults and environment; secrets masked\n"),
    }
    let settings = effective["settings"].as_object().cloned().unwrap_or_default();
    // The order of the file, not the alphabet's.
    let mut keys: Vec<&String> = settings.keys().collect();
    keys.sort_by_key(|k| SETTINGS.iter().position(|(s, _)| s == k).unwrap_or(usize::MAX));
    for key in keys {
        let value = &settings[key];
        let origin = effective["origins"][key].as_str().unwrap_or("default");
        let mut one = Map::new();
        one.insert(key.clone(), value.clone());
        let mut text = String::new();
        let _ = saphyr::YamlEmitter::new(&mut text).dump(&yaml::to_yaml(&Value::Object(one)));
        let text = text.trim_start_matches("---\n").trim_start_matches("---");
        let mut lines = text.trim_end().lines();
        if let Some(first) = lines.next() {
            out.push_str(&format!("{first}  # {origin}\n"));
        }
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Masks, anywhere in `value`, the values of keys that name a secret.
pub fn mask_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if secret_key(key) && !item.is_null() {
                    *item = Value::String(MASK.into());
                } else {
                    mask_secrets(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        Value::String(text) if text.contains("://") => *text = mask_url(text),
        _ => {}
    }
}

fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace(['_', '-'], "");
    ["token", "secret", "password", "passwd", "credential", "apikey", "privatekey", "auth"]
        .iter()
        .any(|word| key.contains(word))
        || key.ends_with("key")
}

/// Keeps a URL's scheme, host and port; hides its password, path and query, where services put
/// their keys.
pub fn mask_url(url: &str) -> String {
    let url = redact_url(url);
    let Some(scheme_end) = url.find("://") else { return url };
    let rest = &url[scheme_end + 3..];
    match rest.find(['/', '?']) {
        Some(i) if !matches!(&rest[i..], "/" | "") => {
            format!("{}{}/{MASK}", &url[..scheme_end + 3], &rest[..i])
        }
        _ => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_wherever_they_are() {
        let mut value = json!({
            "name": "anilist",
            "settings": { "apiKey": "k1", "client_secret": "s", "pageSize": 50,
                          "nested": [{ "accessToken": "t" }] },
            "credentials": { "user": "u" },
            "args": ["--verbose"],
        });
        mask_secrets(&mut value);
        assert_eq!(value["settings"]["apiKey"], MASK);
        assert_eq!(value["settings"]["client_secret"], MASK);
        assert_eq!(value["settings"]["pageSize"], 50);
        assert_eq!(value["settings"]["nested"][0]["accessToken"], MASK);
        assert_eq!(value["credentials"], MASK);
        assert_eq!(value["name"], "anilist");
        assert_eq!(value["args"][0], "--verbose");
    }

    #[test]
    fn urls_keep_their_host_only() {
        assert_eq!(
            mask_url("https://hooks.example.org/services/T0/B0/abc"),
            "https://hooks.example.org/<redacted>"
        );
        assert_eq!(
            mask_url("https://a:pw@h.example:8443/?k=v"),
            "https://a:<redacted>@h.example:8443/<redacted>"
        );
        assert_eq!(mask_url("http://127.0.0.1:9000/"), "http://127.0.0.1:9000/");
    }
}
