//! One group on its shard: the Raft node (`RawNode` over the shard's WAL,
//! in asynchronous-storage-writes mode), its state machine, and the
//! requests waiting on it. The loop drives it (`drain_ready`, `deliver`,
//! `tick`); `Node` proposes through it. Never awaits, never touches the
//! disk: storage work leaves as `MsgStorageAppend`s for the appender.

use std::cell::RefCell;
use std::rc::Rc;

use prost::Message as _;

use super::apply::{Apply, ApplyOutcome};
use super::config::RuntimeConfig;
use super::waiters::{Proposals, Reads, decode_ctx};
use crate::raft::{self, LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, RawNode, StateType};
use crate::raftpb::{ConfChange, ConfChangeV2, Entry, EntryType, Message};
use crate::wal::{Wal, WalStorage};

/// What collecting Readys produced for the loop to route.
#[derive(Default)]
pub struct Routed {
    /// Storage work (`MsgStorageAppend`), per group in the order given.
    pub appends: Vec<(u64, Message)>,
    /// Messages to peers that need nothing durable: sent at once.
    pub net: Vec<(u64, Message)>,
}

/// Counters of one group, for status pages and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    pub readys: u64,
    pub applied_entries: u64,
    /// Messages `RawNode::step` refused (stale, from unknown peers).
    pub step_errors: u64,
    /// Conf change entries that could not be decoded or applied.
    pub bad_conf_changes: u64,
    /// Times this replica learned of a leader other than the last one it
    /// knew (a term with no leader known in between does not count).
    pub leader_changes: u64,
    /// The last leader known (0: none yet).
    pub last_leader: u64,
}

pub struct Group {
    pub(crate) id: u64,
    pub(crate) raw: RawNode<WalStorage>,
    pub(crate) apply: Box<dyn Apply>,
    pub(crate) proposals: Proposals,
    pub(crate) reads: Reads,
    /// Last index handed to the state machine (or skipped under a
    /// snapshot).
    pub(crate) applied: u64,
    /// In the shard's list of groups to look at this turn.
    pub(crate) dirty: bool,
    /// The member placement would have lead the group (its first
    /// replica), if known.
    pub(crate) preferred: Option<u64>,
    /// When (in shard ticks) each peer was last heard from in this group:
    /// whether the preferred leader is alive, by what arrived, not by the
    /// core's `recent_active`, which its CheckQuorum clears once per
    /// election timeout (a check in phase with the clearing would never
    /// see it set).
    heard: Vec<(u64, u64)>,
    pub(crate) stats: GroupStats,
    /// What the state machine said of the entries of one apply call
    /// (reused: no allocation per entry).
    outcomes: Vec<ApplyOutcome>,
    /// Reused by `apply`: indexes of configuration changes in effect.
    conf_applied: Vec<u64>,
}

/// The Raft configuration every group of a shard runs with.
pub fn raft_config(member: u64, cfg: &RuntimeConfig, seed: u64) -> raft::Config {
    raft::Config {
        id: member,
        election_tick: cfg.election_ticks,
        heartbeat_tick: cfg.heartbeat_ticks,
        max_size_per_msg: cfg.max_size_per_msg,
        max_inflight_msgs: cfg.max_inflight_msgs,
        // A backstop only: `Node` refuses with `Busy` at half of it.
        max_uncommitted_entries_size: cfg.max_uncommitted_bytes.saturating_mul(2),
        check_quorum: true,
        pre_vote: true,
        random_seed: seed,
        async_storage_writes: true,
        ..Default::default()
    }
}

impl Group {
    pub fn new(
        id: u64,
        config: &raft::Config,
        wal: Rc<RefCell<Wal>>,
        apply: Box<dyn Apply>,
        preferred: Option<u64>,
    ) -> raft::Result<Group> {
        let raw = RawNode::new(config, WalStorage::new(wal, id))?;
        let applied = raw.raft.raft_log.applied;
        Ok(Group {
            id,
            raw,
            apply,
            proposals: Proposals::default(),
            reads: Reads::default(),
            applied,
            dirty: false,
            preferred,
            heard: Vec::new(),
            stats: GroupStats::default(),
            outcomes: Vec::new(),
            conf_applied: Vec::new(),
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateType::Leader
    }

    /// The leader this node knows of, if any.
    pub fn leader(&self) -> Option<u64> {
        let l = self.raw.raft.lead;
        (l != raft::NONE).then_some(l)
    }

    /// Steps a message that arrived from a peer at tick `now`.
    pub fn step_from_peer(&mut self, m: Message, now: u64) {
        match self.heard.iter_mut().find(|(id, _)| *id == m.from) {
            Some(h) => h.1 = now,
            // Bounded by the configuration's size: only members send.
            None => self.heard.push((m.from, now)),
        }
        self.step(m);
    }

    /// Steps a message from a peer or a storage response.
    pub fn step(&mut self, m: Message) {
        if self.raw.step(m).is_err() {
            self.stats.step_errors += 1;
        }
    }

    /// One tick of Raft's clock, and the deadlines of waiting requests.
    pub fn tick(&mut self, now: u64) {
        self.raw.tick();
        self.proposals.expire(now);
        self.reads.expire(now);
    }

    /// Hands leadership to the preferred leader if this node leads in its
    /// place and it is a voter caught up to the commit index, heard from
    /// since `since` (a transfer to a lagging or dead node would stall
    /// proposals for up to an election timeout). Returns whether a
    /// transfer started.
    pub fn rebalance(&mut self, since: u64) -> bool {
        let r = &self.raw.raft;
        let Some(pref) = self.preferred else {
            return false;
        };
        if r.state != StateType::Leader || pref == r.id || r.lead_transferee != raft::NONE {
            return false;
        }
        let committed = r.raft_log.committed;
        let caught_up = r
            .trk
            .progress
            .get(&pref)
            .is_some_and(|p| !p.is_learner && p.matched >= committed);
        let alive = self.heard.iter().any(|&(id, at)| id == pref && at >= since);
        let ready = caught_up && alive;
        if ready {
            self.raw.transfer_leader(pref);
        }
        ready
    }

    /// Takes one Ready, if there is one: storage work and peer messages
    /// into `out`, committed entries applied at once (they are durable
    /// here already: the core hands out only those), read answers given.
    /// Returns whether there was a Ready.
    pub fn drain_ready(&mut self, out: &mut Routed) -> bool {
        if !self.raw.has_ready() {
            return false;
        }
        self.stats.readys += 1;
        let mut rd = self.raw.ready();
        if let Some(ss) = &rd.soft_state {
            if ss.lead != raft::NONE && ss.lead != self.stats.last_leader {
                self.stats.leader_changes += 1;
                self.stats.last_leader = ss.lead;
            }
        }
        for rs in std::mem::take(&mut rd.read_states) {
            if let Some(ctx) = decode_ctx(&rs.request_ctx) {
                self.reads.answered(ctx, rs.index);
            }
        }
        let mut apply = None;
        for m in std::mem::take(&mut rd.messages) {
            match m.to {
                LOCAL_APPEND_THREAD => out.appends.push((self.id, m)),
                LOCAL_APPLY_THREAD => apply = Some(m),
                _ => out.net.push((self.id, m)),
            }
        }
        if let Some(m) = apply {
            self.apply_committed(m);
        }
        true
    }

    /// The apply thread's work, done inline: entries past what the state
    /// machine holds (and past a snapshot the core took but has not yet
    /// written) go to it, conf changes to Raft too; proposals settle; the
    /// response goes back to the core.
    fn apply_committed(&mut self, mut m: Message) {
        let pending_snap = self
            .raw
            .raft
            .raft_log
            .unstable
            .snapshot
            .as_ref()
            .and_then(|s| s.metadata.as_ref())
            .map_or(0, |md| md.index);
        let floor = self.applied.max(pending_snap);
        let entries = std::mem::take(&mut m.entries);
        let start = entries.partition_point(|e| e.index <= floor);
        let fresh = &entries[start..];
        // Indexes of the configuration changes that took effect (rare: no
        // allocation unless there is one).
        self.conf_applied.clear();
        for e in fresh {
            if e.r#type != EntryType::EntryNormal as i32 && self.apply_conf_change(e) {
                self.conf_applied.push(e.index);
            }
        }
        if !fresh.is_empty() {
            self.outcomes.clear();
            self.apply.apply(fresh, &mut self.outcomes);
            for (k, e) in fresh.iter().enumerate() {
                let conf = self.conf_applied.contains(&e.index);
                self.proposals
                    .applied_entry(e.index, e.term, self.outcomes.get(k), conf);
            }
            self.stats.applied_entries += fresh.len() as u64;
        }
        if let Some(last) = entries.last() {
            self.applied = self.applied.max(last.index);
        }
        for r in std::mem::take(&mut m.responses) {
            self.step(r);
        }
    }

    /// Applies a configuration change entry; whether it took effect.
    fn apply_conf_change(&mut self, e: &Entry) -> bool {
        let cc: Option<ConfChangeV2> = if e.r#type == EntryType::EntryConfChange as i32 {
            ConfChange::decode(e.data.clone()).ok().map(|c| c.as_v2())
        } else if e.r#type == EntryType::EntryConfChangeV2 as i32 {
            ConfChangeV2::decode(e.data.clone()).ok()
        } else {
            None
        };
        let applied = cc.is_some_and(|cc| self.raw.try_apply_conf_change(&cc).is_ok());
        if !applied {
            self.stats.bad_conf_changes += 1;
        }
        applied
    }
}
