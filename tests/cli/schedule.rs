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
        run.stderr().contains("invalid cron expression `0 0 30 2 *`: the expression never fires"),
        "{}",
        run.stderr()
    );
}
