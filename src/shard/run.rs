//! The shard's loop: one turn each time something rings it (a proposal,
//! a tick, a flush completion, a peer message), never waiting on anything
//! but that bell. A turn:
//!
//! 1. reaps the flush in flight (without waiting) and delivers what it
//!    made due: the groups' own acknowledgements are stepped back into
//!    them, the rest (MsgAppResp, vote responses) go to their peers;
//! 2. steps what arrived from peers;
//! 3. ticks every group as often as the ticker counted (capped); once
//!    per election timeout, a leader that is not its group's preferred
//!    one hands leadership over to it (`RuntimeConfig::rebalance_leaders`);
//!    while the WAL has no room, every leader here hands leadership to
//!    another voter at each tick, and the refused write is tried again
//!    every `RuntimeConfig::space_retry_ticks`;
//! 4. collects the Ready of every group with work: messages that vouch
//!    for nothing local (a leader's MsgApp and heartbeats, vote requests)
//!    go out at once, committed entries are applied, storage work goes to
//!    the appender;
//! 5. queues storage work into the WAL and starts a flush if none is in
//!    flight and something queued must be durable: every group's entries
//!    and hard states of the turn (and of the turns since the last flush
//!    started) in one flush. Hard states that only move a commit index
//!    need no sync: they ride along, or go out at the next tick;
//! 6. flushes the peer queues and reports unreachable peers.
//!
//! After a turn the loop yields, so that the tasks it woke run before the
//! next one.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use super::appender::{Appender, Waiting};
use super::group::{Group, Routed};
use super::peers::Peers;
use super::signal::yield_now;
use super::state::Shard;
use crate::node::ProposeError;
use crate::raftpb::Message;
use crate::wal;

/// Readys taken from one group per turn before the others get theirs.
const MAX_READYS_PER_GROUP: usize = 4;

/// Counters of the loop, for status and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoopStats {
    pub turns: u64,
    pub sent: u64,
    /// Messages to a peer the network refused (reported unreachable).
    pub lost: u64,
    pub received: u64,
    /// Messages for a group this shard does not run.
    pub unknown_group: u64,
}

pub struct Loop {
    pub(crate) shard: Rc<Shard>,
    pub(crate) appender: Appender,
    pub(crate) peers: Option<Rc<dyn Peers>>,
    routed: Routed,
    due: Vec<(u64, Message)>,
    inbound: Vec<(u64, Message)>,
    unreachable: Vec<(u64, u64)>,
    work: Vec<Rc<RefCell<Group>>>,
    /// A wake is armed for the spare segment.
    spare_wake: Rc<Cell<bool>>,
    /// While the WAL has no room: the tick of the next attempt.
    space_retry_at: u64,
    pub(crate) stats: Rc<Cell<LoopStats>>,
}

impl Loop {
    pub fn new(shard: Rc<Shard>, appender: Appender, peers: Option<Rc<dyn Peers>>) -> Loop {
        Loop {
            shard,
            appender,
            peers,
            routed: Routed::default(),
            due: Vec::new(),
            inbound: Vec::new(),
            unreachable: Vec::new(),
            work: Vec::new(),
            spare_wake: Rc::new(Cell::new(false)),
            space_retry_at: 0,
            stats: Rc::new(Cell::new(LoopStats::default())),
        }
    }

    /// Runs turns until the shard stops, then lets the flush in flight
    /// finish and closes the network.
    pub async fn run(mut self) {
        let mut inbox = self.peers.as_ref().map(|p| p.inbox_ready());
        loop {
            let rang = self.shard.signal.wait(inbox.as_mut()).await;
            if !rang {
                // The inbox future is spent: a new one for the next wait.
                inbox = self.peers.as_ref().map(|p| p.inbox_ready());
            }
            if self.shard.stopping.get() {
                break;
            }
            if self.shard.failed.borrow().is_some() {
                // The shard serves nothing more: its network closes, so
                // peers see it down (and nothing piles up in its inbox).
                if let Some(p) = self.peers.take() {
                    inbox = None;
                    p.shutdown().await;
                }
                yield_now().await;
                continue;
            }
            if let Err(e) = self.turn() {
                self.shard.poison(e.to_string());
            }
            yield_now().await;
        }
        self.shutdown().await;
    }

    async fn shutdown(mut self) {
        self.shard.fail_requests(&ProposeError::ShuttingDown);
        // The kernel owns the flush's buffers until it completes; the
        // WAL's drop would wait for it on this thread.
        while self.appender.flushing() && self.shard.failed.borrow().is_none() {
            self.shard.signal.wait(None).await;
            if let Err(e) = self.appender.poll() {
                self.shard.poison(e.to_string());
            }
        }
        if let Some(p) = self.peers.take() {
            p.shutdown().await;
        }
    }

    fn turn(&mut self) -> wal::Result<()> {
        let mut stats = self.stats.get();
        stats.turns += 1;
        let shard = self.shard.clone();

        // 1. The disk.
        self.appender.poll()?;
        self.appender.take_due(&mut self.due);
        let mut due = std::mem::take(&mut self.due);
        for (gid, m) in due.drain(..) {
            self.route(gid, m, &mut stats);
        }
        self.due = due;

        // 2. The peers.
        if let Some(p) = &self.peers {
            p.drain_inbox(&mut self.inbound);
        }
        stats.received += self.inbound.len() as u64;
        for (gid, m) in self.inbound.drain(..) {
            let g = shard.groups.borrow().get(&gid).cloned();
            match g {
                Some(g) => {
                    let mut grp = g.borrow_mut();
                    grp.step_from_peer(m, shard.now.get());
                    shard.mark_dirty(&mut grp, &g);
                }
                None => stats.unknown_group += 1,
            }
        }

        // 3. The clock.
        let ticks = shard.ticks_due.replace(0).min(shard.cfg.max_ticks_per_turn);
        if ticks > 0 {
            for _ in 0..ticks {
                shard.now.set(shard.now.get() + 1);
                let now = shard.now.get();
                for g in shard.groups.borrow().values() {
                    g.borrow_mut().tick(now);
                }
            }
            let rebalance = shard.cfg.rebalance_leaders
                && (shard.now.get() / shard.cfg.election_ticks as u64)
                    != ((shard.now.get() - u64::from(ticks)) / shard.cfg.election_ticks as u64);
            let since = shard
                .now
                .get()
                .saturating_sub(shard.cfg.election_ticks as u64);
            let full = self.appender.no_space().is_some();
            let heard_since = shard
                .now
                .get()
                .saturating_sub(shard.cfg.election_ticks as u64);
            for g in shard.groups.borrow().values() {
                let mut grp = g.borrow_mut();
                if full {
                    // Entries cannot be made durable here: let a member
                    // that can lead (proposals here fail fast meanwhile).
                    grp.hand_off(heard_since);
                } else if rebalance {
                    grp.rebalance(since);
                }
                shard.mark_dirty(&mut grp, g);
            }
            if full && shard.now.get() >= self.space_retry_at {
                self.appender.retry_space();
                self.space_retry_at = shard.now.get() + shard.cfg.space_retry_ticks;
            }
        }

        // 4. The Readys.
        self.work.append(&mut shard.dirty.borrow_mut());
        let mut more = false;
        for g in self.work.drain(..) {
            let mut grp = g.borrow_mut();
            grp.dirty = false;
            for _ in 0..MAX_READYS_PER_GROUP {
                if !grp.drain_ready(&mut self.routed) {
                    break;
                }
            }
            if grp.raw.has_ready() {
                shard.mark_dirty(&mut grp, &g);
                more = true;
            }
        }
        let mut net = std::mem::take(&mut self.routed.net);
        for (gid, m) in net.drain(..) {
            self.route(gid, m, &mut stats);
        }
        self.routed.net = net;
        for (gid, m) in self.routed.appends.drain(..) {
            self.appender.push(gid, m);
        }

        // 5. The WAL.
        match self.appender.pump()? {
            Waiting::Spare => self.wake_for_spare(),
            Waiting::Space if shard.storage_full.borrow().is_none() => {
                // Just refused: the next attempt waits its turn.
                self.space_retry_at = shard.now.get() + shard.cfg.space_retry_ticks;
            }
            _ => {}
        }
        let full = self.appender.no_space().map(str::to_string);
        if full.is_some() != shard.storage_full.borrow().is_some() {
            shard.report.set_storage_full(full.clone());
            *shard.storage_full.borrow_mut() = full;
        }
        if ticks > 0 {
            // Hard states that only moved commit indexes go out once a
            // tick if no flush carried them since.
            self.appender.flush_idle()?;
        }

        // 6. The network's turn.
        if let Some(p) = &self.peers {
            p.flush();
            p.take_unreachable(&mut self.unreachable);
        }
        for (member, gid) in self.unreachable.drain(..) {
            if let Some(g) = shard.groups.borrow().get(&gid) {
                let mut grp = g.borrow_mut();
                grp.raw.report_unreachable(member);
                shard.mark_dirty(&mut grp, g);
            }
        }
        // The turn rang the bell itself (marking groups dirty); ring it
        // again only if work is left, so an idle shard sleeps.
        shard.signal.take();
        if more || !shard.dirty.borrow().is_empty() {
            shard.signal.ring();
        }
        self.stats.set(stats);
        shard.stats.set(super::state::ShardStats {
            turns: stats,
            wal: self.appender.stats,
        });
        Ok(())
    }

    /// A message of a group: to this member (its own acknowledgements and
    /// storage responses), stepped back into the group; else sent.
    fn route(&mut self, gid: u64, m: Message, stats: &mut LoopStats) {
        if m.to == self.shard.member {
            let g = self.shard.groups.borrow().get(&gid).cloned();
            if let Some(g) = g {
                let mut grp = g.borrow_mut();
                grp.step(m);
                self.shard.mark_dirty(&mut grp, &g);
            }
            return;
        }
        self.send(gid, m, stats);
    }

    fn send(&mut self, gid: u64, m: Message, stats: &mut LoopStats) {
        let to = m.to;
        let ok = match &self.peers {
            Some(p) => p.send(to, gid, m),
            None => false,
        };
        if ok {
            stats.sent += 1;
            return;
        }
        stats.lost += 1;
        if let Some(g) = self.shard.groups.borrow().get(&gid) {
            let mut grp = g.borrow_mut();
            grp.raw.report_unreachable(to);
            self.shard.mark_dirty(&mut grp, g);
        }
    }

    /// The WAL waits for its spare segment (being zero-filled by its
    /// helper thread): look again in a millisecond. Rare: a segment is
    /// prepared as soon as the previous one becomes active.
    fn wake_for_spare(&self) {
        if self.spare_wake.replace(true) {
            return;
        }
        let flag = self.spare_wake.clone();
        let shard = self.shard.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(1)).await;
            flag.set(false);
            shard.signal.ring();
        })
        .detach();
    }
}
