#!/usr/bin/env bash
# Checks a running node against its own OpenAPI document with schemathesis: every operation, every
# check (status codes, content types, answer schemas, schema-valid requests accepted, invalid ones
# refused, no server errors), from a fixed seed so a failure replays.
#
#   scripts/api-contract.sh http://127.0.0.1:8700        a node (e.g. one of `testnet up`)
#   scripts/api-contract.sh URL --max-examples 200       more examples (extra args go to schemathesis)
#   DOCUMENT=doc.json scripts/api-contract.sh URL        check the node against another document
#
# schemathesis comes from the venv scripts/deps.sh creates ($LEDGER_VENV, default
# ~/.cache/ledger-venv); the exceptions to its checks are in scripts/api-contract/schemathesis.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
url="${1:?usage: scripts/api-contract.sh NODE_URL [schemathesis args...]}"
shift
venv="${LEDGER_VENV:-$HOME/.cache/ledger-venv}"
st="$venv/bin/schemathesis"
if [ ! -x "$st" ]; then
  echo "schemathesis is not installed: run scripts/deps.sh (it creates $venv)" >&2
  exit 2
fi
# Hypothesis's examples and schemathesis's replayed failures: out of the checkout.
cache="${XDG_CACHE_HOME:-$HOME/.cache}"
export HYPOTHESIS_STORAGE_DIRECTORY="${HYPOTHESIS_STORAGE_DIRECTORY:-$cache/ledger-hypothesis}"
export LEDGER_SCHEMATHESIS_CACHE="${LEDGER_SCHEMATHESIS_CACHE:-$cache/ledger-schemathesis}"
if [ -n "${DOCUMENT:-}" ]; then
  location=("$DOCUMENT" --url "${url%/}")
else
  location=("${url%/}/v1/openapi.json")
fi
exec "$st" --config-file scripts/api-contract/schemathesis.toml run "${location[@]}" \
  --checks all --seed "${SEED:-1}" --max-examples "${MAX_EXAMPLES:-50}" --no-color "$@"
