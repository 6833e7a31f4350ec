//! Membership changes in `Raft`: applying a committed conf change (simple,
//! entering or leaving a joint configuration), switching the tracker to a
//! new configuration and reacting to it (stepping down when removed,
//! committing under the new quorum, probing new peers, aborting a transfer
//! to a removed node), and the check that no unapplied change blocks an
//! election.
//!
//! The configuration arithmetic itself lives in `confchange`; this file only
//! decides what the node does about the result.

use std::ops::ControlFlow;

use super::confchange::Changer;
use super::errors::{Error, Result};
use super::raft::{NONE, Raft, StateType};
use super::storage::Storage;
use super::tracker::{ProgressMap, TrackerConfig};
use crate::raftpb::{ConfChangeV2, ConfState, EntryType};

impl<S: Storage> Raft<S> {
    /// Applies a committed conf change to the tracker and returns the new
    /// ConfState. An invalid change is an error and leaves the configuration
    /// unchanged (etcd panics instead).
    pub fn apply_conf_change(&mut self, cc: &ConfChangeV2) -> Result<ConfState> {
        let changer = Changer {
            tracker: &self.trk,
            last_index: self.raft_log.last_index(),
        };
        let res = if cc.leave_joint() {
            changer.leave_joint()
        } else if let Some(auto_leave) = cc.enter_joint() {
            changer.enter_joint(auto_leave, &cc.changes)
        } else {
            changer.simple(&cc.changes)
        };
        let (cfg, prs) = res.map_err(Error::ConfChange)?;
        Ok(self.switch_to_config(cfg, prs))
    }

    /// Makes `cfg` / `prs` the current configuration and reacts to it.
    pub(crate) fn switch_to_config(&mut self, cfg: TrackerConfig, prs: ProgressMap) -> ConfState {
        self.trk.config = cfg;
        self.trk.progress = prs;

        let cs = self.trk.conf_state();
        let me = self.trk.progress.get(&self.id);
        let present = me.is_some();
        // Removal also clears the learner flag.
        self.is_learner = me.is_some_and(|pr| pr.is_learner);

        if (!present || self.is_learner) && self.state == StateType::Leader {
            // Removed or demoted while leading. Proposals are refused from
            // now on; stepping down is optional for compatibility.
            if self.step_down_on_removal {
                let term = self.term;
                self.become_follower(term, NONE);
            }
            return cs;
        }

        // The rest concerns a leader with peers.
        if self.state != StateType::Leader || cs.voters.is_empty() {
            return cs;
        }

        if self.maybe_commit() {
            // The new quorum commits more: tell everyone.
            self.bcast_append();
        } else {
            // Probe new peers now rather than at the next heartbeat or
            // proposal.
            self.bcast_append_if_nonempty();
        }
        // Reads waiting for heartbeat acks may have a quorum of the new
        // voters already; a removed voter would never answer the next
        // heartbeat round.
        self.answer_confirmed_reads();
        // A transfer to a node that is no longer a voter cannot complete.
        if self.lead_transferee != NONE && !self.trk.config.voters.contains(self.lead_transferee) {
            self.abort_leader_transfer();
        }
        cs
    }

    /// Whether a committed but unapplied entry is a conf change: campaigning
    /// then could make this node leader under a configuration it is about to
    /// leave. The scan reads the log in pages of the apply quota.
    pub(crate) fn has_unapplied_conf_changes(&self) -> bool {
        if self.raft_log.applied >= self.raft_log.committed {
            return false;
        }
        let mut found = false;
        let (lo, hi) = (self.raft_log.applied + 1, self.raft_log.committed + 1);
        let page_size = self.raft_log.max_applying_ents_size;
        let res = self.raft_log.scan(lo, hi, page_size, |ents| {
            if ents.iter().any(|e| {
                matches!(
                    e.r#type(),
                    EntryType::EntryConfChange | EntryType::EntryConfChangeV2
                )
            }) {
                found = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if let Err(e) = res {
            panic!("storage contract: committed entries [{lo}, {hi}) must be readable: {e}");
        }
        found
    }
}
