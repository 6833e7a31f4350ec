//! A group joining a member at run time: the member was not among the
//! group's replicas when the cluster was bootstrapped, and an operator is
//! about to add it (as a learner, then a voter) through a configuration
//! change on the group's leader. Owns only the creation of the empty
//! group on this shard; the change itself is the leader's
//! (`Node::propose_conf_change`), and catching up is Raft's.
//!
//! The new group starts from the configuration the group was bootstrapped
//! with (placement's replicas, which the leader holds as the metadata of
//! its log's index 0) and an empty log, so that replaying the leader's log
//! from index 1 rebuilds every configuration since, this member's own
//! addition included. A member not in that configuration never campaigns
//! (Raft's `promotable`), so the empty group only listens until the
//! change that adds it arrives. If the leader no longer holds index 1 it
//! sends a snapshot, whose configuration replaces this one.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::apply::Apply;
use super::group::{Group, raft_config};
use super::seed::os_random_u64;
use super::state::Shard;
use crate::node::Node;
use crate::raft;
use crate::raftpb::ConfState;
use crate::wal::{self, WalStorage};

/// Why a group could not join this shard.
#[derive(Debug)]
pub enum JoinError {
    /// The shard already runs the group.
    Exists { group: u64 },
    /// The configuration given already holds this member: it would start
    /// as a voter with an empty log (it could vote again in a term it
    /// voted in, or elect a leader missing committed entries).
    InConfig { group: u64, member: u64 },
    /// The shard's WAL failed, or it is stopping.
    Unavailable(String),
    /// The WAL refused the group's first record.
    Wal(wal::Error),
    /// The Raft node could not be built over it.
    Raft(raft::Error),
    /// No randomness for the group's election timer.
    Seed(std::io::Error),
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Exists { group } => write!(f, "group {group} already runs here"),
            JoinError::InConfig { group, member } => write!(
                f,
                "member {member} is in group {group}'s configuration already: it joins only by a change"
            ),
            JoinError::Unavailable(c) => write!(f, "shard unavailable: {c}"),
            JoinError::Wal(e) => write!(f, "{e}"),
            JoinError::Raft(e) => write!(f, "raft: {e:?}"),
            JoinError::Seed(e) => write!(f, "os randomness: {e}"),
        }
    }
}

impl std::error::Error for JoinError {}

impl Shard {
    /// Creates `group` here, empty, under its bootstrap configuration
    /// `bootstrap` (which must not contain this member), with `apply` as
    /// its state machine; returns its node. The configuration record goes
    /// out with the shard's next flush, ahead of anything the group
    /// writes (one WAL, in order).
    pub fn join_group(
        self: &Rc<Self>,
        group: u64,
        bootstrap: ConfState,
        apply: Box<dyn Apply>,
    ) -> Result<Node, JoinError> {
        if let Err(e) = self.check() {
            return Err(JoinError::Unavailable(e.to_string()));
        }
        if self.groups.borrow().contains_key(&group) {
            return Err(JoinError::Exists { group });
        }
        let member = self.member;
        if [
            &bootstrap.voters,
            &bootstrap.learners,
            &bootstrap.voters_outgoing,
        ]
        .iter()
        .any(|ids| ids.contains(&member))
        {
            return Err(JoinError::InConfig { group, member });
        }
        let _ = WalStorage::new(self.wal.clone(), group)
            .set_conf_state(bootstrap)
            .map_err(JoinError::Wal)?;
        let seed = os_random_u64().map_err(JoinError::Seed)?;
        let rc = raft_config(self.member, &self.cfg, seed);
        // Read contexts of this life start apart from any earlier one's.
        let read_ctx = os_random_u64().map_err(JoinError::Seed)?;
        let g = Group::new(group, &rc, self.wal.clone(), apply, None, read_ctx)
            .map_err(JoinError::Raft)?;
        let g = Rc::new(RefCell::new(g));
        self.groups.borrow_mut().insert(group, g.clone());
        self.mark_dirty(&mut g.borrow_mut(), &g);
        Ok(Node::new(self.clone(), g))
    }
}
