//! The built-in HTTP providers against a local HTTP server that answers as AniList and Open
//! Library do, from the fixtures under `tests/fixtures/` (written after the services' public
//! formats). Nothing here reaches the internet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;
use crate::catalog::fields;
use crate::config::ProviderConfig;

/// A request as the fake service saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON request body")
    }
}

/// What the fake service answers.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// How long it waits before answering.
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: &str) -> Reply {
        let headers = vec![("content-type", "application/json".to_string())];
        Reply { status, headers, body: body.to_string(), delay: Duration::ZERO }
    }

    fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }
}

type Respond = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The fake service's state: what it saw, and how it answers.
type ServiceState = (Arc<Mutex<Vec<Seen>>>, Arc<Respond>);

/// A local HTTP server on 127.0.0.1 and a free port, answering every request with `respond`.
struct FakeService {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeService {
    async fn start(respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakeService {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state: ServiceState = (seen.clone(), Arc::new(respond));
        let app = axum::Router::new().fallback(answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeService { url, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    axum::extract::State((seen, respond)): axum::extract::State<ServiceState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = Seen {
        method,
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers,
        body,
    };
    seen.lock().unwrap().push(request.clone());
    let reply = respond(&request);
    tokio::time::sleep(reply.delay).await;
    let mut headers = HeaderMap::new();
    for (name, value) in reply.headers {
        headers.insert(name, value.parse().unwrap());
    }
    (StatusCode::from_u16(reply.status).unwrap(), headers, reply.body).into_response()
}

fn fixture(path: &str) -> String {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A provider config as `curator.yaml` would declare it, with `extra` keys merged in.
fn config(kind: &str, base_url: &str, extra: Value) -> ProviderConfig {
    let mut value = json!({ "name": kind, "kind": kind, "baseUrl": base_url, "timeoutSeconds": 5 });
    value.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    serde_json::from_value(value).expect("a valid provider config")
}

fn anilist(service: &FakeService, extra: Value) -> anilist::AnilistProvider {
    anilist::AnilistProvider::new(&config("anilist", &service.url, extra)).unwrap()
}

fn openlibrary(service: &FakeService) -> openlibrary::OpenLibraryProvider {
    let settings = json!({ "settings": { "coversUrl": "http://covers.test/" } });
    openlibrary::OpenLibraryProvider::new(&config("openlibrary", &service.url, settings)).unwrap()
}

/// Every value the result holds for a catalog field fits that field's shape.
fn assert_fields_fit(kind: EntityKind, metadata: &Metadata) {
    for field in fields::fields(kind) {
        if let Some(value) = metadata.get(field.response_key) {
            let fits = fields::check_shape(field, value);
            assert!(fits.is_ok(), "`{}` = {value}: {fits:?}", field.name);
        }
    }
}

// --- AniList ---

#[tokio::test]
async fn anilist_series_are_read_into_codex_fields() {
    let service = FakeService::start(|_| Reply::json(200, &fixture("anilist/media.json"))).await;
    let provider = anilist(&service, json!({}));
    let series = provider.get(EntityKind::Series, "118586").await.unwrap();

    assert_eq!(series["externalId"], "118586");
    assert_eq!(series["title"], "Frieren: Beyond Journey’s End", "English title by default");
    let alternates = series["alternateTitles"].as_array().unwrap();
    assert_eq!(
        alternates[0],
        json!({"title": "Sousou no Frieren", "titleType": "romaji", "language": "ja-Latn"})
    );
    assert_eq!(
        alternates[1],
        json!({"title": "葬送のフリーレン", "titleType": "native", "language": "ja"})
    );
    assert_eq!(alternates[2]["title"], "Frieren at the Funeral");
    assert_eq!(alternates.len(), 3, "a synonym equal to the title is not repeated: {alternates:?}");
    let summary = series["summary"].as_str().unwrap();
    assert!(summary.starts_with("The adventure is over"), "{summary}");
    assert!(
        !summary.contains('<') && !summary.contains("&amp;"),
        "tags and entities go: {summary}"
    );
    assert!(!summary.contains("Himmel dies"), "spoilers go: {summary}");
    assert!(summary.ends_with("includes a one-shot & extras."), "{summary}");
    assert_eq!(series["status"], "ongoing");
    assert_eq!(series["year"], 2020);
    assert!(series.get("totalVolumeCount").is_none(), "AniList's null volumes are not a count");
    assert_eq!(series["genres"], json!(["Adventure", "Drama", "Fantasy", "Slice of Life"]));
    assert_eq!(series["tags"], json!(["Elf", "Time Skip", "Magic"]), "spoiler tags are skipped");
    assert_eq!(series["rating"], json!({"score": 89.0, "voteCount": 33000, "source": "anilist"}));
    assert!(series["coverUrl"].as_str().unwrap().contains("/cover/large/bx118586"));
    assert_eq!(series["language"], "ja");
    assert_eq!(
        series["authors"],
        json!([
            { "name": "Kanehito Yamada", "role": "writer" },
            { "name": "Tsukasa Abe", "role": "illustrator" }
        ]),
        "translators and letterers are not authors"
    );
    let links = series["externalLinks"].as_array().unwrap();
    assert_eq!(links[0]["url"], "https://anilist.co/manga/118586");
    assert_eq!(links[1]["url"], "https://myanimelist.net/manga/126287");
    assert_eq!(links.len(), 5);
    assert_fields_fit(EntityKind::Series, &series);

    let seen = service.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/"));
    assert_eq!(seen[0].json()["variables"], json!({"id": 118586}));
    assert!(seen[0].json()["query"].as_str().unwrap().contains("Media(id: $id, type: MANGA)"));
    let agent = seen[0].headers["user-agent"].to_str().unwrap();
    assert_eq!(agent, concat!("curator/", env!("CARGO_PKG_VERSION")));
    assert!(seen[0].headers.get("authorization").is_none(), "no token, no header");
}

#[tokio::test]
async fn anilist_volumes_chapters_and_the_romaji_title_setting() {
    let mut media: Value = serde_json::from_str(&fixture("anilist/media.json")).unwrap();
    media["data"]["Media"]["status"] = json!("FINISHED");
    media["data"]["Media"]["volumes"] = json!(14);
    media["data"]["Media"]["chapters"] = json!(140);
    let body = media.to_string();
    let service = FakeService::start(move |_| Reply::json(200, &body)).await;
    let provider = anilist(&service, json!({ "settings": { "titleLanguage": "romaji" } }));
    let series = provider.get(EntityKind::Series, "118586").await.unwrap();
    assert_eq!(series["title"], "Sousou no Frieren");
    assert_eq!(series["alternateTitles"][0]["titleType"], "english");
    assert_eq!(
        (series["status"].as_str(), series["totalVolumeCount"].as_i64()),
        (Some("ended"), Some(14))
    );
    assert_eq!(series["totalChapterCount"], 140.0);
    assert_fields_fit(EntityKind::Series, &series);
}

#[tokio::test]
async fn anilist_not_found_comes_as_http_404_or_as_a_graphql_error() {
    for status in [404, 200] {
        let service =
            FakeService::start(move |_| Reply::json(status, &fixture("anilist/not-found.json")))
                .await;
        let err =
            anilist(&service, json!({})).get(EntityKind::Series, "999999999").await.unwrap_err();
        assert!(matches!(err, ProviderError::NotFound { .. }), "HTTP {status}: {err}");
        assert_eq!(
            err.to_string(),
            "provider `anilist` has no series with external ID `999999999`"
        );
    }
    let service = FakeService::start(|_| Reply::json(200, "{}")).await;
    let err = anilist(&service, json!({})).get(EntityKind::Series, "frieren").await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound { .. }), "not an AniList ID: {err}");
    assert!(service.seen().is_empty(), "an ID that cannot exist is not sent");
}

#[tokio::test]
async fn rate_limits_carry_the_retry_after_wait_in_both_forms() {
    let service = FakeService::start(|_| {
        Reply::json(429, &fixture("anilist/rate-limited.json")).header("retry-after", "7")
    })
    .await;
    let err = anilist(&service, json!({})).get(EntityKind::Series, "1").await.unwrap_err();
    let ProviderError::RateLimited { retry_after, .. } = err else { panic!("{err}") };
    assert_eq!(retry_after, Duration::from_secs(7));

    let in_90_s = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
    let service = FakeService::start(move |_| {
        Reply::json(429, r#"{"error":"rate limited"}"#).header("retry-after", &in_90_s)
    })
    .await;
    let err = openlibrary(&service).get(EntityKind::Book, "9780140328721").await.unwrap_err();
    let ProviderError::RateLimited { retry_after, .. } = err else { panic!("{err}") };
    assert!((85..=90).contains(&retry_after.as_secs()), "an HTTP date 90 s ahead: {retry_after:?}");

    let service = FakeService::start(|_| Reply::json(429, "{}")).await;
    let err = anilist(&service, json!({})).get(EntityKind::Series, "1").await.unwrap_err();
    let ProviderError::RateLimited { retry_after, .. } = err else { panic!("{err}") };
    assert_eq!(retry_after, http::DEFAULT_RETRY_AFTER, "no header: the default wait");
}

#[tokio::test]
async fn server_errors_and_refused_connections_are_transient() {
    let service = FakeService::start(|_| Reply::json(503, "<html>down</html>")).await;
    let err = anilist(&service, json!({})).get(EntityKind::Series, "1").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        err.to_string(),
        "provider `anilist` could not be reached: `POST /` answered 503 Service Unavailable"
    );

    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let provider =
        openlibrary::OpenLibraryProvider::new(&config("openlibrary", &url, json!({}))).unwrap();
    let err = provider.get(EntityKind::Book, "9780140328721").await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable { .. }), "{err}");
    let text = err.to_string();
    let expected = "provider `openlibrary` could not be reached: `GET /isbn/9780140328721.json` could \
                    not connect";
    assert!(text.starts_with(expected), "{text}");
}

#[tokio::test]
async fn a_slow_answer_times_out_as_a_transient_error() {
    let service = FakeService::start(|_| Reply {
        delay: Duration::from_secs(3),
        ..Reply::json(200, &fixture("anilist/media.json"))
    })
    .await;
    let provider = anilist::AnilistProvider::new(&config(
        "anilist",
        &service.url,
        json!({ "timeoutSeconds": 1 }),
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let err = provider.get(EntityKind::Series, "118586").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "the call gives up at its timeout");
    assert!(matches!(err, ProviderError::Timeout { .. }) && err.is_transient(), "{err}");
    assert_eq!(err.to_string(), "provider `anilist` did not answer `POST /` within 1s");
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error() {
    let service = FakeService::start(|_| Reply::json(200, r#"{"data": {"Media": "#)).await;
    let err = anilist(&service, json!({})).get(EntityKind::Series, "1").await.unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }) && !err.is_transient(), "{err}");
    assert!(
        err.to_string().starts_with(
            "provider `anilist` sent an invalid answer to `POST /`: the answer is not JSON"
        ),
        "{err}"
    );

    let service =
        FakeService::start(|_| Reply::json(200, "<!DOCTYPE html><html>maintenance</html>")).await;
    let err = openlibrary(&service).get(EntityKind::Book, "9780140328721").await.unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn a_token_is_sent_as_bearer_and_never_printed_even_when_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("anilist-token");
    std::fs::write(&token_file, "s3cret-T0KEN\n").unwrap();
    // A service that quotes the credential back in its refusal.
    let service = FakeService::start(|seen| {
        let auth = seen.headers["authorization"].to_str().unwrap().to_string();
        let error = json!({ "message": format!("Invalid token: {auth}"), "status": 400 });
        let body = json!({ "errors": [error], "data": null });
        Reply::json(400, &body.to_string())
    })
    .await;
    let credentials = json!({ "credentials": { "token": { "file": token_file } } });
    let provider = anilist(&service, credentials);
    let err = provider.get(EntityKind::Series, "1").await.unwrap_err();

    assert_eq!(
        service.seen()[0].headers["authorization"],
        "Bearer s3cret-T0KEN",
        "trimmed, as Bearer"
    );
    assert!(matches!(err, ProviderError::Refused { .. }) && !err.is_transient(), "{err}");
    let (text, debug) = (err.to_string(), format!("{err:?}"));
    assert_eq!(
        text,
        "provider `anilist` refused `POST /` with status 400 Bad Request: Invalid token: Bearer \
         <redacted>"
    );
    assert!(!text.contains("s3cret") && !debug.contains("s3cret"), "{text} / {debug}");
}

#[tokio::test]
async fn a_graphql_refusal_with_http_200_is_still_an_error() {
    let service =
        FakeService::start(|_| Reply::json(200, &fixture("anilist/invalid-token.json"))).await;
    let err = anilist(&service, json!({})).get(EntityKind::Series, "1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider `anilist` refused `POST /` with status 400: Invalid token"
    );

    // The same refusal quoting the token back is redacted too.
    let service = FakeService::start(|seen| {
        let auth = seen.headers["authorization"].to_str().unwrap().to_string();
        let error = json!({ "message": format!("Invalid token {auth}"), "status": 400 });
        Reply::json(200, &json!({ "errors": [error], "data": null }).to_string())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret-T0KEN").unwrap();
    let credentials = json!({ "credentials": { "token": { "file": dir.path().join("token") } } });
    let err = anilist(&service, credentials).get(EntityKind::Series, "1").await.unwrap_err();
    assert!(err.to_string().ends_with("Invalid token Bearer <redacted>"), "{err}");
}

#[tokio::test]
async fn missing_or_unknown_credentials_make_the_provider_unavailable_without_values() {
    // The error of starting a `kind` provider with these credentials.
    let refusal = |kind: &str, credentials: Value| {
        let config = config(kind, "http://127.0.0.1:9", json!({ "credentials": credentials }));
        let err = match kind {
            "anilist" => anilist::AnilistProvider::new(&config).err(),
            _ => openlibrary::OpenLibraryProvider::new(&config).err(),
        };
        err.expect("the provider does not start").to_string()
    };
    assert_eq!(
        refusal("anilist", json!({ "token": { "env": "CURATOR_TEST_UNSET_ANILIST_TOKEN" } })),
        "provider `anilist` cannot be used: credential `token` comes from environment variable \
         `CURATOR_TEST_UNSET_ANILIST_TOKEN`, which is not set"
    );
    assert_eq!(
        refusal("anilist", json!({ "token": { "file": "/nonexistent/anilist-token" } })),
        "provider `anilist` cannot be used: credential `token` comes from file \
         `/nonexistent/anilist-token`, which cannot be read: it does not exist"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let empty = refusal("anilist", json!({ "token": { "file": dir.path().join("empty") } }));
    assert!(empty.ends_with("is empty"), "{empty}");
    let typo = refusal("anilist", json!({ "tokn": { "env": "X" } }));
    assert!(typo.ends_with("credential `tokn` is not used: expected `token`"), "{typo}");
    let unneeded = refusal("openlibrary", json!({ "token": { "env": "X" } }));
    assert!(unneeded.ends_with("it takes no credentials"), "{unneeded}");
}

#[tokio::test]
async fn the_registry_starts_the_http_providers_with_their_capabilities() {
    let configs = [
        config("anilist", "http://127.0.0.1:9", json!({})),
        config("openlibrary", "http://127.0.0.1:9", json!({})),
        config(
            "anilist",
            "http://127.0.0.1:9",
            json!({
                "name": "needs-token",
                "credentials": { "token": { "env": "CURATOR_TEST_UNSET_ANILIST_TOKEN" } }
            }),
        ),
    ];
    let registry = Registry::new(&configs);
    let anilist = registry.get("anilist").await.unwrap();
    assert_eq!(anilist.capabilities(), Capabilities { series: true, book: false });
    let openlibrary = registry.get("openlibrary").await.unwrap();
    assert_eq!(openlibrary.capabilities(), Capabilities { series: false, book: true });
    let err = registry.get("needs-token").await.err().unwrap();
    assert!(
        err.to_string().contains("`CURATOR_TEST_UNSET_ANILIST_TOKEN`, which is not set"),
        "{err}"
    );
    let err = anilist.get(EntityKind::Book, "1").await.unwrap_err();
    assert!(err.to_string().ends_with("it provides series only, not books"), "{err}");
}

#[tokio::test]
async fn the_public_services_are_paced_by_default_and_a_config_can_change_or_lift_it() {
    let configs = [
        config("anilist", "http://127.0.0.1:9", json!({})),
        config("openlibrary", "http://127.0.0.1:9", json!({})),
        config("anilist", "http://127.0.0.1:9", json!({ "name": "fast", "requestsPerMinute": 90 })),
        config("anilist", "http://127.0.0.1:9", json!({ "name": "free", "requestsPerMinute": 0 })),
    ];
    let registry = Registry::new(&configs);
    let paced = |name: &'static str| {
        let registry = &registry;
        async move { registry.get(name).await.unwrap().requests_per_minute() }
    };
    assert_eq!(paced("anilist").await, Some(30));
    assert_eq!(paced("openlibrary").await, Some(60));
    assert_eq!(paced("fast").await, Some(90));
    assert_eq!(paced("free").await, None);
    let shown: Vec<_> = registry.statuses().await.iter().map(|s| s.requests_per_minute).collect();
    assert_eq!(shown, [Some(30), Some(60), Some(90), None]);
}

#[tokio::test]
async fn anilist_matches_above_the_threshold_only_for_a_close_title_and_year() {
    let service = FakeService::start(|_| Reply::json(200, &fixture("anilist/search.json"))).await;
    let provider = anilist(&service, json!({}));
    let query = |title: &str, year| MatchQuery { title: title.into(), year, ..Default::default() };

    let found =
        provider.match_entry(EntityKind::Series, &query("Sousou no Frieren", Some(2020))).await;
    let found = found.unwrap().unwrap();
    assert_eq!(found.external_id, "118586");
    assert!(found.confidence >= crate::config::MATCH_THRESHOLD, "{found:?}");
    assert_eq!(service.seen()[0].json()["variables"]["search"], "Sousou no Frieren");

    let other_year =
        provider.match_entry(EntityKind::Series, &query("Sousou no Frieren", Some(2012))).await;
    let other_year = other_year.unwrap().unwrap();
    assert!(other_year.confidence < crate::config::MATCH_THRESHOLD, "{other_year:?}");

    let loose = provider.match_entry(EntityKind::Series, &query("Frieren Anthology", None)).await;
    let loose = loose.unwrap().unwrap();
    assert!(loose.confidence < crate::config::MATCH_THRESHOLD, "{loose:?}");
}

// --- Open Library ---

/// Open Library as it answers for one edition: `/isbn/…` redirects to the edition.
async fn open_library() -> FakeService {
    FakeService::start(|seen| match seen.path.as_str() {
        "/isbn/9780140328721.json" | "/isbn/0140328726.json" => {
            Reply::json(302, "").header("location", "/books/OL7353617M.json")
        }
        "/books/OL7353617M.json" => {
            Reply::json(200, &fixture("openlibrary/edition-OL7353617M.json"))
        }
        "/works/OL45804W.json" => Reply::json(200, &fixture("openlibrary/work-OL45804W.json")),
        "/authors/OL34184A.json" => Reply::json(200, &fixture("openlibrary/author-OL34184A.json")),
        "/search.json" => Reply::json(200, &fixture("openlibrary/search.json")),
        path => Reply::json(404, &json!({ "error": "notfound", "key": path }).to_string()),
    })
    .await
}

#[tokio::test]
async fn openlibrary_books_are_read_from_edition_work_and_authors() {
    let service = open_library().await;
    let book = openlibrary(&service).get(EntityKind::Book, "978-0-14-032872-1").await.unwrap();

    assert_eq!(book["externalId"], "9780140328721");
    assert_eq!(book["externalUrl"], format!("{}/books/OL7353617M", service.url));
    assert_eq!(book["title"], "Fantastic Mr. Fox", "the edition's title wins");
    assert_eq!(book["publisher"], "Puffin");
    assert_eq!(
        (book["releaseDate"].as_str(), book["year"].as_i64()),
        (Some("1988-10-01"), Some(1988))
    );
    assert_eq!(book["originalYear"], 1970);
    assert_eq!(book["pageCount"], 96);
    assert_eq!(book["isbn"], "9780140328721");
    assert_eq!(book["isbns"], json!(["9780140328721", "0140328726"]));
    assert_eq!(book["authors"], json!([{"name": "Roald Dahl", "role": "author"}]));
    let summary = book["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("The main character") && summary.contains(".\nHe steals"),
        "{summary}"
    );
    assert_eq!(book["subjects"][1], "Foxes");
    assert_eq!(book["language"], "en");
    assert_eq!(
        book["coverUrl"], "http://covers.test/b/id/8739161-L.jpg",
        "from the covers setting"
    );
    assert_fields_fit(EntityKind::Book, &book);

    let paths: Vec<String> = service.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/isbn/9780140328721.json",
            "/books/OL7353617M.json",
            "/works/OL45804W.json",
            "/authors/OL34184A.json"
        ]
    );
}

#[tokio::test]
async fn openlibrary_reads_works_and_reports_missing_isbns() {
    let service = open_library().await;
    let provider = openlibrary(&service);
    let work = provider.get(EntityKind::Book, "OL45804W").await.unwrap();
    assert_eq!(
        (work["title"].as_str(), work["year"].as_i64()),
        (Some("Fantastic Mr Fox"), Some(1970))
    );
    assert_eq!(work["coverUrl"], "http://covers.test/b/id/6498519-L.jpg");
    assert_eq!(
        work["authors"][0]["name"], "Roald Dahl",
        "a work's authors when there is no edition"
    );

    let err = provider.get(EntityKind::Book, "9780000000002").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider `openlibrary` has no book with external ID `9780000000002`"
    );
    let err = provider.get(EntityKind::Series, "OL45804W").await.unwrap_err();
    assert!(err.to_string().ends_with("it provides books only, not series"), "{err}");
}

#[tokio::test]
async fn openlibrary_fails_rather_than_return_half_a_book() {
    let service = FakeService::start(|seen| match seen.path.as_str() {
        "/isbn/9780140328721.json" => {
            Reply::json(200, &fixture("openlibrary/edition-OL7353617M.json"))
        }
        _ => Reply::json(502, "Bad Gateway"),
    })
    .await;
    let err = openlibrary(&service).get(EntityKind::Book, "9780140328721").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider `openlibrary` could not be reached: `GET /works/OL45804W.json` answered 502 Bad Gateway"
    );
}

#[tokio::test]
async fn openlibrary_matches_by_isbn_first_then_by_title_and_author() {
    let service = open_library().await;
    let provider = openlibrary(&service);
    let by_isbn = MatchQuery {
        title: "anything".into(),
        isbn: Some("0-14-032872-6".into()),
        ..Default::default()
    };
    let found = provider.match_entry(EntityKind::Book, &by_isbn).await.unwrap().unwrap();
    assert_eq!((found.external_id.as_str(), found.confidence), ("0140328726", 1.0));

    let by_title = MatchQuery {
        title: "Fantastic Mr Fox".into(),
        authors: vec!["Roald Dahl".into()],
        isbn: Some("9780000000002".into()),
        ..Default::default()
    };
    let found = provider.match_entry(EntityKind::Book, &by_title).await.unwrap().unwrap();
    assert_eq!(found.external_id, "OL7353617M", "the work's cover edition");
    assert!(found.confidence >= crate::config::MATCH_THRESHOLD, "{found:?}");
    let search = service.seen().into_iter().find(|s| s.path == "/search.json").unwrap();
    assert!(
        search.query.contains("title=Fantastic+Mr+Fox")
            && search.query.contains("author=Roald+Dahl"),
        "{}",
        search.query
    );

    let wrong_author = MatchQuery {
        title: "Fantastic Mr Fox".into(),
        authors: vec!["Quentin Blake".into()],
        ..Default::default()
    };
    let found = provider.match_entry(EntityKind::Book, &wrong_author).await.unwrap().unwrap();
    assert!(found.confidence < crate::config::MATCH_THRESHOLD, "{found:?}");
}

#[tokio::test]
async fn a_provider_whose_calls_keep_failing_shows_as_failing_until_one_succeeds() {
    let down = Arc::new(Mutex::new(true));
    let service = {
        let down = down.clone();
        FakeService::start(move |_| {
            if *down.lock().unwrap() {
                Reply::json(503, "down")
            } else {
                Reply::json(200, &fixture("anilist/media.json"))
            }
        })
        .await
    };
    let registry = Registry::new(&[config("anilist", &service.url, json!({}))]);
    let provider = registry.get("anilist").await.unwrap();
    let health = |statuses: Vec<ProviderStatus>| (statuses[0].health, statuses[0].detail.clone());

    assert_eq!(health(registry.statuses().await), (Health::Ok, None), "started, nothing failed");
    for _ in 0..FAILING_AFTER {
        provider.get(EntityKind::Series, "1").await.unwrap_err();
    }
    let (state, detail) = health(registry.statuses().await);
    assert_eq!(state, Health::Failing);
    assert_eq!(
        detail.unwrap(),
        "its last 3 calls failed: provider `anilist` could not be reached: `POST /` answered 503 \
         Service Unavailable"
    );

    *down.lock().unwrap() = false;
    provider.get(EntityKind::Series, "1").await.unwrap();
    assert_eq!(health(registry.statuses().await), (Health::Ok, None), "one answer clears it");
}
