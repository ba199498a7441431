#!/usr/bin/env bash
# Builds the node and the testnet CLI (installing what is missing) and runs `testnet <args>`.
# With no arguments: starts a 4-validator local testnet from genesis.json in ./.testnet.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ledger-target}"
cargo build --release --locked -p node -p testnet -p wallet >&2
export LEDGER_NODE_BIN="$CARGO_TARGET_DIR/release/ledger-node"
if [ "$#" -eq 0 ]; then set -- up; fi
exec "$CARGO_TARGET_DIR/release/testnet" "$@"
