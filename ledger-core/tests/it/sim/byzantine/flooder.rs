//! A validator that floods its peers with validly signed messages for far-future rounds and
//! heights: on every tick, prevotes and precommits (nil, or for a block it knows) at rounds just
//! above the kept window and far above it (up to a million), at the next height and at heights far
//! ahead, and proposals at far rounds it is the proposer of. The machine's memory is bounded per
//! round window and per validator, and one validator's rounds alone are not f+1 of the power, so
//! with at most f of them honest nodes neither grow nor skip rounds.

use ledger_core::consensus::{ConsensusMessage, Proposal, ProposerSchedule};
use ledger_core::{Height, Round, Vote, VoteKind};
use rand::RngExt;

use super::{Me, Strategy, broadcast};
use crate::sim::{Ctx, NetMsg};

/// Messages per tick.
const PER_TICK: usize = 8;

#[derive(Debug, Default)]
pub struct Flooder {
    schedule: Option<ProposerSchedule>,
}

impl Strategy for Flooder {
    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
        broadcast(me, ctx, msg);
    }

    fn on_tick(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>) {
        let Some(engine) = me.engine else {
            return;
        };
        if ctx.world.n < 2 {
            return;
        }
        let schedule = self
            .schedule
            .get_or_insert_with(|| ProposerSchedule::new(&ctx.world.validators));
        let height = engine.head().height().0 + 1;
        let round = engine.machine().round().0;
        let block = engine.head().block.clone();
        for _ in 0..PER_TICK {
            let h = match ctx.rng.random_range(0..4) {
                0 => height + 1,
                1 => height + ctx.rng.random_range(2..1_000),
                _ => height,
            };
            let r = match ctx.rng.random_range(0..3) {
                0 => round + 4 + ctx.rng.random_range(0..16),
                1 => round + ctx.rng.random_range(100..1_000_000),
                _ => ctx.rng.random_range(0..u32::MAX / 2),
            };
            let to = ctx.rng.random_range(0..ctx.world.n);
            if to == me.index {
                continue;
            }
            let msg = match (ctx.rng.random_range(0..3), &block) {
                (0, Some(b)) => {
                    // A proposal at the first round from `r` on that is ours.
                    let Some(r) = (r..r.saturating_add(64))
                        .find(|x| schedule.proposer(Height(h), Round(*x)) == me.key.address())
                    else {
                        continue;
                    };
                    ConsensusMessage::Proposal(
                        Proposal {
                            height: Height(h),
                            round: Round(r),
                            pol_round: None,
                            proposer: me.key.address(),
                            block: b.clone(),
                        }
                        .sign(&ctx.world.chain_id, me.key),
                    )
                }
                (k, _) => ConsensusMessage::Vote(
                    Vote {
                        kind: if k == 1 {
                            VoteKind::Prevote
                        } else {
                            VoteKind::Precommit
                        },
                        height: Height(h),
                        round: Round(r),
                        block_hash: block
                            .as_ref()
                            .filter(|_| ctx.rng.random_bool(0.3))
                            .map(|b| b.hash()),
                        validator: me.key.address(),
                    }
                    .sign(&ctx.world.chain_id, me.key),
                ),
            };
            ctx.send(me.index, to, &NetMsg::Consensus(msg));
        }
    }
}
