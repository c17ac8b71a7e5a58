//! `curator serve`: the real server on port 0, its watcher and its scheduler.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::*;

/// A running `curator serve`, stopped on drop.
pub struct Server {
    child: Child,
    port: u16,
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
