//! Peer-to-peer networking: one event loop owns the libp2p `Swarm`; everyone else holds a
//! [`NetworkHandle`].
//!
//! - Transport: TCP + noise + yamux.
//! - Gossipsub carries transactions and consensus messages on topics named after the genesis hash
//!   (nodes of different chains never mix). Every message is validated by the application (the
//!   [`Validator`] given to [`spawn`]) *before* gossipsub relays it; a rejected message penalises its
//!   sender in gossipsub's peer score, and a peer that keeps sending invalid messages is blocked.
//!   Message ids hash the data with its signed source and sequence number: relayed copies are one
//!   message, while a node's deliberate re-publication (consensus retransmission) goes out again.
//! - Request-response (`/ledger/sync/1`, CBOR) answers head-height and block-range requests for
//!   catch-up; serving reads the store off the event loop.
//! - Identify + Kademlia: nodes that only know a bootnode learn about each other and connect.
//! - Connection limits bound the peer count; message and response sizes are bounded.
//!
//! The validator runs on blocking threads with a bounded number in flight: when validation falls
//! behind, new messages are ignored (not relayed, not penalised), which is gossip's normal
//! back-pressure.
//!
//! Metrics: `ledger_peers` follows the connected peer set; gossip messages received (before
//! validation), published, and rejected by validation are counted per topic
//! ([`Topic::label`]), rejections also per reason.

mod behaviour;
pub mod control;
pub mod service;
mod store_source;
pub mod sync;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use behaviour::{Behaviour, BehaviourEvent};
use ledger_core::Hash;

use crate::metrics::Metrics;

/// Largest gossip message, in bytes (a batch of transactions or a proposal with its block).
pub use ledger_core::params::MAX_GOSSIP_BYTES;
/// Largest sync response, in bytes.
pub use ledger_core::params::MAX_SYNC_RESPONSE_BYTES;
/// Most blocks one sync request may ask for.
pub const MAX_BLOCKS_PER_REQUEST: u64 = 256;
/// Gossip messages validated at once; beyond this, new messages are ignored.
const MAX_VALIDATIONS_IN_FLIGHT: usize = 512;
/// Invalid messages (garbage, bad signatures: never produced by honest nodes, whose stale messages
/// are ignored rather than rejected) a peer may send before it is blocked. Gossipsub graylists the
/// peer at about the same count (score weight -10, squared), after which its messages stop arriving.
const MAX_INVALID_MESSAGES_PER_PEER: u32 = 3;
/// Commands queued to the event loop.
const COMMAND_QUEUE_LEN: usize = 1024;
/// Events queued to the application.
const EVENT_QUEUE_LEN: usize = 4096;
/// Block-range requests served at once.
const MAX_SERVES_IN_FLIGHT: usize = 16;

/// What a gossip message is about. Each kind has its own topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Transactions,
    Consensus,
}

impl Topic {
    const ALL: [Topic; 2] = [Topic::Transactions, Topic::Consensus];

    /// The short kind used as the `topic` label of the gossip metrics and in logs.
    pub fn label(self) -> &'static str {
        match self {
            Topic::Transactions => "txs",
            Topic::Consensus => "consensus",
        }
    }

    fn ident(self, genesis_hash: &Hash) -> IdentTopic {
        let chain = &genesis_hash.to_hex()[..16];
        match self {
            Topic::Transactions => IdentTopic::new(format!("/ledger/{chain}/txs/1")),
            Topic::Consensus => IdentTopic::new(format!("/ledger/{chain}/consensus/1")),
        }
    }
}

/// The application's verdict on a gossip message.
#[derive(Debug)]
pub enum Verdict<M> {
    /// Valid: relay it and hand `M` to the application.
    Accept(M),
    /// Not useful (e.g. stale) but not malicious: do not relay, do not penalise.
    Ignore,
    /// Invalid: do not relay, penalise the sender. The reason is a short snake_case code
    /// (`undecodable`, `bad_signature`, ...): it labels `ledger_gossip_messages_rejected_total`,
    /// so it comes from a small fixed set.
    Reject(&'static str),
}

/// Decodes and checks a gossip message. Runs on a blocking thread: it may verify signatures.
pub type Validator<M> = Arc<dyn Fn(Topic, &[u8]) -> Verdict<M> + Send + Sync>;

/// Where the network reads committed blocks to serve peers that catch up. Blocking calls.
pub trait BlockSource: Send + Sync + 'static {
    /// Height of the last committed block.
    fn head_height(&self) -> u64;
    /// Canonically encoded committed blocks (block + certificate) from `from` to `to` inclusive,
    /// in order, stopping early when `max_bytes` would be exceeded or a block is missing.
    fn encoded_blocks(&self, from: u64, to: u64, max_bytes: usize) -> Vec<Vec<u8>>;
}

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub listen_addr: Multiaddr,
    /// Peers to dial at start; discovery finds the rest.
    pub bootnodes: Vec<Multiaddr>,
    pub max_peers: u32,
    pub genesis_hash: Hash,
    /// Where the addresses of peers met before are kept, so a restarted node finds the network
    /// again even when its bootnodes are down.
    pub peer_book: Option<std::path::PathBuf>,
}

/// Most peer addresses kept in the peer book.
const MAX_PEER_BOOK_ENTRIES: usize = 64;

fn read_peer_book(path: &std::path::Path) -> Vec<Multiaddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.trim().parse().ok())
        .take(MAX_PEER_BOOK_ENTRIES)
        .collect()
}

fn write_peer_book(path: &std::path::Path, addrs: &[Multiaddr]) {
    let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    let tmp = path.with_extension("tmp");
    // Best effort: losing the peer book only costs a slower rejoin through the bootnodes.
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// What the network tells the application.
#[derive(Debug)]
pub enum NetEvent<M> {
    /// A validated gossip message.
    Message { from: PeerId, message: M },
    /// A peer's head height (answer to the periodic status poll).
    PeerHead { peer: PeerId, height: u64 },
}

/// A connected peer, for the API and the testnet's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerInfo {
    pub peer_id: String,
    pub address: String,
    /// The peer's head height, once known.
    pub height: Option<u64>,
}

/// Why a network call failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("the network task has stopped")]
    Stopped,
    #[error("request to {peer} failed: {reason}")]
    Request { peer: PeerId, reason: String },
    #[error("peer {peer} answered with the wrong kind of response")]
    UnexpectedResponse { peer: PeerId },
    #[error("cannot start the network: {0}")]
    Setup(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum SyncRequest {
    Status,
    Blocks { from: u64, to: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum SyncResponse {
    Status {
        height: u64,
    },
    Blocks {
        #[serde(with = "serde_bytes_vec")]
        blocks: Vec<Vec<u8>>,
    },
}

mod serde_bytes_vec {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_bytes::ByteBuf;

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let bufs: Vec<&serde_bytes::Bytes> = v.iter().map(|b| serde_bytes::Bytes::new(b)).collect();
        bufs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let bufs = Vec::<ByteBuf>::deserialize(d)?;
        Ok(bufs.into_iter().map(ByteBuf::into_vec).collect())
    }
}

enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
    },
    RequestBlocks {
        peer: PeerId,
        from: u64,
        to: u64,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
    },
    Validated {
        id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    Serve {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    SetIsolated(bool),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
}

/// A cheap, cloneable way to talk to the network task.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    peers: watch::Receiver<Vec<PeerInfo>>,
    local_peer_id: PeerId,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Publish { .. } => "Publish",
            Command::RequestBlocks { .. } => "RequestBlocks",
            Command::Validated { .. } => "Validated",
            Command::Serve { .. } => "Serve",
            Command::SetIsolated(_) => "SetIsolated",
            Command::ListenAddrs(_) => "ListenAddrs",
        })
    }
}

impl NetworkHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Gossips `data` on `topic`. Dropped (with a debug log) when the command queue is full:
    /// gossip is best-effort and consensus retransmits through its timeouts.
    pub fn publish(&self, topic: Topic, data: Vec<u8>) {
        if let Err(e) = self.commands.try_send(Command::Publish { topic, data }) {
            tracing::debug!(%e, "gossip publish dropped: network command queue full or closed");
        }
    }

    /// Asks `peer` for the committed blocks `from..=to` (at most [`MAX_BLOCKS_PER_REQUEST`]).
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        from: u64,
        to: u64,
    ) -> Result<Vec<Vec<u8>>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::RequestBlocks {
                peer,
                from,
                to,
                reply,
            })
            .await
            .map_err(|_| NetworkError::Stopped)?;
        rx.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Connected peers, updated by the event loop.
    pub fn peers(&self) -> watch::Receiver<Vec<PeerInfo>> {
        self.peers.clone()
    }

    /// Cuts this node off (disconnects every peer and refuses new connections) or heals it.
    pub async fn set_isolated(&self, isolated: bool) -> Result<(), NetworkError> {
        self.commands
            .send(Command::SetIsolated(isolated))
            .await
            .map_err(|_| NetworkError::Stopped)
    }

    /// The addresses this node listens on (with its peer id), once bound.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::ListenAddrs(tx))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }
}

/// Starts the network task with metrics of its own (a peer outside a node: tools, tests).
/// Returns the handle and the stream of validated messages.
pub fn spawn<M: Send + 'static>(
    keypair: libp2p::identity::Keypair,
    config: NetworkConfig,
    validator: Validator<M>,
    blocks: Arc<dyn BlockSource>,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent<M>>), NetworkError> {
    spawn_with_metrics(keypair, config, validator, blocks, Arc::new(Metrics::new()))
}

/// Starts the network task, reporting into the node's `metrics` (peers, gossip counts).
/// Returns the handle and the stream of validated messages.
pub fn spawn_with_metrics<M: Send + 'static>(
    keypair: libp2p::identity::Keypair,
    config: NetworkConfig,
    validator: Validator<M>,
    blocks: Arc<dyn BlockSource>,
    metrics: Arc<Metrics>,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent<M>>), NetworkError> {
    let mut swarm = behaviour::build_swarm(keypair, &config)?;
    let mut topics = HashMap::new();
    for t in Topic::ALL {
        let ident = t.ident(&config.genesis_hash);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&ident)
            .map_err(|e| NetworkError::Setup(e.to_string()))?;
        topics.insert(ident.hash(), t);
    }
    swarm
        .listen_on(config.listen_addr.clone())
        .map_err(|e| NetworkError::Setup(format!("listen on {}: {e}", config.listen_addr)))?;
    let book = config
        .peer_book
        .as_deref()
        .map(read_peer_book)
        .unwrap_or_default();
    for addr in config.bootnodes.iter().chain(book.iter()) {
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, %e, "cannot dial bootnode");
        }
        if let Some((peer, addr)) = split_peer_id(addr) {
            swarm.behaviour_mut().kad.add_address(&peer, addr);
        }
    }
    // Zero counters from the start, so `rate()` has a series before the first message.
    for t in Topic::ALL {
        let _ = metrics.gossip_received.get_or_create(&topic_label(t));
        let _ = metrics.gossip_sent.get_or_create(&topic_label(t));
    }
    let local_peer_id = *swarm.local_peer_id();
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE_LEN);
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE_LEN);
    let (peers_tx, peers_rx) = watch::channel(Vec::new());
    let event_loop = EventLoop {
        swarm,
        config,
        topics,
        commands: cmd_rx,
        self_commands: cmd_tx.clone(),
        events: event_tx,
        peers_tx,
        validator,
        blocks,
        validations: Arc::new(Semaphore::new(MAX_VALIDATIONS_IN_FLIGHT)),
        serves: Arc::new(Semaphore::new(MAX_SERVES_IN_FLIGHT)),
        pending_blocks: HashMap::new(),
        connected: HashMap::new(),
        heights: HashMap::new(),
        invalid_counts: HashMap::new(),
        blocked: HashSet::new(),
        isolated: false,
        book,
        metrics,
    };
    tokio::spawn(event_loop.run());
    Ok((
        NetworkHandle {
            commands: cmd_tx,
            peers: peers_rx,
            local_peer_id,
        },
        event_rx,
    ))
}

/// The label set of a per-topic gossip counter.
fn topic_label(topic: Topic) -> Vec<(String, String)> {
    vec![("topic".to_string(), topic.label().to_string())]
}

/// Splits `/ip4/.../tcp/.../p2p/<id>` into the peer id and the address without it.
fn split_peer_id(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut addr = addr.clone();
    match addr.pop() {
        Some(Protocol::P2p(peer)) => Some((peer, addr)),
        _ => None,
    }
}

type BlocksReply = oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>;

struct EventLoop<M> {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    topics: HashMap<TopicHash, Topic>,
    commands: mpsc::Receiver<Command>,
    /// For validation and serving tasks to report back into the loop.
    self_commands: mpsc::Sender<Command>,
    events: mpsc::Sender<NetEvent<M>>,
    peers_tx: watch::Sender<Vec<PeerInfo>>,
    validator: Validator<M>,
    blocks: Arc<dyn BlockSource>,
    validations: Arc<Semaphore>,
    serves: Arc<Semaphore>,
    pending_blocks: HashMap<OutboundRequestId, (PeerId, BlocksReply)>,
    connected: HashMap<PeerId, Multiaddr>,
    heights: HashMap<PeerId, u64>,
    invalid_counts: HashMap<PeerId, u32>,
    blocked: HashSet<PeerId>,
    isolated: bool,
    /// Listen addresses (with peer id) of peers met, newest last; persisted to `peer_book`.
    book: Vec<Multiaddr>,
    metrics: Arc<Metrics>,
}

impl<M: Send + 'static> EventLoop<M> {
    async fn run(mut self) {
        let mut status_poll = tokio::time::interval(Duration::from_millis(500));
        let mut discovery = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    // Every handle is gone, including our own: the node is shutting down.
                    None => return,
                },
                _ = status_poll.tick() => self.poll_status(),
                _ = discovery.tick() => self.discover(),
            }
        }
    }

    fn poll_status(&mut self) {
        if self.isolated {
            return;
        }
        let peers: Vec<PeerId> = self.connected.keys().copied().collect();
        for peer in peers {
            self.swarm
                .behaviour_mut()
                .sync
                .send_request(&peer, SyncRequest::Status);
        }
    }

    fn discover(&mut self) {
        if self.isolated {
            return;
        }
        // Bootstrap fails harmlessly while the routing table is empty.
        let _ = self.swarm.behaviour_mut().kad.bootstrap();
        if self.connected.is_empty() {
            for addr in self
                .config
                .bootnodes
                .iter()
                .chain(self.book.iter())
                .cloned()
                .collect::<Vec<_>>()
            {
                let _ = self.swarm.dial(addr);
            }
        }
    }

    fn publish_peers(&self) {
        let mut peers: Vec<PeerInfo> = self
            .connected
            .iter()
            .map(|(p, a)| PeerInfo {
                peer_id: p.to_string(),
                address: a.to_string(),
                height: self.heights.get(p).copied(),
            })
            .collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        self.metrics
            .peers
            .set(i64::try_from(peers.len()).unwrap_or(i64::MAX));
        self.peers_tx.send_replace(peers);
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data } => {
                let ident = topic.ident(&self.config.genesis_hash);
                // Duplicate, no peers yet, queues full: normal conditions for gossip.
                match self.swarm.behaviour_mut().gossipsub.publish(ident, data) {
                    Ok(_) => self.metrics.gossip_sent(topic.label()),
                    Err(e) => tracing::debug!(?topic, %e, "gossip publish not sent"),
                }
            }
            Command::RequestBlocks {
                peer,
                from,
                to,
                reply,
            } => {
                let to = to.min(from.saturating_add(MAX_BLOCKS_PER_REQUEST - 1));
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, SyncRequest::Blocks { from, to });
                self.pending_blocks.insert(id, (peer, reply));
            }
            Command::Validated {
                id,
                source,
                acceptance,
            } => {
                let rejected = matches!(acceptance, MessageAcceptance::Reject);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
                if rejected {
                    self.penalise(source);
                }
            }
            Command::Serve { channel, response } => {
                // The peer may have gone away meanwhile: nothing to do then.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Command::SetIsolated(isolated) => {
                self.isolated = isolated;
                if isolated {
                    let peers: Vec<PeerId> = self.connected.keys().copied().collect();
                    for p in peers {
                        let _ = self.swarm.disconnect_peer_id(p);
                    }
                } else {
                    let addrs: Vec<Multiaddr> = self
                        .config
                        .bootnodes
                        .iter()
                        .chain(self.book.iter())
                        .cloned()
                        .collect();
                    for addr in addrs {
                        let _ = self.swarm.dial(addr);
                    }
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
            }
            Command::ListenAddrs(reply) => {
                let local = *self.swarm.local_peer_id();
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| a.clone().with(Protocol::P2p(local)))
                    .collect();
                let _ = reply.send(addrs);
            }
        }
    }

    fn penalise(&mut self, peer: PeerId) {
        let count = self.invalid_counts.entry(peer).or_insert(0);
        *count += 1;
        if *count >= MAX_INVALID_MESSAGES_PER_PEER && self.blocked.insert(peer) {
            tracing::warn!(%peer, "blocking peer after repeated invalid messages");
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, peer_id = %self.swarm.local_peer_id(), "p2p listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                if self.isolated {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.connected
                    .insert(peer_id, endpoint.get_remote_address().clone());
                self.publish_peers();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.remove(&peer_id);
                self.heights.remove(&peer_id);
                self.publish_peers();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let mut book_changed = false;
                for addr in info.listen_addrs {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, addr.clone());
                    let full = addr.with(Protocol::P2p(peer_id));
                    if !self.book.contains(&full) {
                        self.book.push(full);
                        book_changed = true;
                    }
                }
                if book_changed {
                    let excess = self.book.len().saturating_sub(MAX_PEER_BOOK_ENTRIES);
                    self.book.drain(..excess);
                    if let Some(path) = &self.config.peer_book {
                        write_peer_book(path, &self.book);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                ..
            })) => {
                let room = self.connected.len() < self.config.max_peers as usize;
                if room && !self.isolated && !self.connected.contains_key(&peer) {
                    let _ = self.swarm.dial(addresses.first().clone());
                }
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        let Some(topic) = self.topics.get(&message.topic).copied() else {
            // Gossipsub only delivers subscribed topics; a stray one is invalid all the same.
            self.metrics.gossip_received("unknown");
            self.metrics.gossip_rejected("unknown", "unknown_topic");
            let _ = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, MessageAcceptance::Reject);
            return;
        };
        self.metrics.gossip_received(topic.label());
        let Ok(permit) = self.validations.clone().try_acquire_owned() else {
            // Validation is saturated: let the message go without relaying or blame.
            let _ = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
            return;
        };
        let validator = self.validator.clone();
        let events = self.events.clone();
        let commands = self.self_commands.clone();
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let acceptance = match validator(topic, &message.data) {
                Verdict::Accept(m) => {
                    // Full application queue: the message is still valid for the network.
                    let _ = events.try_send(NetEvent::Message {
                        from: source,
                        message: m,
                    });
                    MessageAcceptance::Accept
                }
                Verdict::Ignore => MessageAcceptance::Ignore,
                Verdict::Reject(reason) => {
                    tracing::debug!(%source, ?topic, reason, "rejected gossip message");
                    metrics.gossip_rejected(topic.label(), reason);
                    MessageAcceptance::Reject
                }
            };
            let _ = commands.blocking_send(Command::Validated {
                id,
                source,
                acceptance,
            });
        });
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.serve(peer, request, channel),
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => match response {
                SyncResponse::Status { height } => {
                    let changed = self.heights.insert(peer, height) != Some(height);
                    let _ = self.events.try_send(NetEvent::PeerHead { peer, height });
                    if changed {
                        self.publish_peers();
                    }
                }
                SyncResponse::Blocks { blocks } => {
                    if let Some((_, reply)) = self.pending_blocks.remove(&request_id) {
                        let _ = reply.send(Ok(blocks));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((_, reply)) = self.pending_blocks.remove(&request_id) {
                    let _ = reply.send(Err(NetworkError::Request {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            _ => {}
        }
    }

    fn serve(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let Ok(permit) = self.serves.clone().try_acquire_owned() else {
            // Too many range reads at once: dropping the channel fails the peer's request, and
            // it retries elsewhere or later.
            tracing::debug!(%peer, "sync request dropped: server busy");
            return;
        };
        let blocks = self.blocks.clone();
        let commands = self.self_commands.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let response = match request {
                SyncRequest::Status => SyncResponse::Status {
                    height: blocks.head_height(),
                },
                SyncRequest::Blocks { from, to } => {
                    let to = to.min(from.saturating_add(MAX_BLOCKS_PER_REQUEST - 1));
                    SyncResponse::Blocks {
                        blocks: blocks.encoded_blocks(
                            from,
                            to,
                            MAX_SYNC_RESPONSE_BYTES - ledger_core::params::SYNC_FRAME_OVERHEAD,
                        ),
                    }
                }
            };
            let _ = commands.blocking_send(Command::Serve { channel, response });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Serves blocks whose bytes are just their height, up to `head`.
    struct FakeChain {
        head: u64,
    }

    impl BlockSource for FakeChain {
        fn head_height(&self) -> u64 {
            self.head
        }
        fn encoded_blocks(&self, from: u64, to: u64, _max_bytes: usize) -> Vec<Vec<u8>> {
            (from..=to.min(self.head))
                .map(|h| h.to_le_bytes().to_vec())
                .collect()
        }
    }

    /// Accepts messages whose first byte is not 0xFF, and hands up their bytes.
    fn validator() -> Validator<Vec<u8>> {
        Arc::new(|_topic, data: &[u8]| match data.first() {
            Some(0xFF) | None => Verdict::Reject("garbage"),
            Some(_) => Verdict::Accept(data.to_vec()),
        })
    }

    fn start(
        bootnodes: Vec<Multiaddr>,
        head: u64,
    ) -> (NetworkHandle, mpsc::Receiver<NetEvent<Vec<u8>>>) {
        start_observed(bootnodes, head, Arc::new(Metrics::new()))
    }

    fn start_observed(
        bootnodes: Vec<Multiaddr>,
        head: u64,
        metrics: Arc<Metrics>,
    ) -> (NetworkHandle, mpsc::Receiver<NetEvent<Vec<u8>>>) {
        let config = NetworkConfig {
            listen_addr: "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
            bootnodes,
            max_peers: 16,
            genesis_hash: Hash::digest(b"test chain"),
            peer_book: None,
        };
        spawn_with_metrics(
            libp2p::identity::Keypair::generate_ed25519(),
            config,
            validator(),
            Arc::new(FakeChain { head }),
            metrics,
        )
        .expect("network starts")
    }

    async fn address_of(h: &NetworkHandle) -> Multiaddr {
        for _ in 0..100 {
            if let Some(a) = h.listen_addrs().await.expect("running").into_iter().next() {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("node never listened");
    }

    /// The current value of one member of a labelled counter.
    fn counted(
        family: &prometheus_client::metrics::family::Family<
            Vec<(String, String)>,
            prometheus_client::metrics::counter::Counter,
        >,
        labels: &[(&str, &str)],
    ) -> u64 {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        family.get_or_create(&labels).get()
    }

    async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes `data` from `from` until `rx` yields a message with those bytes (gossip needs the
    /// subscriptions exchanged first), within a bound.
    async fn publish_until_received(
        from: &NetworkHandle,
        rx: &mut mpsc::Receiver<NetEvent<Vec<u8>>>,
        data: Vec<u8>,
    ) {
        for attempt in 0..100u32 {
            // Distinct bytes per attempt: content-addressed ids would drop a re-publish.
            let mut d = data.clone();
            d.extend_from_slice(&attempt.to_le_bytes());
            from.publish(Topic::Consensus, d);
            let deadline = tokio::time::sleep(Duration::from_millis(100));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    ev = rx.recv() => match ev {
                        Some(NetEvent::Message { message, .. }) if message.starts_with(&data) => return,
                        Some(_) => continue,
                        None => panic!("network stopped"),
                    },
                    _ = &mut deadline => break,
                }
            }
        }
        panic!("message never arrived");
    }

    /// The genesis limit agrees with the transport: a proposal carrying the largest block a
    /// genesis may allow (`max_block_bytes` = `MAX_BLOCK_BYTES_LIMIT`, plus the proposal's 103 bytes
    /// of fields) crosses real gossipsub between two nodes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_proposal_with_the_largest_block_a_genesis_allows_crosses_gossip() {
        let (a, _a_rx) = start(vec![], 0);
        let a_addr = address_of(&a).await;
        let (b, mut b_rx) = start(vec![a_addr], 0);
        let peers = b.peers();
        wait_for("b to connect to a", 10, || !peers.borrow().is_empty()).await;
        let largest = ledger_core::params::MAX_BLOCK_BYTES_LIMIT as usize + 103;
        // `publish_until_received` appends 4 bytes of attempt number.
        publish_until_received(&a, &mut b_rx, vec![7u8; largest - 4]).await;
    }

    #[test]
    fn peer_book_round_trips_and_skips_garbage_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("peers.txt");
        let addrs: Vec<Multiaddr> = vec![
            "/ip4/10.0.0.1/tcp/30333".parse().expect("valid"),
            "/ip4/10.0.0.2/tcp/30334".parse().expect("valid"),
        ];
        write_peer_book(&path, &addrs);
        assert_eq!(read_peer_book(&path), addrs);
        std::fs::write(&path, "garbage\n/ip4/10.0.0.3/tcp/1\n").expect("write");
        assert_eq!(read_peer_book(&path).len(), 1);
        assert!(read_peer_book(&dir.path().join("missing")).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_gossip_and_serve_block_ranges_over_loopback() {
        let a_metrics = Arc::new(Metrics::new());
        let b_metrics = Arc::new(Metrics::new());
        let (a, _a_rx) = start_observed(vec![], 10, a_metrics.clone());
        let a_addr = address_of(&a).await;
        let (b, mut b_rx) = start_observed(vec![a_addr], 0, b_metrics.clone());
        let peers = b.peers();
        wait_for("b to connect to a", 10, || !peers.borrow().is_empty()).await;
        assert_eq!(b_metrics.peers.get(), 1);
        publish_until_received(&a, &mut b_rx, b"hello".to_vec()).await;
        let topic = [("topic", "consensus")];
        assert!(counted(&a_metrics.gossip_sent, &topic) >= 1);
        assert!(counted(&b_metrics.gossip_received, &topic) >= 1);
        // Present at zero before any message of the topic.
        assert_eq!(
            b_metrics.sample("ledger_gossip_messages_received_total{topic=\"txs\"}"),
            Some(0.0)
        );

        let blocks = b
            .request_blocks(a.local_peer_id(), 3, 5)
            .await
            .expect("a serves blocks");
        assert_eq!(
            blocks,
            vec![
                3u64.to_le_bytes().to_vec(),
                4u64.to_le_bytes().to_vec(),
                5u64.to_le_bytes().to_vec()
            ]
        );
        // B learns A's head from the status poll.
        wait_for("a's head height", 10, || {
            peers.borrow().iter().any(|p| p.height == Some(10))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_that_only_know_a_bootnode_discover_each_other() {
        let (boot, _boot_rx) = start(vec![], 0);
        let boot_addr = address_of(&boot).await;
        let (b, _b_rx) = start(vec![boot_addr.clone()], 0);
        let (c, _c_rx) = start(vec![boot_addr], 0);
        let c_id = c.local_peer_id().to_string();
        let b_peers = b.peers();
        wait_for("b to discover c through the bootnode", 30, || {
            b_peers.borrow().iter().any(|p| p.peer_id == c_id)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_sending_garbage_is_blocked_while_honest_gossip_flows() {
        let (honest, _h_rx) = start(vec![], 0);
        let honest_addr = address_of(&honest).await;
        let victim_metrics = Arc::new(Metrics::new());
        let (victim, mut victim_rx) =
            start_observed(vec![honest_addr.clone()], 0, victim_metrics.clone());
        let victim_addr = address_of(&victim).await;
        let (bad, _bad_rx) = start(vec![victim_addr], 0);
        let victim_peers = victim.peers();
        let bad_id = bad.local_peer_id().to_string();
        wait_for("both peers connected", 10, || {
            victim_peers.borrow().len() >= 2
        })
        .await;
        // Make sure subscriptions are known so the garbage actually reaches the victim.
        publish_until_received(&honest, &mut victim_rx, b"warm-up".to_vec()).await;

        for i in 0..(MAX_INVALID_MESSAGES_PER_PEER * 3) {
            let mut garbage = vec![0xFF];
            garbage.extend_from_slice(&i.to_le_bytes());
            bad.publish(Topic::Consensus, garbage);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wait_for("the garbage sender to be disconnected", 20, || {
            !victim_peers.borrow().iter().any(|p| p.peer_id == bad_id)
        })
        .await;
        let rejected = counted(
            &victim_metrics.gossip_rejected,
            &[("topic", "consensus"), ("reason", "garbage")],
        );
        assert!(rejected >= 1, "rejections counted: {rejected}");
        assert_eq!(
            victim_metrics.peers.get(),
            i64::try_from(victim_peers.borrow().len()).expect("small")
        );
        // No garbage was ever delivered to the application.
        while let Ok(ev) = victim_rx.try_recv() {
            if let NetEvent::Message { message, .. } = ev {
                assert_ne!(
                    message.first(),
                    Some(&0xFF),
                    "garbage reached the application"
                );
            }
        }
        publish_until_received(&honest, &mut victim_rx, b"still flowing".to_vec()).await;
    }
}
