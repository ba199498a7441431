//! A validator that is honest in what it signs but keeps a bounded store of every message it has
//! seen (its own and everyone else's, all validly signed) and re-sends random old ones to random
//! peers: stale heights, stale rounds, duplicates.

use std::collections::VecDeque;

use ledger_core::consensus::ConsensusMessage;
use rand::RngExt;

use super::{Me, Strategy, broadcast};
use crate::sim::{Ctx, NetMsg};

/// Messages kept for replay.
const STORE: usize = 256;
/// Messages replayed per tick.
const PER_TICK: usize = 4;

#[derive(Debug, Default)]
pub struct Replayer {
    seen: VecDeque<ConsensusMessage>,
}

impl Replayer {
    fn keep(&mut self, msg: &ConsensusMessage) {
        if self.seen.len() == STORE {
            self.seen.pop_front();
        }
        self.seen.push_back(msg.clone());
    }
}

impl Strategy for Replayer {
    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
        self.keep(&msg);
        broadcast(me, ctx, msg);
    }

    fn on_receive(
        &mut self,
        _me: &Me<'_>,
        _ctx: &mut Ctx<'_>,
        _from: usize,
        msg: &ConsensusMessage,
    ) {
        self.keep(msg);
    }

    fn on_tick(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>) {
        if self.seen.is_empty() || ctx.world.n < 2 {
            return;
        }
        for _ in 0..PER_TICK {
            let i = ctx.rng.random_range(0..self.seen.len());
            let to = ctx.rng.random_range(0..ctx.world.n);
            if to == me.index {
                continue;
            }
            let msg = self.seen[i].clone();
            ctx.send(me.index, to, &NetMsg::Consensus(msg));
        }
    }
}
