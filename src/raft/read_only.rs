//! `ReadOnly`: the leader's queue of linearizable read requests waiting for a
//! quorum to confirm its leadership (the `Safe` option of ReadIndex, and
//! the `LeaseBased` one when the lease does not hold).
//!
//! Every request is numbered by its position in the queue; a heartbeat carries
//! the position of the newest request in its context, and a follower's echo of
//! that context acknowledges every request up to it. A request is confirmed
//! once a quorum (the leader included) has acknowledged it, and confirmation
//! is always in queue order. This module owns only that bookkeeping: it never
//! sends messages and never decides what the read index is.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::config::ReadOnlyOption;
use super::quorum::{AckedIndexer, JointConfig};
use crate::raftpb::Message;

/// The answer to a read request: reads that observe the state machine at
/// least up to `index` are linearizable. `request_ctx` is the caller's
/// context, echoed so it can match answers to requests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadState {
    pub index: u64,
    pub request_ctx: Bytes,
}

/// One queued request: the original message (local or forwarded) and the
/// commit index the leader had when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadIndexRequest {
    pub req: Message,
    pub index: u64,
}

/// Read requests awaiting leadership confirmation.
#[derive(Debug, Clone)]
pub struct ReadOnly {
    pub option: ReadOnlyOption,
    /// Per voter, the highest request position it has acknowledged.
    acks: BTreeMap<u64, u64>,
    unconfirmed_reads: Vec<ReadIndexRequest>,
    /// How many requests were confirmed (and removed from the front of
    /// `unconfirmed_reads`) so far; positions are counted from the start.
    confirmed_reads: u64,
}

impl ReadOnly {
    pub fn new(option: ReadOnlyOption) -> ReadOnly {
        ReadOnly {
            option,
            acks: BTreeMap::new(),
            unconfirmed_reads: Vec::new(),
            confirmed_reads: 0,
        }
    }

    /// Queues `req`, which arrived when the commit index was `commit_index`.
    pub fn add_request(&mut self, commit_index: u64, req: Message) {
        self.unconfirmed_reads.push(ReadIndexRequest {
            req,
            index: commit_index,
        });
    }

    /// Records that `from` echoed the heartbeat context `ctx`. A context that
    /// is not a position this module produced (wrong length) is ignored: it
    /// came from the network and proves nothing.
    pub fn recv_ack(&mut self, from: u64, ctx: &[u8]) {
        let Some(pos) = decode_position(ctx) else {
            return;
        };
        let acked = self.acks.entry(from).or_insert(0);
        *acked = (*acked).max(pos);
    }

    /// Confirms and returns, in order, every request that a quorum of `voters`
    /// has acknowledged.
    pub fn maybe_advance(&mut self, voters: &JointConfig) -> Vec<ReadIndexRequest> {
        let confirmed = voters.committed_index(&*self);
        if confirmed <= self.confirmed_reads {
            return Vec::new();
        }
        // An ack beyond the queue can only come from a peer replaying an old
        // context of a previous incarnation of this queue; never confirm
        // more than what is queued.
        let n = ((confirmed - self.confirmed_reads) as usize).min(self.unconfirmed_reads.len());
        self.confirmed_reads += n as u64;
        self.unconfirmed_reads.drain(..n).collect()
    }

    /// The heartbeat context that, once echoed by a quorum, confirms every
    /// request queued so far; empty when nothing is queued.
    pub fn heartbeat_ctx(&self) -> Bytes {
        if self.unconfirmed_reads.is_empty() {
            return Bytes::new();
        }
        let pos = self.confirmed_reads + self.unconfirmed_reads.len() as u64;
        Bytes::copy_from_slice(&pos.to_le_bytes())
    }

    /// Number of requests still waiting for confirmation.
    pub fn pending_read_count(&self) -> usize {
        self.unconfirmed_reads.len()
    }
}

impl AckedIndexer for ReadOnly {
    fn acked_index(&self, voter_id: u64) -> Option<u64> {
        self.acks.get(&voter_id).copied()
    }
}

fn decode_position(ctx: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = ctx.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::quorum::MajorityConfig;

    fn voters(ids: &[u64]) -> JointConfig {
        JointConfig {
            incoming: MajorityConfig::new(ids.iter().copied().collect()),
            outgoing: MajorityConfig::default(),
        }
    }

    fn req(ctx: &'static [u8]) -> Message {
        Message {
            entries: vec![crate::raftpb::Entry {
                data: Bytes::from_static(ctx),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn empty_queue_has_empty_heartbeat_ctx() {
        let ro = ReadOnly::new(ReadOnlyOption::Safe);
        assert!(ro.heartbeat_ctx().is_empty());
    }

    #[test]
    fn reads_are_confirmed_in_order_by_a_quorum() {
        let mut ro = ReadOnly::new(ReadOnlyOption::Safe);
        let cfg = voters(&[1, 2, 3]);
        ro.add_request(10, req(b"a"));
        let ctx1 = ro.heartbeat_ctx();
        ro.recv_ack(1, &ctx1);
        ro.add_request(11, req(b"b"));
        let ctx2 = ro.heartbeat_ctx();
        ro.recv_ack(1, &ctx2);
        assert!(
            ro.maybe_advance(&cfg).is_empty(),
            "leader alone is no quorum"
        );

        // Peer 2 echoes only the first context: only the first read is
        // confirmed.
        ro.recv_ack(2, &ctx1);
        let got = ro.maybe_advance(&cfg);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].index, 10);
        assert_eq!(ro.pending_read_count(), 1);

        // A stale echo changes nothing; the newer one confirms the rest.
        ro.recv_ack(3, &ctx1);
        assert!(ro.maybe_advance(&cfg).is_empty());
        ro.recv_ack(3, &ctx2);
        let got = ro.maybe_advance(&cfg);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].index, 11);
        assert_eq!(ro.pending_read_count(), 0);
    }

    #[test]
    fn malformed_or_oversized_acks_do_not_panic() {
        let mut ro = ReadOnly::new(ReadOnlyOption::Safe);
        let cfg = voters(&[1, 2, 3]);
        ro.recv_ack(2, b"abc");
        ro.add_request(5, req(b"x"));
        ro.recv_ack(1, &u64::MAX.to_le_bytes());
        ro.recv_ack(2, &u64::MAX.to_le_bytes());
        let got = ro.maybe_advance(&cfg);
        assert_eq!(got.len(), 1);
        assert!(ro.maybe_advance(&cfg).is_empty());
    }
}
