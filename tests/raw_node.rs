//! The `RawNode` driver contract, as etcd-raft's rawnode_test.go checks it:
//! local messages refused by `step`, conf changes proposed and applied
//! (v1, v2, joint with automatic or explicit leave), duplicate adds, read
//! states, bootstrap and restart Readys, status, commit pagination with a
//! storage that ignores size hints, the uncommitted-size bound while
//! partitioned, and messages moving from the node into the Ready.

use bytes::Bytes;
use corelog::raft::quorum::{JointConfig, MajorityConfig};
use corelog::raft::tracker::TrackerConfig;
use corelog::raft::{
    Config, Error, MemStorage, RaftState, RawNode, ReadState, Ready, Result as RaftResult,
    StateType, Storage, entry_encoding_size,
};
use corelog::raftpb::{
    ConfChange, ConfChangeI, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2,
    ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};
use prost::Message as _;

fn test_config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        max_size_per_msg: u64::MAX,
        max_inflight_msgs: 256,
        ..Config::default()
    }
}

fn storage(voters: &[u64]) -> MemStorage {
    MemStorage::new_with_conf_state(ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    })
}

fn entry(term: u64, index: u64, data: &'static [u8]) -> Entry {
    Entry {
        term,
        index,
        data: Bytes::from_static(data),
        ..Default::default()
    }
}

fn snapshot(index: u64, term: u64, voters: &[u64]) -> Snapshot {
    Snapshot {
        data: Bytes::new(),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(ConfState {
                voters: voters.to_vec(),
                ..Default::default()
            }),
            index,
            term,
        }),
    }
}

fn single(t: ConfChangeType, id: u64) -> ConfChangeSingle {
    ConfChangeSingle {
        r#type: t as i32,
        node_id: id,
    }
}

fn v2(transition: ConfChangeTransition, changes: Vec<ConfChangeSingle>) -> ConfChangeV2 {
    ConfChangeV2 {
        transition: transition as i32,
        changes,
        ..Default::default()
    }
}

/// Persists a Ready's entries into the node's own storage.
fn persist(rn: &mut RawNode<MemStorage>, rd: &Ready) {
    rn.store_mut()
        .append(&rd.entries)
        .expect("Ready entries follow the stable log");
}

/// The conf change a committed entry carries, if it is one.
fn decode_conf_change(e: &Entry) -> Option<Box<dyn ConfChangeI>> {
    match EntryType::try_from(e.r#type) {
        Ok(EntryType::EntryConfChange) => Some(Box::new(
            ConfChange::decode(e.data.clone()).expect("conf change decodes"),
        )),
        Ok(EntryType::EntryConfChangeV2) => Some(Box::new(
            ConfChangeV2::decode(e.data.clone()).expect("conf change decodes"),
        )),
        _ => None,
    }
}

#[test]
fn step_refuses_local_messages() {
    for t in 0..=18 {
        let mt = MessageType::try_from(t).expect("19 message types");
        let mut s = MemStorage::new();
        s.set_hard_state(HardState {
            term: 1,
            vote: 0,
            commit: 1,
        });
        s.apply_snapshot(snapshot(1, 1, &[1]))
            .expect("snapshot applies");
        let mut rn = RawNode::new(&test_config(1), s).expect("node starts");
        let res = rn.step(Message {
            r#type: t,
            ..Default::default()
        });
        let local = matches!(
            mt,
            MessageType::MsgHup
                | MessageType::MsgBeat
                | MessageType::MsgUnreachable
                | MessageType::MsgSnapStatus
                | MessageType::MsgCheckQuorum
        );
        if local {
            assert_eq!(res, Err(Error::StepLocalMsg), "{mt:?}");
        }
    }
}

/// Campaigns a single-node cluster and drives Readys until the node leads
/// and the Ready of its election is advanced.
fn become_leader(rn: &mut RawNode<MemStorage>) {
    rn.campaign().expect("campaign");
    loop {
        let rd = rn.ready();
        persist(rn, &rd);
        let lead = rd.soft_state.is_some_and(|ss| ss.lead == rn.raft.id);
        rn.advance(rd);
        if lead {
            return;
        }
    }
}

enum Cc {
    V1(ConfChange),
    V2(ConfChangeV2),
}

impl Cc {
    fn as_dyn(&self) -> &dyn ConfChangeI {
        match self {
            Cc::V1(c) => c,
            Cc::V2(c) => c,
        }
    }
}

fn cs(voters: &[u64], outgoing: &[u64], learners: &[u64], next: &[u64], auto: bool) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        voters_outgoing: outgoing.to_vec(),
        learners: learners.to_vec(),
        learners_next: next.to_vec(),
        auto_leave: auto,
    }
}

#[test]
fn propose_and_apply_conf_changes() {
    use ConfChangeTransition::*;
    use ConfChangeType::*;
    let demote_and_add = || {
        vec![
            single(ConfChangeAddNode, 2),
            single(ConfChangeAddLearnerNode, 1),
            single(ConfChangeAddLearnerNode, 3),
        ]
    };
    let cases: Vec<(Cc, ConfState, Option<ConfState>)> = vec![
        // A v1 change.
        (
            Cc::V1(ConfChange {
                r#type: ConfChangeAddNode as i32,
                node_id: 2,
                ..Default::default()
            }),
            cs(&[1, 2], &[], &[], &[], false),
            None,
        ),
        // The same as v2: simple, no joint configuration.
        (
            Cc::V2(v2(
                ConfChangeTransitionAuto,
                vec![single(ConfChangeAddNode, 2)],
            )),
            cs(&[1, 2], &[], &[], &[], false),
            None,
        ),
        // Ditto, as a learner.
        (
            Cc::V2(v2(
                ConfChangeTransitionAuto,
                vec![single(ConfChangeAddLearnerNode, 2)],
            )),
            cs(&[1], &[], &[2], &[], false),
            None,
        ),
        // Joint consensus asked for explicitly.
        (
            Cc::V2(v2(
                ConfChangeTransitionJointExplicit,
                vec![single(ConfChangeAddLearnerNode, 2)],
            )),
            cs(&[1], &[1], &[2], &[], false),
            Some(cs(&[1], &[], &[2], &[], false)),
        ),
        // Joint consensus left automatically.
        (
            Cc::V2(v2(
                ConfChangeTransitionJointImplicit,
                vec![single(ConfChangeAddLearnerNode, 2)],
            )),
            cs(&[1], &[1], &[2], &[], true),
            Some(cs(&[1], &[], &[2], &[], false)),
        ),
        // Adding n2 while demoting n1 needs joint consensus and
        // LearnersNext.
        (
            Cc::V2(v2(ConfChangeTransitionAuto, demote_and_add())),
            cs(&[2], &[1], &[3], &[1], true),
            Some(cs(&[2], &[], &[1, 3], &[], false)),
        ),
        (
            Cc::V2(v2(ConfChangeTransitionJointExplicit, demote_and_add())),
            cs(&[2], &[1], &[3], &[1], false),
            Some(cs(&[2], &[], &[1, 3], &[], false)),
        ),
        (
            Cc::V2(v2(ConfChangeTransitionJointImplicit, demote_and_add())),
            cs(&[2], &[1], &[3], &[1], true),
            Some(cs(&[2], &[], &[1, 3], &[], false)),
        ),
    ];
    for (i, (cc, exp, exp2)) in cases.into_iter().enumerate() {
        let mut rn = RawNode::new(&test_config(1), storage(&[1])).expect("node starts");
        rn.campaign().expect("campaign");
        let mut proposed = false;
        let mut ccdata = Vec::new();
        // Propose a command and the change once leading; wait until the
        // change applies.
        let mut applied_cs = None;
        while applied_cs.is_none() {
            let rd = rn.ready();
            persist(&mut rn, &rd);
            for e in &rd.committed_entries {
                if let Some(c) = decode_conf_change(e) {
                    applied_cs = Some(rn.apply_conf_change(c.as_ref()));
                }
            }
            let lead = rd.soft_state.is_some_and(|ss| ss.lead == rn.raft.id);
            rn.advance(rd);
            if !proposed && lead {
                rn.propose(Bytes::from_static(b"somedata"))
                    .expect("leader accepts proposals");
                ccdata = match &cc {
                    Cc::V1(c) => c.encode_to_vec(),
                    Cc::V2(c) => c.encode_to_vec(),
                };
                rn.propose_conf_change(cc.as_dyn())
                    .expect("leader accepts the change");
                proposed = true;
            }
        }
        let applied_cs = applied_cs.expect("loop ends once applied");
        // The last two stable entries are the command and the change, the
        // latter down to its bytes.
        let last = rn.store().last_index().expect("last index");
        let ents = rn
            .store()
            .entries(last - 1, last + 1, u64::MAX)
            .expect("entries");
        assert_eq!(ents.len(), 2, "#{i}");
        assert_eq!(&ents[0].data[..], b"somedata", "#{i}");
        let typ = match cc {
            Cc::V1(_) => EntryType::EntryConfChange,
            Cc::V2(_) => EntryType::EntryConfChangeV2,
        };
        assert_eq!(ents[1].r#type, typ as i32, "#{i}");
        assert_eq!(ents[1].data.to_vec(), ccdata, "#{i}");
        assert_eq!(applied_cs, exp, "#{i}");
        // An auto-leaving change has already appended the leaving entry,
        // which is not stable yet.
        let auto = cc.as_dyn().as_v2().enter_joint() == Some(true);
        assert_eq!(rn.raft.pending_conf_index, last + u64::from(auto), "#{i}");

        let mut rd = rn.ready();
        let mut context = Bytes::new();
        if !exp.auto_leave {
            assert!(rd.entries.is_empty(), "#{i}");
            rn.advance(rd);
            if exp2.is_none() {
                continue;
            }
            context = Bytes::from_static(b"manual");
            rn.propose_conf_change(&ConfChangeV2 {
                context: context.clone(),
                ..Default::default()
            })
            .expect("leader accepts the leave");
            rd = rn.ready();
        }
        // The change that leaves the joint configuration comes out.
        assert_eq!(rd.entries.len(), 1, "#{i}");
        assert_eq!(
            rd.entries[0].r#type,
            EntryType::EntryConfChangeV2 as i32,
            "#{i}"
        );
        let leave = ConfChangeV2::decode(rd.entries[0].data.clone()).expect("decodes");
        assert_eq!(
            leave,
            ConfChangeV2 {
                context,
                ..Default::default()
            },
            "#{i}"
        );
        // Pretend it applied (one node cannot commit under the joint
        // quorum).
        assert_eq!(Some(rn.apply_conf_change(&leave)), exp2, "#{i}");
        rn.advance(rd);
    }
}

#[test]
fn joint_config_is_left_automatically_after_regaining_leadership() {
    let cc = v2(
        ConfChangeTransition::ConfChangeTransitionJointImplicit,
        vec![single(ConfChangeType::ConfChangeAddLearnerNode, 2)],
    );
    let mut rn = RawNode::new(&test_config(1), storage(&[1])).expect("node starts");
    rn.campaign().expect("campaign");
    let mut proposed = false;
    let mut applied_cs = None;
    while applied_cs.is_none() {
        let rd = rn.ready();
        persist(&mut rn, &rd);
        for e in &rd.committed_entries {
            if let Some(c) = decode_conf_change(e) {
                // Step down just before the change applies.
                let term = rn.raft.term + 1;
                rn.step(Message {
                    r#type: MessageType::MsgHeartbeatResp as i32,
                    from: 1,
                    term,
                    ..Default::default()
                })
                .expect("higher term is accepted");
                applied_cs = Some(rn.apply_conf_change(c.as_ref()));
            }
        }
        let lead = rd.soft_state.is_some_and(|ss| ss.lead == rn.raft.id);
        rn.advance(rd);
        if !proposed && lead {
            rn.propose(Bytes::from_static(b"somedata"))
                .expect("leader accepts proposals");
            rn.propose_conf_change(&cc)
                .expect("leader accepts the change");
            proposed = true;
        }
    }
    assert_eq!(applied_cs, Some(cs(&[1], &[1], &[2], &[], true)));
    // A follower does not propose the leave.
    assert_eq!(rn.raft.pending_conf_index, 0);
    assert_eq!(rn.raft.state, StateType::Follower);
    let rd = rn.ready();
    assert!(rd.entries.is_empty());
    persist(&mut rn, &rd);
    rn.advance(rd);
    // Leading again, it leaves once its apply index passes the change.
    rn.campaign().expect("campaign");
    let mut leave = None;
    for _ in 0..10 {
        let rd = rn.ready();
        persist(&mut rn, &rd);
        leave = rd
            .entries
            .iter()
            .find(|e| e.r#type == EntryType::EntryConfChangeV2 as i32)
            .cloned();
        rn.advance(rd);
        if leave.is_some() {
            break;
        }
    }
    let leave = leave.expect("the leaving change is proposed");
    let leave = ConfChangeV2::decode(leave.data).expect("decodes");
    assert_eq!(leave, ConfChangeV2::default());
    assert_eq!(
        rn.apply_conf_change(&leave),
        cs(&[1], &[], &[2], &[], false)
    );
}

#[test]
fn duplicate_add_does_not_block_later_changes() {
    let mut rn = RawNode::new(&test_config(1), storage(&[1])).expect("node starts");
    let rd = rn.ready();
    persist(&mut rn, &rd);
    rn.advance(rd);
    become_leader(&mut rn);
    let propose_and_apply = |rn: &mut RawNode<MemStorage>, cc: &ConfChange| {
        rn.propose_conf_change(cc)
            .expect("leader accepts the change");
        let rd = rn.ready();
        persist(rn, &rd);
        for e in &rd.committed_entries {
            if let Some(c) = decode_conf_change(e) {
                rn.apply_conf_change(c.as_ref());
            }
        }
        rn.advance(rd);
    };
    let add = |id| ConfChange {
        r#type: ConfChangeType::ConfChangeAddNode as i32,
        node_id: id,
        ..Default::default()
    };
    propose_and_apply(&mut rn, &add(1));
    // Adding the same node again.
    propose_and_apply(&mut rn, &add(1));
    // A new node still joins.
    propose_and_apply(&mut rn, &add(2));
    let last = rn.store().last_index().expect("last index");
    let ents = rn
        .store()
        .entries(last - 2, last + 1, u64::MAX)
        .expect("entries");
    assert_eq!(ents.len(), 3);
    assert_eq!(ents[0].data.to_vec(), add(1).encode_to_vec());
    assert_eq!(ents[2].data.to_vec(), add(2).encode_to_vec());
}

#[test]
fn read_states_come_out_in_the_ready() {
    let mut rn = RawNode::new(&test_config(1), storage(&[1])).expect("node starts");
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

    // A single-node leader answers a read at once, at its commit index.
    become_leader(&mut rn);
    while rn.has_ready() {
        let rd = rn.ready();
        persist(&mut rn, &rd);
        rn.advance(rd);
    }
    let ctx = Bytes::from_static(b"somedata2");
    rn.read_index(ctx.clone());
    let committed = rn.raft.raft_log.committed;
    let rd = rn.ready();
    assert_eq!(
        rd.read_states,
        vec![ReadState {
            index: committed,
            request_ctx: ctx
        }]
    );
    rn.advance(rd);
}

#[test]
fn bootstrapped_node_starts_leads_and_commits() {
    let mut s = MemStorage::new();
    // The log begins after index 1, so that empty nodes must get the
    // configuration by snapshot.
    s.apply_snapshot(snapshot(1, 0, &[1]))
        .expect("bootstrap snapshot applies");
    let mut rn = RawNode::new(&test_config(1), s).expect("node starts");
    assert!(!rn.has_ready());

    rn.campaign().expect("campaign");
    let rd = rn.ready();
    persist(&mut rn, &rd);
    rn.advance(rd);
    rn.propose(Bytes::from_static(b"foo"))
        .expect("leader accepts proposals");
    assert!(rn.has_ready());

    let entries = vec![entry(1, 2, b""), entry(1, 3, b"foo")];
    let rd = rn.ready();
    assert_eq!(rd.entries, entries);
    persist(&mut rn, &rd);
    rn.advance(rd);

    assert!(rn.has_ready());
    let mut rd = rn.ready();
    assert!(rd.entries.is_empty());
    assert!(!rd.must_sync);
    rn.advance(rd.clone());
    rd.soft_state = None;
    assert_eq!(
        rd,
        Ready {
            hard_state: Some(HardState {
                term: 1,
                vote: 1,
                commit: 3
            }),
            committed_entries: entries,
            must_sync: false,
            ..Default::default()
        }
    );
    assert!(!rn.has_ready());
}

#[test]
fn restart_applies_what_was_committed() {
    let entries = vec![entry(1, 1, b""), entry(1, 2, b"foo")];
    let mut s = storage(&[1]);
    s.set_hard_state(HardState {
        term: 1,
        vote: 0,
        commit: 1,
    });
    s.append(&entries).expect("entries append");
    let mut rn = RawNode::new(&test_config(1), s).expect("node starts");
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
fn restart_from_snapshot_applies_what_follows_it() {
    let entries = vec![entry(1, 3, b"foo")];
    let mut s = MemStorage::new();
    s.set_hard_state(HardState {
        term: 1,
        vote: 0,
        commit: 3,
    });
    s.apply_snapshot(snapshot(2, 1, &[1, 2]))
        .expect("snapshot applies");
    s.append(&entries).expect("entries append");
    let mut rn = RawNode::new(&test_config(1), s).expect("node starts");
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
fn status_shows_progress_only_when_leading() {
    let mut rn = RawNode::new(&test_config(1), storage(&[1])).expect("node starts");
    assert!(rn.status().progress.is_empty());
    rn.campaign().expect("campaign");
    let rd = rn.ready();
    persist(&mut rn, &rd);
    rn.advance(rd);
    let st = rn.status();
    assert_eq!(st.soft_state.lead, 1);
    assert_eq!(st.soft_state.raft_state, StateType::Leader);
    assert_eq!(st.progress.get(&1), rn.raft.trk.progress.get(&1));
    let exp = TrackerConfig {
        voters: JointConfig::new(MajorityConfig::from_iter([1])),
        ..Default::default()
    };
    assert_eq!(st.config, exp);
}

/// A storage that returns every entry asked for, whatever the size limit:
/// the case where the core must not lose track of what it handed out.
struct IgnoreSizeHint(MemStorage);

impl Storage for IgnoreSizeHint {
    fn initial_state(&self) -> RaftResult<RaftState> {
        self.0.initial_state()
    }
    fn entries(&self, low: u64, high: u64, _max_size: u64) -> RaftResult<Vec<Entry>> {
        self.0.entries(low, high, u64::MAX)
    }
    fn term(&self, idx: u64) -> RaftResult<u64> {
        self.0.term(idx)
    }
    fn first_index(&self) -> RaftResult<u64> {
        self.0.first_index()
    }
    fn last_index(&self) -> RaftResult<u64> {
        self.0.last_index()
    }
    fn snapshot(&self) -> RaftResult<Snapshot> {
        self.0.snapshot()
    }
}

#[test]
fn commit_pagination_after_restart_leaves_no_gap() {
    let mut s = MemStorage::new();
    s.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 10,
    });
    // Entry 1 is folded into the snapshot; 2..=10 are committed, 11 is not.
    s.apply_snapshot(snapshot(1, 1, &[1]))
        .expect("snapshot applies");
    let ents: Vec<Entry> = (1..=10).map(|i| entry(1, i, b"a")).collect();
    let size: u64 = ents.iter().map(entry_encoding_size).sum();
    s.append(&ents[1..]).expect("entries append");
    s.append(&[entry(1, 11, b"boom")]).expect("entry appends");
    // A limit that would leave out the last committed entry, which the
    // storage returns anyway.
    let mut cfg = test_config(1);
    cfg.max_size_per_msg = size - entry_encoding_size(&ents[9]) - 1;
    let mut rn = RawNode::new(&cfg, IgnoreSizeHint(s)).expect("node starts");
    let mut highest_applied = 0;
    while highest_applied != 11 {
        let rd = rn.ready();
        let n = rd.committed_entries.len();
        assert_ne!(n, 0, "stopped applying entries at index {highest_applied}");
        let next = rd.committed_entries[0].index;
        assert!(
            highest_applied == 0 || highest_applied + 1 == next,
            "applying index {next} after index {highest_applied} leaves a gap"
        );
        highest_applied = rd.committed_entries[n - 1].index;
        rn.advance(rd);
        rn.step(Message {
            r#type: MessageType::MsgHeartbeat as i32,
            to: 1,
            // Not a member; heartbeats are not checked for that.
            from: 2,
            term: 1,
            commit: 11,
            ..Default::default()
        })
        .expect("heartbeat is accepted");
    }
}

#[test]
fn uncommitted_log_stays_bounded_while_partitioned() {
    const MAX_ENTRIES: u64 = 16;
    let data = Bytes::from_static(b"testdata");
    let max_size = MAX_ENTRIES * data.len() as u64;
    let mut cfg = test_config(1);
    cfg.max_uncommitted_entries_size = max_size;
    let mut rn = RawNode::new(&cfg, storage(&[1])).expect("node starts");
    rn.campaign().expect("campaign");
    loop {
        let rd = rn.ready();
        persist(&mut rn, &rd);
        let applied = !rd.committed_entries.is_empty();
        rn.advance(rd);
        if applied {
            break;
        }
    }
    // Nothing commits while "partitioned" (no Ready handled): proposals
    // beyond the limit are dropped.
    for _ in 0..1024 {
        let _ = rn.propose(data.clone());
    }
    assert_eq!(rn.raft.uncommitted_size, max_size);
    let rd = rn.ready();
    assert_eq!(rd.entries.len() as u64, MAX_ENTRIES);
    persist(&mut rn, &rd);
    rn.advance(rd);
    // Appended but not applied: still counted.
    assert_eq!(rn.raft.uncommitted_size, max_size);
    let rd = rn.ready();
    assert!(rd.entries.is_empty());
    assert_eq!(rd.committed_entries.len() as u64, MAX_ENTRIES);
    rn.advance(rd);
    assert_eq!(rn.raft.uncommitted_size, 0);
}

#[test]
fn ready_takes_the_messages_and_advance_keeps_new_ones() {
    let mut cfg = test_config(1);
    cfg.election_tick = 3;
    let mut rn = RawNode::new(&cfg, storage(&[1])).expect("node starts");
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
