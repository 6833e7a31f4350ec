//! Segment rolls: the next segment is created ahead of need (on a helper
//! thread where the disk allows it) and made the active one when the
//! current one is full.

use super::Wal;
use super::disk::Disk;
use super::error::{Error, NoRoom, Result};
use super::format::{self, SEGMENT_HEADER_SIZE, SegmentHeader};
use super::segment::{self, Segment};

impl<D: Disk> Wal<D> {
    /// Creates the next segment and makes it the active one. Records still
    /// pending for the old one go out in the next flush, before (linked)
    /// the new one's.
    ///
    /// No room for the segment (`Error::NoSpace`: a full disk, or
    /// `Options::max_disk_bytes`) changes nothing and poisons nothing:
    /// every caller rolls before it queues or indexes anything of its own
    /// (`make_room`), so the call is refused whole. The next roll tries
    /// again: at once on a disk without helper threads, else with the
    /// outcome of a new attempt started here on the helper thread (the
    /// shard never waits on a creation that may fail again). Any other
    /// failure poisons the WAL: what the disk did is unknown.
    pub(super) fn roll(&mut self) -> Result<()> {
        match self.try_roll() {
            Ok(()) => Ok(()),
            Err(e) if e.is_no_space() => {
                if D::BACKGROUND {
                    self.prepare_next();
                }
                Err(e)
            }
            Err(e) => Err(self.poison(e)),
        }
    }

    pub(super) fn try_roll(&mut self) -> Result<()> {
        let seq = self.active + 1;
        self.wait_prepared();
        let (header, file) = match self.prepared.take() {
            Some((h, Ok(f))) if h.sequence == seq => (h, f),
            // A disk without helper threads tries again now, in order
            // (falls through to the arm below).
            Some((h, Err(e))) if h.sequence == seq && (D::BACKGROUND || !e.is_no_space()) => {
                return Err(e);
            }
            _ => {
                let header = self.header(seq);
                let free = self.free.pop();
                self.check_quota(free.is_some())?;
                (header, segment::create(&self.disk, &header, free)?)
            }
        };
        let path = segment::path(&self.disk, &segment::file_name(seq));
        let map = segment::view(&file, &path)?;
        self.segments.insert(
            seq,
            Segment {
                seq,
                path,
                file,
                map,
                size: header.segment_size,
                base_flush_seq: header.base_flush_seq,
                recycled: false,
            },
        );
        self.active = seq;
        self.write_pos = SEGMENT_HEADER_SIZE;
        self.prepare_next();
        Ok(())
    }

    /// Waits until the segment being prepared ahead (if any) is ready.
    /// A roll does this itself; benchmarks call it after `open` so that
    /// the one-off zero-fill of the first spare segment does not compete
    /// with what they measure.
    pub fn wait_prepared(&mut self) {
        if let Some((header, h)) = self.preparing.take() {
            let r = h.join().unwrap_or_else(|_| {
                Err(Error::Poisoned {
                    cause: "segment preparation thread panicked".into(),
                })
            });
            self.prepared = Some((header, r));
        }
    }

    pub(super) fn header(&self, seq: u64) -> SegmentHeader {
        SegmentHeader {
            version: format::VERSION,
            cluster_id: self.opts.cluster_id,
            shard_id: self.opts.shard_id,
            sequence: seq,
            segment_size: self.opts.segment_size,
            // Every batch the segment will hold is issued after this point
            // (sequences only grow, and recovery restarts numbering above
            // every segment's base), which recovery checks.
            base_flush_seq: self.next_batch_seq,
            // Set by `segment::create` if it reuses a free file.
            recycled: false,
        }
    }

    /// Starts creating the segment after the active one, on a helper
    /// thread where the disk allows it (`Disk::BACKGROUND`). Zero-filling
    /// 64 MiB takes ~100 ms of disk time here: done at the roll, it would
    /// stall every append behind it; done ahead, the roll only joins a
    /// finished thread. The segment appears under its final name before it
    /// is used, which recovery treats as an empty newest segment. If the
    /// thread cannot be started, the roll creates the segment itself. A
    /// disk that allows no thread (the simulated one, whose outcome must
    /// follow from the seed and the order of calls) has it created here,
    /// at once; a failure then surfaces at the roll, as a thread's would.
    pub(super) fn prepare_next(&mut self) {
        if self.flusher.is_none() || self.preparing.is_some() || self.prepared.is_some() {
            return;
        }
        let seq = self.active + 1;
        let header = self.header(seq);
        let free = self.free.pop();
        if let Err(e) = self.check_quota(free.is_some()) {
            self.prepared = Some((header, Err(e)));
            return;
        }
        if !D::BACKGROUND {
            self.prepared = Some((header, segment::create(&self.disk, &header, free)));
            return;
        }
        let disk = self.disk.clone();
        let back = free.clone();
        match std::thread::Builder::new()
            .name(format!("wal-prealloc-{seq}"))
            .spawn(move || segment::create(&disk, &header, free))
        {
            Ok(h) => self.preparing = Some((header, h)),
            Err(_) => self.free.extend(back),
        }
    }

    /// Bytes the WAL's files take: its segments, the free files kept for
    /// recycling, and the next segment once prepared.
    pub fn disk_bytes(&self) -> u64 {
        let segs: u64 = self.segments.values().map(|s| s.size).sum();
        let free = self.free.len() as u64 * self.opts.segment_size;
        let next = match &self.prepared {
            Some((h, Ok(_))) => h.segment_size,
            _ => 0,
        };
        segs + free + next
    }

    /// Changes `Options::max_disk_bytes` of the open WAL (an operator
    /// raising or lowering the quota; tests filling a disk): it applies
    /// from the next segment made. At least two segments.
    pub fn set_max_disk_bytes(&mut self, limit: u64) -> Result<()> {
        let mut o = self.opts.clone();
        o.max_disk_bytes = limit;
        o.validate()?;
        let raised = limit > self.opts.max_disk_bytes;
        self.opts.max_disk_bytes = limit;
        if raised {
            self.spare_after_room();
        }
        Ok(())
    }

    /// `Options::max_disk_bytes`: refuses a new segment made from scratch
    /// (a recycled free file adds nothing) that would take the WAL's files
    /// past it.
    fn check_quota(&self, recycled: bool) -> Result<()> {
        let limit = self.opts.max_disk_bytes;
        if recycled || limit == u64::MAX {
            return Ok(());
        }
        let used = self.disk_bytes();
        let needed = self.opts.segment_size;
        if used.saturating_add(needed) <= limit {
            return Ok(());
        }
        Err(Error::NoSpace {
            op: "create segment",
            path: segment::path(&self.disk, &segment::file_name(self.active + 1)),
            cause: NoRoom::Quota {
                used,
                needed,
                limit,
            },
        })
    }
}
