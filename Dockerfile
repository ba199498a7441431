# The ledger image: `ledger-node`, `testnet` and `wallet` on a slim Debian, run as a non-root user
# with the node's data on a volume.
#
#   docker build -t ledger .
#
# The dependencies (RocksDB's C++ among them, 10 to 25 minutes on 2 cores) are compiled in a layer
# of their own, keyed by the manifests and Cargo.lock only (cargo-chef): a change to the project's
# code rebuilds the project's crates, not RocksDB.
#
# `--target prebuilt` skips the compile and takes the binaries from `.docker-bins/` in the build
# context instead (the repository's tests build them on the host, which runs the same Debian).
# It comes before the compile stages so that even the classic builder, which builds every stage
# before the target, never needs the Rust image for it.

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUNTIME_IMAGE} AS base
# curl: the health check. tini: signals reach the node, zombies are reaped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ledger \
 && useradd --system --uid 10001 --gid ledger --home-dir /var/lib/ledger --no-create-home ledger \
 && mkdir -p /var/lib/ledger /etc/ledger \
 && chown ledger:ledger /var/lib/ledger
# The database goes to the volume whatever the config file says (flags and the environment win
# over the file). Mount the node's folder from `testnet init` at /etc/ledger.
ENV LEDGER_DATA_DIR=/var/lib/ledger \
    LEDGER_HEALTH_URL=http://127.0.0.1:8700/v1/status \
    NO_COLOR=1
VOLUME ["/var/lib/ledger"]
EXPOSE 8700 30333
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS "$LEDGER_HEALTH_URL" > /dev/null || exit 1
USER 10001:10001
WORKDIR /var/lib/ledger
ENTRYPOINT ["/usr/bin/tini", "--", "ledger-node"]
CMD ["run", "--config", "/etc/ledger/config.json"]

FROM base AS prebuilt
COPY .docker-bins/ledger-node .docker-bins/testnet .docker-bins/wallet /usr/local/bin/

FROM ${RUST_IMAGE} AS chef
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --workspace --bins \
 && mkdir -p /out \
 && for b in ledger-node testnet wallet; do strip -o "/out/$b" "target/release/$b"; done

FROM base AS runtime
COPY --from=build /out/ledger-node /out/testnet /out/wallet /usr/local/bin/
