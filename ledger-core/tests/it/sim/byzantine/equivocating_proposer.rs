//! A proposer that proposes two different blocks for one round and sends each to a different
//! random part of the validators. Its votes are honest (its machine voted for the first block).

use ledger_core::TimestampMs;
use ledger_core::consensus::{ConsensusMessage, Proposal};
use rand::RngExt;

use super::{Me, Strategy, broadcast};
use crate::sim::{Ctx, NetMsg};

#[derive(Debug)]
pub struct EquivocatingProposer;

impl Strategy for EquivocatingProposer {
    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
        let ConsensusMessage::Proposal(first) = &msg else {
            broadcast(me, ctx, msg);
            return;
        };
        // A twin block: same parent, one millisecond later, so a different hash and just as valid.
        let mut block = first.proposal.block.clone().into_block();
        block.header.timestamp_ms = TimestampMs(block.header.timestamp_ms.0 + 1);
        let Ok(block) = block.seal() else {
            return;
        };
        let second = Proposal {
            block,
            ..first.proposal.clone()
        }
        .sign(&ctx.world.chain_id, me.key);
        for to in 0..ctx.world.n {
            if to == me.index {
                continue;
            }
            let pick = if ctx.rng.random_bool(0.5) {
                first.clone()
            } else {
                second.clone()
            };
            ctx.send(
                me.index,
                to,
                &NetMsg::Consensus(ConsensusMessage::Proposal(pick)),
            );
        }
    }
}
