//! `Prng`: the small deterministic generator (splitmix64) behind the
//! randomized election timeout, public so that tests and tools that need
//! seeded randomness use the same one. It reads no global state: a seed
//! determines the whole sequence, so runs replay exactly.

/// splitmix64 over a 64-bit state.
#[derive(Debug, Clone)]
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Prng::below(0): the range must not be empty");
        // Rejection sampling keeps the distribution exactly uniform.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_below_stays_in_range() {
        let (mut a, mut b) = (Prng::new(42), Prng::new(42));
        for _ in 0..1000 {
            let v = a.below(7);
            assert_eq!(v, b.below(7));
            assert!(v < 7);
        }
        assert_ne!(Prng::new(1).next_u64(), Prng::new(2).next_u64());
    }
}
