#!/usr/bin/env bash
# The one build of the project. test.sh, testnet.sh and the bench scripts all run exactly this
# command, so cargo resolves one feature set and RocksDB's C++ compiles once for all of them:
# a narrower command (`cargo build -p node`) resolves dependencies without the dev-dependencies'
# features (they add features to `syn`, which rebuilds `bindgen` and with it `librocksdb-sys`).
#
#   scripts/build.sh                  build everything (release, every target of the workspace)
#   scripts/build.sh --expect-fresh   the same, failing if cargo had to compile anything: CI runs it
#                                     after the tests to prove the testnet command starts at once
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ledger-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
BUILD=(cargo build --release --workspace --all-targets --locked)
# The bench scripts' `cargo bench --workspace --bench <name>` reuses this build (same features).
BENCH=(cargo bench --workspace --no-run --locked)

if [ "${1:-}" != "--expect-fresh" ]; then
  exec "${BUILD[@]}"
fi

# Every artifact cargo reports must be "fresh" (already built with the same fingerprint).
check() {
  python3 -c '
import json, sys
label = sys.argv[1]
seen, rebuilt, rocksdb = 0, [], False
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact":
        seen += 1
        rocksdb = rocksdb or m["target"]["name"] == "librocksdb_sys"
        if not m.get("fresh"):
            rebuilt.append(m["target"]["name"] + " (" + m["package_id"] + ")")
if seen == 0:
    sys.exit(label + ": cargo reported no artifacts")
if not rocksdb:
    sys.exit(label + ": librocksdb-sys is not part of this build")
if rebuilt:
    sys.exit(label + ": compiled again instead of reusing the build:\n  " + "\n  ".join(rebuilt))
print(label + ": all " + str(seen) + " artifacts fresh (librocksdb-sys included)")
' "$1"
}
"${BUILD[@]}" --message-format=json-render-diagnostics | check "the build of test.sh and testnet.sh"
"${BENCH[@]}" --message-format=json-render-diagnostics | check "the build of the bench scripts"
