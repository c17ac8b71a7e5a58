//! The pages in a real browser: Debian's headless Chromium, driven over WebDriver by
//! chromedriver, against a real `curator serve`. Each test saves screenshots under
//! `target/screenshots/`.
//!
//! Without `chromium` and `chromedriver` the tests say they did not run and pass; with
//! `CURATOR_BROWSER_TESTS=1` (as `.ci/run` sets) a missing browser fails them instead.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::serve::Server;
use crate::*;

/// The flags Chromium needs to run headless as root in a container.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
];

fn find(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// One Chromium at a time: a browser is heavy, and the other tests time what they measure on
/// the same two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A chromedriver with one Chromium session; both die with it.
struct Browser {
    driver: Child,
    client: Client,
    /// Where this test's screenshots go.
    shots: PathBuf,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts chromedriver and a Chromium session, or says why it cannot and returns `None`.
    async fn start(test: &str) -> Option<Browser> {
        let chromium = find("CURATOR_CHROMIUM", &["chromium", "chromium-browser"]);
        let driver = find("CURATOR_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let why = "chromium and chromedriver were not found (PATH, or CURATOR_CHROMIUM and \
                       CURATOR_CHROMEDRIVER)";
            let how = "install them with `apt-get install -y chromium chromium-driver` and run \
                       `cargo test --test cli browser`";
            assert!(
                std::env::var("CURATOR_BROWSER_TESTS").as_deref() != Ok("1"),
                "browser test `{test}` cannot run: {why}; {how}"
            );
            // Written past the test harness's capture, so a passing run still shows it.
            let _ = writeln!(std::io::stderr(), "NOT RUN: browser test `{test}`: {why}; {how}");
            return None;
        };

        let turn = ONE_AT_A_TIME.lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Its own process group, so dropping the browser kills Chromium with its driver.
        let mut command = Command::new(driver);
        command.arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": CHROMIUM_FLAGS }),
        );
        // chromedriver may accept connections a moment before it serves them.
        let mut tries = 0;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if tries < 5 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("a Chromium session does not start: {e}"),
            }
        };
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser { driver, client, shots, _turn: turn })
    }

    async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The visible text of the page.
    async fn text(&self) -> String {
        self.js("return document.body.innerText").await.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the page's text satisfies `check`.
    async fn wait_for_text(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text().await;
            if check(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{what} did not show; the page says:\n{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` returns `expected`.
    async fn wait_for_js(&self, what: &str, script: &str, expected: Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.js(script).await;
            if got == expected {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: got {got}, expected {expected}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `target/screenshots/NAME.png`.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Marks the page, so a later check can tell it was never reloaded.
    async fn mark(&self) {
        self.js("window.__curatorMark = 'same page'; return null").await;
    }

    async fn still_marked(&self) -> bool {
        self.js("return window.__curatorMark === 'same page'").await == json!(true)
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.kill();
    }

    fn kill(&mut self) {
        // SAFETY: kill(2) on the driver's own process group, which this test created.
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a blocking harness step (starting the server, running curator) off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// A sandbox, made ready by `prepare`, with a running server; the server is stopped when the
/// pair is dropped.
async fn served(prepare: impl FnOnce(Sandbox) -> Sandbox + Send + 'static) -> (Sandbox, Server) {
    blocking(move || {
        let sandbox = prepare(Sandbox::new());
        let server = Server::start(&sandbox);
        (sandbox, server)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jobs_page_lists_the_example_jobs_by_library_on_a_desk_and_a_phone() {
    let Some(browser) = Browser::start("jobs page").await else { return };
    let (_sandbox, server) = served(|s| s).await;
    browser.open(&format!("{}/", server.url())).await;

    let libraries: Vec<String> = {
        let mut names = Vec::new();
        for h2 in browser.client.find_all(Locator::Css("section.library h2")).await.unwrap() {
            names.push(h2.text().await.unwrap());
        }
        names
    };
    assert_eq!(libraries.len(), 3, "{libraries:?}");
    for (shown, library) in libraries.iter().zip(["books", "comics", "manga"]) {
        assert!(shown.starts_with(library), "{shown} is the {library} library");
    }
    let text = browser.text().await;
    for expected in [
        "Manga status, counts and ratings",
        "manga/curated-status",
        "At 04:00.",
        "0 4 * * *",
        "Europe/Paris",
        "03:00 UTC",
        "Comics summaries",
        "disabled",
        "books/curated-volumes",
        "books: page_count, release_date, isbn",
        "series_only",
    ] {
        assert!(text.contains(expected), "the jobs page shows `{expected}`:\n{text}");
    }
    let row = browser
        .client
        .find(Locator::Css("tr[data-job='manga/curated-status']"))
        .await
        .expect("a row for the manga job");
    let row_text = row.text().await.unwrap();
    for cell in ["yes", "curated", "status, counts, ratings, genres", "none"] {
        assert!(row_text.contains(cell), "the manga row shows `{cell}`: {row_text}");
    }
    browser.screenshot("jobs").await;

    // The keyboard: the first Tab lands on the skip link, and every job is a link.
    browser.js("document.activeElement.blur(); return null").await;
    browser.client.active_element().await.unwrap().send_keys("\u{E004}").await.unwrap();
    let focused = browser.js("return document.activeElement.textContent").await;
    assert_eq!(focused, json!("Skip to content"));

    // A phone: no sideways scrolling, each job a card.
    browser.client.set_window_size(390, 844).await.unwrap();
    let overflow = browser
        .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert!(overflow.as_i64().unwrap() <= 0, "the page fits a phone's width ({overflow} px over)");
    browser.screenshot("jobs-phone").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_produces_a_run_that_shows_on_the_page_without_a_reload() {
    let Some(browser) = Browser::start("run now").await else { return };
    let (_sandbox, server) = served(|s| s).await;
    browser.open(&format!("{}/jobs/manga/curated-status", server.url())).await;
    let text = browser.text().await;
    assert!(text.contains("No runs yet."), "{text}");
    assert!(
        text.contains("Managed in Git — to change this job, edit jobs.d/manga/curated-status.yaml"),
        "{text}"
    );
    assert!(text.contains("# Keeps the manga library's"), "the YAML as written: {text}");
    assert!(text.contains("jobs.d/manga/curated-status.yaml:4"), "the source and line: {text}");
    browser.mark().await;

    browser
        .client
        .find(Locator::Css("button[data-action=run]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_text("the queued run", |t| t.contains("Queued run #1")).await;
    let status = "return document.querySelector('tr[data-run=\"1\"] .status')?.textContent ?? ''";
    browser.wait_for_js("the run succeeding in the history", status, json!("succeeded")).await;
    assert!(browser.still_marked().await, "the history updated without a reload");
    browser.screenshot("job").await;

    browser.client.find(Locator::LinkText("#1")).await.unwrap().click().await.unwrap();
    let text = browser.wait_for_text("the run page", |t| t.contains("Run #1")).await;
    assert!(text.contains("succeeded"), "{text}");
    assert!(text.contains("vinland-saga"), "each entry is listed: {text}");
    assert!(text.contains("\"ongoing\" → \"ended\""), "before -> after: {text}");
    assert!(text.contains("locked: status"), "a held-back field says why: {text}");
    browser.screenshot("run").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_shows_what_each_sampled_field_would_become_and_what_blocks_it() {
    let Some(browser) = Browser::start("preview").await else { return };
    let (sandbox, server) = served(|s| s).await;
    browser.open(&format!("{}/jobs/manga/curated-status", server.url())).await;
    let sample = browser.client.find(Locator::Id("sample")).await.unwrap();
    sample.clear().await.unwrap();
    sample.send_keys("2").await.unwrap();
    browser
        .client
        .find(Locator::Css("form.preview-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let text = browser.wait_for_text("the preview", |t| t.contains("Preview ready.")).await;
    assert!(
        text.contains("2 of 10 planned entries, from provider curated; nothing was written"),
        "{text}"
    );
    let tables = browser.client.find_all(Locator::Css("#preview table.preview")).await.unwrap();
    assert_eq!(tables.len(), 2, "one table per sampled entry");
    let rows =
        browser.js("return document.querySelectorAll('#preview tr.verdict-change').length").await;
    assert!(rows.as_u64().unwrap() >= 1, "some field would change");
    for expected in ["would change", "outside the job's groups", "→"] {
        assert!(text.contains(expected), "the preview shows `{expected}`:\n{text}");
    }
    browser.screenshot("preview").await;

    let runs = blocking(move || sandbox.json(&["runs", "list", "--output", "json"])).await;
    assert_eq!(runs, json!([]), "a preview records no run");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_file_shows_the_banner_on_every_page_until_it_is_fixed() {
    let Some(browser) = Browser::start("banner").await else { return };
    let (sandbox, server) = served(|s| s).await;
    let url = server.url();
    browser.open(&format!("{url}/")).await;
    assert!(browser.client.find(Locator::Css(".banner")).await.is_err(), "no banner at first");
    browser.mark().await;

    let file = "jobs.d/manga/curated-status.yaml";
    let good = std::fs::read_to_string(sandbox.path(file)).unwrap();
    let broken = good.replace("scope: series_only", "scope: everything");
    let line = broken.lines().position(|l| l.starts_with("scope:")).unwrap() + 1;
    sandbox.write(file, &broken);
    let text = browser.wait_for_text("the banner", |t| t.contains(&format!("{file}:{line}"))).await;
    assert!(text.contains("1 job file(s) in jobs.d/ are invalid"), "{text}");
    assert!(
        text.contains("everything is not a scope"),
        "the error itself, its value set as code: {text}"
    );
    assert!(browser.still_marked().await, "the banner came without a reload");
    browser.screenshot("banner").await;

    for page in ["/jobs/books/curated-volumes", "/jobs/manga/curated-status"] {
        browser.open(&format!("{url}{page}")).await;
        assert!(browser.text().await.contains(&format!("{file}:{line}")), "banner on {page}");
    }
    browser.mark().await;
    sandbox.write(file, &good);
    browser.wait_for_text("the banner going away", |t| !t.contains("are invalid")).await;
    assert!(browser.still_marked().await);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_run_is_cancelled_from_its_page() {
    let Some(browser) = Browser::start("cancel").await else { return };
    // Given a job whose four entries each take the echo plugin 3 s, one at a time.
    let (_sandbox, server) = served(|sandbox| {
        let sandbox = sandbox.prepared();
        let plugin = echo_plugin();
        sandbox.append_config(&format!(
            "  - name: echo\n    kind: plugin\n    command: {}\n    permissions: [\"metadata:write:*\"]\n",
            plugin.display()
        ));
        let series: String = (0..4)
            .map(|i| format!("      - id: s{i}\n        externalIds: {{ echo: {{ id: slow }} }}\n"))
            .collect();
        sandbox.write("slow.yaml", &format!("libraries:\n  - id: slow\n    name: Slow\n    series:\n{series}"));
        sandbox.run(&["catalog", "import", "slow.yaml"]).success();
        let job = JOB.replace("library: manga", "library: slow").replace("provider: curated", "provider: echo");
        sandbox.write("jobs.d/slow.yaml", &format!("{job}maxConcurrency: 1\n"));
        sandbox
    })
    .await;

    // When Run now starts it and Cancel run stops it.
    browser.open(&format!("{}/jobs/slow", server.url())).await;
    browser
        .client
        .find(Locator::Css("button[data-action=run]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_text("the queued run", |t| t.contains("Queued run #1")).await;
    browser.open(&format!("{}/runs/1", server.url())).await;
    let status = "return document.querySelector('h1 .status')?.textContent ?? ''";
    browser.wait_for_js("the run running", status, json!("running")).await;
    browser.mark().await;
    browser
        .client
        .find(Locator::Css("button[data-action=cancel]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Then the page says so, and shows the run cancelled without a reload.
    browser.wait_for_text("the request", |t| t.contains("Cancel requested")).await;
    browser.wait_for_js("the run cancelled", status, json!("cancelled")).await;
    assert!(browser.still_marked().await, "the status came without a reload");
    let buttons =
        browser.js("return document.querySelectorAll('button[data-action=cancel]').length").await;
    assert_eq!(buttons, json!(0), "an ended run has no Cancel button");
    browser.screenshot("run-cancelled").await;
    browser.close().await;
}

const HOSTILE: &str = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">";

#[tokio::test(flavor = "multi_thread")]
async fn markup_in_a_job_name_or_a_series_title_stays_text() {
    let Some(browser) = Browser::start("hostile names").await else { return };
    let (_sandbox, server) = served(|sandbox| {
        let name = HOSTILE.replace('"', "\\\"");
        sandbox.write(
            "jobs.d/hostile.yaml",
            &format!("{JOB}name: \"{name}\"\nskipRecentlySyncedWithinS: 0\n"),
        );
        sandbox.write(
            "hostile-catalog.yaml",
            &format!(
                "libraries:\n  - id: manga\n    name: Manga\n    series:\n      - id: hostile\n        \
                 metadata: {{ title: '{HOSTILE}' }}\n        externalIds: {{ curated: {{ id: hostile }} }}\n"
            ),
        );
        let sandbox = sandbox.prepared();
        sandbox.run(&["catalog", "import", "hostile-catalog.yaml"]).success();
        // The hostile series has no curated file, so its entry fails and the run is partial.
        sandbox.run(&["run", "hostile", "--wait"]).expect_code(1);
        sandbox
    })
    .await;
    let url = server.url();

    for page in ["/", "/jobs/hostile", "/runs/1"] {
        browser.open(&format!("{url}{page}")).await;
        let text = browser.wait_for_text("the page", |t| t.contains("curator")).await;
        assert!(text.contains(HOSTILE), "{page} shows the markup as text:\n{text}");
        assert_eq!(browser.js("return window.__pwned === undefined").await, json!(true), "{page}");
        let images = browser.js("return document.querySelectorAll('main img').length").await;
        assert_eq!(images, json!(0), "{page} holds no injected image");
        let name = page.trim_matches('/').replace('/', "-");
        browser
            .screenshot(&format!("hostile-{}", if name.is_empty() { "jobs" } else { &name }))
            .await;
    }
    browser.close().await;
}
