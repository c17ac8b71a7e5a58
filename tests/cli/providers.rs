//! The built-in HTTP providers (`anilist`, `openlibrary`) in real runs, against a local server
//! that answers as the services do (fixtures under `tests/fixtures/`); nothing reaches the
//! internet.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::*;

/// Requests the fake services saw: path and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// AniList under `/anilist/` and Open Library under `/openlibrary/`, on 127.0.0.1.
struct FakeServices {
    url: String,
    seen: Seen,
    _runtime: tokio::runtime::Runtime,
}

impl FakeServices {
    fn start() -> FakeServices {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let seen = Seen::default();
        let app = axum::Router::new().fallback(answer).with_state(seen.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeServices { url, seen, _runtime: runtime }
    }
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join("tests/fixtures").join(path)).unwrap()
}

async fn answer(
    axum::extract::State(seen): axum::extract::State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
    seen.lock().unwrap().push((uri.path().to_string(), auth));
    let json = |body: String| {
        (StatusCode::OK, [("content-type", "application/json")], body).into_response()
    };
    match (method.as_str(), uri.path()) {
        ("POST", "/anilist/") => json(fixture("anilist/media.json")),
        ("GET", "/openlibrary/isbn/9780140328721.json") => {
            let to = [("location", "/openlibrary/books/OL7353617M.json")];
            (StatusCode::FOUND, to).into_response()
        }
        ("GET", "/openlibrary/books/OL7353617M.json") => {
            json(fixture("openlibrary/edition-OL7353617M.json"))
        }
        ("GET", "/openlibrary/works/OL45804W.json") => {
            json(fixture("openlibrary/work-OL45804W.json"))
        }
        ("GET", "/openlibrary/authors/OL34184A.json") => {
            json(fixture("openlibrary/author-OL34184A.json"))
        }
        _ => (StatusCode::NOT_FOUND, r#"{"error": "notfound"}"#).into_response(),
    }
}

/// Given a library with one series known to AniList and one book known to Open Library, and a
/// job for each provider.
fn shelf(services: &FakeServices) -> Sandbox {
    let sandbox = Sandbox::new().prepared();
    sandbox.append_config(&format!(
        "  - name: anilist
    kind: anilist
    baseUrl: {url}/anilist
    credentials: {{ token: {{ env: CURATOR_TEST_ANILIST_TOKEN }} }}
    permissions: [metadata:write:status, metadata:write:ratings, metadata:write:tags]
  - name: openlibrary
    kind: openlibrary
    baseUrl: {url}/openlibrary
    permissions: [metadata:write:page_count, metadata:write:release_date, metadata:write:authors]
",
        url = services.url
    ));
    sandbox.write(
        "shelf.yaml",
        "libraries:
  - id: shelf
    name: Shelf
    series:
      - id: frieren
        metadata: { title: Frieren, status: unknown }
        externalIds: { anilist: { id: \"118586\" } }
        books:
          - id: fox
            metadata: { title: Fox }
            externalIds: { openlibrary: { id: \"9780140328721\" } }
",
    );
    let job = |provider: &str, scope: &str, groups: &str| {
        format!(
            "apiVersion: curator/v1\nkind: LibraryJob\nlibrary: shelf\nschedule:\n  cron: \"0 4 * * *\"\n\
             type: metadata_refresh\nprovider: {provider}\nscope: {scope}\n{groups}\n"
        )
    };
    sandbox.write(
        "jobs.d/shelf/anilist.yaml",
        &job("anilist", "series_only", "fieldGroups: [status, ratings, tags]"),
    );
    sandbox.write(
        "jobs.d/shelf/openlibrary.yaml",
        &job("openlibrary", "books_only", "bookFieldGroups: [page_count, release_date, authors]"),
    );
    sandbox.run(&["catalog", "import", "shelf.yaml"]).success();
    sandbox.run(&["reconcile"]).success();
    sandbox
}

#[test]
fn an_anilist_run_writes_what_the_service_says_and_keeps_the_token_secret() {
    let services = FakeServices::start();
    let sandbox = shelf(&services);
    let run = sandbox
        .command(&["run", "shelf/anilist", "--wait", "--output", "json"])
        .env("CURATOR_TEST_ANILIST_TOKEN", "tok-6h-secret")
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["run"]["totals"]["updated"], 1, "{stdout}");

    let frieren = sandbox.series("shelf", "frieren");
    assert_eq!(frieren["metadata"]["status"], "ongoing");
    assert_eq!(frieren["metadata"]["rating"]["score"], 89.0);
    assert_eq!(frieren["metadata"]["tags"][0], "Elf");
    assert_eq!(frieren["metadata"]["title"], "Frieren", "titles are not permitted");

    let seen = services.seen.lock().unwrap().clone();
    assert_eq!(seen, [("/anilist/".to_string(), Some("Bearer tok-6h-secret".to_string()))]);
    let database = std::fs::read(sandbox.path("data/curator.db")).unwrap();
    let stored = String::from_utf8_lossy(&database);
    assert!(!stored.contains("tok-6h-secret"), "the token is not in the database");
    assert!(!stdout.contains("tok-6h-secret") && !stderr.contains("tok-6h-secret"));
}

#[test]
fn an_anilist_run_without_its_token_fails_naming_the_variable() {
    let services = FakeServices::start();
    let sandbox = shelf(&services);
    let run = sandbox
        .command(&["run", "shelf/anilist", "--wait"])
        .env_remove("CURATOR_TEST_ANILIST_TOKEN")
        .output()
        .unwrap();
    let out =
        format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(!run.status.success(), "{out}");
    assert!(out.contains("`CURATOR_TEST_ANILIST_TOKEN`, which is not set"), "{out}");
    assert!(services.seen.lock().unwrap().is_empty(), "nothing is sent without the token");
}

#[test]
fn an_openlibrary_run_fills_books_by_isbn() {
    let services = FakeServices::start();
    let sandbox = shelf(&services);
    sandbox.run(&["run", "shelf/openlibrary", "--wait"]).success();
    let book = &sandbox.series("shelf", "frieren")["books"][0];
    assert_eq!(book["metadata"]["pageCount"], 96);
    assert_eq!(book["metadata"]["releaseDate"], "1988-10-01");
    assert_eq!(book["metadata"]["authors"][0]["name"], "Roald Dahl");
    assert_eq!(book["metadata"]["title"], "Fox", "titles are not permitted");
}
