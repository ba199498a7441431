//! A relaying validator that alters what it forwards. Every consensus message it receives from
//! another validator it sends on to the others, changed: a flipped byte in the signature, a changed
//! height, round or `pol_round` under the old signature, a transaction left out of a proposal's
//! body (as raw bytes: the body no longer matches the header), or a byte flipped anywhere. Its own
//! messages go out honestly. A tampered copy may arrive before the real one.

use std::rc::Rc;

use ledger_core::consensus::ConsensusMessage;
use ledger_core::{Height, Round, codec};
use rand::RngExt;

use super::{Me, Strategy, broadcast, proposal_bytes};
use crate::sim::{Ctx, NetMsg};

#[derive(Debug)]
pub struct Tamperer;

impl Strategy for Tamperer {
    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
        broadcast(me, ctx, msg);
    }

    fn on_receive(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, from: usize, msg: &ConsensusMessage) {
        // Only what its signer sent directly, once (not re-sent copies of re-sent copies).
        if ctx.world.validators.index_of(&msg.signer()) != Some(from) || !ctx.rng.random_bool(0.5) {
            return;
        }
        let bytes = match (ctx.rng.random_range(0..5), msg) {
            (0, _) => {
                let mut m = msg.clone();
                match &mut m {
                    ConsensusMessage::Proposal(p) => {
                        p.signature.0[ctx.rng.random_range(0..64)] ^= 1
                    }
                    ConsensusMessage::Vote(v) => v.signature.0[ctx.rng.random_range(0..64)] ^= 1,
                }
                codec::encode(&NetMsg::Consensus(m))
            }
            (1, _) => {
                let mut m = msg.clone();
                match &mut m {
                    ConsensusMessage::Proposal(p) => {
                        p.proposal.round = Round(p.proposal.round.0 + 1)
                    }
                    ConsensusMessage::Vote(v) => v.vote.height = Height(v.vote.height.0 + 1),
                }
                codec::encode(&NetMsg::Consensus(m))
            }
            (2, ConsensusMessage::Proposal(p)) => {
                let mut m = p.clone();
                m.proposal.pol_round = match m.proposal.pol_round {
                    None => Some(Round(0)),
                    Some(_) => None,
                };
                codec::encode(&NetMsg::Consensus(ConsensusMessage::Proposal(m)))
            }
            (2, ConsensusMessage::Vote(v)) => {
                let mut m = v.clone();
                m.vote.block_hash = match m.vote.block_hash {
                    None => Some(ledger_core::Hash::digest(b"tampered")),
                    Some(_) => None,
                };
                codec::encode(&NetMsg::Consensus(ConsensusMessage::Vote(m)))
            }
            (3, ConsensusMessage::Proposal(p)) if !p.proposal.block.block().txs.is_empty() => {
                let pr = &p.proposal;
                let mut block = pr.block.block().clone();
                let i = ctx.rng.random_range(0..block.txs.len());
                block.txs.remove(i);
                proposal_bytes(
                    pr.height,
                    pr.round,
                    pr.pol_round,
                    pr.proposer,
                    &block,
                    p.signature,
                )
            }
            _ => {
                let mut b = codec::encode(&NetMsg::Consensus(msg.clone()));
                let i = ctx.rng.random_range(1..b.len());
                b[i] ^= 1 << ctx.rng.random_range(0..8);
                b
            }
        };
        let bytes = Rc::new(bytes);
        for to in 0..ctx.world.n {
            if to != me.index && to != from {
                ctx.send_raw(me.index, to, Rc::clone(&bytes));
            }
        }
    }
}
