#!/usr/bin/env bash
# Where the four validators' CPU goes at saturation: a `perf` profile of every node process.
#
#   ./scripts/profile-testnet.sh [label]
#
# Starts a 4-validator testnet in a scratch folder, loads it as `bench-testnet.sh` does at
# saturation (`testnet load --rate 0`, batches of 500, 150,000 transfers over 10 s), samples all
# four nodes with `perf record --call-graph dwarf` at 199 Hz for 5 s from the 3rd second, and
# prints the share of samples per part of the node: each sample goes to the first category whose
# code is on its stack, in the order printed (signature checks first, so a check called from the
# mempool counts as a signature check). Leaves /tmp/profile-testnet-<label>.perf for `perf report`.
# Needs `perf` (Debian: linux-perf) and the release binaries (BENCH_NO_BUILD=1 skips the build).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
LABEL="${1:-now}"
OUT="/tmp/profile-testnet-$LABEL.perf"
command -v perf >/dev/null || { echo "perf is not installed (apt install linux-perf)" >&2; exit 1; }
bench_setup profile-testnet
"$T/testnet" --dir "$DIR" up -n 4 --detach --json --log-level warn >/dev/null
PIDS="$(python3 -c "import json; s=json.load(open('$DIR/state.json')); print(','.join(str(n['pid']) for n in s['nodes']))")"
( sleep 3; perf record -q -F 199 --call-graph dwarf,8192 -p "$PIDS" -o "$OUT" -- sleep 5 >/dev/null 2>&1 ) &
"$T/testnet" --dir "$DIR" load --rate 0 --max-txs 150000 --accounts 301 --batch 500 --drain-secs 60 --json | tail -n 1 | json '"final_tps=%.0f" % d["final_tps"]'
wait
perf script -i "$OUT" 2>/dev/null | python3 -c '
import re, sys, collections
cats = [
    ("signature checks", ("ed25519_zebra", "crypto::batch_verifies", "crypto::decoded_key", "verify_raw", "curve25519_dalek")),
    ("state tree (jmt)", ("jmt::",)),
    ("RocksDB", ("rocksdb",)),
    ("mempool", ("node::mempool",)),
    ("consensus", ("node::consensus", "ledger_core::engine")),
    ("JSON", ("serde_json",)),
    ("HTTP", ("hyper", "axum")),
    ("gossip (libp2p)", ("libp2p",)),
    ("encoding (borsh)", ("borsh",)),
    ("hashing (SHA-256)", ("sha256",)),
    ("async runtime (tokio, not above)", ("tokio::",)),
    ("thread pool (rayon, not above)", ("rayon",)),
]
counts = collections.Counter()
total = 0
for sample in sys.stdin.read().split("\n\n"):
    lines = sample.strip().split("\n")
    if len(lines) < 2:
        continue
    total += 1
    stack = " ".join(lines[1:])
    name = next((n for n, pats in cats if any(p in stack for p in pats)), "other (kernel, allocator, copies)")
    counts[name] += 1
print(f"{total} samples over 4 nodes")
for name, n in counts.most_common():
    print(f"{100 * n / total:5.1f}%  {name}")
'
