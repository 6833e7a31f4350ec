//! Progress tracking: the active configuration (voters, learners, joint
//! state) and what the leader knows about every peer in it. It answers the
//! questions the leader asks of the group as a whole (what is committed, is a
//! quorum active, who won the election) by handing its data to `quorum`.
//!
//! It owns no log and sends nothing; configuration changes are computed by
//! `confchange` and installed here by the caller.

mod inflights;
mod progress;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::raft::quorum::{AckedIndexer, JointConfig, MajorityConfig, VoteResult};
use crate::raftpb::ConfState;

pub use inflights::Inflights;
pub use progress::{Progress, ProgressMap, progress_map_to_string};
pub use state::ProgressState;

/// The configuration a `ProgressTracker` enforces.
///
/// Invariant: no id is both a learner and a voter (in either half).
/// A voter being demoted while joint waits in `learners_next` until the
/// joint configuration is left, then becomes a learner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerConfig {
    pub voters: JointConfig,
    /// When joint: leave the joint configuration automatically once it is
    /// committed, instead of waiting for the application to ask.
    pub auto_leave: bool,
    pub learners: BTreeSet<u64>,
    /// Voters of the outgoing half that become learners on leaving the joint
    /// configuration.
    pub learners_next: BTreeSet<u64>,
}

impl fmt::Display for TrackerConfig {
    /// etcd's form, e.g. `voters=(1 2)&&(1) learners=(3) learners_next=(4)
    /// autoleave`; empty learner sets are left out (etcd keeps them nil).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "voters={}", self.voters)?;
        if !self.learners.is_empty() {
            write!(
                f,
                " learners={}",
                MajorityConfig::new(self.learners.clone())
            )?;
        }
        if !self.learners_next.is_empty() {
            write!(
                f,
                " learners_next={}",
                MajorityConfig::new(self.learners_next.clone())
            )?;
        }
        if self.auto_leave {
            f.write_str(" autoleave")?;
        }
        Ok(())
    }
}

/// Looks up each voter's acknowledged index in a progress map (its
/// `matched`).
pub struct MatchAckIndexer<'a>(pub &'a ProgressMap);

impl AckedIndexer for MatchAckIndexer<'_> {
    fn acked_index(&self, id: u64) -> Option<u64> {
        self.0.get(&id).map(|pr| pr.matched)
    }
}

/// The active configuration and the progress of every peer in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgressTracker {
    pub config: TrackerConfig,
    pub progress: ProgressMap,
    /// Votes received in the current election (id -> granted).
    pub votes: BTreeMap<u64, bool>,
    /// The inflight window bounds given to every new `Progress`.
    pub max_inflight: usize,
    pub max_inflight_bytes: u64,
}

impl ProgressTracker {
    /// An empty tracker whose peers will get inflight windows of
    /// `max_inflight` messages and `max_inflight_bytes` bytes (0 = no bound).
    pub fn new(max_inflight: usize, max_inflight_bytes: u64) -> ProgressTracker {
        ProgressTracker {
            max_inflight,
            max_inflight_bytes,
            ..ProgressTracker::default()
        }
    }

    /// The active configuration as a `ConfState` (all lists ascending).
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.config.voters.incoming.slice(),
            voters_outgoing: self.config.voters.outgoing.slice(),
            learners: self.config.learners.iter().copied().collect(),
            learners_next: self.config.learners_next.iter().copied().collect(),
            auto_leave: self.config.auto_leave,
        }
    }

    /// Whether the only voter is a single node (the leader itself), with no
    /// joint transition in progress.
    pub fn is_singleton(&self) -> bool {
        self.config.voters.incoming.len() == 1 && self.config.voters.outgoing.is_empty()
    }

    /// The highest index the voters have acknowledged by quorum.
    pub fn committed(&self) -> u64 {
        self.config
            .voters
            .committed_index(&MatchAckIndexer(&self.progress))
    }

    /// Calls `f` for every tracked peer, in ascending id order.
    pub fn visit(&mut self, mut f: impl FnMut(u64, &mut Progress)) {
        for (&id, pr) in self.progress.iter_mut() {
            f(id, pr);
        }
    }

    /// Whether the voters that were recently active form a quorum.
    pub fn quorum_active(&self) -> bool {
        let votes: BTreeMap<u64, bool> = self
            .progress
            .iter()
            .filter(|(_, pr)| !pr.is_learner)
            .map(|(&id, pr)| (id, pr.recent_active))
            .collect();
        self.config.voters.vote_result(&votes) == VoteResult::Won
    }

    /// The voters of both halves, ascending.
    pub fn voter_nodes(&self) -> Vec<u64> {
        self.config.voters.ids().into_iter().collect()
    }

    /// The learners, ascending.
    pub fn learner_nodes(&self) -> Vec<u64> {
        self.config.learners.iter().copied().collect()
    }

    /// Forgets the votes of the previous election.
    pub fn reset_votes(&mut self) {
        self.votes.clear();
    }

    /// Records `id`'s vote; a peer's first answer in an election is final.
    pub fn record_vote(&mut self, id: u64, granted: bool) {
        self.votes.entry(id).or_insert(granted);
    }

    /// (granted, rejected, result): the votes of tracked voters (learners and
    /// untracked ids are not counted, as they are informational only) and the
    /// outcome under the active configuration.
    pub fn tally_votes(&self) -> (usize, usize, VoteResult) {
        let (mut granted, mut rejected) = (0, 0);
        for (id, pr) in &self.progress {
            if pr.is_learner {
                continue;
            }
            match self.votes.get(id) {
                Some(true) => granted += 1,
                Some(false) => rejected += 1,
                None => {}
            }
        }
        (
            granted,
            rejected,
            self.config.voters.vote_result(&self.votes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(voters: &[u64], learners: &[u64]) -> ProgressTracker {
        let mut t = ProgressTracker::new(10, 0);
        for &id in voters {
            t.config.voters.incoming.insert(id);
            t.progress
                .insert(id, Progress::new(1, Inflights::new(10, 0)));
        }
        for &id in learners {
            t.config.learners.insert(id);
            let mut pr = Progress::new(1, Inflights::new(10, 0));
            pr.is_learner = true;
            t.progress.insert(id, pr);
        }
        t
    }

    #[test]
    fn config_display_matches_etcd() {
        let mut c = TrackerConfig::default();
        assert_eq!(c.to_string(), "voters=()");
        c.voters.incoming = [1, 2].into_iter().collect();
        c.voters.outgoing = [1, 3].into_iter().collect();
        c.learners.insert(4);
        c.learners_next.insert(3);
        c.auto_leave = true;
        assert_eq!(
            c.to_string(),
            "voters=(1 2)&&(1 3) learners=(4) learners_next=(3) autoleave"
        );
    }

    #[test]
    fn conf_state_lists_every_role() {
        let mut t = tracker(&[3, 1], &[7]);
        t.config.voters.outgoing = [1, 2].into_iter().collect();
        t.config.learners_next.insert(2);
        t.config.auto_leave = true;
        assert_eq!(
            t.conf_state(),
            ConfState {
                voters: vec![1, 3],
                learners: vec![7],
                voters_outgoing: vec![1, 2],
                learners_next: vec![2],
                auto_leave: true,
            }
        );
    }

    #[test]
    fn singleton_means_one_voter_and_not_joint() {
        assert!(tracker(&[1], &[2]).is_singleton());
        assert!(!tracker(&[1, 2], &[]).is_singleton());
        let mut t = tracker(&[1], &[]);
        t.config.voters.outgoing.insert(2);
        assert!(!t.is_singleton());
    }

    #[test]
    fn committed_uses_voters_match_and_ignores_learners() {
        let mut t = tracker(&[1, 2, 3], &[4]);
        for (id, m) in [(1, 5), (2, 3), (3, 1), (4, 100)] {
            t.progress.get_mut(&id).unwrap().matched = m;
        }
        assert_eq!(t.committed(), 3);
    }

    #[test]
    fn visit_goes_in_ascending_id_order() {
        let mut t = tracker(&[9, 3, 5], &[1]);
        let mut seen = Vec::new();
        t.visit(|id, _| seen.push(id));
        assert_eq!(seen, vec![1, 3, 5, 9]);
    }

    #[test]
    fn quorum_active_counts_recently_active_voters_only() {
        let mut t = tracker(&[1, 2, 3], &[4]);
        t.progress.get_mut(&1).unwrap().recent_active = true;
        t.progress.get_mut(&4).unwrap().recent_active = true;
        assert!(!t.quorum_active());
        t.progress.get_mut(&2).unwrap().recent_active = true;
        assert!(t.quorum_active());
    }

    #[test]
    fn voter_and_learner_nodes_are_sorted() {
        let mut t = tracker(&[3, 1], &[8, 6]);
        t.config.voters.outgoing = [2, 3].into_iter().collect();
        assert_eq!(t.voter_nodes(), vec![1, 2, 3]);
        assert_eq!(t.learner_nodes(), vec![6, 8]);
    }

    #[test]
    fn first_vote_of_a_peer_is_final_and_tally_skips_learners() {
        let mut t = tracker(&[1, 2, 3], &[4]);
        t.record_vote(1, true);
        t.record_vote(1, false);
        t.record_vote(4, true);
        assert_eq!(t.tally_votes(), (1, 0, VoteResult::Pending));
        t.record_vote(2, false);
        t.record_vote(3, false);
        assert_eq!(t.tally_votes(), (1, 2, VoteResult::Lost));
        t.reset_votes();
        t.record_vote(2, true);
        t.record_vote(3, true);
        assert_eq!(t.tally_votes(), (2, 0, VoteResult::Won));
    }
}
