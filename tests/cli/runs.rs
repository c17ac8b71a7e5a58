//! `curator run` and `curator runs`: what a run writes and records.

use serde_json::Value;

use crate::*;

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
fn a_mistyped_job_id_is_answered_with_the_closest_job() {
    let sandbox = Sandbox::new().prepared();
    for args in [
        &["run", "manga/curated-statuss"][..],
        &["run", "manga/curated-statuss", "--wait"],
        &["preview", "manga/curated-statuss"],
        &["jobs", "show", "manga/curated-statuss"],
        &["runs", "list", "--job", "manga/curated-statuss"],
    ] {
        let run = sandbox.run(args).expect_code(1);
        assert_eq!(
            run.stderr(),
            "error: job `manga/curated-statuss` does not exist; did you mean \
             `manga/curated-status`?\n",
            "{args:?}"
        );
    }
}

#[test]
fn runs_of_a_job_that_never_existed_are_an_error_and_a_deleted_jobs_runs_are_listed() {
    let sandbox = Sandbox::new().prepared();
    let nope = sandbox.run(&["runs", "list", "--job", "nope"]).expect_code(1);
    assert_eq!(nope.stderr(), "error: job `nope` does not exist\n");
    assert_eq!(nope.stdout(), "");

    let none = sandbox.run(&["runs", "list", "--job", "manga/curated-status"]).success();
    assert_eq!(none.stdout(), "no runs\n", "a job without runs has none to list");

    sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    std::fs::remove_file(sandbox.path("jobs.d/manga/curated-status.yaml")).unwrap();
    sandbox.run(&["reconcile"]).success();
    let kept = sandbox.run(&["runs", "list", "--job", "manga/curated-status"]).success();
    assert!(
        kept.stdout().starts_with("#1 manga/curated-status [job deleted] "),
        "{}",
        kept.stdout()
    );
}

#[test]
fn a_run_queued_with_no_server_does_not_promise_one() {
    let sandbox = Sandbox::new().prepared();
    let queued = sandbox.run(&["run", "manga/curated-status"]).success();
    assert_eq!(queued.stdout(), "queued run 1 of `manga/curated-status`\n");
    assert_eq!(
        queued.stderr(),
        "warning: no `curator serve` is running for this database: start one to run it, or run \
         the job here with `curator run manga/curated-status --wait`\n"
    );
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
