//! The WAL's file I/O behind one small interface, so that the same WAL and
//! recovery code runs on the real disk (io_uring, production) and on the
//! deterministic simulated disk of `sim.rs` (the simulator, which injects
//! the faults a real disk has).
//!
//! The interface is the exact set of operations the WAL performs, no more:
//!
//! - on its directory ([`Disk`]): list names, create or open a file,
//!   rename, remove, make those durable (`sync_dir`), take the directory
//!   lock;
//! - on a file ([`DiskFile`]): size, preallocation, a synchronous
//!   positioned write, a data sync, and a read view of the whole file as
//!   `Bytes` (the mmap in production: entries are sliced from it without
//!   copying);
//! - the flush ([`Flusher`]): an ordered list of writes, each followed by a
//!   data sync of its file, linked so that nothing runs after a failure,
//!   submitted without waiting and reaped by polling; or the same list run
//!   to its end on the calling thread (`run_inline`).
//!
//! What it must never do: know the WAL's format, or lose track of a flush's
//! buffers. The buffers of a flush are *moved* into it and handed back only
//! once the disk can no longer read them (completed or failed, everything
//! outstanding reaped): the WAL cannot free memory the kernel is still
//! writing from, whatever error comes back, and needs no `unsafe` for it.
//!
//! Errors are `std::io::Error` carrying the raw OS error a real kernel
//! would give (`EIO`, `ENOSPC`, `ENOENT`, `EEXIST`, `EBADF`), so that the
//! WAL maps both implementations' failures to `wal::Error::Io` in one place,
//! naming the step and the file as it does today.
//!
//! Speed: the production implementation must cost what today's writer.rs
//! and segment.rs cost. Nothing here forces a copy (buffers move in and
//! back out, the `Vec` of writes included, so a flush allocates nothing),
//! an extra syscall (`submit` is one `io_uring_enter`, `poll(false)` reads
//! the completion ring, `view` of an already mapped file is a refcount), or
//! dynamic dispatch (the WAL is generic over `Disk`).

mod lock;
pub mod sim;
mod sim_faults;
mod sim_media;
#[cfg(test)]
mod sim_tests;
mod uring;
mod uring_flush;
mod uring_inline;

use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::error::Result;

pub use sim::{ErrorPages, FaultCounts, Faults, SimDisk, SimFile, SimFlusher, SimOptions};
pub use uring::{UringDisk, UringFile};
pub use uring_flush::{Fault, UringFlusher};

/// The WAL's directory: every operation the WAL performs on names.
///
/// Names are file names inside the directory (no separators); a
/// `Disk` value is a cheap handle (clones share the directory), `Send` so
/// that a segment can be prepared on a helper thread where `BACKGROUND`
/// allows it.
///
/// Durability of names follows POSIX, not ext4's kindness: a `create`,
/// `rename` or `remove` survives a crash only once `sync_dir` has returned
/// after it (and may survive without it: the simulated disk, like a
/// journalling file system, can keep any prefix of the unsynced ones).
pub trait Disk: Clone + Send + Sync + 'static {
    /// An open file of this directory.
    type File: DiskFile;
    /// The flush machinery (one per WAL: the ring in production).
    type Flusher: Flusher<File = Self::File>;
    /// Held while the directory is locked; dropping it unlocks.
    type Lock: Send;

    /// Whether a view (`DiskFile::view`) shows bytes written after it was
    /// taken. The production mmap does, so the WAL takes one view per
    /// segment for good; the simulated disk's views are copies, so the WAL
    /// takes a new view of each segment a completed flush wrote (where its
    /// entries will be read from once the cache lets them go).
    const LIVE_VIEWS: bool;

    /// Whether the WAL may run segment creation on a helper thread. The
    /// production disk says yes (zero-filling a segment takes ~100 ms of
    /// disk time, which must not stall appends); the simulated disk says no:
    /// every operation must happen on the caller's thread, in an order fixed
    /// by the seed, or a run would not replay.
    const BACKGROUND: bool;

    /// The directory, for error messages (a real path in production).
    fn dir(&self) -> &Path;

    /// The names in the directory, in no particular order (names that are
    /// not valid UTF-8 are skipped: the WAL's are ASCII).
    fn list(&self) -> io::Result<Vec<String>>;

    /// Creates `name`, empty, for reading and writing. `EEXIST` if it
    /// exists (`O_CREAT | O_EXCL`): two creators can never share a file, so
    /// a leftover must be removed first.
    fn create(&self, name: &str) -> io::Result<Self::File>;

    /// Opens an existing file, writable or not. `ENOENT` if absent.
    fn open(&self, name: &str, writable: bool) -> io::Result<Self::File>;

    /// Renames `from` to `to`, replacing `to` if it exists (rename(2)).
    /// `ENOENT` if `from` is absent. Open files and views stay valid.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Removes `name`. `ENOENT` if absent. Open files and views of it stay
    /// valid (an unlinked inode lives while it is open).
    fn remove(&self, name: &str) -> io::Result<()>;

    /// Makes every create, rename and remove before it durable (fsync of the
    /// directory).
    fn sync_dir(&self) -> io::Result<()>;

    /// Takes the directory's lock without waiting: exclusive for a
    /// read-write open, shared for a read-only one (`shared`), so that at
    /// most one WAL writes a directory and nobody inspects it meanwhile
    /// (flock on a lock file in production, which a read-only open does not
    /// create: `Ok(None)` then). Refused with `Error::Locked`, naming the
    /// holder (a process id in production, the lock's number on the
    /// simulated disk) if a read-write open holds it.
    fn lock(&self, shared: bool) -> Result<Option<Self::Lock>>;

    /// Records that a WAL holding `held` failed a flush: what reached the
    /// media is unknown and the page cache cannot be trusted, so no WAL of
    /// this process may open the directory again (`poisoned`). In
    /// production a registry of the process keyed by the directory's
    /// canonical path, never emptied; on the simulated disk, until the next
    /// crash (a restart is a new process), and only if `held` is of the
    /// disk's current life (a WAL dropped after a crash is of a dead
    /// process, whose poison died with it).
    fn poison(&self, held: &Self::Lock, cause: &str);

    /// If the directory is poisoned in this process: the directory as the
    /// registry names it (resolved in production) and the cause.
    fn poisoned(&self) -> Option<(PathBuf, String)>;

    /// The flush machinery for one WAL.
    fn flusher(&self) -> io::Result<Self::Flusher>;
}

/// An open file. Clones are handles to the same open file (an `Arc`), so a
/// flush can hold one for as long as it runs.
pub trait DiskFile: Clone + Send + Sync + 'static {
    /// Current length in bytes (fstat's `st_size`).
    fn size(&self) -> io::Result<u64>;

    /// Grows the file to `len` bytes whose blocks are all written (zeros),
    /// so that later overwrites and their data syncs touch data only, no
    /// extent or size metadata (segment.rs explains the ~6x at stake). A
    /// file already that long is left alone. `ENOSPC` if the disk is full
    /// (the file may then have grown part of the way). Not durable until
    /// `sync_data`.
    fn allocate(&self, len: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset` (a short write is retried inside),
    /// through the page cache: not durable until `sync_data`. `ENOSPC` if it
    /// would grow the file past what the disk holds; `EBADF` on a file
    /// opened read-only.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// fdatasync: makes every write and allocation before it durable, the
    /// length included. After an `EIO`, what reached the media is unknown,
    /// and a later `sync_data` does NOT report the earlier failure (as on
    /// Linux): a caller that saw an error must stop trusting the file.
    fn sync_data(&self) -> io::Result<()>;

    /// The whole file as `Bytes`, for reading records and slicing entries.
    /// It shows every byte written before the call (by `write_at` or by a
    /// completed flush); whether it shows bytes written after the call is
    /// unspecified (the production mmap does; the simulated disk's copy
    /// does not): take a new view to read them. Production maps the file
    /// once and hands out the same map, so a view costs a refcount. The
    /// file's length must not change while views of it are alive.
    fn view(&self) -> io::Result<Bytes>;

    /// Whether a view of this file (or a slice of one) is still alive
    /// anywhere. A file may be reused (its bytes overwritten) only when no
    /// view is: a reader must never see bytes change under it.
    fn view_in_use(&self) -> bool;

    /// Advice only: drop the file's clean, unmapped pages from the page
    /// cache. A segment gets it once its zeros (or, recycled, its header)
    /// are synced: the zero fill leaves the file in large page-cache
    /// folios, and every later small write dirties one of them, which
    /// costs each fdatasync a few microseconds more than a write into a
    /// page created for it (docs/benchmarks.md, "Where the last 4% went").
    /// Never loses data (dirty and mapped pages stay); the simulated disk
    /// has no page sizes to speak of and ignores it.
    fn drop_cache(&self) {}
}

/// One write of a flush: `buf` goes to `offset` of `file`. The buffer is
/// owned by the flush from `submit` until `poll` hands it back.
#[derive(Debug)]
pub struct FlushWrite<F> {
    pub file: F,
    pub offset: u64,
    pub buf: Vec<u8>,
}

/// What went wrong in a flush: which write (index in the submitted list),
/// whether its write or its sync failed, and the OS error.
#[derive(Debug)]
pub struct FlushError {
    pub write: usize,
    pub sync: bool,
    pub error: io::Error,
}

/// The outcome of polling a flush.
#[derive(Debug)]
pub enum FlushPoll<F> {
    /// No flush in flight.
    Idle,
    /// In flight; poll again (the eventfd, if registered, says when).
    Pending,
    /// Every write landed and every sync returned: the flush is durable.
    /// The writes come back (same order, buffers intact) for reuse.
    Done(Vec<FlushWrite<F>>),
    /// A write or sync failed; nothing of the flush is still outstanding,
    /// so the buffers come back. Whatever followed the failed step did not
    /// run; whatever preceded it may or may not be durable.
    Failed {
        error: FlushError,
        writes: Vec<FlushWrite<F>>,
    },
}

/// Runs flushes: one at a time (recovery's torn-tail rule relies on a
/// single incomplete flush).
///
/// A flush is the writes in order, each followed by a data sync of its
/// file, each step running only if every step before it succeeded in full
/// (in production: one linked io_uring chain `write A → fdatasync A →
/// write B → fdatasync B`, in one submission). So a flush that spans two
/// files makes the first durable before the second is written. How each
/// step is made durable (a linked fdatasync, or a write with `RWF_DSYNC`)
/// is the implementation's choice; `Done` means all of it is durable.
///
/// Dropping a `Flusher` with a flush in flight waits for it to complete or
/// fail (its buffers must outlive the disk's use of them).
pub trait Flusher: Send {
    type File: DiskFile;

    /// Starts a flush and returns without waiting. A failure to start is
    /// not returned here: it comes out of the next `poll` as `Failed`, with
    /// the buffers, after anything that did reach the disk is reaped.
    ///
    /// # Panics
    /// If a flush is already in flight (`busy`): that is a bug of the
    /// caller, never a consequence of input.
    fn submit(&mut self, writes: Vec<FlushWrite<Self::File>>);

    /// Reaps the flush in flight; with `wait`, blocks until it is over
    /// (an interrupted wait is retried, never reported).
    fn poll(&mut self, wait: bool) -> FlushPoll<Self::File>;

    /// Runs a flush to its end on the calling thread, blocking until every
    /// step is done or one failed, and hands the writes back: `Done` or
    /// `Failed`, exactly as `poll` would for the same flush submitted (never
    /// `Idle` or `Pending`). The same steps in the same order under the
    /// same rule (each write, then a data sync of its file, nothing after a
    /// failure; a short write is continued, an interrupted call retried),
    /// and the same injected faults; only the thread differs. In
    /// production: `pwrite` then `fdatasync` per write (uring_inline.rs),
    /// which saves the two thread wakeups an io_uring fsync costs.
    ///
    /// # Panics
    /// If a flush is in flight (`busy`): running this one first would
    /// change the order of flushes on disk, a bug of the caller.
    fn run_inline(&mut self, writes: Vec<FlushWrite<Self::File>>) -> FlushPoll<Self::File>;

    /// Whether a flush is in flight (submitted, not yet handed back).
    fn busy(&self) -> bool;

    /// Has `eventfd` signalled when a completion is posted, so that an
    /// executor can sleep on it rather than poll in a loop. The simulated
    /// disk has no file descriptors: `Unsupported` (its driver polls).
    fn register_eventfd(&self, eventfd: RawFd) -> io::Result<()> {
        let _ = eventfd;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this disk has no completion eventfd",
        ))
    }
}
