//! Reconnect backoff of one outbound peer connection: capped exponential
//! growth with seeded jitter. Pure (no clock, no global randomness): the
//! caller sleeps for what [`Backoff::next_delay`] returns, and a seed gives
//! the same delays every run.
//!
//! Why jitter: when a member restarts, every shard of every other member
//! lost its connection to it at the same instant; without jitter they would
//! all redial in lockstep, every round. "Equal jitter": the delay is drawn
//! uniformly from `[d/2, d]`, so it never falls below half the nominal
//! step (a dead peer is not hammered) and the dialers spread out.

use std::time::Duration;

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    /// The nominal delay of the next failure.
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// Delays start at `min` and double up to `max` (`min` is raised to
    /// 1 ms and `max` to `min` if given lower: a zero delay would spin).
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Backoff {
            min,
            max,
            next: min,
            rng: seed,
        }
    }

    /// The delay before the next attempt, after a failure: drawn from
    /// `[d/2, d]` for the nominal `d`, which then doubles (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(self.max);
        let nanos = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        let half = nanos / 2;
        // `half + 1` values: [half, nanos] inclusive.
        let jitter = splitmix64(&mut self.rng) % (nanos - half + 1);
        Duration::from_nanos(half + jitter)
    }

    /// A connection succeeded: the next failure starts from `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// splitmix64: a small, well-mixed generator; statistical quality is all
/// jitter needs.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_cap() {
        let mut b = Backoff::new(10 * MS, 100 * MS, 7);
        let nominal = [10u32, 20, 40, 80, 100, 100, 100];
        for n in nominal {
            let d = b.next_delay();
            let n = MS * n;
            assert!(
                d >= n / 2 && d <= n,
                "delay {d:?} outside [{:?}, {n:?}]",
                n / 2
            );
        }
    }

    #[test]
    fn reset_starts_over_from_min() {
        let mut b = Backoff::new(10 * MS, 1000 * MS, 1);
        for _ in 0..6 {
            b.next_delay();
        }
        b.reset();
        let d = b.next_delay();
        assert!(d >= 5 * MS && d <= 10 * MS, "{d:?}");
    }

    #[test]
    fn one_seed_replays_the_same_delays_and_seeds_differ() {
        let run = |seed| {
            let mut b = Backoff::new(10 * MS, 10_000 * MS, seed);
            (0..12).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn jitter_spreads_over_the_whole_window() {
        // 1,000 draws at the cap: both halves of [d/2, d] are hit.
        let mut b = Backoff::new(100 * MS, 100 * MS, 3);
        let (mut low, mut high) = (0, 0);
        for _ in 0..1000 {
            let d = b.next_delay();
            if d < 75 * MS {
                low += 1;
            } else {
                high += 1;
            }
        }
        assert!(low > 300 && high > 300, "low {low} high {high}");
    }

    #[test]
    fn zero_or_inverted_bounds_do_not_spin() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO, 0);
        assert!(b.next_delay() >= MS / 2);
        let mut b = Backoff::new(50 * MS, 10 * MS, 0);
        let d = b.next_delay();
        assert!(d >= 25 * MS && d <= 50 * MS, "{d:?}");
    }
}
