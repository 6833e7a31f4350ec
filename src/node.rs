//! `Node`: what the upper layers (the client service, tests, tools) use
//! to drive one group. It lives on the group's shard, used by tasks of
//! that shard's executor (`!Send`, cheap to clone); each call acts on the
//! group's Raft node at once and rings the shard's loop, which does the
//! rest (Ready, the WAL, the network) in its next turn.
//!
//! A proposal completes once its entry is committed and applied here,
//! with the entry's index; or fails with a typed `ProposeError`: this
//! node is not the leader (with the leader it knows), the entry lost its
//! slot to another leader's (`Dropped`: applying the slot showed another
//! term), the group is at its limit of proposals in flight (`Busy`), it
//! took longer than `RuntimeConfig::request_timeout_ticks`, the shard is
//! stopping, its WAL failed, or its WAL has no room (`StorageFull`). Proposals are not forwarded to the leader:
//! a client sends them there (the error names it).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use bytes::Bytes;

use crate::log::ApplyOutcome;
use crate::raft::{self, StateType};
use crate::raftpb::{ConfChangeV2, ConfState, HardState};
use crate::shard::oneshot::{self, Receiver};
use crate::shard::state::Shard;
use crate::shard::waiters::{AppliedResult, encode_ctx};
use crate::shard::{Apply, Group, GroupStats};

/// Why a request to a group failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// This node does not lead the group; `leader` is the one it knows.
    NotLeader { leader: Option<u64> },
    /// The entry did not make it into the log (another leader's entry
    /// took its slot, or the leader dropped it: a transfer in progress, a
    /// configuration change already pending). Not applied; may be retried.
    Dropped,
    /// No answer within the request timeout; the entry may still commit.
    Timeout,
    /// The shard is stopping.
    ShuttingDown,
    /// The shard's WAL failed; the shard serves nothing more.
    StorageFailed(String),
    /// The shard's WAL has no room for its next segment (a full disk, or
    /// `RuntimeConfig::wal_max_disk_bytes`): nothing new is taken until
    /// there is room again; the member goes on (it hands leadership of
    /// its groups to others meanwhile), and catches up once room is back.
    /// Not in the log; may be retried, best at another member.
    StorageFull(String),
    /// The group's proposals in flight, or their bytes, are at their limit.
    Busy,
    /// A payload above `RuntimeConfig::max_entry_bytes`.
    TooLarge { bytes: usize, limit: usize },
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(l) } => write!(f, "not leader (leader: {l})"),
            ProposeError::NotLeader { leader: None } => write!(f, "not leader (no leader known)"),
            ProposeError::Dropped => write!(f, "proposal dropped"),
            ProposeError::Timeout => write!(f, "timed out"),
            ProposeError::ShuttingDown => write!(f, "shutting down"),
            ProposeError::StorageFailed(c) => write!(f, "storage failed: {c}"),
            ProposeError::StorageFull(c) => write!(f, "storage full: {c}"),
            ProposeError::Busy => write!(f, "busy: too many proposals in flight"),
            ProposeError::TooLarge { bytes, limit } => {
                write!(f, "entry of {bytes} bytes exceeds the limit of {limit}")
            }
        }
    }
}

impl std::error::Error for ProposeError {}

/// A proposal's entry, committed and applied here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The entry's Raft index.
    pub index: u64,
    /// What the state machine said the entry did (`Apply::apply`), if it
    /// said anything: for the log state machine, the batch's offsets, a
    /// duplicate's original ones, or a refusal.
    pub outcome: Option<ApplyOutcome>,
}

/// A group's state as its node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub group: u64,
    pub id: u64,
    pub role: StateType,
    pub leader: Option<u64>,
    pub hard_state: HardState,
    pub last_index: u64,
    /// Last index handed to the state machine.
    pub applied: u64,
    pub inflight_proposals: usize,
    pub inflight_bytes: u64,
    pub inflight_reads: usize,
    /// The configuration in force here (voters, learners, joint state).
    pub conf_state: ConfState,
    pub stats: GroupStats,
}

/// One group's driver handle, on the group's shard.
#[derive(Clone)]
pub struct Node {
    shard: Rc<Shard>,
    group: Rc<RefCell<Group>>,
}

impl Node {
    pub(crate) fn new(shard: Rc<Shard>, group: Rc<RefCell<Group>>) -> Node {
        Node { shard, group }
    }

    /// The group this node drives.
    pub fn group(&self) -> u64 {
        self.group.borrow().id
    }

    /// Proposes `data` as one entry; completes with its index once it is
    /// committed and applied on this node.
    pub async fn propose(&self, data: Bytes) -> Result<u64, ProposeError> {
        self.propose_applied(data).await.map(|a| a.index)
    }

    /// As `propose`, completing with the entry's index and what the state
    /// machine said applying it did (the server answers appends with it).
    pub async fn propose_applied(&self, data: Bytes) -> Result<Applied, ProposeError> {
        let rx = self.start(data.len(), false, |raw| raw.propose(data))?;
        rx.await.unwrap_or(Err(ProposeError::ShuttingDown))
    }

    /// Proposes a configuration change; completes with its index once it
    /// is committed and applied (the new configuration in force here).
    pub async fn propose_conf_change(&self, cc: ConfChangeV2) -> Result<u64, ProposeError> {
        let bytes = prost::Message::encoded_len(&cc);
        // Done only if its slot holds a change that took effect: a leader
        // with a change still pending puts an empty entry there instead.
        let rx = self.start(bytes, true, |raw| raw.propose_conf_change(&cc))?;
        let applied = rx.await.unwrap_or(Err(ProposeError::ShuttingDown))?;
        Ok(applied.index)
    }

    /// The index a linearizable read must wait for (the leader's commit
    /// index, confirmed by a quorum, ReadIndex): once this node has
    /// applied it, its state machine answers the read. Followers ask the
    /// leader.
    pub async fn read_index(&self) -> Result<u64, ProposeError> {
        self.shard.check()?;
        let rx = {
            let mut g = self.group.borrow_mut();
            if !g.is_leader() && g.leader().is_none() {
                return Err(ProposeError::NotLeader { leader: None });
            }
            let (tx, rx) = oneshot::channel();
            let deadline = self.shard.now() + self.shard.cfg.request_timeout_ticks;
            let ctx = g.reads.push(deadline, tx);
            g.raw.read_index(Bytes::copy_from_slice(&encode_ctx(ctx)));
            self.shard.mark_dirty(&mut g, &self.group);
            rx
        };
        rx.await.unwrap_or(Err(ProposeError::ShuttingDown))
    }

    /// Asks this node, the leader, to hand leadership to `transferee`.
    /// Returns at once; the transfer happens (or not) within an election
    /// timeout, as `status` then shows.
    pub fn transfer_leader(&self, transferee: u64) -> Result<(), ProposeError> {
        self.shard.check()?;
        let mut g = self.group.borrow_mut();
        if !g.is_leader() {
            return Err(ProposeError::NotLeader { leader: g.leader() });
        }
        g.raw.transfer_leader(transferee);
        self.shard.mark_dirty(&mut g, &self.group);
        Ok(())
    }

    /// Starts an election now (a pre-vote first).
    pub fn campaign(&self) -> Result<(), ProposeError> {
        self.shard.check()?;
        let mut g = self.group.borrow_mut();
        // Refused by the core only for a node that cannot campaign (a
        // learner, a leader): nothing to do then.
        let _ = g.raw.campaign();
        self.shard.mark_dirty(&mut g, &self.group);
        Ok(())
    }

    /// Whether this replica leads the group now.
    pub fn is_leader(&self) -> bool {
        self.group.borrow().is_leader()
    }

    pub fn status(&self) -> NodeStatus {
        let g = self.group.borrow();
        let st = g.raw.basic_status();
        NodeStatus {
            group: g.id,
            id: st.id,
            role: st.soft_state.raft_state,
            leader: g.leader(),
            hard_state: st.hard_state,
            last_index: g.raw.raft.raft_log.last_index(),
            applied: g.applied,
            inflight_proposals: g.proposals.len(),
            inflight_bytes: g.proposals.bytes(),
            inflight_reads: g.reads.len(),
            conf_state: g.raw.raft.trk.conf_state(),
            stats: g.stats,
        }
    }

    /// Runs `f` on the group's state machine (tests and tools).
    pub fn with_apply<R>(&self, f: impl FnOnce(&dyn Apply) -> R) -> R {
        f(self.group.borrow().apply.as_ref())
    }

    /// The checks every proposal passes, then the proposal itself (`prop`
    /// on the group's Raft node) and its registration.
    fn start(
        &self,
        bytes: usize,
        conf: bool,
        prop: impl FnOnce(&mut raft::RawNode<crate::wal::WalStorage>) -> raft::Result<()>,
    ) -> Result<Receiver<AppliedResult>, ProposeError> {
        self.shard.check()?;
        let cfg = &self.shard.cfg;
        if bytes > cfg.max_entry_bytes {
            return Err(ProposeError::TooLarge {
                bytes,
                limit: cfg.max_entry_bytes,
            });
        }
        let mut g = self.group.borrow_mut();
        if !g.is_leader() {
            return Err(ProposeError::NotLeader { leader: g.leader() });
        }
        // Fail fast: the entry could not be made durable here (a quorum of
        // others could commit it, but this leader would answer only once
        // it has it too). The loop hands leadership away meanwhile.
        if let Some(c) = self.shard.storage_full.borrow().as_ref() {
            return Err(ProposeError::StorageFull(c.clone()));
        }
        if g.proposals.len() >= cfg.max_inflight_proposals
            || g.proposals.bytes() + bytes as u64 > cfg.max_uncommitted_bytes
        {
            return Err(ProposeError::Busy);
        }
        let term = g.raw.raft.term;
        prop(&mut g.raw).map_err(|_| ProposeError::Dropped)?;
        let index = g.raw.raft.raft_log.last_index();
        let (tx, rx) = oneshot::channel();
        let deadline = self.shard.now() + cfg.request_timeout_ticks;
        g.proposals
            .push_kind(index, term, bytes as u64, deadline, tx, conf);
        self.shard.mark_dirty(&mut g, &self.group);
        Ok(rx)
    }
}
