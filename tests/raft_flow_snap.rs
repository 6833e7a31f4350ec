//! Flow control and snapshot progress of the leader, as etcd-raft's
//! raft_flow_control_test.go and raft_snap_test.go check them, against
//! corelog's `Raft` through its public API: the inflight window fills,
//! blocks, slides forward on acks and opens one slot per heartbeat answer;
//! a follower that needs a snapshot pauses replication until the snapshot
//! succeeds, fails or is overtaken by an append ack.

use bytes::Bytes;
use corelog::raft::tracker::{Progress, ProgressState};
use corelog::raft::{Config, MemStorage, Raft};
use corelog::raftpb::{ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata};

type TestRaft = Raft<MemStorage>;

fn new_test_raft(id: u64, election: usize, peers: &[u64]) -> TestRaft {
    let store = MemStorage::new_with_conf_state(ConfState {
        voters: peers.to_vec(),
        ..Default::default()
    });
    let cfg = Config {
        id,
        election_tick: election,
        heartbeat_tick: 1,
        max_size_per_msg: u64::MAX,
        max_inflight_msgs: 256,
        ..Config::default()
    };
    Raft::new(&cfg, store).expect("test config is valid")
}

fn msg(t: MessageType, from: u64, to: u64) -> Message {
    Message {
        r#type: t as i32,
        from,
        to,
        ..Default::default()
    }
}

fn propose(r: &mut TestRaft) {
    let mut m = msg(MessageType::MsgProp, 1, 1);
    m.entries = vec![Entry {
        data: Bytes::from_static(b"somedata"),
        ..Default::default()
    }];
    r.step(m).expect("leader accepts proposals");
}

fn ack(r: &mut TestRaft, from: u64, index: u64) {
    let mut m = msg(MessageType::MsgAppResp, from, 1);
    m.index = index;
    r.step(m).expect("ack is accepted");
}

/// Everything the node has to send once its own storage caught up (its own
/// acks are stepped, as a synchronous storage would).
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

fn pr(r: &TestRaft, id: u64) -> &Progress {
    r.trk.progress.get(&id).expect("peer is tracked")
}

fn pr_mut(r: &mut TestRaft, id: u64) -> &mut Progress {
    r.trk.progress.get_mut(&id).expect("peer is tracked")
}

/// A two-node leader whose follower 2 is in Replicate and whose window is
/// full (`max_inflight` appends in flight).
fn leader_with_full_window() -> TestRaft {
    let mut r = new_test_raft(1, 5, &[1, 2]);
    r.become_candidate();
    r.become_leader();
    pr_mut(&mut r, 2).become_replicate();
    for _ in 0..r.trk.max_inflight {
        propose(&mut r);
        let ms = read_messages(&mut r);
        assert_eq!(ms.len(), 1, "{ms:?}");
        assert_eq!(ms[0].r#type, MessageType::MsgApp as i32);
    }
    r
}

#[test]
fn appends_fill_the_window_then_stop() {
    let mut r = leader_with_full_window();
    assert!(pr(&r, 2).is_paused());
    for _ in 0..10 {
        propose(&mut r);
        assert!(read_messages(&mut r).is_empty());
    }
}

#[test]
fn acks_slide_the_window_and_stale_acks_do_not() {
    let mut r = leader_with_full_window();
    // Index 1 is the leader's empty entry, 2 the first proposal.
    for tt in 2..r.trk.max_inflight as u64 {
        ack(&mut r, 2, tt);
        read_messages(&mut r);
        // One slot is free again: one more append goes out, and fills it.
        propose(&mut r);
        let ms = read_messages(&mut r);
        assert_eq!(ms.len(), 1, "{ms:?}");
        assert_eq!(ms[0].r#type, MessageType::MsgApp as i32);
        assert!(pr(&r, 2).is_paused());
        // Acks at or below what was acked already free nothing.
        for i in 0..tt {
            ack(&mut r, 2, i);
            assert!(pr(&r, 2).is_paused());
        }
    }
}

#[test]
fn heartbeat_response_opens_one_empty_append() {
    let mut r = leader_with_full_window();
    for tt in 1..5 {
        for _ in 0..tt {
            assert!(pr(&r, 2).is_paused());
            // The answer unpauses the progress: an empty MsgApp (carrying
            // the commit index) goes out and pauses it again.
            r.step(msg(MessageType::MsgHeartbeatResp, 2, 1))
                .expect("heartbeat response is accepted");
            let ms = read_messages(&mut r);
            assert_eq!(ms.len(), 1, "{ms:?}");
            assert_eq!(ms[0].r#type, MessageType::MsgApp as i32);
            assert!(ms[0].entries.is_empty());
        }
        // Without heartbeat answers nothing more goes out.
        for _ in 0..10 {
            assert!(pr(&r, 2).is_paused());
            propose(&mut r);
            assert!(read_messages(&mut r).is_empty());
        }
        r.step(msg(MessageType::MsgHeartbeatResp, 2, 1))
            .expect("heartbeat response is accepted");
        read_messages(&mut r);
    }
}

/// A snapshot at index 11, term 11, with voters 1 and 2.
fn testing_snap() -> Snapshot {
    Snapshot {
        data: Bytes::new(),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(ConfState {
                voters: vec![1, 2],
                ..Default::default()
            }),
            index: 11,
            term: 11,
        }),
    }
}

/// A leader restored from `testing_snap` (its log starts at 12).
fn leader_after_snapshot(peers: &[u64]) -> TestRaft {
    let mut r = new_test_raft(1, 10, peers);
    assert!(r.restore(testing_snap()), "snapshot restores");
    r.become_candidate();
    r.become_leader();
    r
}

#[test]
fn rejected_append_below_the_log_sends_a_snapshot() {
    let mut r = leader_after_snapshot(&[1]);
    // Node 2 needs entries the leader no longer has.
    let first = r.raft_log.first_index();
    pr_mut(&mut r, 2).next_idx = first;
    let mut m = msg(MessageType::MsgAppResp, 2, 1);
    m.index = first - 1;
    m.reject = true;
    r.step(m).expect("rejection is accepted");
    assert_eq!(pr(&r, 2).pending_snapshot, 11);
    assert_eq!(pr(&r, 2).state, ProgressState::Snapshot);
}

#[test]
fn pending_snapshot_pauses_replication() {
    let mut r = leader_after_snapshot(&[1, 2]);
    pr_mut(&mut r, 2).become_snapshot(11);
    propose(&mut r);
    assert!(read_messages(&mut r).is_empty());
}

#[test]
fn failed_snapshot_returns_to_probe_and_waits() {
    let mut r = leader_after_snapshot(&[1, 2]);
    pr_mut(&mut r, 2).next_idx = 1;
    pr_mut(&mut r, 2).become_snapshot(11);
    let mut m = msg(MessageType::MsgSnapStatus, 2, 1);
    m.reject = true;
    r.step(m).expect("snapshot status is accepted");
    let p = pr(&r, 2);
    assert_eq!(p.pending_snapshot, 0);
    assert_eq!(p.next_idx, 1);
    assert_eq!(p.state, ProgressState::Probe);
    assert!(p.msg_app_flow_paused);
}

#[test]
fn succeeded_snapshot_probes_after_it_and_waits() {
    let mut r = leader_after_snapshot(&[1, 2]);
    pr_mut(&mut r, 2).next_idx = 1;
    pr_mut(&mut r, 2).become_snapshot(11);
    r.step(msg(MessageType::MsgSnapStatus, 2, 1))
        .expect("snapshot status is accepted");
    let p = pr(&r, 2);
    assert_eq!(p.pending_snapshot, 0);
    assert_eq!(p.next_idx, 12);
    assert_eq!(p.state, ProgressState::Probe);
    assert!(p.msg_app_flow_paused);
}

#[test]
fn append_ack_at_the_snapshot_aborts_it() {
    let mut r = leader_after_snapshot(&[1, 2]);
    pr_mut(&mut r, 2).next_idx = 1;
    pr_mut(&mut r, 2).become_snapshot(11);
    // The follower has caught up otherwise: replicate from there, and the
    // leader's empty entry (index 12) goes out at once.
    ack(&mut r, 2, 11);
    let p = pr(&r, 2);
    assert_eq!(p.pending_snapshot, 0);
    assert_eq!(p.state, ProgressState::Replicate);
    assert_eq!(p.next_idx, 13);
    assert_eq!(p.ins.count(), 1);
}
