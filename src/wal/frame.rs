//! Framing: every write call (entries, hard states, snapshot metadata,
//! compaction marks) becomes records appended to the pending flush's part
//! for the active segment, each record's crc seeded with its segment and
//! flush, after `reserve` has made room (an early flush, a roll). The
//! in-memory index and cache follow each call as it is queued.

use bytes::BufMut;
use prost::Message as _;

use super::budget::{Class, reserve_of};
use super::disk::Disk;
use super::error::{Error, Result};
use super::format::{
    self, BATCH_RECORD_SIZE, COMPACT_PAYLOAD, ENTRIES_FIXED, ENTRY_FIXED, HARD_STATE_PAYLOAD,
    MAX_SNAPSHOT_META, RECORD_HEADER_SIZE, RecordType, SEGMENT_HEADER_SIZE, SNAPSHOT_FIXED,
};
use super::gc::unlive;
use super::group::{Loc, cache_cost};
use super::{MAX_INDEX, Ticket, Wal};
use crate::raftpb::{Entry, HardState, SnapshotMetadata};

/// The records of one flush destined for one segment; `buf` starts with
/// room for the batch record, filled in when the flush goes out.
pub(super) struct Part {
    pub(super) seq: u64,
    pub(super) offset: u64,
    pub(super) buf: Vec<u8>,
    /// The batch's flush sequence and its predecessor's, fixed when the
    /// part is opened so that each record's crc can be seeded with them as
    /// it is framed (one pass of crc32 per record, as before).
    pub(super) batch_seq: u64,
    pub(super) prev_seq: u64,
    pub(super) seed: u32,
    pub(super) records: u32,
}

/// Zeros written after each flush's records in a segment (an all-zero
/// record header reads as "end of data"); space for them is always kept.
pub(super) const END_MARKER: usize = RECORD_HEADER_SIZE;

impl<D: Disk> Wal<D> {
    /// The ticket of a call that queues nothing: the flush carrying what
    /// was queued before it (the pending flush if records are pending, else
    /// the last one started, which may still be in flight).
    pub(super) fn noop_ticket(&self) -> Ticket {
        if self.parts.is_empty() {
            Ticket(self.next_flush - 1)
        } else {
            Ticket(self.next_flush)
        }
    }

    pub(super) fn segment_size(&self) -> u64 {
        self.segments
            .get(&self.active)
            .map_or(self.opts.segment_size, |s| s.size)
    }

    /// Largest record (header included) of `class` that fits in one
    /// flush of one segment (entries: short of the segment's state
    /// reserve).
    pub(super) fn max_record(&self, class: Class) -> usize {
        let size = self.segment_size();
        let seg = (size - SEGMENT_HEADER_SIZE - reserve_of(class, size)) as usize - END_MARKER;
        seg.min(self.opts.max_flush_bytes) - BATCH_RECORD_SIZE
    }

    /// Where records of `class` must end in the active segment: its end
    /// for state records, short of the reserve for entries.
    pub(super) fn segment_limit(&self, class: Class) -> u64 {
        let size = self.segment_size();
        size - reserve_of(class, size)
    }

    pub(super) fn needs_batch(&self) -> bool {
        self.parts.last().is_none_or(|p| p.seq != self.active)
    }

    /// Whether the segment after the active one is made (a roll to it
    /// cannot be refused for room).
    pub(super) fn next_made(&self) -> bool {
        matches!(&self.prepared, Some((h, Ok(_))) if h.sequence == self.active + 1)
    }

    /// Bytes a record of `class` can take right now without a roll or an
    /// early flush.
    pub(super) fn room(&self, class: Class) -> usize {
        let hdr = if self.needs_batch() {
            BATCH_RECORD_SIZE
        } else {
            0
        };
        let seg = (self.segment_limit(class).saturating_sub(self.write_pos) as usize)
            .saturating_sub(END_MARKER);
        let flush = self.opts.max_flush_bytes - self.pending_bytes;
        seg.min(flush).saturating_sub(hdr)
    }

    /// Makes room for a record of `len` bytes of `class` (flushing early
    /// or rolling to a new segment as needed) and returns its segment and
    /// offset. The caller then appends exactly `len` bytes to the last
    /// part.
    pub(super) fn reserve(&mut self, len: usize, class: Class) -> Result<(u64, u64)> {
        self.make_room(len, class)?;
        if self.needs_batch() {
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.clear();
            buf.resize(BATCH_RECORD_SIZE, 0);
            let batch_seq = self.next_batch_seq;
            self.parts.push(Part {
                seq: self.active,
                offset: self.write_pos,
                buf,
                batch_seq,
                prev_seq: self.last_batch_seq,
                seed: format::record_seed(self.active, batch_seq),
                records: 0,
            });
            self.last_batch_seq = batch_seq;
            self.next_batch_seq += 1;
            self.write_pos += BATCH_RECORD_SIZE as u64;
            self.pending_bytes += BATCH_RECORD_SIZE;
        }
        let at = self.write_pos;
        self.write_pos += len as u64;
        self.pending_bytes += len;
        Ok((self.active, at))
    }

    /// Flushes early or rolls to a new segment, as needed, so that a record
    /// of `len` bytes of `class` fits the pending flush and the active
    /// segment (an entries record short of the segment's state reserve);
    /// queues nothing. `reserve` starts with it; a call that changes state
    /// before its first record (an append truncating the log) calls it
    /// first, so that a roll refused for lack of space (`Error::NoSpace`)
    /// leaves the call refused whole.
    pub(super) fn make_room(&mut self, len: usize, class: Class) -> Result<()> {
        debug_assert!(len <= self.max_record(class));
        if self.pending_bytes + len + BATCH_RECORD_SIZE > self.opts.max_flush_bytes
            && !self.parts.is_empty()
            && len > self.room(class)
        {
            self.flush()?;
        }
        let hdr = if self.needs_batch() {
            BATCH_RECORD_SIZE
        } else {
            0
        };
        if self.write_pos + (hdr + len + END_MARKER) as u64 > self.segment_limit(class) {
            self.roll()?;
        }
        Ok(())
    }

    /// The part that `reserve` just made room in.
    pub(super) fn tail_part(&mut self) -> &mut Part {
        match self.parts.last_mut() {
            Some(p) => p,
            None => unreachable!("reserve always leaves a part"),
        }
    }

    /// Queues `entries` (consecutive indexes) of `group` for the next
    /// flush. An append at an index at or below the group's last index
    /// supersedes the entries from there on, now and after recovery.
    /// Invalid input is refused before anything changes; an I/O failure
    /// while queueing (a roll, an early flush) poisons the WAL, since the
    /// append may then be half queued.
    ///
    /// No room for a new segment (`Error::NoSpace`) poisons nothing. It
    /// refuses the append before anything changes, unless the append needs
    /// more than one new segment (it is longer than a segment) and a later
    /// one is refused: its first runs are then queued, and the log ends at
    /// the last entry queued, a prefix of the append that is as consistent
    /// as any log (the entries it superseded are superseded). Appending the
    /// rest, or all of it again, goes on from there.
    pub fn append_entries(&mut self, group: u64, entries: &[Entry]) -> Result<Ticket> {
        self.check_writable()?;
        let Some(head) = entries.first() else {
            return Ok(self.noop_ticket());
        };
        let first = head.index;
        let max_data =
            self.max_record(Class::Log) - RECORD_HEADER_SIZE - ENTRIES_FIXED - ENTRY_FIXED;
        if let Some(last) = entries.last()
            && last.index > MAX_INDEX
        {
            return Err(Error::Limit {
                what: "entry index",
                value: last.index,
                limit: MAX_INDEX,
            });
        }
        for (k, e) in entries.iter().enumerate() {
            if e.index != first + k as u64 {
                return Err(Error::NonConsecutive {
                    group,
                    expected: first + k as u64,
                    found: e.index,
                });
            }
            if e.data.len() > max_data {
                return Err(Error::Limit {
                    what: "entry data bytes",
                    value: e.data.len() as u64,
                    limit: max_data as u64,
                });
            }
            if !(0..=255).contains(&e.r#type) {
                return Err(Error::Limit {
                    what: "entry type",
                    value: e.r#type as u64,
                    limit: 255,
                });
            }
        }
        let (last, compacted) = self
            .groups
            .get(&group)
            .map_or((0, 0), |g| (g.last_index(), g.compacted.0));
        if first <= compacted || first > last + 1 {
            // Refused before anything changes (not even the group's entry).
            return Err(Error::NotContiguous {
                group,
                first,
                last,
                compacted,
            });
        }
        // Room for the first record before the log is truncated, so that a
        // full disk refuses the append whole (see above). An append that
        // would fill this segment's tail and roll for the rest, while the
        // next segment is not made yet, rolls first instead: a roll
        // refused half-way would leave it half queued.
        let first_len = RECORD_HEADER_SIZE + ENTRIES_FIXED + ENTRY_FIXED + head.data.len();
        let total = RECORD_HEADER_SIZE
            + ENTRIES_FIXED
            + entries
                .iter()
                .map(|e| ENTRY_FIXED + e.data.len())
                .sum::<usize>();
        let need = if total > self.room(Class::Log) && !self.next_made() {
            total.min(self.max_record(Class::Log))
        } else {
            first_len
        };
        self.make_room(need, Class::Log)?;
        let g = self.groups.entry(group).or_default();
        let keep = first.saturating_sub(g.first) as usize;
        unlive(&mut self.live, g.locs.range(keep.min(g.locs.len())..));
        let freed = g.truncate_from(first);
        if g.locs.is_empty() {
            g.first = first;
        }
        self.cache_used -= freed;

        self.encode_runs(group, entries, false)?;
        Ok(Ticket(self.next_flush))
    }

    /// Frames `entries` into as many records as needed (`Entries`, or
    /// `Relocate` for entries already in the log that move forward) and
    /// indexes them: appended entries are pushed (and cached), relocated
    /// ones only change place.
    pub(super) fn encode_runs(
        &mut self,
        group: u64,
        entries: &[Entry],
        relocate: bool,
    ) -> Result<()> {
        let ty = if relocate {
            RecordType::Relocate
        } else {
            RecordType::Entries
        };
        let max_rec = self.max_record(Class::Log);
        let mut i = 0;
        while i < entries.len() {
            // Fill what is left of the current segment and flush before
            // rolling, so that a long append does not waste a segment tail.
            let room = self.room(Class::Log);
            let first_len = ENTRY_FIXED + entries[i].data.len();
            // A relocation is never split to fill a segment's tail: one
            // record (the caller checked it fits) moves a whole log at once.
            let cap = if !relocate && RECORD_HEADER_SIZE + ENTRIES_FIXED + first_len <= room {
                room
            } else {
                max_rec
            };
            let mut len = RECORD_HEADER_SIZE + ENTRIES_FIXED;
            let mut j = i;
            while j < entries.len() && len + ENTRY_FIXED + entries[j].data.len() <= cap {
                len += ENTRY_FIXED + entries[j].data.len();
                j += 1;
            }
            let (seq, at) = self.reserve(len, Class::Log)?;
            let part = self.tail_part();
            let (part_offset, seed) = (part.offset, part.seed);
            part.records += 1;
            let buf = &mut part.buf;
            let start = format::begin_record(buf, ty);
            buf.put_u64_le(group);
            buf.put_u64_le(entries[i].index);
            buf.put_u32_le((j - i) as u32);
            for e in &entries[i..j] {
                buf.put_u64_le(e.term);
                buf.put_u8(e.r#type as u8);
                buf.put_u32_le(e.data.len() as u32);
                buf.put_slice(&e.data);
            }
            format::finish_record(buf, start, seed);
            debug_assert_eq!(part_offset + buf.len() as u64, at + len as u64);
            let g = self.groups.entry(group).or_default();
            let mut pos = at + (RECORD_HEADER_SIZE + ENTRIES_FIXED) as u64;
            for e in &entries[i..j] {
                let loc = Loc {
                    term: e.term,
                    seg: seq,
                    at: pos as u32,
                };
                pos += (ENTRY_FIXED + e.data.len()) as u64;
                if relocate {
                    let k = e.index.checked_sub(g.first).map(|k| k as usize);
                    match k.and_then(|k| g.locs.get_mut(k)) {
                        Some(l) if l.term == e.term => {
                            unlive(&mut self.live, std::iter::once(&*l));
                            *l = loc;
                        }
                        _ => panic!(
                            "wal: relocating entry {} of group {group} not in its log",
                            e.index
                        ),
                    }
                    continue;
                }
                g.locs.push_back(loc);
                // The cache keeps the caller's `Bytes`: a refcount, no copy.
                g.cache.push_back((e.clone(), self.next_flush));
                self.cache_used += cache_cost(e);
                self.cache_order.push_back((group, e.index));
            }
            *self.live.entry(seq).or_default() += (j - i) as u64;
            i = j;
        }
        Ok(())
    }

    /// Queues `hs` as `group`'s hard state.
    pub fn set_hard_state(&mut self, group: u64, hs: &HardState) -> Result<Ticket> {
        self.check_writable()?;
        self.write_hard_state(group, hs)?;
        Ok(Ticket(self.next_flush))
    }

    pub(super) fn write_hard_state(&mut self, group: u64, hs: &HardState) -> Result<()> {
        let (seq, _) = self.reserve(RECORD_HEADER_SIZE + HARD_STATE_PAYLOAD, Class::State)?;
        let part = self.tail_part();
        part.records += 1;
        let seed = part.seed;
        let buf = &mut part.buf;
        let start = format::begin_record(buf, RecordType::HardState);
        buf.put_u64_le(group);
        buf.put_u64_le(hs.term);
        buf.put_u64_le(hs.vote);
        buf.put_u64_le(hs.commit);
        format::finish_record(buf, start, seed);
        let g = self.groups.entry(group).or_default();
        g.hard_state = Some(*hs);
        g.hs_seg = seq;
        Ok(())
    }

    /// Queues `meta` as `group`'s snapshot metadata. It does not compact:
    /// the caller records a compaction mark if the snapshot replaces entries.
    pub fn set_snapshot(&mut self, group: u64, meta: &SnapshotMetadata) -> Result<Ticket> {
        self.check_writable()?;
        self.write_snapshot(group, meta)?;
        Ok(Ticket(self.next_flush))
    }

    /// Queues `meta` as `group`'s snapshot and replaces the whole log with
    /// it (as `MemStorage::apply_snapshot` does, which Raft needs when the
    /// snapshot's entry conflicts with the log): every entry is dropped and
    /// the log restarts at `meta.index + 1`, compacted at the snapshot's
    /// index and term. One record, so that no recovered prefix holds the
    /// snapshot without the restart. A snapshot below the compaction point
    /// is refused (`SnapshotOutOfDate`).
    pub fn apply_snapshot(&mut self, group: u64, meta: &SnapshotMetadata) -> Result<Ticket> {
        self.check_writable()?;
        let compacted = self.groups.get(&group).map_or(0, |g| g.compacted.0);
        if meta.index < compacted {
            return Err(Error::SnapshotOutOfDate {
                group,
                index: meta.index,
                compacted,
            });
        }
        if meta.index > MAX_INDEX {
            return Err(Error::Limit {
                what: "snapshot index",
                value: meta.index,
                limit: MAX_INDEX,
            });
        }
        let seq = self.write_snapshot_record(group, meta, RecordType::Restart)?;
        let g = self.groups.entry(group).or_default();
        unlive(&mut self.live, g.locs.iter());
        let freed = g.restart(meta.index, meta.term);
        g.snapshot = Some(meta.clone());
        g.snap_seg = seq;
        g.compact_seg = seq;
        self.cache_used -= freed;
        Ok(Ticket(self.next_flush))
    }

    pub(super) fn write_snapshot(&mut self, group: u64, meta: &SnapshotMetadata) -> Result<()> {
        let seq = self.write_snapshot_record(group, meta, RecordType::Snapshot)?;
        let g = self.groups.entry(group).or_default();
        g.snapshot = Some(meta.clone());
        g.snap_seg = seq;
        Ok(())
    }

    /// Frames a `Snapshot` or `Restart` record; returns its segment.
    pub(super) fn write_snapshot_record(
        &mut self,
        group: u64,
        meta: &SnapshotMetadata,
        ty: RecordType,
    ) -> Result<u64> {
        let len = meta.encoded_len();
        let limit = MAX_SNAPSHOT_META
            .min(self.max_record(Class::State) - RECORD_HEADER_SIZE - SNAPSHOT_FIXED);
        if len > limit {
            return Err(Error::Limit {
                what: "snapshot metadata bytes",
                value: len as u64,
                limit: limit as u64,
            });
        }
        let (seq, _) = self.reserve(RECORD_HEADER_SIZE + SNAPSHOT_FIXED + len, Class::State)?;
        let part = self.tail_part();
        part.records += 1;
        let seed = part.seed;
        let buf = &mut part.buf;
        let start = format::begin_record(buf, ty);
        buf.put_u64_le(group);
        buf.put_u32_le(len as u32);
        // Encoding into a Vec cannot fail: it grows as needed.
        let _ = meta.encode(buf);
        format::finish_record(buf, start, seed);
        Ok(seq)
    }

    /// Queues a compaction mark: `group`'s entries up to `index` (whose term
    /// is `term`) are no longer needed. If `index` is past the last entry
    /// the log becomes empty and restarts at `index + 1`. A mark at or
    /// below the current one changes nothing.
    pub fn compact(&mut self, group: u64, index: u64, term: u64) -> Result<Ticket> {
        self.check_writable()?;
        if index > MAX_INDEX {
            return Err(Error::Limit {
                what: "compaction index",
                value: index,
                limit: MAX_INDEX,
            });
        }
        let current = self.groups.get(&group).map_or(0, |g| g.compacted.0);
        if index <= current {
            return Ok(self.noop_ticket());
        }
        self.write_compact(group, index, term)?;
        let g = self.groups.entry(group).or_default();
        let gone = (index + 1).saturating_sub(g.first).min(g.locs.len() as u64) as usize;
        unlive(&mut self.live, g.locs.range(..gone));
        let freed = g.compact(index, term);
        self.cache_used -= freed;
        Ok(Ticket(self.next_flush))
    }

    pub(super) fn write_compact(&mut self, group: u64, index: u64, term: u64) -> Result<()> {
        let (seq, _) = self.reserve(RECORD_HEADER_SIZE + COMPACT_PAYLOAD, Class::State)?;
        let part = self.tail_part();
        part.records += 1;
        let seed = part.seed;
        let buf = &mut part.buf;
        let start = format::begin_record(buf, RecordType::Compact);
        buf.put_u64_le(group);
        buf.put_u64_le(index);
        buf.put_u64_le(term);
        format::finish_record(buf, start, seed);
        self.groups.entry(group).or_default().compact_seg = seq;
        Ok(())
    }
}
