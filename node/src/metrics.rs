//! Prometheus metrics. The metric handles are atomics: the one kind of shared mutable state the
//! node allows, because every task updates them and nobody waits on them.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;
type CounterFamily = Family<Labels, Counter>;

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
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
}
