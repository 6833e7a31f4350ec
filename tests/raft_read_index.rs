//! ReadIndex: linearizable reads without a log entry. No interaction
//! scenario file exercises it; these check etcd's rules through the public
//! API: a `Safe` read waits for a quorum of heartbeat acknowledgements, a
//! `LeaseBased` one is answered at once while the leader's lease holds (and
//! like a `Safe` one otherwise), a follower forwards its requests to
//! the leader, a new leader answers nothing before it has committed an entry
//! of its term, and a leader cut off from the quorum never answers.

mod common;

use bytes::Bytes;
use common::network::*;
use corelog::raft::{ReadOnlyOption, ReadState, StateType};
use corelog::raftpb::{Message, MessageType};

fn rs(index: u64, ctx: &'static [u8]) -> ReadState {
    ReadState {
        index,
        request_ctx: Bytes::from_static(ctx),
    }
}

fn read_states(nw: &Network, id: u64) -> Vec<ReadState> {
    nw.read_states.get(&id).cloned().unwrap_or_default()
}

fn lease_based(c: &mut corelog::raft::Config) {
    c.check_quorum = true;
    c.read_only_option = ReadOnlyOption::LeaseBased;
}

/// Led by 1 under lease-based reads, with one heartbeat round
/// acknowledged since: the lease holds.
fn leased_by_1() -> Network {
    let mut nw = led_by_1(&[1, 2, 3], lease_based);
    nw.tick(1, 1);
    nw
}

/// A cluster of `ids` led by 1 with everything committed.
fn led_by_1(ids: &[u64], f: impl Fn(&mut corelog::raft::Config)) -> Network {
    let mut nw = Network::new_with_config(ids, f);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);
    nw.propose(1, b"x");
    nw
}

#[test]
fn safe_read_is_answered_once_a_quorum_acknowledges_a_heartbeat() {
    let mut nw = led_by_1(&ids_by_size(5), |_| {});
    let commit = nw.node(1).raft.raft_log.committed;

    nw.node_mut(1).read_index(Bytes::from_static(b"a"));
    let out = drain(nw.node_mut(1));
    assert!(out.read_states.is_empty(), "not before the quorum confirms");
    let beats: Vec<Message> = out.messages;
    assert_eq!(beats.len(), 4);
    assert!(
        beats
            .iter()
            .all(|m| m.r#type() == MessageType::MsgHeartbeat && !m.context.is_empty())
    );

    // The leader and 2 are not a quorum of five...
    nw.send(vec![beats[0].clone()]);
    assert!(read_states(&nw, 1).is_empty());
    // ...the leader, 2 and 3 are.
    nw.send(vec![beats[1].clone()]);
    assert_eq!(read_states(&nw, 1), vec![rs(commit, b"a")]);
}

#[test]
fn one_quorum_acknowledgement_confirms_every_earlier_read() {
    let mut nw = led_by_1(&[1, 2, 3], |_| {});
    let commit = nw.node(1).raft.raft_log.committed;

    nw.node_mut(1).read_index(Bytes::from_static(b"a"));
    let first = read_messages(nw.node_mut(1));
    nw.node_mut(1).read_index(Bytes::from_static(b"b"));
    let second = read_messages(nw.node_mut(1));
    assert_ne!(first[0].context, second[0].context);

    // Only the second round's heartbeats arrive.
    nw.send(second);

    assert_eq!(
        read_states(&nw, 1),
        vec![rs(commit, b"a"), rs(commit, b"b")]
    );
}

#[test]
fn lease_based_read_is_answered_without_a_heartbeat_round() {
    let mut nw = leased_by_1();
    let commit = nw.node(1).raft.raft_log.committed;

    nw.node_mut(1).read_index(Bytes::from_static(b"a"));
    let out = drain(nw.node_mut(1));

    assert_eq!(out.read_states, vec![rs(commit, b"a")]);
    assert!(out.messages.is_empty(), "{:?}", out.messages);
}

#[test]
fn follower_forwards_a_safe_read_and_gets_the_leaders_commit_index() {
    let mut nw = led_by_1(&[1, 2, 3], |_| {});
    let commit = nw.node(1).raft.raft_log.committed;

    nw.node_mut(2).read_index(Bytes::from_static(b"f"));
    nw.flush();

    assert_eq!(read_states(&nw, 2), vec![rs(commit, b"f")]);
    assert!(read_states(&nw, 1).is_empty(), "the leader keeps none");
    let kinds: Vec<(MessageType, u64, u64)> = nw
        .trace
        .iter()
        .filter(|m| {
            matches!(
                m.r#type(),
                MessageType::MsgReadIndex | MessageType::MsgReadIndexResp
            )
        })
        .map(|m| (m.r#type(), m.from, m.to))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (MessageType::MsgReadIndex, 2, 1),
            (MessageType::MsgReadIndexResp, 1, 2)
        ]
    );
}

#[test]
fn follower_forwards_a_lease_based_read_and_gets_an_immediate_answer() {
    let mut nw = leased_by_1();
    let commit = nw.node(1).raft.raft_log.committed;
    let sent = nw.trace.len();

    nw.node_mut(3).read_index(Bytes::from_static(b"f"));
    nw.flush();

    assert_eq!(read_states(&nw, 3), vec![rs(commit, b"f")]);
    let types: Vec<MessageType> = nw.trace[sent..].iter().map(|m| m.r#type()).collect();
    assert_eq!(
        types,
        vec![MessageType::MsgReadIndex, MessageType::MsgReadIndexResp]
    );
}

#[test]
fn follower_without_a_leader_drops_the_read() {
    let mut n = new_node(2, &[1, 2, 3]);

    n.read_index(Bytes::from_static(b"f"));

    let out = drain(&mut n);
    assert!(out.messages.is_empty());
    assert!(out.read_states.is_empty());
}

#[test]
fn new_leader_answers_reads_only_after_committing_an_entry_of_its_term() {
    let mut nw = led_by_1(&[1, 2, 3], |_| {});
    // 2 wins term 2, but its empty entry reaches nobody.
    nw.ignore(MessageType::MsgApp);
    nw.campaign(2);
    assert_eq!(nw.state(2), StateType::Leader);
    let own_entry = nw.node(2).raft.raft_log.last_index();
    assert!(nw.node(2).raft.raft_log.committed < own_entry);

    nw.node_mut(2).read_index(Bytes::from_static(b"r"));
    let out = drain(nw.node_mut(2));
    assert!(out.read_states.is_empty());
    assert!(out.messages.is_empty(), "not even a heartbeat round yet");

    // Once the entry commits (replication resumes with the next heartbeat),
    // the read is confirmed at an index that includes it.
    nw.recover();
    nw.tick(2, nw.node(2).raft.heartbeat_timeout);
    assert_eq!(nw.node(2).raft.raft_log.committed, own_entry);
    assert_eq!(read_states(&nw, 2), vec![rs(own_entry, b"r")]);
}

#[test]
fn leader_cut_off_from_the_quorum_never_answers_a_safe_read() {
    let mut nw = led_by_1(&[1, 2, 3], |_| {});
    nw.isolate(1);

    nw.node_mut(1).read_index(Bytes::from_static(b"stale"));
    nw.flush();
    for _ in 0..20 {
        nw.tick(1, 1);
    }
    assert!(read_states(&nw, 1).is_empty());

    // Meanwhile the others elect a leader and commit; when the old leader
    // hears of it, it steps down without ever answering.
    nw.campaign(2);
    nw.propose(2, b"newer");
    nw.recover();
    nw.tick(2, nw.node(2).raft.heartbeat_timeout);
    assert_eq!(nw.state(1), StateType::Follower);
    for _ in 0..5 {
        nw.tick(2, 1);
    }
    assert!(read_states(&nw, 1).is_empty());
}

// A new leader has no lease before a quorum acknowledged a heartbeat of
// its term (the acks of its appends say nothing about when they were
// sent): its first lease-based read takes a heartbeat round, which also
// starts the lease.
#[test]
fn lease_based_read_of_a_new_leader_takes_a_heartbeat_round() {
    let mut nw = led_by_1(&[1, 2, 3], lease_based);
    let commit = nw.node(1).raft.raft_log.committed;

    nw.node_mut(1).read_index(Bytes::from_static(b"a"));
    let out = drain(nw.node_mut(1));
    assert!(out.read_states.is_empty(), "no lease yet");
    assert!(
        out.messages
            .iter()
            .all(|m| m.r#type() == MessageType::MsgHeartbeat),
        "{:?}",
        out.messages
    );
    nw.send(out.messages);
    assert_eq!(read_states(&nw, 1), vec![rs(commit, b"a")]);

    // The round's acknowledgements started the lease.
    nw.node_mut(1).read_index(Bytes::from_static(b"b"));
    let out = drain(nw.node_mut(1));
    assert_eq!(out.read_states, vec![rs(commit, b"b")]);
    assert!(out.messages.is_empty(), "{:?}", out.messages);
}

// A leader cut off from the others answers from its lease only for
// `election_tick - max_clock_drift_ticks` ticks after sending the last
// heartbeat a quorum acknowledged: the followers promised to vote for no
// one else for an election timeout after they received it. After that its
// reads wait for a heartbeat round, which never comes back, and CheckQuorum
// deposes it (up to two election timeouts after it was cut off).
#[test]
fn lease_based_leader_cut_off_answers_only_while_its_lease_holds() {
    let mut nw = leased_by_1();
    let commit = nw.node(1).raft.raft_log.committed;
    let et = nw.node(1).raft.election_timeout;
    let drift = 1; // the default max_clock_drift_ticks
    // The acknowledged heartbeat was sent one tick ago.
    nw.isolate(1);

    nw.node_mut(1).read_index(Bytes::from_static(b"lease"));
    nw.flush();
    assert_eq!(read_states(&nw, 1), vec![rs(commit, b"lease")]);

    // Still within the lease on its last tick...
    nw.tick(1, et - drift - 1);
    nw.node_mut(1).read_index(Bytes::from_static(b"last"));
    nw.flush();
    // ...and no longer one tick later.
    nw.tick(1, 1);
    assert_eq!(nw.state(1), StateType::Leader);
    nw.node_mut(1).read_index(Bytes::from_static(b"late"));
    nw.flush();
    nw.tick(1, et);
    assert_eq!(nw.state(1), StateType::Follower);
    assert_eq!(
        read_states(&nw, 1),
        vec![rs(commit, b"lease"), rs(commit, b"last")]
    );
}

// `tick_quiesced` is time passing too: the followers count it towards the
// end of their promise (they tick normally or quiesced, and a quiesced
// follower wakes up and elects), so the leader's lease must run out by the
// same ticks. A leader that only ticks quiesced must not answer from a
// lease that ran out long ago.
#[test]
fn quiesced_ticks_run_the_lease_out() {
    let mut nw = leased_by_1();
    let et = nw.node(1).raft.election_timeout;
    nw.isolate(1);
    for _ in 0..10 * et {
        nw.node_mut(1).tick_quiesced();
    }
    assert_eq!(nw.state(1), StateType::Leader);
    nw.node_mut(1).read_index(Bytes::from_static(b"stale"));
    nw.flush();
    assert!(
        read_states(&nw, 1).is_empty(),
        "answered from a lease {} quiesced ticks old: {:?}",
        10 * et,
        read_states(&nw, 1)
    );
}
