//! `Clocks`: each node's own tick rate, for runs with lease-based reads.
//!
//! Simulated time advances in steps of `UNITS` units (the simulator's
//! `now`). A node ticks every `period` units from a phase of its own, so
//! it ticks once in most steps, twice in some and in some not at all;
//! ticks falling in one step all happen at its end, before anything else.
//! A node that is down misses its ticks; its clock runs on. Periods are
//! never exactly one step (then every phase would tick in the same steps,
//! and nodes of one rate would never drift apart).
//!
//! The periods keep the drift bound the nodes are configured with
//! (`Config::max_clock_drift_ticks`, `d`), in the form the core assumes:
//! over any span in which one node ticks `election_tick` (`E`) times,
//! every other node ticks at least `E - d` times. A span of whole steps in
//! which the fastest node (period `p_min`) ticks `E` times is longer than
//! `(E - 1) * p_min` units, and holds at least `floor(span / p)` ticks of
//! a node of period `p`; so periods within `[base, base * (E - 1) / (E -
//! d)]` keep the bound, whatever the run's `base` (drawn within a quarter
//! of a step). With `d = 1` every node runs at the same rate, with its own
//! phase (the drift of two unsynchronised tickers).

use std::collections::BTreeMap;

use crate::rng::Rng;

/// Units of simulated time per step of the simulator's `now`.
pub const UNITS: u64 = 1_000;

/// One node's ticker.
#[derive(Debug, Clone, Copy)]
struct Ticker {
    period: u64,
    /// The unit at which it ticks next.
    next: u64,
}

/// The tickers of every node of a run.
#[derive(Debug, Clone)]
pub struct Clocks {
    /// The configured bound, in ticks.
    pub drift: u64,
    /// The shortest period of the run.
    base: u64,
    /// The longest period the bound allows.
    max_period: u64,
    tickers: BTreeMap<u64, Ticker>,
}

impl Clocks {
    /// Draws the drift bound for a run with election timeout `election`:
    /// 1 tick, or up to a third of the election timeout.
    pub fn draw(rng: &mut Rng, election: u64) -> Clocks {
        let drift = rng.range(1, (election / 3).max(1));
        let mut base = rng.range(UNITS * 4 / 5, UNITS * 5 / 4);
        if base == UNITS {
            base += 1;
        }
        let max_period = base * (election - 1) / (election - drift);
        Clocks {
            drift,
            base,
            max_period,
            tickers: BTreeMap::new(),
        }
    }

    /// How many times node `id` ticks in the step that ends at `now` (in
    /// steps). Its period is drawn the first time it is asked: one of the
    /// extremes of the bound, or anything between.
    pub fn ticks(&mut self, rng: &mut Rng, id: u64, now: u64) -> u32 {
        let end = now * UNITS;
        let (base, max_period) = (self.base, self.max_period);
        let t = self.tickers.entry(id).or_insert_with(|| {
            let period = match rng.below(3) {
                0 => base,
                1 => max_period,
                _ => rng.range(base, max_period),
            };
            Ticker {
                period,
                next: end - UNITS + rng.range(1, period),
            }
        });
        let mut n = 0;
        while t.next <= end {
            t.next += t.period;
            n += 1;
        }
        n
    }

    /// The periods drawn so far, per node.
    pub fn describe(&self) -> String {
        let ps: Vec<String> = self
            .tickers
            .iter()
            .map(|(id, t)| format!("{id}:{}", t.period))
            .collect();
        format!(
            "drift={} periods(max {})=[{}]",
            self.drift,
            self.max_period,
            ps.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over every span of whole steps in which one node ticks `E` times,
    /// every other ticks at least `E - d` times.
    #[test]
    fn drawn_clocks_keep_the_drift_bound() {
        for seed in 0..1_000 {
            let mut rng = Rng::new(seed);
            let election = rng.range(4, 10);
            let mut c = Clocks::draw(&mut rng, election);
            let ids = [1u64, 2, 3, 4, 5, 6, 7];
            let steps = 600;
            // prefix[id][k]: ticks of `id` in the first k steps.
            let mut prefix: BTreeMap<u64, Vec<u64>> = ids.iter().map(|&id| (id, vec![0])).collect();
            for now in 1..=steps {
                for id in ids {
                    let n = c.ticks(&mut rng, id, now);
                    let p = prefix.get_mut(&id).unwrap();
                    let last = *p.last().unwrap();
                    p.push(last + u64::from(n));
                }
            }
            let count = |id: u64, a: usize, b: usize| prefix[&id][b] - prefix[&id][a];
            for a in 0..steps as usize {
                for b in a + 1..=steps as usize {
                    let per: Vec<u64> = ids.iter().map(|&id| count(id, a, b)).collect();
                    let max = *per.iter().max().unwrap();
                    if max > election {
                        break;
                    }
                    let min = *per.iter().min().unwrap();
                    assert!(
                        max < election || min + c.drift >= election,
                        "seed {seed}: {} in steps {a}..{b}: {per:?}",
                        c.describe()
                    );
                }
            }
        }
    }
}
