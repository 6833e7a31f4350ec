//! The leader's side of `Raft`: `step_leader` and everything it drives —
//! log replication (MsgApp with the Probe / Replicate / Snapshot progress
//! states and the inflight window), commitment, heartbeats, CheckQuorum,
//! ReadIndex answers, and leadership transfer.
//!
//! It must never trust a peer's claim beyond what etcd-raft does: responses
//! from unknown peers are dropped, and an index a peer reports that this log
//! cannot serve degrades to probing or a snapshot, never to a panic.

use std::ops::Bound::{Excluded, Unbounded};

use bytes::Bytes;

use super::config::ReadOnlyOption;
use super::errors::{Error, Result, StorageError};
use super::raft::{NONE, Raft, is_empty_snap, msg_type};
use super::read_only::ReadState;
use super::storage::Storage;
use super::tracker::ProgressState;
use super::types::{EntryId, payloads_size};
use crate::raftpb::{
    ConfChange, ConfChangeTransition, ConfChangeV2, Entry, EntryType, Message, MessageType,
};

impl<S: Storage> Raft<S> {
    /// Sends an append (possibly empty, to carry the commit index) to `to`.
    pub(crate) fn send_append(&mut self, to: u64) {
        self.maybe_send_append(to, true);
    }

    /// Sends an append with the entries `to` is missing, unless its progress
    /// is paused. Without `send_if_empty`, nothing is sent when there is no
    /// entry to send. Returns whether a message was sent.
    pub(crate) fn maybe_send_append(&mut self, to: u64, send_if_empty: bool) -> bool {
        let Some(pr) = self.trk.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let next = pr.next_idx;
        let throttled = pr.state == ProgressState::Replicate && pr.ins.full();

        let prev_index = next - 1;
        let Ok(prev_term) = self.raft_log.term(prev_index) else {
            // The log is compacted at or past `next`: only a snapshot can
            // catch this follower up.
            return self.maybe_send_snapshot(to);
        };

        // A throttled Replicate follower still gets empty appends: if all
        // inflight appends were lost, its answer to one of these is what
        // frees the window again.
        let ents = if throttled {
            Ok(Vec::new())
        } else {
            self.raft_log.entries(next, self.max_msg_size)
        };
        let ents = match ents {
            Ok(ents) => ents,
            Err(_) => return self.maybe_send_snapshot(to),
        };
        if ents.is_empty() && !send_if_empty {
            return false;
        }

        let (n, bytes) = (ents.len(), payloads_size(&ents));
        let commit = self.raft_log.committed;
        self.send(Message {
            r#type: MessageType::MsgApp as i32,
            to,
            index: prev_index,
            log_term: prev_term,
            entries: ents,
            commit,
            ..Default::default()
        });
        if let Some(pr) = self.trk.progress.get_mut(&to) {
            pr.sent_entries(n, bytes);
            pr.sent_commit(commit);
        }
        true
    }

    /// Sends the current snapshot to `to`, if it has been heard from
    /// recently and a snapshot is available. Returns whether it was sent.
    fn maybe_send_snapshot(&mut self, to: u64) -> bool {
        let Some(pr) = self.trk.progress.get(&to) else {
            return false;
        };
        if !pr.recent_active {
            return false;
        }
        let snapshot = match self.raft_log.snapshot() {
            Ok(s) => s,
            Err(Error::Storage(StorageError::SnapshotTemporarilyUnavailable)) => return false,
            Err(e) => panic!("storage contract: Storage::snapshot failed: {e}"),
        };
        if is_empty_snap(&snapshot) {
            // Only reachable when a peer claimed an index this log never
            // had; there is nothing to send.
            return false;
        }
        let sindex = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        if let Some(pr) = self.trk.progress.get_mut(&to) {
            pr.become_snapshot(sindex);
        }
        self.send(Message {
            r#type: MessageType::MsgSnap as i32,
            to,
            snapshot: Some(Box::new(snapshot)),
            ..Default::default()
        });
        true
    }

    /// Sends a heartbeat carrying the commit index, capped at what `to` is
    /// known to hold: a follower must never commit an index it does not
    /// have matched with the leader.
    fn send_heartbeat(&mut self, to: u64, ctx: Bytes) {
        let Some(pr) = self.trk.progress.get(&to) else {
            return;
        };
        #[cfg(corelog_sim_bugs)]
        let commit = if self.bugs.heartbeat_commit_beyond_match {
            self.raft_log.committed
        } else {
            pr.matched.min(self.raft_log.committed)
        };
        #[cfg(not(corelog_sim_bugs))]
        let commit = pr.matched.min(self.raft_log.committed);
        self.send(Message {
            r#type: MessageType::MsgHeartbeat as i32,
            to,
            commit,
            context: ctx,
            ..Default::default()
        });
        if let Some(pr) = self.trk.progress.get_mut(&to) {
            pr.sent_commit(commit);
        }
    }

    /// The peer after `id` in ascending order (or the first with `None`):
    /// walks the progress map without holding a borrow across sends.
    fn next_peer(&self, after: Option<u64>) -> Option<u64> {
        match after {
            None => self.trk.progress.keys().next().copied(),
            Some(id) => self
                .trk
                .progress
                .range((Excluded(id), Unbounded))
                .next()
                .map(|(k, _)| *k),
        }
    }

    /// Sends appends to every peer that is not up to date.
    pub(crate) fn bcast_append(&mut self) {
        let mut cur = self.next_peer(None);
        while let Some(id) = cur {
            if id != self.id {
                self.send_append(id);
            }
            cur = self.next_peer(Some(id));
        }
    }

    /// Sends appends with entries (no empty ones) to every peer that is
    /// missing some.
    pub(crate) fn bcast_append_if_nonempty(&mut self) {
        let mut cur = self.next_peer(None);
        while let Some(id) = cur {
            if id != self.id {
                self.maybe_send_append(id, false);
            }
            cur = self.next_peer(Some(id));
        }
    }

    pub(crate) fn bcast_heartbeat(&mut self) {
        // Under lease-based reads the context also carries the send tick.
        let ctx = self.lease.heartbeat_ctx(self.read_only.heartbeat_ctx());
        self.bcast_heartbeat_with_ctx(ctx);
    }

    fn bcast_heartbeat_with_ctx(&mut self, ctx: Bytes) {
        let mut cur = self.next_peer(None);
        while let Some(id) = cur {
            if id != self.id {
                self.send_heartbeat(id, ctx.clone());
            }
            cur = self.next_peer(Some(id));
        }
    }

    /// Advances the commit index to what a quorum has matched, if that entry
    /// is of the current term. Returns whether it moved.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let index = self.trk.committed();
        #[cfg(corelog_sim_bugs)]
        if self.bugs.commit_any_term {
            let term = self.raft_log.term(index).unwrap_or(0);
            return self.raft_log.maybe_commit(EntryId::new(term, index));
        }
        self.raft_log.maybe_commit(EntryId::new(self.term, index))
    }

    /// Appends proposed entries to the leader's log at the current term, and
    /// schedules the leader's own ack for when they are durable. Returns
    /// false (dropping them) if they would exceed the uncommitted limit.
    pub(crate) fn append_entry(&mut self, mut es: Vec<Entry>) -> bool {
        let li = self.raft_log.last_index();
        for (i, e) in es.iter_mut().enumerate() {
            e.term = self.term;
            e.index = li + 1 + i as u64;
        }
        if !self.increase_uncommitted_size(payloads_size(&es)) {
            return false;
        }
        let li = self.raft_log.append(es);
        // The leader sends itself no MsgApp: this ack, stepped once the
        // entries are durable, counts its own copy toward the quorum.
        let id = self.id;
        self.send(Message {
            r#type: MessageType::MsgAppResp as i32,
            to: id,
            index: li,
            ..Default::default()
        });
        true
    }

    pub(crate) fn send_timeout_now(&mut self, to: u64) {
        // The transferee's election goes through the followers' promises:
        // from now on this leader answers no read from its lease.
        self.lease.revoke();
        self.send(Message {
            r#type: MessageType::MsgTimeoutNow as i32,
            to,
            ..Default::default()
        });
    }

    /// The leader has committed an entry of its own term (only then does
    /// its commit index reflect everything committed before it).
    pub(crate) fn committed_entry_in_current_term(&self) -> bool {
        // The term is never 0 on a leader, so an unknown term (0) never
        // matches.
        let t = self.raft_log.term(self.raft_log.committed);
        self.raft_log.zero_term_on_out_of_bounds(t) == self.term
    }

    /// Answers a read request at `read_index`: a local request becomes a
    /// `ReadState`, a forwarded one a MsgReadIndexResp (returned to send).
    fn response_to_read_index_req(&mut self, req: Message, read_index: u64) -> Option<Message> {
        if req.from == NONE || req.from == self.id {
            let request_ctx = req
                .entries
                .first()
                .map(|e| e.data.clone())
                .unwrap_or_default();
            self.read_states.push(ReadState {
                index: read_index,
                request_ctx,
            });
            return None;
        }
        Some(Message {
            r#type: MessageType::MsgReadIndexResp as i32,
            to: req.from,
            index: read_index,
            entries: req.entries,
            ..Default::default()
        })
    }

    /// Answers the read requests that waited for this leader's first commit
    /// in its term.
    pub(crate) fn release_pending_read_index_messages(&mut self) {
        if self.pending_read_index_messages.is_empty() {
            return;
        }
        if !self.committed_entry_in_current_term() {
            return;
        }
        let msgs = std::mem::take(&mut self.pending_read_index_messages);
        for m in msgs {
            self.send_msg_read_index_response(m);
        }
    }

    /// Answers the Safe reads that a quorum of the current voters has
    /// acknowledged.
    pub(crate) fn answer_confirmed_reads(&mut self) {
        for rs in self.read_only.maybe_advance(&self.trk.config.voters) {
            if let Some(resp) = self.response_to_read_index_req(rs.req, rs.index) {
                self.send(resp);
            }
        }
    }

    fn send_msg_read_index_response(&mut self, m: Message) {
        // The only voter: no one to confirm with. Only if that voter is this
        // node: a leader that was demoted or removed (and leads on,
        // step_down_on_removal off) may face a single voter that is another
        // node, which may lead a later term already. And only once an entry
        // of this term is committed (the caller checks): a voter that became
        // the only one while another node led may not know all that was
        // committed. etcd-raft takes this shortcut on IsSingleton alone and
        // before that check, and answers such reads stale (found by
        // corelog-sim).
        if self.trk.is_singleton() && self.trk.config.voters.incoming.contains(self.id) {
            let commit = self.raft_log.committed;
            if let Some(resp) = self.response_to_read_index_req(m, commit) {
                self.send(resp);
            }
            return;
        }
        #[cfg(corelog_sim_bugs)]
        if self.bugs.read_without_quorum {
            let commit = self.raft_log.committed;
            if let Some(resp) = self.response_to_read_index_req(m, commit) {
                self.send(resp);
            }
            return;
        }
        let lease_holds = self.lease.holds(self.id, &self.trk.config.voters);
        #[cfg(corelog_sim_bugs)]
        let lease_holds = lease_holds || self.bugs.lease_always_holds;
        match self.read_only.option {
            ReadOnlyOption::LeaseBased if lease_holds => {
                let commit = self.raft_log.committed;
                if let Some(resp) = self.response_to_read_index_req(m, commit) {
                    self.send(resp);
                }
            }
            // Confirm leadership with a heartbeat round first: always under
            // Safe, and under LeaseBased when the lease does not hold (a
            // new leader before a quorum acknowledged its heartbeats, a
            // leader cut off, one that handed leadership over). The round's
            // heartbeats renew the lease too.
            _ => {
                let commit = self.raft_log.committed;
                self.read_only.add_request(commit, m);
                // The leader acks its own heartbeat.
                let ctx = self.read_only.heartbeat_ctx();
                let id = self.id;
                self.read_only.recv_ack(id, &ctx);
                // Our own ack may be a quorum already (the only voter of a
                // joint configuration), and no heartbeat response would
                // ever come to confirm the read.
                self.answer_confirmed_reads();
                self.bcast_heartbeat();
            }
        }
    }

    /// Vets the conf changes in a proposal: one that fails a check (another
    /// change pending, joint state mismatch, undecodable) is replaced by an
    /// empty normal entry, unless validation is disabled.
    fn vet_conf_changes(&mut self, entries: &mut [Entry]) {
        for (i, entry) in entries.iter_mut().enumerate() {
            let wants_leave_joint = match entry.r#type() {
                EntryType::EntryConfChange => {
                    match <ConfChange as prost::Message>::decode(entry.data.clone()) {
                        Ok(cc) => Some(cc.as_v2().changes.is_empty()),
                        Err(_) => None,
                    }
                }
                EntryType::EntryConfChangeV2 => {
                    match <ConfChangeV2 as prost::Message>::decode(entry.data.clone()) {
                        // An unknown transition could never be applied.
                        Ok(cc) if ConfChangeTransition::try_from(cc.transition).is_ok() => {
                            Some(cc.changes.is_empty())
                        }
                        _ => None,
                    }
                }
                EntryType::EntryNormal => continue,
            };
            let already_pending = self.pending_conf_index > self.raft_log.applied;
            let already_joint = !self.trk.config.voters.outgoing.is_empty();
            let failed = match wants_leave_joint {
                // Undecodable: it could never be applied.
                None => true,
                Some(wants_leave_joint) => {
                    let failed_check = already_pending
                        || (already_joint && !wants_leave_joint)
                        || (!already_joint && wants_leave_joint);
                    failed_check && !self.disable_conf_change_validation
                }
            };
            if failed {
                *entry = Entry {
                    r#type: EntryType::EntryNormal as i32,
                    ..Default::default()
                };
            } else {
                self.pending_conf_index = self.raft_log.last_index() + i as u64 + 1;
            }
        }
    }

    /// The leader's step function.
    pub(crate) fn step_leader(&mut self, mut m: Message) -> Result<()> {
        let Some(t) = msg_type(&m) else {
            return Ok(());
        };
        // Types that need no progress of the sender.
        match t {
            MessageType::MsgBeat => {
                self.bcast_heartbeat();
                return Ok(());
            }
            MessageType::MsgCheckQuorum => {
                if !self.trk.quorum_active() {
                    let term = self.term;
                    self.become_follower(term, NONE);
                }
                // Everyone but us must prove activity again before the next
                // check.
                let id = self.id;
                self.trk.visit(|pid, pr| {
                    if pid != id {
                        pr.recent_active = false;
                    }
                });
                return Ok(());
            }
            MessageType::MsgProp => {
                if m.entries.is_empty() {
                    // Nothing to propose; a peer forwarding this is broken.
                    return Err(Error::ProposalDropped);
                }
                if !self.trk.progress.contains_key(&self.id) {
                    // Removed from the configuration while leading.
                    return Err(Error::ProposalDropped);
                }
                if self.lead_transferee != NONE {
                    return Err(Error::ProposalDropped);
                }
                let mut entries = std::mem::take(&mut m.entries);
                self.vet_conf_changes(&mut entries);
                if !self.append_entry(entries) {
                    return Err(Error::ProposalDropped);
                }
                self.bcast_append();
                return Ok(());
            }
            MessageType::MsgReadIndex => {
                // Until an entry of this term is committed, the commit index
                // may lag what earlier leaders committed: hold the request.
                if !self.committed_entry_in_current_term() {
                    self.pending_read_index_messages.push(m);
                    return Ok(());
                }
                self.send_msg_read_index_response(m);
                return Ok(());
            }
            _ => {}
        }

        // Everything else concerns a peer we track.
        let from = m.from;
        let Some(pr) = self.trk.progress.get_mut(&from) else {
            return Ok(());
        };
        match t {
            MessageType::MsgAppResp => {
                pr.recent_active = true;
                if m.reject {
                    self.handle_append_rejection(&m);
                } else {
                    self.handle_append_ack(&m);
                }
            }
            MessageType::MsgHeartbeatResp => {
                pr.recent_active = true;
                pr.msg_app_flow_paused = false;
                // Even a paused (full window) follower gets an append: it
                // recovers the window if all inflight appends were lost. A
                // caught-up follower in Probe gets an empty one to move back
                // to Replicate.
                let (matched, state) = (pr.matched, pr.state);
                if matched < self.raft_log.last_index() || state == ProgressState::Probe {
                    self.send_append(from);
                }

                // The lease's tick comes first in the context; what follows
                // confirms reads waiting for a heartbeat round.
                let read_ctx = self.lease.recv_ack(from, m.context);
                if read_ctx.is_empty() {
                    return Ok(());
                }
                self.read_only.recv_ack(from, &read_ctx);
                let rss = self.read_only.maybe_advance(&self.trk.config.voters);
                for rs in rss {
                    if let Some(resp) = self.response_to_read_index_req(rs.req, rs.index) {
                        self.send(resp);
                    }
                }
            }
            MessageType::MsgSnapStatus => {
                if pr.state != ProgressState::Snapshot {
                    return Ok(());
                }
                if m.reject {
                    // Clear the pending snapshot first, or probing would
                    // start from a snapshot that never applied.
                    pr.pending_snapshot = 0;
                }
                pr.become_probe();
                // After success, wait for the follower's MsgAppResp; after
                // failure, for a heartbeat round, before the next append.
                pr.msg_app_flow_paused = true;
            }
            // Optimistic appends to an unreachable peer were probably lost.
            MessageType::MsgUnreachable if pr.state == ProgressState::Replicate => {
                pr.become_probe();
            }
            MessageType::MsgTransferLeader => {
                if pr.is_learner {
                    return Ok(());
                }
                let matched = pr.matched;
                let lead_transferee = from;
                let last_lead_transferee = self.lead_transferee;
                if last_lead_transferee != NONE {
                    if last_lead_transferee == lead_transferee {
                        return Ok(());
                    }
                    self.abort_leader_transfer();
                }
                if lead_transferee == self.id {
                    return Ok(());
                }
                // The transfer must finish within an election timeout.
                self.election_elapsed = 0;
                self.lead_transferee = lead_transferee;
                if matched == self.raft_log.last_index() {
                    self.send_timeout_now(lead_transferee);
                } else {
                    self.send_append(lead_transferee);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_append_rejection(&mut self, m: &Message) {
        let from = m.from;
        // The follower's hint: its log may match ours up to `reject_hint`,
        // where it has term `log_term`. With a term, skip every index whose
        // term in our log is above it: none of those can match.
        let mut next_probe_idx = m.reject_hint;
        if m.log_term > 0 {
            next_probe_idx = self
                .raft_log
                .find_conflict_by_term(m.reject_hint, m.log_term)
                .0;
        }
        // Only `min(rejected, hint + 1)` matters, so capping the hint at the
        // rejected index changes nothing but keeps `hint + 1` in range.
        next_probe_idx = next_probe_idx.min(m.index);
        #[cfg(corelog_sim_bugs)]
        if self.bugs.probe_one_too_far {
            next_probe_idx = next_probe_idx.saturating_sub(1);
        }
        let Some(pr) = self.trk.progress.get_mut(&from) else {
            return;
        };
        if pr.maybe_decr_to(m.index, next_probe_idx) {
            if pr.state == ProgressState::Replicate {
                pr.become_probe();
            }
            self.send_append(from);
        }
    }

    fn handle_append_ack(&mut self, m: &Message) {
        let from = m.from;
        if m.index > self.raft_log.last_index() {
            // No follower can have matched entries this leader does not
            // have: a bogus ack, which would break the tracker's
            // `matched < next` arithmetic. (etcd records it.)
            return;
        }
        let first_index = self.raft_log.first_index();
        let Some(pr) = self.trk.progress.get_mut(&from) else {
            return;
        };
        // Update on a higher match, or on a repeat of the match from a probing
        // peer (which moves it back to Replicate).
        let updated =
            pr.maybe_update(m.index) || (pr.matched == m.index && pr.state == ProgressState::Probe);
        if !updated {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot if pr.matched + 1 >= first_index => {
                // Whatever snapshot the follower applied, it can now be
                // caught up from the log: back to Replicate via Probe (which
                // accounts for the pending snapshot).
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Replicate => pr.ins.free_le(m.index),
            ProgressState::Snapshot => {}
        }

        if self.maybe_commit() {
            // A commit in this term makes held read requests answerable.
            self.release_pending_read_index_messages();
            self.bcast_append();
        } else if from != self.id
            && self
                .trk
                .progress
                .get(&from)
                .is_some_and(|pr| pr.can_bump_commit(self.raft_log.committed))
        {
            // The follower may lack the latest commit index; tell it now
            // rather than at the next heartbeat.
            self.send_append(from);
        }
        // Flow control may have opened up (Probe -> Replicate, or several
        // inflight appends freed): send what we can, without empty appends.
        if from != self.id {
            while self.maybe_send_append(from, false) {}
        }
        if from == self.lead_transferee
            && self
                .trk
                .progress
                .get(&from)
                .is_some_and(|pr| pr.matched == self.raft_log.last_index())
        {
            self.send_timeout_now(from);
        }
    }
}
