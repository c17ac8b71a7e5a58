//! `curator serve`'s HTTP side from outside: readiness and the Prometheus metrics of real runs,
//! firings and reconcile passes.

use std::time::Duration;

use crate::serve::{Server, eventually};
use crate::*;

/// The value of one sample line of a Prometheus text page, `name{labels} value`.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn metrics_count_runs_entries_provider_calls_reconcile_passes_and_lateness() {
    // Given a series whose curated file is missing, and a job that fires every second.
    let sandbox = Sandbox::new();
    sandbox.write(
        "missing.yaml",
        "libraries:\n  - id: manga\n    name: Manga\n    series:\n      - id: ghost\n        \
         metadata: { title: Ghost }\n        externalIds: { curated: { id: ghost } }\n",
    );
    let sandbox = sandbox.prepared();
    sandbox.run(&["catalog", "import", "missing.yaml"]).success();
    sandbox.write(
        "jobs.d/every-second.yaml",
        &JOB.replace("\"0 4 * * *\"", "\"* * * * * *\"")
            .replace("ratings]", "ratings]\nskipRecentlySyncedWithinS: 0"),
    );
    let mut server = Server::start(&sandbox);
    eventually(Duration::from_secs(5), "readyz answering 200 after the first pass", || {
        server.get("/readyz").starts_with("HTTP/1.1 200")
    });

    // When a manual run ends and the every-second job fires.
    let queued = sandbox.run(&["run", "manga/curated-status"]).success().stdout();
    let id = queued.split_whitespace().nth(2).unwrap().to_string();
    eventually(Duration::from_secs(15), "the manual run ending", || {
        let status =
            sandbox.json(&["runs", "show", &id, "--output", "json"])["run"]["status"].clone();
        status != "queued" && status != "running"
    });
    server.wait_for_log("job fired", Duration::from_secs(10));
    // The every-second job's runs reach the series without a curated file: partial.
    eventually(Duration::from_secs(15), "a partial run", || {
        let runs = sandbox.json(&["runs", "list", "--job", "every-second", "--output", "json"]);
        runs.as_array().unwrap().iter().any(|r| r["status"] == "partial")
    });

    // Then the metrics count them.
    let response = server.get("/metrics");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let page = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let at_least = |series: &str, n: f64| {
        let value = sample(page, series).unwrap_or_else(|| panic!("no `{series}` in\n{page}"));
        assert!(value >= n, "`{series}` is {value}, expected at least {n}");
    };
    at_least("curator_runs_total{status=\"partial\"}", 1.0);
    at_least("curator_entries_total{outcome=\"updated\"}", 1.0);
    at_least("curator_entries_total{outcome=\"failed\"}", 1.0);
    at_least("curator_fields_written_total", 1.0);
    at_least("curator_provider_calls_total{provider=\"curated\"}", 2.0);
    at_least("curator_provider_errors_total{provider=\"curated\",kind=\"not_found\"}", 1.0);
    at_least("curator_reconcile_passes_total{result=\"applied\"}", 1.0);
    at_least("curator_jobs{enabled=\"true\"}", 3.0);
    at_least("curator_jobs{enabled=\"false\"}", 1.0);
    at_least("curator_reconcile_invalid_files", 0.0);
    at_least("curator_scheduler_lateness_seconds_count", 1.0);
    at_least("curator_reconcile_duration_seconds_count", 1.0);
    assert!(page.contains("# TYPE curator_scheduler_lateness_seconds histogram"), "{page}");
}
