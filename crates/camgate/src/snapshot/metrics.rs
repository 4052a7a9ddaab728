//! What `/metrics` reads of snapshots (`metrics/` owns no counter): errors by reason, the
//! histogram of decode times, and the counters of `GET /snapshots/stats`. Lock-free but for the
//! reasons map (an error is rare next to a request).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the decode-time buckets, seconds (the `+Inf` bucket is implied): a warm
/// decode of a frame or two is milliseconds, a cold 1080p GOP a few hundred.
pub const DECODE_BUCKETS: [f64; 11] = [
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A Prometheus histogram of one decoder run's time (decode, scale, JPEG, on the blocking
/// thread, after a place among `max_decodes` was had).
#[derive(Default)]
pub struct DecodeTimes {
    /// Non-cumulative: `counts[i]` holds runs in bucket i (the last is +Inf).
    counts: [AtomicU64; DECODE_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A reading: cumulative buckets, count and sum.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeTimesSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl DecodeTimes {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DECODE_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(DECODE_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> DecodeTimesSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(DECODE_BUCKETS.len());
        for (i, &le) in DECODE_BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            buckets.push((le, cumulative));
        }
        let count = cumulative + self.counts[DECODE_BUCKETS.len()].load(Ordering::Relaxed);
        DecodeTimesSnapshot {
            buckets,
            count,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Error answers of the snapshot routes by their code (`invalid_width`, `snapshot_timeout`,
/// `frame_gone`, ...): a fixed set of `&'static str`, so the map stays small.
#[derive(Default)]
pub struct ErrorReasons(Mutex<BTreeMap<&'static str, u64>>);

impl ErrorReasons {
    pub fn count(&self, code: &'static str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(code).or_insert(0) += 1;
    }

    pub fn all(&self) -> Vec<(&'static str, u64)> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// Everything `/metrics` shows of snapshots.
pub struct SnapshotMetrics {
    pub stats: super::SnapshotStats,
    pub errors: Vec<(&'static str, u64)>,
    pub decode_times: DecodeTimesSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_reasons_counted() {
        let h = DecodeTimes::default();
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_millis(40));
        h.observe(Duration::from_secs(9));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        let at = |le: f64| s.buckets.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!((at(0.002), at(0.05), at(5.0)), (1, 2, 2));
        assert!((s.sum_seconds - 9.042).abs() < 1e-9);
        let r = ErrorReasons::default();
        r.count("invalid_width");
        r.count("frame_gone");
        r.count("invalid_width");
        assert_eq!(r.all(), vec![("frame_gone", 1), ("invalid_width", 2)]);
    }
}
