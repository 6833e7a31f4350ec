//! Flow control of a leader's replication: the inflight window (by count and
//! by bytes), the per-message size limit, and the limit on the uncommitted
//! tail. The interaction scenario files show a paused follower
//! (replicate_pause.txt) but none of these limits at work.

mod common;

use bytes::Bytes;
use common::network::*;
use corelog::raft::tracker::ProgressState;
use corelog::raft::{Config, Error, entry_encoding_size};
use corelog::raftpb::{Entry, Message, MessageType};

/// A leader of {1, 2} at term 1 (election tick 5) that sent nothing yet,
/// with follower 2 forced into Replicate.
fn leader_replicating_to_2() -> Node {
    let mut n = new_node_with(config(1, 5, 1), storage_with_peers(&[1, 2]));
    n.raft.become_candidate();
    n.raft.become_leader();
    drain(&mut n);
    n.raft
        .trk
        .progress
        .get_mut(&2)
        .expect("2 is a peer")
        .become_replicate();
    n
}

fn is_paused(n: &Node, id: u64) -> bool {
    n.raft.trk.progress[&id].is_paused()
}

fn app_resp(from: u64, index: u64) -> Message {
    Message {
        index,
        ..msg(MessageType::MsgAppResp, from, 1, 1)
    }
}

fn entry_of(len: usize) -> Entry {
    Entry {
        data: Bytes::from(vec![b'x'; len]),
        ..Default::default()
    }
}

/// The MsgApp among `msgs`, asserting there is exactly one message.
fn single_app(msgs: &[Message]) -> &Message {
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].r#type(), MessageType::MsgApp);
    &msgs[0]
}

#[test]
fn full_inflight_window_stops_appends_to_a_replicating_follower() {
    let mut n = leader_replicating_to_2();
    let window = n.raft.trk.max_inflight;

    for _ in 0..window {
        n.raft.step(prop(1, b"somedata")).expect("proposal");
        single_app(&read_messages(&mut n));
    }
    assert!(is_paused(&n, 2));

    for _ in 0..10 {
        n.raft.step(prop(1, b"somedata")).expect("proposal");
        assert!(read_messages(&mut n).is_empty());
    }
}

#[test]
fn acknowledgement_slides_the_window_and_stale_ones_do_not() {
    let mut n = leader_replicating_to_2();
    let window = n.raft.trk.max_inflight;
    for _ in 0..window {
        n.raft.step(prop(1, b"somedata")).expect("proposal");
        read_messages(&mut n);
    }

    // Index 1 is the leader's empty entry, sent with the first proposal
    // (index 2) in one append.
    for acked in 2..window as u64 {
        n.raft.step(app_resp(2, acked)).expect("ack");
        read_messages(&mut n);

        // The freed slot takes exactly one more append.
        n.raft.step(prop(1, b"somedata")).expect("proposal");
        single_app(&read_messages(&mut n));
        assert!(is_paused(&n, 2), "after ack {acked}");

        // Acks of what was already acked free nothing.
        for stale in 0..acked {
            n.raft.step(app_resp(2, stale)).expect("ack");
            assert!(is_paused(&n, 2), "stale ack {stale} after {acked}");
        }
    }
}

#[test]
fn heartbeat_response_lets_one_empty_append_through_a_full_window() {
    let mut n = leader_replicating_to_2();
    for _ in 0..n.raft.trk.max_inflight {
        n.raft.step(prop(1, b"somedata")).expect("proposal");
        read_messages(&mut n);
    }

    for beats in 1..5 {
        for _ in 0..beats {
            assert!(is_paused(&n, 2));
            n.raft
                .step(msg(MessageType::MsgHeartbeatResp, 2, 1, 1))
                .expect("heartbeat response");
            let msgs = read_messages(&mut n);
            // The probe that recovers a window whose appends were all lost
            // carries no entries (and takes no slot).
            assert!(single_app(&msgs).entries.is_empty());
        }

        for _ in 0..10 {
            assert!(is_paused(&n, 2));
            n.raft.step(prop(1, b"somedata")).expect("proposal");
            assert!(read_messages(&mut n).is_empty());
        }

        n.raft
            .step(msg(MessageType::MsgHeartbeatResp, 2, 1, 1))
            .expect("heartbeat response");
        read_messages(&mut n);
    }
}

#[test]
fn max_size_per_msg_splits_a_batch_across_appends() {
    let size = entry_encoding_size(&Entry {
        term: 1,
        index: 10,
        ..entry_of(100)
    });
    let cfg = Config {
        max_size_per_msg: 2 * size,
        ..config(1, 10, 1)
    };
    let mut n = new_node_with(cfg, storage_with_peers(&[1, 2]));
    let li = elect(&mut n);

    n.propose_entries(vec![entry_of(100); 9]).expect("proposal");

    // One append per peer goes out with the proposal, at the size limit.
    let msgs = read_messages(&mut n);
    let first = single_app(&msgs).clone();
    assert_eq!(first.entries.len(), 2);

    // Each acknowledgement lets the rest go out, each at most two entries
    // (and never none).
    let mut sent: Vec<u64> = first.entries.iter().map(|e| e.index).collect();
    let mut acks = vec![accept_and_reply(&first)];
    while let Some(ack) = acks.pop() {
        n.raft.step(ack).expect("ack");
        for m in read_messages(&mut n) {
            if m.entries.is_empty() {
                continue;
            }
            assert!(m.entries.len() <= 2, "{} entries", m.entries.len());
            sent.extend(m.entries.iter().map(|e| e.index));
            acks.push(accept_and_reply(&m));
        }
    }
    assert_eq!(sent, (li + 1..=li + 9).collect::<Vec<_>>());
    assert_eq!(n.raft.raft_log.committed, li + 9);
}

#[test]
fn an_entry_larger_than_max_size_per_msg_is_still_sent_alone() {
    let cfg = Config {
        max_size_per_msg: 10,
        ..config(1, 10, 1)
    };
    let mut n = new_node_with(cfg, storage_with_peers(&[1, 2]));
    let li = elect(&mut n);

    n.propose_entries(vec![entry_of(100), entry_of(100)])
        .expect("proposal");

    let msgs = read_messages(&mut n);
    let app = single_app(&msgs);
    assert_eq!(app.entries.len(), 1);
    assert_eq!(app.entries[0].index, li + 1);
}

#[test]
fn max_inflight_bytes_pauses_once_the_bytes_in_flight_reach_it() {
    let cfg = Config {
        max_size_per_msg: 100,
        max_inflight_bytes: 300,
        ..config(1, 10, 1)
    };
    let mut n = new_node_with(cfg, storage_with_peers(&[1, 2]));
    let li = elect(&mut n);
    assert!(!is_paused(&n, 2));

    // Three appends of 100 payload bytes fill the 300 bytes.
    let mut apps = Vec::new();
    for i in 0..3 {
        n.propose(Bytes::from(vec![b'x'; 100])).expect("proposal");
        apps.push(single_app(&read_messages(&mut n)).clone());
        assert_eq!(is_paused(&n, 2), i == 2, "after {} appends", i + 1);
    }
    assert_eq!(n.raft.trk.progress[&2].ins.bytes(), 300);

    // The fourth waits...
    n.propose(Bytes::from(vec![b'x'; 100])).expect("proposal");
    assert!(read_messages(&mut n).is_empty());

    // ...until an acknowledgement frees 100 bytes.
    n.raft.step(accept_and_reply(&apps[0])).expect("ack");
    let msgs = read_messages(&mut n);
    let resent: Vec<u64> = msgs
        .iter()
        .flat_map(|m| m.entries.iter().map(|e| e.index))
        .collect();
    assert_eq!(resent, vec![li + 4]);
    assert!(is_paused(&n, 2));
}

#[test]
fn max_uncommitted_entries_size_drops_proposals_beyond_it() {
    let cfg = Config {
        max_uncommitted_entries_size: 300,
        ..config(1, 10, 1)
    };
    let mut n = new_node_with(cfg, storage_with_peers(&[1, 2, 3]));
    let li = elect(&mut n);
    let data = || Bytes::from(vec![b'x'; 100]);

    // Nobody acknowledges: three 100-byte proposals fit, the fourth does not.
    let mut apps = Vec::new();
    for _ in 0..3 {
        n.propose(data()).expect("fits the limit");
        apps.extend(read_messages(&mut n));
    }
    assert_eq!(n.propose(data()), Err(Error::ProposalDropped));
    assert_eq!(n.raft.raft_log.last_index(), li + 3, "nothing appended");

    // Entries without payload are never refused (a leader's empty entry,
    // leaving a joint configuration).
    n.propose(Bytes::new()).expect("empty proposals always fit");
    read_messages(&mut n);

    // Once the tail commits and is applied, there is room again.
    for m in apps.iter().filter(|m| m.to == 2) {
        n.raft.step(accept_and_reply(m)).expect("ack");
    }
    let out = drain(&mut n);
    assert_eq!(out.committed_entries.len(), 3);
    n.propose(data()).expect("room after apply");
}

#[test]
fn a_proposal_over_max_uncommitted_entries_size_fits_an_empty_tail() {
    let cfg = Config {
        max_uncommitted_entries_size: 50,
        ..config(1, 10, 1)
    };
    let mut n = new_node_with(cfg, storage_with_peers(&[1, 2, 3]));
    elect(&mut n);

    // Progress is never blocked: an empty tail takes any one proposal...
    n.propose(Bytes::from(vec![b'x'; 100])).expect("empty tail");
    // ...after which nothing more fits.
    assert_eq!(
        n.propose(Bytes::from_static(b"x")),
        Err(Error::ProposalDropped)
    );
}

#[test]
fn a_probing_follower_gets_one_append_per_heartbeat_response() {
    let mut n = new_node(1, &[1, 2, 3]);
    let li = elect(&mut n);
    // An unreachable follower goes back to probing.
    n.report_unreachable(2);
    assert_eq!(n.raft.trk.progress[&2].state, ProgressState::Probe);

    // The first proposal probes it...
    n.raft.step(prop(1, b"a")).expect("proposal");
    let to_2: Vec<Message> = read_messages(&mut n)
        .into_iter()
        .filter(|m| m.to == 2)
        .collect();
    assert_eq!(single_app(&to_2).index, li);

    // ...and while the probe is unanswered, proposals send nothing to 2
    // (3, replicating, gets each of them).
    for _ in 0..3 {
        n.raft.step(prop(1, b"b")).expect("proposal");
        let tos: Vec<u64> = read_messages(&mut n).iter().map(|m| m.to).collect();
        assert_eq!(tos, vec![3]);
    }
    // A heartbeat response allows the next probe, with everything since.
    n.raft
        .step(msg(MessageType::MsgHeartbeatResp, 2, 1, 1))
        .expect("heartbeat response");
    let msgs = read_messages(&mut n);
    let app = single_app(&msgs);
    assert_eq!((app.to, app.index, app.entries.len()), (2, li, 4));
}

#[test]
fn max_committed_size_per_ready_spreads_committed_entries_over_readys() {
    let limit = 250;
    let cfg = Config {
        max_committed_size_per_ready: limit,
        ..config(1, 10, 1)
    };
    let mut n = new_node_with(cfg, storage_with_peers(&[1]));
    let li = elect(&mut n);

    n.propose_entries(vec![entry_of(100); 10])
        .expect("proposal");

    let mut applied = Vec::new();
    let mut readys = 0;
    while n.has_ready() {
        let rd = n.ready();
        handle_ready(&mut n, &rd);
        let ents = &rd.committed_entries;
        let size: u64 = ents.iter().map(entry_encoding_size).sum();
        assert!(
            ents.len() <= 1 || size <= limit,
            "{} entries of {size} bytes in one Ready",
            ents.len()
        );
        applied.extend(ents.iter().map(|e| e.index));
        readys += 1;
        n.advance(rd);
    }
    assert_eq!(applied, (li + 1..=li + 10).collect::<Vec<_>>());
    assert!(readys >= 5, "only {readys} Readys");
}

#[test]
fn a_probe_acknowledged_fills_the_window_at_once() {
    let cfg = Config {
        max_inflight_msgs: 3,
        max_size_per_msg: 100,
        ..config(1, 10, 1)
    };
    let mut n = new_node_with(cfg, storage_with_peers(&[1, 2]));
    let li = elect(&mut n);
    n.report_unreachable(2);
    assert_eq!(n.raft.trk.progress[&2].state, ProgressState::Probe);

    n.propose_entries(vec![entry_of(100); 10])
        .expect("proposal");
    let msgs = read_messages(&mut n);
    let probe = single_app(&msgs).clone();
    assert_eq!(
        probe.entries.len(),
        1,
        "a probe carries one message's worth"
    );

    n.raft.step(accept_and_reply(&probe)).expect("ack");

    // Back in Replicate: as many appends as the window holds, right away.
    let sent: Vec<Vec<u64>> = read_messages(&mut n)
        .iter()
        .filter(|m| !m.entries.is_empty())
        .map(|m| m.entries.iter().map(|e| e.index).collect())
        .collect();
    assert_eq!(sent, vec![vec![li + 2], vec![li + 3], vec![li + 4]]);
    assert_eq!(n.raft.trk.progress[&2].state, ProgressState::Replicate);
    assert!(is_paused(&n, 2));
}
