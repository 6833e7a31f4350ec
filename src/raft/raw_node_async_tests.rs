//! Tests of the asynchronous-storage-writes contract of `RawNode`: storage
//! work handed out as `MsgStorageAppend` / `MsgStorageApply`, responses
//! stepped back by the "storage threads" (played here by the test, in any
//! order it chooses), further `Ready`s while writes are in flight, and the
//! leader counting its own entries only once its append response arrives.

use bytes::Bytes;

use super::raft_tests::{storage_with, test_config};
use super::*;
use crate::raftpb::{
    ConfState, Entry, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};

fn async_node(id: u64, voters: &[u64]) -> RawNode<MemStorage> {
    let mut c = test_config(id, 10, 1);
    c.async_storage_writes = true;
    RawNode::new(&c, storage_with(voters, &[])).unwrap()
}

/// A Ready's messages sorted by destination: the append thread's work, the
/// apply thread's work, and the rest (to peers).
struct Split {
    append: Option<Message>,
    apply: Option<Message>,
    net: Vec<Message>,
}

fn split(rd: Ready) -> Split {
    let mut s = Split {
        append: None,
        apply: None,
        net: Vec::new(),
    };
    for m in rd.messages {
        match m.to {
            LOCAL_APPEND_THREAD => {
                assert_eq!(m.r#type(), MessageType::MsgStorageAppend);
                assert!(s.append.replace(m).is_none(), "two appends in one Ready");
            }
            LOCAL_APPLY_THREAD => {
                assert_eq!(m.r#type(), MessageType::MsgStorageApply);
                assert!(s.apply.replace(m).is_none(), "two applies in one Ready");
            }
            _ => s.net.push(m),
        }
    }
    s
}

/// The append thread's work: persist hard state, snapshot or entries; the
/// responses are then due.
fn do_append(rn: &mut RawNode<MemStorage>, m: &Message) -> Vec<Message> {
    let hs = HardState {
        term: m.term,
        vote: m.vote,
        commit: m.commit,
    };
    let store = rn.store_mut();
    if hs != HardState::default() {
        store.set_hard_state(hs);
    }
    if let Some(s) = m.snapshot.as_deref() {
        store.apply_snapshot(s.clone()).unwrap();
    }
    store.append(&m.entries).unwrap();
    m.responses.clone()
}

/// Steps the responses addressed to `rn` into it; returns the others.
fn deliver(rn: &mut RawNode<MemStorage>, msgs: Vec<Message>) -> Vec<Message> {
    let id = rn.raft.id;
    let mut rest = Vec::new();
    for m in msgs {
        if m.to == id {
            rn.step(m).unwrap();
        } else {
            rest.push(m);
        }
    }
    rest
}

/// Runs Readys, storage work and own responses until the node has nothing
/// left to do; returns what went to peers.
fn settle(rn: &mut RawNode<MemStorage>) -> Vec<Message> {
    let mut out = Vec::new();
    while rn.has_ready() {
        let s = split(rn.ready());
        out.extend(s.net);
        if let Some(m) = s.append {
            let resps = do_append(rn, &m);
            out.extend(deliver(rn, resps));
        }
        if let Some(m) = s.apply {
            out.extend(deliver(rn, m.responses.clone()));
        }
    }
    out
}

/// A three-node cluster's leader (id 1) at term 1 whose empty entry is
/// committed: the election is won with node 2's vote.
fn leader_of_three() -> RawNode<MemStorage> {
    let mut rn = async_node(1, &[1, 2, 3]);
    rn.campaign().unwrap();
    settle(&mut rn);
    let mut vote = Message {
        r#type: MessageType::MsgVoteResp as i32,
        from: 2,
        to: 1,
        term: 1,
        ..Default::default()
    };
    rn.step(vote.clone()).unwrap();
    assert_eq!(rn.raft.state, StateType::Leader);
    settle(&mut rn);
    vote.r#type = MessageType::MsgAppResp as i32;
    vote.index = 1;
    rn.step(vote).unwrap();
    settle(&mut rn);
    assert_eq!(rn.raft.raft_log.committed, 1);
    rn
}

fn app_resp(from: u64, index: u64) -> Message {
    Message {
        r#type: MessageType::MsgAppResp as i32,
        from,
        to: 1,
        term: 1,
        index,
        ..Default::default()
    }
}

#[test]
fn leader_counts_its_own_entries_only_on_its_append_response() {
    let mut rn = leader_of_three();
    rn.propose(Bytes::from_static(b"x")).unwrap();
    let s = split(rn.ready());
    let append = s.append.expect("the new entry goes to the append thread");
    assert_eq!(append.entries.len(), 1);
    assert_eq!(append.entries[0].index, 2);
    // Its responses: the leader's own ack, then the append acknowledgement.
    let types: Vec<MessageType> = append.responses.iter().map(|m| m.r#type()).collect();
    assert_eq!(
        types,
        [MessageType::MsgAppResp, MessageType::MsgStorageAppendResp]
    );
    assert_eq!(append.responses[0].to, 1);
    assert_eq!(append.responses[0].index, 2);
    assert_eq!(rn.raft.trk.progress[&1].matched, 1, "not durable yet");

    // Node 2 stores the entry first: one of three is no quorum, because the
    // leader does not count an entry it has not yet made durable.
    rn.step(app_resp(2, 2)).unwrap();
    assert_eq!(rn.raft.raft_log.committed, 1);

    // The append thread finishes: the leader's own ack commits the entry.
    let resps = do_append(&mut rn, &append);
    deliver(&mut rn, resps);
    assert_eq!(rn.raft.trk.progress[&1].matched, 2);
    assert_eq!(rn.raft.raft_log.committed, 2);
    assert!(rn.raft.raft_log.unstable.entries.is_empty());
}

#[test]
fn followers_alone_can_commit_while_the_leader_write_is_in_flight() {
    let mut rn = leader_of_three();
    rn.propose(Bytes::from_static(b"x")).unwrap();
    let s = split(rn.ready());
    rn.step(app_resp(2, 2)).unwrap();
    rn.step(app_resp(3, 2)).unwrap();
    assert_eq!(rn.raft.raft_log.committed, 2);
    assert_eq!(rn.raft.trk.progress[&1].matched, 1);
    // Committed but not durable here: nothing is handed out for applying.
    let s2 = split(rn.ready());
    assert!(s2.apply.is_none());
    let resps = do_append(&mut rn, &s.append.unwrap());
    deliver(&mut rn, resps);
    let s3 = split(rn.ready());
    let apply = s3.apply.expect("durable and committed: applied now");
    assert_eq!(apply.entries.last().unwrap().index, 2);
}

#[test]
fn further_readys_while_a_write_is_in_flight() {
    let mut rn = leader_of_three();
    rn.propose(Bytes::from_static(b"a")).unwrap();
    let first = split(rn.ready()).append.unwrap();
    rn.propose(Bytes::from_static(b"b")).unwrap();
    assert!(rn.has_ready());
    let second = split(rn.ready()).append.unwrap();
    // The second Ready carries only what the first did not.
    assert_eq!(
        first.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(
        second.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        [3]
    );
    assert!(
        !rn.has_ready(),
        "both writes handed out; nothing else to do"
    );
    // Processed in order, their acknowledgements release the unstable log.
    let r1 = do_append(&mut rn, &first);
    let r2 = do_append(&mut rn, &second);
    deliver(&mut rn, r1);
    assert_eq!(rn.raft.trk.progress[&1].matched, 2);
    assert_eq!(rn.raft.raft_log.unstable.entries.len(), 1);
    deliver(&mut rn, r2);
    assert_eq!(rn.raft.trk.progress[&1].matched, 3);
    assert!(rn.raft.raft_log.unstable.entries.is_empty());
    assert_eq!(rn.store().last_index().unwrap(), 3);
}

#[test]
#[should_panic(expected = "advance must not be called")]
fn advance_is_a_contract_break_in_async_mode() {
    let mut rn = async_node(1, &[1]);
    rn.campaign().unwrap();
    let rd = rn.ready();
    rn.advance(rd);
}

/// Node 2 of [1, 2, 3], a follower at term 1 that received entries 1..=2
/// from leader 1 and handed them to its append thread (not yet done).
fn follower_with_write_in_flight() -> (RawNode<MemStorage>, Message) {
    let mut rn = async_node(2, &[1, 2, 3]);
    let ents = vec![
        Entry {
            term: 1,
            index: 1,
            ..Default::default()
        },
        Entry {
            term: 1,
            index: 2,
            data: Bytes::from_static(b"x"),
            ..Default::default()
        },
    ];
    rn.step(Message {
        r#type: MessageType::MsgApp as i32,
        from: 1,
        to: 2,
        term: 1,
        entries: ents,
        commit: 2,
        ..Default::default()
    })
    .unwrap();
    let s = split(rn.ready());
    assert!(s.net.is_empty(), "the ack waits for durability");
    assert!(s.apply.is_none(), "committed entries wait for durability");
    let append = s.append.unwrap();
    let to_leader: Vec<&Message> = append.responses.iter().filter(|m| m.to == 1).collect();
    assert_eq!(to_leader.len(), 1);
    assert_eq!(to_leader[0].r#type(), MessageType::MsgAppResp);
    (rn, append)
}

#[test]
fn stale_append_response_after_a_term_change_is_ignored() {
    let (mut rn, append) = follower_with_write_in_flight();
    let resps = do_append(&mut rn, &append);
    // A vote request of term 2 arrives before the append thread answers.
    rn.step(Message {
        r#type: MessageType::MsgVote as i32,
        from: 3,
        to: 2,
        term: 2,
        log_term: 1,
        index: 2,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(rn.raft.term, 2);
    deliver(&mut rn, resps);
    // The term-1 acknowledgement could vouch for entries replaced since: the
    // unstable log is kept.
    assert_eq!(rn.raft.raft_log.unstable.entries.len(), 2);
    // The term change brings a new MsgStorageAppend (hard state) whose
    // acknowledgement, at term 2, names the last entry and releases it.
    let s = split(rn.ready());
    let append2 = s.append.unwrap();
    assert_eq!((append2.term, append2.vote), (2, 3));
    let ack = append2.responses.last().unwrap();
    assert_eq!(ack.r#type(), MessageType::MsgStorageAppendResp);
    assert_eq!((ack.term, ack.log_term, ack.index), (2, 1, 2));
    let resps2 = do_append(&mut rn, &append2);
    deliver(&mut rn, resps2);
    assert!(rn.raft.raft_log.unstable.entries.is_empty());
}

#[test]
fn apply_work_is_handed_out_once_and_acknowledged_by_its_response() {
    let (mut rn, append) = follower_with_write_in_flight();
    let resps = do_append(&mut rn, &append);
    deliver(&mut rn, resps);
    let apply = split(rn.ready()).apply.expect("durable and committed");
    assert_eq!(apply.entries.len(), 2);
    assert_eq!(apply.term, 0, "applying is not bound to a term");
    let resp = &apply.responses[0];
    assert_eq!(resp.r#type(), MessageType::MsgStorageApplyResp);
    assert_eq!((resp.from, resp.to), (LOCAL_APPLY_THREAD, 2));
    assert_eq!(resp.entries, apply.entries);
    // In flight: handed out, not applied, and not handed out again.
    assert_eq!(rn.raft.raft_log.applied, 0);
    assert!(!rn.has_ready());
    deliver(&mut rn, apply.responses.clone());
    assert_eq!(rn.raft.raft_log.applied, 2);
}

#[test]
fn applying_quota_spans_readys_until_the_apply_response() {
    let mut c = test_config(2, 10, 1);
    c.async_storage_writes = true;
    c.max_committed_size_per_ready = 1; // one entry at a time
    let mut rn = RawNode::new(&c, storage_with(&[1, 2, 3], &[])).unwrap();
    let ents = (1..=3)
        .map(|i| Entry {
            term: 1,
            index: i,
            data: Bytes::from_static(b"abc"),
            ..Default::default()
        })
        .collect();
    rn.step(Message {
        r#type: MessageType::MsgApp as i32,
        from: 1,
        to: 2,
        term: 1,
        entries: ents,
        commit: 3,
        ..Default::default()
    })
    .unwrap();
    let append = split(rn.ready()).append.unwrap();
    let resps = do_append(&mut rn, &append);
    deliver(&mut rn, resps);
    let first = split(rn.ready()).apply.unwrap();
    assert_eq!(first.entries.len(), 1);
    assert!(!rn.has_ready(), "paused until the first apply is answered");
    deliver(&mut rn, first.responses.clone());
    let second = split(rn.ready()).apply.unwrap();
    assert_eq!(second.entries[0].index, 2);
}

fn snapshot_msg(term: u64, index: u64) -> Message {
    Message {
        r#type: MessageType::MsgSnap as i32,
        from: 1,
        to: 2,
        term,
        snapshot: Some(Box::new(Snapshot {
            metadata: Some(SnapshotMetadata {
                index,
                term: 1,
                conf_state: Some(ConfState {
                    voters: vec![1, 2, 3],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn snapshot_goes_to_the_append_thread_and_is_applied_on_its_response() {
    let mut rn = async_node(2, &[1, 2, 3]);
    rn.step(snapshot_msg(1, 10)).unwrap();
    let s = split(rn.ready());
    assert!(s.apply.is_none());
    let append = s.append.unwrap();
    assert_eq!(
        append
            .snapshot
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .index,
        10
    );
    let ack = append.responses.last().unwrap();
    assert_eq!(ack.r#type(), MessageType::MsgStorageAppendResp);
    assert!(ack.snapshot.is_some());
    assert!(
        !rn.raft.promotable(),
        "a snapshot in flight blocks campaigns"
    );
    let resps = do_append(&mut rn, &append);
    let rest = deliver(&mut rn, resps);
    assert_eq!(rest[0].r#type(), MessageType::MsgAppResp);
    assert_eq!(rest[0].index, 10);
    assert_eq!(rn.raft.raft_log.applied, 10);
    assert!(rn.raft.raft_log.unstable.snapshot.is_none());
    assert!(rn.raft.promotable());
}

#[test]
fn snapshot_acknowledged_after_a_term_change_still_counts() {
    let mut rn = async_node(2, &[1, 2, 3]);
    rn.step(snapshot_msg(1, 10)).unwrap();
    let append = split(rn.ready()).append.unwrap();
    let resps = do_append(&mut rn, &append);
    rn.step(Message {
        r#type: MessageType::MsgHeartbeat as i32,
        from: 3,
        to: 2,
        term: 2,
        commit: 10,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(rn.raft.term, 2);
    deliver(&mut rn, resps);
    // A snapshot is committed state: its application holds at any term.
    assert_eq!(rn.raft.raft_log.applied, 10);
    assert!(rn.raft.raft_log.unstable.snapshot.is_none());
}

#[test]
fn storage_messages_come_only_from_the_storage_threads_of_an_async_node() {
    let resp = |from: u64| Message {
        r#type: MessageType::MsgStorageAppendResp as i32,
        from,
        to: 1,
        term: 1,
        index: 1,
        log_term: 1,
        ..Default::default()
    };
    let mut rn = async_node(1, &[1, 2]);
    assert_eq!(rn.step(resp(2)), Err(Error::StepLocalMsg));
    assert_eq!(rn.step(resp(LOCAL_APPEND_THREAD)), Ok(()));
    let mut sync = RawNode::new(&test_config(1, 10, 1), storage_with(&[1, 2], &[])).unwrap();
    assert_eq!(
        sync.step(resp(LOCAL_APPEND_THREAD)),
        Err(Error::StepLocalMsg)
    );
}

#[test]
fn apply_response_beyond_the_commit_index_is_dropped() {
    let mut rn = async_node(1, &[1, 2]);
    let bogus = Message {
        r#type: MessageType::MsgStorageApplyResp as i32,
        from: LOCAL_APPLY_THREAD,
        to: 1,
        entries: vec![Entry {
            term: 1,
            index: 5,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(rn.step(bogus), Ok(()));
    assert_eq!(rn.raft.raft_log.applied, 0);
}

#[test]
fn single_node_elects_commits_and_applies_through_its_threads() {
    let mut rn = async_node(1, &[1]);
    rn.campaign().unwrap();
    // The vote for itself waits for the append thread.
    let append = split(rn.ready()).append.unwrap();
    assert_eq!(append.responses[0].r#type(), MessageType::MsgVoteResp);
    assert_eq!(rn.raft.state, StateType::Candidate);
    let resps = do_append(&mut rn, &append);
    deliver(&mut rn, resps);
    assert_eq!(rn.raft.state, StateType::Leader);
    rn.propose(Bytes::from_static(b"x")).unwrap();
    settle(&mut rn);
    assert_eq!(rn.raft.raft_log.committed, 2);
    assert_eq!(rn.raft.raft_log.applied, 2);
    assert_eq!(rn.store().last_index().unwrap(), 2);
}

/// A candidate whose term and self-vote are still in flight must not win on
/// the others' votes alone: if it crashed before the write completed it
/// would restart at the older term, campaign for the same term again, win
/// it again from the same voters (who repeat their vote), and lead one term
/// twice with two different logs (found by corelog-sim, seed 982 with
/// `--async-writes` and stalled disks).
#[test]
fn candidate_wins_only_once_its_own_vote_is_durable() {
    let mut rn = async_node(1, &[1, 2, 3]);
    rn.campaign().unwrap();
    let s = split(rn.ready());
    let append = s.append.unwrap();
    assert_eq!((append.term, append.vote), (1, 1));
    for from in [2, 3] {
        rn.step(Message {
            r#type: MessageType::MsgVoteResp as i32,
            from,
            to: 1,
            term: 1,
            ..Default::default()
        })
        .unwrap();
    }
    assert_eq!(
        rn.raft.state,
        StateType::Candidate,
        "a quorum of others, but the term is not durable here yet"
    );
    let resps = do_append(&mut rn, &append);
    deliver(&mut rn, resps);
    assert_eq!(rn.raft.state, StateType::Leader);
}
