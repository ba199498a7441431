//! Wiring: open the store, restore the chain, start the owner tasks, hand out the router and the
//! network's channel ends, and shut down in order.
//!
//! Start-up refuses to run on a data dir that is not exactly the chain it claims: the genesis hash
//! must match, and the state rebuilt from the accounts table must have the head block's state root
//! (otherwise the accounts and the blocks disagree, which a crash cannot cause, since both are
//! written in one batch: it is corruption, and the node says so instead of serving wrong balances).

use std::path::Path;
use std::sync::Arc;

use ledger_core::genesis::{Genesis, GenesisError};
use ledger_core::state::{State, StateError};
use ledger_core::validation::ParentBlock;
use ledger_core::{Address, Hash, Height, Keypair};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::{self, ApiContext, ApiParts, ChainInfo, ClientRateLimits, ClientSlots};
use crate::config::Config;
use crate::consensus::{Driver, DriverError, DriverParts, Head, head_info};
use crate::events::{HeadInfo, NodeEvent};
use crate::mempool::{self, MempoolHandle};
use crate::metrics::Metrics;
use crate::net_types::{
    NET_INBOUND_QUEUE_MSGS, NET_OUTBOUND_QUEUE_MSGS, NetInbound, NetOutbound,
    SYNC_INBOUND_QUEUE_MSGS, SYNC_REFUSED_QUEUE_MSGS,
};
use crate::network::PeerInfo;
use crate::store::{InitError, Store, StoreError};

/// Why the node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot read genesis file {path}: {source}")]
    GenesisRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("genesis file {path}: {source}")]
    Genesis {
        path: std::path::PathBuf,
        source: GenesisError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "corrupt database: the accounts table gives state root {computed}, but head block {height} \
         says {expected}; restore the data dir from a backup or resync"
    )]
    StateRootMismatch {
        height: Height,
        expected: Hash,
        computed: Hash,
    },
    #[error("corrupt database: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("cannot start the mempool thread: {0}")]
    Thread(std::io::Error),
    #[error("a task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Reads and validates a genesis file.
pub fn read_genesis(path: &Path) -> Result<Genesis, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|source| NodeError::GenesisRead {
        path: path.to_path_buf(),
        source,
    })?;
    Genesis::from_json(&text).map_err(|source| NodeError::Genesis {
        path: path.to_path_buf(),
        source,
    })
}

/// The network's ends of the node's channels, and where it publishes its peers. With no
/// network, drop them: the node then runs alone (a one-validator chain commits by itself).
#[derive(Debug)]
pub struct NetEnds {
    /// Proposals, votes and evidence to gossip (from the driver).
    pub consensus_out: mpsc::Receiver<NetOutbound>,
    /// Transactions admitted through the API, to gossip (from the mempool).
    pub transactions_out: mpsc::Receiver<NetOutbound>,
    /// Where the network delivers validated proposals and votes (to the driver).
    pub consensus_in: mpsc::Sender<NetInbound>,
    /// Where sync delivers blocks and the syncing flag (to the driver).
    pub sync_in: mpsc::Sender<NetInbound>,
    /// Heights of synced blocks the driver refused, so sync can blame the peer that served them.
    pub sync_refused: mpsc::Receiver<Height>,
    /// The connected peers, for `/v1/peers` and `/v1/status`.
    pub peers: watch::Sender<Vec<PeerInfo>>,
    /// This node's validator address, if it is one.
    pub me: Option<Address>,
}

/// A started node.
#[derive(Debug)]
pub struct RunningNode {
    /// The HTTP API (serve it, or drive it with `oneshot` in tests).
    pub router: axum::Router,
    /// What the router serves, for a router with extra routes (`api::router_with`).
    pub api: api::ApiContext,
    pub store: Arc<Store>,
    pub genesis: Arc<Genesis>,
    pub mempool: MempoolHandle,
    pub head: watch::Receiver<HeadInfo>,
    pub metrics: Arc<Metrics>,
    /// Taken by whoever runs the network.
    pub net: Option<NetEnds>,
    shutdown: watch::Sender<bool>,
    driver: JoinHandle<Result<(), DriverError>>,
    driver_stopped: watch::Receiver<bool>,
    mempool_thread: mempool::MempoolThread,
}

/// Opens the store (initialising it from genesis the first time) and the head state (blocking).
/// Nothing is rebuilt: the state is read from the store, and its root checked against the head
/// block's.
fn load_chain(cfg: &Config, genesis: &Genesis) -> Result<(Arc<Store>, State, Head), NodeError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        NodeError::Store(StoreError::Corruption {
            table: "data_dir",
            key: cfg.data_dir.display().to_string(),
            reason: e.to_string(),
        })
    })?;
    let store = Arc::new(Store::open(&cfg.data_dir, &cfg.store)?);
    let initialised = store
        .initialise(genesis.hash(), &genesis.initial_accounts())
        .map_err(|e| match e {
            InitError::Store(e) => NodeError::Store(e),
            InitError::State(e) => NodeError::Corrupt(format!("writing the genesis state: {e}")),
        })?;
    if initialised.is_some() {
        tracing::info!(genesis = %genesis.hash(), chain = %genesis.chain_id(), "initialised a new data dir");
    }
    let height = store.head_height()?;
    let version = store
        .state_genesis_version()?
        .checked_add(height.0)
        .ok_or_else(|| NodeError::Corrupt(format!("no tree version for height {height}")))?;
    let (head, expected) = if height.0 == 0 {
        let head = Head {
            block: None,
            parent: ParentBlock::genesis(genesis),
            cert: None,
        };
        (head, None)
    } else {
        let cb = store
            .committed_block(height)?
            .ok_or_else(|| NodeError::Corrupt(format!("head block {height} is missing")))?;
        let sealed = cb
            .block
            .seal()
            .map_err(|e| NodeError::Corrupt(format!("head block {height}: {e}")))?;
        let root = sealed.header().state_root;
        let head = Head {
            parent: ParentBlock::of(&sealed),
            block: Some(sealed),
            cert: Some(cb.commit),
        };
        (head, Some(root))
    };
    let state = State::open(store.clone(), height, version, expected).map_err(|e| match e {
        StateError::RootMismatch { expected, got, .. } => NodeError::StateRootMismatch {
            height,
            expected,
            computed: got,
        },
        e => NodeError::Corrupt(format!("the state at height {height}: {e}")),
    })?;
    Ok((store, state, head))
}

/// Starts a node: store, mempool, consensus driver, API router. Must run inside a tokio runtime.
pub async fn start(
    cfg: &Config,
    genesis: Genesis,
    key: Option<Keypair>,
) -> Result<RunningNode, NodeError> {
    let genesis = Arc::new(genesis);
    let (store, state, head) = {
        let cfg = cfg.clone();
        let genesis = genesis.clone();
        tokio::task::spawn_blocking(move || load_chain(&cfg, &genesis)).await??
    };
    tracing::info!(height = %head.parent.height, state_root = %state.root(), "chain loaded");
    if let Some(k) = &key {
        if genesis.validators().get(&k.address()).is_none() {
            tracing::warn!(address = %k.address(), "the node key is not a genesis validator; following without voting");
        } else {
            tracing::info!(address = %k.address(), "running as a validator");
        }
    } else {
        tracing::info!("no node key: running as a full node");
    }

    let metrics = Arc::new(Metrics::new());
    metrics
        .height
        .set(i64::try_from(head.parent.height.0).unwrap_or(i64::MAX));
    let (net_out, net_out_rx) = mpsc::channel(NET_OUTBOUND_QUEUE_MSGS);
    let (tx_out, tx_out_rx) = mpsc::channel(NET_OUTBOUND_QUEUE_MSGS);
    let (net_in_tx, net_in) = mpsc::channel(NET_INBOUND_QUEUE_MSGS);
    let (sync_in_tx, sync_in) = mpsc::channel(SYNC_INBOUND_QUEUE_MSGS);
    let (sync_refused_tx, sync_refused) = mpsc::channel(SYNC_REFUSED_QUEUE_MSGS);
    let (peers_tx, peers) = watch::channel(Vec::new());
    let (mempool, mempool_thread) = mempool::spawn(
        cfg.mempool.clone(),
        genesis.chain_id().clone(),
        store.clone(),
        Some(tx_out),
        metrics.clone(),
    )
    .map_err(NodeError::Thread)?;
    let (head_tx, head_rx) = watch::channel(head_info(&head, state.root()));
    let (events, _) = broadcast::channel::<NodeEvent>(cfg.api.events_buffer);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let validator = key
        .as_ref()
        .map(Keypair::address)
        .filter(|a| genesis.validators().get(a).is_some());

    let parts = DriverParts {
        genesis: genesis.clone(),
        key,
        store: store.clone(),
        state,
        head,
        mempool: mempool.clone(),
        net_out,
        net_in,
        sync_in,
        sync_refused: sync_refused_tx,
        head_tx,
        events: events.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown_rx,
    };
    // Restoring reads the WAL: a blocking call.
    let driver = tokio::task::spawn_blocking(move || Driver::new(parts)).await??;
    let (stopped_tx, driver_stopped) = watch::channel(false);
    let driver = driver.spawn();
    let driver = tokio::spawn(async move {
        let r = driver.await.map_err(DriverError::from).and_then(|r| r);
        if let Err(e) = &r {
            tracing::error!(error = %e, "consensus driver failed; the node stops");
        }
        let _ = stopped_tx.send(true);
        r
    });

    let ctx = ApiContext::from(ApiParts {
        store: store.clone(),
        mempool: mempool.clone(),
        head: head_rx.clone(),
        peers,
        events,
        metrics: metrics.clone(),
        chain: Arc::new(ChainInfo {
            chain_id: genesis.chain_id().clone(),
            genesis_hash: genesis.hash(),
            genesis_time_ms: genesis.genesis_time_ms(),
            validators: genesis.validators().clone(),
            validator,
            genesis_json: genesis.to_json().into(),
            token: genesis.token().cloned(),
        }),
        limits: Arc::new(cfg.api.clone()),
        rate_limits: Arc::new(ClientRateLimits::new(
            cfg.api.rate_limit_per_sec,
            cfg.api.rate_limit_burst,
            cfg.api.rate_limit_exempt_loopback,
        )),
        event_subscribers: Arc::new(Semaphore::new(api::MAX_EVENT_SUBSCRIBERS)),
        event_slots: ClientSlots::new(cfg.api.max_event_subscribers_per_client),
        block_json: api::block_json_cache(),
    });
    Ok(RunningNode {
        router: api::router(ctx.clone()),
        api: ctx,
        store,
        genesis,
        mempool,
        head: head_rx,
        metrics,
        net: Some(NetEnds {
            consensus_out: net_out_rx,
            transactions_out: tx_out_rx,
            consensus_in: net_in_tx,
            sync_in: sync_in_tx,
            sync_refused,
            peers: peers_tx,
            me: validator,
        }),
        shutdown,
        driver,
        driver_stopped,
        mempool_thread,
    })
}

impl RunningNode {
    /// Resolves when the consensus driver has stopped (a fatal error, or after [`Self::shutdown`]).
    pub fn driver_stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.driver_stopped.clone();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    /// Stops the driver (it finishes the output it is executing, so a commit is never cut in half),
    /// then flushes and closes the store. Serve no more requests before calling this.
    /// Returns once the store is closed, unless a handle to it is still held elsewhere (a clone of
    /// the router, a network task).
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let RunningNode {
            router,
            api,
            store,
            mempool,
            net,
            shutdown,
            driver,
            mempool_thread,
            ..
        } = self;
        drop(router);
        drop(api);
        drop(net);
        let _ = shutdown.send(true);
        let driver_result = driver.await?;
        // The driver is done: nothing writes any more. Stop the mempool (it holds the store for
        // account reads), then flush and close.
        mempool.stop().await;
        drop(mempool);
        tokio::task::spawn_blocking(move || {
            mempool_thread.join();
            let flushed = store.flush();
            if Arc::strong_count(&store) > 1 {
                tracing::warn!("the store is still referenced; it closes when the last user ends");
            }
            drop(store);
            flushed
        })
        .await??;
        driver_result?;
        Ok(())
    }
}
