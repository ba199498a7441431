//! The consensus driver: the owner task of the chain's head state.
//!
//! It owns ledger-core's [`ConsensusMachine`], the [`State`] after the head block, and the head
//! itself, and is the only writer of blocks and WAL entries to the store. It feeds the machine
//! inputs (network messages, timers, block-building and validation answers) and executes the
//! machine's outputs strictly in order:
//!
//! - `Persist`: appended to the WAL column family with a synced write **before** any later output
//!   runs — so an own vote is on disk before it is broadcast, and a restarted node cannot sign a
//!   conflicting one (the machine restores from the WAL; see `ledger_core::consensus::wal`).
//! - `Broadcast`: `try_send` to the network (never blocks consensus; the machine's `Tick`
//!   re-broadcasts when stuck).
//! - `ScheduleTimeout`: kept in a bounded timer map, fired from the select loop.
//! - `BuildBlock`: deferred by the block production policy (DESIGN.md): build once transactions
//!   have waited `block_fill_pause_ms`, at `empty_block_at` at the latest.
//! - `ValidateBlock`: ledger-core `validate_block`, skipping signatures the mempool verified.
//! - `Decide`: one synced store batch (block, indexes, certificate, accounts, head), then the
//!   in-memory state, the mempool re-check, events and metrics, then the next height.
//!
//! CPU-heavy ledger work (building, validating, replaying) runs on blocking threads: the state moves
//! into the blocking closure and comes back with the result, so there is still exactly one owner.

mod driver;

pub use driver::{Driver, DriverError, DriverParts, Head, head_info, now_ms};
