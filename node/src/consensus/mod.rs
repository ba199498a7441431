//! The consensus driver: the owner task of the chain's head state.
//!
//! The logic is ledger-core's sans-IO [`ledger_core::engine::Engine`] (the consensus machine, block
//! production, validation and execution with their cache, commit, applying synced blocks, timers as
//! values), which the deterministic simulator runs too. This module is its I/O shell: it feeds the
//! engine network messages, mempool changes and the passing of time, and performs the engine's
//! effects strictly in order:
//!
//! - `Persist`: appended to the WAL column family with a synced write **before** any later effect
//!   runs, so an own vote is on disk before it is broadcast, and a restarted node cannot sign a
//!   conflicting one (the machine restores from the WAL; see `ledger_core::consensus::wal`).
//! - `Broadcast`, `Evidence`: `try_send` to the network (never blocks consensus; the machine's
//!   `Tick` re-broadcasts when stuck).
//! - `FetchCandidates`, `LookupVerified`: asked of the mempool; the answers go back to the engine.
//! - `Commit`: one synced store batch (block, indexes, certificate, accounts, head), then metrics,
//!   events and the mempool's re-check. The engine's state already follows the block.
//!
//! The driver runs on a thread of its own with a single-threaded runtime, so the engine's CPU work
//! and the store's synced writes block only that thread.

mod driver;

pub use driver::{Driver, DriverError, DriverParts, Head, head_info, now_ms};
