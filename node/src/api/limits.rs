//! The global request rate limit: a lock-free GCRA token bucket in one atomic.
//!
//! GCRA keeps a "theoretical arrival time" (TAT): each admitted request pushes it one interval
//! further; a request is refused while the TAT is more than `burst` intervals ahead of now. It is a
//! token bucket without a refill task, and one compare-and-swap per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    /// Nanoseconds since `start`.
    tat_ns: AtomicU64,
    interval_ns: u64,
    /// How far ahead of now the TAT may run: (burst - 1) intervals.
    tolerance_ns: u64,
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter {
        let interval_ns = 1_000_000_000 / u64::from(per_sec.max(1));
        RateLimiter {
            start: Instant::now(),
            tat_ns: AtomicU64::new(0),
            interval_ns: interval_ns.max(1),
            tolerance_ns: interval_ns.saturating_mul(u64::from(burst.max(1)) - 1),
        }
    }

    /// Takes one token at `now`; false if the bucket is empty.
    pub fn try_acquire_at(&self, now: Instant) -> bool {
        let now_ns =
            u64::try_from(now.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX);
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now_ns);
            if base - now_ns > self.tolerance_ns {
                return false;
            }
            let next = base.saturating_add(self.interval_ns);
            match self
                .tat_ns
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => tat = actual,
            }
        }
    }

    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_steady_rate() {
        let rl = RateLimiter::new(10, 5);
        let t0 = rl.start;
        let granted = (0..20).filter(|_| rl.try_acquire_at(t0)).count();
        assert_eq!(granted, 5, "the burst");
        // 100 ms later one more token (10 per second).
        assert!(rl.try_acquire_at(t0 + Duration::from_millis(100)));
        assert!(!rl.try_acquire_at(t0 + Duration::from_millis(100)));
        // After a long pause the bucket is full again, but not fuller.
        let later = t0 + Duration::from_secs(10);
        assert_eq!((0..20).filter(|_| rl.try_acquire_at(later)).count(), 5);
    }
}
