//! Raft's `Storage` served by the WAL: the one file of `src/wal` that
//! speaks the core's interface. It is an adapter only: it maps the WAL's
//! per-group facts (entries, hard state, snapshot metadata, compaction mark)
//! onto `Storage`'s questions and the WAL's errors onto `StorageError`; the
//! rules of what to write when stay with the caller driving `Ready`.
//!
//! The WAL belongs to the shard and serves every group on it, so a
//! `WalStorage` is a handle (`Rc<RefCell<Wal>>` plus a group id): cheap to
//! make, single-threaded like the shard, never locked.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use super::{Disk, Error, Result as WalResult, Ticket, UringDisk, Wal};
use crate::raft::{self, RaftState, Storage, StorageError};
use crate::raftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};

/// One group's `Storage` on a shared WAL.
#[derive(Clone)]
pub struct WalStorage<D: Disk = UringDisk> {
    wal: Rc<RefCell<Wal<D>>>,
    group: u64,
}

/// Maps a read error of the WAL: out-of-range reads are what the core
/// expects and handles; anything else (bytes verified at recovery changed
/// under us) is `Unreadable`: no answer would be safe, but it is this
/// group's failure, not a reason to take down every group of the shard.
fn to_raft(e: Error) -> raft::Error {
    match e {
        Error::Compacted { .. } => raft::Error::Storage(StorageError::Compacted),
        Error::Unavailable { .. } => raft::Error::Storage(StorageError::Unavailable),
        _ => raft::Error::Storage(StorageError::Unreadable),
    }
}

impl<D: Disk> WalStorage<D> {
    /// The storage of `group` on `wal`.
    pub fn new(wal: Rc<RefCell<Wal<D>>>, group: u64) -> Self {
        WalStorage { wal, group }
    }

    /// The group this storage serves.
    pub fn group(&self) -> u64 {
        self.group
    }

    /// The shared WAL (to flush, or to serve other groups).
    pub fn wal(&self) -> &Rc<RefCell<Wal<D>>> {
        &self.wal
    }

    /// Queues the entries of a `Ready` (superseding any at the same
    /// indexes). Entries already folded into the snapshot are skipped, as
    /// `MemStorage::append` does.
    pub fn append(&self, entries: &[Entry]) -> WalResult<Ticket> {
        let mut w = self.wal.borrow_mut();
        let first = w.first_index(self.group);
        let skip = entries.iter().take_while(|e| e.index < first).count();
        w.append_entries(self.group, &entries[skip..])
    }

    /// Queues the hard state of a `Ready`.
    pub fn set_hard_state(&self, hs: &HardState) -> WalResult<Ticket> {
        self.wal.borrow_mut().set_hard_state(self.group, hs)
    }

    /// Queues a snapshot's metadata and replaces the whole log with it, as
    /// `MemStorage::apply_snapshot` does (one record: see
    /// `Wal::apply_snapshot`).
    pub fn apply_snapshot(&self, meta: &SnapshotMetadata) -> WalResult<Ticket> {
        self.wal.borrow_mut().apply_snapshot(self.group, meta)
    }

    /// Sets the configuration kept in the snapshot metadata (bootstrap).
    pub fn set_conf_state(&self, cs: ConfState) -> WalResult<Ticket> {
        let mut w = self.wal.borrow_mut();
        let mut meta = w.snapshot(self.group).unwrap_or_default();
        meta.conf_state = Some(cs);
        w.set_snapshot(self.group, &meta)
    }

    /// Drops the entries up to `index` (retention), keeping its term.
    pub fn compact(&self, index: u64) -> WalResult<Ticket> {
        let mut w = self.wal.borrow_mut();
        let term = w.term(self.group, index)?;
        w.compact(self.group, index, term)
    }
}

impl<D: Disk> Storage for WalStorage<D> {
    /// The hard state as persisted, except that its commit index is never
    /// below the log's compaction point (`first_index - 1`): what a
    /// snapshot holds or a compaction dropped was committed, and Raft's
    /// storage contract (`RawNode::new`) wants a commit index at least
    /// that. The WAL can recover a snapshot without the hard state queued
    /// after it: a driver queues a Ready's snapshot, entries, then hard
    /// state (the hard state after the entries it commits), and the WAL
    /// may flush early between two records, so a crash can keep the first
    /// flush and lose the last (docs/architecture.md, "The rule a driver
    /// relies on"; seed 4638 of `corelog-sim --storage wal`). An empty hard
    /// state (none ever written) stays empty: the core then takes the
    /// commit index from the snapshot itself.
    fn initial_state(&self) -> raft::Result<RaftState> {
        let w = self.wal.borrow();
        let mut hard_state = w.hard_state(self.group);
        let compacted = w.first_index(self.group).saturating_sub(1);
        if !raft::is_empty_hard_state(&hard_state) && hard_state.commit < compacted {
            hard_state.commit = compacted;
        }
        Ok(RaftState {
            hard_state,
            conf_state: w
                .snapshot(self.group)
                .and_then(|m| m.conf_state)
                .unwrap_or_default(),
        })
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> raft::Result<Vec<Entry>> {
        self.wal
            .borrow()
            .entries(self.group, low, high, max_size)
            .map_err(to_raft)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.wal.borrow().term(self.group, idx).map_err(to_raft)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.wal.borrow().first_index(self.group))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.wal.borrow().last_index(self.group))
    }

    /// The WAL keeps a snapshot's metadata, not its data: the application
    /// state a snapshot carries in a log service (retention point,
    /// deduplication table) is produced by the layer above, which records
    /// the metadata (`set_snapshot`/`apply_snapshot`) as `MemStorage`'s
    /// `create_snapshot` does: a compaction alone does not move it.
    fn snapshot(&self) -> raft::Result<Snapshot> {
        let meta = self.wal.borrow().snapshot(self.group).unwrap_or_default();
        Ok(Snapshot {
            data: Bytes::new(),
            metadata: Some(meta),
        })
    }
}
