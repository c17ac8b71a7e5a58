//! The API's rules, checked in process: each test builds the real router over a temporary copy
//! of the repository's config, jobs and catalog, and sends it requests with `oneshot`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt as _;

use super::*;
use crate::config::Overrides;
use crate::reconcile::{self, Options};
use crate::schedule::SystemClock;

struct World {
    dir: tempfile::TempDir,
    state: AppState,
}

#[path = "../../tests/support/examples.rs"]
mod examples;

/// Given the repository's config (plus `extra` lines), jobs and catalog, reconciled once, and a
/// server listening on `listen`.
async fn world_with(extra: &str, listen: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    examples::copy_examples(repo, dir.path());
    let config_path = dir.path().join("curator.yaml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, format!("{text}{extra}")).unwrap();
    let config = Config::load(Some(&config_path), &Overrides::default()).unwrap();
    let store = Store::open(&config.database).await.unwrap();
    store.seed_catalogs(&config.catalog, &config.database).await.unwrap();
    reconcile::reconcile(&store, &config, Options::default()).await.unwrap();
    let registry = Arc::new(Registry::new(&config.providers));
    let notifier = crate::webhook::Notifier::start(Vec::new());
    let runner = Runner::new(store.clone(), registry.clone(), notifier, config.retention);
    let state = AppState {
        store,
        access: Arc::new(Access::new(&config, listen.parse().unwrap()).unwrap()),
        config: Arc::new(config),
        runner,
        scheduler: Scheduler::new(Arc::new(SystemClock)),
        registry,
        queued: Arc::new(Notify::new()),
        ready: Arc::new(AtomicBool::new(true)),
        jobs_dir_in_repo: None,
    };
    World { dir, state }
}

async fn world() -> World {
    world_with("", "127.0.0.1:8080").await
}

/// An answer: status, headers and body (JSON when it parses, else a string).
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl World {
    async fn send(&self, method: Method, uri: &str, token: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response =
            router(self.state.clone()).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, headers, body }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(Method::GET, uri, None).await
    }
}

/// Checks the one error shape and returns the body's code.
fn error_code(answer: &Answer) -> &str {
    let body = &answer.body;
    assert_eq!(body["status"], answer.status.as_u16(), "the body repeats the status: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {body}");
    body["code"].as_str().unwrap_or_else(|| panic!("a code: {body}"))
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_and_describes_every_route() {
    let world = world().await;
    let answer = world.get("/api/v1/openapi.json").await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.body;

    // Valid: an independent OpenAPI 3.1 model reads it, and every reference resolves.
    let text = doc.to_string();
    let parsed = oas3::from_json(&text).unwrap_or_else(|e| panic!("not OpenAPI 3.1: {e}"));
    assert!(parsed.openapi.starts_with("3."), "version {}", parsed.openapi);
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty(), "the document uses components");
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference}"));
        assert!(doc.pointer(pointer).is_some(), "`{reference}` resolves");
    }

    // Every route is described...
    let expected = [
        ("get", "/api/v1/jobs"),
        ("post", "/api/v1/jobs"),
        ("get", "/api/v1/jobs/{id}"),
        ("post", "/api/v1/jobs/{id}"),
        ("put", "/api/v1/jobs/{id}"),
        ("patch", "/api/v1/jobs/{id}"),
        ("delete", "/api/v1/jobs/{id}"),
        ("get", "/api/v1/jobs/{id}/runs"),
        ("post", "/api/v1/jobs/{id}/run"),
        ("post", "/api/v1/jobs/{id}/preview"),
        ("get", "/api/v1/runs"),
        ("get", "/api/v1/runs/{id}"),
        ("post", "/api/v1/runs/{id}/cancel"),
        ("get", "/api/v1/reconcile"),
        ("get", "/api/v1/providers"),
        ("get", "/api/v1/libraries"),
        ("get", "/api/v1/libraries/{id}/series"),
        ("get", "/api/v1/libraries/{id}/series/{series}"),
        ("get", "/api/v1/changes"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/"),
        ("get", "/jobs/{id}"),
        ("get", "/runs/{id}"),
        ("get", "/login"),
        ("post", "/login"),
        ("get", "/static/app.js"),
        ("get", "/static/app.css"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let described: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    for (method, path) in expected {
        assert!(
            described.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is in the document"
        );
    }
    assert_eq!(described.len(), expected.len(), "and nothing else: {described:?}");

    // ...and everything described is served: the router knows each path and method (a route it
    // lacks answers 404 or 405 with an empty body, never the JSON error shape).
    for (method, path) in &described {
        let id = match path.as_str() {
            p if p.starts_with("/api/v1/runs") || p.starts_with("/runs") => "1",
            "/jobs/{id}" => "manga/curated-status",
            _ => "manga",
        };
        let uri = path.replace("{id}", id).replace("{series}", "frieren");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let answer = world.send(method.clone(), &uri, None).await;
        let code = answer.body["code"].as_str().unwrap_or_default();
        // The router's own 404 and 405 have an empty body; the API's get the error shape.
        let unrouted = code == "no-route"
            || code == "method-not-allowed"
            || (matches!(answer.status, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED)
                && answer.body == Value::String(String::new()));
        assert!(!unrouted, "{method} {uri} is served (got {} {})", answer.status, answer.body);
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key == "$ref" => out.push(s.clone()),
                    other => collect_refs(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_job_write_answers_409_with_the_file_to_edit() {
    let world = world().await;
    let id = "manga%2Fcurated-status";
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let answer = world.send(method.clone(), &format!("/api/v1/jobs/{id}"), None).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{method}");
        assert_eq!(error_code(&answer), "managed-in-git");
        let file = answer.body["file"].as_str().unwrap();
        assert!(file.ends_with("jobs.d/manga/curated-status.yaml"), "{method}: {file}");
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains("`manga/curated-status` is managed in Git"), "{message}");
        assert!(message.contains("curated-status.yaml"), "the message names the file: {message}");
    }
    let answer = world.send(Method::POST, "/api/v1/jobs", None).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&answer), "managed-in-git");
    assert!(answer.body["file"].as_str().unwrap().ends_with("jobs.d"), "{}", answer.body);

    // The job is untouched.
    let job = world.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job.status, StatusCode::OK);
    assert_eq!(job.body["enabled"], true);
}

#[tokio::test]
async fn a_job_write_names_the_files_path_in_its_repository() {
    let mut world = world().await;
    world.state.jobs_dir_in_repo = Some("deploy/jobs.d".into());
    let answer = world.send(Method::DELETE, "/api/v1/jobs/manga%2Fcurated-status", None).await;
    assert_eq!(answer.body["repositoryPath"], "deploy/jobs.d/manga/curated-status.yaml");
    let message = answer.body["message"].as_str().unwrap();
    assert!(message.contains("edit `deploy/jobs.d/manga/curated-status.yaml`"), "{message}");
}

#[tokio::test]
async fn jobs_are_listed_with_filters_by_library_and_provider() {
    let world = world().await;
    let all = world.get("/api/v1/jobs").await.body;
    let ids: Vec<&str> =
        all.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["books/curated-volumes", "comics/curated-summaries", "manga/curated-status"]);

    let manga = world.get("/api/v1/jobs?library=manga").await.body;
    assert_eq!(manga.as_array().unwrap().len(), 1);
    assert_eq!(manga[0]["id"], "manga/curated-status");
    assert_eq!(manga[0]["schedule"]["timezone"], "Europe/Paris");
    assert_eq!(manga[0]["schedule"]["description"], "At 04:00.");
    assert!(manga[0]["nextFire"]["local"].as_str().unwrap().ends_with("T04:00:00+01:00"));

    let curated = world.get("/api/v1/jobs?provider=plugin:curated").await.body;
    assert_eq!(curated.as_array().unwrap().len(), 3, "`plugin:` is the same provider");
    let none = world.get("/api/v1/jobs?provider=anilist").await.body;
    assert_eq!(none, Value::Array(vec![]));
}

#[tokio::test]
async fn one_job_has_its_spec_yaml_source_and_next_fire_times() {
    let world = world().await;
    let job = world.get("/api/v1/jobs/manga%2Fcurated-status").await.body;
    assert_eq!(job["spec"]["schedule"]["cron"], "0 4 * * *");
    assert!(job["source"].as_str().unwrap().contains("# Keeps the manga library's"), "as written");
    assert_eq!(job["sourceFile"], "manga/curated-status.yaml");
    assert_eq!(job["sourceLine"], 4);
    assert_eq!(job["git"], Value::Null, "not in a Git work tree");
    assert_eq!(job["nextFireTimes"].as_array().unwrap().len(), 3);

    let disabled = world.get("/api/v1/jobs/comics%2Fcurated-summaries").await.body;
    assert_eq!(disabled["nextFireTimes"], Value::Array(vec![]), "a disabled job never fires");
    assert_eq!(disabled["nextFire"], Value::Null);

    let missing = world.get("/api/v1/jobs/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "not-found");
    assert_eq!(missing.body["message"], "job `nope` does not exist");
}

#[tokio::test]
async fn run_now_queues_a_run_and_wakes_the_worker() {
    let world = world().await;
    let woken = world.state.queued.clone();
    let answer = world.send(Method::POST, "/api/v1/jobs/manga%2Fcurated-status/run", None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let id = answer.body["run"]["id"].as_i64().unwrap();
    assert_eq!(answer.body["run"]["status"], "queued");
    assert_eq!(answer.body["run"]["trigger"], "manual");
    assert_eq!(answer.headers[header::LOCATION], format!("/api/v1/runs/{id}"));
    tokio::time::timeout(std::time::Duration::from_secs(1), woken.notified())
        .await
        .expect("the queue worker is woken");

    let claimed = world.state.store.claim_queued_run().await.unwrap().unwrap();
    assert_eq!(claimed.id, id, "the server's queue picks it up as it does `curator run`'s");

    let missing = world.send(Method::POST, "/api/v1/jobs/nope/run", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn actions_need_the_bearer_token_when_one_is_configured() {
    let world = world_with("apiToken: s3cret\n", "127.0.0.1:8080").await;
    let uri = "/api/v1/jobs/manga%2Fcurated-status/run";
    let none = world.send(Method::POST, uri, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&none), "unauthorized");
    assert_eq!(none.headers[header::WWW_AUTHENTICATE], "Bearer");
    let wrong = world.send(Method::POST, uri, Some("guess")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(world.state.store.runs(None, 10).await.unwrap().len(), 0, "nothing was queued");

    let right = world.send(Method::POST, uri, Some("s3cret")).await;
    assert_eq!(right.status, StatusCode::ACCEPTED);
    for uri in ["/api/v1/jobs/manga%2Fcurated-status/preview", "/api/v1/runs/1/cancel"] {
        let answer = world.send(Method::POST, uri, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    assert_eq!(world.get("/api/v1/jobs").await.status, StatusCode::OK, "reads stay open");
}

#[tokio::test]
async fn without_a_token_actions_are_refused_unless_the_server_listens_on_loopback_only() {
    let world = world_with("", "0.0.0.0:8080").await;
    let answer = world.send(Method::POST, "/api/v1/jobs/manga%2Fcurated-status/run", None).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&answer), "forbidden");
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.contains("`0.0.0.0:8080`") && message.contains("CURATOR_API_TOKEN"),
        "{message}"
    );

    let ipv6 = world_with("", "[::1]:8080").await;
    let answer = ipv6.send(Method::POST, "/api/v1/jobs/manga%2Fcurated-status/run", None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "::1 is loopback too");
}

#[tokio::test]
async fn reads_need_the_token_when_the_config_asks() {
    let world = world_with("apiToken: s3cret\napiTokenForReads: true\n", "0.0.0.0:8080").await;
    for uri in ["/api/v1/jobs", "/api/v1/runs", "/api/v1/providers", "/metrics"] {
        let answer = world.get(uri).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    assert_eq!(
        world.send(Method::GET, "/api/v1/jobs", Some("s3cret")).await.status,
        StatusCode::OK
    );
    for open in ["/healthz", "/readyz", "/api/v1/openapi.json", "/static/app.js", "/login"] {
        assert_eq!(world.get(open).await.status, StatusCode::OK, "{open} stays open");
    }
    let page = world.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "a page sends the browser to the token form");
    assert_eq!(page.headers[header::LOCATION], "/login");

    // The token form keeps the token in a cookie the pages then send.
    let form = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("token=s3cret"))
        .unwrap();
    let response = router(world.state.clone()).oneshot(form).await.unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap();
    let request = Request::get("/").header(header::COOKIE, pair).body(Body::empty()).unwrap();
    let page = router(world.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    let wrong = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("token=guess"))
        .unwrap();
    let response = router(world.state.clone()).oneshot(wrong).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
}

#[test]
fn asking_for_the_token_on_reads_without_a_token_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curator.yaml");
    std::fs::write(&path, "apiTokenForReads: true\n").unwrap();
    let config = Config::load(Some(&path), &Overrides::default()).unwrap();
    let error = Access::new(&config, "127.0.0.1:8080".parse().unwrap()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`apiTokenForReads` is set but no API token is: set `apiToken` or CURATOR_API_TOKEN"
    );
}

#[tokio::test]
async fn runs_and_their_entries_are_paginated() {
    let world = world().await;
    let job = world.state.store.job("manga/curated-status").await.unwrap();
    for _ in 0..3 {
        world.state.runner.run(&job, crate::run::Trigger::Manual, None).await.unwrap();
    }
    let first = world.get("/api/v1/jobs/manga%2Fcurated-status/runs?limit=2").await.body;
    let ids: Vec<i64> =
        first["runs"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [3, 2], "newest first");
    assert_eq!(first["nextOffset"], 2);
    let second = world.get("/api/v1/jobs/manga%2Fcurated-status/runs?limit=2&offset=2").await.body;
    assert_eq!(second["runs"][0]["id"], 1);
    assert_eq!(second["nextOffset"], Value::Null, "the last page");
    let all = world.get("/api/v1/runs?job=manga/curated-status").await.body;
    assert_eq!(all["runs"].as_array().unwrap().len(), 3);

    let run = world.get("/api/v1/runs/1").await.body;
    assert_eq!(run["run"]["status"], "succeeded");
    let total = run["entriesTotal"].as_u64().unwrap() as usize;
    assert!(total > 3, "the example run has several entries: {run}");
    let updated = run["entries"].as_array().unwrap().iter().find(|e| e["outcome"] == "updated");
    let change = &updated.expect("an updated entry")["changes"][0];
    assert!(
        change["field"].is_string()
            && change.get("before").is_some()
            && change.get("after").is_some()
    );

    let page = world.get("/api/v1/runs/1?limit=2&offset=2").await.body;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["entries"][0]["entry"], run["entries"][2]["entry"]);
    assert_eq!(page["nextOffset"], 4);

    let bad = world.get("/api/v1/runs?limit=0").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&bad), "bad-request");
    assert_eq!(bad.body["message"], "`limit` must be from 1 to 200, not `0`");
    assert_eq!(world.get("/api/v1/jobs/nope/runs").await.status, StatusCode::NOT_FOUND);
    assert_eq!(world.get("/api/v1/runs/999").await.status, StatusCode::NOT_FOUND);

    let page = world.get("/nope").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let text = page.body.as_str().unwrap();
    assert!(text.contains("there is no page at `/nope`: the jobs are at /"), "{text}");
}

#[tokio::test]
async fn reconcile_status_names_each_invalid_file_and_line() {
    let world = world().await;
    let status = world.get("/api/v1/reconcile").await.body;
    assert_eq!(status["applied"], true);
    assert_eq!(status["invalidFiles"], Value::Array(vec![]));
    assert_eq!(status["counts"]["create"], 3);

    let dir = world.dir.path().join("jobs.d");
    std::fs::write(
        dir.join("broken.yaml"),
        "apiVersion: curator/v1\nkind: LibraryJob\nscope: nope\n",
    )
    .unwrap();
    let config = world.state.config.clone();
    reconcile::reconcile(&world.state.store, &config, Options::default()).await.unwrap();
    let status = world.get("/api/v1/reconcile").await.body;
    let invalid = &status["invalidFiles"];
    assert_eq!(invalid.as_array().unwrap().len(), 1, "{status}");
    assert!(invalid[0]["file"].as_str().unwrap().ends_with("jobs.d/broken.yaml"), "{invalid}");
    assert!(invalid[0]["errors"][0]["line"].as_u64().unwrap() >= 1);
    assert!(invalid[0]["errors"][0]["message"].is_string());

    // A job whose own file breaks says so, and keeps its last good version.
    let job = world.get("/api/v1/jobs/manga%2Fcurated-status").await.body;
    assert_eq!(job["fileErrors"], Value::Array(vec![]));
    let file = dir.join("manga/curated-status.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, good.replace("scope: series_only", "scope: everything")).unwrap();
    reconcile::reconcile(&world.state.store, &config, Options::default()).await.unwrap();
    let job = world.get("/api/v1/jobs/manga%2Fcurated-status").await.body;
    assert_eq!(job["fileErrors"][0]["path"], "scope", "{job}");
    assert_eq!(job["scope"], "series_only", "the last good version stands");
}

#[tokio::test]
async fn providers_show_kind_capabilities_and_health() {
    let world = world().await;
    let listed = world.get("/api/v1/providers").await.body;
    assert_eq!(listed[0]["name"], "curated");
    assert_eq!(listed[0]["kind"], "directory");
    assert_eq!(listed[0]["enabled"], true);
    assert_eq!(listed[0]["health"], "idle", "not started until a job uses it");
    let both = serde_json::json!({"series": true, "book": true});
    assert_eq!(listed[0]["capabilities"], both, "a folder serves both sides");
    assert_eq!(listed[0]["requestsPerMinute"], Value::Null, "a folder is not paced");

    world.state.registry.get("curated").await.unwrap();
    let listed = world.get("/api/v1/providers").await.body;
    assert_eq!(listed[0]["health"], "ok");
    assert_eq!(listed[0]["capabilities"], both);
}

#[tokio::test]
async fn a_plugin_not_started_yet_shows_the_capabilities_of_its_last_start() {
    let extra = "  - name: echo\n    kind: plugin\n    command: /bin/false\n    enabled: false\n";
    let world = world_with(extra, "127.0.0.1:8080").await;
    let echo =
        |listed: &Value| listed.as_array().unwrap().iter().find(|p| p["name"] == "echo").cloned();
    let listed = world.get("/api/v1/providers").await.body;
    let plugin = echo(&listed).expect("the plugin is listed");
    assert_eq!(plugin["capabilities"], Value::Null, "never started: unknown");
    assert_eq!(plugin["requestsPerMinute"], Value::Null);
    assert_eq!(plugin["health"], "disabled");

    let series_only = crate::provider::Capabilities { series: true, book: false };
    world.state.store.save_manifest("echo", series_only, &serde_json::json!({})).await.unwrap();
    let listed = world.get("/api/v1/providers").await.body;
    let plugin = echo(&listed).unwrap();
    assert_eq!(plugin["capabilities"], serde_json::json!({"series": true, "book": false}));
}

#[tokio::test]
async fn the_catalog_is_readable_with_fields_locks_and_ids() {
    let world = world().await;
    let libraries = world.get("/api/v1/libraries").await.body;
    let manga = libraries.as_array().unwrap().iter().find(|l| l["id"] == "manga").unwrap();
    assert!(manga["series"].as_u64().unwrap() > 0);

    let page = world.get("/api/v1/libraries/manga/series?limit=1").await.body;
    assert_eq!(page["series"].as_array().unwrap().len(), 1);
    assert!(page["total"].as_u64().unwrap() > 1);
    assert_eq!(page["nextOffset"], 1);

    let berserk = world.get("/api/v1/libraries/manga/series/berserk").await.body;
    assert_eq!(berserk["locks"], serde_json::json!(["status"]));
    assert!(berserk["metadata"]["title"].is_string());
    assert!(berserk["externalIds"]["curated"]["id"].is_string());

    assert_eq!(world.get("/api/v1/libraries/nope/series").await.status, StatusCode::NOT_FOUND);
    let missing = world.get("/api/v1/libraries/manga/series/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["message"], "series `manga/nope` does not exist");
}

#[tokio::test]
async fn readyz_waits_for_the_first_reconcile_pass() {
    let world = world().await;
    world.state.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let answer = world.get("/readyz").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["message"], "the first reconcile pass has not finished");
    assert_eq!(world.get("/healthz").await.status, StatusCode::OK, "alive all the same");

    world.state.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(world.get("/readyz").await.status, StatusCode::OK);

    world.state.store.close().await;
    let answer = world.get("/readyz").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.body["message"].as_str().unwrap().starts_with("the database does not answer"));
}

#[tokio::test]
async fn a_server_failure_answers_a_generic_500() {
    let world = world().await;
    world.state.store.close().await;
    let answer = world.get("/api/v1/jobs").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&answer), "internal");
    assert_eq!(answer.body["message"], "the server failed to answer; its log has the details");
}

#[tokio::test]
async fn the_changes_version_moves_when_a_run_is_queued() {
    let world = world().await;
    let before = world.get("/api/v1/changes").await.body["version"].clone();
    assert_eq!(world.get("/api/v1/changes").await.body["version"], before, "stable at rest");
    world.send(Method::POST, "/api/v1/jobs/manga%2Fcurated-status/run", None).await;
    assert_ne!(world.get("/api/v1/changes").await.body["version"], before);
}

#[tokio::test]
async fn pages_carry_a_policy_that_runs_only_curators_own_script() {
    let world = world().await;
    let page = world.get("/").await;
    let policy = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn preview_gives_each_fields_verdict_and_writes_nothing() {
    let world = world().await;
    let before = world.state.store.export_catalog(None).await.unwrap();
    let answer = world
        .send(Method::POST, "/api/v1/jobs/manga%2Fcurated-status/preview?sample=2", None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let preview = answer.body;
    assert_eq!(preview["job"], "manga/curated-status");
    assert_eq!(preview["sample"], 2);
    let entries = preview["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let verdicts: Vec<&str> = entries
        .iter()
        .flat_map(|e| e["fields"].as_array().unwrap())
        .map(|f| f["verdict"].as_str().unwrap())
        .collect();
    assert!(verdicts.contains(&"change"), "{verdicts:?}");
    assert!(verdicts.contains(&"blocked"), "fields outside the groups are blocked: {verdicts:?}");
    let blocked =
        entries[0]["fields"].as_array().unwrap().iter().find(|f| f["verdict"] == "blocked");
    assert!(blocked.unwrap()["layer"].is_string(), "a blocked field names its layer");

    assert_eq!(world.state.store.export_catalog(None).await.unwrap(), before, "nothing written");
    assert!(world.state.store.runs(None, 10).await.unwrap().is_empty(), "and no run recorded");

    let bad = world
        .send(Method::POST, "/api/v1/jobs/manga%2Fcurated-status/preview?sample=0", None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["message"], "`sample` must be from 1 to 100, not `0`");
    let missing = world.send(Method::POST, "/api/v1/jobs/nope/preview", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_queued_run_is_cancelled_and_an_ended_one_cannot_be() {
    let world = world().await;
    let queued = world.send(Method::POST, "/api/v1/jobs/manga%2Fcurated-status/run", None).await;
    let id = queued.body["run"]["id"].as_i64().unwrap();

    let answer = world.send(Method::POST, &format!("/api/v1/runs/{id}/cancel"), None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["outcome"], "cancelled");
    assert_eq!(answer.body["run"]["status"], "cancelled");
    assert!(world.state.store.claim_queued_run().await.unwrap().is_none(), "it will not start");
    let again = world.send(Method::POST, &format!("/api/v1/runs/{id}/cancel"), None).await;
    assert_eq!(again.body["outcome"], "already-cancelled");

    let job = world.state.store.job("manga/curated-status").await.unwrap();
    let done = world.state.runner.run(&job, crate::run::Trigger::Manual, None).await.unwrap();
    let ended = world.send(Method::POST, &format!("/api/v1/runs/{done}/cancel"), None).await;
    assert_eq!(ended.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&ended), "conflict");
    assert_eq!(
        ended.body["message"],
        format!("run {done} already ended `succeeded`: there is nothing to cancel")
    );
    let missing = world.send(Method::POST, "/api/v1/runs/999/cancel", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn requests_no_handler_takes_get_the_same_error_shape() {
    let world = world().await;
    let unknown = world.get("/api/v1/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&unknown), "no-route");
    assert_eq!(
        unknown.body["message"],
        "no route `/api/v1/nope`: the routes are in /api/v1/openapi.json"
    );

    let method = world.send(Method::DELETE, "/api/v1/runs/1", None).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&method), "method-not-allowed");
    assert!(method.headers.contains_key(header::ALLOW), "405 still says what is allowed");

    let query = world.get("/api/v1/runs?limit=many").await;
    assert_eq!(query.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&query), "bad-request");
    assert!(query.body["message"].as_str().unwrap().contains("limit"), "{}", query.body);

    let path = world.get("/api/v1/runs/first").await;
    assert_eq!(path.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&path), "bad-request");
}

#[tokio::test]
async fn the_job_page_pages_through_its_run_history() {
    let world = world().await;
    for _ in 0..21 {
        let store = &world.state.store;
        store.create_run("manga/curated-status", "manual", "skipped", None, None).await.unwrap();
    }
    let first = world.get("/jobs/manga/curated-status").await.body;
    let first = first.as_str().unwrap();
    assert!(
        first.contains("href=\"/runs/21\"") && !first.contains("href=\"/runs/1\""),
        "newest 20"
    );
    assert!(first.contains("<a href=\"?offset=20\">Older runs →</a>"), "{first}");
    assert!(!first.contains("Newer runs"));

    let second = world.get("/jobs/manga/curated-status?offset=20").await.body;
    let second = second.as_str().unwrap();
    assert!(second.contains("href=\"/runs/1\"") && !second.contains("href=\"/runs/2\""));
    assert!(second.contains("<a href=\"?offset=0\">← Newer runs</a>"));
    assert!(!second.contains("Older runs"));
}

#[tokio::test]
async fn a_token_a_cookie_cannot_hold_is_refused_by_the_token_form_with_the_reason() {
    let world =
        world_with("apiToken: \"s3 cret\"\napiTokenForReads: true\n", "127.0.0.1:8080").await;
    let form = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("token=s3+cret"))
        .unwrap();
    let response = router(world.state.clone()).oneshot(form).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let page = String::from_utf8_lossy(&bytes);
    assert!(page.contains("cannot be kept in a browser cookie"), "{page}");
    let api = world.send(Method::GET, "/api/v1/jobs", Some("s3 cret")).await;
    assert_eq!(api.status, StatusCode::OK, "the API takes it as a bearer token");
}

#[tokio::test]
async fn a_write_to_a_job_that_does_not_exist_says_so_and_where_jobs_come_from() {
    let world = world().await;
    let answer = world.send(Method::PUT, "/api/v1/jobs/nope", None).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&answer), "managed-in-git");
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "job `nope` does not exist: jobs are created by adding a YAML file under `"
        ),
        "{message}"
    );
    assert!(!message.contains("nope.yaml"), "no file that does not exist: {message}");
    assert!(answer.body["file"].as_str().unwrap().ends_with("jobs.d"), "{}", answer.body);
}

#[tokio::test]
async fn a_job_id_with_an_unencoded_slash_is_answered_with_its_encoded_form() {
    let world = world().await;
    let answer = world.get("/api/v1/jobs/manga/curated-status").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&answer), "no-route");
    assert_eq!(
        answer.body["message"],
        "no route `/api/v1/jobs/manga/curated-status`: a job ID's `/` is written `%2F` \
         (`/api/v1/jobs/manga%2Fcurated-status`)"
    );
    let runs = world.get("/api/v1/jobs/manga/curated-status/runs").await;
    assert!(
        runs.body["message"]
            .as_str()
            .unwrap()
            .ends_with("(`/api/v1/jobs/manga%2Fcurated-status/runs`)"),
        "{}",
        runs.body
    );
}

#[tokio::test]
async fn a_query_or_path_that_does_not_parse_is_refused_in_words() {
    let world = world().await;
    let sample = world
        .send(Method::POST, "/api/v1/jobs/manga%2Fcurated-status/preview?sample=abc", None)
        .await;
    assert_eq!(sample.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&sample), "bad-request");
    assert_eq!(sample.body["message"], "`sample` must be a whole number, not `abc`");

    let run = world.get("/api/v1/runs/abc").await;
    assert_eq!(error_code(&run), "bad-request");
    assert_eq!(run.body["message"], "`abc` is not a run number");

    let page = world.get("/runs/abc").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let html = page.body.as_str().unwrap();
    assert!(html.contains("<p>`abc` is not a run number</p>"), "{html}");
}

#[tokio::test]
async fn the_run_page_sets_backticked_parts_of_a_reason_as_code() {
    let world = world().await;
    let job = world.state.store.job("manga/curated-status").await.unwrap();
    world.state.runner.run(&job, crate::run::Trigger::Manual, None).await.unwrap();
    let page = world.get("/runs/1").await.body;
    let page = page.as_str().unwrap();
    assert!(page.contains("no ID: the entry has no <code>curated</code> external ID"), "{page}");
    assert!(!page.contains("`curated`"), "no backtick is left on the page");
}

#[test]
fn markup_in_a_reason_stays_text_around_its_code_spans() {
    assert_eq!(
        crate::web::ui::code_spans("<b>bold</b> `<script>` & `open"),
        "&#60;b&#62;bold&#60;/b&#62; <code>&#60;script&#62;</code> &#38; `open"
    );
}
