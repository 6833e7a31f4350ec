//! `Latency`: a fixed-bucket histogram of durations, for the metrics'
//! Prometheus histograms (WAL flush latency here, commit latency in the
//! server). Plain counters in a `Copy` value: recording is a compare per
//! bucket bound and three adds, no allocation, no lock.

use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (100 µs to 10 s, about
/// 2.5x apart); a last, unbounded bucket (`+Inf`) takes the rest.
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Counts of durations per bucket, their number and sum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// `buckets[k]`: durations above bound `k - 1` and at most bound `k`
    /// (not cumulative); `buckets[16]`: above the last bound.
    pub buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    pub count: u64,
    /// Sum of the durations, in microseconds.
    pub sum_us: u64,
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let k = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[k] += 1;
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// `(upper bound in seconds, or None for +Inf; cumulative count)` per
    /// bucket, as Prometheus' `le` buckets.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<f64>, u64)> + '_ {
        let mut acc = 0;
        self.buckets.iter().enumerate().map(move |(k, n)| {
            acc += n;
            let le = LATENCY_BOUNDS_US.get(k).map(|&us| us as f64 / 1e6);
            (le, acc)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_first_bucket_whose_bound_holds_them() {
        let mut l = Latency::default();
        l.record(Duration::from_micros(100)); // on the first bound
        l.record(Duration::from_micros(101)); // just above
        l.record(Duration::from_millis(3));
        l.record(Duration::from_secs(60)); // above the last bound
        assert_eq!(l.count, 4);
        assert_eq!(l.sum_us, 100 + 101 + 3_000 + 60_000_000);
        assert_eq!(l.buckets[0], 1);
        assert_eq!(l.buckets[1], 1);
        assert_eq!(l.buckets[5], 1); // 2.5 ms < 3 ms <= 5 ms
        assert_eq!(l.buckets[16], 1);
        let cum: Vec<_> = l.cumulative().collect();
        assert_eq!(cum.len(), 17);
        assert_eq!(cum[0], (Some(0.0001), 1));
        assert_eq!(cum[15], (Some(10.0), 3));
        assert_eq!(cum[16], (None, 4));
    }
}
