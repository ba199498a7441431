//! # ledger-core
//!
//! The consensus-critical heart of the ledger, as a pure library: no I/O, no clock, no ambient
//! randomness, no hash-map iteration order in any output. Time comes in as an argument; effects go
//! out as return values. This is what lets the consensus run in a deterministic simulation.
//!
//! - [`hash`], [`codec`], [`crypto`]: SHA-256, the canonical borsh encoding, ed25519 under the pinned
//!   ZIP-215 rule, one signature or a batch, with domain-separated, chain-bound signing.
//! - [`types`]: chain id, checksummed addresses, amounts, nonces, heights.
//! - [`tx`], [`block`], [`vote`], [`validator`]: transactions, blocks, votes, commit certificates,
//!   the validator set.
//! - [`state`], [`merkle`]: accounts and the versioned Merkle tree behind the state root (over a
//!   store the caller provides), and the transaction root.
//! - [`params`]: consensus parameters fixed in genesis.
//! - [`consensus`]: the Tendermint state machine; [`engine`]: the consensus driver around it
//!   (block production, validation, commit, sync) without I/O, run by the node and the simulator.
//! - [`light`]: the light-client check of a served account or transaction (header, certificate,
//!   proof) against a trusted genesis, for the wallet and anyone who does not trust the node.
//! - [`api`]: the JSON types of the node's HTTP API, shared with the wallet and the testnet; with the
//!   feature `openapi`, their OpenAPI schemas (`openapi`).

pub mod api;
pub mod block;
pub mod codec;
pub mod consensus;
pub mod crypto;
pub mod engine;
pub mod genesis;
pub mod hash;
pub mod light;
pub mod merkle;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod params;
pub mod state;
pub mod tx;
pub mod types;
pub mod units;
pub mod validation;
pub mod validator;
pub mod vote;

pub use block::{Block, BlockHeader, BodyError, CommittedBlock, SealedBlock};
pub use crypto::{Keypair, PublicKey, Signature};
pub use hash::Hash;
pub use params::ConsensusParams;
pub use tx::{Prechecked, SignedTransaction, Transaction, TxError, VerifiedTransaction};
pub use types::{Address, Amount, ChainId, Height, Nonce, Round, TimestampMs};
pub use validator::{IdentifiedSet, Validator, ValidatorSet};
pub use vote::{CommitCertificate, SignedVote, Vote, VoteKind};
