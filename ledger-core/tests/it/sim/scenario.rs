//! Fault schedules, drawn from a seed.
//!
//! Before GST anything goes: lossy, duplicating, reordering links, partitions that open and heal,
//! honest nodes that crash (at once, or halfway through executing an output list) and restart from
//! their durable state, and up to f byzantine validators. At GST the links become good (bounded
//! delay, no loss), partitions heal and every crashed node is up again; byzantine nodes stay
//! byzantine. Liveness is then required: every honest node commits K more heights within a bounded
//! virtual time.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::byzantine::Variant;
use super::network::LinkConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    pub node: usize,
    pub at_ms: u64,
    pub down_ms: u64,
    /// Crash halfway through executing an output list rather than between two events.
    pub mid_output: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWindow {
    pub start_ms: u64,
    pub heal_ms: u64,
    /// Group per node.
    pub groups: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub n: usize,
    pub byzantine: Vec<(usize, Variant)>,
    pub links_before_gst: LinkConfig,
    pub links_after_gst: LinkConfig,
    /// Times are relative to the start of the run.
    pub gst_ms: u64,
    pub crashes: Vec<Crash>,
    pub partitions: Vec<PartitionWindow>,
    /// K: heights every honest node must commit after GST ...
    pub liveness_heights: u64,
    /// ... within this much virtual time after GST.
    pub liveness_window_ms: u64,
    /// Node clocks are off by up to this much either way.
    pub clock_skew_ms: u64,
    /// Upper bound on processed events (a run that needs more is reported, not looped on).
    pub max_events: u64,
}

/// The bound on virtual time from GST to K more heights. After GST a message takes at most
/// ~100 ms; a height needs at most a few rounds of at most a few seconds each at the rounds a fault
/// phase of <= 12 s can reach; 30 s leaves a wide margin while still catching a stall.
pub const LIVENESS_WINDOW_MS: u64 = 30_000;

impl Scenario {
    /// A clean run: no faults at all.
    pub fn clean(seed: u64, n: usize) -> Scenario {
        Scenario {
            seed,
            n,
            byzantine: Vec::new(),
            links_before_gst: LinkConfig::good(10, 20),
            links_after_gst: LinkConfig::good(10, 20),
            gst_ms: 0,
            crashes: Vec::new(),
            partitions: Vec::new(),
            liveness_heights: 5,
            liveness_window_ms: LIVENESS_WINDOW_MS,
            clock_skew_ms: 20,
            max_events: 2_000_000,
        }
    }

    /// The mixed fault schedule of `seed`.
    pub fn random(seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ce7_a410);
        let n = match rng.random_range(0..100) {
            0..15 => 1,
            15..60 => 4,
            _ => 7,
        };
        let f = (n - 1) / 3;
        let base = rng.random_range(5..40);
        let jitter = rng.random_range(0..40);
        let mut links = LinkConfig::good(base, jitter);
        if rng.random_bool(0.5) {
            links.loss = rng.random_range(0.01..0.3);
        }
        if rng.random_bool(0.3) {
            links.duplicate = rng.random_range(0.01..0.1);
        }
        if rng.random_bool(0.4) {
            links.reorder = rng.random_range(0.05..0.3);
            links.reorder_extra_ms = rng.random_range(50..400);
        }
        let gst_ms = rng.random_range(1_000..12_000);

        let mut byzantine = Vec::new();
        if f > 0 && rng.random_bool(0.5) {
            let count = rng.random_range(1..=f);
            while byzantine.len() < count {
                let node = rng.random_range(0..n);
                if byzantine.iter().all(|(b, _)| *b != node) {
                    let v = Variant::ALL[rng.random_range(0..Variant::ALL.len())];
                    byzantine.push((node, v));
                }
            }
            byzantine.sort();
        }

        let mut crashes = Vec::new();
        if rng.random_bool(0.5) {
            for node in 0..n {
                if byzantine.iter().any(|(b, _)| *b == node) || !rng.random_bool(0.4) {
                    continue;
                }
                for _ in 0..rng.random_range(1..=2) {
                    crashes.push(Crash {
                        node,
                        at_ms: rng.random_range(0..gst_ms),
                        down_ms: rng.random_range(100..3_000),
                        mid_output: rng.random_bool(0.5),
                    });
                }
            }
        }

        let mut partitions = Vec::new();
        if n > 1 && rng.random_bool(0.35) {
            let mut t = rng.random_range(0..gst_ms);
            for _ in 0..rng.random_range(1..=2) {
                if t >= gst_ms {
                    break;
                }
                let heal = (t + rng.random_range(200..5_000)).min(gst_ms);
                let mut groups: Vec<u8> = (0..n).map(|_| rng.random_range(0..2)).collect();
                // Both sides non-empty.
                groups[0] = 0;
                groups[n - 1] = 1;
                partitions.push(PartitionWindow {
                    start_ms: t,
                    heal_ms: heal,
                    groups,
                });
                t = heal + rng.random_range(100..2_000);
            }
        }

        Scenario {
            seed,
            n,
            byzantine,
            links_after_gst: LinkConfig::good(base, jitter),
            links_before_gst: links,
            gst_ms,
            crashes,
            partitions,
            liveness_heights: 3,
            liveness_window_ms: LIVENESS_WINDOW_MS,
            clock_skew_ms: rng.random_range(0..100),
            max_events: 2_000_000,
        }
    }

    /// One line for logs and failure messages.
    pub fn describe(&self) -> String {
        let l = &self.links_before_gst;
        format!(
            "n={} byzantine={:?} gst={}ms latency={}+{}ms loss={:.2} dup={:.2} reorder={:.2} crashes={} partitions={}",
            self.n,
            self.byzantine,
            self.gst_ms,
            l.base_latency_ms,
            l.jitter_ms,
            l.loss,
            l.duplicate,
            l.reorder,
            self.crashes.len(),
            self.partitions.len(),
        )
    }
}
