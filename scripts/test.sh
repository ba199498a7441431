#!/usr/bin/env bash
# The project's test command: installs what a fresh Debian machine lacks, then runs every test of the
# workspace in the release profile. It builds with scripts/build.sh, the one build testnet.sh and the
# bench scripts run too, so RocksDB's C++ compiles once for tests, benchmarks and the testnet.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh

# Cargo's target directory lives outside the checkout so later runs reuse the RocksDB build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ledger-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

./scripts/build.sh
cargo nextest run --release --workspace --locked --no-fail-fast "$@"
# Doc tests are not run by nextest.
cargo test --release --workspace --doc --locked
