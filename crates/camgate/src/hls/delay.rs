//! `camgate_hls_part_delay_seconds`: for every frame pushed into an HLS segmenter, the time
//! from its arrival at the hub to the moment the part containing it became available to
//! players. One histogram per process (no camera label), lock-free, fed by the segmenters'
//! feeder tasks and read by `/metrics`.
//!
//! What it contains: the wait for the part to fill (up to one part target), the one frame the
//! segmenter holds back to learn each frame's duration, and the feeder's queueing and
//! scheduling delay (which grows when the server is overloaded). Frames from the hub's GOP
//! cache (handed to a new segmenter at once, after they arrived) are not counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, seconds (the `+Inf` bucket is implied).
pub const PART_DELAY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0,
];

/// A Prometheus histogram of durations with the fixed [`PART_DELAY_BUCKETS`].
#[derive(Default)]
pub struct PartDelay {
    /// Non-cumulative counts: `counts[i]` holds observations in bucket i (the last is +Inf).
    counts: [AtomicU64; PART_DELAY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A consistent-enough reading for the exposition: cumulative buckets, count and sum.
#[derive(Clone, Debug, PartialEq)]
pub struct PartDelaySnapshot {
    /// (upper bound in seconds, cumulative count), ascending; `+Inf` is `count`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl PartDelay {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = PART_DELAY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(PART_DELAY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> PartDelaySnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(PART_DELAY_BUCKETS.len());
        for (i, &le) in PART_DELAY_BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            buckets.push((le, cumulative));
        }
        let count = cumulative + self.counts[PART_DELAY_BUCKETS.len()].load(Ordering::Relaxed);
        PartDelaySnapshot {
            buckets,
            count,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = PartDelay::default();
        h.observe(Duration::from_millis(5)); // le=0.005 exactly
        h.observe(Duration::from_millis(60));
        h.observe(Duration::from_millis(60));
        h.observe(Duration::from_secs(3)); // +Inf only
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert!((s.sum_seconds - 3.125).abs() < 1e-9);
        let at = |le: f64| s.buckets.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!(at(0.005), 1);
        assert_eq!(at(0.05), 1);
        assert_eq!(at(0.075), 3);
        assert_eq!(at(2.0), 3);
        assert!(s.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
