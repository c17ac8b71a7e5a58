//! `curator serve`: the real server on port 0, its watcher and its scheduler.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::*;

/// A running `curator serve`, stopped on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    log: mpsc::Receiver<String>,
    /// The log lines read so far.
    pub lines: Vec<String>,
}

impl Server {
    pub fn start(sandbox: &Sandbox) -> Server {
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

    /// Every log line so far.
    pub fn log(&mut self) -> &[String] {
        while let Ok(line) = self.log.try_recv() {
            self.lines.push(line);
        }
        &self.lines
    }

    pub fn wait_for_log(&mut self, needle: &str, within: Duration) -> String {
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

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn get(&self, path: &str) -> String {
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
pub fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within {within:?}");
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
fn the_catalog_seed_logs_what_it_added_and_nothing_when_nothing_was() {
    let sandbox = Sandbox::new();
    let mut first = Server::start(&sandbox);
    let seeded = first.wait_for_log("catalog seeded", Duration::from_secs(5));
    assert!(seeded.contains("libraries=3 series=25 books="), "{seeded}");
    drop(first);

    let mut again = Server::start(&sandbox);
    assert!(
        !again.log().iter().any(|l| l.contains("catalog seeded")),
        "a seed that added nothing is not news at info: {:#?}",
        again.lines
    );
    drop(again);

    // One new series in the file is what the next start reports.
    let catalog = std::fs::read_to_string(sandbox.path("examples/catalog.yaml")).unwrap();
    let library =
        catalog.find("    series:\n").expect("a library with series") + "    series:\n".len();
    let added = format!("{}      - id: new-one\n{}", &catalog[..library], &catalog[library..]);
    sandbox.write("examples/catalog.yaml", &added);
    let mut third = Server::start(&sandbox);
    let seeded = third.wait_for_log("catalog seeded", Duration::from_secs(5));
    assert!(seeded.contains("libraries=0 series=1 books=0"), "{seeded}");
}

#[test]
fn serve_hot_reloads_edits_keeps_broken_files_and_drops_deleted_ones() {
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox);
    assert!(server.lines.iter().any(|l| l.contains("scheduled=2")), "two enabled jobs at start");

    // A new file is in the scheduler within a second: the pass that logs it has synced it.
    let saved = Instant::now();
    sandbox.write("jobs.d/tick.yaml", JOB);
    server.wait_for_log("created=1", Duration::from_secs(5));
    let live = saved.elapsed();
    assert!(live < Duration::from_secs(1), "the new job was live after {live:?}");
    server.wait_for_log("scheduled=3", Duration::from_secs(1));

    // An edit changes the scheduled job.
    sandbox.write("jobs.d/tick.yaml", &JOB.replace("\"0 4 * * *\"", "\"0 5 * * *\""));
    server.wait_for_log("updated=1", Duration::from_secs(5));
    let shown = sandbox.json(&["jobs", "show", "tick", "--output", "json"]);
    assert!(shown["nextFireTimes"][0].as_str().unwrap().contains("T05:00:00"), "{shown}");

    // Broken YAML: the error is logged at file:line:column and the job stays scheduled.
    sandbox.write("jobs.d/tick.yaml", &format!("{JOB}oops: [\n"));
    let line = server.wait_for_log("jobs.d/tick.yaml:", Duration::from_secs(5));
    assert!(line.contains("jobs.d/tick.yaml:11:1: error: invalid YAML"), "{line}");
    let kept = server.wait_for_log("kept=1", Duration::from_secs(5));
    assert!(kept.contains("scheduled=3"), "{kept}");
    let shown = sandbox.json(&["jobs", "show", "tick", "--output", "json"]);
    assert_eq!(shown["job"]["spec"]["schedule"]["cron"], "0 5 * * *", "the last good version");

    // Disabling it takes it out of the scheduler; Run now still works.
    sandbox.write(
        "jobs.d/tick.yaml",
        &JOB.replace("library: manga", "library: manga\nenabled: false"),
    );
    let disabled = server.wait_for_log(
        "updated=1 deleted=0 unchanged=3 kept=0 skipped=0 applied=true scheduled=2",
        Duration::from_secs(5),
    );
    assert!(disabled.contains("scheduled=2"), "{disabled}");
    let run = sandbox.run(&["run", "tick", "--wait"]).success();
    assert!(run.stdout().contains("manual"), "{}", run.stdout());

    // Deleting the file removes the job.
    std::fs::remove_file(sandbox.path("jobs.d/tick.yaml")).unwrap();
    server.wait_for_log("deleted=1", Duration::from_secs(5));
    assert!(!sandbox.run(&["jobs", "show", "tick"]).output.status.success());
}

fn runs_of(sandbox: &Sandbox, job: &str) -> Vec<serde_json::Value> {
    let runs = sandbox.json(&["runs", "list", "--job", job, "--limit", "1000", "--output", "json"]);
    runs.as_array().unwrap().clone()
}

#[test]
fn after_downtime_a_job_catches_up_once_and_one_without_catch_up_records_the_miss() {
    let sandbox = Sandbox::new().prepared();
    let hourly = JOB.replace("\"0 4 * * *\"", "\"0 * * * *\"");
    sandbox.write("jobs.d/hourly.yaml", &hourly);
    sandbox.write(
        "jobs.d/quiet.yaml",
        &hourly.replace("cron: \"0 * * * *\"", "cron: \"0 * * * *\"\n  catchUp: false"),
    );
    sandbox.run(&["reconcile"]).success();
    // The jobs were loaded three hours and a bit ago, and curator was not running since.
    sandbox
        .sql("UPDATE jobs SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-185 minutes')");

    let mut server = Server::start(&sandbox);
    server.wait_for_log("running once to catch up", Duration::from_secs(10));
    server.wait_for_log("not catching up", Duration::from_secs(10));
    eventually(Duration::from_secs(10), "the catch-up run finishing", || {
        runs_of(&sandbox, "hourly").iter().any(|r| r["status"] == "succeeded")
    });
    let hourly_runs = runs_of(&sandbox, "hourly");
    assert_eq!(hourly_runs.len(), 1, "one run for three or four missed slots: {hourly_runs:?}");
    assert_eq!(hourly_runs[0]["trigger"], "catch-up");
    let quiet = runs_of(&sandbox, "quiet");
    assert_eq!(quiet.len(), 1, "{quiet:?}");
    assert_eq!(quiet[0]["status"], "skipped");
    // 185 minutes hold three hour boundaries, or four when the clock is past the hour's 55th
    // minute.
    let reason = quiet[0]["error"].as_str().unwrap();
    let missed: usize = reason.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        (3..=4).contains(&missed)
            && reason.contains("slot(s) while curator was down")
            && reason.ends_with("catchUp is false"),
        "{reason}"
    );
    drop(server);

    // A restart right away finds nothing more to catch up.
    let mut server = Server::start(&sandbox);
    server.wait_for_log("listening", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!server.lines.iter().any(|l| l.contains("catch up")), "{:?}", server.lines);
    assert_eq!(runs_of(&sandbox, "hourly").len(), 1);
    assert_eq!(runs_of(&sandbox, "quiet").len(), 1);
}

/// A sandbox with job `slow`, whose one entry the echo plugin answers after three seconds.
fn slow_echo_job() -> Sandbox {
    let sandbox = Sandbox::new().prepared();
    sandbox.append_config(&format!(
        "  - name: echo\n    kind: plugin\n    command: {}\n    permissions: [\"metadata:write:*\"]\n",
        echo_plugin().display()
    ));
    sandbox.write("ids.yaml", "libraries:\n  - id: slow\n    name: Slow\n    series:\n      - id: s\n        externalIds: { echo: { id: slow } }\n");
    sandbox.run(&["catalog", "import", "ids.yaml"]).success();
    let job = JOB
        .replace("library: manga", "library: slow")
        .replace("provider: curated", "provider: echo");
    sandbox.write("jobs.d/slow.yaml", &job);
    sandbox
}

#[test]
fn a_run_that_finds_the_previous_one_going_is_recorded_as_skipped() {
    let sandbox = slow_echo_job();
    let mut server = Server::start(&sandbox);

    // Two requests for the same job: the server takes the second while the first is going.
    sandbox.run(&["run", "slow"]).success();
    server.wait_for_log("run planned", Duration::from_secs(10));
    sandbox.run(&["run", "slow"]).success();
    eventually(Duration::from_secs(10), "the second run being skipped", || {
        runs_of(&sandbox, "slow").iter().any(|r| r["status"] == "skipped")
    });
    let skipped = runs_of(&sandbox, "slow").into_iter().find(|r| r["status"] == "skipped").unwrap();
    assert_eq!(skipped["error"], "the previous run of this job is still going");
}

#[test]
fn history_is_pruned_to_the_configured_count() {
    let sandbox = Sandbox::new().prepared();
    sandbox.append_config("retention:\n  maxRuns: 2\n  maxAgeDays: 30\n");
    for _ in 0..4 {
        sandbox.run(&["run", "books/curated-volumes", "--wait"]).success();
    }
    let runs = runs_of(&sandbox, "books/curated-volumes");
    let ids: Vec<i64> = runs.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [4, 3], "the newest two runs are kept");
    let catalog = sandbox.series("books", "dune");
    assert!(catalog["books"].is_array(), "pruning never touches the catalog");
}

/// A local webhook receiver: records each POSTed JSON body.
fn receiver() -> (String, mpsc::Receiver<serde_json::Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = tx.send(serde_json::from_slice(&body).unwrap());
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (url, rx)
}

#[test]
fn webhooks_hear_of_failed_runs_and_files_that_become_invalid() {
    let sandbox = Sandbox::new().prepared();
    let (url, events) = receiver();
    sandbox.append_config(&format!("webhooks:\n  - url: {url}\n"));
    // A job whose provider is disabled fails its runs.
    let config = std::fs::read_to_string(sandbox.path("curator.yaml")).unwrap();
    sandbox.write(
        "curator.yaml",
        &config.replace("    kind: directory\n", "    kind: directory\n    enabled: false\n"),
    );
    let run = sandbox.run(&["run", "books/curated-volumes", "--wait"]).expect_code(1);
    assert!(run.stdout().contains("failed"), "{}", run.stdout());
    let event = events.recv_timeout(Duration::from_secs(10)).expect("a run.failed event");
    assert_eq!(event["event"], "run.failed");
    assert_eq!(event["job"], "books/curated-volumes");
    assert!(event["error"].as_str().unwrap().contains("disabled"), "{event}");

    let _server = Server::start(&sandbox);
    sandbox.write("jobs.d/books/curated-volumes.yaml", "apiVersion: [\n");
    let event = events.recv_timeout(Duration::from_secs(10)).expect("a file.invalid event");
    assert_eq!(event["event"], "file.invalid");
    assert_eq!(event["file"], "jobs.d/books/curated-volumes.yaml");
    assert_eq!(event["diagnostics"][0]["code"], "yaml");
}

#[test]
fn a_second_signal_stops_at_once_and_marks_the_unfinished_run_interrupted() {
    let sandbox = slow_echo_job();
    let mut server = Server::start(&sandbox);
    sandbox.run(&["run", "slow"]).success();
    server.wait_for_log("run planned", Duration::from_secs(10));

    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    server.wait_for_log("shutting down", Duration::from_secs(5));
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    server.wait_for_log("second signal: stopping now", Duration::from_secs(5));
    server.wait_for_log("unfinished runs marked interrupted", Duration::from_secs(5));
    let status = server.child.wait().unwrap();
    assert!(status.success(), "a signalled shutdown exits 0: {status}");
    let run = sandbox.json(&["runs", "show", "1", "--output", "json"]);
    assert_eq!(run["run"]["status"], "interrupted");
}

#[test]
fn sighup_reconciles_at_once() {
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox);
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    server.wait_for_log("SIGHUP: reconciling", Duration::from_secs(5));
    let passes = server.lines.iter().filter(|l| l.contains(" reconciled ")).count();
    assert_eq!(passes, 1, "the start-up pass so far");
    server.wait_for_log("unchanged=3", Duration::from_secs(5));
}

#[test]
fn a_second_server_on_the_same_database_is_refused() {
    let sandbox = Sandbox::new();
    let _first = Server::start(&sandbox);
    let second = sandbox.command(&["serve"]).env("CURATOR_LISTEN", "127.0.0.1:0").output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another `curator serve` (pid ")
            && stderr.contains("SQLite serves one server at a time"),
        "{stderr}"
    );
}

#[test]
fn a_server_runs_at_most_its_workers_queued_runs_at_once() {
    let sandbox = slow_echo_job();
    sandbox.append_config("workers: 1\n");
    let job = std::fs::read_to_string(sandbox.path("jobs.d/slow.yaml")).unwrap();
    sandbox.write("jobs.d/slow-too.yaml", &job);
    let _server = Server::start(&sandbox);

    // Two queued runs of two jobs, each taking three seconds, on a server with one worker.
    sandbox.run(&["run", "slow"]).success();
    sandbox.run(&["run", "slow-too"]).success();
    eventually(Duration::from_secs(20), "both runs succeeding", || {
        let runs = sandbox.json(&["runs", "list", "--output", "json"]);
        runs.as_array().unwrap().iter().filter(|r| r["status"] == "succeeded").count() == 2
    });
    let runs = sandbox.json(&["runs", "list", "--output", "json"]);
    let time = |run: &serde_json::Value, key: &str| {
        chrono::DateTime::parse_from_rfc3339(run[key].as_str().unwrap()).unwrap()
    };
    let (second, first) = (&runs[0], &runs[1]);
    assert!(
        time(second, "startedAt") >= time(first, "finishedAt"),
        "the second run waited for the worker: {runs}"
    );
}

#[test]
fn serve_warns_at_start_of_a_provider_that_cannot_start() {
    let sandbox = Sandbox::new().prepared();
    sandbox.append_config(
        "  - name: broken\n    kind: plugin\n    command: ./nope\n    permissions: [\"metadata:write:*\"]\n",
    );
    let mut server = Server::start(&sandbox);
    let line = server.wait_for_log("config problem", Duration::from_secs(5));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("the command `./nope` does not exist"), "{line}");
    assert!(line.contains("location=curator.yaml:"), "{line}");
}
