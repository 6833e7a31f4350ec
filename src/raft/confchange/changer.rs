//! The `Changer`: applies simple (one voter at a time) and joint consensus
//! configuration changes to a copy of a tracker's configuration, checking
//! the configuration's invariants before and after.

use std::collections::BTreeSet;

use crate::raft::tracker::{Inflights, Progress, ProgressMap, ProgressTracker, TrackerConfig};
use crate::raftpb::{ConfChangeSingle, ConfChangeType};

/// What a successful change produces: the new configuration and progress
/// map, to be installed by the caller.
pub type ChangeResult = Result<(TrackerConfig, ProgressMap), String>;

/// Computes configuration changes against a tracker it only reads.
pub struct Changer<'a> {
    pub tracker: &'a ProgressTracker,
    /// The leader's last log index: where a newly added peer is probed.
    pub last_index: u64,
}

impl Changer<'_> {
    /// Enters a joint configuration: the current voters become the outgoing
    /// half, `ccs` are applied to the incoming half. With `auto_leave` the
    /// joint configuration is to be left automatically once committed.
    pub fn enter_joint(&self, auto_leave: bool, ccs: &[ConfChangeSingle]) -> ChangeResult {
        let (mut cfg, mut trk) = self.check_and_copy()?;
        if cfg.voters.is_joint() {
            return Err("config is already joint".to_string());
        }
        if cfg.voters.incoming.is_empty() {
            // Adding voters to an empty configuration is allowed (bootstrap,
            // tests), but there is nothing to keep deciding while joint.
            return Err("can't make a zero-voter config joint".to_string());
        }
        cfg.voters.outgoing = cfg.voters.incoming.clone();
        self.apply(&mut cfg, &mut trk, ccs)?;
        cfg.auto_leave = auto_leave;
        check_and_return(cfg, trk)
    }

    /// Leaves a joint configuration: the outgoing half is dropped, staged
    /// learners (`learners_next`) become learners, and peers that were only
    /// outgoing voters lose their progress.
    pub fn leave_joint(&self) -> ChangeResult {
        let (mut cfg, mut trk) = self.check_and_copy()?;
        if !cfg.voters.is_joint() {
            return Err("can't leave a non-joint config".to_string());
        }
        for id in std::mem::take(&mut cfg.learners_next) {
            cfg.learners.insert(id);
            // check_and_copy verified every staged learner has a progress.
            if let Some(pr) = trk.get_mut(&id) {
                pr.is_learner = true;
            }
        }
        for id in cfg.voters.outgoing.iter() {
            if !cfg.voters.incoming.contains(id) && !cfg.learners.contains(&id) {
                trk.remove(&id);
            }
        }
        cfg.voters.outgoing.clear();
        cfg.auto_leave = false;
        check_and_return(cfg, trk)
    }

    /// Applies `ccs` without joint consensus. In aggregate they may change
    /// the set of voters by at most one id.
    pub fn simple(&self, ccs: &[ConfChangeSingle]) -> ChangeResult {
        let (mut cfg, mut trk) = self.check_and_copy()?;
        if cfg.voters.is_joint() {
            return Err("can't apply simple config change in joint config".to_string());
        }
        self.apply(&mut cfg, &mut trk, ccs)?;
        let before = self.tracker.config.voters.incoming.ids();
        let after = cfg.voters.incoming.ids();
        if before.symmetric_difference(after).count() > 1 {
            return Err("more than one voter changed without entering joint config".to_string());
        }
        check_and_return(cfg, trk)
    }

    /// Applies each change to the incoming half (the outgoing half, if any,
    /// is the frozen old configuration).
    fn apply(
        &self,
        cfg: &mut TrackerConfig,
        trk: &mut ProgressMap,
        ccs: &[ConfChangeSingle],
    ) -> Result<(), String> {
        for cc in ccs {
            if cc.node_id == 0 {
                // Applications zero the node id of a change they decided not
                // to carry out; such a change is a no-op.
                continue;
            }
            match ConfChangeType::try_from(cc.r#type) {
                Ok(ConfChangeType::ConfChangeAddNode) => self.make_voter(cfg, trk, cc.node_id),
                Ok(ConfChangeType::ConfChangeAddLearnerNode) => {
                    self.make_learner(cfg, trk, cc.node_id)
                }
                Ok(ConfChangeType::ConfChangeRemoveNode) => remove(cfg, trk, cc.node_id),
                Ok(ConfChangeType::ConfChangeUpdateNode) => {}
                Err(_) => return Err(format!("unexpected conf type {}", cc.r#type)),
            }
        }
        if cfg.voters.incoming.is_empty() {
            return Err("removed all voters".to_string());
        }
        Ok(())
    }

    /// Adds `id` as a voter of the incoming half, or promotes it.
    fn make_voter(&self, cfg: &mut TrackerConfig, trk: &mut ProgressMap, id: u64) {
        let Some(pr) = trk.get_mut(&id) else {
            self.init_progress(cfg, trk, id, false);
            return;
        };
        pr.is_learner = false;
        cfg.learners.remove(&id);
        cfg.learners_next.remove(&id);
        cfg.voters.incoming.insert(id);
    }

    /// Adds `id` as a learner, or demotes it. A voter of the outgoing half
    /// cannot be a learner at the same time, so its demotion is staged in
    /// `learners_next` until the joint configuration is left.
    fn make_learner(&self, cfg: &mut TrackerConfig, trk: &mut ProgressMap, id: u64) {
        let Some(pr) = trk.get(&id) else {
            self.init_progress(cfg, trk, id, true);
            return;
        };
        if pr.is_learner {
            return;
        }
        // Drop it as a voter of the incoming half but keep its progress: the
        // leader's knowledge of its log is still good.
        let mut pr = pr.clone();
        remove(cfg, trk, id);
        if cfg.voters.outgoing.contains(id) {
            cfg.learners_next.insert(id);
        } else {
            pr.is_learner = true;
            cfg.learners.insert(id);
        }
        trk.insert(id, pr);
    }

    /// Starts tracking a new peer, probed at the last index.
    fn init_progress(
        &self,
        cfg: &mut TrackerConfig,
        trk: &mut ProgressMap,
        id: u64,
        is_learner: bool,
    ) {
        if is_learner {
            cfg.learners.insert(id);
        } else {
            cfg.voters.incoming.insert(id);
        }
        let mut pr = Progress::new(
            // Invariant matched (0) < next_idx.
            self.last_index.max(1),
            Inflights::new(self.tracker.max_inflight, self.tracker.max_inflight_bytes),
        );
        pr.is_learner = is_learner;
        // A new peer has had no chance to talk to us yet; counting it as
        // inactive would let CheckQuorum depose the leader right away.
        pr.recent_active = true;
        trk.insert(id, pr);
    }

    fn check_and_copy(&self) -> Result<(TrackerConfig, ProgressMap), String> {
        check_and_return(self.tracker.config.clone(), self.tracker.progress.clone())
    }
}

/// Removes `id` as a voter of the incoming half and as a learner. Its
/// progress stays while it is still an outgoing voter.
fn remove(cfg: &mut TrackerConfig, trk: &mut ProgressMap, id: u64) {
    if !trk.contains_key(&id) {
        return;
    }
    cfg.voters.incoming.remove(id);
    cfg.learners.remove(&id);
    cfg.learners_next.remove(&id);
    if !cfg.voters.outgoing.contains(id) {
        trk.remove(&id);
    }
}

/// Checks that a configuration and progress map fit together: every member
/// has a progress, learners and voters do not overlap, staged learners are
/// outgoing voters not yet marked as learners, and a non-joint configuration
/// has neither staged learners nor auto-leave. The empty configuration is
/// allowed (it is where bootstrap starts).
fn check_invariants(cfg: &TrackerConfig, trk: &ProgressMap) -> Result<(), String> {
    let members: BTreeSet<u64> = cfg
        .voters
        .ids()
        .into_iter()
        .chain(cfg.learners.iter().copied())
        .chain(cfg.learners_next.iter().copied())
        .collect();
    for id in members {
        if !trk.contains_key(&id) {
            return Err(format!("no progress for {id}"));
        }
    }
    for &id in &cfg.learners_next {
        if !cfg.voters.outgoing.contains(id) {
            return Err(format!("{id} is in LearnersNext, but not Voters[1]"));
        }
        if trk[&id].is_learner {
            return Err(format!(
                "{id} is in LearnersNext, but is already marked as learner"
            ));
        }
    }
    for &id in &cfg.learners {
        if cfg.voters.outgoing.contains(id) {
            return Err(format!("{id} is in Learners and Voters[1]"));
        }
        if cfg.voters.incoming.contains(id) {
            return Err(format!("{id} is in Learners and Voters[0]"));
        }
        if !trk[&id].is_learner {
            return Err(format!("{id} is in Learners, but is not marked as learner"));
        }
    }
    if !cfg.voters.is_joint() {
        if !cfg.learners_next.is_empty() {
            return Err("cfg.LearnersNext must be nil when not joint".to_string());
        }
        if cfg.auto_leave {
            return Err("AutoLeave must be false when not joint".to_string());
        }
    }
    Ok(())
}

fn check_and_return(cfg: TrackerConfig, trk: ProgressMap) -> ChangeResult {
    check_invariants(&cfg, &trk)?;
    Ok((cfg, trk))
}

/// The changes as etcd describes them: `ConfChangeAddNode(1)
/// ConfChangeRemoveNode(2)`.
pub fn describe(ccs: &[ConfChangeSingle]) -> String {
    ccs.iter()
        .map(|cc| {
            let name = ConfChangeType::try_from(cc.r#type)
                .map(|t| t.as_str_name().to_string())
                .unwrap_or_else(|_| cc.r#type.to_string());
            format!("{name}({})", cc.node_id)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::tracker::ProgressState;
    use crate::raftpb::conf_changes_from_string;

    fn ccs(s: &str) -> Vec<ConfChangeSingle> {
        conf_changes_from_string(s).unwrap()
    }

    /// Applies `f` to a Changer over `t` and installs the result.
    fn step(
        t: &mut ProgressTracker,
        last_index: u64,
        f: impl FnOnce(&Changer) -> ChangeResult,
    ) -> Result<(), String> {
        let (config, progress) = f(&Changer {
            tracker: t,
            last_index,
        })?;
        t.config = config;
        t.progress = progress;
        Ok(())
    }

    fn tracker_with(voters: &str) -> ProgressTracker {
        let mut t = ProgressTracker::new(10, 0);
        for cc in ccs(voters) {
            step(&mut t, 1, |c| c.simple(&[cc])).unwrap();
        }
        t
    }

    #[test]
    fn simple_adds_a_voter_probed_at_the_last_index() {
        let mut t = tracker_with("v1");
        step(&mut t, 7, |c| c.simple(&ccs("v2"))).unwrap();
        assert_eq!(t.config.to_string(), "voters=(1 2)");
        let pr = &t.progress[&2];
        assert_eq!(pr.state, ProgressState::Probe);
        assert_eq!((pr.matched, pr.next_idx), (0, 7));
        assert!(pr.recent_active, "a new peer must not count as inactive");
        assert!(!pr.ins.full());
    }

    #[test]
    fn simple_refuses_to_change_two_voters_at_once() {
        let t = tracker_with("v1 v2");
        let chg = Changer {
            tracker: &t,
            last_index: 1,
        };
        let err = "more than one voter changed without entering joint config";
        assert_eq!(chg.simple(&ccs("v3 v4")).unwrap_err(), err);
        assert_eq!(chg.simple(&ccs("r1 v3")).unwrap_err(), err);
        // Removing every voter is refused whatever else happens.
        assert_eq!(chg.simple(&ccs("r2 r1")).unwrap_err(), "removed all voters");
        // Adding learners does not change the voters.
        assert!(chg.simple(&ccs("l3 l4 l5")).is_ok());
    }

    #[test]
    fn joint_transitions_are_checked() {
        let empty = ProgressTracker::new(10, 0);
        let chg = Changer {
            tracker: &empty,
            last_index: 0,
        };
        assert_eq!(
            chg.enter_joint(false, &ccs("v1")).unwrap_err(),
            "can't make a zero-voter config joint"
        );
        assert_eq!(
            chg.leave_joint().unwrap_err(),
            "can't leave a non-joint config"
        );

        let mut t = tracker_with("v1");
        step(&mut t, 2, |c| c.enter_joint(true, &ccs("v2 v3"))).unwrap();
        assert_eq!(t.config.to_string(), "voters=(1 2 3)&&(1) autoleave");
        let chg = Changer {
            tracker: &t,
            last_index: 3,
        };
        assert_eq!(
            chg.enter_joint(false, &ccs("v4")).unwrap_err(),
            "config is already joint"
        );
        assert_eq!(
            chg.simple(&ccs("v4")).unwrap_err(),
            "can't apply simple config change in joint config"
        );
    }

    #[test]
    fn demoting_an_outgoing_voter_waits_for_leave_joint_and_keeps_progress() {
        let mut t = tracker_with("v1 v2");
        t.progress.get_mut(&2).unwrap().matched = 5;
        step(&mut t, 9, |c| c.enter_joint(false, &ccs("l2 v3"))).unwrap();
        assert_eq!(
            t.config.to_string(),
            "voters=(1 3)&&(1 2) learners_next=(2)"
        );
        assert!(!t.progress[&2].is_learner);

        step(&mut t, 9, |c| c.leave_joint()).unwrap();
        assert_eq!(t.config.to_string(), "voters=(1 3) learners=(2)");
        assert!(t.progress[&2].is_learner);
        assert_eq!(
            t.progress[&2].matched, 5,
            "the demoted peer's progress survives"
        );
    }

    #[test]
    fn leaving_joint_forgets_voters_that_were_only_outgoing() {
        let mut t = tracker_with("v1 v2 v3");
        step(&mut t, 4, |c| c.enter_joint(false, &ccs("r3 v4"))).unwrap();
        assert!(t.progress.contains_key(&3), "still an outgoing voter");
        step(&mut t, 4, |c| c.leave_joint()).unwrap();
        assert_eq!(t.config.to_string(), "voters=(1 2 4)");
        assert_eq!(
            t.progress.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        assert!(!t.config.auto_leave);
    }

    #[test]
    fn zero_node_ids_are_skipped_and_unknown_types_refused() {
        let t = tracker_with("v1");
        let chg = Changer {
            tracker: &t,
            last_index: 1,
        };
        let (cfg, _) = chg.simple(&ccs("v0 r0 l0")).unwrap();
        assert_eq!(cfg, t.config);
        let bad = ConfChangeSingle {
            r#type: 9,
            node_id: 2,
        };
        assert_eq!(chg.simple(&[bad]).unwrap_err(), "unexpected conf type 9");
    }

    #[test]
    fn a_broken_input_configuration_is_reported() {
        let mut t = tracker_with("v1");
        t.config.voters.incoming.insert(2);
        let chg = Changer {
            tracker: &t,
            last_index: 1,
        };
        assert_eq!(chg.simple(&ccs("v3")).unwrap_err(), "no progress for 2");

        let mut t = tracker_with("v1 l2");
        t.progress.get_mut(&2).unwrap().is_learner = false;
        let chg = Changer {
            tracker: &t,
            last_index: 1,
        };
        assert_eq!(
            chg.simple(&[]).unwrap_err(),
            "2 is in Learners, but is not marked as learner"
        );

        let mut t = tracker_with("v1");
        t.config.auto_leave = true;
        let chg = Changer {
            tracker: &t,
            last_index: 1,
        };
        assert_eq!(
            chg.leave_joint().unwrap_err(),
            "AutoLeave must be false when not joint"
        );
    }

    /// A small deterministic generator (xorshift), so property checks replay.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn simple_changes_one_at_a_time_equal_one_joint_change() {
        // Any list of changes, applied one by one with `simple`, ends where
        // entering and leaving a joint configuration with the whole list
        // ends (with or without auto-leave). Node 1 stays a voter throughout
        // so that no step removes all voters.
        let types = [
            ConfChangeType::ConfChangeAddNode,
            ConfChangeType::ConfChangeRemoveNode,
            ConfChangeType::ConfChangeUpdateNode,
            ConfChangeType::ConfChangeAddLearnerNode,
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let mut setup = vec![ConfChangeSingle {
                r#type: ConfChangeType::ConfChangeAddNode as i32,
                node_id: 1,
            }];
            for _ in 0..1 + rng.below(5) {
                setup.push(ConfChangeSingle {
                    r#type: ConfChangeType::ConfChangeAddNode as i32,
                    node_id: 1 + rng.below(5),
                });
            }
            let changes: Vec<ConfChangeSingle> = (0..1 + rng.below(9))
                .map(|_| ConfChangeSingle {
                    r#type: types[rng.below(4) as usize] as i32,
                    node_id: 2 + rng.below(9),
                })
                .collect();

            let mut base = ProgressTracker::new(10, 0);
            for cc in &setup {
                step(&mut base, 10, |c| c.simple(std::slice::from_ref(cc))).unwrap();
            }

            let mut simple = base.clone();
            for cc in &changes {
                step(&mut simple, 10, |c| c.simple(std::slice::from_ref(cc))).unwrap();
            }

            let mut joint = base.clone();
            let mut auto = base.clone();
            step(&mut joint, 10, |c| c.enter_joint(false, &changes)).unwrap();
            step(&mut auto, 10, |c| c.enter_joint(true, &changes)).unwrap();
            assert!(auto.config.auto_leave);
            auto.config.auto_leave = false;
            assert_eq!(
                auto, joint,
                "round {round}: auto-leave changes only the flag"
            );
            step(&mut joint, 10, |c| c.leave_joint()).unwrap();

            assert_eq!(
                simple.config,
                joint.config,
                "round {round}: setup {} changes {}",
                describe(&setup),
                describe(&changes)
            );
            assert_eq!(simple.progress, joint.progress, "round {round}");
        }
    }

    #[test]
    fn describe_names_types_and_ids() {
        assert_eq!(
            describe(&ccs("v1 r2")),
            "ConfChangeAddNode(1) ConfChangeRemoveNode(2)"
        );
    }
}
