//! The offset index of one group: for every retained batch, its base offset
//! and the Raft entry holding it, so that a read by offset finds its batch
//! in O(log n) (binary search) and retention drops the front in O(1) per
//! batch (a `VecDeque`). Offsets are dense: batches only, consecutive; the
//! count of batch `i` is the next batch's base minus its own (or the next
//! offset minus it, for the last), so it is not stored.
//!
//! Each entry also keeps what retention needs: the bytes of every batch
//! before it (size limits, by binary search) and the largest producer
//! timestamp up to it (age limits, by binary search: a running maximum is
//! monotonic even when producers' clocks are not). 32 bytes per retained
//! batch; retention bounds it.
//!
//! What is replicated (the same on every replica, in snapshots) and what is
//! local: `next_offset`, `total_bytes` and `max_timestamp_ms` are decided
//! by the committed entries alone. Which batches the index holds, and so
//! the earliest offset readable here, also depends on which entries this
//! replica holds: one that caught up by snapshot holds none before it.

use std::collections::VecDeque;
use std::fmt;

/// One retained batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchPos {
    pub(crate) base_offset: u64,
    pub(crate) entry_index: u64,
    /// Bytes of all batches appended before this one, ever.
    pub(crate) start_bytes: u64,
    /// The largest producer timestamp of this batch and all before it.
    pub(crate) max_timestamp_ms: u64,
}

/// Where the batch holding an offset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLocation {
    /// The Raft entry whose data is the batch.
    pub entry_index: u64,
    /// Offset of the batch's first record.
    pub base_offset: u64,
    /// Records in the batch.
    pub count: u64,
}

/// An offset this replica cannot read: below `earliest` (retention, or
/// before the snapshot this replica caught up from) or at or past
/// `latest`, the offset the next record will get (Kafka's "latest").
/// `offset == latest` is the tail: not yet written, not gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetOutOfRange {
    pub offset: u64,
    pub earliest: u64,
    pub latest: u64,
}

impl fmt::Display for OffsetOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "offset {} is outside the readable range [{}, {})",
            self.offset, self.earliest, self.latest
        )
    }
}

impl std::error::Error for OffsetOutOfRange {}

/// The offset index (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetIndex {
    batches: VecDeque<BatchPos>,
    /// First offset readable here; the first batch holds it (or there is no
    /// batch and it equals `next`).
    earliest: u64,
    next: u64,
    total_bytes: u64,
    max_timestamp_ms: u64,
}

impl OffsetIndex {
    /// An empty index of a new group: offsets start at 0.
    pub fn new() -> OffsetIndex {
        OffsetIndex::default()
    }

    /// The first offset readable here.
    pub fn earliest_offset(&self) -> u64 {
        self.earliest
    }

    /// The offset the next record will get.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Bytes of every batch ever appended (replicated).
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The largest producer timestamp ever appended (replicated).
    pub fn max_timestamp_ms(&self) -> u64 {
        self.max_timestamp_ms
    }

    /// Batches held.
    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// Bytes of the batches held (whole batches, the partly truncated first
    /// one included).
    pub fn retained_bytes(&self) -> u64 {
        self.batches
            .front()
            .map_or(0, |b| self.total_bytes - b.start_bytes)
    }

    /// The Raft entry holding the first batch held, if any.
    pub fn first_entry_index(&self) -> Option<u64> {
        self.batches.front().map(|b| b.entry_index)
    }

    /// Base offset of the last batch held, if any.
    pub fn last_base_offset(&self) -> Option<u64> {
        self.batches.back().map(|b| b.base_offset)
    }

    /// Records a batch of `count` records and `bytes` bytes applied from
    /// `entry_index`; returns its base offset. O(1) amortised. The caller
    /// (`LogState`) has checked that the offsets fit (`count >= 1`, entry
    /// indexes increasing).
    pub(crate) fn append(
        &mut self,
        entry_index: u64,
        count: u32,
        bytes: u64,
        timestamp_ms: u64,
    ) -> u64 {
        debug_assert!(count >= 1);
        debug_assert!(
            self.batches
                .back()
                .is_none_or(|b| b.entry_index < entry_index)
        );
        let base = self.next;
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        self.batches.push_back(BatchPos {
            base_offset: base,
            entry_index,
            start_bytes: self.total_bytes,
            max_timestamp_ms: self.max_timestamp_ms,
        });
        self.next = base + u64::from(count);
        self.total_bytes = self.total_bytes.saturating_add(bytes);
        base
    }

    /// Offset just past batch `i` held.
    fn end_of(&self, i: usize) -> u64 {
        self.batches.get(i + 1).map_or(self.next, |b| b.base_offset)
    }

    /// Retention: offsets below `offset` (capped at the next offset) are no
    /// longer readable; batches wholly below it are dropped. A batch that
    /// `offset` falls inside stays: its later records are still readable.
    pub(crate) fn truncate_before(&mut self, offset: u64) {
        let offset = offset.min(self.next);
        if offset <= self.earliest {
            return;
        }
        self.earliest = offset;
        while !self.batches.is_empty() && self.end_of(0) <= offset {
            self.batches.pop_front();
        }
        self.shrink();
    }

    /// This replica holds no entry below `entry_index` (it caught up from a
    /// snapshot taken there): batches in earlier entries are dropped and
    /// the earliest readable offset moves to the first batch still held.
    pub(crate) fn drop_entries_below(&mut self, entry_index: u64) {
        while self
            .batches
            .front()
            .is_some_and(|b| b.entry_index < entry_index)
        {
            self.batches.pop_front();
        }
        let first = self.batches.front().map_or(self.next, |b| b.base_offset);
        self.earliest = self.earliest.max(first);
        self.shrink();
    }

    /// Gives memory back after a large truncation (rare: retention).
    fn shrink(&mut self) {
        let (len, cap) = (self.batches.len(), self.batches.capacity());
        if cap > 1024 && len < cap / 4 {
            self.batches.shrink_to(len * 2);
        }
    }

    fn out_of_range(&self, offset: u64) -> OffsetOutOfRange {
        OffsetOutOfRange {
            offset,
            earliest: self.earliest,
            latest: self.next,
        }
    }

    /// Position of the batch holding `offset`, if readable here.
    fn position(&self, offset: u64) -> Result<usize, OffsetOutOfRange> {
        if offset < self.earliest || offset >= self.next {
            return Err(self.out_of_range(offset));
        }
        // The first batch holds `earliest`, so at least one base is
        // <= offset and the subtraction cannot underflow; `checked_sub`
        // turns a broken invariant into an error, not a panic.
        self.batches
            .partition_point(|b| b.base_offset <= offset)
            .checked_sub(1)
            .ok_or_else(|| self.out_of_range(offset))
    }

    fn location(&self, i: usize) -> Option<BatchLocation> {
        let b = self.batches.get(i)?;
        Some(BatchLocation {
            entry_index: b.entry_index,
            base_offset: b.base_offset,
            count: self.end_of(i) - b.base_offset,
        })
    }

    /// The batch holding `offset`. O(log n).
    pub fn lookup(&self, offset: u64) -> Result<BatchLocation, OffsetOutOfRange> {
        let i = self.position(offset)?;
        self.location(i).ok_or_else(|| self.out_of_range(offset))
    }

    /// The batch holding `offset` and every batch after it, in order: what
    /// a read from `offset` walks.
    pub fn locations_from(
        &self,
        offset: u64,
    ) -> Result<impl Iterator<Item = BatchLocation> + '_, OffsetOutOfRange> {
        let first = self.position(offset)?;
        Ok((first..self.batches.len()).filter_map(|i| self.location(i)))
    }

    /// The smallest batch boundary at or above the earliest offset from
    /// which the batches held add up to at most `max_bytes`: where a size
    /// limit truncates. O(log n).
    pub fn offset_keeping_bytes(&self, max_bytes: u64) -> u64 {
        let i = self
            .batches
            .partition_point(|b| self.total_bytes - b.start_bytes > max_bytes);
        self.batches
            .get(i)
            .map_or(self.next, |b| b.base_offset)
            .max(self.earliest)
    }

    /// The first batch boundary (at or above the earliest offset) after
    /// which every batch may have a producer timestamp of `cutoff_ms` or
    /// later: where an age limit truncates. O(log n).
    pub fn offset_newer_than(&self, cutoff_ms: u64) -> u64 {
        let i = self
            .batches
            .partition_point(|b| b.max_timestamp_ms < cutoff_ms);
        self.batches
            .get(i)
            .map_or(self.next, |b| b.base_offset)
            .max(self.earliest)
    }

    pub(crate) fn batches(&self) -> &VecDeque<BatchPos> {
        &self.batches
    }

    /// Rebuilds an index from a snapshot's decoded parts; `snapshot.rs`
    /// has checked every relation between them. The earliest readable
    /// offset is not stored: it is the retention point, or the first batch
    /// held if that is later (a replica that caught up by snapshot), or
    /// the next offset if no batch is held.
    pub(crate) fn from_parts(
        batches: VecDeque<BatchPos>,
        retention_offset: u64,
        next: u64,
        total_bytes: u64,
        max_timestamp_ms: u64,
    ) -> OffsetIndex {
        let first = batches.front().map_or(next, |b| b.base_offset);
        OffsetIndex {
            batches,
            earliest: retention_offset.max(first),
            next,
            total_bytes,
            max_timestamp_ms,
        }
    }
}

#[cfg(test)]
#[path = "offsets_tests.rs"]
mod tests;
