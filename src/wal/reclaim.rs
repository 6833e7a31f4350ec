//! Segment deletion for a caller that must never wait on the disk: `gc`
//! split in three steps, so that its flushes, unlinks and directory
//! fsyncs happen off that caller's thread.
//!
//! 1. `gc_plan` (the caller's thread, no I/O): which segments hold no
//!    live entry; the latest state of each group still living in one of
//!    them (hard state, snapshot metadata, compaction mark) is queued
//!    again into the pending flush, only if it fits without an early
//!    flush or a wait for the spare (`can_queue_state`: state records may
//!    use the segment's state reserve), else nothing is done.
//!    The plan waits for the flush carrying everything queued so far: the
//!    records that made those segments dead (compaction marks, appends
//!    that superseded entries) must be durable before the entries go.
//! 2. `gc_detach` (the caller's thread, no I/O), once that flush is
//!    durable: the segments leave the WAL's map; a `Reclaim` holds what
//!    their files need.
//! 3. `Reclaim::run` (any thread, blocking): renames a few for recycling,
//!    removes the rest, oldest first, one directory fsync each, so a
//!    crash leaves a shorter prefix deleted, never a hole. The caller
//!    hands the recycled names back (`gc_recycled`).
//!
//! Relocation of stragglers (`relocate_bytes`) is not done on this path:
//! it reads and rewrites whole logs, a cost the caller cannot bound.

use super::Wal;
use super::budget::{HARD_STATE_COST, snapshot_cost};
use super::disk::{Disk, DiskFile};
use super::error::{Error, Result};
use super::gc::RECYCLE_MAX;
use super::group::NO_SEG;
use super::segment::{self, Segment};

/// What `gc_plan` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcPlanned {
    /// No segment is dead.
    Nothing,
    /// Some are, but the state to rewrite does not fit the pending flush
    /// without waiting: ask again later.
    NotNow,
    /// Detach these once the flush named is durable.
    Plan(GcPlan),
}

/// Segments found dead by `gc_plan`, to detach once `ticket` is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcPlan {
    /// The flush that must be durable first.
    pub ticket: u64,
    /// Sequences of the dead segments, oldest first.
    pub segments: Vec<u64>,
}

/// The file work of detached segments: blocking, for another thread.
#[derive(Debug)]
pub struct Reclaim<D: Disk> {
    disk: D,
    /// (sequence, recycle) of each segment, oldest first.
    files: Vec<(u64, bool)>,
}

impl<D: Disk> Reclaim<D> {
    /// Segments it deletes.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether it deletes nothing.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Renames the segments kept for recycling to their free names and
    /// removes the others, oldest first, fsyncing the directory after
    /// each. Returns the free names, for `Wal::gc_recycled`. Stops at the
    /// first failure: the files before it are gone, the rest stay (dead
    /// segments, deleted at the next start's recovery or never read).
    pub fn run(self) -> Result<Vec<String>> {
        let mut free = Vec::new();
        for (seq, recycle) in self.files {
            let name = segment::file_name(seq);
            let path = segment::path(&self.disk, &name);
            if recycle {
                let to = segment::free_name(seq);
                self.disk
                    .rename(&name, &to)
                    .map_err(|e| Error::io("free segment", &path, e))?;
                free.push(to);
            } else {
                self.disk
                    .remove(&name)
                    .map_err(|e| Error::io("delete segment", &path, e))?;
            }
            segment::sync_dir(&self.disk)?;
        }
        Ok(free)
    }
}

impl<D: Disk> Wal<D> {
    /// Step 1: the dead segments and the flush they wait for, the state
    /// of the groups living there queued again. Never waits, never
    /// flushes.
    pub fn gc_plan(&mut self) -> Result<GcPlanned> {
        self.check_writable()?;
        self.poll_spare();
        let keep_from = self.keep_from();
        let segments: Vec<u64> = self.segments.range(..keep_from).map(|(s, _)| *s).collect();
        if segments.is_empty() {
            return Ok(GcPlanned::Nothing);
        }
        let movers = self.state_movers(keep_from);
        let cost: usize = movers
            .iter()
            .filter_map(|id| self.groups.get(id))
            .map(|g| 2 * HARD_STATE_COST + g.snapshot.as_ref().map_or(0, snapshot_cost))
            .sum();
        // State records: they may use the segment's state reserve, which
        // is there for exactly this on a full WAL.
        if !self.can_queue_state(cost) {
            return Ok(GcPlanned::NotNow);
        }
        for gid in movers {
            self.requeue_state(gid)?;
        }
        Ok(GcPlanned::Plan(GcPlan {
            ticket: self.noop_ticket().0,
            segments,
        }))
    }

    /// Step 2, once `plan.ticket` is durable: the plan's segments leave
    /// the WAL (checked again: only those still below every live entry
    /// and every group's state). No I/O; the files go with the returned
    /// `Reclaim`, on another thread.
    pub fn gc_detach(&mut self, plan: &GcPlan) -> Reclaim<D> {
        let mut files = Vec::new();
        if plan.ticket > self.durable_flush {
            return Reclaim {
                disk: self.disk.clone(),
                files,
            };
        }
        let bound = self
            .groups
            .values()
            .map(|g| g.state_seg())
            .min()
            .unwrap_or(NO_SEG)
            .min(self.keep_from());
        let mut recycle = self.free.len();
        for seq in plan.segments.iter().copied().filter(|&s| s < bound) {
            let Some(s) = self.segments.remove(&seq) else {
                continue;
            };
            let Segment { map, file, .. } = s;
            drop(map);
            // Reused only if no slice of its map is still out there (an
            // entry being sent, say): reuse would change bytes under a
            // reader. Unlinking is always safe: the map outlives the name.
            let keep = recycle < RECYCLE_MAX && !file.view_in_use();
            recycle += usize::from(keep);
            files.push((seq, keep));
        }
        Reclaim {
            disk: self.disk.clone(),
            files,
        }
    }

    /// Step 3: the free names a `Reclaim` made, for the next rolls.
    /// (`gc_detach` kept the free list within `RECYCLE_MAX`; only rolls
    /// take from it meanwhile.)
    pub fn gc_recycled(&mut self, mut names: Vec<String>) {
        self.free.append(&mut names);
        self.spare_after_room();
    }

    /// The oldest segment something still needs: the first holding a live
    /// entry, or the active one.
    fn keep_from(&self) -> u64 {
        self.live
            .keys()
            .next()
            .copied()
            .unwrap_or(NO_SEG)
            .min(self.active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::{Entry, HardState};
    use crate::wal::Options;
    use crate::wal::disk::{SimDisk, SimOptions};

    fn opts() -> Options {
        let mut o = Options::new(1, 0);
        o.segment_size = 8 << 10;
        o.max_flush_bytes = 4 << 10;
        o
    }

    fn ent(index: u64) -> Entry {
        Entry {
            term: 1,
            index,
            data: vec![7u8; 600].into(),
            ..Default::default()
        }
    }

    /// Group 2's hard state lives in the first segment; group 1's log
    /// fills several. Compacting group 1 makes the old segments dead:
    /// they go only once the compaction mark (and group 2's state, moved
    /// forward) is durable, and a reopen finds everything that lives.
    #[test]
    fn dead_segments_go_only_after_the_flush_that_frees_them_and_a_reopen_keeps_the_rest() {
        let disk = SimDisk::new(SimOptions::new(3));
        let mut wal = Wal::open_on(disk.clone(), opts()).unwrap();
        let hs = HardState {
            term: 4,
            vote: 2,
            commit: 0,
        };
        let _ = wal.set_hard_state(2, &hs).unwrap();
        for i in 1..=40 {
            let _ = wal.append_entries(1, &[ent(i)]).unwrap();
            wal.flush().unwrap();
        }
        let before = wal.segment_seqs();
        assert!(before.len() >= 4, "{before:?}");
        assert_eq!(wal.gc_plan().unwrap(), GcPlanned::Nothing);

        let _ = wal.compact(1, 35, 1).unwrap();
        let GcPlanned::Plan(plan) = wal.gc_plan().unwrap() else {
            panic!("old segments are dead");
        };
        assert!(plan.ticket > wal.durable_flush());
        assert!(plan.segments.len() >= 3, "{plan:?}");
        // Not yet durable: nothing leaves.
        assert!(wal.gc_detach(&plan).is_empty());
        assert_eq!(wal.segment_seqs(), before);

        wal.flush().unwrap();
        let files = wal.gc_detach(&plan);
        assert_eq!(files.len(), plan.segments.len());
        let left = wal.segment_seqs();
        assert_eq!(left.len(), before.len() - plan.segments.len());
        assert!(left.iter().all(|s| !plan.segments.contains(s)));
        let free = files.run().unwrap();
        assert!(!free.is_empty() && free.len() <= RECYCLE_MAX);
        wal.gc_recycled(free);
        drop(wal);

        let wal = Wal::open_on(disk, opts()).unwrap();
        assert_eq!(wal.segment_seqs().first(), left.first());
        assert_eq!(wal.hard_state(2), hs);
        assert_eq!(wal.first_index(1), 36);
        let es = wal.entries(1, 36, 41, u64::MAX).unwrap();
        assert_eq!(
            es.iter().map(|e| e.index).collect::<Vec<_>>(),
            (36..=40).collect::<Vec<_>>()
        );
    }
}
