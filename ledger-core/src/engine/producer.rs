//! The block production policy (DESIGN: "a proposer proposes as soon as transactions wait, after a
//! short pause that lets a block fill, and otherwise every `empty_block_interval_ms`").
//!
//! The machine asks for a block with `Output::BuildBlock { empty_block_at }`. The producer waits:
//! until `block_fill_pause_ms` after transactions are seen in the mempool, and until
//! `empty_block_at` at the latest. Then it asks the mempool for candidates
//! ([`Effect::FetchCandidates`]); if none can go in yet (a nonce gap) and the empty-block time has
//! not come, it waits for that time instead of proposing an empty block early.

use super::{Effect, Now};
use crate::params::ConsensusParams;
use crate::tx::VerifiedTransaction;
use crate::types::{Height, TimestampMs};

#[derive(Debug, Clone, Copy)]
struct Pending {
    height: Height,
    /// Monotonic ms of the empty-block time.
    empty_at_ms: u64,
    /// Monotonic ms at which to fetch candidates: `empty_at_ms`, or earlier once transactions wait.
    deadline_ms: u64,
    /// Candidates were asked for; waiting for the answer.
    fetching: bool,
}

#[derive(Debug, Clone)]
pub struct Producer {
    fill_pause_ms: u64,
    max_txs: usize,
    max_bytes: usize,
    /// Transactions in the mempool, as last reported.
    pool_txs: usize,
    pending: Option<Pending>,
}

impl Producer {
    pub fn new(params: &ConsensusParams) -> Producer {
        Producer {
            fill_pause_ms: params.block_fill_pause_ms,
            max_txs: params.max_block_txs as usize,
            max_bytes: usize::try_from(params.max_block_bytes).unwrap_or(usize::MAX),
            pool_txs: 0,
            pending: None,
        }
    }

    /// The machine wants a block at `height` by `empty_block_at` (wall clock) at the latest.
    pub fn arm(&mut self, now: Now, height: Height, empty_block_at: TimestampMs) {
        let empty_at_ms = now
            .mono_ms
            .saturating_add(empty_block_at.0.saturating_sub(now.wall.0));
        let deadline_ms = if self.pool_txs > 0 {
            now.mono_ms
                .saturating_add(self.fill_pause_ms)
                .min(empty_at_ms)
        } else {
            empty_at_ms
        };
        self.pending = Some(Pending {
            height,
            empty_at_ms,
            deadline_ms,
            fetching: false,
        });
    }

    /// New transactions while a build waits: build after the fill pause.
    pub fn on_pool_size(&mut self, now: Now, txs: usize) {
        let grew = txs > self.pool_txs;
        self.pool_txs = txs;
        if let Some(p) = &mut self.pending
            && grew
            && !p.fetching
        {
            let at = now.mono_ms.saturating_add(self.fill_pause_ms);
            p.deadline_ms = p.deadline_ms.min(at).min(p.empty_at_ms);
        }
    }

    /// When to fetch candidates, if a build waits for its time.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.pending.filter(|p| !p.fetching).map(|p| p.deadline_ms)
    }

    /// The request for candidates, if the build's time has come.
    pub fn due(&mut self, now: Now, next_height: Height) -> Option<Effect> {
        let p = self.pending.as_mut()?;
        if p.height != next_height {
            self.pending = None;
            return None;
        }
        if p.fetching || p.deadline_ms > now.mono_ms {
            return None;
        }
        p.fetching = true;
        Some(Effect::FetchCandidates {
            height: p.height,
            max_txs: self.max_txs,
            max_bytes: self.max_bytes,
        })
    }

    /// Whether to build now from `candidates` (the answer for `height`). No: the answer is stale,
    /// or there is nothing to put in the block and the empty-block time has not come (then the
    /// producer waits for that time).
    pub fn accept(&mut self, now: Now, height: Height, candidates: &[VerifiedTransaction]) -> bool {
        let Some(p) = &mut self.pending else {
            return false;
        };
        if p.height != height || !p.fetching {
            return false;
        }
        if candidates.is_empty() && now.mono_ms < p.empty_at_ms {
            p.deadline_ms = p.empty_at_ms;
            p.fetching = false;
            return false;
        }
        self.pending = None;
        true
    }

    /// The height was committed: nothing to build for it any more.
    pub fn clear(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(ms: u64) -> Now {
        // The wall clock runs 1,000,000 ms ahead of the monotonic one.
        Now {
            wall: TimestampMs(1_000_000 + ms),
            mono_ms: ms,
        }
    }

    fn producer() -> Producer {
        let params = ConsensusParams {
            block_fill_pause_ms: 20,
            ..ConsensusParams::default()
        };
        Producer::new(&params)
    }

    #[test]
    fn an_idle_pool_builds_at_the_empty_block_time_and_a_busy_one_after_the_fill_pause() {
        let mut p = producer();
        p.arm(now(0), Height(1), TimestampMs(1_000_000 + 1000));
        assert_eq!(p.deadline_ms(), Some(1000));
        assert!(p.due(now(999), Height(1)).is_none());
        p.on_pool_size(now(100), 5);
        assert_eq!(p.deadline_ms(), Some(120));
        assert!(matches!(
            p.due(now(120), Height(1)),
            Some(Effect::FetchCandidates {
                height: Height(1),
                ..
            })
        ));
        assert_eq!(p.deadline_ms(), None, "asked once");
        assert!(p.due(now(121), Height(1)).is_none());
    }

    #[test]
    fn no_candidates_before_the_empty_block_time_waits_for_it() {
        let mut p = producer();
        p.on_pool_size(now(0), 3);
        p.arm(now(0), Height(1), TimestampMs(1_000_000 + 1000));
        assert_eq!(p.deadline_ms(), Some(20));
        assert!(p.due(now(20), Height(1)).is_some());
        assert!(
            !p.accept(now(21), Height(1), &[]),
            "a nonce gap: nothing fits yet"
        );
        assert_eq!(p.deadline_ms(), Some(1000));
        assert!(p.due(now(1000), Height(1)).is_some());
        assert!(
            p.accept(now(1000), Height(1), &[]),
            "empty block at its time"
        );
        assert_eq!(p.deadline_ms(), None);
    }

    #[test]
    fn a_wall_clock_jump_does_not_move_the_deadline() {
        let mut p = producer();
        p.arm(now(0), Height(1), TimestampMs(1_000_000 + 1000));
        let jumped = Now {
            wall: TimestampMs(5_000_000),
            mono_ms: 10,
        };
        assert!(p.due(jumped, Height(1)).is_none());
        assert_eq!(p.deadline_ms(), Some(1000));
    }

    #[test]
    fn a_stale_answer_or_height_is_ignored() {
        let mut p = producer();
        p.arm(now(0), Height(2), TimestampMs(1_000_000));
        assert!(
            p.due(now(0), Height(3)).is_none(),
            "height 2 was committed meanwhile"
        );
        assert_eq!(p.deadline_ms(), None);
        assert!(!p.accept(now(0), Height(2), &[]));
    }
}
