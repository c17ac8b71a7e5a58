#!/usr/bin/env bash
# Scheduler and watcher: hot-reload latency over 100 edits, and 100,000 scheduled jobs
# (memory, idle CPU, firing lateness). Needs the release binary; see bench/scheduler.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
python3 bench/scheduler.py "$@"
