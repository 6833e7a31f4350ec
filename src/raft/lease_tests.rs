//! Lease-based reads: the leader's lease against the followers' promise not
//! to vote, tick by tick, on a small cluster of `Raft`s whose links can be
//! cut. Each test is one way a stale leader could answer a read after
//! another leader committed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::raft_tests::{msg, read_messages, storage_with, test_config};
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
    let committed = c.node(2).raft_log.committed;
    assert!(committed > c.node(1).raft_log.committed);
    // Node 1 has not run CheckQuorum again and still leads term 1.
    assert_eq!(c.node(1).state, StateType::Leader);
    let reads = c.read(1);
    assert!(
        reads.iter().all(|rs| rs.index >= committed),
        "stale lease read {reads:?}: node 2 committed {committed}"
    );
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
    let committed = c.node(2).raft_log.committed;
    assert!(committed > c.node(1).raft_log.committed);
    assert_eq!(c.node(1).state, StateType::Leader);
    let reads = c.read(1);
    assert!(
        reads.iter().all(|rs| rs.index >= committed),
        "stale lease read {reads:?}: node 2 committed {committed}"
    );
}
