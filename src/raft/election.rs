//! Elections in `Raft`: starting a (pre-)election, counting votes, and
//! answering vote requests (with PreVote's "would you vote for me" round
//! and the up-to-date log check).
//!
//! The term handling that precedes a vote (leases, stepping down on a
//! higher term) is in `Raft::step`; what a candidate does with the answers
//! is in `step_candidate`. This file never changes the configuration and
//! never touches the log beyond reading its last entry.

use bytes::Bytes;

use super::quorum::VoteResult;
use super::raft::{CAMPAIGN_TRANSFER, CampaignType, NONE, Raft, StateType, msg_type};
use super::storage::Storage;
use super::types::EntryId;
use crate::raftpb::{Message, MessageType, vote_resp_msg_type};

impl<S: Storage> Raft<S> {
    /// Starts an election of kind `t` unless this node is leader already,
    /// cannot be leader, or has a committed conf change to apply first.
    pub(crate) fn hup(&mut self, t: CampaignType) {
        if self.state == StateType::Leader {
            return;
        }
        if !self.promotable() {
            return;
        }
        if self.has_unapplied_conf_changes() {
            return;
        }
        if t != CampaignType::Transfer && self.lease.promised() {
            // A vote for ourselves would break the promise made to the
            // leader we heard from (lease-based reads). An election timeout
            // started by a tick never gets here: it counts from the same
            // moment.
            return;
        }
        self.campaign(t);
    }

    /// Starts a (pre-)election: votes for itself (counted once the vote is
    /// durable) and asks every other voter.
    pub(crate) fn campaign(&mut self, t: CampaignType) {
        let (term, vote_msg) = if t == CampaignType::PreElection {
            self.become_pre_candidate();
            // Pre-votes are asked for the term we would campaign at.
            (self.term.saturating_add(1), MessageType::MsgPreVote)
        } else {
            self.become_candidate();
            (self.term, MessageType::MsgVote)
        };
        let last = self.raft_log.last_entry_id();
        let ids = self.trk.config.voters.ids();
        for id in ids {
            if id == self.id {
                self.send(Message {
                    r#type: vote_resp_msg_type(vote_msg) as i32,
                    to: id,
                    term,
                    ..Default::default()
                });
                continue;
            }
            let context = if t == CampaignType::Transfer {
                Bytes::from_static(CAMPAIGN_TRANSFER)
            } else {
                Bytes::new()
            };
            self.send(Message {
                r#type: vote_msg as i32,
                to: id,
                term,
                index: last.index,
                log_term: last.term,
                context,
                ..Default::default()
            });
        }
    }

    pub(crate) fn poll(&mut self, id: u64, granted: bool) -> (usize, usize, VoteResult) {
        self.trk.record_vote(id, granted);
        self.trk.tally_votes()
    }

    pub(crate) fn handle_vote_request(&mut self, m: Message) {
        if m.term == 0 {
            // Vote requests always carry the term campaigned for; one
            // without is malformed and answering it would be meaningless.
            return;
        }
        let t = msg_type(&m).unwrap_or(MessageType::MsgVote);
        // We can vote for a repeat of our vote, when we have neither voted
        // nor heard of a leader in this term, or for a pre-vote of a later
        // term...
        let can_vote = self.vote == m.from
            || (self.vote == NONE && self.lead == NONE)
            || (t == MessageType::MsgPreVote && m.term > self.term);
        // Under lease-based reads, not while the promise to a leader holds,
        // even if our term moved on without one (a stale answer of a higher
        // term can do that); a transfer's election is let through, its
        // leader gave its lease up.
        let can_vote =
            can_vote && (!self.lease.promised() || m.context.as_ref() == CAMPAIGN_TRANSFER);
        // ...if the candidate's log is at least as up to date as ours.
        // Learners vote too: a learner may have been promoted without
        // knowing it yet, and the candidate's request says so.
        let cand = EntryId::new(m.log_term, m.index);
        #[cfg(corelog_sim_bugs)]
        let up_to_date = self.bugs.vote_ignores_log || self.raft_log.is_up_to_date(cand);
        #[cfg(not(corelog_sim_bugs))]
        let up_to_date = self.raft_log.is_up_to_date(cand);
        if can_vote && up_to_date {
            // Answer with the message's term, not ours: for a pre-vote ours
            // may be older, and the pre-candidate would drop the answer.
            self.send(Message {
                r#type: vote_resp_msg_type(t) as i32,
                to: m.from,
                term: m.term,
                ..Default::default()
            });
            if t == MessageType::MsgVote {
                // Only real votes are recorded.
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            self.send(Message {
                r#type: vote_resp_msg_type(t) as i32,
                to: m.from,
                term: self.term,
                reject: true,
                ..Default::default()
            });
        }
    }
}
