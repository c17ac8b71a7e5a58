//! End-to-end tests: the real `curator` binary run in a temporary copy of the repository's
//! `curator.yaml`, `jobs.d/` and `examples/`, with its own SQLite database. Each test reads as
//! given / when / then; the serve tests start the real server on port 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A temporary copy of the repository's runnable files.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// Given the repository's own config, jobs and examples.
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("a temp dir");
        for item in ["curator.yaml", "jobs.d", "examples", "schemas"] {
            copy(&Path::new(REPO).join(item), &dir.path().join(item));
        }
        Sandbox { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_curator"));
        cmd.args(args).current_dir(self.dir.path());
        for var in [
            "CURATOR_CONFIG",
            "CURATOR_DATABASE_URL",
            "CURATOR_JOBS_DIR",
            "CURATOR_LISTEN",
            "CURATOR_TIMEZONE",
            "CURATOR_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs curator to the end; the caller checks the exit code.
    #[must_use]
    fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("curator runs");
        Run { output, args: args.join(" ") }
    }

    /// Imports the example catalog and loads jobs.d/, as a new user would first.
    fn prepared(self) -> Sandbox {
        self.run(&["catalog", "import", "examples/catalog.yaml"]).success();
        self.run(&["reconcile"]).success();
        self
    }

    fn json(&self, args: &[&str]) -> Value {
        let run = self.run(args).success();
        serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("`{}` printed no JSON: {e}\n{}", run.args, run.stdout()))
    }

    /// The exported catalog entry of a series, by library and ID.
    fn series(&self, library: &str, id: &str) -> Value {
        let catalog = self.json(&["catalog", "export", "--format", "json"]);
        let lib =
            catalog["libraries"].as_array().unwrap().iter().find(|l| l["id"] == library).unwrap();
        lib["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no series {id}"))
    }
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

struct Run {
    output: Output,
    args: String,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "`curator {}` exit code\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        self
    }

    fn success(self) -> Run {
        self.expect_code(0)
    }
}

/// The echo plugin example, built by `cargo test` beside this test binary.
fn echo_plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let plugin = exe.parent().unwrap().parent().unwrap().join("examples").join("echo-plugin");
    assert!(plugin.is_file(), "expected the echo plugin at {}", plugin.display());
    plugin
}

const JOB: &str = "apiVersion: curator/v1
kind: LibraryJob
library: manga
schedule:
  cron: \"0 4 * * *\"
type: metadata_refresh
provider: curated
scope: series_only
fieldGroups: [ratings]
";

// ----- schema and validation -----

#[test]
fn committed_schema_matches_the_types() {
    let committed =
        std::fs::read_to_string(Path::new(REPO).join("schemas/library-job.schema.json")).unwrap();
    assert!(
        committed == curator::spec::schema_json(),
        "schemas/library-job.schema.json is stale: run `cargo run -- schema > schemas/library-job.schema.json`"
    );
    let printed = Sandbox::new().run(&["schema"]).success().stdout();
    assert_eq!(printed, committed, "`curator schema` prints the committed schema");
}

#[test]
fn repository_jobs_validate_cleanly() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["validate", "jobs.d"]).success();
    assert!(
        run.stdout().contains("3 file(s), 3 valid job(s), 0 error(s), 0 warning(s)"),
        "{}",
        run.stdout()
    );
    let run = sandbox.run(&["validate", "--no-config", "jobs.d"]).success();
    assert!(
        run.stdout().contains("note: no config: provider checks were skipped"),
        "{}",
        run.stdout()
    );
}

#[test]
fn each_common_mistake_exits_1_with_file_line_column_and_the_value() {
    let sandbox = Sandbox::new();
    let cases = [
        (
            "fieldGroups: [ratings]",
            "fieldGroup: [ratings]",
            "jobs.d/bad.yaml:9:1: error: unknown key `fieldGroup`; did you mean `fieldGroups`?",
        ),
        (
            "\"0 4 * * *\"",
            "\"0 4 * * 9\"",
            "jobs.d/bad.yaml:5:9: error: invalid cron expression `0 4 * * 9`",
        ),
        (
            "\"0 4 * * *\"",
            "\"0 4 * * *\"\n  timezone: Europe/Pariss",
            "jobs.d/bad.yaml:6:13: error: `Europe/Pariss` is not an IANA time zone; did you mean `Europe/Paris`?",
        ),
        (
            "[ratings]",
            "[ratings, ratingz]",
            "jobs.d/bad.yaml:9:24: error: `fieldGroups[1]`: `ratingz` is not a known value; did you mean `ratings`?",
        ),
    ];
    for (from, to, expected) in cases {
        sandbox.write("jobs.d/bad.yaml", &JOB.replace(from, to));
        let run = sandbox.run(&["validate", "jobs.d"]).expect_code(1);
        assert!(run.stdout().contains(expected), "expected `{expected}` in:\n{}", run.stdout());
    }
}

#[test]
fn validate_speaks_json_and_github_annotations() {
    let sandbox = Sandbox::new();
    sandbox.write("jobs.d/bad.yaml", &JOB.replace("scope: series_only", "scope: series"));
    let run = sandbox.run(&["validate", "--output", "json"]).expect_code(1);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    let d = &report["diagnostics"][0];
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64(), d["column"].as_u64(), d["path"].as_str()),
        (Some("jobs.d/bad.yaml"), Some(8), Some(8), Some("scope"))
    );
    assert_eq!(report["valid"], false);
    let run = sandbox.run(&["validate", "--output", "github"]).expect_code(1);
    assert!(
        run.stdout().starts_with("::error file=jobs.d/bad.yaml,line=8,col=8,"),
        "{}",
        run.stdout()
    );
}

#[test]
fn validate_names_a_missing_path_and_exits_2() {
    let run = Sandbox::new().run(&["validate", "nowhere.d"]).expect_code(2);
    assert!(run.stderr().contains("nowhere.d: no such file or directory"), "{}", run.stderr());
}

// ----- catalog -----

#[test]
fn catalog_import_is_an_idempotent_upsert_that_round_trips() {
    let sandbox = Sandbox::new();
    let first = sandbox.run(&["catalog", "import", "examples/catalog.yaml"]).success();
    assert!(first.stdout().contains("3 libraries, 25 series"), "{}", first.stdout());
    let before = sandbox.run(&["catalog", "export"]).success().stdout();
    sandbox.run(&["catalog", "import", "examples/catalog.yaml"]).success();
    let after = sandbox.run(&["catalog", "export"]).success().stdout();
    assert_eq!(before, after, "a second import changes nothing");

    // What export writes, import reads back to the same catalog.
    sandbox.write("exported.yaml", &after);
    sandbox.run(&["catalog", "import", "exported.yaml"]).success();
    assert_eq!(sandbox.run(&["catalog", "export"]).success().stdout(), after);
}

#[test]
fn a_bad_catalog_names_file_line_and_value_and_writes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write("bad.yaml", "libraries:\n  - id: manga\n    name: Manga\n    series:\n      - id: x\n        metadata: { status: completed }\n");
    let run = sandbox.run(&["catalog", "import", "bad.yaml"]).expect_code(1);
    assert!(
        run.stderr().contains("bad.yaml:6:29: `status`: `\"completed\"` does not fit"),
        "{}",
        run.stderr()
    );
    let catalog = sandbox.json(&["catalog", "export", "--format", "json"]);
    assert_eq!(catalog["libraries"], serde_json::json!([]), "nothing was imported");
}

// ----- reconcile -----

#[test]
fn dry_run_shows_the_plan_and_exits_3_then_apply_then_nothing_to_do() {
    let sandbox = Sandbox::new();
    sandbox.run(&["catalog", "import", "examples/catalog.yaml"]).success();
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3);
    assert!(
        plan.stdout()
            .contains("+ create manga/curated-status (jobs.d/manga/curated-status.yaml:4)"),
        "{}",
        plan.stdout()
    );
    assert!(
        plan.stdout().contains("Plan: 3 to create, 0 to update, 0 to delete, 0 unchanged, 0 kept."),
        "{}",
        plan.stdout()
    );
    assert!(
        sandbox.json(&["jobs", "list", "--output", "json"]).as_array().unwrap().is_empty(),
        "a dry run writes nothing"
    );

    sandbox.run(&["reconcile"]).success();
    let again = sandbox.run(&["reconcile", "--dry-run"]).success();
    assert!(
        again.stdout().contains("Plan: 0 to create, 0 to update, 0 to delete, 3 unchanged"),
        "{}",
        again.stdout()
    );
}

#[test]
fn a_changed_file_is_an_update_with_field_diffs_and_new_fire_times() {
    let sandbox = Sandbox::new().prepared();
    let path = "jobs.d/manga/curated-status.yaml";
    let text = std::fs::read_to_string(sandbox.path(path)).unwrap();
    sandbox.write(path, &text.replace("cron: \"0 4 * * *\"", "cron: \"30 6 * * *\""));
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3);
    assert!(plan.stdout().contains("~ update manga/curated-status"), "{}", plan.stdout());
    assert!(
        plan.stdout().contains("schedule.cron: \"0 4 * * *\" -> \"30 6 * * *\""),
        "{}",
        plan.stdout()
    );
    assert!(plan.stdout().contains("06:30:00 Europe/Paris"), "{}", plan.stdout());
    let json: Value = serde_json::from_str(
        &sandbox.run(&["reconcile", "--dry-run", "--output", "json"]).expect_code(3).stdout(),
    )
    .unwrap();
    assert_eq!(json["formatVersion"], 1);
    assert_eq!(json["update"][0]["id"], "manga/curated-status");
}

#[test]
fn invalid_file_keeps_last_good_job_and_deleting_the_file_deletes_it() {
    let sandbox = Sandbox::new().prepared();
    let path = "jobs.d/manga/curated-status.yaml";
    let good = std::fs::read_to_string(sandbox.path(path)).unwrap();

    // A broken file: the error names the place, the job keeps its last good version.
    sandbox.write(path, &good.replace("fieldGroups: [status", "fieldGroups: [status\n  oops: ["));
    let run = sandbox.run(&["reconcile"]).expect_code(1);
    assert!(run.stdout().contains("jobs.d/manga/curated-status.yaml:"), "{}", run.stdout());
    assert!(run.stdout().contains("! keep manga/curated-status"), "{}", run.stdout());
    let job = sandbox.json(&["jobs", "show", "manga/curated-status", "--output", "json"]);
    assert_eq!(
        job["job"]["spec"]["fieldGroups"],
        serde_json::json!(["status", "counts", "ratings", "genres"])
    );

    // A schema error does the same.
    sandbox.write(path, &good.replace("scope: series_only", "scope: everything"));
    sandbox.run(&["reconcile"]).expect_code(1);
    assert_eq!(sandbox.json(&["jobs", "list", "--output", "json"]).as_array().unwrap().len(), 3);

    // Deleting the file deletes its job.
    std::fs::remove_file(sandbox.path(path)).unwrap();
    let run = sandbox.run(&["reconcile"]).success();
    assert!(run.stdout().contains("- delete manga/curated-status"), "{}", run.stdout());
    let ids: Vec<String> = sandbox
        .json(&["jobs", "list", "--output", "json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["books/curated-volumes", "comics/curated-summaries"]);
}

#[test]
fn an_empty_jobs_directory_prunes_nothing_without_allow_empty() {
    let sandbox = Sandbox::new().prepared();
    std::fs::remove_dir_all(sandbox.path("jobs.d")).unwrap();
    std::fs::create_dir(sandbox.path("jobs.d")).unwrap();
    let run = sandbox.run(&["reconcile"]).expect_code(1);
    assert!(
        run.stdout().contains("refusing to delete all 3 job(s); pass --allow-empty"),
        "{}",
        run.stdout()
    );
    assert_eq!(sandbox.json(&["jobs", "list", "--output", "json"]).as_array().unwrap().len(), 3);
    sandbox.run(&["reconcile", "--allow-empty"]).success();
    assert!(sandbox.json(&["jobs", "list", "--output", "json"]).as_array().unwrap().is_empty());
}

// ----- runs -----

#[test]
fn a_run_writes_changed_fields_and_respects_locks_groups_and_missing_ids() {
    let sandbox = Sandbox::new().prepared();
    let run = sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    let out = run.stdout();
    assert!(out.contains("succeeded"), "{out}");
    assert!(out.contains("status: \"ongoing\" -> \"ended\""), "{out}");

    let vinland = sandbox.series("manga", "vinland-saga");
    assert_eq!(
        vinland["metadata"]["status"], "ended",
        "a changed field in the job's groups is written"
    );
    assert_eq!(vinland["metadata"]["totalVolumeCount"], 29);
    assert_eq!(vinland["metadata"]["rating"]["score"], 90);
    assert!(
        vinland["metadata"]["summary"].as_str().unwrap().starts_with("Young Thorfinn"),
        "summary is outside the job's groups"
    );
    assert!(
        vinland["externalIds"]["curated"]["lastSyncedAt"].as_str().unwrap() > "2026-12",
        "the sync time moves"
    );

    let berserk = sandbox.series("manga", "berserk");
    assert_eq!(berserk["metadata"]["status"], "hiatus", "a locked field keeps its value");
    assert_eq!(berserk["metadata"]["totalVolumeCount"], 42);

    let dungeon = sandbox.series("manga", "dungeon-meshi");
    assert_eq!(
        dungeon["metadata"]["title"], "Dungeon Meshi",
        "titles are outside the groups and the permissions"
    );

    // The entry without a `curated` ID is skipped and counted.
    let runs = sandbox.json(&["runs", "list", "--output", "json"]);
    let run_id = runs[0]["id"].as_i64().unwrap().to_string();
    let shown = sandbox.json(&["runs", "show", &run_id, "--output", "json"]);
    assert_eq!(shown["run"]["totals"]["skippedNoId"], 1);
    let skipped: Vec<&Value> =
        shown["entries"].as_array().unwrap().iter().filter(|e| e["outcome"] == "skipped").collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["entry"], "blue-period");

    // A second run at once finds every entry recently synced.
    let again =
        sandbox.run(&["run", "manga/curated-status", "--wait", "--output", "json"]).success();
    let again: Value = serde_json::from_str(&again.stdout()).unwrap();
    assert_eq!(again["run"]["totals"]["updated"], 0);
    assert_eq!(again["run"]["totals"]["skippedRecent"], 10);
}

#[test]
fn runs_show_lists_before_and_after_values() {
    let sandbox = Sandbox::new().prepared();
    sandbox.run(&["run", "books/curated-volumes", "--wait"]).success();
    let shown = sandbox.run(&["runs", "show", "1"]).success().stdout();
    assert!(shown.starts_with("run #1 books/curated-volumes manual"), "{shown}");
    assert!(shown.contains("lord-of-the-rings/lord-of-the-rings-v02"), "{shown}");
    assert!(shown.contains(" -> "), "{shown}");
}

#[test]
fn a_disabled_job_still_runs_by_hand() {
    let sandbox = Sandbox::new().prepared();
    let run = sandbox.run(&["run", "comics/curated-summaries", "--wait"]).success();
    assert!(run.stdout().contains("summary: "), "{}", run.stdout());
    let watchmen = sandbox.series("comics", "watchmen");
    assert!(
        watchmen["metadata"]["summary"].as_str().unwrap().starts_with("Retired costumed heroes"),
        "a locked summary stays"
    );
}

#[test]
fn an_unknown_job_or_run_is_one_clear_sentence() {
    let sandbox = Sandbox::new().prepared();
    let run = sandbox.run(&["run", "nope", "--wait"]).expect_code(1);
    assert_eq!(run.stderr().trim(), "error: job `nope` does not exist");
    let run = sandbox.run(&["runs", "show", "99"]).expect_code(1);
    assert_eq!(run.stderr().trim(), "error: run `99` does not exist");
}

#[test]
fn a_plugin_provider_answers_over_stdio_and_its_failures_are_recorded_per_entry() {
    let sandbox = Sandbox::new().prepared();
    let config = std::fs::read_to_string(sandbox.path("curator.yaml")).unwrap();
    let plugin = echo_plugin();
    sandbox.write(
        "curator.yaml",
        &format!("{config}  - name: echo\n    kind: plugin\n    command: {}\n    permissions: [\"metadata:write:*\"]\n    timeoutSeconds: 2\n", plugin.display()),
    );
    sandbox.write(
        "jobs.d/echo.yaml",
        &JOB.replace("provider: curated", "provider: plugin:echo")
            .replace("[ratings]", "[ratings, status]"),
    );
    sandbox.run(&["reconcile"]).success();
    sandbox.write(
        "ids.yaml",
        "libraries:\n  - id: manga\n    name: Manga\n    series:\n      - id: frieren\n        externalIds: { echo: { id: frieren } }\n      - id: monster\n        externalIds: { echo: { id: missing } }\n",
    );
    // Upserting a series replaces its metadata; the test only looks at the plugin's values.
    sandbox.run(&["catalog", "import", "ids.yaml"]).success();

    let run = sandbox.run(&["run", "echo", "--wait", "--output", "json"]).expect_code(1);
    let shown: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(shown["run"]["status"], "partial", "one entry failed, one was written");
    let frieren = sandbox.series("manga", "frieren");
    assert_eq!(
        frieren["metadata"]["rating"],
        serde_json::json!({"score": 80, "voteCount": 10, "source": "echo"})
    );
    assert_eq!(frieren["metadata"]["status"], "ongoing");
    let failed =
        shown["entries"].as_array().unwrap().iter().find(|e| e["outcome"] == "failed").unwrap();
    assert_eq!(failed["entry"], "monster");
    assert!(failed["reason"].as_str().unwrap().contains("external ID `missing`"), "{failed}");
}

// ----- serve -----

/// A running `curator serve`, stopped on drop.
struct Server {
    child: Child,
    port: u16,
    log: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Server {
    fn start(sandbox: &Sandbox) -> Server {
        let mut child = sandbox
            .command(&["serve"])
            .env("CURATOR_LISTEN", "127.0.0.1:0")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(strip_ansi(&line));
            }
        });
        let mut server = Server { child, port: 0, log, lines: Vec::new() };
        let line = server.wait_for_log("listening", Duration::from_secs(30));
        let addr = line.split("listen=").nth(1).unwrap().trim();
        server.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        server.wait_for_log("reconciled", Duration::from_secs(30));
        server
    }

    fn wait_for_log(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        if let Some(line) = self.lines.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        while let Ok(line) =
            self.log.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.lines.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
        panic!(
            "no log line with `{needle}` within {within:?}; log so far:\n{}",
            self.lines.join("\n")
        );
    }

    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Polls until `check` holds, or fails after `within`.
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within {within:?}");
}

fn scheduled_runs(sandbox: &Sandbox, job: &str) -> usize {
    let runs = sandbox.json(&["runs", "list", "--job", job, "--limit", "1000", "--output", "json"]);
    runs.as_array().unwrap().iter().filter(|r| r["trigger"] == "schedule").count()
}

#[test]
fn serve_starts_from_a_fresh_copy_answers_healthz_and_runs_queued_jobs() {
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox);
    server.wait_for_log("catalog seeded", Duration::from_secs(5));
    assert!(server.get("/healthz").starts_with("HTTP/1.1 200"), "healthz answers");
    assert_eq!(
        sandbox.json(&["jobs", "list", "--output", "json"]).as_array().unwrap().len(),
        3,
        "start-up reconciled jobs.d"
    );

    // `curator run` without --wait queues; the server picks the run up.
    let queued = sandbox.run(&["run", "manga/curated-status"]).success();
    assert!(queued.stdout().contains("queued run 1"), "{}", queued.stdout());
    eventually(Duration::from_secs(10), "the queued run finishing", || {
        sandbox.json(&["runs", "show", "1", "--output", "json"])["run"]["status"] == "succeeded"
    });
    assert_eq!(sandbox.series("manga", "vinland-saga")["metadata"]["status"], "ended");
    assert_eq!(sandbox.series("manga", "berserk")["metadata"]["status"], "hiatus", "locked");
}

#[test]
fn serve_hot_reloads_edits_keeps_broken_files_and_drops_deleted_ones() {
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox);
    let every_second =
        JOB.replace("\"0 4 * * *\"", "\"* * * * * *\"") + "skipRecentlySyncedWithinS: 0\n";

    // A new file is live within a second: its every-second schedule fires.
    let saved = Instant::now();
    sandbox.write("jobs.d/tick.yaml", &every_second);
    eventually(Duration::from_secs(3), "the new job firing", || {
        scheduled_runs(&sandbox, "tick") >= 1
    });
    let live = saved.elapsed();
    assert!(live < Duration::from_secs(3), "live after {live:?}");

    // Broken YAML: the error is logged at file:line:column and the job keeps firing.
    sandbox.write("jobs.d/tick.yaml", &format!("{every_second}oops: [\n"));
    let line = server.wait_for_log("jobs.d/tick.yaml:", Duration::from_secs(5));
    assert!(line.contains("jobs.d/tick.yaml:12:1: error: invalid YAML"), "{line}");
    let before = scheduled_runs(&sandbox, "tick");
    eventually(Duration::from_secs(5), "the kept job firing again", || {
        scheduled_runs(&sandbox, "tick") > before
    });

    // An edit that disables it stops the firings.
    sandbox.write(
        "jobs.d/tick.yaml",
        &every_second.replace("library: manga", "library: manga\nenabled: false"),
    );
    eventually(Duration::from_secs(3), "the job being disabled", || {
        sandbox.json(&["jobs", "show", "tick", "--output", "json"])["job"]["enabled"] == false
    });
    std::thread::sleep(Duration::from_millis(1500));
    let settled = scheduled_runs(&sandbox, "tick");
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(scheduled_runs(&sandbox, "tick"), settled, "a disabled job does not fire");

    // Deleting the file removes the job.
    std::fs::remove_file(sandbox.path("jobs.d/tick.yaml")).unwrap();
    eventually(Duration::from_secs(3), "the job being deleted", || {
        !sandbox.run(&["jobs", "show", "tick"]).output.status.success()
    });
}

#[test]
fn schedule_prints_fire_times_in_utc_and_the_zone() {
    let sandbox = Sandbox::new();
    let run = sandbox
        .run(&[
            "schedule",
            "0 4 * * 7",
            "--timezone",
            "Europe/Paris",
            "--from",
            "2026-12-03T00:00:00Z",
            "--count",
            "2",
        ])
        .success();
    let stdout = run.stdout();
    let lines: Vec<&str> = stdout.lines().map(str::trim_end).collect();
    assert_eq!(
        lines[1], "2026-12-06 03:00:00 UTC  2026-12-06 04:00:00 CET",
        "Sunday in Paris: {lines:?}"
    );
    assert_eq!(lines[2], "2026-12-13 03:00:00 UTC  2026-12-13 04:00:00 CET");
    let run = sandbox.run(&["schedule", "0 0 30 2 *"]).expect_code(1);
    assert!(
        run.stderr().contains("invalid cron expression `0 0 30 2 *`: the expression never fires"),
        "{}",
        run.stderr()
    );
}

#[test]
fn jobs_show_gives_source_schedule_and_next_fire_times() {
    let sandbox = Sandbox::new().prepared();
    let shown = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(shown.contains("source:    manga/curated-status.yaml:4"), "{shown}");
    assert!(shown.contains("schedule:  0 4 * * * ("), "{shown}");
    assert!(shown.contains("in Europe/Paris"), "{shown}");
    assert_eq!(shown.matches("next:").count(), 3, "{shown}");
    let list = sandbox.run(&["jobs", "list"]).success().stdout();
    assert!(list.contains("comics/curated-summaries  comics   no"), "{list}");
    assert!(list.contains("Europe/Paris"), "{list}");
}
