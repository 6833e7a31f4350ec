//! `RaftLog`: one node's view of the replicated log, stitched from the stable
//! part (`Storage`) and the unstable tail (`Unstable`), plus the commit and
//! apply cursors and the flow control of entries handed out for applying.
//!
//! It answers the questions the protocol asks of a log (does it hold this
//! entry, where does it conflict, is a candidate up to date, what may be
//! committed or applied) and never does I/O itself: writes reach storage only
//! through the application acting on a `Ready`.
//!
//! Cursor invariants: `applied <= applying <= committed <= last_index()`.
//! Breaking one is a bug in the caller or the storage, and panics with the
//! rule that broke.

use std::fmt;
use std::ops::ControlFlow;

use super::config::NO_LIMIT;
use super::errors::{Error, Result, StorageError};
use super::log_unstable::Unstable;
use super::storage::Storage;
use super::types::{EntryId, LogSlice, ents_size, limit_size};
use crate::raftpb::{Entry, Snapshot};

/// The log of one Raft node.
#[derive(Debug)]
pub struct RaftLog<S: Storage> {
    /// Stable entries since the last snapshot.
    pub store: S,
    /// Entries and snapshot not yet persisted to `store`.
    pub unstable: Unstable,
    /// Highest index known to be stored on a quorum.
    pub committed: u64,
    /// Highest index handed to the application for applying (some of those
    /// may not be applied yet). Moves when a `Ready` is accepted.
    pub applying: u64,
    /// Highest index the application has applied. Moves on `advance`.
    pub applied: u64,
    /// Byte limit of entries handed out for applying and not yet
    /// acknowledged by `applied_to`.
    pub max_applying_ents_size: u64,
    /// Bytes of entries handed out for applying and not yet acknowledged.
    pub applying_ents_size: u64,
    /// Handing out committed entries is paused until enough of the
    /// outstanding ones are acknowledged.
    pub applying_ents_paused: bool,
}

impl<S: Storage> RaftLog<S> {
    /// A log over `store` with no limit on entries being applied.
    pub fn new(store: S) -> Self {
        Self::new_with_size(store, NO_LIMIT)
    }

    /// A log over `store`; at most `max_applying_ents_size` bytes of entries
    /// are outstanding for applying at once. Commit and apply start at the
    /// snapshot point: everything before it is applied by definition.
    ///
    /// Panics if the storage cannot report its bounds.
    pub fn new_with_size(store: S, max_applying_ents_size: u64) -> Self {
        let first = must(store.first_index(), "Storage::first_index");
        let last = must(store.last_index(), "Storage::last_index");
        RaftLog {
            store,
            unstable: Unstable::new(last + 1),
            committed: first - 1,
            applying: first - 1,
            applied: first - 1,
            max_applying_ents_size,
            applying_ents_size: 0,
            applying_ents_paused: false,
        }
    }

    /// Appends the leader's slice `a` if the log holds `a.prev`, truncating
    /// any conflicting suffix, and commits up to `committed` (bounded by what
    /// the slice proves to be in the leader's log). Returns the last index of
    /// the slice, or `None` if `a.prev` does not match (the leader must back
    /// off).
    ///
    /// Panics if the slice conflicts with a committed entry: two different
    /// entries were committed at one index, which Raft rules out.
    pub fn maybe_append(&mut self, a: LogSlice, committed: u64) -> Option<u64> {
        if !self.match_term(a.prev) {
            return None;
        }
        let last_new = a.last_index();
        let ci = self.find_conflict(&a.entries);
        if ci != 0 {
            assert!(
                ci > self.committed,
                "entry {ci} conflict with committed entry [committed({})]: committed entries never change",
                self.committed
            );
            let offset = a.prev.index + 1;
            let from = ci - offset;
            assert!(
                from <= a.entries.len() as u64,
                "index, {from}, is out of range [{}]",
                a.entries.len()
            );
            let mut entries = a.entries;
            // Entries before the conflict are already in the log; move the
            // rest without cloning.
            entries.drain(..from as usize);
            self.append(entries);
        }
        self.commit_to(committed.min(last_new));
        Some(last_new)
    }

    /// Appends `ents` to the log, replacing any entries at or after
    /// `ents[0].index`. Returns the new last index.
    ///
    /// Panics if that would replace a committed entry.
    pub fn append(&mut self, ents: Vec<Entry>) -> u64 {
        let Some(head) = ents.first() else {
            return self.last_index();
        };
        let after = head.index - 1;
        assert!(
            after >= self.committed,
            "after({after}) is out of range [committed({})]: cannot overwrite committed entries",
            self.committed
        );
        self.unstable.truncate_and_append(ents);
        self.last_index()
    }

    /// The index of the first entry of `ents` (contiguous, increasing) that
    /// this log does not hold with the same term: a conflict if the log has
    /// an entry there, else the first new entry. 0 if the log holds them all.
    pub fn find_conflict(&self, ents: &[Entry]) -> u64 {
        ents.iter()
            .map(EntryId::of)
            .find(|&id| !self.match_term(id))
            .map_or(0, |id| id.index)
    }

    /// The best guess of where this log stops matching a log known only to
    /// hold an entry of `term` at `index`: the largest `i <= index` whose
    /// term is `<= term` or unknown (compacted or missing). Returns `(i,
    /// term(i))`, the term being 0 when unknown.
    ///
    /// Leader and follower use it to skip, in one round trip, all entries of
    /// a term the other side cannot have.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut index = index;
        while index > 0 {
            match self.term(index) {
                // Unknown: it may match, so stop here.
                Err(_) => return (index, 0),
                Ok(our) if our <= term => return (index, our),
                Ok(_) => index -= 1,
            }
        }
        (0, 0)
    }

    /// Unstable entries not yet handed out for writing.
    pub fn next_unstable_ents(&self) -> &[Entry] {
        self.unstable.next_entries()
    }

    /// Whether there are unstable entries not yet handed out for writing.
    pub fn has_next_unstable_ents(&self) -> bool {
        !self.next_unstable_ents().is_empty()
    }

    /// Whether there are unstable entries, handed out for writing or not.
    pub fn has_next_or_in_progress_unstable_ents(&self) -> bool {
        !self.unstable.entries.is_empty()
    }

    /// Committed entries not yet handed out for applying, at most
    /// `max_applying_ents_size - applying_ents_size` bytes (but at least one
    /// entry). With `allow_unstable`, committed entries not yet persisted
    /// locally may be included (a leader may apply what a quorum of others
    /// stored); otherwise only locally stable ones. Empty while a snapshot is
    /// pending, so snapshot and entries are never applied out of order.
    pub fn next_committed_ents(&self, allow_unstable: bool) -> Vec<Entry> {
        if self.applying_ents_paused || self.has_next_or_in_progress_snapshot() {
            return Vec::new();
        }
        let (lo, hi) = (
            self.applying + 1,
            self.max_appliable_index(allow_unstable) + 1,
        );
        if lo >= hi {
            return Vec::new();
        }
        let max_size = self
            .max_applying_ents_size
            .checked_sub(self.applying_ents_size)
            .filter(|&m| m > 0)
            .unwrap_or_else(|| {
                panic!(
                    "applying entry size ({}-{}) not positive: application must pause at the limit",
                    self.max_applying_ents_size, self.applying_ents_size
                )
            });
        match self.slice(lo, hi, max_size) {
            Ok(ents) => ents,
            Err(e) => panic!(
                "unexpected error when getting unapplied entries ({e}): committed entries must be readable"
            ),
        }
    }

    /// Whether `next_committed_ents` would return anything; cheap (reads no
    /// entries).
    pub fn has_next_committed_ents(&self, allow_unstable: bool) -> bool {
        if self.applying_ents_paused || self.has_next_or_in_progress_snapshot() {
            return false;
        }
        self.applying < self.max_appliable_index(allow_unstable)
    }

    /// The highest committed index that may be applied: `committed`, bounded
    /// by the last stable index unless `allow_unstable`.
    pub fn max_appliable_index(&self, allow_unstable: bool) -> u64 {
        if allow_unstable {
            self.committed
        } else {
            self.committed.min(self.unstable.offset - 1)
        }
    }

    /// The unstable snapshot, if not yet handed out for writing.
    pub fn next_unstable_snapshot(&self) -> Option<&Snapshot> {
        self.unstable.next_snapshot()
    }

    /// Whether there is an unstable snapshot not yet handed out for writing.
    pub fn has_next_unstable_snapshot(&self) -> bool {
        self.unstable.next_snapshot().is_some()
    }

    /// Whether there is an unstable snapshot, handed out for writing or not.
    pub fn has_next_or_in_progress_snapshot(&self) -> bool {
        self.unstable.snapshot.is_some()
    }

    /// The newest snapshot: the unstable one, else the storage's.
    pub fn snapshot(&self) -> Result<Snapshot> {
        match &self.unstable.snapshot {
            Some(s) => Ok(s.clone()),
            None => self.store.snapshot(),
        }
    }

    /// The first index of the log (one past the newest snapshot).
    pub fn first_index(&self) -> u64 {
        match self.unstable.maybe_first_index() {
            Some(i) => i,
            None => must(self.store.first_index(), "Storage::first_index"),
        }
    }

    /// The last index of the log.
    pub fn last_index(&self) -> u64 {
        match self.unstable.maybe_last_index() {
            Some(i) => i,
            None => must(self.store.last_index(), "Storage::last_index"),
        }
    }

    /// Raises `committed` to `tocommit` (never lowers it).
    ///
    /// Panics if `tocommit` is past the last index: the log that was
    /// acknowledged to the leader has been lost.
    pub fn commit_to(&mut self, tocommit: u64) {
        if self.committed < tocommit {
            let last = self.last_index();
            assert!(
                tocommit <= last,
                "tocommit({tocommit}) is out of range [lastIndex({last})]. Was the raft log corrupted, truncated, or lost?"
            );
            self.committed = tocommit;
        }
    }

    /// The application applied everything up to `i`, releasing `size` bytes
    /// of the applying budget.
    ///
    /// Panics unless `applied <= i <= committed`.
    pub fn applied_to(&mut self, i: u64, size: u64) {
        assert!(
            i <= self.committed && i >= self.applied,
            "applied({i}) is out of range [prevApplied({}), committed({})]",
            self.applied,
            self.committed
        );
        self.applied = i;
        self.applying = self.applying.max(i);
        // Saturate: the budget is advisory, and acknowledging entries that
        // were never counted must not wrap around.
        self.applying_ents_size = self.applying_ents_size.saturating_sub(size);
        self.applying_ents_paused = self.applying_ents_size >= self.max_applying_ents_size;
    }

    /// Entries up to `i`, of `size` bytes, were handed out for applying.
    ///
    /// Application pauses when the outstanding bytes reach the limit, or
    /// when `i` stops short of what could have been handed out (the hand-out
    /// was cut by the limit, so the next entry would exceed it).
    ///
    /// Panics if `i` is past `committed`.
    pub fn accept_applying(&mut self, i: u64, size: u64, allow_unstable: bool) {
        assert!(
            i <= self.committed,
            "applying({i}) is out of range [prevApplying({}), committed({})]",
            self.applying,
            self.committed
        );
        self.applying = i;
        self.applying_ents_size = self.applying_ents_size.saturating_add(size);
        self.applying_ents_paused = self.applying_ents_size >= self.max_applying_ents_size
            || i < self.max_appliable_index(allow_unstable);
    }

    /// The entries up to `id` were persisted.
    pub fn stable_to(&mut self, id: EntryId) {
        self.unstable.stable_to(id);
    }

    /// The snapshot at index `i` was persisted.
    pub fn stable_snap_to(&mut self, i: u64) {
        self.unstable.stable_snap_to(i);
    }

    /// The current unstable entries and snapshot were handed out for
    /// writing; later `Ready`s do not carry them again.
    pub fn accept_unstable(&mut self) {
        self.unstable.accept_in_progress();
    }

    /// The id of the last entry.
    ///
    /// Panics if its term cannot be read: the last entry always can be.
    pub fn last_entry_id(&self) -> EntryId {
        let index = self.last_index();
        match self.term(index) {
            Ok(term) => EntryId { term, index },
            Err(e) => panic!("unexpected error when getting the last term at {index}: {e}"),
        }
    }

    /// The term of entry `i`, valid for `i` in `[first_index() - 1,
    /// last_index()]` (the entry just before the first keeps its term for
    /// matching). `Compacted` below that range, `Unavailable` above it.
    ///
    /// Panics on any other storage error.
    pub fn term(&self, i: u64) -> Result<u64> {
        // The unstable tail answers first: it may be the only place holding
        // `i`, and asking it costs no storage call.
        if let Some(t) = self.unstable.maybe_term(i) {
            return Ok(t);
        }
        if i.saturating_add(1) < self.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if i > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        match self.store.term(i) {
            Ok(t) => Ok(t),
            Err(e @ Error::Storage(StorageError::Compacted | StorageError::Unavailable)) => Err(e),
            Err(e) => panic!("unexpected error from Storage::term({i}): {e}"),
        }
    }

    /// Entries from `i` to the end, at most `max_size` bytes (at least one).
    /// Empty if `i` is past the last index.
    pub fn entries(&self, i: u64, max_size: u64) -> Result<Vec<Entry>> {
        let last = self.last_index();
        if i > last {
            return Ok(Vec::new());
        }
        self.slice(i, last + 1, max_size)
    }

    /// Every entry of the log.
    pub fn all_entries(&self) -> Vec<Entry> {
        match self.entries(self.first_index(), NO_LIMIT) {
            Ok(ents) => ents,
            Err(e) => panic!("unexpected error reading all entries: {e}"),
        }
    }

    /// Whether a log ending in `their` is at least as up to date as this
    /// one: a later last term wins; with equal last terms, the longer log.
    pub fn is_up_to_date(&self, their: EntryId) -> bool {
        let our = self.last_entry_id();
        their.term > our.term || (their.term == our.term && their.index >= our.index)
    }

    /// Whether this log holds entry `id` (an entry with its index and term).
    pub fn match_term(&self, id: EntryId) -> bool {
        matches!(self.term(id.index), Ok(t) if t == id.term)
    }

    /// Commits up to `at.index` if that is progress and this log holds `at`:
    /// a leader may only commit by counting replicas of an entry of its own
    /// term. Returns whether `committed` moved.
    pub fn maybe_commit(&mut self, at: EntryId) -> bool {
        // A term of 0 never matches: leaders campaign at term >= 1, so a 0
        // here is a bug, not something to commit on.
        if at.term != 0 && at.index > self.committed && self.match_term(at) {
            self.commit_to(at.index);
            return true;
        }
        false
    }

    /// Replaces the log with snapshot `s`, which is committed by definition.
    pub fn restore(&mut self, s: Snapshot) {
        self.committed = s.metadata.as_ref().map_or(0, |m| m.index);
        self.unstable.restore(s);
    }

    /// Visits the entries `[lo, hi)` in consecutive pages of at most
    /// `page_size` bytes (a page holds at least one entry, so a single large
    /// entry may exceed it). Stops early when `v` breaks. The entries must
    /// exist; an error may come after some pages were visited.
    ///
    /// Panics if the storage returns no entries for a non-empty range (it
    /// must return at least one).
    pub fn scan<F>(&self, lo: u64, hi: u64, page_size: u64, mut v: F) -> Result<()>
    where
        F: FnMut(&[Entry]) -> ControlFlow<()>,
    {
        let mut lo = lo;
        while lo < hi {
            let ents = self.slice(lo, hi, page_size)?;
            assert!(
                !ents.is_empty(),
                "got 0 entries in [{lo}, {hi}): a read of a non-empty range returns at least one entry"
            );
            if v(&ents).is_break() {
                return Ok(());
            }
            lo += ents.len() as u64;
        }
        Ok(())
    }

    /// Entries `[lo, hi)`, at most `max_size` bytes but at least one.
    /// `Compacted` if `lo` is before the first index.
    ///
    /// Panics if `lo > hi` or `hi` is past the end of the log.
    pub fn slice(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        self.must_check_out_of_bounds(lo, hi)?;
        if lo == hi {
            return Ok(Vec::new());
        }
        let offset = self.unstable.offset;
        if lo >= offset {
            return Ok(limit_size(self.unstable.slice(lo, hi), max_size).to_vec());
        }

        let cut = hi.min(offset);
        let mut ents = match self.store.entries(lo, cut, max_size) {
            Ok(ents) => ents,
            Err(e @ Error::Storage(StorageError::Compacted)) => return Err(e),
            Err(Error::Storage(StorageError::Unavailable)) => {
                panic!("entries[{lo}:{cut}) is unavailable from storage")
            }
            Err(e) => panic!("unexpected error from Storage::entries({lo}, {cut}): {e}"),
        };
        if hi <= offset {
            return Ok(ents);
        }

        // The storage cut the range short: the next entry would not fit, so
        // no unstable entry will either.
        if (ents.len() as u64) < cut - lo {
            return Ok(ents);
        }
        let size = ents_size(&ents);
        if size >= max_size {
            return Ok(ents);
        }
        let unstable = limit_size(self.unstable.slice(offset, hi), max_size - size);
        // limit_size returns one entry even if it alone exceeds the budget;
        // here the budget is what remains after the stable part, so such an
        // entry must be left out.
        if unstable.len() == 1 && size + ents_size(unstable) > max_size {
            return Ok(ents);
        }
        ents.extend_from_slice(unstable);
        Ok(ents)
    }

    /// Checks `first_index() <= lo <= hi <= last_index() + 1`: `Compacted`
    /// below the first index, a panic for the rest (a caller bug).
    fn must_check_out_of_bounds(&self, lo: u64, hi: u64) -> Result<()> {
        assert!(lo <= hi, "invalid slice {lo} > {hi}");
        let first = self.first_index();
        if lo < first {
            return Err(StorageError::Compacted.into());
        }
        let last = self.last_index();
        assert!(
            hi <= last + 1,
            "slice[{lo},{hi}) out of bound [{first},{last}]"
        );
        Ok(())
    }

    /// The term from a `term()` result, with the out-of-range errors read as
    /// 0 ("no such entry"), which is what log messages and hints want.
    ///
    /// Panics on any other error.
    pub fn zero_term_on_out_of_bounds(&self, t: Result<u64>) -> u64 {
        match t {
            Ok(t) => t,
            Err(Error::Storage(StorageError::Compacted | StorageError::Unavailable)) => 0,
            Err(e) => panic!("unexpected error ({e})"),
        }
    }
}

impl<S: Storage> fmt::Display for RaftLog<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "committed={}, applied={}, applying={}, unstable.offset={}, unstable.offsetInProgress={}, len(unstable.Entries)={}",
            self.committed,
            self.applied,
            self.applying,
            self.unstable.offset,
            self.unstable.offset_in_progress,
            self.unstable.entries.len()
        )
    }
}

/// Unwraps a storage answer the log cannot work without; a storage unable
/// to report its own bounds leaves no safe way forward.
fn must(r: Result<u64>, what: &str) -> u64 {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed ({e}): storage must always report its bounds"),
    }
}

#[cfg(test)]
#[path = "raft_log_tests.rs"]
mod tests;
