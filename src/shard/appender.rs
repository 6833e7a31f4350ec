//! The shard's append thread, run inline by the loop without ever
//! waiting: it turns the groups' `MsgStorageAppend`s into WAL records,
//! groups them into flushes (one in flight at a time: the WAL's rule;
//! what arrives meanwhile goes into the next one, started when the disk
//! completes this one), and holds each write's responses until the flush
//! carrying it, and every earlier one, is durable.
//!
//! A write is queued into the WAL only when `Wal::can_queue` says it
//! neither forces an early flush nor rolls onto a segment still being
//! prepared; otherwise it waits here, in order, for the next flush to
//! complete or for the spare segment. A write larger than one flush is
//! queued in pieces (entries first, in as many flushes as they need, then
//! the hard state), which is safe: its responses wait for all of it, and
//! a crash between the pieces leaves a prefix of the entries, no hard
//! state that commits what is missing.

use std::cell::RefCell;
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
}

/// Counters, for status and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendStats {
    pub flushes: u64,
    pub writes: u64,
    /// Times a write had to wait for a flush or the spare segment.
    pub deferred: u64,
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
    /// When the flush in flight started (one clock read per flush).
    flush_began: Option<std::time::Instant>,
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
            flush_began: None,
            stats: AppendStats::default(),
        }
    }

    pub fn push(&mut self, group: u64, msg: Message) {
        self.queue.push_back(Work {
            group,
            msg,
            snapshot_done: false,
            entries_done: 0,
            needs_sync: false,
        });
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
        while let Some(mut w) = self.queue.pop_front() {
            if self.write(&mut w)? {
                self.stats.writes += 1;
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
        if self.in_flight.is_none() && self.sync_ticket > self.started {
            self.start_flush()?;
        }
        Ok(waiting)
    }

    /// Starts a flush of whatever is pending (records that need no sync
    /// wait for this, once a tick, when nothing else carries them).
    pub fn flush_idle(&mut self) -> wal::Result<()> {
        if self.in_flight.is_none() && self.queue.is_empty() && self.wal.borrow().has_pending() {
            self.start_flush()?;
        }
        Ok(())
    }

    fn start_flush(&mut self) -> wal::Result<()> {
        debug_assert!(self.in_flight.is_none());
        if let Some(n) = self.wal.borrow_mut().start_flush()? {
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

    fn got(&mut self, t: Ticket) {
        self.ticket = self.ticket.max(t.0);
    }

    /// Queues as much of `w` as fits without waiting; `true` once all of
    /// it is queued. When nothing is pending and nothing in flight, a part
    /// that still does not fit never will by waiting (it is larger than a
    /// flush): it is queued anyway and the WAL splits it (that one write
    /// may wait on the disk; `RuntimeConfig::max_entry_bytes` keeps
    /// proposals far below it).
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
                if !self.wal.borrow().can_queue(snapshot_cost(meta)) && !self.must_force() {
                    return Ok(false);
                }
                let t = storage.apply_snapshot(meta)?;
                self.got(t);
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
            let n = if n == 0 && self.must_force() {
                rest.len()
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
            if !self.wal.borrow().can_queue(HARD_STATE_COST) && !self.must_force() {
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
