//! Joint consensus: two majority configurations that must both agree. When
//! the outgoing half is empty the joint configuration behaves exactly like
//! its incoming half, which is how a non-joint configuration is represented.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{AckedIndexer, MajorityConfig, VoteResult};

/// The incoming (new) and outgoing (old) voter sets of a configuration.
/// The outgoing set is empty unless a joint transition is in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JointConfig {
    pub incoming: MajorityConfig,
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// A non-joint configuration of the given voters.
    pub fn new(incoming: MajorityConfig) -> JointConfig {
        JointConfig {
            incoming,
            outgoing: MajorityConfig::default(),
        }
    }

    /// Whether a joint transition is in progress (the outgoing half is not
    /// empty).
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Every voter of either half, ascending.
    pub fn ids(&self) -> BTreeSet<u64> {
        self.incoming.iter().chain(self.outgoing.iter()).collect()
    }

    /// Whether `id` votes in either half.
    pub fn contains(&self, id: u64) -> bool {
        self.incoming.contains(id) || self.outgoing.contains(id)
    }

    /// The highest index committed in both halves.
    pub fn committed_index<L: AckedIndexer + ?Sized>(&self, l: &L) -> u64 {
        self.incoming
            .committed_index(l)
            .min(self.outgoing.committed_index(l))
    }

    /// Won only if both halves won; lost as soon as either half lost.
    pub fn vote_result(&self, votes: &BTreeMap<u64, bool>) -> VoteResult {
        let r1 = self.incoming.vote_result(votes);
        let r2 = self.outgoing.vote_result(votes);
        if r1 == r2 {
            r1
        } else if r1 == VoteResult::Lost || r2 == VoteResult::Lost {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }

    /// etcd's picture of the acknowledged indexes of all voters of both
    /// halves, as if they formed one majority configuration.
    pub fn describe<L: AckedIndexer + ?Sized>(&self, l: &L) -> String {
        MajorityConfig::new(self.ids()).describe(l)
    }
}

impl fmt::Display for JointConfig {
    /// `(1 2 3)` when not joint, `(1 2 3)&&(1 2 4)` when joint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.outgoing.is_empty() {
            write!(f, "{}", self.incoming)
        } else {
            write!(f, "{}&&{}", self.incoming, self.outgoing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joint(incoming: &[u64], outgoing: &[u64]) -> JointConfig {
        JointConfig {
            incoming: incoming.iter().copied().collect(),
            outgoing: outgoing.iter().copied().collect(),
        }
    }

    #[test]
    fn non_joint_config_behaves_like_its_incoming_half() {
        let j = joint(&[1, 2, 3], &[]);
        let l: BTreeMap<u64, u64> = [(1, 4), (2, 6), (3, 8)].into_iter().collect();
        assert_eq!(j.committed_index(&l), 6);
        assert!(!j.is_joint());
        assert_eq!(j.to_string(), "(1 2 3)");
    }

    #[test]
    fn committed_index_is_the_minimum_of_both_halves() {
        let j = joint(&[1, 2, 3], &[3, 4, 5]);
        let l: BTreeMap<u64, u64> = [(1, 9), (2, 9), (3, 5), (4, 2), (5, 2)]
            .into_iter()
            .collect();
        assert_eq!(j.committed_index(&l), 2);
        assert_eq!(j.to_string(), "(1 2 3)&&(3 4 5)");
        assert_eq!(j.ids(), [1, 2, 3, 4, 5].into_iter().collect());
        assert!(j.contains(5) && j.contains(1) && !j.contains(6));
    }

    #[test]
    fn vote_needs_both_halves() {
        let j = joint(&[1, 2, 3], &[4, 5, 6]);
        let v = |p: &[(u64, bool)]| -> BTreeMap<u64, bool> { p.iter().copied().collect() };
        assert_eq!(
            j.vote_result(&v(&[(1, true), (2, true)])),
            VoteResult::Pending
        );
        assert_eq!(
            j.vote_result(&v(&[(1, true), (2, true), (4, true), (5, true)])),
            VoteResult::Won
        );
        assert_eq!(
            j.vote_result(&v(&[(1, true), (2, true), (4, false), (5, false)])),
            VoteResult::Lost
        );
        assert_eq!(
            j.vote_result(&v(&[(4, false), (5, false)])),
            VoteResult::Lost
        );
    }

    #[test]
    fn describe_covers_the_union_of_both_halves() {
        let j = joint(&[1], &[2]);
        let l: BTreeMap<u64, u64> = [(1, 3)].into_iter().collect();
        assert_eq!(
            j.describe(&l),
            "      idx\nx>      3    (id=1)\n?       0    (id=2)\n"
        );
    }
}
