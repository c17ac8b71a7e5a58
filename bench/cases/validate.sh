#!/usr/bin/env bash
# validate: `curator validate --no-config` on 10,000 job files, against ajv-cli and
# check-jsonschema validating the same files with the same schema. curator also runs its
# meaning checks (cron, zones, selections, IDs across files) and reports on every file.
# Target (SPEC.md section 10): at least 3x faster than ajv-cli.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

count="${BENCH_VALIDATE_FILES:-10000}"
work="$BENCH_CACHE/validate-$count"
schema="$BENCH_ROOT/schemas/library-job.schema.json"
stamp="$(sha256sum "$BENCH_DIR/gen/jobs.py" | cut -c1-16)"
if [[ "$(cat "$work/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  bench_log "writing $count job files to $work"
  rm -rf "$work"
  python3 "$BENCH_DIR/gen/jobs.py" "$count" "$work"
  echo "$stamp" >"$work/.stamp"
fi
# The files' modelines point at ../../schemas/ from jobs.d/<folder>/.
mkdir -p "$work/schemas"
cp "$schema" "$work/schemas/"

bench_npm ajv-cli@5.0.0
bench_pip check-jsonschema==0.39.0
ajv="$BENCH_CACHE/node/node_modules/.bin/ajv"
check_jsonschema="$BENCH_CACHE/venv/bin/check-jsonschema"
cd "$work"
mapfile -t files < <(find jobs.d -name '*.yaml' | sort)

# Every tool must accept every file, or the race is not the same race.
report="$("$CURATOR" validate --no-config --output json jobs.d)"
summary="$(python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["files"], r["jobs"], r["errors"])' <<<"$report")"
if [[ "$summary" != "$count $count 0" ]]; then
  echo "bench: curator reported files, jobs, errors = $summary, expected $count $count 0" >&2
  exit 1
fi

bench_log "timing curator ($BENCH_RUNS runs)"
curator_s="$(bench_time "$BENCH_RUNS" "$CURATOR" validate --no-config jobs.d)"
# ajv's strict mode refuses the editor keyword `enumDescriptions` in the schema.
bench_log "timing ajv-cli (3 runs)"
ajv_s="$(bench_time 3 "$ajv" validate --spec=draft7 --strict=false -s schemas/library-job.schema.json -d 'jobs.d/**/*.yaml')"
bench_log "timing check-jsonschema (1 run)"
check_s="$(bench_time 1 "$check_jsonschema" --schemafile schemas/library-job.schema.json "${files[@]}")"

ratio="$(bench_ratio "$curator_s" "$ajv_s")"
bench_row "validate $count files vs ajv-cli" "${curator_s}s" "${ajv_s}s" "$ratio" ">=3x" "$(bench_at_least "$ratio" 3)"
ratio="$(bench_ratio "$curator_s" "$check_s")"
bench_row "validate $count files vs check-jsonschema" "${curator_s}s" "${check_s}s" "$ratio" "-" "-"
