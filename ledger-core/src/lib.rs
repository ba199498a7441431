//! # ledger-core
//!
//! The consensus-critical heart of the ledger, as a pure library: no I/O, no clock, no ambient
//! randomness. Time comes in as an argument; effects go out as return values.
//!
//! - [`hash`]: SHA-256 digests.
//! - [`smt`]: the sparse Merkle tree behind the state root (membership and non-membership proofs).
//! - [`merkle`]: the transaction Merkle root with inclusion proofs.

pub mod hash;
pub mod merkle;
pub mod smt;

pub use hash::Hash;
