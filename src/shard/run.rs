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
//!    need no sync: they ride along, or go out at the next tick. A flush
//!    of at most `RuntimeConfig::inline_flush_bytes` when no group has
//!    work left, no group led here waits for its followers' acknowledgements
//!    and no leader's entries are in it (a leader's sync races its
//!    followers' for the commit: the loop must keep counting their
//!    acknowledgements meanwhile) is not started on the ring but run on
//!    this thread after the turn's yield (`Appender::flush_inline`), once
//!    the sends it queued are out;
//! 6. flushes the peer queues and reports unreachable peers.
//!
//! After a turn the loop yields, so that the tasks it woke run before the
//! next one.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use super::appender::{Appender, Waiting};
use super::compact;
use super::group::{Group, Routed};
use super::peers::Peers;
use super::signal::yield_now;
use super::snapfile;
use super::state::Shard;
use crate::node::ProposeError;
use crate::raftpb::Message;
use crate::wal::{self, HARD_STATE_COST, snapshot_cost};

/// Readys taken from one group per turn before the others get theirs.
const MAX_READYS_PER_GROUP: usize = 4;

/// How long a snapshot file that found no room waits before its next
/// try: `space_retry_ticks`, as the WAL's refused write.
fn shard_retry_interval(shard: &Shard) -> Duration {
    shard.cfg.tick * shard.cfg.space_retry_ticks.max(1) as u32
}

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
    /// Log compactions recorded in the WAL (a snapshot built and durable).
    pub compactions: u64,
    /// Leaders' snapshots whose data files were written here.
    pub snapshots_received: u64,
    /// WAL segments deleted (or kept for recycling) once nothing lived
    /// in them.
    pub segments_deleted: u64,
}

/// Where the loop is with giving dead WAL segments back (`reclaim`).
enum Gc {
    Idle,
    /// Waiting for the flush that makes the plan safe.
    Planned(wal::GcPlan),
    /// Their files go on the blocking thread pool (`Shard::reclaimed`).
    Running,
}

pub struct Loop {
    pub(crate) shard: Rc<Shard>,
    pub(crate) appender: Appender,
    pub(crate) peers: Option<Rc<dyn Peers>>,
    routed: Routed,
    due: Vec<(u64, Message)>,
    inbound: Vec<(u64, Message)>,
    unreachable: Vec<(u64, u64)>,
    /// (member, group, written) of MsgSnaps the network finished with.
    snap_reports: Vec<(u64, u64, bool)>,
    /// (flush, group, index): once that flush is durable, the group's
    /// snapshot files older than `index` go.
    deletes: Vec<(u64, u64, u64)>,
    work: Vec<Rc<RefCell<Group>>>,
    /// A wake is armed for the spare segment.
    spare_wake: Rc<Cell<bool>>,
    /// While the WAL has no room: the tick of the next attempt.
    space_retry_at: u64,
    gc: Gc,
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
            snap_reports: Vec::new(),
            deletes: Vec::new(),
            work: Vec::new(),
            spare_wake: Rc::new(Cell::new(false)),
            space_retry_at: 0,
            gc: Gc::Idle,
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
            // After the yield: the tasks the turn woke (peer writers,
            // client answers) have sent what it queued, so the followers
            // write while this thread syncs.
            if self.appender.inline_due()
                && !self.shard.stopping.get()
                && self.shard.failed.borrow().is_none()
            {
                match self.appender.flush_inline() {
                    Ok(true) => self.shard.signal.ring(),
                    Ok(false) => {}
                    Err(e) => self.shard.poison(e.to_string()),
                }
            }
        }
        self.shutdown().await;
    }

    async fn shutdown(mut self) {
        self.shard.fail_requests(&ProposeError::ShuttingDown);
        // The kernel owns the flush's buffers until it completes; the
        // WAL's drop would wait for it on this thread. Then one more flush
        // for what is framed and not yet written (a compaction mark waits
        // for a tick's idle flush), so a clean stop keeps it.
        let mut last = false;
        loop {
            while self.appender.flushing() && self.shard.failed.borrow().is_none() {
                self.shard.signal.wait(None).await;
                if let Err(e) = self.appender.poll() {
                    self.shard.poison(e.to_string());
                }
            }
            if last || self.shard.failed.borrow().is_some() {
                break;
            }
            last = true;
            match self.appender.flush_pending() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => self.shard.poison(e.to_string()),
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
        self.delete_old_snapshots();
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
            let full = self.appender.no_space().is_some() || shard.snapfiles_waiting_room.get() > 0;
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
        let now = shard.now.get();
        for g in self.work.drain(..) {
            let mut grp = g.borrow_mut();
            grp.dirty = false;
            for _ in 0..MAX_READYS_PER_GROUP {
                if !grp.drain_ready(&mut self.routed, now) {
                    break;
                }
            }
            if grp.raw.has_ready() {
                shard.mark_dirty(&mut grp, &g);
                more = true;
            }
            if let Some(c) = grp.compaction_due(shard.cfg.compact_threshold_entries, now) {
                grp.compacting = true;
                drop(grp);
                // Spawned with no group borrowed: glommio may run it at
                // once.
                glommio::spawn_local(compact::build(shard.clone(), g.clone(), c)).detach();
            }
        }
        let mut net = std::mem::take(&mut self.routed.net);
        for (gid, m) in net.drain(..) {
            self.route(gid, m, &mut stats);
        }
        self.routed.net = net;
        let mut appends = std::mem::take(&mut self.routed.appends);
        for (gid, mut m) in appends.drain(..) {
            let gate = self.write_snapshot_file(gid, &mut m, &mut stats);
            let races = !m.entries.is_empty()
                && shard
                    .groups
                    .borrow()
                    .get(&gid)
                    .is_some_and(|g| g.borrow().leads_others());
            self.appender.push_gated(gid, m, gate, races);
        }
        self.routed.appends = appends;

        // 5. The WAL.
        self.queue_compactions(&mut stats)?;
        if shard.cfg.inline_flush_bytes > 0
            && !more
            && shard.dirty.borrow().is_empty()
            && self.appender.may_flush()
            && !shard
                .groups
                .borrow()
                .values()
                .any(|g| g.borrow().awaits_followers())
        {
            // Nothing else to do (no group has work, none led here waits
            // for acknowledgements): a small flush may run on this thread.
            // The scan of the groups is once per flush about to start.
            self.appender.allow_inline(shard.cfg.inline_flush_bytes);
        }
        match self.appender.pump()? {
            Waiting::Spare => self.wake_for_spare(),
            Waiting::Space if shard.storage_full.borrow().is_none() => {
                // Just refused: the next attempt waits its turn.
                self.space_retry_at = shard.now.get() + shard.cfg.space_retry_ticks;
            }
            _ => {}
        }
        let full = self.appender.no_space().map(str::to_string).or_else(|| {
            (shard.snapfiles_waiting_room.get() > 0)
                .then(|| shard.snapfile_no_room.borrow().clone())
        });
        if full.is_some() != shard.storage_full.borrow().is_some() {
            shard.report.set_storage_full(full.clone());
            *shard.storage_full.borrow_mut() = full;
        }
        self.reclaim(ticks > 0, &mut stats)?;
        if ticks > 0 && !self.appender.inline_due() {
            // Hard states that only moved commit indexes go out once a
            // tick if no flush carried them since (a flush left for
            // `flush_inline` carries them).
            self.appender.flush_idle()?;
        }

        // 6. The network's turn.
        if let Some(p) = &self.peers {
            p.flush();
            p.take_unreachable(&mut self.unreachable);
            p.take_snapshot_reports(&mut self.snap_reports);
        }
        for (member, gid) in self.unreachable.drain(..) {
            if let Some(g) = shard.groups.borrow().get(&gid) {
                let mut grp = g.borrow_mut();
                grp.raw.report_unreachable(member);
                // A snapshot among the lost messages: the leader waits on
                // it until told.
                if grp.in_snapshot_state(member) {
                    grp.snapshot_reported(member, false);
                }
                shard.mark_dirty(&mut grp, g);
            }
        }
        for (member, gid, written) in self.snap_reports.drain(..) {
            if let Some(g) = shard.groups.borrow().get(&gid) {
                let mut grp = g.borrow_mut();
                grp.snapshot_reported(member, written);
                if !written {
                    grp.raw.report_unreachable(member);
                }
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

    /// A leader's snapshot on its way to the WAL (`m` carries its data):
    /// its data file is written first, on the blocking thread pool; the
    /// returned gate opens when it is durable, and the appender queues
    /// nothing of `m` (or after it) before. The data leaves `m` (the WAL
    /// keeps metadata only).
    fn write_snapshot_file(
        &mut self,
        gid: u64,
        m: &mut Message,
        stats: &mut LoopStats,
    ) -> Option<Rc<Cell<bool>>> {
        let s = m.snapshot.as_mut()?;
        let index = s.metadata.as_ref().map_or(0, |md| md.index);
        if index == 0 || s.data.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut s.data);
        stats.snapshots_received += 1;
        let gate = Rc::new(Cell::new(false));
        let (g, shard, dir) = (
            gate.clone(),
            self.shard.clone(),
            self.shard.snap_dir.clone(),
        );
        let retry = shard_retry_interval(&self.shard);
        glommio::spawn_local(async move {
            let mut waiting = false;
            loop {
                let (dir, data) = (dir.clone(), data.clone());
                let r = glommio::executor()
                    .spawn_blocking(move || snapfile::write_durable(&dir, gid, index, &data))
                    .await;
                match r {
                    Ok(_) => g.set(true),
                    // No room: the write (and every one behind it) waits at
                    // the gate, the shard says it is full (its leaders hand
                    // off, proposals fail fast), and the file is tried
                    // again. The leader, hearing nothing, sends the
                    // snapshot again after its timeout; that one queues
                    // behind this.
                    Err(e) if e.is_no_space() && shard.failed.borrow().is_none() => {
                        if !waiting {
                            waiting = true;
                            shard
                                .snapfiles_waiting_room
                                .set(shard.snapfiles_waiting_room.get() + 1);
                            if let Some(grp) = shard.groups.borrow().get(&gid) {
                                grp.borrow_mut().stats.snapshot_files_no_room += 1;
                            }
                        }
                        *shard.snapfile_no_room.borrow_mut() =
                            format!("group {gid}: no room for a leader's snapshot: {e}");
                        shard.signal.ring();
                        glommio::timer::sleep(retry).await;
                        if !shard.stopping.get() {
                            continue;
                        }
                    }
                    Err(e) => {
                        shard.poison(format!("group {gid}: writing a leader's snapshot: {e}"))
                    }
                }
                break;
            }
            if waiting {
                shard
                    .snapfiles_waiting_room
                    .set(shard.snapfiles_waiting_room.get() - 1);
            }
            shard.signal.ring();
        })
        .detach();
        Some(gate)
    }

    /// Records in the WAL the snapshots whose files are durable: snapshot
    /// metadata, then the compaction mark at the same index (the log keeps
    /// the entries after it). Queued only when it fits the pending flush
    /// (else next turn); it rides with the next flush, or the next tick's.
    fn queue_compactions(&mut self, stats: &mut LoopStats) -> wal::Result<()> {
        if self.shard.compactions.borrow().is_empty() {
            return Ok(());
        }
        let built = std::mem::take(&mut *self.shard.compactions.borrow_mut());
        self.shard.wal.borrow_mut().poll_spare();
        for b in built {
            let g = self.shard.groups.borrow().get(&b.group).cloned();
            let Some(g) = g else { continue };
            let mut grp = g.borrow_mut();
            if grp.snap.0 >= b.meta.index {
                // A leader's snapshot overtook it; its file goes with the
                // next deletion of older ones.
                grp.compacting = false;
                continue;
            }
            // State records: a full WAL keeps room for them at the end of
            // each segment (the state reserve), so a compaction can always
            // be recorded, and free the segments it makes dead.
            let cost = snapshot_cost(&b.meta) + HARD_STATE_COST;
            if !self.shard.wal.borrow().can_queue_state(cost) {
                self.shard.compactions.borrow_mut().push(b);
                continue;
            }
            let written = {
                let mut w = self.shard.wal.borrow_mut();
                w.set_snapshot(b.group, &b.meta)
                    .and_then(|_| w.compact(b.group, b.meta.index, b.meta.term))
            };
            let t = match written {
                // No room for the records (a roll could not make its
                // segment): nothing was changed by the call refused, and
                // the snapshot record alone is harmless; both again later.
                Err(e) if e.is_no_space() => {
                    drop(grp);
                    self.shard.compactions.borrow_mut().push(b);
                    continue;
                }
                r => r?,
            };
            let conf = b.meta.conf_state.clone().unwrap_or_default();
            grp.snapshot_taken(b.meta.index, b.data, conf);
            grp.compacting = false;
            grp.stats.snapshots_built += 1;
            stats.compactions += 1;
            self.deletes.push((t.0, b.group, b.meta.index));
        }
        Ok(())
    }

    /// Deletes the snapshot files made obsolete by a durable newer
    /// snapshot record (on the blocking thread pool; a file left by a
    /// failure here is only disk space, removed with the next one).
    fn delete_old_snapshots(&mut self) {
        self.deletes.append(&mut self.appender.snapshots);
        let durable = self.appender.durable();
        let mut k = 0;
        while k < self.deletes.len() {
            let (flush, gid, index) = self.deletes[k];
            if flush > durable {
                k += 1;
                continue;
            }
            self.deletes.swap_remove(k);
            let dir = self.shard.snap_dir.clone();
            glommio::spawn_local(async move {
                let r = glommio::executor()
                    .spawn_blocking(move || snapfile::remove_older(&dir, gid, index))
                    .await;
                if let Err(e) = r {
                    eprintln!("corelog: group {gid}: deleting old snapshot files: {e}");
                }
            })
            .detach();
        }
    }

    /// Gives dead WAL segments back without waiting on the disk: once a
    /// tick, look for segments nothing lives in (`Wal::gc_plan`, which
    /// queues the state it must move out of them into the pending flush);
    /// once that flush is durable, detach them (`gc_detach`) and delete
    /// their files on the blocking thread pool; when that is done, the
    /// recycled names go back to the WAL. One round at a time.
    fn reclaim(&mut self, tick: bool, stats: &mut LoopStats) -> wal::Result<()> {
        match &self.gc {
            Gc::Idle if tick => {
                let planned = self.shard.wal.borrow_mut().gc_plan();
                match planned {
                    Ok(wal::GcPlanned::Plan(p)) => self.gc = Gc::Planned(p),
                    // No room to roll for the state it moves (a full
                    // disk): what it queued repeats state already held,
                    // so the plan is simply tried again next tick.
                    Err(e) if e.is_no_space() => {}
                    r => {
                        r?;
                    }
                }
            }
            Gc::Idle => {}
            Gc::Planned(p) if self.appender.durable() >= p.ticket => {
                let files = self.shard.wal.borrow_mut().gc_detach(p);
                if files.is_empty() {
                    self.gc = Gc::Idle;
                    return Ok(());
                }
                stats.segments_deleted += files.len() as u64;
                self.gc = Gc::Running;
                let shard = self.shard.clone();
                glommio::spawn_local(async move {
                    let r = glommio::executor()
                        .spawn_blocking(move || files.run())
                        .await;
                    *shard.reclaimed.borrow_mut() = Some(r.map_err(|e| e.to_string()));
                    shard.signal.ring();
                })
                .detach();
            }
            Gc::Planned(_) => {}
            Gc::Running => {
                let done = self.shard.reclaimed.borrow_mut().take();
                match done {
                    Some(Ok(free)) => {
                        self.shard.wal.borrow_mut().gc_recycled(free);
                        self.gc = Gc::Idle;
                    }
                    Some(Err(e)) => {
                        // The segments left the WAL; a file that stays is
                        // disk space only, found dead again at the next
                        // start.
                        eprintln!(
                            "corelog: shard {}: deleting WAL segments: {e}",
                            self.shard.index
                        );
                        self.gc = Gc::Idle;
                    }
                    None => {}
                }
            }
        }
        Ok(())
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
