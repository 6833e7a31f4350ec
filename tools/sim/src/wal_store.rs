//! `--storage wal`: a node's storage is corelog's WAL (`WalStorage` over a
//! `Wal<SimDisk>`, one WAL per node holding one group), on a simulated disk
//! that loses what was not synced when the node crashes and injects the
//! faults the seed asks for (wal/disk/sim.rs).
//!
//! This file owns the WAL's life in a node: creating it on an empty disk,
//! queueing the driver's writes, starting and reaping flushes, recovering
//! it after a crash (`SimDisk::crash`, then `Wal::open_on` over what the
//! disk kept, exactly as a restarted process would), and classifying what
//! recovery says. What to write when, and which messages wait for which
//! flush, is the driver's (sim.rs).
//!
//! The WAL keeps a snapshot's metadata, not its data: the application's
//! snapshot payloads live beside it (`Snaps`), as snapshot files would,
//! written and synced before the WAL records their metadata, so they are
//! modelled as never lost.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use bytes::Bytes;
use corelog::raft::{self, RaftState, Storage, StorageError};
use corelog::raftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use corelog::wal::disk::SimDisk;
use corelog::wal::{self, Wal, WalStorage};

use crate::store::StoreError;

/// The one group of each node's WAL.
pub const GROUP: u64 = 1;

/// The application's snapshot payloads by index (see the module doc).
pub type Snaps = Rc<RefCell<BTreeMap<u64, Bytes>>>;

/// A running node's WAL and what the driver tracks of its flushes.
pub struct WalStore {
    disk: SimDisk,
    opts: wal::Options,
    storage: WalStorage<SimDisk>,
    snaps: Snaps,
    /// The number of the last flush started (0: none yet).
    last_started: u64,
    /// The flush that makes everything queued so far durable (the highest
    /// ticket the WAL handed out).
    ticket: u64,
    /// Flushes started and not yet known complete, with the hard state
    /// queued when each started.
    in_flight: VecDeque<(u64, HardState)>,
    /// The hard state as of the last completed flush: what the node has
    /// told nobody it could forget.
    durable_hs: HardState,
    /// Segments GC removed, counted for the whole run.
    freed: Rc<Cell<u64>>,
    /// The disk's life when this WAL was opened: a crash cut into an
    /// inline flush ends it from under the WAL.
    life: u64,
}

/// A crashed node's disk, kept for its restart.
pub struct WalDown {
    pub disk: SimDisk,
    pub opts: wal::Options,
    pub snaps: Snaps,
    /// The hard state of the last flush that completed before the crash:
    /// recovery must not come back with less.
    pub durable_hs: HardState,
    pub freed: Rc<Cell<u64>>,
}

/// Why a restart did not bring the node up.
#[derive(Debug)]
pub enum RecoverError {
    /// An I/O error (a failed sync, a full disk): a later restart may work.
    Transient(String),
    /// The WAL refused its disk (corruption before the tail, a missing or
    /// truncated segment, ...): the node cannot run on it.
    Corrupt(String),
}

fn failed(e: wal::Error) -> StoreError {
    StoreError::Failed(e.to_string())
}

/// Errors the WAL returns for a request it refuses as such; anything else
/// is an I/O failure that poisoned it.
fn classify(e: wal::Error) -> StoreError {
    match e {
        wal::Error::SnapshotOutOfDate { .. } => {
            StoreError::Refused(raft::Error::Storage(StorageError::SnapshotOutOfDate))
        }
        wal::Error::Compacted { .. } => {
            StoreError::Refused(raft::Error::Storage(StorageError::Compacted))
        }
        wal::Error::Unavailable { .. } => {
            StoreError::Refused(raft::Error::Storage(StorageError::Unavailable))
        }
        wal::Error::NotContiguous { .. }
        | wal::Error::NonConsecutive { .. }
        | wal::Error::Limit { .. } => {
            StoreError::Refused(raft::Error::Storage(StorageError::Unavailable))
        }
        e @ wal::Error::NoSpace { .. } => StoreError::NoSpace(e.to_string()),
        e => failed(e),
    }
}

impl WalStore {
    /// A fresh WAL on an empty disk.
    pub fn create(
        disk: SimDisk,
        opts: wal::Options,
        freed: Rc<Cell<u64>>,
    ) -> Result<WalStore, StoreError> {
        let wal = Wal::open_on(disk.clone(), opts.clone()).map_err(failed)?;
        let down = WalDown {
            disk,
            opts,
            snaps: Snaps::default(),
            durable_hs: HardState::default(),
            freed,
        };
        Ok(WalStore::over(&down, wal, HardState::default()))
    }

    fn over(down: &WalDown, wal: Wal<SimDisk>, durable_hs: HardState) -> WalStore {
        let storage = WalStorage::new(Rc::new(RefCell::new(wal)), GROUP);
        WalStore {
            disk: down.disk.clone(),
            opts: down.opts.clone(),
            storage,
            snaps: down.snaps.clone(),
            last_started: 0,
            ticket: 0,
            in_flight: VecDeque::new(),
            durable_hs,
            freed: down.freed.clone(),
            life: down.disk.life(),
        }
    }

    /// Recovers a crashed node's WAL from what its disk kept.
    pub fn recover(down: &WalDown) -> Result<WalStore, RecoverError> {
        match Wal::open_on(down.disk.clone(), down.opts.clone()) {
            Ok(wal) => {
                let hs = wal.hard_state(GROUP);
                Ok(WalStore::over(down, wal, hs))
            }
            Err(e @ (wal::Error::Io { .. } | wal::Error::NoSpace { .. })) => {
                Err(RecoverError::Transient(e.to_string()))
            }
            Err(e) => Err(RecoverError::Corrupt(e.to_string())),
        }
    }

    /// Power loss: the disk keeps what it keeps, then the WAL that ran on
    /// it is dropped (its handles are dead by then, as the process is).
    /// A disk that crashed already (in the middle of an inline flush) is
    /// not crashed twice.
    pub fn crash(self) -> WalDown {
        if !self.crashed() {
            self.disk.crash();
        }
        WalDown {
            disk: self.disk.clone(),
            opts: self.opts.clone(),
            snaps: self.snaps.clone(),
            durable_hs: self.durable_hs,
            freed: self.freed.clone(),
        }
    }

    pub fn disk(&self) -> &SimDisk {
        &self.disk
    }

    pub fn durable_hs(&self) -> HardState {
        self.durable_hs
    }

    pub fn hard_state(&self) -> HardState {
        self.storage.wal().borrow().hard_state(GROUP)
    }

    pub fn set_hard_state(&mut self, hs: HardState) -> Result<(), StoreError> {
        let t = self.storage.set_hard_state(&hs).map_err(classify)?;
        self.queued(t);
        Ok(())
    }

    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let t = self.storage.append(entries).map_err(classify)?;
        self.queued(t);
        Ok(())
    }

    /// A snapshot from the leader: its payload beside the WAL, then its
    /// metadata replacing the whole log.
    pub fn apply_snapshot(&mut self, snap: Snapshot) -> Result<(), StoreError> {
        let meta = snap.metadata.clone().unwrap_or_default();
        let ours = self
            .storage
            .wal()
            .borrow()
            .snapshot(GROUP)
            .map_or(0, |m| m.index);
        // As MemStorage: a snapshot not newer than the one held is refused.
        if ours != 0 && ours >= meta.index {
            return Err(StoreError::Refused(raft::Error::Storage(
                StorageError::SnapshotOutOfDate,
            )));
        }
        self.snaps.borrow_mut().insert(meta.index, snap.data);
        let t = self.storage.apply_snapshot(&meta).map_err(classify)?;
        self.queued(t);
        Ok(())
    }

    /// The application's snapshot at `i` (MemStorage::create_snapshot).
    pub fn create_snapshot(
        &mut self,
        i: u64,
        cs: Option<ConfState>,
        data: Bytes,
    ) -> Result<(), StoreError> {
        let mut meta = {
            let w = self.storage.wal().borrow();
            w.snapshot(GROUP).unwrap_or_default()
        };
        if i <= meta.index {
            return Err(StoreError::Refused(raft::Error::Storage(
                StorageError::SnapshotOutOfDate,
            )));
        }
        let term = self
            .storage
            .wal()
            .borrow()
            .term(GROUP, i)
            .map_err(classify)?;
        meta = SnapshotMetadata {
            index: i,
            term,
            conf_state: cs.or(meta.conf_state),
        };
        self.snaps.borrow_mut().insert(i, data);
        let t = self.storage.wal().borrow_mut().set_snapshot(GROUP, &meta);
        self.queued(t.map_err(classify)?);
        Ok(())
    }

    /// Compacts the log up to `i` (kept as the compaction mark, as
    /// MemStorage keeps its dummy entry), then lets GC free what no group
    /// needs: segments are deleted or recycled, live entries relocated.
    pub fn compact(&mut self, i: u64) -> Result<(), StoreError> {
        let first = self.storage.wal().borrow().first_index(GROUP);
        if i < first {
            return Err(StoreError::Refused(raft::Error::Storage(
                StorageError::Compacted,
            )));
        }
        let t = self.storage.compact(i).map_err(classify)?;
        self.queued(t);
        self.gc()
    }

    /// GC flushes what is pending first: every flush started before it is
    /// then complete.
    fn gc(&mut self) -> Result<(), StoreError> {
        let r = self.storage.wal().borrow_mut().gc();
        let n = r.map_err(failed)?;
        self.freed.set(self.freed.get() + n as u64);
        let d = self.storage.wal().borrow().durable_flush();
        self.last_started = self.last_started.max(d);
        self.completed(d);
        Ok(())
    }

    /// Starts a flush of what is queued (a flush in flight is completed
    /// first). Returns the flush that makes everything queued so far
    /// durable.
    pub fn start_flush(&mut self) -> Result<u64, StoreError> {
        let hs = self.hard_state();
        let r = self.storage.wal().borrow_mut().start_flush();
        let started = r.map_err(failed)?;
        let d = self.storage.wal().borrow().durable_flush();
        self.completed(d);
        if let Some(n) = started {
            self.last_started = n;
            self.in_flight.push_back((n, hs));
        }
        Ok(self.last_started)
    }

    /// Reaps the flush in flight if the disk is done with it; returns the
    /// last completed flush.
    pub fn poll_flush(&mut self) -> Result<u64, StoreError> {
        let r = self.storage.wal().borrow_mut().poll_flush();
        let d = r.map_err(failed)?;
        self.completed(d);
        Ok(d)
    }

    /// Flushes everything queued on the calling thread (`Wal::flush_inline`:
    /// a flush on the ring still in flight is completed first). Returns the
    /// flush that makes everything queued so far durable, which is then
    /// complete. With `cut`, a power loss hits the disk in the middle of
    /// that flush (if there is one to run): the call fails and `crashed`
    /// says so.
    pub fn flush_inline(&mut self, cut: bool) -> Result<u64, StoreError> {
        let hs = self.hard_state();
        if cut && self.has_pending() {
            self.disk.crash_during_next_inline_flush();
        }
        let r = self.storage.wal().borrow_mut().flush_inline();
        let d = r.map_err(failed)?;
        if d > self.last_started {
            self.last_started = d;
            self.in_flight.push_back((d, hs));
        }
        self.completed(d);
        Ok(self.last_started)
    }

    /// Whether the disk crashed under this WAL (a cut inline flush).
    pub fn crashed(&self) -> bool {
        self.disk.life() != self.life
    }

    /// Flushes everything queued and waits for it.
    pub fn flush(&mut self) -> Result<u64, StoreError> {
        self.start_flush()?;
        let r = self.storage.wal().borrow_mut().wait_flush();
        let d = r.map_err(failed)?;
        self.completed(d);
        Ok(d)
    }

    fn queued(&mut self, t: wal::Ticket) {
        self.ticket = self.ticket.max(t.0);
    }

    /// The flush that will make everything queued so far durable: the
    /// one in flight or done, or the next one to start.
    pub fn ticket(&self) -> u64 {
        self.ticket.max(self.last_started)
    }

    /// Whether records wait for a flush that has not started.
    pub fn has_pending(&self) -> bool {
        self.storage.wal().borrow().has_pending()
    }

    pub fn last_started(&self) -> u64 {
        self.last_started
    }

    /// The segment new records go to.
    pub fn active_segment(&self) -> Option<u64> {
        self.storage.wal().borrow().segment_seqs().last().copied()
    }

    pub fn durable_flush(&self) -> u64 {
        self.storage.wal().borrow().durable_flush()
    }

    /// Whether a flush is started and not yet known complete.
    pub fn flushing(&self) -> bool {
        !self.in_flight.is_empty()
    }

    fn completed(&mut self, d: u64) {
        while let Some(&(n, hs)) = self.in_flight.front() {
            if n > d {
                break;
            }
            self.durable_hs = hs;
            self.in_flight.pop_front();
        }
    }

    /// The WAL's segments on disk (for the run's counters).
    pub fn segments(&self) -> Vec<u64> {
        self.storage.wal().borrow().segment_seqs()
    }

    pub fn initial_state(&self) -> raft::Result<RaftState> {
        self.storage.initial_state()
    }

    pub fn entries(&self, low: u64, high: u64, max_size: u64) -> raft::Result<Vec<Entry>> {
        self.storage.entries(low, high, max_size)
    }

    pub fn term(&self, idx: u64) -> raft::Result<u64> {
        self.storage.term(idx)
    }

    pub fn first_index(&self) -> raft::Result<u64> {
        self.storage.first_index()
    }

    pub fn last_index(&self) -> raft::Result<u64> {
        self.storage.last_index()
    }

    /// The metadata the WAL holds with the payload kept beside it.
    pub fn snapshot(&self) -> raft::Result<Snapshot> {
        let mut s = self.storage.snapshot()?;
        let index = s.metadata.as_ref().map_or(0, |m| m.index);
        if index > 0 {
            s.data = self.snaps.borrow().get(&index).cloned().unwrap_or_default();
        }
        Ok(s)
    }
}
