//! The non-leader roles of `Raft`: `step_candidate` (candidates and
//! pre-candidates counting votes) and `step_follower` (forwarding, appends,
//! heartbeats, snapshots, reads), with the follower's handling of MsgApp,
//! MsgHeartbeat and MsgSnap.
//!
//! Everything here reacts to a leader's messages, which come from the
//! network: malformed appends, out-of-range commit indexes and snapshots that
//! do not include this node are dropped, never a panic.

use super::confchange;
use super::errors::{Error, Result};
use super::quorum::VoteResult;
use super::raft::{CampaignType, MAX_INDEX, NONE, Raft, StateType, msg_type};
use super::read_only::ReadState;
use super::storage::Storage;
use super::tracker::ProgressTracker;
use super::types::{EntryId, LogSlice};
use crate::raftpb::{Message, MessageType, Snapshot};

impl<S: Storage> Raft<S> {
    /// The step function of candidates and pre-candidates.
    pub(crate) fn step_candidate(&mut self, m: Message) -> Result<()> {
        let Some(t) = msg_type(&m) else {
            return Ok(());
        };
        // Only responses to our own kind of candidacy count: a candidate may
        // still receive pre-vote answers of this term.
        let my_vote_resp = if self.state == StateType::PreCandidate {
            MessageType::MsgPreVoteResp
        } else {
            MessageType::MsgVoteResp
        };
        match t {
            MessageType::MsgProp => return Err(Error::ProposalDropped),
            // A leader of our term exists (m.term == self.term here).
            MessageType::MsgApp => {
                self.become_follower(m.term, m.from);
                self.handle_append_entries(m);
            }
            MessageType::MsgHeartbeat => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(m);
            }
            MessageType::MsgSnap => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
            }
            t if t == my_vote_resp => {
                let (_, _, res) = self.poll(m.from, !m.reject);
                match res {
                    VoteResult::Won => {
                        if self.state == StateType::PreCandidate {
                            self.campaign(CampaignType::Election);
                        } else if self.async_storage_writes
                            && self.trk.votes.get(&self.id) != Some(&true)
                        {
                            // Our MsgVotes left before our term and vote
                            // were durable (etcd's async mode). Leading now
                            // and crashing before that write completes would
                            // let us restart at the older term, campaign for
                            // this one again and win it again from the same
                            // voters: one term led twice, with two different
                            // logs. Our own vote arrives once the write is
                            // durable, and wins then. (etcd wins at once.)
                        } else {
                            self.become_leader();
                            self.bcast_append();
                        }
                    }
                    VoteResult::Lost => {
                        // A pre-vote answer carries our future term; stay at
                        // ours.
                        let term = self.term;
                        self.become_follower(term, NONE);
                    }
                    VoteResult::Pending => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The follower's step function.
    pub(crate) fn step_follower(&mut self, mut m: Message) -> Result<()> {
        let Some(t) = msg_type(&m) else {
            return Ok(());
        };
        match t {
            MessageType::MsgProp => {
                if self.lead == NONE || self.disable_proposal_forwarding {
                    return Err(Error::ProposalDropped);
                }
                m.to = self.lead;
                self.send(m);
            }
            MessageType::MsgApp => {
                self.election_elapsed = 0;
                self.lead = m.from;
                self.handle_append_entries(m);
            }
            MessageType::MsgHeartbeat => {
                self.election_elapsed = 0;
                self.lead = m.from;
                self.handle_heartbeat(m);
            }
            MessageType::MsgSnap => {
                self.election_elapsed = 0;
                self.lead = m.from;
                self.handle_snapshot(m);
            }
            MessageType::MsgTransferLeader => {
                if self.lead == NONE {
                    return Ok(());
                }
                m.to = self.lead;
                self.send(m);
            }
            MessageType::MsgTimeoutNow => {
                // A transfer needs no pre-vote: the leader itself asked.
                self.hup(CampaignType::Transfer);
            }
            MessageType::MsgReadIndex => {
                if self.lead == NONE {
                    return Ok(());
                }
                m.to = self.lead;
                self.send(m);
            }
            MessageType::MsgReadIndexResp => {
                if m.entries.len() != 1 {
                    return Ok(());
                }
                let request_ctx = m.entries[0].data.clone();
                self.read_states.push(ReadState {
                    index: m.index,
                    request_ctx,
                });
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn handle_append_entries(&mut self, m: Message) {
        self.lease.heard_from_leader();
        let from = m.from;
        let committed = self.raft_log.committed;
        if m.index < committed {
            // Everything up to our commit index matches any leader's log.
            self.send(Message {
                r#type: MessageType::MsgAppResp as i32,
                to: from,
                index: committed,
                ..Default::default()
            });
            return;
        }
        let (index, log_term, commit) = (m.index, m.log_term, m.commit);
        let a = LogSlice::new(m.term, EntryId::new(log_term, index), m.entries);
        if !follows_contiguously(&a) {
            // Entries that do not follow `prev` index by index cannot be a
            // leader's log; appending them would corrupt ours. Drop it.
            return;
        }
        if let Some(last_new) = self.raft_log.maybe_append(a, commit) {
            #[cfg(corelog_sim_bugs)]
            if self.bugs.follower_commit_to_last_index {
                let last = self.raft_log.last_index();
                self.raft_log.commit_to(commit.min(last));
            }
            self.send(Message {
                r#type: MessageType::MsgAppResp as i32,
                to: from,
                index: last_new,
                ..Default::default()
            });
            return;
        }
        // Our log does not match at `index`. Hint where it may: the largest
        // index at or below `index` (and our last index) whose term is at
        // most `log_term`, so the leader skips our whole divergent tail of
        // higher terms at once.
        let hint_index = index.min(self.raft_log.last_index());
        let (hint_index, hint_term) = self.raft_log.find_conflict_by_term(hint_index, log_term);
        self.send(Message {
            r#type: MessageType::MsgAppResp as i32,
            to: from,
            index,
            reject: true,
            reject_hint: hint_index,
            log_term: hint_term,
            ..Default::default()
        });
    }

    pub(crate) fn handle_heartbeat(&mut self, m: Message) {
        self.lease.heard_from_leader();
        // A leader caps the commit index at our match, so it is within our
        // log; if it is not, the claim cannot be acted upon safely.
        if m.commit <= self.raft_log.last_index() {
            self.raft_log.commit_to(m.commit);
        }
        self.send(Message {
            r#type: MessageType::MsgHeartbeatResp as i32,
            to: m.from,
            context: m.context,
            ..Default::default()
        });
    }

    pub(crate) fn handle_snapshot(&mut self, m: Message) {
        self.lease.heard_from_leader();
        let from = m.from;
        let s = m.snapshot.map(|b| *b).unwrap_or_default();
        let restored = self.restore(s);
        let index = if restored {
            self.raft_log.last_index()
        } else {
            self.raft_log.committed
        };
        self.send(Message {
            r#type: MessageType::MsgAppResp as i32,
            to: from,
            index,
            ..Default::default()
        });
    }

    /// Restores the log and configuration from a snapshot. Returns false if
    /// the snapshot was ignored: older than the commit index, already
    /// covered by the log (then the commit index fast-forwards), not
    /// including this node, or with a configuration that does not restore.
    pub fn restore(&mut self, s: Snapshot) -> bool {
        let meta = s.metadata.clone().unwrap_or_default();
        if meta.index <= self.raft_log.committed {
            return false;
        }
        if meta.index > MAX_INDEX {
            return false;
        }
        if self.state != StateType::Follower {
            // Defense in depth: only followers restore. A leader that got
            // here must not stay leader at this term.
            let term = self.term.saturating_add(1);
            self.become_follower(term, NONE);
            return false;
        }

        let cs = meta.conf_state.clone().unwrap_or_default();
        // Lots of code assumes this node is in its own tracker.
        let found = cs
            .voters
            .iter()
            .chain(&cs.learners)
            .chain(&cs.voters_outgoing)
            .any(|&id| id == self.id);
        if !found {
            return false;
        }

        let id = EntryId::new(meta.term, meta.index);
        #[cfg(corelog_sim_bugs)]
        let have = self.raft_log.match_term(id)
            || (self.bugs.restore_keeps_conflicting_log && self.raft_log.term(meta.index).is_ok());
        #[cfg(not(corelog_sim_bugs))]
        let have = self.raft_log.match_term(id);
        if have {
            // We already have the snapshot's last entry: just commit up to
            // it.
            self.raft_log.commit_to(meta.index);
            return false;
        }

        // Check the configuration before touching the log, so a snapshot
        // with a broken ConfState leaves the node as it was.
        let mut trk = ProgressTracker::new(self.trk.max_inflight, self.trk.max_inflight_bytes);
        let Ok((cfg, prs)) = confchange::restore(&trk, meta.index, &cs) else {
            return false;
        };
        trk.config = cfg;
        if cs.equivalent(&trk.conf_state()).is_err() {
            // A ConfState that does not survive the round trip is malformed
            // (etcd panics on it after the fact).
            return false;
        }
        let cfg = std::mem::take(&mut trk.config);

        self.raft_log.restore(s);
        self.trk = trk;
        let new_cs = self.switch_to_config(cfg, prs);
        debug_assert!(cs.equivalent(&new_cs).is_ok());
        true
    }
}

/// The entries of `a` follow `a.prev` at consecutive indexes, within
/// `MAX_INDEX`: anything else cannot be spliced into a log. (Terms are not checked: etcd accepts and
/// answers appends whatever their terms, and so do we.)
fn follows_contiguously(a: &LogSlice) -> bool {
    let mut prev = a.prev.index;
    for e in &a.entries {
        if prev.checked_add(1) != Some(e.index) || e.index > MAX_INDEX {
            return false;
        }
        prev = e.index;
    }
    true
}
