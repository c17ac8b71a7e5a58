# Helpers shared by bench/run and the cases in bench/cases/, which source this file. Progress
# goes to stderr; only the table goes to stdout, so `bench/run > figures.txt` keeps the table.

BENCH_RUNS="${BENCH_RUNS:-5}"

bench_log() {
  echo "bench: $*" >&2
}

# The table's header: the machine it ran on, then the column names.
bench_header() {
  local commit
  commit="$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# curator $commit on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
  printf '%-42s %10s %10s %8s %8s  %s\n' "benchmark" "curator" "peer" "ratio" "target" "met"
}

# bench_row NAME FIGURE PEER RATIO TARGET MET: one row of the table.
bench_row() {
  printf '%-42s %10s %10s %8s %8s  %s\n' "$1" "$2" "$3" "$4" "$5" "$6"
}

# bench_time RUNS COMMAND...: runs COMMAND (output discarded) RUNS times and prints the median
# wall-clock time in seconds. Fails if any run does.
bench_time() {
  local runs="$1" start end i
  shift
  local times=()
  for ((i = 0; i < runs; i++)); do
    start="$(date +%s%N)"
    if ! "$@" >/dev/null 2>&1; then
      echo "bench: \`$*\` failed" >&2
      return 1
    fi
    end="$(date +%s%N)"
    times+=("$(((end - start) / 1000000))")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { printf "%.2f\n", t[int((NR + 1) / 2)] / 1000 }'
}

# bench_ratio FAST SLOW: how many times faster FAST is than SLOW, as `4.2x`.
bench_ratio() {
  awk -v fast="$1" -v slow="$2" 'BEGIN { printf "%.1fx\n", slow / fast }'
}

# bench_at_least RATIO TARGET: `yes` when RATIO (`4.2x`) reaches TARGET (a number).
bench_at_least() {
  awk -v ratio="${1%x}" -v target="$2" 'BEGIN { print (ratio + 0 >= target + 0) ? "yes" : "NO" }'
}

# bench_pip PACKAGE==VERSION...: installs Python packages into bench/.cache/venv once.
bench_pip() {
  local venv="$BENCH_CACHE/venv"
  if [[ ! -x "$venv/bin/python" ]]; then
    bench_log "creating a Python venv in $venv"
    python3 -m venv "$venv"
  fi
  local missing=()
  local spec
  for spec in "$@"; do
    "$venv/bin/pip" show "${spec%%==*}" 2>/dev/null | grep -qx "Version: ${spec#*==}" || missing+=("$spec")
  done
  if ((${#missing[@]})); then
    bench_log "installing ${missing[*]} with pip"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${missing[@]}" >&2
  fi
}

# bench_npm PACKAGE@VERSION...: installs npm packages into bench/.cache/node once.
bench_npm() {
  local prefix="$BENCH_CACHE/node"
  local missing=()
  local spec
  for spec in "$@"; do
    local name="${spec%@*}"
    local installed
    installed="$(node -p "require('$prefix/node_modules/$name/package.json').version" 2>/dev/null || true)"
    [[ "$installed" == "${spec##*@}" ]] || missing+=("$spec")
  done
  if ((${#missing[@]})); then
    bench_log "installing ${missing[*]} with npm"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --silent "${missing[@]}" >&2
  fi
}
