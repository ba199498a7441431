#!/usr/bin/env bash
# The Compose testnet in Docker, end to end, on a machine with no image registry:
#
#   1. a private dockerd (vfs storage, no iptables, no bridge: it changes nothing in the machine's
#      firewall or links), stopped at the end;
#   2. the base image made from Debian packages (debootstrap + docker import), cached;
#   3. the repository's Dockerfile built with `--target prebuilt` (the binaries built on this host,
#      which runs the same Debian);
#   4. `testnet init --compose` (run from the image, as the README shows) for 4 validators on
#      loopback ports (every container on the host's network), `docker-compose up`; transfers
#      final on every node;
#   5. one container killed: the chain goes on; the container started again: it catches up;
#   6. `testnet chaos --manifest` (kills and restarts through docker-compose) keeps every invariant;
#   7. everything torn down.
#
# Prints one JSON line of figures at the end. Exits 77 (skipped) when Docker cannot run here.
# Env: TESTNET_BIN, LEDGER_NODE_BIN (default: next to each other in ~/.cache/ledger-target/release),
# LEDGER_DOCKER_CACHE (default ~/.cache/ledger-docker: the base image's root filesystem, and the
# daemon's data, kept between runs).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$HOME/.cache/ledger-target}/release"
TESTNET_BIN="${TESTNET_BIN:-$TARGET/testnet}"
LEDGER_NODE_BIN="${LEDGER_NODE_BIN:-$TARGET/ledger-node}"
WALLET_BIN="$(dirname "$TESTNET_BIN")/wallet"
CACHE="${LEDGER_DOCKER_CACHE:-$HOME/.cache/ledger-docker}"
BASE_IMAGE=ledger-debian:bookworm
IMAGE=ledger:compose-test
P2P_PORT=39333
API_PORT=38700

skip() { echo "$*" >&2; exit 77; }
log() { echo "== $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" -eq 0 ] || skip "needs root to run dockerd"
command -v dockerd >/dev/null || skip "dockerd is not installed (Debian: docker.io)"
command -v docker-compose >/dev/null || skip "docker-compose is not installed (Debian: docker-compose)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed"
for b in "$TESTNET_BIN" "$LEDGER_NODE_BIN" "$WALLET_BIN"; do
  [ -x "$b" ] || { echo "missing $b: build the workspace first" >&2; exit 1; }
done

mkdir -p "$CACHE"
# One run at a time: the daemon's data root is shared between runs.
exec 9>"$CACHE/lock"
flock -w 1800 9 || { echo "another compose test holds $CACHE/lock" >&2; exit 1; }
WORK="$(mktemp -d /tmp/ledger-compose.XXXXXX)"
SOCK="$WORK/docker.sock"
export DOCKER_HOST="unix://$SOCK"
# The classic builder: it needs no buildx plugin, and stops at --target.
export DOCKER_BUILDKIT=0
export COMPOSE_DOCKER_CLI_BUILD=0
mkdir -p "$CACHE/data-root"
DOCKERD_PID=""
BUNDLE="$WORK/bundle"

cleanup() {
  local rc=$?
  if [ -f "$BUNDLE/compose.yaml" ]; then
    (cd "$BUNDLE" && timeout 120 docker-compose down -v --timeout 5 >/dev/null 2>&1) || true
  fi
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
  fi
  # dockerd leaves its network namespace mount behind when it is stopped.
  awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    echo "compose test failed; dockerd log:" >&2
    tail -20 "$WORK/dockerd.log" >&2 || true
    echo "work folder kept: $WORK" >&2
  else
    rm -rf "$WORK" || true
  fi
  exit "$rc"
}
trap cleanup EXIT

log "starting a private dockerd"
dockerd --storage-driver=vfs --iptables=false --ip-masq=false --bridge=none \
  --data-root "$CACHE/data-root" --exec-root "$WORK/exec" --pidfile "$WORK/docker.pid" \
  -H "unix://$SOCK" >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 150); do
  docker version >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || skip "dockerd cannot run here: $(tail -3 "$WORK/dockerd.log")"
  sleep 0.2
done
docker version >/dev/null 2>&1 || skip "dockerd did not answer within 30 s"

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  ROOTFS_TAR="$CACHE/bookworm-minbase.tar"
  if [ ! -s "$ROOTFS_TAR" ]; then
    log "debootstrap bookworm (minbase)"
    ROOTFS="$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
      || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    tar -C "$ROOTFS" -cf "$ROOTFS_TAR.partial" . && mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
    rm -rf "$ROOTFS"
  fi
  log "docker import $BASE_IMAGE"
  docker import "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
fi

log "docker build --target prebuilt"
CTX="$WORK/context"
mkdir -p "$CTX/.docker-bins"
# Stripped, as the image's own build stage strips them (the release profile keeps debug info).
strip -o "$CTX/.docker-bins/ledger-node" "$LEDGER_NODE_BIN"
strip -o "$CTX/.docker-bins/testnet" "$TESTNET_BIN"
strip -o "$CTX/.docker-bins/wallet" "$WALLET_BIN"
BUILD_START=$(now)
docker build --network host --target prebuilt --build-arg "RUNTIME_IMAGE=$BASE_IMAGE" \
  -f "$REPO/Dockerfile" -t "$IMAGE" "$CTX" >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; exit 1; }
BUILD_S=$(since "$BUILD_START")
IMAGE_MB=$(docker image inspect "$IMAGE" --format '{{.Size}}' | awk '{ printf "%.0f", $1 / 1e6 }')
# The image runs as a non-root user.
[ "$(docker image inspect "$IMAGE" --format '{{.Config.User}}')" = "10001:10001" ] \
  || { echo "the image does not run as 10001:10001" >&2; exit 1; }

log "testnet init --compose, run from the image as the README shows"
docker run --rm --network none -u "$(id -u):$(id -g)" -v "$WORK:/w" -w /w --entrypoint testnet "$IMAGE" \
  init -n 4 --compose --out bundle --p2p-port "$P2P_PORT" --api-port "$API_PORT" >&2
export LEDGER_IMAGE="$IMAGE"

status() { "$TESTNET_BIN" status --manifest "$BUNDLE" --json 2>/dev/null | tail -1; }
# Waits up to $3 s until $2 (a Python expression over the status JSON `s`) holds.
wait_for() {
  local what="$1" cond="$2" limit="$3" start
  start=$(now)
  while :; do
    if status | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($cond) else 1)" 2>/dev/null; then
      return 0
    fi
    if awk -v a="$start" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      echo "timed out after ${limit} s waiting for: $what; last status: $(status)" >&2
      (cd "$BUNDLE" && docker-compose logs --tail 15) >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

log "docker-compose up"
UP_START=$(now)
(cd "$BUNDLE" && docker-compose up -d >&2)
wait_for "a first final block on every node" \
  "all((n.get('height') or 0) >= 1 for n in s['nodes'])" 120
FIRST_FINAL_S=$(since "$UP_START")
for _ in $(seq 1 100); do
  unhealthy=$(docker ps --format '{{.Names}} {{.Status}}' | grep -vc '(healthy)' || true)
  [ "$unhealthy" -eq 0 ] && break
  sleep 0.3
done
[ "$unhealthy" -eq 0 ] || { docker ps >&2; echo "containers not healthy" >&2; exit 1; }

log "transfers through every node"
LOAD=$("$TESTNET_BIN" load --manifest "$BUNDLE" --rate 50 --duration 5 --json | tail -1)
python3 -c "import json,sys; r=json.loads(sys.argv[1]); assert r['accepted'] >= 100 and r['final'] == r['accepted'], r" "$LOAD"
wait_for "every node agreeing" "s['agree'] is True" 30

log "docker-compose kill node-3"
(cd "$BUNDLE" && docker-compose kill node-3 >&2)
AT_KILL=$(status | python3 -c "import json,sys; s=json.load(sys.stdin); print(max(n.get('height') or 0 for n in s['nodes'][:3]))")
wait_for "the three others going 10 blocks past the kill" \
  "all((n.get('height') or 0) >= $AT_KILL + 10 for n in s['nodes'][:3]) and s['nodes'][3].get('height') is None" 60
AFTER_KILL=$(status)

log "docker-compose start node-3"
(cd "$BUNDLE" && docker-compose start node-3 >&2)
wait_for "node-3 caught up and every node agreeing" \
  "s['agree'] is True and all(n.get('lag') == 0 or (n.get('lag') or 99) <= 2 for n in s['nodes'])" 90
FINAL=$(status)

log "testnet chaos --manifest: kills and restarts through docker-compose, then the invariants"
CHAOS=$("$TESTNET_BIN" chaos --manifest "$BUNDLE" --seed 7 --duration 20 --kinds kill,restart-all \
  --kill-cmd "cd '$BUNDLE' && docker-compose kill {name}" \
  --start-cmd "cd '$BUNDLE' && docker-compose start {name}" --json | tail -1) \
  || { echo "chaos --manifest failed: $CHAOS" >&2; exit 1; }
CHAOS_SUMMARY=$(python3 -c "
import json, sys
r = json.loads(sys.argv[1])
assert r['violations'] == 0 and r['nemesis_errors'] == 0, r
assert r['faults'].get('kill', 0) + r['faults'].get('restart_all', 0) > 0, r
print(json.dumps({k: r.get(k) for k in ('seed', 'episodes', 'faults', 'transfers_final', 'violations', 'nemesis_errors')}))" "$CHAOS")

python3 - "$IMAGE_MB" "$BUILD_S" "$FIRST_FINAL_S" "$AT_KILL" "$AFTER_KILL" "$FINAL" "$CHAOS_SUMMARY" <<'EOF'
import json, sys
after, final = json.loads(sys.argv[5]), json.loads(sys.argv[6])
print(json.dumps({
    "image_mb": int(sys.argv[1]),
    "image_build_prebuilt_s": float(sys.argv[2]),
    "up_to_first_final_s": float(sys.argv[3]),
    "height_at_kill": int(sys.argv[4]),
    "heights_after_kill": [n.get("height") for n in after["nodes"]],
    "agree_after_kill": after["agree"],
    "heights_after_restart": [n.get("height") for n in final["nodes"]],
    "agree_after_restart": final["agree"],
    "chaos": json.loads(sys.argv[7]),
}))
EOF
