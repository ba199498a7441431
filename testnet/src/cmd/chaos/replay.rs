//! Replaying the chain from genesis with ledger-core, over blocks as the HTTP API serves them.
//!
//! `GET /v1/blocks/...` gives a block's header, transactions and its own commit certificate, but not
//! `Block::last_commit` (the parent's certificate the block carries, which the header commits to by
//! hash). A node stores the certificate it assembled itself, and the next proposer embeds its own,
//! so the two may hold different (equally valid) signature sets. We rebuild `last_commit` from the
//! certificates every node serves for the parent height, taking the one whose hash is the header's
//! `last_commit_hash`; then the block is a real `CommittedBlock` and goes through
//! `ledger_core::validation::replay_block` (both certificates verified, header, transactions,
//! execution and state root checked, state committed).
//!
//! When no served certificate matches (no node stores the one the proposer embedded), the block
//! cannot be rebuilt byte for byte: it is then executed with ledger-core's own transfer rules
//! (`StateOverlay::apply_tx`: nonce, checked debit and credits, fee to the proposer) and its state
//! root compared, without the certificate checks. The report counts such blocks.

use ledger_core::api::BlockResponse;
use ledger_core::genesis::Genesis;
use ledger_core::state::{Account, State as LedgerState, StateOverlay};
use ledger_core::validation::{ParentBlock, replay_block};
use ledger_core::{Address, Block, CommitCertificate, CommittedBlock, Height, SignedTransaction};

use super::checks::{History, Invariant, Violation, check_supply};

#[derive(Debug)]
pub struct Replay {
    genesis: Genesis,
    state: LedgerState,
    parent: ParentBlock,
    genesis_supply: u128,
    pub history: History,
    /// Blocks that went through `replay_block`.
    pub replayed: u64,
    /// Blocks re-executed without the certificate checks, and the first reason.
    pub reexecuted: u64,
    pub reexecute_reason: Option<String>,
    pub violations: Vec<Violation>,
    /// Set when a block could not be applied at all: later blocks are not replayed.
    pub stopped: bool,
}

impl Replay {
    pub fn new(genesis: &Genesis) -> Replay {
        let state = genesis.initial_state();
        let history = History::new(genesis.initial_accounts());
        Replay {
            genesis: genesis.clone(),
            genesis_supply: u128::from(genesis.total_supply().0),
            parent: ParentBlock::genesis(genesis),
            state,
            history,
            replayed: 0,
            reexecuted: 0,
            reexecute_reason: None,
            violations: Vec::new(),
            stopped: false,
        }
    }

    /// The last applied height.
    pub fn height(&self) -> u64 {
        self.parent.height.0
    }

    fn fail(&mut self, height: u64, detail: String) {
        self.violations.push(Violation::new(
            Invariant::Replay,
            format!("block {height}: {detail}"),
        ));
    }

    /// Applies the next block as one node serves it. `parent_certs`: the certificates the nodes
    /// serve for the block below (its `last_commit` is one of them, found by hash).
    pub fn apply(&mut self, b: &BlockResponse, parent_certs: &[CommitCertificate]) {
        if self.stopped {
            return;
        }
        let height = b.header.height.0;
        if height != self.height() + 1 {
            self.fail(height, format!("expected block {} next", self.height() + 1));
            self.stopped = true;
            return;
        }
        if b.header.hash() != b.hash {
            self.fail(
                height,
                format!(
                    "served with hash {}, its header hashes to {}",
                    b.hash,
                    b.header.hash()
                ),
            );
        }
        for (i, t) in b.txs.iter().enumerate() {
            if t.transaction.hash() != t.hash {
                self.fail(
                    height,
                    format!(
                        "transaction {i} served with hash {}, it hashes to {}",
                        t.hash,
                        t.transaction.hash()
                    ),
                );
            }
        }
        let txs: Vec<SignedTransaction> = b.txs.iter().map(|t| t.transaction.clone()).collect();
        let last_commit = if height == 1 {
            Some(None)
        } else {
            parent_certs
                .iter()
                .find(|c| c.hash() == b.header.last_commit_hash)
                .map(|c| Some(c.clone()))
        };
        let rebuilt = match (last_commit, &b.commit) {
            (Some(last_commit), Some(commit)) => Ok(CommittedBlock {
                block: Block {
                    header: b.header.clone(),
                    last_commit,
                    txs: txs.clone(),
                },
                commit: commit.clone(),
            }),
            (None, _) => Err(format!(
                "none of the {} certificates served for block {} hashes to its last_commit_hash {}",
                parent_certs.len(),
                height - 1,
                b.header.last_commit_hash
            )),
            (_, None) => Err("served without its commit certificate".to_string()),
        };
        match rebuilt {
            Ok(committed) => {
                match replay_block(
                    self.genesis.chain_context(),
                    &self.parent,
                    &mut self.state,
                    &committed,
                ) {
                    Ok(executed) => {
                        self.history.record(height, executed.changes());
                        self.replayed += 1;
                        self.advance(b);
                    }
                    Err(e) => {
                        self.fail(height, format!("ledger-core refuses it: {e}"));
                        // Keep going on the transfers alone, so balances can still be compared.
                        self.reexecute(b, &txs);
                    }
                }
            }
            Err(reason) => {
                if self.reexecute_reason.is_none() {
                    self.reexecute_reason = Some(format!("block {height}: {reason}"));
                }
                self.reexecute(b, &txs);
            }
        }
    }

    /// Executes the block's transfers with ledger-core's rules, without certificates.
    fn reexecute(&mut self, b: &BlockResponse, txs: &[SignedTransaction]) {
        let height = b.header.height.0;
        let chain_id = self.genesis.chain_id().clone();
        if b.header.prev_hash != self.parent.hash {
            self.fail(
                height,
                format!(
                    "its prev_hash {} is not block {}'s hash {}",
                    b.header.prev_hash,
                    self.height(),
                    self.parent.hash
                ),
            );
        }
        let mut overlay = StateOverlay::new(&self.state);
        for (i, stx) in txs.iter().enumerate() {
            let verified = match stx.clone().verify(&chain_id) {
                Ok(v) => v,
                Err(e) => {
                    self.fail(height, format!("transaction {i} is invalid: {e}"));
                    self.stopped = true;
                    return;
                }
            };
            if let Err(e) = overlay.apply_tx(&verified, &b.header.proposer) {
                self.fail(height, format!("transaction {i} does not apply: {e}"));
                self.stopped = true;
                return;
            }
        }
        let changes = overlay.into_changes();
        let mut accounts: std::collections::BTreeMap<Address, Account> =
            match self.state.accounts_sorted() {
                Ok(all) => all.into_iter().collect(),
                Err(e) => {
                    self.fail(height, format!("reading the replayed state: {e}"));
                    self.stopped = true;
                    return;
                }
            };
        accounts.extend(changes.iter().copied());
        match LedgerState::from_accounts(accounts) {
            Ok(state) => self.state = state,
            Err(e) => {
                self.fail(height, format!("the state after it is invalid: {e}"));
                self.stopped = true;
                return;
            }
        }
        if self.state.root() != b.header.state_root {
            self.fail(
                height,
                format!(
                    "executing its transfers gives state root {}, its header says {}",
                    self.state.root(),
                    b.header.state_root
                ),
            );
        }
        self.history.record(height, &changes);
        self.reexecuted += 1;
        self.advance(b);
    }

    fn advance(&mut self, b: &BlockResponse) {
        self.parent = ParentBlock {
            height: Height(b.header.height.0),
            hash: b.header.hash(),
            timestamp_ms: b.header.timestamp_ms,
        };
        match self.state.total_supply() {
            Ok(supply) => {
                if let Some(v) = check_supply(b.header.height.0, supply, self.genesis_supply) {
                    self.violations.push(v);
                }
            }
            Err(e) => self.fail(
                b.header.height.0,
                format!("reading the replayed state: {e}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use ledger_core::api::BlockTx;
    use ledger_core::validation::build_block;
    use ledger_core::{Amount, Keypair, Round, TimestampMs, Vote, VoteKind};

    use super::*;

    /// A real 3-block chain built and certified with ledger-core (dev keys), as the API serves it:
    /// each block's own certificate signed by `signers[h]` validators, so certificates of one height
    /// can differ between "nodes".
    struct TestChain {
        genesis: Genesis,
        blocks: Vec<BlockResponse>,
        /// For each block, the certificate the next block embeds and another valid one.
        certs: Vec<(CommitCertificate, CommitCertificate)>,
    }

    fn certificate(
        g: &Genesis,
        height: Height,
        hash: ledger_core::Hash,
        signers: u32,
    ) -> CommitCertificate {
        let votes: Vec<_> = (0..signers)
            .map(|i| {
                let key = Keypair::dev("validator", i);
                Vote {
                    kind: VoteKind::Precommit,
                    height,
                    round: Round(0),
                    block_hash: Some(hash),
                    validator: key.address(),
                }
                .sign(g.chain_id(), &key)
            })
            .collect();
        CommitCertificate::from_precommits(height, Round(0), hash, g.validators(), &votes)
    }

    fn test_chain() -> TestChain {
        let genesis = Genesis::dev("chaos-replay-test", 4, 4).expect("genesis");
        let mut state = genesis.initial_state();
        let mut parent = ParentBlock::genesis(&genesis);
        let mut last: Option<CommitCertificate> = None;
        let mut blocks = Vec::new();
        let mut certs = Vec::new();
        for h in 1..=3u64 {
            let txs: Vec<_> = (0..2u32)
                .map(|a| {
                    let key = Keypair::dev("account", a);
                    crate::cmd::load::transfers::sign_transfer(
                        genesis.chain_id(),
                        &key,
                        Keypair::dev("account", a + 1).address(),
                        10 * h,
                        1,
                        h - 1,
                    )
                    .verify(genesis.chain_id())
                    .expect("valid")
                })
                .collect();
            let built = build_block(
                genesis.chain_context(),
                &parent,
                &mut state,
                &txs,
                Keypair::dev("validator", (h % 4) as u32).address(),
                TimestampMs(genesis.genesis_time_ms().0 + 1000 * h),
                last.clone(),
            )
            .expect("builds");
            assert!(built.rejected.is_empty());
            // Commit the built block, as its proposer does, so the next one builds on it.
            state.commit(&built.executed).expect("commits");
            let sealed = built.block;
            let embedded = certificate(&genesis, sealed.header().height, sealed.hash(), 3);
            let other = certificate(&genesis, sealed.header().height, sealed.hash(), 4);
            let block = sealed.block().clone();
            blocks.push(BlockResponse {
                hash: sealed.hash(),
                header: block.header.clone(),
                txs: block
                    .txs
                    .iter()
                    .map(|t| BlockTx {
                        hash: t.hash(),
                        from_address: t.tx.sender(),
                        transaction: t.clone(),
                    })
                    .collect(),
                // The serving node stores the 4-signature certificate, not the embedded one.
                commit: Some(other.clone()),
            });
            parent = ParentBlock::of(&sealed);
            last = Some(embedded.clone());
            certs.push((embedded, other));
        }
        TestChain {
            genesis,
            blocks,
            certs,
        }
    }

    fn replay_all(c: &TestChain, blocks: &[BlockResponse], with_embedded: bool) -> Replay {
        let mut r = Replay::new(&c.genesis);
        for (k, b) in blocks.iter().enumerate() {
            let parents: Vec<CommitCertificate> = match k.checked_sub(1) {
                Some(p) if with_embedded => vec![c.certs[p].1.clone(), c.certs[p].0.clone()],
                Some(p) => vec![c.certs[p].1.clone()],
                None => vec![],
            };
            r.apply(b, &parents);
        }
        r
    }

    #[test]
    fn an_honest_chain_replays_through_replay_block_and_gives_the_balances() {
        let c = test_chain();
        let r = replay_all(&c, &c.blocks, true);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.replayed, r.reexecuted, r.height()), (3, 0, 3));
        // Account 0 sent 10 + 20 + 30 and 3 fees; account 2 received the same from account 1.
        let a0 = Keypair::dev("account", 0).address();
        let start = c.genesis.accounts()[0].balance.0;
        assert_eq!(r.history.at(&a0, 3).balance, Amount(start - 63));
        assert_eq!(r.history.at(&a0, 3).nonce.0, 3);
        assert_eq!(r.history.at(&a0, 1).nonce.0, 1);
    }

    #[test]
    fn without_the_embedded_certificate_blocks_are_re_executed_and_still_checked() {
        let c = test_chain();
        let r = replay_all(&c, &c.blocks, false);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.replayed, r.reexecuted), (1, 2));
        assert!(r.reexecute_reason.is_some());
    }

    #[test]
    fn a_tampered_block_fails_the_replay() {
        let c = test_chain();
        // A node serving block 2 with one transfer's amount changed: the signature no longer holds
        // and the header's transaction root does not match.
        let mut blocks = c.blocks.clone();
        blocks[1].txs[0].transaction.tx.amount = Amount(1_000);
        for with_embedded in [true, false] {
            let r = replay_all(&c, &blocks, with_embedded);
            assert!(
                r.violations
                    .iter()
                    .any(|v| v.invariant == Invariant::Replay && v.detail.starts_with("block 2")),
                "{:?}",
                r.violations
            );
        }
        // A state root that does not follow from the transfers.
        let mut blocks = c.blocks.clone();
        blocks[2].header.state_root = ledger_core::Hash::digest(b"wrong");
        let r = replay_all(&c, &blocks, false);
        assert!(
            r.violations.iter().any(|v| v.detail.contains("state root")),
            "{:?}",
            r.violations
        );
        // A gap in the chain.
        let r = replay_all(&c, &[c.blocks[0].clone(), c.blocks[2].clone()], true);
        assert!(r.stopped);
        assert_eq!(r.height(), 1);
    }
}
