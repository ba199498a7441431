//! A proposer of invalid blocks. Each time it proposes a fresh block it sends, in turn, its block
//! with: a wrong state root; an overspending transfer added (signed by its own key, far beyond its
//! balance); a wrong transaction root (raw bytes: the body does not match the header); a
//! `header.proposer` that is no validator; a timestamp beyond `max_clock_drift_ms` ahead of its
//! clock; one transfer's signature forged (the body re-rooted, so it seals; only the signature
//! check rejects it). Wherever the body still matches the header the block is re-sealed and the
//! proposal signed properly, so only the ledger rules stand in the way. Re-proposals and votes go
//! out honestly.

use std::rc::Rc;

use ledger_core::consensus::{ConsensusMessage, Proposal, SignedProposal};
use ledger_core::merkle::merkle_root;
use ledger_core::{
    Amount, Block, Hash, Keypair, Nonce, SignedTransaction, TimestampMs, Transaction,
};

use super::{Me, Strategy, broadcast, forged_proposal_bytes};
use crate::sim::{Ctx, NetMsg};

/// The kinds, in turn.
pub const KINDS: usize = 6;

#[derive(Debug, Default)]
pub struct InvalidProposer {
    pub turn: usize,
    /// Only this kind (tests).
    pub only: Option<usize>,
}

/// A transfer of `amount` signed by the byzantine node's own key, at its next nonce.
pub fn own_transfer(me: &Me<'_>, ctx: &Ctx<'_>, amount: u64) -> SignedTransaction {
    let nonce = me.engine.map_or(0, |e| {
        e.state().get(&me.key.address()).map_or(0, |a| a.nonce.0)
    });
    Transaction {
        chain_id: ctx.world.chain_id.clone(),
        from: me.key.public(),
        to: Keypair::dev("sim-account", 0).address(),
        amount: Amount(amount),
        fee: Amount(1),
        nonce: Nonce(nonce),
        memo: Vec::new(),
    }
    .sign(me.key)
}

fn reroot(block: &mut Block) {
    let hashes: Vec<Hash> = block.txs.iter().map(SignedTransaction::hash).collect();
    block.header.tx_root = merkle_root(&hashes);
    block.header.tx_count = block.txs.len() as u32;
}

fn send_sealed(me: &Me<'_>, ctx: &mut Ctx<'_>, own: &SignedProposal, block: Block) {
    match block.seal() {
        Ok(block) => {
            let p = Proposal {
                block,
                ..own.proposal.clone()
            }
            .sign(&ctx.world.chain_id, me.key);
            ctx.broadcast(me.index, &NetMsg::Consensus(ConsensusMessage::Proposal(p)));
        }
        Err(_) => unreachable!("re-rooted blocks seal"),
    }
}

impl Strategy for InvalidProposer {
    fn on_broadcast(&mut self, me: &Me<'_>, ctx: &mut Ctx<'_>, msg: ConsensusMessage) {
        let ConsensusMessage::Proposal(own) = &msg else {
            broadcast(me, ctx, msg);
            return;
        };
        if own.proposal.pol_round.is_some() {
            broadcast(me, ctx, msg);
            return;
        }
        let kind = self.only.unwrap_or(self.turn % KINDS);
        self.turn += 1;
        let mut block = own.proposal.block.block().clone();
        match kind {
            0 => {
                block.header.state_root = Hash::digest(&block.header.state_root.0);
                send_sealed(me, ctx, own, block);
            }
            1 => {
                // Far beyond anything it holds (the whole supply is 16 x 10^9).
                block.txs.push(own_transfer(me, ctx, u64::MAX / 4));
                reroot(&mut block);
                send_sealed(me, ctx, own, block);
            }
            2 => {
                block.header.tx_root = Hash::digest(&block.header.tx_root.0);
                let bytes = forged_proposal_bytes(&ctx.world.chain_id, me.key, own, &block);
                ctx.broadcast_raw(me.index, Rc::new(bytes));
            }
            3 => {
                block.header.proposer = Keypair::dev("not-a-validator", 0).address();
                send_sealed(me, ctx, own, block);
            }
            4 => {
                let drift = ctx.world.params.max_clock_drift_ms;
                block.header.timestamp_ms = TimestampMs(me.now.wall.0 + drift + 500);
                send_sealed(me, ctx, own, block);
            }
            _ => {
                if block.txs.is_empty() {
                    // Nothing to forge: an honest proposal this time.
                    broadcast(me, ctx, msg);
                    return;
                }
                let i = block.txs.len() / 2;
                block.txs[i].signature.0[7] ^= 0x20;
                reroot(&mut block);
                send_sealed(me, ctx, own, block);
            }
        }
    }
}
