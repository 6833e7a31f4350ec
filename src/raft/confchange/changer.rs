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
