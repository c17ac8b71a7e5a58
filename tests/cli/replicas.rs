//! Several `curator serve` replicas on one PostgreSQL database and one `jobs.d/`: every slot
//! fires exactly once, and a replica killed mid-run loses its run to another, which finishes
//! it without writing any entry twice. Each test gets its own database, dropped after.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve::{Server, eventually};
use crate::testdb::TestDatabase;
use crate::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A fresh PostgreSQL database and a sandbox whose commands use it through
/// `CURATOR_DATABASE_URL`, as an operator would.
fn replica_sandbox(runtime: &tokio::runtime::Runtime) -> (TestDatabase, Sandbox) {
    let db = runtime.block_on(TestDatabase::postgres());
    let sandbox = Sandbox::new().with_database_url(&db.url);
    (db, sandbox)
}

/// The rows of a query, each as a JSON object.
fn rows(runtime: &tokio::runtime::Runtime, db: &TestDatabase, query: &str) -> Vec<Value> {
    use sqlx::Connection;
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let query = format!("SELECT row_to_json(q)::text FROM ({query}) AS q");
        let texts: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(query)).fetch_all(&mut conn).await.unwrap();
        texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect()
    })
}

/// Stops a server as an operator would (SIGTERM), so its running runs end cleanly.
fn stop(server: &mut Server) {
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "a stopped replica exits 0: {status}");
}

#[test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: run with CURATOR_TEST_POSTGRES=postgres://postgres@127.0.0.1/test"
)]
fn three_replicas_on_one_database_fire_every_slot_exactly_once() {
    let runtime = runtime();
    let (db, sandbox) = replica_sandbox(&runtime);
    // Three jobs firing every two seconds, besides the repository's own daily ones.
    for (id, library) in
        [("tick-manga", "manga"), ("tick-comics", "comics"), ("tick-books", "books")]
    {
        let job = JOB
            .replace("\"0 4 * * *\"", "\"*/2 * * * * *\"")
            .replace("library: manga", &format!("library: {library}"));
        sandbox.write(&format!("jobs.d/{id}.yaml"), &job);
    }
    let sandbox = sandbox.prepared();

    // Given three replicas watching the same jobs.d/, for about fifteen seconds.
    let mut replicas: Vec<Server> = (0..3).map(|_| Server::start(&sandbox)).collect();
    std::thread::sleep(Duration::from_secs(5));
    // A new file wakes all three watchers at once: their passes queue on the database's lock,
    // and only the first has anything to write.
    sandbox.write("jobs.d/extra.yaml", JOB);
    std::thread::sleep(Duration::from_secs(10));
    for replica in &mut replicas {
        stop(replica);
    }

    // The replicas' passes converged: the new job was created once, nothing flapped.
    let passes: Vec<String> = replicas
        .iter_mut()
        .flat_map(|r| r.log().to_vec())
        .filter(|l| l.contains(" reconciled "))
        .collect();
    let created = passes.iter().filter(|l| l.contains("created=1 updated=0 deleted=0")).count();
    let idle = passes.iter().filter(|l| l.contains("created=0 updated=0 deleted=0")).count();
    assert_eq!((created, idle + created), (1, passes.len()), "{passes:#?}");
    assert!(passes.len() >= 6, "each replica passed at start and on the new file: {passes:#?}");
    let extra = rows(&runtime, &db, "SELECT id FROM jobs WHERE id = 'extra'");
    assert_eq!(extra.len(), 1);

    // Then each claimed slot has exactly one run, and each run of a tick job has its claim.
    let per_slot = rows(
        &runtime,
        &db,
        "SELECT f.job_id, f.slot, f.trigger, COUNT(r.id) AS runs,
                string_agg(r.status, ',') AS statuses
         FROM firings f LEFT JOIN runs r ON r.job_id = f.job_id AND r.slot = f.slot
         WHERE f.job_id LIKE 'tick-%' GROUP BY f.job_id, f.slot, f.trigger ORDER BY 1, 2",
    );
    let wrong: Vec<&Value> = per_slot.iter().filter(|s| s["runs"] != 1).collect();
    assert!(wrong.is_empty(), "slots without exactly one run: {wrong:?}");
    let unclaimed = rows(
        &runtime,
        &db,
        "SELECT r.id, r.job_id, r.slot FROM runs r
         WHERE r.job_id LIKE 'tick-%' AND NOT EXISTS
           (SELECT 1 FROM firings f WHERE f.job_id = r.job_id AND f.slot = r.slot)",
    );
    assert!(unclaimed.is_empty(), "runs without a claimed slot: {unclaimed:?}");

    // Every job kept firing the whole time, and the replicas shared the work.
    let mut slots: BTreeMap<String, usize> = BTreeMap::new();
    for slot in &per_slot {
        *slots.entry(slot["job_id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(slots.len(), 3, "{per_slot:?}");
    for (job, count) in &slots {
        assert!(*count >= 5, "`{job}` fired {count} slot(s) in fifteen seconds: {per_slot:?}");
    }
    let owners = rows(
        &runtime,
        &db,
        "SELECT DISTINCT owner FROM runs WHERE job_id LIKE 'tick-%' AND owner IS NOT NULL",
    );
    assert!(owners.len() >= 2, "more than one replica ran slots: {owners:?}");
    let unfinished =
        rows(&runtime, &db, "SELECT id, status FROM runs WHERE status IN ('queued', 'running')");
    assert!(unfinished.is_empty(), "a stopped replica leaves nothing going: {unfinished:?}");
}

#[test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: run with CURATOR_TEST_POSTGRES=postgres://postgres@127.0.0.1/test"
)]
fn a_replica_killed_mid_run_loses_its_run_to_another_that_writes_each_entry_once() {
    let runtime = runtime();
    let (db, sandbox) = replica_sandbox(&runtime);
    let sandbox = sandbox.prepared();
    // A job on the echo plugin whose entries `a` and `b` answer at once and `s` after three
    // seconds (all three fetched together), every ten seconds; leases of three seconds.
    let plugin = echo_plugin();
    sandbox.append_config(&format!(
        "  - name: echo\n    kind: plugin\n    command: {}\n    \
         permissions: [\"metadata:write:*\"]\nrunLease: 3s\n",
        plugin.display()
    ));
    let ids = |id: &str, echo: &str| {
        format!("      - id: {id}\n        externalIds: {{ echo: {{ id: {echo} }} }}\n")
    };
    sandbox.write(
        "slow.yaml",
        &format!(
            "libraries:\n  - id: slow\n    name: Slow\n    series:\n{}{}{}",
            ids("a", "a"),
            ids("b", "b"),
            ids("s", "slow")
        ),
    );
    sandbox.run(&["catalog", "import", "slow.yaml"]).success();
    let job = JOB
        .replace("\"0 4 * * *\"", "\"*/10 * * * * *\"")
        .replace("library: manga", "library: slow")
        .replace("provider: curated", "provider: echo");
    sandbox.write("jobs.d/slow.yaml", &job);
    sandbox.run(&["reconcile"]).success();

    let mut replicas: Vec<Server> = (0..3).map(|_| Server::start(&sandbox)).collect();

    // When the replica that took a scheduled run (or the catch-up run, if a slot passed before
    // the first replica was up) is killed while `s` is being fetched.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (victim, run_id) = loop {
        assert!(Instant::now() < deadline, "no replica started a scheduled run of `slow`");
        let found = replicas.iter_mut().enumerate().find_map(|(i, replica)| {
            replica
                .log()
                .iter()
                .find(|l| l.contains("run planned") && l.contains("job.id=slow"))
                .map(|line| (i, run_id_in(line)))
        });
        if let Some(found) = found {
            break found;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eventually(Duration::from_secs(10), "entries `a` and `b` being recorded", || {
        rows(&runtime, &db, &format!("SELECT seq FROM run_entries WHERE run_id = {run_id}")).len()
            == 2
    });
    replicas[victim].child.kill().unwrap();
    replicas[victim].child.wait().unwrap();
    let killed_at = Instant::now();

    // Then another replica marks the run interrupted and finishes the rest of it.
    let continuation = format!(
        "SELECT id, status, owner, attempt, trigger, slot FROM runs WHERE resumes = {run_id}"
    );
    eventually(Duration::from_secs(20), "the continuation succeeding", || {
        rows(&runtime, &db, &continuation).first().is_some_and(|r| r["status"] == "succeeded")
    });
    let taken_over_after = killed_at.elapsed();
    let original = &rows(
        &runtime,
        &db,
        &format!("SELECT status, owner, error, trigger, slot FROM runs WHERE id = {run_id}"),
    )[0];
    assert_eq!(original["status"], "interrupted", "{original}");
    assert_ne!(original["trigger"], "manual", "{original}");
    assert_eq!(original["error"], "the process running it stopped renewing its lease");
    let next = &rows(&runtime, &db, &continuation)[0];
    assert_ne!(next["owner"], original["owner"], "another replica took it over");
    assert_eq!(next["attempt"], 2);
    assert_eq!((&next["trigger"], &next["slot"]), (&original["trigger"], &original["slot"]));
    assert!(taken_over_after < Duration::from_secs(15), "taken over after {taken_over_after:?}");
    let shown = sandbox.run(&["runs", "show", &next["id"].to_string()]).success().stdout();
    let says =
        format!("continues run {run_id} (attempt 2): the entries it recorded are not repeated");
    assert!(shown.contains(&says), "{shown}");

    // Each entry of the slot was written once, across both runs, and the catalog has them all.
    let entries = rows(
        &runtime,
        &db,
        &format!(
            "SELECT e.run_id, e.entry, e.outcome FROM run_entries e
             WHERE e.run_id IN ({run_id}, {}) ORDER BY e.entry",
            next["id"]
        ),
    );
    let written: Vec<(&str, i64)> = entries
        .iter()
        .map(|e| (e["entry"].as_str().unwrap(), e["run_id"].as_i64().unwrap()))
        .collect();
    let next_id = next["id"].as_i64().unwrap();
    assert_eq!(written, [("a", run_id), ("b", run_id), ("s", next_id)], "{entries:?}");
    assert!(entries.iter().all(|e| e["outcome"] == "updated"), "{entries:?}");
    let slow = sandbox.json(&["catalog", "export", "--library", "slow", "--format", "json"]);
    let ratings: BTreeSet<String> = slow["libraries"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metadata"]["rating"]["source"].as_str().unwrap_or("none").to_string())
        .collect();
    assert_eq!(ratings, BTreeSet::from(["echo".to_string()]), "every entry was written: {slow}");

    // No run was lost: every claimed slot of the job has its run.
    let lost = rows(
        &runtime,
        &db,
        "SELECT f.slot FROM firings f WHERE f.job_id = 'slow' AND NOT EXISTS
           (SELECT 1 FROM runs r WHERE r.job_id = 'slow' AND r.slot = f.slot)",
    );
    assert!(lost.is_empty(), "claimed slots without a run: {lost:?}");
    for (i, replica) in replicas.iter_mut().enumerate() {
        if i != victim {
            stop(replica);
        }
    }
}

/// The run ID in a log line's `run.id=N` field.
fn run_id_in(line: &str) -> i64 {
    let at = line.find("run.id=").unwrap_or_else(|| panic!("no run.id in `{line}`")) + 7;
    line[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

#[test]
fn a_database_that_cannot_be_reached_is_named_without_its_password() {
    let sandbox = Sandbox::new().with_database_url("postgres://curator:hunter2@127.0.0.1:1/c");
    let started = Instant::now();
    let run = sandbox.run(&["jobs", "list"]).expect_code(1);
    assert!(started.elapsed() < Duration::from_secs(5), "a refused connection fails at once");
    let stderr = run.stderr();
    assert!(
        stderr.starts_with(
            "error: cannot open the database `postgres://curator:<redacted>@127.0.0.1:1/c`: "
        ) && stderr.contains("Connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert_eq!(stderr.matches("Connection refused").count(), 1, "the cause once: {stderr}");
}

#[test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: run with CURATOR_TEST_POSTGRES=postgres://postgres@127.0.0.1/test"
)]
fn a_tls_connection_uses_the_one_crypto_provider_curator_is_built_with() {
    let runtime = runtime();
    let db = runtime.block_on(TestDatabase::postgres());
    let ssl = rows(&runtime, &db, "SELECT current_setting('ssl') AS ssl")[0]["ssl"].clone();
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let sandbox =
        Sandbox::new().with_database_url(&format!("{}{separator}sslmode=require", db.url));

    let run = sandbox.run(&["runs", "list"]);
    // Two rustls providers in one binary build fine and then panic at the first handshake.
    assert!(!run.stderr().contains("CryptoProvider"), "{}", run.stderr());
    if ssl == "on" {
        // `sslmode=require` connects over TLS or not at all.
        assert_eq!(run.success().stdout(), "no runs\n");
    } else {
        let run = run.expect_code(1);
        assert!(run.stderr().contains("TLS"), "{}", run.stderr());
    }
}
