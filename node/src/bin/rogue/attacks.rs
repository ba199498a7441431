//! The attacks. Each one is a closure called for every message slot of one paced loop
//! ([`paced`]) on a peer started through the node library's public network API; the payloads come
//! from [`node::rogue`], shared with the bad-peer tests.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use libp2p::PeerId;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use ledger_core::Height;
use ledger_core::genesis::Genesis;
use node::metrics::Metrics;
use node::network::{
    self, BlockSource, MAX_BLOCKS_PER_REQUEST, MAX_SYNC_RESPONSE_BYTES, NetworkConfig,
    NetworkHandle, PeerInfo, Topic, Validator, Verdict, wire,
};
use node::rogue::{self, ForgedChain, Forger, NoBlocks};

use crate::tracker::{self, Extra, Outcome, Report, Sent};
use crate::{Attack, Cli, oversized};

/// The pacing loop's tick; the messages due since the last tick go out together.
const TICK: Duration = Duration::from_millis(2);
/// Most messages sent in one tick (a loop that fell behind does not burst without bound).
const MAX_BURST: u64 = 1000;
/// Time after the first connection for subscriptions to be exchanged before the attack starts.
const WARM_UP: Duration = Duration::from_secs(2);
/// Time for queued publications to leave before the counters are read.
const FLUSH: Duration = Duration::from_millis(300);
/// Consensus messages recorded for replay, and their total bytes (oldest dropped first).
const MAX_RECORDED: usize = 4096;
const MAX_RECORDED_BYTES: usize = 64 * 1024 * 1024;
/// Recorded messages queued from the network's validator to the replay loop.
const RECORD_QUEUE_LEN: usize = 1024;
/// Unfunded batches kept for re-sending when signing falls behind the rate, and signed ahead.
const MAX_UNFUNDED_POOL: usize = 16;
const UNFUNDED_AHEAD: usize = 2;
/// Sync requests in flight at once, and how long one may take before it counts as failed.
const MAX_SYNC_IN_FLIGHT: usize = 256;
const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How often `forged-chunks` reads the honest head from its peers.
const HEAD_POLL: Duration = Duration::from_millis(100);

/// Set on SIGTERM or Ctrl-C: the attack ends early and the report is printed.
static STOP: AtomicBool = AtomicBool::new(false);

fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Ends the attack early on SIGTERM or Ctrl-C.
fn stop_on_signals() {
    tokio::spawn(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        STOP.store(true, Ordering::Relaxed);
    });
}

pub async fn run(cli: &Cli, genesis: Genesis) -> anyhow::Result<Report> {
    stop_on_signals();
    if cli.attack == Attack::Oversized {
        return oversized::run(cli).await;
    }
    let forger = Forger::new(&genesis).context("cannot build the forged block")?;
    let (record_tx, record_rx) = mpsc::channel::<Vec<u8>>(RECORD_QUEUE_LEN);
    let recording = cli.attack == Attack::Replay;
    // Never relays (and so never helps the network); `replay` keeps a copy of consensus traffic.
    let validator: Validator<()> = Arc::new(move |topic, data| {
        if recording && topic == Topic::Consensus {
            let _ = record_tx.try_send(data.to_vec());
        }
        Verdict::Ignore("not_relayed")
    });
    let forged_chain = (cli.attack == Attack::ForgedChunks)
        .then(|| Arc::new(ForgedChain::new(forger, cli.lead_blocks)));
    let blocks: Arc<dyn BlockSource> = match &forged_chain {
        Some(c) => c.clone(),
        None => Arc::new(NoBlocks),
    };
    let metrics = Arc::new(Metrics::new());
    let (net, _events) = network::spawn_with_metrics(
        libp2p::identity::Keypair::generate_ed25519(),
        NetworkConfig {
            listen_addr: "/ip4/127.0.0.1/tcp/0".parse().context("listen address")?,
            bootnodes: cli.bootnode.clone(),
            max_peers: 64,
            genesis_hash: genesis.hash(),
            peer_book: None,
        },
        validator,
        blocks,
        metrics.clone(),
    )
    .context("cannot start the network")?;
    wait_connected(net.peers(), cli.connect_timeout()).await?;
    tokio::time::sleep(WARM_UP).await;

    let gossip_sent: Sent = {
        let m = metrics.clone();
        Arc::new(move || published(&m))
    };
    match cli.attack {
        Attack::Garbage => {
            observed(cli, net.peers(), gossip_sent.clone(), async move {
                let result = paced(cli.rate, cli.duration(), |i| {
                    let topic = if i % 2 == 0 {
                        Topic::Transactions
                    } else {
                        Topic::Consensus
                    };
                    net.publish(topic, rogue::garbage(i));
                    true
                })
                .await;
                gossip_outcome(result, result.0, &metrics, Extra::default()).await
            })
            .await
        }
        Attack::BadSignatures => {
            let forger = Forger::new(&genesis).context("cannot build the forged block")?;
            let peers = net.peers();
            observed(cli, net.peers(), gossip_sent.clone(), async move {
                let result = paced(cli.rate, cli.duration(), |i| {
                    // The height being decided: nodes set aside committed heights unchecked.
                    let next = Height(honest_head(&peers) + 1);
                    let (topic, bytes) = forger.bad_signature(i, next);
                    net.publish(topic, bytes);
                    true
                })
                .await;
                gossip_outcome(result, result.0, &metrics, Extra::default()).await
            })
            .await
        }
        Attack::UnfundedFlood => {
            let forger = Forger::new(&genesis).context("cannot build the forged block")?;
            observed(cli, net.peers(), gossip_sent.clone(), async move {
                unfunded_flood(cli, &net, forger, &metrics).await
            })
            .await
        }
        Attack::Replay => {
            observed(cli, net.peers(), gossip_sent.clone(), async move {
                replay(cli, &net, record_rx, &metrics).await
            })
            .await
        }
        Attack::SyncFlood => {
            let sent = Arc::new(AtomicU64::new(0));
            let probe = sent.clone();
            observed(
                cli,
                net.peers(),
                Arc::new(move || probe.load(Ordering::Relaxed)),
                async move { sync_flood(cli, &net, sent).await },
            )
            .await
        }
        Attack::ForgedChunks => {
            let chain = forged_chain.context("forged chain")?;
            let served = chain.chunks_served.clone();
            observed(
                cli,
                net.peers(),
                Arc::new(move || served.load(Ordering::Relaxed)),
                async move { forged_chunks(cli, &net, &chain).await },
            )
            .await
        }
        // Runs on a swarm of its own, started above.
        Attack::Oversized => bail!("the oversized attack does not use the node's network"),
    }
}

/// Waits until `peers` lists someone.
pub async fn wait_connected(
    mut peers: watch::Receiver<Vec<PeerInfo>>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while peers.borrow_and_update().is_empty() {
        match tokio::time::timeout_at(deadline, peers.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => bail!("the network stopped before any peer connected"),
            Err(_) => bail!(
                "no peer connected within {} s: are the bootnodes up?",
                timeout.as_secs()
            ),
        }
    }
    Ok(())
}

/// Runs `attack` while the tracker follows `peers`, and makes the report.
pub async fn observed(
    cli: &Cli,
    peers: watch::Receiver<Vec<PeerInfo>>,
    sent: Sent,
    attack: impl Future<Output = Outcome>,
) -> anyhow::Result<Report> {
    let (stop, stopped) = oneshot::channel();
    let tracker = tokio::spawn(tracker::track(peers, sent, Instant::now(), stopped));
    let outcome = attack.await;
    let _ = stop.send(());
    let log = tracker.await.context("the connection tracker failed")?;
    Ok(Report::new(
        cli.attack,
        cli.rate,
        cli.duration,
        outcome,
        log,
    ))
}

/// Calls `send(slot)` for every message slot due at `rate` per second during `duration`;
/// `send` returns whether it sent something (a slot with nothing to send is skipped, not made
/// up later). Returns how many were sent and the time it ran.
pub async fn paced(
    rate: u64,
    duration: Duration,
    mut send: impl FnMut(u64) -> bool,
) -> (u64, Duration) {
    let start = Instant::now();
    let mut slots = 0u64;
    let mut sent = 0u64;
    while start.elapsed() < duration && !stopping() {
        let target = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        let due = target.saturating_sub(slots).min(MAX_BURST);
        for _ in 0..due {
            if send(slots) {
                sent += 1;
            }
            slots += 1;
        }
        tokio::time::sleep(TICK).await;
    }
    (sent, start.elapsed())
}

/// Gossip messages the rogue's network published to at least one peer.
fn published(m: &Metrics) -> u64 {
    [Topic::Transactions, Topic::Consensus]
        .iter()
        .map(|t| {
            m.gossip_sent
                .get_or_create(&vec![("topic".to_owned(), t.label().to_owned())])
                .get()
        })
        .sum()
}

async fn gossip_outcome(
    (attempted, elapsed): (u64, Duration),
    unique_payloads: u64,
    metrics: &Metrics,
    extra: Extra,
) -> Outcome {
    tokio::time::sleep(FLUSH).await;
    let sent = published(metrics);
    Outcome {
        attempted,
        sent,
        // What found no peer (or a full queue) went nowhere, however distinct.
        unique_payloads: unique_payloads.min(sent),
        unit: "messages",
        elapsed,
        extra,
    }
}

/// Full batches of validly signed transfers from keys without funds. A thread signs fresh
/// batches (in parallel) as fast as it can; when it falls behind the rate, the last
/// [`MAX_UNFUNDED_POOL`] batches go out again.
async fn unfunded_flood(
    cli: &Cli,
    net: &NetworkHandle,
    forger: Forger,
    metrics: &Metrics,
) -> Outcome {
    let (batches_tx, batches_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(UNFUNDED_AHEAD);
    let signer = std::thread::spawn(move || {
        let keys = rogue::unfunded_keys();
        for b in 0u64.. {
            // The receiver is gone: the attack is over.
            if batches_tx.send(forger.unfunded_batch(&keys, b)).is_err() {
                return;
            }
        }
    });
    let mut pool: VecDeque<Vec<u8>> = VecDeque::new();
    let mut unique = 0u64;
    let result = paced(cli.rate, cli.duration(), |i| {
        let fresh = match batches_rx.try_recv() {
            Ok(b) => {
                unique += 1;
                pool.push_back(b);
                if pool.len() > MAX_UNFUNDED_POOL {
                    pool.pop_front();
                }
                true
            }
            Err(_) => false,
        };
        let Some(batch) = (if fresh {
            pool.back()
        } else {
            pool.get((i % MAX_UNFUNDED_POOL as u64) as usize % pool.len().max(1))
        }) else {
            return false;
        };
        net.publish(Topic::Transactions, batch.clone());
        true
    })
    .await;
    drop(batches_rx);
    // At most one batch is being signed: a short wait.
    let _ = tokio::task::spawn_blocking(move || signer.join()).await;
    gossip_outcome(result, unique, metrics, Extra::default()).await
}

/// Re-publishes recorded consensus messages (as resends, see [`rogue::replay_bytes`]): each slot
/// takes the next one from the newest to the oldest, then starts again from the newest (which may
/// be newer by then).
async fn replay(
    cli: &Cli,
    net: &NetworkHandle,
    mut recorded_rx: mpsc::Receiver<Vec<u8>>,
    metrics: &Metrics,
) -> Outcome {
    let mut buffer: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut bytes = 0usize;
    let mut recorded = 0u64;
    let mut replays = 0u64;
    let mut distinct: HashSet<u64> = HashSet::new();
    let result = paced(cli.rate, cli.duration(), |_| {
        while let Ok(m) = recorded_rx.try_recv() {
            bytes += m.len();
            buffer.push_back((recorded, m));
            recorded += 1;
            while buffer.len() > MAX_RECORDED || bytes > MAX_RECORDED_BYTES {
                if let Some((_, old)) = buffer.pop_front() {
                    bytes -= old.len();
                }
            }
        }
        if buffer.is_empty() {
            return false;
        }
        let idx = buffer.len() - 1 - (replays % buffer.len() as u64) as usize;
        let (id, message) = &buffer[idx];
        distinct.insert(*id);
        net.publish(
            Topic::Consensus,
            rogue::replay_bytes(message, replays, wire::unix_secs()),
        );
        replays += 1;
        true
    })
    .await;
    let extra = Extra {
        recorded: Some(recorded),
        ..Extra::default()
    };
    gossip_outcome(result, distinct.len() as u64, metrics, extra).await
}

/// Block-range requests of [`MAX_BLOCKS_PER_REQUEST`] blocks within each peer's head, to the
/// peers in turn, with at most [`MAX_SYNC_IN_FLIGHT`] waiting for an answer.
async fn sync_flood(cli: &Cli, net: &NetworkHandle, sent: Arc<AtomicU64>) -> Outcome {
    let in_flight = Arc::new(Semaphore::new(MAX_SYNC_IN_FLIGHT));
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let blocks = Arc::new(AtomicU64::new(0));
    let mut skipped = 0u64;
    let peers = net.peers();
    let (attempted, elapsed) = paced(cli.rate, cli.duration(), |i| {
        let target = {
            let list = peers.borrow();
            if list.is_empty() {
                return false;
            }
            list[(i % list.len() as u64) as usize].clone()
        };
        let Ok(peer) = target.peer_id.parse::<PeerId>() else {
            return false;
        };
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            skipped += 1;
            return false;
        };
        let head = target.height.unwrap_or(0);
        let (from, to) = sync_range(head, i);
        sent.fetch_add(1, Ordering::Relaxed);
        let (net, answered, failed, blocks) = (
            net.clone(),
            answered.clone(),
            failed.clone(),
            blocks.clone(),
        );
        tokio::spawn(async move {
            let request = net.request_blocks(peer, from, to, MAX_SYNC_RESPONSE_BYTES as u64);
            match tokio::time::timeout(SYNC_REQUEST_TIMEOUT, request).await {
                Ok(Ok(b)) if !b.is_empty() => {
                    answered.fetch_add(1, Ordering::Relaxed);
                    blocks.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
        true
    })
    .await;
    // Let the requests in flight finish (each is bounded by its timeout).
    let _ = tokio::time::timeout(
        SYNC_REQUEST_TIMEOUT + Duration::from_secs(1),
        in_flight.acquire_many(MAX_SYNC_IN_FLIGHT as u32),
    )
    .await;
    let sent = sent.load(Ordering::Relaxed);
    Outcome {
        attempted: attempted + skipped,
        sent,
        unique_payloads: sent,
        unit: "requests",
        elapsed,
        extra: Extra {
            sync_answered: Some(answered.load(Ordering::Relaxed)),
            sync_failed: Some(failed.load(Ordering::Relaxed)),
            sync_blocks_received: Some(blocks.load(Ordering::Relaxed)),
            sync_skipped_in_flight: Some(skipped),
            ..Extra::default()
        },
    }
}

/// The `i`-th range asked of a peer at `head`: the largest a request may span, spread over the
/// chain (old blocks are the expensive ones to read).
fn sync_range(head: u64, i: u64) -> (u64, u64) {
    let span = MAX_BLOCKS_PER_REQUEST;
    let from = if head > span {
        1 + i.wrapping_mul(7919) % (head - span + 1)
    } else {
        1
    };
    (from, from + span - 1)
}

/// The highest head the peers reported (0 before the first status answer).
fn honest_head(peers: &watch::Receiver<Vec<PeerInfo>>) -> u64 {
    peers
        .borrow()
        .iter()
        .filter_map(|p| p.height)
        .max()
        .unwrap_or(0)
}

/// Keeps the forged chain's claimed head ahead of the honest one and lets the nodes ask.
async fn forged_chunks(cli: &Cli, net: &NetworkHandle, chain: &ForgedChain) -> Outcome {
    let start = Instant::now();
    let peers = net.peers();
    while start.elapsed() < cli.duration() && !stopping() {
        chain
            .honest_head
            .fetch_max(honest_head(&peers), Ordering::Relaxed);
        tokio::time::sleep(HEAD_POLL).await;
    }
    let chunks = chain.chunks_served.load(Ordering::Relaxed);
    Outcome {
        attempted: chunks,
        sent: chunks,
        unique_payloads: chunks,
        unit: "chunks",
        elapsed: start.elapsed(),
        extra: Extra {
            blocks_served: Some(chain.blocks_served.load(Ordering::Relaxed)),
            ..Extra::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paced_sends_about_rate_times_duration_and_skips_empty_slots() {
        let mut slots = Vec::new();
        let (sent, elapsed) = paced(500, Duration::from_millis(200), |i| {
            slots.push(i);
            i % 2 == 0
        })
        .await;
        assert!(elapsed >= Duration::from_millis(200));
        // Slots are numbered without gaps; only the even ones counted as sent.
        assert!(slots.iter().enumerate().all(|(k, i)| k as u64 == *i));
        assert_eq!(sent, slots.len().div_ceil(2) as u64);
        assert!((80..=110).contains(&slots.len()), "{} slots", slots.len());
    }

    #[test]
    fn sync_ranges_span_the_request_limit_within_the_head() {
        assert_eq!(sync_range(0, 5), (1, MAX_BLOCKS_PER_REQUEST));
        for i in 0..1000 {
            let (from, to) = sync_range(10_000, i);
            assert!(from >= 1 && to <= 10_000, "{from}..={to}");
            assert_eq!(to - from + 1, MAX_BLOCKS_PER_REQUEST);
        }
    }
}
