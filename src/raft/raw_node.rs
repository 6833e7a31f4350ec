//! `RawNode` and `Ready`: the driver contract around `Raft`.
//!
//! The caller feeds inputs (`tick`, `step`, `propose`, ...) and collects a
//! `Ready` when `has_ready()`. Two contracts, chosen by
//! `Config::async_storage_writes`, as in etcd-raft:
//!
//! - synchronous (the default): persist the Ready's entries / hard state /
//!   snapshot, send its messages, apply its committed entries, and call
//!   `advance`. Acknowledgements that need durable state (the leader's own
//!   append, its own vote) are held until `advance` and then stepped in the
//!   order etcd steps them.
//! - asynchronous: the Ready's storage work comes as two local messages in
//!   `messages`: a `MsgStorageAppend` to `LOCAL_APPEND_THREAD` (entries, hard
//!   state, snapshot) and a `MsgStorageApply` to `LOCAL_APPLY_THREAD`
//!   (committed entries). Each carries in `responses` the messages to deliver
//!   once its work is done (durably, for the append): the node's own
//!   MsgAppResp / vote responses and those to peers, and a
//!   `MsgStorageAppendResp` / `MsgStorageApplyResp` that the driver steps
//!   back into this node. There is no `advance`: the next `Ready` may be
//!   taken while earlier writes are in flight; messages to one thread must be
//!   processed in order, the two threads in any order relative to each
//!   other. Committed entries are handed out only once locally durable.
//!
//! The only panics here are for a caller breaking its contract (a second
//! `Ready` accepted before `advance`, or `advance` in asynchronous mode);
//! never for input from the network.

use bytes::Bytes;

use super::config::Config;
use super::errors::{Error, Result};
use super::raft::{
    LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, Raft, SnapshotStatus, SoftState, StorageAppendAck,
    is_empty_hard_state, is_empty_snap, is_local_msg_target,
};
use super::read_only::ReadState;
use super::status::{BasicStatus, Status};
use super::storage::Storage;
use super::tracker::Progress;
use crate::raftpb::{
    ConfChangeI, ConfState, Entry, HardState, Message, MessageType, Snapshot, marshal_conf_change,
};

/// What the application must do next: persist `entries`, `hard_state` and
/// `snapshot` (durably if `must_sync`), send `messages`, apply
/// `committed_entries`, report `read_states`; then call `advance`. With
/// asynchronous storage writes, `messages` also holds the storage work
/// (`MsgStorageAppend`, `MsgStorageApply`) and the other fields are copies
/// of it, for inspection; see the module doc.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ready {
    /// The new soft state, if it changed.
    pub soft_state: Option<SoftState>,
    /// The new hard state, if it changed.
    pub hard_state: Option<HardState>,
    pub read_states: Vec<ReadState>,
    /// Entries to append to stable storage before sending `messages`.
    pub entries: Vec<Entry>,
    /// A snapshot to apply to stable storage.
    pub snapshot: Option<Snapshot>,
    /// Committed entries to apply to the state machine.
    pub committed_entries: Vec<Entry>,
    /// Messages to send once `entries` and `hard_state` are persisted.
    pub messages: Vec<Message>,
    /// The hard state and entries must be synced to disk (not merely
    /// written) before the messages go out.
    pub must_sync: bool,
}

/// What `advance` steps on behalf of storage, in etcd's order: first the
/// messages to this node that waited for durability (own append ack, own
/// vote), then the append acknowledgement, then the apply acknowledgement.
#[derive(Debug, Default)]
struct StepsOnAdvance {
    msgs: Vec<Message>,
    append: Option<StorageAppendAck>,
    /// Last index, encoded size and payload size of the applied entries.
    apply: Option<(u64, u64, u64)>,
}

impl StepsOnAdvance {
    fn is_empty(&self) -> bool {
        self.msgs.is_empty() && self.append.is_none() && self.apply.is_none()
    }
}

/// A Raft node driven through `Ready` / `advance`.
pub struct RawNode<S: Storage> {
    pub raft: Raft<S>,
    prev_soft_st: SoftState,
    prev_hard_st: HardState,
    steps_on_advance: StepsOnAdvance,
    /// `Config::async_storage_writes`: storage work goes out as messages.
    async_storage_writes: bool,
}

impl<S: Storage> RawNode<S> {
    /// A node over `store`, which holds its persisted state (empty for a new
    /// node, whose configuration then comes from the storage's ConfState).
    pub fn new(config: &Config, store: S) -> Result<RawNode<S>> {
        let raft = Raft::new(config, store)?;
        let prev_soft_st = raft.soft_state();
        let prev_hard_st = raft.hard_state();
        Ok(RawNode {
            raft,
            prev_soft_st,
            prev_hard_st,
            steps_on_advance: StepsOnAdvance::default(),
            async_storage_writes: config.async_storage_writes,
        })
    }

    /// The storage the node reads its stable log from.
    pub fn store(&self) -> &S {
        &self.raft.raft_log.store
    }

    /// The storage, for the application to persist a `Ready` into.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.raft.raft_log.store
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Advances the election clock and the lease clock, without heartbeats
    /// or elections: for a quiesced group whose leader does not send
    /// heartbeats while idle.
    pub fn tick_quiesced(&mut self) {
        self.raft.election_elapsed += 1;
        // Time passes all the same: a lease must run out, and a promise
        // not to vote must end, by the ticks the node counts.
        self.raft.lease.tick();
    }

    /// Starts an election (a pre-election with PreVote).
    pub fn campaign(&mut self) -> Result<()> {
        self.raft.step(Message {
            r#type: MessageType::MsgHup as i32,
            ..Default::default()
        })
    }

    /// Proposes `data` to be appended to the log.
    pub fn propose(&mut self, data: Bytes) -> Result<()> {
        let id = self.raft.id;
        self.raft.step(Message {
            r#type: MessageType::MsgProp as i32,
            from: id,
            entries: vec![Entry {
                data,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    /// Proposes a batch of entries as one MsgProp (what a client batch
    /// becomes): one message, one append, one broadcast.
    pub fn propose_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        let id = self.raft.id;
        self.raft.step(Message {
            r#type: MessageType::MsgProp as i32,
            from: id,
            entries,
            ..Default::default()
        })
    }

    /// Proposes a configuration change (a `ConfChange` or `ConfChangeV2`).
    pub fn propose_conf_change(&mut self, cc: &dyn ConfChangeI) -> Result<()> {
        let (typ, data) = marshal_conf_change(cc);
        self.raft.step(Message {
            r#type: MessageType::MsgProp as i32,
            entries: vec![Entry {
                r#type: typ as i32,
                data,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    /// Applies a committed configuration change and returns the new
    /// ConfState. Panics if the change is invalid for the current
    /// configuration: only a change that entered the log without validation
    /// can be, and the application guaranteed validity when it disabled it.
    pub fn apply_conf_change(&mut self, cc: &dyn ConfChangeI) -> ConfState {
        match self.raft.apply_conf_change(&cc.as_v2()) {
            Ok(cs) => cs,
            Err(e) => panic!("applied conf change is invalid for the current configuration: {e}"),
        }
    }

    /// Like `apply_conf_change`, but returns an invalid change as an error.
    pub fn try_apply_conf_change(&mut self, cc: &dyn ConfChangeI) -> Result<ConfState> {
        self.raft.apply_conf_change(&cc.as_v2())
    }

    /// Steps a message from the network, or (asynchronous storage writes) a
    /// response a storage thread delivered. Local-only types are refused
    /// unless they come from a storage thread of a node in asynchronous
    /// mode, as are responses from peers not in the configuration.
    pub fn step(&mut self, m: Message) -> Result<()> {
        let Ok(t) = MessageType::try_from(m.r#type) else {
            // Unknown types are dropped inside `Raft::step` as well; here
            // they are simply not ours to interpret.
            return Ok(());
        };
        let from_storage = self.async_storage_writes && is_local_msg_target(m.from);
        if t.is_local() && !from_storage {
            return Err(Error::StepLocalMsg);
        }
        if t.is_response() && !from_storage && !self.raft.trk.progress.contains_key(&m.from) {
            return Err(Error::StepPeerNotFound);
        }
        self.raft.step(m)
    }

    /// Whether there is anything for the application to do.
    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        if r.soft_state() != self.prev_soft_st {
            return true;
        }
        let hs = r.hard_state();
        if !is_empty_hard_state(&hs) && hard_state_changed(r, &hs, &self.prev_hard_st) {
            return true;
        }
        if r.raft_log.has_next_unstable_snapshot() {
            return true;
        }
        if !r.msgs.is_empty() || !r.msgs_after_append.is_empty() {
            return true;
        }
        if r.raft_log.has_next_unstable_ents()
            || r.raft_log
                .has_next_committed_ents(self.apply_unstable_entries())
        {
            return true;
        }
        !r.read_states.is_empty()
    }

    /// Whether committed entries may be applied before they are durable
    /// locally: in synchronous mode the Ready's append precedes its apply,
    /// in asynchronous mode the two threads are not ordered.
    fn apply_unstable_entries(&self) -> bool {
        !self.async_storage_writes
    }

    /// Collects what the application must do next, and accepts it: its
    /// entries count as being persisted and its committed entries as being
    /// applied until `advance` (synchronous mode) or until the storage
    /// threads answer (asynchronous mode).
    ///
    /// Panics, in synchronous mode, if the previous `Ready` (which had
    /// acknowledgements pending) was not advanced: rule "one Ready at a
    /// time, then advance".
    pub fn ready(&mut self) -> Ready {
        assert!(
            self.async_storage_writes || self.steps_on_advance.is_empty(),
            "Ready/advance contract: two Ready accepted without a call to advance"
        );
        let rd = self.ready_without_accept();
        self.accept_ready(&rd);
        rd
    }

    fn ready_without_accept(&mut self) -> Ready {
        let allow_unstable = self.apply_unstable_entries();
        let r = &mut self.raft;
        let mut rd = Ready {
            entries: r.raft_log.next_unstable_ents().to_vec(),
            committed_entries: r.raft_log.next_committed_ents(allow_unstable),
            messages: std::mem::take(&mut r.msgs),
            ..Default::default()
        };
        let ss = r.soft_state();
        if ss != self.prev_soft_st {
            rd.soft_state = Some(ss);
        }
        let hs = r.hard_state();
        if hard_state_changed(r, &hs, &self.prev_hard_st) {
            rd.hard_state = Some(hs);
        }
        rd.snapshot = r.raft_log.next_unstable_snapshot().cloned();
        rd.read_states = std::mem::take(&mut r.read_states);
        rd.must_sync = must_sync(&hs, &self.prev_hard_st, rd.entries.len());

        if self.async_storage_writes {
            if need_storage_append_msg(r, &rd) {
                let m = new_storage_append_msg(r, &rd);
                rd.messages.push(m);
            }
            if !rd.committed_entries.is_empty() {
                let m = new_storage_apply_msg(r.id, &rd.committed_entries);
                rd.messages.push(m);
            }
            return rd;
        }

        // Messages that waited for durability go out after the others; those
        // to ourselves are stepped on advance.
        let id = r.id;
        for m in std::mem::take(&mut r.msgs_after_append) {
            if m.to != id {
                rd.messages.push(m);
            } else {
                self.steps_on_advance.msgs.push(m);
            }
        }
        rd
    }

    fn accept_ready(&mut self, rd: &Ready) {
        if let Some(ss) = rd.soft_state {
            self.prev_soft_st = ss;
        }
        if let Some(hs) = rd.hard_state {
            if !is_empty_hard_state(&hs) {
                self.prev_hard_st = hs;
            }
        }
        let allow_unstable = self.apply_unstable_entries();
        let r = &mut self.raft;
        if self.async_storage_writes {
            // What waited for durability left inside the MsgStorageAppend;
            // the storage threads' responses take the place of `advance`.
            r.msgs_after_append.clear();
            r.raft_log.accept_unstable();
            if let Some(last) = rd.committed_entries.last() {
                let (ents_size, _) = Raft::<S>::applied_sizes(&rd.committed_entries);
                r.raft_log
                    .accept_applying(last.index, ents_size, allow_unstable);
            }
            return;
        }
        let has_unstable = r.raft_log.has_next_or_in_progress_unstable_ents();
        if has_unstable || rd.snapshot.is_some() {
            let last = has_unstable.then(|| r.raft_log.last_entry_id());
            self.steps_on_advance.append = Some(StorageAppendAck {
                term: r.term,
                last,
                snapshot_index: rd
                    .snapshot
                    .as_ref()
                    .map(|s| s.metadata.as_ref().map_or(0, |m| m.index)),
            });
        }
        r.raft_log.accept_unstable();
        if let Some(last) = rd.committed_entries.last() {
            let (ents_size, payload) = Raft::<S>::applied_sizes(&rd.committed_entries);
            self.steps_on_advance.apply = Some((last.index, ents_size, payload));
            r.raft_log.accept_applying(last.index, ents_size, true);
        }
    }

    /// The application has persisted, sent and applied the last `Ready`.
    ///
    /// Panics in asynchronous mode, where the storage threads' responses
    /// take its place: calling it there is a driver bug.
    pub fn advance(&mut self, _rd: Ready) {
        assert!(
            !self.async_storage_writes,
            "advance must not be called with asynchronous storage writes"
        );
        let steps = std::mem::take(&mut self.steps_on_advance);
        for m in steps.msgs {
            let _ = self.raft.step(m);
        }
        if let Some(ack) = steps.append {
            self.raft.on_storage_append(ack);
        }
        if let Some((last_index, ents_size, payload)) = steps.apply {
            self.raft.on_storage_apply(last_index, ents_size, payload);
        }
    }

    /// The node's full status (progress of every peer on a leader).
    pub fn status(&self) -> Status {
        Status::new(&self.raft)
    }

    /// The node's status without the configuration and progress copies.
    pub fn basic_status(&self) -> BasicStatus {
        BasicStatus::new(&self.raft)
    }

    /// Visits the progress of every tracked peer, in ascending id order,
    /// without copying it (meaningful on a leader).
    pub fn with_progress(&self, mut visitor: impl FnMut(u64, &Progress)) {
        for (&id, pr) in &self.raft.trk.progress {
            visitor(id, pr);
        }
    }

    /// Reports that `id` could not be reached: a leader stops optimistic
    /// replication to it.
    pub fn report_unreachable(&mut self, id: u64) {
        let _ = self.raft.step(Message {
            r#type: MessageType::MsgUnreachable as i32,
            from: id,
            ..Default::default()
        });
    }

    /// Reports the outcome of sending a snapshot to `id`.
    pub fn report_snapshot(&mut self, id: u64, status: SnapshotStatus) {
        let _ = self.raft.step(Message {
            r#type: MessageType::MsgSnapStatus as i32,
            from: id,
            reject: status == SnapshotStatus::Failure,
            ..Default::default()
        });
    }

    /// Asks the leader to hand leadership to `transferee`.
    pub fn transfer_leader(&mut self, transferee: u64) {
        let _ = self.raft.step(Message {
            r#type: MessageType::MsgTransferLeader as i32,
            from: transferee,
            ..Default::default()
        });
    }

    /// Forgets the current leader (followers only): the node then grants
    /// votes without waiting out the leader's lease.
    pub fn forget_leader(&mut self) -> Result<()> {
        self.raft.forget_leader()
    }

    /// Requests a linearizable read; the answer arrives as a `ReadState`
    /// carrying `rctx`.
    pub fn read_index(&mut self, rctx: Bytes) {
        let _ = self.raft.step(Message {
            r#type: MessageType::MsgReadIndex as i32,
            entries: vec![Entry {
                data: rctx,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
}

/// Whether `hs` differs from the hard state last handed out.
fn hard_state_changed<S: Storage>(_r: &Raft<S>, hs: &HardState, prev: &HardState) -> bool {
    #[cfg(corelog_sim_bugs)]
    if _r.bugs.unsynced_vote {
        return hs.term != prev.term || hs.commit != prev.commit;
    }
    hs != prev
}

/// Whether the hard state change or new entries must be synced to disk.
pub fn must_sync(st: &HardState, prev: &HardState, entsnum: usize) -> bool {
    entsnum != 0 || st.vote != prev.vote || st.term != prev.term
}

/// Whether a Ready of an asynchronous-mode node needs a `MsgStorageAppend`:
/// it has something to persist (entries, hard state, snapshot), or messages
/// that may only go once everything before them is durable.
fn need_storage_append_msg<S: Storage>(r: &Raft<S>, rd: &Ready) -> bool {
    !rd.entries.is_empty()
        || rd
            .hard_state
            .as_ref()
            .is_some_and(|hs| !is_empty_hard_state(hs))
        || rd.snapshot.as_ref().is_some_and(|s| !is_empty_snap(s))
        || !r.msgs_after_append.is_empty()
}

/// The `MsgStorageAppend` of a Ready: entries, hard state (as term, vote,
/// commit; all zero when unchanged) and snapshot to persist, with the
/// messages that waited for durability as its responses, followed by the
/// node's own `MsgStorageAppendResp` when the log or a snapshot has
/// something to acknowledge. The node's own MsgAppResp precedes that
/// acknowledgement so that it still finds the new entries' terms in the
/// unstable log.
fn new_storage_append_msg<S: Storage>(r: &mut Raft<S>, rd: &Ready) -> Message {
    let mut m = Message {
        r#type: MessageType::MsgStorageAppend as i32,
        to: LOCAL_APPEND_THREAD,
        from: r.id,
        entries: rd.entries.clone(),
        ..Default::default()
    };
    if let Some(hs) = rd.hard_state.as_ref().filter(|hs| !is_empty_hard_state(hs)) {
        m.term = hs.term;
        m.vote = hs.vote;
        m.commit = hs.commit;
    }
    let snap = rd.snapshot.as_ref().filter(|s| !is_empty_snap(s));
    if let Some(snap) = snap {
        m.snapshot = Some(Box::new(snap.clone()));
    }
    m.responses = std::mem::take(&mut r.msgs_after_append);
    let has_unstable = r.raft_log.has_next_or_in_progress_unstable_ents();
    if has_unstable || snap.is_some() {
        m.responses
            .push(new_storage_append_resp_msg(r, has_unstable, snap));
    }
    m
}

/// The acknowledgement the append thread returns once this and every
/// earlier `MsgStorageAppend` is durable. It names the last entry of the
/// whole log at the current term, not only of this Ready's entries: an
/// acknowledgement of an earlier term is ignored (its entries may have been
/// replaced since, and a write of the replacement may still be in flight),
/// so every term change must bring one that can release the unstable log.
fn new_storage_append_resp_msg<S: Storage>(
    r: &Raft<S>,
    has_unstable: bool,
    snap: Option<&Snapshot>,
) -> Message {
    let mut m = Message {
        r#type: MessageType::MsgStorageAppendResp as i32,
        to: r.id,
        from: LOCAL_APPEND_THREAD,
        term: r.term,
        ..Default::default()
    };
    if has_unstable {
        let last = r.raft_log.last_entry_id();
        m.index = last.index;
        m.log_term = last.term;
    }
    if let Some(snap) = snap {
        m.snapshot = Some(Box::new(snap.clone()));
    }
    m
}

/// The `MsgStorageApply` of a Ready: the committed entries to apply, with
/// the `MsgStorageApplyResp` (carrying the same entries) the apply thread
/// returns once they are applied. Neither is bound to a term.
fn new_storage_apply_msg(id: u64, ents: &[Entry]) -> Message {
    let resp = Message {
        r#type: MessageType::MsgStorageApplyResp as i32,
        to: id,
        from: LOCAL_APPLY_THREAD,
        entries: ents.to_vec(),
        ..Default::default()
    };
    Message {
        r#type: MessageType::MsgStorageApply as i32,
        to: LOCAL_APPLY_THREAD,
        from: id,
        entries: ents.to_vec(),
        responses: vec![resp],
        ..Default::default()
    }
}
