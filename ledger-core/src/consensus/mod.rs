//! Tendermint BFT consensus as a pure state machine.
//!
//! This is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus" (2018),
//! for one validator. [`ConsensusMachine::handle`] takes the time and one [`Input`] and returns the
//! [`Output`]s to execute, in order. It does no I/O, reads no clock, draws no randomness and never
//! iterates a hash map into its outputs, so a simulation that feeds it the same inputs gets the same
//! outputs. Comments cite the paper's line numbers (`L22` = line 22).
//!
//! # The driver's job
//!
//! The driver (the node's consensus task, or the simulator's node) owns the machine and:
//! - sends [`Input::StartHeight`] once the previous block is committed (and once at start);
//! - feeds received messages ([`Input::Proposal`], [`Input::Vote`]; the machine checks their
//!   signatures, or [`Input::Verified`] for a message it checked with
//!   [`ConsensusMachine::verify_message`], e.g. in gossip validation before relaying);
//! - executes the outputs in order:
//!   - [`Output::Persist`]: append to the write-ahead log and make it durable **before executing any
//!     later output** (see [`wal`] for the contract and [`ConsensusMachine::restore`]);
//!   - [`Output::Broadcast`]: send to all validators;
//!   - [`Output::ScheduleTimeout`]: at `at`, send [`Input::TimeoutElapsed`] (stale timeouts are
//!     ignored, so the driver need not cancel them);
//!   - [`Output::BuildBlock`]: build a block with the ledger and mempool and answer
//!     [`Input::BlockBuilt`]. The block production policy lives here: build once transactions have
//!     waited `block_fill_pause_ms`, or at `empty_block_at` with whatever is there (even nothing);
//!   - [`Output::ValidateBlock`]: validate the block deterministically against the chain (height,
//!     parent, timestamps, transactions, state root, last commit) and answer
//!     [`Input::BlockValidated`]. The clock-drift check is the machine's (it has `now`);
//!   - [`Output::Decide`]: the block is final; commit it with its certificate, then start the next
//!     height;
//!   - [`Output::Evidence`]: store or gossip the proof of equivocation;
//! - sends [`Input::Tick`] periodically (every `timeout_precommit_ms` is fine): a machine that made
//!   no progress since the previous tick broadcasts again its own messages of the current round,
//!   the precommits of the previous round and the proposal and polka behind its valid value (the
//!   last two are other validators' signed messages, relayed). This is what makes the protocol live
//!   over links that lose messages and across restarts: the paper assumes gossip under which every
//!   message a correct validator received eventually reaches all correct validators. A gossip layer
//!   that drops repeated messages as duplicates must let these through (e.g. by not deduplicating
//!   consensus messages older than a tick);
//! - syncs blocks: a node that sees messages of heights above its own fetches the missing blocks
//!   with their certificates, commits them, and sends [`Input::StartHeight`]. Messages for the
//!   current height + 1 are buffered by the machine (bounded), any others are dropped.
//!
//! # Limits
//!
//! Memory is bounded per height: votes and proposals are kept for rounds
//! `[round - MAX_PAST_ROUNDS, round + MAX_FUTURE_ROUNDS]` (plus the valid and locked rounds), at most
//! [`MAX_PROPOSALS_PER_ROUND`] proposals per round, one vote per validator, round and step, and
//! [`NEXT_HEIGHT_MSGS_PER_VALIDATOR`] buffered messages per validator for the next height. A message
//! for a round beyond the window is counted only for the round skip (L55), through the highest
//! round seen from each validator (one number per validator), then dropped; a vote of a dropped
//! round is needed only for liveness, which the re-broadcast on [`Input::Tick`] restores.

pub mod evidence;
pub mod messages;
pub mod proposer;
mod state_machine;
mod vote_keeper;
pub mod wal;

use crate::block::SealedBlock;
use crate::crypto::Keypair;
use crate::hash::Hash;
use crate::params::ConsensusParams;
use crate::types::{ChainId, Height, Round, TimestampMs};
use crate::validator::ValidatorSet;
use crate::vote::{CommitCertificate, SignedVote};

pub use evidence::{Evidence, EvidenceError};
pub use messages::{
    ConsensusMessage, MessageError, Proposal, ProposalSummary, SignedProposal,
    SignedProposalSummary, VerifiedMessage,
};
pub use proposer::ProposerSchedule;
pub use state_machine::ConsensusMachine;
pub use wal::{RestoreError, WalEntry};

/// Votes and proposals are kept for rounds up to this far above the current round.
pub const MAX_FUTURE_ROUNDS: u32 = 3;
/// Votes and proposals are kept for rounds down to this far below the current round.
pub const MAX_PAST_ROUNDS: u32 = 16;
/// Distinct proposals kept per round (more come only from an equivocating proposer).
pub const MAX_PROPOSALS_PER_ROUND: usize = 2;
/// Messages buffered for the next height, per validator.
pub const NEXT_HEIGHT_MSGS_PER_VALIDATOR: usize = 4;

/// The static configuration of one node's machine.
#[derive(Debug, Clone)]
pub struct ConsensusConfig {
    pub chain_id: ChainId,
    pub params: ConsensusParams,
    /// This node's validator key; `None` for a node that follows consensus (and decides) without
    /// voting. A key not in a height's validator set votes neither.
    pub key: Option<Keypair>,
}

/// The step within a round (the paper's `step_p`), plus the two states between rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// Before the first [`Input::StartHeight`].
    NewHeight,
    Propose,
    Prevote,
    Precommit,
    /// Decided this height (L49); waiting for [`Input::StartHeight`] of the next.
    Commit,
}

/// Which round timeout (the paper's `OnTimeoutPropose`, `OnTimeoutPrevote`, `OnTimeoutPrecommit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeoutKind {
    Propose,
    Prevote,
    Precommit,
}

/// What happens to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start `height` with its validator set (after committing `height - 1`, or at start-up).
    /// Ignored unless `height` is above the current height (or nothing was started yet).
    StartHeight {
        height: Height,
        validators: ValidatorSet,
    },
    /// A proposal from the network; its signature is checked here.
    Proposal(SignedProposal),
    /// A vote from the network; its signature is checked here.
    Vote(SignedVote),
    /// A message the driver already checked with [`ConsensusMachine::verify_message`].
    Verified(VerifiedMessage),
    /// A timeout scheduled by [`Output::ScheduleTimeout`] expired.
    TimeoutElapsed {
        height: Height,
        round: Round,
        kind: TimeoutKind,
    },
    /// The answer to [`Output::BuildBlock`].
    BlockBuilt(SealedBlock),
    /// The answer to [`Output::ValidateBlock`].
    BlockValidated { block_hash: Hash, valid: bool },
    /// Periodic; re-broadcasts own messages when stuck (see the module docs).
    Tick,
}

/// What the driver must do, in order. A `Persist` is durable before any later output executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append to the write-ahead log and fsync before executing the next output.
    Persist(WalEntry),
    /// Send to every validator.
    Broadcast(ConsensusMessage),
    /// Send [`Input::TimeoutElapsed`] with these fields at `at`.
    ScheduleTimeout {
        height: Height,
        round: Round,
        kind: TimeoutKind,
        at: TimestampMs,
    },
    /// This node proposes at (`height`, `round`) and has no valid value (L17-18, `getValue()`):
    /// build a block and answer [`Input::BlockBuilt`]. Build when transactions have waited
    /// `block_fill_pause_ms`, and at `empty_block_at` at the latest, empty if need be. The machine's
    /// round-0 propose timeout already allows for `empty_block_interval_ms`.
    BuildBlock {
        height: Height,
        round: Round,
        empty_block_at: TimestampMs,
    },
    /// Validate `block` (the paper's `valid(v)`) and answer [`Input::BlockValidated`]. Asked once
    /// per block hash per height.
    ValidateBlock { height: Height, block: SealedBlock },
    /// `block` is decided (L49-50) with `certificate`; commit both, then start the next height.
    Decide {
        block: SealedBlock,
        certificate: CommitCertificate,
    },
    /// A validator equivocated.
    Evidence(Evidence),
}

/// The observable state of the machine (for tests, metrics and status endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub height: Height,
    pub round: Round,
    pub step: Step,
    /// `(lockedRound, id(lockedValue))`, `None` for -1/nil.
    pub locked: Option<(Round, Hash)>,
    /// `(validRound, id(validValue))`, `None` for -1/nil.
    pub valid: Option<(Round, Hash)>,
}

/// The paper's `timeoutPropose(round)` (and likewise): grows linearly with the round so that,
/// after GST, some round is long enough for every correct validator to hear every other.
pub fn timeout_ms(params: &ConsensusParams, kind: TimeoutKind, round: Round) -> u64 {
    let base = match kind {
        TimeoutKind::Propose => params.timeout_propose_ms,
        TimeoutKind::Prevote => params.timeout_prevote_ms,
        TimeoutKind::Precommit => params.timeout_precommit_ms,
    };
    base.saturating_add(u64::from(round.0).saturating_mul(params.timeout_delta_ms))
}
