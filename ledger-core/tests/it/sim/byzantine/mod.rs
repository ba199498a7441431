//! Byzantine behaviours, one file each. A byzantine node runs the honest machine (so it knows what
//! is going on) and its [`Strategy`] decides what actually goes on the wire.

mod equivocating_proposer;
mod equivocating_voter;
mod replayer;
mod silent;

use std::fmt;

use ledger_core::Keypair;
use ledger_core::consensus::ConsensusMessage;

pub use equivocating_proposer::EquivocatingProposer;
pub use equivocating_voter::EquivocatingVoter;
pub use replayer::Replayer;
pub use silent::Silent;

use super::{Ctx, NetMsg};

/// Who the byzantine node is.
#[derive(Debug)]
pub struct Me<'a> {
    pub index: usize,
    pub key: &'a Keypair,
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
}

/// What a scenario can make a byzantine node do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    EquivocatingVoter,
    EquivocatingProposer,
    Silent,
    Replayer,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::EquivocatingVoter,
        Variant::EquivocatingProposer,
        Variant::Silent,
        Variant::Replayer,
    ];

    pub fn strategy(self) -> Box<dyn Strategy> {
        match self {
            Variant::EquivocatingVoter => Box::new(EquivocatingVoter::default()),
            Variant::EquivocatingProposer => Box::new(EquivocatingProposer),
            Variant::Silent => Box::new(Silent),
            Variant::Replayer => Box::new(Replayer::default()),
        }
    }
}

/// Sends `msg` to everyone but `me`, as an honest node would.
pub fn broadcast(me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
    ctx.broadcast(me.index, &NetMsg::Consensus(msg));
}
