//! A node's storage as the driver sees it: `MemStorage` (the default: a
//! perfect disk that holds exactly what was written before `advance`) or
//! the real WAL on a simulated faulty disk (`--storage wal`, wal_store.rs).
//!
//! `SimStore` is the one `Storage` the `RawNode`s of a run are built over,
//! and the one place that maps the driver's writes (snapshot, entries, hard
//! state, the application's snapshots and compactions) onto either. It
//! decides nothing about when to write: that is the driver's (sim.rs).

use bytes::Bytes;
use corelog::raft::{self, MemStorage, RaftState, Storage, StorageError};
use corelog::raftpb::{ConfState, Entry, HardState, Snapshot};

use crate::wal_store::WalStore;

/// Why a write was not taken.
#[derive(Debug)]
pub enum StoreError {
    /// The storage refused the request as such (a snapshot not newer than
    /// the one held, say): the node goes on.
    Refused(raft::Error),
    /// The WAL failed (an I/O error: it is poisoned): the node must stop,
    /// as a process would, and recover from its disk on restart.
    Failed(String),
    /// The WAL has no room for its next segment (`wal::Error::NoSpace`):
    /// the write was refused whole and nothing is poisoned; the append
    /// thread keeps it and tries again later. Elsewhere (a Ready written
    /// before `advance`, a compaction) the driver stops the node as for
    /// `Failed`.
    NoSpace(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Refused(e) => write!(f, "refused: {e:?}"),
            StoreError::Failed(e) => write!(f, "failed: {e}"),
            StoreError::NoSpace(e) => write!(f, "no space: {e}"),
        }
    }
}

/// The storage a node runs on.
pub enum SimStore {
    Mem(MemStorage),
    Wal(Box<WalStore>),
}

impl SimStore {
    /// The hard state written last (queued, for the WAL: what the node
    /// would recover if every queued write became durable).
    pub fn hard_state(&self) -> HardState {
        match self {
            SimStore::Mem(m) => m.hard_state(),
            SimStore::Wal(w) => w.hard_state(),
        }
    }

    pub fn set_hard_state(&mut self, hs: HardState) -> Result<(), StoreError> {
        match self {
            SimStore::Mem(m) => {
                m.set_hard_state(hs);
                Ok(())
            }
            SimStore::Wal(w) => w.set_hard_state(hs),
        }
    }

    /// Appends entries (superseding any at the same indexes).
    pub fn append_owned(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        match self {
            SimStore::Mem(m) => m.append_owned(entries).map_err(StoreError::Refused),
            SimStore::Wal(w) => w.append(&entries),
        }
    }

    /// Replaces the log with a snapshot received from a leader.
    pub fn apply_snapshot(&mut self, snap: Snapshot) -> Result<(), StoreError> {
        match self {
            SimStore::Mem(m) => m.apply_snapshot(snap).map_err(StoreError::Refused),
            SimStore::Wal(w) => w.apply_snapshot(snap),
        }
    }

    /// Records the application's snapshot at applied index `i`
    /// (`Refused(SnapshotOutOfDate)` if not past the current one).
    pub fn create_snapshot(
        &mut self,
        i: u64,
        cs: Option<ConfState>,
        data: Bytes,
    ) -> Result<(), StoreError> {
        match self {
            SimStore::Mem(m) => m
                .create_snapshot(i, cs, data)
                .map(|_| ())
                .map_err(StoreError::Refused),
            SimStore::Wal(w) => w.create_snapshot(i, cs, data),
        }
    }

    /// Discards the entries before `i` (MemStorage's convention: `i`
    /// becomes the dummy entry whose term stays readable).
    pub fn compact(&mut self, i: u64) -> Result<(), StoreError> {
        match self {
            SimStore::Mem(m) => m.compact(i).map_err(StoreError::Refused),
            SimStore::Wal(w) => w.compact(i),
        }
    }

    pub fn as_wal(&self) -> Option<&WalStore> {
        match self {
            SimStore::Wal(w) => Some(w),
            SimStore::Mem(_) => None,
        }
    }

    pub fn as_wal_mut(&mut self) -> Option<&mut WalStore> {
        match self {
            SimStore::Wal(w) => Some(w),
            SimStore::Mem(_) => None,
        }
    }
}

/// True if `e` is a refusal of an out-of-date snapshot.
pub fn is_out_of_date(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Refused(raft::Error::Storage(StorageError::SnapshotOutOfDate))
    )
}

impl Storage for SimStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        match self {
            SimStore::Mem(m) => m.initial_state(),
            SimStore::Wal(w) => w.initial_state(),
        }
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> raft::Result<Vec<Entry>> {
        match self {
            SimStore::Mem(m) => m.entries(low, high, max_size),
            SimStore::Wal(w) => w.entries(low, high, max_size),
        }
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        match self {
            SimStore::Mem(m) => m.term(idx),
            SimStore::Wal(w) => w.term(idx),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        match self {
            SimStore::Mem(m) => m.first_index(),
            SimStore::Wal(w) => w.first_index(),
        }
    }

    fn last_index(&self) -> raft::Result<u64> {
        match self {
            SimStore::Mem(m) => m.last_index(),
            SimStore::Wal(w) => w.last_index(),
        }
    }

    fn snapshot(&self) -> raft::Result<Snapshot> {
        match self {
            SimStore::Mem(m) => m.snapshot(),
            SimStore::Wal(w) => w.snapshot(),
        }
    }
}
