//! One simulated server: a `RawNode` over `MemStorage`, the application
//! state machine it feeds, and what survives a crash.
//!
//! The storage is the node's disk. Under the synchronous Ready contract
//! everything the node must not forget is written to it before `advance`;
//! with asynchronous storage writes, when its append thread completes a
//! `MsgStorageAppend` (the writes still queued are not on the disk). Either
//! way a crash keeps exactly the `MemStorage` and loses the rest: the
//! unstable log tail, the queued writes and applies, any term or vote not
//! yet written, the commit index in memory, the application's state
//! (rebuilt from the snapshot and the log on restart). This file and the
//! storage-thread code of `sim.rs` are the only callers of the core's API.

use std::collections::VecDeque;

use bytes::Bytes;
use corelog::raft::{Config, MemStorage, RawNode, StateType, Storage};

/// No byte limit on an entries read (the core's `NO_LIMIT`).
const NO_LIMIT: u64 = u64::MAX;
use corelog::raftpb::{ConfState, HardState, Message, Snapshot, SnapshotMetadata};

use crate::checker::{self, Check, LogView, Violation};

/// The application's state: the index it has applied, the hash chain of
/// everything applied (its "data"), and the configuration at that index
/// (which a snapshot of this state must carry).
#[derive(Debug, Clone, Default)]
pub struct App {
    pub applied: u64,
    pub hash: u64,
    pub conf_state: ConfState,
}

impl App {
    /// The snapshot payload of this state: applied index and hash.
    pub fn encode(&self) -> Bytes {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&self.applied.to_le_bytes());
        v.extend_from_slice(&self.hash.to_le_bytes());
        Bytes::from(v)
    }

    /// The state a snapshot carries, or None if its payload is not ours.
    pub fn decode(snap: &Snapshot) -> Option<App> {
        let md = snap.metadata.as_ref()?;
        let d = &snap.data;
        if d.len() != 16 {
            return None;
        }
        let applied = u64::from_le_bytes(d[0..8].try_into().ok()?);
        let hash = u64::from_le_bytes(d[8..16].try_into().ok()?);
        if applied != md.index {
            return None;
        }
        Some(App {
            applied,
            hash,
            conf_state: md.conf_state.clone().unwrap_or_default(),
        })
    }
}

/// The metadata of a snapshot, or the empty default.
pub fn snap_meta(s: &Snapshot) -> SnapshotMetadata {
    s.metadata.clone().unwrap_or_default()
}

pub fn state_name(s: StateType) -> &'static str {
    match s {
        StateType::Follower => "follower",
        StateType::Candidate => "candidate",
        StateType::Leader => "leader",
        StateType::PreCandidate => "pre-candidate",
    }
}

pub struct SimNode {
    pub id: u64,
    /// The running node; None while crashed.
    pub raw: Option<RawNode<MemStorage>>,
    /// The disk of a crashed node, kept for its restart.
    pub disk: Option<MemStorage>,
    pub app: App,
    /// Restarts so far (each incarnation gets a fresh core seed).
    pub incarnation: u64,
    /// The last MsgAppResp this incarnation sent accepting entries:
    /// (message term, index, term of the entry at index). The entry must be
    /// on disk when the ack leaves.
    pub last_ack: Option<(u64, u64, u64)>,
    /// The last vote this incarnation granted: (term, candidate). It must be
    /// on disk when the grant leaves.
    pub last_vote: Option<(u64, u64)>,
    /// Asynchronous storage writes: the `MsgStorageAppend`s handed out and
    /// not yet written, oldest first. A crash loses them.
    pub append_work: VecDeque<Message>,
    /// Asynchronous storage writes: the `MsgStorageApply`s not yet applied,
    /// oldest first.
    pub apply_work: VecDeque<Message>,
    /// Asynchronous storage writes: the append thread completes nothing
    /// before this tick (a slow disk); the calm phases ignore it.
    pub disk_stalled_until: u64,
}

impl SimNode {
    /// Starts a node over `disk` with the given config (whose `applied`
    /// must match `app`).
    pub fn start(id: u64, cfg: &Config, disk: MemStorage, app: App) -> Result<SimNode, Violation> {
        let raw = RawNode::new(cfg, disk).map_err(|e| Violation {
            invariant: checker::CORE_ERROR,
            detail: format!("RawNode::new for node {id} failed: {e:?}"),
        })?;
        Ok(SimNode {
            id,
            raw: Some(raw),
            disk: None,
            app,
            incarnation: 0,
            last_ack: None,
            last_vote: None,
            append_work: VecDeque::new(),
            apply_work: VecDeque::new(),
            disk_stalled_until: 0,
        })
    }

    pub fn is_up(&self) -> bool {
        self.raw.is_some()
    }

    pub fn raw(&mut self) -> &mut RawNode<MemStorage> {
        self.raw.as_mut().expect("node is up")
    }

    pub fn term(&self) -> u64 {
        self.raw.as_ref().map_or(0, |r| r.raft.term)
    }

    pub fn is_leader(&self) -> bool {
        self.raw
            .as_ref()
            .is_some_and(|r| r.raft.state == StateType::Leader)
    }

    /// The commit index on this node's disk: what it still knows after a
    /// crash.
    pub fn durable_commit(&self) -> u64 {
        match (&self.raw, &self.disk) {
            (Some(r), _) => r.store().hard_state().commit,
            (None, Some(d)) => d.hard_state().commit,
            _ => 0,
        }
    }

    pub fn committed(&self) -> u64 {
        match (&self.raw, &self.disk) {
            (Some(r), _) => r.raft.raft_log.committed,
            (None, Some(d)) => d.hard_state().commit,
            _ => 0,
        }
    }

    /// Checks that what this node told others is on its disk, then drops
    /// everything else: the crash.
    pub fn crash(&mut self) -> Check {
        let raw = self.raw.take().expect("crash of a node that is down");
        // Clone rather than move out of the RawNode: a crash is rare, and
        // cloning needs nothing of the core's internals.
        let disk = raw.store().clone();
        let hs: HardState = disk.hard_state();
        if let Some((t, cand)) = self.last_vote
            && (hs.term < t || (hs.term == t && hs.vote != cand))
        {
            return Err(Violation {
                invariant: checker::DURABILITY,
                detail: format!(
                    "node {} granted its vote to {cand} in term {t}, but its disk holds term {} vote {} at the crash",
                    self.id, hs.term, hs.vote
                ),
            });
        }
        if let Some((t, i, et)) = self.last_ack {
            let view = StoreView(&disk);
            let lost_term = hs.term < t;
            // A later term may have truncated the acked entry legitimately.
            let lost_entry = hs.term == t && i >= view.first_known() && view.term(i) != Some(et);
            if lost_term || lost_entry {
                return Err(Violation {
                    invariant: checker::DURABILITY,
                    detail: format!(
                        "node {} acknowledged entry {i} (term {et}) in term {t}, but its disk holds term {} and {:?} at {i} at the crash",
                        self.id,
                        hs.term,
                        view.term(i)
                    ),
                });
            }
        }
        self.disk = Some(disk);
        self.last_ack = None;
        self.last_vote = None;
        // Writes not completed never reached the disk.
        self.append_work.clear();
        self.apply_work.clear();
        Ok(())
    }
}

/// The in-memory log of a running node, as the checker sees it.
pub struct RaftLogView<'a>(pub &'a RawNode<MemStorage>);

impl LogView for RaftLogView<'_> {
    fn first_known(&self) -> u64 {
        self.0.raft.raft_log.first_index() - 1
    }

    fn last_index(&self) -> u64 {
        self.0.raft.raft_log.last_index()
    }

    fn term(&self, i: u64) -> Option<u64> {
        let l = &self.0.raft.raft_log;
        if i + 1 < l.first_index() || i > l.last_index() {
            return None;
        }
        l.term(i).ok()
    }

    fn entry_hash(&self, i: u64) -> Option<u64> {
        let l = &self.0.raft.raft_log;
        if i < l.first_index() || i > l.last_index() {
            return None;
        }
        l.slice(i, i + 1, NO_LIMIT)
            .ok()
            .and_then(|v| v.first().map(checker::entry_hash))
    }
}

/// A node's disk, as the checker sees it.
pub struct StoreView<'a>(pub &'a MemStorage);

impl LogView for StoreView<'_> {
    fn first_known(&self) -> u64 {
        self.0.first_index().unwrap_or(1) - 1
    }

    fn last_index(&self) -> u64 {
        self.0.last_index().unwrap_or(0)
    }

    fn term(&self, i: u64) -> Option<u64> {
        if i < self.first_known() || i > self.last_index() {
            return None;
        }
        self.0.term(i).ok()
    }

    fn entry_hash(&self, i: u64) -> Option<u64> {
        if i <= self.first_known() || i > self.last_index() {
            return None;
        }
        self.0
            .entries(i, i + 1, NO_LIMIT)
            .ok()
            .and_then(|v| v.first().map(checker::entry_hash))
    }
}
