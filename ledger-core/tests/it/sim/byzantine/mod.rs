//! Byzantine behaviours, one file each. A byzantine node runs the honest machine (so it knows what
//! is going on) and its [`Strategy`] decides what actually goes on the wire.

mod body_swapper;
mod equivocating_proposer;
mod equivocating_voter;
mod false_pol_round;
mod flooder;
mod invalid_proposer;
mod replayer;
mod silent;
mod tamperer;

use std::fmt;

use ledger_core::Keypair;
use ledger_core::consensus::ConsensusMessage;

pub use body_swapper::BodySwapper;
pub use equivocating_proposer::EquivocatingProposer;
pub use equivocating_voter::EquivocatingVoter;
pub use false_pol_round::FalsePolRound;
pub use flooder::Flooder;
pub use invalid_proposer::InvalidProposer;
pub use replayer::Replayer;
pub use silent::Silent;
pub use tamperer::Tamperer;

use borsh::BorshSerialize;
use ledger_core::consensus::{ProposalSummary, SignedProposal};
use ledger_core::crypto::Domain;
use ledger_core::engine::{Engine, Now};
use ledger_core::{Address, Block, ChainId, Height, Round, Signature, codec};

use super::{Ctx, NetMsg};

/// Who the byzantine node is.
#[derive(Debug)]
pub struct Me<'a> {
    pub index: usize,
    pub key: &'a Keypair,
    /// Its own (honest) engine, to know the chain and the round.
    pub engine: Option<&'a Engine>,
    /// Its clocks.
    pub now: Now,
}

/// A byzantine behaviour.
pub trait Strategy: fmt::Debug {
    /// The node's honest machine broadcasts `msg`; put on the wire whatever the strategy wants.
    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage);

    /// `msg` arrived from `from` (the machine sees it afterwards).
    fn on_receive(
        &mut self,
        _me: &Me<'_>,
        _ctx: &mut Ctx<'_>,
        _from: usize,
        _msg: &ConsensusMessage,
    ) {
    }

    /// Every tick of the node.
    fn on_tick(&mut self, _me: &Me<'_>, _ctx: &mut Ctx<'_>) {}

    /// Whether the node answers block-sync requests.
    fn serves_sync(&self) -> bool {
        true
    }

    /// Whether the node gossips the transactions clients submit to it.
    fn gossips_txs(&self) -> bool {
        true
    }
}

/// What a scenario can make a byzantine node do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    EquivocatingVoter,
    EquivocatingProposer,
    Silent,
    Replayer,
    BodySwapper,
    InvalidProposer,
    FalsePolRound,
    Tamperer,
    Flooder,
    /// [`InvalidProposer`] with one kind only (tests; not in the random mix).
    InvalidProposerOnly(u8),
}

impl Variant {
    pub const ALL: [Variant; 9] = [
        Variant::EquivocatingVoter,
        Variant::EquivocatingProposer,
        Variant::Silent,
        Variant::Replayer,
        Variant::BodySwapper,
        Variant::InvalidProposer,
        Variant::FalsePolRound,
        Variant::Tamperer,
        Variant::Flooder,
    ];

    pub fn strategy(self) -> Box<dyn Strategy> {
        match self {
            Variant::EquivocatingVoter => Box::new(EquivocatingVoter::default()),
            Variant::EquivocatingProposer => Box::new(EquivocatingProposer),
            Variant::Silent => Box::new(Silent),
            Variant::Replayer => Box::new(Replayer::default()),
            Variant::BodySwapper => Box::new(BodySwapper::default()),
            Variant::InvalidProposer => Box::new(InvalidProposer::default()),
            Variant::FalsePolRound => Box::new(FalsePolRound),
            Variant::Tamperer => Box::new(Tamperer),
            Variant::Flooder => Box::new(Flooder::default()),
            Variant::InvalidProposerOnly(kind) => Box::new(InvalidProposer {
                only: Some(usize::from(kind)),
                ..InvalidProposer::default()
            }),
        }
    }
}

/// The borsh layout of `NetMsg::Consensus(ConsensusMessage::Proposal(SignedProposal))` with a
/// plain, unchecked [`Block`]: what a byzantine proposer or relayer can put on the wire, whether
/// or not its body matches its header.
#[derive(BorshSerialize)]
struct WireProposal<'a> {
    net_tag: u8,
    tag: u8,
    height: Height,
    round: Round,
    pol_round: Option<Round>,
    proposer: Address,
    block: &'a Block,
    signature: Signature,
}

/// Bytes of a proposal of `block` (any body) with `signature`.
pub fn proposal_bytes(
    height: Height,
    round: Round,
    pol_round: Option<Round>,
    proposer: Address,
    block: &Block,
    signature: Signature,
) -> Vec<u8> {
    codec::encode(&WireProposal {
        net_tag: 0,
        tag: 0,
        height,
        round,
        pol_round,
        proposer,
        block,
        signature,
    })
}

/// A proposer's signature over the summary naming `block_hash` (valid whatever the body is).
pub fn sign_summary(
    chain_id: &ChainId,
    key: &Keypair,
    p: &SignedProposal,
    pol_round: Option<Round>,
    block_hash: ledger_core::Hash,
) -> Signature {
    let summary = ProposalSummary {
        height: p.proposal.height,
        round: p.proposal.round,
        pol_round,
        proposer: p.proposal.proposer,
        block_hash,
    };
    key.sign(Domain::Proposal, chain_id, &codec::encode(&summary))
}

/// `block` proposed in `p`'s place with a fresh signature, as bytes (`block` need not seal).
pub fn forged_proposal_bytes(
    chain_id: &ChainId,
    key: &Keypair,
    p: &SignedProposal,
    block: &Block,
) -> Vec<u8> {
    let signature = sign_summary(chain_id, key, p, p.proposal.pol_round, block.hash());
    let pr = &p.proposal;
    proposal_bytes(
        pr.height,
        pr.round,
        pr.pol_round,
        pr.proposer,
        block,
        signature,
    )
}

/// Sends `msg` to everyone but `me`, as an honest node would.
pub fn broadcast(me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
    ctx.broadcast(me.index, &NetMsg::Consensus(msg));
}
