//! # node
//!
//! The ledger node: all the I/O around the pure `ledger-core`. One owner task per kind of state;
//! everyone else holds a cloneable handle (a bounded channel) and gets answers on a oneshot. The only
//! shared things are read-mostly (the `Arc<Store>`) and metric atomics.
//!
//! - [`config`]: file + env + flags, validated with errors that name the field.
//! - [`store`]: RocksDB, one column family per table, one synced `WriteBatch` per block.
//! - [`mempool`]: admission rules, caps, eviction, replacement, expiry; owner thread + handle.
//! - [`consensus`]: the driver that runs ledger-core's Tendermint machine and executes its outputs
//!   (WAL before broadcast, timers, block building and validation, commit).
//! - [`api`]: axum HTTP API under `/v1`, OpenAPI, SSE events, Prometheus metrics; it also serves
//!   the [`explorer`] page at `/`.
//! - [`net_types`]: the channel messages between the driver and [`network`] (libp2p gossip + sync).
//! - [`verify`]: offline replay of the stored chain (`ledger-node verify`).
//! - [`node`]: wiring: open the store, restore the chain, start the tasks, serve, shut down.
//! - [`cli`]: the `ledger-node` subcommands.
//! - [`rogue`]: a hostile peer's payloads, for the `ledger-rogue` harness and the bad-peer tests.

pub mod api;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod events;
pub mod explorer;
pub mod keyfile;
pub mod mempool;
pub mod metrics;
pub mod net_types;
pub mod network;
pub mod node;
pub mod rogue;
pub mod store;
pub mod verify;
