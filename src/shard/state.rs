//! `Shard`: what one shard's loop and the tasks on its thread share (its
//! groups, its WAL, the loop's doorbell, its clock in ticks, whether it is
//! stopping or failed). Lives on the shard's thread only (`Rc`); the
//! process reaches it through a `ShardHandle`.

use std::cell::{Cell, Ref, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use super::appender::AppendStats;
use super::compact::Built;
use super::group::Group;
use super::oneshot;
use super::peers::Peers;
use super::run::LoopStats;
use super::signal::Signal;
use crate::node::{Node, ProposeError};
use crate::transport::NetStats;
use crate::wal::Wal;

use super::config::RuntimeConfig;

/// Counters of a shard.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub turns: LoopStats,
    pub wal: AppendStats,
}

/// What a shard tells the process, readable from any thread.
#[derive(Debug, Default)]
pub struct ShardReport {
    failure: Mutex<Option<String>>,
    /// Why the WAL has no room, while it has none.
    storage_full: Mutex<Option<String>>,
}

impl ShardReport {
    pub fn failure(&self) -> Option<String> {
        match self.failure.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn storage_full(&self) -> Option<String> {
        match self.storage_full.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn set_storage_full(&self, cause: Option<String>) {
        match self.storage_full.lock() {
            Ok(mut g) => *g = cause,
            Err(p) => *p.into_inner() = cause,
        }
    }

    fn set_failure(&self, cause: &str) {
        let mut g = match self.failure.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.get_or_insert_with(|| cause.to_string());
    }
}

/// One shard, as its thread sees it.
pub struct Shard {
    pub(crate) index: u32,
    pub(crate) member: u64,
    pub(crate) cfg: RuntimeConfig,
    pub(crate) wal: Rc<RefCell<Wal>>,
    pub(crate) groups: RefCell<HashMap<u64, Rc<RefCell<Group>>>>,
    pub(crate) signal: Signal,
    /// Groups to look at in the next turn.
    pub(crate) dirty: RefCell<Vec<Rc<RefCell<Group>>>>,
    pub(crate) failed: RefCell<Option<String>>,
    /// Why the WAL takes nothing new right now (no room for a segment),
    /// as of the last turn: proposals are refused with `StorageFull`.
    pub(crate) storage_full: RefCell<Option<String>>,
    pub(crate) stopping: Cell<bool>,
    /// Ticks counted since the shard started.
    pub(crate) now: Cell<u64>,
    /// Ticks the ticker counted that the loop has not run yet.
    pub(crate) ticks_due: Cell<u32>,
    pub(crate) report: Arc<ShardReport>,
    /// The shard's network (the loop owns it; kept here for its counters).
    pub(crate) peers: RefCell<Option<Rc<dyn Peers>>>,
    /// The loop's and the appender's counters, as of the last turn.
    pub(crate) stats: Cell<ShardStats>,
    /// Opened by `ShardHandle::release` when the shard was started held.
    pub(crate) gate: RefCell<Option<oneshot::Sender<()>>>,
    /// Where the groups' snapshot files live (snapfile.rs).
    pub(crate) snap_dir: PathBuf,
    /// Snapshots whose files are durable, for the loop to record.
    pub(crate) compactions: RefCell<Vec<Built>>,
    /// Leaders' snapshots received whose files found no room (each task
    /// retries; the appender waits at its gate meanwhile), and why the
    /// last one did not fit: the shard is full as when the WAL is.
    pub(crate) snapfiles_waiting_room: Cell<u32>,
    pub(crate) snapfile_no_room: RefCell<String>,
    /// What deleting dead WAL segments off the loop came to: the free
    /// names to recycle, or why it stopped.
    pub(crate) reclaimed: RefCell<Option<Result<Vec<String>, String>>>,
}

impl Shard {
    pub(crate) fn new(
        index: u32,
        member: u64,
        cfg: RuntimeConfig,
        wal: Rc<RefCell<Wal>>,
        report: Arc<ShardReport>,
        snap_dir: PathBuf,
    ) -> Shard {
        Shard {
            index,
            member,
            cfg,
            wal,
            groups: RefCell::new(HashMap::new()),
            signal: Signal::default(),
            dirty: RefCell::new(Vec::new()),
            failed: RefCell::new(None),
            storage_full: RefCell::new(None),
            stopping: Cell::new(false),
            now: Cell::new(0),
            ticks_due: Cell::new(0),
            report,
            gate: RefCell::new(None),
            stats: Cell::new(ShardStats::default()),
            peers: RefCell::new(None),
            snap_dir,
            compactions: RefCell::new(Vec::new()),
            snapfiles_waiting_room: Cell::new(0),
            snapfile_no_room: RefCell::new(String::new()),
            reclaimed: RefCell::new(None),
        }
    }

    /// The directory of this shard's snapshot files.
    pub fn snap_dir(&self) -> &std::path::Path {
        &self.snap_dir
    }

    /// This shard's index on its member.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The member (Raft node id) this shard belongs to.
    pub fn member(&self) -> u64 {
        self.member
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// The `Node` of `group`, if this shard runs it.
    pub fn node(self: &Rc<Self>, group: u64) -> Option<Node> {
        let g = self.groups.borrow().get(&group)?.clone();
        Some(Node::new(self.clone(), g))
    }

    /// The groups this shard runs, in increasing order.
    pub fn group_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.groups.borrow().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The shard's WAL (tests inject faults through it; tools read it).
    pub fn wal(&self) -> Ref<'_, Wal> {
        self.wal.borrow()
    }

    /// The WAL itself, for fault injection in tests.
    pub fn wal_cell(&self) -> &Rc<RefCell<Wal>> {
        &self.wal
    }

    /// Why the shard stopped serving, if its WAL failed.
    pub fn failure(&self) -> Option<String> {
        self.failed.borrow().clone()
    }

    /// Why the shard's WAL takes nothing new, if it has no room.
    pub fn storage_full(&self) -> Option<String> {
        self.storage_full.borrow().clone()
    }

    /// The loop's and the WAL appender's counters.
    pub fn stats(&self) -> ShardStats {
        self.stats.get()
    }

    /// The TCP network's counters, if the shard has one.
    pub fn net_stats(&self) -> Option<NetStats> {
        self.peers.borrow().as_ref().and_then(|p| p.net_stats())
    }

    /// Ticks counted since the shard started.
    pub fn now(&self) -> u64 {
        self.now.get()
    }

    /// Refuses new requests on a failed or stopping shard.
    pub(crate) fn check(&self) -> Result<(), ProposeError> {
        if let Some(c) = self.failed.borrow().as_ref() {
            return Err(ProposeError::StorageFailed(c.clone()));
        }
        if self.stopping.get() {
            return Err(ProposeError::ShuttingDown);
        }
        Ok(())
    }

    /// Puts `g` (whose `Group` the caller holds as `group`) on the list of
    /// the next turn and rings the loop.
    pub(crate) fn mark_dirty(&self, group: &mut Group, g: &Rc<RefCell<Group>>) {
        if !group.dirty {
            group.dirty = true;
            self.dirty.borrow_mut().push(g.clone());
        }
        self.signal.ring();
    }

    /// The WAL failed: the shard stops serving for good (its page cache
    /// can no longer be trusted; a new process recovers the directory).
    /// Every waiting request fails with `StorageFailed`, later ones too.
    pub(crate) fn poison(&self, cause: String) {
        if self.failed.borrow().is_some() {
            return;
        }
        self.report.set_failure(&cause);
        let e = ProposeError::StorageFailed(cause.clone());
        *self.failed.borrow_mut() = Some(cause);
        self.fail_requests(&e);
    }

    /// Answers every waiting request of every group with `e`.
    pub(crate) fn fail_requests(&self, e: &ProposeError) {
        for g in self.groups.borrow().values() {
            let mut g = g.borrow_mut();
            g.proposals.fail_all(e);
            g.reads.fail_all(e);
        }
    }
}
