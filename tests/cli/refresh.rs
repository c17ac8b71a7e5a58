//! metadata_refresh at full strength: scopes, matching, providers that fail in every way a
//! provider can, cancellation and preview, each against the real binary and the echo plugin.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::*;

/// A sandbox with the echo plugin as provider `echo` and a library `lab` of the given series,
/// each `(key, title, echo ID or "" for none)`, plus `books` under the first series.
fn echo_lab(series: &[(&str, &str, &str)], books: &str, job_extra: &str) -> Sandbox {
    let sandbox = Sandbox::new().prepared();
    sandbox.append_config(&format!(
        "  - name: echo\n    kind: plugin\n    command: {}\n    timeoutSeconds: 5\n    permissions: [\"metadata:write:*\"]\n",
        echo_plugin().display()
    ));
    let mut catalog = String::from("libraries:\n  - id: lab\n    name: Lab\n    series:\n");
    for (i, (key, title, id)) in series.iter().enumerate() {
        catalog.push_str(&format!("      - id: {key}\n        metadata: {{ title: {title:?} }}\n"));
        if !id.is_empty() {
            catalog.push_str(&format!("        externalIds: {{ echo: {{ id: {id:?} }} }}\n"));
        }
        if i == 0 && !books.is_empty() {
            catalog.push_str(books);
        }
    }
    sandbox.write("lab.yaml", &catalog);
    sandbox.run(&["catalog", "import", "lab.yaml"]).success();
    let job = JOB
        .replace("library: manga", "library: lab")
        .replace("provider: curated", "provider: echo")
        .replace("fieldGroups: [ratings]", "fieldGroups: [ratings, status, counts]");
    sandbox.write("jobs.d/lab.yaml", &format!("{job}{job_extra}"));
    sandbox.run(&["reconcile"]).success();
    sandbox
}

fn run_json(sandbox: &Sandbox, job: &str) -> Value {
    let out = sandbox.run(&["run", job, "--wait", "--output", "json"]);
    serde_json::from_str(&out.stdout()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout()))
}

fn entry<'a>(shown: &'a Value, key: &str) -> &'a Value {
    let entries = shown["entries"].as_array().unwrap();
    entries.iter().find(|e| e["entry"] == key).unwrap_or_else(|| panic!("no {key} in {shown}"))
}

#[test]
fn a_provider_that_fails_in_every_way_still_gives_a_run_that_ends() {
    let sandbox = echo_lab(
        &[
            ("a-ok", "A", "ok"),
            ("b-crash", "B", "crash-once"),
            ("c-garbage", "C", "garbage"),
            ("d-missing", "D", "missing"),
            ("e-bad", "E", "badvalues"),
            ("f-ratelimited", "F", "ratelimited-once"),
        ],
        "",
        "maxConcurrency: 1\n",
    );
    let state = tempfile::tempdir().unwrap();
    let out = sandbox
        .command(&["run", "lab", "--wait", "--output", "json"])
        .env("ECHO_STATE_DIR", state.path())
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(shown["run"]["status"], "partial", "{shown}");
    assert_eq!(shown["run"]["error"], "1 of 6 entries failed");
    for key in ["a-ok", "b-crash", "c-garbage", "f-ratelimited"] {
        assert_eq!(entry(&shown, key)["outcome"], "updated", "{key}: {shown}");
    }
    let missing = entry(&shown, "d-missing");
    assert_eq!(missing["outcome"], "failed");
    assert_eq!(missing["reason"], "provider `echo` has no series with external ID `missing`");
    let bad = entry(&shown, "e-bad");
    assert_eq!(bad["outcome"], "unchanged", "{bad}");
    let reason = bad["reason"].as_str().unwrap();
    assert!(reason.starts_with("refused: status (`\"completed\"`"), "{reason}");
    assert!(reason.contains("totalVolumeCount (`-3`"), "{reason}");
    assert!(reason.contains("rating ("), "{reason}");
    let stored = sandbox.series("lab", "e-bad");
    assert_eq!(stored["metadata"].get("status"), None, "a refused value is never stored");
    assert_eq!(stored["metadata"].get("rating"), None);
    assert!(state.path().join("echo-crashed-once").exists(), "the plugin did crash");
}

#[test]
fn a_provider_that_stays_down_fails_the_run_and_keeps_what_was_written() {
    let series: Vec<(String, String, String)> = (0..8)
        .map(|i| {
            let id = if i == 0 { "ok".to_string() } else { "down".to_string() };
            (format!("s{i}"), format!("S{i}"), id)
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> =
        series.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    let sandbox = echo_lab(&refs, "", "maxConcurrency: 1\n");
    let out = sandbox.run(&["run", "lab", "--wait", "--output", "json"]);
    let shown: Value = serde_json::from_str(&out.stdout()).unwrap();
    let logged = out.stderr();
    let line = logged.lines().find(|l| l.contains("run finished")).unwrap_or_default();
    assert!(line.contains("WARN") && line.contains("stayed down"), "the log says why: {logged}");

    assert_eq!(shown["run"]["status"], "failed", "{shown}");
    let error = shown["run"]["error"].as_str().unwrap();
    assert_eq!(
        error,
        "provider `echo` stayed down: 5 entries in a row failed after 3 tries each; last error: \
         provider `echo` answered `metadata/series/get` with error -32603: internal error: the \
         upstream service is down"
    );
    let totals = &shown["run"]["totals"];
    assert_eq!((totals["updated"].as_i64(), totals["failed"].as_i64()), (Some(1), Some(5)));
    assert_eq!(totals["notAttempted"], 2, "no call after giving up");
    assert_eq!(sandbox.series("lab", "s0")["metadata"]["status"], "ongoing", "s0 stays written");
}

#[test]
fn entries_without_an_id_are_matched_only_when_the_provider_is_sure() {
    let sandbox = echo_lab(
        &[("pluto", "Pluto", ""), ("vague", "unsure thing", ""), ("none", "nothing here", "")],
        "",
        "existingSourceIdsOnly: false\n",
    );
    let shown = run_json(&sandbox, "lab");
    assert_eq!(shown["run"]["status"], "succeeded", "{shown}");
    let totals = &shown["run"]["totals"];
    assert_eq!(totals["matched"], 1);
    assert_eq!(totals["noConfidentMatch"], 2);
    assert_eq!(totals["updated"], 1);

    let pluto = entry(&shown, "pluto");
    assert_eq!(pluto["outcome"], "updated");
    assert!(
        pluto["reason"]
            .as_str()
            .unwrap()
            .starts_with("matched `m-pluto` (\"Pluto\") with confidence 0.95"),
        "{pluto}"
    );
    assert_eq!(sandbox.series("lab", "pluto")["externalIds"]["echo"]["id"], "m-pluto");
    let vague = entry(&shown, "vague");
    assert_eq!(vague["outcome"], "skipped");
    assert_eq!(
        vague["reason"],
        "no confident match: the best candidate, `m-unsure-thing` (\"unsure thing\"), has confidence 0.40, below 0.8"
    );
    assert_eq!(sandbox.series("lab", "vague")["externalIds"].get("echo"), None, "nothing attached");
    let none = entry(&shown, "none");
    assert_eq!(none["reason"], "no confident match: the provider found no candidate");

    // The matched ID is kept: the next run finds the entry recently synced.
    let again = run_json(&sandbox, "lab");
    assert_eq!(again["run"]["totals"]["skippedRecent"], 1);
}

#[test]
fn series_and_books_write_each_side_with_its_own_selection() {
    let books = "        books:\n          - id: v1\n            metadata: { title: \"Volume 1\", isbn: \"9780000000001\" }\n            externalIds: { echo: { id: \"b1\" } }\n";
    let sandbox = echo_lab(&[("one", "One", "s1")], books, "");
    let job = std::fs::read_to_string(sandbox.path("jobs.d/lab.yaml")).unwrap();
    let job = job.replace("scope: series_only", "scope: series_and_books");
    sandbox.write("jobs.d/lab.yaml", &format!("{job}bookExtraFields: [pageCount]\n"));
    sandbox.run(&["reconcile"]).success();

    let shown = run_json(&sandbox, "lab");
    assert_eq!(shown["run"]["status"], "succeeded", "{shown}");
    let book = entry(&shown, "one/v1");
    let written: Vec<&str> =
        book["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert_eq!(written, ["pageCount"], "the book side writes only its own selection: {book}");
    let series = entry(&shown, "one");
    assert!(series["changes"].as_array().unwrap().iter().any(|c| c["field"] == "status"));
}

#[test]
fn a_cancelled_run_stops_calling_and_ends_cancelled() {
    let slow: Vec<(String, String, String)> =
        (0..4).map(|i| (format!("s{i}"), format!("S{i}"), "slow".to_string())).collect();
    let refs: Vec<(&str, &str, &str)> =
        slow.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    let sandbox = echo_lab(&refs, "", "maxConcurrency: 1\n");
    let mut child = sandbox.command(&["run", "lab", "--wait"]).spawn().unwrap();

    let started = Instant::now();
    let run_id = loop {
        let runs = sandbox.json(&["runs", "list", "--job", "lab", "--output", "json"]);
        if let Some(run) = runs.as_array().unwrap().iter().find(|r| r["status"] == "running") {
            break run["id"].as_i64().unwrap().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the run never started");
        std::thread::sleep(Duration::from_millis(100));
    };
    let cancel = sandbox.run(&["runs", "cancel", &run_id]).success();
    assert!(cancel.stdout().starts_with(&format!("cancel requested for run {run_id}")));
    let status = child.wait().unwrap();
    assert!(!status.success(), "a cancelled run is not a success");

    let shown = sandbox.json(&["runs", "show", &run_id, "--output", "json"]);
    assert_eq!(shown["run"]["status"], "cancelled", "{shown}");
    let totals = &shown["run"]["totals"];
    assert_eq!(totals["updated"], 1, "the call in flight finished and was written: {shown}");
    assert_eq!(totals["notAttempted"], 3);
    assert_eq!(shown["run"]["error"], "cancelled after 1 of 4 entries");

    let again = sandbox.run(&["runs", "cancel", &run_id]).success();
    assert_eq!(again.stdout(), format!("run {run_id} is already cancelled\n"));
}

#[test]
fn a_paced_provider_gets_one_call_per_turn_and_a_cancel_ends_the_wait() {
    let sandbox = echo_lab(&[("a", "A", "a"), ("b", "B", "b"), ("c", "C", "c")], "", "");
    let config = std::fs::read_to_string(sandbox.path("curator.yaml")).unwrap();
    // One call a minute: the first entry is fetched at once, the second waits its turn.
    let paced = config
        .replace("    timeoutSeconds: 5\n", "    timeoutSeconds: 5\n    requestsPerMinute: 1\n");
    assert_ne!(paced, config);
    sandbox.write("curator.yaml", &paced);
    let mut child = sandbox.command(&["run", "lab", "--wait"]).spawn().unwrap();

    let started = Instant::now();
    let run_id = loop {
        let runs = sandbox.json(&["runs", "list", "--job", "lab", "--output", "json"]);
        let run = runs.as_array().unwrap().iter().find(|r| r["status"] == "running").cloned();
        if let Some(run) = run {
            let id = run["id"].as_i64().unwrap().to_string();
            let shown = sandbox.json(&["runs", "show", &id, "--output", "json"]);
            if shown["entries"].as_array().unwrap().len() == 1 {
                break id;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no entry was fetched");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The other two wait for their turns, however many calls the job allows at once.
    std::thread::sleep(Duration::from_millis(500));
    let shown = sandbox.json(&["runs", "show", &run_id, "--output", "json"]);
    assert_eq!(shown["entries"].as_array().unwrap().len(), 1, "{shown}");

    sandbox.run(&["runs", "cancel", &run_id]).success();
    let cancelled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if cancelled.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the run kept waiting for its turn after the cancel");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let shown = sandbox.json(&["runs", "show", &run_id, "--output", "json"]);
    assert_eq!(shown["run"]["status"], "cancelled", "{shown}");
    assert_eq!(shown["run"]["totals"]["notAttempted"], 2, "{shown}");
}

#[test]
fn cancelling_a_queued_run_and_a_finished_one() {
    let sandbox = Sandbox::new().prepared();
    let queued = sandbox.run(&["run", "manga/curated-status"]).success();
    assert!(queued.stdout().starts_with("queued run 1 "), "{}", queued.stdout());
    let cancel = sandbox.run(&["runs", "cancel", "1"]).success();
    assert_eq!(cancel.stdout(), "run 1 cancelled before it started\n");
    let shown = sandbox.json(&["runs", "show", "1", "--output", "json"]);
    assert_eq!(shown["run"]["status"], "cancelled");

    sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    let done = sandbox.run(&["runs", "cancel", "2"]).expect_code(1);
    assert_eq!(
        done.stderr(),
        "error: run 2 already ended `succeeded`: there is nothing to cancel\n"
    );
    let missing = sandbox.run(&["runs", "cancel", "99"]).expect_code(1);
    assert!(missing.stderr().contains("run `99`"), "{}", missing.stderr());
}

#[test]
fn preview_shows_every_field_and_writes_nothing() {
    let sandbox = Sandbox::new().prepared();
    let before = sandbox.run(&["catalog", "export"]).success().stdout();
    let preview = sandbox.run(&["preview", "manga/curated-status", "--sample", "2"]).success();
    insta::assert_snapshot!("preview_curated_status", preview.stdout());

    let json = sandbox.json(&["preview", "manga/curated-status", "--output", "json"]);
    assert_eq!(json["formatVersion"], 1);
    assert_eq!(json["entries"].as_array().unwrap().len(), 5, "the default sample is 5");
    let all =
        sandbox.json(&["preview", "manga/curated-status", "--sample", "20", "--output", "json"]);
    assert_eq!(all["entries"].as_array().unwrap().len(), 10, "every planned entry, no more");
    let berserk = all["entries"].as_array().unwrap().iter().find(|e| e["entry"] == "berserk");
    let status =
        berserk.unwrap()["fields"].as_array().unwrap().iter().find(|f| f["field"] == "status");
    assert_eq!(status.unwrap()["verdict"], "blocked");
    assert_eq!(status.unwrap()["layer"], "locked", "{all}");

    assert_eq!(sandbox.run(&["catalog", "export"]).success().stdout(), before, "nothing written");
    let runs = sandbox.json(&["runs", "list", "--output", "json"]);
    assert_eq!(runs, serde_json::json!([]), "a preview records no run");
    let too_many = sandbox.run(&["preview", "manga/curated-status", "--sample", "101"]);
    let too_many = too_many.expect_code(2);
    assert!(too_many.stderr().contains("101 is not in 1..=100"), "{}", too_many.stderr());
    let unknown = sandbox.run(&["preview", "nope"]).expect_code(1);
    assert!(unknown.stderr().contains("`nope`"), "{}", unknown.stderr());
}

#[test]
fn a_scope_the_plugin_manifest_cannot_serve_is_refused_by_validation_once_it_is_known() {
    let sandbox = echo_lab(&[("one", "One", "s1")], "", "");
    let books_only = |args: &[&str]| {
        let output = sandbox.command(args).env("ECHO_CAPABILITIES", "book").output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    // Before the plugin has ever started, its capabilities are unknown: the file is valid.
    assert_eq!(books_only(&["validate"]).0, Some(0));

    let (code, out) = books_only(&["run", "lab", "--wait"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("provider `echo` cannot serve scope `series_only`"), "{out}");

    // Its manifest is now stored: validation and reconcile refuse the job file.
    let (code, out) = books_only(&["validate"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "jobs.d/lab.yaml:8:8: error: `scope`: provider `echo` cannot serve scope \
             `series_only`: it provides books only, so use scope `books_only` or another provider"
        ),
        "{out}"
    );
    let (code, out) = books_only(&["reconcile"]);
    assert_eq!(code, Some(1), "{out}");
    let job = sandbox.json(&["jobs", "show", "lab", "--output", "json"]);
    assert_eq!(job["job"]["spec"]["scope"], "series_only", "the job keeps its last good version");
}

#[test]
fn ctrl_c_during_run_wait_cancels_the_run() {
    let slow: Vec<(String, String, String)> =
        (0..3).map(|i| (format!("s{i}"), format!("S{i}"), "slow".to_string())).collect();
    let refs: Vec<(&str, &str, &str)> =
        slow.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    let sandbox = echo_lab(&refs, "", "maxConcurrency: 1\n");
    let child = sandbox
        .command(&["run", "lab", "--wait", "--output", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while sandbox.json(&["runs", "list", "--output", "json"]).as_array().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "the run never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: the PID is our own child's, which has not been waited for yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cancelling run 1: the calls in flight finish first"), "{stderr}");
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["run"]["status"], "cancelled", "{shown}");
    assert_eq!(shown["run"]["totals"]["updated"], 1, "the call in flight was written");
}

#[test]
fn a_plugin_gets_its_credentials_and_they_are_never_stored_or_logged() {
    let sandbox = echo_lab(&[("one", "One", "credentials")], "", "");
    let config = std::fs::read_to_string(sandbox.path("curator.yaml")).unwrap();
    let config = config.replace(
        "    timeoutSeconds: 5\n",
        "    timeoutSeconds: 5\n    credentials:\n      apiKey: { env: ECHO_TEST_KEY }\n",
    );
    sandbox.write("curator.yaml", &config);
    let job = std::fs::read_to_string(sandbox.path("jobs.d/lab.yaml")).unwrap();
    sandbox.write("jobs.d/lab.yaml", &format!("{job}extraFields: [summary]\n"));
    sandbox.run(&["reconcile"]).success();

    let secret = "s3cret-Value-42";
    let output = sandbox
        .command(&["run", "lab", "--wait", "--output", "json"])
        .env("ECHO_TEST_KEY", secret)
        .env("CURATOR_LOG", "debug")
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    let summary = &entry(&shown, "one")["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "summary")
        .unwrap()["after"];
    assert_eq!(summary, "apiKey: 15 chars in initialize, 15 in the environment");
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!everything.contains(secret), "the secret leaked into the output");
    for file in std::fs::read_dir(sandbox.path("data")).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the secret reached {}", path.display());
    }

    let missing = sandbox.run(&["run", "lab", "--wait"]).expect_code(1);
    assert!(
        missing.stdout().contains(
            "credential `apiKey` comes from environment variable `ECHO_TEST_KEY`, which is not set"
        ),
        "{}",
        missing.stdout()
    );
}
