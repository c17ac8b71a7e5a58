//! An offline metadata plugin that answers predictably, for tests and as a reference for plugin
//! authors. It speaks the Codex plugin protocol that curator hosts: JSON-RPC 2.0 on stdin and
//! stdout, one message per line; stdout carries protocol messages only, stderr goes to the
//! host's log.
//!
//! Methods: `initialize` (returns the manifest), `metadata/series/get`, `metadata/book/get`,
//! `metadata/series/match`, `metadata/book/match`, `ping`, `shutdown`. The manifest lists
//! `series` and `book` unless `ECHO_CAPABILITIES` gives a comma-separated list;
//! `ECHO_LATENCY_MS` delays every `get` answer. Some external IDs misbehave on purpose:
//!
//! | ID            | behaviour                                                         |
//! |---------------|-------------------------------------------------------------------|
//! | `missing`     | error -32002 (not found)                                          |
//! | `ratelimited` | error -32001 with `data.retryAfterSeconds` = 1                    |
//! | `slow`        | answers after 3 s                                                 |
//! | `hang`        | never answers                                                     |
//! | `crash`       | exits with status 3 without answering                             |
//! | `crash-once`  | exits the first time (remembered in `ECHO_STATE_DIR`), then works |
//! | `ratelimited-once` | error -32001 the first time (likewise), then works           |
//! | `garbage`     | prints a line that is not JSON, then answers normally             |
//! | `down`        | error -32603 (internal error), every time                         |
//! | `badvalues`   | answers with values that fit no field (`status: completed`, ...)  |
//! | `storage`     | first asks the host `storage/get` and puts its answer in `summary` |
//! | `credentials` | says in `summary` which credentials it got, and their lengths     |
//!
//! Match calls answer in the protocol's `{match, confidence}` shape: a title containing
//! `nothing` finds no candidate, one containing `unsure` a candidate at confidence 0.4, any
//! other title the candidate `m-<title in lower case, spaces as dashes>` at 0.95; a book with
//! an `isbn` matches that ISBN at confidence 1.
//!
//! Run it by hand with `cargo run --example echo-plugin` and type, for example:
//! `{"jsonrpc":"2.0","id":1,"method":"metadata/series/get","params":{"externalId":"abc"}}`

use std::io::{self, BufRead, Write};
use std::process;
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

/// A JSON-RPC error: code, message and optional data.
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }
}

/// The `credentials` object of `initialize`.
static CREDENTIALS: Mutex<Option<Value>> = Mutex::new(None);

/// Threads waiting for the host's answer to a call they made, by that call's ID.
static WAITING: Mutex<Vec<(String, mpsc::Sender<Value>)>> = Mutex::new(Vec::new());

fn main() {
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        // An answer from the host to one of our own calls goes to the thread waiting for it.
        if let Ok(message) = serde_json::from_str::<Value>(&line)
            && message.get("method").is_none()
            && let Some(id) = message.get("id").and_then(Value::as_str)
        {
            let mut waiting = WAITING.lock().unwrap();
            if let Some(at) = waiting.iter().position(|(w, _)| w == id) {
                let _ = waiting.remove(at).1.send(message);
            }
            continue;
        }
        // One thread per request, so a slow answer does not hold up the others: the host has to
        // match answers to requests by `id`, not by order.
        thread::spawn(move || handle(&line));
    }
    // stdin closed: the host has gone away.
}

fn handle(line: &str) {
    let request: Value = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(_) => {
            return send(&error_reply(Value::Null, RpcError::new(-32700, "Parse error")));
        }
    };
    let method = request["method"].as_str().unwrap_or_default();
    let mut outcome = answer(method, &request["params"]);
    if let Ok(metadata) = &mut outcome {
        match request["params"]["externalId"].as_str() {
            Some("storage") => metadata["summary"] = ask_host(&request["id"]),
            Some("credentials") => metadata["summary"] = Value::String(credentials_seen()),
            _ => {}
        }
    }

    // A request without an `id` is a notification, which gets no answer.
    let Some(id) = request.get("id").cloned() else {
        return;
    };
    match outcome {
        Ok(result) => send(&json!({ "jsonrpc": "2.0", "id": id, "result": result })),
        Err(error) => send(&error_reply(id, error)),
    }
    if method == "shutdown" {
        process::exit(0);
    }
}

fn answer(method: &str, params: &Value) -> Result<Value, RpcError> {
    match method {
        "initialize" => {
            *CREDENTIALS.lock().unwrap() = params.get("credentials").cloned();
            eprintln!("echo: initialized");
            Ok(manifest())
        }
        "ping" => Ok(json!("pong")),
        "shutdown" => Ok(Value::Null),
        "metadata/series/get" => get(params, series),
        "metadata/book/get" => get(params, book),
        "metadata/series/match" | "metadata/book/match" => Ok(find(params)),
        _ => Err(RpcError::new(-32601, format!("Method not found: {method}"))),
    }
}

fn manifest() -> Value {
    let kinds: Vec<String> = match std::env::var("ECHO_CAPABILITIES") {
        Ok(list) => {
            list.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect()
        }
        Err(_) => vec!["series".to_owned(), "book".to_owned()],
    };
    json!({
        "name": "echo",
        "displayName": "Echo",
        "version": "1.0.0",
        "protocolVersion": "1.2",
        "capabilities": { "metadataProvider": kinds },
    })
}

/// Looks up `params.externalId` and builds the answer for it, misbehaving for the special IDs.
fn get(params: &Value, build: fn(&str) -> Value) -> Result<Value, RpcError> {
    let Some(id) = params.get("externalId").and_then(Value::as_str) else {
        return Err(RpcError {
            code: -32602,
            message: "Invalid params: externalId is required".to_owned(),
            data: Some(json!({ "field": "externalId" })),
        });
    };
    if let Some(ms) = std::env::var("ECHO_LATENCY_MS").ok().and_then(|v| v.parse().ok()) {
        thread::sleep(Duration::from_millis(ms));
    }
    match id {
        "missing" => Err(RpcError::new(-32002, "not found")),
        "down" => Err(RpcError::new(-32603, "internal error: the upstream service is down")),
        "hang" => loop {
            thread::sleep(Duration::from_secs(3600));
        },
        "crash-once" => {
            if first_time("echo-crashed-once") {
                process::exit(3);
            }
            Ok(build(id))
        }
        "ratelimited-once" if first_time("echo-ratelimited-once") => Err(RpcError {
            code: -32001,
            message: "rate limited".to_owned(),
            data: Some(json!({ "retryAfterSeconds": 1 })),
        }),
        "badvalues" => Ok(json!({
            "externalId": id,
            "externalUrl": "https://echo.invalid/series/badvalues",
            "status": "completed",
            "totalVolumeCount": -3,
            "rating": { "score": 300, "source": "echo" },
            "genres": "Action",
        })),
        "ratelimited" => Err(RpcError {
            code: -32001,
            message: "rate limited".to_owned(),
            data: Some(json!({ "retryAfterSeconds": 1 })),
        }),
        "slow" => {
            thread::sleep(Duration::from_secs(3));
            Ok(build(id))
        }
        "crash" => process::exit(3),
        "garbage" => {
            send_line("this line is not JSON");
            Ok(build(id))
        }
        _ => Ok(build(id)),
    }
}

/// Makes a `storage/get` call to the host on behalf of request `parent` and returns the host's
/// whole answer as text, or `no answer` after 5 s.
fn ask_host(parent: &Value) -> Value {
    let id = format!("echo-{parent}");
    let (tx, rx) = mpsc::channel();
    WAITING.lock().unwrap().push((id.clone(), tx));
    let params = json!({ "key": "last-sync", "parentRequestId": parent });
    send(&json!({ "jsonrpc": "2.0", "id": id, "method": "storage/get", "params": params }));
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(answer) => Value::String(answer.to_string()),
        Err(_) => Value::String("no answer".to_owned()),
    }
}

/// Which credentials came in `initialize` and in the environment, by length only: a plugin
/// must not echo a secret.
fn credentials_seen() -> String {
    let given = CREDENTIALS.lock().unwrap().clone().unwrap_or(Value::Null);
    let Some(given) = given.as_object() else {
        return "no credentials".to_owned();
    };
    let seen: Vec<String> = given
        .iter()
        .map(|(key, value)| {
            let sent = value.as_str().map_or(0, str::len);
            let env = std::env::var(key).map_or(0, |v| v.len());
            format!("{key}: {sent} chars in initialize, {env} in the environment")
        })
        .collect();
    seen.join("; ")
}

/// Whether `marker` is new in `ECHO_STATE_DIR` (the working directory by default); creates it,
/// so the next call, even from a restarted process, sees it.
fn first_time(marker: &str) -> bool {
    let dir = std::env::var("ECHO_STATE_DIR").unwrap_or_else(|_| ".".to_owned());
    let path = std::path::Path::new(&dir).join(marker);
    !path.exists() && std::fs::write(&path, "").is_ok()
}

/// Answers a match call; see the table at the top.
fn find(params: &Value) -> Value {
    if let Some(isbn) = params.get("isbn").and_then(Value::as_str) {
        let found = json!({ "externalId": isbn, "title": format!("Echo book {isbn}") });
        return json!({ "match": found, "confidence": 1.0 });
    }
    let title = params.get("title").and_then(Value::as_str).unwrap_or_default();
    if title.contains("nothing") {
        return json!({ "match": null, "confidence": 0.0 });
    }
    let id = format!("m-{}", title.to_lowercase().replace(' ', "-"));
    let confidence = if title.contains("unsure") { 0.4 } else { 0.95 };
    json!({ "match": { "externalId": id, "title": title }, "confidence": confidence })
}

fn series(id: &str) -> Value {
    json!({
        "externalId": id,
        "externalUrl": format!("https://echo.invalid/series/{id}"),
        "title": format!("Echo {id}"),
        "status": "ongoing",
        "year": 2020,
        "totalVolumeCount": id.chars().count(),
        "genres": ["Echo"],
        "rating": { "score": 80, "voteCount": 10, "source": "echo" },
        "summary": format!("Summary of {id} from echo."),
    })
}

fn book(id: &str) -> Value {
    json!({
        "externalId": id,
        "externalUrl": format!("https://echo.invalid/book/{id}"),
        "title": format!("Echo book {id}"),
        "pageCount": 200,
        "seriesPosition": 1,
    })
}

fn error_reply(id: Value, error: RpcError) -> Value {
    let mut body = json!({ "code": error.code, "message": error.message });
    if let Some(data) = error.data {
        body["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": body })
}

fn send(message: &Value) {
    // `Value`'s `Display` is compact JSON: never a newline inside a message.
    send_line(&message.to_string());
}

fn send_line(line: &str) {
    // The lock keeps lines from concurrent threads whole.
    let mut stdout = io::stdout().lock();
    if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
        // Nobody reads our answers any more.
        process::exit(0);
    }
}
