//! Timers as values, on the monotonic clock: the machine's timeouts and the periodic tick.

use std::collections::BTreeMap;

use super::Now;
use crate::consensus::{Input, TimeoutKind};
use crate::params::ConsensusParams;
use crate::types::{Height, Round, TimestampMs};

/// Timeouts kept at once. The machine schedules a few per round and stale ones are ignored, so
/// this only guards against a bug filling memory; past it, the latest ones are dropped.
pub const MAX_PENDING_TIMEOUTS: usize = 1024;

#[derive(Debug, Clone)]
pub struct Timers {
    /// By (monotonic deadline, sequence): fired in deadline order, ties in scheduling order.
    timeouts: BTreeMap<(u64, u64), Input>,
    seq: u64,
    /// Cadence of `Input::Tick` (re-broadcast when stuck).
    tick_every_ms: u64,
    /// `None` until the first [`Timers::fire`], which starts the ticking.
    next_tick_ms: Option<u64>,
}

impl Timers {
    pub fn new(params: &ConsensusParams) -> Timers {
        Timers {
            timeouts: BTreeMap::new(),
            seq: 0,
            tick_every_ms: params.timeout_precommit_ms.max(50),
            next_tick_ms: None,
        }
    }

    /// `Output::ScheduleTimeout` at `at` on the machine's (wall) clock: the same delay from now on
    /// the monotonic one.
    pub fn schedule(
        &mut self,
        now: Now,
        height: Height,
        round: Round,
        kind: TimeoutKind,
        at: TimestampMs,
    ) {
        let deadline = now.mono_ms.saturating_add(at.0.saturating_sub(now.wall.0));
        self.timeouts.insert(
            (deadline, self.seq),
            Input::TimeoutElapsed {
                height,
                round,
                kind,
            },
        );
        self.seq += 1;
        while self.timeouts.len() > MAX_PENDING_TIMEOUTS {
            self.timeouts.pop_last();
        }
    }

    /// The inputs due at `now_ms`, in order: elapsed timeouts, then the tick if its time came.
    pub fn fire(&mut self, now_ms: u64) -> Vec<Input> {
        let mut due = Vec::new();
        while let Some(entry) = self.timeouts.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            due.push(entry.remove());
        }
        match self.next_tick_ms {
            None => self.next_tick_ms = Some(now_ms.saturating_add(self.tick_every_ms)),
            Some(t) if t <= now_ms => {
                due.push(Input::Tick);
                self.next_tick_ms = Some(now_ms.saturating_add(self.tick_every_ms));
            }
            Some(_) => {}
        }
        due
    }

    /// The next monotonic ms at which [`Timers::fire`] has something to do.
    pub fn next_deadline_ms(&self) -> u64 {
        let timeout = self.timeouts.first_key_value().map(|((at, _), _)| *at);
        let tick = self.next_tick_ms.unwrap_or(0);
        timeout.map_or(tick, |t| t.min(tick))
    }

    /// A height was committed: its timeouts are void.
    pub fn clear_timeouts(&mut self) {
        self.timeouts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_fire_by_monotonic_time_whatever_the_wall_clock_does() {
        let mut t = Timers::new(&ConsensusParams::default());
        assert_eq!(t.next_deadline_ms(), 0, "ticking starts at the first fire");
        assert!(t.fire(0).is_empty());
        let now = Now {
            wall: TimestampMs(1_000),
            mono_ms: 0,
        };
        t.schedule(
            now,
            Height(1),
            Round(0),
            TimeoutKind::Propose,
            TimestampMs(1_300),
        );
        assert_eq!(t.next_deadline_ms(), 300);
        // The wall clock jumps an hour ahead: nothing fires before 300 monotonic ms.
        assert!(t.fire(299).iter().all(|i| *i == Input::Tick));
        let fired = t.fire(300);
        assert!(fired.contains(&Input::TimeoutElapsed {
            height: Height(1),
            round: Round(0),
            kind: TimeoutKind::Propose
        }));
    }

    #[test]
    fn ticks_come_at_their_cadence() {
        let params = ConsensusParams::default();
        let every = params.timeout_precommit_ms.max(50);
        let mut t = Timers::new(&params);
        t.fire(0);
        assert_eq!(t.next_deadline_ms(), every);
        assert!(t.fire(every - 1).is_empty());
        assert_eq!(t.fire(every), vec![Input::Tick]);
        assert_eq!(t.next_deadline_ms(), 2 * every);
    }
}
