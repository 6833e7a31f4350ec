//! The segment WAL: one per shard, multiplexing the logs of many groups.
//!
//! It owns durability: appends of entries, hard states, snapshot metadata
//! and compaction marks from every group are framed into records (format.rs)
//! and queue into the next flush, which is one io_uring submission of the
//! writes plus fdatasync (writer.rs) and completes every waiter of that
//! flush. Segments are fixed-size, preallocated files (segment.rs);
//! recovery (recovery.rs) rebuilds every group's state from them. Reads are
//! served from an in-memory index, a bounded cache of recent entries, and
//! memory-mapped segments (slices of the map, not copies).
//!
//! It must never know Raft's rules: it keeps whatever it is given, under the
//! single rule of a log (contiguous indexes, an append at `i` supersedes
//! everything from `i` on). Which entries may be overwritten, what the
//! compaction point means, and when a hard state must be synced are the
//! caller's business.

pub mod disk;
mod error;
pub mod format;
mod group;
mod recovery;
mod segment;
mod storage;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use bytes::BufMut;
use prost::Message as _;

pub use disk::{Disk, Fault, UringDisk};
pub use error::{Error, Result};
pub use recovery::RecoveryReport;
pub use storage::WalStorage;

use disk::{DiskFile, FlushPoll, FlushWrite, Flusher};
use format::{
    BATCH_RECORD_SIZE, COMPACT_PAYLOAD, ENTRIES_FIXED, ENTRY_FIXED, HARD_STATE_PAYLOAD,
    MAX_SNAPSHOT_META, RECORD_HEADER_SIZE, RecordType, SEGMENT_HEADER_SIZE, SNAPSHOT_FIXED,
    SegmentHeader,
};
use group::{GroupState, Loc, NO_SEG, cache_cost};
use segment::Segment;

use crate::raftpb::{Entry, HardState, SnapshotMetadata};

/// Largest flush (all records of one flush, batch headers included). It
/// bounds how far past the last good record a torn write can reach, which
/// recovery relies on; it is a format constant, not an option.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// Largest entry or compaction index: one below `u64::MAX`, so that
/// `last + 1` (the next index, the first after a compaction) always exists.
pub const MAX_INDEX: u64 = u64::MAX - 1;

/// How a WAL is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every segment carries these; a segment of another cluster or shard is
    /// refused.
    pub cluster_id: u64,
    pub shard_id: u64,
    /// Size of new segments (existing ones keep the size in their header).
    pub segment_size: u64,
    /// A flush is started early when this many bytes are pending
    /// (at most `MAX_BATCH_BYTES`).
    pub max_flush_bytes: usize,
    /// Budget of the cache of recent entries (data bytes + 64 per entry).
    pub cache_bytes: u64,
    /// At most this many bytes of live entries are copied forward per `gc`
    /// to free old segments that only a few entries hold (0: never).
    pub relocate_bytes: u64,
    /// Open for reading only: nothing is written, created or deleted (a
    /// torn tail is reported but not zeroed).
    pub read_only: bool,
    /// Read-only inspection: take cluster and shard id from the oldest
    /// segment instead of checking them against the fields above.
    pub adopt_identity: bool,
}

impl Options {
    /// Defaults: 64 MiB segments, 4 MiB flushes, 64 MiB cache.
    pub fn new(cluster_id: u64, shard_id: u64) -> Self {
        Options {
            cluster_id,
            shard_id,
            segment_size: 64 << 20,
            max_flush_bytes: 4 << 20,
            cache_bytes: 64 << 20,
            relocate_bytes: 16 << 20,
            read_only: false,
            adopt_identity: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(format::MIN_SEGMENT_SIZE..=format::MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(Error::InvalidOptions {
                field: "segment_size",
                reason: format!(
                    "{} not in {}..={}",
                    self.segment_size,
                    format::MIN_SEGMENT_SIZE,
                    format::MAX_SEGMENT_SIZE
                ),
            });
        }
        if !(1024..=MAX_BATCH_BYTES).contains(&self.max_flush_bytes) {
            return Err(Error::InvalidOptions {
                field: "max_flush_bytes",
                reason: format!("{} not in 1024..={MAX_BATCH_BYTES}", self.max_flush_bytes),
            });
        }
        if self.adopt_identity && !self.read_only {
            return Err(Error::InvalidOptions {
                field: "adopt_identity",
                reason: "only for read-only inspection".into(),
            });
        }
        Ok(())
    }
}

/// Names the flush that makes an append durable. Await it with
/// `Wal::durable`, or compare with `Wal::durable_flush`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "an append is durable only once its flush completes"]
pub struct Ticket(pub u64);

/// Wakes the waiters of completed flushes. Shared with the `Durable`
/// futures; touched once per flush and once per waiter, never per record.
#[derive(Default)]
struct Signal {
    durable: AtomicU64,
    failed: AtomicBool,
    /// The WAL was dropped: no flush will ever complete again.
    closed: AtomicBool,
    wakers: Mutex<Vec<(u64, Waker)>>,
}

impl Signal {
    fn complete(&self, flush: u64) {
        self.durable.store(flush, Ordering::Release);
        self.wake(|t| t <= flush);
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        self.wake(|_| true);
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake(|_| true);
    }

    fn wake(&self, due: impl Fn(u64) -> bool) {
        let mut ws = match self.wakers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        ws.retain(|(t, w)| {
            if due(*t) {
                w.wake_by_ref();
                false
            } else {
                true
            }
        });
    }
}

/// Completes when the flush of a ticket has completed (`Ok`), when a
/// flush failed before it (`Err(Poisoned)`), or when the WAL was dropped
/// before it (`Err(Closed)`).
pub struct Durable {
    signal: Arc<Signal>,
    ticket: u64,
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let ready = |s: &Signal| {
            if s.durable.load(Ordering::Acquire) >= self.ticket {
                Some(Ok(()))
            } else if s.failed.load(Ordering::Acquire) {
                Some(Err(Error::Poisoned {
                    cause: "the flush carrying this append failed".into(),
                }))
            } else if s.closed.load(Ordering::Acquire) {
                Some(Err(Error::Closed))
            } else {
                None
            }
        };
        if let Some(r) = ready(&self.signal) {
            return Poll::Ready(r);
        }
        {
            let mut ws = match self.signal.wakers.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            ws.push((self.ticket, cx.waker().clone()));
        }
        // A flush may have completed between the check and the push.
        match ready(&self.signal) {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}

/// The records of one flush destined for one segment; `buf` starts with
/// room for the batch record, filled in when the flush goes out.
struct Part {
    seq: u64,
    offset: u64,
    buf: Vec<u8>,
    /// The batch's flush sequence and its predecessor's, fixed when the
    /// part is opened so that each record's crc can be seeded with them as
    /// it is framed (one pass of crc32 per record, as before).
    batch_seq: u64,
    prev_seq: u64,
    seed: u32,
    records: u32,
}

/// Summary of one group, for tools and status pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub hard_state: HardState,
    pub compacted: (u64, u64),
    pub snapshot: Option<SnapshotMetadata>,
}

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

/// Takes the live entries `locs` off the per-segment counts.
fn unlive<'a>(live: &mut BTreeMap<u64, u64>, locs: impl Iterator<Item = &'a Loc>) {
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
const RECYCLE_MAX: usize = 2;

/// Zeros written after each flush's records in a segment (an all-zero
/// record header reads as "end of data"); space for them is always kept.
const END_MARKER: usize = RECORD_HEADER_SIZE;

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
        let disk = UringDisk::open(dir, !opts.read_only)?;
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
        if let Some((dir, cause)) = disk.poisoned() {
            return Err(Error::PoisonedDirectory { dir, cause });
        }
        // Before recovery, which may zero a torn tail under another open.
        let lock = disk.lock(opts.read_only)?;
        let rec = recovery::recover(&disk, &opts)?;
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

    /// The ticket of a call that queues nothing: the flush carrying what
    /// was queued before it (the pending flush if records are pending, else
    /// the last one started, which may still be in flight).
    fn noop_ticket(&self) -> Ticket {
        if self.parts.is_empty() {
            Ticket(self.next_flush - 1)
        } else {
            Ticket(self.next_flush)
        }
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

    fn segment_size(&self) -> u64 {
        self.segments
            .get(&self.active)
            .map_or(self.opts.segment_size, |s| s.size)
    }

    /// Largest record (header included) that fits in one flush of one segment.
    fn max_record(&self) -> usize {
        let seg = (self.segment_size() - SEGMENT_HEADER_SIZE) as usize - END_MARKER;
        seg.min(self.opts.max_flush_bytes) - BATCH_RECORD_SIZE
    }

    fn needs_batch(&self) -> bool {
        self.parts.last().is_none_or(|p| p.seq != self.active)
    }

    /// Bytes a record can take right now without a roll or an early flush.
    fn room(&self) -> usize {
        let hdr = if self.needs_batch() {
            BATCH_RECORD_SIZE
        } else {
            0
        };
        let seg = ((self.segment_size() - self.write_pos) as usize).saturating_sub(END_MARKER);
        let flush = self.opts.max_flush_bytes - self.pending_bytes;
        seg.min(flush).saturating_sub(hdr)
    }

    /// Makes room for a record of `len` bytes (flushing early or rolling to
    /// a new segment as needed) and returns its segment and offset. The
    /// caller then appends exactly `len` bytes to the last part.
    fn reserve(&mut self, len: usize) -> Result<(u64, u64)> {
        debug_assert!(len <= self.max_record());
        if self.pending_bytes + len + BATCH_RECORD_SIZE > self.opts.max_flush_bytes
            && !self.parts.is_empty()
            && len > self.room()
        {
            self.flush()?;
        }
        let hdr = if self.needs_batch() {
            BATCH_RECORD_SIZE
        } else {
            0
        };
        if self.write_pos + (hdr + len + END_MARKER) as u64 > self.segment_size() {
            self.roll()?;
        }
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

    /// The part that `reserve` just made room in.
    fn tail_part(&mut self) -> &mut Part {
        match self.parts.last_mut() {
            Some(p) => p,
            None => unreachable!("reserve always leaves a part"),
        }
    }

    /// Creates the next segment and makes it the active one. Records still
    /// pending for the old one go out in the next flush, before (linked)
    /// the new one's.
    ///
    /// A failure (a full disk, say) poisons the WAL: a roll happens in the
    /// middle of queueing, so the call that needed it may stand half
    /// applied (the first runs of a long append queued and indexed, the
    /// rest not), and nothing may be built on that.
    fn roll(&mut self) -> Result<()> {
        match self.try_roll() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.poison(e)),
        }
    }

    fn try_roll(&mut self) -> Result<()> {
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

    fn header(&self, seq: u64) -> SegmentHeader {
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
    fn prepare_next(&mut self) {
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

    /// Queues `entries` (consecutive indexes) of `group` for the next
    /// flush. An append at an index at or below the group's last index
    /// supersedes the entries from there on, now and after recovery.
    /// Invalid input is refused before anything changes; an I/O failure
    /// while queueing (a roll, an early flush) poisons the WAL, since the
    /// append may then be half queued.
    pub fn append_entries(&mut self, group: u64, entries: &[Entry]) -> Result<Ticket> {
        self.check_writable()?;
        let Some(head) = entries.first() else {
            return Ok(self.noop_ticket());
        };
        let first = head.index;
        let max_data = self.max_record() - RECORD_HEADER_SIZE - ENTRIES_FIXED - ENTRY_FIXED;
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
    fn encode_runs(&mut self, group: u64, entries: &[Entry], relocate: bool) -> Result<()> {
        let ty = if relocate {
            RecordType::Relocate
        } else {
            RecordType::Entries
        };
        let max_rec = self.max_record();
        let mut i = 0;
        while i < entries.len() {
            // Fill what is left of the current segment and flush before
            // rolling, so that a long append does not waste a segment tail.
            let room = self.room();
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
            let (seq, at) = self.reserve(len)?;
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

    fn write_hard_state(&mut self, group: u64, hs: &HardState) -> Result<()> {
        let (seq, _) = self.reserve(RECORD_HEADER_SIZE + HARD_STATE_PAYLOAD)?;
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

    fn write_snapshot(&mut self, group: u64, meta: &SnapshotMetadata) -> Result<()> {
        let seq = self.write_snapshot_record(group, meta, RecordType::Snapshot)?;
        let g = self.groups.entry(group).or_default();
        g.snapshot = Some(meta.clone());
        g.snap_seg = seq;
        Ok(())
    }

    /// Frames a `Snapshot` or `Restart` record; returns its segment.
    fn write_snapshot_record(
        &mut self,
        group: u64,
        meta: &SnapshotMetadata,
        ty: RecordType,
    ) -> Result<u64> {
        let len = meta.encoded_len();
        let limit = MAX_SNAPSHOT_META.min(self.max_record() - RECORD_HEADER_SIZE - SNAPSHOT_FIXED);
        if len > limit {
            return Err(Error::Limit {
                what: "snapshot metadata bytes",
                value: len as u64,
                limit: limit as u64,
            });
        }
        let (seq, _) = self.reserve(RECORD_HEADER_SIZE + SNAPSHOT_FIXED + len)?;
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

    fn write_compact(&mut self, group: u64, index: u64, term: u64) -> Result<()> {
        let (seq, _) = self.reserve(RECORD_HEADER_SIZE + COMPACT_PAYLOAD)?;
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

    /// Writes every pending record in one io_uring submission (writes and
    /// fdatasync, linked), waits for it, and completes every ticket of this
    /// flush (a flush already in flight is waited for first). Returns the
    /// number of the last completed flush. On failure the WAL is poisoned
    /// for good, and so is its directory for this process: what reached the
    /// disk is unknown and the page cache cannot be trusted, so the shard
    /// stops and a new process recovers the directory.
    pub fn flush(&mut self) -> Result<u64> {
        self.wait_flush()?;
        if self.start_flush()?.is_some() {
            self.wait_flush()?;
        }
        Ok(self.durable_flush)
    }

    /// Starts a flush of every pending record without waiting for it, so
    /// that the shard can go on (appends go to the next flush) while the
    /// fdatasync runs; `poll_flush` or `wait_flush` completes it. Only one
    /// flush is ever in flight (recovery relies on it): one already in
    /// flight is waited for first. Returns the number of the flush started,
    /// `None` if nothing was pending.
    pub fn start_flush(&mut self) -> Result<Option<u64>> {
        self.wait_flush()?;
        if self.parts.is_empty() {
            return Ok(None);
        }
        let n_parts = self.parts.len();
        for (k, p) in self.parts.iter_mut().enumerate() {
            let body = p.buf.len() - BATCH_RECORD_SIZE;
            let h = format::BatchHeader {
                flush_seq: p.batch_seq,
                prev_seq: p.prev_seq,
                body_len: body as u32,
                records: p.records,
                // Every part but the last says the flush goes on: recovery
                // applies a flush only with all of its parts.
                flags: if k + 1 < n_parts {
                    format::BATCH_CONTINUED
                } else {
                    0
                },
            };
            format::write_batch_header(&mut p.buf[..BATCH_RECORD_SIZE], p.seed, &h);
            // The end marker: overwritten by the next flush's batch, it is
            // what ends the data of a sealed segment whose file was
            // recycled (beyond it lie stale bytes of its previous life).
            p.buf.extend_from_slice(&[0u8; END_MARKER]);
        }
        // The buffers move into the flush (their heap memory does not
        // move) and come back when it is over; the parts stay in
        // `inflight` for the segments they name.
        let mut writes = std::mem::take(&mut self.writes);
        for p in &mut self.parts {
            let Some(s) = self.segments.get(&p.seq) else {
                // gc flushes before it deletes anything.
                panic!(
                    "wal: pending records for segment {} which is not open",
                    p.seq
                );
            };
            writes.push(FlushWrite {
                file: s.file.clone(),
                offset: p.offset,
                buf: std::mem::take(&mut p.buf),
            });
        }
        std::mem::swap(&mut self.parts, &mut self.inflight);
        self.pending_bytes = 0;
        let n = self.next_flush;
        self.next_flush += 1;
        match self.flusher.as_mut() {
            // A failure to start comes out of the next poll.
            Some(f) => f.submit(writes),
            None => return Err(Error::ReadOnly),
        }
        Ok(Some(n))
    }

    /// Makes the disk signal `eventfd` (from `eventfd(2)`) when a flush's
    /// completions arrive: the shard's executor waits on it and then calls
    /// `poll_flush`, instead of polling in a loop.
    pub fn register_eventfd(&self, eventfd: RawFd) -> Result<()> {
        match self.flusher.as_ref() {
            Some(f) => f
                .register_eventfd(eventfd)
                .map_err(|e| Error::io("io_uring register eventfd", self.disk.dir(), e)),
            None => Err(Error::ReadOnly),
        }
    }

    /// Completes the flush in flight if the disk is done with it, without
    /// blocking. Returns the number of the last completed flush.
    pub fn poll_flush(&mut self) -> Result<u64> {
        self.reap(false)
    }

    /// Waits for the flush in flight, if any. Returns the number of the
    /// last completed flush.
    pub fn wait_flush(&mut self) -> Result<u64> {
        self.reap(true)
    }

    fn reap(&mut self, wait: bool) -> Result<u64> {
        self.check_writable()?;
        if self.inflight.is_empty() {
            return Ok(self.durable_flush);
        }
        let done = match self.flusher.as_mut() {
            Some(f) => f.poll(wait),
            None => return Err(Error::ReadOnly),
        };
        match done {
            FlushPoll::Done(writes) => {
                // The flush in flight is always the one before `next_flush`.
                let n = self.next_flush - 1;
                self.durable_flush = n;
                self.take_back(writes);
                if !D::LIVE_VIEWS
                    && let Err(e) = self.refresh_views()
                {
                    return Err(self.poison(e));
                }
                self.inflight.clear();
                self.signal.complete(n);
                self.evict();
                Ok(n)
            }
            FlushPoll::Pending => Ok(self.durable_flush),
            FlushPoll::Idle => unreachable!("wal: a flush in flight that the disk does not know"),
            FlushPoll::Failed { error, writes } => {
                let disk::FlushError { write, sync, error } = error;
                let path = self
                    .inflight
                    .get(write)
                    .map(|p| segment::path(&self.disk, &segment::file_name(p.seq)))
                    .unwrap_or_else(|| self.disk.dir().to_path_buf());
                let op = if sync { "fdatasync" } else { "write" };
                self.take_back(writes);
                self.inflight.clear();
                Err(self.poison(Error::io(op, path, error)))
            }
        }
    }

    /// Keeps a few buffers of a finished flush (and its `Vec` of writes)
    /// for the next ones.
    fn take_back(&mut self, mut writes: Vec<FlushWrite<D::File>>) {
        for w in writes.drain(..) {
            if self.spare.len() < 4 && w.buf.capacity() > 0 {
                self.spare.push(w.buf);
            }
        }
        self.writes = writes;
    }

    /// Takes new views of the segments the flush in flight wrote, on a
    /// disk whose views do not show later writes.
    fn refresh_views(&mut self) -> Result<()> {
        for p in &self.inflight {
            if let Some(s) = self.segments.get_mut(&p.seq) {
                s.map = segment::view(&s.file, &s.path)?;
            }
        }
        Ok(())
    }

    /// Marks the WAL failed and tells every waiter.
    /// The directory is recorded as poisoned for the rest of the process.
    fn poison(&mut self, e: Error) -> Error {
        let cause = e.to_string();
        if let Some(l) = self.lock.as_ref() {
            self.disk.poison(l, &cause);
        }
        self.poisoned = Some(cause);
        self.signal.fail();
        e
    }

    /// Evicts cached entries, oldest first, down to the budget. Only called
    /// after a flush, so that an entry not yet on disk is never evicted.
    fn evict(&mut self) {
        let order_limit = (self.opts.cache_bytes / 64 * 2).max(1024) as usize;
        while self.cache_used > self.opts.cache_bytes || self.cache_order.len() > order_limit {
            let Some((gid, index)) = self.cache_order.pop_front() else {
                break;
            };
            let Some(g) = self.groups.get_mut(&gid) else {
                continue;
            };
            match g.cache.front() {
                Some((_, flush)) if *flush > self.durable_flush => {
                    // Not on disk yet (a flush in flight or pending): stop
                    // here, the next completed flush resumes.
                    self.cache_order.push_front((gid, index));
                    break;
                }
                Some(_) if g.cache_first() <= index => {
                    if let Some((e, _)) = g.cache.pop_front() {
                        self.cache_used -= cache_cost(&e);
                    }
                }
                _ => {}
            }
        }
    }

    /// Deletes every segment that holds no live entry of any group (all
    /// below their group's compaction point, or superseded), oldest first.
    /// A group's latest hard state, snapshot metadata and compaction mark
    /// are rewritten into the active segment first if they live in a
    /// segment about to go. Flushes what is pending. Returns how many
    /// segments were deleted.
    pub fn gc(&mut self) -> Result<usize> {
        // Pending records go out first, so that the picture of which
        // segment holds what is the durable one.
        self.flush()?;
        if self.opts.relocate_bytes > 0 {
            self.relocate_stragglers()?;
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
        let movers: Vec<u64> = self
            .groups
            .iter()
            .filter(|(_, g)| g.state_seg() < keep_from)
            .map(|(id, _)| *id)
            .collect();
        for gid in movers {
            let Some(g) = self.groups.get(&gid) else {
                continue;
            };
            let (hs, snap, compacted) = (g.hard_state, g.snapshot.clone(), g.compacted);
            if let Some(hs) = hs {
                self.write_hard_state(gid, &hs)?;
            }
            if let Some(meta) = snap {
                self.write_snapshot(gid, &meta)?;
            }
            if compacted.0 > 0 {
                self.write_compact(gid, compacted.0, compacted.1)?;
            }
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
    fn relocate_stragglers(&mut self) -> Result<()> {
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
                        <= self.max_record() as u64;
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
    fn entry_data_len(&self, l: &Loc) -> u64 {
        let Some(s) = self.segments.get(&l.seg) else {
            return 0;
        };
        let at = l.at as usize + 9;
        if at + 4 > s.map.len() {
            return 0;
        }
        format::u32_at(&s.map, at) as u64
    }

    fn group(&self, group: u64) -> Option<&GroupState> {
        self.groups.get(&group)
    }

    /// Ids of the groups the WAL holds anything for.
    pub fn group_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.keys().copied()
    }

    /// A summary of `group`.
    pub fn summary(&self, group: u64) -> GroupSummary {
        GroupSummary {
            group,
            first_index: self.first_index(group),
            last_index: self.last_index(group),
            hard_state: self.hard_state(group),
            compacted: self.compacted(group),
            snapshot: self.snapshot(group),
        }
    }

    /// Index of the first entry held for `group` (last + 1 if none).
    pub fn first_index(&self, group: u64) -> u64 {
        self.group(group).map_or(1, |g| g.first)
    }

    /// Index of the last entry of `group` (the compaction point if none).
    pub fn last_index(&self, group: u64) -> u64 {
        self.group(group).map_or(0, |g| g.last_index())
    }

    /// Latest hard state of `group` (default if none was written).
    pub fn hard_state(&self, group: u64) -> HardState {
        self.group(group)
            .and_then(|g| g.hard_state)
            .unwrap_or_default()
    }

    /// Latest snapshot metadata of `group`.
    pub fn snapshot(&self, group: u64) -> Option<SnapshotMetadata> {
        self.group(group).and_then(|g| g.snapshot.clone())
    }

    /// `(index, term)` of `group`'s compaction mark, `(0, 0)` if none.
    pub fn compacted(&self, group: u64) -> (u64, u64) {
        self.group(group).map_or((0, 0), |g| g.compacted)
    }

    /// Term of entry `index` of `group`; the compaction point's term is
    /// known too (the entry before the first).
    pub fn term(&self, group: u64, index: u64) -> Result<u64> {
        let Some(g) = self.group(group) else {
            return if index == 0 {
                Ok(0)
            } else {
                Err(Error::Unavailable {
                    group,
                    index,
                    last: 0,
                })
            };
        };
        if index < g.first {
            if index == g.compacted.0 && index + 1 == g.first {
                return Ok(g.compacted.1);
            }
            return Err(Error::Compacted {
                group,
                index,
                first: g.first,
            });
        }
        let last = g.last_index();
        if index > last {
            return Err(Error::Unavailable { group, index, last });
        }
        Ok(g.locs[(index - g.first) as usize].term)
    }

    /// Entries `[lo, hi)` of `group`, stopping before the total encoded size
    /// exceeds `max_size` (at least one entry is returned). Cached entries
    /// are handed out as they were appended; older ones are slices of the
    /// segment map, not copies.
    pub fn entries(&self, group: u64, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        let empty = GroupState::default();
        let g = self.group(group).unwrap_or(&empty);
        if lo < g.first {
            return Err(Error::Compacted {
                group,
                index: lo,
                first: g.first,
            });
        }
        let last = g.last_index();
        if hi > last + 1 || g.locs.is_empty() {
            return Err(Error::Unavailable {
                group,
                index: hi.saturating_sub(1).max(lo),
                last,
            });
        }
        if lo >= hi {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(((hi - lo) as usize).min(1024));
        let mut size = 0u64;
        let cache_first = g.cache_first();
        for index in lo..hi {
            let e = if index >= cache_first {
                g.cache[(index - cache_first) as usize].0.clone()
            } else {
                self.read_entry(group, g, index)?
            };
            size += e.encoded_len() as u64;
            if !out.is_empty() && size > max_size {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    fn read_entry(&self, group: u64, g: &GroupState, index: u64) -> Result<Entry> {
        let loc = g.locs[(index - g.first) as usize];
        let Some(seg) = self.segments.get(&loc.seg) else {
            return Err(Error::Corrupt {
                file: segment::path(&self.disk, &segment::file_name(loc.seg)),
                offset: loc.at as u64,
                what: format!("segment of group {group} entry {index} is gone"),
            });
        };
        match format::entry_at(&seg.map, loc.at as usize) {
            Some((term, ty, data)) if term == loc.term => Ok(Entry {
                term,
                index,
                r#type: ty as i32,
                data,
            }),
            _ => Err(Error::Corrupt {
                file: seg.path.clone(),
                offset: loc.at as u64,
                what: format!("group {group} entry {index} does not match the index"),
            }),
        }
    }
}
