//! `curator validate`, `curator schema`, and what editors and CI take from them.

use std::path::Path;

use serde_json::{Value, json};

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
    assert_eq!(
        run.stdout(),
        "note: no database: library checks were skipped\n\
         3 file(s), 3 valid job(s), 0 error(s), 0 warning(s)\n"
    );
    let run = sandbox.run(&["validate", "--no-config", "jobs.d"]).success();
    assert_eq!(
        run.stdout(),
        "note: no config: provider and library checks were skipped\n\
         3 file(s), 3 valid job(s), 0 error(s), 0 warning(s)\n"
    );
}

#[test]
fn each_common_mistake_exits_1_with_file_line_column_and_the_value() {
    let sandbox = Sandbox::new();
    let cases = [
        (
            "fieldGroups: [ratings]",
            "fieldGroup: [ratings]",
            "jobs.d/bad.yaml:9:1: error: unknown key `fieldGroup`; did you mean `fieldGroups`?\n \
             9 | fieldGroup: [ratings]\n   | ^\n",
        ),
        (
            "\"0 4 * * *\"",
            "\"0 4 * * 9\"",
            "jobs.d/bad.yaml:5:18: error: `schedule.cron`: the day-of-week field `9` is out of \
             range: it takes 0-7 (0 and 7 are Sunday), SUN-SAT, `L` or `#`\n \
             5 |   cron: \"0 4 * * 9\"\n   |                  ^\n",
        ),
        (
            "\"0 4 * * *\"",
            "\"0 4 * * *\"\n  timezone: Europe/Pariss",
            "jobs.d/bad.yaml:6:13: error: `schedule.timezone`: `Europe/Pariss` is not an IANA \
             time zone; did you mean `Europe/Paris`?\n \
             6 |   timezone: Europe/Pariss\n   |             ^\n",
        ),
        (
            "[ratings]",
            "[ratings, ratingz]",
            "jobs.d/bad.yaml:9:24: error: `fieldGroups[1]`: `ratingz` is not a series field \
             group; did you mean `ratings`?\n \
             9 | fieldGroups: [ratings, ratingz]\n   |                        ^\n",
        ),
        (
            "provider: curated",
            "provider: curate",
            "jobs.d/bad.yaml:7:11: error: `provider`: `curate` is not configured (configured: \
             `curated`); did you mean `curated`?\n",
        ),
    ];
    for (from, to, expected) in cases {
        sandbox.write("jobs.d/bad.yaml", &JOB.replace(from, to));
        let run = sandbox.run(&["validate", "jobs.d"]).expect_code(1);
        assert!(
            run.stdout().starts_with(expected),
            "expected\n{expected}\nat the start of\n{}",
            run.stdout()
        );
        assert!(run.stdout().ends_with("4 file(s), 3 valid job(s), 1 error(s), 0 warning(s)\n"));
    }
}

#[test]
fn every_file_is_reported_in_one_pass_in_path_order() {
    let sandbox = Sandbox::new();
    sandbox.write("jobs.d/z.yaml", &JOB.replace("library: manga", "libary: manga"));
    sandbox.write("jobs.d/a/first.yaml", &JOB.replace("scope: series_only", "scope: all"));
    let run = sandbox.run(&["validate", "--no-config", "--output", "json"]).expect_code(1);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    let places: Vec<String> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{} {}",
                d["file"].as_str().unwrap(),
                d["line"],
                d["column"],
                d["code"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            "jobs.d/a/first.yaml:8:8 value",
            "jobs.d/z.yaml:1:1 missing-key",
            "jobs.d/z.yaml:3:1 unknown-key",
        ]
    );
    assert_eq!((report["files"].as_u64(), report["jobs"].as_u64()), (Some(5), Some(3)));
}

#[test]
fn validate_speaks_json_and_github_annotations() {
    let sandbox = Sandbox::new();
    sandbox.write("jobs.d/bad.yaml", &JOB.replace("scope: series_only", "scope: series"));
    let run = sandbox.run(&["validate", "--output", "json"]).expect_code(1);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        report,
        json!({
            "formatVersion": 1,
            "valid": false,
            "files": 4,
            "jobs": 3,
            "errors": 1,
            "warnings": 0,
            "skipped": ["library"],
            "notes": ["no database: library checks were skipped"],
            "diagnostics": [{
                "file": "jobs.d/bad.yaml",
                "line": 8,
                "column": 8,
                "path": "scope",
                "code": "value",
                "message": "`scope`: `series` is not a scope: write one of `series_only`, \
                    `books_only`, `series_and_books`",
                "severity": "error",
            }],
        })
    );
    let run = sandbox.run(&["validate", "--output", "github"]).expect_code(1);
    assert_eq!(
        run.stdout(),
        "::error file=jobs.d/bad.yaml,line=8,col=8,title=curator value::`scope`: `series` is not \
         a scope: write one of `series_only`, `books_only`, `series_and_books`\n\
         ::notice title=curator::no database: library checks were skipped\n\
         4 file(s), 3 valid job(s), 1 error(s), 0 warning(s)\n"
    );
}

#[test]
fn warnings_alone_exit_0() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "jobs.d/old-zone.yaml",
        &JOB.replace("\"0 4 * * *\"", "\"0 4 * * *\"\n  timezone: US/Pacific"),
    );
    let run = sandbox.run(&["validate", "--output", "github"]).success();
    assert!(
        run.stdout().starts_with(
            "::warning file=jobs.d/old-zone.yaml,line=6,col=13,title=curator \
             deprecated-timezone::`schedule.timezone`: `US/Pacific` is a deprecated alias of \
             `America/Los_Angeles`: write `America/Los_Angeles`\n"
        ),
        "{}",
        run.stdout()
    );
    assert!(run.stdout().ends_with("4 file(s), 4 valid job(s), 0 error(s), 1 warning(s)\n"));
}

#[test]
fn without_a_config_provider_checks_are_skipped_and_the_output_says_so() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "jobs.d/unknown-provider.yaml",
        &JOB.replace("provider: curated", "provider: nowhere"),
    );
    let with_config = sandbox.run(&["validate"]).expect_code(1);
    assert!(with_config.stdout().contains("`provider`: `nowhere` is not configured"));

    let run = sandbox.run(&["validate", "--no-config", "--output", "json"]).success();
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["skipped"], json!(["provider", "library"]));
    assert_eq!(report["valid"], true);

    std::fs::remove_file(sandbox.path("curator.yaml")).unwrap();
    let run = sandbox.run(&["validate"]).success();
    assert!(
        run.stdout().starts_with("note: no config: provider and library checks were skipped\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_broken_config_or_a_missing_path_exits_2() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["validate", "nowhere.d"]).expect_code(2);
    assert_eq!(run.stderr(), "error: nowhere.d: no such file or directory\n");
    sandbox.write("broken.yaml", "providers: [\n");
    let run = sandbox.run(&["--config", "broken.yaml", "validate"]).expect_code(2);
    assert!(run.stderr().starts_with("broken.yaml:2:1: error: invalid YAML"), "{}", run.stderr());
    assert!(run.stderr().ends_with("\nerror: broken.yaml: 1 error(s)\n"), "{}", run.stderr());
    let run = sandbox.run(&["validate", "--output", "xml"]).expect_code(2);
    assert!(run.stderr().contains("invalid value 'xml'"), "{}", run.stderr());
}

#[test]
fn colour_only_on_a_terminal_or_when_forced() {
    let sandbox = Sandbox::new();
    sandbox.write("jobs.d/bad.yaml", &JOB.replace("scope: series_only", "scope: series"));
    let piped = sandbox.run(&["validate"]).expect_code(1);
    assert!(!piped.stdout().contains('\u{1b}'), "{:?}", piped.stdout());
    let mut forced = sandbox.command(&["validate"]);
    forced.env("CLICOLOR_FORCE", "1").env_remove("NO_COLOR");
    let stdout = String::from_utf8(forced.output().unwrap().stdout).unwrap();
    assert!(stdout.contains("\u{1b}[1m\u{1b}[31merror\u{1b}[0m"), "{stdout:?}");
}

#[test]
fn every_example_job_starts_with_the_schema_modeline() {
    let jobs = crate::examples::EXAMPLE_FILES.iter().filter(|f| f.starts_with("jobs.d/"));
    let files: Vec<_> = jobs.map(|f| Path::new(REPO).join(f)).collect();
    assert_eq!(files.len(), 3);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let schema = first.strip_prefix("# yaml-language-server: $schema=").unwrap_or_else(|| {
            panic!("{} must start with the $schema modeline, not `{first}`", file.display())
        });
        let target = file.parent().unwrap().join(schema);
        assert!(
            target.canonicalize().ok()
                == Path::new(REPO).join("schemas/library-job.schema.json").canonicalize().ok(),
            "{}: the modeline points at {}",
            file.display(),
            target.display()
        );
    }
}

#[test]
fn the_pre_commit_hook_runs_curator_validate_on_job_files() {
    let text = std::fs::read_to_string(Path::new(REPO).join(".pre-commit-hooks.yaml")).unwrap();
    let docs = curator::spec::yaml::parse(&text).unwrap();
    let hooks = docs[0].value.as_array().expect("a list of hooks");
    let hook =
        hooks.iter().find(|h| h["id"] == "curator-validate").expect("a curator-validate hook");
    assert_eq!(hook["entry"], "curator validate");
    assert_eq!(hook["language"], "rust");
    assert_eq!(hook["pass_filenames"], false, "IDs are unique across the whole directory");
    assert!(hook["files"].as_str().unwrap().contains("ya?ml"));
}

#[test]
fn a_job_file_symlink_that_is_not_followed_is_named_in_a_note() {
    let sandbox = Sandbox::new();
    sandbox.write("shared/books.yaml", JOB);
    std::os::unix::fs::symlink("../shared/books.yaml", sandbox.path("jobs.d/books.yaml")).unwrap();
    std::os::unix::fs::symlink("gone.yaml", sandbox.path("jobs.d/manga/typo.yaml")).unwrap();
    std::os::unix::fs::symlink("../shared", sandbox.path("jobs.d/shared")).unwrap();
    let run = sandbox.run(&["validate", "jobs.d"]).success();
    assert_eq!(
        run.stdout(),
        "note: jobs.d/books.yaml: skipped: the symlink leads outside the jobs directory\n\
         note: jobs.d/manga/typo.yaml: skipped: the symlink leads to nothing that exists\n\
         note: jobs.d/shared: skipped: the symlink leads outside the jobs directory\n\
         note: no database: library checks were skipped\n\
         3 file(s), 3 valid job(s), 0 error(s), 0 warning(s)\n"
    );
}

#[test]
fn an_id_taken_from_a_file_name_follows_the_id_rules() {
    let sandbox = Sandbox::new();
    sandbox.write("jobs.d/with space.yaml", JOB);
    let run = sandbox.run(&["validate", "--no-config", "jobs.d"]).expect_code(1);
    assert!(
        run.stdout().contains(
            "jobs.d/with space.yaml:1:1: error: the job ID `with space`, taken from the file's \
             path, is not a job ID"
        ),
        "{}",
        run.stdout()
    );
    sandbox.run(&["catalog", "import", "examples/catalog.yaml"]).success();
    let plan = sandbox.run(&["reconcile"]).expect_code(1).stdout();
    assert!(!plan.contains("+ create with space"), "{plan}");
}
