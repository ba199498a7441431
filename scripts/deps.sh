#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test the project (as root, or with sudo).
set -euo pipefail
need=()
# docker.io, docker-compose, debootstrap: the Compose testnet test (scripts/compose-test.sh).
for pkg in libclang-dev clang pkg-config libssl-dev iproute2 chromium chromium-driver python3-venv \
  docker.io docker-compose debootstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

# Python tools for the API-contract and second-language-client tests, in a venv outside the checkout.
VENV="${LEDGER_VENV:-$HOME/.cache/ledger-venv}"
REQ="$(dirname "$0")/requirements-dev.txt"
if [ ! -x "$VENV/bin/python3" ] || ! cmp -s "$REQ" "$VENV/requirements-dev.txt"; then
  echo "installing Python test tools into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/requirements-dev.txt"
fi
