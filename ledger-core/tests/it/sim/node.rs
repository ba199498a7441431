//! A simulated node: a tiny driver around the real [`ConsensusMachine`].
//!
//! It does what the node's consensus task does, minus the I/O: executes outputs in order (the
//! write-ahead log is "durable" the moment an entry is appended; a crash can cut the output list
//! anywhere), builds real blocks with valid headers on its own chain (no transactions), validates
//! proposals with an honest check, commits decided blocks with their certificates, answers the
//! machine's timers, ticks, and syncs: a node that sees a peer behind sends it committed blocks
//! with certificates; a node that sees a peer ahead asks for them.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use ledger_core::consensus::{
    ConsensusConfig, ConsensusMachine, ConsensusMessage, Input, Output, TimeoutKind, WalEntry,
};
use ledger_core::merkle::merkle_root;
use ledger_core::{
    Block, BlockHeader, ChainId, CommitCertificate, CommittedBlock, Hash, Height, Keypair, Round,
    TimestampMs, ValidatorSet,
};
use rand::RngExt;

use super::byzantine::{Me, Strategy};
use super::checker::ViolationKind;
use super::{Ctx, Event, NetMsg, Timer};

/// Blocks per sync response.
const SYNC_BATCH: u64 = 8;
/// Minimum virtual time between two sync messages to one peer.
const SYNC_INTERVAL_MS: u64 = 200;
/// A node asks for blocks only after it has been at its height this long: a peer one height ahead
/// is normal for a moment, and the machine buffers the next height's messages meanwhile.
const SYNC_GRACE_MS: u64 = 1000;
/// Re-broadcast cadence of [`Input::Tick`].
pub const TICK_MS: u64 = 300;

/// What a block builds on: the last committed block, or genesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentInfo {
    pub height: u64,
    pub hash: Hash,
    pub timestamp_ms: u64,
}

/// The state root of the empty ledger: the simulation carries no transactions, so every block
/// leaves the state as genesis made it.
pub const STATE_ROOT: Hash = Hash::ZERO;

/// The honest validity check (`valid(v)`) of the simulated chain: the header fits the parent, the
/// proposer is a validator, the transaction root and count match the body, and the previous block's
/// certificate verifies (cached by certificate hash in `verified_certs`).
pub fn check_block(
    chain_id: &ChainId,
    validators: &ValidatorSet,
    parent: &ParentInfo,
    block: &Block,
    verified_certs: &mut BTreeSet<Hash>,
) -> Result<(), String> {
    let h = &block.header;
    if &h.chain_id != chain_id {
        return Err(format!("chain id {}", h.chain_id));
    }
    if h.height.0 != parent.height + 1 {
        return Err(format!("height {} on parent {}", h.height, parent.height));
    }
    if h.prev_hash != parent.hash {
        return Err("previous hash".into());
    }
    if h.timestamp_ms.0 <= parent.timestamp_ms {
        return Err(format!(
            "timestamp {} not after {}",
            h.timestamp_ms, parent.timestamp_ms
        ));
    }
    if validators.get(&h.proposer).is_none() {
        return Err("proposer is not a validator".into());
    }
    let hashes: Vec<Hash> = block.txs.iter().map(|t| t.hash()).collect();
    if h.tx_count as usize != block.txs.len() || h.tx_root != merkle_root(&hashes) {
        return Err("transaction root or count".into());
    }
    if h.state_root != STATE_ROOT {
        return Err("state root".into());
    }
    match (&block.last_commit, parent.height) {
        (None, 0) if h.last_commit_hash == Hash::ZERO => Ok(()),
        (Some(cert), p) if p > 0 => {
            if h.last_commit_hash != cert.hash() {
                return Err("last commit hash".into());
            }
            if verified_certs.contains(&cert.hash()) {
                return Ok(());
            }
            cert.verify(chain_id, validators, Height(p), &parent.hash)
                .map_err(|e| format!("last commit: {e}"))?;
            verified_certs.insert(cert.hash());
            Ok(())
        }
        _ => Err("last commit presence".into()),
    }
}

pub struct SimNode {
    pub index: usize,
    key: Keypair,
    /// `None` for an honest node.
    pub strategy: Option<Box<dyn Strategy>>,
    machine: Option<ConsensusMachine>,
    /// Incarnation: timers of an earlier life are ignored.
    pub epoch: u32,
    /// The durable write-ahead log (survives crashes).
    wal: Vec<WalEntry>,
    /// The durable block store (survives crashes).
    pub chain: Vec<CommittedBlock>,
    clock_offset_ms: i64,
    height_started_ms: u64,
    last_sync_reply_ms: Vec<Option<u64>>,
    last_sync_request_ms: Vec<Option<u64>>,
    /// Crash while executing the next non-empty output list, after this many (mod its length).
    crash_armed: Option<u32>,
    verified_certs: BTreeSet<Hash>,
    /// Check signatures in the driver (`verify_message` + `Input::Verified`) instead of the machine.
    pre_verify: bool,
    pub restarts: u32,
}

impl fmt::Debug for SimNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimNode")
            .field("index", &self.index)
            .field("strategy", &self.strategy)
            .field("up", &self.machine.is_some())
            .field("height", &self.chain.len())
            .finish()
    }
}

impl SimNode {
    pub fn new(
        index: usize,
        key: Keypair,
        strategy: Option<Box<dyn Strategy>>,
        clock_offset_ms: i64,
        n: usize,
    ) -> SimNode {
        SimNode {
            index,
            key,
            strategy,
            machine: None,
            epoch: 0,
            wal: Vec::new(),
            chain: Vec::new(),
            clock_offset_ms,
            height_started_ms: 0,
            last_sync_reply_ms: vec![None; n],
            last_sync_request_ms: vec![None; n],
            crash_armed: None,
            verified_certs: BTreeSet::new(),
            pre_verify: index % 2 == 1,
            restarts: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.machine.is_some()
    }

    fn local(&self, virtual_ms: u64) -> u64 {
        virtual_ms.saturating_add_signed(self.clock_offset_ms)
    }

    fn to_virtual(&self, local_ms: u64) -> u64 {
        local_ms.saturating_add_signed(-self.clock_offset_ms)
    }

    fn config(&self, ctx: &Ctx<'_>) -> ConsensusConfig {
        ConsensusConfig {
            chain_id: ctx.world.chain_id.clone(),
            params: ctx.world.params.clone(),
            key: Some(self.key.clone()),
        }
    }

    fn next_height(&self) -> Height {
        Height(self.chain.len() as u64 + 1)
    }

    fn parent(&self, ctx: &Ctx<'_>) -> ParentInfo {
        match self.chain.last() {
            None => ctx.world.genesis,
            Some(c) => ParentInfo {
                height: c.block.header.height.0,
                hash: c.block.hash(),
                timestamp_ms: c.block.header.timestamp_ms.0,
            },
        }
    }

    /// First start: a fresh machine.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.machine = Some(ConsensusMachine::new(self.config(ctx)));
        self.begin(ctx);
    }

    fn begin(&mut self, ctx: &mut Ctx<'_>) {
        self.height_started_ms = ctx.now;
        let tick = ctx.now + TICK_MS;
        ctx.queue.push(tick, self.timer(Timer::Tick));
        let input = Input::StartHeight {
            height: self.next_height(),
            validators: ctx.world.validators.clone(),
        };
        self.feed(ctx, input);
    }

    fn timer(&self, timer: Timer) -> Event {
        Event::Timer {
            node: self.index,
            epoch: self.epoch,
            timer,
        }
    }

    /// A crash event: now, or in the middle of the next output list.
    pub fn crash_event(&mut self, ctx: &mut Ctx<'_>, mid_output: bool) {
        if !self.is_up() {
            return;
        }
        if mid_output {
            self.crash_armed = Some(ctx.rng.random_range(0..u32::MAX));
        } else {
            self.crash();
        }
    }

    fn crash(&mut self) {
        self.machine = None;
        self.crash_armed = None;
        self.epoch += 1;
    }

    /// Restart from the durable state: the block store and the write-ahead log.
    pub fn restart(&mut self, ctx: &mut Ctx<'_>) {
        self.crash_armed = None;
        if self.is_up() {
            return;
        }
        self.restarts += 1;
        let machine = match ConsensusMachine::restore(self.config(ctx), self.wal.clone()) {
            Ok(m) => m,
            Err(e) => {
                ctx.checker.violate(
                    ViolationKind::Restore,
                    ctx.now,
                    format!("node {} cannot restore its log: {e}", self.index),
                );
                ConsensusMachine::new(self.config(ctx))
            }
        };
        self.machine = Some(machine);
        self.begin(ctx);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>, epoch: u32, timer: Timer) {
        if epoch != self.epoch || !self.is_up() {
            return;
        }
        match timer {
            Timer::Tick => {
                ctx.queue.push(ctx.now + TICK_MS, self.timer(Timer::Tick));
                if let Some(s) = self.strategy.as_mut() {
                    let me = Me {
                        index: self.index,
                        key: &self.key,
                    };
                    s.on_tick(&me, ctx);
                }
                self.feed(ctx, Input::Tick);
            }
            Timer::Timeout {
                height,
                round,
                kind,
            } => self.feed(
                ctx,
                Input::TimeoutElapsed {
                    height: Height(height),
                    round: Round(round),
                    kind,
                },
            ),
            Timer::BuildReady { height } => {
                if height != self.next_height().0 {
                    return;
                }
                let block = self.build_block(ctx);
                let Ok(block) = block.seal() else {
                    return;
                };
                self.feed(ctx, Input::BlockBuilt(block));
            }
        }
    }

    /// A block on our chain at our local time, empty, with a valid header.
    fn build_block(&self, ctx: &Ctx<'_>) -> Block {
        let parent = self.parent(ctx);
        let last = self.chain.last();
        let now = self.local(ctx.now);
        Block {
            header: BlockHeader {
                chain_id: ctx.world.chain_id.clone(),
                height: Height(parent.height + 1),
                prev_hash: parent.hash,
                timestamp_ms: TimestampMs(now.max(parent.timestamp_ms + 1)),
                proposer: self.key.address(),
                tx_root: merkle_root(&[]),
                tx_count: 0,
                state_root: STATE_ROOT,
                last_commit_hash: last.map_or(Hash::ZERO, |c| c.commit.hash()),
            },
            last_commit: last.map(|c| c.commit.clone()),
            txs: Vec::new(),
        }
    }

    pub fn on_deliver(&mut self, ctx: &mut Ctx<'_>, from: usize, bytes: &[u8]) {
        if !self.is_up() {
            return;
        }
        let Ok(msg) = ledger_core::codec::decode::<NetMsg>(bytes) else {
            return;
        };
        match msg {
            NetMsg::Consensus(m) => self.on_consensus(ctx, from, m),
            NetMsg::SyncRequest { from_height } => self.serve_sync(ctx, from, from_height),
            NetMsg::SyncResponse { blocks } => self.apply_sync(ctx, blocks),
        }
    }

    fn on_consensus(&mut self, ctx: &mut Ctx<'_>, from: usize, m: ConsensusMessage) {
        let mine = self.next_height().0;
        let theirs = m.height().0;
        if theirs < mine {
            // The peer is behind: send it what it misses (rate-limited).
            self.serve_sync(ctx, from, theirs);
        } else if theirs > mine
            && ctx.now >= self.height_started_ms + SYNC_GRACE_MS
            && due(&mut self.last_sync_request_ms[from], ctx.now)
        {
            ctx.send(self.index, from, &NetMsg::SyncRequest { from_height: mine });
        }
        if let Some(s) = self.strategy.as_mut() {
            let me = Me {
                index: self.index,
                key: &self.key,
            };
            s.on_receive(&me, ctx, from, &m);
        }
        let input = if self.pre_verify {
            let Some(machine) = self.machine.as_ref() else {
                return;
            };
            match machine.verify_message(m) {
                Ok(v) => Input::Verified(v),
                Err(_) => return,
            }
        } else {
            match m {
                ConsensusMessage::Proposal(p) => Input::Proposal(p),
                ConsensusMessage::Vote(v) => Input::Vote(v),
            }
        };
        self.feed(ctx, input);
    }

    fn serve_sync(&mut self, ctx: &mut Ctx<'_>, to: usize, from_height: u64) {
        if self.strategy.as_ref().is_some_and(|s| !s.serves_sync()) {
            return;
        }
        let have = self.chain.len() as u64;
        if from_height == 0 || from_height > have || !due(&mut self.last_sync_reply_ms[to], ctx.now)
        {
            return;
        }
        let end = have.min(from_height + SYNC_BATCH - 1);
        let blocks: Vec<CommittedBlock> =
            self.chain[(from_height - 1) as usize..end as usize].to_vec();
        ctx.send(self.index, to, &NetMsg::SyncResponse { blocks });
    }

    fn apply_sync(&mut self, ctx: &mut Ctx<'_>, blocks: Vec<CommittedBlock>) {
        for cb in blocks {
            if cb.block.header.height != self.next_height() {
                continue;
            }
            let parent = self.parent(ctx);
            let hash = cb.block.hash();
            let ok = cb
                .commit
                .verify(
                    &ctx.world.chain_id,
                    &ctx.world.validators,
                    cb.block.header.height,
                    &hash,
                )
                .is_ok()
                && check_block(
                    &ctx.world.chain_id,
                    &ctx.world.validators,
                    &parent,
                    &cb.block,
                    &mut self.verified_certs,
                )
                .is_ok();
            if !ok {
                return;
            }
            self.commit(ctx, cb.block, cb.commit);
            let input = Input::StartHeight {
                height: self.next_height(),
                validators: ctx.world.validators.clone(),
            };
            self.feed(ctx, input);
        }
    }

    fn commit(&mut self, ctx: &mut Ctx<'_>, block: Block, commit: CommitCertificate) {
        ctx.checker.on_commit(self.index, &block, &commit, ctx.now);
        self.chain.push(CommittedBlock { block, commit });
        // The log's entries are for the committed height: useless from now on (the node drops
        // them in the commit's write batch).
        self.wal.clear();
        self.height_started_ms = ctx.now;
    }

    /// Runs `input` and everything its outputs feed back, executing outputs in order.
    fn feed(&mut self, ctx: &mut Ctx<'_>, input: Input) {
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let now = TimestampMs(self.local(ctx.now));
            let Some(machine) = self.machine.as_mut() else {
                return;
            };
            let trace = trace_enabled();
            if trace {
                eprintln!(
                    "{} n{} <- {}",
                    ctx.now - super::T0,
                    self.index,
                    brief_input(&input)
                );
            }
            let outputs = machine.handle(now, input);
            if trace {
                for o in &outputs {
                    eprintln!(
                        "{} n{} -> {}",
                        ctx.now - super::T0,
                        self.index,
                        brief_output(o)
                    );
                }
            }
            let cut = match self.crash_armed {
                Some(k) if !outputs.is_empty() => Some(k as usize % outputs.len()),
                _ => None,
            };
            for (i, out) in outputs.into_iter().enumerate() {
                if cut == Some(i) {
                    // Power lost here: this output and the rest never happen.
                    self.crash();
                    return;
                }
                self.execute(ctx, out, &mut pending);
            }
        }
    }

    fn execute(&mut self, ctx: &mut Ctx<'_>, out: Output, pending: &mut VecDeque<Input>) {
        match out {
            Output::Persist(e) => self.wal.push(e),
            Output::Broadcast(m) => {
                ctx.checker.on_broadcast(self.index, &m, ctx.now);
                match self.strategy.as_mut() {
                    None => ctx.broadcast(self.index, &NetMsg::Consensus(m)),
                    Some(s) => {
                        let me = Me {
                            index: self.index,
                            key: &self.key,
                        };
                        s.on_broadcast(&me, ctx, m);
                    }
                }
            }
            Output::ScheduleTimeout {
                height,
                round,
                kind,
                at,
            } => {
                let at = self.to_virtual(at.0).max(ctx.now);
                let timer = Timer::Timeout {
                    height: height.0,
                    round: round.0,
                    kind,
                };
                ctx.queue.push(at, self.timer(timer));
            }
            Output::BuildBlock {
                height,
                empty_block_at,
                ..
            } => {
                // Block production policy: with transactions waiting (a coin flip here), build
                // after the fill pause; otherwise at the empty-block time.
                let txs_waiting = ctx.rng.random_bool(0.5);
                let at = if txs_waiting {
                    ctx.now + ctx.world.params.block_fill_pause_ms
                } else {
                    self.to_virtual(empty_block_at.0)
                };
                let timer = Timer::BuildReady { height: height.0 };
                ctx.queue.push(at.max(ctx.now), self.timer(timer));
            }
            Output::ValidateBlock { block, .. } => {
                let parent = self.parent(ctx);
                let valid = check_block(
                    &ctx.world.chain_id,
                    &ctx.world.validators,
                    &parent,
                    block.block(),
                    &mut self.verified_certs,
                )
                .is_ok();
                pending.push_back(Input::BlockValidated {
                    block_hash: block.hash(),
                    valid,
                });
            }
            Output::Decide { block, certificate } => {
                if block.height() != self.next_height() {
                    return;
                }
                self.commit(ctx, block.into_block(), certificate);
                pending.push_back(Input::StartHeight {
                    height: self.next_height(),
                    validators: ctx.world.validators.clone(),
                });
            }
            Output::Evidence(e) => ctx.checker.on_evidence(self.index, &e, ctx.now),
        }
    }

    /// The round the node's machine is in, for reports.
    pub fn round(&self) -> Option<u32> {
        self.machine.as_ref().map(|m| m.round().0)
    }
}

/// Rate limiter: true (and records `now`) if the last time was long enough ago.
fn due(last: &mut Option<u64>, now: u64) -> bool {
    if last.is_some_and(|t| now < t + SYNC_INTERVAL_MS) {
        return false;
    }
    *last = Some(now);
    true
}

/// Timeout kinds are plain data in events.
pub fn timeout_kind_tag(kind: TimeoutKind) -> u8 {
    match kind {
        TimeoutKind::Propose => 0,
        TimeoutKind::Prevote => 1,
        TimeoutKind::Precommit => 2,
    }
}

fn trace_enabled() -> bool {
    std::env::var_os("SIM_TRACE").is_some()
}

fn brief_msg(m: &ConsensusMessage) -> String {
    match m {
        ConsensusMessage::Proposal(p) => format!(
            "Proposal(h{} r{} pol{:?} by {} block {:?})",
            p.proposal.height.0,
            p.proposal.round.0,
            p.proposal.pol_round.map(|r| r.0),
            short(&p.proposal.proposer.0),
            p.proposal.block.hash()
        ),
        ConsensusMessage::Vote(v) => format!(
            "{:?}(h{} r{} {:?} by {})",
            v.vote.kind,
            v.vote.height.0,
            v.vote.round.0,
            v.vote.block_hash,
            short(&v.vote.validator.0)
        ),
    }
}

fn short(b: &[u8]) -> String {
    b.iter().take(2).map(|x| format!("{x:02x}")).collect()
}

fn brief_input(i: &Input) -> String {
    match i {
        Input::Proposal(p) => brief_msg(&ConsensusMessage::Proposal(p.clone())),
        Input::Vote(v) => brief_msg(&ConsensusMessage::Vote(v.clone())),
        Input::Verified(v) => format!("verified {}", brief_msg(v.message())),
        Input::StartHeight { height, .. } => format!("StartHeight({})", height.0),
        Input::BlockBuilt(b) => format!("BlockBuilt({:?})", b.hash()),
        other => format!("{other:?}"),
    }
}

fn brief_output(o: &Output) -> String {
    match o {
        Output::Broadcast(m) => format!("Broadcast {}", brief_msg(m)),
        Output::Persist(WalEntry::Vote(v)) => {
            format!("Persist {}", brief_msg(&ConsensusMessage::Vote(v.clone())))
        }
        Output::Persist(WalEntry::Proposal(_)) => "Persist proposal".into(),
        Output::Persist(WalEntry::ValidValue { round, block, .. }) => {
            format!("Persist valid r{} {:?}", round.0, block.hash())
        }
        Output::ValidateBlock { block, .. } => format!("Validate {:?}", block.hash()),
        Output::Decide { block, certificate } => {
            format!(
                "Decide h{} r{} {:?}",
                block.height().0,
                certificate.round.0,
                block.hash()
            )
        }
        Output::Evidence(e) => format!("Evidence against {}", short(&e.offender().0)),
        other => format!("{other:?}"),
    }
}
