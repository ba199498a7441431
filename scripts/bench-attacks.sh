#!/usr/bin/env bash
# Hostile peers against a four-validator testnet under honest load (every process shares this
# machine's cores).
#
#   ./scripts/bench-attacks.sh
#
# Every scenario runs on a fresh four-validator testnet (`testnet up -n 4` in a scratch folder,
# then `down`), so that an attack that leaves the chain stalled does not spoil the next one. The
# honest traffic is `testnet load --rate BENCH_RATE --duration BENCH_SECS`: a baseline without
# attacker first, then `ledger-rogue --attack <kind>` for each kind, with every node as its
# bootnode (so it attacks all four at once). The attacker starts when the load has funded its
# accounts and starts submitting, and is stopped (SIGTERM: it prints its report) when the load has
# drained; then the script waits up to BENCH_RECOVERY_SECS for two more blocks. Figures per
# scenario, from the nodes' /metrics (differences from the start of the submissions to the end of
# that wait) and /proc:
#
#   block_interval_ms    mean of ledger_block_interval_seconds on node 0 (the chain's pace)
#   rounds_per_height    mean of ledger_consensus_rounds_per_height over all nodes (1 = first round)
#   p50_ms, p99_ms       submit-to-final latency of the honest transfers (`testnet load`)
#   final_tps            honest transfers final per second
#   cpu_pct              CPU time of the four ledger-node processes over the scenario's wall time,
#                        in % of one core, summed (per node in the JSON)
#   rss_mb               largest resident memory of a node, sampled every second
#   sig_checks_per_msg   signature-check calls of all nodes (ledger_signature_verify_seconds_count)
#                        per distinct message that entered the network: client submissions (API
#                        answers 200), gossip messages the nodes published, and the attacker's
#                        distinct gossip payloads (none for replay: it re-sends honest messages).
#                        A gossip message is checked once by each other node, so without repeats
#                        this stays at or below 3 on four nodes.
#   rejected             gossip messages rejected by validation, all nodes
#   sent, disconnect_after   the attacker's messages (or requests, or chunks served) and after how
#                        many of them the first node disconnected it (`never`)
#   recovery_s           seconds from stopping the attacker to two more blocks (`never` within
#                        BENCH_RECOVERY_SECS)
#
# Prints one line per scenario, and writes every figure (with the attacker's own report) to
# BENCH_OUT as one JSON array.
# Knobs: BENCH_NO_BUILD=1 (use the release binaries as built), BENCH_SECS (20), BENCH_RATE (1000),
# BENCH_ATTACKS (space-separated kinds; default all), BENCH_RECOVERY_SECS (20), BENCH_OUT
# (default /tmp/bench-attacks.json), and the attacker's rate per kind: BENCH_ROGUE_RATE_<KIND>
# (e.g. BENCH_ROGUE_RATE_UNFUNDED_FLOOD=5). A scenario whose chain stalls takes about a minute
# more than a healthy one (the load's drain and the recovery wait), so the whole run stays under
# ten minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
SECS="${BENCH_SECS:-20}"
RATE="${BENCH_RATE:-1000}"
ATTACKS="${BENCH_ATTACKS:-replay unfunded-flood bad-signatures garbage oversized sync-flood forged-chunks}"
RECOVERY_SECS="${BENCH_RECOVERY_SECS:-20}"
OUT="${BENCH_OUT:-${TMPDIR:-/tmp}/bench-attacks.json}"
HELPER="scripts/bench-attacks.py"

# Messages per second for each attack: enough to hurt on a 2-core machine without the attacker
# starving everyone of CPU by itself. unfunded-flood sends 2,000 signatures per message;
# oversized 10 MiB per frame.
rogue_rate() {
  local var="BENCH_ROGUE_RATE_$(echo "$1" | tr 'a-z-' 'A-Z_')"
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  case "$1" in
    replay) echo 1000 ;;
    unfunded-flood) echo 5 ;;
    bad-signatures|garbage) echo 500 ;;
    oversized) echo 2 ;;
    sync-flood) echo 200 ;;
    *) echo 1 ;;
  esac
}

bench_setup bench-attacks
# The binaries of this build, copied: the target folder is shared, and another build replacing
# them half-way would mix two versions in one run. `testnet` starts the `ledger-node` beside it.
mkdir "$DIR/bin"
cp "$T/ledger-node" "$T/testnet" "$T/ledger-rogue" "$DIR/bin/"
T="$DIR/bin"
NET=""
ROGUE_PID=""
SAMPLER_PID=""
LOAD_PID=""
stop_children() {
  local p
  for p in "$ROGUE_PID" "$SAMPLER_PID" "$LOAD_PID"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  if [ -n "$NET" ]; then "$T/testnet" --dir "$NET" down >/dev/null 2>&1 || true; fi
}
trap 'stop_children; rm -rf "$DIR"' EXIT
RESULTS="$DIR/results.jsonl"
: >"$RESULTS"

api0() { python3 -c "import json; print(json.load(open('$NET/state.json'))['nodes'][0]['api_addr'])"; }
height0() { curl -fsS --max-time 2 "http://$(api0)/v1/status" 2>/dev/null | json 'd["height"]' 2>/dev/null || echo 0; }

# wait_for_line <file> <text> <seconds>: until the file holds the text (0) or time is up (1).
wait_for_line() {
  local i
  for i in $(seq 1 $(( $3 * 10 ))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# scenario <name> [attack]
scenario() {
  local name="$1" attack="${2:-}" s="$DIR/$1" rogue_json="-" recovery="never"
  NET="$DIR/net-$name"
  "$T/testnet" --dir "$NET" up -n 4 --node-bin "$T/ledger-node" --detach --json --log-level warn >"$s.up.json" 2>"$s.up.err"
  local bootnodes=()
  while read -r port; do bootnodes+=(--bootnode "/ip4/127.0.0.1/tcp/$port"); done < <(
    python3 -c "import json; [print(n['p2p_port']) for n in json.load(open('$NET/state.json'))['nodes']]")

  # Funding and pre-signing stay outside the measurement: it starts with the submissions.
  "$T/testnet" --dir "$NET" load --rate "$RATE" --duration "$SECS" --drain-secs 10 --json \
    >"$s.load.json" 2>"$s.load.err" &
  LOAD_PID=$!
  wait_for_line "$s.load.err" "pre-signed" 90 || echo "   (the load did not start: $(tail -n 1 "$s.load.err"))"
  rm -f "$s.stop"
  python3 "$HELPER" rss "$NET/state.json" "$s.rss.json" "$s.stop" &
  SAMPLER_PID=$!
  python3 "$HELPER" snapshot "$NET/state.json" "$s.before.json"
  if [ -n "$attack" ]; then
    "$T/ledger-rogue" "${bootnodes[@]}" --genesis "$NET/genesis.json" --attack "$attack" \
      --rate "$(rogue_rate "$attack")" --duration 600 --json >"$s.rogue.json" 2>"$s.rogue.err" &
    ROGUE_PID=$!
    rogue_json="$s.rogue.json"
  fi
  # Bounded: submissions, then at most the drain; a stalled chain must not hold the run.
  local i
  for i in $(seq 1 $(( (SECS + 40) * 10 ))); do kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.1; done
  kill "$LOAD_PID" 2>/dev/null && echo "   (the load did not finish in $(( SECS + 40 )) s: stopped)"
  wait "$LOAD_PID" 2>/dev/null || echo "   (load failed: $(tail -n 1 "$s.load.err"))"
  LOAD_PID=""
  if [ -n "$attack" ]; then
    kill -TERM "$ROGUE_PID" 2>/dev/null || true
    # It prints its report within a second or so of SIGTERM; then it is killed for good.
    for i in $(seq 1 200); do kill -0 "$ROGUE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ROGUE_PID" 2>/dev/null || true
    wait "$ROGUE_PID" 2>/dev/null || echo "   (ledger-rogue failed: $(tail -n 1 "$s.rogue.err"))"
    ROGUE_PID=""
  fi
  local h0 t0 h now
  h0="$(height0)"
  t0="$(date +%s%3N)"
  # Bounded by the clock, not by a count: a status request to a struggling node is slow.
  while now="$(date +%s%3N)"; [ "$now" -lt $(( t0 + RECOVERY_SECS * 1000 )) ]; do
    h="$(height0)"
    if [ "$h" -ge $(( h0 + 2 )) ]; then
      recovery="$(python3 -c "print(round(($(date +%s%3N) - $t0) / 1000, 1))")"
      break
    fi
    sleep 0.05
  done
  python3 "$HELPER" snapshot "$NET/state.json" "$s.after.json"
  touch "$s.stop"
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=""
  python3 "$HELPER" scenario "$name" "$s.before.json" "$s.after.json" "$s.rss.json" \
    "$s.load.json" "$rogue_json" "$recovery" "$RESULTS"
  "$T/testnet" --dir "$NET" down >/dev/null 2>&1 || true
  NET=""
}

echo "== ${SECS} s per scenario, ${RATE} honest transfers/s, a fresh 4-validator testnet each"
scenario baseline
for a in $ATTACKS; do
  scenario "$a" "$a"
done
python3 -c "import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))" \
  "$RESULTS" >"$OUT"
echo "== written to $OUT"
