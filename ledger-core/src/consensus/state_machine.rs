//! The machine: Algorithm 1 of "The latest gossip on BFT consensus" for one validator.
//!
//! Each `upon` rule of the paper is a `try_*` method that checks its guard against the current
//! state and, if it holds, performs the rule's body. After every input, [`ConsensusMachine::handle`]
//! runs the rules until none fires (a rule's body can enable another, e.g. our own prevote completes
//! a polka), which is the paper's semantics of rules firing whenever their guard becomes true. The
//! "for the first time" rules (L34, L36, L47) remember that they fired in the current round.

use std::cmp::Reverse;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use super::messages::{ConsensusMessage, MessageError, Proposal, SignedProposal, VerifiedMessage};
use super::proposer::ProposerSchedule;
use super::vote_keeper::{Added, VoteKeeper};
use super::wal::{RestoreError, Restored, WalEntry};
use super::{
    ConsensusConfig, Evidence, Input, MAX_FUTURE_ROUNDS, MAX_PAST_ROUNDS, MAX_PROPOSALS_PER_ROUND,
    NEXT_HEIGHT_MSGS_PER_VALIDATOR, Output, Snapshot, Step, TimeoutKind, timeout_ms,
};
use crate::block::SealedBlock;
use crate::hash::Hash;
use crate::types::{Address, Height, Round, TimestampMs};
use crate::validator::ValidatorSet;
use crate::vote::{CommitCertificate, SignedVote, Vote, VoteKind};

/// Rule passes per input. Every pass but the last fires a rule, each rule fires at most once per
/// round and step, and a round skip jumps straight to its target, so real inputs need a handful;
/// the bound only guards against a bug looping forever.
const MAX_RULE_PASSES: usize = 64;

/// `valid(v)` as far as the machine knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validity {
    /// [`Output::ValidateBlock`] was sent; no answer yet.
    Pending,
    Valid,
    Invalid,
}

#[derive(Debug, Clone)]
struct StoredProposal {
    signed: SignedProposal,
    hash: Hash,
}

#[derive(Debug, Clone)]
struct ValidValue {
    round: Round,
    block: SealedBlock,
    hash: Hash,
}

/// Which "for the first time" rules fired in the current round.
#[derive(Debug, Clone, Copy, Default)]
struct Fired {
    l34: bool,
    l36: bool,
    l47: bool,
}

/// One validator's Tendermint state machine. See the [module docs](super) for the driver's duties.
#[derive(Debug)]
pub struct ConsensusMachine {
    config: ConsensusConfig,
    me: Option<Address>,
    started: bool,
    /// `h_p`.
    height: Height,
    /// `round_p`.
    round: Round,
    /// `step_p`.
    step: Step,
    validators: Option<ValidatorSet>,
    /// `validators`' id: a [`VerifiedMessage`] checked against it is not checked again.
    set_id: Hash,
    schedule: Option<ProposerSchedule>,
    /// Our index in `validators`, if we vote at this height.
    my_index: Option<usize>,
    /// `lockedRound`, `id(lockedValue)`.
    locked: Option<(Round, Hash)>,
    /// `validRound`, `validValue`.
    valid: Option<ValidValue>,
    votes: VoteKeeper,
    /// Proposals from the right proposer, per round; the first one is the round's proposal.
    proposals: BTreeMap<Round, Vec<StoredProposal>>,
    validity: BTreeMap<Hash, Validity>,
    /// Every vote we signed at this height, by (round, kind): never sign a second one.
    own_votes: BTreeMap<(Round, VoteKind), SignedVote>,
    own_proposals: BTreeMap<Round, SignedProposal>,
    /// Rounds whose proposer equivocation was reported.
    proposal_conflicts: BTreeSet<Round>,
    /// The round for which [`Output::BuildBlock`] awaits its answer.
    awaiting_block: Option<Round>,
    fired: Fired,
    /// Highest round of a valid message from each validator at this height (for L55).
    max_round_seen: Vec<Option<Round>>,
    /// Signature-checked messages for `height + 1`.
    next_height: Vec<ConsensusMessage>,
    /// Log contents waiting for the `StartHeight` of their height.
    restored: Option<Restored>,
    height_started_at: TimestampMs,
    /// (height, round, step) at the previous tick, to detect being stuck.
    tick_marker: Option<(Height, Round, Step)>,
}

impl ConsensusMachine {
    /// A machine that has never run. Nothing happens until [`Input::StartHeight`].
    pub fn new(config: ConsensusConfig) -> ConsensusMachine {
        let me = config.key.as_ref().map(|k| k.address());
        ConsensusMachine {
            config,
            me,
            started: false,
            height: Height(0),
            round: Round(0),
            step: Step::NewHeight,
            validators: None,
            set_id: Hash::ZERO,
            schedule: None,
            my_index: None,
            locked: None,
            valid: None,
            votes: VoteKeeper::default(),
            proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            own_votes: BTreeMap::new(),
            own_proposals: BTreeMap::new(),
            proposal_conflicts: BTreeSet::new(),
            awaiting_block: None,
            fired: Fired::default(),
            max_round_seen: Vec::new(),
            next_height: Vec::new(),
            restored: None,
            height_started_at: TimestampMs(0),
            tick_marker: None,
        }
    }

    /// A machine restarting after a crash from its write-ahead log: every [`Output::Persist`] entry
    /// it wrote, in order (entries of older heights are ignored). Nothing happens until
    /// [`Input::StartHeight`]; if that is the log's height, the machine resumes in the log's last
    /// round with its lock, valid value and own votes, re-broadcasting them instead of signing new
    /// ones, so it never signs two different messages for one height, round and step.
    pub fn restore(
        config: ConsensusConfig,
        wal: impl IntoIterator<Item = WalEntry>,
    ) -> Result<ConsensusMachine, RestoreError> {
        let mut m = ConsensusMachine::new(config);
        m.restored = Restored::from_entries(m.me, wal)?;
        Ok(m)
    }

    /// Applies one input at local time `now` and returns what to do, in order.
    pub fn handle(&mut self, now: TimestampMs, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight { height, validators } => {
                self.start_height(now, height, validators, &mut out)
            }
            Input::Proposal(p) => self.on_message(ConsensusMessage::Proposal(p), false, &mut out),
            Input::Vote(v) => self.on_message(ConsensusMessage::Vote(v), false, &mut out),
            Input::Verified(m) => {
                let trusted = self.started && m.set_id() == self.set_id;
                self.on_message(m.into_message(), trusted, &mut out)
            }
            Input::TimeoutElapsed {
                height,
                round,
                kind,
            } => self.on_timeout(now, height, round, kind, &mut out),
            Input::BlockBuilt(block) => self.on_block_built(block, &mut out),
            Input::BlockValidated { block_hash, valid } => {
                if let Some(v) = self.validity.get_mut(&block_hash)
                    && *v == Validity::Pending
                {
                    *v = if valid {
                        Validity::Valid
                    } else {
                        Validity::Invalid
                    };
                }
            }
            Input::Tick => self.on_tick(&mut out),
        }
        self.run_rules(now, &mut out);
        out
    }

    /// Checks a message's signature against the current validator set (and, for a proposal of
    /// this height, that it comes from the round's proposer), for the driver's gossip validation.
    /// Feed the result as [`Input::Verified`] to skip a second check.
    pub fn verify_message(
        &self,
        message: ConsensusMessage,
    ) -> Result<VerifiedMessage, MessageError> {
        let (Some(validators), Some(schedule)) = (&self.validators, &self.schedule) else {
            return Err(MessageError::NotStarted);
        };
        if let ConsensusMessage::Proposal(p) = &message {
            let prop = &p.proposal;
            if let Some(pol_round) = prop.pol_round
                && pol_round >= prop.round
            {
                return Err(MessageError::PolRoundNotBelowRound {
                    round: prop.round,
                    pol_round,
                });
            }
            if prop.height == self.height {
                let expected = schedule.proposer(prop.height, prop.round);
                if expected != prop.proposer {
                    return Err(MessageError::WrongProposer {
                        height: prop.height,
                        round: prop.round,
                        expected,
                        got: prop.proposer,
                    });
                }
            }
        }
        message.verify(&self.config.chain_id, validators)?;
        Ok(VerifiedMessage::new(message, self.set_id))
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            height: self.height,
            round: self.round,
            step: self.step,
            locked: self.locked,
            valid: self.valid.as_ref().map(|v| (v.round, v.hash)),
        }
    }

    pub fn height(&self) -> Height {
        self.height
    }

    pub fn round(&self) -> Round {
        self.round
    }

    pub fn step(&self) -> Step {
        self.step
    }

    pub fn validators(&self) -> Option<&ValidatorSet> {
        self.validators.as_ref()
    }

    /// The proposer of (`height`, `round`) under the current validator set.
    pub fn proposer(&self, height: Height, round: Round) -> Option<Address> {
        self.schedule.as_ref().map(|s| s.proposer(height, round))
    }

    // ---------------------------------------------------------------------------------------------
    // Inputs
    // ---------------------------------------------------------------------------------------------

    fn start_height(
        &mut self,
        now: TimestampMs,
        height: Height,
        validators: ValidatorSet,
        out: &mut Vec<Output>,
    ) {
        if self.started && height <= self.height {
            return;
        }
        let same_set = self.validators.as_ref() == Some(&validators);
        if !same_set {
            self.schedule = Some(ProposerSchedule::new(&validators));
            self.set_id = validators.id();
        }
        self.my_index = self.me.and_then(|a| validators.index_of(&a));
        self.max_round_seen = vec![None; validators.len()];
        self.validators = Some(validators);
        self.started = true;
        self.height = height;
        self.round = Round(0);
        self.height_started_at = now;
        // L10: a new height starts unlocked with no valid value; our votes of older heights are
        // no longer needed to prevent equivocation (we never vote at an older height again).
        self.locked = None;
        self.valid = None;
        self.votes.clear();
        self.proposals.clear();
        self.validity.clear();
        self.own_votes.clear();
        self.own_proposals.clear();
        self.proposal_conflicts.clear();
        self.awaiting_block = None;
        self.tick_marker = None;
        let buffered = std::mem::take(&mut self.next_height);

        let restored = self.restored.take().filter(|r| r.height == height);
        match restored {
            None => self.start_round(now, Round(0), out),
            Some(r) => self.resume(now, r, out),
        }
        // Messages that arrived early for this height. Checked against the previous set, so they
        // are trusted only if the set did not change.
        for m in buffered {
            self.on_message(m, same_set, out);
        }
    }

    /// Resumes a height from the write-ahead log (see [`ConsensusMachine::restore`]).
    fn resume(&mut self, now: TimestampMs, r: Restored, out: &mut Vec<Output>) {
        let round = r.round();
        self.locked = r.locked();
        let polka = r
            .valid
            .as_ref()
            .map(|v| v.polka.clone())
            .unwrap_or_default();
        self.valid = r.valid.clone().map(|v| ValidValue {
            round: v.round,
            block: v.block,
            hash: v.hash,
        });
        for v in r.votes {
            self.own_votes.insert((v.vote.round, v.vote.kind), v);
        }
        for p in r.proposals {
            self.own_proposals.insert(p.proposal.round, p);
        }
        // Our own messages count like anyone's.
        if let (Some(index), Some(validators)) = (self.my_index, &self.validators) {
            let power = validators.by_index(index).map_or(0, |v| v.power);
            for v in self.own_votes.values() {
                self.votes.add(index, power, v.clone(), |_| false);
            }
        }
        for p in self.own_proposals.values().cloned().collect::<Vec<_>>() {
            let hash = p.proposal.block.hash();
            self.validity.insert(hash, Validity::Valid);
            self.store_proposal(p, hash, out);
        }
        if let Some(v) = &self.valid {
            self.validity.insert(v.hash, Validity::Valid);
            // The logged polka behind the valid value, so we can show it to the others again
            // (see `on_tick`). From our own log: not checked again.
            if let Some(validators) = &self.validators {
                let hash = v.hash;
                for vote in polka {
                    let Some(index) = validators.index_of(&vote.vote.validator) else {
                        continue;
                    };
                    let power = validators.by_index(index).map_or(0, |x| x.power);
                    self.votes
                        .add(index, power, vote, |value| value == Some(hash));
                }
            }
        }
        // L11-21 for the logged round: re-sends a logged proposal rather than signing a new one.
        self.start_round(now, round, out);
        // Then continue after the step our logged votes show we completed, re-sending them.
        let prevote = self.own_votes.get(&(round, VoteKind::Prevote)).cloned();
        let precommit = self.own_votes.get(&(round, VoteKind::Precommit)).cloned();
        if let Some(v) = prevote {
            self.step = Step::Prevote;
            out.push(Output::Broadcast(ConsensusMessage::Vote(v)));
        }
        if let Some(v) = precommit {
            // L36 ran in this round before the crash (it set the logged valid value and made us
            // precommit): "for the first time" is over.
            if self.valid.as_ref().is_some_and(|x| x.round == round) {
                self.fired.l36 = true;
            }
            self.step = Step::Precommit;
            out.push(Output::Broadcast(ConsensusMessage::Vote(v)));
        }
        if self.step != Step::Propose {
            self.awaiting_block = None;
        }
    }

    fn on_message(&mut self, msg: ConsensusMessage, trusted: bool, out: &mut Vec<Output>) {
        if !self.started {
            return;
        }
        if msg.height() == self.height.next() {
            self.buffer_next_height(msg, trusted);
            return;
        }
        if msg.height() != self.height || self.step == Step::Commit {
            return;
        }
        let round = msg.round();
        // Below the kept window: worthless now, so not worth a signature check; unless a polka in
        // that round is what a lock, the valid value or a proposal refers to.
        if round < self.min_kept_round() && !self.is_pinned(round) {
            return;
        }
        let (index, power) = {
            let (Some(validators), Some(schedule)) = (&self.validators, &self.schedule) else {
                return;
            };
            let Some(index) = validators.index_of(&msg.signer()) else {
                return;
            };
            if let ConsensusMessage::Proposal(p) = &msg {
                let prop = &p.proposal;
                if schedule.proposer(prop.height, prop.round) != prop.proposer {
                    return;
                }
                if prop.pol_round.is_some_and(|vr| vr >= prop.round) {
                    return;
                }
            }
            if !trusted && msg.verify(&self.config.chain_id, validators).is_err() {
                return;
            }
            (index, validators.by_index(index).map_or(0, |v| v.power))
        };
        // For L55: the highest round this validator has been seen in.
        let seen = &mut self.max_round_seen[index];
        if seen.is_none_or(|s| s < round) {
            *seen = Some(round);
        }
        if round.0 > self.round.0.saturating_add(MAX_FUTURE_ROUNDS) {
            return;
        }
        match msg {
            ConsensusMessage::Proposal(p) => {
                let hash = p.proposal.block.hash();
                self.store_proposal(p, hash, out);
            }
            ConsensusMessage::Vote(v) => {
                // An equivocator's second vote counts if it is for nil or a block we know of.
                let known = &self.validity;
                let relevant = |value: Option<Hash>| value.is_none_or(|h| known.contains_key(&h));
                match self.votes.add(index, power, v.clone(), relevant) {
                    Added::New | Added::Duplicate | Added::Conflict(None) => {}
                    Added::Conflict(Some(first)) => {
                        out.push(Output::Evidence(Evidence::ConflictingVotes {
                            first,
                            second: v,
                        }))
                    }
                }
            }
        }
    }

    /// Stores a proposal already checked to come from its round's proposer, asks for the block's
    /// validation, and reports a proposer that proposed twice.
    fn store_proposal(&mut self, p: SignedProposal, hash: Hash, out: &mut Vec<Output>) {
        let round = p.proposal.round;
        let list = self.proposals.entry(round).or_default();
        if list
            .iter()
            .any(|s| s.hash == hash && s.signed.proposal.pol_round == p.proposal.pol_round)
        {
            return;
        }
        if let Some(first) = list.first() {
            if self.proposal_conflicts.insert(round) {
                out.push(Output::Evidence(Evidence::ConflictingProposals {
                    first: first.signed.signed_summary(first.hash),
                    second: p.signed_summary(hash),
                }));
            }
            // The first proposal stays the round's proposal; a second one is kept only so that
            // L36/L49 can act on it if the others voted for it.
            if list.len() >= MAX_PROPOSALS_PER_ROUND {
                return;
            }
        }
        let header = p.proposal.block.header();
        let wrong_block = header.height != self.height || header.chain_id != self.config.chain_id;
        if let Entry::Vacant(e) = self.validity.entry(hash) {
            if wrong_block {
                // Not a block of this height and chain: invalid without asking the driver.
                e.insert(Validity::Invalid);
            } else {
                e.insert(Validity::Pending);
                out.push(Output::ValidateBlock {
                    height: self.height,
                    block: p.proposal.block.clone(),
                });
            }
        }
        list.push(StoredProposal { signed: p, hash });
    }

    fn buffer_next_height(&mut self, msg: ConsensusMessage, trusted: bool) {
        let Some(validators) = &self.validators else {
            return;
        };
        let signer = msg.signer();
        if validators.index_of(&signer).is_none() {
            return;
        }
        let from_signer = self
            .next_height
            .iter()
            .filter(|m| m.signer() == signer)
            .count();
        if from_signer >= NEXT_HEIGHT_MSGS_PER_VALIDATOR || self.next_height.contains(&msg) {
            return;
        }
        if !trusted && msg.verify(&self.config.chain_id, validators).is_err() {
            return;
        }
        self.next_height.push(msg);
    }

    fn on_timeout(
        &mut self,
        now: TimestampMs,
        height: Height,
        round: Round,
        kind: TimeoutKind,
        out: &mut Vec<Output>,
    ) {
        if !self.started || height != self.height || round != self.round {
            return;
        }
        match (kind, self.step) {
            // L57-60: OnTimeoutPropose(h_p, round_p) while step_p = propose: prevote nil.
            (TimeoutKind::Propose, Step::Propose) => {
                self.awaiting_block = None;
                self.cast_vote(VoteKind::Prevote, None, out);
                self.step = Step::Prevote;
            }
            // L61-64: OnTimeoutPrevote(h_p, round_p) while step_p = prevote: precommit nil.
            (TimeoutKind::Prevote, Step::Prevote) => {
                self.cast_vote(VoteKind::Precommit, None, out);
                self.step = Step::Precommit;
            }
            // L65-67: OnTimeoutPrecommit(h_p, round_p): StartRound(round_p + 1).
            (TimeoutKind::Precommit, Step::Propose | Step::Prevote | Step::Precommit) => {
                if let Some(next) = self.round.0.checked_add(1) {
                    self.start_round(now, Round(next), out);
                }
            }
            _ => {}
        }
    }

    /// L18-19 completed: the driver's `getValue()` answered.
    fn on_block_built(&mut self, block: SealedBlock, out: &mut Vec<Output>) {
        if self.step != Step::Propose
            || self.awaiting_block != Some(self.round)
            || block.height() != self.height
        {
            return;
        }
        self.awaiting_block = None;
        self.propose(None, block, out);
    }

    /// Re-broadcasts when nothing moved since the last tick. The paper assumes gossip in which
    /// every message a correct process received eventually reaches every correct process; over
    /// lossy links and restarts that takes sending again:
    /// - our own proposal and votes of the current round;
    /// - the precommits of the previous round, which moved us here (L47, L65): a validator that
    ///   missed some of them waits in that round for a precommit timeout that never starts, while
    ///   too few validators are ahead of it for a round skip (L55);
    /// - the proposal and the polka (2f+1 prevotes) behind our valid value, signed by others, so
    ///   that every correct validator can accept its re-proposal (L28) even if it missed, or counted
    ///   differently, some of those prevotes (an equivocator may have sent it another vote).
    fn on_tick(&mut self, out: &mut Vec<Output>) {
        if !matches!(self.step, Step::Propose | Step::Prevote | Step::Precommit) {
            return;
        }
        let marker = (self.height, self.round, self.step);
        if self.tick_marker != Some(marker) {
            self.tick_marker = Some(marker);
            return;
        }
        if let Some(p) = self.own_proposals.get(&self.round) {
            out.push(Output::Broadcast(ConsensusMessage::Proposal(p.clone())));
        }
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            if let Some(v) = self.own_votes.get(&(self.round, kind)) {
                out.push(Output::Broadcast(ConsensusMessage::Vote(v.clone())));
            }
        }
        if let Some(previous) = self.round.0.checked_sub(1)
            && let Some(votes) = self.votes.round(Round(previous))
        {
            for v in votes.precommits.all() {
                out.push(Output::Broadcast(ConsensusMessage::Vote(v.clone())));
            }
        }
        let Some(valid) = &self.valid else {
            return;
        };
        let proposal = self
            .proposals
            .get(&valid.round)
            .and_then(|l| l.iter().find(|sp| sp.hash == valid.hash));
        if let Some(sp) = proposal
            && Some(&sp.signed) != self.own_proposals.get(&self.round)
        {
            out.push(Output::Broadcast(ConsensusMessage::Proposal(
                sp.signed.clone(),
            )));
        }
        if let Some(votes) = self.votes.round(valid.round) {
            let own = self.me;
            for v in votes.prevotes.votes_for(Some(valid.hash)) {
                // Ours of the current round went out above.
                if !(Some(v.vote.validator) == own && valid.round == self.round) {
                    out.push(Output::Broadcast(ConsensusMessage::Vote(v.clone())));
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Actions
    // ---------------------------------------------------------------------------------------------

    /// L11-21 StartRound(round).
    fn start_round(&mut self, now: TimestampMs, round: Round, out: &mut Vec<Output>) {
        // L12: round_p <- round; step_p <- propose.
        self.round = round;
        self.step = Step::Propose;
        self.fired = Fired::default();
        self.awaiting_block = None;
        self.prune();
        let height = self.height;
        let proposer = self.proposer(height, round);
        if proposer.is_some() && proposer == self.me && self.my_index.is_some() {
            if let Some(p) = self.own_proposals.get(&round) {
                // Logged before a crash: send the same proposal again, never a different one.
                out.push(Output::Broadcast(ConsensusMessage::Proposal(p.clone())));
            } else if let Some(v) = self.valid.clone() {
                // L14-16, L19: re-propose validValue with validRound.
                self.propose(Some(v.round), v.block, out);
            } else {
                // L17-18: getValue() is the driver's; L19 follows in `on_block_built`.
                self.awaiting_block = Some(round);
                let empty_block_at = if round == Round(0) {
                    TimestampMs(
                        self.height_started_at
                            .0
                            .saturating_add(self.config.params.empty_block_interval_ms),
                    )
                } else {
                    now
                };
                out.push(Output::BuildBlock {
                    height,
                    round,
                    empty_block_at,
                });
            }
        }
        // L21: schedule OnTimeoutPropose(h_p, round_p). The proposer schedules it too, so a driver
        // that never answers BuildBlock cannot stall the round. In round 0 the proposer may wait
        // up to `empty_block_interval_ms` for transactions, so everyone waits that much longer.
        let mut wait = timeout_ms(&self.config.params, TimeoutKind::Propose, round);
        if round == Round(0) {
            wait = wait.saturating_add(self.config.params.empty_block_interval_ms);
        }
        self.schedule_timeout(now, TimeoutKind::Propose, wait, out);
    }

    /// Signs, logs and broadcasts our proposal of `block` for the current round (L19).
    fn propose(&mut self, pol_round: Option<Round>, block: SealedBlock, out: &mut Vec<Output>) {
        let (Some(key), Some(me)) = (&self.config.key, self.me) else {
            return;
        };
        let hash = block.hash();
        let signed = Proposal {
            height: self.height,
            round: self.round,
            pol_round,
            proposer: me,
            block,
        }
        .sign(&self.config.chain_id, key);
        self.own_proposals.insert(self.round, signed.clone());
        out.push(Output::Persist(WalEntry::Proposal(signed.clone())));
        out.push(Output::Broadcast(ConsensusMessage::Proposal(
            signed.clone(),
        )));
        // Our own block needs no validation: our driver built it, or it is our valid value, which
        // we validated before.
        self.validity.insert(hash, Validity::Valid);
        self.store_proposal(signed, hash, out);
    }

    /// Signs, logs and broadcasts our vote of `kind` in the current round, and counts it.
    fn cast_vote(&mut self, kind: VoteKind, value: Option<Hash>, out: &mut Vec<Output>) {
        let round = self.round;
        if let Some(v) = self.own_votes.get(&(round, kind)) {
            // Signed before (the log says so): send that vote again, never sign another one.
            out.push(Output::Broadcast(ConsensusMessage::Vote(v.clone())));
            return;
        }
        let (Some(key), Some(me), Some(index), Some(validators)) =
            (&self.config.key, self.me, self.my_index, &self.validators)
        else {
            // Not a validator at this height: follow without voting.
            return;
        };
        let vote = Vote {
            kind,
            height: self.height,
            round,
            block_hash: value,
            validator: me,
        }
        .sign(&self.config.chain_id, key);
        let power = validators.by_index(index).map_or(0, |v| v.power);
        self.own_votes.insert((round, kind), vote.clone());
        out.push(Output::Persist(WalEntry::Vote(vote.clone())));
        out.push(Output::Broadcast(ConsensusMessage::Vote(vote.clone())));
        self.votes.add(index, power, vote, |_| false);
    }

    fn schedule_timeout(
        &self,
        now: TimestampMs,
        kind: TimeoutKind,
        wait_ms: u64,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::ScheduleTimeout {
            height: self.height,
            round: self.round,
            kind,
            at: TimestampMs(now.0.saturating_add(wait_ms)),
        });
    }

    /// The lowest round whose messages are kept.
    fn min_kept_round(&self) -> Round {
        Round(self.round.0.saturating_sub(MAX_PAST_ROUNDS))
    }

    /// A round below the window whose votes are still needed: the locked and valid rounds, and
    /// the polka round of a kept proposal (L28 looks there).
    fn is_pinned(&self, round: Round) -> bool {
        self.locked.is_some_and(|(r, _)| r == round)
            || self.valid.as_ref().is_some_and(|v| v.round == round)
            || self
                .proposals
                .values()
                .flatten()
                .any(|sp| sp.signed.proposal.pol_round == Some(round))
    }

    /// Bounded memory: forgets rounds below the window, except pinned ones (see `is_pinned`).
    fn prune(&mut self) {
        let min = self.min_kept_round();
        let mut pinned: BTreeSet<Round> = BTreeSet::new();
        pinned.extend(self.locked.map(|(r, _)| r));
        pinned.extend(self.valid.as_ref().map(|v| v.round));
        pinned.extend(
            self.proposals
                .range(min..)
                .flat_map(|(_, l)| l.iter().filter_map(|sp| sp.signed.proposal.pol_round)),
        );
        let keep = |r: Round| r >= min || pinned.contains(&r);
        self.votes.retain(keep);
        self.proposals.retain(|r, _| keep(*r));
        self.proposal_conflicts.retain(|r| keep(*r));
        let mut referenced: BTreeSet<Hash> = self
            .proposals
            .values()
            .flat_map(|l| l.iter().map(|s| s.hash))
            .collect();
        referenced.extend(self.valid.as_ref().map(|v| v.hash));
        self.validity.retain(|h, _| referenced.contains(h));
        let own_min = self.round;
        // We never vote in a lower round again; higher ones are empty by construction.
        self.own_votes.retain(|(r, _), _| *r >= own_min);
        self.own_proposals.retain(|r, _| *r >= own_min);
    }

    // ---------------------------------------------------------------------------------------------
    // The upon rules
    // ---------------------------------------------------------------------------------------------

    fn run_rules(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        for _ in 0..MAX_RULE_PASSES {
            if !matches!(self.step, Step::Propose | Step::Prevote | Step::Precommit) {
                return;
            }
            if self.try_decide(out) {
                return;
            }
            if self.try_skip_round(now, out) {
                continue;
            }
            let fired = self.try_prevote(now, out)
                || self.try_polka_any(now, out)
                || self.try_polka_value(out)
                || self.try_polka_nil(out)
                || self.try_precommit_any(now, out);
            if !fired {
                return;
            }
        }
        debug_assert!(
            false,
            "consensus rules did not settle in {MAX_RULE_PASSES} passes"
        );
    }

    fn is_quorum(&self, power: u64) -> bool {
        self.validators.as_ref().is_some_and(|v| v.is_quorum(power))
    }

    /// L49-54: upon <PROPOSAL, h_p, r, v, *> from proposer(h_p, r) and 2f+1 <PRECOMMIT, h_p, r, id(v)>
    /// while decision_p[h_p] = nil: if valid(v), decide v. Any round r, not only the current one.
    fn try_decide(&mut self, out: &mut Vec<Output>) -> bool {
        let mut decided: Option<(Round, Hash, SealedBlock)> = None;
        'search: for (round, list) in &self.proposals {
            for sp in list {
                let power = self
                    .votes
                    .power_for(*round, VoteKind::Precommit, Some(sp.hash));
                if self.is_quorum(power) && self.validity.get(&sp.hash) == Some(&Validity::Valid) {
                    decided = Some((*round, sp.hash, sp.signed.proposal.block.clone()));
                    break 'search;
                }
            }
        }
        let Some((round, hash, block)) = decided else {
            return false;
        };
        let (Some(validators), Some(votes)) = (&self.validators, self.votes.round(round)) else {
            return false;
        };
        let certificate = CommitCertificate::from_precommits(
            self.height,
            round,
            hash,
            validators,
            votes.precommits.votes_for(Some(hash)),
        );
        // L51-54: the driver commits and starts the next height (StartRound(0) comes with it).
        self.step = Step::Commit;
        self.awaiting_block = None;
        out.push(Output::Decide { block, certificate });
        true
    }

    /// L55-56: upon f+1 <*, h_p, round, *, *> with round > round_p: StartRound(round).
    ///
    /// Counted from the highest round seen from each validator: if validators with more than a
    /// third of the power sent messages in rounds >= r, at least one correct validator reached
    /// round r, which is what the rule needs to know. This keeps one number per validator instead
    /// of the messages of arbitrarily high rounds.
    fn try_skip_round(&mut self, now: TimestampMs, out: &mut Vec<Output>) -> bool {
        let target = {
            let Some(validators) = &self.validators else {
                return false;
            };
            let mut ahead: Vec<(Round, u64)> = self
                .max_round_seen
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let r = (*r)?;
                    (r > self.round).then(|| (r, validators.by_index(i).map_or(0, |v| v.power)))
                })
                .collect();
            ahead.sort_unstable_by_key(|(round, _)| Reverse(*round));
            let mut power = 0u64;
            let mut target = None;
            for (round, p) in ahead {
                power = power.saturating_add(p);
                if validators.is_one_third(power) {
                    target = Some(round);
                    break;
                }
            }
            target
        };
        match target {
            Some(round) => {
                self.start_round(now, round, out);
                true
            }
            None => false,
        }
    }

    /// L22-27 and L28-33: prevote for the round's proposal (or nil) while step_p = propose.
    fn try_prevote(&mut self, now: TimestampMs, out: &mut Vec<Output>) -> bool {
        if self.step != Step::Propose {
            return false;
        }
        let Some(sp) = self.proposals.get(&self.round).and_then(|l| l.first()) else {
            return false;
        };
        let hash = sp.hash;
        let timestamp = sp.signed.proposal.block.header().timestamp_ms;
        let pol_round = sp.signed.proposal.pol_round;
        if let Some(vr) = pol_round {
            // L28: needs 2f+1 <PREVOTE, h_p, vr, id(v)> (vr < round_p is checked on receipt).
            let power = self.votes.power_for(vr, VoteKind::Prevote, Some(hash));
            if !self.is_quorum(power) {
                return false;
            }
        }
        let valid = match self.validity.get(&hash) {
            None | Some(Validity::Pending) => return false,
            Some(Validity::Invalid) => false,
            // The clock-drift check needs our clock, so it is ours rather than the driver's, and
            // only gates our prevote: a block the others decided (L49) is final whatever our clock.
            Some(Validity::Valid) => {
                timestamp.0 <= now.0.saturating_add(self.config.params.max_clock_drift_ms)
            }
        };
        let lock_allows = match (pol_round, self.locked) {
            // L23: lockedRound = -1 or lockedValue = v.
            (_, None) => true,
            (None, Some((_, locked))) => locked == hash,
            // L29: lockedRound <= vr or lockedValue = v.
            (Some(vr), Some((lr, locked))) => lr <= vr || locked == hash,
        };
        // L24/L30 prevote id(v), else L26/L32 prevote nil; L27/L33 step_p <- prevote.
        let value = (valid && lock_allows).then_some(hash);
        self.cast_vote(VoteKind::Prevote, value, out);
        self.step = Step::Prevote;
        true
    }

    /// L34-35: upon 2f+1 <PREVOTE, h_p, round_p, *> while step_p = prevote for the first time:
    /// schedule OnTimeoutPrevote.
    fn try_polka_any(&mut self, now: TimestampMs, out: &mut Vec<Output>) -> bool {
        if self.step != Step::Prevote || self.fired.l34 {
            return false;
        }
        if !self.is_quorum(self.votes.total(self.round, VoteKind::Prevote)) {
            return false;
        }
        self.fired.l34 = true;
        let wait = timeout_ms(&self.config.params, TimeoutKind::Prevote, self.round);
        self.schedule_timeout(now, TimeoutKind::Prevote, wait, out);
        true
    }

    /// L36-43: upon <PROPOSAL, h_p, round_p, v, *> and 2f+1 <PREVOTE, h_p, round_p, id(v)> while
    /// valid(v) and step_p >= prevote for the first time: lock and precommit (if in prevote), and
    /// set the valid value.
    fn try_polka_value(&mut self, out: &mut Vec<Output>) -> bool {
        if !matches!(self.step, Step::Prevote | Step::Precommit) || self.fired.l36 {
            return false;
        }
        let round = self.round;
        let found = self.proposals.get(&round).and_then(|list| {
            list.iter().find(|sp| {
                self.validity.get(&sp.hash) == Some(&Validity::Valid)
                    && self.is_quorum(
                        self.votes
                            .power_for(round, VoteKind::Prevote, Some(sp.hash)),
                    )
            })
        });
        let Some(sp) = found else {
            return false;
        };
        let (hash, block) = (sp.hash, sp.signed.proposal.block.clone());
        self.fired.l36 = true;
        // L42-43: validValue <- v; validRound <- round_p. Logged before the precommit below, so a
        // logged lock always comes with its valid value.
        if self.my_index.is_some() {
            let polka: Vec<SignedVote> = self
                .votes
                .round(round)
                .map(|r| r.prevotes.votes_for(Some(hash)).cloned().collect())
                .unwrap_or_default();
            out.push(Output::Persist(WalEntry::ValidValue {
                height: self.height,
                round,
                block: block.clone(),
                polka,
            }));
        }
        self.valid = Some(ValidValue { round, block, hash });
        if self.step == Step::Prevote {
            // L37-41: lockedValue <- v; lockedRound <- round_p; precommit id(v); step <- precommit.
            self.locked = Some((round, hash));
            self.cast_vote(VoteKind::Precommit, Some(hash), out);
            self.step = Step::Precommit;
        }
        true
    }

    /// L44-46: upon 2f+1 <PREVOTE, h_p, round_p, nil> while step_p = prevote: precommit nil.
    fn try_polka_nil(&mut self, out: &mut Vec<Output>) -> bool {
        if self.step != Step::Prevote {
            return false;
        }
        if !self.is_quorum(self.votes.power_for(self.round, VoteKind::Prevote, None)) {
            return false;
        }
        self.cast_vote(VoteKind::Precommit, None, out);
        self.step = Step::Precommit;
        true
    }

    /// L47-48: upon 2f+1 <PRECOMMIT, h_p, round_p, *> for the first time: schedule
    /// OnTimeoutPrecommit.
    fn try_precommit_any(&mut self, now: TimestampMs, out: &mut Vec<Output>) -> bool {
        if self.fired.l47 || !self.is_quorum(self.votes.total(self.round, VoteKind::Precommit)) {
            return false;
        }
        self.fired.l47 = true;
        let wait = timeout_ms(&self.config.params, TimeoutKind::Precommit, self.round);
        self.schedule_timeout(now, TimeoutKind::Precommit, wait, out);
        true
    }
}
