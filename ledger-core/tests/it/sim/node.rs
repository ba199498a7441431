//! A simulated node: the node's real consensus driver ([`Engine`]) with simulated I/O.
//!
//! Everything that decides what goes into the chain is the engine's; this file only does what the
//! node's tokio shell (`node/src/consensus/driver.rs`) does with its effects, in order:
//!
//! - a simulated **store**: the durable chain and the write-ahead log. [`Effect::Persist`] is
//!   durable the moment it is performed; [`Effect::Commit`] appends the block and empties the log
//!   atomically. A crash (also in the middle of an effect list) loses every effect not yet
//!   performed and everything in memory: the engine, the mempool, pending answers. A restart
//!   rebuilds the engine from the store: the state replayed from genesis with
//!   [`replay_block`], [`Head::committed`], the log's entries of the next height and its next
//!   sequence number.
//! - a simulated **mempool**: admits transfers (signature verified, through the run's
//!   [`TxMemo`](super::TxMemo)), gossips those a client submitted, answers
//!   [`Effect::FetchCandidates`] (per-sender nonce order from the sender's next nonce, within
//!   `max_txs` and `max_bytes`) and [`Effect::LookupVerified`], forgets committed and invalid
//!   transactions, and reports its size with [`Event::PoolSize`].
//! - **clocks**: `Now { wall: virtual + offset, mono_ms: virtual }`; after every handled event the
//!   node asks [`Engine::next_deadline_ms`] and schedules a wake-up for it (a wake-up for another
//!   deadline or an earlier incarnation is stale and ignored).
//! - the **network** edge: consensus messages are decoded from the bytes the network carried
//!   (a forged body does not decode) and fed as [`Event::Verified`] (checked like gossip
//!   validation does) on odd nodes, [`Event::Message`] on even ones; block sync requests and
//!   responses, applied with [`Event::Synced`].

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt;

use ledger_core::consensus::{ConsensusMessage, WalEntry};
use ledger_core::engine::{Effect, Engine, EngineConfig, Event, Head, Now};
use ledger_core::validation::{ParentBlock, replay_block};
use ledger_core::{
    Address, CommittedBlock, Hash, Height, Keypair, SignedTransaction, TimestampMs,
    VerifiedTransaction,
};
use rand::RngExt;

use super::byzantine::{Me, Strategy};
use super::checker::ViolationKind;
use super::{Ctx, NetMsg};

/// Blocks per sync response.
const SYNC_BATCH: u64 = 8;
/// Minimum virtual time between two sync messages to one peer.
const SYNC_INTERVAL_MS: u64 = 200;
/// A node asks for blocks only after it has been at its height this long: a peer one height ahead
/// is normal for a moment, and the machine buffers the next height's messages meanwhile.
const SYNC_GRACE_MS: u64 = 1000;
/// How often a byzantine strategy gets its `on_tick`.
const STRATEGY_TICK_MS: u64 = 300;
/// Transactions a mempool holds at most.
const POOL_CAP: usize = 4096;

/// The durable part of a node: what survives a crash.
#[derive(Debug, Default, Clone)]
pub struct Store {
    pub chain: Vec<CommittedBlock>,
    /// (height, seq, entry), in append order.
    pub wal: Vec<(Height, u64, WalEntry)>,
}

/// Pending transactions, by sender and nonce (one per slot: the first one seen wins).
#[derive(Debug, Default)]
pub struct Mempool {
    by_slot: BTreeMap<(Address, u64), VerifiedTransaction>,
    hashes: HashSet<Hash>,
}

impl Mempool {
    pub fn len(&self) -> usize {
        self.by_slot.len()
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.hashes.contains(hash)
    }

    /// Admits `tx` unless it is known, its slot is taken, its nonce is spent or the pool is full.
    fn admit(&mut self, tx: VerifiedTransaction, next_nonce: u64) -> bool {
        let slot = (tx.sender(), tx.tx().nonce.0);
        if slot.1 < next_nonce
            || self.by_slot.len() >= POOL_CAP
            || self.hashes.contains(&tx.hash())
            || self.by_slot.contains_key(&slot)
        {
            return false;
        }
        self.hashes.insert(tx.hash());
        self.by_slot.insert(slot, tx);
        true
    }

    fn remove_hashes(&mut self, hashes: &BTreeSet<Hash>) {
        if hashes.is_empty() {
            return;
        }
        self.by_slot.retain(|_, tx| !hashes.contains(&tx.hash()));
        for h in hashes {
            self.hashes.remove(h);
        }
    }

    /// Forgets `sender`'s transactions below `next_nonce` (spent by a committed block).
    fn spent(&mut self, sender: Address, next_nonce: u64) {
        let stale: Vec<(Address, u64)> = self
            .by_slot
            .range((sender, 0)..(sender, next_nonce))
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(tx) = self.by_slot.remove(&k) {
                self.hashes.remove(&tx.hash());
            }
        }
    }

    /// Block candidates: for each sender, its transactions from its next nonce on without a gap,
    /// in nonce order; at most `max_txs`, at most `max_bytes` in all.
    fn candidates(
        &self,
        next_nonce: impl Fn(&Address) -> u64,
        max_txs: usize,
        max_bytes: usize,
    ) -> Vec<VerifiedTransaction> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut sender: Option<(Address, u64)> = None;
        for ((addr, nonce), tx) in &self.by_slot {
            let expected = match sender {
                Some((a, n)) if a == *addr => n,
                _ => next_nonce(addr),
            };
            if *nonce != expected {
                sender = Some((*addr, u64::MAX));
                continue;
            }
            if out.len() >= max_txs || bytes + tx.encoded_len() > max_bytes {
                break;
            }
            bytes += tx.encoded_len();
            out.push(tx.clone());
            sender = Some((*addr, expected + 1));
        }
        out
    }
}

pub struct SimNode {
    pub index: usize,
    key: Keypair,
    /// `None` for an honest node.
    pub strategy: Option<Box<dyn Strategy>>,
    engine: Option<Engine>,
    /// Stopped for good by an [`ledger_core::engine::EngineError`] (the node exits).
    halted: bool,
    /// Incarnation: wake-ups of an earlier life are ignored.
    pub epoch: u32,
    pub store: Store,
    pool: Mempool,
    clock_offset_ms: i64,
    /// The deadline the pending wake-up was scheduled for.
    armed: Option<u64>,
    height_started_ms: u64,
    last_sync_reply_ms: Vec<Option<u64>>,
    last_sync_request_ms: Vec<Option<u64>>,
    last_strategy_tick_ms: u64,
    /// Crash while performing the next non-empty effect list, after this many (mod its length).
    crash_armed: Option<u32>,
    /// Check signatures at the edge (`ConsensusMessage::verified` + `Event::Verified`) instead of
    /// in the machine.
    pre_verify: bool,
    /// Protection switched off (non-vacuity tests only): the mempool answers `LookupVerified` with
    /// every hash asked, as if it had verified them all.
    pub lying_mempool: bool,
    pub restarts: u32,
}

impl fmt::Debug for SimNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimNode")
            .field("index", &self.index)
            .field("strategy", &self.strategy)
            .field("up", &self.engine.is_some())
            .field("height", &self.store.chain.len())
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
            engine: None,
            halted: false,
            epoch: 0,
            store: Store::default(),
            pool: Mempool::default(),
            clock_offset_ms,
            armed: None,
            height_started_ms: 0,
            last_sync_reply_ms: vec![None; n],
            last_sync_request_ms: vec![None; n],
            last_strategy_tick_ms: 0,
            crash_armed: None,
            pre_verify: index % 2 == 1,
            lying_mempool: false,
            restarts: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.engine.is_some()
    }

    fn now(&self, ctx: &Ctx<'_>) -> Now {
        Now {
            wall: TimestampMs(ctx.now.saturating_add_signed(self.clock_offset_ms)),
            mono_ms: ctx.now,
        }
    }

    /// A clock jump: the wall clock moves, the monotonic one (every timer) does not.
    pub fn set_clock_offset(&mut self, offset_ms: i64) {
        self.clock_offset_ms = offset_ms;
    }

    fn next_height(&self) -> u64 {
        self.store.chain.len() as u64 + 1
    }

    /// First start.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.boot(ctx);
    }

    /// Builds the engine from the durable store and starts it.
    fn boot(&mut self, ctx: &mut Ctx<'_>) {
        let genesis = ctx.world.genesis.clone();
        let mut state = genesis.initial_state();
        let mut parent = ParentBlock::genesis(&genesis);
        let mut head = Head::genesis(&genesis);
        for cb in &self.store.chain {
            if let Err(e) = replay_block(genesis.chain_context(), &parent, &mut state, cb) {
                ctx.checker.violate(
                    ViolationKind::Restore,
                    ctx.now,
                    format!(
                        "node {} cannot replay its stored block {}: {e}",
                        self.index, cb.block.header.height
                    ),
                );
                self.halted = true;
                return;
            }
            let sealed = cb.block.clone().seal().expect("replayed, so sealed");
            parent = ParentBlock::of(&sealed);
            head = Head::committed(sealed, cb.commit.clone());
        }
        let next = parent.next_height();
        let entries: Vec<&(Height, u64, WalEntry)> = self
            .store
            .wal
            .iter()
            .filter(|(h, _, _)| *h == next)
            .collect();
        let next_seq = entries.iter().map(|(_, s, _)| s + 1).max().unwrap_or(0);
        let wal: Vec<WalEntry> = entries.into_iter().map(|(_, _, e)| e.clone()).collect();
        if self.restarts > 0 {
            ctx.checker.stats.restarts += 1;
            ctx.checker.stats.wal_restored += wal.len() as u64;
        }
        let config = EngineConfig {
            genesis,
            key: Some(self.key.clone()),
        };
        match Engine::new(config, state, head, wal, next_seq) {
            Ok(engine) => self.engine = Some(engine),
            Err(e) => {
                ctx.checker.violate(
                    ViolationKind::Restore,
                    ctx.now,
                    format!("node {} cannot restore its log: {e}", self.index),
                );
                self.halted = true;
                return;
            }
        }
        self.armed = None;
        self.height_started_ms = ctx.now;
        self.handle(ctx, Event::Start);
    }

    /// A crash event: now, or in the middle of the next effect list.
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

    /// Power lost: everything but the store is gone.
    fn crash(&mut self) {
        self.engine = None;
        self.pool = Mempool::default();
        self.crash_armed = None;
        self.armed = None;
        self.epoch += 1;
    }

    /// Restart from the durable store.
    pub fn restart(&mut self, ctx: &mut Ctx<'_>) {
        self.crash_armed = None;
        if self.is_up() || self.halted {
            return;
        }
        self.restarts += 1;
        self.boot(ctx);
    }

    pub fn on_wake(&mut self, ctx: &mut Ctx<'_>, epoch: u32, deadline: u64) {
        if epoch != self.epoch || self.armed != Some(deadline) || !self.is_up() {
            return;
        }
        self.armed = None;
        if self.strategy.is_some() && ctx.now >= self.last_strategy_tick_ms + STRATEGY_TICK_MS {
            self.last_strategy_tick_ms = ctx.now;
            let now = self.now(ctx);
            if let Some(s) = self.strategy.as_mut() {
                let me = Me {
                    index: self.index,
                    key: &self.key,
                    engine: self.engine.as_ref(),
                    now,
                };
                s.on_tick(&me, ctx);
            }
        }
        self.handle(ctx, Event::Time);
    }

    /// Handles `event` and every answer its effects produce, performing effects in order; then
    /// schedules the engine's next deadline.
    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        let mut pending = VecDeque::from([event]);
        while let Some(event) = pending.pop_front() {
            let now = self.now(ctx);
            let Some(engine) = self.engine.as_mut() else {
                return;
            };
            let effects = match engine.handle(now, event) {
                Ok(effects) => effects,
                Err(e) => {
                    ctx.checker.violate(
                        ViolationKind::Engine,
                        ctx.now,
                        format!("node {}: engine error: {e}", self.index),
                    );
                    self.crash();
                    self.halted = true;
                    return;
                }
            };
            let cut = match self.crash_armed {
                Some(k) if !effects.is_empty() => Some(k as usize % effects.len()),
                _ => None,
            };
            for (i, effect) in effects.into_iter().enumerate() {
                if cut == Some(i) {
                    // Power lost here: this effect and the rest never happen.
                    self.crash();
                    return;
                }
                self.perform(ctx, effect, &mut pending);
            }
        }
        self.arm(ctx);
    }

    /// Schedules a wake-up for the engine's next deadline, unless one is pending for it.
    fn arm(&mut self, ctx: &mut Ctx<'_>) {
        let Some(engine) = self.engine.as_ref() else {
            return;
        };
        let deadline = engine.next_deadline_ms();
        if self.armed == Some(deadline) {
            return;
        }
        self.armed = Some(deadline);
        ctx.queue.push(
            deadline.max(ctx.now),
            super::Event::Wake {
                node: self.index,
                epoch: self.epoch,
                deadline,
            },
        );
    }

    fn next_nonce_of(&self, address: &Address) -> u64 {
        self.engine
            .as_ref()
            .map_or(0, |e| e.state().get(address).map_or(0, |a| a.nonce.0))
    }

    fn perform(&mut self, ctx: &mut Ctx<'_>, effect: Effect, pending: &mut VecDeque<Event>) {
        match effect {
            Effect::Persist { height, seq, entry } => self.store.wal.push((height, seq, entry)),
            Effect::Broadcast(m) => {
                ctx.checker.on_broadcast(self.index, &m, ctx.now);
                let now = self.now(ctx);
                match self.strategy.as_mut() {
                    None => ctx.broadcast(self.index, &NetMsg::Consensus(m)),
                    Some(s) => {
                        let me = Me {
                            index: self.index,
                            key: &self.key,
                            engine: self.engine.as_ref(),
                            now,
                        };
                        s.on_broadcast(&me, ctx, m);
                    }
                }
            }
            Effect::Evidence(e) => ctx.checker.on_evidence(self.index, &e, ctx.now),
            Effect::FetchCandidates {
                height,
                max_txs,
                max_bytes,
            } => {
                let txs = self
                    .pool
                    .candidates(|a| self.next_nonce_of(a), max_txs, max_bytes);
                pending.push_back(Event::Candidates { height, txs });
            }
            Effect::LookupVerified {
                block_hash,
                tx_hashes,
            } => {
                let verified = tx_hashes
                    .into_iter()
                    .filter(|h| self.lying_mempool || self.pool.contains(h))
                    .collect();
                pending.push_back(Event::VerifiedTxs {
                    block_hash,
                    verified,
                });
            }
            Effect::DropInvalid(list) => {
                let hashes: BTreeSet<Hash> = list.into_iter().map(|(h, _)| h).collect();
                self.pool.remove_hashes(&hashes);
                pending.push_back(Event::PoolSize {
                    txs: self.pool.len(),
                });
            }
            Effect::Commit(c) => {
                if c.decided_in_round.is_none() {
                    ctx.checker.stats.synced_blocks += 1;
                }
                let cb = CommittedBlock {
                    block: c.block.block().clone(),
                    commit: c.certificate.clone(),
                };
                // One atomic write: the block, and the log of its height dropped.
                self.store.chain.push(cb);
                self.store.wal.clear();
                ctx.checker
                    .on_commit(self.index, &self.store.chain, ctx.now);
                let hashes: BTreeSet<Hash> = c.tx_hashes.iter().copied().collect();
                self.pool.remove_hashes(&hashes);
                for (address, account) in &c.accounts {
                    self.pool.spent(*address, account.nonce.0);
                }
                self.height_started_ms = ctx.now;
                pending.push_back(Event::PoolSize {
                    txs: self.pool.len(),
                });
            }
            Effect::BuildFailed { height, error } => {
                if self.strategy.is_none() {
                    ctx.checker.violate(
                        ViolationKind::Engine,
                        ctx.now,
                        format!(
                            "honest node {} failed to build block {height}: {error}",
                            self.index
                        ),
                    );
                }
            }
            Effect::InvalidProposal { .. } => {
                if self.strategy.is_none() {
                    ctx.checker.stats.invalid_proposals += 1;
                }
            }
            Effect::SyncRefused { .. } => ctx.checker.stats.sync_refused += 1,
        }
    }

    /// Admits verified-or-verifiable transactions; returns whether the pool grew.
    fn admit(&mut self, ctx: &Ctx<'_>, txs: &[SignedTransaction]) -> bool {
        let mut grew = false;
        for stx in txs {
            let verified = match ctx.memo.get(&stx.hash()) {
                Some(v) => v.clone(),
                None => match stx.clone().verify(&ctx.world.chain_id) {
                    Ok(v) => v,
                    Err(_) => continue,
                },
            };
            let next = self.next_nonce_of(&verified.sender());
            grew |= self.pool.admit(verified, next);
        }
        grew
    }

    /// A client submits `txs` to this node: admitted, then gossiped to the others.
    pub fn submit(&mut self, ctx: &mut Ctx<'_>, txs: Vec<SignedTransaction>) {
        if !self.is_up() {
            return;
        }
        if self.admit(ctx, &txs) {
            let size = self.pool.len();
            self.handle(ctx, Event::PoolSize { txs: size });
        }
        if self.strategy.as_ref().is_none_or(|s| s.gossips_txs()) {
            ctx.broadcast(self.index, &NetMsg::Txs(txs));
        }
    }

    pub fn on_deliver(&mut self, ctx: &mut Ctx<'_>, from: usize, bytes: &[u8]) {
        if !self.is_up() {
            return;
        }
        let Ok(msg) = ledger_core::codec::decode::<NetMsg>(bytes) else {
            ctx.checker.stats.undecodable += 1;
            return;
        };
        match msg {
            NetMsg::Consensus(m) => self.on_consensus(ctx, from, m),
            NetMsg::SyncRequest { from_height } => self.serve_sync(ctx, from, from_height),
            NetMsg::SyncResponse { blocks } => {
                if blocks
                    .first()
                    .is_some_and(|b| b.block.header.height.0 <= self.next_height())
                {
                    self.handle(ctx, Event::Synced(blocks));
                }
            }
            NetMsg::Txs(txs) => {
                if self.admit(ctx, &txs) {
                    let size = self.pool.len();
                    self.handle(ctx, Event::PoolSize { txs: size });
                }
            }
        }
    }

    fn on_consensus(&mut self, ctx: &mut Ctx<'_>, from: usize, m: ConsensusMessage) {
        let mine = self.next_height();
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
        let now = self.now(ctx);
        if let Some(s) = self.strategy.as_mut() {
            let me = Me {
                index: self.index,
                key: &self.key,
                engine: self.engine.as_ref(),
                now,
            };
            s.on_receive(&me, ctx, from, &m);
        }
        let event = if self.pre_verify {
            // Gossip validation: checked once at the edge, against the chain's validator set.
            match m.verified(&ctx.world.chain_id, &ctx.world.validators) {
                Ok(v) => Event::Verified(v),
                Err(_) => {
                    ctx.checker.stats.bad_signatures += 1;
                    return;
                }
            }
        } else {
            Event::Message(m)
        };
        self.handle(ctx, event);
    }

    fn serve_sync(&mut self, ctx: &mut Ctx<'_>, to: usize, from_height: u64) {
        if self.strategy.as_ref().is_some_and(|s| !s.serves_sync()) {
            return;
        }
        let have = self.store.chain.len() as u64;
        if from_height == 0 || from_height > have || !due(&mut self.last_sync_reply_ms[to], ctx.now)
        {
            return;
        }
        let end = have.min(from_height + SYNC_BATCH - 1);
        let blocks: Vec<CommittedBlock> =
            self.store.chain[(from_height - 1) as usize..end as usize].to_vec();
        ctx.send(self.index, to, &NetMsg::SyncResponse { blocks });
    }

    /// The round the node's machine is in, for reports.
    pub fn round(&self) -> Option<u32> {
        self.engine.as_ref().map(|e| e.machine().round().0)
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
