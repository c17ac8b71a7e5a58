//! `curator reconcile`, the plan it prints, the rules that keep jobs safe, and the job
//! listings it feeds.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::*;

const STATUS: &str = "jobs.d/manga/curated-status.yaml";

fn ids(sandbox: &Sandbox) -> Vec<String> {
    let list = sandbox.json(&["jobs", "list", "--output", "json"]);
    list.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect()
}

fn plan_json(sandbox: &Sandbox, code: i32) -> Value {
    let run = sandbox.run(&["reconcile", "--dry-run", "--output", "json"]).expect_code(code);
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

fn edit(sandbox: &Sandbox, rel: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(sandbox.path(rel)).unwrap();
    assert!(text.contains(from), "{rel} has no `{from}`");
    sandbox.write(rel, &text.replace(from, to));
}

fn with_id(id: &str) -> String {
    JOB.replace("library: manga", &format!("id: {id}\nlibrary: manga"))
}

#[test]
fn dry_run_shows_the_plan_and_exits_3_then_apply_then_nothing_to_do() {
    let sandbox = Sandbox::new();
    sandbox.run(&["catalog", "import", "examples/catalog.yaml"]).success();
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3).stdout();
    assert!(
        plan.contains("+ create manga/curated-status (jobs.d/manga/curated-status.yaml:4)"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "Plan: 3 to create, 0 to update, 0 to delete, 0 unchanged, 0 kept, 0 skipped."
        ),
        "{plan}"
    );
    assert!(!plan.contains('\u{1b}'), "no colour when stdout is not a terminal: {plan}");
    assert!(ids(&sandbox).is_empty(), "a dry run writes nothing");

    let applied = sandbox.run(&["reconcile"]).success().stdout();
    assert!(applied.contains("Applied: 3 created, 0 updated, 0 deleted"), "{applied}");
    let again = sandbox.run(&["reconcile", "--dry-run"]).success().stdout();
    assert_eq!(
        again,
        "No changes: the database matches the job files.\n\
         Plan: 0 to create, 0 to update, 0 to delete, 3 unchanged, 0 kept, 0 skipped.\n"
    );
}

/// The whole text of a dry run, pinned: every kind of line a plan can hold except fire times,
/// which depend on the day (a unit test pins those with a fixed clock).
#[test]
fn the_dry_run_text_is_pinned() {
    let sandbox = Sandbox::new().prepared();
    sandbox.write("jobs.d/manga/ratings.yaml", &with_id("manga-ratings"));
    sandbox.write("jobs.d/old.yaml", JOB);
    sandbox.run(&["reconcile"]).success();

    // A list and a number edited, a file moved, a file deleted, a new disabled job, a file
    // with a schema error, a new file with a typo, and a row edited behind curator's back.
    edit(&sandbox, STATUS, "[status, counts, ratings, genres]", "[status, ratings, genres, tags]");
    edit(&sandbox, STATUS, "maxConcurrency: 4", "maxConcurrency: 2");
    std::fs::create_dir_all(sandbox.path("jobs.d/archive")).unwrap();
    std::fs::rename(
        sandbox.path("jobs.d/manga/ratings.yaml"),
        sandbox.path("jobs.d/archive/ratings.yaml"),
    )
    .unwrap();
    std::fs::remove_file(sandbox.path("jobs.d/old.yaml")).unwrap();
    sandbox.write(
        "jobs.d/comics/new.yaml",
        &JOB.replace("library: manga", "library: comics\nenabled: false"),
    );
    edit(
        &sandbox,
        "jobs.d/comics/curated-summaries.yaml",
        "scope: series_and_books",
        "scope: everything",
    );
    sandbox.write("jobs.d/manga/typo.yaml", &JOB.replace("fieldGroups", "fieldGroup"));
    sandbox.sql(
        "UPDATE jobs SET spec = json_set(spec, '$.maxConcurrency', 9)
         WHERE id = 'books/curated-volumes'",
    );

    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(1).stdout();
    assert_eq!(
        plan,
        r#"jobs.d/comics/curated-summaries.yaml:14:8: error: `scope`: `everything` is not a scope: write one of `series_only`, `books_only`, `series_and_books`
jobs.d/manga/typo.yaml:9:1: error: unknown key `fieldGroup`; did you mean `fieldGroups`?

+ create comics/new (jobs.d/comics/new.yaml:1)
    + apiVersion: "curator/v1"
    + enabled: false
    + existingSourceIdsOnly: true
    + fieldGroups: ["ratings"]
    + kind: "LibraryJob"
    + library: "comics"
    + maxConcurrency: 4
    + provider: "curated"
    + schedule.catchUp: true
    + schedule.cron: "0 4 * * *"
    + scope: "series_only"
    + skipRecentlySyncedWithinS: 3600
    + type: "metadata_refresh"
    disabled: no scheduled firings
~ update books/curated-volumes (jobs.d/books/curated-volumes.yaml:4): drift, the row was changed outside curator; the file's version goes back
    ~ maxConcurrency: 9 -> 4
~ update manga-ratings (jobs.d/archive/ratings.yaml:1, moved from jobs.d/manga/ratings.yaml)
~ update manga/curated-status (jobs.d/manga/curated-status.yaml:4)
    - fieldGroups[1]: "counts"
    + fieldGroups[3]: "tags"
    ~ maxConcurrency: 4 -> 2
- delete old (was in jobs.d/old.yaml:1)
! keep comics/curated-summaries (jobs.d/comics/curated-summaries.yaml:4): the file has errors: the job keeps its last good version and keeps running
! skip manga/typo (jobs.d/manga/typo.yaml): the file has errors: the job is created once it is fixed
Plan: 1 to create, 3 to update (1 drift), 1 to delete, 0 unchanged, 1 kept, 1 skipped.
"#
    );
}

#[test]
fn a_changed_file_is_an_update_with_field_diffs_and_new_fire_times() {
    let sandbox = Sandbox::new().prepared();
    edit(&sandbox, STATUS, "cron: \"0 4 * * *\"", "cron: \"30 6 * * *\"");
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3).stdout();
    assert!(plan.contains("~ update manga/curated-status"), "{plan}");
    assert!(plan.contains("    ~ schedule.cron: \"0 4 * * *\" -> \"30 6 * * *\""), "{plan}");
    assert_eq!(plan.matches("06:30:00 Europe/Paris)").count(), 3, "three fire times: {plan}");
    assert!(plan.contains(" UTC ("), "each in UTC and the job's zone: {plan}");

    let json = plan_json(&sandbox, 3);
    let update = &json["update"][0];
    assert_eq!(update["id"], "manga/curated-status");
    assert_eq!(update["file"], STATUS);
    assert_eq!(update["line"], 4);
    assert_eq!(
        update["changes"],
        json!([{"path": "schedule.cron", "op": "change", "old": "0 4 * * *", "new": "30 6 * * *"}])
    );
    assert_eq!(update["timezone"], "Europe/Paris");
    let fires = update["nextFireTimes"].as_array().unwrap();
    assert_eq!(fires.len(), 3);
    assert!(fires[0]["local"].as_str().unwrap().contains("T06:30:00+01:00"), "{fires:?}");
}

#[test]
fn the_json_plan_has_a_format_version_and_the_documented_shape() {
    let sandbox = Sandbox::new().prepared();
    std::fs::remove_file(sandbox.path("jobs.d/books/curated-volumes.yaml")).unwrap();
    let json = plan_json(&sandbox, 3);
    let keys: BTreeSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let documented = [
        "formatVersion",
        "dryRun",
        "applied",
        "commit",
        "summary",
        "create",
        "update",
        "delete",
        "kept",
        "skipped",
        "refused",
        "directoryError",
        "diagnostics",
        "notes",
    ];
    assert_eq!(keys, documented.into_iter().collect());
    assert_eq!(json["formatVersion"], 1);
    assert_eq!((json["dryRun"].clone(), json["applied"].clone()), (json!(true), json!(false)));
    assert_eq!(
        json["summary"],
        json!({"create": 0, "update": 0, "delete": 1, "unchanged": 2, "kept": 0, "skipped": 0,
               "drift": 0, "provenanceFiles": 0, "errors": 0, "warnings": 0})
    );
    assert_eq!(
        json["delete"],
        json!([{
            "id": "books/curated-volumes",
            "file": "jobs.d/books/curated-volumes.yaml",
            "line": 4,
        }])
    );

    let applied: Value =
        serde_json::from_str(&sandbox.run(&["reconcile", "--output", "json"]).success().stdout())
            .unwrap();
    assert_eq!(
        (applied["dryRun"].clone(), applied["applied"].clone()),
        (json!(false), json!(true))
    );
}

#[test]
fn exit_codes_are_0_when_done_1_on_errors_and_3_for_pending_changes() {
    let sandbox = Sandbox::new().prepared();
    sandbox.run(&["reconcile"]).expect_code(0);
    sandbox.run(&["reconcile", "--dry-run"]).expect_code(0);

    sandbox.write("jobs.d/extra.yaml", JOB);
    sandbox.run(&["reconcile", "--dry-run"]).expect_code(3);
    sandbox.run(&["reconcile"]).expect_code(0);

    // Errors win over pending changes, with or without --dry-run.
    sandbox.write("jobs.d/extra.yaml", &JOB.replace("0 4 * * *", "0 5 * * *"));
    sandbox.write("jobs.d/broken.yaml", "kind: [\n");
    sandbox.run(&["reconcile", "--dry-run"]).expect_code(1);
    sandbox.run(&["reconcile"]).expect_code(1);
    let extra = sandbox.json(&["jobs", "show", "extra", "--output", "json"]);
    assert_eq!(
        extra["job"]["spec"]["schedule"]["cron"], "0 5 * * *",
        "the valid file was applied all the same"
    );
}

#[test]
fn a_corrupted_file_next_to_valid_ones_changes_none_of_its_jobs() {
    let sandbox = Sandbox::new().prepared();
    sandbox.write("jobs.d/two.yaml", &format!("{}---\n{}", with_id("two-a"), with_id("two-b")));
    sandbox.run(&["reconcile"]).success();
    let before = sandbox.json(&["jobs", "show", "two-a", "--output", "json"])["job"].clone();

    // One file becomes garbage, another gets a valid edit, a third is deleted.
    std::fs::write(sandbox.path("jobs.d/two.yaml"), b"\x00\xff garbage: [").unwrap();
    edit(&sandbox, STATUS, "maxConcurrency: 4", "maxConcurrency: 3");
    std::fs::remove_file(sandbox.path("jobs.d/books/curated-volumes.yaml")).unwrap();
    let run = sandbox.run(&["reconcile"]).expect_code(1);
    let out = run.stdout();
    assert!(out.contains("jobs.d/two.yaml:1:2: error: the file is not valid UTF-8"), "{out}");
    for id in ["two-a", "two-b"] {
        assert!(
            out.contains(&format!("! keep {id} (jobs.d/two.yaml:"))
                && out.contains("keeps running"),
            "{out}"
        );
    }
    // The broken file might now declare the deleted file's job: no deletion while it is broken.
    assert!(
        out.contains(
            "! keep books/curated-volumes (jobs.d/books/curated-volumes.yaml:4): not deleted \
             while jobs.d/two.yaml cannot be read as jobs"
        ),
        "{out}"
    );
    assert!(out.contains("Applied: 0 created, 1 updated, 0 deleted, 1 unchanged, 3 kept"), "{out}");
    assert_eq!(sandbox.json(&["jobs", "show", "two-a", "--output", "json"])["job"], before);
    assert_eq!(ids(&sandbox).len(), 5, "nothing deleted");

    // Fixed, the file's jobs update and the held deletion goes through.
    sandbox.write("jobs.d/two.yaml", &with_id("two-a"));
    let out = sandbox.run(&["reconcile"]).success().stdout();
    assert!(out.contains("- delete two-b (was in jobs.d/two.yaml:"), "{out}");
    assert!(out.contains("- delete books/curated-volumes"), "{out}");
    assert!(ids(&sandbox).contains(&"two-a".to_string()));
}

#[test]
fn invalid_file_keeps_last_good_job_and_deleting_the_file_deletes_it() {
    let sandbox = Sandbox::new().prepared();
    let good = std::fs::read_to_string(sandbox.path(STATUS)).unwrap();

    // A broken file: the error names the place, the job keeps its last good version.
    sandbox.write(STATUS, &good.replace("fieldGroups: [status", "fieldGroups: [status\n  oops: ["));
    let run = sandbox.run(&["reconcile"]).expect_code(1);
    assert!(run.stdout().contains("jobs.d/manga/curated-status.yaml:"), "{}", run.stdout());
    assert!(run.stdout().contains("! keep manga/curated-status"), "{}", run.stdout());
    let job = sandbox.json(&["jobs", "show", "manga/curated-status", "--output", "json"]);
    assert_eq!(job["job"]["spec"]["fieldGroups"], json!(["status", "counts", "ratings", "genres"]));

    // A schema error does the same.
    sandbox.write(STATUS, &good.replace("scope: series_only", "scope: everything"));
    sandbox.run(&["reconcile"]).expect_code(1);
    assert_eq!(ids(&sandbox).len(), 3);

    // Deleting the file deletes its job.
    std::fs::remove_file(sandbox.path(STATUS)).unwrap();
    let run = sandbox.run(&["reconcile"]).success();
    assert!(run.stdout().contains("- delete manga/curated-status"), "{}", run.stdout());
    assert_eq!(ids(&sandbox), ["books/curated-volumes", "comics/curated-summaries"]);
}

#[test]
fn an_emptied_or_missing_jobs_directory_prunes_nothing_without_allow_empty() {
    let sandbox = Sandbox::new().prepared();
    std::fs::remove_dir_all(sandbox.path("jobs.d")).unwrap();
    std::fs::create_dir(sandbox.path("jobs.d")).unwrap();
    let out = sandbox.run(&["reconcile"]).expect_code(1).stdout();
    assert!(
        out.contains(
            "error: the jobs directory `jobs.d` declares no job: refusing to delete all 3 job(s); \
             pass --allow-empty if that is intended"
        ),
        "{out}"
    );
    assert!(out.ends_with("Nothing applied: the plan was refused.\n"), "{out}");
    assert_eq!(ids(&sandbox).len(), 3);

    std::fs::remove_dir(sandbox.path("jobs.d")).unwrap();
    let out = sandbox.run(&["reconcile"]).expect_code(1).stdout();
    assert!(
        out.contains(
            "error: the jobs directory `jobs.d` does not exist: refusing to delete its 3 job(s); \
             pass --allow-empty to delete them"
        ),
        "{out}"
    );
    assert_eq!(ids(&sandbox).len(), 3);
    let json = plan_json(&sandbox, 1);
    assert_eq!(json["refused"]["guard"], "empty-directory");
    assert_eq!(json["directoryError"], "the jobs directory `jobs.d` does not exist");

    sandbox.run(&["reconcile", "--allow-empty"]).success();
    assert!(ids(&sandbox).is_empty());
}

#[test]
fn a_plan_deleting_more_than_half_of_the_jobs_is_refused_unless_allowed() {
    let sandbox = Sandbox::new().prepared();
    std::fs::remove_file(sandbox.path(STATUS)).unwrap();
    std::fs::remove_file(sandbox.path("jobs.d/books/curated-volumes.yaml")).unwrap();
    sandbox.write("jobs.d/new.yaml", JOB);
    let out = sandbox.run(&["reconcile"]).expect_code(1).stdout();
    assert!(
        out.contains(
            "error: the plan deletes 2 of 3 jobs, more than half: refusing to apply it; pass \
             --allow-mass-delete if that is intended"
        ),
        "{out}"
    );
    assert_eq!(ids(&sandbox).len(), 3, "refused whole: nothing deleted");
    assert!(!ids(&sandbox).contains(&"new".to_string()), "and nothing created");
    assert_eq!(plan_json(&sandbox, 1)["refused"]["guard"], "mass-delete");

    sandbox.run(&["reconcile", "--allow-mass-delete"]).success();
    assert_eq!(ids(&sandbox), ["comics/curated-summaries", "new"]);
}

#[test]
fn a_job_moved_to_another_folder_is_an_update_not_a_delete_and_create() {
    let sandbox = Sandbox::new().prepared();
    sandbox.write("jobs.d/manga/ratings.yaml", &with_id("manga-ratings"));
    sandbox.run(&["reconcile"]).success();
    sandbox.run(&["run", "manga-ratings", "--wait"]).success();
    let before = sandbox.json(&["jobs", "show", "manga-ratings", "--output", "json"]);

    std::fs::create_dir_all(sandbox.path("jobs.d/archive/2026")).unwrap();
    std::fs::rename(
        sandbox.path("jobs.d/manga/ratings.yaml"),
        sandbox.path("jobs.d/archive/2026/ratings.yaml"),
    )
    .unwrap();
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3).stdout();
    assert!(
        plan.contains(
            "~ update manga-ratings (jobs.d/archive/2026/ratings.yaml:1, moved from \
             jobs.d/manga/ratings.yaml)"
        ),
        "{plan}"
    );
    assert!(plan.contains("0 to create, 1 to update, 0 to delete"), "{plan}");
    sandbox.run(&["reconcile"]).success();

    let after = sandbox.json(&["jobs", "show", "manga-ratings", "--output", "json"]);
    assert_eq!(after["job"]["sourceFile"], "archive/2026/ratings.yaml");
    assert_eq!(after["job"]["createdAt"], before["job"]["createdAt"], "the same job");
    assert_eq!(after["runs"], before["runs"], "with the same history");
}

#[test]
fn a_row_edited_directly_in_sql_is_drift_and_is_put_back() {
    let sandbox = Sandbox::new().prepared();
    sandbox.sql(
        "UPDATE jobs SET enabled = 0, spec = json_set(spec, '$.schedule.cron', '0 5 * * *')
         WHERE id = 'manga/curated-status'",
    );

    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3).stdout();
    assert!(
        plan.contains(
            "~ update manga/curated-status (jobs.d/manga/curated-status.yaml:4): drift, the row \
             was changed outside curator"
        ),
        "{plan}"
    );
    assert!(plan.contains("    ~ schedule.cron: \"0 5 * * *\" -> \"0 4 * * *\""), "{plan}");
    assert!(plan.contains("    ~ enabled: false -> true"), "{plan}");
    assert!(plan.contains("1 to update (1 drift)"), "{plan}");
    let json = plan_json(&sandbox, 3);
    assert_eq!(json["update"][0]["drift"], true);
    assert_eq!(json["summary"]["drift"], 1);

    sandbox.run(&["reconcile"]).success();
    let job = sandbox.json(&["jobs", "show", "manga/curated-status", "--output", "json"]);
    assert_eq!(
        (job["job"]["enabled"].clone(), job["job"]["spec"]["schedule"]["cron"].clone()),
        (json!(true), json!("0 4 * * *"))
    );
    sandbox.run(&["reconcile", "--dry-run"]).expect_code(0);

    // A row inserted or deleted behind curator's back is drift too.
    sandbox.sql("DELETE FROM jobs WHERE id = 'books/curated-volumes'");
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3).stdout();
    assert!(plan.contains("+ create books/curated-volumes"), "{plan}");
    sandbox.sql(
        "INSERT INTO jobs SELECT 'rogue', name, library_id, provider, enabled, spec, source,
                'rogue.yaml', source_line, content_hash, created_at, updated_at, NULL, NULL
         FROM jobs WHERE id = 'manga/curated-status'",
    );
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3).stdout();
    assert!(plan.contains("- delete rogue (was in jobs.d/rogue.yaml:4)"), "{plan}");
    sandbox.run(&["reconcile"]).success();
    assert_eq!(ids(&sandbox).len(), 3);
}

#[test]
fn a_second_pass_with_nothing_changed_writes_no_job_row() {
    let sandbox = Sandbox::new().prepared();
    sandbox.sql("CREATE TABLE audit (what TEXT NOT NULL)");
    for (event, what) in [("INSERT", "NEW.id"), ("UPDATE", "NEW.id"), ("DELETE", "OLD.id")] {
        sandbox.sql(&format!(
            "CREATE TRIGGER audit_{event} AFTER {event} ON jobs
             BEGIN INSERT INTO audit VALUES ('{event} ' || {what}); END"
        ));
    }
    let writes = |sandbox: &Sandbox| sandbox.sql("SELECT what FROM audit").len();

    let out = sandbox.run(&["reconcile"]).success().stdout();
    assert!(out.contains("Applied: 0 created, 0 updated, 0 deleted, 3 unchanged"), "{out}");
    assert_eq!(writes(&sandbox), 0, "an unchanged directory writes no job row");

    // A file touched, or rewritten with the same bytes, is still unchanged.
    let text = std::fs::read(sandbox.path(STATUS)).unwrap();
    std::fs::write(sandbox.path(STATUS), &text).unwrap();
    sandbox.run(&["reconcile"]).success();
    sandbox.run(&["reconcile"]).success();
    assert_eq!(writes(&sandbox), 0, "same bytes, no job write");

    // A comment moves the document down: the spec is unchanged, so nothing is pending, and
    // applying records the new line without an update.
    let text = String::from_utf8(text).unwrap();
    sandbox.write(STATUS, &format!("# a new comment\n{text}"));
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(0).stdout();
    assert!(plan.contains("note: 1 file(s) would record a new line"), "{plan}");
    sandbox.run(&["reconcile"]).success();
    let shown = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(shown.contains("source:    jobs.d/manga/curated-status.yaml:5"), "{shown}");
    let updated = sandbox.json(&["jobs", "show", "manga/curated-status", "--output", "json"]);
    assert_eq!(updated["job"]["createdAt"], updated["job"]["updatedAt"], "no spec change recorded");
}

#[test]
fn run_history_last_run_and_enable_state_survive_an_update() {
    let sandbox = Sandbox::new().prepared();
    sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    let next = |sandbox: &Sandbox| {
        sandbox.json(&["jobs", "show", "manga/curated-status", "--output", "json"])["nextFireTimes"]
            .clone()
    };
    let before = next(&sandbox);

    edit(&sandbox, STATUS, "cron: \"0 4 * * *\"", "cron: \"0 2 * * *\"");
    edit(
        &sandbox,
        "jobs.d/comics/curated-summaries.yaml",
        "maxConcurrency: 2",
        "maxConcurrency: 3",
    );
    sandbox.run(&["reconcile"]).success();

    let list = sandbox.json(&["jobs", "list", "--output", "json"]);
    let job = |id: &str| list.as_array().unwrap().iter().find(|j| j["id"] == id).unwrap().clone();
    assert_eq!(job("manga/curated-status")["lastRun"]["id"], 1, "last run kept");
    assert_eq!(job("manga/curated-status")["lastRun"]["status"], "succeeded");
    assert_eq!(job("comics/curated-summaries")["enabled"], false, "still disabled");
    let runs = sandbox.json(&["runs", "list", "--job", "manga/curated-status", "--output", "json"]);
    assert_eq!(runs.as_array().unwrap().len(), 1, "history kept");

    let after = next(&sandbox);
    assert_ne!(after, before, "a schedule change recomputes the next fire time");
    assert!(after[0].as_str().unwrap().contains("T01:00:00"), "02:00 Paris is 01:00 UTC: {after}");
}

#[test]
fn deleting_a_job_marks_its_runs_until_its_file_comes_back() {
    let sandbox = Sandbox::new().prepared();
    sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    std::fs::remove_file(sandbox.path(STATUS)).unwrap();
    sandbox.run(&["reconcile"]).success();

    let runs = sandbox.json(&["runs", "list", "--job", "manga/curated-status", "--output", "json"]);
    assert_eq!(runs[0]["status"], "succeeded");
    assert!(runs[0]["jobDeletedAt"].is_string(), "{runs}");
    let listed = sandbox.run(&["runs", "list"]).success().stdout();
    assert!(listed.contains("#1 manga/curated-status [job deleted] manual"), "{listed}");
    sandbox.run(&["runs", "show", "1"]).success();
    let shown = sandbox.run(&["jobs", "show", "manga/curated-status"]).expect_code(1);
    assert!(
        shown.stderr().contains(
            "job `manga/curated-status` was deleted; its runs are kept: `curator runs list --job \
             manga/curated-status`"
        ),
        "{}",
        shown.stderr()
    );

    // Its file comes back (a revert): the job is back, and so is its history.
    sandbox.write(STATUS, JOB);
    sandbox.run(&["reconcile"]).success();
    let runs = sandbox.json(&["runs", "list", "--job", "manga/curated-status", "--output", "json"]);
    assert_eq!(runs[0]["jobDeletedAt"], Value::Null, "{runs}");
    let listed = sandbox.run(&["runs", "list"]).success().stdout();
    assert!(listed.contains("#1 manga/curated-status manual"), "{listed}");
}

#[test]
fn provenance_records_file_hash_commit_and_uncommitted_changes() {
    let sandbox = Sandbox::new().prepared();
    let show = |sandbox: &Sandbox, id: &str| {
        sandbox.json(&["jobs", "show", id, "--output", "json"])["job"].clone()
    };
    // Outside a work tree: the file and its hash, no Git state.
    let job = show(&sandbox, "manga/curated-status");
    assert_eq!(job["sourceFile"], "manga/curated-status.yaml");
    assert_eq!(job["contentHash"].as_str().unwrap().len(), 64);
    assert_eq!(job["git"], Value::Null);
    let text = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(text.contains("git:       not in a Git work tree"), "{text}");

    // In a work tree: the commit that last changed each file, and whether it is clean.
    sandbox.git(&["init", "-q"]);
    sandbox.git(&["add", "jobs.d"]);
    sandbox.git(&["commit", "-qm", "jobs"]);
    let first = sandbox.git(&["rev-parse", "HEAD"]);
    sandbox.run(&["reconcile"]).success();
    assert_eq!(
        show(&sandbox, "manga/curated-status")["git"],
        json!({"commit": first, "dirty": false})
    );

    edit(&sandbox, STATUS, "maxConcurrency: 4", "maxConcurrency: 3");
    sandbox.run(&["reconcile"]).success();
    assert_eq!(
        show(&sandbox, "manga/curated-status")["git"],
        json!({"commit": first, "dirty": true})
    );
    assert_eq!(
        show(&sandbox, "books/curated-volumes")["git"],
        json!({"commit": first, "dirty": false})
    );
    let text = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(
        text.contains(&format!("git:       commit {first}, with uncommitted changes")),
        "{text}"
    );

    sandbox.git(&["commit", "-qam", "fewer calls"]);
    let second = sandbox.git(&["rev-parse", "HEAD"]);
    let plan = plan_json(&sandbox, 0);
    assert_eq!(plan["commit"], second.as_str());
    assert_eq!(plan["summary"]["provenanceFiles"], 1, "only the committed file: {plan}");
    sandbox.run(&["reconcile"]).success();
    assert_eq!(
        show(&sandbox, "manga/curated-status")["git"],
        json!({"commit": second, "dirty": false})
    );
    assert_eq!(
        show(&sandbox, "books/curated-volumes")["git"],
        json!({"commit": first, "dirty": false})
    );

    // Without a git binary the pass still works, with no provenance.
    let run =
        sandbox.command(&["reconcile", "--dry-run"]).env("PATH", "/nonexistent").output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
}

#[test]
fn jobs_show_gives_source_schedule_and_next_fire_times() {
    let sandbox = Sandbox::new().prepared();
    let shown = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(shown.contains("source:    jobs.d/manga/curated-status.yaml:4"), "{shown}");
    assert!(shown.contains("schedule:  0 4 * * * ("), "{shown}");
    assert!(shown.contains("in Europe/Paris"), "{shown}");
    assert_eq!(shown.matches("next:").count(), 3, "{shown}");
    let list = sandbox.run(&["jobs", "list"]).success().stdout();
    assert!(list.contains("comics/curated-summaries  comics   no"), "{list}");
    assert!(list.contains("Europe/Paris"), "{list}");
}

#[test]
fn reconciles_from_the_command_line_beside_a_running_server_are_serialized() {
    let sandbox = Sandbox::new().prepared();
    let mut server = crate::serve::Server::start(&sandbox);
    server.wait_for_log("reconciled", std::time::Duration::from_secs(5));

    // While the server reconciles on its own (every write below is a watcher event), four
    // command-line passes run at once.
    let writer = {
        let root = sandbox.path("jobs.d/load");
        std::thread::spawn(move || {
            std::fs::create_dir_all(&root).unwrap();
            for i in 0..40 {
                std::fs::write(root.join(format!("job-{i:02}.yaml")), JOB).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    let passes: Vec<_> = (0..4)
        .map(|_| {
            let mut pass = sandbox.command(&["reconcile", "--output", "json"]);
            pass.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            pass.spawn().unwrap()
        })
        .collect();
    writer.join().unwrap();
    for pass in passes {
        let output = pass.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    sandbox.run(&["reconcile"]).success();

    let rows = sandbox.sql("SELECT id, COUNT(*) AS n FROM jobs GROUP BY id HAVING n > 1");
    assert!(rows.is_empty(), "duplicate rows: {rows:?}");
    assert_eq!(ids(&sandbox).len(), 43);
    sandbox.run(&["reconcile", "--dry-run"]).expect_code(0);
    // The server's own pass waits for the writes to pause, so it may come last.
    crate::serve::eventually(std::time::Duration::from_secs(5), "the server's own pass", || {
        server.log().iter().filter(|l| l.contains("reconciled")).count() > 1
    });
    let log = server.log();
    assert!(!log.iter().any(|l| l.contains("reconcile failed")), "{log:?}");
}

#[test]
fn reconcile_on_a_fresh_clone_seeds_the_configured_catalog_first() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["reconcile"]).success();
    assert!(run.stdout().contains("Applied: 3 created"), "{}", run.stdout());
    let run = sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    assert!(run.stdout().contains("succeeded"), "{}", run.stdout());
}

#[test]
fn an_emptied_file_keeps_its_jobs_until_the_file_is_deleted() {
    let sandbox = Sandbox::new().prepared();
    std::fs::write(sandbox.path(STATUS), "# being rewritten\n").unwrap();
    let run = sandbox.run(&["reconcile"]).success();
    assert!(
        run.stdout().contains("! keep manga/curated-status")
            && run.stdout().contains("the file holds no job now"),
        "{}",
        run.stdout()
    );
    assert_eq!(ids(&sandbox).len(), 3);
    std::fs::remove_file(sandbox.path(STATUS)).unwrap();
    let run = sandbox.run(&["reconcile"]).success();
    assert!(run.stdout().contains("- delete manga/curated-status"), "{}", run.stdout());
}

#[test]
fn a_dry_run_on_a_fresh_clone_plans_what_the_real_run_does_and_creates_no_database() {
    let sandbox = Sandbox::new();
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3);
    assert!(plan.stdout().contains("Plan: 3 to create"), "{}", plan.stdout());
    assert!(!sandbox.path("data").exists(), "a dry run writes nothing");
    sandbox.run(&["validate"]).success();
    let applied = sandbox.run(&["reconcile"]).success();
    assert!(applied.stdout().contains("Applied: 3 created"), "{}", applied.stdout());
    // Against the real database, the catalog's libraries count as they will after seeding.
    sandbox.write("jobs.d/extra.yaml", JOB);
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3);
    assert!(plan.stdout().contains("Plan: 1 to create"), "{}", plan.stdout());
}

#[test]
fn a_checkout_behind_the_database_holds_back_and_the_newer_commit_wins() {
    // Given two checkouts of one repository on one database, as two replicas would have.
    let ahead = Sandbox::new();
    ahead.git(&["init", "-q"]);
    ahead.git(&["add", "curator.yaml", "jobs.d", "examples", "schemas"]);
    ahead.git(&["commit", "-qm", "jobs"]);
    let ahead = ahead.prepared();
    let behind = Sandbox::new();
    behind.git(&["init", "-q"]);
    behind.git(&["fetch", "-q", ahead.path("").to_str().unwrap(), "HEAD"]);
    behind.git(&["reset", "-q", "--hard", "FETCH_HEAD"]);
    let database = format!("sqlite://{}", ahead.path("data/curator.db").display());
    let reconcile_behind = |args: &[&str]| {
        let mut command = behind.command(&[&["reconcile"], args].concat());
        let output = command.env("CURATOR_DATABASE_URL", &database).output().unwrap();
        Run { output, args: format!("reconcile {}", args.join(" ")) }
    };
    let cron = || {
        let shown = ahead.json(&["jobs", "show", "manga/curated-status", "--output", "json"]);
        shown["job"]["spec"]["schedule"]["cron"].as_str().unwrap().to_string()
    };

    // When one checkout pulls a newer commit and applies it.
    edit(&ahead, "jobs.d/manga/curated-status.yaml", "\"0 4 * * *\"", "\"30 6 * * *\"");
    ahead.git(&["commit", "-qam", "later"]);
    ahead.run(&["reconcile"]).success();
    let newer = ahead.git(&["rev-parse", "HEAD"]);

    // Then the other, still at the older commit, applies nothing and says why.
    let held = reconcile_behind(&[]).expect_code(1);
    let older = behind.git(&["rev-parse", "HEAD"]);
    let expected = format!(
        "error: this work tree is at commit `{}`, older than commit `{}` the database was last \
         reconciled from: nothing is applied until it catches up (pass --allow-older-commit if \
         the branch was moved back on purpose)",
        &older[..12],
        &newer[..12]
    );
    assert!(held.stdout().contains(&expected), "{}", held.stdout());
    assert!(held.stdout().contains("Nothing applied: the plan was refused."));
    assert_eq!(cron(), "30 6 * * *", "the newer version stays");
    let dry = reconcile_behind(&["--dry-run", "--output", "json"]).expect_code(1);
    let plan: Value = serde_json::from_str(&dry.stdout()).unwrap();
    assert_eq!(plan["refused"]["guard"], "older-commit", "{plan}");

    // Asked to, it moves the database back; the newer checkout's next pass wins again.
    reconcile_behind(&["--allow-older-commit"]).success();
    assert_eq!(cron(), "0 4 * * *");
    ahead.run(&["reconcile"]).success();
    assert_eq!(cron(), "30 6 * * *");

    // Once the older checkout catches up, it agrees: nothing to do.
    behind.git(&["fetch", "-q", ahead.path("").to_str().unwrap(), "HEAD"]);
    behind.git(&["reset", "-q", "--hard", "FETCH_HEAD"]);
    let caught_up = reconcile_behind(&[]).success();
    assert!(caught_up.stdout().contains("0 updated"), "{}", caught_up.stdout());
}

#[test]
fn a_symlink_loop_in_the_jobs_directory_is_named_and_deletes_nothing() {
    let sandbox = Sandbox::new().prepared();
    std::os::unix::fs::symlink("..", sandbox.path("jobs.d/manga/loop")).unwrap();
    let link = "jobs.d/manga/loop: a symlink back to the jobs directory itself";

    let out = sandbox.run(&["validate"]).expect_code(2);
    assert!(out.stderr().contains(link), "{}", out.stderr());
    for flags in [&["reconcile"][..], &["reconcile", "--allow-empty"]] {
        let out = sandbox.run(flags).expect_code(1).stdout();
        assert!(
            out.contains(&format!("error: cannot read the jobs directory `jobs.d`: {link}")),
            "{out}"
        );
        assert!(
            out.contains("! keep manga/curated-status")
                && out.contains("not deleted while the jobs directory cannot be listed"),
            "{out}"
        );
        assert!(!out.contains("delete manga"), "no delete is even planned: {out}");
        assert_eq!(ids(&sandbox).len(), 3, "{flags:?} keeps every job");
    }

    std::fs::remove_file(sandbox.path("jobs.d/manga/loop")).unwrap();
    let out = sandbox.run(&["reconcile", "--dry-run"]).expect_code(0).stdout();
    assert!(out.contains("No changes"), "{out}");
}

#[test]
fn jobs_from_a_file_with_errors_say_so_until_it_is_fixed() {
    let sandbox = Sandbox::new().prepared();
    let good = std::fs::read_to_string(sandbox.path(STATUS)).unwrap();
    sandbox.write(STATUS, &good.replace("scope: series_only", "scope: everything"));
    sandbox.run(&["reconcile"]).expect_code(1);

    let shown = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(
        shown.contains(
            "invalid:   the file has errors since the last pass (line 13, column 8: `scope`: \
             `everything` is not a scope: write one of"
        ),
        "{shown}"
    );
    assert!(shown.contains("this job keeps its last good version until they are fixed"), "{shown}");
    let json = sandbox.json(&["jobs", "show", "manga/curated-status", "--output", "json"]);
    assert_eq!(json["fileErrors"][0]["path"], "scope", "{json}");
    let other = sandbox.json(&["jobs", "show", "books/curated-volumes", "--output", "json"]);
    assert_eq!(other["fileErrors"], Value::Null);

    let list = sandbox.run(&["jobs", "list"]).success().stderr();
    assert!(
        list.ends_with(
            "warning: jobs.d/manga/curated-status.yaml has errors since the last pass; its jobs \
             keep their last good version (`curator validate` shows why)\n"
        ),
        "{list}"
    );
    let list = sandbox.json(&["jobs", "list", "--output", "json"]);
    let flagged: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["fileInvalid"] == true)
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, ["manga/curated-status"]);

    assert_eq!(json["fileInvalid"], true);

    sandbox.write(STATUS, &good);
    sandbox.run(&["reconcile"]).success();
    let list = sandbox.run(&["jobs", "list"]).success().stderr();
    assert!(!list.contains("warning"), "{list}");
    let json = sandbox.json(&["jobs", "show", "manga/curated-status", "--output", "json"]);
    assert_eq!((&json["fileInvalid"], &json["fileErrors"]), (&json!(false), &Value::Null));
    let shown = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(!shown.contains("invalid:"), "{shown}");
}

#[test]
fn a_job_name_cannot_drive_the_terminal() {
    let sandbox = Sandbox::new().prepared();
    let good = std::fs::read_to_string(sandbox.path(STATUS)).unwrap();
    let name = good.lines().find(|l| l.starts_with("name:")).unwrap().to_string();
    sandbox.write(STATUS, &good.replace(&name, "name: \"evil\\e[2J\\e[31mRED\\u202Egnp.exe\""));
    let plan = sandbox.run(&["reconcile"]).success().stdout();
    assert!(
        plan.contains(
            "~ name: \"Manga status, counts and ratings\" -> \
             \"evil\\u001b[2J\\u001b[31mRED\\u{202e}gnp.exe\""
        ),
        "{plan}"
    );
    assert!(!plan.contains('\u{1b}') && !plan.contains('\u{202e}'), "{plan:?}");
    let shown = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(shown.contains("name:      evil\\u{1b}[2J\\u{1b}[31mRED\\u{202e}gnp.exe\n"), "{shown}");
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{202e}'), "{shown:?}");
    let json = sandbox.json(&["jobs", "show", "manga/curated-status", "--output", "json"]);
    assert_eq!(
        json["job"]["name"], "evil\u{1b}[2J\u{1b}[31mRED\u{202e}gnp.exe",
        "JSON keeps the value"
    );

    // A name is one line: it cannot forge the lines after it.
    sandbox.write(STATUS, &good.replace(&name, "name: \"a\\nenabled:   false\\tb\""));
    sandbox.run(&["reconcile"]).success();
    let shown = sandbox.run(&["jobs", "show", "manga/curated-status"]).success().stdout();
    assert!(shown.contains("name:      a\\nenabled:   false\\tb\n"), "{shown}");
}
