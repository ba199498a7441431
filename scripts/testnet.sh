#!/usr/bin/env bash
# Builds (installing what is missing) and runs `testnet <args>`. With no arguments: starts a
# 4-validator local testnet from genesis.json in ./.testnet. The build is scripts/build.sh, the same
# as test.sh's: after either script the other starts without compiling anything.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ledger-target}"
./scripts/build.sh >&2
export LEDGER_NODE_BIN="$CARGO_TARGET_DIR/release/ledger-node"
if [ "$#" -eq 0 ]; then set -- up; fi
exec "$CARGO_TARGET_DIR/release/testnet" "$@"
