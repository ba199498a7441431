//! What the driver persists for crash safety, and how the machine restarts from it.
//!
//! # The contract
//!
//! - Every [`Output::Persist`](super::Output::Persist) is appended to a write-ahead log, in output
//!   order, and is **durable (fsynced) before the driver executes any later output of the same
//!   `handle` call** — in particular before the [`Output::Broadcast`](super::Output::Broadcast) of
//!   the vote or proposal it records. Consecutive `Persist` outputs may go in one write batch.
//! - After a crash the driver reads the log back and passes every entry to
//!   [`ConsensusMachine::restore`](super::ConsensusMachine::restore), then sends
//!   [`Input::StartHeight`](super::Input::StartHeight) for the height it is at (last committed + 1).
//!   If that is the height of the log, the machine resumes from it: it never signs a vote or
//!   proposal other than the logged one at a logged (height, round, step), and re-broadcasts the
//!   logged ones instead; its lock (lines 36-38) and valid value (lines 36-42) survive.
//! - Entries of heights below the current one are useless: the driver drops them once the block of
//!   their height is committed (e.g. in the same write batch). The log then holds one height: at
//!   most two votes and one proposal per round plus one valid value per polka seen.
//!
//! The lock is not logged separately: `lockedValue`/`lockedRound` are set exactly when the machine
//! precommits a block (line 36-38), so they are the highest-round non-nil own precommit.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::messages::SignedProposal;
use crate::block::SealedBlock;
use crate::hash::Hash;
use crate::types::{Address, Height, Round};
use crate::vote::{SignedVote, VoteKind};

/// One record of the consensus write-ahead log. Encode with [`crate::codec`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum WalEntry {
    /// A vote this validator signed.
    Vote(SignedVote),
    /// A proposal this validator signed.
    Proposal(SignedProposal),
    /// The valid value (`validValue`, `validRound`, lines 36-42), which the proposer re-proposes
    /// (lines 14-16), with the polka that made it valid: the 2f+1 prevotes for it in `round`.
    /// Logged before the precommit of the same step. The polka is what other validators need to
    /// accept the re-proposal (line 28); if every node that saw it restarted without it, a
    /// validator locked on the value could never convince the others, and the height would stall.
    ValidValue {
        height: Height,
        round: Round,
        block: SealedBlock,
        polka: Vec<SignedVote>,
    },
}

impl WalEntry {
    pub fn height(&self) -> Height {
        match self {
            WalEntry::Vote(v) => v.vote.height,
            WalEntry::Proposal(p) => p.proposal.height,
            WalEntry::ValidValue { height, .. } => *height,
        }
    }
}

/// Why a write-ahead log cannot be restored from: it was not written by this validator's machine,
/// or it is corrupt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("the log holds messages signed by {signer}, but this node has no validator key")]
    NoKey { signer: Address },
    #[error("the log holds a message signed by {signer}, this node is {me}")]
    ForeignSigner { signer: Address, me: Address },
    #[error("the log holds two different {kind:?} votes at height {height} round {round}")]
    ConflictingVotes {
        height: Height,
        round: Round,
        kind: VoteKind,
    },
    #[error("the log holds two different proposals at height {height} round {round}")]
    ConflictingProposals { height: Height, round: Round },
    #[error(
        "the log's valid value at height {height} round {round} is a block of height {block_height}"
    )]
    ValidValueHeight {
        height: Height,
        round: Round,
        block_height: Height,
    },
}

/// A logged valid value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestoredValid {
    pub round: Round,
    pub block: SealedBlock,
    pub hash: Hash,
    pub polka: Vec<SignedVote>,
}

/// The consensus state recovered from a log, for one height.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Restored {
    pub height: Height,
    pub votes: Vec<SignedVote>,
    pub proposals: Vec<SignedProposal>,
    /// Highest-round valid value.
    pub valid: Option<RestoredValid>,
}

impl Restored {
    /// Keeps the highest height of the log and checks it is this signer's and consistent.
    pub(crate) fn from_entries(
        me: Option<Address>,
        entries: impl IntoIterator<Item = WalEntry>,
    ) -> Result<Option<Restored>, RestoreError> {
        let entries: Vec<WalEntry> = entries.into_iter().collect();
        let Some(height) = entries.iter().map(WalEntry::height).max() else {
            return Ok(None);
        };
        let check_signer = |signer: Address| match me {
            None => Err(RestoreError::NoKey { signer }),
            Some(me) if me != signer => Err(RestoreError::ForeignSigner { signer, me }),
            Some(_) => Ok(()),
        };
        let mut r = Restored {
            height,
            ..Restored::default()
        };
        for e in entries.into_iter().filter(|e| e.height() == height) {
            match e {
                WalEntry::Vote(v) => {
                    check_signer(v.vote.validator)?;
                    let same_slot = r
                        .votes
                        .iter()
                        .find(|o| o.vote.round == v.vote.round && o.vote.kind == v.vote.kind);
                    match same_slot {
                        Some(o) if *o == v => {}
                        Some(_) => {
                            return Err(RestoreError::ConflictingVotes {
                                height,
                                round: v.vote.round,
                                kind: v.vote.kind,
                            });
                        }
                        None => r.votes.push(v),
                    }
                }
                WalEntry::Proposal(p) => {
                    check_signer(p.proposal.proposer)?;
                    let same_round = r
                        .proposals
                        .iter()
                        .find(|o| o.proposal.round == p.proposal.round);
                    match same_round {
                        Some(o) if *o == p => {}
                        Some(_) => {
                            return Err(RestoreError::ConflictingProposals {
                                height,
                                round: p.proposal.round,
                            });
                        }
                        None => r.proposals.push(p),
                    }
                }
                WalEntry::ValidValue {
                    height,
                    round,
                    block,
                    polka,
                } => {
                    if block.height() != height {
                        return Err(RestoreError::ValidValueHeight {
                            height,
                            round,
                            block_height: block.height(),
                        });
                    }
                    if r.valid.as_ref().is_none_or(|v| v.round <= round) {
                        let hash = block.hash();
                        r.valid = Some(RestoredValid {
                            round,
                            block,
                            hash,
                            polka,
                        });
                    }
                }
            }
        }
        Ok(Some(r))
    }

    /// The round to resume in: the highest with an own message or the valid value.
    pub(crate) fn round(&self) -> Round {
        let votes = self.votes.iter().map(|v| v.vote.round);
        let proposals = self.proposals.iter().map(|p| p.proposal.round);
        let valid = self.valid.iter().map(|v| v.round);
        votes
            .chain(proposals)
            .chain(valid)
            .max()
            .unwrap_or_default()
    }

    /// `lockedRound`/`lockedValue`: the highest-round own precommit for a block.
    pub(crate) fn locked(&self) -> Option<(Round, Hash)> {
        self.votes
            .iter()
            .filter(|v| v.vote.kind == VoteKind::Precommit)
            .filter_map(|v| v.vote.block_hash.map(|h| (v.vote.round, h)))
            .max_by_key(|(r, _)| *r)
    }
}
