//! The invariants, checked as the simulation runs.
//!
//! - **Agreement**: no two honest nodes commit different blocks at one height, compared byte for
//!   byte (the canonical encoding of the whole block, header and body, not the header hash).
//! - **Validity**: every block an honest node commits replays, with the real ledger rules
//!   ([`replay_block`] on a real [`State`]), on the state its own chain leads to from genesis: its
//!   certificate verifies, its header fits its parent, every transaction is valid and signed, and
//!   the header's state root is the state root after it.
//! - **Supply**: the total supply after every block is the genesis supply.
//! - **Timestamps**: no block is final with a timestamp more than `max_clock_drift_ms` (plus the
//!   largest clock offset an honest node in the fault model can have) ahead of the (virtual) time
//!   of its first commit: an honest majority's clocks bound it.
//! - **No honest double-signing**: no honest node broadcasts two different votes (or proposals) at
//!   one height, round and step — across crashes and restarts.
//! - **Honest evidence**: evidence reported by an honest node verifies and never accuses an honest
//!   node.
//! - **No engine error** on an honest node (reported by the node).
//! - **Liveness** (checked by the runner at the end): after GST, every honest node commits the
//!   next K heights within a bounded virtual time.
//!
//! The only events that can break the first five are commits and broadcasts, and each is checked
//! the moment it happens, which is the same as checking after every step.
//!
//! Replay is incremental: the first honest commit of each height is replayed on the canonical
//! state. A later honest commit of the same height whose chain is byte-identical to the canonical
//! one up to there would replay to the same result (replay is a deterministic function of the
//! blocks), so it is not replayed again; a node whose chain departs from the canonical one gets its
//! own replay of its whole chain from genesis.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use ledger_core::consensus::{ConsensusMessage, Evidence};
use ledger_core::genesis::Genesis;
use ledger_core::state::State;
use ledger_core::validation::{ParentBlock, replay_block};
use ledger_core::{Address, CommittedBlock, Hash, VoteKind, codec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationKind {
    Agreement,
    Validity,
    Supply,
    Timestamp,
    DoubleSign,
    Evidence,
    Engine,
    Liveness,
    Restore,
    EventBudget,
}

/// The largest wall-clock offset of an honest node within the fault model (start offsets up to
/// 100 ms, jumps up to half the drift bound), with a margin.
pub const HONEST_CLOCK_SLACK_MS: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub at_ms: u64,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {} ms: {}", self.kind, self.at_ms, self.detail)
    }
}

/// One committed height on the agreed chain.
#[derive(Debug, Clone)]
pub struct Canonical {
    /// `codec::encode` of the block.
    pub bytes: Vec<u8>,
    pub hash: Hash,
    pub txs: usize,
    /// The round of the first certificate seen for it.
    pub round: u32,
    pub first_commit_ms: u64,
}

/// A state replayed from genesis, block by block.
#[derive(Debug)]
pub struct Replay {
    pub state: State,
    pub parent: ParentBlock,
    /// The first failure; nothing is replayed past it.
    pub failed: bool,
}

impl Replay {
    pub fn new(genesis: &Genesis) -> Replay {
        Replay {
            state: genesis.initial_state(),
            parent: ParentBlock::genesis(genesis),
            failed: false,
        }
    }

    /// Replays `cb` with the real rules; then checks the header's state root and the supply.
    pub fn apply(&mut self, genesis: &Genesis, cb: &CommittedBlock) -> Result<(), Violation> {
        let h = cb.block.header.height;
        let fail = |kind, detail: String| Violation {
            kind,
            at_ms: 0,
            detail,
        };
        if self.failed {
            return Err(fail(
                ViolationKind::Validity,
                format!("block {h} follows an invalid block"),
            ));
        }
        self.failed = true;
        replay_block(genesis.chain_context(), &self.parent, &mut self.state, cb).map_err(|e| {
            fail(
                ViolationKind::Validity,
                format!("block {h} is invalid: {e}"),
            )
        })?;
        if self.state.root() != cb.block.header.state_root {
            return Err(fail(
                ViolationKind::Validity,
                format!("block {h}: state root after it is not its header's"),
            ));
        }
        check_supply(&self.state, genesis)
            .map_err(|d| fail(ViolationKind::Supply, format!("after block {h}: {d}")))?;
        let sealed = cb.block.clone().seal().expect("replayed, so sealed");
        self.parent = ParentBlock::of(&sealed);
        self.failed = false;
        Ok(())
    }

    pub fn nonce(&self, address: &Address) -> u64 {
        self.state.get(address).map_or(0, |a| a.nonce.0)
    }
}

/// The supply is conserved: `state`'s total is the genesis supply.
pub fn check_supply(state: &State, genesis: &Genesis) -> Result<(), String> {
    let supply = state.total_supply().map_err(|e| e.to_string())?;
    let expected = u128::from(genesis.total_supply().0);
    if supply != expected {
        return Err(format!("total supply {supply}, genesis supply {expected}"));
    }
    Ok(())
}

/// Counts of what honest nodes saw and did: evidence that the faults bite and the paths run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Messages whose bytes did not decode (forged bodies, tampered bytes).
    pub undecodable: u64,
    /// Consensus messages refused at the edge (`ConsensusMessage::verified` failed).
    pub bad_signatures: u64,
    /// `Effect::InvalidProposal`.
    pub invalid_proposals: u64,
    /// `Effect::SyncRefused`.
    pub sync_refused: u64,
    /// Blocks applied from sync (`Effect::Commit` of `Event::Synced`).
    pub synced_blocks: u64,
    /// Restarts from the store, and write-ahead log entries restored by them.
    pub restarts: u64,
    pub wal_restored: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.undecodable += o.undecodable;
        self.bad_signatures += o.bad_signatures;
        self.invalid_proposals += o.invalid_proposals;
        self.sync_refused += o.sync_refused;
        self.synced_blocks += o.synced_blocks;
        self.restarts += o.restarts;
        self.wal_restored += o.wal_restored;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "undecodable messages {}, refused signatures {}, invalid proposals {}, synced blocks {} (refused {}), restarts {} (WAL entries restored {})",
            self.undecodable,
            self.bad_signatures,
            self.invalid_proposals,
            self.synced_blocks,
            self.sync_refused,
            self.restarts,
            self.wal_restored
        )
    }
}

#[derive(Debug)]
pub struct Checker {
    genesis: Arc<Genesis>,
    honest: Vec<bool>,
    pub canonical: BTreeMap<u64, Canonical>,
    /// The canonical chain replayed.
    pub replay: Replay,
    /// Committed height per node.
    pub heights: Vec<u64>,
    /// Honest nodes whose chain departed from the canonical one, with their own replay.
    diverged: BTreeMap<usize, Replay>,
    votes: BTreeMap<(usize, u64, u32, VoteKind), Option<Hash>>,
    proposals: BTreeMap<(usize, u64, u32), (Hash, Option<u32>)>,
    pub violations: Vec<Violation>,
    pub evidence_reports: u64,
    /// What the engines and the nodes' edges saw (for the sweep's summary).
    pub stats: Stats,
}

impl Checker {
    pub fn new(genesis: Arc<Genesis>, honest: Vec<bool>) -> Checker {
        let n = honest.len();
        Checker {
            replay: Replay::new(&genesis),
            genesis,
            honest,
            canonical: BTreeMap::new(),
            heights: vec![0; n],
            diverged: BTreeMap::new(),
            votes: BTreeMap::new(),
            proposals: BTreeMap::new(),
            violations: Vec::new(),
            evidence_reports: 0,
            stats: Stats::default(),
        }
    }

    pub fn violate(&mut self, kind: ViolationKind, at_ms: u64, detail: String) {
        // One report of a kind is enough to fail; more only bloat the output.
        if self.violations.iter().filter(|v| v.kind == kind).count() < 3 {
            self.violations.push(Violation {
                kind,
                // Since the start of the run.
                at_ms: at_ms.checked_sub(super::T0).unwrap_or(at_ms),
                detail,
            });
        }
    }

    /// Node `node` committed the last block of `chain` (its whole durable chain), through
    /// consensus or sync.
    pub fn on_commit(&mut self, node: usize, chain: &[CommittedBlock], now: u64) {
        let Some(cb) = chain.last() else {
            return;
        };
        let h = cb.block.header.height.0;
        self.heights[node] = h;
        if !self.honest[node] {
            return;
        }
        if h != chain.len() as u64 {
            self.violate(
                ViolationKind::Validity,
                now,
                format!("node {node} stored block {h} as its block {}", chain.len()),
            );
        }
        let bytes = codec::encode(&cb.block);
        let agrees = match self.canonical.get(&h) {
            Some(c) if c.bytes != bytes => {
                let (first, hash) = (c.hash, cb.block.hash());
                self.violate(
                    ViolationKind::Agreement,
                    now,
                    format!(
                        "node {node} committed {hash:?} at height {h}, another honest node committed {first:?} (the blocks' bytes differ{})",
                        if first == hash { ", under one header hash" } else { "" }
                    ),
                );
                false
            }
            Some(_) => true,
            None => {
                if h != self.canonical.len() as u64 + 1 {
                    self.violate(
                        ViolationKind::Validity,
                        now,
                        format!(
                            "node {node} committed height {h} before any honest node committed {}",
                            h - 1
                        ),
                    );
                }
                let bound = now
                    + self.genesis.consensus_params().max_clock_drift_ms
                    + HONEST_CLOCK_SLACK_MS;
                if cb.block.header.timestamp_ms.0 > bound {
                    self.violate(
                        ViolationKind::Timestamp,
                        now,
                        format!(
                            "node {node} committed block {h} stamped {} ms after the time of its commit",
                            cb.block.header.timestamp_ms.0 - now
                        ),
                    );
                }
                if let Err(mut v) = self.replay.apply(&self.genesis, cb) {
                    v.at_ms = now;
                    v.detail = format!("node {node}: {}", v.detail);
                    self.violate(v.kind, v.at_ms, v.detail);
                }
                self.canonical.insert(
                    h,
                    Canonical {
                        txs: cb.block.txs.len(),
                        bytes,
                        hash: cb.block.hash(),
                        round: cb.commit.round.0,
                        first_commit_ms: now,
                    },
                );
                true
            }
        };
        if agrees && !self.diverged.contains_key(&node) {
            return;
        }
        // This node's chain is not the canonical one: replay its own.
        let genesis = self.genesis.clone();
        let replay = self.diverged.entry(node).or_insert_with(|| {
            let mut r = Replay::new(&genesis);
            for earlier in &chain[..chain.len() - 1] {
                let _ = r.apply(&genesis, earlier);
            }
            r
        });
        if let Err(mut v) = replay.apply(&genesis, cb) {
            v.at_ms = now;
            v.detail = format!("node {node} (own chain): {}", v.detail);
            self.violate(v.kind, v.at_ms, v.detail);
        }
    }

    /// Honest node `node` is about to put `msg` on the wire: its own message, or one of another
    /// validator's it relays. Keyed by the signer, so a relayed vote of an honest validator that
    /// conflicts with what that validator signed elsewhere is caught too.
    pub fn on_broadcast(&mut self, node: usize, msg: &ConsensusMessage, now: u64) {
        if !self.honest[node] {
            return;
        }
        let Some(signer) = self.genesis.validators().index_of(&msg.signer()) else {
            return;
        };
        if !self.honest[signer] {
            return;
        }
        match msg {
            ConsensusMessage::Vote(v) => {
                let key = (signer, v.vote.height.0, v.vote.round.0, v.vote.kind);
                match self.votes.get(&key) {
                    Some(prev) if *prev != v.vote.block_hash => {
                        let prev = *prev;
                        self.violate(
                            ViolationKind::DoubleSign,
                            now,
                            format!(
                                "honest validator {signer} signed {:?} {prev:?} and {:?} at height {} round {} (sent by node {node})",
                                v.vote.kind, v.vote.block_hash, v.vote.height, v.vote.round
                            ),
                        );
                    }
                    Some(_) => {}
                    None => {
                        self.votes.insert(key, v.vote.block_hash);
                    }
                }
            }
            ConsensusMessage::Proposal(p) => {
                let pr = &p.proposal;
                let key = (signer, pr.height.0, pr.round.0);
                let value = (pr.block.hash(), pr.pol_round.map(|r| r.0));
                match self.proposals.get(&key) {
                    Some(prev) if *prev != value => {
                        self.violate(
                            ViolationKind::DoubleSign,
                            now,
                            format!(
                                "honest validator {signer} proposed twice at height {} round {} (sent by node {node})",
                                pr.height, pr.round
                            ),
                        );
                    }
                    Some(_) => {}
                    None => {
                        self.proposals.insert(key, value);
                    }
                }
            }
        }
    }

    /// Node `node` reported `evidence`.
    pub fn on_evidence(&mut self, node: usize, evidence: &Evidence, now: u64) {
        self.evidence_reports += 1;
        if !self.honest[node] {
            return;
        }
        let validators = self.genesis.validators().clone();
        if let Err(e) = evidence.verify(self.genesis.chain_id(), &validators) {
            self.violate(
                ViolationKind::Evidence,
                now,
                format!("node {node} reported evidence that does not verify: {e}"),
            );
        }
        let offender = evidence.offender();
        let accused = validators.index_of(&offender);
        // Node indices are validator-set indices in the simulation.
        if accused.is_some_and(|i| self.honest[i]) {
            self.violate(
                ViolationKind::Evidence,
                now,
                format!("node {node} accused honest node {accused:?} of equivocation"),
            );
        }
    }

    /// Nonces of the agreed chain's state (what a client can read from any honest node).
    pub fn committed_nonce(&self, address: &Address) -> u64 {
        self.replay.nonce(address)
    }

    /// Every honest node's chain so far was compared and replayed.
    #[allow(dead_code)]
    pub fn diverged_nodes(&self) -> BTreeSet<usize> {
        self.diverged.keys().copied().collect()
    }
}
