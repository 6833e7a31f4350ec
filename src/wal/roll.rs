//! Segment rolls: the next segment is created ahead of need (on a helper
//! thread where the disk allows it) and made the active one when the
//! current one is full.

use super::Wal;
use super::disk::Disk;
use super::error::{Error, Result};
use super::format::{self, SEGMENT_HEADER_SIZE, SegmentHeader};
use super::segment::{self, Segment};

impl<D: Disk> Wal<D> {
    /// Creates the next segment and makes it the active one. Records still
    /// pending for the old one go out in the next flush, before (linked)
    /// the new one's.
    ///
    /// A failure (a full disk, say) poisons the WAL: a roll happens in the
    /// middle of queueing, so the call that needed it may stand half
    /// applied (the first runs of a long append queued and indexed, the
    /// rest not), and nothing may be built on that.
    pub(super) fn roll(&mut self) -> Result<()> {
        match self.try_roll() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.poison(e)),
        }
    }

    pub(super) fn try_roll(&mut self) -> Result<()> {
        let seq = self.active + 1;
        self.wait_prepared();
        let (header, file) = match self.prepared.take() {
            Some((h, r)) if h.sequence == seq => (h, r?),
            _ => {
                let header = self.header(seq);
                let free = self.free.pop();
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
}
