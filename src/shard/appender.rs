//! The shard's append thread, run inline by the loop without ever
//! waiting: it turns the groups' `MsgStorageAppend`s into WAL records,
//! groups them into flushes (one in flight at a time: the WAL's rule;
//! what arrives meanwhile goes into the next one, started when the disk
//! completes this one), and holds each write's responses until the flush
//! carrying it, and every earlier one, is durable.
//!
//! One exception to "never waiting", off by default: a small flush when
//! the shard has nothing else to do (`allow_inline`,
//! `RuntimeConfig::inline_flush_bytes`) and no leader's entries in it that
//! followers could commit without it (`push_gated`'s `races`) is left by
//! `pump` for `flush_inline`, which the loop runs on its own thread after
//! the turn's messages went out. An io_uring fdatasync runs
//! on a kernel worker and costs two wakeups (the worker's, then the
//! shard's); a lone record's latency is mostly those.
//!
//! A write is queued into the WAL only when `Wal::can_queue` (entries) or
//! `Wal::can_queue_state` (hard state, snapshot: they may use a segment's
//! state reserve) says it neither forces an early flush nor rolls onto a
//! segment still being prepared; otherwise it waits here, in order, for
//! the next flush to complete or for the spare segment. When the spare
//! could not be made (`Wal::refused_at_once`), the write is queued anyway:
//! the WAL refuses it at once with `NoSpace`, which is how a full disk is
//! found (`Waiting::Space`). A write larger than one flush is
//! queued in pieces (entries first, in as many flushes as they need, then
//! the hard state), which is safe: its responses wait for all of it, and
//! a crash between the pieces leaves a prefix of the entries, no hard
//! state that commits what is missing.
//!
//! A full disk (`wal::Error::NoSpace`: no room for the next segment) is
//! not a failure: the write that met it was refused whole (or, for a
//! piece longer than a segment, kept as a prefix that the retry
//! supersedes with the same entries), so it stays first in the queue,
//! with everything behind it, and its responses are not sent: nothing is
//! acknowledged that is not on disk. The appender then tries again only
//! when the loop says so (`retry_space`, every
//! `RuntimeConfig::space_retry_ticks`), never on every turn.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use crate::raft::is_empty_hard_state;
use crate::raftpb::{HardState, Message};
use crate::wal::{self, HARD_STATE_COST, Ticket, Wal, WalStorage, entries_cost, snapshot_cost};

/// A `MsgStorageAppend` not yet (entirely) queued into the WAL.
struct Work {
    group: u64,
    msg: Message,
    snapshot_done: bool,
    entries_done: usize,
    /// A leader's write in a group with other voters: its sync races the
    /// followers' for the commit, so its flush never runs inline (the
    /// loop must count their acknowledgements while it syncs).
    races: bool,
    /// Set while something must happen before any of it is queued: a
    /// leader's snapshot waits for its data file to be durable (the WAL's
    /// record of it must never name a file a crash could lose).
    gate: Option<Rc<Cell<bool>>>,
    /// Some record of it must be durable before its responses go: it has
    /// entries, a snapshot, or a new term or vote. A hard state that only
    /// moves the commit index needs no sync (Raft recomputes the commit
    /// index after a crash): it rides with the next flush, or the next
    /// tick's.
    needs_sync: bool,
}

/// Responses of a write, due once flush `ticket` is durable.
struct Held {
    ticket: u64,
    group: u64,
    responses: Vec<Message>,
}

/// Why `pump` left work waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Nothing waits.
    No,
    /// For the flush in flight to complete.
    Flush,
    /// For the spare segment being prepared (nothing else would help).
    Spare,
    /// For a snapshot's data file (its task rings the loop when done).
    Gate,
    /// For room on the disk: the WAL could not make its next segment
    /// (`no_space` says why); tried again after `retry_space`.
    Space,
}

/// Counters, for status and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendStats {
    pub flushes: u64,
    /// Of `flushes`, those run on the shard's thread (`flush_inline`).
    pub inline_flushes: u64,
    pub writes: u64,
    /// Times a write had to wait for a flush or the spare segment.
    pub deferred: u64,
    /// Times a write was refused for lack of room (`wal::Error::NoSpace`).
    pub no_space: u64,
    /// Each flush from its start to its completion reaped (its writes and
    /// fdatasyncs: the WAL's fsync latency as the shard sees it).
    pub flush_latency: super::latency::Latency,
}

pub struct Appender {
    wal: Rc<RefCell<Wal>>,
    queue: VecDeque<Work>,
    held: VecDeque<Held>,
    /// The flush started and not yet reaped.
    in_flight: Option<u64>,
    durable: u64,
    /// The highest ticket of any record queued.
    ticket: u64,
    /// The highest ticket of a record that must be durable: what the
    /// responses of a write wait for (its own records' flush if they need
    /// one, else the flush of everything before it that did).
    sync_ticket: u64,
    /// The last flush started.
    started: u64,
    /// (ticket, group, index) of the snapshots queued (`apply_snapshot`),
    /// for the loop to delete older snapshot files once they are durable.
    pub(crate) snapshots: Vec<(u64, u64, u64)>,
    /// Why the first write in the queue was refused for lack of room, until
    /// a write is taken again.
    no_space: Option<String>,
    /// The loop allows one more attempt while `no_space` holds.
    retry: bool,
    /// When the flush in flight started (one clock read per flush).
    flush_began: Option<std::time::Instant>,
    /// The largest flush the next `pump` may leave for `flush_inline`
    /// instead of starting it on the ring (0: none; `allow_inline`).
    inline_max: usize,
    /// `pump` left the pending records for `flush_inline`.
    inline_due: bool,
    /// A write with `races` is among the records not yet in a flush.
    pending_races: bool,
    pub stats: AppendStats,
}

impl Appender {
    pub fn new(wal: Rc<RefCell<Wal>>) -> Appender {
        let durable = wal.borrow().durable_flush();
        Appender {
            wal,
            queue: VecDeque::new(),
            held: VecDeque::new(),
            in_flight: None,
            durable,
            ticket: durable,
            sync_ticket: durable,
            started: durable,
            snapshots: Vec::new(),
            no_space: None,
            retry: false,
            flush_began: None,
            inline_max: 0,
            inline_due: false,
            pending_races: false,
            stats: AppendStats::default(),
        }
    }

    pub fn push(&mut self, group: u64, msg: Message) {
        self.push_gated(group, msg, None, false);
    }

    /// Queues `msg`, to be written only once `gate` is set (and so every
    /// write queued after it waits too: writes keep their order). `races`:
    /// a leader's write that followers' writes could commit without (never
    /// flushed inline).
    pub fn push_gated(
        &mut self,
        group: u64,
        msg: Message,
        gate: Option<Rc<Cell<bool>>>,
        races: bool,
    ) {
        self.queue.push_back(Work {
            group,
            msg,
            races,
            snapshot_done: false,
            entries_done: 0,
            gate,
            needs_sync: false,
        });
    }

    /// The last flush known durable.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Why writes wait for room on the disk, if they do.
    pub fn no_space(&self) -> Option<&str> {
        self.no_space.as_deref()
    }

    /// Lets the next `pump` try the write refused for lack of room again.
    pub fn retry_space(&mut self) {
        self.retry = true;
    }

    /// Whether a flush is in flight.
    pub fn flushing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether anything is queued, held or in flight.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some() || !self.queue.is_empty() || !self.held.is_empty()
    }

    /// Reaps the flush in flight if the disk is done with it (never waits).
    pub fn poll(&mut self) -> wal::Result<()> {
        if let Some(n) = self.in_flight {
            let d = self.wal.borrow_mut().poll_flush()?;
            if d >= n {
                self.in_flight = None;
                if let Some(t) = self.flush_began.take() {
                    self.stats.flush_latency.record(t.elapsed());
                }
            }
            self.durable = d;
        }
        Ok(())
    }

    /// Moves the responses whose flush is durable into `out`, in order.
    pub fn take_due(&mut self, out: &mut Vec<(u64, Message)>) {
        while self.held.front().is_some_and(|h| h.ticket <= self.durable) {
            if let Some(h) = self.held.pop_front() {
                out.extend(h.responses.into_iter().map(|m| (h.group, m)));
            }
        }
    }

    /// Queues into the WAL what can go without waiting, and starts a flush
    /// if none is in flight and records are pending.
    pub fn pump(&mut self) -> wal::Result<Waiting> {
        let mut waiting = Waiting::No;
        // Decided again at every pump.
        self.inline_due = false;
        self.wal.borrow_mut().poll_spare();
        if self.no_space.is_some() && !std::mem::take(&mut self.retry) {
            waiting = Waiting::Space;
        }
        while waiting == Waiting::No
            && let Some(mut w) = self.queue.pop_front()
        {
            if w.gate.as_ref().is_some_and(|g| !g.get()) {
                self.queue.push_front(w);
                waiting = Waiting::Gate;
                break;
            }
            let written = match self.write(&mut w) {
                Err(e) if e.is_no_space() => {
                    self.queue.push_front(w);
                    self.stats.no_space += 1;
                    self.no_space = Some(e.to_string());
                    waiting = Waiting::Space;
                    break;
                }
                r => r?,
            };
            if written {
                self.no_space = None;
                self.stats.writes += 1;
                self.pending_races |= w.races;
                if w.needs_sync {
                    self.sync_ticket = self.ticket;
                }
                let responses = std::mem::take(&mut w.msg.responses);
                if !responses.is_empty() {
                    self.held.push_back(Held {
                        ticket: self.sync_ticket,
                        group: w.group,
                        responses,
                    });
                }
                continue;
            }
            self.queue.push_front(w);
            if self.in_flight.is_none() && self.wal.borrow().has_pending() {
                // Make room: the pending records go out now.
                self.start_flush()?;
                continue;
            }
            self.stats.deferred += 1;
            waiting = if self.in_flight.is_some() {
                Waiting::Flush
            } else {
                Waiting::Spare
            };
            break;
        }
        let inline_max = std::mem::take(&mut self.inline_max);
        // A write waiting for room keeps the queue from emptying, so
        // neither a written write nor `flush_idle` would start a flush;
        // yet what is pending then (a compaction mark, the state `gc_plan`
        // moved) is how room comes back: it goes out now.
        let unblock = waiting == Waiting::Space && self.wal.borrow().has_pending();
        if self.in_flight.is_none() && (self.sync_ticket > self.started || unblock) {
            if inline_max > 0
                && waiting == Waiting::No
                && !self.pending_races
                && self.wal.borrow().pending_bytes() <= inline_max
            {
                // Small, and nothing else waits: the loop runs it on its
                // own thread once the turn's sends are out.
                self.inline_due = true;
            } else {
                self.start_flush()?;
            }
        }
        Ok(waiting)
    }

    /// Whether the next `pump` may start a flush: none in flight, and
    /// writes queued or records that must be durable pending.
    pub fn may_flush(&self) -> bool {
        self.in_flight.is_none() && (!self.queue.is_empty() || self.sync_ticket > self.started)
    }

    /// Lets the next `pump` leave a flush of at most `max_bytes` for
    /// `flush_inline` rather than start it on the ring. The loop allows it
    /// for one pump at a time, when it has nothing else to do.
    pub fn allow_inline(&mut self, max_bytes: usize) {
        self.inline_max = max_bytes;
    }

    /// Whether `pump` left a flush for `flush_inline`.
    pub fn inline_due(&self) -> bool {
        self.inline_due
    }

    /// Runs the flush `pump` left, on this thread: blocks until the disk
    /// has it (`Wal::flush_inline`), then its writes' responses are due.
    /// Whether it ran one.
    pub fn flush_inline(&mut self) -> wal::Result<bool> {
        if !std::mem::take(&mut self.inline_due) || self.in_flight.is_some() {
            return Ok(false);
        }
        if !self.wal.borrow().has_pending() {
            return Ok(false);
        }
        let began = std::time::Instant::now();
        let n = self.wal.borrow_mut().flush_inline()?;
        self.pending_races = false;
        self.started = n;
        self.durable = n;
        self.stats.flushes += 1;
        self.stats.inline_flushes += 1;
        self.stats.flush_latency.record(began.elapsed());
        Ok(true)
    }

    /// Starts a flush of whatever is pending (records that need no sync
    /// wait for this, once a tick, when nothing else carries them), also
    /// while the first write waits for room: then nothing else will.
    pub fn flush_idle(&mut self) -> wal::Result<()> {
        let idle = self.queue.is_empty() || self.no_space.is_some();
        if self.in_flight.is_none() && idle && self.wal.borrow().has_pending() {
            self.start_flush()?;
        }
        Ok(())
    }

    /// At a clean stop: starts a flush of the records already framed into
    /// the WAL (a compaction mark waits for the next tick's idle flush
    /// otherwise, and a stop would drop it). Whether one started.
    pub fn flush_pending(&mut self) -> wal::Result<bool> {
        if self.in_flight.is_none() && self.wal.borrow().has_pending() {
            self.start_flush()?;
            return Ok(self.in_flight.is_some());
        }
        Ok(false)
    }

    fn start_flush(&mut self) -> wal::Result<()> {
        debug_assert!(self.in_flight.is_none());
        if let Some(n) = self.wal.borrow_mut().start_flush()? {
            self.pending_races = false;
            self.in_flight = Some(n);
            self.started = n;
            self.stats.flushes += 1;
            self.flush_began = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// Nothing pending, nothing in flight, the spare ready: a write that
    /// does not fit now never will.
    fn must_force(&self) -> bool {
        let wal = self.wal.borrow();
        self.in_flight.is_none() && !wal.has_pending() && wal.spare_ready()
    }

    /// Whether state records of at most `cost` bytes go now: they fit
    /// without a wait, or waiting would not help (`must_force`), or the
    /// WAL would refuse them at once for lack of room, which is how the
    /// appender learns it (`Waiting::Space`) and the WAL tries the
    /// segment again.
    fn may_queue_state(&self, cost: usize) -> bool {
        let wal = self.wal.borrow();
        wal.can_queue_state(cost) || wal.refused_at_once(cost) || self.must_force()
    }

    fn got(&mut self, t: Ticket) {
        self.ticket = self.ticket.max(t.0);
    }

    /// Queues as much of `w` as fits without waiting; `true` once all of
    /// it is queued. When nothing is pending and nothing in flight, an
    /// entry that still does not fit `can_queue`'s bound never will by
    /// waiting (its bound is above a flush): it is queued alone, which the
    /// WAL takes without an early flush (the entry fits one record, or the
    /// WAL refuses it: `RuntimeConfig::max_entry_bytes` keeps proposals far
    /// below that).
    fn write(&mut self, w: &mut Work) -> wal::Result<bool> {
        let storage = WalStorage::new(self.wal.clone(), w.group);
        if !w.snapshot_done {
            // First look at this write: does any of it need a sync?
            let old = self.wal.borrow().hard_state(w.group);
            let m = &w.msg;
            let hs_changes_vote = !is_empty_hard_state(&HardState {
                term: m.term,
                vote: m.vote,
                commit: m.commit,
            }) && (m.term != old.term || m.vote != old.vote);
            let snap = m
                .snapshot
                .as_ref()
                .and_then(|s| s.metadata.as_ref())
                .is_some_and(|md| md.index > 0);
            w.needs_sync = !m.entries.is_empty() || snap || hs_changes_vote;
        }
        if !w.snapshot_done {
            if let Some(meta) = w
                .msg
                .snapshot
                .as_ref()
                .and_then(|s| s.metadata.as_ref())
                .filter(|m| m.index > 0)
            {
                if !self.may_queue_state(snapshot_cost(meta)) {
                    return Ok(false);
                }
                let t = storage.apply_snapshot(meta)?;
                self.got(t);
                self.snapshots.push((t.0, w.group, meta.index));
            }
            w.snapshot_done = true;
        }
        while w.entries_done < w.msg.entries.len() {
            let rest = &w.msg.entries[w.entries_done..];
            let n = {
                let wal = self.wal.borrow();
                let mut cost = entries_cost(&[]);
                let mut n = 0;
                for e in rest {
                    let c = cost + entries_cost(std::slice::from_ref(e)) - entries_cost(&[]);
                    if !wal.can_queue(c) {
                        break;
                    }
                    cost = c;
                    n += 1;
                }
                n
            };
            // Forced, one entry alone: it fits a record of its own in an
            // empty flush and a fresh segment, so the WAL neither flushes
            // early nor waits; more would make it flush the first part
            // (and wait for it) to take the rest. Or the segment it needs
            // could not be made: the WAL refuses it at once, saying why.
            let one = entries_cost(&rest[..1]);
            let n = if n == 0 && (self.must_force() || self.wal.borrow().refused_at_once(one)) {
                1
            } else {
                n
            };
            if n == 0 {
                return Ok(false);
            }
            let t = storage.append(&rest[..n])?;
            self.got(t);
            w.entries_done += n;
        }
        let hs = HardState {
            term: w.msg.term,
            vote: w.msg.vote,
            commit: w.msg.commit,
        };
        if !is_empty_hard_state(&hs) {
            if !self.may_queue_state(HARD_STATE_COST) {
                return Ok(false);
            }
            let t = storage.set_hard_state(&hs)?;
            self.got(t);
            // Written: a retry of this work must not write it twice.
            w.msg.term = 0;
            w.msg.vote = 0;
            w.msg.commit = 0;
        }
        Ok(true)
    }
}
