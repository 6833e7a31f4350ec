//! One group's view of the WAL: its latest hard state, snapshot metadata
//! and compaction mark, the position of every live entry (the in-memory
//! index), and a cache of its most recent entries. Applies the WAL's only
//! log rule, which is not Raft's but any log's: entries are contiguous, and
//! an append at index `i` replaces everything from `i` on (a suffix
//! rewrite supersedes what it overlaps).

use std::collections::VecDeque;

use crate::raftpb::{Entry, HardState, SnapshotMetadata};

/// Where one entry lives: its term (kept here so that `term()` never
/// touches the disk), its segment, and the offset of its fixed part there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub term: u64,
    pub seg: u64,
    pub at: u32,
}

/// What one cached entry costs against the cache budget: its data and a
/// fixed overhead, so that a flood of empty entries is bounded too.
pub(crate) fn cache_cost(e: &Entry) -> u64 {
    e.data.len() as u64 + 64
}

/// A cached entry and the flush that carries it: it may be evicted only
/// once that flush is complete (before, the segment does not hold it yet).
pub(crate) type Cached = (Entry, u64);

/// Segment sequence meaning "no record".
pub(crate) const NO_SEG: u64 = u64::MAX;

/// The state of one group.
#[derive(Debug, Clone)]
pub(crate) struct GroupState {
    pub hard_state: Option<HardState>,
    pub snapshot: Option<SnapshotMetadata>,
    /// `(index, term)` of the compaction mark; `(0, 0)` if none.
    pub compacted: (u64, u64),
    /// Index of `locs[0]` (if any); the log is `first ..= first + len - 1`.
    pub first: u64,
    pub locs: VecDeque<Loc>,
    /// A suffix of the log: `cache[k]` has index `last + 1 - cache.len() + k`.
    pub cache: VecDeque<Cached>,
    /// Segments of the latest hard state, snapshot and compaction records.
    pub hs_seg: u64,
    pub snap_seg: u64,
    pub compact_seg: u64,
}

impl Default for GroupState {
    fn default() -> Self {
        GroupState {
            hard_state: None,
            snapshot: None,
            compacted: (0, 0),
            first: 1,
            locs: VecDeque::new(),
            cache: VecDeque::new(),
            hs_seg: NO_SEG,
            snap_seg: NO_SEG,
            compact_seg: NO_SEG,
        }
    }
}

impl GroupState {
    /// Last index of the log (the compaction point if it holds no entry).
    pub fn last_index(&self) -> u64 {
        self.first + self.locs.len() as u64 - 1
    }

    /// Index of the first cached entry.
    pub fn cache_first(&self) -> u64 {
        self.last_index() + 1 - self.cache.len() as u64
    }

    /// Oldest segment holding one of this group's latest state records.
    pub fn state_seg(&self) -> u64 {
        self.hs_seg.min(self.snap_seg).min(self.compact_seg)
    }

    /// Drops every entry at `index` and above; returns the cached bytes
    /// dropped. The caller has checked `index` against the log's bounds.
    pub fn truncate_from(&mut self, index: u64) -> u64 {
        let cache_first = self.cache_first();
        let keep = index.saturating_sub(self.first);
        if keep < self.locs.len() as u64 {
            self.locs.truncate(keep as usize);
        }
        let mut freed = 0;
        if index < cache_first + self.cache.len() as u64 {
            let keep = index.saturating_sub(cache_first) as usize;
            for (e, _) in self.cache.drain(keep..) {
                freed += cache_cost(&e);
            }
        }
        freed
    }

    /// Empties the cache, returning the bytes it held.
    pub fn drain_cache(&mut self) -> u64 {
        self.cache.drain(..).map(|(e, _)| cache_cost(&e)).sum()
    }

    /// Drops the whole log for a snapshot at `(index, term)`: the log
    /// restarts at `index + 1`. Returns the cached bytes dropped.
    pub fn restart(&mut self, index: u64, term: u64) -> u64 {
        let freed = self.drain_cache();
        self.locs.clear();
        self.compacted = (index, term);
        self.first = index + 1;
        freed
    }

    /// Records a compaction mark; returns the cached bytes dropped.
    pub fn compact(&mut self, index: u64, term: u64) -> u64 {
        if index <= self.compacted.0 {
            // The one mark at index 0 is a snapshot's at 0: only its term
            // can change (recovery meets it after a relocation).
            if index == 0 && self.compacted == (0, 0) {
                self.compacted.1 = term;
            }
            return 0;
        }
        self.compacted = (index, term);
        let mut freed = 0;
        if index >= self.last_index() {
            self.locs.clear();
            self.first = index + 1;
            freed += self.drain_cache();
        } else if index >= self.first {
            let drop = (index + 1 - self.first) as usize;
            self.locs.drain(..drop);
            self.first = index + 1;
            while !self.cache.is_empty() && self.cache_first() <= index {
                if let Some((e, _)) = self.cache.pop_front() {
                    freed += cache_cost(&e);
                }
            }
        }
        freed
    }
}
