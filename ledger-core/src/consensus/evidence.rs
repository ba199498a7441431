//! Evidence of equivocation: two signed messages from one validator that no honest validator
//! would both sign.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::messages::{MessageError, SignedProposalSummary};
use crate::types::{Address, ChainId, Height, Round};
use crate::validator::ValidatorSet;
use crate::vote::SignedVote;

/// Proof that a validator signed two conflicting messages at one height, round and step.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Evidence {
    /// Two votes of one kind, height and round for different values (a block and nil, or two
    /// blocks). `first` is the one the machine counted.
    ConflictingVotes {
        first: SignedVote,
        second: SignedVote,
    },
    /// Two proposals for one height and round with different blocks, from the round's proposer.
    ConflictingProposals {
        first: SignedProposalSummary,
        second: SignedProposalSummary,
    },
}

/// Why a piece of evidence does not prove equivocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the two messages are not from one validator at one height, round and step")]
    NotComparable,
    #[error("the two messages are for the same value: no conflict")]
    SameValue,
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl Evidence {
    /// The validator that equivocated.
    pub fn offender(&self) -> Address {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.validator,
            Evidence::ConflictingProposals { first, .. } => first.summary.proposer,
        }
    }

    pub fn height(&self) -> Height {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.height,
            Evidence::ConflictingProposals { first, .. } => first.summary.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.round,
            Evidence::ConflictingProposals { first, .. } => first.summary.round,
        }
    }

    /// Checks that both messages are validly signed by one validator of `validators`, at one
    /// height, round and step, for different values.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
    ) -> Result<(), EvidenceError> {
        match self {
            Evidence::ConflictingVotes { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                if a.validator != b.validator
                    || a.height != b.height
                    || a.round != b.round
                    || a.kind != b.kind
                {
                    return Err(EvidenceError::NotComparable);
                }
                if a.block_hash == b.block_hash {
                    return Err(EvidenceError::SameValue);
                }
                first
                    .verify(chain_id, validators)
                    .map_err(MessageError::from)?;
                second
                    .verify(chain_id, validators)
                    .map_err(MessageError::from)?;
                Ok(())
            }
            Evidence::ConflictingProposals { first, second } => {
                let (a, b) = (&first.summary, &second.summary);
                if a.proposer != b.proposer || a.height != b.height || a.round != b.round {
                    return Err(EvidenceError::NotComparable);
                }
                if a.block_hash == b.block_hash && a.pol_round == b.pol_round {
                    return Err(EvidenceError::SameValue);
                }
                first.verify(chain_id, validators)?;
                second.verify(chain_id, validators)?;
                Ok(())
            }
        }
    }
}
