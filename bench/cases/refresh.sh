#!/usr/bin/env bash
# metadata_refresh throughput (SPEC section 10): one run over 10,000 series, every one fetched
# and written. Against zero-latency local providers (the `directory` provider reading one JSON
# file per series, and the echo plugin over JSON-RPC) the target is 2,000 entries per second on
# SQLite; against the echo plugin answering after 50 ms, at maxConcurrency 16, the bound is
# 16 / 0.05 s = 320 entries per second and the target is within 10% of it.
#
# The figure is planned entries over the run's own time (its startedAt to finishedAt, as
# recorded), so process start-up is left out; each row is one run on a fresh copy of the
# database.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
curator="$CURATOR"
echo_plugin="$ECHO_PLUGIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

series=10000
# The catalog goes in files of 1,000 series: one file may not exceed 1 MiB.
python3 - "$series" <<'PY'
import json, os, sys
n = int(sys.argv[1])
os.makedirs("metadata/series", exist_ok=True)
for part in range(0, n, 1000):
    with open(f"catalog-{part // 1000:02d}.yaml", "w") as out:
        out.write("libraries:\n  - id: lab\n    name: Lab\n    series:\n")
        for i in range(part, min(n, part + 1000)):
            key = f"s{i:05d}"
            out.write(f"      - id: {key}\n        metadata: {{ title: \"Series {i}\", status: ongoing }}\n")
            out.write(f"        externalIds: {{ curated: {{ id: {key} }}, echo: {{ id: {key} }} }}\n")
            with open(f"metadata/series/{key}.json", "w") as f:
                json.dump({"externalId": key, "externalUrl": f"https://example.invalid/{key}",
                           "status": "ended", "totalVolumeCount": i % 90 + 1,
                           "rating": {"score": i % 100, "voteCount": i, "source": "curated"}}, f)
PY
printf '%s\n' "database: sqlite://data/curator.db" "jobsDir: jobs.d" "timezone: UTC" \
    "providers:" \
    "  - name: curated" "    kind: directory" "    path: metadata" \
    "    permissions: [\"metadata:write:*\"]" \
    "  - name: echo" "    kind: plugin" "    command: $echo_plugin" \
    "    permissions: [\"metadata:write:*\"]" >curator.yaml
mkdir -p jobs.d
for provider in curated echo; do
    printf '%s\n' "apiVersion: curator/v1" "kind: LibraryJob" "library: lab" \
        "schedule: { cron: \"0 4 * * *\" }" "type: metadata_refresh" "provider: $provider" \
        "scope: series_only" "fieldGroups: [status, counts, ratings]" \
        "maxConcurrency: 16" >"jobs.d/$provider.yaml"
done
for file in catalog-*.yaml; do "$curator" catalog import "$file" >/dev/null; done
"$curator" reconcile >/dev/null
# A consistent copy: the rows may still be in the write-ahead log beside the file.
"$curator" db backup pristine.db >/dev/null

# Entries per second of one run of JOB on a fresh copy of the database; extra environment
# (the echo plugin's latency) from the rest of the arguments.
rate() {
    local job="$1"
    shift
    rm -f data/curator.db-wal data/curator.db-shm
    cp pristine.db data/curator.db
    if ! env "$@" "$curator" run "$job" --wait --output json >run.json 2>"$work/stderr"; then
        echo "curator run $job failed: $(cat "$work/stderr")" >&2
        exit 1
    fi
    python3 - <<'PY'
import json
from datetime import datetime
run = json.load(open("run.json"))["run"]
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
seconds = (t(run["finishedAt"]) - t(run["startedAt"])).total_seconds()
assert run["totals"]["updated"] == run["totals"]["planned"], run["totals"]
print(f"{run['totals']['planned'] / seconds:.0f}")
PY
}

row() { # name, entries per second, target per second, how the target reads
    local met
    met=$(awk -v r="$2" -v t="$3" 'BEGIN { print (r >= t) ? "yes" : "NO" }')
    bench_row "$1" "$2/s" "" "$(awk -v r="$2" -v t="$3" 'BEGIN { printf "%.2f", r / t }')" "$4" "$met"
}

bench_log "refresh: 10,000 series, directory provider"
row "refresh 10k series, directory provider" "$(rate curated)" 2000 ">=2000/s"
bench_log "refresh: 10,000 series, echo plugin, no latency"
row "refresh 10k series, echo plugin" "$(rate echo ECHO_LATENCY_MS=0)" 2000 ">=2000/s"
bench_log "refresh: 10,000 series, echo plugin, 50 ms latency, maxConcurrency 16"
row "refresh 10k, 50 ms latency, 16 in flight" "$(rate echo ECHO_LATENCY_MS=50)" 288 ">=288/s"
