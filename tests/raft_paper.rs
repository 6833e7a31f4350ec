//! The Raft paper's rules (§5.1–§5.4), checked the way etcd-raft checks them
//! in raft_paper_test.go: each test sets one node (or a small cluster) into
//! a situation the paper describes and asserts what the paper says happens.

mod common;

use std::collections::BTreeSet;

use common::network::*;
use corelog::raft::StateType;
use corelog::raftpb::{Entry, HardState, Message, MessageType};

/// Puts a fresh member of {1, 2, 3} into `state` at term 1.
fn node_in_state(state: StateType) -> Node {
    let mut n = new_node(1, &[1, 2, 3]);
    match state {
        StateType::Follower => n.raft.become_follower(1, 2),
        StateType::Candidate => n.raft.become_candidate(),
        StateType::Leader => {
            n.raft.become_candidate();
            n.raft.become_leader();
        }
        StateType::PreCandidate => unreachable!("not a paper state"),
    }
    drain(&mut n);
    n
}

// §5.1: a server seeing a larger term adopts it; a candidate or leader
// seeing one reverts to follower.
#[test]
fn every_state_adopts_a_larger_term_from_a_message_and_becomes_follower() {
    for state in [StateType::Follower, StateType::Candidate, StateType::Leader] {
        let mut n = node_in_state(state);
        assert_eq!(n.raft.term, 1);

        n.raft
            .step(msg(MessageType::MsgApp, 2, 1, 2))
            .expect("step");

        assert_eq!(n.raft.term, 2, "{state}");
        assert_eq!(n.raft.state, StateType::Follower, "{state}");
        assert_eq!(n.raft.lead, 2, "{state}: the sender of MsgApp leads");
    }
}

// §5.1: a request with a stale term is rejected (etcd, and corelog, ignore
// it): nothing about the node changes and nothing is sent.
#[test]
fn messages_with_a_stale_term_are_ignored() {
    let stale = [
        Message {
            entries: vec![data_entry(1, 1, b"x")],
            commit: 1,
            ..msg(MessageType::MsgApp, 2, 1, 1)
        },
        Message {
            commit: 1,
            ..msg(MessageType::MsgHeartbeat, 2, 1, 1)
        },
        msg(MessageType::MsgVote, 2, 1, 1),
        msg(MessageType::MsgAppResp, 2, 1, 1),
        msg(MessageType::MsgVoteResp, 2, 1, 1),
        msg(MessageType::MsgTimeoutNow, 2, 1, 1),
    ];
    for m in stale {
        let t = m.r#type();
        let mut n = new_node_with_state(
            config(1, 10, 1),
            storage_with_peers(&[1, 2, 3]),
            HardState {
                term: 2,
                ..Default::default()
            },
        );
        drain(&mut n);

        n.raft.step(m).expect("step");

        assert_eq!(n.raft.term, 2, "{t:?}");
        assert_eq!(n.raft.vote, 0, "{t:?}");
        assert_eq!(n.raft.lead, 0, "{t:?}");
        assert_eq!(n.raft.state, StateType::Follower, "{t:?}");
        assert_eq!(n.raft.raft_log.last_index(), 0, "{t:?}");
        assert_eq!(n.raft.raft_log.committed, 0, "{t:?}");
        assert!(read_messages(&mut n).is_empty(), "{t:?}");
    }
}

// §5.2: servers start up as followers.
#[test]
fn a_server_starts_as_a_follower() {
    let n = new_node(1, &[1, 2, 3]);
    assert_eq!(n.raft.state, StateType::Follower);
    assert_eq!(n.raft.term, 0);
    assert_eq!(n.raft.lead, 0);
}

// §5.2: a leader sends empty AppendEntries (heartbeats) to every follower
// at each heartbeat interval; etcd's carry no index, log term or entries,
// and a commit index capped at what the follower is known to hold.
#[test]
fn leader_broadcasts_empty_heartbeats_on_its_heartbeat_tick() {
    let mut n = node_in_state(StateType::Leader);
    for _ in 0..10 {
        n.raft.step(prop(1, b"data")).expect("proposal");
    }
    drain(&mut n);

    n.tick();

    let mut msgs = read_messages(&mut n);
    sort_msgs(&mut msgs);
    assert_eq!(
        msgs,
        vec![
            msg(MessageType::MsgHeartbeat, 1, 2, 1),
            msg(MessageType::MsgHeartbeat, 1, 3, 1),
        ]
    );
}

// §5.2: a follower (or a candidate whose election went nowhere) that hears
// nothing for an election timeout starts an election: next term, candidate,
// votes for itself, asks every other server.
#[test]
fn follower_or_candidate_without_news_starts_an_election() {
    for state in [StateType::Follower, StateType::Candidate] {
        let mut n = node_in_state(state);

        // The randomized timeout is below 2 * election_tick.
        for _ in 1..2 * n.raft.election_timeout {
            n.tick();
        }
        let mut msgs = read_messages(&mut n);

        assert_eq!(n.raft.term, 2, "{state}");
        assert_eq!(n.raft.state, StateType::Candidate, "{state}");
        assert_eq!(n.raft.vote, 1, "{state}");
        assert_eq!(n.raft.trk.votes.get(&1), Some(&true), "{state}");
        sort_msgs(&mut msgs);
        assert_eq!(
            msgs,
            vec![
                msg(MessageType::MsgVote, 1, 2, 2),
                msg(MessageType::MsgVote, 1, 3, 2),
            ],
            "{state}"
        );
    }
}

// §5.2: in one round of RequestVote a candidate wins (a majority grants),
// loses (a majority rejects: back to follower) or neither (stays
// candidate), for clusters of 1, 3 and 5.
#[test]
fn one_round_election_wins_loses_or_stays_pending() {
    use StateType::*;
    // (cluster size, votes received, resulting state)
    type Case = (u64, &'static [(u64, bool)], StateType);
    let cases: &[Case] = &[
        // A majority grants.
        (1, &[], Leader),
        (3, &[(2, true), (3, true)], Leader),
        (3, &[(2, true)], Leader),
        (5, &[(2, true), (3, true), (4, true), (5, true)], Leader),
        (5, &[(2, true), (3, true), (4, true)], Leader),
        (5, &[(2, true), (3, true)], Leader),
        // A majority rejects.
        (3, &[(2, false), (3, false)], Follower),
        (
            5,
            &[(2, false), (3, false), (4, false), (5, false)],
            Follower,
        ),
        (
            5,
            &[(2, true), (3, false), (4, false), (5, false)],
            Follower,
        ),
        // Neither.
        (3, &[], Candidate),
        (5, &[(2, true)], Candidate),
        (5, &[(2, false), (3, false)], Candidate),
        (5, &[], Candidate),
    ];
    for (i, &(size, votes, want)) in cases.iter().enumerate() {
        let mut n = new_node(1, &ids_by_size(size));
        n.raft.step(msg(MessageType::MsgHup, 1, 1, 0)).expect("hup");
        // The candidate's own vote counts once it is durable.
        drain(&mut n);
        for &(id, granted) in votes {
            let m = Message {
                reject: !granted,
                ..msg(MessageType::MsgVoteResp, id, 1, n.raft.term)
            };
            n.raft.step(m).expect("vote");
        }

        assert_eq!(n.raft.state, want, "#{i}");
        assert_eq!(n.raft.term, 1, "#{i}");
    }
}

// §5.2: a follower votes for at most one candidate per term, first come
// first served; asking again for the same candidate is granted again.
#[test]
fn follower_votes_for_at_most_one_candidate_per_term() {
    let cases = [
        (0, 2, false),
        (0, 3, false),
        (2, 2, false),
        (3, 3, false),
        (2, 3, true),
        (3, 2, true),
    ];
    for (i, (vote, candidate, reject)) in cases.into_iter().enumerate() {
        let mut n = new_node_with_state(
            config(1, 10, 1),
            storage_with_peers(&[1, 2, 3]),
            HardState {
                term: 1,
                vote,
                commit: 0,
            },
        );
        drain(&mut n);

        n.raft
            .step(msg(MessageType::MsgVote, candidate, 1, 1))
            .expect("step");

        let want = Message {
            reject,
            ..msg(MessageType::MsgVoteResp, 1, candidate, 1)
        };
        assert_eq!(read_messages(&mut n), vec![want], "#{i}");
        let voted = if reject { vote } else { candidate };
        assert_eq!(n.raft.vote, voted, "#{i}");
    }
}

// §5.2: a candidate that receives AppendEntries from a leader whose term is
// at least its own recognizes that leader and returns to follower.
#[test]
fn candidate_falls_back_to_follower_on_a_leaders_append() {
    for term in [1, 2] {
        let mut n = new_node(1, &[1, 2, 3]);
        n.raft.step(msg(MessageType::MsgHup, 1, 1, 0)).expect("hup");
        assert_eq!(n.raft.state, StateType::Candidate);
        assert_eq!(n.raft.term, 1);

        n.raft
            .step(msg(MessageType::MsgApp, 2, 1, term))
            .expect("step");

        assert_eq!(n.raft.state, StateType::Follower, "term {term}");
        assert_eq!(n.raft.term, term);
        assert_eq!(n.raft.lead, 2);
    }
}

/// Ticks `n` until it sends something; returns the number of ticks.
fn ticks_until_campaign(n: &mut Node) -> usize {
    let mut ticks = 0;
    while read_messages(n).is_empty() {
        n.tick();
        ticks += 1;
        assert!(ticks <= 100, "never campaigned");
    }
    ticks
}

// §5.2: election timeouts are randomized; etcd draws them from
// [election_tick, 2 * election_tick), and every value there occurs.
#[test]
fn election_timeout_is_randomized_over_one_to_two_election_ticks() {
    for state in [StateType::Follower, StateType::Candidate] {
        let et = 10;
        let mut n = new_node(1, &[1, 2, 3]);
        let mut seen = BTreeSet::new();
        for _ in 0..50 * et {
            match state {
                StateType::Follower => {
                    let term = n.raft.term + 1;
                    n.raft.become_follower(term, 2);
                }
                _ => n.raft.become_candidate(),
            }
            seen.insert(ticks_until_campaign(&mut n));
        }
        let want: BTreeSet<usize> = (et..2 * et).collect();
        assert_eq!(seen, want, "{state}");
    }
}

// §5.2: randomization makes it likely that a single server times out first
// (rather than several splitting the vote).
#[test]
fn election_timeouts_rarely_coincide_across_servers() {
    for state in [StateType::Follower, StateType::Candidate] {
        let ids = ids_by_size(5);
        let mut nodes: Vec<Node> = ids.iter().map(|&id| new_node(id, &ids)).collect();
        let rounds = 1000;
        let mut conflicts = 0;
        for _ in 0..rounds {
            for n in &mut nodes {
                match state {
                    StateType::Follower => {
                        let term = n.raft.term + 1;
                        n.raft.become_follower(term, 0);
                    }
                    _ => n.raft.become_candidate(),
                }
                drain(n);
            }
            let mut timed_out = 0;
            while timed_out == 0 {
                for n in &mut nodes {
                    n.tick();
                    if !read_messages(n).is_empty() {
                        timed_out += 1;
                    }
                }
            }
            if timed_out > 1 {
                conflicts += 1;
            }
        }
        assert!(
            conflicts * 10 <= rounds * 3,
            "{state}: {conflicts} of {rounds} rounds had several timeouts at once"
        );
    }
}

// §5.3: the leader appends a proposal to its log (to be persisted), then
// sends AppendEntries with it to every follower, carrying the index and term
// of the entry that precedes it.
#[test]
fn leader_appends_a_proposal_and_replicates_it_with_the_preceding_entry() {
    let mut n = new_node(1, &[1, 2, 3]);
    let li = elect(&mut n);

    n.raft.step(prop(1, b"some data")).expect("proposal");

    assert_eq!(n.raft.raft_log.last_index(), li + 1);
    assert_eq!(n.raft.raft_log.committed, li);
    let mut out = drain(&mut n);
    let want_ents = vec![data_entry(1, li + 1, b"some data")];
    sort_msgs(&mut out.messages);
    let app = |to| Message {
        index: li,
        log_term: 1,
        entries: want_ents.clone(),
        commit: li,
        ..msg(MessageType::MsgApp, 1, to, 1)
    };
    assert_eq!(out.messages, vec![app(2), app(3)]);
    assert_eq!(out.entries, want_ents, "the new entry is persisted");
    assert!(out.committed_entries.is_empty());
}

// §5.3: once an entry is replicated on a majority the leader commits it,
// hands it out to be applied, and tells the followers the new commit index.
#[test]
fn leader_commits_a_replicated_entry_and_announces_the_commit_index() {
    let mut n = new_node(1, &[1, 2, 3]);
    let li = elect(&mut n);
    n.raft.step(prop(1, b"some data")).expect("proposal");

    for m in read_messages(&mut n) {
        n.raft.step(accept_and_reply(&m)).expect("ack");
    }

    assert_eq!(n.raft.raft_log.committed, li + 1);
    let mut out = drain(&mut n);
    assert_eq!(
        out.committed_entries,
        vec![data_entry(1, li + 1, b"some data")]
    );
    sort_msgs(&mut out.messages);
    let tos: Vec<u64> = out.messages.iter().map(|m| m.to).collect();
    assert_eq!(tos, vec![2, 3]);
    for m in &out.messages {
        assert_eq!(m.r#type(), MessageType::MsgApp);
        assert_eq!(m.commit, li + 1);
    }
}

// §5.3: an entry commits exactly when the leader's copy and the followers
// that accepted it form a majority.
#[test]
fn leader_commits_only_with_a_majority_of_acknowledgements() {
    let cases: &[(u64, &[u64], bool)] = &[
        (1, &[], true),
        (3, &[], false),
        (3, &[2], true),
        (3, &[2, 3], true),
        (5, &[], false),
        (5, &[2], false),
        (5, &[2, 3], true),
        (5, &[2, 3, 4], true),
        (5, &[2, 3, 4, 5], true),
    ];
    for (i, &(size, acceptors, commits)) in cases.iter().enumerate() {
        let mut n = new_node(1, &ids_by_size(size));
        let li = elect(&mut n);
        n.raft.step(prop(1, b"some data")).expect("proposal");

        for m in read_messages(&mut n) {
            if acceptors.contains(&m.to) {
                n.raft.step(accept_and_reply(&m)).expect("ack");
            }
        }
        drain(&mut n);

        assert_eq!(n.raft.raft_log.committed > li, commits, "#{i}");
    }
}

// §5.3: committing an entry commits every entry before it, including those
// of previous leaders, and they are applied in log order.
#[test]
fn leader_commit_includes_entries_of_previous_terms() {
    let cases = [
        vec![],
        ents_with_terms(1, &[2]),
        ents_with_terms(1, &[1, 2]),
        ents_with_terms(1, &[1]),
    ];
    for (i, prior) in cases.into_iter().enumerate() {
        let mut store = storage_with_peers(&[1, 2, 3]);
        store.append(&prior).expect("append");
        let mut n = new_node_with_state(
            config(1, 10, 1),
            store,
            HardState {
                term: 2,
                ..Default::default()
            },
        );
        n.raft.become_candidate();
        n.raft.become_leader();
        n.raft.step(prop(1, b"some data")).expect("proposal");

        for m in read_messages(&mut n) {
            n.raft.step(accept_and_reply(&m)).expect("ack");
        }

        let li = prior.len() as u64;
        let mut want = prior.clone();
        want.push(Entry {
            term: 3,
            index: li + 1,
            ..Default::default()
        });
        want.push(data_entry(3, li + 2, b"some data"));
        assert_eq!(drain(&mut n).committed_entries, want, "#{i}");
    }
}

// §5.3: a follower learning a commit index from the leader applies its
// entries up to it, in log order.
#[test]
fn follower_applies_entries_up_to_the_leaders_commit_index() {
    let cases = [
        (vec![data_entry(1, 1, b"some data")], 1),
        (
            vec![
                data_entry(1, 1, b"some data"),
                data_entry(1, 2, b"some data2"),
            ],
            2,
        ),
        (
            vec![
                data_entry(1, 1, b"some data2"),
                data_entry(1, 2, b"some data"),
            ],
            2,
        ),
        (
            vec![
                data_entry(1, 1, b"some data"),
                data_entry(1, 2, b"some data2"),
            ],
            1,
        ),
    ];
    for (i, (ents, commit)) in cases.into_iter().enumerate() {
        let mut n = new_node(1, &[1, 2, 3]);
        n.raft.become_follower(1, 2);

        n.raft
            .step(Message {
                entries: ents.clone(),
                commit,
                ..msg(MessageType::MsgApp, 2, 1, 1)
            })
            .expect("append");

        assert_eq!(n.raft.raft_log.committed, commit, "#{i}");
        assert_eq!(
            drain(&mut n).committed_entries,
            ents[..commit as usize].to_vec(),
            "#{i}"
        );
    }
}

// §5.3: a follower accepts AppendEntries only if its log holds the entry
// before them (same index and term); otherwise it refuses, and (etcd's
// fast backtracking) hints the last index at which the logs may match and
// its term there.
#[test]
fn follower_accepts_appends_only_after_a_matching_entry_and_hints_on_refusal() {
    let ents = ents_with_terms(1, &[1, 2]);
    // The leader is at term 3 (a leader knows no entry of a later term).
    // (log term, index) of the MsgApp; answer: index, reject, hint, term.
    let cases = [
        // Matches a committed entry.
        (0, 0, 1, false, 0, 0),
        (1, 1, 1, false, 0, 0),
        // Matches an uncommitted entry.
        (2, 2, 2, false, 0, 0),
        // The entry at index 2 has another term.
        (1, 2, 2, true, 1, 1),
        // There is no entry at index 3.
        (3, 3, 3, true, 2, 2),
    ];
    for (i, (log_term, index, w_index, reject, hint, hint_term)) in cases.into_iter().enumerate() {
        let mut store = storage_with_peers(&[1, 2, 3]);
        store.append(&ents).expect("append");
        let mut n = new_node_with_state(
            config(1, 10, 1),
            store,
            HardState {
                commit: 1,
                ..Default::default()
            },
        );
        n.raft.become_follower(3, 2);
        drain(&mut n);

        n.raft
            .step(Message {
                log_term,
                index,
                ..msg(MessageType::MsgApp, 2, 1, 3)
            })
            .expect("append");

        let want = Message {
            index: w_index,
            reject,
            reject_hint: hint,
            log_term: hint_term,
            ..msg(MessageType::MsgAppResp, 1, 2, 3)
        };
        assert_eq!(read_messages(&mut n), vec![want], "#{i}");
    }
}

// §5.3: an accepted append deletes a conflicting entry and everything after
// it, then appends the new entries; only new entries are persisted.
#[test]
fn follower_replaces_conflicting_entries_and_appends_new_ones() {
    // The leader is at term 4 (a leader's entries never have a later term
    // than its own). (prev index, prev term, entries, log after, persisted)
    let cases = [
        (
            2,
            2,
            ents_with_terms(3, &[3]),
            ents_with_terms(1, &[1, 2, 3]),
            ents_with_terms(3, &[3]),
        ),
        (
            1,
            1,
            ents_with_terms(2, &[3, 4]),
            ents_with_terms(1, &[1, 3, 4]),
            ents_with_terms(2, &[3, 4]),
        ),
        (
            0,
            0,
            ents_with_terms(1, &[1]),
            ents_with_terms(1, &[1, 2]),
            vec![],
        ),
        (
            0,
            0,
            ents_with_terms(1, &[3]),
            ents_with_terms(1, &[3]),
            ents_with_terms(1, &[3]),
        ),
    ];
    for (i, (index, log_term, ents, want_log, want_persisted)) in cases.into_iter().enumerate() {
        let mut store = storage_with_peers(&[1, 2, 3]);
        store.append(&ents_with_terms(1, &[1, 2])).expect("append");
        let mut n = new_node_with(config(1, 10, 1), store);
        n.raft.become_follower(4, 2);
        drain(&mut n);

        n.raft
            .step(Message {
                index,
                log_term,
                entries: ents,
                ..msg(MessageType::MsgApp, 2, 1, 4)
            })
            .expect("append");

        assert_eq!(n.raft.raft_log.all_entries(), want_log, "#{i}");
        let out = drain(&mut n);
        assert_eq!(out.entries, want_persisted, "#{i}");
        assert_eq!(out.messages.len(), 1, "#{i}");
        assert!(!out.messages[0].reject, "#{i}");
    }
}

const FIGURE_7_LEADER: [u64; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// The follower logs (a)-(f) of Figure 7, by term.
const FIGURE_7_FOLLOWERS: [&[u64]; 6] = [
    &[1, 1, 1, 4, 4, 5, 5, 6, 6],
    &[1, 1, 1, 4],
    &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    &[1, 1, 1, 4, 4, 4, 4],
    &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
];

/// Node 1 with Figure 7's leader log (all committed, term 8) is elected
/// (term 9) and proposes an entry, with node 2 holding `follower_terms`.
/// Node 3 is not on the network: its vote is delivered by hand, as node 2
/// may refuse its own (its log may be more up to date).
fn figure_7(follower_terms: &[u64]) -> Network {
    let term = 8;
    let mut lead_store = storage_with_peers(&[1, 2, 3]);
    lead_store
        .append(&ents_with_terms(1, &FIGURE_7_LEADER))
        .expect("append");
    let lead = new_node_with_state(
        config(1, 10, 1),
        lead_store,
        HardState {
            term,
            vote: 0,
            commit: FIGURE_7_LEADER.len() as u64,
        },
    );
    let mut follower_store = storage_with_peers(&[1, 2, 3]);
    follower_store
        .append(&ents_with_terms(1, follower_terms))
        .expect("append");
    let follower = new_node_with_state(
        config(2, 10, 1),
        follower_store,
        HardState {
            term: term - 1,
            ..Default::default()
        },
    );
    let mut nw = Network::from_nodes(vec![lead, follower]);
    nw.campaign(1);
    nw.send(vec![msg(MessageType::MsgVoteResp, 3, 1, term + 1)]);
    assert_eq!(nw.state(1), StateType::Leader);
    nw.send(vec![prop(1, b"")]);
    nw
}

// §5.3, Figure 7: a new leader brings each of the followers (a)-(f) to
// exactly its own log: missing entries are filled in, extra and conflicting
// ones removed.
#[test]
fn leader_repairs_every_follower_log_of_figure_7() {
    for (i, follower_terms) in FIGURE_7_FOLLOWERS.into_iter().enumerate() {
        let case = (b'a' + i as u8) as char;
        let nw = figure_7(follower_terms);

        let (l, f) = (&nw.node(1).raft.raft_log, &nw.node(2).raft.raft_log);
        assert_eq!(f.all_entries(), l.all_entries(), "({case})");
        assert_eq!(f.committed, l.committed, "({case})");
        assert_eq!(f.applied, l.applied, "({case})");
        assert_eq!(l.last_index(), FIGURE_7_LEADER.len() as u64 + 2, "({case})");
        assert_eq!(l.committed, l.last_index(), "({case})");
    }
}

// Figure 7 again, counting round trips: with etcd's hints (the follower
// names the last index at or below the probe whose term is at most the
// probe's, and the leader skips its own entries of later terms) each
// follower's conflict is found with at most one rejected append, where
// stepping back one index at a time would take up to seven for (f).
#[test]
fn figure_7_logs_are_repaired_with_at_most_one_rejection() {
    // Rejections for (a)-(f): (c) and (d) match the first probe at index 10.
    let want = [1, 1, 0, 0, 1, 1];
    for (i, follower_terms) in FIGURE_7_FOLLOWERS.into_iter().enumerate() {
        let case = (b'a' + i as u8) as char;
        let nw = figure_7(follower_terms);

        let rejections = nw
            .trace
            .iter()
            .filter(|m| m.r#type() == MessageType::MsgAppResp && m.from == 2 && m.reject)
            .count();
        assert_eq!(rejections, want[i], "({case})");
    }
}

// §5.4.1: a vote request carries the index and term of the candidate's last
// log entry, and goes to every other server.
#[test]
fn vote_requests_carry_the_candidates_last_log_index_and_term() {
    let cases = [
        (ents_with_terms(1, &[1]), 2),
        (ents_with_terms(1, &[1, 2]), 3),
    ];
    for (i, (ents, want_term)) in cases.into_iter().enumerate() {
        let last = ents.last().cloned().expect("entries");
        let mut n = new_node(1, &[1, 2, 3]);
        n.raft
            .step(Message {
                entries: ents,
                ..msg(MessageType::MsgApp, 2, 1, want_term - 1)
            })
            .expect("append");
        drain(&mut n);

        for _ in 1..2 * n.raft.election_timeout {
            n.tick();
        }

        let mut msgs = read_messages(&mut n);
        sort_msgs(&mut msgs);
        let vote = |to| Message {
            index: last.index,
            log_term: last.term,
            ..msg(MessageType::MsgVote, 1, to, want_term)
        };
        assert_eq!(msgs, vec![vote(2), vote(3)], "#{i}");
    }
}

// §5.4.1: a voter denies its vote if its own log is more up to date than
// the candidate's (a later last term, or the same last term and a longer
// log).
#[test]
fn voter_refuses_a_candidate_whose_log_is_less_up_to_date() {
    // (voter's log, candidate's last term, candidate's last index, refused)
    let cases = [
        // Same last term.
        (ents_with_terms(1, &[1]), 1, 1, false),
        (ents_with_terms(1, &[1]), 1, 2, false),
        (ents_with_terms(1, &[1, 1]), 1, 1, true),
        // The candidate's last term is later.
        (ents_with_terms(1, &[1]), 2, 1, false),
        (ents_with_terms(1, &[1]), 2, 2, false),
        (ents_with_terms(1, &[1, 1]), 2, 1, false),
        // The voter's last term is later.
        (ents_with_terms(1, &[2]), 1, 1, true),
        (ents_with_terms(1, &[2]), 1, 2, true),
        (ents_with_terms(1, &[2, 2]), 1, 1, true),
        (ents_with_terms(1, &[1, 1]), 1, 1, true),
    ];
    for (i, (ents, log_term, index, refused)) in cases.into_iter().enumerate() {
        let mut store = storage_with_peers(&[1, 2]);
        store.append(&ents).expect("append");
        let mut n = new_node_with(config(1, 10, 1), store);
        drain(&mut n);

        n.raft
            .step(Message {
                log_term,
                index,
                ..msg(MessageType::MsgVote, 2, 1, 3)
            })
            .expect("vote");

        let msgs = read_messages(&mut n);
        assert_eq!(msgs.len(), 1, "#{i}");
        assert_eq!(msgs[0].r#type(), MessageType::MsgVoteResp, "#{i}");
        assert_eq!(msgs[0].reject, refused, "#{i}");
        assert_eq!(n.raft.vote, if refused { 0 } else { 2 }, "#{i}");
    }
}

// §5.4.2, Figure 8: a leader never commits an entry of an earlier term by
// counting its replicas; only an entry of its own term commits that way
// (and with it everything before).
#[test]
fn leader_commits_by_counting_replicas_only_entries_of_its_own_term() {
    // (follower's acknowledged index, commit index after)
    let cases = [(1, 0), (2, 0), (3, 3)];
    for (i, (acked, want_commit)) in cases.into_iter().enumerate() {
        let mut store = storage_with_peers(&[1, 2]);
        store.append(&ents_with_terms(1, &[1, 2])).expect("append");
        let mut n = new_node_with_state(
            config(1, 10, 1),
            store,
            HardState {
                term: 2,
                ..Default::default()
            },
        );
        // Leader of term 3, with its empty entry at index 3.
        n.raft.become_candidate();
        n.raft.become_leader();
        read_messages(&mut n);
        n.raft.step(prop(1, b"")).expect("proposal");

        n.raft
            .step(Message {
                index: acked,
                ..msg(MessageType::MsgAppResp, 2, 1, n.raft.term)
            })
            .expect("ack");
        drain(&mut n);

        assert_eq!(n.raft.raft_log.committed, want_commit, "#{i}");
    }
}

/// Makes a leader (or candidate) of `nw` a follower at its term without a
/// leader, so that it can campaign again: the history's "crash and restart".
fn step_down(nw: &mut Network, id: u64) {
    let n = nw.node_mut(id);
    let term = n.raft.term;
    n.raft.become_follower(term, 0);
    drain(n);
}

// §5.4.2, Figure 8 as a history in a cluster of five: S1 leads term 2 and
// gets an entry (index 3) onto S2 only; S5 leads term 3 with entries nobody
// else gets; S1 leads again (term 4) and replicates the term-2 entry to S3.
// The term-2 entry now sits on a majority, but must not count as committed:
// S5 can still win an election (S2, S3, S4 vote for its later last term)
// and replace it.
#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed() {
    let mut nw = Network::new(&ids_by_size(5));
    // S1 leads term 1: everyone holds its empty entry (index 1).
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);

    // (a) S1 leads term 2 (empty entry at index 2, committed everywhere);
    // its proposal (index 3) reaches S2 only.
    step_down(&mut nw, 1);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);
    assert_eq!(nw.node(1).raft.term, 2);
    for peer in [3, 4, 5] {
        nw.cut(1, peer);
    }
    nw.propose(1, b"term 2");
    assert_eq!(nw.node(2).raft.raft_log.term(3).ok(), Some(2));
    assert_eq!(nw.node(1).raft.raft_log.committed, 2);

    // (b) S5 leads term 3 with the votes of S3 and S4; its entries (index 3
    // and 4) reach nobody.
    nw.recover();
    nw.isolate(1);
    nw.cut(5, 2);
    nw.ignore(MessageType::MsgApp);
    nw.campaign(5);
    assert_eq!(nw.state(5), StateType::Leader);
    assert_eq!(nw.node(5).raft.term, 3);
    nw.propose(5, b"term 3");
    assert_eq!(nw.node(5).raft.raft_log.last_index(), 4);

    // (c) S1 leads term 4 with the votes of S2 and S3 (its first try, at
    // term 3, is refused by S3, which voted for S5 in that term).
    nw.recover();
    nw.isolate(5);
    nw.isolate(4);
    nw.ignore(MessageType::MsgApp);
    step_down(&mut nw, 1);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Candidate);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);
    assert_eq!(nw.node(1).raft.term, 4);
    // Only the term-2 entry, not S1's empty entry of term 4 (index 4),
    // reaches S3; S2 confirms it holds it too.
    let s1_log = nw.node(1).raft.raft_log.all_entries();
    assert_eq!(s1_log[2].term, 2);
    let to_s2 = Message {
        index: 3,
        log_term: 2,
        commit: 2,
        ..msg(MessageType::MsgApp, 1, 2, 4)
    };
    let to_s3 = Message {
        index: 2,
        log_term: 2,
        entries: vec![s1_log[2].clone()],
        commit: 2,
        ..msg(MessageType::MsgApp, 1, 3, 4)
    };
    nw.recover();
    nw.isolate(5);
    nw.isolate(4);
    nw.ignore(MessageType::MsgApp);
    // Step them directly (the network ignores MsgApp) and deliver the
    // acknowledgements.
    for m in [to_s2, to_s3] {
        let to = m.to;
        nw.node_mut(to).raft.step(m).expect("append");
        nw.flush();
    }
    assert_eq!(nw.node(3).raft.raft_log.term(3).ok(), Some(2));
    // S1, S2 and S3 hold index 3: counting replicas would commit it...
    assert_eq!(nw.node(1).raft.trk.committed(), 3);
    // ...but it is of term 2, not S1's term.
    assert_eq!(
        nw.node(1).raft.raft_log.committed,
        2,
        "an entry of an earlier term is not committed by counting replicas"
    );

    // (d) S1 fails; S5 wins term 5 with S2, S3 and S4 (its first try, at
    // term 4, is refused by S2 and S3) and overwrites index 3 everywhere.
    nw.recover();
    nw.isolate(1);
    step_down(&mut nw, 5);
    nw.campaign(5);
    nw.campaign(5);
    assert_eq!(nw.state(5), StateType::Leader);
    assert_eq!(nw.node(5).raft.term, 5);
    for id in [2, 3, 4, 5] {
        let log = &nw.node(id).raft.raft_log;
        assert_eq!(log.term(3).ok(), Some(3), "S{id} holds S5's entry at 3");
        assert_eq!(log.last_index(), 5, "S{id}");
    }
    assert_eq!(nw.node(5).raft.raft_log.committed, 5);
}
