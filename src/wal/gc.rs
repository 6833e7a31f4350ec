//! Segment GC and relocation: which segments still hold live entries,
//! copying the few live logs of old segments forward, rewriting a group's
//! latest state out of segments about to go, and deleting (or keeping for
//! recycling) segments nothing needs.

use std::collections::BTreeMap;

use super::Wal;
use super::disk::{Disk, DiskFile};
use super::error::{Error, Result};
use super::format::{self, ENTRIES_FIXED, ENTRY_FIXED, RECORD_HEADER_SIZE};
use super::group::{Loc, NO_SEG};
use super::segment::{self, Segment};
use crate::raftpb::Entry;

/// Takes the live entries `locs` off the per-segment counts.
pub(super) fn unlive<'a>(live: &mut BTreeMap<u64, u64>, locs: impl Iterator<Item = &'a Loc>) {
    for l in locs {
        if let Some(c) = live.get_mut(&l.seg) {
            *c -= 1;
            if *c == 0 {
                live.remove(&l.seg);
            }
        }
    }
}

/// Deleted segments kept for recycling: enough for the next roll or two.
pub(super) const RECYCLE_MAX: usize = 2;

impl<D: Disk> Wal<D> {
    /// The groups whose latest state records (hard state, snapshot
    /// metadata, compaction mark) lie in a segment below `keep_from`.
    pub(super) fn state_movers(&self, keep_from: u64) -> Vec<u64> {
        self.groups
            .iter()
            .filter(|(_, g)| g.state_seg() < keep_from)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Writes `gid`'s current state records again, into the pending flush,
    /// so that the segments holding the old ones can go.
    pub(super) fn requeue_state(&mut self, gid: u64) -> Result<()> {
        let Some(g) = self.groups.get(&gid) else {
            return Ok(());
        };
        let (hs, snap, compacted) = (g.hard_state, g.snapshot.clone(), g.compacted);
        if let Some(hs) = hs {
            self.write_hard_state(gid, &hs)?;
        }
        if let Some(meta) = snap {
            self.write_snapshot(gid, &meta)?;
        }
        // (0, t) is a mark too: a snapshot at index 0 of term t.
        if compacted != (0, 0) {
            self.write_compact(gid, compacted.0, compacted.1)?;
        }
        Ok(())
    }

    /// Deletes every segment that holds no live entry of any group (all
    /// below their group's compaction point, or superseded), oldest first.
    /// A group's latest hard state, snapshot metadata and compaction mark
    /// are rewritten into the active segment first if they live in a
    /// segment about to go. Flushes what is pending. Returns how many
    /// segments were deleted. On a full disk (`Error::NoSpace`) relocation
    /// is skipped, and deletion goes on unless a state to rewrite finds no
    /// room.
    pub fn gc(&mut self) -> Result<usize> {
        // Pending records go out first, so that the picture of which
        // segment holds what is the durable one.
        self.flush()?;
        if self.opts.relocate_bytes > 0 {
            match self.relocate_stragglers() {
                // Copying forward needs room; deleting what is dead does
                // not, and is how room comes back. The groups relocated
                // before the refusal are queued whole, one record each.
                Err(e) if e.is_no_space() => {}
                r => r?,
            }
        }
        let keep_from = self
            .live
            .keys()
            .next()
            .copied()
            .unwrap_or(NO_SEG)
            .min(self.active);
        let Some(&oldest) = self.segments.keys().next() else {
            return Ok(0);
        };
        if oldest >= keep_from {
            return Ok(0);
        }
        for gid in self.state_movers(keep_from) {
            self.requeue_state(gid)?;
        }
        // Everything a deleted segment could still be needed for must be on
        // disk elsewhere before it goes.
        self.flush()?;
        let doomed: Vec<u64> = self.segments.range(..keep_from).map(|(s, _)| *s).collect();
        for seq in &doomed {
            let Some(s) = self.segments.remove(seq) else {
                continue;
            };
            let Segment {
                path, map, file, ..
            } = s;
            drop(map);
            let name = segment::file_name(*seq);
            // A file is reused only if no slice of its map is still out
            // there (an entry being sent, say): reusing it would change
            // bytes under a reader. Unlinking is always safe: the map
            // outlives the name.
            if self.free.len() < RECYCLE_MAX && !file.view_in_use() {
                let free = segment::free_name(*seq);
                self.disk
                    .rename(&name, &free)
                    .map_err(|e| Error::io("free segment", &path, e))?;
                self.free.push(free);
            } else {
                self.disk
                    .remove(&name)
                    .map_err(|e| Error::io("delete segment", &path, e))?;
            }
            // One directory fsync per segment, oldest first: a crash can
            // leave a shorter prefix deleted, never a hole in the sequence.
            segment::sync_dir(&self.disk)?;
        }
        if !doomed.is_empty() {
            self.spare_after_room();
        }
        Ok(doomed.len())
    }

    /// Frees old segments held by few entries (as raft-engine rewrites a
    /// few groups' entries): for the oldest segments in turn, the groups
    /// with a live entry in them have their whole log copied forward into
    /// `Relocate` records, if all those logs fit in what is left of
    /// `relocate_bytes`. Stops at the first segment that would cost more: a
    /// group that keeps much data pins its segments, as it should.
    ///
    /// Always the whole log of a group: every `Relocate` run then starts at
    /// the group's first entry, so that at recovery it meets (overlaps or
    /// directly precedes) whatever of the log survives in older segments.
    pub(super) fn relocate_stragglers(&mut self) -> Result<()> {
        let mut budget = self.opts.relocate_bytes;
        let oldest = self.segments.keys().next().copied().unwrap_or(self.active);
        for target in oldest + 1..self.active {
            let mut movers: Vec<u64> = Vec::new();
            let mut total = 0u64;
            let mut one_record = true;
            for (gid, g) in &self.groups {
                if g.locs.iter().any(|l| l.seg < target) {
                    movers.push(*gid);
                    let bytes = g
                        .locs
                        .iter()
                        .map(|l| ENTRY_FIXED as u64 + self.entry_data_len(l))
                        .sum::<u64>();
                    // A log is relocated in one record, so that recovery
                    // never sees half of it: larger logs stay where they are.
                    one_record &= bytes + (RECORD_HEADER_SIZE + ENTRIES_FIXED) as u64
                        <= self.max_record(super::budget::Class::Log) as u64;
                    total += bytes;
                }
            }
            if total > budget || !one_record {
                break;
            }
            budget -= total;
            for gid in movers {
                let Some(g) = self.groups.get(&gid) else {
                    continue;
                };
                let (first, last) = (g.first, g.last_index());
                let es = (first..=last)
                    .map(|i| self.read_entry(gid, g, i))
                    .collect::<Result<Vec<Entry>>>()?;
                self.encode_runs(gid, &es, true)?;
            }
        }
        Ok(())
    }

    /// Data length of the entry at `l`, from its segment (0 if unreadable:
    /// only used for estimates).
    pub(super) fn entry_data_len(&self, l: &Loc) -> u64 {
        let Some(s) = self.segments.get(&l.seg) else {
            return 0;
        };
        let at = l.at as usize + 9;
        if at + 4 > s.map.len() {
            return 0;
        }
        format::u32_at(&s.map, at) as u64
    }
}
