//! Consensus messages: signed proposals and votes, and their verification.
//!
//! A proposer signs a [`ProposalSummary`]: the proposal with its block replaced by the block hash.
//! The block hash commits to the header, which commits to the transactions (`tx_root`), the state
//! root and the previous commit (`last_commit_hash`), and block validation checks those roots
//! against the body. So the signature binds the whole proposal, but checking it (and evidence of a
//! proposer equivocating) never needs the block body: a signature check costs the same for an empty
//! block and for an 8 MiB one.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::block::SealedBlock;
use crate::codec;
use crate::crypto::{self, Domain, Keypair, Signature};
use crate::hash::Hash;
use crate::types::{Address, ChainId, Height, Round};
use crate::validator::ValidatorSet;
use crate::vote::{SignedVote, VoteError};

/// The paper's `<PROPOSAL, h, round, v, vr>`: `block` is `v`, `pol_round` is `vr` (`None` is -1).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    /// The round of a polka (2f+1 prevotes) for `block` seen by the proposer, when it re-proposes
    /// its valid value (Algorithm 1, lines 14-16); `None` for a fresh block.
    pub pol_round: Option<Round>,
    /// Who proposes: must be the proposer of (`height`, `round`). Not necessarily the block's
    /// `header.proposer`, which is whoever built the block (a re-proposed valid value keeps it).
    pub proposer: Address,
    pub block: SealedBlock,
}

/// What a proposer's signature covers (domain [`Domain::Proposal`]): the proposal with the block
/// replaced by its hash.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ProposalSummary {
    pub height: Height,
    pub round: Round,
    pub pol_round: Option<Round>,
    pub proposer: Address,
    pub block_hash: Hash,
}

/// A proposal summary with the proposer's signature: enough to prove what a proposer proposed.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedProposalSummary {
    pub summary: ProposalSummary,
    pub signature: Signature,
}

/// A proposal with its proposer's signature over [`Proposal::summary`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedProposal {
    pub proposal: Proposal,
    pub signature: Signature,
}

/// What validators send each other.
// A proposal carries its block, a vote is ~150 bytes. Messages pass through the machine one at a
// time (votes are stored as `SignedVote`), so boxing would only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum ConsensusMessage {
    Proposal(SignedProposal),
    Vote(SignedVote),
}

/// Why a consensus message is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the machine has no validator set yet (no height started)")]
    NotStarted,
    #[error("{validator} is not a validator")]
    UnknownValidator { validator: Address },
    #[error("bad signature from {validator}")]
    BadSignature { validator: Address },
    #[error("{got} is not the proposer of height {height} round {round}, {expected} is")]
    WrongProposer {
        height: Height,
        round: Round,
        expected: Address,
        got: Address,
    },
    #[error("proposal for round {round} names polka round {pol_round}, which must be lower")]
    PolRoundNotBelowRound { round: Round, pol_round: Round },
}

impl From<VoteError> for MessageError {
    fn from(e: VoteError) -> Self {
        match e {
            VoteError::BadSignature { validator } => MessageError::BadSignature { validator },
            // `SignedVote::verify` returns only these two.
            VoteError::UnknownValidator { validator } => {
                MessageError::UnknownValidator { validator }
            }
            other => {
                debug_assert!(false, "unexpected vote error {other:?}");
                MessageError::BadSignature {
                    validator: Address([0; 20]),
                }
            }
        }
    }
}

impl Proposal {
    /// The signed payload: this proposal with the block replaced by its hash.
    pub fn summary(&self) -> ProposalSummary {
        self.summary_with_hash(self.block.hash())
    }

    /// [`Proposal::summary`] with the block hash already known (hashing is the costly part).
    pub fn summary_with_hash(&self, block_hash: Hash) -> ProposalSummary {
        ProposalSummary {
            height: self.height,
            round: self.round,
            pol_round: self.pol_round,
            proposer: self.proposer,
            block_hash,
        }
    }

    pub fn sign(self, chain_id: &ChainId, key: &Keypair) -> SignedProposal {
        let signature = key.sign(Domain::Proposal, chain_id, &codec::encode(&self.summary()));
        SignedProposal {
            proposal: self,
            signature,
        }
    }
}

impl ProposalSummary {
    /// Checks that the proposer is in `validators` and `signature` is its signature of `self`.
    /// Does not check that it is the proposer of the round (see [`super::ProposerSchedule`]).
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
        signature: &Signature,
    ) -> Result<(), MessageError> {
        let validator = self.proposer;
        let v = validators
            .get(&validator)
            .ok_or(MessageError::UnknownValidator { validator })?;
        let bytes = crypto::signing_bytes(Domain::Proposal, chain_id, &codec::encode(self));
        v.public_key
            .verify_raw(&bytes, signature)
            .map_err(|_| MessageError::BadSignature { validator })
    }
}

impl SignedProposalSummary {
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
    ) -> Result<(), MessageError> {
        self.summary.verify(chain_id, validators, &self.signature)
    }
}

impl SignedProposal {
    /// Checks the signer and signature (not the proposer schedule, not the block's validity).
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
    ) -> Result<(), MessageError> {
        self.proposal
            .summary()
            .verify(chain_id, validators, &self.signature)
    }

    /// The signed summary, for evidence.
    pub fn signed_summary(&self, block_hash: Hash) -> SignedProposalSummary {
        SignedProposalSummary {
            summary: self.proposal.summary_with_hash(block_hash),
            signature: self.signature,
        }
    }
}

impl ConsensusMessage {
    pub fn height(&self) -> Height {
        match self {
            ConsensusMessage::Proposal(p) => p.proposal.height,
            ConsensusMessage::Vote(v) => v.vote.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            ConsensusMessage::Proposal(p) => p.proposal.round,
            ConsensusMessage::Vote(v) => v.vote.round,
        }
    }

    /// The validator that signed the message.
    pub fn signer(&self) -> Address {
        match self {
            ConsensusMessage::Proposal(p) => p.proposal.proposer,
            ConsensusMessage::Vote(v) => v.vote.validator,
        }
    }

    /// [`ConsensusMessage::verify`], keeping the proof that it passed: the machine does not check a
    /// [`VerifiedMessage`] again while its validator set is `validators`. For gossip validation,
    /// which checks every message before it is relayed.
    pub fn verified(
        self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
    ) -> Result<VerifiedMessage, MessageError> {
        self.verify(chain_id, validators)?;
        Ok(VerifiedMessage::new(self, validators.id()))
    }

    /// [`ConsensusMessage::verified`] against a set whose id is already known (no hashing of the
    /// set per message).
    pub fn verified_in(
        self,
        chain_id: &ChainId,
        validators: &crate::validator::IdentifiedSet,
    ) -> Result<VerifiedMessage, MessageError> {
        self.verify(chain_id, validators.set())?;
        Ok(VerifiedMessage::new(self, validators.id()))
    }

    /// Checks the signer is in `validators` and the signature is valid.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
    ) -> Result<(), MessageError> {
        match self {
            ConsensusMessage::Proposal(p) => p.verify(chain_id, validators),
            ConsensusMessage::Vote(v) => v.verify(chain_id, validators).map_err(MessageError::from),
        }
    }
}

/// A message whose signature was checked against the validator set with id `set_id` (by
/// [`ConsensusMessage::verified`] or [`super::ConsensusMachine::verify_message`]). The machine does
/// not check it again while its own set has that id; otherwise it checks it against its set. Only
/// verification creates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMessage {
    message: ConsensusMessage,
    set_id: Hash,
}

impl VerifiedMessage {
    pub(crate) fn new(message: ConsensusMessage, set_id: Hash) -> VerifiedMessage {
        VerifiedMessage { message, set_id }
    }

    pub fn message(&self) -> &ConsensusMessage {
        &self.message
    }

    pub fn into_message(self) -> ConsensusMessage {
        self.message
    }

    /// The id ([`ValidatorSet::id`]) of the set that checked the signature.
    pub fn set_id(&self) -> Hash {
        self.set_id
    }
}
