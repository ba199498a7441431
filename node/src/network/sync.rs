//! Catch-up sync: a node behind its peers downloads committed blocks (with their certificates) in
//! parallel, bounded chunks and hands them to the consensus driver in height order.
//!
//! Peers' head heights come from the network's periodic status poll. When a peer is ahead, the
//! range `local_head + 1 ..= best_peer_head` is split into chunks of [`CHUNK_BLOCKS`]; up to
//! [`MAX_CHUNKS_IN_FLIGHT`] chunks are requested at once from different peers that have them, and
//! no chunk is requested more than [`MAX_CHUNKS_AHEAD`] chunks beyond the local head, so memory stays
//! bounded however far behind the node is. Each request asks for at most [`REQUEST_MAX_BYTES`]
//! (a server always sends at least one block, so progress never stalls on a large one). Received
//! chunks are decoded here and released to the driver strictly in order; the driver checks every
//! certificate against the validator set before applying a block.
//!
//! A lying peer only wastes a request: a chunk that does not decode or is out of sequence, or one
//! whose block the driver refuses (it reports the height back), is penalised through the network
//! (a peer penalised repeatedly is blocked), the peer is dropped from the candidates, and the chunk
//! is requested from another peer at once. A peer that answers busy (its share of serving is
//! taken) is asked again only after the rest it named: asking sooner gets a node penalised.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use ledger_core::{CommittedBlock, Height, codec};

use super::{BlockSource, NetworkError, NetworkHandle};
use crate::net_types::NetInbound;

/// Blocks per request.
pub const CHUNK_BLOCKS: u64 = 64;
/// Requests in flight at once.
pub const MAX_CHUNKS_IN_FLIGHT: usize = 4;
/// How far beyond the local head (in chunks) sync may download before the driver catches up.
pub const MAX_CHUNKS_AHEAD: u64 = 8;
/// Largest encoded block accepted from a peer, in bytes.
const MAX_BLOCK_BYTES: usize = 16 * 1024 * 1024;
/// A node this close to its best peer is following consensus, not syncing.
const SYNCING_LAG_BLOCKS: u64 = 2;
/// How long the head may stand still with blocks handed over before sync fetches them again.
const STALL_RESET: Duration = Duration::from_secs(5);
/// The most bytes one request asks for (one block is always served, whatever its size).
pub const REQUEST_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Why a chunk could not be had from a peer.
#[derive(Debug)]
enum FetchError {
    /// The request failed or timed out: not necessarily the peer's fault.
    Request,
    /// The peer is busy (its share of serving is taken): ask it again after this long.
    Busy(Duration),
    /// The peer answered with something that is not the chunk asked for.
    Invalid(&'static str),
}

/// What the sync task learns from the network.
#[derive(Debug)]
pub enum SyncEvent {
    PeerHead { peer: PeerId, height: u64 },
}

/// Runs the catch-up loop until `events` closes.
pub async fn run(
    network: NetworkHandle,
    store: Arc<dyn BlockSource>,
    mut events: mpsc::Receiver<SyncEvent>,
    to_driver: mpsc::Sender<NetInbound>,
    mut refused: mpsc::Receiver<Height>,
) {
    let mut heads: HashMap<PeerId, u64> = HashMap::new();
    // Chunk start height -> decoded blocks, waiting to be released in order.
    let mut ready: BTreeMap<u64, Vec<CommittedBlock>> = BTreeMap::new();
    // Chunk start height -> peer asked.
    let mut in_flight: HashMap<u64, PeerId> = HashMap::new();
    // Peers that answered busy, and until when they asked us not to ask again.
    let mut resting: HashMap<PeerId, tokio::time::Instant> = HashMap::new();
    type Fetched = (u64, PeerId, Result<Vec<CommittedBlock>, FetchError>);
    let mut requests: JoinSet<Fetched> = JoinSet::new();
    // Chunks handed to the driver and not yet below the head: first height -> (last, server).
    let mut served_by: BTreeMap<u64, (u64, PeerId)> = BTreeMap::new();
    // Chunk start height -> server, for the chunks waiting in `ready`.
    let mut ready_from: HashMap<u64, PeerId> = HashMap::new();
    let mut refused_open = true;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut syncing = false;
    // Round-robin over peers so load spreads and one bad peer is not asked forever.
    let mut rotation: usize = 0;
    let mut released: u64 = 0;
    let mut last_local: u64 = 0;
    let mut last_progress = tokio::time::Instant::now();
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(SyncEvent::PeerHead { peer, height }) => { heads.insert(peer, height); }
                None => return,
            },
            Some(done) = requests.join_next(), if !requests.is_empty() => {
                if let Ok((start, peer, blocks)) = done {
                    in_flight.remove(&start);
                    match blocks {
                        Ok(b) if !b.is_empty() => {
                            ready.insert(start, b);
                            ready_from.insert(start, peer);
                        }
                        // Honest and overloaded: ask others meanwhile, and it again only after.
                        Err(FetchError::Busy(rest)) => {
                            tracing::debug!(%peer, start, ?rest, "sync peer busy");
                            resting.insert(peer, tokio::time::Instant::now() + rest);
                        }
                        outcome => {
                            // Failed, empty or forged: forget what this peer claimed (its next
                            // status answer tells us again) and ask another peer below, now.
                            tracing::debug!(%peer, start, ?outcome, "sync chunk failed");
                            if let Err(FetchError::Invalid(reason)) = outcome {
                                network.penalise(peer, reason);
                            }
                            heads.remove(&peer);
                        }
                    }
                }
            },
            h = refused.recv(), if refused_open => match h {
                Some(height) => {
                    // The driver refused a block we handed over: blame whoever served it, and
                    // fetch from the head again (from other peers).
                    let server = served_by
                        .range(..=height.0)
                        .next_back()
                        .filter(|(_, (last, _))| *last >= height.0)
                        .map(|(_, (_, p))| *p);
                    if let Some(peer) = server {
                        tracing::warn!(%peer, %height, "a synced block from this peer was refused");
                        network.penalise(peer, "refused_sync_block");
                        heads.remove(&peer);
                    }
                    ready.clear();
                    ready_from.clear();
                    served_by.clear();
                    released = 0;
                }
                None => refused_open = false,
            },
            _ = tick.tick() => {}
        }

        let local = {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.head_height()).await {
                Ok(h) => h,
                Err(_) => continue,
            }
        };
        let best = heads.values().copied().max().unwrap_or(0);
        let now_syncing = best > local + SYNCING_LAG_BLOCKS;
        if now_syncing != syncing {
            syncing = now_syncing;
            let _ = to_driver.try_send(NetInbound::Syncing(syncing));
        }

        // `released`: the highest height handed to the driver. It runs ahead of the store's head
        // while the driver applies; if the head stops moving (the driver refused a block from a
        // lying peer), fall back to the head and fetch again.
        if local > last_local {
            last_local = local;
            last_progress = tokio::time::Instant::now();
        }
        if released > local && last_progress.elapsed() > STALL_RESET {
            tracing::warn!(
                local,
                released,
                "sync made no progress; fetching again from the head"
            );
            released = local;
            last_progress = tokio::time::Instant::now();
        }
        released = released.max(local);
        let window_end = local + CHUNK_BLOCKS * MAX_CHUNKS_AHEAD;

        // Drop chunks that are no longer needed, then release contiguous ones in order.
        ready.retain(|start, blocks| start + blocks.len() as u64 > released + 1);
        ready_from.retain(|start, _| ready.contains_key(start));
        served_by.retain(|_, (last, _)| *last > local);
        while released < window_end {
            let Some(entry) = ready.first_entry() else {
                break;
            };
            if *entry.key() > released + 1 {
                break;
            }
            let start = *entry.key();
            let blocks = entry.remove();
            let last = blocks
                .last()
                .map(|b| b.block.header.height.0)
                .unwrap_or(released);
            if let Some(peer) = ready_from.remove(&start) {
                served_by.insert(start, (last, peer));
            }
            if to_driver.send(NetInbound::Blocks(blocks)).await.is_err() {
                return;
            }
            released = released.max(last);
        }

        // Request the missing chunks of the window.
        let limit = best.min(window_end + CHUNK_BLOCKS * MAX_CHUNKS_AHEAD);
        let mut start = released + 1;
        while start <= limit && in_flight.len() < MAX_CHUNKS_IN_FLIGHT {
            let end = (start + CHUNK_BLOCKS - 1).min(best);
            let covered = ready.contains_key(&start) || in_flight.contains_key(&start);
            if !covered {
                let now = tokio::time::Instant::now();
                resting.retain(|_, until| *until > now);
                let able = |p: &PeerId, h: u64| h >= end && !resting.contains_key(p);
                let mut candidates: Vec<PeerId> = heads
                    .iter()
                    .filter(|(p, h)| able(p, **h) && !in_flight.values().any(|q| q == *p))
                    .map(|(p, _)| *p)
                    .collect();
                if candidates.is_empty() {
                    candidates = heads
                        .iter()
                        .filter(|(p, h)| able(p, **h))
                        .map(|(p, _)| *p)
                        .collect();
                }
                if candidates.is_empty() {
                    break;
                }
                candidates.sort();
                rotation = rotation.wrapping_add(1);
                let peer = candidates[rotation % candidates.len()];
                in_flight.insert(start, peer);
                let network = network.clone();
                requests.spawn(async move {
                    let blocks = fetch(&network, peer, start, end).await;
                    (start, peer, blocks)
                });
            }
            start = end + 1;
        }
    }
}

/// Fetches and decodes `from..=to` from `peer`: an error if the request failed, or if the answer
/// is empty (the peer claimed these heights), holds more blocks than asked, or one that is
/// undecodable or out of sequence (a faulty peer).
async fn fetch(
    network: &NetworkHandle,
    peer: PeerId,
    from: u64,
    to: u64,
) -> Result<Vec<CommittedBlock>, FetchError> {
    let raw = network
        .request_blocks(peer, from, to, REQUEST_MAX_BYTES)
        .await
        .map_err(|e| match e {
            NetworkError::Busy { retry_after, .. } => FetchError::Busy(retry_after),
            _ => FetchError::Request,
        })?;
    if raw.len() as u64 > to.saturating_sub(from).saturating_add(1) {
        return Err(FetchError::Invalid("sync_too_many_blocks"));
    }
    // Asked only for heights at or below the head the peer reported: an honest peer has them.
    if raw.is_empty() {
        return Err(FetchError::Invalid("sync_empty"));
    }
    tokio::task::spawn_blocking(move || {
        let mut blocks = Vec::with_capacity(raw.len());
        for (i, bytes) in raw.iter().enumerate() {
            let block: CommittedBlock = codec::decode_bounded(bytes, MAX_BLOCK_BYTES)
                .map_err(|_| FetchError::Invalid("sync_undecodable"))?;
            if block.block.header.height.0 != from + i as u64 {
                return Err(FetchError::Invalid("sync_out_of_sequence"));
            }
            blocks.push(block);
        }
        Ok(blocks)
    })
    .await
    .map_err(|_| FetchError::Request)?
}
