# Shared by the bench-*.sh scripts (sourced, not run): build, scratch folder, JSON fields, and the
# saturation + half-rate transfer runs.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ledger-target}"
T="$CARGO_TARGET_DIR/release"

# bench_setup <name>: builds (unless BENCH_NO_BUILD=1), sets DIR to a fresh testnet folder that is
# stopped and deleted on exit, and prints the machine.
bench_setup() {
  if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    ./scripts/deps.sh
    ./scripts/build.sh
  fi
  DIR="$(mktemp -d "/tmp/$1.XXXXXX")"
  trap '"$T/testnet" --dir "$DIR" down >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
  echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
}

# json <python expression over d>: evaluates it on the last line of stdin parsed as JSON.
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print($1)"; }

# load_sat_and_half <transfers at saturation> <seconds at half rate>: sets FINAL_TPS, P50, P99,
# RSS_SAT, RSS_HALF from `testnet load` on every node of the testnet in DIR.
load_sat_and_half() {
  echo "== saturation: $1 transfers as fast as they go"
  local sat half_out half
  sat="$("$T/testnet" --dir "$DIR" load --rate 0 --max-txs "$1" --accounts "$(( $1 / 500 + 1 ))" --batch 500 --drain-secs 60 --json)"
  echo "$sat"
  FINAL_TPS="$(echo "$sat" | json 'round(d["final_tps"])')"
  RSS_SAT="$(echo "$sat" | json 'd["rss_mb_max"] or 0')"
  half=$(( FINAL_TPS / 2 ))
  [ "$half" -ge 1 ] || half=1
  echo "== half rate: ${half} tx/s for $2 s"
  half_out="$("$T/testnet" --dir "$DIR" load --rate "$half" --duration "$2" --accounts "$(( half * $2 / 500 + 1 ))" --drain-secs 60 --json)"
  echo "$half_out"
  P50="$(echo "$half_out" | json 'round(d["latency"]["p50_ms"])')"
  P99="$(echo "$half_out" | json 'round(d["latency"]["p99_ms"])')"
  RSS_HALF="$(echo "$half_out" | json 'd["rss_mb_max"] or 0')"
}
