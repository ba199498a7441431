//! Who stayed connected for how long, and the report printed at the end.
//!
//! The tracker follows the connected-peer list the network publishes (`NetworkHandle::peers()`,
//! or the same list from the oversized attack's own swarm) from the start of the attack: each
//! peer's time connected, how often it went away, and how many messages had been sent when it
//! first did.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{oneshot, watch};

use node::network::PeerInfo;

use crate::Attack;

/// Reads the number of messages sent so far (from the attack loop's counters or the network's
/// metrics).
pub type Sent = Arc<dyn Fn() -> u64 + Send + Sync>;

#[derive(Debug, Default)]
struct PeerLog {
    connected_since: Option<Instant>,
    connected: Duration,
    disconnects: u32,
    /// Seconds from the start and messages sent when it first went away.
    first_disconnect: Option<(f64, u64)>,
}

/// Per-peer connection times, from the start of the attack.
#[derive(Debug)]
pub struct ConnectionLog {
    peers: BTreeMap<String, PeerLog>,
    /// Peers connected when the attack ended.
    connected_at_end: usize,
}

/// Follows `peers` until `stop` fires (or the network stops).
pub async fn track(
    mut peers: watch::Receiver<Vec<PeerInfo>>,
    sent: Sent,
    start: Instant,
    mut stop: oneshot::Receiver<()>,
) -> ConnectionLog {
    let mut log: BTreeMap<String, PeerLog> = BTreeMap::new();
    let apply = |list: &[PeerInfo], log: &mut BTreeMap<String, PeerLog>| {
        let now = Instant::now();
        let present: BTreeSet<&str> = list.iter().map(|p| p.peer_id.as_str()).collect();
        for id in &present {
            let e = log.entry((*id).to_owned()).or_default();
            if e.connected_since.is_none() {
                e.connected_since = Some(now);
            }
        }
        for (id, e) in log.iter_mut() {
            if present.contains(id.as_str()) {
                continue;
            }
            if let Some(since) = e.connected_since.take() {
                e.connected += now - since;
                e.disconnects += 1;
                if e.first_disconnect.is_none() {
                    e.first_disconnect = Some(((now - start).as_secs_f64(), sent()));
                }
            }
        }
    };
    let initial = peers.borrow_and_update().clone();
    apply(&initial, &mut log);
    loop {
        tokio::select! {
            changed = peers.changed() => {
                if changed.is_err() {
                    break;
                }
                let list = peers.borrow_and_update().clone();
                apply(&list, &mut log);
            }
            _ = &mut stop => break,
        }
    }
    let now = Instant::now();
    let mut connected_at_end = 0;
    for e in log.values_mut() {
        if let Some(since) = e.connected_since.take() {
            e.connected += now - since;
            connected_at_end += 1;
        }
    }
    ConnectionLog {
        peers: log,
        connected_at_end,
    }
}

/// One peer in the report.
#[derive(Debug, Serialize)]
pub struct PeerReport {
    pub peer_id: String,
    /// Seconds connected during the attack.
    pub connected_s: f64,
    /// Times the connection went away (a blocked peer that redials may come and go).
    pub disconnects: u32,
    pub first_disconnect_after_s: Option<f64>,
    pub first_disconnect_after_messages: Option<u64>,
}

/// Counts that only some attacks have.
#[derive(Debug, Default, Serialize)]
pub struct Extra {
    /// `replay`: consensus messages recorded from honest nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<u64>,
    /// `sync-flood`: requests answered with blocks / failed or refused; blocks received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_answered: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_failed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_blocks_received: Option<u64>,
    /// `sync-flood`: requests not sent because as many were already in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_skipped_in_flight: Option<u64>,
    /// `forged-chunks`: forged blocks handed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks_served: Option<u64>,
    /// `oversized`: bytes of one frame's data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_bytes: Option<u64>,
}

/// What `ledger-rogue` prints at the end.
#[derive(Debug, Serialize)]
pub struct Report {
    pub attack: Attack,
    pub rate: u64,
    pub duration_s: u64,
    /// Seconds the attack actually ran.
    pub elapsed_s: f64,
    /// Messages the attack loop tried to send (gossip publishes, sync requests).
    pub attempted: u64,
    /// Messages that went out: gossip published to at least one peer, sync requests sent,
    /// forged chunks served.
    pub sent: u64,
    /// Distinct payloads among `sent` (a flood that cannot make new ones fast enough repeats).
    pub unique_payloads: u64,
    /// `sent` is counted in these.
    pub unit: &'static str,
    pub peers: Vec<PeerReport>,
    /// Peers that went away at least once.
    pub disconnected_peers: usize,
    pub connected_at_end: usize,
    /// Over all peers: the first disconnection, in seconds and in messages sent.
    pub first_disconnect_after_s: Option<f64>,
    pub first_disconnect_after_messages: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What an attack loop hands to [`Report::new`].
#[derive(Debug)]
pub struct Outcome {
    pub attempted: u64,
    pub sent: u64,
    pub unique_payloads: u64,
    pub unit: &'static str,
    pub elapsed: Duration,
    pub extra: Extra,
}

impl Report {
    pub fn new(
        attack: Attack,
        rate: u64,
        duration_s: u64,
        o: Outcome,
        log: ConnectionLog,
    ) -> Report {
        let peers: Vec<PeerReport> = log
            .peers
            .into_iter()
            .map(|(peer_id, e)| PeerReport {
                peer_id,
                connected_s: round3(e.connected.as_secs_f64()),
                disconnects: e.disconnects,
                first_disconnect_after_s: e.first_disconnect.map(|(s, _)| round3(s)),
                first_disconnect_after_messages: e.first_disconnect.map(|(_, m)| m),
            })
            .collect();
        let first = peers
            .iter()
            .filter_map(|p| {
                Some((
                    p.first_disconnect_after_s?,
                    p.first_disconnect_after_messages?,
                ))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        Report {
            attack,
            rate,
            duration_s,
            elapsed_s: round3(o.elapsed.as_secs_f64()),
            attempted: o.attempted,
            sent: o.sent,
            unique_payloads: o.unique_payloads,
            unit: o.unit,
            disconnected_peers: peers.iter().filter(|p| p.disconnects > 0).count(),
            connected_at_end: log.connected_at_end,
            first_disconnect_after_s: first.map(|f| f.0),
            first_disconnect_after_messages: first.map(|f| f.1),
            peers,
            extra: o.extra,
        }
    }

    /// The report for people: one line per figure, then one per peer.
    pub fn to_text(&self) -> String {
        let attack = serde_json::to_value(self.attack)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut out = format!(
            "attack {attack}: {} {} sent of {} attempted ({} distinct) in {:.1} s at a target of {}/s\n",
            self.sent, self.unit, self.attempted, self.unique_payloads, self.elapsed_s, self.rate
        );
        match (
            self.first_disconnect_after_s,
            self.first_disconnect_after_messages,
        ) {
            (Some(s), Some(m)) => out.push_str(&format!(
                "first disconnection after {m} {} ({s:.1} s); {} of {} peers went away, {} connected at the end\n",
                self.unit,
                self.disconnected_peers,
                self.peers.len(),
                self.connected_at_end
            )),
            _ => out.push_str(&format!(
                "never disconnected: {} peers connected at the end\n",
                self.connected_at_end
            )),
        }
        if let Ok(serde_json::Value::Object(extra)) = serde_json::to_value(&self.extra) {
            for (k, v) in extra {
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        for p in &self.peers {
            out.push_str(&format!(
                "peer {}: connected {:.1} s, {} disconnects{}\n",
                p.peer_id,
                p.connected_s,
                p.disconnects,
                match p.first_disconnect_after_messages {
                    Some(m) => format!(", first after {m} {}", self.unit),
                    None => String::new(),
                }
            ));
        }
        out.push_str(&format!(
            "sent={} first_disconnect_after_messages={}",
            self.sent,
            self.first_disconnect_after_messages
                .map_or_else(|| "never".to_owned(), |m| m.to_string())
        ));
        out
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn info(id: &str) -> PeerInfo {
        PeerInfo {
            peer_id: id.to_owned(),
            address: String::new(),
            height: None,
        }
    }

    #[tokio::test]
    async fn a_peer_that_goes_away_is_logged_with_the_messages_sent_by_then() {
        let (tx, rx) = watch::channel(vec![info("a"), info("b")]);
        let count = Arc::new(AtomicU64::new(0));
        let probe = count.clone();
        let sent: Sent = Arc::new(move || probe.load(Ordering::Relaxed));
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(track(rx, sent, Instant::now(), stop_rx));
        tokio::time::sleep(Duration::from_millis(20)).await;
        count.store(7, Ordering::Relaxed);
        tx.send_replace(vec![info("a")]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        count.store(9, Ordering::Relaxed);
        tx.send_replace(vec![info("a"), info("b")]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send_replace(vec![info("a")]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = stop_tx.send(());
        let log = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("tracker stops")
            .expect("tracker task");
        let o = Outcome {
            attempted: 10,
            sent: 9,
            unique_payloads: 9,
            unit: "messages",
            elapsed: Duration::from_millis(80),
            extra: Extra::default(),
        };
        let r = Report::new(Attack::Garbage, 100, 1, o, log);
        assert_eq!(r.first_disconnect_after_messages, Some(7));
        assert_eq!(r.disconnected_peers, 1);
        assert_eq!(r.connected_at_end, 1);
        let b = r.peers.iter().find(|p| p.peer_id == "b").expect("b");
        assert_eq!(b.disconnects, 2);
        assert!(b.connected_s < r.peers[0].connected_s);
        let text = r.to_text();
        assert!(
            text.contains("first disconnection after 7 messages"),
            "{text}"
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["attack"], "garbage");
        assert!(json.get("recorded").is_none());
    }
}
