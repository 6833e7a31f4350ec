//! Tests of `RawNode` and the Ready/advance contract, ported from the
//! important cases of etcd-raft's rawnode_test.go, plus checks of the
//! synchronous-storage ordering (own acks stepped on advance) and of the
//! contract panics.

use bytes::Bytes;
use prost::Message as _;

use super::raft_tests::{storage_with, test_config};
use super::*;
use crate::raftpb::{
    ConfChange, ConfChangeI, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2,
    ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};

fn new_node(voters: &[u64]) -> RawNode<MemStorage> {
    RawNode::new(&test_config(1, 10, 1), storage_with(voters, &[])).unwrap()
}

/// Persists a Ready the way an application would (entries, hard state).
fn persist(rn: &mut RawNode<MemStorage>, rd: &Ready) {
    if let Some(s) = &rd.snapshot {
        rn.store_mut().apply_snapshot(s.clone()).unwrap();
    }
    rn.store_mut().append(&rd.entries).unwrap();
    if let Some(hs) = rd.hard_state {
        rn.store_mut().set_hard_state(hs);
    }
}

fn decode_cc(e: &Entry) -> Option<Box<dyn ConfChangeI>> {
    match e.r#type() {
        EntryType::EntryConfChange => Some(Box::new(ConfChange::decode(e.data.clone()).unwrap())),
        EntryType::EntryConfChangeV2 => {
            Some(Box::new(ConfChangeV2::decode(e.data.clone()).unwrap()))
        }
        EntryType::EntryNormal => None,
    }
}

fn single(t: ConfChangeType, id: u64) -> ConfChangeSingle {
    ConfChangeSingle {
        r#type: t as i32,
        node_id: id,
    }
}

/// Campaigns and runs Ready cycles until the node is leader.
fn elect(rn: &mut RawNode<MemStorage>) {
    rn.campaign().unwrap();
    loop {
        let rd = rn.ready();
        persist(rn, &rd);
        let lead = rd.soft_state.map(|s| s.lead);
        rn.advance(rd);
        if lead == Some(rn.raft.id) {
            break;
        }
    }
}

#[test]
fn step_refuses_local_messages_and_unknown_responders() {
    for t in 0..=22 {
        let mut s = MemStorage::new();
        s.apply_snapshot(Snapshot {
            metadata: Some(SnapshotMetadata {
                conf_state: Some(ConfState {
                    voters: vec![1],
                    ..Default::default()
                }),
                index: 1,
                term: 1,
            }),
            ..Default::default()
        })
        .unwrap();
        s.set_hard_state(HardState {
            term: 1,
            commit: 1,
            vote: 0,
        });
        let mut rn = RawNode::new(&test_config(1, 10, 1), s).unwrap();
        let mt = MessageType::try_from(t).unwrap();
        let res = rn.step(Message {
            r#type: t,
            ..Default::default()
        });
        if mt.is_local() {
            assert_eq!(res, Err(Error::StepLocalMsg), "{mt:?}");
        } else if mt.is_response() {
            assert_eq!(res, Err(Error::StepPeerNotFound), "{mt:?}");
        }
    }
}

#[test]
fn propose_and_conf_change() {
    type Case = (Box<dyn ConfChangeI>, ConfState, Option<ConfState>);
    let cs =
        |voters: &[u64], outgoing: &[u64], learners: &[u64], next: &[u64], auto: bool| ConfState {
            voters: voters.to_vec(),
            voters_outgoing: outgoing.to_vec(),
            learners: learners.to_vec(),
            learners_next: next.to_vec(),
            auto_leave: auto,
        };
    let v2 = |changes: Vec<ConfChangeSingle>, tr: ConfChangeTransition| ConfChangeV2 {
        transition: tr as i32,
        changes,
        ..Default::default()
    };
    use ConfChangeTransition::{
        ConfChangeTransitionAuto as Auto, ConfChangeTransitionJointExplicit as Explicit,
        ConfChangeTransitionJointImplicit as Implicit,
    };
    use ConfChangeType::{ConfChangeAddLearnerNode as L, ConfChangeAddNode as V};
    let three = || vec![single(V, 2), single(L, 1), single(L, 3)];
    let cases: Vec<Case> = vec![
        (
            Box::new(ConfChange {
                r#type: V as i32,
                node_id: 2,
                ..Default::default()
            }),
            cs(&[1, 2], &[], &[], &[], false),
            None,
        ),
        (
            Box::new(v2(vec![single(V, 2)], Auto)),
            cs(&[1, 2], &[], &[], &[], false),
            None,
        ),
        (
            Box::new(v2(vec![single(L, 2)], Auto)),
            cs(&[1], &[], &[2], &[], false),
            None,
        ),
        (
            Box::new(v2(vec![single(L, 2)], Explicit)),
            cs(&[1], &[1], &[2], &[], false),
            Some(cs(&[1], &[], &[2], &[], false)),
        ),
        (
            Box::new(v2(vec![single(L, 2)], Implicit)),
            cs(&[1], &[1], &[2], &[], true),
            Some(cs(&[1], &[], &[2], &[], false)),
        ),
        (
            Box::new(v2(three(), Auto)),
            cs(&[2], &[1], &[3], &[1], true),
            Some(cs(&[2], &[], &[1, 3], &[], false)),
        ),
        (
            Box::new(v2(three(), Explicit)),
            cs(&[2], &[1], &[3], &[1], false),
            Some(cs(&[2], &[], &[1, 3], &[], false)),
        ),
        (
            Box::new(v2(three(), Implicit)),
            cs(&[2], &[1], &[3], &[1], true),
            Some(cs(&[2], &[], &[1, 3], &[], false)),
        ),
    ];
    for (i, (cc, exp, exp2)) in cases.into_iter().enumerate() {
        let mut rn = new_node(&[1]);
        rn.campaign().unwrap();
        let mut proposed = false;
        let mut ccdata = Bytes::new();
        let mut got: Option<ConfState> = None;
        while got.is_none() {
            let rd = rn.ready();
            persist(&mut rn, &rd);
            for e in &rd.committed_entries {
                if let Some(c) = decode_cc(e) {
                    got = Some(rn.apply_conf_change(c.as_ref()));
                }
            }
            let lead = rd.soft_state.map(|s| s.lead);
            rn.advance(rd);
            if !proposed && lead == Some(rn.raft.id) {
                rn.propose(Bytes::from_static(b"somedata")).unwrap();
                ccdata = crate::raftpb::marshal_conf_change(cc.as_ref()).1;
                rn.propose_conf_change(cc.as_ref()).unwrap();
                proposed = true;
            }
        }
        let got = got.unwrap();

        let last_index = rn.store().last_index().unwrap();
        let entries = rn
            .store()
            .entries(last_index - 1, last_index + 1, u64::MAX)
            .unwrap();
        assert_eq!(entries.len(), 2, "#{i}");
        assert_eq!(&entries[0].data[..], b"somedata", "#{i}");
        let typ = if cc.as_v1().is_some() {
            EntryType::EntryConfChange
        } else {
            EntryType::EntryConfChangeV2
        };
        assert_eq!(entries[1].r#type(), typ, "#{i}");
        assert_eq!(entries[1].data, ccdata, "#{i}");
        assert_eq!(got, exp, "#{i}");

        let plus_one = u64::from(cc.as_v2().enter_joint() == Some(true));
        assert_eq!(rn.raft.pending_conf_index, last_index + plus_one, "#{i}");

        let mut rd = rn.ready();
        let mut context = Bytes::new();
        if !exp.auto_leave {
            assert!(rd.entries.is_empty(), "#{i}");
            rn.advance(rd);
            let Some(_) = exp2 else {
                continue;
            };
            context = Bytes::from_static(b"manual");
            rn.propose_conf_change(&ConfChangeV2 {
                context: context.clone(),
                ..Default::default()
            })
            .unwrap();
            rd = rn.ready();
        }
        assert_eq!(rd.entries.len(), 1, "#{i}");
        assert_eq!(rd.entries[0].r#type(), EntryType::EntryConfChangeV2, "#{i}");
        let leave = ConfChangeV2::decode(rd.entries[0].data.clone()).unwrap();
        assert_eq!(
            leave,
            ConfChangeV2 {
                context,
                ..Default::default()
            },
            "#{i}"
        );
        let got2 = rn.apply_conf_change(&leave);
        assert_eq!(Some(got2), exp2, "#{i}");
        rn.advance(rd);
    }
}

#[test]
fn joint_auto_leave_waits_for_leadership() {
    let test_cc = ConfChangeV2 {
        transition: ConfChangeTransition::ConfChangeTransitionJointImplicit as i32,
        changes: vec![single(ConfChangeType::ConfChangeAddLearnerNode, 2)],
        ..Default::default()
    };
    let exp_cs = ConfState {
        voters: vec![1],
        voters_outgoing: vec![1],
        learners: vec![2],
        auto_leave: true,
        ..Default::default()
    };
    let exp2_cs = ConfState {
        voters: vec![1],
        learners: vec![2],
        ..Default::default()
    };
    let mut rn = new_node(&[1]);
    rn.campaign().unwrap();
    let mut proposed = false;
    let mut got = None;
    while got.is_none() {
        let rd = rn.ready();
        persist(&mut rn, &rd);
        for e in &rd.committed_entries {
            if e.r#type() == EntryType::EntryConfChangeV2 {
                let cc = ConfChangeV2::decode(e.data.clone()).unwrap();
                // Lose leadership before applying the change: the auto-leave
                // must then wait for the next leadership.
                let term = rn.raft.term + 1;
                let _ = rn.step(Message {
                    r#type: MessageType::MsgHeartbeatResp as i32,
                    from: 1,
                    term,
                    ..Default::default()
                });
                got = Some(rn.apply_conf_change(&cc));
            }
        }
        let lead = rd.soft_state.map(|s| s.lead);
        rn.advance(rd);
        if !proposed && lead == Some(rn.raft.id) {
            rn.propose(Bytes::from_static(b"somedata")).unwrap();
            rn.propose_conf_change(&test_cc).unwrap();
            proposed = true;
        }
    }
    assert_eq!(got.unwrap(), exp_cs);
    assert_eq!(rn.raft.pending_conf_index, 0);

    // Becoming leader again proposes the leave.
    rn.campaign().unwrap();
    let mut leave = None;
    for _ in 0..4 {
        let rd = rn.ready();
        persist(&mut rn, &rd);
        if let Some(e) = rd
            .entries
            .iter()
            .find(|e| e.r#type() == EntryType::EntryConfChangeV2)
        {
            leave = Some(ConfChangeV2::decode(e.data.clone()).unwrap());
        }
        rn.advance(rd);
        if leave.is_some() {
            break;
        }
    }
    let leave = leave.expect("auto-leave proposed");
    assert_eq!(leave, ConfChangeV2::default());
    assert_eq!(rn.apply_conf_change(&leave), exp2_cs);
}

#[test]
fn propose_add_duplicate_node() {
    let mut rn = new_node(&[1]);
    let rd = rn.ready();
    persist(&mut rn, &rd);
    rn.advance(rd);
    elect(&mut rn);

    let propose_and_apply = |rn: &mut RawNode<MemStorage>, cc: &ConfChange| {
        rn.propose_conf_change(cc).unwrap();
        let rd = rn.ready();
        persist(rn, &rd);
        for e in &rd.committed_entries {
            if e.r#type() == EntryType::EntryConfChange {
                let cc = ConfChange::decode(e.data.clone()).unwrap();
                rn.apply_conf_change(&cc);
            }
        }
        rn.advance(rd);
    };
    let cc1 = ConfChange {
        r#type: ConfChangeType::ConfChangeAddNode as i32,
        node_id: 1,
        ..Default::default()
    };
    propose_and_apply(&mut rn, &cc1);
    // Adding the same node again is harmless.
    propose_and_apply(&mut rn, &cc1);
    let cc2 = ConfChange {
        r#type: ConfChangeType::ConfChangeAddNode as i32,
        node_id: 2,
        ..Default::default()
    };
    propose_and_apply(&mut rn, &cc2);

    let last = rn.store().last_index().unwrap();
    let ents = rn.store().entries(last - 2, last + 1, u64::MAX).unwrap();
    assert_eq!(ents.len(), 3);
    assert_eq!(ents[0].data, Bytes::from(cc1.encode_to_vec()));
    assert_eq!(ents[2].data, Bytes::from(cc2.encode_to_vec()));
}

#[test]
fn read_index_states_come_out_once() {
    let mut rn = new_node(&[1]);
    let wrs = vec![ReadState {
        index: 1,
        request_ctx: Bytes::from_static(b"somedata"),
    }];
    rn.raft.read_states = wrs.clone();
    assert!(rn.has_ready());
    let rd = rn.ready();
    assert_eq!(rd.read_states, wrs);
    persist(&mut rn, &rd);
    rn.advance(rd);
    assert!(rn.raft.read_states.is_empty());

    elect(&mut rn);
    // A single voter answers reads at once with its commit index.
    rn.read_index(Bytes::from_static(b"somedata2"));
    let rd = rn.ready();
    assert_eq!(rd.read_states.len(), 1);
    assert_eq!(&rd.read_states[0].request_ctx[..], b"somedata2");
    assert_eq!(rd.read_states[0].index, rn.raft.raft_log.committed);
    rn.advance(rd);
}

/// The only voter of a joint configuration (`[1]` both incoming and
/// outgoing) is a quorum of its own: its own heartbeat ack confirms a Safe
/// read, with no peer to answer. (Found by corelog-sim's calm-phase read:
/// the read waited for a heartbeat response that never comes.)
#[test]
fn a_joint_configuration_of_one_voter_answers_reads_by_itself() {
    let mut s = MemStorage::new();
    s.apply_snapshot(Snapshot {
        metadata: Some(SnapshotMetadata {
            index: 2,
            term: 1,
            conf_state: Some(ConfState {
                voters: vec![1],
                voters_outgoing: vec![1],
                ..Default::default()
            }),
        }),
        ..Default::default()
    })
    .unwrap();
    let mut c = test_config(1, 10, 1);
    c.applied = 2;
    let mut rn = RawNode::new(&c, s).unwrap();
    elect(&mut rn);
    while rn.has_ready() {
        let rd = rn.ready();
        persist(&mut rn, &rd);
        rn.advance(rd);
    }
    assert_eq!(rn.raft.raft_log.committed, 3, "the empty entry commits");
    rn.read_index(Bytes::from_static(b"joint"));
    let mut answered = Vec::new();
    while rn.has_ready() {
        let rd = rn.ready();
        answered.extend(rd.read_states.iter().cloned());
        persist(&mut rn, &rd);
        rn.advance(rd);
    }
    assert_eq!(answered.len(), 1, "the read is answered without any peer");
    assert_eq!(&answered[0].request_ctx[..], b"joint");
    assert_eq!(answered[0].index, 3);
}

/// A Safe read waiting for heartbeat acks is confirmed as soon as the
/// configuration shrinks to voters that acknowledged it: with node 2 removed,
/// node 1 alone is the quorum, and no heartbeat response will ever come.
/// (Found by corelog-sim's calm-phase read, seed 816.)
#[test]
fn a_read_waiting_for_a_removed_voter_is_answered_once_it_is_gone() {
    let mut rn = RawNode::new(&test_config(1, 10, 1), storage_with(&[1, 2], &[])).unwrap();
    // Handles Readys; answers each append to node 2 as node 2 would (its
    // log matching), and drops the rest (heartbeats) unless told.
    fn cycle(rn: &mut RawNode<MemStorage>, reads: &mut Vec<ReadState>) {
        while rn.has_ready() {
            let rd = rn.ready();
            persist(rn, &rd);
            reads.extend(rd.read_states.iter().cloned());
            let msgs = rd.messages.clone();
            for e in &rd.committed_entries {
                if let Some(cc) = decode_cc(e) {
                    rn.apply_conf_change(cc.as_ref());
                }
            }
            rn.advance(rd);
            for m in msgs {
                let resp = match m.r#type() {
                    MessageType::MsgVote => MessageType::MsgVoteResp,
                    MessageType::MsgApp => MessageType::MsgAppResp,
                    _ => continue,
                };
                let index = m.index + m.entries.len() as u64;
                // Once removed, node 2's answers are refused.
                let _ = rn.step(Message {
                    r#type: resp as i32,
                    from: 2,
                    to: 1,
                    term: m.term,
                    index,
                    ..Default::default()
                });
            }
        }
    }
    let mut reads = Vec::new();
    rn.campaign().unwrap();
    cycle(&mut rn, &mut reads);
    assert_eq!(rn.raft.state, StateType::Leader);
    let committed = rn.raft.raft_log.committed;
    rn.read_index(Bytes::from_static(b"r"));
    // The heartbeat carrying the read's context goes unanswered; node 2 is
    // removed, which node 2 acknowledges.
    rn.propose_conf_change(&ConfChangeV2 {
        changes: vec![single(ConfChangeType::ConfChangeRemoveNode, 2)],
        ..Default::default()
    })
    .unwrap();
    cycle(&mut rn, &mut reads);
    assert_eq!(
        rn.raft.trk.config.voters.ids().len(),
        1,
        "node 2 is removed"
    );
    assert_eq!(reads.len(), 1, "the read is answered by the new quorum");
    assert_eq!(reads[0].index, committed);
}

#[test]
fn start_from_a_bootstrapped_snapshot() {
    let mut s = MemStorage::new();
    s.apply_snapshot(Snapshot {
        metadata: Some(SnapshotMetadata {
            index: 1,
            term: 0,
            conf_state: Some(ConfState {
                voters: vec![1],
                ..Default::default()
            }),
        }),
        ..Default::default()
    })
    .unwrap();
    let mut rn = RawNode::new(&test_config(1, 10, 1), s).unwrap();
    assert!(!rn.has_ready());

    rn.campaign().unwrap();
    let rd = rn.ready();
    persist(&mut rn, &rd);
    rn.advance(rd);
    rn.propose(Bytes::from_static(b"foo")).unwrap();
    assert!(rn.has_ready());

    let want = vec![
        Entry {
            term: 1,
            index: 2,
            ..Default::default()
        },
        Entry {
            term: 1,
            index: 3,
            data: Bytes::from_static(b"foo"),
            ..Default::default()
        },
    ];
    let rd = rn.ready();
    assert_eq!(rd.entries, want);
    persist(&mut rn, &rd);
    rn.advance(rd);

    assert!(rn.has_ready());
    let rd = rn.ready();
    assert!(rd.entries.is_empty());
    assert!(!rd.must_sync);
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 1,
            commit: 3,
            vote: 1
        })
    );
    assert_eq!(rd.committed_entries, want);
    rn.advance(rd);
    assert!(!rn.has_ready());
}

#[test]
fn restart() {
    let entries = vec![
        Entry {
            term: 1,
            index: 1,
            ..Default::default()
        },
        Entry {
            term: 1,
            index: 2,
            data: Bytes::from_static(b"foo"),
            ..Default::default()
        },
    ];
    let mut s = storage_with(&[1], &[]);
    s.set_hard_state(HardState {
        term: 1,
        commit: 1,
        vote: 0,
    });
    s.append(&entries).unwrap();
    let mut rn = RawNode::new(&test_config(1, 10, 1), s).unwrap();
    let rd = rn.ready();
    assert_eq!(
        rd,
        Ready {
            committed_entries: entries[..1].to_vec(),
            ..Default::default()
        }
    );
    rn.advance(rd);
    assert!(!rn.has_ready());
}

#[test]
fn restart_from_snapshot() {
    let snap = Snapshot {
        metadata: Some(SnapshotMetadata {
            conf_state: Some(ConfState {
                voters: vec![1, 2],
                ..Default::default()
            }),
            index: 2,
            term: 1,
        }),
        ..Default::default()
    };
    let entries = vec![Entry {
        term: 1,
        index: 3,
        data: Bytes::from_static(b"foo"),
        ..Default::default()
    }];
    let mut s = MemStorage::new();
    s.set_hard_state(HardState {
        term: 1,
        commit: 3,
        vote: 0,
    });
    s.apply_snapshot(snap).unwrap();
    s.append(&entries).unwrap();
    let mut rn = RawNode::new(&test_config(1, 10, 1), s).unwrap();
    let rd = rn.ready();
    assert_eq!(
        rd,
        Ready {
            committed_entries: entries,
            ..Default::default()
        }
    );
    rn.advance(rd);
    assert!(!rn.has_ready());
}

#[test]
fn status_has_progress_only_on_leaders() {
    let mut rn = new_node(&[1]);
    assert!(rn.status().progress.is_empty());
    rn.campaign().unwrap();
    let rd = rn.ready();
    persist(&mut rn, &rd);
    rn.advance(rd);
    let st = rn.status();
    assert_eq!(st.soft_state.lead, 1);
    assert_eq!(st.soft_state.raft_state, StateType::Leader);
    assert_eq!(st.progress[&1], rn.raft.trk.progress[&1]);
    assert_eq!(st.config, rn.raft.trk.config);
    assert_eq!(st.config.voters.ids().into_iter().collect::<Vec<_>>(), [1]);
    assert_eq!(st.id, 1);
    assert_eq!(st.hard_state, rn.raft.hard_state());

    let basic = rn.basic_status();
    assert_eq!(basic.soft_state, st.soft_state);
    assert_eq!(basic.hard_state, st.hard_state);
    assert_eq!(basic.applied, st.applied);
    let mut seen = Vec::new();
    rn.with_progress(|id, pr| seen.push((id, pr.matched)));
    assert_eq!(seen, vec![(1, st.progress[&1].matched)]);
}

/// A storage that returns more entries than asked for by size (a valid
/// Storage may ignore the size hint in either direction).
struct IgnoreSizeHint(MemStorage);

impl Storage for IgnoreSizeHint {
    fn initial_state(&self) -> Result<RaftState> {
        self.0.initial_state()
    }
    fn entries(&self, low: u64, high: u64, _max_size: u64) -> Result<Vec<Entry>> {
        self.0.entries(low, high, u64::MAX)
    }
    fn term(&self, idx: u64) -> Result<u64> {
        self.0.term(idx)
    }
    fn first_index(&self) -> Result<u64> {
        self.0.first_index()
    }
    fn last_index(&self) -> Result<u64> {
        self.0.last_index()
    }
    fn snapshot(&self) -> Result<Snapshot> {
        self.0.snapshot()
    }
}

#[test]
fn commit_pagination_after_restart_leaves_no_gap() {
    let mut s = storage_with(&[1], &[]);
    s.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 10,
    });
    let ents: Vec<Entry> = (1..=10)
        .map(|i| Entry {
            term: 1,
            index: i,
            data: Bytes::from_static(b"a"),
            ..Default::default()
        })
        .collect();
    let size: u64 = ents.iter().map(entry_encoding_size).sum();
    let mut c = test_config(1, 10, 1);
    c.max_size_per_msg = size - entry_encoding_size(&ents[9]) - 1;
    s.append(&ents).unwrap();
    s.append(&[Entry {
        term: 1,
        index: 11,
        data: Bytes::from_static(b"boom"),
        ..Default::default()
    }])
    .unwrap();
    let mut rn = RawNode::new(&c, IgnoreSizeHint(s)).unwrap();

    let mut highest_applied = 0;
    while highest_applied != 11 {
        let rd = rn.ready();
        let n = rd.committed_entries.len();
        assert_ne!(n, 0, "stopped applying entries at index {highest_applied}");
        let next = rd.committed_entries[0].index;
        assert!(
            highest_applied == 0 || highest_applied + 1 == next,
            "applying {next} after {highest_applied} leaves a gap"
        );
        highest_applied = rd.committed_entries[n - 1].index;
        rn.advance(rd);
        let _ = rn.step(Message {
            r#type: MessageType::MsgHeartbeat as i32,
            to: 1,
            from: 2,
            term: 1,
            commit: 11,
            ..Default::default()
        });
    }
}

#[test]
fn bounded_log_growth_with_partition() {
    const MAX_ENTRIES: usize = 16;
    let data = Bytes::from_static(b"testdata");
    let max_entry_size = (MAX_ENTRIES * data.len()) as u64;
    let mut c = test_config(1, 10, 1);
    c.max_uncommitted_entries_size = max_entry_size;
    let mut rn = RawNode::new(&c, storage_with(&[1], &[])).unwrap();
    rn.campaign().unwrap();
    loop {
        let rd = rn.ready();
        persist(&mut rn, &rd);
        let done = !rd.committed_entries.is_empty();
        rn.advance(rd);
        if done {
            break;
        }
    }
    // Simulate a network partition while making our proposals by never
    // committing anything. These proposals should not cause unbounded growth.
    for _ in 0..1024 {
        let _ = rn.propose(data.clone());
    }
    assert_eq!(rn.raft.uncommitted_size, max_entry_size);

    let rd = rn.ready();
    assert_eq!(rd.entries.len(), MAX_ENTRIES);
    persist(&mut rn, &rd);
    rn.advance(rd);
    // Entries are appended, but not applied.
    assert_eq!(rn.raft.uncommitted_size, max_entry_size);

    let rd = rn.ready();
    assert!(rd.entries.is_empty());
    assert_eq!(rd.committed_entries.len(), MAX_ENTRIES);
    rn.advance(rd);
    assert_eq!(rn.raft.uncommitted_size, 0);
}

#[test]
fn ready_consumes_messages() {
    let mut rn = new_node(&[1]);
    let m1 = Message {
        context: Bytes::from_static(b"foo"),
        ..Default::default()
    };
    let m2 = Message {
        context: Bytes::from_static(b"bar"),
        ..Default::default()
    };
    rn.raft.msgs.push(m1.clone());
    let rd = rn.ready();
    assert!(rn.raft.msgs.is_empty());
    assert_eq!(rd.messages, vec![m1]);
    rn.raft.msgs.push(m2.clone());
    rn.advance(rd);
    assert_eq!(rn.raft.msgs, vec![m2]);
}

#[test]
fn leader_acks_its_own_entries_only_on_advance() {
    let mut rn = RawNode::new(&test_config(1, 10, 1), storage_with(&[1, 2, 3], &[])).unwrap();
    rn.raft.become_candidate();
    rn.raft.become_leader();
    let rd = rn.ready();
    // The leader sends appends before its own write (they are in
    // `messages`), but counts its own copy only after advance.
    assert_eq!(rd.entries.len(), 1);
    assert_eq!(rn.raft.trk.progress[&1].matched, 0);
    persist(&mut rn, &rd);
    rn.advance(rd);
    assert_eq!(rn.raft.trk.progress[&1].matched, 1);
}

#[test]
fn follower_answers_appends_only_after_persisting() {
    let mut rn = RawNode::new(&test_config(2, 10, 1), storage_with(&[1, 2], &[])).unwrap();
    rn.step(Message {
        r#type: MessageType::MsgApp as i32,
        from: 1,
        to: 2,
        term: 1,
        entries: vec![Entry {
            term: 1,
            index: 1,
            ..Default::default()
        }],
        ..Default::default()
    })
    .unwrap();
    let rd = rn.ready();
    assert!(rd.must_sync);
    assert_eq!(rd.entries.len(), 1);
    // The answer travels in the same Ready, to be sent after the write.
    assert_eq!(rd.messages.len(), 1);
    assert_eq!(rd.messages[0].r#type(), MessageType::MsgAppResp);
    assert_eq!(rd.messages[0].index, 1);
    persist(&mut rn, &rd);
    rn.advance(rd);
    assert!(!rn.raft.raft_log.has_next_or_in_progress_unstable_ents());
}

#[test]
#[should_panic(expected = "Ready/advance contract")]
fn second_ready_without_advance_panics() {
    let mut rn = new_node(&[1]);
    rn.campaign().unwrap();
    let _rd = rn.ready();
    // The self-vote and the entries wait for advance.
    rn.propose(Bytes::from_static(b"x")).ok();
    let _ = rn.ready();
}

#[test]
fn max_committed_size_per_ready_paginates_committed_entries() {
    let mut s = storage_with(&[1], &[]);
    let ents: Vec<Entry> = (1..=10)
        .map(|i| Entry {
            term: 1,
            index: i,
            data: Bytes::from(vec![b'x'; 100]),
            ..Default::default()
        })
        .collect();
    let one = entry_encoding_size(&ents[0]);
    s.append(&ents).unwrap();
    s.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 10,
    });
    let mut c = test_config(1, 10, 1);
    c.max_committed_size_per_ready = 3 * one;
    let mut rn = RawNode::new(&c, s).unwrap();
    let mut batches = Vec::new();
    while rn.has_ready() {
        let rd = rn.ready();
        batches.push(rd.committed_entries.len());
        rn.advance(rd);
    }
    assert_eq!(batches.iter().sum::<usize>(), 10);
    assert!(batches.iter().all(|&n| n <= 3), "{batches:?}");
}

#[test]
fn transfer_leader_and_report_calls_reach_the_leader() {
    let mut rn = RawNode::new(&test_config(1, 10, 1), storage_with(&[1, 2], &[])).unwrap();
    rn.raft.become_candidate();
    rn.raft.become_leader();
    let rd = rn.ready();
    persist(&mut rn, &rd);
    rn.advance(rd);

    rn.raft.trk.progress.get_mut(&2).unwrap().become_replicate();
    rn.report_unreachable(2);
    assert_eq!(
        rn.raft.trk.progress[&2].state,
        tracker::ProgressState::Probe
    );

    rn.raft.trk.progress.get_mut(&2).unwrap().become_snapshot(5);
    rn.report_snapshot(2, SnapshotStatus::Failure);
    assert_eq!(
        rn.raft.trk.progress[&2].state,
        tracker::ProgressState::Probe
    );

    rn.transfer_leader(2);
    assert_eq!(rn.raft.lead_transferee, 2);
    assert_eq!(rn.status().lead_transferee, 2);
}

// ---------------------------------------------------------------------------
// Robustness: garbage from the network never panics.

/// The core's generator, plus the value shapes garbage is made of.
struct Rng(Prng);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    /// Mostly small values, sometimes extreme ones.
    fn index(&mut self) -> u64 {
        match self.below(10) {
            0 => u64::MAX,
            1 => u64::MAX - 1,
            2 => self.next(),
            _ => self.below(30),
        }
    }
}

fn garbage_message(rng: &mut Rng, to: u64) -> Message {
    let n_ents = rng.below(4);
    let first = rng.index();
    let contiguous = rng.below(3) != 0;
    let entries = (0..n_ents)
        .map(|i| Entry {
            term: rng.index(),
            index: if contiguous {
                first.wrapping_add(i)
            } else {
                rng.index()
            },
            r#type: rng.below(4) as i32,
            data: if rng.below(4) == 0 {
                Bytes::from_static(&[0xff, 0x01, 0x02])
            } else {
                Bytes::new()
            },
        })
        .collect();
    let snapshot = (rng.below(4) == 0).then(|| Snapshot {
        metadata: Some(SnapshotMetadata {
            index: rng.index(),
            term: rng.index(),
            conf_state: Some(ConfState {
                voters: (0..rng.below(4)).map(|_| rng.below(5)).collect(),
                learners: (0..rng.below(3)).map(|_| rng.below(5)).collect(),
                voters_outgoing: (0..rng.below(3)).map(|_| rng.below(5)).collect(),
                learners_next: (0..rng.below(2)).map(|_| rng.below(5)).collect(),
                auto_leave: rng.below(2) == 0,
            }),
        }),
        ..Default::default()
    });
    Message {
        r#type: rng.below(21) as i32,
        to,
        from: rng.below(5),
        term: if rng.below(3) == 0 {
            rng.index()
        } else {
            rng.below(6)
        },
        log_term: rng.index(),
        index: rng.index(),
        entries,
        commit: rng.index(),
        snapshot: snapshot.map(Box::new),
        reject: rng.below(2) == 0,
        reject_hint: rng.index(),
        context: match rng.below(3) {
            0 => Bytes::new(),
            1 => Bytes::copy_from_slice(&rng.index().to_le_bytes()),
            _ => Bytes::from_static(b"CampaignTransfer"),
        },
        // Storage-thread fields: a peer has no business setting them, and
        // the local types that read them are refused from the network.
        vote: 0,
        responses: Vec::new(),
    }
}

#[test]
fn garbage_from_the_network_never_panics() {
    let mut total_commits = 0;
    for seed in 1..=24u64 {
        let mut rng = Rng(Prng::new(seed));
        let mut nodes: Vec<RawNode<MemStorage>> = (1..=3)
            .map(|id| {
                let mut c = test_config(id, 5, 1);
                c.pre_vote = seed % 2 == 0;
                c.check_quorum = seed % 3 == 0;
                c.random_seed = seed * 10 + id;
                RawNode::new(&c, storage_with(&[1, 2, 3], &[])).unwrap()
            })
            .collect();
        let mut inflight: Vec<Message> = Vec::new();
        for _ in 0..4000 {
            let i = rng.below(3) as usize;
            match rng.below(6) {
                0 => nodes[i].tick(),
                1 => {
                    let _ = nodes[i].propose(Bytes::from_static(b"data"));
                }
                2 => {
                    let to = i as u64 + 1;
                    let m = garbage_message(&mut rng, to);
                    let _ = nodes[i].step(m);
                }
                3 if !inflight.is_empty() => {
                    let k = rng.below(inflight.len() as u64) as usize;
                    let m = inflight.swap_remove(k);
                    if (1..=3).contains(&m.to) {
                        let _ = nodes[m.to as usize - 1].step(m);
                    }
                }
                _ => {
                    if nodes[i].has_ready() {
                        let rd = nodes[i].ready();
                        persist(&mut nodes[i], &rd);
                        for e in &rd.committed_entries {
                            if let Some(cc) = decode_cc_lenient(e) {
                                let _ = nodes[i].try_apply_conf_change(cc.as_ref());
                            }
                        }
                        inflight.extend(rd.messages.iter().cloned());
                        nodes[i].advance(rd);
                    }
                }
            }
            inflight.truncate(200);
        }
        let max_commit = nodes
            .iter()
            .map(|n| n.raft.raft_log.committed)
            .max()
            .unwrap_or(0);
        total_commits += max_commit;
    }
    // The clusters still made progress among the garbage.
    assert!(total_commits > 100, "{total_commits}");
}

fn decode_cc_lenient(e: &Entry) -> Option<Box<dyn ConfChangeI>> {
    match e.r#type() {
        EntryType::EntryConfChange => ConfChange::decode(e.data.clone())
            .ok()
            .map(|c| Box::new(c) as Box<dyn ConfChangeI>),
        EntryType::EntryConfChangeV2 => ConfChangeV2::decode(e.data.clone())
            .ok()
            .filter(|c| ConfChangeTransition::try_from(c.transition).is_ok())
            .map(|c| Box::new(c) as Box<dyn ConfChangeI>),
        EntryType::EntryNormal => None,
    }
}

// ---------------------------------------------------------------------------
// Safety under a hostile (but honest) network: drops, duplicates, reorders,
// partitions and crashes that lose nothing durable.

#[test]
fn random_network_keeps_election_and_state_machine_safety() {
    use std::collections::BTreeMap;
    for seed in 1..=16u64 {
        let mut rng = Rng(Prng::new(seed * 7919));
        let n = if seed % 2 == 0 { 3 } else { 5 };
        let voters: Vec<u64> = (1..=n).collect();
        let mk = |id: u64, s: MemStorage| {
            let mut c = test_config(id, 6, 1);
            c.pre_vote = seed % 3 != 0;
            c.check_quorum = seed % 4 == 0;
            c.max_inflight_msgs = 4;
            c.max_size_per_msg = 200;
            c.random_seed = seed * 100 + id;
            RawNode::new(&c, s).unwrap()
        };
        let mut nodes: Vec<RawNode<MemStorage>> = voters
            .iter()
            .map(|&id| mk(id, storage_with(&voters, &[])))
            .collect();
        // Per node, every applied entry as (index, term, data).
        let mut applied: Vec<Vec<(u64, u64, Bytes)>> = vec![Vec::new(); n as usize];
        let mut leaders: BTreeMap<u64, u64> = BTreeMap::new();
        let mut inflight: Vec<Message> = Vec::new();
        let mut cut: Option<u64> = None;
        let mut proposals = 0u64;

        for step in 0..6000 {
            let i = rng.below(n) as usize;
            match rng.below(10) {
                0..=2 => nodes[i].tick(),
                3 => {
                    proposals += 1;
                    let data = Bytes::from(format!("p{seed}-{proposals}"));
                    let _ = nodes[i].propose(data);
                }
                4..=6 if !inflight.is_empty() => {
                    let k = rng.below(inflight.len() as u64) as usize;
                    let m = if rng.below(20) == 0 {
                        inflight[k].clone() // duplicate
                    } else {
                        inflight.swap_remove(k)
                    };
                    let blocked = cut.is_some_and(|c| m.from == c || m.to == c);
                    if !blocked && rng.below(10) != 0 {
                        let _ = nodes[m.to as usize - 1].step(m);
                    }
                }
                7 if rng.below(50) == 0 => {
                    // Toggle a partition around one node.
                    cut = match cut {
                        Some(_) => None,
                        None => Some(rng.below(n) + 1),
                    };
                }
                8 if rng.below(200) == 0 => {
                    // Crash and restart: only durable state survives.
                    let id = i as u64 + 1;
                    let store = std::mem::take(nodes[i].store_mut());
                    let mut c = test_config(id, 6, 1);
                    c.pre_vote = seed % 3 != 0;
                    c.check_quorum = seed % 4 == 0;
                    c.max_inflight_msgs = 4;
                    c.max_size_per_msg = 200;
                    c.random_seed = seed * 100 + id + step;
                    c.applied = applied[i].last().map_or(0, |e| e.0);
                    nodes[i] = RawNode::new(&c, store).unwrap();
                }
                _ => {
                    if nodes[i].has_ready() {
                        let rd = nodes[i].ready();
                        persist(&mut nodes[i], &rd);
                        for e in &rd.committed_entries {
                            let next = applied[i].last().map_or(1, |l| l.0 + 1);
                            assert_eq!(e.index, next, "seed {seed}: node {} skipped", i + 1);
                            applied[i].push((e.index, e.term, e.data.clone()));
                        }
                        inflight.extend(rd.messages.iter().cloned());
                        nodes[i].advance(rd);
                    }
                }
            }
            inflight.truncate(400);
            for nd in &nodes {
                if nd.raft.state == StateType::Leader {
                    let prev = leaders.insert(nd.raft.term, nd.raft.id);
                    assert!(
                        prev.is_none() || prev == Some(nd.raft.id),
                        "seed {seed}: two leaders in term {}",
                        nd.raft.term
                    );
                }
            }
        }
        // Everything applied anywhere is a prefix of the longest history.
        let longest = applied.iter().max_by_key(|a| a.len()).unwrap().clone();
        for (i, a) in applied.iter().enumerate() {
            assert_eq!(
                &longest[..a.len()],
                &a[..],
                "seed {seed}: node {} diverged",
                i + 1
            );
        }
        assert!(!longest.is_empty(), "seed {seed}: nothing committed");
    }
}

#[test]
fn applied_outside_the_log_is_a_config_error() {
    let mut s = storage_with(&[1], &[]);
    s.append(&[Entry {
        term: 1,
        index: 1,
        ..Default::default()
    }])
    .unwrap();
    s.set_hard_state(HardState {
        term: 1,
        vote: 0,
        commit: 1,
    });
    let mut c = test_config(1, 10, 1);
    c.applied = 5;
    match RawNode::new(&c, s) {
        Err(Error::ConfigInvalid { field, .. }) => assert_eq!(field, "applied"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("applied beyond the commit index was accepted"),
    }
}
