//! Vote tallies for one height: per round and step, the votes of each validator and the power
//! behind each value. Detects equivocation.
//!
//! The paper counts messages: an equivocating validator's two votes each count for their own value
//! (its power counts once for "2f+1 of anything"). That matters for liveness: if a correct
//! validator locked on a polka that includes an equivocator's vote, the others must be able to see
//! that polka too once the vote reaches them. Conflicting votes are therefore counted, but, to
//! bound memory against a validator signing arbitrarily many values, a conflicting vote is kept
//! only for a value that can matter (nil, or the block of a known proposal), at most
//! [`MAX_VOTES_PER_VALIDATOR`] per validator, round and step.

use std::collections::{BTreeMap, BTreeSet};

use crate::hash::Hash;
use crate::types::Round;
use crate::vote::{SignedVote, VoteKind};

/// Distinct votes kept per validator, round and step (the first one and conflicting ones).
pub(crate) const MAX_VOTES_PER_VALIDATOR: usize = 4;

/// The votes of one kind in one round.
#[derive(Debug, Clone, Default)]
pub(crate) struct VoteSet {
    /// By validator index: its first vote, then conflicting ones (distinct values).
    votes: BTreeMap<usize, Vec<SignedVote>>,
    /// Power per value (`None` = nil).
    power: BTreeMap<Option<Hash>, u64>,
    total: u64,
    /// Validators already reported as equivocating here (one report each).
    reported: BTreeSet<usize>,
}

/// What adding a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Added {
    New,
    Duplicate,
    /// The validator already voted differently here. Holds its first vote when this is the first
    /// report for the validator here.
    Conflict(Option<SignedVote>),
}

impl VoteSet {
    fn add(
        &mut self,
        index: usize,
        power: u64,
        vote: SignedVote,
        relevant: impl Fn(Option<Hash>) -> bool,
    ) -> Added {
        let value = vote.vote.block_hash;
        match self.votes.get_mut(&index) {
            None => {
                *self.power.entry(value).or_insert(0) += power;
                self.total += power;
                self.votes.insert(index, vec![vote]);
                Added::New
            }
            Some(list) if list.iter().any(|v| v.vote.block_hash == value) => Added::Duplicate,
            Some(list) => {
                let first = list[0].clone();
                if relevant(value) && list.len() < MAX_VOTES_PER_VALIDATOR {
                    // Counts for its value; the validator's power is already in `total`.
                    *self.power.entry(value).or_insert(0) += power;
                    list.push(vote);
                }
                if self.reported.insert(index) {
                    Added::Conflict(Some(first))
                } else {
                    Added::Conflict(None)
                }
            }
        }
    }

    /// Every vote, in validator order.
    pub(crate) fn all(&self) -> impl Iterator<Item = &SignedVote> {
        self.votes.values().flatten()
    }

    /// Power voting for `value` (`None` = nil).
    pub(crate) fn power_for(&self, value: Option<Hash>) -> u64 {
        self.power.get(&value).copied().unwrap_or(0)
    }

    /// Power voting for anything (the paper's `*`).
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The votes for `value`, in validator order.
    pub(crate) fn votes_for(&self, value: Option<Hash>) -> impl Iterator<Item = &SignedVote> {
        self.votes
            .values()
            .flatten()
            .filter(move |v| v.vote.block_hash == value)
    }
}

/// Prevotes and precommits of one round.
#[derive(Debug, Clone, Default)]
pub(crate) struct RoundVotes {
    pub prevotes: VoteSet,
    pub precommits: VoteSet,
}

impl RoundVotes {
    pub(crate) fn get(&self, kind: VoteKind) -> &VoteSet {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }
}

/// All rounds' votes of the current height.
#[derive(Debug, Clone, Default)]
pub(crate) struct VoteKeeper {
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteKeeper {
    /// Adds a verified vote of validator `index` with `power`. A vote conflicting with an earlier
    /// one of the validator counts only if `relevant` says its value can matter.
    pub(crate) fn add(
        &mut self,
        index: usize,
        power: u64,
        vote: SignedVote,
        relevant: impl Fn(Option<Hash>) -> bool,
    ) -> Added {
        let round = self.rounds.entry(vote.vote.round).or_default();
        match vote.vote.kind {
            VoteKind::Prevote => round.prevotes.add(index, power, vote, relevant),
            VoteKind::Precommit => round.precommits.add(index, power, vote, relevant),
        }
    }

    pub(crate) fn round(&self, round: Round) -> Option<&RoundVotes> {
        self.rounds.get(&round)
    }

    /// Power of `kind` votes for `value` in `round`.
    pub(crate) fn power_for(&self, round: Round, kind: VoteKind, value: Option<Hash>) -> u64 {
        self.rounds
            .get(&round)
            .map_or(0, |r| r.get(kind).power_for(value))
    }

    /// Power of `kind` votes for anything in `round`.
    pub(crate) fn total(&self, round: Round, kind: VoteKind) -> u64 {
        self.rounds.get(&round).map_or(0, |r| r.get(kind).total())
    }

    /// Drops every round for which `keep` is false.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Round) -> bool) {
        self.rounds.retain(|r, _| keep(*r));
    }

    pub(crate) fn clear(&mut self) {
        self.rounds.clear();
    }
}
