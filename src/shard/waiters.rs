//! The requests of one group waiting for the log: proposals until their
//! entry is applied, reads until their ReadIndex is answered. Pure
//! bookkeeping (no clock: deadlines are in the shard's ticks), tested on
//! its own.
//!
//! A proposal is known by the (index, term) its leader gave its entry.
//! Applying the entry at index `i` of term `t` settles it: a proposal at
//! `i` succeeds if its term is `t` and was dropped otherwise (another
//! leader's entry took the slot). And since the terms of a committed log
//! never decrease, every proposal of a term below `t` still waiting for an
//! index past `i` can never commit either: it is dropped at once rather
//! than left to time out. A new proposal at an index some earlier ones
//! wait for means this leader's log no longer holds them (a new term
//! truncated it): those are dropped too. So the queue stays sorted by
//! index, term and deadline, and each event looks only at its ends.

use std::collections::VecDeque;

use super::oneshot::Sender;
use crate::log::ApplyOutcome;
use crate::node::{Applied, ProposeError};

/// What a read's task is told: the index to wait for.
pub type ProposeResult = Result<u64, ProposeError>;

/// What a proposal's task is told: its applied entry's index and outcome.
pub type AppliedResult = Result<Applied, ProposeError>;

struct Proposal {
    index: u64,
    term: u64,
    bytes: u64,
    deadline: u64,
    /// A configuration change: it succeeds only if its slot holds a
    /// configuration change that was applied (a leader replaces a change
    /// it may not take yet with an empty entry of the same index and term).
    conf: bool,
    tx: Sender<AppliedResult>,
}

/// The proposals of one group waiting for their entry to apply.
#[derive(Default)]
pub struct Proposals {
    queue: VecDeque<Proposal>,
    bytes: u64,
}

impl Proposals {
    /// Proposals waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Payload bytes of the proposals waiting.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// A proposal whose entry the leader put at `index` in `term`.
    #[cfg(test)]
    pub fn push(
        &mut self,
        index: u64,
        term: u64,
        bytes: u64,
        deadline: u64,
        tx: Sender<AppliedResult>,
    ) {
        self.push_kind(index, term, bytes, deadline, tx, false);
    }

    /// As `push`, for a configuration change when `conf`.
    pub fn push_kind(
        &mut self,
        index: u64,
        term: u64,
        bytes: u64,
        deadline: u64,
        tx: Sender<AppliedResult>,
        conf: bool,
    ) {
        while let Some(back) = self.queue.back() {
            if back.index < index {
                break;
            }
            // The leader's log was cut below it (this is a later term).
            self.pop_back(Err(ProposeError::Dropped));
        }
        self.bytes += bytes;
        self.queue.push_back(Proposal {
            index,
            term,
            bytes,
            deadline,
            conf,
            tx,
        });
    }

    /// The entry at `index` of `term` was applied, with `outcome` (what
    /// the state machine said of it, if anything).
    #[cfg(test)]
    pub fn applied(&mut self, index: u64, term: u64, outcome: Option<&ApplyOutcome>) {
        self.applied_entry(index, term, outcome, false);
    }

    /// As `applied`; `conf_applied`: the entry is a configuration change
    /// that took effect. A configuration change proposal whose slot holds
    /// anything else was dropped, not done.
    pub fn applied_entry(
        &mut self,
        index: u64,
        term: u64,
        outcome: Option<&ApplyOutcome>,
        conf_applied: bool,
    ) {
        while let Some(front) = self.queue.front() {
            if front.index > index && front.term >= term {
                break;
            }
            let r = if front.index == index && front.term == term && (!front.conf || conf_applied) {
                Ok(Applied {
                    index,
                    outcome: outcome.cloned(),
                })
            } else {
                Err(ProposeError::Dropped)
            };
            self.pop_front(r);
        }
    }

    /// Fails the proposals whose deadline has come (`now` in ticks).
    pub fn expire(&mut self, now: u64) {
        while self.queue.front().is_some_and(|p| p.deadline <= now) {
            self.pop_front(Err(ProposeError::Timeout));
        }
    }

    /// Fails every proposal with `e`.
    pub fn fail_all(&mut self, e: &ProposeError) {
        while !self.queue.is_empty() {
            self.pop_front(Err(e.clone()));
        }
    }

    fn pop_front(&mut self, r: AppliedResult) {
        if let Some(p) = self.queue.pop_front() {
            self.bytes -= p.bytes;
            p.tx.send(r);
        }
    }

    fn pop_back(&mut self, r: AppliedResult) {
        if let Some(p) = self.queue.pop_back() {
            self.bytes -= p.bytes;
            p.tx.send(r);
        }
    }
}

struct Read {
    ctx: u64,
    deadline: u64,
    tx: Sender<ProposeResult>,
}

/// The ReadIndex requests of one group, known by an 8-byte context that
/// counts up; answers come back in the order of the requests, and an
/// answer for a later request also serves every earlier one still waiting
/// (its index is at least the commit index any of them was asked at).
///
/// The count starts at a random value of each life of the process
/// (`starting_at`, from the OS), and only an answer naming a context
/// this table issued and still waits for is taken: Raft does not tell a
/// MsgReadIndexResp meant for a previous life (sent before a fast
/// restart, delivered after) from one of this life, and if contexts
/// counted from 1 in every life, such an answer would serve new reads
/// with an index from before the restart.
pub struct Reads {
    queue: VecDeque<Read>,
    next_ctx: u64,
}

/// Contexts stay below 2^63: counting up from any start never wraps in
/// practice, so the order of contexts is the order of requests.
const CTX_MASK: u64 = u64::MAX >> 1;

impl Reads {
    /// A table whose first context follows `start` (a random value from
    /// the OS, `seed::os_random_u64`, in production).
    pub fn starting_at(start: u64) -> Reads {
        Reads {
            queue: VecDeque::new(),
            next_ctx: start & CTX_MASK,
        }
    }

    /// Reads waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Registers a read; returns the context to hand to Raft.
    pub fn push(&mut self, deadline: u64, tx: Sender<ProposeResult>) -> u64 {
        self.next_ctx += 1;
        let ctx = self.next_ctx;
        self.queue.push_back(Read { ctx, deadline, tx });
        ctx
    }

    /// Raft answered the read of `ctx` with `index`: it and every earlier
    /// read still waiting are served. A context above every read waiting
    /// was not issued by this table (this life): it serves none.
    pub fn answered(&mut self, ctx: u64, index: u64) {
        if self.queue.back().is_none_or(|r| ctx > r.ctx) {
            return;
        }
        while self.queue.front().is_some_and(|r| r.ctx <= ctx) {
            if let Some(r) = self.queue.pop_front() {
                r.tx.send(Ok(index));
            }
        }
    }

    pub fn expire(&mut self, now: u64) {
        while self.queue.front().is_some_and(|r| r.deadline <= now) {
            if let Some(r) = self.queue.pop_front() {
                r.tx.send(Err(ProposeError::Timeout));
            }
        }
    }

    pub fn fail_all(&mut self, e: &ProposeError) {
        for r in self.queue.drain(..) {
            r.tx.send(Err(e.clone()));
        }
    }
}

/// The 8 bytes a read's context travels as.
pub fn encode_ctx(ctx: u64) -> [u8; 8] {
    ctx.to_le_bytes()
}

/// The context of a ReadState, if it is one of ours (8 bytes).
pub fn decode_ctx(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use super::super::oneshot::{Receiver, channel};
    use super::*;

    fn answer<T>(rx: &mut Receiver<T>) -> Option<T> {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(rx).poll(&mut cx) {
            Poll::Ready(v) => Some(v.expect("answered, not dropped")),
            Poll::Pending => None,
        }
    }

    /// A proposal's answer as the index it was applied at.
    fn outcome(rx: &mut Receiver<AppliedResult>) -> Option<ProposeResult> {
        answer(rx).map(|r| r.map(|a| a.index))
    }

    fn propose(p: &mut Proposals, index: u64, term: u64, deadline: u64) -> Receiver<AppliedResult> {
        let (tx, rx) = channel();
        p.push(index, term, 10, deadline, tx);
        rx
    }

    #[test]
    fn an_applied_entry_of_the_proposals_term_answers_its_index() {
        let mut p = Proposals::default();
        let mut a = propose(&mut p, 5, 2, 100);
        let mut b = propose(&mut p, 6, 2, 100);
        assert_eq!(p.bytes(), 20);
        p.applied(4, 2, None);
        assert_eq!(outcome(&mut a), None);
        p.applied(5, 2, None);
        assert_eq!(outcome(&mut a), Some(Ok(5)));
        assert_eq!(outcome(&mut b), None);
        assert_eq!((p.len(), p.bytes()), (1, 10));
        p.applied(6, 2, None);
        assert_eq!(outcome(&mut b), Some(Ok(6)));
        assert_eq!(p.len(), 0);
        assert_eq!(p.bytes(), 0);
    }

    #[test]
    fn an_entry_of_another_term_at_the_index_drops_the_proposal_and_those_after_of_older_terms() {
        let mut p = Proposals::default();
        let mut a = propose(&mut p, 5, 2, 100);
        let mut b = propose(&mut p, 6, 2, 100);
        let mut c = propose(&mut p, 9, 2, 100);
        // Another leader's entry of term 3 took index 5: nothing of term 2
        // can commit after it.
        p.applied(5, 3, None);
        assert_eq!(outcome(&mut a), Some(Err(ProposeError::Dropped)));
        assert_eq!(outcome(&mut b), Some(Err(ProposeError::Dropped)));
        assert_eq!(outcome(&mut c), Some(Err(ProposeError::Dropped)));
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn a_proposal_of_a_later_term_at_an_earlier_index_drops_the_overwritten_ones() {
        let mut p = Proposals::default();
        let mut a = propose(&mut p, 5, 2, 100);
        let mut b = propose(&mut p, 6, 2, 100);
        // Leader again at term 4, its log cut back to 4 (entry 5 is its
        // empty entry): the new proposal lands at 6.
        let mut c = propose(&mut p, 6, 4, 100);
        assert_eq!(outcome(&mut b), Some(Err(ProposeError::Dropped)));
        assert_eq!(outcome(&mut a), None, "index 5 may still be term 2's");
        p.applied(5, 4, None);
        assert_eq!(outcome(&mut a), Some(Err(ProposeError::Dropped)));
        assert_eq!(outcome(&mut c), None);
        p.applied(6, 4, None);
        assert_eq!(outcome(&mut c), Some(Ok(6)));
    }

    #[test]
    fn deadlines_time_proposals_and_reads_out_and_fail_all_answers_every_one() {
        let mut p = Proposals::default();
        let mut a = propose(&mut p, 1, 1, 10);
        let mut b = propose(&mut p, 2, 1, 20);
        p.expire(9);
        assert_eq!(outcome(&mut a), None);
        p.expire(10);
        assert_eq!(outcome(&mut a), Some(Err(ProposeError::Timeout)));
        assert_eq!(outcome(&mut b), None);
        p.fail_all(&ProposeError::ShuttingDown);
        assert_eq!(outcome(&mut b), Some(Err(ProposeError::ShuttingDown)));

        let mut r = Reads::starting_at(0);
        let (tx, mut x) = channel();
        r.push(5, tx);
        r.expire(5);
        assert_eq!(answer(&mut x), Some(Err(ProposeError::Timeout)));
    }

    #[test]
    fn a_read_answer_serves_every_earlier_read() {
        let mut r = Reads::starting_at(0);
        let (t1, mut x1) = channel();
        let (t2, mut x2) = channel();
        let (t3, mut x3) = channel();
        let c1 = r.push(100, t1);
        let c2 = r.push(100, t2);
        let _c3 = r.push(100, t3);
        assert!(c1 < c2);
        r.answered(c2, 42);
        assert_eq!(answer(&mut x1), Some(Ok(42)));
        assert_eq!(answer(&mut x2), Some(Ok(42)));
        assert_eq!(answer(&mut x3), None);
        assert_eq!(r.len(), 1);
        assert_eq!(decode_ctx(&encode_ctx(c2)), Some(c2));
        assert_eq!(decode_ctx(b"short"), None);
    }

    /// Issue 7: a ReadIndex answer meant for a previous life of the
    /// process (sent before a fast restart, delivered after) carries a
    /// context this table never issued; it must answer none of the reads
    /// waiting here (it would hand them an index from before the restart).
    #[test]
    fn an_answer_for_a_context_never_issued_here_answers_no_read() {
        let mut r = Reads::starting_at(0);
        let (t1, mut x1) = channel();
        let c1 = r.push(100, t1);
        r.answered(c1 + 1_000_000, 7);
        assert_eq!(answer(&mut x1), None, "a foreign context answered a read");
        assert_eq!(r.len(), 1);
        r.answered(c1, 42);
        assert_eq!(answer(&mut x1), Some(Ok(42)));
    }

    /// Two tables (two lives of a group) start their contexts at random
    /// values from the OS, far apart: one's contexts are never the
    /// other's.
    #[test]
    fn two_read_tables_start_their_contexts_apart() {
        let start = || crate::shard::seed::os_random_u64().unwrap();
        let (mut a, mut b) = (Reads::starting_at(start()), Reads::starting_at(start()));
        let (ta, _xa) = channel();
        let (tb, _xb) = channel();
        let (ca, cb) = (a.push(100, ta), b.push(100, tb));
        assert!(
            ca.abs_diff(cb) > 1 << 32,
            "contexts {ca} and {cb} of two lives are close"
        );
        assert!(ca <= CTX_MASK && cb <= CTX_MASK);
        // Near the top of the range, contexts still count up.
        let mut top = Reads::starting_at(u64::MAX);
        let (t1, _x1) = channel();
        let (t2, _x2) = channel();
        let (c1, c2) = (top.push(100, t1), top.push(100, t2));
        assert!(c1 < c2, "{c1} {c2}");
    }

    #[test]
    fn a_conf_change_whose_slot_holds_no_applied_change_is_dropped_not_done() {
        let mut p = Proposals::default();
        let (tx, mut a) = channel();
        p.push_kind(5, 2, 10, 100, tx, true);
        let (tx, mut b) = channel();
        p.push_kind(6, 2, 10, 100, tx, true);
        // The leader put an empty entry at 5 in term 2 instead.
        p.applied_entry(5, 2, None, false);
        assert_eq!(answer(&mut a), Some(Err(ProposeError::Dropped)));
        p.applied_entry(6, 2, None, true);
        assert_eq!(
            answer(&mut b),
            Some(Ok(Applied {
                index: 6,
                outcome: None
            }))
        );
    }

    #[test]
    fn the_state_machines_outcome_reaches_only_the_proposer_of_that_entry() {
        let mut p = Proposals::default();
        let mut a = propose(&mut p, 5, 2, 100);
        let mut b = propose(&mut p, 6, 3, 100);
        let appended = ApplyOutcome::Appended {
            base_offset: 7,
            count: 2,
        };
        // Index 5 applied in term 3: `a` lost its slot, and the outcome
        // of another leader's entry must not be handed to it.
        p.applied(5, 3, Some(&appended));
        assert_eq!(answer(&mut a), Some(Err(ProposeError::Dropped)));
        p.applied(6, 3, Some(&appended));
        assert_eq!(
            answer(&mut b),
            Some(Ok(Applied {
                index: 6,
                outcome: Some(appended)
            }))
        );
    }
}
