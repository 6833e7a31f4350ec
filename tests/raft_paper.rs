//! The Raft paper's rules (§5.1–§5.4, https://raft.github.io/raft.pdf) as
//! etcd-raft's raft_paper_test.go checks them, against corelog's `Raft`:
//! each test sets up a state, steps messages or ticks, and checks the
//! messages sent and the resulting state.
//!
//! Only the core's public API is used; where etcd's tests reach for internal
//! helpers (bcastAppend, a fake step function), the same situation is set up
//! through the public path a real node takes (an election, observable
//! effects).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use corelog::raft::{Config, MemStorage, Raft, StateType};
use corelog::raftpb::{ConfState, Entry, HardState, Message, MessageType};

type TestRaft = Raft<MemStorage>;

/// A storage whose (bootstrap) configuration has `peers` as voters.
fn storage(peers: &[u64]) -> MemStorage {
    MemStorage::new_with_conf_state(ConfState {
        voters: peers.to_vec(),
        ..Default::default()
    })
}

/// A storage with `peers` holding `ents` (stable, not committed).
fn storage_with(peers: &[u64], ents: &[Entry]) -> MemStorage {
    let mut s = storage(peers);
    s.append(ents)
        .expect("test entries append to an empty storage");
    s
}

fn new_test_raft(id: u64, election: usize, heartbeat: usize, store: MemStorage) -> TestRaft {
    let cfg = Config {
        id,
        election_tick: election,
        heartbeat_tick: heartbeat,
        max_size_per_msg: u64::MAX,
        max_inflight_msgs: 256,
        ..Config::default()
    };
    Raft::new(&cfg, store).expect("test config is valid")
}

fn ids_by_size(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    Message {
        r#type: t as i32,
        from,
        to,
        term,
        ..Default::default()
    }
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        ..Default::default()
    }
}

fn data_entry(term: u64, index: u64, data: &'static [u8]) -> Entry {
    Entry {
        term,
        index,
        data: Bytes::from_static(data),
        ..Default::default()
    }
}

/// Entries at `first, first+1, ...` with the given terms.
fn ents(first: u64, terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .zip(first..)
        .map(|(&t, i)| entry(t, i))
        .collect()
}

fn prop(from: u64, data: &'static [u8]) -> Message {
    let mut m = msg(MessageType::MsgProp, from, from, 0);
    m.entries = vec![data_entry(0, 0, data)];
    m
}

/// What a restart from this hard state would load.
fn load_state(r: &mut TestRaft, hs: HardState) {
    r.term = hs.term;
    r.vote = hs.vote;
    r.raft_log.committed = hs.commit;
}

/// Steps the messages the node sent to itself once its storage is durable
/// (own votes, own append acks) and queues the others for sending, until
/// none is left: a synchronous storage, as etcd's tests assume.
fn advance_messages_after_append(r: &mut TestRaft) {
    loop {
        let msgs = std::mem::take(&mut r.msgs_after_append);
        if msgs.is_empty() {
            return;
        }
        for m in msgs {
            if m.to == r.id {
                r.step(m).expect("a node accepts its own messages");
            } else {
                r.msgs.push(m);
            }
        }
    }
}

/// Everything the node has to send, after its storage caught up.
fn read_messages(r: &mut TestRaft) -> Vec<Message> {
    advance_messages_after_append(r);
    std::mem::take(&mut r.msgs)
}

/// Messages in a stable order: by recipient, then type, then sender.
fn sorted(mut msgs: Vec<Message>) -> Vec<Message> {
    msgs.sort_by_key(|m| (m.to, m.r#type, m.from));
    msgs
}

/// The follower's acceptance of a MsgApp.
fn accept_and_reply(m: &Message) -> Message {
    assert_eq!(m.r#type, MessageType::MsgApp as i32, "not a MsgApp: {m:?}");
    let mut r = msg(MessageType::MsgAppResp, m.to, m.from, m.term);
    r.index = m.index + m.entries.len() as u64;
    r
}

/// Makes `r` leader by a real election: a MsgHup, then granted votes from
/// the other voters until it wins. The empty entry of its term is then
/// being sent (in `r.msgs`) to every follower.
fn elect(r: &mut TestRaft) {
    let id = r.id;
    r.step(msg(MessageType::MsgHup, id, id, 0))
        .expect("MsgHup is accepted");
    // The vote requests are of no interest: the answers are simulated.
    read_messages(r);
    let voters: Vec<u64> = r
        .trk
        .config
        .voters
        .ids()
        .into_iter()
        .filter(|&v| v != id)
        .collect();
    for v in voters {
        if r.state == StateType::Leader {
            break;
        }
        let term = r.term;
        r.step(msg(MessageType::MsgVoteResp, v, id, term))
            .expect("a granted vote is accepted");
        advance_messages_after_append(r);
    }
    assert_eq!(r.state, StateType::Leader, "node {id} did not win");
}

/// Elects `r` and has every follower accept the empty entry of its term;
/// then persists and applies everything, so that only new proposals are
/// unstable or unapplied.
fn elect_and_commit_noop(r: &mut TestRaft) {
    elect(r);
    for m in read_messages(r) {
        assert!(
            m.r#type == MessageType::MsgApp as i32
                && m.entries.len() == 1
                && m.entries[0].data.is_empty(),
            "not a message appending the empty entry: {m:?}"
        );
        r.step(accept_and_reply(&m)).expect("ack is accepted");
    }
    // The commit index updates to the followers are of no interest.
    read_messages(r);
    let unstable = r.raft_log.next_unstable_ents().to_vec();
    r.raft_log
        .store
        .append(&unstable)
        .expect("unstable entries follow the stable ones");
    let committed = r.raft_log.committed;
    r.raft_log.applied_to(committed, 0);
    let last = r.raft_log.last_entry_id();
    r.raft_log.stable_to(last);
}

fn make_state(r: &mut TestRaft, state: StateType) {
    match state {
        StateType::Follower => r.become_follower(1, 2),
        StateType::Candidate => r.become_candidate(),
        StateType::Leader => {
            r.become_candidate();
            r.become_leader();
        }
        StateType::PreCandidate => r.become_pre_candidate(),
    }
}

// §5.1: a server seeing a larger term adopts it; a candidate or leader
// seeing one reverts to follower.
#[test]
fn update_term_from_message_in_every_state() {
    for state in [StateType::Follower, StateType::Candidate, StateType::Leader] {
        let mut r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
        make_state(&mut r, state);
        r.step(msg(MessageType::MsgApp, 2, 1, 2))
            .expect("MsgApp is accepted");
        assert_eq!(r.term, 2, "from {state}");
        assert_eq!(r.state, StateType::Follower, "from {state}");
    }
}

// §5.1: a request with a stale term is rejected; etcd (and corelog) ignore
// it outright: no answer, no change of term, leader, role or log.
#[test]
fn stale_term_message_is_ignored() {
    let mut r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
    load_state(
        &mut r,
        HardState {
            term: 2,
            ..Default::default()
        },
    );
    let mut m = msg(MessageType::MsgApp, 2, 1, 1);
    m.entries = vec![entry(1, 1)];
    m.commit = 1;
    r.step(m).expect("a stale message is not an error");
    assert!(read_messages(&mut r).is_empty());
    assert_eq!(r.term, 2);
    assert_eq!(r.lead, 0);
    assert_eq!(r.state, StateType::Follower);
    assert_eq!(r.raft_log.last_index(), 0);
    assert_eq!(r.raft_log.committed, 0);
}

// §5.2: servers start as followers.
#[test]
fn start_as_follower() {
    let r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
    assert_eq!(r.state, StateType::Follower);
}

// §5.2: on a heartbeat tick the leader sends every follower a MsgHeartbeat
// with no entries and no log position.
#[test]
fn leader_broadcasts_heartbeat() {
    let hi = 1;
    let mut r = new_test_raft(1, 10, hi, storage(&[1, 2, 3]));
    r.become_candidate();
    r.become_leader();
    for _ in 0..10 {
        r.step(prop(1, b"")).expect("leader accepts proposals");
    }
    read_messages(&mut r);
    for _ in 0..hi {
        r.tick();
    }
    let hb2 = msg(MessageType::MsgHeartbeat, 1, 2, 1);
    let hb3 = msg(MessageType::MsgHeartbeat, 1, 3, 1);
    assert_eq!(sorted(read_messages(&mut r)), vec![hb2, hb3]);
}

// §5.2: a follower (or a candidate that failed to win) that hears nothing
// for an election timeout starts an election: new term, votes for itself,
// asks every other server for its vote.
#[test]
fn nonleader_starts_election_after_timeout() {
    for state in [StateType::Follower, StateType::Candidate] {
        let et = 10;
        let mut r = new_test_raft(1, et, 1, storage(&[1, 2, 3]));
        make_state(&mut r, state);
        for _ in 1..2 * et {
            r.tick();
        }
        advance_messages_after_append(&mut r);
        assert_eq!(r.term, 2, "from {state}");
        assert_eq!(r.state, StateType::Candidate, "from {state}");
        assert_eq!(r.trk.votes.get(&1), Some(&true), "from {state}");
        let want: Vec<Message> = [2, 3]
            .iter()
            .map(|&to| msg(MessageType::MsgVote, 1, to, 2))
            .collect();
        assert_eq!(sorted(read_messages(&mut r)), want, "from {state}");
    }
}

// §5.2: one round of RequestVote: win with a majority of grants, fall back
// to follower with a majority of rejections, otherwise stay candidate; for
// clusters of 1, 3 and 5.
#[test]
fn leader_election_in_one_round() {
    // (cluster size, vote answers (voter, granted), resulting state)
    type Case = (u64, Vec<(u64, bool)>, StateType);
    let cases: Vec<Case> = vec![
        (1, vec![], StateType::Leader),
        (3, vec![(2, true), (3, true)], StateType::Leader),
        (3, vec![(2, true)], StateType::Leader),
        (
            5,
            vec![(2, true), (3, true), (4, true), (5, true)],
            StateType::Leader,
        ),
        (5, vec![(2, true), (3, true), (4, true)], StateType::Leader),
        (5, vec![(2, true), (3, true)], StateType::Leader),
        (3, vec![(2, false), (3, false)], StateType::Follower),
        (
            5,
            vec![(2, false), (3, false), (4, false), (5, false)],
            StateType::Follower,
        ),
        (
            5,
            vec![(2, true), (3, false), (4, false), (5, false)],
            StateType::Follower,
        ),
        (3, vec![], StateType::Candidate),
        (5, vec![(2, true)], StateType::Candidate),
        (5, vec![(2, false), (3, false)], StateType::Candidate),
        (5, vec![], StateType::Candidate),
    ];
    for (i, (size, votes, want)) in cases.into_iter().enumerate() {
        let mut r = new_test_raft(1, 10, 1, storage(&ids_by_size(size)));
        r.step(msg(MessageType::MsgHup, 1, 1, 0))
            .expect("MsgHup is accepted");
        advance_messages_after_append(&mut r);
        for (id, granted) in votes {
            let term = r.term;
            let mut m = msg(MessageType::MsgVoteResp, id, 1, term);
            m.reject = !granted;
            r.step(m).expect("vote response is accepted");
        }
        assert_eq!(r.state, want, "#{i}");
        assert_eq!(r.term, 1, "#{i}");
    }
}

// §5.2: a follower votes for at most one candidate per term, first come
// first served.
#[test]
fn follower_votes_once_per_term() {
    for (i, (vote, nvote, reject)) in [
        (0, 2, false),
        (0, 3, false),
        (2, 2, false),
        (3, 3, false),
        (2, 3, true),
        (3, 2, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
        load_state(
            &mut r,
            HardState {
                term: 1,
                vote,
                commit: 0,
            },
        );
        r.step(msg(MessageType::MsgVote, nvote, 1, 1))
            .expect("vote request is accepted");
        let mut want = msg(MessageType::MsgVoteResp, 1, nvote, 1);
        want.reject = reject;
        assert_eq!(r.msgs_after_append, vec![want], "#{i}");
    }
}

// §5.2: a candidate that hears from a leader of at least its own term
// recognizes it and returns to follower.
#[test]
fn candidate_falls_back_to_follower() {
    for term in [1, 2] {
        let mut r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
        r.step(msg(MessageType::MsgHup, 1, 1, 0))
            .expect("MsgHup is accepted");
        assert_eq!(r.state, StateType::Candidate);
        r.step(msg(MessageType::MsgApp, 2, 1, term))
            .expect("MsgApp is accepted");
        assert_eq!(r.state, StateType::Follower, "term {term}");
        assert_eq!(r.term, term);
    }
}

/// Ticks until the node sends something; returns the number of ticks.
fn ticks_until_timeout(r: &mut TestRaft) -> usize {
    let mut time = 0;
    while read_messages(r).is_empty() {
        r.tick();
        time += 1;
        assert!(time < 1000, "node never timed out");
    }
    time
}

// §5.2: election timeouts are randomized over [et, 2*et), every value
// occurring.
#[test]
fn nonleader_election_timeout_is_randomized() {
    for state in [StateType::Follower, StateType::Candidate] {
        let et = 10;
        let mut r = new_test_raft(1, et, 1, storage(&[1, 2, 3]));
        let mut timeouts = BTreeMap::new();
        for _ in 0..50 * et {
            match state {
                StateType::Follower => {
                    let term = r.term + 1;
                    r.become_follower(term, 2);
                }
                _ => r.become_candidate(),
            }
            *timeouts.entry(ticks_until_timeout(&mut r)).or_insert(0) += 1;
        }
        for d in et..2 * et {
            assert!(
                timeouts.contains_key(&d),
                "{state}: no timeout after {d} ticks in {timeouts:?}"
            );
        }
        assert!(
            timeouts.keys().all(|&d| (et..2 * et).contains(&d)),
            "{state}: timeouts out of range: {timeouts:?}"
        );
    }
}

// §5.2: randomized timeouts make it rare that several servers time out at
// the same tick (which would split the vote).
#[test]
fn nonleader_election_timeouts_rarely_conflict() {
    for state in [StateType::Follower, StateType::Candidate] {
        let et = 10;
        let ids = ids_by_size(5);
        let mut rs: Vec<TestRaft> = ids
            .iter()
            .map(|&id| new_test_raft(id, et, 1, storage(&ids)))
            .collect();
        let mut conflicts = 0;
        for _ in 0..1000 {
            for r in rs.iter_mut() {
                match state {
                    StateType::Follower => {
                        let term = r.term + 1;
                        r.become_follower(term, 0);
                    }
                    _ => r.become_candidate(),
                }
            }
            let mut timeouts = 0;
            while timeouts == 0 {
                for r in rs.iter_mut() {
                    r.tick();
                    if !read_messages(r).is_empty() {
                        timeouts += 1;
                    }
                }
            }
            if timeouts > 1 {
                conflicts += 1;
            }
        }
        assert!(
            conflicts <= 300,
            "{state}: {conflicts} of 1000 rounds had several timeouts"
        );
    }
}

// §5.3: the leader appends a proposal to its log and sends it to every
// follower with the index and term of the entry before it; the entry is
// unstable (to be written to stable storage).
#[test]
fn leader_starts_replication() {
    let mut r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
    elect_and_commit_noop(&mut r);
    let li = r.raft_log.last_index();
    r.step(prop(1, b"some data"))
        .expect("leader accepts proposals");
    assert_eq!(r.raft_log.last_index(), li + 1);
    assert_eq!(r.raft_log.committed, li);
    let wents = vec![data_entry(1, li + 1, b"some data")];
    let want: Vec<Message> = [2, 3]
        .iter()
        .map(|&to| {
            let mut m = msg(MessageType::MsgApp, 1, to, 1);
            m.index = li;
            m.log_term = 1;
            m.entries = wents.clone();
            m.commit = li;
            m
        })
        .collect();
    assert_eq!(sorted(read_messages(&mut r)), want);
    assert_eq!(r.raft_log.next_unstable_ents(), wents.as_slice());
}

// §5.3: once replicated on a majority the entry is committed and handed out
// for applying; the new commit index goes out to the followers.
#[test]
fn leader_commits_replicated_entry() {
    let mut r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
    elect_and_commit_noop(&mut r);
    let li = r.raft_log.last_index();
    r.step(prop(1, b"some data"))
        .expect("leader accepts proposals");
    for m in read_messages(&mut r) {
        r.step(accept_and_reply(&m)).expect("ack is accepted");
    }
    assert_eq!(r.raft_log.committed, li + 1);
    assert_eq!(
        r.raft_log.next_committed_ents(true),
        vec![data_entry(1, li + 1, b"some data")]
    );
    let msgs = sorted(read_messages(&mut r));
    assert!(!msgs.is_empty());
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.to, i as u64 + 2);
        assert_eq!(m.r#type, MessageType::MsgApp as i32);
        assert_eq!(m.commit, li + 1);
    }
}

// §5.3: an entry is committed exactly when a majority (the leader included)
// has it.
#[test]
fn leader_commits_only_with_a_majority() {
    let cases: Vec<(u64, Vec<u64>, bool)> = vec![
        (1, vec![], true),
        (3, vec![], false),
        (3, vec![2], true),
        (3, vec![2, 3], true),
        (5, vec![], false),
        (5, vec![2], false),
        (5, vec![2, 3], true),
        (5, vec![2, 3, 4], true),
        (5, vec![2, 3, 4, 5], true),
    ];
    for (i, (size, acceptors, wack)) in cases.into_iter().enumerate() {
        let mut r = new_test_raft(1, 10, 1, storage(&ids_by_size(size)));
        elect_and_commit_noop(&mut r);
        let li = r.raft_log.last_index();
        r.step(prop(1, b"some data"))
            .expect("leader accepts proposals");
        advance_messages_after_append(&mut r);
        for m in r.msgs.clone() {
            if acceptors.contains(&m.to) {
                r.step(accept_and_reply(&m)).expect("ack is accepted");
            }
        }
        assert_eq!(r.raft_log.committed > li, wack, "#{i}");
    }
}

// §5.3: committing an entry commits every entry before it, those of
// earlier leaders included, and they are applied in log order.
#[test]
fn leader_commits_preceding_entries() {
    let cases: Vec<Vec<Entry>> = vec![
        vec![],
        vec![entry(2, 1)],
        vec![entry(1, 1), entry(2, 2)],
        vec![entry(1, 1)],
    ];
    for (i, tt) in cases.into_iter().enumerate() {
        let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2, 3], &tt));
        load_state(
            &mut r,
            HardState {
                term: 2,
                ..Default::default()
            },
        );
        r.become_candidate();
        r.become_leader();
        r.step(prop(1, b"some data"))
            .expect("leader accepts proposals");
        for m in read_messages(&mut r) {
            r.step(accept_and_reply(&m)).expect("ack is accepted");
        }
        let li = tt.len() as u64;
        let mut want = tt.clone();
        want.push(entry(3, li + 1));
        want.push(data_entry(3, li + 2, b"some data"));
        assert_eq!(r.raft_log.next_committed_ents(true), want, "#{i}");
    }
}

// §5.3: a follower that learns an entry is committed hands it out for
// applying, in log order.
#[test]
fn follower_commits_entries() {
    let cases: Vec<(Vec<Entry>, u64)> = vec![
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
        let mut r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
        r.become_follower(1, 2);
        let mut m = msg(MessageType::MsgApp, 2, 1, 1);
        m.entries = ents.clone();
        m.commit = commit;
        r.step(m).expect("MsgApp is accepted");
        assert_eq!(r.raft_log.committed, commit, "#{i}");
        assert_eq!(
            r.raft_log.next_committed_ents(true),
            ents[..commit as usize].to_vec(),
            "#{i}"
        );
    }
}

// §5.3: a follower accepts an append only if it holds the entry before it
// (same index and term); a rejection carries a hint (index, term) for the
// leader to back off to.
#[test]
fn follower_checks_append_position() {
    let log = [entry(1, 1), entry(2, 2)];
    // (logTerm, index) of the append; the answer's index, reject, hint,
    // logTerm.
    let cases = [
        // Matches committed entries.
        (0, 0, 1, false, 0, 0),
        (1, 1, 1, false, 0, 0),
        // Matches an uncommitted entry.
        (2, 2, 2, false, 0, 0),
        // Conflicts with an existing entry.
        (1, 2, 2, true, 1, 1),
        // Beyond the log.
        (3, 3, 3, true, 2, 2),
    ];
    for (i, (term, index, windex, wreject, whint, wlogterm)) in cases.into_iter().enumerate() {
        let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2, 3], &log));
        load_state(
            &mut r,
            HardState {
                commit: 1,
                ..Default::default()
            },
        );
        r.become_follower(2, 2);
        let mut m = msg(MessageType::MsgApp, 2, 1, 2);
        m.log_term = term;
        m.index = index;
        r.step(m).expect("MsgApp is accepted");
        let mut want = msg(MessageType::MsgAppResp, 1, 2, 2);
        want.index = windex;
        if wreject {
            want.reject = true;
            want.reject_hint = whint;
            want.log_term = wlogterm;
        }
        assert_eq!(read_messages(&mut r), vec![want], "#{i}");
    }
}

// §5.3: a valid append deletes a conflicting entry and all after it, and
// appends what is new; the new entries are unstable (to be persisted).
#[test]
fn follower_appends_entries() {
    // (prev index, prev term, entries sent, resulting log, unstable part)
    type Case = (u64, u64, Vec<Entry>, Vec<Entry>, Vec<Entry>);
    let cases: Vec<Case> = vec![
        (2, 2, ents(3, &[3]), ents(1, &[1, 2, 3]), ents(3, &[3])),
        (
            1,
            1,
            ents(2, &[3, 4]),
            ents(1, &[1, 3, 4]),
            ents(2, &[3, 4]),
        ),
        (0, 0, ents(1, &[1]), ents(1, &[1, 2]), vec![]),
        (0, 0, ents(1, &[3]), ents(1, &[3]), ents(1, &[3])),
    ];
    for (i, (index, term, new, wents, wunstable)) in cases.into_iter().enumerate() {
        let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2, 3], &ents(1, &[1, 2])));
        r.become_follower(2, 2);
        let mut m = msg(MessageType::MsgApp, 2, 1, 2);
        m.log_term = term;
        m.index = index;
        m.entries = new;
        r.step(m).expect("MsgApp is accepted");
        assert_eq!(r.raft_log.all_entries(), wents, "#{i}");
        assert_eq!(
            r.raft_log.next_unstable_ents(),
            wunstable.as_slice(),
            "#{i}"
        );
    }
}

/// A cluster of nodes (None: a node that swallows everything) delivering
/// messages until none is left.
struct Network {
    peers: Vec<Option<TestRaft>>,
}

impl Network {
    fn send(&mut self, m: Message) {
        let mut queue = VecDeque::from([m]);
        while let Some(m) = queue.pop_front() {
            let Some(Some(p)) = self.peers.get_mut(m.to as usize - 1) else {
                continue;
            };
            // Rejected messages are part of the scenarios: ignore errors.
            let _ = p.step(m);
            queue.extend(read_messages(p));
        }
    }

    fn node(&self, id: u64) -> &TestRaft {
        self.peers[id as usize - 1]
            .as_ref()
            .expect("node is not a black hole")
    }
}

/// What two logs must agree on once in sync.
fn log_view(r: &TestRaft) -> (u64, u64, u64, Vec<Entry>) {
    (
        r.raft_log.last_index(),
        r.raft_log.applied,
        r.raft_log.applying,
        r.raft_log.all_entries(),
    )
}

// §5.3, Figure 7: a new leader brings each of the paper's follower logs
// (missing entries, extra uncommitted entries, both) in line with its own.
#[test]
fn leader_repairs_every_follower_log_of_figure_7() {
    let leader_terms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let term = 8;
    let followers: [&[u64]; 6] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        &[1, 1, 1, 4, 4, 4, 4],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for (i, follower_terms) in followers.into_iter().enumerate() {
        let mut lead = new_test_raft(1, 10, 1, storage_with(&[1, 2, 3], &ents(1, &leader_terms)));
        let last = lead.raft_log.last_index();
        load_state(
            &mut lead,
            HardState {
                term,
                vote: 0,
                commit: last,
            },
        );
        let mut follower =
            new_test_raft(2, 10, 1, storage_with(&[1, 2, 3], &ents(1, follower_terms)));
        load_state(
            &mut follower,
            HardState {
                term: term - 1,
                ..Default::default()
            },
        );
        // Three nodes: the follower's log may be more up to date than the
        // leader's, so the leader needs the third node's vote.
        let mut n = Network {
            peers: vec![Some(lead), Some(follower), None],
        };
        n.send(msg(MessageType::MsgHup, 1, 1, 0));
        n.send(msg(MessageType::MsgVoteResp, 3, 1, term + 1));
        let mut p = msg(MessageType::MsgProp, 1, 1, 0);
        p.entries = vec![Entry::default()];
        n.send(p);
        assert_eq!(n.node(1).state, StateType::Leader, "#{i}");
        assert_eq!(log_view(n.node(1)), log_view(n.node(2)), "#{i}");
    }
}

// §5.4.1: a vote request carries the index and term of the candidate's
// last entry and goes to every other server.
#[test]
fn vote_request_carries_last_log_position() {
    for (j, (log, wterm)) in [(ents(1, &[1]), 2), (ents(1, &[1, 2]), 3)]
        .into_iter()
        .enumerate()
    {
        let mut r = new_test_raft(1, 10, 1, storage(&[1, 2, 3]));
        let mut m = msg(MessageType::MsgApp, 2, 1, wterm - 1);
        m.entries = log.clone();
        r.step(m).expect("MsgApp is accepted");
        read_messages(&mut r);
        for _ in 1..r.election_timeout * 2 {
            r.tick();
        }
        let msgs = sorted(read_messages(&mut r));
        assert_eq!(msgs.len(), 2, "#{j}: {msgs:?}");
        let last = log.last().expect("log is not empty");
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.r#type, MessageType::MsgVote as i32, "#{j}.{i}");
            assert_eq!(m.to, i as u64 + 2, "#{j}.{i}");
            assert_eq!(m.term, wterm, "#{j}.{i}");
            assert_eq!(m.index, last.index, "#{j}.{i}");
            assert_eq!(m.log_term, last.term, "#{j}.{i}");
        }
    }
}

// §5.4.1: a voter denies its vote to a candidate whose log is less up to
// date than its own (compare last terms, then last indexes).
#[test]
fn voter_rejects_less_up_to_date_candidate() {
    let cases: Vec<(Vec<Entry>, u64, u64, bool)> = vec![
        // Same last term.
        (ents(1, &[1]), 1, 1, false),
        (ents(1, &[1]), 1, 2, false),
        (ents(1, &[1, 1]), 1, 1, true),
        // The candidate's last term is higher.
        (ents(1, &[1]), 2, 1, false),
        (ents(1, &[1]), 2, 2, false),
        (ents(1, &[1, 1]), 2, 1, false),
        // The voter's last term is higher.
        (ents(1, &[2]), 1, 1, true),
        (ents(1, &[2]), 1, 2, true),
        (ents(1, &[2, 2]), 1, 1, true),
        (ents(1, &[1, 1]), 1, 1, true),
    ];
    for (i, (log, logterm, index, wreject)) in cases.into_iter().enumerate() {
        let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &log));
        let mut m = msg(MessageType::MsgVote, 2, 1, 3);
        m.log_term = logterm;
        m.index = index;
        r.step(m).expect("vote request is accepted");
        let msgs = read_messages(&mut r);
        assert_eq!(msgs.len(), 1, "#{i}: {msgs:?}");
        assert_eq!(msgs[0].r#type, MessageType::MsgVoteResp as i32, "#{i}");
        assert_eq!(msgs[0].reject, wreject, "#{i}");
    }
}

// §5.4.2, Figure 8: a leader commits by counting replicas only entries of
// its own term; earlier terms' entries commit along with them.
#[test]
fn leader_commits_only_entries_of_its_term_by_counting() {
    for (i, (index, wcommit)) in [(1, 0), (2, 0), (3, 3)].into_iter().enumerate() {
        let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &ents(1, &[1, 2])));
        load_state(
            &mut r,
            HardState {
                term: 2,
                ..Default::default()
            },
        );
        r.become_candidate();
        r.become_leader();
        read_messages(&mut r);
        r.step(prop(1, b"")).expect("leader accepts proposals");
        let term = r.term;
        let mut ack = msg(MessageType::MsgAppResp, 2, 1, term);
        ack.index = index;
        r.step(ack).expect("ack is accepted");
        advance_messages_after_append(&mut r);
        assert_eq!(r.raft_log.committed, wcommit, "#{i}");
    }
}
