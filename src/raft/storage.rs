//! The read side of the stable log (`Storage`) and an in-memory
//! implementation (`MemStorage`) for tests, the conformance harness and
//! benchmarks.
//!
//! The core only ever reads through `Storage`; writing what a `Ready` asks to
//! persist is the application's job (for `MemStorage`: `append`,
//! `apply_snapshot`, `set_hard_state`). Nothing here does I/O or takes a lock:
//! the `RawNode` owns its storage outright.

use bytes::Bytes;

use super::errors::{Result, StorageError};
use super::types::limit_size;
use crate::raftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};

/// What a node recovers with on start: the last persisted hard state and the
/// configuration as of the last snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RaftState {
    /// Empty (all zero) when nothing has been persisted yet.
    pub hard_state: HardState,
    /// Empty when no configuration has been persisted yet.
    pub conf_state: ConfState,
}

/// Read access to the stable log.
///
/// The log holds the entries `first_index()..=last_index()`; the entry at
/// `first_index() - 1` is gone (folded into the snapshot) but its term stays
/// readable so that appends right after the snapshot can still be matched.
///
/// Any error other than `Compacted`/`Unavailable` where the core does not
/// expect one makes the core panic: storage that cannot answer leaves the
/// node unable to participate safely.
pub trait Storage {
    /// The persisted hard state and conf state.
    fn initial_state(&self) -> Result<RaftState>;

    /// Entries `[low, high)`, as many as fit in `max_size` encoded bytes but
    /// always at least one (use `NO_LIMIT` for no limit). `Compacted` if
    /// `low` is at or before the snapshot point, `Unavailable` if the range
    /// is not (fully) present. The returned entries share their data with
    /// the storage (`Bytes`), so this costs one `Vec` and no copies.
    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>>;

    /// Term of entry `idx`, for `idx` in `[first_index() - 1,
    /// last_index()]`; `Compacted` below, `Unavailable` above.
    fn term(&self, idx: u64) -> Result<u64>;

    /// The first index that `entries` may return: one past the snapshot.
    fn first_index(&self) -> Result<u64>;

    /// The index of the last entry (the snapshot index if there is none).
    fn last_index(&self) -> Result<u64>;

    /// The most recent snapshot; `SnapshotTemporarilyUnavailable` asks the
    /// leader to retry later.
    fn snapshot(&self) -> Result<Snapshot>;
}

/// An in-memory `Storage`.
///
/// `ents[0]` is a dummy entry carrying the snapshot's index and term (index 0
/// and term 0 on a fresh storage): it makes the term of the entry before
/// `first_index` available and keeps the index arithmetic uniform. The entries
/// proper are `ents[1..]`.
#[derive(Debug, Clone)]
pub struct MemStorage {
    hard_state: HardState,
    snapshot: Snapshot,
    ents: Vec<Entry>,
}

impl Default for MemStorage {
    fn default() -> Self {
        MemStorage::new()
    }
}

impl MemStorage {
    /// An empty storage: no entries, empty snapshot at index 0.
    pub fn new() -> Self {
        MemStorage {
            hard_state: HardState::default(),
            snapshot: Snapshot {
                data: Bytes::new(),
                metadata: Some(SnapshotMetadata::default()),
            },
            ents: vec![Entry::default()],
        }
    }

    /// An empty storage whose configuration (as of its empty snapshot) is
    /// `conf_state`: how a fresh cluster is bootstrapped.
    pub fn new_with_conf_state(conf_state: ConfState) -> Self {
        let mut s = MemStorage::new();
        s.set_conf_state(conf_state);
        s
    }

    /// The last hard state set.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Persists the hard state from a `Ready`.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Sets the configuration recorded in the current snapshot's metadata,
    /// which `initial_state` reports. Meant for bootstrapping; after that the
    /// configuration travels in snapshots.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.snapshot_meta_mut().conf_state = Some(cs);
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.metadata.as_ref().map_or(0, |m| m.index)
    }

    fn snapshot_meta_mut(&mut self) -> &mut SnapshotMetadata {
        self.snapshot.metadata.get_or_insert_with(Default::default)
    }

    /// Index of the dummy entry: the snapshot point.
    fn offset(&self) -> u64 {
        self.ents[0].index
    }

    fn first(&self) -> u64 {
        self.offset() + 1
    }

    fn last(&self) -> u64 {
        self.offset() + self.ents.len() as u64 - 1
    }

    /// Replaces the whole contents with `snap`: the log becomes empty right
    /// after the snapshot point. `SnapshotOutOfDate` if `snap` is not newer
    /// than the snapshot held (a storage still at index 0 accepts any, which
    /// is how a node is bootstrapped with only a configuration).
    pub fn apply_snapshot(&mut self, mut snap: Snapshot) -> Result<()> {
        let meta = snap.metadata.get_or_insert_with(Default::default);
        let (index, term) = (meta.index, meta.term);
        let ours = self.snapshot_index();
        if ours != 0 && ours >= index {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        self.snapshot = snap;
        self.ents = vec![Entry {
            term,
            index,
            ..Default::default()
        }];
        Ok(())
    }

    /// Records a snapshot at applied index `i` with the application's state
    /// `data` and, if the configuration changed since the last snapshot,
    /// `cs`; returns it. Does not discard entries (see `compact`).
    /// `SnapshotOutOfDate` if `i` is not past the current snapshot.
    ///
    /// Panics if `i` is past the last index (a snapshot of state the log
    /// never contained) or before the compaction point (its term is gone):
    /// both are broken callers.
    pub fn create_snapshot(
        &mut self,
        i: u64,
        cs: Option<ConfState>,
        data: Bytes,
    ) -> Result<Snapshot> {
        if i <= self.snapshot_index() {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        let (offset, last) = (self.offset(), self.last());
        assert!(
            i <= last,
            "snapshot {i} is out of bound lastindex({last}): a snapshot must not be past the last index"
        );
        // The log may have been compacted past the last snapshot; the term
        // of an entry before the compaction point is gone.
        assert!(
            i >= offset,
            "snapshot {i} is before the compaction point {offset}: its term is no longer known"
        );
        let term = self.ents[(i - offset) as usize].term;
        let meta = self.snapshot_meta_mut();
        meta.index = i;
        meta.term = term;
        if let Some(cs) = cs {
            meta.conf_state = Some(cs);
        }
        self.snapshot.data = data;
        Ok(self.snapshot.clone())
    }

    /// Discards the entries before `compact_index`; the entry at
    /// `compact_index` becomes the dummy (its term stays readable).
    /// `Compacted` if already compacted that far. The application must not
    /// compact past what it has applied.
    ///
    /// Panics if `compact_index` is past the last index.
    pub fn compact(&mut self, compact_index: u64) -> Result<()> {
        let offset = self.offset();
        if compact_index <= offset {
            return Err(StorageError::Compacted.into());
        }
        let last = self.last();
        assert!(
            compact_index <= last,
            "compact {compact_index} is out of bound lastindex({last}): cannot compact past the last index"
        );
        let i = (compact_index - offset) as usize;
        // Drop everything before the new dummy, then strip the dummy of its
        // payload: only its index and term are meaningful.
        self.ents.drain(..i);
        let dummy = &mut self.ents[0];
        dummy.data = Bytes::new();
        dummy.r#type = 0;
        Ok(())
    }

    /// Persists `entries` (contiguous, as from a `Ready`): entries already
    /// compacted are skipped, and any stored entries at or after the first
    /// new index are replaced (a new leader may overwrite an uncommitted
    /// suffix). Entries are cloned, which shares their data.
    ///
    /// Panics if `entries` would leave a gap after the last index.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let Some(head) = entries.first() else {
            return Ok(());
        };
        let first = self.first();
        let last_new = head.index + entries.len() as u64 - 1;
        if last_new < first {
            // Everything given is already folded into the snapshot.
            return Ok(());
        }
        let entries = if first > head.index {
            &entries[(first - head.index) as usize..]
        } else {
            entries
        };
        let at = entries[0].index - self.offset();
        let len = self.ents.len() as u64;
        assert!(
            at <= len,
            "missing log entry [last: {}, append at: {}]: appended entries must follow the log without a gap",
            self.last(),
            entries[0].index
        );
        self.ents.truncate(at as usize);
        self.ents.extend_from_slice(entries);
        Ok(())
    }

    /// Like `append`, but takes the entries by value so none are cloned.
    pub fn append_owned(&mut self, entries: Vec<Entry>) -> Result<()> {
        let Some(head) = entries.first() else {
            return Ok(());
        };
        let first = self.first();
        let head_index = head.index;
        let last_new = head_index + entries.len() as u64 - 1;
        if last_new < first {
            return Ok(());
        }
        let skip = first.saturating_sub(head_index) as usize;
        let at = head_index + skip as u64 - self.offset();
        assert!(
            at <= self.ents.len() as u64,
            "missing log entry [last: {}, append at: {}]: appended entries must follow the log without a gap",
            self.last(),
            head_index + skip as u64
        );
        self.ents.truncate(at as usize);
        self.ents.extend(entries.into_iter().skip(skip));
        Ok(())
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<RaftState> {
        Ok(RaftState {
            hard_state: self.hard_state,
            conf_state: self
                .snapshot
                .metadata
                .as_ref()
                .and_then(|m| m.conf_state.clone())
                .unwrap_or_default(),
        })
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        let offset = self.offset();
        if low <= offset {
            return Err(StorageError::Compacted.into());
        }
        let last = self.last();
        assert!(low <= high, "invalid entries range [{low}, {high})");
        assert!(
            high <= last + 1,
            "entries' hi({high}) is out of bound lastindex({last}): reads must stay within the log"
        );
        if self.ents.len() == 1 {
            // Only the dummy: nothing is readable.
            return Err(StorageError::Unavailable.into());
        }
        let range = &self.ents[(low - offset) as usize..(high - offset) as usize];
        Ok(limit_size(range, max_size).to_vec())
    }

    fn term(&self, idx: u64) -> Result<u64> {
        let offset = self.offset();
        if idx < offset {
            return Err(StorageError::Compacted.into());
        }
        match self.ents.get((idx - offset) as usize) {
            Some(e) => Ok(e.term),
            None => Err(StorageError::Unavailable.into()),
        }
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self) -> Result<Snapshot> {
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
