//! The invariants, checked as the simulation runs.
//!
//! - **Agreement**: no two honest nodes commit different blocks at one height.
//! - **Validity**: every block an honest node commits is valid on the agreed chain and carries a
//!   commit certificate that verifies against the validator set.
//! - **No honest double-signing**: no honest node broadcasts two different votes (or proposals) at
//!   one height, round and step — across crashes and restarts.
//! - **Honest evidence**: evidence reported by an honest node verifies and never accuses an honest
//!   node.
//! - **Liveness** (checked by the runner at the end): after GST, every honest node commits the
//!   next K heights within a bounded virtual time.
//!
//! The only events that can break the first four are commits and broadcasts, and each is checked
//! the moment it happens, which is the same as checking after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ledger_core::consensus::{ConsensusMessage, Evidence};
use ledger_core::{Block, ChainId, CommitCertificate, Hash, ValidatorSet, VoteKind};

use super::node::{ParentInfo, check_block};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationKind {
    Agreement,
    Validity,
    DoubleSign,
    Evidence,
    Liveness,
    Restore,
    EventBudget,
}

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
    pub block: Block,
    pub hash: Hash,
    /// The round of the first certificate seen for it.
    pub round: u32,
    pub first_commit_ms: u64,
}

#[derive(Debug)]
pub struct Checker {
    chain_id: ChainId,
    validators: ValidatorSet,
    genesis: ParentInfo,
    honest: Vec<bool>,
    pub canonical: BTreeMap<u64, Canonical>,
    /// Committed height per node.
    pub heights: Vec<u64>,
    votes: BTreeMap<(usize, u64, u32, VoteKind), Option<Hash>>,
    proposals: BTreeMap<(usize, u64, u32), (Hash, Option<u32>)>,
    verified_certs: BTreeSet<Hash>,
    pub violations: Vec<Violation>,
    pub evidence_reports: u64,
}

impl Checker {
    pub fn new(
        chain_id: ChainId,
        validators: ValidatorSet,
        genesis: ParentInfo,
        honest: Vec<bool>,
    ) -> Checker {
        let n = honest.len();
        Checker {
            chain_id,
            validators,
            genesis,
            honest,
            canonical: BTreeMap::new(),
            heights: vec![0; n],
            votes: BTreeMap::new(),
            proposals: BTreeMap::new(),
            verified_certs: BTreeSet::new(),
            violations: Vec::new(),
            evidence_reports: 0,
        }
    }

    pub fn violate(&mut self, kind: ViolationKind, at_ms: u64, detail: String) {
        // One report of a kind is enough to fail; more only bloat the output.
        if self.violations.iter().filter(|v| v.kind == kind).count() < 3 {
            self.violations.push(Violation {
                kind,
                at_ms,
                detail,
            });
        }
    }

    /// Node `node` committed `block` with `cert` (through consensus or sync).
    pub fn on_commit(&mut self, node: usize, block: &Block, cert: &CommitCertificate, now: u64) {
        let h = block.header.height.0;
        let hash = block.hash();
        self.heights[node] = h;
        if !self.honest[node] {
            return;
        }
        let cert_id = cert.hash();
        if !self.verified_certs.contains(&cert_id) {
            match cert.verify(&self.chain_id, &self.validators, block.header.height, &hash) {
                Ok(()) => {
                    self.verified_certs.insert(cert_id);
                }
                Err(e) => {
                    self.violate(
                        ViolationKind::Validity,
                        now,
                        format!("node {node} committed height {h} with a bad certificate: {e}"),
                    );
                }
            }
        }
        match self.canonical.get(&h) {
            Some(c) if c.hash != hash => {
                let first = c.hash;
                self.violate(
                    ViolationKind::Agreement,
                    now,
                    format!("node {node} committed {hash:?} at height {h}, another honest node committed {first:?}"),
                );
            }
            Some(_) => {}
            None => {
                let parent = if h <= 1 {
                    Some(self.genesis)
                } else {
                    self.canonical.get(&(h - 1)).map(|c| ParentInfo {
                        height: h - 1,
                        hash: c.hash,
                        timestamp_ms: c.block.header.timestamp_ms.0,
                    })
                };
                match parent {
                    None => self.violate(
                        ViolationKind::Validity,
                        now,
                        format!(
                            "node {node} committed height {h} before any honest node committed {}",
                            h - 1
                        ),
                    ),
                    Some(parent) => {
                        if let Err(e) = check_block(
                            &self.chain_id,
                            &self.validators,
                            &parent,
                            block,
                            &mut BTreeSet::new(),
                        ) {
                            self.violate(
                                ViolationKind::Validity,
                                now,
                                format!(
                                    "node {node} committed an invalid block at height {h}: {e}"
                                ),
                            );
                        }
                    }
                }
                self.canonical.insert(
                    h,
                    Canonical {
                        block: block.clone(),
                        hash,
                        round: cert.round.0,
                        first_commit_ms: now,
                    },
                );
            }
        }
    }

    /// Honest node `node` is about to put `msg` on the wire: its own message, or one of another
    /// validator's it relays. Keyed by the signer, so a relayed vote of an honest validator that
    /// conflicts with what that validator signed elsewhere is caught too.
    pub fn on_broadcast(&mut self, node: usize, msg: &ConsensusMessage, now: u64) {
        if !self.honest[node] {
            return;
        }
        let Some(signer) = self.validators.index_of(&msg.signer()) else {
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
        if let Err(e) = evidence.verify(&self.chain_id, &self.validators) {
            self.violate(
                ViolationKind::Evidence,
                now,
                format!("node {node} reported evidence that does not verify: {e}"),
            );
        }
        let offender = evidence.offender();
        let accused = self.validators.index_of(&offender);
        // Node indices are validator-set indices in the simulation.
        if accused.is_some_and(|i| self.honest[i]) {
            self.violate(
                ViolationKind::Evidence,
                now,
                format!("node {node} accused honest node {accused:?} of equivocation"),
            );
        }
    }
}
