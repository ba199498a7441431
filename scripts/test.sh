#!/usr/bin/env bash
# The project's test command: installs what a fresh Debian machine lacks, then runs every test of the
# workspace in the release profile (one profile, so RocksDB's C++ build happens once for tests,
# benchmarks and the testnet).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: libclang for the rocksdb crate's bindgen; chromium for the explorer's browser test.
need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
dpkg -s clang >/dev/null 2>&1 || need+=(clang)
dpkg -s iproute2 >/dev/null 2>&1 || need+=(iproute2)
dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s chromium-driver >/dev/null 2>&1 || need+=(chromium-driver)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

# Cargo's target directory lives outside the checkout so later runs reuse the RocksDB build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ledger-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

cargo build --release --workspace --all-targets --locked
cargo nextest run --release --workspace --locked --no-fail-fast "$@"
# Doc tests are not run by nextest.
cargo test --release --workspace --doc --locked
