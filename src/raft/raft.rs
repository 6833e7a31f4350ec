//! `Raft`: the protocol state machine of one node, with etcd-raft's rules.
//!
//! This file owns the node's role and term: construction, ticks, the role
//! transitions (`become_*`), the entry point `step` (term checks, then
//! dispatch to votes or to the role's step function), and the hooks the
//! `RawNode` calls when storage has caught up. The rest of `Raft` is split by
//! concern: `election.rs` (campaigns and votes), `step_leader.rs` (leader,
//! replication, reads, transfer), `step_follower.rs` (candidate, follower,
//! appends, snapshots), `conf_change.rs` (membership) and `lease.rs` (the
//! tick count, the leader's lease and the followers' promise).
//!
//! It must never do I/O, read a clock or use global randomness: messages go
//! to `msgs` / `msgs_after_append` and are handed out by the `RawNode`.
//! Malformed or stale input from the network is dropped, never a panic.
//!
//! Where etcd-raft (at cdfbeed) would panic or corrupt state on input from
//! a peer, this core drops the input instead; on well-formed input the
//! behaviour is etcd's. Those places: a MsgApp whose entries do not follow
//! its previous index (or pass `MAX_INDEX`); a snapshot past `MAX_INDEX`, or
//! whose ConfState does not restore to itself; a heartbeat commit index
//! beyond the log; an append ack beyond the leader's log; a vote request
//! without a term; a storage apply response past the commit index; an
//! empty MsgProp (`ProposalDropped`); a proposed conf
//! change that does not decode (it becomes an empty normal entry, like one
//! failing validation); terms saturate at `u64::MAX`; a pre-vote rejection
//! at term 0 is sent with term 0 (etcd asserts a term). There is no logger:
//! etcd's log lines are not produced.
//!
//! One departure on well-formed input, for safety: with asynchronous
//! storage writes a candidate does not become leader on its peers' votes
//! before its own vote is counted (etcd's does; see `step_candidate`).

use std::fmt;

use super::confchange;
use super::config::{Config, NO_LIMIT, ReadOnlyOption};
use super::errors::{Error, Result};
use super::lease::Lease;
use super::prng::Prng;
use super::raft_log::RaftLog;
use super::read_only::{ReadOnly, ReadState};
use super::storage::Storage;
use super::tracker::{Inflights, Progress, ProgressTracker};
use super::types::{EntryId, ents_size, payloads_size};
use crate::raftpb::{HardState, Message, MessageType, Snapshot};

/// "No node": the id of no leader, no vote.
pub const NONE: u64 = 0;

/// The highest log index a peer may make this node hold (via an append or a
/// snapshot). No real log gets near it; refusing beyond it keeps every
/// `index + n` computation of the log and the tracker in range whatever a
/// peer sends.
pub const MAX_INDEX: u64 = u64::MAX / 2;

/// The pseudo-id of a node's local append thread (asynchronous storage
/// writes): the target of `MsgStorageAppend` and the sender of
/// `MsgStorageAppendResp`. etcd's value, so descriptions match.
pub const LOCAL_APPEND_THREAD: u64 = u64::MAX;

/// The pseudo-id of a node's local apply thread (asynchronous storage
/// writes): the target of `MsgStorageApply` and the sender of
/// `MsgStorageApplyResp`.
pub const LOCAL_APPLY_THREAD: u64 = u64::MAX - 1;

/// Whether `id` names one of the local storage threads rather than a node.
pub fn is_local_msg_target(id: u64) -> bool {
    id == LOCAL_APPEND_THREAD || id == LOCAL_APPLY_THREAD
}

/// The context of a MsgVote sent on a leadership transfer: it lets the vote
/// through a voter's leader lease.
pub(crate) const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

/// The role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateType {
    #[default]
    Follower,
    Candidate,
    Leader,
    PreCandidate,
}

impl fmt::Display for StateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateType::Follower => "StateFollower",
            StateType::Candidate => "StateCandidate",
            StateType::Leader => "StateLeader",
            StateType::PreCandidate => "StatePreCandidate",
        })
    }
}

/// The volatile part of a node's state that the application may want to see
/// (it is never persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoftState {
    pub lead: u64,
    pub raft_state: StateType,
}

/// The outcome of sending a snapshot, reported by the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotStatus {
    Finish,
    Failure,
}

/// Why a node campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CampaignType {
    /// The first phase of an election with PreVote: no term change.
    PreElection,
    /// A normal election (the second phase with PreVote).
    Election,
    /// An election asked for by the leader (MsgTimeoutNow): skips PreVote
    /// and breaks through leader leases.
    Transfer,
}

/// What `RawNode::advance` reports once the entries (and snapshot) of a
/// `Ready` are durable: etcd's MsgStorageAppendResp in synchronous mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StorageAppendAck {
    /// The term when the `Ready` was accepted.
    pub term: u64,
    /// The last entry of the log then, if it had unstable entries.
    pub last: Option<EntryId>,
    /// The index of the snapshot handed out, if any.
    pub snapshot_index: Option<u64>,
}

/// One Raft node's protocol state. Fields are public so that tests and the
/// conformance harness can inspect and set them, as etcd's tests do.
pub struct Raft<S: Storage> {
    pub id: u64,
    pub term: u64,
    pub vote: u64,
    /// Answers to read requests, handed out by the next `Ready`.
    pub read_states: Vec<ReadState>,
    pub raft_log: RaftLog<S>,
    /// Byte limit of the entries of one MsgApp.
    pub max_msg_size: u64,
    /// Byte limit (payloads) of the leader's uncommitted tail.
    pub max_uncommitted_size: u64,
    pub trk: ProgressTracker,
    pub state: StateType,
    /// This node is a learner in the current configuration.
    pub is_learner: bool,
    /// Messages to send right away.
    pub msgs: Vec<Message>,
    /// Messages to send (or, when addressed to this node, to step) only once
    /// the state they vouch for is durable: MsgAppResp, MsgVoteResp and
    /// MsgPreVoteResp.
    pub msgs_after_append: Vec<Message>,
    pub lead: u64,
    /// The target of a leadership transfer in progress, or `NONE`.
    pub lead_transferee: u64,
    /// A conf change at an index above `applied` may be pending: no new one
    /// is accepted until the log is applied past this index.
    pub pending_conf_index: u64,
    pub disable_conf_change_validation: bool,
    /// Estimated payload bytes of the leader's uncommitted tail.
    pub uncommitted_size: u64,
    pub read_only: ReadOnly,
    /// This node's tick count and lease-based reads: the leader's lease,
    /// the follower's promise not to vote (`lease.rs`).
    pub lease: Lease,
    /// Ticks since the last election timeout (leader, candidate) or since
    /// the last valid message from the leader (follower).
    pub election_elapsed: usize,
    /// Ticks since the last heartbeat (leader only).
    pub heartbeat_elapsed: usize,
    pub check_quorum: bool,
    pub pre_vote: bool,
    pub heartbeat_timeout: usize,
    pub election_timeout: usize,
    /// The current election timeout, in `[election_timeout, 2 *
    /// election_timeout)`; redrawn at every role change.
    pub randomized_election_timeout: usize,
    pub disable_proposal_forwarding: bool,
    pub step_down_on_removal: bool,
    /// MsgReadIndex that arrived before this leader committed an entry of
    /// its term; answered after that first commit.
    pub pending_read_index_messages: Vec<Message>,
    /// `Config::async_storage_writes`: a candidate's MsgVote may leave
    /// before its term and vote are durable, so it wins only once its own
    /// vote (which waits for that write) is counted.
    pub async_storage_writes: bool,
    rng: Prng,
    #[cfg(corelog_sim_bugs)]
    pub(crate) bugs: super::config::Bugs,
}

impl<S: Storage> Raft<S> {
    /// A follower at the persisted term, with the configuration of the
    /// storage's ConfState. The config is validated first.
    pub fn new(config: &Config, store: S) -> Result<Raft<S>> {
        let mut c = config.clone();
        c.validate()?;
        let raft_log = RaftLog::new_with_size(store, c.max_committed_size_per_ready);
        let rs = raft_log.store.initial_state()?;
        let mut r = Raft {
            id: c.id,
            term: 0,
            vote: NONE,
            read_states: Vec::new(),
            raft_log,
            max_msg_size: c.max_size_per_msg,
            max_uncommitted_size: c.max_uncommitted_entries_size,
            trk: ProgressTracker::new(c.max_inflight_msgs, c.max_inflight_bytes),
            state: StateType::Follower,
            is_learner: false,
            msgs: Vec::new(),
            msgs_after_append: Vec::new(),
            lead: NONE,
            lead_transferee: NONE,
            pending_conf_index: 0,
            disable_conf_change_validation: c.disable_conf_change_validation,
            uncommitted_size: 0,
            read_only: ReadOnly::new(c.read_only_option),
            lease: Lease::new(
                c.read_only_option == ReadOnlyOption::LeaseBased,
                c.election_tick,
                c.max_clock_drift_ticks,
                rs.hard_state.term > 0,
            ),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            check_quorum: c.check_quorum,
            pre_vote: c.pre_vote,
            heartbeat_timeout: c.heartbeat_tick,
            election_timeout: c.election_tick,
            randomized_election_timeout: c.election_tick,
            disable_proposal_forwarding: c.disable_proposal_forwarding,
            step_down_on_removal: c.step_down_on_removal,
            pending_read_index_messages: Vec::new(),
            async_storage_writes: c.async_storage_writes,
            rng: Prng::new(c.random_seed),
            #[cfg(corelog_sim_bugs)]
            bugs: c.bugs,
        };

        let last = r.raft_log.last_entry_id();
        let (cfg, prs) =
            confchange::restore(&r.trk, last.index, &rs.conf_state).map_err(Error::ConfChange)?;
        let cs = r.switch_to_config(cfg, prs);
        rs.conf_state.equivalent(&cs).map_err(Error::ConfChange)?;

        if !is_empty_hard_state(&rs.hard_state) {
            r.load_state(&rs.hard_state);
        }
        if c.applied > 0 {
            let (applied, committed) = (r.raft_log.applied, r.raft_log.committed);
            if c.applied < applied || c.applied > committed {
                // etcd panics here; the config is simply wrong for this
                // storage.
                return Err(Error::ConfigInvalid {
                    field: "applied",
                    reason: format!(
                        "{} is outside [{applied}, {committed}] (snapshot index, committed index)",
                        c.applied
                    ),
                });
            }
            r.raft_log.applied_to(c.applied, 0);
        }
        let term = r.term;
        r.become_follower(term, NONE);
        Ok(r)
    }

    pub fn has_leader(&self) -> bool {
        self.lead != NONE
    }

    pub fn soft_state(&self) -> SoftState {
        SoftState {
            lead: self.lead,
            raft_state: self.state,
        }
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.raft_log.committed,
        }
    }

    /// Queues `m` for sending: responses that vouch for local state
    /// (MsgAppResp, MsgVoteResp, MsgPreVoteResp) wait until that state is
    /// durable, everything else goes out with the next `Ready`.
    pub(crate) fn send(&mut self, mut m: Message) {
        if m.from == NONE {
            m.from = self.id;
        }
        let t = msg_type(&m);
        match t {
            Some(
                MessageType::MsgVote
                | MessageType::MsgVoteResp
                | MessageType::MsgPreVote
                | MessageType::MsgPreVoteResp,
            ) => {
                // Campaign messages carry the term they are about; callers
                // set it. The one exception is a rejection sent at term 0
                // (a node that never saw a term rejecting a pre-vote): the
                // term-less answer is then handled as current by the
                // pre-candidate, which is what the rejection means. (etcd
                // panics here instead; the input comes from the network.)
                debug_assert!(
                    m.term != 0 || m.reject,
                    "term must be set when sending {t:?}"
                );
            }
            Some(MessageType::MsgProp | MessageType::MsgReadIndex) => {
                // Forwarded requests are not bound to a term: they travel
                // like local messages.
            }
            _ => m.term = self.term,
        }
        // Under lease-based reads a heartbeat's answer is a promise not to
        // vote for another for an election timeout; the term it promises
        // in must survive a crash, so it too waits for durability.
        let vouches = matches!(
            t,
            Some(MessageType::MsgAppResp | MessageType::MsgVoteResp | MessageType::MsgPreVoteResp)
        ) || (t == Some(MessageType::MsgHeartbeatResp) && self.lease.enabled());
        if vouches {
            self.msgs_after_append.push(m);
        } else if m.to != self.id {
            self.msgs.push(m);
        }
        // Anything else addressed to ourselves can only come from a peer
        // lying about its id (e.g. a MsgApp "from" us made us our own
        // leader); there is nobody to deliver it to, so it is dropped.
    }

    pub(crate) fn reset(&mut self, term: u64) {
        #[cfg(corelog_sim_bugs)]
        let term_changed = self.term != term || self.bugs.vote_cleared_without_term_change;
        #[cfg(not(corelog_sim_bugs))]
        let term_changed = self.term != term;
        if term_changed {
            self.term = term;
            self.vote = NONE;
        }
        self.lead = NONE;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reset_randomized_election_timeout();
        self.abort_leader_transfer();
        self.trk.reset_votes();
        let last_index = self.raft_log.last_index();
        let (max_inflight, max_bytes) = (self.trk.max_inflight, self.trk.max_inflight_bytes);
        let id = self.id;
        self.trk.visit(|pid, pr| {
            let is_learner = pr.is_learner;
            *pr = Progress::new(last_index + 1, Inflights::new(max_inflight, max_bytes));
            pr.is_learner = is_learner;
            if pid == id {
                pr.matched = last_index;
            }
        });
        self.pending_conf_index = 0;
        self.uncommitted_size = 0;
        self.read_only = ReadOnly::new(self.read_only.option);
    }

    /// Ticks a follower or candidate: campaign once the election timeout has
    /// passed.
    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.past_election_timeout() {
            self.election_elapsed = 0;
            let _ = self.step(local_msg(MessageType::MsgHup, self.id));
        }
    }

    /// Ticks a leader: heartbeats, CheckQuorum, and the timeout of a
    /// leadership transfer.
    fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;

        if self.election_elapsed >= self.election_timeout {
            self.election_elapsed = 0;
            if self.check_quorum {
                let _ = self.step(local_msg(MessageType::MsgCheckQuorum, self.id));
            }
            // A transfer that has not finished within an election timeout
            // is abandoned: this node stays leader.
            if self.state == StateType::Leader && self.lead_transferee != NONE {
                self.abort_leader_transfer();
            }
        }

        if self.state != StateType::Leader {
            return;
        }

        if self.heartbeat_elapsed >= self.heartbeat_timeout {
            self.heartbeat_elapsed = 0;
            let _ = self.step(local_msg(MessageType::MsgBeat, self.id));
        }
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.lease.tick();
        match self.state {
            StateType::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    pub fn become_follower(&mut self, term: u64, lead: u64) {
        self.reset(term);
        self.lead = lead;
        self.state = StateType::Follower;
    }

    /// Panics if called on a leader (a caller bug: a leader never campaigns).
    pub fn become_candidate(&mut self) {
        assert!(
            self.state != StateType::Leader,
            "invalid transition [leader -> candidate]"
        );
        let term = self.term.saturating_add(1); // a peer may have pushed us to u64::MAX
        self.reset(term);
        self.vote = self.id;
        self.state = StateType::Candidate;
    }

    /// Panics if called on a leader (a caller bug: a leader never campaigns).
    pub fn become_pre_candidate(&mut self) {
        assert!(
            self.state != StateType::Leader,
            "invalid transition [leader -> pre-candidate]"
        );
        // A pre-candidate keeps its term and vote: only the votes tally and
        // the role change.
        self.trk.reset_votes();
        self.lead = NONE;
        self.state = StateType::PreCandidate;
    }

    /// Panics if called on a follower (a caller bug: only a candidate wins).
    pub fn become_leader(&mut self) {
        assert!(
            self.state != StateType::Follower,
            "invalid transition [follower -> leader]"
        );
        let term = self.term;
        self.reset(term);
        self.lead = self.id;
        self.state = StateType::Leader;
        self.lease.become_leader();
        let id = self.id;
        if let Some(pr) = self.trk.progress.get_mut(&id) {
            // The leader trivially replicates to itself and is always active.
            pr.become_replicate();
            pr.recent_active = true;
        }
        // Whether or not a conf change is in the uncommitted tail, refusing
        // new ones until the whole tail is applied is safe and cheap.
        self.pending_conf_index = self.raft_log.last_index();

        #[cfg(corelog_sim_bugs)]
        if self.bugs.leader_skips_empty_entry {
            return;
        }
        // An empty entry has payload size 0, so this cannot be refused.
        let accepted = self.append_entry(vec![crate::raftpb::Entry::default()]);
        assert!(accepted, "the empty entry of a new leader was dropped");
    }

    /// Advances the state machine with one message: a local one (term 0) or
    /// one from a peer. Stale and malformed messages are dropped.
    pub fn step(&mut self, m: Message) -> Result<()> {
        // An unknown type from the network cannot be acted upon (and must not
        // be mistaken for MsgHup, prost's default).
        let Some(t) = msg_type(&m) else {
            return Ok(());
        };

        if m.term == 0 {
            // A local message, or a forwarded proposal / read request.
        } else if m.term > self.term {
            if matches!(t, MessageType::MsgVote | MessageType::MsgPreVote) {
                let force = m.context.as_ref() == CAMPAIGN_TRANSFER;
                // etcd's leader stickiness; under lease-based reads also the
                // exact promise, which term changes do not end (`lease.rs`).
                let in_lease = (self.check_quorum
                    && self.lead != NONE
                    && self.election_elapsed < self.election_timeout)
                    || self.lease.promised();
                if !force && in_lease {
                    // Within the minimum election timeout of hearing from
                    // the leader: neither bump the term nor grant the vote.
                    return Ok(());
                }
            }
            match t {
                // A pre-vote never changes our term.
                MessageType::MsgPreVote => {}
                // Granted pre-votes carry the term we asked for; the term is
                // only raised when the real election starts.
                MessageType::MsgPreVoteResp if !m.reject => {}
                MessageType::MsgApp | MessageType::MsgHeartbeat | MessageType::MsgSnap => {
                    self.become_follower(m.term, m.from);
                }
                _ => self.become_follower(m.term, NONE),
            }
        } else if m.term < self.term {
            if (self.check_quorum || self.pre_vote)
                && matches!(t, MessageType::MsgHeartbeat | MessageType::MsgApp)
            {
                // A leader of an older term may be stuck unable to learn the
                // newer term (we may refuse its votes under CheckQuorum):
                // tell it, so it steps down.
                self.send(Message {
                    r#type: MessageType::MsgAppResp as i32,
                    to: m.from,
                    ..Default::default()
                });
            } else if t == MessageType::MsgPreVote {
                // Rejecting (rather than dropping) lets a pre-candidate with
                // an old term learn ours and avoids deadlocks after enabling
                // PreVote in a running cluster.
                self.send(Message {
                    r#type: MessageType::MsgPreVoteResp as i32,
                    to: m.from,
                    term: self.term,
                    reject: true,
                    ..Default::default()
                });
            } else if t == MessageType::MsgStorageAppendResp {
                // The entries it vouches for may have been replaced in the
                // unstable log under a later term while the write was in
                // flight (and a write of the replacement may still be in
                // flight): they are not marked stable. A snapshot holds
                // committed state, valid whatever the term.
                if let Some(snap) = &m.snapshot {
                    let index = snap.metadata.as_ref().map_or(0, |md| md.index);
                    self.applied_snap(index);
                }
            }
            return Ok(());
        }

        match t {
            MessageType::MsgHup => {
                if self.pre_vote {
                    self.hup(CampaignType::PreElection);
                } else {
                    self.hup(CampaignType::Election);
                }
                Ok(())
            }
            MessageType::MsgVote | MessageType::MsgPreVote => {
                self.handle_vote_request(m);
                Ok(())
            }
            MessageType::MsgStorageAppendResp => {
                self.on_storage_append_resp(&m);
                Ok(())
            }
            MessageType::MsgStorageApplyResp => {
                self.on_storage_apply_resp(&m);
                Ok(())
            }
            _ => match self.state {
                StateType::Leader => self.step_leader(m),
                StateType::Candidate | StateType::PreCandidate => self.step_candidate(m),
                StateType::Follower => self.step_follower(m),
            },
        }
    }

    /// Drops the known leader so that this follower grants votes (and
    /// campaigns after its election timeout) without waiting out the leader
    /// lease. A no-op for non-followers, and refused under LeaseBased reads,
    /// where forgetting the leader would break the lease's promise.
    pub fn forget_leader(&mut self) -> Result<()> {
        if self.state != StateType::Follower {
            return Ok(());
        }
        if self.read_only.option == super::config::ReadOnlyOption::LeaseBased {
            return Ok(());
        }
        self.lead = NONE;
        Ok(())
    }

    /// The node can become leader: it is a voter and no snapshot is pending.
    pub fn promotable(&self) -> bool {
        self.trk
            .progress
            .get(&self.id)
            .is_some_and(|pr| !pr.is_learner)
            && !self.raft_log.has_next_or_in_progress_snapshot()
    }

    pub(crate) fn load_state(&mut self, hs: &HardState) {
        assert!(
            hs.commit >= self.raft_log.committed && hs.commit <= self.raft_log.last_index(),
            "storage contract: HardState.commit {} must lie in [{}, {}] (committed, last index)",
            hs.commit,
            self.raft_log.committed,
            self.raft_log.last_index()
        );
        self.raft_log.committed = hs.commit;
        self.term = hs.term;
        self.vote = hs.vote;
    }

    pub fn past_election_timeout(&self) -> bool {
        self.election_elapsed >= self.randomized_election_timeout
    }

    pub fn reset_randomized_election_timeout(&mut self) {
        let spread = self.rng.below(self.election_timeout as u64) as usize;
        self.randomized_election_timeout = self.election_timeout + spread;
    }

    pub fn abort_leader_transfer(&mut self) {
        self.lead_transferee = NONE;
    }

    /// The entries up to `index` (of `size` encoded bytes) have been applied.
    /// A leader in an auto-leave joint configuration proposes leaving it
    /// once the entry that entered it is applied.
    pub(crate) fn applied_to(&mut self, index: u64, size: u64) {
        let new_applied = index.max(self.raft_log.applied);
        self.raft_log.applied_to(new_applied, size);

        if self.trk.config.auto_leave
            && new_applied >= self.pending_conf_index
            && self.state == StateType::Leader
        {
            // An empty ConfChangeV2 (no data at all) means "leave joint"; its
            // payload size is 0, so the uncommitted limit never refuses it.
            // A transfer in progress may refuse it: then it is retried on
            // the next apply.
            let m = Message {
                r#type: MessageType::MsgProp as i32,
                entries: vec![crate::raftpb::Entry {
                    r#type: crate::raftpb::EntryType::EntryConfChangeV2 as i32,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let _ = self.step(m);
        }
    }

    pub(crate) fn applied_snap(&mut self, index: u64) {
        self.raft_log.stable_snap_to(index);
        self.applied_to(index, 0);
    }

    /// The unstable state of an accepted `Ready` is durable (etcd's
    /// MsgStorageAppendResp in synchronous mode).
    pub(crate) fn on_storage_append(&mut self, ack: StorageAppendAck) {
        if ack.term >= self.term || ack.term == 0 {
            if let Some(last) = ack.last {
                self.raft_log.stable_to(last);
            }
        }
        // An entry append acked under an older term may have been replaced
        // in the unstable log since; a snapshot carries committed state and
        // is valid whatever the term.
        if let Some(index) = ack.snapshot_index {
            self.applied_snap(index);
        }
    }

    /// The committed entries of an accepted `Ready` are applied (etcd's
    /// MsgStorageApplyResp in synchronous mode).
    pub(crate) fn on_storage_apply(&mut self, last_index: u64, ents_size: u64, payload: u64) {
        self.applied_to(last_index, ents_size);
        self.reduce_uncommitted_size(payload);
    }

    /// A `MsgStorageAppendResp` of the current term (asynchronous storage
    /// writes): the log up to `(log_term, index)` is durable, unless that
    /// entry was replaced since (then `stable_to` ignores it), and so is the
    /// snapshot it carries.
    fn on_storage_append_resp(&mut self, m: &Message) {
        if m.index != 0 {
            self.raft_log.stable_to(EntryId::new(m.log_term, m.index));
        }
        if let Some(snap) = &m.snapshot {
            let index = snap.metadata.as_ref().map_or(0, |md| md.index);
            self.applied_snap(index);
        }
    }

    /// A `MsgStorageApplyResp` (asynchronous storage writes): the entries it
    /// carries are applied. Entries past the commit index were never handed
    /// out for applying; such a response comes from a broken driver and is
    /// dropped (etcd panics).
    fn on_storage_apply_resp(&mut self, m: &Message) {
        let Some(last) = m.entries.last() else {
            return;
        };
        if last.index > self.raft_log.committed {
            return;
        }
        self.applied_to(last.index, ents_size(&m.entries));
        self.reduce_uncommitted_size(payloads_size(&m.entries));
    }

    /// Sizes of a batch of committed entries: encoded bytes (for the apply
    /// quota) and payload bytes (for the uncommitted quota).
    pub(crate) fn applied_sizes(ents: &[crate::raftpb::Entry]) -> (u64, u64) {
        (ents_size(ents), payloads_size(ents))
    }

    pub(crate) fn reduce_uncommitted_size(&mut self, s: u64) {
        // The estimate may undercount (e.g. across term changes) but never
        // overcount; saturate instead of wrapping.
        self.uncommitted_size = self.uncommitted_size.saturating_sub(s);
    }

    /// Tracks `s` more uncommitted payload bytes, or refuses if that would
    /// exceed the limit. An empty tail accepts any proposal, and an empty
    /// payload is always accepted (the new leader's entry, leaving a joint
    /// configuration).
    pub(crate) fn increase_uncommitted_size(&mut self, s: u64) -> bool {
        if self.uncommitted_size > 0
            && s > 0
            && self.max_uncommitted_size != NO_LIMIT
            && self.uncommitted_size.saturating_add(s) > self.max_uncommitted_size
        {
            return false;
        }
        self.uncommitted_size = self.uncommitted_size.saturating_add(s);
        true
    }
}

/// The type of `m`, or `None` for a value outside the 19 known types.
pub(crate) fn msg_type(m: &Message) -> Option<MessageType> {
    MessageType::try_from(m.r#type).ok()
}

pub(crate) fn local_msg(t: MessageType, from: u64) -> Message {
    Message {
        r#type: t as i32,
        from,
        ..Default::default()
    }
}

pub fn is_empty_hard_state(hs: &HardState) -> bool {
    *hs == HardState::default()
}

pub fn is_empty_snap(s: &Snapshot) -> bool {
    s.metadata.as_ref().is_none_or(|m| m.index == 0)
}
