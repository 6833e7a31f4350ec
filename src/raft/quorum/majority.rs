//! A plain majority configuration: decisions need more than half of its
//! voters. Owns the committed-index and vote arithmetic for one set of
//! voters and etcd's textual rendering of it; never mutates anything but
//! its own set.

use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;

use super::{AckedIndexer, VoteResult};

/// Configurations up to this many voters compute their committed index on
/// the stack; larger ones (rare in practice) allocate once per call.
const STACK_VOTERS: usize = 7;

/// A set of voter ids deciding by simple majority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MajorityConfig {
    voters: BTreeSet<u64>,
}

impl MajorityConfig {
    /// A configuration of exactly these voters.
    pub fn new(voters: BTreeSet<u64>) -> MajorityConfig {
        MajorityConfig { voters }
    }

    /// The voters, in ascending order.
    pub fn ids(&self) -> &BTreeSet<u64> {
        &self.voters
    }

    /// The voters as an ascending `Vec` (what a `ConfState` holds).
    pub fn slice(&self) -> Vec<u64> {
        self.voters.iter().copied().collect()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.voters.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.voters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// The voters in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.voters.iter().copied()
    }

    /// Adds a voter; returns whether it was new.
    pub fn insert(&mut self, id: u64) -> bool {
        self.voters.insert(id)
    }

    /// Removes a voter; returns whether it was present.
    pub fn remove(&mut self, id: u64) -> bool {
        self.voters.remove(&id)
    }

    pub fn clear(&mut self) {
        self.voters.clear();
    }

    /// The highest index acknowledged by a majority of the voters. Voters
    /// the indexer knows nothing about count as having acknowledged 0. The
    /// empty configuration answers `u64::MAX` so that, as one half of a
    /// joint configuration, it defers to the other half.
    pub fn committed_index<L: AckedIndexer + ?Sized>(&self, l: &L) -> u64 {
        let n = self.voters.len();
        if n == 0 {
            return u64::MAX;
        }
        let mut stack = [0u64; STACK_VOTERS];
        let mut heap = Vec::new();
        let acked: &mut [u64] = if n <= STACK_VOTERS {
            &mut stack[..n]
        } else {
            heap.resize(n, 0);
            &mut heap
        };
        // Unknown voters stay at 0, which sorts them to the left, exactly
        // where a voter that acknowledged nothing belongs.
        for (slot, id) in acked.iter_mut().zip(self.voters.iter()) {
            *slot = l.acked_index(*id).unwrap_or(0);
        }
        acked.sort_unstable();
        // After sorting ascending, the value at this position and everything
        // right of it make up a majority (n/2 + 1 voters).
        acked[n - (n / 2 + 1)]
    }

    /// How an election stands given `votes` (id -> granted). Voters missing
    /// from `votes` have not answered yet; votes from non-voters are ignored.
    /// The empty configuration wins every election so that, as one half of a
    /// joint configuration, it defers to the other half.
    pub fn vote_result(&self, votes: &std::collections::BTreeMap<u64, bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut granted, mut missing) = (0usize, 0usize);
        for id in &self.voters {
            match votes.get(id) {
                None => missing += 1,
                Some(true) => granted += 1,
                Some(false) => {}
            }
        }
        let quorum = self.voters.len() / 2 + 1;
        if granted >= quorum {
            VoteResult::Won
        } else if granted + missing >= quorum {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }

    /// A multi-line picture of what each voter acknowledged, as etcd prints
    /// it: one row per voter in id order, with a bar whose length is the
    /// number of voters that acknowledged strictly less (equal indexes get
    /// equal bars), `?` for a voter the indexer knows nothing about.
    pub fn describe<L: AckedIndexer + ?Sized>(&self, l: &L) -> String {
        if self.voters.is_empty() {
            return "<empty majority quorum>".to_string();
        }
        struct Row {
            id: u64,
            idx: u64,
            known: bool,
            bar: usize,
        }
        let n = self.voters.len();
        let mut rows: Vec<Row> = self
            .voters
            .iter()
            .map(|&id| {
                let acked = l.acked_index(id);
                Row {
                    id,
                    idx: acked.unwrap_or(0),
                    known: acked.is_some(),
                    bar: 0,
                }
            })
            .collect();
        rows.sort_by_key(|r| (r.idx, r.id));
        for i in 1..rows.len() {
            rows[i].bar = if rows[i - 1].idx < rows[i].idx {
                i
            } else {
                rows[i - 1].bar
            };
        }
        rows.sort_by_key(|r| r.id);

        let mut out = String::new();
        out.push_str(&" ".repeat(n));
        out.push_str("    idx\n");
        for r in &rows {
            if r.known {
                out.push_str(&"x".repeat(r.bar));
                out.push('>');
                out.push_str(&" ".repeat(n - r.bar));
            } else {
                out.push('?');
                out.push_str(&" ".repeat(n));
            }
            let _ = writeln!(out, " {:>5}    (id={:x})", r.idx, r.id);
        }
        out
    }
}

impl fmt::Display for MajorityConfig {
    /// `(1 2 3)`, ids in hex as etcd prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, id) in self.voters.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{id:x}")?;
        }
        f.write_str(")")
    }
}

impl FromIterator<u64> for MajorityConfig {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        MajorityConfig {
            voters: iter.into_iter().collect(),
        }
    }
}

impl From<BTreeSet<u64>> for MajorityConfig {
    fn from(voters: BTreeSet<u64>) -> Self {
        MajorityConfig { voters }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn cfg(ids: &[u64]) -> MajorityConfig {
        ids.iter().copied().collect()
    }

    fn acked(pairs: &[(u64, u64)]) -> BTreeMap<u64, u64> {
        pairs.iter().copied().collect()
    }

    fn votes(pairs: &[(u64, bool)]) -> BTreeMap<u64, bool> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn empty_config_commits_everything_and_wins_every_vote() {
        let c = MajorityConfig::default();
        assert_eq!(c.committed_index(&acked(&[])), u64::MAX);
        assert_eq!(c.vote_result(&votes(&[])), VoteResult::Won);
        assert_eq!(c.describe(&acked(&[])), "<empty majority quorum>");
    }

    #[test]
    fn committed_index_is_the_highest_index_a_majority_acked() {
        let c = cfg(&[1, 2, 3]);
        assert_eq!(c.committed_index(&acked(&[(1, 5), (2, 7), (3, 9)])), 7);
        // An unknown voter counts as 0.
        assert_eq!(c.committed_index(&acked(&[(1, 5), (3, 9)])), 5);
        assert_eq!(c.committed_index(&acked(&[(3, 9)])), 0);
        // Acks of non-voters do not count.
        assert_eq!(c.committed_index(&acked(&[(3, 9), (4, 9), (5, 9)])), 0);
    }

    #[test]
    fn committed_index_beyond_stack_size_is_the_same_math() {
        let c = cfg(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let l = acked(&[
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 4),
            (5, 5),
            (6, 6),
            (7, 7),
            (8, 8),
        ]);
        // Nine voters need five: the fifth-highest ack is 4 (voter 9 is 0).
        assert_eq!(c.committed_index(&l), 4);
    }

    #[test]
    fn vote_result_counts_only_voters() {
        let c = cfg(&[1, 2, 3]);
        assert_eq!(c.vote_result(&votes(&[])), VoteResult::Pending);
        assert_eq!(c.vote_result(&votes(&[(1, true)])), VoteResult::Pending);
        assert_eq!(
            c.vote_result(&votes(&[(1, true), (2, true)])),
            VoteResult::Won
        );
        assert_eq!(
            c.vote_result(&votes(&[(1, false), (2, false)])),
            VoteResult::Lost
        );
        assert_eq!(
            c.vote_result(&votes(&[(1, true), (2, false)])),
            VoteResult::Pending
        );
        assert_eq!(
            c.vote_result(&votes(&[(1, true), (4, true), (5, true)])),
            VoteResult::Pending
        );
    }

    #[test]
    fn display_prints_sorted_hex_ids() {
        assert_eq!(cfg(&[3, 1, 2]).to_string(), "(1 2 3)");
        assert_eq!(cfg(&[10, 255]).to_string(), "(a ff)");
        assert_eq!(MajorityConfig::default().to_string(), "()");
    }

    #[test]
    fn describe_different_index_per_voter() {
        let got = cfg(&[1, 2, 3]).describe(&acked(&[(1, 101), (2, 102), (3, 103)]));
        let want = "       idx\n\
                    >      101    (id=1)\n\
                    x>     102    (id=2)\n\
                    xx>    103    (id=3)\n";
        assert_eq!(got, want);
    }

    #[test]
    fn describe_equal_indexes_get_equal_bars() {
        let got = cfg(&[1, 2, 3]).describe(&acked(&[(1, 100), (2, 100), (3, 100)]));
        let want = "       idx\n\
                    >      100    (id=1)\n\
                    >      100    (id=2)\n\
                    >      100    (id=3)\n";
        assert_eq!(got, want);
        let got = cfg(&[1, 2, 3]).describe(&acked(&[(1, 100), (2, 102), (3, 102)]));
        let want = "       idx\n\
                    >      100    (id=1)\n\
                    x>     102    (id=2)\n\
                    x>     102    (id=3)\n";
        assert_eq!(got, want);
    }

    #[test]
    fn describe_marks_unknown_voters_with_a_question_mark() {
        let got = cfg(&[1, 2, 3]).describe(&acked(&[(1, 101), (3, 103)]));
        let want = "       idx\n\
                    x>     101    (id=1)\n\
                    ?        0    (id=2)\n\
                    xx>    103    (id=3)\n";
        assert_eq!(got, want);
    }

    /// The committed index the slow, obvious way: the highest acked index
    /// that a majority acked or exceeded.
    fn obvious_committed_index(c: &MajorityConfig, l: &BTreeMap<u64, u64>) -> u64 {
        if c.is_empty() {
            return u64::MAX;
        }
        let acked: Vec<u64> = c.iter().filter_map(|id| l.acked_index(id)).collect();
        let quorum = c.len() / 2 + 1;
        acked
            .iter()
            .copied()
            .filter(|&i| acked.iter().filter(|&&o| o >= i).count() >= quorum)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn committed_index_agrees_with_the_obvious_computation() {
        // xorshift: deterministic, so a failure replays.
        let mut s: u64 = 0x1234_5678_9abc_def1;
        let mut below = |n: u64| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s % n
        };
        for _ in 0..2000 {
            let c: MajorityConfig = (0..below(10)).map(|_| below(20)).collect();
            let l: BTreeMap<u64, u64> = (0..below(12)).map(|_| (below(20), below(10))).collect();
            assert_eq!(
                c.committed_index(&l),
                obvious_committed_index(&c, &l),
                "config {c} acked {l:?}"
            );
        }
    }
}
