#!/usr/bin/env bash
# One-validator node benchmark: what one `ledger-node` does on this machine.
#
#   ./scripts/bench-node.sh
#
# 1. starts a one-validator testnet (`testnet up -n 1`) in a scratch folder and reads its idle memory;
# 2. HTTP reads (block by height, account) from BENCH_READ_CLIENTS concurrent clients -> reads/s,
#    on the blocks of a 5 s warm-up at 1,000 tx/s (tens of transfers per block; the saturated
#    blocks of step 3 hold up to 20,000, megabytes of JSON each, which no read rate survives);
# 3. saturation: `testnet load --rate 0` (pre-signed transfers from many accounts, batch submit)
#    -> final transfers per second;
# 4. half of that rate for BENCH_HALF_SECS seconds -> submit-to-final p50 / p99;
# 5. start-up time to serving on a store of 100,000 blocks (`cargo bench --workspace --bench startup`),
#    with the genesis's accounts and again with 1,000,000 more (start-up cost must not grow with them).
#    Writing the second store takes about 13 minutes on 2 cores (each block updates the tree of a
#    million accounts, through the node's own synced commit); BENCH_STARTUP_ACCOUNTS=0 or
#    BENCH_BLOCKS=20000 shortens it.
#
# Ends with `final_tps=<n> p50_ms=<n> p99_ms=<n> read_rps=<n> rss_mb=<n>` (rss_mb: most resident
# memory seen under load), after a line with the idle memory and the start-up time.
# Knobs: BENCH_NO_BUILD=1 (use the release binaries as built), BENCH_SAT_TXS (default 200000), BENCH_HALF_SECS (20), BENCH_READ_SECS (10),
# BENCH_READ_CLIENTS (8), BENCH_BLOCKS (100000), BENCH_STARTUP_ACCOUNTS (1000000), BENCH_SKIP_STARTUP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
SAT_TXS="${BENCH_SAT_TXS:-200000}"
HALF_SECS="${BENCH_HALF_SECS:-20}"
READ_SECS="${BENCH_READ_SECS:-10}"
READ_CLIENTS="${BENCH_READ_CLIENTS:-8}"

bench_setup bench-node

UP="$("$T/testnet" --dir "$DIR" up -n 1 --detach --json --log-level warn)"
echo "$UP"
sleep 3
PID="$(echo "$UP" | json 'd["nodes"][0]["pid"]')"
IDLE_RSS=$(( $(awk '/VmRSS/ {print $2}' "/proc/$PID/status") / 1024 ))
echo "== idle: ${IDLE_RSS} MB resident"

echo "== warm-up: 1000 tx/s for 5 s, so the reads find blocks of a busy but not saturated chain"
"$T/testnet" --dir "$DIR" load --rate 1000 --duration 5 --json >/dev/null
echo "== reads: ${READ_CLIENTS} clients for ${READ_SECS} s"
READS="$("$T/testnet" --dir "$DIR" load --mode reads --duration "$READ_SECS" --concurrency "$READ_CLIENTS" --json)"
echo "$READS"
READ_RPS="$(echo "$READS" | json 'round(d["read_rps"])')"
RSS_READ="$(echo "$READS" | json 'd["rss_mb_max"] or 0')"
load_sat_and_half "$SAT_TXS" "$HALF_SECS"

"$T/testnet" --dir "$DIR" down >/dev/null

STARTUP="skipped"
if [ "${BENCH_SKIP_STARTUP:-0}" != 1 ]; then
  STARTUP=""
  for accounts in 0 "${BENCH_STARTUP_ACCOUNTS:-1000000}"; do
    echo "== start-up on a store of ${BENCH_BLOCKS:-100000} blocks and ${accounts} more accounts"
    BENCH_ACCOUNTS="$accounts" cargo bench --workspace --locked --bench startup > "$DIR/startup.log" 2>&1 || { cat "$DIR/startup.log"; exit 1; }
    cat "$DIR/startup.log"
    STARTUP_OUT="$(tail -n 1 "$DIR/startup.log")"
    STARTUP="${STARTUP}$(echo "$STARTUP_OUT" | sed -n 's/.*startup_ms_median=\([0-9]*\).*/\1/p') ms with ${accounts} more accounts (median; ${STARTUP_OUT}); "
  done
fi

RSS_MAX=$(printf '%s\n' "$RSS_SAT" "$RSS_HALF" "$RSS_READ" | sort -n | tail -n 1)
echo "idle_rss_mb=${IDLE_RSS} startup=${STARTUP}"
echo "final_tps=${FINAL_TPS} p50_ms=${P50} p99_ms=${P99} read_rps=${READ_RPS} rss_mb=${RSS_MAX}"
