#!/usr/bin/env bash
# Reconcile at 10,000 jobs (SPEC section 10): into an empty SQLite database, a no-op pass over
# the same files, and a pass with one changed file. Each figure is the wall time of one
# `curator reconcile` process, start to exit, as a user would see it; the no-op and one-file
# figures are medians of five passes.
#
# Prints rows of bench/run's table (bench_row); there is no peer, so the ratio column is the
# figure over the target (below 1 meets it).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
curator="$CURATOR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# 10,000 job files in 100 folders, each a different schedule.
for group in $(seq -w 0 99); do
    mkdir -p "jobs.d/g$group"
    for n in $(seq -w 0 99); do
        printf '%s\n' \
            "apiVersion: curator/v1" "kind: LibraryJob" "library: manga" "schedule:" \
            "  cron: \"$((10#$n % 60)) $((10#$group % 24)) * * *\"" "  timezone: Europe/Paris" \
            "type: metadata_refresh" "provider: plugin:curated" "scope: series_only" \
            "fieldGroups: [status, counts, ratings]" >"jobs.d/g$group/job-$n.yaml"
    done
done
printf '%s\n' "libraries:" "  - id: manga" "    name: Manga" >catalog.yaml
printf '%s\n' "database: sqlite://data/curator.db" "jobsDir: jobs.d" "timezone: UTC" \
    "providers:" "  - name: curated" "    kind: directory" "    path: metadata" >curator.yaml

# Milliseconds one `curator reconcile` takes; a pass that fails stops the benchmark.
pass_ms() {
    local start end
    start=$(date +%s%N)
    if ! "$curator" reconcile >/dev/null 2>"$work/stderr"; then
        echo "curator reconcile failed: $(cat "$work/stderr")" >&2
        exit 1
    fi
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

row() { # name, microseconds, target in ms
    local figure goal ratio met
    figure=$(awk -v us="$2" 'BEGIN { ms = us / 1000; if (ms >= 1000) printf "%.2fs", ms / 1000; else printf "%.1fms", ms }')
    goal=$(awk -v t="$3" 'BEGIN { if (t >= 1000) printf "<%gs", t / 1000; else printf "<%gms", t }')
    ratio=$(awk -v us="$2" -v t="$3" 'BEGIN { printf "%.2f", us / 1000 / t }')
    met=$(awk -v r="$ratio" 'BEGIN { print (r + 0 < 1) ? "yes" : "NO" }')
    bench_row "$1" "$figure" "-" "$ratio" "$goal" "$met"
}

# From empty: a fresh database each time, the median of three.
empty=$(for _ in 1 2 3; do
    rm -rf data
    "$curator" catalog import catalog.yaml >/dev/null
    pass_ms
done | median)
row "reconcile 10,000 jobs into an empty SQLite database" "$empty" 2000

noop=$(for _ in 1 2 3 4 5; do pass_ms; done | median)
row "reconcile 10,000 unchanged jobs (no-op)" "$noop" 300

changed=$(for i in 1 2 3 4 5; do
    sed -i "s/^fieldGroups: .*/fieldGroups: [status, counts, ratings$([ $((i % 2)) = 1 ] && echo ', genres')]/" \
        jobs.d/g42/job-17.yaml
    pass_ms
done | median)
row "reconcile one changed file among 10,000" "$changed" 50
