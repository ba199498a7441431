//! Latency percentiles over exact samples (sorted once at the end; the sample count is bounded by
//! the number of transfers or by a per-thread cap for reads).

use serde::Serialize;

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Nearest-rank percentiles of microsecond samples (sorts `us` in place).
pub fn percentiles(us: &mut [u64]) -> Percentiles {
    if us.is_empty() {
        return Percentiles::default();
    }
    us.sort_unstable();
    let n = us.len();
    let at = |p: f64| -> f64 {
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        us[rank.clamp(1, n) - 1] as f64 / 1000.0
    };
    let sum: u128 = us.iter().map(|&v| v as u128).sum();
    Percentiles {
        count: n,
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        max_ms: us[n - 1] as f64 / 1000.0,
        mean_ms: sum as f64 / n as f64 / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let p = percentiles(&mut v);
        assert_eq!(
            (p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(percentiles(&mut []).count, 0);
        assert_eq!(percentiles(&mut [7000]).p99_ms, 7.0);
    }
}
