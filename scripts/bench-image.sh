#!/usr/bin/env bash
# Times the image build of the repository's Dockerfile (the `runtime` target, everything compiled
# in Docker): cold (no cache), then warm after a change to the project's code (the cargo-chef
# dependency layer must be reused: RocksDB is not compiled again). Prints one JSON line.
#
# This machine has no image registry, so the Rust image is made here: the Debian base image of
# scripts/compose-test.sh (debootstrap + docker import) plus this machine's Rust toolchain and the
# C toolchain from Debian's packages. Uses a private dockerd like scripts/compose-test.sh.
# Takes 20 to 40 minutes on 2 cores (the cold build compiles RocksDB's C++).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LEDGER_DOCKER_CACHE:-$HOME/.cache/ledger-docker}"
BASE_IMAGE=ledger-debian:bookworm
RUST_IMAGE=ledger-rust:local
TOOLCHAIN="$(rustc --print sysroot)"

[ "$(id -u)" -eq 0 ] || { echo "needs root to run dockerd" >&2; exit 1; }
[ -s "$CACHE/bookworm-minbase.tar" ] || { echo "run scripts/compose-test.sh first (it makes the base image)" >&2; exit 1; }

exec 9>"$CACHE/lock"
flock -w 3600 9 || { echo "another run holds $CACHE/lock" >&2; exit 1; }
WORK="$(mktemp -d /tmp/ledger-image.XXXXXX)"
SOCK="$WORK/docker.sock"
export DOCKER_HOST="unix://$SOCK" DOCKER_BUILDKIT=0
DOCKERD_PID=""
cleanup() {
  local rc=$?
  [ -n "$DOCKERD_PID" ] && { kill "$DOCKERD_PID" 2>/dev/null || true; wait "$DOCKERD_PID" 2>/dev/null || true; }
  awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf "$WORK" || true
  exit "$rc"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

dockerd --storage-driver=vfs --iptables=false --ip-masq=false --bridge=none \
  --data-root "$CACHE/data-root" --exec-root "$WORK/exec" --pidfile "$WORK/docker.pid" \
  -H "unix://$SOCK" >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 150); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || docker import "$CACHE/bookworm-minbase.tar" "$BASE_IMAGE" >/dev/null

if ! docker image inspect "$RUST_IMAGE" >/dev/null 2>&1; then
  echo "== making $RUST_IMAGE from $TOOLCHAIN" >&2
  mkdir -p "$WORK/rust"
  cp -a "$TOOLCHAIN" "$WORK/rust/toolchain"
  cat >"$WORK/rust/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ libc6-dev make ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:\$PATH CARGO_HOME=/usr/local/cargo
EOF
  docker build --network host -t "$RUST_IMAGE" "$WORK/rust" >"$WORK/rust.log" 2>&1 || { tail -20 "$WORK/rust.log" >&2; exit 1; }
fi

# This machine's HTTPS goes through a proxy with a CA of its own: the build's `cargo install` and
# crate downloads trust what the host trusts.
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$WORK/ca"
  cp /etc/ssl/certs/ca-certificates.crt "$WORK/ca/host-ca-bundle.crt"
  printf 'FROM %s\nCOPY host-ca-bundle.crt /etc/ssl/host-ca-bundle.crt\nENV CARGO_HTTP_CAINFO=/etc/ssl/host-ca-bundle.crt SSL_CERT_FILE=/etc/ssl/host-ca-bundle.crt\n' \
    "$RUST_IMAGE" >"$WORK/ca/Dockerfile"
  docker build -t "$RUST_IMAGE-ca" "$WORK/ca" >"$WORK/ca.log" 2>&1 || { tail -20 "$WORK/ca.log" >&2; exit 1; }
  RUST_IMAGE="$RUST_IMAGE-ca"
fi

# A clean copy of the committed tree: what a user builds.
SRC="$WORK/src"
git -C "$REPO" archive --format=tar HEAD | (mkdir -p "$SRC" && tar -C "$SRC" -xf -)
# The classic builder builds every stage before the target, `prebuilt` among them.
mkdir -p "$SRC/.docker-bins" && touch "$SRC/.docker-bins/"{ledger-node,testnet,wallet}
build() {
  local log="$1"; shift
  docker build "$@" --network host --build-arg "RUST_IMAGE=$RUST_IMAGE" --build-arg "RUNTIME_IMAGE=$BASE_IMAGE" \
    -t ledger:bench "$SRC" >"$log" 2>&1 || { tail -30 "$log" >&2; exit 1; }
}
# Cold: no layer of this Dockerfile cached (--no-cache); the base and Rust images are inputs,
# like pulled ones.
echo "== cold build" >&2
T=$(now); build "$WORK/cold.log" --no-cache; COLD_S=$(since "$T")
grep -q "Compiling librocksdb-sys" "$WORK/cold.log" || { echo "the cold build did not compile RocksDB: not cold" >&2; exit 1; }
echo "== warm build after a change to the node's code" >&2
echo "// bench-image: a code change" >>"$SRC/node/src/lib.rs"
T=$(now); build "$WORK/warm.log"; WARM_S=$(since "$T")
ROCKSDB_AGAIN=$(grep -c "Compiling librocksdb-sys" "$WORK/warm.log" || true)
NODE_AGAIN=$(grep -c "Compiling node " "$WORK/warm.log" || true)
SIZE_MB=$(docker image inspect ledger:bench --format '{{.Size}}' | awk '{ printf "%.0f", $1 / 1e6 }')
echo "{\"cold_build_s\": $COLD_S, \"warm_build_s\": $WARM_S, \"image_mb\": $SIZE_MB, \"warm_compiled_rocksdb\": $ROCKSDB_AGAIN, \"warm_compiled_node\": $NODE_AGAIN}"
