//! A proposer that names a polka round it never saw: its fresh block goes out with `pol_round`
//! set to an earlier round (or its own round at round 0, which is not even well-formed), and a
//! re-proposal with another round than its valid value's. Honest validators wait for 2f+1 prevotes
//! of that round (L28) that do not exist, and prevote nil on the propose timeout.

use ledger_core::Round;
use ledger_core::consensus::{ConsensusMessage, Proposal};
use rand::RngExt;

use super::{Me, Strategy, broadcast};
use crate::sim::Ctx;

#[derive(Debug)]
pub struct FalsePolRound;

impl Strategy for FalsePolRound {
    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
        let ConsensusMessage::Proposal(own) = &msg else {
            broadcast(me, ctx, msg);
            return;
        };
        let round = own.proposal.round.0;
        let pol_round = match own.proposal.pol_round {
            None if round == 0 => Round(0),
            None => Round(ctx.rng.random_range(0..round)),
            Some(r) if round > 1 => Round((r.0 + 1 + ctx.rng.random_range(0..round - 1)) % round),
            Some(r) => Round(r.0 + 1),
        };
        let forged = Proposal {
            pol_round: Some(pol_round),
            ..own.proposal.clone()
        }
        .sign(&ctx.world.chain_id, me.key);
        broadcast(me, ctx, ConsensusMessage::Proposal(forged));
    }
}
