#!/usr/bin/env bash
# What verified reads cost a wallet user: `wallet balance` against a local node, with the default
# verification (state proof + header + commit certificate, checked against the genesis) and with
# `--no-verify`, on the default 4-validator dev testnet.
#
#   ./scripts/bench-verify.sh
#
# Each run is a whole `wallet` process (start, one or two HTTP requests, verify, print), timed
# from outside; the two kinds alternate so that load on the machine hits both alike.
# Ends with `wallet_balance_ms verified_median=<ms> plain_median=<ms> extra_median=<ms> ...`.
# Knobs: BENCH_NO_BUILD=1 (use the release binaries as built), BENCH_RUNS (default 100).
# The one-core verify time and proof size at 1,000,000 accounts: `cargo bench --workspace --bench light`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
RUNS="${BENCH_RUNS:-100}"

bench_setup bench-verify

UP="$("$T/testnet" --dir "$DIR" up --detach --json --log-level warn)"
URL="$(echo "$UP" | json 'd["nodes"][0]["api_url"]')"
echo "== node: $URL; waiting for a final block"
for _ in $(seq 1 100); do
  H="$(curl -fsS "$URL/v1/status" | json 'd["height"]' 2>/dev/null || echo 0)"
  [ "$H" -ge 2 ] && break
  sleep 0.1
done

python3 - "$T/wallet" "$URL" "$RUNS" <<'EOF'
import json, statistics, subprocess, sys, time

wallet, url, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def run(extra):
    t = time.perf_counter()
    p = subprocess.run([wallet, "--node", url, "--json", *extra, "balance", "--dev", "0"],
                       capture_output=True, text=True)
    ms = (time.perf_counter() - t) * 1e3
    if p.returncode != 0:
        sys.exit(f"wallet {' '.join(extra)} failed ({p.returncode}): {p.stderr.strip()}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return ms, out

verified, plain = [], []
_, first = run([])
if first.get("verified") is not True:
    sys.exit(f"the default balance is not verified: {first}")
for _ in range(runs):
    ms, _ = run([]); verified.append(ms)
    ms, _ = run(["--no-verify"]); plain.append(ms)

def pct(xs, p):
    xs = sorted(xs)
    return xs[round((len(xs) - 1) * p)]

v50, p50 = statistics.median(verified), statistics.median(plain)
print(f"verified: median {v50:.1f} ms, p90 {pct(verified, 0.9):.1f} ms ({runs} runs; {first.get('verified_by')})")
print(f"--no-verify: median {p50:.1f} ms, p90 {pct(plain, 0.9):.1f} ms")
print(f"wallet_balance_ms verified_median={v50:.1f} plain_median={p50:.1f} extra_median={v50 - p50:.1f} "
      f"verified_p90={pct(verified, 0.9):.1f} plain_p90={pct(plain, 0.9):.1f}")
EOF
