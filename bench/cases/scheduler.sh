#!/usr/bin/env bash
# scheduler: hot-reload latency over 100 edits (p50, p95; target p95 under 0.5 s), and
# 100,000 scheduled jobs: resident memory (under 200 MB), idle CPU (near zero) and firing
# lateness (p99 under 50 ms). The measuring is in bench/scheduler.py, which starts the release
# binary that bench/run built ($CURATOR) in temporary directories.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

bench_log "scheduler: hot reload, then 100,000 jobs (a few minutes)"
python3 "$BENCH_DIR/scheduler.py"
