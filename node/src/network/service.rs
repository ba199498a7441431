//! Wiring between the consensus driver's two channel ends ([`NetOutbound`], [`NetInbound`]) and the
//! network: gossip validation, an outbound pump that batches transactions, a router for inbound
//! events, and the catch-up sync task.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use ledger_core::{ChainId, SignedTransaction, ValidatorSet};

use super::sync::{self, SyncEvent};
use super::wire::{self, ConsensusGossip, MAX_TXS_PER_GOSSIP};
use super::{BlockSource, NetEvent, NetworkConfig, NetworkError, NetworkHandle, Topic};
use crate::metrics::Metrics;
use crate::net_types::{NetInbound, NetOutbound};

/// Transactions wait at most this long to be gossiped together.
const TX_BATCH_WINDOW: Duration = Duration::from_millis(10);
/// Sync events queued before the router drops head updates (the next poll repeats them).
const SYNC_EVENT_QUEUE_LEN: usize = 256;

/// Starts the network and connects it to the driver's channel ends.
#[allow(clippy::too_many_arguments)]
pub fn start(
    keypair: libp2p::identity::Keypair,
    config: NetworkConfig,
    chain_id: ChainId,
    validators: Arc<ValidatorSet>,
    store: Arc<dyn BlockSource>,
    outbound: mpsc::Receiver<NetOutbound>,
    inbound: mpsc::Sender<NetInbound>,
    metrics: Arc<Metrics>,
) -> Result<NetworkHandle, NetworkError> {
    let (handle, events) = super::spawn_with_metrics(
        keypair,
        config,
        wire::validator(chain_id, validators, metrics.clone()),
        store.clone(),
        metrics,
    )?;
    let (sync_tx, sync_rx) = mpsc::channel(SYNC_EVENT_QUEUE_LEN);
    tokio::spawn(route(events, inbound.clone(), sync_tx));
    tokio::spawn(pump(outbound, handle.clone()));
    tokio::spawn(sync::run(handle.clone(), store, sync_rx, inbound));
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

async fn route(
    mut events: mpsc::Receiver<NetEvent<NetInbound>>,
    inbound: mpsc::Sender<NetInbound>,
    sync: mpsc::Sender<SyncEvent>,
) {
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::Message { message, .. } => {
                // Back-pressure from the driver slows validation, which makes gossipsub ignore
                // the excess: the right place to shed load.
                if inbound.send(message).await.is_err() {
                    return;
                }
            }
            NetEvent::PeerHead { peer, height } => {
                let _ = sync.try_send(SyncEvent::PeerHead { peer, height });
            }
        }
    }
}

async fn pump(mut outbound: mpsc::Receiver<NetOutbound>, network: NetworkHandle) {
    let mut pending: Vec<SignedTransaction> = Vec::new();
    loop {
        let next = if pending.is_empty() {
            outbound.recv().await
        } else {
            match tokio::time::timeout(TX_BATCH_WINDOW, outbound.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    flush(&network, &mut pending);
                    continue;
                }
            }
        };
        match next {
            None => {
                flush(&network, &mut pending);
                return;
            }
            Some(NetOutbound::Consensus(m)) => network.publish(
                Topic::Consensus,
                wire::encode_consensus(&ConsensusGossip::Message(m)),
            ),
            Some(NetOutbound::Evidence(e)) => network.publish(
                Topic::Consensus,
                wire::encode_consensus(&ConsensusGossip::Evidence(e)),
            ),
            Some(NetOutbound::Transactions(txs)) => {
                pending.extend(txs);
                if pending.len() >= MAX_TXS_PER_GOSSIP {
                    flush(&network, &mut pending);
                }
            }
        }
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
    let handle = start(
        keypair,
        config,
        node.genesis.chain_id().clone(),
        Arc::new(node.genesis.validators().clone()),
        node.store.clone(),
        ends.outbound,
        ends.inbound,
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
