#!/usr/bin/env bash
# replicas: queued runs claimed and completed per second by 1, 2 and 3 `curator serve`
# replicas on one PostgreSQL database, and by one process on SQLite, on the same workload:
# BENCH_REPLICA_RUNS (default 600) runs queued at once, one per job, each refreshing the four
# series of its own library from a directory provider (every field written, nothing skipped).
# Each server takes at most `workers: 4` queued runs at a time, so replicas share the queue.
# The figure counts from the first run's claim to the last run's end, as the database
# recorded them: the up to two seconds before a server's next look at the queue are left out.
# PostgreSQL is the server in CURATOR_BENCH_POSTGRES (default
# postgres://postgres@127.0.0.1/postgres); each measurement gets a fresh database.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

admin="${CURATOR_BENCH_POSTGRES:-postgres://postgres@127.0.0.1/postgres}"
runs="${BENCH_REPLICA_RUNS:-600}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if ! pg_isready -q -d "$admin"; then
  bench_log "replicas: PostgreSQL at $admin does not answer (set CURATOR_BENCH_POSTGRES)"
  exit 1
fi

bench_log "replicas: generating $runs jobs, libraries and curated metadata"
python3 - "$work" "$runs" <<'PY'
import json, os, sys
root, count = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/jobs.d")
os.makedirs(f"{root}/metadata/series")
libraries = []
for i in range(count):
    series = []
    for n in range(4):
        sid = f"s{i}-{n}"
        series.append({"id": sid, "metadata": {"title": f"Series {sid}", "status": "ongoing"},
                       "externalIds": {"curated": {"id": sid}}})
        with open(f"{root}/metadata/series/{sid}.json", "w") as f:
            json.dump({"title": f"Series {sid}", "status": "ended", "year": 2000 + n,
                       "totalVolumeCount": n + 1, "genres": ["Bench"],
                       "rating": {"score": 70 + n, "voteCount": 10, "source": "bench"}}, f)
    libraries.append({"id": f"lib-{i}", "name": f"Library {i}", "series": series})
    with open(f"{root}/jobs.d/job-{i}.yaml", "w") as f:
        f.write(f"apiVersion: curator/v1\nkind: LibraryJob\nid: job-{i}\nlibrary: lib-{i}\n"
                "enabled: false\nschedule:\n  cron: \"0 4 * * *\"\ntype: metadata_refresh\n"
                "provider: curated\nscope: series_only\n"
                "fieldGroups: [status, counts, ratings, genres]\nskipRecentlySyncedWithinS: 0\n")
with open(f"{root}/catalog.json", "w") as f:
    json.dump({"libraries": libraries}, f)
with open(f"{root}/curator.yaml", "w") as f:
    f.write("jobsDir: jobs.d\ntimezone: UTC\nworkers: 4\nproviders:\n"
            "  - name: curated\n    kind: directory\n    path: metadata\n"
            "    permissions: [\"metadata:write:*\"]\n")
PY

# sql URL STATEMENT: runs one statement on the database at URL, printing the result bare.
sql() {
  case "$1" in
    sqlite://*) sqlite3 "${1#sqlite://}" "$2" ;;
    *) psql -qAt -d "$1" -c "$2" ;;
  esac
}

# measure URL REPLICAS: prints the runs per second REPLICAS servers reach on the database.
measure() {
  local url="$1" replicas="$2" i
  export CURATOR_DATABASE_URL="$url"
  (cd "$work" && "$CURATOR" catalog import catalog.json >/dev/null)
  (cd "$work" && "$CURATOR" reconcile >/dev/null)
  pids=()
  for ((i = 0; i < replicas; i++)); do
    (cd "$work" && NO_COLOR=1 CURATOR_LISTEN=127.0.0.1:0 \
      exec "$CURATOR" serve 2>"$work/serve-$i.log") &
    pids+=("$!")
  done
  for ((i = 0; i < replicas; i++)); do
    until grep -q " reconciled " "$work/serve-$i.log"; do sleep 0.1; done
  done

  local now seconds
  case "$url" in
    sqlite://*)
      now="strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
      seconds="(julianday(MAX(finished_at)) - julianday(MIN(started_at))) * 86400"
      ;;
    *)
      now="clock_timestamp()"
      seconds="EXTRACT(EPOCH FROM MAX(finished_at) - MIN(started_at))"
      ;;
  esac
  sql "$url" "INSERT INTO runs (job_id, trigger, status, queued_at)
              SELECT id, 'manual', 'queued', $now FROM jobs" >/dev/null
  local waiting="SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')"
  until [[ "$(sql "$url" "$waiting")" == 0 ]]; do
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid"; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()

  local succeeded
  succeeded="$(sql "$url" "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")"
  if [[ "$succeeded" != "$runs" ]]; then
    bench_log "replicas: only $succeeded of $runs runs succeeded on $replicas replica(s)"
    return 1
  fi
  sql "$url" "SELECT $seconds FROM runs" | awk -v n="$runs" '{ printf "%.0f\n", n / $1 }'
}

bench_log "replicas: SQLite, one process"
sqlite_rate="$(measure "sqlite://$work/bench.db" 1)"
bench_row "runs/s claimed+completed, SQLite, 1 process" "$sqlite_rate" "-" "-" "-" "-"

declare -A pg_rate
for replicas in 1 2 3; do
  name="curator_bench_replicas_$$_$replicas"
  psql -qAt -d "$admin" -c "CREATE DATABASE $name" >/dev/null
  # The admin URL with the new database's name as its path.
  url="$(python3 -c '
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$admin" "$name")"
  bench_log "replicas: PostgreSQL, $replicas replica(s)"
  status=0
  pg_rate[$replicas]="$(measure "$url" "$replicas")" || status=$?
  psql -qAt -d "$admin" -c "DROP DATABASE $name WITH (FORCE)" >/dev/null
  ((status == 0)) || exit "$status"
done
# Peers: one replica against the SQLite process, more replicas against one replica.
bench_row "runs/s claimed+completed, PostgreSQL, 1 replica" "${pg_rate[1]}" "$sqlite_rate" \
  "$(bench_ratio "$sqlite_rate" "${pg_rate[1]}")" "-" "-"
for replicas in 2 3; do
  bench_row "runs/s claimed+completed, PostgreSQL, $replicas replicas" "${pg_rate[$replicas]}" \
    "${pg_rate[1]}" "$(bench_ratio "${pg_rate[1]}" "${pg_rate[$replicas]}")" "-" "-"
done
