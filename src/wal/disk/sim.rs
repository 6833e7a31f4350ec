//! `SimDisk`: a deterministic simulated disk in memory, for running the real
//! WAL and recovery inside the simulator under the faults real disks have.
//!
//! It keeps, per file, a page cache apart from the durable media
//! (sim_media.rs), and per directory the names as the process sees them
//! apart from the names a crash leaves. Every choice it makes (when a flush
//! completes, which sectors of a torn write land, which sync fails) is drawn
//! from one `Prng` seeded by `SimOptions::seed`, and it never starts a
//! thread, so a given seed and a given sequence of calls give the same
//! outcome every time.
//!
//! The fault model (each kind has a switch or a rate in [`Faults`]):
//!
//! - **crash** ([`SimDisk::crash`]): everything not synced is lost: dirty
//!   sectors, and creates/renames/removes not followed by `sync_dir`;
//! - **torn writes**: a crash while a flush is in flight finishes its steps
//!   up to a random point (they were done, just not reaped), and lands any
//!   subset of the sectors of the write at that point (512 B or 4 KiB
//!   sectors, chosen per disk); a test may choose the point and the
//!   sectors instead ([`SimDisk::plan_tear`]);
//! - **crash writeback**: each dirty sector may have reached the media
//!   before the crash, and any prefix of the unsynced directory operations
//!   (a journal commits them in order);
//! - **failed syncs**: `EIO` from a data sync or a directory sync, after
//!   any subset of the dirty sectors landed; the rest are forgotten (Linux:
//!   marked clean, still shown by the cache, never written) or kept dirty,
//!   and a later sync does not report the earlier error;
//! - **ENOSPC** on a write or allocation that would grow the files past the
//!   capacity;
//! - **bit flips** in sectors as they reach the media (latent corruption,
//!   seen after a crash: the cache still holds the good bytes) and
//!   **misdirected writes** (a sector lands on another sector of the same
//!   file, the intended one keeps its old bytes), at seeded rates.
//!
//! Every injected fault is counted in [`FaultCounts`].
//!
//! After `crash`, every handle of the crashed life (files, flushers, lock)
//! fails with `EBADF`: the process that held them is gone. The simulator
//! crashes the disk first, then drops the WAL that ran on it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

pub use super::sim_faults::{ErrorPages, FaultCounts, Faults, SimOptions};
use super::sim_media::{Ctx, Inode};
use super::{Disk, DiskFile, FlushError, FlushPoll, FlushWrite, Flusher};
use crate::raft::Prng;
use crate::wal::error::{Error, Result as WalResult};

/// A directory operation not yet made durable by `sync_dir`.
#[derive(Debug, Clone)]
enum DirOp {
    Link(String, u64),
    Rename(String, String),
    Unlink(String),
}

impl DirOp {
    fn apply(&self, names: &mut BTreeMap<String, u64>) {
        match self {
            DirOp::Link(n, ino) => {
                names.insert(n.clone(), *ino);
            }
            DirOp::Rename(from, to) => {
                if let Some(ino) = names.remove(from) {
                    names.insert(to.clone(), ino);
                }
            }
            DirOp::Unlink(n) => {
                names.remove(n);
            }
        }
    }
}

/// A tear chosen by a test: the write it happens at and the sectors of
/// that write that land.
struct PlannedTear {
    write: usize,
    land: Vec<u64>,
}

/// One flush between `submit` and the poll that ends it: the disk holds
/// its buffers (so that a crash can tear them), the flusher its handles.
struct Flight {
    polls_left: u32,
    writes: Vec<(u64, u64, Vec<u8>)>,
    /// A write whose handle was unusable at submit: the flush fails there.
    bad: Option<(usize, io::Error)>,
}

struct State {
    faults: Faults,
    capacity: u64,
    max_flush_polls: u32,
    sector: u64,
    rng: Prng,
    /// Bumped by every crash: handles of an older life are dead.
    life: u64,
    next_ino: u64,
    next_id: u64,
    inodes: BTreeMap<u64, Inode>,
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    pending: Vec<DirOp>,
    flights: BTreeMap<u64, Flight>,
    /// How the next crash tears the flush in flight, if a test chose it
    /// (`SimDisk::plan_tear`) instead of the generator.
    planned_tear: Option<PlannedTear>,
    /// The exclusive lock's number, and how many shared locks are held.
    lock: Option<u64>,
    shared_locks: u64,
    /// Why a WAL of this life (process) poisoned the directory.
    poisoned: Option<String>,
    /// The next flush run inline is cut by a power loss
    /// (`crash_during_next_inline_flush`).
    crash_in_inline: bool,
    counts: FaultCounts,
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl State {
    fn ctx(&mut self) -> (Ctx<'_>, &mut BTreeMap<u64, Inode>) {
        (
            Ctx {
                rng: &mut self.rng,
                faults: &self.faults,
                sector: self.sector,
                counts: &mut self.counts,
            },
            &mut self.inodes,
        )
    }

    fn usage(&self) -> u64 {
        self.inodes.values().map(|i| i.cache.len() as u64).sum()
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(|| errno(libc::EBADF))
    }

    /// `ENOSPC` unless growing `ino` to `len` bytes fits the capacity.
    fn room(&mut self, ino: u64, len: u64) -> io::Result<()> {
        let cur = self.inode(ino)?.cache.len() as u64;
        let grow = len.saturating_sub(cur);
        if grow > 0 && self.usage().saturating_add(grow) > self.capacity {
            self.counts.enospc += 1;
            return Err(errno(libc::ENOSPC));
        }
        Ok(())
    }

    fn write(&mut self, ino: u64, buf: &[u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| errno(libc::EFBIG))?;
        self.room(ino, end)?;
        let sector = self.sector;
        self.inode(ino)?.write(buf, offset, sector);
        Ok(())
    }

    fn sync(&mut self, ino: u64) -> io::Result<()> {
        let (mut ctx, inodes) = self.ctx();
        inodes
            .get_mut(&ino)
            .ok_or_else(|| errno(libc::EBADF))?
            .sync(&mut ctx)
    }

    /// How many non-waiting polls the next flush takes to complete.
    fn draw_latency(&mut self) -> u32 {
        match self.max_flush_polls {
            0 => 0,
            max => self.rng.below(u64::from(max) + 1) as u32,
        }
    }

    /// Runs a flight to its end, as the kernel would: each write then its
    /// sync, stopping at the first failure.
    fn complete(&mut self, flight: &Flight) -> Result<(), FlushError> {
        for (i, (ino, offset, buf)) in flight.writes.iter().enumerate() {
            if let Some((at, e)) = &flight.bad
                && *at == i
            {
                return Err(FlushError {
                    write: i,
                    sync: false,
                    error: errno(e.raw_os_error().unwrap_or(libc::EBADF)),
                });
            }
            self.write(*ino, buf, *offset).map_err(|error| FlushError {
                write: i,
                sync: false,
                error,
            })?;
            self.sync(*ino).map_err(|error| FlushError {
                write: i,
                sync: true,
                error,
            })?;
        }
        Ok(())
    }

    /// A crash in the middle of a flight: the steps before a random point
    /// completed (the kernel did them, nobody reaped them), the write at
    /// that point is torn, nothing after it ran.
    fn tear(&mut self, flight: &Flight, plan: Option<PlannedTear>) {
        let n = flight.writes.len();
        let mut cut = match &plan {
            Some(p) => p.write.min(n),
            None => self.rng.below(n as u64 + 1) as usize,
        };
        let mut torn = true;
        if let Some((at, _)) = &flight.bad
            && cut >= *at
        {
            // The flush fails at `at`: that write never runs.
            cut = *at;
            torn = false;
        }
        for (ino, offset, buf) in &flight.writes[..cut] {
            if self.write(*ino, buf, *offset).is_err() {
                return;
            }
            // A sync failing here is one more fault of the same crash, and
            // ends the chain: nothing after a failed step runs.
            if self.sync(*ino).is_err() {
                return;
            }
        }
        let Some((ino, offset, buf)) = flight.writes.get(cut) else {
            return;
        };
        let torn_writes = self.faults.torn_writes || plan.is_some();
        if !torn || !torn_writes || self.room(*ino, offset + buf.len() as u64).is_err() {
            return;
        }
        self.counts.torn_writes += 1;
        let land = plan.map(|p| p.land);
        let (mut ctx, inodes) = self.ctx();
        if let Some(inode) = inodes.get_mut(ino) {
            inode.tear(buf, *offset, land.as_deref(), &mut ctx);
        }
    }

    /// Drops inodes nothing can reach any more: no name (now, durably, or
    /// in a pending link), no open handle.
    fn reap_inodes(&mut self) {
        let mut reachable: std::collections::BTreeSet<u64> = self.names.values().copied().collect();
        reachable.extend(self.durable_names.values().copied());
        for op in &self.pending {
            if let DirOp::Link(_, ino) = op {
                reachable.insert(*ino);
            }
        }
        self.inodes
            .retain(|ino, inode| inode.handles > 0 || reachable.contains(ino));
    }

    fn crash(&mut self) {
        self.counts.crashes += 1;
        let flights = std::mem::take(&mut self.flights);
        let mut plan = self.planned_tear.take();
        for f in flights.values() {
            self.tear(f, plan.take());
        }
        // Directory: the synced names, plus (written back) a prefix of the
        // operations since, in order, as a journal commits them.
        let keep = if self.faults.crash_writeback {
            self.rng.below(self.pending.len() as u64 + 1) as usize
        } else {
            0
        };
        let pending = std::mem::take(&mut self.pending);
        let mut names = std::mem::take(&mut self.durable_names);
        for op in &pending[..keep] {
            op.apply(&mut names);
        }
        self.counts.dir_ops_written_back += keep as u64;
        self.counts.dir_ops_lost += (pending.len() - keep) as u64;
        self.durable_names = names.clone();
        self.names = names;
        let (mut ctx, inodes) = self.ctx();
        for inode in inodes.values_mut() {
            inode.crash(&mut ctx);
        }
        self.lock = None;
        self.shared_locks = 0;
        self.poisoned = None;
        self.crash_in_inline = false;
        self.life += 1;
        self.reap_inodes();
    }
}

/// The simulated disk: one directory of files. Clones share it.
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves consistent data (every
    // mutation is a few plain assignments), so keep going.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimDisk {
    pub fn new(opts: SimOptions) -> SimDisk {
        let mut rng = Prng::new(opts.seed);
        let sector = match opts.sector_size {
            Some(s) => {
                assert!(
                    s == 512 || s == 4096,
                    "SimOptions::sector_size must be 512 or 4096, not {s}"
                );
                s
            }
            None if rng.next_u64() & 1 == 0 => 512,
            None => 4096,
        };
        SimDisk {
            state: Arc::new(Mutex::new(State {
                faults: opts.faults,
                capacity: opts.capacity,
                max_flush_polls: opts.max_flush_polls,
                sector,
                rng,
                life: 0,
                next_ino: 1,
                next_id: 1,
                inodes: BTreeMap::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                pending: Vec::new(),
                flights: BTreeMap::new(),
                planned_tear: None,
                lock: None,
                shared_locks: 0,
                poisoned: None,
                crash_in_inline: false,
                counts: FaultCounts::default(),
            })),
        }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Power loss: keeps what was synced (and, per the faults, part of what
    /// was not), tears a flush in flight, and ends the life of every handle.
    /// The disk is then ready for the next life (a restart).
    pub fn crash(&self) {
        self.st().crash();
    }

    /// Makes the next crash tear the flush in flight exactly so, instead of
    /// drawing the tear: its writes before `write` complete (each synced),
    /// of write `write` exactly the sectors numbered in `land` (sectors of
    /// its file, `offset / sector_size`, among those the write covers)
    /// reach the media, and nothing after it runs. The write's other
    /// sectors stay dirty, for the crash to lose (or, with
    /// `crash_writeback`, write back). It applies whatever `torn_writes`
    /// says, and to that one crash. For tests that need one exact disk
    /// state: which sectors of a flush landed, and what the others kept.
    pub fn plan_tear(&self, write: usize, land: &[u64]) {
        self.st().planned_tear = Some(PlannedTear {
            write,
            land: land.to_vec(),
        });
    }

    /// Arms a power loss in the middle of the next flush run inline
    /// (`Flusher::run_inline`), which a crash from outside cannot reach: the
    /// call blocks until the flush is over. The flush is cut at a point
    /// drawn from the seed exactly as `crash` cuts a flush in flight (the
    /// steps before it done, the write at it torn, nothing after it), the
    /// disk crashes there, and the call returns `EBADF` (the process that
    /// made it is gone: its caller must treat it as crashed and drop the
    /// WAL). A crash before that flush disarms it.
    pub fn crash_during_next_inline_flush(&self) {
        self.st().crash_in_inline = true;
    }

    /// The number of the disk's current life: bumped by every crash, so a
    /// caller can tell whether the disk crashed under it.
    pub fn life(&self) -> u64 {
        self.st().life
    }

    /// Latent corruption at rest: flips one random bit of the durable bytes
    /// of a random durably named, non-empty file (drawn from the seed).
    /// The page cache keeps the good bytes until a crash, as a drive's
    /// cache would. Returns the file and the byte offset that rotted.
    pub fn rot_at_rest(&self) -> Option<(String, u64)> {
        let mut guard = self.st();
        let st = &mut *guard;
        let files: Vec<(&String, &u64)> = st
            .durable_names
            .iter()
            .filter(|(_, ino)| st.inodes.get(ino).is_some_and(|i| !i.media.is_empty()))
            .collect();
        if files.is_empty() {
            return None;
        }
        let (name, ino) = files[st.rng.below(files.len() as u64) as usize];
        let (name, ino) = (name.clone(), *ino);
        let inode = st.inodes.get_mut(&ino)?;
        let bit = st.rng.below(inode.media.len() as u64 * 8);
        inode.media[(bit / 8) as usize] ^= 1 << (bit % 8);
        st.counts.bit_flips += 1;
        Some((name, bit / 8))
    }

    /// Latent corruption at a chosen place: XORs `mask` into the durable
    /// byte at `offset` of the file `name` durably refers to (the page
    /// cache keeps the good byte until a crash). False if there is no such
    /// byte. For tests that need the rot where a record is.
    pub fn rot_durable_byte(&self, name: &str, offset: u64, mask: u8) -> bool {
        let mut guard = self.st();
        let st = &mut *guard;
        let Some(ino) = st.durable_names.get(name).copied() else {
            return false;
        };
        let Some(b) = st
            .inodes
            .get_mut(&ino)
            .and_then(|i| i.media.get_mut(offset as usize))
        else {
            return false;
        };
        *b ^= mask;
        st.counts.bit_flips += 1;
        true
    }

    /// Faults injected so far.
    pub fn counts(&self) -> FaultCounts {
        self.st().counts
    }

    /// Changes the fault switches and rates from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.st().faults = faults;
    }

    /// Bytes the files may hold (`u64::MAX`: no limit).
    pub fn capacity(&self) -> u64 {
        self.st().capacity
    }

    /// Changes the capacity from now on (files already past it stay).
    pub fn set_capacity(&self, capacity: u64) {
        self.st().capacity = capacity;
    }

    pub fn sector_size(&self) -> u64 {
        self.st().sector
    }

    /// Bytes held by the files (their lengths in the page cache).
    pub fn usage(&self) -> u64 {
        self.st().usage()
    }

    /// Whether a flush is in flight.
    pub fn in_flight(&self) -> bool {
        !self.st().flights.is_empty()
    }

    /// The names a crash now would keep if it kept nothing unsynced.
    pub fn durable_names(&self) -> Vec<String> {
        self.st().durable_names.keys().cloned().collect()
    }

    /// The media bytes of the file `name` durably refers to: exactly what a
    /// crash now would leave if it kept nothing unsynced.
    pub fn durable_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let st = self.st();
        let ino = st.durable_names.get(name)?;
        st.inodes.get(ino).map(|i| i.media.clone())
    }

    /// The page cache bytes of `name` (what reads see now).
    pub fn cached_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let st = self.st();
        let ino = st.names.get(name)?;
        st.inodes.get(ino).map(|i| i.cache.clone())
    }

    fn handle(&self, st: &mut State, ino: u64, writable: bool) -> SimFile {
        if let Some(i) = st.inodes.get_mut(&ino) {
            i.handles += 1;
        }
        SimFile {
            state: self.state.clone(),
            ino,
            life: st.life,
            writable,
        }
    }
}

/// Held while the simulated directory is locked (exclusive, or shared by
/// read-only opens). A crash releases every lock of the crashed life.
pub struct SimLock {
    state: Arc<Mutex<State>>,
    id: u64,
    life: u64,
    shared: bool,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        if st.life != self.life {
            return;
        }
        if self.shared {
            st.shared_locks = st.shared_locks.saturating_sub(1);
        } else if st.lock == Some(self.id) {
            st.lock = None;
        }
    }
}

/// The name simulated disks give their directory in error messages.
const SIM_DIR: &str = "simdisk";

impl Disk for SimDisk {
    type File = SimFile;
    type Flusher = SimFlusher;
    type Lock = SimLock;

    const BACKGROUND: bool = false;
    const LIVE_VIEWS: bool = false;

    fn dir(&self) -> &Path {
        Path::new(SIM_DIR)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.st().names.keys().cloned().collect())
    }

    fn create(&self, name: &str) -> io::Result<SimFile> {
        let mut st = self.st();
        if st.names.contains_key(name) {
            return Err(errno(libc::EEXIST));
        }
        let ino = st.next_ino;
        st.next_ino += 1;
        st.inodes.insert(ino, Inode::default());
        st.names.insert(name.to_string(), ino);
        st.pending.push(DirOp::Link(name.to_string(), ino));
        Ok(self.handle(&mut st, ino, true))
    }

    fn open(&self, name: &str, writable: bool) -> io::Result<SimFile> {
        let mut st = self.st();
        let ino = *st.names.get(name).ok_or_else(|| errno(libc::ENOENT))?;
        Ok(self.handle(&mut st, ino, writable))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut st = self.st();
        let ino = *st.names.get(from).ok_or_else(|| errno(libc::ENOENT))?;
        if from == to {
            return Ok(());
        }
        st.names.remove(from);
        st.names.insert(to.to_string(), ino);
        st.pending
            .push(DirOp::Rename(from.to_string(), to.to_string()));
        st.reap_inodes();
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut st = self.st();
        if st.names.remove(name).is_none() {
            return Err(errno(libc::ENOENT));
        }
        st.pending.push(DirOp::Unlink(name.to_string()));
        st.reap_inodes();
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut guard = self.st();
        let st = &mut *guard;
        let ppm = st.faults.sync_error_ppm;
        let fail = {
            let (mut ctx, _) = st.ctx();
            ctx.chance(ppm)
        };
        if fail {
            // Some prefix of the journal made it; the rest waits.
            st.counts.sync_errors += 1;
            let keep = st.rng.below(st.pending.len() as u64 + 1) as usize;
            let done: Vec<DirOp> = st.pending.drain(..keep).collect();
            let mut names = std::mem::take(&mut st.durable_names);
            for op in &done {
                op.apply(&mut names);
            }
            st.durable_names = names;
            st.reap_inodes();
            return Err(errno(libc::EIO));
        }
        st.durable_names = st.names.clone();
        st.pending.clear();
        st.reap_inodes();
        Ok(())
    }

    fn lock(&self, shared: bool) -> WalResult<Option<SimLock>> {
        let mut st = self.st();
        let refused = |holder| {
            Err(Error::Locked {
                dir: PathBuf::from(SIM_DIR),
                holder,
            })
        };
        if let Some(id) = st.lock {
            return refused(Some(u32::try_from(id).unwrap_or(u32::MAX)));
        }
        if !shared && st.shared_locks > 0 {
            return refused(None);
        }
        let id = st.next_id;
        st.next_id += 1;
        if shared {
            st.shared_locks += 1;
        } else {
            st.lock = Some(id);
        }
        Ok(Some(SimLock {
            state: self.state.clone(),
            id,
            life: st.life,
            shared,
        }))
    }

    fn poison(&self, held: &SimLock, cause: &str) {
        let mut st = self.st();
        if held.life == st.life {
            st.poisoned = Some(cause.to_string());
        }
    }

    fn poisoned(&self) -> Option<(PathBuf, String)> {
        let st = self.st();
        st.poisoned.clone().map(|c| (PathBuf::from(SIM_DIR), c))
    }

    fn flusher(&self) -> io::Result<SimFlusher> {
        let mut st = self.st();
        let id = st.next_id;
        st.next_id += 1;
        Ok(SimFlusher {
            disk: self.clone(),
            id,
            life: st.life,
            writes: Vec::new(),
            busy: false,
        })
    }
}

/// An open file of the simulated disk.
pub struct SimFile {
    state: Arc<Mutex<State>>,
    ino: u64,
    life: u64,
    writable: bool,
}

impl Clone for SimFile {
    fn clone(&self) -> Self {
        let mut st = lock(&self.state);
        if st.life == self.life
            && let Some(i) = st.inodes.get_mut(&self.ino)
        {
            i.handles += 1;
        }
        SimFile {
            state: self.state.clone(),
            ino: self.ino,
            life: self.life,
            writable: self.writable,
        }
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        if st.life == self.life {
            if let Some(i) = st.inodes.get_mut(&self.ino) {
                i.handles = i.handles.saturating_sub(1);
            }
            st.reap_inodes();
        }
    }
}

impl std::fmt::Debug for SimFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimFile(inode {}, life {})", self.ino, self.life)
    }
}

impl SimFile {
    /// The state, if this handle is of the current life.
    fn live(&self) -> io::Result<MutexGuard<'_, State>> {
        let st = lock(&self.state);
        if st.life != self.life {
            return Err(errno(libc::EBADF));
        }
        Ok(st)
    }

    fn writable(&self) -> io::Result<MutexGuard<'_, State>> {
        if !self.writable {
            return Err(errno(libc::EBADF));
        }
        self.live()
    }
}

/// Owner of a view's bytes: a copy of the page cache at the time of the
/// view, plus a reference that `view_in_use` counts.
struct ViewOwner {
    bytes: Vec<u8>,
    _token: Arc<()>,
}

impl AsRef<[u8]> for ViewOwner {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl DiskFile for SimFile {
    fn size(&self) -> io::Result<u64> {
        let mut st = self.live()?;
        Ok(st.inode(self.ino)?.cache.len() as u64)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let mut st = self.writable()?;
        st.room(self.ino, len)?;
        let sector = st.sector;
        st.inode(self.ino)?.grow(len, sector);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.writable()?.write(self.ino, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.live()?.sync(self.ino)
    }

    fn view(&self) -> io::Result<Bytes> {
        let mut st = self.live()?;
        let inode = st.inode(self.ino)?;
        // A copy, not a map: the simulator's segments are small, and a copy
        // cannot change under a reader whatever the WAL gets wrong.
        Ok(Bytes::from_owner(ViewOwner {
            bytes: inode.cache.clone(),
            _token: inode.views.clone(),
        }))
    }

    fn view_in_use(&self) -> bool {
        let st = lock(&self.state);
        st.inodes
            .get(&self.ino)
            .is_some_and(|i| Arc::strong_count(&i.views) > 1)
    }
}

/// Runs the flushes of one WAL on the simulated disk. A flush does nothing
/// until it completes: on the poll that ends it (after a seeded number of
/// non-waiting polls, or at once when waiting), its writes reach the page
/// cache and each file is synced, in order, stopping at the first failure.
pub struct SimFlusher {
    disk: SimDisk,
    id: u64,
    life: u64,
    /// The writes of the flight, their buffers lent to the disk.
    writes: Vec<FlushWrite<SimFile>>,
    busy: bool,
}

impl SimFlusher {
    fn hand_back(&mut self, bufs: Vec<(u64, u64, Vec<u8>)>) -> Vec<FlushWrite<SimFile>> {
        let mut writes = std::mem::take(&mut self.writes);
        for (w, (_, _, buf)) in writes.iter_mut().zip(bufs) {
            w.buf = buf;
        }
        self.busy = false;
        writes
    }

    /// The flight of `writes` (their buffers lent to the disk), with the
    /// first write whose handle is unusable (dead life, read-only).
    fn flight(&self, st: &State, writes: &mut [FlushWrite<SimFile>], polls_left: u32) -> Flight {
        let mut bad = None;
        if st.life != self.life {
            bad = Some((0, errno(libc::EBADF)));
        }
        let mut bufs = Vec::with_capacity(writes.len());
        for (i, w) in writes.iter_mut().enumerate() {
            if bad.is_none() && (w.file.life != st.life || !w.file.writable) {
                bad = Some((i, errno(libc::EBADF)));
            }
            bufs.push((w.file.ino, w.offset, std::mem::take(&mut w.buf)));
        }
        Flight {
            polls_left,
            writes: bufs,
            bad,
        }
    }
}

fn ebadf_at_start() -> FlushError {
    FlushError {
        write: 0,
        sync: false,
        error: errno(libc::EBADF),
    }
}

impl Flusher for SimFlusher {
    type File = SimFile;

    fn submit(&mut self, mut writes: Vec<FlushWrite<SimFile>>) {
        assert!(
            !self.busy,
            "SimFlusher::submit: a flush is already in flight"
        );
        let mut st = self.disk.st();
        let polls_left = st.draw_latency();
        let flight = self.flight(&st, &mut writes, polls_left);
        st.flights.insert(self.id, flight);
        drop(st);
        self.writes = writes;
        self.busy = true;
    }

    /// The flight completes at once, as `poll` completes it; or, if a crash
    /// was armed, the disk crashes in its middle (`crash` tears it) and the
    /// buffers go with the process.
    fn run_inline(&mut self, mut writes: Vec<FlushWrite<SimFile>>) -> FlushPoll<SimFile> {
        assert!(!self.busy, "SimFlusher::run_inline: a flush is in flight");
        let mut st = self.disk.st();
        // Drawn and unused (the call itself is the latency), so that the
        // disk's later draws, which sync fails and which sectors tear, do
        // not depend on the path a flush took: a history replays the same
        // faults whichever path each of its flushes takes.
        let _ = st.draw_latency();
        let flight = self.flight(&st, &mut writes, 0);
        if std::mem::take(&mut st.crash_in_inline) {
            st.flights.insert(self.id, flight);
            st.crash();
            return FlushPoll::Failed {
                error: ebadf_at_start(),
                writes,
            };
        }
        let outcome = st.complete(&flight);
        drop(st);
        for (w, (_, _, buf)) in writes.iter_mut().zip(flight.writes) {
            w.buf = buf;
        }
        match outcome {
            Ok(()) => FlushPoll::Done(writes),
            Err(error) => FlushPoll::Failed { error, writes },
        }
    }

    fn poll(&mut self, wait: bool) -> FlushPoll<SimFile> {
        if !self.busy {
            return FlushPoll::Idle;
        }
        let mut st = self.disk.st();
        let Some(flight) = st.flights.get_mut(&self.id) else {
            // The disk crashed under the flight and kept its buffers' fate;
            // the buffers themselves went with the process.
            drop(st);
            let writes = self.hand_back(Vec::new());
            return FlushPoll::Failed {
                error: ebadf_at_start(),
                writes,
            };
        };
        if !wait && flight.polls_left > 0 {
            flight.polls_left -= 1;
            return FlushPoll::Pending;
        }
        let Some(flight) = st.flights.remove(&self.id) else {
            unreachable!("the flight was just found");
        };
        let outcome = st.complete(&flight);
        drop(st);
        let writes = self.hand_back(flight.writes);
        match outcome {
            Ok(()) => FlushPoll::Done(writes),
            Err(error) => FlushPoll::Failed { error, writes },
        }
    }

    fn busy(&self) -> bool {
        self.busy
    }
}

impl Drop for SimFlusher {
    /// As in production: a flush in flight runs to its end first.
    fn drop(&mut self) {
        if self.busy {
            let _ = self.poll(true);
        }
    }
}
