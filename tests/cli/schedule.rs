//! `curator schedule`: fire times in UTC and in the zone.

use crate::*;

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
        run.stderr().contains("invalid cron expression `0 0 30 2 *`: `0 0 30 2 *` never fires: no month it allows (`2`) has the day `30`"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_jobs_jitter_is_fixed_and_shown_with_its_fire_times() {
    let sandbox = Sandbox::new().prepared();
    let jittered = JOB.replace("\"0 4 * * *\"", "\"0 4 * * *\"\n  jitter: 10m");
    sandbox.write("jobs.d/spread.yaml", &jittered);
    sandbox.run(&["reconcile"]).success();
    let shown = sandbox.json(&["jobs", "show", "spread", "--output", "json"]);
    let jitter = shown["jitterMs"].as_u64().unwrap();
    assert!(jitter < 600_000, "{jitter}");
    let first = shown["nextFireTimes"][0].as_str().unwrap().to_string();
    let offset =
        chrono::DateTime::parse_from_rfc3339(&first).unwrap().timestamp_millis() % 86_400_000;
    assert_eq!(
        offset as u64,
        4 * 3_600_000 + jitter,
        "each fire time is 04:00 UTC plus the jitter"
    );
    let again = sandbox.json(&["jobs", "show", "spread", "--output", "json"]);
    assert_eq!(again["jitterMs"].as_u64(), Some(jitter), "the same delay every time");
    let text = sandbox.run(&["jobs", "show", "spread"]).success().stdout();
    assert!(text.contains("(fixed for this job, within 10m)"), "{text}");
}

#[test]
fn jobs_without_a_zone_use_the_config_zone_else_the_machines() {
    let sandbox = Sandbox::new().prepared();
    let list = sandbox.json(&["jobs", "list", "--output", "json"]);
    let books =
        list.as_array().unwrap().iter().find(|j| j["id"] == "books/curated-volumes").unwrap();
    assert_eq!(books["timezone"], "UTC", "the config says UTC");

    let config = std::fs::read_to_string(sandbox.path("curator.yaml")).unwrap();
    sandbox.write("curator.yaml", &config.replace("timezone: UTC\n", ""));
    let list = sandbox
        .command(&["jobs", "list", "--output", "json"])
        .env("TZ", "Asia/Tokyo")
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let books =
        list.as_array().unwrap().iter().find(|j| j["id"] == "books/curated-volumes").unwrap();
    assert_eq!(books["timezone"], "Asia/Tokyo", "no config zone: the machine's");
    let paris =
        list.as_array().unwrap().iter().find(|j| j["id"] == "manga/curated-status").unwrap();
    assert_eq!(paris["timezone"], "Europe/Paris", "a job's own zone wins");
}

#[test]
fn schedule_bounds_count_and_names_the_faulty_field() {
    let sandbox = Sandbox::new();
    let run =
        sandbox.run(&["schedule", "0 4 * * *", "--count", "18446744073709551615"]).expect_code(2);
    assert!(run.stderr().contains("--count"), "{}", run.stderr());
    let run = sandbox.run(&["schedule", "60 * * * *", "--timezone", "UTC"]).expect_code(1);
    assert_eq!(
        run.stderr().trim(),
        "error: invalid cron expression `60 * * * *`: the minute field `60` is out of range: it takes 0-59"
    );
    sandbox.write("curator.yaml", "broken: [\n");
    let run = sandbox.run(&["schedule", "@daily", "--timezone", "UTC", "--count", "1"]).success();
    assert!(
        run.stdout().contains("00:00:00 UTC"),
        "a broken config does not matter with --timezone: {}",
        run.stdout()
    );
}

#[test]
fn schedule_gives_the_same_zone_advice_as_validate() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["schedule", "0 4 * * *", "--timezone", "PST"]).expect_code(1);
    assert_eq!(
        run.stderr().trim(),
        "error: `PST` is a time-zone abbreviation, not an IANA zone: write a location such as `America/Los_Angeles`"
    );
    let run = sandbox
        .run(&["schedule", "0 4 * * *", "--timezone", "US/Pacific", "--count", "1"])
        .success();
    assert!(
        run.stderr().contains("`US/Pacific` is a deprecated alias of `America/Los_Angeles`"),
        "{}",
        run.stderr()
    );
}
