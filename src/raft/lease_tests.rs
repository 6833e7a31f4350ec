//! Lease-based reads: the leader's lease against the followers' promise not
//! to vote, tick by tick, on a small cluster of `Raft`s whose links can be
//! cut. Each test is one way a stale leader could answer a read after
//! another leader committed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::raft_tests::{msg, msg_term, read_messages, storage_with, test_config};
use super::*;
use crate::raftpb::{Entry, Message, MessageType};

/// Election timeout of every node here.
const ET: usize = 10;

/// Three voters with lease-based reads; messages are delivered at once, in
/// order, except to or from an isolated node.
struct Cluster {
    nodes: BTreeMap<u64, Raft<MemStorage>>,
    isolated: BTreeSet<u64>,
}

impl Cluster {
    fn new(cfg: impl Fn(&mut Config)) -> Cluster {
        let mut nodes = BTreeMap::new();
        for id in 1..=3 {
            let mut c = test_config(id, ET, 1);
            c.check_quorum = true;
            c.read_only_option = ReadOnlyOption::LeaseBased;
            cfg(&mut c);
            nodes.insert(id, Raft::new(&c, storage_with(&[1, 2, 3], &[])).unwrap());
        }
        Cluster {
            nodes,
            isolated: BTreeSet::new(),
        }
    }

    fn node(&mut self, id: u64) -> &mut Raft<MemStorage> {
        self.nodes.get_mut(&id).expect("a node of the cluster")
    }

    /// Delivers `msgs` and everything they cause, dropping what crosses the
    /// cut around an isolated node.
    fn deliver(&mut self, msgs: Vec<Message>) {
        let mut q: VecDeque<Message> = msgs.into();
        while let Some(m) = q.pop_front() {
            if self.isolated.contains(&m.from) || self.isolated.contains(&m.to) {
                continue;
            }
            let Some(n) = self.nodes.get_mut(&m.to) else {
                continue;
            };
            let _ = n.step(m);
            q.extend(read_messages(n));
        }
    }

    /// Steps `m` at node `id` (bypassing the cut) and delivers what follows.
    fn step(&mut self, id: u64, m: Message) {
        let n = self.node(id);
        let _ = n.step(m);
        let out = read_messages(n);
        self.deliver(out);
    }

    /// One tick of every node, then delivery of what the ticks sent.
    fn tick_all(&mut self) {
        let mut out = Vec::new();
        for n in self.nodes.values_mut() {
            n.tick();
            out.extend(read_messages(n));
        }
        self.deliver(out);
    }

    /// Asks node `id` for a read; returns the reads it answered.
    fn read(&mut self, id: u64) -> Vec<ReadState> {
        let mut m = msg(id, id, MessageType::MsgReadIndex);
        m.entries = vec![Entry {
            data: Bytes::from_static(b"r"),
            ..Default::default()
        }];
        self.step(id, m);
        std::mem::take(&mut self.node(id).read_states)
    }

    /// Node `new` leads and committed past node `old`, which still leads
    /// its older term: any read `old` answers must not miss `new`'s
    /// commits.
    fn assert_no_stale_read(&mut self, old: u64, new: u64) {
        let committed = self.node(new).raft_log.committed;
        assert!(committed > self.node(old).raft_log.committed);
        assert_eq!(self.node(old).state, StateType::Leader);
        let reads = self.read(old);
        assert!(
            reads.iter().all(|rs| rs.index >= committed),
            "stale lease read {reads:?}: node {new} committed {committed}"
        );
    }

    /// Node 1 leads term 1 with its empty entry committed; 2 and 3 never
    /// campaign on their own.
    fn led_by_1(cfg: impl Fn(&mut Config)) -> Cluster {
        let mut c = Cluster::new(cfg);
        c.step(1, msg(1, 1, MessageType::MsgHup));
        assert_eq!(c.node(1).state, StateType::Leader);
        assert_eq!(c.node(1).raft_log.committed, 1);
        for id in [2, 3] {
            c.node(id).randomized_election_timeout = 100 * ET;
        }
        c
    }
}

fn hup(id: u64) -> Message {
    msg(id, id, MessageType::MsgHup)
}

/// A leader cut off from the others must stop answering from its lease
/// before the followers may elect another leader: today CheckQuorum looks
/// once per election timeout, so the leader leads on for up to two while
/// the followers vote after one.
#[test]
fn cut_off_leader_stops_lease_reads_before_followers_can_elect() {
    let mut c = Cluster::led_by_1(|_| {});
    // Heartbeats every tick, acknowledged, until just before node 1's
    // CheckQuorum; then node 1 is cut off. Its check passes on the
    // activity of the window just past.
    for _ in 0..ET - 1 {
        c.tick_all();
    }
    c.isolated.insert(1);
    c.tick_all();
    assert_eq!(c.node(1).state, StateType::Leader);
    // The followers last heard from node 1 one tick ago; after ET - 1 more
    // ticks they have counted a whole election timeout without it.
    for _ in 0..ET - 1 {
        c.tick_all();
    }
    c.step(2, hup(2));
    assert_eq!(c.node(2).state, StateType::Leader, "3 votes for 2");
    // Node 1 has not run CheckQuorum again and still leads term 1.
    c.assert_no_stale_read(1, 2);
}

/// A leadership transfer's election goes through the followers' leases, so
/// the old leader's lease must end when it hands leadership over.
#[test]
fn transfer_ends_the_old_leaders_lease_reads() {
    let mut c = Cluster::led_by_1(|_| {});
    c.tick_all();
    // Node 2 asks for leadership; it is up to date, so node 1 sends it
    // MsgTimeoutNow at once. Node 1 is then cut off, its MsgTimeoutNow
    // already on its way.
    let n1 = c.node(1);
    let _ = n1.step(msg(2, 1, MessageType::MsgTransferLeader));
    let out = read_messages(n1);
    let timeout_now: Vec<Message> = out
        .into_iter()
        .filter(|m| m.r#type == MessageType::MsgTimeoutNow as i32)
        .collect();
    assert_eq!(timeout_now.len(), 1, "node 2 is up to date");
    c.isolated.insert(1);
    for m in timeout_now {
        c.step(2, m);
    }
    assert_eq!(c.node(2).state, StateType::Leader, "3 votes for 2 at once");
    c.assert_no_stale_read(1, 2);
}

/// The exact promise: a follower that heard from the leader votes for no
/// one else for an election timeout, even when a stale answer of a higher
/// term moved its term on without a leader (etcd's stickiness only looks at
/// a known leader of the current term, and grants here).
#[test]
fn a_follower_keeps_its_promise_across_a_term_change() {
    let mut c = Cluster::led_by_1(|_| {});
    c.tick_all();
    let n3 = c.node(3);
    // A late answer from node 2 at term 2 (say, to an append node 3 sent
    // as leader long ago): node 3 moves to term 2 with no leader.
    let _ = n3.step(msg_term(2, 3, MessageType::MsgAppResp, 2));
    assert_eq!((n3.term, n3.lead), (2, NONE));
    let last = n3.raft_log.last_entry_id();
    let mut vote = msg_term(2, 3, MessageType::MsgVote, 2);
    (vote.index, vote.log_term) = (last.index, last.term);
    let _ = n3.step(vote.clone());
    let out = read_messages(n3);
    assert_eq!(n3.vote, NONE, "{out:?}");
    assert!(out.iter().all(|m| m.reject), "{out:?}");
    // Once an election timeout has passed since node 1's last heartbeat,
    // the vote is granted.
    for _ in 0..ET {
        n3.tick();
    }
    let _ = read_messages(n3);
    let _ = n3.step(vote);
    let out = read_messages(n3);
    assert_eq!(n3.vote, 2);
    assert!(
        out.iter()
            .any(|m| m.r#type == MessageType::MsgVoteResp as i32 && !m.reject)
    );
}

/// A node that restarts with a term may have acknowledged a leader just
/// before it stopped: it keeps the promise for an election timeout, votes
/// and campaigns included. A node that never had a term has promised
/// nothing.
#[test]
fn a_restarted_node_keeps_its_promise_for_an_election_timeout() {
    let mut s = storage_with(&[1, 2, 3], &[]);
    s.set_hard_state(crate::raftpb::HardState {
        term: 1,
        vote: 1,
        commit: 0,
    });
    let mut cfg = test_config(3, ET, 1);
    cfg.check_quorum = true;
    cfg.read_only_option = ReadOnlyOption::LeaseBased;
    let mut r = Raft::new(&cfg, s).unwrap();
    let _ = r.step(hup(3));
    assert_eq!(
        r.state,
        StateType::Follower,
        "no campaign within the promise"
    );
    let _ = r.step(msg_term(2, 3, MessageType::MsgVote, 2));
    assert_eq!((r.term, r.vote), (1, 1), "vote request ignored");
    for _ in 0..ET - 1 {
        r.tick();
    }
    assert!(r.lease.promised());
    r.tick();
    assert!(!r.lease.promised());
    let _ = r.step(msg_term(2, 3, MessageType::MsgVote, 2));
    assert_eq!((r.term, r.vote), (2, 2));

    let fresh = Cluster::new(|_| {});
    assert!(!fresh.nodes[&1].lease.promised());
}

/// Once the leader sent MsgTimeoutNow, the transferee may campaign at any
/// later time (the message may be late), and its election goes through the
/// followers' promises: even after the transfer is abandoned, the leader
/// answers no read from its lease for the rest of its term.
#[test]
fn an_abandoned_transfer_does_not_give_the_lease_back() {
    let mut c = Cluster::led_by_1(|_| {});
    c.tick_all();
    assert_eq!(c.read(1).len(), 1, "the lease holds");
    // MsgTimeoutNow to node 2 is lost; the transfer is abandoned after an
    // election timeout, and node 1 leads on with acknowledged heartbeats.
    let n1 = c.node(1);
    let _ = n1.step(msg(2, 1, MessageType::MsgTransferLeader));
    let out = read_messages(n1);
    assert!(
        out.iter()
            .any(|m| m.r#type == MessageType::MsgTimeoutNow as i32)
    );
    for _ in 0..ET {
        c.tick_all();
    }
    assert_eq!(c.node(1).state, StateType::Leader);
    assert_eq!(c.node(1).lead_transferee, NONE);
    let n1 = &c.nodes[&1];
    assert!(!n1.lease.holds(1, &n1.trk.config.voters));
    // Reads still work, by a heartbeat round.
    let n1 = c.node(1);
    let mut m = msg(1, 1, MessageType::MsgReadIndex);
    m.entries = vec![Entry::default()];
    let _ = n1.step(m);
    assert!(n1.read_states.is_empty());
    let out = read_messages(n1);
    assert!(
        out.iter()
            .all(|m| m.r#type == MessageType::MsgHeartbeat as i32)
    );
    c.deliver(out);
    assert_eq!(c.node(1).read_states.len(), 1);
}

/// Under lease-based reads a heartbeat's answer waits for the durability
/// of the term it promises in, like a vote.
#[test]
fn heartbeat_answers_wait_for_durability_under_lease_reads() {
    let mut c = Cluster::new(|_| {});
    let n2 = c.node(2);
    let _ = n2.step(msg_term(1, 2, MessageType::MsgHeartbeat, 1));
    assert!(n2.msgs.is_empty());
    assert_eq!(n2.msgs_after_append.len(), 1);
    assert_eq!(
        n2.msgs_after_append[0].r#type,
        MessageType::MsgHeartbeatResp as i32
    );
}

/// A follower's promise dates from the leader's latest message, heartbeats
/// included: with no append for longer than an election timeout, the
/// heartbeats alone keep it from voting for another while the leader's
/// lease (which counts the acknowledged heartbeats) holds. Found missing by
/// a mutation that stopped heartbeats renewing the promise, which no other
/// test noticed.
#[test]
fn heartbeats_renew_the_followers_promise() {
    let mut c = Cluster::led_by_1(|_| {});
    // Two election timeouts of heartbeats and their answers; the last
    // append was the election's.
    for _ in 0..2 * ET {
        c.tick_all();
    }
    assert!(c.read(1).len() == 1, "the leader answers from its lease");
    let n3 = c.node(3);
    assert!(n3.lease.promised(), "a heartbeat came a tick ago");
    // Node 3 moves to term 2 with no leader (a late answer at term 2);
    // node 2 asks for its vote with an up-to-date log.
    let _ = n3.step(msg_term(2, 3, MessageType::MsgAppResp, 2));
    let last = n3.raft_log.last_entry_id();
    let mut vote = msg_term(2, 3, MessageType::MsgVote, 2);
    (vote.index, vote.log_term) = (last.index, last.term);
    let _ = n3.step(vote);
    let out = read_messages(n3);
    assert_eq!(n3.vote, NONE, "{out:?}");
    assert!(out.iter().all(|m| m.reject), "{out:?}");
}
