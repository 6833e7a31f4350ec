//! The simulator's only source of randomness: xoshiro256** seeded through
//! splitmix64 from the run's seed.
//!
//! Every choice of a run (which message, which fault, which node, the core's
//! own election-timeout seeds) is drawn from one `Rng`, so a seed names one
//! history exactly. It must never be seeded from the clock or the OS.

/// xoshiro256** (Blackman and Vigna): small, fast, and good enough for
/// choosing among actions; not cryptographic, which nothing here needs.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

/// One step of splitmix64: expands a seed into well-mixed words, the
/// initialization xoshiro's authors recommend (an all-zero state would be a
/// fixed point).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, n)`. Panics on `n == 0`: asking for a choice among
    /// nothing is a bug of the caller.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0): no choice to make");
        // Rejection sampling: exactly uniform, and the rejection branch is
        // taken with probability < n / 2^64.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Uniform in `[lo, hi]` (inclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "Rng::range({lo}, {hi}): empty range");
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// A uniformly chosen element, or None for an empty slice.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> Option<T> {
        if xs.is_empty() {
            None
        } else {
            Some(xs[self.below(xs.len() as u64) as usize])
        }
    }

    /// An index chosen with probability proportional to its weight; None if
    /// all weights are zero.
    pub fn weighted(&mut self, weights: &[u64]) -> Option<usize> {
        let total: u64 = weights.iter().sum();
        if total == 0 {
            return None;
        }
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return Some(i);
            }
            x -= w;
        }
        unreachable!("weighted: x below the total always lands in a bucket")
    }

    /// A non-zero seed for something else that needs its own randomness
    /// (the core's election timeouts), drawn from this stream.
    pub fn fork_seed(&mut self) -> u64 {
        loop {
            let s = self.next_u64();
            if s != 0 {
                return s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_different_seeds_differ() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let xa: Vec<u64> = (0..64).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..64).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..64).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn below_stays_in_range_and_hits_every_value() {
        let mut r = Rng::new(7);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            let v = r.below(5) as usize;
            seen[v] += 1;
        }
        assert!(seen.iter().all(|&n| n > 1_500), "{seen:?}");
    }

    #[test]
    fn weighted_never_picks_a_zero_weight() {
        let mut r = Rng::new(9);
        for _ in 0..1_000 {
            assert_ne!(r.weighted(&[3, 0, 5]), Some(1));
        }
        assert_eq!(r.weighted(&[0, 0]), None);
    }
}
