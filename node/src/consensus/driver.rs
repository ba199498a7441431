//! The driver task. See the module docs of [`crate::consensus`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ledger_core::consensus::{
    ConsensusConfig, ConsensusMachine, ConsensusMessage, Input, Output, RestoreError, WalEntry,
};
use ledger_core::genesis::Genesis;
use ledger_core::state::{ExecutedBlock, State, StateError};
use ledger_core::validation::{BlockError, ParentBlock, build_block, validate_block};
use ledger_core::{
    CommitCertificate, CommittedBlock, Hash, Height, Keypair, SealedBlock, TimestampMs, TxError,
};
use tokio::sync::{broadcast, mpsc, watch};

use crate::events::{HeadInfo, NodeEvent};
use crate::mempool::{MempoolError, MempoolHandle, PoolStats};
use crate::metrics::Metrics;
use crate::net_types::{NetInbound, NetOutbound};
use crate::store::{BlockCommit, Store, StoreError};

/// Timers kept at once. The machine schedules a few per round and stale ones are ignored, so this
/// is only a guard against a bug filling memory.
const MAX_PENDING_TIMERS: usize = 1024;
/// Inputs processed in one `feed` call (answers to outputs feed back as inputs), as a loop guard.
const MAX_INPUTS_PER_FEED: usize = 10_000;
/// Executed blocks cached per height, waiting for their decision (own build + validated proposals).
const MAX_CACHED_EXECUTIONS: usize = 64;

/// Why the driver stopped. Every variant is fatal: the node cannot go on safely.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("state: {0}")]
    State(#[from] StateError),
    #[error("the consensus WAL cannot be restored: {0}")]
    Restore(#[from] RestoreError),
    #[error("block {height} was decided, but it is not valid here: {source}")]
    DecidedInvalid {
        height: Height,
        #[source]
        source: BlockError,
    },
    #[error("the mempool stopped")]
    Mempool(#[from] MempoolError),
    #[error("a blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The last committed block.
#[derive(Debug, Clone)]
pub struct Head {
    /// `None` at genesis (height 0).
    pub block: Option<SealedBlock>,
    pub parent: ParentBlock,
    /// The head block's certificate: the next block's `last_commit`.
    pub cert: Option<CommitCertificate>,
}

/// Everything the driver owns or talks to.
#[derive(Debug)]
pub struct DriverParts {
    pub genesis: Arc<Genesis>,
    pub key: Option<Keypair>,
    pub store: Arc<Store>,
    /// The state after the head block.
    pub state: State,
    pub head: Head,
    pub mempool: MempoolHandle,
    pub net_out: mpsc::Sender<NetOutbound>,
    pub net_in: mpsc::Receiver<NetInbound>,
    pub head_tx: watch::Sender<HeadInfo>,
    pub events: broadcast::Sender<NodeEvent>,
    pub metrics: Arc<Metrics>,
    /// Becomes `true` when the node shuts down.
    pub shutdown: watch::Receiver<bool>,
}

#[derive(Debug, Clone, Copy)]
struct PendingBuild {
    height: Height,
    empty_block_at: TimestampMs,
    /// When to build: `empty_block_at`, or earlier once transactions wait.
    deadline: TimestampMs,
}

/// The consensus owner task.
#[derive(Debug)]
pub struct Driver {
    machine: ConsensusMachine,
    genesis: Arc<Genesis>,
    proposer: Option<ledger_core::Address>,
    store: Arc<Store>,
    /// `Option` only so the state can move into a blocking closure and back; always `Some` between
    /// calls.
    state: Option<State>,
    head: Head,
    mempool: MempoolHandle,
    pool_stats: watch::Receiver<PoolStats>,
    pool_txs_seen: usize,
    net_out: mpsc::Sender<NetOutbound>,
    net_in: mpsc::Receiver<NetInbound>,
    net_open: bool,
    head_tx: watch::Sender<HeadInfo>,
    events: broadcast::Sender<NodeEvent>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    timers: BTreeMap<(TimestampMs, u64), Input>,
    timer_seq: u64,
    pending_build: Option<PendingBuild>,
    /// Executions of blocks at the current height, by block hash, so a decided block is not
    /// executed twice.
    executed: HashMap<Hash, ExecutedBlock>,
    /// Next WAL sequence number at the current height.
    wal_seq: u64,
}

/// Wall-clock milliseconds: the consensus machine's `now` and block timestamps.
pub fn now_ms() -> TimestampMs {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    TimestampMs(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn until(at: TimestampMs) -> Duration {
    Duration::from_millis(at.0.saturating_sub(now_ms().0))
}

impl Driver {
    /// Builds the machine, restoring it from the WAL of the height after the head (blocking read).
    pub fn new(parts: DriverParts) -> Result<Driver, DriverError> {
        let next = parts.head.parent.next_height();
        let wal: Vec<(u64, WalEntry)> = parts.store.wal_entries(next)?;
        let wal_seq = wal.last().map_or(0, |(seq, _)| seq + 1);
        let config = ConsensusConfig {
            chain_id: parts.genesis.chain_id().clone(),
            params: parts.genesis.consensus_params().clone(),
            key: parts.key.clone(),
        };
        if !wal.is_empty() {
            tracing::info!(height = %next, entries = wal.len(), "restoring consensus from the WAL");
        }
        let machine = ConsensusMachine::restore(config, wal.into_iter().map(|(_, e)| e))?;
        let pool_stats = parts.mempool.watch_stats();
        Ok(Driver {
            machine,
            proposer: parts.key.as_ref().map(Keypair::address),
            genesis: parts.genesis,
            store: parts.store,
            state: Some(parts.state),
            head: parts.head,
            mempool: parts.mempool,
            pool_stats,
            pool_txs_seen: 0,
            net_out: parts.net_out,
            net_in: parts.net_in,
            net_open: true,
            head_tx: parts.head_tx,
            events: parts.events,
            metrics: parts.metrics,
            shutdown: parts.shutdown,
            timers: BTreeMap::new(),
            timer_seq: 0,
            pending_build: None,
            executed: HashMap::new(),
            wal_seq,
        })
    }

    fn params(&self) -> &ledger_core::ConsensusParams {
        self.genesis.consensus_params()
    }

    /// Runs until shutdown or a fatal error.
    pub async fn run(mut self) -> Result<(), DriverError> {
        self.start_next_height().await?;
        let tick_ms = self.params().timeout_precommit_ms.max(50);
        let mut tick = tokio::time::interval(Duration::from_millis(tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pool_open = true;
        loop {
            let next_timer = self.timers.first_key_value().map(|((at, _), _)| *at);
            let build_at = self.pending_build.map(|b| b.deadline);
            tokio::select! {
                biased;
                r = self.shutdown.changed() => {
                    if r.is_err() || *self.shutdown.borrow() {
                        break;
                    }
                }
                () = tokio::time::sleep(next_timer.map_or(Duration::ZERO, until)), if next_timer.is_some() => {
                    self.fire_timers().await?;
                }
                () = tokio::time::sleep(build_at.map_or(Duration::ZERO, until)), if build_at.is_some() => {
                    self.build().await?;
                }
                msg = self.net_in.recv(), if self.net_open => match msg {
                    Some(m) => self.on_net(m).await?,
                    None => self.net_open = false,
                },
                r = self.pool_stats.changed(), if pool_open => {
                    if r.is_err() {
                        pool_open = false;
                    } else {
                        self.on_pool_change();
                    }
                }
                _ = tick.tick() => self.feed(Input::Tick).await?,
            }
        }
        tracing::info!("consensus driver stopped");
        Ok(())
    }

    async fn start_next_height(&mut self) -> Result<(), DriverError> {
        let height = self.head.parent.next_height();
        let validators = self.genesis.validators().clone();
        self.feed(Input::StartHeight { height, validators }).await
    }

    /// Feeds one input and executes the outputs in order; answers feed back as further inputs.
    async fn feed(&mut self, input: Input) -> Result<(), DriverError> {
        let mut queue = VecDeque::from([input]);
        let mut n = 0usize;
        while let Some(input) = queue.pop_front() {
            n += 1;
            if n > MAX_INPUTS_PER_FEED {
                tracing::error!("consensus: input loop guard hit; dropping the remaining inputs");
                break;
            }
            let outputs = self.machine.handle(now_ms(), input);
            for out in outputs {
                if let Some(next) = self.execute(out).await? {
                    queue.push_back(next);
                }
            }
        }
        self.metrics
            .consensus_round
            .set(i64::from(self.machine.round().0));
        Ok(())
    }

    async fn execute(&mut self, out: Output) -> Result<Option<Input>, DriverError> {
        match out {
            Output::Persist(entry) => {
                // Durable before anything after it runs: the broadcast of this vote or proposal
                // comes later in the same output list.
                let store = self.store.clone();
                let seq = self.wal_seq;
                self.wal_seq += 1;
                let height = entry.height();
                tokio::task::spawn_blocking(move || store.wal_append(height, seq, &entry))
                    .await??;
                Ok(None)
            }
            Output::Broadcast(msg) => {
                self.send_net(NetOutbound::Consensus(msg));
                Ok(None)
            }
            Output::ScheduleTimeout {
                height,
                round,
                kind,
                at,
            } => {
                self.timers.insert(
                    (at, self.timer_seq),
                    Input::TimeoutElapsed {
                        height,
                        round,
                        kind,
                    },
                );
                self.timer_seq += 1;
                while self.timers.len() > MAX_PENDING_TIMERS {
                    self.timers.pop_last();
                }
                Ok(None)
            }
            Output::BuildBlock {
                height,
                round: _,
                empty_block_at,
            } => {
                let txs = self.pool_stats.borrow().txs;
                self.pool_txs_seen = txs;
                let deadline = if txs > 0 {
                    TimestampMs(now_ms().0.saturating_add(self.params().block_fill_pause_ms))
                        .min(empty_block_at)
                } else {
                    empty_block_at
                };
                self.pending_build = Some(PendingBuild {
                    height,
                    empty_block_at,
                    deadline,
                });
                Ok(None)
            }
            Output::ValidateBlock { height, block } => {
                let sealed = block.seal();
                let block_hash = sealed.hash();
                let valid = match self.validate(sealed).await? {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(%height, block = %block_hash, error = %e, "proposed block is invalid");
                        false
                    }
                };
                Ok(Some(Input::BlockValidated { block_hash, valid }))
            }
            Output::Decide { block, certificate } => {
                let height = block.header.height;
                if height != self.head.parent.next_height() {
                    // Already applied (e.g. by sync): nothing to do.
                    return Ok(None);
                }
                let sealed = block.seal();
                // Decided in round r means r + 1 rounds: 1 is the happy path.
                let rounds = f64::from(certificate.round.0) + 1.0;
                let executed = match self.executed.remove(&sealed.hash()) {
                    Some(e) => e,
                    None => {
                        let sealed2 = sealed.clone();
                        self.execute_block(sealed2, None)
                            .await?
                            .map_err(|source| DriverError::DecidedInvalid { height, source })?
                    }
                };
                self.apply_commit(sealed, certificate, executed).await?;
                self.metrics.consensus_rounds_per_height.observe(rounds);
                let validators = self.genesis.validators().clone();
                Ok(Some(Input::StartHeight {
                    height: self.head.parent.next_height(),
                    validators,
                }))
            }
            Output::Evidence(ev) => {
                tracing::warn!(offender = %ev.offender(), height = %ev.height(), "equivocation evidence");
                self.send_net(NetOutbound::Evidence(ev));
                Ok(None)
            }
        }
    }

    fn send_net(&self, msg: NetOutbound) {
        match self.net_out.try_send(msg) {
            Ok(()) => {}
            // No network (a single validator) or a full queue: gossip is best effort, and the
            // machine re-broadcasts on Tick when it makes no progress.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!("network outbound queue full; message dropped");
            }
        }
    }

    async fn fire_timers(&mut self) -> Result<(), DriverError> {
        let now = now_ms();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let input = entry.remove();
            self.feed(input).await?;
        }
        Ok(())
    }

    /// New transactions while a build waits: build after the fill pause instead of at the
    /// empty-block deadline.
    fn on_pool_change(&mut self) {
        let txs = self.pool_stats.borrow_and_update().txs;
        let grew = txs > self.pool_txs_seen;
        self.pool_txs_seen = txs;
        if let Some(b) = &mut self.pending_build
            && grew
        {
            let at = TimestampMs(
                now_ms()
                    .0
                    .saturating_add(self.genesis.consensus_params().block_fill_pause_ms),
            );
            b.deadline = b.deadline.min(at).min(b.empty_block_at);
        }
    }

    /// Builds the block the machine asked for (when the policy's deadline came).
    async fn build(&mut self) -> Result<(), DriverError> {
        let Some(pending) = self.pending_build.take() else {
            return Ok(());
        };
        let Some(proposer) = self.proposer else {
            return Ok(());
        };
        if pending.height != self.head.parent.next_height() {
            return Ok(());
        }
        let params = self.params().clone();
        let candidates = self
            .mempool
            .candidates(
                params.max_block_txs as usize,
                params.max_block_bytes as usize,
            )
            .await?;
        let now = now_ms();
        if candidates.is_empty() && now < pending.empty_block_at {
            // Transactions wait but none can go in yet (a nonce gap): keep the empty-block pace.
            self.pending_build = Some(PendingBuild {
                deadline: pending.empty_block_at,
                ..pending
            });
            return Ok(());
        }
        let genesis = self.genesis.clone();
        let parent = self.head.parent;
        let last_commit = self.head.cert.clone();
        let mut state = self.take_state();
        let (state, result) = tokio::task::spawn_blocking(move || {
            let r = build_block(
                genesis.chain_context(),
                &parent,
                &mut state,
                candidates.iter(),
                proposer,
                now,
                last_commit,
            );
            (state, r)
        })
        .await?;
        self.state = Some(state);
        match result {
            Ok(built) => {
                let permanent: Vec<(Hash, TxError)> = built
                    .rejected
                    .iter()
                    .filter(|r| {
                        matches!(
                            r.error,
                            TxError::NonceTooLow { .. } | TxError::WrongChain { .. }
                        )
                    })
                    .map(|r| (r.hash, r.error.clone()))
                    .collect();
                if !permanent.is_empty() {
                    self.mempool.drop_invalid(permanent).await?;
                }
                let hash = built.block.hash();
                self.cache_execution(hash, built.executed);
                self.feed(Input::BlockBuilt(built.block.into_block())).await
            }
            Err(e) => {
                // Cannot happen with our own parent and certificate; the round's timeout moves on.
                tracing::error!(error = %e, "building a block failed");
                Ok(())
            }
        }
    }

    fn cache_execution(&mut self, hash: Hash, executed: ExecutedBlock) {
        if self.executed.len() >= MAX_CACHED_EXECUTIONS {
            self.executed.clear();
        }
        self.executed.insert(hash, executed);
    }

    fn take_state(&mut self) -> State {
        self.state.take().unwrap_or_default()
    }

    /// Validates a proposed block on the head state (skipping signatures the mempool verified) and
    /// caches the execution for its decision.
    async fn validate(
        &mut self,
        sealed: SealedBlock,
    ) -> Result<Result<(), BlockError>, DriverError> {
        if self.executed.contains_key(&sealed.hash()) {
            return Ok(Ok(()));
        }
        let hash = sealed.hash();
        match self.execute_block(sealed, None).await? {
            Ok(executed) => {
                self.cache_execution(hash, executed);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Executes `sealed` on the head state (without committing). Signatures of transactions in
    /// the mempool are not checked again; `now` enables the clock-drift check.
    async fn execute_block(
        &mut self,
        sealed: SealedBlock,
        now: Option<TimestampMs>,
    ) -> Result<Result<ExecutedBlock, BlockError>, DriverError> {
        let hashes: Vec<Hash> = sealed.block().txs.iter().map(|t| t.hash()).collect();
        let verified: HashSet<Hash> = if hashes.is_empty() {
            HashSet::new()
        } else {
            self.mempool.verified(hashes).await?
        };
        let genesis = self.genesis.clone();
        let parent = self.head.parent;
        let mut state = self.take_state();
        let (state, result) = tokio::task::spawn_blocking(move || {
            let r = validate_block(
                genesis.chain_context(),
                &parent,
                &mut state,
                &sealed,
                now,
                &|h| verified.contains(h),
            );
            (state, r)
        })
        .await?;
        self.state = Some(state);
        Ok(result)
    }

    /// Makes a decided block durable and current: store batch, state, mempool, events, metrics.
    async fn apply_commit(
        &mut self,
        sealed: SealedBlock,
        cert: CommitCertificate,
        executed: ExecutedBlock,
    ) -> Result<(), DriverError> {
        let t0 = Instant::now();
        let hash = sealed.hash();
        let height = sealed.header().height;
        // The previous block's time; genesis time is not a block's, so block 1 has no interval.
        let interval_ms = (self.head.parent.height.0 > 0).then(|| {
            sealed
                .header()
                .timestamp_ms
                .0
                .saturating_sub(self.head.parent.timestamp_ms.0)
        });
        let tx_hashes: Vec<Hash> = executed.receipts().iter().map(|r| r.hash).collect();
        let accounts = executed.changes().to_vec();
        let store = self.store.clone();
        let (sealed, cert, tx_hashes, accounts) = tokio::task::spawn_blocking(move || {
            let r = store.commit_block(&BlockCommit {
                block: sealed.block(),
                hash,
                commit: &cert,
                tx_hashes: &tx_hashes,
                accounts: &accounts,
            });
            r.map(|()| (sealed, cert, tx_hashes, accounts))
        })
        .await??;
        // The block is durable; from here on the in-memory state follows it.
        let mut state = self.take_state();
        let committed = state.commit(&executed);
        self.state = Some(state);
        committed?;
        self.executed.clear();
        self.timers.clear();
        self.pending_build = None;
        self.wal_seq = 0;
        self.head = Head {
            parent: ParentBlock::of(&sealed),
            block: Some(sealed),
            cert: Some(cert),
        };
        self.metrics
            .block_commit_seconds
            .observe(t0.elapsed().as_secs_f64());
        self.metrics.blocks_committed.inc();
        self.metrics.txs_finalized.inc_by(tx_hashes.len() as u64);
        self.metrics.block_txs.observe(tx_hashes.len() as f64);
        if let Some(ms) = interval_ms {
            self.metrics
                .block_interval_seconds
                .observe(Duration::from_millis(ms).as_secs_f64());
        }
        self.metrics
            .height
            .set(i64::try_from(height.0).unwrap_or(i64::MAX));
        self.publish(&tx_hashes);
        self.mempool.committed(tx_hashes, accounts).await?;
        tracing::debug!(%height, block = %hash, "committed");
        Ok(())
    }

    fn publish(&self, tx_hashes: &[Hash]) {
        let Some(block) = &self.head.block else {
            return;
        };
        let header = block.header();
        let state_root = header.state_root;
        self.head_tx.send_modify(|h| {
            h.height = header.height;
            h.hash = block.hash();
            h.time_ms = header.timestamp_ms;
            h.state_root = state_root;
        });
        // No subscribers is normal; a lagging subscriber loses old events, never blocks us.
        let _ = self.events.send(NodeEvent::Block {
            height: header.height,
            hash: block.hash(),
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
            tx_count: header.tx_count,
        });
        for (i, h) in tx_hashes.iter().enumerate() {
            let _ = self.events.send(NodeEvent::Tx {
                hash: *h,
                height: header.height,
                index: i as u32,
            });
        }
    }

    async fn on_net(&mut self, msg: NetInbound) -> Result<(), DriverError> {
        match msg {
            NetInbound::Consensus(ConsensusMessage::Proposal(p)) => {
                self.feed(Input::Proposal(p)).await
            }
            NetInbound::Consensus(ConsensusMessage::Vote(v)) => self.feed(Input::Vote(v)).await,
            NetInbound::VerifiedConsensus(m) => self.feed(Input::Verified(m)).await,
            NetInbound::Transactions(txs) => {
                self.mempool.submit_from_peer(txs);
                Ok(())
            }
            NetInbound::VerifiedTransactions(txs) => {
                self.mempool.submit_verified_from_peer(txs);
                Ok(())
            }
            NetInbound::Blocks(blocks) => self.apply_synced(blocks).await,
            NetInbound::Syncing(syncing) => {
                self.head_tx
                    .send_if_modified(|h| std::mem::replace(&mut h.syncing, syncing) != syncing);
                Ok(())
            }
        }
    }

    /// Applies blocks fetched by sync: each must extend the head and carry a valid certificate.
    async fn apply_synced(&mut self, blocks: Vec<CommittedBlock>) -> Result<(), DriverError> {
        let mut applied = 0usize;
        for cb in blocks {
            let height = cb.block.header.height;
            let next = self.head.parent.next_height();
            if height < next {
                continue;
            }
            if height > next {
                break;
            }
            let sealed = cb.block.seal();
            let verified = self.metrics.time_signatures(|| {
                cb.commit.verify(
                    self.genesis.chain_id(),
                    self.genesis.validators(),
                    height,
                    &sealed.hash(),
                )
            });
            if let Err(e) = verified {
                tracing::warn!(%height, error = %e, "synced block has an invalid certificate; ignored");
                break;
            }
            match self.execute_block(sealed.clone(), None).await? {
                Ok(executed) => {
                    self.apply_commit(sealed, cb.commit, executed).await?;
                    applied += 1;
                }
                Err(e) => {
                    // A certificate from 2/3 of the power for an invalid block means the validators
                    // are byzantine beyond the model; refuse to follow, keep serving.
                    tracing::error!(%height, error = %e, "synced block is invalid; ignored");
                    break;
                }
            }
        }
        if applied > 0 {
            self.start_next_height().await?;
        }
        Ok(())
    }
}

/// The head info published at start.
pub fn head_info(head: &Head, state_root: Hash) -> HeadInfo {
    match &head.block {
        Some(b) => HeadInfo {
            height: b.header().height,
            hash: b.hash(),
            time_ms: b.header().timestamp_ms,
            state_root,
            syncing: false,
        },
        None => HeadInfo {
            height: Height(0),
            hash: head.parent.hash,
            time_ms: head.parent.timestamp_ms,
            state_root,
            syncing: false,
        },
    }
}
