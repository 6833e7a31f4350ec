//! [`NetStats`]: the peer network's counters, for tests and the metrics
//! endpoint to come. One set per `PeerNet` (one shard); plain integers
//! behind a `RefCell` on the shard's thread, no atomics.

use std::cell::RefCell;
use std::rc::Rc;

use super::Error;

/// Counters of one shard's peer network since it started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    // Outbound.
    /// Outbound connections established (our handshake answered and
    /// checked).
    pub connects: u64,
    /// Dial or handshake attempts that failed (refused, timed out, closed,
    /// a wrong reply).
    pub connect_failures: u64,
    /// Dial attempts that failed in the shared-secret exchange (the
    /// acceptor offers no exchange or one we cannot run, refused our
    /// proof, or sent a wrong one); counted in `connect_failures` too.
    pub auth_failures: u64,
    /// Established outbound connections lost (a write failed or the peer
    /// closed it).
    pub connections_lost: u64,
    /// Frames written completely.
    pub frames_sent: u64,
    /// (group, message) pairs in those frames.
    pub messages_sent: u64,
    /// Bytes of those frames, headers included.
    pub bytes_sent: u64,
    /// Vectored write calls (`sendmsg`) that wrote bytes: with frames
    /// batched per turn, about one per flush and peer.
    pub writes: u64,
    /// Heartbeats (and responses) sent inside batch records rather than
    /// as messages of their own (counted in `messages_sent` too).
    pub heartbeats_coalesced: u64,
    /// Sends refused because the queue toward the peer was full.
    pub send_queue_full: u64,
    /// Messages dropped because their peer was not connected or its
    /// connection failed (reported through `take_unreachable`).
    pub dropped_unreachable: u64,

    // Inbound.
    /// Inbound connections whose handshake was accepted.
    pub accepted: u64,
    /// Inbound connections that ended (closed by the peer, refused frame,
    /// shutdown).
    pub inbound_closed: u64,
    /// Frames received and decoded.
    pub frames_received: u64,
    /// (group, message) pairs decoded from them (dropped ones included).
    pub messages_received: u64,
    /// Bytes read from peer sockets, handshakes included.
    pub bytes_received: u64,
    /// Handshakes refused: another cluster id.
    pub refused_foreign_cluster: u64,
    /// Handshakes refused: the sender is not a member of the cluster.
    pub refused_unknown_member: u64,
    /// Handshakes refused: addressed to another member.
    pub refused_wrong_member: u64,
    /// Handshakes refused: addressed to another shard, or naming a shard
    /// the member does not have.
    pub refused_wrong_shard: u64,
    /// Handshakes refused: another protocol version.
    pub refused_version: u64,
    /// Handshakes refused: not a handshake (bad magic, crc, reserved
    /// field, or the connection closed before 44 bytes).
    pub refused_bad_handshake: u64,
    /// Handshakes (the shared-secret exchange included) that did not
    /// complete in time.
    pub refused_handshake_timeout: u64,
    /// Handshakes refused: this member requires the shared secret and the
    /// peer offered none.
    pub refused_auth_missing: u64,
    /// Handshakes refused: the peer offered the shared-secret exchange
    /// and this member has no secret.
    pub refused_auth_unexpected: u64,
    /// Handshakes refused: the dialler's proof was wrong (another
    /// secret, a replayed or reflected proof), or it closed before
    /// sending it.
    pub refused_auth_bad_proof: u64,
    /// Connections closed at once: too many inbound connections open.
    pub refused_too_many_connections: u64,
    /// Connections closed: a frame's crc did not match.
    pub closed_bad_crc: u64,
    /// Connections closed: a length or count above its limit.
    pub closed_oversized: u64,
    /// Connections closed: a frame the decoder refused (malformed,
    /// truncated, trailing bytes, local-only messages).
    pub closed_malformed: u64,
    /// Snapshot chunk records received, and snapshots assembled whole.
    pub snapshot_chunks_received: u64,
    pub snapshots_assembled: u64,
    /// MsgSnaps without data whose chunks did not all arrive: dropped.
    pub dropped_snapshot_incomplete: u64,
    /// Completed snapshots no MsgSnap claimed within `CLAIM_FRAMES`
    /// frames (or before the next snapshot started): dropped.
    pub dropped_snapshot_unclaimed: u64,
    /// Snapshot chunk records sent.
    pub snapshot_chunks_sent: u64,
    /// Messages dropped: addressed (`to`) to another member.
    pub dropped_wrong_to: u64,
    /// Messages dropped: their group does not live on this shard.
    pub dropped_wrong_shard: u64,
    /// Messages dropped: `from` is not the member that opened the
    /// connection.
    pub dropped_wrong_from: u64,
}

/// The shared, mutable counters.
#[derive(Clone, Default)]
pub(crate) struct Stats(Rc<RefCell<NetStats>>);

impl Stats {
    pub(crate) fn get(&self) -> NetStats {
        *self.0.borrow()
    }

    /// Applies `f` to the counters.
    pub(crate) fn bump(&self, f: impl FnOnce(&mut NetStats)) {
        f(&mut self.0.borrow_mut());
    }

    /// Counts a refused handshake under its reason.
    pub(crate) fn refused(&self, e: &Error) {
        self.bump(|s| match e {
            Error::ForeignCluster { .. } => s.refused_foreign_cluster += 1,
            Error::UnknownMember { .. } => s.refused_unknown_member += 1,
            Error::WrongMember { .. } => s.refused_wrong_member += 1,
            Error::UnknownShard { .. } | Error::WrongShard { .. } => s.refused_wrong_shard += 1,
            Error::VersionMismatch { .. } => s.refused_version += 1,
            Error::AuthMissing => s.refused_auth_missing += 1,
            Error::AuthUnexpected => s.refused_auth_unexpected += 1,
            Error::BadProof { .. } | Error::AuthRefused => s.refused_auth_bad_proof += 1,
            _ => s.refused_bad_handshake += 1,
        });
    }

    /// Counts a connection closed for a refused frame under its reason.
    pub(crate) fn frame_refused(&self, e: &Error) {
        self.bump(|s| match e {
            Error::CrcMismatch { .. } => s.closed_bad_crc += 1,
            Error::Limit { .. } => s.closed_oversized += 1,
            _ => s.closed_malformed += 1,
        });
    }
}
