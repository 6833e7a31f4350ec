//! `Lease`: the node's own clock (a count of its ticks) and both sides of
//! lease-based reads (`ReadOnlyOption::LeaseBased`).
//!
//! The follower's side is a promise: once it has heard from a leader (an
//! append, a heartbeat or a snapshot of the leader's term), it grants no
//! vote or pre-vote and starts no election of its own until it has counted
//! a whole election timeout of its own ticks since, whatever happens to its
//! term meanwhile. The only exception is the election of a leadership
//! transfer, which the leader starts by giving its lease up. A node that
//! restarts with a term (it may have acknowledged a leader just before it
//! stopped) keeps the promise for an election timeout after it starts.
//!
//! The leader's side: each heartbeat carries the leader's tick at sending
//! in its context (followers echo contexts), and the leader keeps, per
//! voter, the newest such tick it got back in this leadership. If a quorum
//! (the leader counting itself as acknowledging now) acknowledged a
//! heartbeat sent at tick `s`, every member of that quorum heard from the
//! leader after `s` and promised to vote for no one else for an election
//! timeout of its own ticks. With clocks whose counts differ by at most
//! `max_clock_drift_ticks` over any span in which one of them counts an
//! election timeout, no other leader can be elected before the leader's
//! clock reads `s + election_tick - max_clock_drift_ticks`: the lease holds
//! while the clock is below that. A leader that sends MsgTimeoutNow gives
//! its lease up for the rest of its term (the transferee's election goes
//! through the followers' promises), and a new leader has no lease until a
//! quorum acknowledges a heartbeat of its own term.
//!
//! This module owns only that bookkeeping: it never sends a message and
//! never decides how a read is answered. Ticks are counted, never read from
//! a clock.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::quorum::{AckedIndexer, JointConfig};

/// Bytes of the tick a heartbeat's context starts with under lease-based
/// reads; a read-confirmation position (`ReadOnly`) may follow.
const TICK_LEN: usize = 8;

/// The lease state of one node. Inert (every answer "no lease, no
/// promise", contexts unchanged) unless lease-based reads are configured.
#[derive(Debug, Clone)]
pub struct Lease {
    enabled: bool,
    election_tick: u64,
    max_clock_drift_ticks: u64,
    /// Ticks this node has counted since it started.
    now: u64,
    /// Leader: the tick at which this leadership began; an echoed tick
    /// before it (or after `now`) was not sent by this leadership.
    since: u64,
    /// Leader: per peer, one more than the send tick of the newest
    /// heartbeat it acknowledged in this leadership (0: none).
    acked: BTreeMap<u64, u64>,
    /// Leader: it sent MsgTimeoutNow in this term; no lease until it leads
    /// another term.
    revoked: bool,
    /// The tick at which this node last heard from a leader, or started
    /// with a term; `None` if neither.
    heard: Option<u64>,
}

impl Lease {
    /// A node's lease state at start. `restarted`: the node has a term
    /// from an earlier life, in which it may have acknowledged a leader.
    pub fn new(
        enabled: bool,
        election_tick: usize,
        max_clock_drift_ticks: usize,
        restarted: bool,
    ) -> Lease {
        Lease {
            enabled,
            election_tick: election_tick as u64,
            max_clock_drift_ticks: max_clock_drift_ticks as u64,
            now: 0,
            since: 0,
            acked: BTreeMap::new(),
            revoked: false,
            heard: (enabled && restarted).then_some(0),
        }
    }

    /// Lease-based reads are configured.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Ticks counted since the node started.
    pub fn now(&self) -> u64 {
        self.now
    }

    pub(crate) fn tick(&mut self) {
        self.now += 1;
    }

    /// A message of the current leader arrived.
    pub(crate) fn heard_from_leader(&mut self) {
        self.heard = Some(self.now);
    }

    /// The follower's promise is in force: no vote, no pre-vote and no
    /// campaign for anyone but the leader it heard from (transfers aside).
    pub fn promised(&self) -> bool {
        self.enabled
            && self
                .heard
                .is_some_and(|h| self.now - h < self.election_tick)
    }

    /// A new leadership begins: acknowledgements of earlier ones and a
    /// revoked lease are forgotten.
    pub(crate) fn become_leader(&mut self) {
        self.since = self.now;
        self.acked.clear();
        self.revoked = false;
    }

    /// The leader hands leadership over: no lease for the rest of its term.
    pub(crate) fn revoke(&mut self) {
        self.revoked = true;
    }

    /// The leader's heartbeat context: under lease-based reads, the send
    /// tick followed by `read_ctx` (the `ReadOnly` position, if any);
    /// otherwise `read_ctx` itself.
    pub(crate) fn heartbeat_ctx(&self, read_ctx: Bytes) -> Bytes {
        if !self.enabled {
            return read_ctx;
        }
        let mut b = BytesMut::with_capacity(TICK_LEN + read_ctx.len());
        b.put_u64_le(self.now);
        b.put_slice(&read_ctx);
        b.freeze()
    }

    /// Records `from`'s echo of a heartbeat context; returns the part that
    /// belongs to `ReadOnly`. A context too short for a tick, or with a
    /// tick this leadership did not send, acknowledges nothing: it came from
    /// the network and proves nothing.
    pub(crate) fn recv_ack(&mut self, from: u64, ctx: Bytes) -> Bytes {
        if !self.enabled {
            return ctx;
        }
        let Some(tick) = ctx.get(..TICK_LEN) else {
            return Bytes::new();
        };
        let tick = u64::from_le_bytes(tick.try_into().expect("TICK_LEN bytes"));
        if tick >= self.since && tick <= self.now {
            let acked = self.acked.entry(from).or_insert(0);
            *acked = (*acked).max(tick + 1);
        }
        ctx.slice(TICK_LEN..)
    }

    /// The leader `id` holds its lease over `voters`: not revoked, and a
    /// quorum acknowledged a heartbeat sent less than `election_tick -
    /// max_clock_drift_ticks` ticks ago.
    pub fn holds(&self, id: u64, voters: &JointConfig) -> bool {
        if !self.enabled || self.revoked {
            return false;
        }
        let q = voters.committed_index(&Acks { lease: self, id });
        // 0: no quorum acknowledged anything; u64::MAX: no voters at all.
        if q == 0 || q == u64::MAX {
            return false;
        }
        let sent = q - 1;
        self.now - sent < self.election_tick - self.max_clock_drift_ticks
    }
}

/// The acknowledged send ticks (plus one) with the leader's own: it
/// acknowledges its own heartbeat as it sends it.
struct Acks<'a> {
    lease: &'a Lease,
    id: u64,
}

impl AckedIndexer for Acks<'_> {
    fn acked_index(&self, voter: u64) -> Option<u64> {
        if voter == self.id {
            return Some(self.lease.now + 1);
        }
        self.lease.acked.get(&voter).copied()
    }
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

    fn ticks(l: &mut Lease, n: usize) {
        for _ in 0..n {
            l.tick();
        }
    }

    #[test]
    fn lease_lasts_election_minus_drift_from_the_quorum_acked_send() {
        let cfg = voters(&[1, 2, 3]);
        let mut l = Lease::new(true, 10, 2, false);
        ticks(&mut l, 5);
        l.become_leader();
        assert!(!l.holds(1, &cfg), "the leader alone is no quorum");
        let ctx = l.heartbeat_ctx(Bytes::new()); // sent at tick 5
        ticks(&mut l, 3);
        assert!(l.recv_ack(2, ctx.clone()).is_empty());
        // Sent at 5: held through tick 5 + 10 - 2 - 1.
        for now in 8..13 {
            assert_eq!(l.now(), now);
            assert!(l.holds(1, &cfg), "tick {now}");
            l.tick();
        }
        assert_eq!(l.now(), 13);
        assert!(!l.holds(1, &cfg));
        // A newer acknowledged heartbeat extends it; an older one does not.
        let newer = l.heartbeat_ctx(Bytes::new());
        l.recv_ack(3, newer);
        assert!(l.holds(1, &cfg));
        l.recv_ack(3, ctx);
        ticks(&mut l, 7);
        assert!(l.holds(1, &cfg));
        l.tick();
        assert!(!l.holds(1, &cfg));
    }

    #[test]
    fn revoked_or_foreign_acks_hold_no_lease() {
        let cfg = voters(&[1, 2, 3]);
        let mut l = Lease::new(true, 10, 0, false);
        ticks(&mut l, 4);
        let before = l.heartbeat_ctx(Bytes::new());
        ticks(&mut l, 1);
        l.become_leader();
        ticks(&mut l, 1);
        // A tick from before this leadership, from the future, or no tick.
        l.recv_ack(2, before);
        l.recv_ack(2, Bytes::copy_from_slice(&100u64.to_le_bytes()));
        assert!(l.recv_ack(3, Bytes::from_static(b"abc")).is_empty());
        assert!(!l.holds(1, &cfg));
        l.recv_ack(2, l.heartbeat_ctx(Bytes::new()));
        assert!(l.holds(1, &cfg));
        l.revoke();
        assert!(!l.holds(1, &cfg));
        l.become_leader();
        assert!(!l.holds(1, &cfg), "a new leadership starts without acks");
    }

    #[test]
    fn the_read_position_travels_behind_the_tick() {
        let mut l = Lease::new(true, 10, 0, false);
        let pos = Bytes::copy_from_slice(&7u64.to_le_bytes());
        let ctx = l.heartbeat_ctx(pos.clone());
        assert_eq!(ctx.len(), TICK_LEN + 8);
        assert_eq!(l.recv_ack(2, ctx), pos);
        // Disabled: contexts pass through untouched.
        let mut off = Lease::new(false, 10, 0, false);
        assert_eq!(off.heartbeat_ctx(pos.clone()), pos);
        assert_eq!(off.recv_ack(2, pos.clone()), pos);
        assert!(!off.holds(1, &voters(&[1])));
    }

    #[test]
    fn the_promise_lasts_an_election_timeout_of_own_ticks() {
        let mut l = Lease::new(true, 10, 3, false);
        assert!(!l.promised(), "a fresh node heard from no leader");
        ticks(&mut l, 2);
        l.heard_from_leader();
        for _ in 0..10 {
            assert!(l.promised());
            l.tick();
        }
        assert!(!l.promised());
        // A restarted node may have acknowledged a leader just before.
        let mut r = Lease::new(true, 10, 3, true);
        ticks(&mut r, 9);
        assert!(r.promised());
        r.tick();
        assert!(!r.promised());
        assert!(!Lease::new(false, 10, 3, true).promised());
    }
}
