//! A validator that tells everyone what they want to hear.
//!
//! Its machine's votes go to a random part of the validators, and a conflicting vote (nil for a
//! block, the round's proposal for nil) to the others. On top, every vote it receives from a
//! validator is echoed back to that validator as its own vote for the same value ("mirroring"),
//! once per validator, height, round and step. Each honest validator thus sees it agree with
//! itself, which is the most a single equivocator can do to split the honest ones. With f or fewer
//! of them Tendermint stays safe; with more it does not, which the simulation's checker must see.

use std::collections::BTreeSet;

use ledger_core::consensus::ConsensusMessage;
use ledger_core::{Hash, Vote, VoteKind};
use rand::RngExt;

use super::{Me, Strategy};
use crate::sim::{Ctx, NetMsg};

/// Bounds the memory of what was mirrored and proposed.
const MEMORY: usize = 4096;

#[derive(Debug, Default)]
pub struct EquivocatingVoter {
    /// (peer, height, round, kind) already mirrored.
    mirrored: BTreeSet<(usize, u64, u32, VoteKind)>,
    /// Proposed block per (height, round), to equivocate a nil vote with.
    proposed: BTreeSet<(u64, u32, Hash)>,
}

impl Strategy for EquivocatingVoter {
    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
        let ConsensusMessage::Vote(v) = &msg else {
            super::broadcast(me, ctx, msg);
            return;
        };
        let (h, r) = (v.vote.height.0, v.vote.round.0);
        let other_value = match v.vote.block_hash {
            Some(_) => None,
            None => self
                .proposed
                .iter()
                .find(|(ph, pr, _)| *ph == h && *pr == r)
                .map(|(_, _, b)| *b)
                .or(Some(Hash::digest(&h.to_le_bytes()))),
        };
        let twin = Vote {
            block_hash: other_value,
            ..v.vote.clone()
        }
        .sign(&ctx.world.chain_id, me.key);
        for to in 0..ctx.world.n {
            if to == me.index {
                continue;
            }
            let pick = if ctx.rng.random_bool(0.5) {
                v.clone()
            } else {
                twin.clone()
            };
            ctx.send(
                me.index,
                to,
                &NetMsg::Consensus(ConsensusMessage::Vote(pick)),
            );
        }
    }

    fn on_receive(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, from: usize, msg: &ConsensusMessage) {
        match msg {
            ConsensusMessage::Proposal(p) => {
                if self.proposed.len() >= MEMORY {
                    self.proposed.clear();
                }
                let pr = &p.proposal;
                self.proposed
                    .insert((pr.height.0, pr.round.0, pr.block.hash()));
            }
            ConsensusMessage::Vote(v) => {
                // Only a validator's own vote says what it wants to hear.
                if ctx.world.validators.index_of(&v.vote.validator) != Some(from) {
                    return;
                }
                if self.mirrored.len() >= MEMORY {
                    self.mirrored.clear();
                }
                if !self
                    .mirrored
                    .insert((from, v.vote.height.0, v.vote.round.0, v.vote.kind))
                {
                    return;
                }
                let echo = Vote {
                    validator: me.key.address(),
                    ..v.vote.clone()
                }
                .sign(&ctx.world.chain_id, me.key);
                ctx.send(
                    me.index,
                    from,
                    &NetMsg::Consensus(ConsensusMessage::Vote(echo)),
                );
            }
        }
    }
}
