//! `Unstable`: the tail of the log (and possibly a snapshot) that the core
//! has accepted but the application has not yet confirmed as persisted.
//!
//! It plays two roles. Until a `Ready` hands them out, it is where new
//! entries and an incoming snapshot wait to be written. After that, and until
//! the write is acknowledged (`stable_to` / `stable_snap_to`), it keeps them
//! so that the log reads consistently even though `Storage` does not show
//! them yet. `offset` may be below the storage's last index: the next write
//! then truncates the stored log before appending.
//!
//! It never reads `Storage` and never allocates per entry: entries move in by
//! value and out by reference.

use crate::raftpb::{Entry, Snapshot};

use super::types::EntryId;

/// Unstable entries and snapshot. `entries[i]` has log index `offset + i`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unstable {
    /// An incoming snapshot not yet persisted, if any.
    pub snapshot: Option<Snapshot>,
    /// Entries not yet persisted.
    pub entries: Vec<Entry>,
    /// Log index of `entries[0]`.
    pub offset: u64,
    /// The snapshot has been handed out for writing.
    pub snapshot_in_progress: bool,
    /// Entries below this index (exclusive bound, like `offset`) have been
    /// handed out for writing. Invariant: `offset <= offset_in_progress`.
    pub offset_in_progress: u64,
}

impl Unstable {
    /// An empty unstable log whose next entry would have index `offset`.
    pub fn new(offset: u64) -> Self {
        Unstable {
            offset,
            offset_in_progress: offset,
            ..Default::default()
        }
    }

    fn snapshot_index(&self) -> Option<u64> {
        self.snapshot
            .as_ref()
            .map(|s| s.metadata.as_ref().map_or(0, |m| m.index))
    }

    /// The first index of the log if it is defined here, i.e. one past the
    /// unstable snapshot.
    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot_index().map(|i| i + 1)
    }

    /// The last index of the log if it is defined here: the last unstable
    /// entry, else the unstable snapshot.
    pub fn maybe_last_index(&self) -> Option<u64> {
        if !self.entries.is_empty() {
            return Some(self.offset + self.entries.len() as u64 - 1);
        }
        self.snapshot_index()
    }

    /// The term of entry `i` if this holds it (as an entry, or as the
    /// snapshot's last entry).
    pub fn maybe_term(&self, i: u64) -> Option<u64> {
        if i < self.offset {
            let meta = self.snapshot.as_ref()?.metadata.as_ref();
            let (index, term) = meta.map_or((0, 0), |m| (m.index, m.term));
            return (index == i).then_some(term);
        }
        let last = self.maybe_last_index()?;
        if i > last {
            return None;
        }
        Some(self.entries[(i - self.offset) as usize].term)
    }

    /// Entries not yet handed out for writing.
    pub fn next_entries(&self) -> &[Entry] {
        let in_progress = (self.offset_in_progress - self.offset) as usize;
        &self.entries[in_progress..]
    }

    /// The snapshot, if there is one not yet handed out for writing.
    pub fn next_snapshot(&self) -> Option<&Snapshot> {
        if self.snapshot_in_progress {
            return None;
        }
        self.snapshot.as_ref()
    }

    /// Marks all current entries and the snapshot as handed out for writing,
    /// so the next `Ready` does not carry them again. Anything added later
    /// is "next" again until the following call.
    pub fn accept_in_progress(&mut self) {
        if let Some(last) = self.entries.last() {
            self.offset_in_progress = last.index + 1;
        }
        if self.snapshot.is_some() {
            self.snapshot_in_progress = true;
        }
    }

    /// The application persisted the entries up to `id`: drop them. Ignored
    /// (it is a stale acknowledgement) when `id` is not an unstable entry
    /// any more, or was replaced by one of another term while the write was
    /// under way.
    pub fn stable_to(&mut self, id: EntryId) {
        let Some(term) = self.maybe_term(id.index) else {
            // Not held here (already stable, or never was).
            return;
        };
        if id.index < self.offset {
            // It matched the unstable snapshot, not an entry.
            return;
        }
        if term != id.term {
            // The entry was overwritten after the write started.
            return;
        }
        let n = (id.index + 1 - self.offset) as usize;
        self.entries.drain(..n);
        self.offset = id.index + 1;
        self.offset_in_progress = self.offset_in_progress.max(self.offset);
        self.shrink_entries_array();
    }

    /// Releases the buffer once the entries are all gone, so a burst of
    /// entries does not pin a large allocation. Keeping it would not save an
    /// allocation either: the next append to an empty tail adopts the
    /// caller's `Vec` instead.
    fn shrink_entries_array(&mut self) {
        if self.entries.is_empty() {
            self.entries = Vec::new();
        }
    }

    /// The application persisted the snapshot at index `i`: drop it, unless
    /// it was replaced meanwhile.
    pub fn stable_snap_to(&mut self, i: u64) {
        if self.snapshot_index() == Some(i) {
            self.snapshot = None;
            self.snapshot_in_progress = false;
        }
    }

    /// Replaces everything with snapshot `s`; the log continues right after
    /// it.
    pub fn restore(&mut self, s: Snapshot) {
        self.offset = s.metadata.as_ref().map_or(0, |m| m.index) + 1;
        self.offset_in_progress = self.offset;
        self.entries = Vec::new();
        self.snapshot = Some(s);
        self.snapshot_in_progress = false;
    }

    /// Appends `ents` (contiguous, non-empty), first dropping any unstable
    /// entries at or after `ents[0].index`.
    pub fn truncate_and_append(&mut self, ents: Vec<Entry>) {
        let Some(head) = ents.first() else {
            return;
        };
        let from = head.index;
        let end = self.offset + self.entries.len() as u64;
        if from == end {
            // The common case: a plain append.
            if self.entries.is_empty() {
                self.entries = ents;
            } else {
                self.entries.extend(ents);
            }
        } else if from <= self.offset {
            // The whole unstable tail (and possibly some stable entries) is
            // being replaced: nothing here is in progress any more.
            self.entries = ents;
            self.offset = from;
            self.offset_in_progress = from;
        } else {
            // Keep [offset, from), then append.
            self.must_check_out_of_bounds(self.offset, from);
            self.entries.truncate((from - self.offset) as usize);
            self.entries.extend(ents);
            // Only writes of entries before `from` are still meaningful.
            self.offset_in_progress = self.offset_in_progress.min(from);
        }
    }

    /// Entries `[lo, hi)`, which must all be held here.
    pub fn slice(&self, lo: u64, hi: u64) -> &[Entry] {
        self.must_check_out_of_bounds(lo, hi);
        &self.entries[(lo - self.offset) as usize..(hi - self.offset) as usize]
    }

    /// Panics unless `offset <= lo <= hi <= offset + len(entries)`.
    fn must_check_out_of_bounds(&self, lo: u64, hi: u64) {
        assert!(lo <= hi, "invalid unstable.slice {lo} > {hi}");
        let upper = self.offset + self.entries.len() as u64;
        assert!(
            lo >= self.offset && hi <= upper,
            "unstable.slice[{lo},{hi}) out of bound [{},{upper}]",
            self.offset
        );
    }
}

#[cfg(test)]
#[path = "log_unstable_tests.rs"]
mod tests;
