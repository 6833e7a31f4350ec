//! One group on its shard: the Raft node (`RawNode` over the shard's WAL,
//! in asynchronous-storage-writes mode), its state machine, and the
//! requests waiting on it. The loop drives it (`drain_ready`, `deliver`,
//! `tick`); `Node` proposes through it. Never awaits, never touches the
//! disk: storage work leaves as `MsgStorageAppend`s for the appender.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use prost::Message as _;

use super::apply::{Apply, ApplyOutcome, SnapshotFault};
use super::config::RuntimeConfig;
use super::waiters::{Proposals, Reads, decode_ctx};
use crate::raft::tracker::ProgressState;
use crate::raft::{
    self, LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, RawNode, SnapshotStatus, StateType,
};
use crate::raftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType};
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
    /// Snapshots this group built (and compacted its log to).
    pub snapshots_built: u64,
    /// Leader's snapshots installed here (a follower caught up by one).
    pub snapshots_installed: u64,
    /// MsgSnaps sent with their data.
    pub snapshots_sent: u64,
    /// MsgSnaps refused: data missing or refused by the state machine
    /// (received), or no data to send (sent).
    pub snapshots_refused: u64,
    /// Snapshot files (built or received) that found no room on the disk
    /// (each tried again later).
    pub snapshot_files_no_room: u64,
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
    /// The group's latest snapshot (its index and data): what a MsgSnap
    /// carries, and the base of the next one. Its index is the WAL's
    /// snapshot index (0 and empty: none yet).
    pub(crate) snap: (u64, Bytes),
    /// The configuration as of the latest snapshot.
    base_conf: ConfState,
    /// The configuration after each configuration change applied past the
    /// latest snapshot (rare): the configuration as of a later index.
    confs: Vec<(u64, ConfState)>,
    /// A snapshot is being built or written (one at a time per group).
    pub(crate) compacting: bool,
    /// No compaction starts before this tick: the last one found no room
    /// for its file.
    pub(crate) compact_retry_at: u64,
    /// Peers sent a MsgSnap, and when (in shard ticks): a snapshot lost
    /// after it was written to the socket is reported failed after a
    /// while (`SNAPSHOT_TIMEOUT_ELECTIONS`).
    snap_sent: Vec<(u64, u64)>,
}

/// Election timeouts after which a snapshot sent but not acknowledged is
/// reported failed, so the leader sends another.
const SNAPSHOT_TIMEOUT_ELECTIONS: u64 = 10;

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
        // A leader that applies its own removal must step down: left
        // leading it refuses every proposal while its heartbeats keep
        // the remaining voters from electing one of them (the group
        // would take nothing, ever again).
        step_down_on_removal: true,
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
        read_ctx_start: u64,
    ) -> raft::Result<Group> {
        let base_conf = wal
            .borrow()
            .snapshot(id)
            .and_then(|m| m.conf_state)
            .unwrap_or_default();
        let raw = RawNode::new(config, WalStorage::new(wal, id))?;
        let applied = raw.raft.raft_log.applied;
        Ok(Group {
            id,
            raw,
            apply,
            proposals: Proposals::default(),
            reads: Reads::starting_at(read_ctx_start),
            applied,
            dirty: false,
            preferred,
            heard: Vec::new(),
            stats: GroupStats::default(),
            outcomes: Vec::new(),
            conf_applied: Vec::new(),
            snap: (0, Bytes::new()),
            base_conf,
            confs: Vec::new(),
            compacting: false,
            compact_retry_at: 0,
            snap_sent: Vec::new(),
        })
    }

    /// Restores the state machine from the group's snapshot file at a
    /// restart: `index` is the WAL's snapshot index, `first_held` the
    /// first entry the WAL still holds. Entries up to `index` are not
    /// applied again.
    pub fn restore_at_start(
        &mut self,
        index: u64,
        data: Bytes,
        first_held: u64,
    ) -> Result<(), SnapshotFault> {
        self.apply.restore(&data, index, first_held)?;
        self.applied = self.applied.max(index);
        self.snap = (index, data);
        Ok(())
    }

    /// The configuration as of `index` (at or past the latest snapshot).
    pub(crate) fn conf_state_at(&self, index: u64) -> ConfState {
        self.confs
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(|| self.base_conf.clone(), |(_, cs)| cs.clone())
    }

    /// The index to compact to now, if the state machine's compactable
    /// index moved `threshold` entries or more past the latest snapshot
    /// and no snapshot is under way.
    pub(crate) fn compaction_due(&self, threshold: u64, now: u64) -> Option<u64> {
        if self.compacting || now < self.compact_retry_at {
            return None;
        }
        let c = self.apply.compactable_index().min(self.applied);
        (c > self.snap.0 && c - self.snap.0 >= threshold.max(1)).then_some(c)
    }

    /// A snapshot at `index` with `data` and configuration `conf` is now
    /// the group's latest (its WAL records are queued).
    pub(crate) fn snapshot_taken(&mut self, index: u64, data: Bytes, conf: ConfState) {
        self.snap = (index, data);
        self.base_conf = conf;
        self.confs.retain(|(i, _)| *i > index);
    }

    /// The state machine's `check_snapshot`, for a snapshot the loop
    /// received.
    fn take_snapshot_message(&mut self, m: &Message) -> bool {
        let Some(s) = m.snapshot.as_ref() else {
            return false;
        };
        let r = if s.data.is_empty() {
            Err(SnapshotFault::Invalid("no data".into()))
        } else {
            self.apply.check_snapshot(&s.data)
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                self.stats.snapshots_refused += 1;
                eprintln!(
                    "corelog: group {}: snapshot from member {} refused: {e}",
                    self.id, m.from
                );
                false
            }
        }
    }

    /// A leader's snapshot leaving the core's Ready for the disk: the
    /// state machine is restored from it at once (no later entry can be
    /// applied before it: they are appended after it), entries up to its
    /// index are not applied.
    fn install(&mut self, m: &Message) {
        let Some(s) = m.snapshot.as_ref() else {
            return;
        };
        let Some(meta) = s.metadata.as_ref().filter(|md| md.index > 0) else {
            return;
        };
        if let Err(e) = self.apply.restore(&s.data, meta.index, meta.index + 1) {
            // Checked when it arrived: a bug, said loudly; the group's
            // state machine keeps its state and the entries after the
            // snapshot will not follow on from it.
            eprintln!(
                "corelog: ERROR: group {}: restoring the snapshot at {}: {e}",
                self.id, meta.index
            );
        }
        self.applied = self.applied.max(meta.index);
        self.snapshot_taken(
            meta.index,
            s.data.clone(),
            meta.conf_state.clone().unwrap_or_default(),
        );
        self.confs.clear();
        self.stats.snapshots_installed += 1;
    }

    /// A MsgSnap the core wants sent: the WAL gave its metadata, the data
    /// is the group's latest snapshot. False when there is none at that
    /// index (reported failed, so the leader tries again later).
    fn fill_snapshot(&mut self, m: &mut Message) -> bool {
        let index = m
            .snapshot
            .as_ref()
            .and_then(|s| s.metadata.as_ref())
            .map_or(0, |md| md.index);
        if index == 0 || index != self.snap.0 || self.snap.1.is_empty() {
            self.stats.snapshots_refused += 1;
            self.raw.report_snapshot(m.to, SnapshotStatus::Failure);
            return false;
        }
        if let Some(s) = m.snapshot.as_mut() {
            s.data = self.snap.1.clone();
        }
        self.stats.snapshots_sent += 1;
        true
    }

    /// The network wrote a MsgSnap to `to` (`ok`), or lost it.
    pub fn snapshot_reported(&mut self, to: u64, ok: bool) {
        self.snap_sent.retain(|(id, _)| *id != to);
        if self.in_snapshot_state(to) {
            let st = if ok {
                SnapshotStatus::Finish
            } else {
                SnapshotStatus::Failure
            };
            self.raw.report_snapshot(to, st);
        }
    }

    /// Whether the leader's progress of `to` waits on a snapshot.
    pub fn in_snapshot_state(&self, to: u64) -> bool {
        self.is_leader()
            && self
                .raw
                .raft
                .trk
                .progress
                .get(&to)
                .is_some_and(|p| p.state == ProgressState::Snapshot)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateType::Leader
    }

    /// Whether this member leads the group and other voters exist: its
    /// own write then races theirs for each commit.
    pub fn leads_others(&self) -> bool {
        self.is_leader() && !self.raw.raft.trk.is_singleton()
    }

    /// Whether this member leads the group with other voters and has
    /// entries they have not yet committed: its loop then has
    /// acknowledgements to count while a flush syncs.
    pub fn awaits_followers(&self) -> bool {
        let log = &self.raw.raft.raft_log;
        self.leads_others() && log.committed < log.last_index()
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
        if m.r#type == MessageType::MsgSnap as i32 && !self.take_snapshot_message(&m) {
            return;
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
        if !self.snap_sent.is_empty() {
            self.expire_snapshots(now);
        }
    }

    /// Reports failed the snapshots sent long ago and still waited on.
    fn expire_snapshots(&mut self, now: u64) {
        let limit = SNAPSHOT_TIMEOUT_ELECTIONS * self.raw.raft.election_timeout as u64;
        let mut k = 0;
        while k < self.snap_sent.len() {
            let (to, at) = self.snap_sent[k];
            if now.saturating_sub(at) < limit {
                k += 1;
                continue;
            }
            self.snap_sent.swap_remove(k);
            if self.in_snapshot_state(to) {
                self.raw.report_snapshot(to, SnapshotStatus::Failure);
            }
        }
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

    /// Hands leadership to another voter because this member cannot take
    /// new entries (its WAL has no room): the one with the highest match
    /// among those caught up to the commit index and heard from since
    /// `since`. Nothing if this node does not lead, a transfer is in
    /// progress, or no voter qualifies (then it stays leader, refusing
    /// proposals with `StorageFull`, and tries again at the next tick).
    /// Returns whether a transfer started.
    pub fn hand_off(&mut self, since: u64) -> bool {
        let r = &self.raw.raft;
        if r.state != StateType::Leader || r.lead_transferee != raft::NONE {
            return false;
        }
        let committed = r.raft_log.committed;
        let best = r
            .trk
            .progress
            .iter()
            .filter(|(id, p)| {
                **id != r.id
                    && !p.is_learner
                    && p.matched >= committed
                    && self.heard.iter().any(|&(h, at)| h == **id && at >= since)
            })
            .max_by_key(|(id, p)| (p.matched, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id);
        match best {
            Some(to) => {
                self.raw.transfer_leader(to);
                true
            }
            None => false,
        }
    }

    /// Takes one Ready, if there is one: storage work and peer messages
    /// into `out`, committed entries applied at once (they are durable
    /// here already: the core hands out only those), read answers given.
    /// Returns whether there was a Ready.
    pub fn drain_ready(&mut self, out: &mut Routed, now: u64) -> bool {
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
        for mut m in std::mem::take(&mut rd.messages) {
            match m.to {
                LOCAL_APPEND_THREAD => {
                    self.install(&m);
                    out.appends.push((self.id, m));
                }
                LOCAL_APPLY_THREAD => apply = Some(m),
                _ if m.r#type == MessageType::MsgSnap as i32 => {
                    if self.fill_snapshot(&mut m) {
                        self.snap_sent.retain(|(id, _)| *id != m.to);
                        self.snap_sent.push((m.to, now));
                        out.net.push((self.id, m));
                    }
                }
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
        let cs = cc.and_then(|cc| self.raw.try_apply_conf_change(&cc).ok());
        let applied = cs.is_some();
        match cs {
            Some(cs) => self.confs.push((e.index, cs)),
            None => self.stats.bad_conf_changes += 1,
        }
        applied
    }
}
