//! `curator validate` and `curator schema`.

use std::path::Path;

use serde_json::Value;

use crate::*;

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
