//! `curator reconcile` and the job listings it feeds.

use serde_json::Value;

use crate::*;

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

#[test]
fn reconcile_on_a_fresh_clone_seeds_the_configured_catalog_first() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["reconcile"]).success();
    assert!(run.stdout().contains("Applied: 3 created"), "{}", run.stdout());
    let run = sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    assert!(run.stdout().contains("succeeded"), "{}", run.stdout());
}
