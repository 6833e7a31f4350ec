//! Snapshots: when a leader sends one (its log is compacted past what a
//! follower needs), how a pending snapshot pauses replication, what the
//! application's `report_snapshot` does, and how a follower restores one.
//! The interaction files cover a snapshot acknowledged through MsgAppResp
//! and a slow follower after compaction; these cover the rest.

mod common;

use bytes::Bytes;
use common::network::*;
use corelog::raft::tracker::ProgressState;
use corelog::raft::{SnapshotStatus, StateType, Storage};
use corelog::raftpb::{ConfState, Message, MessageType, Snapshot, SnapshotMetadata};

/// Index of the snapshot `lagging_follower_needs_snapshot` takes.
const SNAP: u64 = 4;

fn voters(v: &[u64]) -> ConfState {
    ConfState {
        voters: v.to_vec(),
        ..Default::default()
    }
}

/// Leader 1 of {1, 2, 3} at term 1: entries 1..=4 committed with follower
/// 2, applied, snapshotted and compacted at 4; follower 3 acknowledged only
/// index 1 and then rejected an append, so the leader has sent it the
/// snapshot. Returns the leader and that MsgSnap.
fn lagging_follower_needs_snapshot() -> (Node, Message) {
    let mut n = new_node(1, &[1, 2, 3]);
    let li = elect(&mut n);
    for _ in 0..3 {
        n.raft.step(prop(1, b"data")).expect("proposal");
        for m in read_messages(&mut n) {
            if m.to == 2 {
                n.raft.step(accept_and_reply(&m)).expect("ack");
            }
        }
    }
    drain(&mut n);
    assert_eq!(n.raft.raft_log.applied, SNAP);
    let cs = n.raft.trk.conf_state();
    let store = n.store_mut();
    store
        .create_snapshot(SNAP, Some(cs), Bytes::from_static(b"snap"))
        .expect("snapshot");
    store.compact(SNAP).expect("compact");

    // 3 does not hold what the latest append builds on.
    n.raft
        .step(Message {
            index: SNAP - 1,
            reject: true,
            reject_hint: li,
            log_term: 1,
            ..msg(MessageType::MsgAppResp, 3, 1, 1)
        })
        .expect("rejection");
    let msgs = read_messages(&mut n);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    (n, msgs[0].clone())
}

fn progress_of(n: &Node, id: u64) -> &corelog::raft::tracker::Progress {
    &n.raft.trk.progress[&id]
}

#[test]
fn leader_sends_its_snapshot_when_a_follower_needs_compacted_entries() {
    let (n, m) = lagging_follower_needs_snapshot();

    assert_eq!(m.r#type(), MessageType::MsgSnap);
    assert_eq!(m.to, 3);
    let snap = m.snapshot.expect("a snapshot");
    let meta = snap.metadata.expect("metadata");
    assert_eq!((meta.index, meta.term), (SNAP, 1));
    assert_eq!(meta.conf_state, Some(voters(&[1, 2, 3])));
    assert_eq!(snap.data, Bytes::from_static(b"snap"));
    let pr = progress_of(&n, 3);
    assert_eq!(pr.state, ProgressState::Snapshot);
    assert_eq!(pr.pending_snapshot, SNAP);
}

#[test]
fn pending_snapshot_pauses_appends_but_not_heartbeats() {
    let (mut n, _) = lagging_follower_needs_snapshot();

    n.raft.step(prop(1, b"more")).expect("proposal");
    let tos: Vec<u64> = read_messages(&mut n).iter().map(|m| m.to).collect();
    assert_eq!(tos, vec![2]);

    n.tick();
    let mut beats = read_messages(&mut n);
    sort_msgs(&mut beats);
    let kinds: Vec<(u64, MessageType)> = beats.iter().map(|m| (m.to, m.r#type())).collect();
    assert_eq!(
        kinds,
        vec![
            (2, MessageType::MsgHeartbeat),
            (3, MessageType::MsgHeartbeat)
        ]
    );
    // A heartbeat response does not resend anything while it is pending.
    n.raft
        .step(msg(MessageType::MsgHeartbeatResp, 3, 1, 1))
        .expect("heartbeat response");
    assert!(read_messages(&mut n).is_empty());
}

#[test]
fn failed_snapshot_returns_to_probing_and_retries_after_a_heartbeat() {
    let (mut n, _) = lagging_follower_needs_snapshot();

    n.report_snapshot(3, SnapshotStatus::Failure);

    let pr = progress_of(&n, 3);
    assert_eq!(pr.state, ProgressState::Probe);
    assert_eq!(pr.pending_snapshot, 0);
    assert_eq!(pr.next_idx, pr.matched + 1, "probes from its match again");
    assert!(pr.msg_app_flow_paused, "waits for a heartbeat response");
    assert!(read_messages(&mut n).is_empty());

    n.raft
        .step(msg(MessageType::MsgHeartbeatResp, 3, 1, 1))
        .expect("heartbeat response");
    let msgs = read_messages(&mut n);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgSnap, "the snapshot again");
}

#[test]
fn finished_snapshot_probes_from_the_entry_after_it() {
    let (mut n, _) = lagging_follower_needs_snapshot();

    n.report_snapshot(3, SnapshotStatus::Finish);

    let pr = progress_of(&n, 3);
    assert_eq!(pr.state, ProgressState::Probe);
    assert_eq!(pr.pending_snapshot, 0);
    assert_eq!(pr.next_idx, SNAP + 1);
    assert!(pr.msg_app_flow_paused, "waits for the follower's answer");

    n.raft
        .step(msg(MessageType::MsgHeartbeatResp, 3, 1, 1))
        .expect("heartbeat response");
    let msgs = read_messages(&mut n);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgApp);
    assert_eq!((msgs[0].index, msgs[0].log_term), (SNAP, 1));
}

#[test]
fn snapshot_report_for_a_follower_not_in_snapshot_state_is_ignored() {
    let (mut n, _) = lagging_follower_needs_snapshot();
    let before = progress_of(&n, 2).clone();

    n.report_snapshot(2, SnapshotStatus::Failure);

    assert_eq!(progress_of(&n, 2), &before);
}

#[test]
fn acknowledgement_at_the_snapshot_index_ends_the_snapshot_early() {
    let (mut n, _) = lagging_follower_needs_snapshot();

    n.raft
        .step(Message {
            index: SNAP,
            ..msg(MessageType::MsgAppResp, 3, 1, 1)
        })
        .expect("ack");

    let pr = progress_of(&n, 3);
    assert_eq!(pr.pending_snapshot, 0);
    assert_eq!(pr.state, ProgressState::Replicate);
    assert_eq!(pr.matched, SNAP);
}

fn snap_msg(index: u64, term: u64, cs: ConfState) -> Message {
    Message {
        snapshot: Some(Box::new(Snapshot {
            data: Bytes::from_static(b"state"),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(cs),
                index,
                term,
            }),
        })),
        ..msg(MessageType::MsgSnap, 1, 2, 2)
    }
}

#[test]
fn follower_restores_a_snapshot_and_acknowledges_its_index() {
    let mut n = new_node(2, &[1, 2]);

    n.raft
        .step(snap_msg(11, 2, voters(&[1, 2, 3])))
        .expect("snapshot");

    let out = drain(&mut n);
    assert!(out.snapshot_applied, "the Ready hands the snapshot out");
    assert_eq!(
        out.messages,
        vec![Message {
            index: 11,
            ..msg(MessageType::MsgAppResp, 2, 1, 2)
        }]
    );
    assert_eq!(n.raft.raft_log.committed, 11);
    assert_eq!(n.raft.raft_log.last_index(), 11);
    assert_eq!(n.store().first_index().expect("first index"), 12);
    assert_eq!(n.store().term(11).expect("term"), 2);
    assert_eq!(n.raft.trk.conf_state(), voters(&[1, 2, 3]));
    assert_eq!(n.raft.lead, 1);
}

#[test]
fn follower_ignores_a_snapshot_older_than_its_commit_index() {
    let mut n = new_node(2, &[1, 2]);
    n.raft
        .step(snap_msg(11, 2, voters(&[1, 2])))
        .expect("snapshot");
    drain(&mut n);

    n.raft
        .step(snap_msg(5, 2, voters(&[1, 2, 3])))
        .expect("old snapshot");

    let out = drain(&mut n);
    assert!(!out.snapshot_applied);
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].index, 11, "answers with its commit index");
    assert_eq!(n.raft.trk.conf_state(), voters(&[1, 2]));
}

#[test]
fn follower_ignores_a_snapshot_whose_configuration_lacks_it() {
    let mut n = new_node(2, &[1, 2]);

    n.raft
        .step(snap_msg(11, 2, voters(&[1, 3])))
        .expect("snapshot");

    let out = drain(&mut n);
    assert!(!out.snapshot_applied);
    assert_eq!(out.messages[0].index, 0);
    assert_eq!(n.raft.raft_log.last_index(), 0);
}

#[test]
fn a_partitioned_follower_catches_up_through_a_snapshot() {
    let mut nw = Network::new(&[1, 2, 3]);
    nw.campaign(1);
    nw.isolate(3);
    for _ in 0..5 {
        nw.propose(1, b"data");
    }
    let committed = nw.node(1).raft.raft_log.committed;
    assert_eq!(committed, 6);
    let cs = nw.node(1).raft.trk.conf_state();
    let store = nw.node_mut(1).store_mut();
    store
        .create_snapshot(committed, Some(cs), Bytes::from_static(b"snap"))
        .expect("snapshot");
    store.compact(committed).expect("compact");

    nw.recover();
    // Heartbeats reach 3 again; its answers lead the leader to the snapshot.
    for _ in 0..3 {
        nw.tick(1, 1);
    }

    assert!(
        nw.trace
            .iter()
            .any(|m| m.r#type() == MessageType::MsgSnap && m.to == 3)
    );
    let (l, f) = (nw.node(1), nw.node(3));
    assert_eq!(f.store().first_index().expect("first index"), committed + 1);
    assert_eq!(f.raft.raft_log.committed, l.raft.raft_log.committed);
    assert_eq!(f.raft.raft_log.last_index(), l.raft.raft_log.last_index());
    assert_eq!(f.raft.state, StateType::Follower);
    let pr = &l.raft.trk.progress[&3];
    assert_eq!(pr.state, ProgressState::Replicate);
    assert_eq!(pr.matched, l.raft.raft_log.last_index());

    // And it replicates normally from there.
    nw.propose(1, b"after");
    assert_eq!(
        nw.node(3).raft.raft_log.committed,
        nw.node(1).raft.raft_log.last_index()
    );
}

#[test]
fn unreachable_report_leaves_a_pending_snapshot_alone() {
    let (mut n, _) = lagging_follower_needs_snapshot();

    n.report_unreachable(3);

    let pr = progress_of(&n, 3);
    assert_eq!(pr.state, ProgressState::Snapshot);
    assert_eq!(pr.pending_snapshot, SNAP);
}
