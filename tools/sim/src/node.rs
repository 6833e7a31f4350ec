//! One simulated server: a `RawNode` over its storage (`MemStorage`, or
//! with `--storage wal` the WAL on a simulated disk: store.rs,
//! wal_store.rs), the application state machine it feeds, and what
//! survives a crash.
//!
//! With `MemStorage` the storage is the node's disk. Under the synchronous Ready contract
//! everything the node must not forget is written to it before `advance`;
//! with asynchronous storage writes, when its append thread completes a
//! `MsgStorageAppend` (the writes still queued are not on the disk). Either
//! way a crash keeps exactly the `MemStorage` and loses the rest: the
//! unstable log tail, the queued writes and applies, any term or vote not
//! yet written, the commit index in memory, the application's state
//! (rebuilt from the snapshot and the log on restart). With the WAL, what
//! survives is what the simulated disk kept (see wal_store.rs), and the
//! durability checks run on what recovery reads back. This file and the
//! storage-thread code of `sim.rs` are the only callers of the core's API.

use std::collections::VecDeque;

use bytes::Bytes;
use corelog::raft::{Config, MemStorage, RawNode, StateType, Storage};

use crate::store::SimStore;
use crate::wal_store::WalDown;

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

/// The disk of a crashed node, kept for its restart.
pub enum Down {
    Mem(MemStorage),
    Wal(WalDown),
}

/// What a message this node sends vouches for, noted when its Ready is
/// handled and recorded as vouched for when the message leaves.
#[derive(Debug, Clone, Copy)]
pub enum Vouch {
    /// `(message term, index, term of the entry at index)`.
    Ack(u64, u64, u64),
    /// `(term, candidate)`.
    Vote(u64, u64),
}

/// A Ready waiting for the WAL flush that makes it durable: its messages
/// and its `advance`.
pub struct Held {
    pub flush: u64,
    pub msgs: Vec<(corelog::raftpb::Message, Option<Vouch>)>,
    pub ready: Option<corelog::raft::Ready>,
}

pub struct SimNode {
    pub id: u64,
    /// The running node; None while crashed.
    pub raw: Option<RawNode<SimStore>>,
    /// The disk of a crashed node, kept for its restart.
    pub disk: Option<Down>,
    /// `--storage wal`: the node's WAL found corruption it cannot repair:
    /// it stays down for good (the cause is kept).
    pub dead: Option<String>,
    /// `--storage wal`: the WAL failed while the node handled something;
    /// the driver stops the node once it is done with it.
    pub failed: Option<String>,
    /// `--storage wal`: messages waiting for their flush, oldest first.
    pub held: VecDeque<Held>,
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
    /// `--storage wal`: the append thread's oldest write was refused for
    /// lack of room and waits to be tried again.
    pub no_space: bool,
}

impl SimNode {
    /// Starts a node over `disk` with the given config (whose `applied`
    /// must match `app`).
    pub fn start(id: u64, cfg: &Config, disk: SimStore, app: App) -> Result<SimNode, Violation> {
        let raw = RawNode::new(cfg, disk).map_err(|e| Violation {
            invariant: checker::CORE_ERROR,
            detail: format!("RawNode::new for node {id} failed: {e:?}"),
        })?;
        Ok(SimNode {
            id,
            raw: Some(raw),
            disk: None,
            dead: None,
            failed: None,
            held: VecDeque::new(),
            app,
            incarnation: 0,
            last_ack: None,
            last_vote: None,
            append_work: VecDeque::new(),
            apply_work: VecDeque::new(),
            disk_stalled_until: 0,
            no_space: false,
        })
    }

    pub fn is_up(&self) -> bool {
        self.raw.is_some()
    }

    pub fn raw(&mut self) -> &mut RawNode<SimStore> {
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
            (Some(r), _) => match r.store().as_wal() {
                Some(w) => w.durable_hs().commit,
                None => r.store().hard_state().commit,
            },
            (None, Some(Down::Mem(d))) => d.hard_state().commit,
            (None, Some(Down::Wal(d))) => d.durable_hs.commit,
            _ => 0,
        }
    }

    pub fn committed(&self) -> u64 {
        match (&self.raw, &self.disk) {
            (Some(r), _) => r.raft.raft_log.committed,
            _ => self.durable_commit(),
        }
    }

    /// `--storage wal`: whether a handled Ready waits for its flush (the
    /// node takes no other Ready until it is advanced).
    pub fn awaiting_flush(&self) -> bool {
        self.held.iter().any(|h| h.ready.is_some())
    }

    /// Whether the node has a Ready to handle now.
    pub fn ready_now(&self) -> bool {
        self.raw.as_ref().is_some_and(|r| r.has_ready()) && !self.awaiting_flush()
    }

    /// Whether the node is down for good (its WAL found corruption).
    pub fn is_dead(&self) -> bool {
        self.dead.is_some()
    }

    /// Checks that what this node told others is on its disk, then drops
    /// everything else: the crash.
    pub fn crash(&mut self) -> Check {
        let mut raw = self.raw.take().expect("crash of a node that is down");
        self.held.clear();
        self.append_work.clear();
        self.apply_work.clear();
        self.failed = None;
        let store = std::mem::replace(raw.store_mut(), SimStore::Mem(MemStorage::new()));
        let disk = match store {
            SimStore::Mem(m) => m,
            SimStore::Wal(w) => {
                // The disk crashes first, then the WAL that ran on it is
                // dropped (with the core). What it vouched for is checked
                // against what recovery reads back, at the restart.
                self.disk = Some(Down::Wal(w.crash()));
                drop(raw);
                return Ok(());
            }
        };
        drop(raw);
        let hs: HardState = disk.hard_state();
        self.check_vouched(hs, &StoreView(&disk))?;
        self.disk = Some(Down::Mem(disk));
        self.last_ack = None;
        self.last_vote = None;
        Ok(())
    }

    /// What this node vouched for before its crash (its last vote granted,
    /// its last append acknowledged) against what its disk holds now: the
    /// hard state and log a restart finds.
    pub fn check_vouched(&self, hs: HardState, view: &dyn LogView) -> Check {
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
        Ok(())
    }
}

/// The in-memory log of a running node, as the checker sees it.
pub struct RaftLogView<'a>(pub &'a RawNode<SimStore>);

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
pub struct StoreView<'a, S: Storage>(pub &'a S);

impl<S: Storage> LogView for StoreView<'_, S> {
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
