//! Wiring between the node's channel ends and the network: gossip validation, an outbound pump
//! (consensus first; transactions batched), one router per traffic class, and the catch-up sync
//! task.
//!
//! Classes stay apart from end to end: validated consensus messages go to the driver's consensus
//! queue, validated transaction batches straight to the mempool's peer lane (never through the
//! driver), peers' heads to the sync task, and synced blocks to the driver's sync queue.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hashlink::LruCache;
use tokio::sync::{mpsc, watch};

use ledger_core::consensus::ConsensusMessage;
use ledger_core::state::Account;
use ledger_core::{Address, Hash, Height, SignedTransaction, codec};

use super::sync::{self, SyncEvent};
use super::wire::{self, ConsensusGossip, GossipChecks, Gossiped, LedgerView, MAX_TXS_PER_GOSSIP};
use super::{BlockSource, NetEvent, NetEvents, NetworkConfig, NetworkError, NetworkHandle, Topic};
use crate::events::HeadInfo;
use crate::mempool::MempoolHandle;
use crate::metrics::Metrics;
use crate::net_types::{NetInbound, NetOutbound};
use crate::store::Store;

/// Transactions wait at most this long to be gossiped together.
const TX_BATCH_WINDOW: Duration = Duration::from_millis(10);
/// Sync events queued before the router drops head updates (the next poll repeats them).
const SYNC_EVENT_QUEUE_LEN: usize = 256;
/// Own consensus messages remembered as published, to send later copies as resends.
const PUBLISHED_MEMORY: usize = 1024;

/// The node's side of the network: the channel ends it reads and writes.
#[derive(Debug)]
pub struct Ends {
    /// Proposals, votes and evidence from the driver.
    pub consensus_out: mpsc::Receiver<NetOutbound>,
    /// Transactions newly admitted through this node's API, from the mempool.
    pub transactions_out: mpsc::Receiver<NetOutbound>,
    /// Validated proposals and votes, to the driver.
    pub consensus_in: mpsc::Sender<NetInbound>,
    /// Synced blocks and the syncing flag, to the driver.
    pub sync_in: mpsc::Sender<NetInbound>,
    /// Heights of synced blocks the driver refused, from the driver.
    pub sync_refused: mpsc::Receiver<Height>,
    /// Where validated peer transactions go.
    pub mempool: MempoolHandle,
    /// This node's validator address, if it signs: its own messages go out first as themselves,
    /// later as resends.
    pub me: Option<Address>,
}

/// What gossip validation reads of a running node: its head and committed accounts.
#[derive(Debug)]
pub struct NodeLedger {
    pub store: Arc<Store>,
    pub head: watch::Receiver<HeadInfo>,
}

impl LedgerView for NodeLedger {
    fn head_height(&self) -> u64 {
        self.head.borrow().height.0
    }

    fn account(&self, address: &Address) -> Option<Account> {
        match self.store.account(address) {
            Ok(a) => Some(a.unwrap_or_default()),
            Err(e) => {
                tracing::error!(%e, "gossip pre-check cannot read an account");
                None
            }
        }
    }
}

/// Starts the network and connects it to the node's channel ends.
pub fn start(
    keypair: libp2p::identity::Keypair,
    config: NetworkConfig,
    checks: GossipChecks,
    store: Arc<dyn BlockSource>,
    ends: Ends,
    metrics: Arc<Metrics>,
) -> Result<NetworkHandle, NetworkError> {
    let (handle, events) = super::spawn_with_metrics(
        keypair,
        config,
        wire::validator(checks),
        store.clone(),
        metrics,
    )?;
    let NetEvents {
        consensus,
        transactions,
        heads,
    } = events;
    let (sync_tx, sync_rx) = mpsc::channel(SYNC_EVENT_QUEUE_LEN);
    tokio::spawn(route_consensus(consensus, ends.consensus_in));
    tokio::spawn(route_transactions(transactions, ends.mempool));
    tokio::spawn(route_heads(heads, sync_tx));
    tokio::spawn(pump(
        ends.consensus_out,
        ends.transactions_out,
        handle.clone(),
        ends.me,
    ));
    tokio::spawn(sync::run(
        handle.clone(),
        store,
        sync_rx,
        ends.sync_in,
        ends.sync_refused,
    ));
    Ok(handle)
}

/// Loads the node's libp2p identity from `path`, creating it (owner-only) on first start, so the
/// peer id (and the bootnode address others know) survives restarts.
pub fn load_or_create_identity(path: &Path) -> Result<libp2p::identity::Keypair, NetworkError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| {
        NetworkError::Setup(format!("p2p identity {}: {what}: {e}", path.display()))
    };
    match std::fs::read(path) {
        Ok(bytes) => libp2p::identity::Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| setup("corrupt key file", &e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = libp2p::identity::Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| setup("encode", &e))?;
            write_private(path, &bytes).map_err(|e| setup("write", &e))?;
            Ok(key)
        }
        Err(e) => Err(setup("read", &e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

async fn route_consensus(
    mut events: mpsc::Receiver<NetEvent<Gossiped>>,
    driver: mpsc::Sender<NetInbound>,
) {
    while let Some(event) = events.recv().await {
        if let NetEvent::Message {
            message: Gossiped::Consensus(m),
            ..
        } = event
        {
            // Back-pressure from the driver holds consensus validation, whose budget then makes
            // gossipsub ignore the excess: consensus messages are delayed by nothing else.
            if driver.send(NetInbound::VerifiedConsensus(m)).await.is_err() {
                return;
            }
        }
    }
}

async fn route_transactions(
    mut events: mpsc::Receiver<NetEvent<Gossiped>>,
    mempool: MempoolHandle,
) {
    while let Some(event) = events.recv().await {
        if let NetEvent::Message {
            message: Gossiped::Transactions(txs),
            ..
        } = event
        {
            mempool.submit_verified_from_peer(txs);
        }
    }
}

async fn route_heads(
    mut events: mpsc::Receiver<NetEvent<Gossiped>>,
    sync: mpsc::Sender<SyncEvent>,
) {
    while let Some(event) = events.recv().await {
        if let NetEvent::PeerHead { peer, height } = event {
            let _ = sync.try_send(SyncEvent::PeerHead { peer, height });
        }
    }
}

/// Publishes what the node sends: consensus messages first, transactions batched.
async fn pump(
    mut consensus: mpsc::Receiver<NetOutbound>,
    mut transactions: mpsc::Receiver<NetOutbound>,
    network: NetworkHandle,
    me: Option<Address>,
) {
    let mut pending: Vec<SignedTransaction> = Vec::new();
    let mut published: LruCache<Hash, ()> = LruCache::new(PUBLISHED_MEMORY);
    let mut consensus_open = true;
    let mut txs_open = true;
    while consensus_open || txs_open {
        let flush_after = tokio::time::sleep(TX_BATCH_WINDOW);
        tokio::select! {
            biased;
            m = consensus.recv(), if consensus_open => match m {
                Some(m) => publish_consensus(&network, m, me, &mut published),
                None => consensus_open = false,
            },
            m = transactions.recv(), if txs_open => match m {
                Some(NetOutbound::Transactions(txs)) => {
                    pending.extend(txs);
                    if pending.len() >= MAX_TXS_PER_GOSSIP {
                        flush(&network, &mut pending);
                    }
                }
                Some(other) => publish_consensus(&network, other, me, &mut published),
                None => txs_open = false,
            },
            () = flush_after, if !pending.is_empty() => flush(&network, &mut pending),
        }
    }
    flush(&network, &mut pending);
}

/// A proposal or vote goes out as itself the first time this node publishes one it signed, and as
/// a [`ConsensusGossip::Resend`] stamped with the current second otherwise (a retransmission of
/// its own, or a re-broadcast of others' messages it received): content-addressed gossip would
/// drop the same bytes again.
fn publish_consensus(
    network: &NetworkHandle,
    out: NetOutbound,
    me: Option<Address>,
    published: &mut LruCache<Hash, ()>,
) {
    let gossip = match out {
        NetOutbound::Consensus(m) => {
            let first = Some(m.signer()) == me && {
                let id = Hash::digest(&codec::encode(&m));
                published.insert(id, ()).is_none()
            };
            if first {
                ConsensusGossip::Message(m)
            } else {
                resend(m)
            }
        }
        NetOutbound::Evidence(e) => ConsensusGossip::Evidence(e),
        NetOutbound::Transactions(txs) => {
            network.publish(Topic::Transactions, wire::encode_txs(&txs));
            return;
        }
    };
    network.publish(Topic::Consensus, wire::encode_consensus(&gossip));
}

fn resend(message: ConsensusMessage) -> ConsensusGossip {
    ConsensusGossip::Resend {
        sent_at_secs: wire::unix_secs(),
        message,
    }
}

fn flush(network: &NetworkHandle, pending: &mut Vec<SignedTransaction>) {
    while !pending.is_empty() {
        let n = pending.len().min(MAX_TXS_PER_GOSSIP);
        let batch: Vec<SignedTransaction> = pending.drain(..n).collect();
        network.publish(Topic::Transactions, wire::encode_txs(&batch));
    }
}

/// Starts the network for a running node from its configuration and connects it to the node's
/// channel ends. Returns `None` when the node was started without network ends.
pub fn attach(
    cfg: &crate::config::Config,
    node: &mut crate::node::RunningNode,
) -> Result<Option<NetworkHandle>, NetworkError> {
    let Some(ends) = node.net.take() else {
        return Ok(None);
    };
    let listen_addr = cfg.p2p.listen_addr.parse().map_err(|e| {
        NetworkError::Setup(format!("p2p.listen_addr '{}': {e}", cfg.p2p.listen_addr))
    })?;
    let bootnodes = cfg
        .p2p
        .bootnodes
        .iter()
        .map(|b| {
            b.parse()
                .map_err(|e| NetworkError::Setup(format!("p2p.bootnodes '{b}': {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let keypair = load_or_create_identity(&cfg.data_dir.join("p2p.key"))?;
    let config = NetworkConfig {
        listen_addr,
        bootnodes,
        max_peers: cfg.p2p.max_peers,
        genesis_hash: node.genesis.hash(),
        peer_book: Some(cfg.data_dir.join("peers.txt")),
    };
    let checks = GossipChecks {
        chain_id: node.genesis.chain_id().clone(),
        validators: Arc::new(node.genesis.validators().clone()),
        metrics: node.metrics.clone(),
        ledger: Arc::new(NodeLedger {
            store: node.store.clone(),
            head: node.head.clone(),
        }),
        policy: wire::TxPolicy {
            min_fee: cfg.mempool.min_fee,
            nonce_window: cfg.mempool.nonce_window,
        },
        now_secs: Arc::new(wire::unix_secs),
    };
    let handle = start(
        keypair,
        config,
        checks,
        node.store.clone(),
        Ends {
            consensus_out: ends.consensus_out,
            transactions_out: ends.transactions_out,
            consensus_in: ends.consensus_in,
            sync_in: ends.sync_in,
            sync_refused: ends.sync_refused,
            mempool: node.mempool.clone(),
            me: ends.me,
        },
        node.metrics.clone(),
    )?;
    let mut peers = handle.peers();
    let publish = ends.peers;
    tokio::spawn(async move {
        while peers.changed().await.is_ok() {
            let list = peers.borrow_and_update().clone();
            publish.send_replace(list);
        }
    });
    tracing::info!(peer_id = %handle.local_peer_id(), "p2p network started");
    Ok(Some(handle))
}
