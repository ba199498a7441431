#!/usr/bin/env bash
# Four-validator testnet benchmark on this machine (all nodes share its cores).
#
#   ./scripts/bench-testnet.sh
#
# 1. `testnet up -n 4` in a scratch folder: time from the start command to the first final block
#    (the command's own wall time, which ends when it sees that block, and the time it reports);
# 2. saturation: `testnet load --rate 0` spread over all nodes -> final transfers per second;
# 3. half of that rate for BENCH_HALF_SECS seconds -> submit-to-final p50 / p99;
# 4. sync: a fresh full node (`testnet join`) syncs the chain written by 2-3; its blocks/s and
#    transfers/s are compared with the single-node apply limit measured right after on the same
#    blocks: `ledger-node verify` replaying the joined node's store (every block, certificate,
#    signature and root, no network).
#
# Ends with `final_tps=<n> p50_ms=<n> p99_ms=<n>` after a line with the start and sync figures.
# Knobs: BENCH_NO_BUILD=1 (use the release binaries as built), BENCH_SAT_TXS (default 100000), BENCH_HALF_SECS (20), BENCH_VALIDATORS (4).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
SAT_TXS="${BENCH_SAT_TXS:-100000}"
HALF_SECS="${BENCH_HALF_SECS:-20}"
N="${BENCH_VALIDATORS:-4}"

bench_setup bench-testnet
now_ms() { date +%s%3N; }
status() { curl -fsS "$1/v1/status"; }
state() { python3 -c "import json; s=json.load(open('$DIR/state.json')); print($1)"; }

echo "== start: testnet up -n $N"
T0=$(now_ms)
UP="$("$T/testnet" --dir "$DIR" up -n "$N" --detach --json --log-level warn)"
UP_MS=$(( $(now_ms) - T0 ))
echo "$UP"
FIRST_MS="$(echo "$UP" | json 'd["time_to_first_final_ms"]')"

load_sat_and_half "$SAT_TXS" "$HALF_SECS"

echo "== sync: a fresh full node joins"
API0="$(state "'http://' + s['nodes'][0]['api_addr']")"
TARGET="$(status "$API0" | json 'd["height"]')"
TS=$(now_ms)
JOIN="$("$T/testnet" --dir "$DIR" join --no-wait --json)"
IDX="$(echo "$JOIN" | json 'd["index"]')"
APIJ="$(echo "$JOIN" | json 'd["api_url"]')"
while :; do
  H="$(status "$APIJ" 2>/dev/null | json 'd["height"]' 2>/dev/null || echo 0)"
  [ "$H" -ge "$TARGET" ] && break
  [ $(( $(now_ms) - TS )) -lt 600000 ] || { echo "the full node did not reach height $TARGET in 10 min" >&2; exit 1; }
  sleep 0.05
done
SYNC_MS=$(( $(now_ms) - TS ))
"$T/testnet" --dir "$DIR" down >/dev/null
DATAJ="$(state "s['nodes'][$IDX]['dir']")/data"
TV=$(now_ms)
VERIFY="$("$T/ledger-node" verify --data-dir "$DATAJ" --genesis "$DIR/genesis.json" --log-level warn)"
VERIFY_MS=$(( $(now_ms) - TV ))
echo "$VERIFY"
VH="$(echo "$VERIFY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])')"
VTXS="$(echo "$VERIFY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["txs"])')"
# Transfers in blocks 1..TARGET: from the joined node's own blocks (it holds them all).
read -r SYNC_BPS SYNC_TPS APPLY_BPS APPLY_TPS RATIO_B RATIO_T < <(python3 - "$TARGET" "$SYNC_MS" "$VH" "$VTXS" "$VERIFY_MS" <<'EOF'
import sys
target, sync_ms, vh, vtxs, verify_ms = (int(x) for x in sys.argv[1:])
# The chain's transfers sit in the loaded blocks; blocks after TARGET (made while syncing) are
# nearly empty, so the replayed count is the synced count to within those few transfers.
sync_bps = target / (sync_ms / 1000)
sync_tps = vtxs / (sync_ms / 1000)
apply_bps = vh / (verify_ms / 1000)
apply_tps = vtxs / (verify_ms / 1000)
print(f"{sync_bps:.0f} {sync_tps:.0f} {apply_bps:.0f} {apply_tps:.0f} {sync_bps/apply_bps:.2f} {sync_tps/apply_tps:.2f}")
EOF
)
echo "time_to_first_final_ms=${FIRST_MS} start_command_wall_ms=${UP_MS}"
echo "sync_height=${TARGET} sync_ms=${SYNC_MS} sync_blocks_per_s=${SYNC_BPS} sync_tx_per_s=${SYNC_TPS} apply_blocks_per_s=${APPLY_BPS} apply_tx_per_s=${APPLY_TPS} sync_ratio_blocks=${RATIO_B} sync_ratio_txs=${RATIO_T}"
echo "final_tps=${FINAL_TPS} p50_ms=${P50} p99_ms=${P99}"
