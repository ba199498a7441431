//! The driver task: the I/O shell around ledger-core's [`Engine`]. See the module docs of
//! [`crate::consensus`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ledger_core::consensus::{RestoreError, WalEntry};
use ledger_core::engine::{Committed, Effect, Engine, EngineConfig, EngineError, Event, Now};
use ledger_core::genesis::Genesis;
use ledger_core::state::State;
use ledger_core::{Hash, Height, Keypair, TimestampMs};
use tokio::sync::{broadcast, mpsc, watch};

pub use ledger_core::engine::Head;

use crate::events::{HeadInfo, NodeEvent};
use crate::mempool::{MempoolError, MempoolHandle, PoolStats};
use crate::metrics::Metrics;
use crate::net_types::{NetInbound, NetOutbound};
use crate::store::{BlockCommit, Store, StoreError};

/// Why the driver stopped. Every variant is fatal: the node cannot go on safely.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the consensus WAL cannot be restored: {0}")]
    Restore(#[from] RestoreError),
    #[error("the mempool stopped")]
    Mempool(#[from] MempoolError),
    #[error("the driver's runtime could not start: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the driver's thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
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
    /// Validated proposals and votes.
    pub net_in: mpsc::Receiver<NetInbound>,
    /// Synced blocks and the syncing flag: read after consensus messages.
    pub sync_in: mpsc::Receiver<NetInbound>,
    /// Where the heights of refused synced blocks go (sync blames the peer that served them).
    pub sync_refused: mpsc::Sender<Height>,
    pub head_tx: watch::Sender<HeadInfo>,
    pub events: broadcast::Sender<NodeEvent>,
    pub metrics: Arc<Metrics>,
    /// Becomes `true` when the node shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Wall-clock milliseconds: block timestamps and the clock-drift bound of proposals.
pub fn now_ms() -> TimestampMs {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    TimestampMs(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The engine's two clocks: the wall clock, and a monotonic one counted from the driver's start.
#[derive(Debug, Clone, Copy)]
struct Clock {
    origin: Instant,
}

impl Clock {
    fn now(&self) -> Now {
        Now {
            wall: now_ms(),
            mono_ms: u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn instant(&self, mono_ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.origin + Duration::from_millis(mono_ms))
    }
}

/// The consensus owner task: performs the engine's effects and feeds it events.
///
/// It runs on a thread of its own ([`Driver::spawn`]) with a single-threaded runtime, so the
/// engine's CPU work (validating and executing blocks) and the store's synced writes block only
/// this thread, with no hop to a blocking pool and back.
#[derive(Debug)]
pub struct Driver {
    engine: Engine,
    store: Arc<Store>,
    mempool: MempoolHandle,
    pool_stats: watch::Receiver<PoolStats>,
    net_out: mpsc::Sender<NetOutbound>,
    net_in: mpsc::Receiver<NetInbound>,
    sync_in: mpsc::Receiver<NetInbound>,
    sync_refused: mpsc::Sender<Height>,
    head_tx: watch::Sender<HeadInfo>,
    events: broadcast::Sender<NodeEvent>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    clock: Clock,
}

impl Driver {
    /// Builds the engine, restoring the machine from the WAL of the height after the head
    /// (blocking read).
    pub fn new(parts: DriverParts) -> Result<Driver, DriverError> {
        let next = parts.head.parent.next_height();
        let wal: Vec<(u64, WalEntry)> = parts.store.wal_entries(next)?;
        let wal_next_seq = wal.last().map_or(0, |(seq, _)| seq + 1);
        if !wal.is_empty() {
            tracing::info!(height = %next, entries = wal.len(), "restoring consensus from the WAL");
        }
        let engine = Engine::new(
            EngineConfig {
                genesis: parts.genesis,
                key: parts.key,
            },
            parts.state,
            parts.head,
            wal.into_iter().map(|(_, e)| e).collect(),
            wal_next_seq,
        )?;
        Ok(Driver {
            engine,
            store: parts.store,
            pool_stats: parts.mempool.watch_stats(),
            mempool: parts.mempool,
            net_out: parts.net_out,
            net_in: parts.net_in,
            sync_in: parts.sync_in,
            sync_refused: parts.sync_refused,
            head_tx: parts.head_tx,
            events: parts.events,
            metrics: parts.metrics,
            shutdown: parts.shutdown,
            clock: Clock {
                origin: Instant::now(),
            },
        })
    }

    /// Runs the driver on a thread of its own until shutdown or a fatal error.
    pub fn spawn(self) -> tokio::task::JoinHandle<Result<(), DriverError>> {
        tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(DriverError::Runtime)?;
            runtime.block_on(self.run())
        })
    }

    /// Runs until shutdown or a fatal error.
    pub async fn run(mut self) -> Result<(), DriverError> {
        self.handle(Event::Start).await?;
        let mut net_open = true;
        let mut sync_open = true;
        let mut pool_open = true;
        loop {
            let deadline = self.clock.instant(self.engine.next_deadline_ms());
            tokio::select! {
                biased;
                r = self.shutdown.changed() => {
                    if r.is_err() || *self.shutdown.borrow() {
                        break;
                    }
                }
                () = tokio::time::sleep_until(deadline) => self.handle(Event::Time).await?,
                // Before the network: under load its queue is never empty, and a build waiting for
                // transactions must hear of them (cheap; the watch keeps only the latest size).
                r = self.pool_stats.changed(), if pool_open => {
                    if r.is_err() {
                        pool_open = false;
                    } else {
                        let txs = self.pool_stats.borrow_and_update().txs;
                        self.handle(Event::PoolSize { txs }).await?;
                    }
                }
                msg = self.net_in.recv(), if net_open => match msg {
                    Some(m) => self.on_net(m).await?,
                    None => net_open = false,
                },
                // After consensus: applying a synced batch takes long, and a vote must not wait
                // behind it.
                msg = self.sync_in.recv(), if sync_open => match msg {
                    Some(m) => self.on_net(m).await?,
                    None => sync_open = false,
                },
            }
        }
        tracing::info!("consensus driver stopped");
        Ok(())
    }

    /// Hands `event` to the engine and performs the effects in order; answers to requests are
    /// handed to the engine after them.
    async fn handle(&mut self, event: Event) -> Result<(), DriverError> {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let effects = self.engine.handle(self.clock.now(), event)?;
            for effect in effects {
                if let Some(answer) = self.perform(effect).await? {
                    queue.push_back(answer);
                }
            }
        }
        self.metrics
            .consensus_round
            .set(i64::from(self.engine.machine().round().0));
        Ok(())
    }

    async fn perform(&mut self, effect: Effect) -> Result<Option<Event>, DriverError> {
        match effect {
            Effect::Persist { height, seq, entry } => {
                // Synced before the next effect runs (the broadcast of this vote or proposal comes
                // later in the same list). This thread is the driver's own: blocking it is fine.
                self.store.wal_append(height, seq, &entry)?;
            }
            Effect::Broadcast(m) => self.send_net(NetOutbound::Consensus(m)),
            Effect::Evidence(ev) => {
                tracing::warn!(offender = %ev.offender(), height = %ev.height(), "equivocation evidence");
                self.send_net(NetOutbound::Evidence(ev));
            }
            Effect::FetchCandidates {
                height,
                max_txs,
                max_bytes,
            } => {
                let txs = self.mempool.candidates(max_txs, max_bytes).await?;
                return Ok(Some(Event::Candidates { height, txs }));
            }
            Effect::LookupVerified {
                block_hash,
                tx_hashes,
            } => {
                let verified = self.mempool.verified(tx_hashes).await?;
                return Ok(Some(Event::VerifiedTxs {
                    block_hash,
                    verified,
                }));
            }
            Effect::DropInvalid(txs) => self.mempool.drop_invalid(txs).await?,
            Effect::Commit(committed) => self.commit(*committed).await?,
            Effect::InvalidProposal {
                height,
                block_hash,
                error,
            } => {
                tracing::warn!(%height, block = %block_hash, %error, "proposed block is invalid");
            }
            Effect::BuildFailed { height, error } => {
                tracing::error!(%height, %error, "building a block failed");
            }
            Effect::SyncRefused { height, reason } => {
                tracing::warn!(%height, %reason, "synced block refused; the rest of its batch is dropped");
                // Best effort: sync also notices a head that stops moving.
                let _ = self.sync_refused.try_send(height);
            }
        }
        Ok(None)
    }

    /// Makes a committed block durable and announces it: store batch, metrics, events, mempool.
    async fn commit(&mut self, c: Committed) -> Result<(), DriverError> {
        let t0 = Instant::now();
        let hash = c.block.hash();
        let height = c.block.height();
        self.store.commit_block(&BlockCommit {
            block: c.block.block(),
            hash,
            commit: &c.certificate,
            tx_hashes: &c.tx_hashes,
            state: &c.state,
        })?;
        // The block's state is in the store now: the engine's state reads it from there.
        self.engine.state_persisted(c.state.version);
        self.metrics
            .block_commit_seconds
            .observe(t0.elapsed().as_secs_f64());
        self.metrics.blocks_committed.inc();
        self.metrics.txs_finalized.inc_by(c.tx_hashes.len() as u64);
        self.metrics.block_txs.observe(c.tx_hashes.len() as f64);
        if let Some(round) = c.decided_in_round {
            // Decided in round r means r + 1 rounds: 1 is the happy path.
            self.metrics
                .consensus_rounds_per_height
                .observe(f64::from(round.0) + 1.0);
        }
        if let Some(parent) = c.parent_time {
            let ms = c.block.header().timestamp_ms.0.saturating_sub(parent.0);
            self.metrics
                .block_interval_seconds
                .observe(Duration::from_millis(ms).as_secs_f64());
        }
        self.metrics
            .height
            .set(i64::try_from(height.0).unwrap_or(i64::MAX));
        self.publish(&c);
        self.mempool.committed(c.tx_hashes, c.accounts).await?;
        tracing::debug!(%height, block = %hash, "committed");
        Ok(())
    }

    fn publish(&self, c: &Committed) {
        let header = c.block.header();
        let hash = c.block.hash();
        self.head_tx.send_modify(|h| {
            h.height = header.height;
            h.hash = hash;
            h.time_ms = header.timestamp_ms;
            h.state_root = header.state_root;
        });
        // No subscribers is normal; a lagging subscriber loses old events, never blocks us.
        let _ = self.events.send(NodeEvent::Block {
            height: header.height,
            hash,
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
            tx_count: header.tx_count,
        });
        for (i, h) in c.tx_hashes.iter().enumerate() {
            let _ = self.events.send(NodeEvent::Tx {
                hash: *h,
                height: header.height,
                index: i as u32,
            });
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

    async fn on_net(&mut self, msg: NetInbound) -> Result<(), DriverError> {
        match msg {
            NetInbound::VerifiedConsensus(m) => self.handle(Event::Verified(m)).await,
            NetInbound::Blocks(blocks) => self.handle(Event::Synced(blocks)).await,
            NetInbound::Syncing(syncing) => {
                self.head_tx
                    .send_if_modified(|h| std::mem::replace(&mut h.syncing, syncing) != syncing);
                Ok(())
            }
        }
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
