//! The nemesis schedule: a pure function of (seed, validators, enabled kinds, step count), so a
//! printed seed replays the same faults on the same nodes in the same order with the same hold
//! times. Wall-clock timing still varies between runs (restarts and catch-up take what they take).
//!
//! The schedule is a list of episodes. Each episode disturbs the network and then repairs it:
//!
//! - `Partial`: up to f validators, each killed (-9) or isolated, held, then restarted or healed.
//!   Never more than f at once, so the chain must keep finalizing meanwhile.
//! - `CutOff`: f + 1 validators isolated: no side holds a quorum. Held, then healed; the chain must
//!   not finalize during the cut (beyond a block already in flight) and must resume after it.
//! - `RestartAll`: every node down at once (kill -9, or SIGTERM), held, then every node started
//!   again with its data; the chain must resume.
//!
//! The first episodes are one of each enabled kind in a seeded order, so even a short run injects
//! every kind; later ones are drawn at random.

use clap::ValueEnum;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// A kind of fault the nemesis can inject (`--kinds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// SIGKILL up to f validators, then restart them.
    Kill,
    /// Cut up to f validators off their peers, then heal them.
    Isolate,
    /// Isolate f + 1 validators (no quorum anywhere), then heal them.
    CutOff,
    /// Restart every node.
    RestartAll,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Kill, Kind::Isolate, Kind::CutOff, Kind::RestartAll];
}

/// What happens to one validator in a `Partial` episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    Kill,
    Isolate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Episode {
    Partial {
        faults: Vec<(usize, Fault)>,
        hold_ms: u64,
    },
    CutOff {
        nodes: Vec<usize>,
        hold_ms: u64,
    },
    /// Every node down at once (`crash`: kill -9, else SIGTERM), held, then every node started.
    RestartAll {
        crash: bool,
        hold_ms: u64,
    },
}

/// One step: a pause, then an episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub gap_ms: u64,
    pub episode: Episode,
}

/// Bounds of the random times, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timing {
    pub min_gap_ms: u64,
    pub max_gap_ms: u64,
    pub min_hold_ms: u64,
    pub max_hold_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub seed: u64,
    /// Validator node indices the nemesis may disturb.
    pub validators: Vec<usize>,
    /// Validators that may be faulty at once without losing liveness: (n - 1) / 3 (equal power).
    pub f: usize,
    pub steps: Vec<Step>,
}

/// f for `n` validators of equal power.
pub fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// Why no schedule can be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no validators to disturb")]
    NoValidators,
    #[error(
        "with {validators} validators f = 0: kill and isolate would each stop the chain; enable cut-off or restart-all"
    )]
    NothingToDo { validators: usize },
    #[error("no fault kind enabled")]
    NoKinds,
}

/// The schedule for `seed`: `steps` episodes over `validators` using the `kinds` enabled.
pub fn plan(
    seed: u64,
    validators: &[usize],
    kinds: &[Kind],
    steps: usize,
    timing: Timing,
) -> Result<Plan, PlanError> {
    if validators.is_empty() {
        return Err(PlanError::NoValidators);
    }
    let mut kinds: Vec<Kind> = kinds.to_vec();
    kinds.sort();
    kinds.dedup();
    if kinds.is_empty() {
        return Err(PlanError::NoKinds);
    }
    let f = max_faulty(validators.len());
    // With f = 0 a partial fault is a cut-off in disguise: leave it to the cut-off kind.
    if f == 0 {
        kinds.retain(|k| matches!(k, Kind::CutOff | Kind::RestartAll));
        if kinds.is_empty() {
            return Err(PlanError::NothingToDo {
                validators: validators.len(),
            });
        }
    }
    // Mixed into the seed so the traffic generator (seeded from the same number) draws a
    // different stream.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321);
    let mut first: Vec<Kind> = kinds.clone();
    first.shuffle(&mut rng);
    let mut out = Vec::with_capacity(steps);
    for k in 0..steps {
        let kind = match first.get(k) {
            Some(kind) => *kind,
            None => draw_kind(&mut rng, &kinds),
        };
        let gap_ms = rng.random_range(timing.min_gap_ms..=timing.max_gap_ms.max(timing.min_gap_ms));
        let hold_ms =
            rng.random_range(timing.min_hold_ms..=timing.max_hold_ms.max(timing.min_hold_ms));
        let episode = match kind {
            Kind::Kill | Kind::Isolate => {
                let count = rng.random_range(1..=f);
                let nodes = pick(&mut rng, validators, count);
                let faults = nodes
                    .into_iter()
                    .map(|n| {
                        // Mostly the drawn kind; with both enabled and f > 1, mixes happen too.
                        let other_ok =
                            kinds.contains(&Kind::Kill) && kinds.contains(&Kind::Isolate);
                        let flip = other_ok && count > 1 && rng.random_bool(0.3);
                        let fault = match (kind, flip) {
                            (Kind::Kill, false) | (Kind::Isolate, true) => Fault::Kill,
                            _ => Fault::Isolate,
                        };
                        (n, fault)
                    })
                    .collect();
                Episode::Partial { faults, hold_ms }
            }
            Kind::CutOff => Episode::CutOff {
                nodes: pick(&mut rng, validators, f + 1),
                hold_ms,
            },
            Kind::RestartAll => Episode::RestartAll {
                crash: rng.random_bool(0.5),
                hold_ms,
            },
        };
        out.push(Step { gap_ms, episode });
    }
    Ok(Plan {
        seed,
        validators: validators.to_vec(),
        f,
        steps: out,
    })
}

/// Partial faults most of the time: they are what a network lives through; the others are rarer.
fn draw_kind(rng: &mut ChaCha8Rng, kinds: &[Kind]) -> Kind {
    let weight = |k: &Kind| match k {
        Kind::Kill | Kind::Isolate => 4u32,
        Kind::CutOff | Kind::RestartAll => 1,
    };
    let total: u32 = kinds.iter().map(weight).sum();
    let mut x = rng.random_range(0..total.max(1));
    for k in kinds {
        if x < weight(k) {
            return *k;
        }
        x -= weight(k);
    }
    kinds[0]
}

/// `count` distinct entries of `from`, in a seeded order.
fn pick(rng: &mut ChaCha8Rng, from: &[usize], count: usize) -> Vec<usize> {
    let mut v = from.to_vec();
    v.shuffle(rng);
    v.truncate(count.min(from.len()));
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        min_gap_ms: 500,
        max_gap_ms: 2000,
        min_hold_ms: 1000,
        max_hold_ms: 4000,
    };

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let a = plan(7, &[0, 1, 2, 3], &Kind::ALL, 30, T).expect("plan");
        let b = plan(7, &[0, 1, 2, 3], &Kind::ALL, 30, T).expect("plan");
        let c = plan(8, &[0, 1, 2, 3], &Kind::ALL, 30, T).expect("plan");
        assert_eq!(a, b);
        assert_ne!(a.steps, c.steps);
        // A longer run starts with the same steps: `--duration` does not reshuffle the start.
        let longer = plan(7, &[0, 1, 2, 3], &Kind::ALL, 60, T).expect("plan");
        assert_eq!(longer.steps[..30], a.steps[..]);
    }

    #[test]
    fn never_more_than_f_except_the_cut_off_and_every_kind_comes_first() {
        for n in [4usize, 5, 7, 10] {
            let validators: Vec<usize> = (0..n).collect();
            let f = max_faulty(n);
            for seed in 0..200 {
                let p = plan(seed, &validators, &Kind::ALL, 20, T).expect("plan");
                let mut first = Vec::new();
                for (k, s) in p.steps.iter().enumerate() {
                    let kind = match &s.episode {
                        Episode::Partial { faults, hold_ms } => {
                            assert!((1..=f).contains(&faults.len()), "{n} nodes: {faults:?}");
                            assert!((T.min_hold_ms..=T.max_hold_ms).contains(hold_ms));
                            let mut nodes: Vec<usize> = faults.iter().map(|x| x.0).collect();
                            nodes.dedup();
                            assert_eq!(nodes.len(), faults.len(), "distinct nodes");
                            if faults.iter().all(|x| x.1 == Fault::Kill) {
                                Kind::Kill
                            } else {
                                Kind::Isolate
                            }
                        }
                        Episode::CutOff { nodes, .. } => {
                            assert_eq!(nodes.len(), f + 1, "more than f, and only just");
                            Kind::CutOff
                        }
                        Episode::RestartAll { .. } => Kind::RestartAll,
                    };
                    if k < 4 {
                        first.push(kind);
                    }
                }
                first.sort();
                if f == 1 {
                    assert_eq!(first, Kind::ALL.to_vec(), "seed {seed}: every kind first");
                }
            }
        }
    }

    #[test]
    fn f_zero_keeps_only_the_kinds_that_mean_something_and_empty_inputs_are_refused() {
        let p = plan(1, &[0], &Kind::ALL, 10, T).expect("plan");
        assert!(
            p.steps
                .iter()
                .all(|s| !matches!(s.episode, Episode::Partial { .. }))
        );
        assert_eq!(
            plan(1, &[0], &[Kind::Kill], 10, T),
            Err(PlanError::NothingToDo { validators: 1 })
        );
        assert_eq!(
            plan(1, &[], &Kind::ALL, 10, T),
            Err(PlanError::NoValidators)
        );
        assert_eq!(plan(1, &[0, 1, 2, 3], &[], 10, T), Err(PlanError::NoKinds));
    }
}
