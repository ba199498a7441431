//! Clients sending real signed transfers from the funded genesis accounts.
//!
//! Every [`EVERY_MS`] a few accounts sign their next transfer (`Transaction { .. }.sign(key)`,
//! then `.verify(chain_id)`, memoized in the run's [`TxMemo`]) and submit it to a random node,
//! which gossips it. A client keeps at most [`MAX_OUTSTANDING`] transfers not yet final (read from
//! the agreed chain, as from any honest node) and, like a wallet that got no answer, re-submits
//! them to another random node when none became final for [`RETRY_MS`] (a node that was down, a
//! lost gossip message or a restart's empty mempool would otherwise leave a nonce gap forever).

use std::collections::VecDeque;

use ledger_core::genesis::Genesis;
use ledger_core::{Address, Amount, ChainId, Keypair, Nonce, SignedTransaction, Transaction};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::checker::Checker;
use super::{TxMemo, account_keys};

/// Cadence of the clients.
pub const EVERY_MS: u64 = 50;
/// Transfers a client has in flight at most.
const MAX_OUTSTANDING: usize = 8;
/// A client re-submits after this long without progress.
const RETRY_MS: u64 = 1_500;

#[derive(Debug)]
struct Client {
    key: Keypair,
    address: Address,
    next_nonce: u64,
    /// Signed, not yet final, by nonce.
    outstanding: VecDeque<SignedTransaction>,
    last_progress_ms: u64,
    final_nonce: u64,
}

#[derive(Debug)]
pub struct Workload {
    chain_id: ChainId,
    clients: Vec<Client>,
    /// Transfers per step, on average.
    rate: u32,
}

impl Workload {
    /// `rate`: transfers per [`EVERY_MS`] on average (0: none).
    pub fn new(genesis: &Genesis, rate: u32) -> Workload {
        Workload {
            chain_id: genesis.chain_id().clone(),
            clients: account_keys()
                .into_iter()
                .map(|key| Client {
                    address: key.address(),
                    key,
                    next_nonce: 0,
                    outstanding: VecDeque::new(),
                    last_progress_ms: 0,
                    final_nonce: 0,
                })
                .collect(),
            rate,
        }
    }

    /// One step at `now`: the transfers to submit, per node.
    pub fn step(
        &mut self,
        now: u64,
        rng: &mut ChaCha8Rng,
        memo: &mut TxMemo,
        checker: &Checker,
        n: usize,
    ) -> Vec<(usize, Vec<SignedTransaction>)> {
        let mut out: Vec<(usize, Vec<SignedTransaction>)> = Vec::new();
        let mut add =
            |node: usize, tx: SignedTransaction| match out.iter_mut().find(|(i, _)| *i == node) {
                Some((_, txs)) => txs.push(tx),
                None => out.push((node, vec![tx])),
            };
        // What became final.
        for c in &mut self.clients {
            let fin = checker.committed_nonce(&c.address);
            if fin > c.final_nonce {
                c.final_nonce = fin;
                c.last_progress_ms = now;
            }
            while c.outstanding.front().is_some_and(|t| t.tx.nonce.0 < fin) {
                c.outstanding.pop_front();
            }
            if c.next_nonce < fin {
                c.next_nonce = fin;
            }
        }
        // Retries.
        for c in &mut self.clients {
            if !c.outstanding.is_empty() && now >= c.last_progress_ms + RETRY_MS {
                c.last_progress_ms = now;
                let node = rng.random_range(0..n);
                for tx in &c.outstanding {
                    add(node, tx.clone());
                }
            }
        }
        // New transfers.
        let count = rng.random_range(0..=2 * self.rate);
        let accounts = self.clients.len();
        for _ in 0..count {
            let from = rng.random_range(0..accounts);
            let to_index = (from + rng.random_range(1..accounts)) % accounts;
            let to = self.clients[to_index].address;
            let amount = rng.random_range(1..=1_000);
            let node = rng.random_range(0..n);
            let c = &mut self.clients[from];
            if c.outstanding.len() >= MAX_OUTSTANDING {
                continue;
            }
            if c.outstanding.is_empty() {
                c.last_progress_ms = now;
            }
            let signed = Transaction {
                chain_id: self.chain_id.clone(),
                from: c.key.public(),
                to,
                amount: Amount(amount),
                fee: Amount(1),
                nonce: Nonce(c.next_nonce),
                memo: Vec::new(),
            }
            .sign(&c.key);
            let verified = signed
                .clone()
                .verify(&self.chain_id)
                .expect("a client signs valid transfers");
            memo.insert(verified.hash(), verified);
            c.next_nonce += 1;
            c.outstanding.push_back(signed.clone());
            add(node, signed);
        }
        out
    }
}
