//! The segment WAL: one per shard, multiplexing the logs of many groups.
//!
//! It owns durability: appends of entries, hard states, snapshot metadata
//! and compaction marks from every group are framed into records (frame.rs,
//! in the format of format.rs) and queue into the next flush, which is one
//! ordered list of writes, each followed by a data sync, handed to the
//! disk (flush.rs; in production one linked io_uring submission, or, for
//! a shard with nothing else to do, pwrite + fdatasync on its own thread)
//! and completes every waiter of that flush (durable.rs). Segments are
//! fixed-size, preallocated files (segment.rs), created ahead of need
//! (roll.rs) and deleted or recycled once nothing lives in them (gc.rs, or
//! reclaim.rs for a caller that must not wait on the disk);
//! recovery (recovery.rs) rebuilds every group's state from them. Reads
//! (read.rs) are served from an in-memory index (group.rs), a bounded cache
//! of recent entries (cache.rs), and views of the segments (slices of the
//! mmap in production, not copies).
//!
//! The WAL is generic over the disk it runs on (disk/: the io_uring disk in
//! production, a deterministic simulated disk in the simulator). This file
//! holds the `Wal` itself: its state, opening, and drop.
//!
//! It must never know Raft's rules: it keeps whatever it is given, under the
//! single rule of a log (contiguous indexes, an append at `i` supersedes
//! everything from `i` on). Which entries may be overwritten, what the
//! compaction point means, and when a hard state must be synced are the
//! caller's business.

mod budget;
mod bugs;
mod cache;
pub mod disk;
mod durable;
mod error;
mod flush;
pub mod format;
mod frame;
mod gc;
mod group;
mod options;
mod read;
mod reclaim;
mod recovery;
mod roll;
mod segment;
mod storage;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

pub use budget::{HARD_STATE_COST, entries_cost, snapshot_cost, state_reserve};
#[cfg(corelog_sim_bugs)]
pub use bugs::WalBugs;
pub use disk::{Disk, Fault, UringDisk};
pub use durable::{Durable, Ticket};
pub use error::{Error, NoRoom, Result};
pub use options::Options;
pub use read::GroupSummary;
pub use reclaim::{GcPlan, GcPlanned, Reclaim};
pub use recovery::RecoveryReport;
pub use storage::WalStorage;

use disk::FlushWrite;
use durable::Signal;
use format::SegmentHeader;
use frame::Part;
use group::GroupState;
use segment::Segment;

/// Largest flush (all records of one flush, batch headers included). It
/// bounds how far past the last good record a torn write can reach, which
/// recovery relies on; it is a format constant, not an option.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// Largest entry or compaction index: one below `u64::MAX`, so that
/// `last + 1` (the next index, the first after a compaction) always exists.
pub const MAX_INDEX: u64 = u64::MAX - 1;

/// The WAL of one shard. Owned by the shard's thread; not shared.
///
/// Generic over the disk it runs on: the io_uring disk in production
/// (`Wal::open`), the simulated disk in the simulator (`Wal::open_on`).
pub struct Wal<D: Disk = UringDisk> {
    disk: D,
    /// Held for the life of the `Wal` (released after `Drop` has waited for
    /// the flush in flight and the segment being prepared).
    lock: Option<D::Lock>,
    opts: Options,
    segments: BTreeMap<u64, Segment<D::File>>,
    groups: BTreeMap<u64, GroupState>,
    /// Runs the flushes (`None`: read-only).
    flusher: Option<D::Flusher>,
    /// The `Vec` that carries a flush's writes to the flusher and back,
    /// kept so that a flush allocates nothing.
    writes: Vec<FlushWrite<D::File>>,
    parts: Vec<Part>,
    spare: Vec<Vec<u8>>,
    /// Segment receiving new records (0: none, read-only and empty).
    active: u64,
    /// Next free offset of the active segment, pending records included.
    write_pos: u64,
    /// Sequence of the next batch: above every sequence that could exist on
    /// disk (recovery sees to it), so none is ever issued twice.
    next_batch_seq: u64,
    /// Sequence of the last batch issued (0: none yet), which the next
    /// batch names as its predecessor.
    last_batch_seq: u64,
    /// The flush that pending records will go out in.
    next_flush: u64,
    durable_flush: u64,
    pending_bytes: usize,
    poisoned: Option<String>,
    signal: Arc<Signal>,
    cache_used: u64,
    /// Insertion order of cached entries, for eviction oldest-first.
    cache_order: VecDeque<(u64, u64)>,
    report: RecoveryReport,
    /// The parts of the flush in flight (their buffers lent to the
    /// flusher until it is over).
    inflight: Vec<Part>,
    /// Live entries (of all groups) per segment: what GC may not delete.
    /// Kept per run of entries, not per entry, on the append path.
    live: BTreeMap<u64, u64>,
    /// The next segment, being created ahead of need (`prepare_next`).
    preparing: Option<(SegmentHeader, JoinHandle<Result<D::File>>)>,
    /// Its outcome, once `wait_prepared` has collected it (or the empty
    /// newest segment found at open: the spare a previous run prepared).
    prepared: Option<(SegmentHeader, Result<D::File>)>,
    /// Deleted segments kept for reuse, by name (at most `RECYCLE_MAX`).
    free: Vec<String>,
}

impl<D: Disk> Drop for Wal<D> {
    /// Waits for the flush in flight (its buffers must outlive the disk's
    /// use of them; it completes, durable, as any flush) and for a segment
    /// being prepared, so that a reopen of the same directory never races
    /// with a creation still in progress.
    fn drop(&mut self) {
        // The flush in flight completes as any flush (its waiters are
        // told). If the WAL is poisoned, `reap` refuses, and the flusher's
        // own drop waits for the disk to be done with the buffers.
        if !self.inflight.is_empty() {
            let _ = self.reap(true);
        }
        if let Some((_, h)) = self.preparing.take() {
            let _ = h.join();
        }
        // Records queued and never flushed will not be now: their waiters
        // get an error instead of waiting for ever.
        self.signal.close();
    }
}

impl Wal<UringDisk> {
    /// Opens (creating it if needed, unless read-only) the WAL in `dir` on
    /// the real disk and recovers it. Fails on corruption before the tail,
    /// on a segment of another cluster or shard, or of an unknown version.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Wal> {
        opts.validate()?;
        let mut disk = UringDisk::open(dir, !opts.read_only)?;
        disk.set_unsafe_no_fsync(opts.unsafe_no_fsync);
        Wal::open_on(disk, opts)
    }

    /// Arms a failure for the next flush (tests and crash experiments).
    pub fn inject_fault(&mut self, f: Fault) {
        if let Some(w) = self.flusher.as_mut() {
            w.inject(f);
        }
    }
}

impl<D: Disk> Wal<D> {
    /// Opens the WAL on `disk` (which holds the directory) and recovers it,
    /// as `Wal::open` does on the real disk.
    pub fn open_on(disk: D, opts: Options) -> Result<Wal<D>> {
        opts.validate()?;
        bugs::set_unbound_records(opts.bug(bugs::WalBug::UnboundRecords));
        if let Some((dir, cause)) = disk.poisoned() {
            return Err(Error::PoisonedDirectory { dir, cause });
        }
        // Before recovery, which may zero a torn tail under another open.
        let lock = disk.lock(opts.read_only)?;
        // A failed write or sync of recovery's zeroing leaves the page
        // cache unlike the media, as a failed flush does: poison the
        // directory so that no reopen in this process trusts that cache.
        let rec = recovery::recover(&disk, &opts).inspect_err(|e| {
            if let Some(l) = lock.as_ref()
                && recovery::left_unsynced_zeros(e)
            {
                disk.poison(l, &e.to_string());
            }
        })?;
        let mut opts = opts;
        opts.cluster_id = rec.cluster_id;
        opts.shard_id = rec.shard_id;
        let flusher = if opts.read_only {
            None
        } else {
            Some(
                disk.flusher()
                    .map_err(|e| Error::io("io_uring setup", disk.dir(), e))?,
            )
        };
        let active = rec.segments.keys().next_back().copied().unwrap_or(0);
        let mut wal = Wal {
            disk,
            lock,
            opts,
            segments: rec.segments,
            groups: rec.groups,
            flusher,
            writes: Vec::with_capacity(4),
            parts: Vec::new(),
            spare: Vec::new(),
            active,
            write_pos: rec.write_pos,
            next_batch_seq: rec.next_batch_seq,
            last_batch_seq: rec.last_batch_seq,
            next_flush: 1,
            durable_flush: 0,
            pending_bytes: 0,
            poisoned: None,
            signal: Arc::new(Signal::default()),
            cache_used: 0,
            cache_order: VecDeque::new(),
            report: rec.report,
            inflight: Vec::new(),
            live: BTreeMap::new(),
            preparing: None,
            prepared: rec.spare.map(|s| {
                let header = SegmentHeader {
                    version: format::VERSION,
                    cluster_id: rec.cluster_id,
                    shard_id: rec.shard_id,
                    sequence: s.seq,
                    segment_size: s.size,
                    base_flush_seq: s.base_flush_seq,
                    recycled: s.recycled,
                };
                (header, Ok(s.file))
            }),
            free: rec.free,
        };
        for g in wal.groups.values() {
            for l in &g.locs {
                *wal.live.entry(l.seg).or_default() += 1;
            }
        }
        if active == 0 && !wal.opts.read_only {
            // Nothing is queued yet: a failure here is only a failed open.
            wal.try_roll()?;
        } else {
            wal.prepare_next();
        }
        Ok(wal)
    }

    /// What recovery found when this WAL was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The directory of the WAL.
    pub fn dir(&self) -> &Path {
        self.disk.dir()
    }

    /// The disk the WAL runs on.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Cluster and shard id of this WAL.
    pub fn identity(&self) -> (u64, u64) {
        (self.opts.cluster_id, self.opts.shard_id)
    }

    /// Sequence numbers of the segments on disk, oldest first.
    pub fn segment_seqs(&self) -> Vec<u64> {
        self.segments.keys().copied().collect()
    }

    /// Why the WAL refuses writes for good, if a flush (or a roll) failed.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// The last completed flush.
    pub fn durable_flush(&self) -> u64 {
        self.durable_flush
    }

    /// A future completing when `t`'s flush has.
    pub fn durable(&self, t: Ticket) -> Durable {
        Durable {
            signal: self.signal.clone(),
            ticket: t.0,
        }
    }

    /// The active segment's file and the offset the next record goes to
    /// (for crash and corruption tests that need to know where bytes are).
    pub fn write_position(&self) -> (PathBuf, u64) {
        let name = segment::file_name(self.active);
        (segment::path(&self.disk, &name), self.write_pos)
    }

    /// Bytes of each segment part of the pending flush (batch header
    /// included), for crash tests that tear a flush at a chosen byte.
    pub fn pending_parts(&self) -> Vec<usize> {
        self.parts.iter().map(|p| p.buf.len()).collect()
    }

    /// Whether records are waiting for a flush.
    pub fn has_pending(&self) -> bool {
        !self.parts.is_empty()
    }

    fn check_writable(&self) -> Result<()> {
        if self.flusher.is_none() {
            return Err(Error::ReadOnly);
        }
        if let Some(c) = &self.poisoned {
            return Err(Error::Poisoned { cause: c.clone() });
        }
        Ok(())
    }
}
