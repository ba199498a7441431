//! Prometheus metrics. The metric handles are atomics: the one kind of shared mutable state the
//! node allows, because every task updates them and nobody waits on them.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;
type CounterFamily = Family<Labels, Counter>;

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Every metric the node exports at `/metrics`.
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub txs_finalized: Counter,
    pub blocks_committed: Counter,
    pub mempool_txs: Gauge,
    pub mempool_bytes: Gauge,
    pub block_commit_seconds: Histogram,
    pub block_txs: Histogram,
    pub consensus_round: Gauge,
    pub api_latency_seconds: HistogramFamily,
    pub api_responses: CounterFamily,
    pub txs_rejected: CounterFamily,
    pub events_lagged: Counter,
    pub api_connections_refused: Counter,
    pub consensus_rounds_per_height: Histogram,
    pub block_interval_seconds: Histogram,
    pub peers: Gauge,
    pub gossip_received: CounterFamily,
    pub gossip_sent: CounterFamily,
    pub gossip_rejected: CounterFamily,
    pub gossip_ignored: CounterFamily,
    pub gossip_tx_skipped: CounterFamily,
    pub gossip_signature_checks: CounterFamily,
    pub peers_blocked: Counter,
    pub traffic_dropped: CounterFamily,
    pub signature_verify_seconds: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ledger");
        let height = Gauge::default();
        registry.register(
            "height",
            "Height of the last committed block",
            height.clone(),
        );
        let txs_finalized = Counter::default();
        registry.register(
            "txs_finalized",
            "Transactions in committed blocks",
            txs_finalized.clone(),
        );
        let blocks_committed = Counter::default();
        registry.register(
            "blocks_committed",
            "Blocks committed by this node",
            blocks_committed.clone(),
        );
        let mempool_txs = Gauge::default();
        registry.register(
            "mempool_txs",
            "Transactions in the mempool",
            mempool_txs.clone(),
        );
        let mempool_bytes = Gauge::default();
        registry.register(
            "mempool_bytes",
            "Bytes of transactions in the mempool",
            mempool_bytes.clone(),
        );
        let block_commit_seconds = latency_histogram();
        registry.register(
            "block_commit_seconds",
            "Time to execute and durably store a committed block",
            block_commit_seconds.clone(),
        );
        let block_txs = Histogram::new(exponential_buckets(1.0, 2.0, 16));
        registry.register(
            "block_txs",
            "Transactions per committed block",
            block_txs.clone(),
        );
        let consensus_round = Gauge::default();
        registry.register(
            "consensus_round",
            "Round of the current consensus height",
            consensus_round.clone(),
        );
        let api_latency_seconds: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "api_latency_seconds",
            "HTTP API latency by route",
            api_latency_seconds.clone(),
        );
        let api_responses = CounterFamily::default();
        registry.register(
            "api_responses",
            "HTTP API responses by route and status",
            api_responses.clone(),
        );
        let txs_rejected = CounterFamily::default();
        registry.register(
            "txs_rejected",
            "Transactions refused at submission, by reason",
            txs_rejected.clone(),
        );
        let events_lagged = Counter::default();
        registry.register(
            "events_lagged",
            "Events skipped by slow /v1/events subscribers",
            events_lagged.clone(),
        );
        let api_connections_refused = Counter::default();
        registry.register(
            "api_connections_refused",
            "HTTP connections closed at accept: the client was at api.max_connections_per_client or the server at api.max_connections",
            api_connections_refused.clone(),
        );
        // 1 = decided in the first round; more means a proposer failed or votes were late.
        let consensus_rounds_per_height = Histogram::new(linear_buckets(1.0, 1.0, 10));
        registry.register(
            "consensus_rounds_per_height",
            "Rounds the consensus needed to decide each height this node committed from its own \
             decision (decided round + 1; blocks fetched by sync are not counted)",
            consensus_rounds_per_height.clone(),
        );
        // 50 ms .. ~102 s
        let block_interval_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 12));
        registry.register(
            "block_interval_seconds",
            "Seconds between the header timestamps of consecutive committed blocks (the chain's \
             pace, the same on every node; observed at each commit from height 2 on, synced \
             blocks included)",
            block_interval_seconds.clone(),
        );
        let peers = Gauge::default();
        registry.register("peers", "Connected peers", peers.clone());
        let gossip_received = CounterFamily::default();
        registry.register(
            "gossip_messages_received",
            "Gossip messages received, by topic (txs, consensus), before validation",
            gossip_received.clone(),
        );
        let gossip_sent = CounterFamily::default();
        registry.register(
            "gossip_messages_sent",
            "Gossip messages this node published, by topic (txs, consensus)",
            gossip_sent.clone(),
        );
        let gossip_rejected = CounterFamily::default();
        registry.register(
            "gossip_messages_rejected",
            "Gossip messages that failed application validation (not relayed, sender penalised), \
             by topic and reason",
            gossip_rejected.clone(),
        );
        let gossip_ignored = CounterFamily::default();
        registry.register(
            "gossip_messages_ignored",
            "Gossip messages not relayed and not handed on, by topic and reason: useless ones \
             (stale, known, nothing new; charged to the sender's budget) and ones this node cannot \
             use now (future heights, validation saturated)",
            gossip_ignored.clone(),
        );
        let gossip_tx_skipped = CounterFamily::default();
        registry.register(
            "gossip_txs_skipped",
            "Gossiped transactions set aside before their signature was checked, by reason \
             (known, committed, unfunded, below_fee_floor, beyond_nonce_window)",
            gossip_tx_skipped.clone(),
        );
        let gossip_signature_checks = CounterFamily::default();
        registry.register(
            "gossip_signature_checks",
            "Signatures checked by gossip validation, by topic (one per transaction or message)",
            gossip_signature_checks.clone(),
        );
        let peers_blocked = Counter::default();
        registry.register(
            "peers_blocked",
            "Peers disconnected and blocked for sending invalid or useless traffic",
            peers_blocked.clone(),
        );
        let traffic_dropped = CounterFamily::default();
        registry.register(
            "traffic_dropped",
            "Valid work dropped because its class's queue was full, by class (txs, sync_serve: all serve slots taken, sync_busy: a peer over its share answered busy, sync_rest_ignored: a request during its rest, penalised)",
            traffic_dropped.clone(),
        );
        // 10 us .. ~1.3 s
        let signature_verify_seconds = Histogram::new(exponential_buckets(0.00001, 2.0, 18));
        registry.register(
            "signature_verify_seconds",
            "Time spent verifying signatures, one observation per call: a transaction or batch \
             at mempool admission or gossip validation, a consensus message or evidence, a synced \
             block's commit certificate",
            signature_verify_seconds.clone(),
        );
        Metrics {
            registry,
            height,
            txs_finalized,
            blocks_committed,
            mempool_txs,
            mempool_bytes,
            block_commit_seconds,
            block_txs,
            consensus_round,
            api_latency_seconds,
            api_responses,
            txs_rejected,
            events_lagged,
            api_connections_refused,
            consensus_rounds_per_height,
            block_interval_seconds,
            peers,
            gossip_received,
            gossip_sent,
            gossip_rejected,
            gossip_ignored,
            gossip_tx_skipped,
            gossip_signature_checks,
            peers_blocked,
            traffic_dropped,
            signature_verify_seconds,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub fn observe_api(&self, route: &str, status: u16, seconds: f64) {
        self.api_latency_seconds
            .get_or_create(&vec![("route".to_string(), route.to_string())])
            .observe(seconds);
        self.api_responses
            .get_or_create(&vec![
                ("route".to_string(), route.to_string()),
                ("status".to_string(), status.to_string()),
            ])
            .inc();
    }

    pub fn rejected(&self, code: &str) {
        self.txs_rejected
            .get_or_create(&vec![("reason".to_string(), code.to_string())])
            .inc();
    }

    /// A gossip message arrived on `topic` (a short kind: `txs`, `consensus`).
    pub fn gossip_received(&self, topic: &str) {
        self.gossip_received
            .get_or_create(&labels(&[("topic", topic)]))
            .inc();
    }

    /// This node published a gossip message on `topic`.
    pub fn gossip_sent(&self, topic: &str) {
        self.gossip_sent
            .get_or_create(&labels(&[("topic", topic)]))
            .inc();
    }

    /// Application validation rejected a gossip message. `reason` must come from a small fixed
    /// set (it is a label): the validator's `&'static str` codes.
    pub fn gossip_rejected(&self, topic: &str, reason: &str) {
        self.gossip_rejected
            .get_or_create(&labels(&[("topic", topic), ("reason", reason)]))
            .inc();
    }

    /// A gossip message was neither relayed nor handed on (not an invalid one).
    pub fn gossip_ignored(&self, topic: &str, reason: &str) {
        self.gossip_ignored
            .get_or_create(&labels(&[("topic", topic), ("reason", reason)]))
            .inc();
    }

    /// A gossiped transaction was set aside before its signature check.
    pub fn gossip_tx_skipped(&self, reason: &str) {
        self.gossip_tx_skipped
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// Gossip validation checked `n` signatures of `topic`.
    pub fn gossip_signature_checks(&self, topic: &str, n: u64) {
        self.gossip_signature_checks
            .get_or_create(&labels(&[("topic", topic)]))
            .inc_by(n);
    }

    /// Valid work of `class` was dropped on a full queue.
    pub fn traffic_dropped(&self, class: &str) {
        self.traffic_dropped
            .get_or_create(&labels(&[("class", class)]))
            .inc();
    }

    /// The value of one sample line of the exposition, named exactly as exposed with its labels
    /// (e.g. `ledger_peers`, `ledger_gossip_messages_sent_total{topic="txs"}`).
    #[cfg(test)]
    pub(crate) fn sample(&self, name: &str) -> Option<f64> {
        sample(&self.encode(), name)
    }

    /// Runs `verify` (a signature check of one item or one batch) and records its duration in
    /// `signature_verify_seconds`.
    pub fn time_signatures<T>(&self, verify: impl FnOnce() -> T) -> T {
        let start = std::time::Instant::now();
        let out = verify();
        self.signature_verify_seconds
            .observe(start.elapsed().as_secs_f64());
        out
    }
}

/// The value of the sample line `name` (with its labels, exactly as exposed) in `text`.
#[cfg(test)]
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_the_core_metrics() {
        let m = Metrics::new();
        m.height.set(7);
        m.observe_api("/v1/status", 200, 0.001);
        let text = m.encode();
        for name in [
            "ledger_height 7",
            "ledger_txs_finalized_total",
            "ledger_mempool_txs",
            "ledger_api_latency_seconds_bucket",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn observability_metrics_are_exposed_with_their_values() {
        let m = Metrics::new();
        m.consensus_rounds_per_height.observe(1.0);
        m.consensus_rounds_per_height.observe(3.0);
        m.block_interval_seconds.observe(0.5);
        m.peers.set(3);
        m.gossip_received("txs");
        m.gossip_received("txs");
        m.gossip_received("consensus");
        m.gossip_sent("consensus");
        m.gossip_rejected("consensus", "bad_signature");
        let verified = m.time_signatures(|| 42);
        assert_eq!(verified, 42);
        let text = m.encode();
        for (name, want) in [
            ("ledger_consensus_rounds_per_height_count", 2.0),
            ("ledger_consensus_rounds_per_height_sum", 4.0),
            ("ledger_consensus_rounds_per_height_bucket{le=\"1.0\"}", 1.0),
            ("ledger_consensus_rounds_per_height_bucket{le=\"3.0\"}", 2.0),
            ("ledger_block_interval_seconds_count", 1.0),
            ("ledger_peers", 3.0),
            ("ledger_gossip_messages_received_total{topic=\"txs\"}", 2.0),
            (
                "ledger_gossip_messages_received_total{topic=\"consensus\"}",
                1.0,
            ),
            (
                "ledger_gossip_messages_sent_total{topic=\"consensus\"}",
                1.0,
            ),
            (
                "ledger_gossip_messages_rejected_total{topic=\"consensus\",reason=\"bad_signature\"}",
                1.0,
            ),
            ("ledger_signature_verify_seconds_count", 1.0),
        ] {
            assert_eq!(sample(&text, name), Some(want), "{name} in\n{text}");
        }
    }

    /// Every metric name the Grafana dashboard queries exists in the exposition (with the
    /// families that have labels populated, as a running node has them).
    #[test]
    fn every_metric_of_the_grafana_dashboard_is_exported() {
        let m = Metrics::new();
        m.observe_api("/v1/status", 200, 0.001);
        m.rejected("nonce_too_low");
        m.gossip_received("txs");
        m.gossip_sent("txs");
        m.gossip_rejected("txs", "undecodable");
        let text = m.encode();
        // Sample names (`x_bucket`, `x_total`, ...) and family names (`# TYPE x histogram`).
        let exposed: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| match l.strip_prefix("# TYPE ") {
                Some(rest) => rest.split(' ').next(),
                None if l.starts_with('#') => None,
                None => l.split(['{', ' ']).next(),
            })
            .collect();
        let dashboard = include_str!("../../docs/grafana/ledger-node.json");
        let mut checked = 0;
        for (i, _) in dashboard.match_indices("ledger_") {
            let name: String = dashboard[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            // The prose mentions the prefix alone ("prefix ledger_").
            if name == "ledger_" {
                continue;
            }
            assert!(
                exposed.contains(name.as_str()),
                "the dashboard queries {name}, which /metrics does not export"
            );
            checked += 1;
        }
        assert!(
            checked > 20,
            "found only {checked} metric names in the dashboard"
        );
        assert!(
            !dashboard.contains("ASSUMED"),
            "the dashboard still marks panels as using missing metrics"
        );
    }
}
