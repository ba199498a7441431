//! A proposer that re-proposes a header the others already validated with another body (ADR 0007's
//! attack): it remembers the blocks of proposals it received, and when it proposes it sends, as raw
//! bytes, a known header of this height with its own block's transactions, or the known block's
//! transactions with one left out or reordered, signed over the known header's hash. Honest nodes
//! cannot even decode it (the body does not seal); half the time it sends its honest proposal too,
//! a moment later.

use std::collections::VecDeque;
use std::rc::Rc;

use ledger_core::SealedBlock;
use ledger_core::consensus::ConsensusMessage;
use rand::RngExt;

use super::invalid_proposer::own_transfer;
use super::{Me, Strategy, broadcast, forged_proposal_bytes};
use crate::sim::Ctx;

/// Blocks remembered.
const MEMORY: usize = 16;

#[derive(Debug, Default)]
pub struct BodySwapper {
    known: VecDeque<SealedBlock>,
}

impl Strategy for BodySwapper {
    fn on_receive(
        &mut self,
        _me: &Me<'_>,
        _ctx: &mut Ctx<'_>,
        _from: usize,
        msg: &ConsensusMessage,
    ) {
        if let ConsensusMessage::Proposal(p) = msg {
            let b = &p.proposal.block;
            if self.known.iter().all(|k| k.hash() != b.hash()) {
                if self.known.len() == MEMORY {
                    self.known.pop_front();
                }
                self.known.push_back(b.clone());
            }
        }
    }

    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
        let ConsensusMessage::Proposal(own) = &msg else {
            broadcast(me, ctx, msg);
            return;
        };
        let height = own.proposal.height;
        let mine = own.proposal.block.block();
        let known = self
            .known
            .iter()
            .rev()
            .find(|k| k.height() == height && k.hash() != own.proposal.block.hash());
        let mut forged = match known {
            Some(k) => k.block().clone(),
            None => mine.clone(),
        };
        let kind = ctx.rng.random_range(0..3);
        match kind {
            0 if known.is_some() => forged.txs = mine.txs.clone(),
            1 if !forged.txs.is_empty() => {
                let i = ctx.rng.random_range(0..forged.txs.len());
                forged.txs.remove(i);
            }
            _ if forged.txs.len() >= 2 => forged.txs.reverse(),
            _ => forged.txs.push(
                // Some transaction the header does not commit to.
                mine.txs
                    .first()
                    .cloned()
                    .unwrap_or_else(|| own_transfer(me, ctx, 1)),
            ),
        }
        if forged == *known.map_or(mine, |k| k.block()) {
            forged.txs.clear();
            forged.txs.push(own_transfer(me, ctx, 1));
        }
        let bytes = Rc::new(forged_proposal_bytes(
            &ctx.world.chain_id,
            me.key,
            own,
            &forged,
        ));
        ctx.broadcast_raw(me.index, bytes);
        if ctx.rng.random_bool(0.5) {
            broadcast(me, ctx, msg);
        }
    }
}
