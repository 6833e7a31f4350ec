//! The cases of etcd-raft's node_test.go that are about the core rather than
//! etcd's goroutine wrapper, against corelog's `Raft` through its public
//! API: proposal forwarding and its disabling, read requests forwarded to
//! whoever leads now without a term, and MsgApp batches bounded by
//! `max_size_per_msg` yet filled when a partition heals.

use std::collections::VecDeque;

use bytes::Bytes;
use corelog::raft::{Config, MemStorage, Raft, StateType};
use corelog::raftpb::{ConfState, Entry, Message, MessageType};

type TestRaft = Raft<MemStorage>;

fn config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        max_size_per_msg: u64::MAX,
        max_inflight_msgs: 256,
        ..Config::default()
    }
}

fn new_raft(cfg: &Config, peers: &[u64]) -> TestRaft {
    let store = MemStorage::new_with_conf_state(ConfState {
        voters: peers.to_vec(),
        ..Default::default()
    });
    Raft::new(cfg, store).expect("test config is valid")
}

fn msg(t: MessageType, from: u64, to: u64) -> Message {
    Message {
        r#type: t as i32,
        from,
        to,
        ..Default::default()
    }
}

fn with_data(mut m: Message, data: &'static [u8]) -> Message {
    m.entries = vec![Entry {
        data: Bytes::from_static(data),
        ..Default::default()
    }];
    m
}

/// Everything the node has to send once its own storage caught up.
fn read_messages(r: &mut TestRaft) -> Vec<Message> {
    loop {
        let msgs = std::mem::take(&mut r.msgs_after_append);
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            if m.to == r.id {
                r.step(m).expect("a node accepts its own messages");
            } else {
                r.msgs.push(m);
            }
        }
    }
    std::mem::take(&mut r.msgs)
}

/// Nodes 1..=n delivering messages until none is left; `cut` nodes neither
/// send nor receive (but reach themselves); `send`'s hook sees every message
/// delivered.
struct Network {
    nodes: Vec<TestRaft>,
    cut: Vec<u64>,
}

impl Network {
    fn new(cfgs: &[Config]) -> Network {
        let ids: Vec<u64> = cfgs.iter().map(|c| c.id).collect();
        Network {
            nodes: cfgs.iter().map(|c| new_raft(c, &ids)).collect(),
            cut: Vec::new(),
        }
    }

    fn node(&mut self, id: u64) -> &mut TestRaft {
        &mut self.nodes[id as usize - 1]
    }

    fn send(&mut self, m: Message, hook: &mut dyn FnMut(&Message)) {
        let mut queue = VecDeque::from([m]);
        while let Some(m) = queue.pop_front() {
            if m.from != m.to && (self.cut.contains(&m.from) || self.cut.contains(&m.to)) {
                continue;
            }
            hook(&m);
            let p = self.node(m.to);
            let _ = p.step(m);
            queue.extend(read_messages(p));
        }
    }
}

#[test]
fn followers_forward_proposals_unless_disabled() {
    let mut c3 = config(3);
    c3.disable_proposal_forwarding = true;
    let mut nt = Network::new(&[config(1), config(2), c3]);
    nt.send(msg(MessageType::MsgHup, 1, 1), &mut |_| {});
    assert_eq!(nt.node(1).state, StateType::Leader);

    let r2 = nt.node(2);
    r2.step(with_data(msg(MessageType::MsgProp, 2, 2), b"testdata"))
        .expect("follower forwards the proposal");
    assert_eq!(r2.msgs.len(), 1);
    assert_eq!(r2.msgs[0].r#type, MessageType::MsgProp as i32);

    let r3 = nt.node(3);
    assert!(
        r3.step(with_data(msg(MessageType::MsgProp, 3, 3), b"testdata"))
            .is_err(),
        "a follower that does not forward drops the proposal"
    );
    assert!(r3.msgs.is_empty());
}

#[test]
fn read_index_is_forwarded_to_the_current_leader_without_a_term() {
    let mut nt = Network::new(&[config(1), config(2), config(3)]);
    nt.send(msg(MessageType::MsgHup, 1, 1), &mut |_| {});
    let req = |from| with_data(msg(MessageType::MsgReadIndex, from, from), b"testdata");
    let fwd = |from, to| with_data(msg(MessageType::MsgReadIndex, from, to), b"testdata");

    for id in [2, 3] {
        let r = nt.node(id);
        r.step(req(id)).expect("follower forwards the read");
        assert_eq!(r.msgs, vec![fwd(id, 1)], "from {id}");
        r.msgs.clear();
    }

    // Node 3 leads now; the old leader passes the requests on to it.
    nt.send(msg(MessageType::MsgHup, 3, 3), &mut |_| {});
    assert_eq!(nt.node(3).state, StateType::Leader);
    let r1 = nt.node(1);
    r1.step(fwd(2, 1)).expect("forwarded again");
    r1.step(fwd(3, 1)).expect("forwarded again");
    assert_eq!(r1.msgs, vec![fwd(2, 3), fwd(3, 3)]);
}

#[test]
fn appends_respect_max_size_per_msg_and_batch_after_a_partition() {
    const MAX: u64 = 2048;
    let cfgs: Vec<Config> = (1..=3)
        .map(|id| Config {
            max_size_per_msg: MAX,
            ..config(id)
        })
        .collect();
    let mut nt = Network::new(&cfgs);
    let mut seen_full = false;
    let mut hook = |m: &Message| {
        if m.r#type == MessageType::MsgApp as i32 {
            let size: u64 = m.entries.iter().map(|e| e.data.len() as u64).sum();
            assert!(size <= MAX, "MsgApp of {size} bytes");
            if size > MAX / 2 {
                seen_full = true;
            }
        }
    };
    nt.send(msg(MessageType::MsgHup, 1, 1), &mut hook);
    // Proposals made while the leader is cut off pile up...
    nt.cut = vec![1];
    static BLOB: [u8; 1000] = [b'a'; 1000];
    for _ in 0..5 {
        nt.send(with_data(msg(MessageType::MsgProp, 1, 1), &BLOB), &mut hook);
    }
    nt.cut.clear();
    // ...and go out in large batches once it is back.
    nt.send(msg(MessageType::MsgBeat, 1, 1), &mut hook);
    assert!(seen_full, "no MsgApp above half the limit");
    let committed = nt.node(1).raft_log.committed;
    assert_eq!(nt.node(2).raft_log.committed, committed);
}
