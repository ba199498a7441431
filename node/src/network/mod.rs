//! Peer-to-peer networking: one event loop owns the libp2p `Swarm`; everyone else holds a
//! [`NetworkHandle`].
//!
//! - Transport: TCP + noise + yamux.
//! - Gossipsub carries transactions and consensus messages on topics named after the genesis hash
//!   (nodes of different chains never mix). Messages are anonymous (no libp2p signature: what they
//!   carry is signed by its author, so a second signature would only cost a check per copy) and
//!   their ids are content hashes: every copy of the same bytes is one message, and a replay is
//!   dropped by gossipsub's duplicate cache before anything else looks at it. Every message is
//!   validated by the application (the [`Validator`] given to [`spawn`]) *before* gossipsub relays
//!   it.
//! - Request-response (`/ledger/sync/3`, CBOR) answers head-height and block-range requests for
//!   catch-up; serving reads the store off the event loop, with a per-peer share of the serve slots
//!   and responses no larger than the requester asked for.
//! - Identify + Kademlia: nodes that only know a bootnode learn about each other and connect.
//! - Connection limits bound the peer count; message and response sizes are bounded.
//!
//! Traffic classes do not share queues: consensus and transaction gossip have their own validation
//! budgets ([`MAX_CONSENSUS_VALIDATIONS`], [`MAX_TX_VALIDATIONS`]) and their own queues to the
//! application ([`NetEvents`]); consensus publications and verdicts travel on a priority lane of
//! commands that is drained before the bulk lane. When a class's validation falls behind, its new
//! messages are ignored (not relayed, not penalised): gossip's normal back-pressure, and it never
//! spills into the other class.
//!
//! Penalties: an invalid message ([`Verdict::Reject`]) penalises its sender in gossipsub's peer
//! score and counts against it here; a useless one ([`Verdict::Useless`]: stale, already known,
//! nothing new) is charged to the sender's budget ([`USELESS`]), and once that is spent it counts
//! as invalid; a resend of a message this node has ([`Verdict::Resent`]) is charged there only
//! when its sender delivers that message more often than honest peers do ([`MAX_REDELIVERIES`]).
//! A peer at [`MAX_INVALID_MESSAGES_PER_PEER`] is disconnected and blocked for [`BLOCK_DURATION`]. Per-peer
//! records live in LRU maps of [`MAX_TRACKED_PEERS`] entries, so new peer ids cost bounded memory.
//!
//! Metrics: `ledger_peers` follows the connected peer set; gossip messages received (before
//! validation), published, rejected and ignored by validation are counted per topic
//! ([`Topic::label`]), rejections and ignores also per reason; blocked peers are counted.

mod behaviour;
pub mod control;
pub mod service;
mod store_source;
pub mod sync;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hashlink::LruCache;
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
/// Consensus messages validated at once (one signature each); beyond this, new ones are ignored.
pub const MAX_CONSENSUS_VALIDATIONS: usize = 256;
/// Transaction batches validated at once (each checks up to 2,000 signatures on every core).
pub const MAX_TX_VALIDATIONS: usize = 4;
/// Invalid messages (garbage, bad signatures: never produced by honest nodes, whose stale messages
/// are ignored rather than rejected) a peer may send before it is blocked. Gossipsub graylists the
/// peer at about the same count (score weight -10, squared), after which its messages stop arriving.
pub const MAX_INVALID_MESSAGES_PER_PEER: u32 = 3;
/// Useless messages (stale, known, nothing new) a peer may send in a burst before they count as
/// invalid, and the rate their budget refills. Honest peers send a few per height (votes that
/// arrive after the decision).
pub const USELESS: Rate = Rate {
    burst: 64.0,
    per_sec: 16.0,
};
/// A block-range request beyond the peer's share of serve slots or its byte budget is answered
/// busy (`SyncResponse::Busy`), naming how long the peer should rest before it asks this node again:
/// until its byte budget is paid back, and at least [`MIN_SYNC_REST`]. Honest sync rests; up to
/// [`EARLY_REQUESTS_ALLOWED`] requests that arrive during the rest may have been sent before the
/// answer reached the peer (its sync keeps at most `sync::MAX_CHUNKS_IN_FLIGHT` out) and are
/// answered the same way; every one beyond them is penalised like an invalid message.
pub const MIN_SYNC_REST: Duration = Duration::from_millis(250);
pub const EARLY_REQUESTS_ALLOWED: u32 = sync::MAX_CHUNKS_IN_FLIGHT as u32;
/// The longest rest a busy answer is believed for: a server's own rests are a few seconds at
/// most (what it owes beyond its burst is one response), and a peer naming more is only
/// asked less, never trusted into an overflow.
pub const MAX_SYNC_REST: Duration = Duration::from_secs(10);

/// The rest a peer's busy answer asks for, as this node keeps it: at least [`MIN_SYNC_REST`] (a
/// server naming none would otherwise be asked again at once, over and over), at most
/// [`MAX_SYNC_REST`].
fn believed_rest(retry_after_ms: u64) -> Duration {
    Duration::from_millis(retry_after_ms).clamp(MIN_SYNC_REST, MAX_SYNC_REST)
}
/// Deliveries of one message this node has, as a resend, that one peer may make within
/// [`REDELIVERY_WINDOW`] before each further one is charged as useless. An honest peer delivers a
/// message at most twice a second: its own re-broadcast (stamped with the second, so one second's
/// copies are one gossip message) and one relay (a known message is re-verified, and so relayed,
/// at most once a second). Counted per message, not per peer: how many distinct messages an
/// honest peer relays is up to their signers (a faulty validator may sign a vote for every
/// round), so a per-peer count would let one faulty validator set honest nodes against each
/// other.
pub const MAX_REDELIVERIES: u32 = 6;
pub const REDELIVERY_WINDOW: Duration = Duration::from_secs(2);
/// (peer, message) pairs whose redeliveries are counted at once (least recently seen dropped).
const MAX_TRACKED_REDELIVERIES: usize = 16_384;
/// How long a penalised peer stays blocked.
pub const BLOCK_DURATION: Duration = Duration::from_secs(600);
/// Peers with a penalty record, and blocked peers, kept at most (least recently seen dropped).
pub const MAX_TRACKED_PEERS: usize = 1024;
/// Priority commands queued to the event loop (consensus publications and verdicts, control).
const PRIORITY_QUEUE_LEN: usize = 1024;
/// Bulk commands queued to the event loop (transaction gossip, sync).
const COMMAND_QUEUE_LEN: usize = 1024;
/// Validated consensus messages queued to the application (a full queue holds validation back).
const CONSENSUS_EVENT_QUEUE_LEN: usize = 1024;
/// Validated transaction batches queued to the application (a full queue drops the batch).
const TX_EVENT_QUEUE_LEN: usize = 16;
/// Peer head heights queued to the application (a full queue drops one; the next poll repeats it).
const HEAD_EVENT_QUEUE_LEN: usize = 256;
/// Block-range requests served at once, in all and per peer.
const MAX_SERVES_IN_FLIGHT: usize = 16;
const MAX_SERVES_PER_PEER: usize = 4;
/// Block bytes one peer may be served in a burst, and per second after it. A node catching up
/// takes what it applies (a few MB/s: its sync keeps at most 8 chunks of 4 MiB ahead of its
/// head, the burst); a peer asking for the same ranges over and over takes what it is given.
/// Beyond the budget, its requests are answered busy ([`MIN_SYNC_REST`]).
pub const SERVE_BYTES: Rate = Rate {
    burst: 32.0 * 1024.0 * 1024.0,
    per_sec: 8.0 * 1024.0 * 1024.0,
};

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

/// The application's verdict on a gossip message. Reasons are short snake_case codes from a
/// small fixed set: they label `ledger_gossip_messages_rejected_total` and `..._ignored_total`.
#[derive(Debug)]
pub enum Verdict<M> {
    /// Valid: relay it and hand `M` to the application.
    Accept(M),
    /// Not useful to this node now, through no fault of the sender (a height this node has not
    /// reached): do not relay, do not penalise.
    Ignore(&'static str),
    /// Useless in a way honest peers seldom are (stale, already known, nothing new): do not
    /// relay; charged to the sender's budget of useless messages ([`USELESS`]), and
    /// penalised like an invalid message once it is spent.
    Useless(&'static str),
    /// A re-broadcast of a message this node has (known, or of a height it committed), with the
    /// message's hash: how retransmission reaches nodes that missed the first copy, so the
    /// sender could not know. Not relayed, not held against the sender, unless it delivers the
    /// same message more often than honest peers do ([`MAX_REDELIVERIES`]): those are useless.
    Resent(&'static str, Hash),
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

/// The network's queues to the application, one per traffic class, so a flood of one class never
/// delays or drops another: validated consensus messages, validated transaction batches, and
/// peers' head heights.
#[derive(Debug)]
pub struct NetEvents<M> {
    pub consensus: mpsc::Receiver<NetEvent<M>>,
    pub transactions: mpsc::Receiver<NetEvent<M>>,
    pub heads: mpsc::Receiver<NetEvent<M>>,
}

impl<M> NetEvents<M> {
    /// The next event of any class, consensus first (for tools and tests that take them all in
    /// one place). `None` once every queue is closed.
    pub async fn recv(&mut self) -> Option<NetEvent<M>> {
        tokio::select! {
            biased;
            Some(e) = self.consensus.recv() => Some(e),
            Some(e) = self.transactions.recv() => Some(e),
            Some(e) = self.heads.recv() => Some(e),
            else => None,
        }
    }

    /// An event already queued, consensus first.
    pub fn try_recv(&mut self) -> Option<NetEvent<M>> {
        self.consensus
            .try_recv()
            .or_else(|_| self.transactions.try_recv())
            .or_else(|_| self.heads.try_recv())
            .ok()
    }
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
    #[error("peer {peer} is busy: ask it again after {retry_after:?}")]
    Busy { peer: PeerId, retry_after: Duration },
    #[error("peer {peer} answered with the wrong kind of response")]
    UnexpectedResponse { peer: PeerId },
    #[error("cannot start the network: {0}")]
    Setup(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum SyncRequest {
    Status,
    /// Committed blocks `from..=to`, answered with at most `max_bytes` of them (and never more
    /// than [`MAX_SYNC_RESPONSE_BYTES`]): the requester decides how much it takes in at once.
    Blocks {
        from: u64,
        to: u64,
        max_bytes: u64,
    },
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
    /// Not now: ask this node again for blocks after this many milliseconds, not before.
    Busy {
        retry_after_ms: u64,
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
        max_bytes: u64,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
    },
    Validated {
        id: MessageId,
        source: PeerId,
        topic: Topic,
        outcome: Outcome,
    },
    Serve {
        peer: PeerId,
        blocks: bool,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    /// The application found a peer's traffic outside gossip invalid (a forged sync chunk).
    Penalise {
        peer: PeerId,
        reason: &'static str,
    },
    SetIsolated(bool),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    /// Addresses a configured `/dns` bootnode resolved to, to dial.
    DialResolved(Vec<Multiaddr>),
}

/// A validation's outcome, reported back to the event loop.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Accept,
    Ignore,
    Useless(&'static str),
    Resent(&'static str, Hash),
    Reject,
}

/// A cheap, cloneable way to talk to the network task.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    /// Consensus publications and control: drained before `commands`.
    priority: mpsc::Sender<Command>,
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
            Command::Penalise { .. } => "Penalise",
            Command::SetIsolated(_) => "SetIsolated",
            Command::ListenAddrs(_) => "ListenAddrs",
            Command::DialResolved(_) => "DialResolved",
        })
    }
}

impl NetworkHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Gossips `data` on `topic` (consensus on the priority lane). Dropped (with a debug log)
    /// when the lane is full: gossip is best-effort and consensus retransmits through its timeouts.
    pub fn publish(&self, topic: Topic, data: Vec<u8>) {
        let lane = match topic {
            Topic::Consensus => &self.priority,
            Topic::Transactions => &self.commands,
        };
        if let Err(e) = lane.try_send(Command::Publish { topic, data }) {
            tracing::debug!(%e, ?topic, "gossip publish dropped: network command queue full or closed");
        }
    }

    /// Asks `peer` for the committed blocks `from..=to` (at most [`MAX_BLOCKS_PER_REQUEST`]),
    /// at most `max_bytes` of them.
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        from: u64,
        to: u64,
        max_bytes: u64,
    ) -> Result<Vec<Vec<u8>>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::RequestBlocks {
                peer,
                from,
                to,
                max_bytes,
                reply,
            })
            .await
            .map_err(|_| NetworkError::Stopped)?;
        rx.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Counts an invalid message from `peer` outside gossip (e.g. a sync chunk that does not
    /// decode or whose certificate fails): like a rejected gossip message, it brings the peer
    /// closer to being blocked.
    pub fn penalise(&self, peer: PeerId, reason: &'static str) {
        let _ = self.priority.try_send(Command::Penalise { peer, reason });
    }

    /// Connected peers, updated by the event loop.
    pub fn peers(&self) -> watch::Receiver<Vec<PeerInfo>> {
        self.peers.clone()
    }

    /// Cuts this node off (disconnects every peer and refuses new connections) or heals it.
    pub async fn set_isolated(&self, isolated: bool) -> Result<(), NetworkError> {
        self.priority
            .send(Command::SetIsolated(isolated))
            .await
            .map_err(|_| NetworkError::Stopped)
    }

    /// The addresses this node listens on (with its peer id), once bound.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.priority
            .send(Command::ListenAddrs(tx))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }
}

/// Starts the network task with metrics of its own (a peer outside a node: tools, tests).
/// Returns the handle and the queues of validated messages.
pub fn spawn<M: Send + 'static>(
    keypair: libp2p::identity::Keypair,
    config: NetworkConfig,
    validator: Validator<M>,
    blocks: Arc<dyn BlockSource>,
) -> Result<(NetworkHandle, NetEvents<M>), NetworkError> {
    spawn_with_metrics(keypair, config, validator, blocks, Arc::new(Metrics::new()))
}

/// Starts the network task, reporting into the node's `metrics` (peers, gossip counts).
/// Returns the handle and the queues of validated messages.
pub fn spawn_with_metrics<M: Send + 'static>(
    keypair: libp2p::identity::Keypair,
    config: NetworkConfig,
    validator: Validator<M>,
    blocks: Arc<dyn BlockSource>,
    metrics: Arc<Metrics>,
) -> Result<(NetworkHandle, NetEvents<M>), NetworkError> {
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
    // Bootnodes named by DNS are resolved and dialed by the first discovery tick, right away.
    for addr in config
        .bootnodes
        .iter()
        .filter(|a| !is_dns(a))
        .chain(book.iter())
    {
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
    let (priority_tx, priority_rx) = mpsc::channel(PRIORITY_QUEUE_LEN);
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE_LEN);
    let (consensus_tx, consensus_rx) = mpsc::channel(CONSENSUS_EVENT_QUEUE_LEN);
    let (txs_tx, txs_rx) = mpsc::channel(TX_EVENT_QUEUE_LEN);
    let (heads_tx, heads_rx) = mpsc::channel(HEAD_EVENT_QUEUE_LEN);
    let (peers_tx, peers_rx) = watch::channel(Vec::new());
    let event_loop = EventLoop {
        swarm,
        config,
        topics,
        priority: priority_rx,
        commands: cmd_rx,
        self_priority: priority_tx.clone(),
        self_commands: cmd_tx.clone(),
        consensus_events: consensus_tx,
        tx_events: txs_tx,
        head_events: heads_tx,
        peers_tx,
        validator,
        blocks,
        consensus_validations: Arc::new(Semaphore::new(MAX_CONSENSUS_VALIDATIONS)),
        tx_validations: Arc::new(Semaphore::new(MAX_TX_VALIDATIONS)),
        serves: Arc::new(Semaphore::new(MAX_SERVES_IN_FLIGHT)),
        serving: HashMap::new(),
        pending_blocks: HashMap::new(),
        connected: HashMap::new(),
        heights: HashMap::new(),
        records: LruCache::new(MAX_TRACKED_PEERS),
        redeliveries: Redeliveries::new(),
        blocked: LruCache::new(MAX_TRACKED_PEERS),
        isolated: false,
        book,
        metrics,
    };
    tokio::spawn(event_loop.run());
    Ok((
        NetworkHandle {
            priority: priority_tx,
            commands: cmd_tx,
            peers: peers_rx,
            local_peer_id,
        },
        NetEvents {
            consensus: consensus_rx,
            transactions: txs_rx,
            heads: heads_rx,
        },
    ))
}

/// The label set of a per-topic gossip counter.
fn topic_label(topic: Topic) -> Vec<(String, String)> {
    vec![("topic".to_string(), topic.label().to_string())]
}

/// Splits `/ip4/.../tcp/.../p2p/<id>` into the peer id and the address without it.
/// Whether `addr` starts with a DNS name (`/dns`, `/dns4`, `/dns6`).
fn is_dns(addr: &Multiaddr) -> bool {
    matches!(
        addr.iter().next(),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_))
    )
}

/// The addresses a `/dns*/<name>/tcp/<port>/...` address names now, each as `/ip4` or `/ip6`
/// with the rest kept (`/tcp`, `/p2p`); empty when the name does not resolve (logged) or the
/// address has no TCP port. Any other address is returned as it is.
async fn resolve_dns(addr: &Multiaddr) -> Vec<Multiaddr> {
    let mut parts = addr.iter();
    let (name, family) = match parts.next() {
        Some(Protocol::Dns(n)) => (n.to_string(), None),
        Some(Protocol::Dns4(n)) => (n.to_string(), Some(true)),
        Some(Protocol::Dns6(n)) => (n.to_string(), Some(false)),
        _ => return vec![addr.clone()],
    };
    let rest: Vec<Protocol<'static>> = parts.map(|p| p.acquire()).collect();
    let Some(Protocol::Tcp(port)) = rest.first() else {
        tracing::warn!(%addr, "bootnode names no TCP port");
        return Vec::new();
    };
    match tokio::net::lookup_host((name.as_str(), *port)).await {
        Ok(found) => found
            .filter(|sa| family.is_none_or(|v4| sa.is_ipv4() == v4))
            .map(|sa| {
                let mut out = Multiaddr::empty();
                out.push(match sa.ip() {
                    std::net::IpAddr::V4(ip) => Protocol::Ip4(ip),
                    std::net::IpAddr::V6(ip) => Protocol::Ip6(ip),
                });
                for p in &rest {
                    out.push(p.clone());
                }
                out
            })
            .collect(),
        Err(e) => {
            tracing::warn!(%addr, %e, "cannot resolve bootnode");
            Vec::new()
        }
    }
}

fn split_peer_id(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut addr = addr.clone();
    match addr.pop() {
        Some(Protocol::P2p(peer)) => Some((peer, addr)),
        _ => None,
    }
}

type BlocksReply = oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>;

/// A budget that refills with time: `burst` at most, `per_sec` more every second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: f64,
    pub per_sec: f64,
}

/// A token bucket for a [`Rate`]. Its level goes negative when a charge is known only after the
/// fact (the bytes of an answer), and the peer owes it until the refill pays it back.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            level: rate.burst,
            at: now,
        }
    }

    /// The level after refilling up to `now`.
    fn refill(&mut self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * rate.per_sec).min(rate.burst);
        self.at = self.at.max(now);
        self.level
    }

    /// Spends one; `false` (spending nothing) when less than one is left.
    fn take(&mut self, rate: Rate, now: Instant) -> bool {
        if self.refill(rate, now) >= 1.0 {
            self.level -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What this node holds against a peer (bounded: an LRU of [`MAX_TRACKED_PEERS`]).
#[derive(Debug, Clone, Copy)]
struct PeerRecord {
    /// Invalid messages so far; at [`MAX_INVALID_MESSAGES_PER_PEER`] the peer is blocked.
    invalid: u32,
    /// Useless messages ([`USELESS`]).
    useless: Bucket,
    /// Until when the peer was told to rest from block-range requests ([`MIN_SYNC_REST`]), and
    /// how many more requests during the rest are taken as sent before it knew.
    sync_rest: Option<(Instant, u32)>,
    /// Block bytes this peer may still be served ([`SERVE_BYTES`]; negative while it owes for a
    /// large answer).
    served: Bucket,
}

impl PeerRecord {
    fn new(now: Instant) -> PeerRecord {
        PeerRecord {
            invalid: 0,
            useless: Bucket::full(USELESS, now),
            sync_rest: None,
            served: Bucket::full(SERVE_BYTES, now),
        }
    }

    /// Whether the peer may be served a block range now (its byte budget, refilled, is not spent).
    fn may_be_served(&mut self, now: Instant) -> bool {
        self.served.refill(SERVE_BYTES, now) > 0.0
    }

    /// Charges an answer of `bytes` (after it was read: the size is known only then).
    fn charge_served(&mut self, bytes: usize) {
        self.served.level -= bytes as f64;
    }

    /// Spends one useless message; `false` when the budget was already spent.
    fn charge_useless(&mut self, now: Instant) -> bool {
        self.useless.take(USELESS, now)
    }
}

/// How often each peer delivered each message this node has, as a resend, in the current window.
struct Redeliveries {
    counts: LruCache<(PeerId, Hash), (u32, Instant)>,
}

impl Redeliveries {
    fn new() -> Redeliveries {
        Redeliveries {
            counts: LruCache::new(MAX_TRACKED_REDELIVERIES),
        }
    }

    /// Counts `peer` delivering `message` at `now`; `true` when that is more than
    /// [`MAX_REDELIVERIES`] within [`REDELIVERY_WINDOW`] (more than an honest peer delivers).
    fn beyond_honest(&mut self, peer: PeerId, message: Hash, now: Instant) -> bool {
        let key = (peer, message);
        let count = match self.counts.get_mut(&key) {
            Some((count, since)) if now.saturating_duration_since(*since) < REDELIVERY_WINDOW => {
                *count += 1;
                *count
            }
            Some(entry) => {
                *entry = (1, now);
                1
            }
            None => {
                self.counts.insert(key, (1, now));
                1
            }
        };
        count > MAX_REDELIVERIES
    }
}

struct EventLoop<M> {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    topics: HashMap<TopicHash, Topic>,
    priority: mpsc::Receiver<Command>,
    commands: mpsc::Receiver<Command>,
    /// For validation and serving tasks to report back into the loop.
    self_priority: mpsc::Sender<Command>,
    self_commands: mpsc::Sender<Command>,
    consensus_events: mpsc::Sender<NetEvent<M>>,
    tx_events: mpsc::Sender<NetEvent<M>>,
    head_events: mpsc::Sender<NetEvent<M>>,
    peers_tx: watch::Sender<Vec<PeerInfo>>,
    validator: Validator<M>,
    blocks: Arc<dyn BlockSource>,
    consensus_validations: Arc<Semaphore>,
    tx_validations: Arc<Semaphore>,
    serves: Arc<Semaphore>,
    /// Block-range requests being served, per peer (entries removed at zero).
    serving: HashMap<PeerId, usize>,
    pending_blocks: HashMap<OutboundRequestId, (PeerId, BlocksReply)>,
    connected: HashMap<PeerId, Multiaddr>,
    heights: HashMap<PeerId, u64>,
    records: LruCache<PeerId, PeerRecord>,
    /// Resends of known messages, per peer and message.
    redeliveries: Redeliveries,
    /// Blocked peers and when they may come back.
    blocked: LruCache<PeerId, Instant>,
    isolated: bool,
    /// Listen addresses (with peer id) of peers met, newest last; persisted to `peer_book`.
    book: Vec<Multiaddr>,
    metrics: Arc<Metrics>,
}

/// Priority commands handled before the loop looks at anything else, per turn.
const PRIORITY_BATCH: usize = 64;

impl<M: Send + 'static> EventLoop<M> {
    async fn run(mut self) {
        let mut status_poll = tokio::time::interval(Duration::from_millis(500));
        let mut discovery = tokio::time::interval(Duration::from_secs(5));
        loop {
            // The priority lane first, bounded so the swarm is still polled under a flood.
            for _ in 0..PRIORITY_BATCH {
                match self.priority.try_recv() {
                    Ok(c) => self.on_command(c),
                    Err(_) => break,
                }
            }
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(command) = self.priority.recv() => self.on_command(command),
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    // Every handle is gone, including our own: the node is shutting down.
                    None => return,
                },
                _ = status_poll.tick() => self.poll_status(),
                _ = discovery.tick() => {
                    self.unblock_expired();
                    self.discover();
                }
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
            self.dial_known();
        }
    }

    /// Dials the configured bootnodes and the peer book. A bootnode named by DNS is resolved off
    /// the loop (the system resolver, as any program on the host), each time: a container or pod
    /// that was recreated has a new address. Only the node's own config is resolved: the
    /// transport dials no `/dns` address, so a peer cannot make this node look names up.
    fn dial_known(&mut self) {
        let mut direct: Vec<Multiaddr> = self.book.clone();
        for addr in &self.config.bootnodes {
            if is_dns(addr) {
                let (addr, commands) = (addr.clone(), self.self_commands.clone());
                tokio::spawn(async move {
                    let resolved = resolve_dns(&addr).await;
                    if !resolved.is_empty() {
                        let _ = commands.send(Command::DialResolved(resolved)).await;
                    }
                });
            } else {
                direct.push(addr.clone());
            }
        }
        for addr in direct {
            let _ = self.swarm.dial(addr);
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
                max_bytes,
                reply,
            } => {
                let to = to.min(from.saturating_add(MAX_BLOCKS_PER_REQUEST - 1));
                let id = self.swarm.behaviour_mut().sync.send_request(
                    &peer,
                    SyncRequest::Blocks {
                        from,
                        to,
                        max_bytes,
                    },
                );
                self.pending_blocks.insert(id, (peer, reply));
            }
            Command::Validated {
                id,
                source,
                topic,
                outcome,
            } => self.on_validated(id, source, topic, outcome),
            Command::Serve {
                peer,
                blocks,
                channel,
                response,
            } => {
                if blocks && let Some(n) = self.serving.get_mut(&peer) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.serving.remove(&peer);
                    }
                }
                if let SyncResponse::Blocks { blocks } = &response {
                    let bytes = blocks.iter().map(Vec::len).sum();
                    self.record(peer, Instant::now()).charge_served(bytes);
                }
                // The peer may have gone away meanwhile: nothing to do then.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Command::Penalise { peer, reason } => {
                tracing::debug!(%peer, reason, "peer penalised");
                self.penalise(peer);
            }
            Command::SetIsolated(isolated) => {
                self.isolated = isolated;
                if isolated {
                    let peers: Vec<PeerId> = self.connected.keys().copied().collect();
                    for p in peers {
                        let _ = self.swarm.disconnect_peer_id(p);
                    }
                } else {
                    self.dial_known();
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
            }
            Command::DialResolved(addrs) => {
                if !self.isolated {
                    for addr in addrs {
                        if let Some((peer, a)) = split_peer_id(&addr) {
                            self.swarm.behaviour_mut().kad.add_address(&peer, a);
                        }
                        let _ = self.swarm.dial(addr);
                    }
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

    /// Reports a validation to gossipsub and charges the sender for what it cost us.
    fn on_validated(&mut self, id: MessageId, source: PeerId, topic: Topic, outcome: Outcome) {
        let acceptance = match outcome {
            Outcome::Accept => MessageAcceptance::Accept,
            Outcome::Ignore => MessageAcceptance::Ignore,
            Outcome::Reject => MessageAcceptance::Reject,
            Outcome::Resent(_, message)
                if !self
                    .redeliveries
                    .beyond_honest(source, message, Instant::now()) =>
            {
                MessageAcceptance::Ignore
            }
            Outcome::Useless(reason) | Outcome::Resent(reason, _) => {
                let now = Instant::now();
                if self.record(source, now).charge_useless(now) {
                    MessageAcceptance::Ignore
                } else {
                    tracing::debug!(%source, ?topic, reason, "useless gossip beyond the peer's budget");
                    self.metrics.gossip_rejected(topic.label(), "useless_flood");
                    MessageAcceptance::Reject
                }
            }
        };
        let rejected = matches!(acceptance, MessageAcceptance::Reject);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
        if rejected {
            self.penalise(source);
        }
    }

    /// The peer's record, created (evicting the least recently used one) if it has none.
    fn record(&mut self, peer: PeerId, now: Instant) -> &mut PeerRecord {
        if !self.records.contains_key(&peer) {
            if self.records.len() >= MAX_TRACKED_PEERS {
                self.records.remove_lru();
            }
            self.records.insert(peer, PeerRecord::new(now));
        }
        self.records
            .get_mut(&peer)
            .expect("inserted above if it was missing")
    }

    fn penalise(&mut self, peer: PeerId) {
        let record = self.record(peer, Instant::now());
        record.invalid += 1;
        if record.invalid >= MAX_INVALID_MESSAGES_PER_PEER && !self.blocked.contains_key(&peer) {
            tracing::warn!(%peer, "blocking peer after repeated invalid or useless messages");
            self.metrics.peers_blocked.inc();
            if self.blocked.len() >= MAX_TRACKED_PEERS
                && let Some((old, _)) = self.blocked.remove_lru()
            {
                self.swarm.behaviour_mut().blocked.unblock_peer(old);
            }
            self.blocked.insert(peer, Instant::now() + BLOCK_DURATION);
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    /// Lets peers whose block has run out connect again, with a clean record.
    fn unblock_expired(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .blocked
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.blocked.remove(&peer);
            self.records.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
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
                // A peer that connects again (a restart) knows nothing of a rest it was given:
                // its next requests may be sent before it hears of it again.
                if let Some(r) = self.records.get_mut(&peer_id)
                    && let Some((until, _)) = r.sync_rest
                {
                    r.sync_rest = Some((until, EARLY_REQUESTS_ALLOWED));
                }
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
                if room
                    && !self.isolated
                    && !self.connected.contains_key(&peer)
                    && !self.blocked.contains_key(&peer)
                {
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
            self.penalise(source);
            return;
        };
        self.metrics.gossip_received(topic.label());
        let budget = match topic {
            Topic::Consensus => &self.consensus_validations,
            Topic::Transactions => &self.tx_validations,
        };
        let Ok(permit) = budget.clone().try_acquire_owned() else {
            // This class's validation is saturated: let the message go without relaying or blame.
            self.metrics.gossip_ignored(topic.label(), "saturated");
            let _ = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
            return;
        };
        let validator = self.validator.clone();
        let metrics = self.metrics.clone();
        let (events, report) = match topic {
            Topic::Consensus => (self.consensus_events.clone(), self.self_priority.clone()),
            Topic::Transactions => (self.tx_events.clone(), self.self_commands.clone()),
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let outcome = match validator(topic, &message.data) {
                Verdict::Accept(m) => {
                    let event = NetEvent::Message {
                        from: source,
                        message: m,
                    };
                    match topic {
                        // Never dropped: a full queue holds this validation (and, through the
                        // budget, later consensus messages) until the driver catches up.
                        Topic::Consensus => {
                            let _ = events.blocking_send(event);
                        }
                        // Best effort: a full queue drops the batch; it is still valid for the
                        // network, so it is relayed.
                        Topic::Transactions => {
                            if events.try_send(event).is_err() {
                                metrics.traffic_dropped("txs");
                            }
                        }
                    }
                    Outcome::Accept
                }
                Verdict::Ignore(reason) => {
                    metrics.gossip_ignored(topic.label(), reason);
                    Outcome::Ignore
                }
                Verdict::Useless(reason) => {
                    metrics.gossip_ignored(topic.label(), reason);
                    Outcome::Useless(reason)
                }
                Verdict::Resent(reason, message) => {
                    metrics.gossip_ignored(topic.label(), reason);
                    Outcome::Resent(reason, message)
                }
                Verdict::Reject(reason) => {
                    tracing::debug!(%source, ?topic, reason, "rejected gossip message");
                    metrics.gossip_rejected(topic.label(), reason);
                    Outcome::Reject
                }
            };
            let _ = report.blocking_send(Command::Validated {
                id,
                source,
                topic,
                outcome,
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
                    let _ = self
                        .head_events
                        .try_send(NetEvent::PeerHead { peer, height });
                    if changed {
                        self.publish_peers();
                    }
                }
                SyncResponse::Blocks { blocks } => {
                    if let Some((_, reply)) = self.pending_blocks.remove(&request_id) {
                        let _ = reply.send(Ok(blocks));
                    }
                }
                SyncResponse::Busy { retry_after_ms } => {
                    if let Some((_, reply)) = self.pending_blocks.remove(&request_id) {
                        let _ = reply.send(Err(NetworkError::Busy {
                            peer,
                            retry_after: believed_rest(retry_after_ms),
                        }));
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
        let blocks_request = matches!(request, SyncRequest::Blocks { .. });
        if blocks_request {
            // Beyond its share of serve slots or its byte budget (which bounds what asking for
            // the same ranges again and again takes), the peer is told to rest (`MIN_SYNC_REST`).
            let share = self.serving.get(&peer).copied().unwrap_or(0);
            let now = Instant::now();
            let record = self.record(peer, now);
            let rest = match record.sync_rest.filter(|&(until, _)| now < until) {
                Some((_, 0)) => {
                    tracing::debug!(%peer, "sync request during the rest it was given: penalised");
                    self.metrics.traffic_dropped("sync_rest_ignored");
                    self.penalise(peer);
                    return;
                }
                Some((until, early)) => {
                    record.sync_rest = Some((until, early - 1));
                    Some(until - now)
                }
                // `may_be_served` first: it refills the budget the rest is computed from.
                None if !record.may_be_served(now) || share >= MAX_SERVES_PER_PEER => {
                    let owed = (-record.served.level).max(0.0) / SERVE_BYTES.per_sec;
                    let rest = Duration::from_secs_f64(owed).max(MIN_SYNC_REST);
                    record.sync_rest = Some((now + rest, EARLY_REQUESTS_ALLOWED));
                    Some(rest)
                }
                None => None,
            };
            if let Some(rest) = rest {
                tracing::debug!(%peer, share, ?rest, "sync request answered busy: the peer's share of serve slots or bytes is taken");
                self.metrics.traffic_dropped("sync_busy");
                let busy = SyncResponse::Busy {
                    // Rounded up: a requester resting what it was told never lands inside it.
                    retry_after_ms: u64::try_from(rest.as_micros().div_ceil(1000))
                        .unwrap_or(u64::MAX),
                };
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, busy);
                return;
            }
        }
        let Ok(permit) = self.serves.clone().try_acquire_owned() else {
            // Too many range reads at once: dropping the channel fails the peer's request, and
            // it retries elsewhere or later.
            tracing::debug!(%peer, "sync request dropped: server busy");
            self.metrics.traffic_dropped("sync_serve");
            return;
        };
        if blocks_request {
            *self.serving.entry(peer).or_insert(0) += 1;
        }
        let blocks = self.blocks.clone();
        let commands = self.self_commands.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let response = match request {
                SyncRequest::Status => SyncResponse::Status {
                    height: blocks.head_height(),
                },
                SyncRequest::Blocks {
                    from,
                    to,
                    max_bytes,
                } => {
                    let to = to.min(from.saturating_add(MAX_BLOCKS_PER_REQUEST - 1));
                    let cap = MAX_SYNC_RESPONSE_BYTES - ledger_core::params::SYNC_FRAME_OVERHEAD;
                    let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX).min(cap);
                    SyncResponse::Blocks {
                        blocks: blocks.encoded_blocks(from, to, max_bytes),
                    }
                }
            };
            let _ = commands.blocking_send(Command::Serve {
                peer,
                blocks: blocks_request,
                channel,
                response,
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_busy_answer_is_believed_for_between_the_shortest_and_the_longest_rest() {
        assert_eq!(believed_rest(u64::MAX), MAX_SYNC_REST);
        assert_eq!(believed_rest(0), MIN_SYNC_REST);
        assert_eq!(believed_rest(400), Duration::from_millis(400));
        // What sync does with it must not overflow.
        let _ = tokio::time::Instant::now() + believed_rest(u64::MAX);
    }

    /// Serves blocks whose bytes are just their height, up to `head`, taking
    /// [`FAKE_READ_PER_BLOCK`] a block as a store does.
    struct FakeChain {
        head: u64,
    }

    const FAKE_READ_PER_BLOCK: Duration = Duration::from_micros(100);

    impl BlockSource for FakeChain {
        fn head_height(&self) -> u64 {
            self.head
        }
        fn encoded_blocks(&self, from: u64, to: u64, _max_bytes: usize) -> Vec<Vec<u8>> {
            let to = to.min(self.head);
            std::thread::sleep(
                FAKE_READ_PER_BLOCK * to.saturating_sub(from).saturating_add(1) as u32,
            );
            (from..=to).map(|h| h.to_le_bytes().to_vec()).collect()
        }
    }

    /// Rejects messages whose first byte is 0xFF, finds those starting with 0xEE useless and
    /// those starting with 0xDD resends of a known message, and accepts the rest, handing up their bytes.
    fn validator() -> Validator<Vec<u8>> {
        Arc::new(|_topic, data: &[u8]| match data.first() {
            Some(0xFF) | None => Verdict::Reject("garbage"),
            Some(0xEE) => Verdict::Useless("stale"),
            // Every one a resend of the same message.
            Some(0xDD) => Verdict::Resent("known", Hash::digest(b"one message")),
            Some(_) => Verdict::Accept(data.to_vec()),
        })
    }

    #[test]
    fn a_peers_useless_budget_is_spent_by_a_burst_and_refills_with_time() {
        let t0 = Instant::now();
        let mut r = PeerRecord::new(t0);
        let burst = USELESS.burst as usize;
        assert!((0..burst).all(|_| r.charge_useless(t0)));
        assert!(!r.charge_useless(t0), "the burst is spent");
        // A second later, USELESS.per_sec more.
        let t1 = t0 + Duration::from_secs(1);
        let refilled = (0..burst).take_while(|_| r.charge_useless(t1)).count();
        assert_eq!(refilled, USELESS.per_sec as usize);
        // Never more than the burst, however long the peer was quiet.
        let later = t1 + Duration::from_secs(3600);
        let after_quiet = (0..10 * burst)
            .take_while(|_| r.charge_useless(later))
            .count();
        assert_eq!(after_quiet, burst);
    }

    #[test]
    fn a_peers_serve_budget_is_spent_by_what_it_was_served_and_refills_with_time() {
        let t0 = Instant::now();
        let mut r = PeerRecord::new(t0);
        assert!(r.may_be_served(t0));
        // One answer larger than the whole burst: served (it was asked within budget), then owed.
        r.charge_served(SERVE_BYTES.burst as usize + 1024 * 1024);
        assert!(!r.may_be_served(t0), "the budget is spent");
        assert!(
            !r.may_be_served(t0 + Duration::from_millis(100)),
            "a megabyte owed takes ~125 ms to pay back at 8 MiB/s"
        );
        assert!(r.may_be_served(t0 + Duration::from_millis(200)));
        // A node catching up at 6 MiB/s is never refused.
        let mut honest = PeerRecord::new(t0);
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            assert!(honest.may_be_served(now), "refused at {ms} ms");
            honest.charge_served(6 * 1024 * 1024 / 1000);
        }
    }

    #[test]
    fn redeliveries_are_counted_per_peer_and_message_so_relaying_many_messages_is_free() {
        let mut r = Redeliveries::new();
        let (p, q) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let msg = |i: u32| Hash::digest(&i.to_le_bytes());
        // A relayer delivering many distinct messages we have, within one second (a faulty
        // validator signed a vote for every round): never beyond what honest peers do.
        for i in 0..10_000 {
            assert!(!r.beyond_honest(p, msg(i), t0 + Duration::from_micros(u64::from(i) * 100)));
        }
        // Each of a stuck round's messages, twice a second (own re-broadcast and one relay), for
        // a minute.
        for tick in 0..120u64 {
            let now = t0 + Duration::from_millis(500 * tick);
            for i in 0..12 {
                assert!(!r.beyond_honest(q, msg(i), now), "tick {tick} message {i}");
            }
        }
        // One message ten times a second from one peer: beyond within the window.
        let replayed = msg(u32::MAX);
        let beyond = (0..20u64)
            .map(|k| r.beyond_honest(p, replayed, t0 + Duration::from_millis(100 * k)))
            .position(|b| b);
        assert_eq!(beyond, Some(MAX_REDELIVERIES as usize));
        // Another peer delivering that message is counted apart.
        assert!(!r.beyond_honest(q, replayed, t0 + Duration::from_millis(1900)));
    }

    /// A peer that sends only useless messages (each alone harmless: stale, already known) is
    /// disconnected once its budget is spent, within the burst plus the invalid-message limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_flooding_useless_messages_is_blocked_after_its_budget() {
        flood_until_blocked(0xEE, USELESS.burst, "useless_flood").await;
    }

    /// The same for one known message resent over and over: free up to what honest peers do
    /// ([`MAX_REDELIVERIES`]), useless beyond.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_resending_one_known_message_over_and_over_is_blocked() {
        flood_until_blocked(
            0xDD,
            f64::from(MAX_REDELIVERIES) + USELESS.burst,
            "useless_flood",
        )
        .await;
    }

    /// A victim node (at `head`) with two peers connected to it: an honest one and a flooder.
    struct Trio {
        victim: NetworkHandle,
        victim_rx: NetEvents<Vec<u8>>,
        victim_metrics: Arc<Metrics>,
        honest: NetworkHandle,
        flooder: NetworkHandle,
        _peer_events: [NetEvents<Vec<u8>>; 2],
    }

    async fn victim_honest_and_flooder(head: u64) -> Trio {
        let victim_metrics = Arc::new(Metrics::new());
        let (victim, victim_rx) = start_observed(vec![], head, victim_metrics.clone());
        let victim_addr = address_of(&victim).await;
        let (honest, h_rx) = start(vec![victim_addr.clone()], 0);
        let (flooder, f_rx) = start(vec![victim_addr], 0);
        let victim_peers = victim.peers();
        wait_for("both peers connected", 10, || {
            victim_peers.borrow().len() >= 2
        })
        .await;
        Trio {
            victim,
            victim_rx,
            victim_metrics,
            honest,
            flooder,
            _peer_events: [h_rx, f_rx],
        }
    }

    /// Waits for `victim` to disconnect `flooder`, and checks it blocked one peer.
    async fn wait_blocked(victim: &NetworkHandle, flooder: &NetworkHandle, metrics: &Metrics) {
        let victim_peers = victim.peers();
        let flooder_id = flooder.local_peer_id().to_string();
        wait_for("the flooder to be disconnected", 10, || {
            !victim_peers
                .borrow()
                .iter()
                .any(|p| p.peer_id == flooder_id)
        })
        .await;
        assert_eq!(metrics.peers_blocked.get(), 1);
    }

    /// Floods a victim with messages starting with `marker` (which the test validator finds
    /// useless or resent) and checks the flooder is blocked within `burst` and the invalid limit,
    /// counted under `reason`, while an honest peer's messages still arrive.
    async fn flood_until_blocked(marker: u8, burst: f64, reason: &str) {
        let Trio {
            victim,
            victim_metrics,
            mut victim_rx,
            honest,
            flooder,
            ..
        } = victim_honest_and_flooder(0).await;
        // Subscriptions known both ways before the flood counts.
        publish_until_received(&flooder, &mut victim_rx, b"warm-up".to_vec()).await;
        // The budget, the invalid-message limit, and a few for messages in flight.
        let sent = burst as u32 + MAX_INVALID_MESSAGES_PER_PEER + 8;
        for i in 0..sent {
            let mut m = vec![marker];
            m.extend_from_slice(&i.to_le_bytes());
            flooder.publish(Topic::Consensus, m);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        wait_blocked(&victim, &flooder, &victim_metrics).await;
        assert!(
            counted(
                &victim_metrics.gossip_rejected,
                &[("topic", "consensus"), ("reason", reason)]
            ) >= 1
        );
        // The honest peer stays, and its messages still arrive.
        publish_until_received(&honest, &mut victim_rx, b"still flowing".to_vec()).await;
    }

    /// Honest sync keeps at most `sync::MAX_CHUNKS_IN_FLIGHT` block requests out and rests when
    /// told busy; a peer that asks for many ranges at once is told to rest and, asking on, is
    /// disconnected within its share of serve slots, the early requests allowed and the
    /// invalid-message limit, while one that rests as told is served on and never blocked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_flooding_sync_requests_is_blocked_and_honest_sync_is_not() {
        let Trio {
            victim,
            victim_metrics,
            honest,
            flooder,
            ..
        } = victim_honest_and_flooder(100_000).await;
        let victim_id = victim.local_peer_id();
        for round in 0..20u64 {
            let asks = (0..sync::MAX_CHUNKS_IN_FLIGHT as u64).map(|i| {
                let from = 1 + (round * 4 + i) * 64;
                honest.request_blocks(victim_id, from, from + 63, 1 << 20)
            });
            for answer in futures::future::join_all(asks).await {
                assert_eq!(answer.expect("honest sync is served").len(), 64);
            }
        }
        // Twice its share at once (as after requests it gave up on): the rest is told busy, and
        // asked again after the rest it was given, all is served and nothing is held against it.
        let span = MAX_BLOCKS_PER_REQUEST;
        let ask = |i: u64| honest.request_blocks(victim_id, 1 + i * span, (i + 1) * span, 1 << 20);
        let mut rests = Vec::new();
        for answer in futures::future::join_all((0..2 * MAX_SERVES_PER_PEER as u64).map(ask)).await
        {
            match answer {
                Ok(blocks) => assert_eq!(blocks.len() as u64, span),
                Err(NetworkError::Busy { retry_after, .. }) => rests.push(retry_after),
                Err(e) => panic!("honest request failed: {e}"),
            }
        }
        assert!(
            !rests.is_empty(),
            "twice the share at once was never answered busy"
        );
        tokio::time::sleep(rests.iter().copied().max().unwrap_or_default()).await;
        for answer in futures::future::join_all((0..MAX_SERVES_PER_PEER as u64).map(ask)).await {
            assert_eq!(answer.expect("served after resting").len() as u64, span);
        }
        assert_eq!(victim_metrics.peers_blocked.get(), 0);

        // A flood asks on regardless.
        let sent = MAX_SERVES_PER_PEER + EARLY_REQUESTS_ALLOWED as usize + 3 * 8;
        let flood = (0..sent as u64)
            .map(|i| flooder.request_blocks(victim_id, 1 + i * span, (i + 1) * span, 1 << 20));
        let answers = futures::future::join_all(flood).await;
        let served = answers.iter().filter(|a| a.is_ok()).count();
        assert!(
            served < sent,
            "every one of {sent} concurrent requests was served"
        );
        wait_blocked(&victim, &flooder, &victim_metrics).await;
        let blocks = honest
            .request_blocks(victim_id, 1, 2, 1 << 20)
            .await
            .expect("the honest peer is still served");
        assert_eq!(blocks.len(), 2);
    }

    // ---- review tests (busy answers) ----

    /// Blocks of [`BIG_BLOCK`] bytes each up to `head`, at most `max_bytes` of them and always
    /// one: a store of a chain whose blocks are large (a genesis allows up to ~10 MiB).
    struct BigChain {
        head: u64,
    }

    const BIG_BLOCK: usize = 8 * 1024 * 1024;

    impl BlockSource for BigChain {
        fn head_height(&self) -> u64 {
            self.head
        }
        fn encoded_blocks(&self, from: u64, to: u64, max_bytes: usize) -> Vec<Vec<u8>> {
            let n = (max_bytes / BIG_BLOCK).max(1) as u64;
            (from..=to.min(self.head).min(from + n - 1))
                .map(|_| vec![0u8; BIG_BLOCK])
                .collect()
        }
    }

    fn start_source(
        key: libp2p::identity::Keypair,
        bootnodes: Vec<Multiaddr>,
        source: Arc<dyn BlockSource>,
        metrics: Arc<Metrics>,
    ) -> (NetworkHandle, NetEvents<Vec<u8>>) {
        let config = NetworkConfig {
            listen_addr: "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
            bootnodes,
            max_peers: 16,
            genesis_hash: Hash::digest(b"test chain"),
            peer_book: None,
        };
        spawn_with_metrics(key, config, validator(), source, metrics).expect("network starts")
    }

    /// A hostile server that answers every block request busy with no rest at all (and claims a
    /// head far ahead) must not make an honest node ask it again and again at network speed:
    /// the requester should rest at least `MIN_SYNC_REST` whatever the server names.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_answering_busy_with_no_rest_is_not_asked_again_at_once() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let config = NetworkConfig {
            listen_addr: "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
            bootnodes: vec![],
            max_peers: 16,
            genesis_hash: Hash::digest(b"test chain"),
            peer_book: None,
        };
        let mut hostile =
            behaviour::build_swarm(libp2p::identity::Keypair::generate_ed25519(), &config)
                .expect("swarm");
        let hostile_id = *hostile.local_peer_id();
        hostile
            .listen_on(config.listen_addr.clone())
            .expect("listen");
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = hostile.select_next_some().await {
                break address.with(Protocol::P2p(hostile_id));
            }
        };
        let asked = Arc::new(AtomicU64::new(0));
        let counter = asked.clone();
        let server = tokio::spawn(async move {
            loop {
                if let SwarmEvent::Behaviour(BehaviourEvent::Sync(
                    request_response::Event::Message {
                        message:
                            request_response::Message::Request {
                                request, channel, ..
                            },
                        ..
                    },
                )) = hostile.select_next_some().await
                {
                    let response = match request {
                        SyncRequest::Status => SyncResponse::Status { height: 10_000 },
                        SyncRequest::Blocks { .. } => {
                            counter.fetch_add(1, Ordering::Relaxed);
                            SyncResponse::Busy { retry_after_ms: 0 }
                        }
                    };
                    let _ = hostile
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response);
                }
            }
        });
        let (honest, _h_rx) = start(vec![addr], 0);
        let peers = honest.peers();
        wait_for("connected to the hostile server", 10, || {
            !peers.borrow().is_empty()
        })
        .await;
        let (events_tx, events_rx) = mpsc::channel(16);
        let (driver_tx, _driver_rx) = mpsc::channel(16);
        let (_refused_tx, refused_rx) = mpsc::channel(16);
        let sync_task = tokio::spawn(sync::run(
            honest.clone(),
            Arc::new(FakeChain { head: 0 }),
            events_rx,
            driver_tx,
            refused_rx,
        ));
        events_tx
            .send(sync::SyncEvent::PeerHead {
                peer: hostile_id,
                height: 10_000,
            })
            .await
            .expect("sync running");
        tokio::time::sleep(Duration::from_secs(2)).await;
        sync_task.abort();
        server.abort();
        let n = asked.load(Ordering::Relaxed);
        // Four chunks at a time, each rested at least MIN_SYNC_REST after its busy answer.
        let most = 4 * (2000 / MIN_SYNC_REST.as_millis() as u64 + 1);
        assert!(
            n <= most,
            "a server answering busy with no rest was asked {n} times in 2 s (at most {most} expected)"
        );
    }

    /// An honest node told busy that crashes and starts again (same identity) during the rest
    /// knows nothing of it: its fresh sync asks its only server for four chunks. It must not be
    /// penalised (let alone blocked for 10 minutes) for that.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_honest_node_restarted_during_its_rest_is_not_penalised() {
        let victim_metrics = Arc::new(Metrics::new());
        let (victim, _v_rx) = start_source(
            libp2p::identity::Keypair::generate_ed25519(),
            vec![],
            Arc::new(BigChain { head: 100_000 }),
            victim_metrics.clone(),
        );
        let victim_addr = address_of(&victim).await;
        let victim_id = victim.local_peer_id();
        let key = libp2p::identity::Keypair::generate_ed25519();
        let node_id = key.public().to_peer_id().to_string();
        let (before, _b_rx) = start_source(
            key.clone(),
            vec![victim_addr.clone()],
            Arc::new(FakeChain { head: 0 }),
            Arc::new(Metrics::new()),
        );
        let victim_peers = victim.peers();
        wait_for("connected", 10, || !victim_peers.borrow().is_empty()).await;
        let chunk = sync::CHUNK_BLOCKS;
        let ask = |h: &NetworkHandle, from: u64| {
            let h = h.clone();
            async move {
                h.request_blocks(victim_id, from, from + chunk - 1, sync::REQUEST_MAX_BYTES)
                    .await
            }
        };
        // Catching up like sync does: four chunks at a time from its only peer (one 8 MiB block
        // each), until told busy.
        let mut from = 1;
        let mut busy = None;
        for _ in 0..10 {
            let answers =
                futures::future::join_all((0..4).map(|i| ask(&before, from + i * chunk))).await;
            for a in answers {
                match a {
                    Ok(b) => assert!(!b.is_empty()),
                    Err(NetworkError::Busy { retry_after, .. }) => busy = Some(retry_after),
                    Err(e) => panic!("honest request failed: {e}"),
                }
            }
            from += 4 * chunk;
            if busy.is_some() {
                break;
            }
        }
        let rest = busy.expect("never told busy");
        eprintln!("told to rest {rest:?}");
        // The node goes away and comes back with its identity.
        let t = Instant::now();
        before.set_isolated(true).await.expect("running");
        let (after, _a_rx) = start_source(
            key,
            vec![victim_addr],
            Arc::new(FakeChain { head: 0 }),
            Arc::new(Metrics::new()),
        );
        let after_peers = after.peers();
        wait_for("reconnected", 10, || !after_peers.borrow().is_empty()).await;
        eprintln!("restarted in {:?}", t.elapsed());
        // Its new sync asks its only server for four chunks.
        let answers =
            futures::future::join_all((0..4).map(|i| ask(&after, from + i * chunk))).await;
        let penalised = answers
            .into_iter()
            .filter(|a| !matches!(a, Ok(_) | Err(NetworkError::Busy { .. })))
            .count();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            (penalised, victim_metrics.peers_blocked.get()),
            (0, 0),
            "the restarted honest node {node_id} was penalised (requests failed, peers blocked)"
        );
    }

    /// An honest requester that asks again as soon as the rest it was named has passed (its
    /// sync loop may wake right then) must not land inside the server's rest: the named rest is
    /// rounded down to whole milliseconds, so on a fast link it can.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_honest_node_asking_again_right_after_the_named_rest_is_not_penalised() {
        let Trio {
            victim,
            victim_metrics,
            honest,
            ..
        } = victim_honest_and_flooder(100_000).await;
        let victim_id = victim.local_peer_id();
        let span = MAX_BLOCKS_PER_REQUEST;
        for round in 0..100u64 {
            // Its four requests given up on still being read, and four new ones.
            let asks = (0..2 * MAX_SERVES_PER_PEER as u64).map(|i| {
                let h = honest.clone();
                async move {
                    let a = h
                        .request_blocks(victim_id, 1 + i * span, (i + 1) * span, 1 << 20)
                        .await;
                    (a, Instant::now())
                }
            });
            // Like sync's `resting.insert`, the last busy answer to arrive names the rest.
            let mut last: Option<(Instant, Duration)> = None;
            for (a, at) in futures::future::join_all(asks).await {
                match a {
                    Ok(_) => {}
                    Err(NetworkError::Busy { retry_after, .. }) => {
                        if last.is_none_or(|(t, _)| at > t) {
                            last = Some((at, retry_after));
                        }
                    }
                    Err(e) => panic!("round {round}: honest request failed: {e}"),
                }
            }
            let (at, rest) = last.expect("twice the share at once was never answered busy");
            let until = at + rest;
            // Its sync loop wakes right when the rest is over: sleep to just before, then spin
            // (a timer alone wakes a millisecond or so late, which would hide the race).
            tokio::time::sleep_until(
                tokio::time::Instant::from_std(until) - Duration::from_millis(3),
            )
            .await;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            let again = (0..MAX_SERVES_PER_PEER as u64)
                .map(|i| honest.request_blocks(victim_id, 1 + i * span, (i + 1) * span, 1 << 20));
            for a in futures::future::join_all(again).await {
                match a {
                    Ok(_) | Err(NetworkError::Busy { .. }) => {}
                    Err(e) => panic!(
                        "round {round}: asked again right after the rest it was named, penalised: {e}"
                    ),
                }
            }
        }
        assert_eq!(victim_metrics.peers_blocked.get(), 0);
    }

    fn start(bootnodes: Vec<Multiaddr>, head: u64) -> (NetworkHandle, NetEvents<Vec<u8>>) {
        start_observed(bootnodes, head, Arc::new(Metrics::new()))
    }

    fn start_observed(
        bootnodes: Vec<Multiaddr>,
        head: u64,
        metrics: Arc<Metrics>,
    ) -> (NetworkHandle, NetEvents<Vec<u8>>) {
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
        rx: &mut NetEvents<Vec<u8>>,
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
            .request_blocks(a.local_peer_id(), 3, 5, 1 << 20)
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

    #[tokio::test]
    async fn a_dns_bootnode_resolves_to_ip_addresses_keeping_port_and_peer_id() {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/dns4/localhost/tcp/4100/p2p/{peer}")
            .parse()
            .expect("valid multiaddr");
        assert!(is_dns(&addr));
        let resolved = resolve_dns(&addr).await;
        let want: Multiaddr = format!("/ip4/127.0.0.1/tcp/4100/p2p/{peer}")
            .parse()
            .expect("valid multiaddr");
        assert_eq!(resolved, vec![want]);
        let plain: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().expect("valid multiaddr");
        assert!(!is_dns(&plain));
        assert_eq!(resolve_dns(&plain).await, vec![plain]);
        let unknown: Multiaddr = "/dns4/no-such-host.invalid/tcp/1".parse().expect("valid");
        assert!(resolve_dns(&unknown).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_joins_through_a_bootnode_named_by_dns() {
        let (a, _a_rx) = start(vec![], 0);
        let a_addr = address_of(&a).await;
        let port = a_addr
            .iter()
            .find_map(|p| match p {
                Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .expect("a listens on TCP");
        let by_name: Multiaddr = format!("/dns4/localhost/tcp/{port}")
            .parse()
            .expect("valid multiaddr");
        let (b, _b_rx) = start(vec![by_name], 0);
        let peers = b.peers();
        wait_for("b to connect to a by name", 15, || {
            peers
                .borrow()
                .iter()
                .any(|p| p.peer_id == a.local_peer_id().to_string())
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
        while let Some(ev) = victim_rx.try_recv() {
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

    /// Review of `.with_dns()`: the transport now resolves DNS names for every dial, not only the
    /// configured bootnodes. A peer's identify listen addresses go unfiltered into Kademlia and the
    /// peer book (persisted to `peers.txt`), and the book is dialed whenever the node has no peer;
    /// so any peer can make a node resolve and connect to names of its choosing (a name only the
    /// node can resolve: an internal service, `localhost`), and keep doing so after a restart.
    /// Before the change a `/dns4/..` address was refused by the transport at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_cannot_make_a_node_resolve_and_dial_names_it_advertises() {
        let probe = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the probe");
        let port = probe.local_addr().expect("probe address").port();
        let config = NetworkConfig {
            listen_addr: "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
            bootnodes: vec![],
            max_peers: 16,
            genesis_hash: Hash::digest(b"test chain"),
            peer_book: None,
        };
        let mut hostile =
            behaviour::build_swarm(libp2p::identity::Keypair::generate_ed25519(), &config)
                .expect("swarm");
        let hostile_id = *hostile.local_peer_id();
        hostile
            .listen_on(config.listen_addr.clone())
            .expect("listen");
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = hostile.select_next_some().await {
                break address.with(Protocol::P2p(hostile_id));
            }
        };
        // What the peer claims to listen on: a name the victim resolves for it.
        hostile.add_external_address(
            format!("/dns4/localhost/tcp/{port}")
                .parse()
                .expect("valid multiaddr"),
        );
        let (honest, _rx) = start(vec![addr], 0);
        // Drive the hostile swarm until it has identified itself to the victim, then leave.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut sent_at = None;
        loop {
            tokio::select! {
                e = hostile.select_next_some() => {
                    if let SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Sent { .. })) = e {
                        sent_at.get_or_insert(tokio::time::Instant::now());
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
            if sent_at.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) {
                break;
            }
        }
        assert!(
            sent_at.is_some(),
            "the hostile peer never identified itself"
        );
        drop(hostile);
        // The victim, now without peers, redials its book every 5 s.
        let dialed = tokio::time::timeout(Duration::from_secs(15), probe.accept()).await;
        assert!(
            dialed.is_err(),
            "the node resolved `localhost`, a name only a peer advertised, and connected to it"
        );
        drop(honest);
    }
}
