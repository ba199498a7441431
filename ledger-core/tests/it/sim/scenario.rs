//! Fault schedules, drawn from a seed.
//!
//! Before GST anything goes: lossy, duplicating, reordering links, partitions that open and heal,
//! honest nodes that crash (at once, or halfway through executing an output list) and restart from
//! their durable state, and up to f byzantine validators. At GST the links become good (bounded
//! delay, no loss), partitions heal and every crashed node is up again; byzantine nodes stay
//! byzantine. Liveness is then required: every honest node commits K more heights within a bounded
//! virtual time.
//!
//! Also drawn: unequal voting powers, one-way links, partitions into three groups, clocks: every
//! node's wall clock is off by a little, a minority's by more than `max_clock_drift_ms`, and wall
//! clocks jump mid-run (timers run on the monotonic clock and must not care). The fault model is
//! kept: byzantine validators plus honest ones whose clock is beyond the drift bound (they act as
//! faulty proposers or nil voters) hold less than a third of the power.

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

/// The direction `from` -> `to` drops everything between the two times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneWayWindow {
    pub from: usize,
    pub to: usize,
    pub start_ms: u64,
    pub heal_ms: u64,
}

/// At `at_ms`, the node's wall clock is set to virtual time + `offset_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockJump {
    pub node: usize,
    pub at_ms: u64,
    pub offset_ms: i64,
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
    pub one_way: Vec<OneWayWindow>,
    /// Voting power per node.
    pub powers: Vec<u64>,
    /// Wall-clock offset per node at the start.
    pub clock_offsets: Vec<i64>,
    pub clock_jumps: Vec<ClockJump>,
    /// Nodes whose clock is beyond the drift bound (for the fault mix).
    pub skewed: Vec<usize>,
    /// Workload: transfers per 50 ms on average.
    pub tx_rate: u32,
    /// Protection switched off on honest nodes (non-vacuity tests only): see
    /// `SimNode::lying_mempool`.
    pub lying_mempool: bool,
    /// K: heights every honest node must commit after GST ...
    pub liveness_heights: u64,
    /// ... within this much virtual time after GST.
    pub liveness_window_ms: u64,
    /// Upper bound on processed events (a run that needs more is reported, not looped on).
    pub max_events: u64,
}

/// The bound on virtual time from GST to K more heights. After GST a message takes at most
/// ~100 ms; a height needs at most a few rounds of at most a few seconds each at the rounds a fault
/// phase of <= 12 s can reach; 30 s leaves a wide margin while still catching a stall.
pub const LIVENESS_WINDOW_MS: u64 = 30_000;
/// Transfers per 50 ms on average (the workload's default).
pub const TX_RATE: u32 = 4;
/// The byzantine variants of the schedule before the engine ran in the simulator.
const LEGACY_VARIANTS: [Variant; 4] = [
    Variant::EquivocatingVoter,
    Variant::EquivocatingProposer,
    Variant::Silent,
    Variant::Replayer,
];
/// The sim's `max_clock_drift_ms` (see `sim_params`).
const DRIFT_MS: i64 = 1_000;

/// Whether `faulty` nodes hold less than a third of the power.
pub fn within_f(powers: &[u64], faulty: &[usize]) -> bool {
    let total: u64 = powers.iter().sum();
    let bad: u64 = faulty.iter().map(|i| powers[*i]).sum();
    3 * bad < total
}

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
            one_way: Vec::new(),
            powers: vec![1; n],
            clock_offsets: (0..n).map(|i| (i as i64 % 3 - 1) * 20).collect(),
            clock_jumps: Vec::new(),
            skewed: Vec::new(),
            tx_rate: TX_RATE,
            lying_mempool: false,
            liveness_heights: 5,
            liveness_window_ms: LIVENESS_WINDOW_MS,
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

        let powers: Vec<u64> = if n > 1 && rng.random_bool(0.3) {
            (0..n).map(|_| rng.random_range(1..=4)).collect()
        } else {
            vec![1; n]
        };
        let mut byzantine: Vec<(usize, Variant)> = Vec::new();
        if f > 0 && rng.random_bool(0.5) {
            let count = rng.random_range(1..=f);
            for _ in 0..4 * count {
                if byzantine.len() == count {
                    break;
                }
                let node = rng.random_range(0..n);
                let v = Variant::ALL[rng.random_range(0..Variant::ALL.len())];
                let mut faulty: Vec<usize> = byzantine.iter().map(|(b, _)| *b).collect();
                faulty.push(node);
                if byzantine.iter().all(|(b, _)| *b != node) && within_f(&powers, &faulty) {
                    byzantine.push((node, v));
                }
            }
            byzantine.sort();
        }
        let faulty: Vec<usize> = byzantine.iter().map(|(b, _)| *b).collect();

        // Clocks: everyone a little off; a minority (if the fault model allows) beyond the drift
        // bound, ahead or behind; some jump mid-run.
        let skew = rng.random_range(0..100i64);
        let mut clock_offsets: Vec<i64> = (0..n).map(|_| rng.random_range(-skew..=skew)).collect();
        let mut skewed = Vec::new();
        if n > 1 && rng.random_bool(0.2) {
            let node = rng.random_range(0..n);
            let mut with: Vec<usize> = faulty.clone();
            with.push(node);
            if !faulty.contains(&node) && within_f(&powers, &with) {
                let beyond = DRIFT_MS + rng.random_range(200..3_000);
                clock_offsets[node] = if rng.random_bool(0.5) {
                    beyond
                } else {
                    -beyond
                };
                skewed.push(node);
            }
        }
        let mut clock_jumps = Vec::new();
        if rng.random_bool(0.25) {
            for _ in 0..rng.random_range(1..=3) {
                let node = rng.random_range(0..n);
                if skewed.contains(&node) {
                    continue;
                }
                // Within +-DRIFT/2: any two honest clocks stay within the drift bound.
                clock_jumps.push(ClockJump {
                    node,
                    at_ms: rng.random_range(0..gst_ms + 5_000),
                    offset_ms: rng.random_range(-DRIFT_MS / 2..=DRIFT_MS / 2),
                });
            }
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
                let sides = if n >= 4 && rng.random_bool(0.3) { 3 } else { 2 };
                let mut groups: Vec<u8> = (0..n).map(|_| rng.random_range(0..sides)).collect();
                // Every side non-empty.
                groups[0] = 0;
                groups[n - 1] = 1;
                if sides == 3 {
                    groups[n / 2] = 2;
                }
                partitions.push(PartitionWindow {
                    start_ms: t,
                    heal_ms: heal,
                    groups,
                });
                t = heal + rng.random_range(100..2_000);
            }
        }

        let mut one_way = Vec::new();
        if n > 1 && rng.random_bool(0.25) {
            for _ in 0..rng.random_range(1..=3) {
                let from = rng.random_range(0..n);
                let to = (from + rng.random_range(1..n)) % n;
                let start_ms = rng.random_range(0..gst_ms);
                one_way.push(OneWayWindow {
                    from,
                    to,
                    start_ms,
                    heal_ms: (start_ms + rng.random_range(500..8_000)).min(gst_ms),
                });
            }
        }

        Scenario {
            seed,
            n,
            byzantine,
            one_way,
            powers,
            clock_offsets,
            clock_jumps,
            skewed,
            tx_rate: TX_RATE,
            lying_mempool: false,
            links_after_gst: LinkConfig::good(base, jitter),
            links_before_gst: links,
            gst_ms,
            crashes,
            partitions,
            liveness_heights: 3,
            liveness_window_ms: LIVENESS_WINDOW_MS,
            max_events: 2_000_000,
        }
    }

    /// The fault schedule `random(seed)` drew before the simulator ran the engine (same draws:
    /// size, links, GST, up to f byzantine of the four first variants, crashes, two-group
    /// partitions, clock offsets within 100 ms), so the pinned regression seeds keep the fault
    /// shapes that found their bugs. The run itself differs (engine, workload), so it is not the
    /// same event log.
    pub fn legacy(seed: u64) -> Scenario {
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
                    let v = LEGACY_VARIANTS[rng.random_range(0..LEGACY_VARIANTS.len())];
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

        let skew = rng.random_range(0..100i64);
        let clock_offsets = (0..n).map(|_| rng.random_range(-skew..=skew)).collect();
        Scenario {
            seed,
            one_way: Vec::new(),
            powers: vec![1; n],
            clock_offsets,
            clock_jumps: Vec::new(),
            skewed: Vec::new(),
            tx_rate: TX_RATE,
            lying_mempool: false,
            n,
            byzantine,
            links_after_gst: LinkConfig::good(base, jitter),
            links_before_gst: links,
            gst_ms,
            crashes,
            partitions,
            liveness_heights: 3,
            liveness_window_ms: LIVENESS_WINDOW_MS,
            max_events: 2_000_000,
        }
    }

    /// One line for logs and failure messages.
    pub fn describe(&self) -> String {
        let l = &self.links_before_gst;
        format!(
            "n={} powers={:?} byzantine={:?} gst={}ms latency={}+{}ms loss={:.2} dup={:.2} reorder={:.2} crashes={} partitions={:?} one_way={} clocks={:?} skewed={:?} jumps={}",
            self.n,
            self.powers,
            self.byzantine,
            self.gst_ms,
            l.base_latency_ms,
            l.jitter_ms,
            l.loss,
            l.duplicate,
            l.reorder,
            self.crashes.len(),
            self.partitions
                .iter()
                .map(|p| p.groups.clone())
                .collect::<Vec<_>>(),
            self.one_way.len(),
            self.clock_offsets,
            self.skewed,
            self.clock_jumps.len(),
        )
    }
}
