//! Tests of `Raft` ported from the important cases of etcd-raft's
//! raft_test.go: elections (with and without PreVote), replication and
//! commitment, message handling per role, CheckQuorum and leases, reads,
//! snapshots, membership changes and leadership transfer. The `Network`
//! below delivers messages between in-memory nodes synchronously, like
//! etcd's test network, treating durable-state acknowledgements as
//! immediately durable.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::config::NO_LIMIT;
use super::quorum::{JointConfig, MajorityConfig};
use super::tracker::{Inflights, Progress, ProgressState, ProgressTracker};
use super::*;
use crate::raftpb::{
    ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, HardState, Message,
    MessageType, Snapshot, SnapshotMetadata,
};

// ---------------------------------------------------------------------------
// Builders and helpers.

pub(crate) fn storage_with(voters: &[u64], learners: &[u64]) -> MemStorage {
    MemStorage::new_with_conf_state(ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        ..Default::default()
    })
}

pub(crate) fn test_config(id: u64, election: usize, heartbeat: usize) -> Config {
    Config {
        id,
        election_tick: election,
        heartbeat_tick: heartbeat,
        max_size_per_msg: NO_LIMIT,
        max_inflight_msgs: 256,
        ..Default::default()
    }
}

pub(crate) fn new_test_raft(
    id: u64,
    election: usize,
    heartbeat: usize,
    s: MemStorage,
) -> Raft<MemStorage> {
    Raft::new(&test_config(id, election, heartbeat), s).expect("valid test config")
}

/// Steps the messages that waited for durability (as if storage were
/// instantly durable) until none is left.
pub(crate) fn advance_messages_after_append(r: &mut Raft<MemStorage>) {
    loop {
        let msgs = std::mem::take(&mut r.msgs_after_append);
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            if m.to == r.id {
                let _ = r.step(m);
            } else {
                r.msgs.push(m);
            }
        }
    }
}

pub(crate) fn read_messages(r: &mut Raft<MemStorage>) -> Vec<Message> {
    advance_messages_after_append(r);
    std::mem::take(&mut r.msgs)
}

pub(crate) fn msg(from: u64, to: u64, t: MessageType) -> Message {
    Message {
        from,
        to,
        r#type: t as i32,
        ..Default::default()
    }
}

pub(crate) fn msg_term(from: u64, to: u64, t: MessageType, term: u64) -> Message {
    Message {
        term,
        ..msg(from, to, t)
    }
}

pub(crate) fn prop(from: u64, to: u64, data: &'static [u8]) -> Message {
    Message {
        entries: vec![Entry {
            data: Bytes::from_static(data),
            ..Default::default()
        }],
        ..msg(from, to, MessageType::MsgProp)
    }
}

pub(crate) fn ent(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        ..Default::default()
    }
}

pub(crate) fn ents_from(first: u64, terms: &[u64]) -> Vec<Entry> {
    (first..).zip(terms).map(|(i, &t)| ent(t, i)).collect()
}

fn ids(es: &[Entry]) -> Vec<(u64, u64)> {
    es.iter().map(|e| (e.term, e.index)).collect()
}

/// A log summary to compare nodes by: committed index and every entry.
fn log_summary(r: &Raft<MemStorage>) -> (u64, Vec<(u64, u64, Bytes)>) {
    let ents = r.raft_log.all_entries();
    (
        r.raft_log.committed,
        ents.into_iter()
            .map(|e| (e.term, e.index, e.data))
            .collect(),
    )
}

fn cc_v2(t: ConfChangeType, id: u64) -> ConfChangeV2 {
    ConfChange {
        r#type: t as i32,
        node_id: id,
        ..Default::default()
    }
    .as_v2()
}

fn set_voters(trk: &mut ProgressTracker, voters: &[u64], learners: &[u64], next: u64) {
    trk.config.voters = JointConfig {
        incoming: MajorityConfig::new(voters.iter().copied().collect()),
        outgoing: MajorityConfig::default(),
    };
    trk.config.learners = learners.iter().copied().collect();
    trk.progress.clear();
    for &id in voters.iter().chain(learners) {
        let mut pr = Progress::new(
            next,
            Inflights::new(trk.max_inflight, trk.max_inflight_bytes),
        );
        pr.is_learner = learners.contains(&id);
        trk.progress.insert(id, pr);
    }
}

/// A node with entries of the given terms at indexes 1.. and its term set to
/// the last one; its configuration is assigned by the `Network`.
fn ents_with_config(pre_vote: bool, terms: &[u64]) -> Raft<MemStorage> {
    let mut s = MemStorage::new();
    s.append(&ents_from(1, terms)).unwrap();
    let mut c = test_config(1, 5, 1);
    c.pre_vote = pre_vote;
    let mut r = Raft::new(&c, s).unwrap();
    r.reset(*terms.last().unwrap());
    r
}

/// A node that voted for `vote` at `term` but has no entries.
fn voted_with_config(pre_vote: bool, vote: u64, term: u64) -> Raft<MemStorage> {
    let mut s = MemStorage::new();
    s.set_hard_state(HardState {
        vote,
        term,
        commit: 0,
    });
    let mut c = test_config(1, 5, 1);
    c.pre_vote = pre_vote;
    let mut r = Raft::new(&c, s).unwrap();
    r.reset(term);
    r
}

// ---------------------------------------------------------------------------
// The test network.

pub(crate) enum Peer {
    /// A fresh node with the default test config (and the network's config
    /// function applied).
    New,
    Raft(Box<Raft<MemStorage>>),
    /// Drops everything sent to it.
    BlackHole,
}

/// Inspects a message about to be delivered; false drops it.
pub(crate) type MsgHook = Box<dyn FnMut(&Message) -> bool>;

pub(crate) struct Network {
    pub peers: BTreeMap<u64, Option<Raft<MemStorage>>>,
    dropm: BTreeSet<(u64, u64)>,
    ignorem: BTreeSet<i32>,
    pub msg_hook: Option<MsgHook>,
}

impl Network {
    pub fn new(peers: Vec<Peer>) -> Network {
        Network::with_config(|_| {}, peers)
    }

    pub fn with_config(cfg: impl Fn(&mut Config), peers: Vec<Peer>) -> Network {
        let size = peers.len() as u64;
        let all: Vec<u64> = (1..=size).collect();
        let mut map = BTreeMap::new();
        for (id, p) in (1..).zip(peers) {
            let node = match p {
                Peer::New => {
                    let mut c = test_config(id, 10, 1);
                    cfg(&mut c);
                    Some(Raft::new(&c, storage_with(&all, &[])).unwrap())
                }
                Peer::Raft(mut r) => {
                    let learners: Vec<u64> = r.trk.config.learners.iter().copied().collect();
                    let voters: Vec<u64> = all
                        .iter()
                        .copied()
                        .filter(|i| !learners.contains(i))
                        .collect();
                    r.id = id;
                    let mut trk =
                        ProgressTracker::new(r.trk.max_inflight, r.trk.max_inflight_bytes);
                    set_voters(&mut trk, &voters, &learners, 1);
                    r.trk = trk;
                    let term = r.term;
                    r.reset(term);
                    Some(*r)
                }
                Peer::BlackHole => None,
            };
            map.insert(id, node);
        }
        Network {
            peers: map,
            dropm: BTreeSet::new(),
            ignorem: BTreeSet::new(),
            msg_hook: None,
        }
    }

    pub fn raft(&self, id: u64) -> &Raft<MemStorage> {
        self.peers[&id].as_ref().expect("not a black hole")
    }

    pub fn raft_mut(&mut self, id: u64) -> &mut Raft<MemStorage> {
        self.peers
            .get_mut(&id)
            .and_then(|p| p.as_mut())
            .expect("not a black hole")
    }

    pub fn send(&mut self, msgs: Vec<Message>) {
        let mut q: VecDeque<Message> = msgs.into();
        while let Some(m) = q.pop_front() {
            let Some(Some(p)) = self.peers.get_mut(&m.to) else {
                continue;
            };
            let _ = p.step(m);
            let out = read_messages(p);
            let out = self.filter(out);
            q.extend(out);
        }
    }

    pub fn send1(&mut self, m: Message) {
        self.send(vec![m]);
    }

    pub fn cut(&mut self, one: u64, other: u64) {
        self.dropm.insert((one, other));
        self.dropm.insert((other, one));
    }

    pub fn isolate(&mut self, id: u64) {
        let all: Vec<u64> = self.peers.keys().copied().collect();
        for nid in all {
            if nid != id {
                self.cut(id, nid);
            }
        }
    }

    pub fn ignore(&mut self, t: MessageType) {
        self.ignorem.insert(t as i32);
    }

    pub fn recover(&mut self) {
        self.dropm.clear();
        self.ignorem.clear();
    }

    fn filter(&mut self, msgs: Vec<Message>) -> Vec<Message> {
        let mut out = Vec::new();
        for m in msgs {
            if self.ignorem.contains(&m.r#type) {
                continue;
            }
            assert_ne!(
                m.r#type(),
                MessageType::MsgHup,
                "MsgHup never goes on the wire"
            );
            if self.dropm.contains(&(m.from, m.to)) {
                continue;
            }
            if let Some(hook) = self.msg_hook.as_mut() {
                if !hook(&m) {
                    continue;
                }
            }
            out.push(m);
        }
        out
    }
}

fn pre_vote(c: &mut Config) {
    c.pre_vote = true;
}

fn hup(id: u64) -> Message {
    msg(id, id, MessageType::MsgHup)
}

fn beat(id: u64) -> Message {
    msg(id, id, MessageType::MsgBeat)
}

// ---------------------------------------------------------------------------
// Progress and flow control.

#[test]
fn progress_leader() {
    let mut r = new_test_raft(1, 5, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    r.trk.progress.get_mut(&2).unwrap().become_replicate();

    for i in 0..5 {
        assert!(r.step(prop(1, 1, b"foo")).is_ok(), "#{i}");
    }
    assert_eq!(r.trk.progress[&1].matched, 0);
    let ents = r.raft_log.next_unstable_ents();
    assert_eq!(ents.len(), 6);
    assert!(ents[0].data.is_empty());
    assert_eq!(&ents[5].data[..], b"foo");

    advance_messages_after_append(&mut r);
    assert_eq!(r.trk.progress[&1].matched, 6);
    assert_eq!(r.trk.progress[&1].next_idx, 7);
}

#[test]
fn progress_resume_by_heartbeat_resp() {
    let mut r = new_test_raft(1, 5, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    r.trk.progress.get_mut(&2).unwrap().msg_app_flow_paused = true;

    r.step(beat(1)).unwrap();
    assert!(r.trk.progress[&2].msg_app_flow_paused);

    r.trk.progress.get_mut(&2).unwrap().become_replicate();
    assert!(!r.trk.progress[&2].msg_app_flow_paused);
    r.trk.progress.get_mut(&2).unwrap().msg_app_flow_paused = true;
    r.step(msg(2, 1, MessageType::MsgHeartbeatResp)).unwrap();
    assert!(!r.trk.progress[&2].msg_app_flow_paused);
}

#[test]
fn progress_paused_sends_one_append_in_probe() {
    let mut r = new_test_raft(1, 5, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    for _ in 0..3 {
        r.step(prop(1, 1, b"somedata")).unwrap();
    }
    assert_eq!(read_messages(&mut r).len(), 1);
}

#[test]
fn progress_flow_control() {
    let mut c = test_config(1, 5, 1);
    c.max_inflight_msgs = 3;
    c.max_size_per_msg = 2048;
    c.max_inflight_bytes = 9000;
    let mut r = Raft::new(&c, storage_with(&[1, 2], &[])).unwrap();
    r.become_candidate();
    r.become_leader();
    read_messages(&mut r);

    r.trk.progress.get_mut(&2).unwrap().become_probe();
    let blob = Bytes::from(vec![b'a'; 1000]);
    let large = Bytes::from(vec![b'b'; 5000]);
    for i in 0..22 {
        let data = if (10..16).contains(&i) {
            large.clone()
        } else {
            blob.clone()
        };
        let mut m = msg(1, 1, MessageType::MsgProp);
        m.entries = vec![Entry {
            data,
            ..Default::default()
        }];
        r.step(m).unwrap();
    }

    let ms = read_messages(&mut r);
    // Probe state: one append, with the empty entry and the first proposal.
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].r#type(), MessageType::MsgApp);
    assert_eq!(ms[0].entries.len(), 2);
    assert!(ms[0].entries[0].data.is_empty());
    assert_eq!(ms[0].entries[1].data.len(), 1000);

    let mut ack_and_verify = |index: u64, exp: &[usize]| -> u64 {
        let mut m = msg(2, 1, MessageType::MsgAppResp);
        m.index = index;
        r.step(m).unwrap();
        let ms = read_messages(&mut r);
        assert_eq!(ms.len(), exp.len(), "acking {index}");
        for (i, m) in ms.iter().enumerate() {
            assert_eq!(m.r#type(), MessageType::MsgApp, "#{i}");
            assert_eq!(m.entries.len(), exp[i], "#{i}");
        }
        ms.last()
            .and_then(|m| m.entries.last())
            .map_or(index, |e| e.index)
    };
    let index = ack_and_verify(ms[0].entries[1].index, &[2, 2, 2]);
    let index = ack_and_verify(index, &[2, 1, 1]);
    let index = ack_and_verify(index, &[1, 1]);
    let index = ack_and_verify(index, &[1, 1]);
    let index = ack_and_verify(index, &[1, 2, 2]);
    ack_and_verify(index, &[2]);
}

#[test]
fn uncommitted_entry_limit() {
    const MAX_ENTRIES: usize = 1024;
    let test_data: &[u8] = b"testdata";
    let max_entry_size = (MAX_ENTRIES * test_data.len()) as u64;

    let mut c = test_config(1, 5, 1);
    c.max_uncommitted_entries_size = max_entry_size;
    c.max_inflight_msgs = 2 * 1024;
    let mut r = Raft::new(&c, storage_with(&[1, 2, 3], &[])).unwrap();
    r.become_candidate();
    r.become_leader();
    assert_eq!(r.uncommitted_size, 0);

    r.trk.progress.get_mut(&2).unwrap().become_replicate();
    r.trk.progress.get_mut(&3).unwrap().become_replicate();
    r.uncommitted_size = 0;

    for i in 0..MAX_ENTRIES {
        assert!(r.step(prop(1, 1, b"testdata")).is_ok(), "#{i}");
    }
    assert_eq!(r.step(prop(1, 1, b"testdata")), Err(Error::ProposalDropped));

    let ms = read_messages(&mut r);
    assert_eq!(ms.len(), MAX_ENTRIES * 2);
    r.reduce_uncommitted_size(max_entry_size);
    assert_eq!(r.uncommitted_size, 0);

    // A large proposal into an empty tail is accepted even above the limit.
    let mut large = msg(1, 1, MessageType::MsgProp);
    large.entries = (0..2 * MAX_ENTRIES)
        .map(|_| Entry {
            data: Bytes::from_static(b"testdata"),
            ..Default::default()
        })
        .collect();
    assert!(r.step(large).is_ok());
    assert_eq!(r.step(prop(1, 1, b"testdata")), Err(Error::ProposalDropped));

    // An empty entry is always accepted.
    let mut empty = msg(1, 1, MessageType::MsgProp);
    empty.entries = vec![Entry::default()];
    assert!(r.step(empty).is_ok());

    let ms = read_messages(&mut r);
    assert_eq!(ms.len(), 2 * 2);
    r.reduce_uncommitted_size(2 * max_entry_size);
    assert_eq!(r.uncommitted_size, 0);
}

// ---------------------------------------------------------------------------
// Elections.

fn check_leader_election(pre: bool) {
    let cfg = |c: &mut Config| c.pre_vote = pre;
    let (cand_state, cand_term) = if pre {
        (StateType::PreCandidate, 0)
    } else {
        (StateType::Candidate, 1)
    };
    use Peer::{BlackHole as B, New as N};
    let cases: Vec<(Network, StateType, u64)> = vec![
        (
            Network::with_config(cfg, vec![N, N, N]),
            StateType::Leader,
            1,
        ),
        (
            Network::with_config(cfg, vec![N, N, B]),
            StateType::Leader,
            1,
        ),
        (
            Network::with_config(cfg, vec![N, B, B]),
            cand_state,
            cand_term,
        ),
        (
            Network::with_config(cfg, vec![N, B, B, N]),
            cand_state,
            cand_term,
        ),
        (
            Network::with_config(cfg, vec![N, B, B, N, N]),
            StateType::Leader,
            1,
        ),
        // Logs further along at the same term: rejections, not silence.
        (
            Network::with_config(
                cfg,
                vec![
                    N,
                    Peer::Raft(Box::new(ents_with_config(pre, &[1]))),
                    Peer::Raft(Box::new(ents_with_config(pre, &[1]))),
                    Peer::Raft(Box::new(ents_with_config(pre, &[1, 1]))),
                    N,
                ],
            ),
            StateType::Follower,
            1,
        ),
    ];
    for (i, (mut nt, state, term)) in cases.into_iter().enumerate() {
        nt.send1(hup(1));
        assert_eq!(nt.raft(1).state, state, "#{i}");
        assert_eq!(nt.raft(1).term, term, "#{i}");
    }
}

#[test]
fn leader_election() {
    check_leader_election(false);
}

#[test]
fn leader_election_pre_vote() {
    check_leader_election(true);
}

#[test]
fn learner_election_timeout() {
    let mut n2 = new_test_raft(2, 10, 1, storage_with(&[1], &[2]));
    n2.become_follower(1, NONE);
    n2.randomized_election_timeout = n2.election_timeout;
    for _ in 0..n2.election_timeout {
        n2.tick();
    }
    assert_eq!(n2.state, StateType::Follower);
}

#[test]
fn learner_promotion() {
    let mut n1 = new_test_raft(1, 10, 1, storage_with(&[1], &[2]));
    let mut n2 = new_test_raft(2, 10, 1, storage_with(&[1], &[2]));
    n1.become_follower(1, NONE);
    n2.become_follower(1, NONE);
    let mut nt = Network::new(vec![Peer::Raft(Box::new(n1)), Peer::Raft(Box::new(n2))]);
    assert_ne!(nt.raft(1).state, StateType::Leader);

    let n1 = nt.raft_mut(1);
    n1.randomized_election_timeout = n1.election_timeout;
    for _ in 0..n1.election_timeout {
        n1.tick();
    }
    advance_messages_after_append(n1);
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);

    nt.send1(beat(1));
    let add2 = cc_v2(ConfChangeType::ConfChangeAddNode, 2);
    nt.raft_mut(1).apply_conf_change(&add2).unwrap();
    nt.raft_mut(2).apply_conf_change(&add2).unwrap();
    assert!(!nt.raft(2).is_learner);

    let n2 = nt.raft_mut(2);
    n2.randomized_election_timeout = n2.election_timeout;
    for _ in 0..n2.election_timeout {
        n2.tick();
    }
    let out = read_messages(n2);
    nt.send(out);
    nt.send1(beat(2));
    assert_eq!(nt.raft(1).state, StateType::Follower);
    assert_eq!(nt.raft(2).state, StateType::Leader);
}

#[test]
fn learner_can_vote() {
    let mut n2 = new_test_raft(2, 10, 1, storage_with(&[1], &[2]));
    n2.become_follower(1, NONE);
    let mut m = msg_term(1, 2, MessageType::MsgVote, 2);
    m.log_term = 11;
    m.index = 11;
    n2.step(m).unwrap();
    let msgs = read_messages(&mut n2);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgVoteResp);
    assert!(!msgs[0].reject, "a learner votes");
}

fn check_leader_cycle(pre: bool) {
    let mut n = Network::with_config(|c| c.pre_vote = pre, vec![Peer::New, Peer::New, Peer::New]);
    for campaigner in 1..=3 {
        n.send1(hup(campaigner));
        for id in 1..=3 {
            let want = if id == campaigner {
                StateType::Leader
            } else {
                StateType::Follower
            };
            assert_eq!(
                n.raft(id).state,
                want,
                "pre_vote={pre} campaigner {campaigner}"
            );
        }
    }
}

#[test]
fn leader_cycle() {
    check_leader_cycle(false);
}

#[test]
fn leader_cycle_pre_vote() {
    check_leader_cycle(true);
}

fn check_leader_election_overwrite_newer_logs(pre: bool) {
    let mut n = Network::with_config(
        |c| c.pre_vote = pre,
        vec![
            Peer::Raft(Box::new(ents_with_config(pre, &[1]))),
            Peer::Raft(Box::new(ents_with_config(pre, &[1]))),
            Peer::Raft(Box::new(ents_with_config(pre, &[2]))),
            Peer::Raft(Box::new(voted_with_config(pre, 3, 2))),
            Peer::Raft(Box::new(voted_with_config(pre, 3, 2))),
        ],
    );
    // A quorum knows of term 2: node 1 loses but learns the term.
    n.send1(hup(1));
    assert_eq!(n.raft(1).state, StateType::Follower);
    assert_eq!(n.raft(1).term, 2);
    // Again at a higher term: wins and overwrites node 3's newer entry.
    n.send1(hup(1));
    assert_eq!(n.raft(1).state, StateType::Leader);
    assert_eq!(n.raft(1).term, 3);
    for id in 1..=5 {
        let es = n.raft(id).raft_log.all_entries();
        assert_eq!(ids(&es), vec![(1, 1), (3, 2)], "node {id}");
    }
}

#[test]
fn leader_election_overwrite_newer_logs() {
    check_leader_election_overwrite_newer_logs(false);
}

#[test]
fn leader_election_overwrite_newer_logs_pre_vote() {
    check_leader_election_overwrite_newer_logs(true);
}

fn check_vote_from_any_state(vt: MessageType) {
    for st in [
        StateType::Follower,
        StateType::Candidate,
        StateType::Leader,
        StateType::PreCandidate,
    ] {
        let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2, 3], &[]));
        r.term = 1;
        match st {
            StateType::Follower => {
                let t = r.term;
                r.become_follower(t, 3);
            }
            StateType::PreCandidate => r.become_pre_candidate(),
            StateType::Candidate => r.become_candidate(),
            StateType::Leader => {
                r.become_candidate();
                r.become_leader();
            }
        }
        let orig_term = r.term;
        let new_term = r.term + 1;
        let mut m = msg_term(2, 1, vt, new_term);
        m.log_term = new_term;
        m.index = 42;
        r.step(m).unwrap();
        let msgs = read_messages(&mut r);
        assert_eq!(msgs.len(), 1, "{vt:?},{st}");
        assert_eq!(msgs[0].r#type(), vote_resp_msg_type(vt), "{vt:?},{st}");
        assert!(!msgs[0].reject, "{vt:?},{st}");
        if vt == MessageType::MsgVote {
            assert_eq!(r.state, StateType::Follower, "{vt:?},{st}");
            assert_eq!(r.term, new_term, "{vt:?},{st}");
            assert_eq!(r.vote, 2, "{vt:?},{st}");
        } else {
            assert_eq!(r.state, st, "{vt:?},{st}");
            assert_eq!(r.term, orig_term, "{vt:?},{st}");
            assert!(r.vote == NONE || r.vote == 1, "{vt:?},{st}");
        }
    }
}

fn vote_resp_msg_type(t: MessageType) -> MessageType {
    crate::raftpb::vote_resp_msg_type(t)
}

#[test]
fn vote_from_any_state() {
    check_vote_from_any_state(MessageType::MsgVote);
}

#[test]
fn pre_vote_from_any_state() {
    check_vote_from_any_state(MessageType::MsgPreVote);
}

// ---------------------------------------------------------------------------
// Replication and commitment.

/// Persists and applies everything (as the application would) and returns
/// the newly committed entries.
fn next_ents(r: &mut Raft<MemStorage>) -> Vec<Entry> {
    let unstable = r.raft_log.next_unstable_ents().to_vec();
    r.raft_log.store.append(&unstable).unwrap();
    let last = r.raft_log.last_entry_id();
    r.raft_log.stable_to(last);
    advance_messages_after_append(r);
    let ents = r.raft_log.next_committed_ents(true);
    let committed = r.raft_log.committed;
    r.raft_log.applied_to(committed, 0);
    ents
}

#[test]
fn log_replication() {
    let cases: Vec<(Vec<Message>, u64)> = vec![
        (vec![prop(1, 1, b"somedata")], 2),
        (
            vec![
                prop(1, 1, b"somedata"),
                msg(1, 2, MessageType::MsgHup),
                prop(1, 2, b"somedata"),
            ],
            4,
        ),
    ];
    for (i, (msgs, wcommitted)) in cases.into_iter().enumerate() {
        let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
        nt.send1(hup(1));
        for m in &msgs {
            nt.send1(m.clone());
        }
        for id in 1..=3 {
            let sm = nt.raft_mut(id);
            assert_eq!(sm.raft_log.committed, wcommitted, "#{i}.{id}");
            let ents: Vec<Entry> = next_ents(sm)
                .into_iter()
                .filter(|e| !e.data.is_empty())
                .collect();
            let props: Vec<&Message> = msgs
                .iter()
                .filter(|m| m.r#type() == MessageType::MsgProp)
                .collect();
            for (k, m) in props.iter().enumerate() {
                assert_eq!(m.entries[0].data, ents[k].data, "#{i}.{id}");
            }
        }
    }
}

#[test]
fn learner_log_replication() {
    let mut n1 = new_test_raft(1, 10, 1, storage_with(&[1], &[2]));
    let mut n2 = new_test_raft(2, 10, 1, storage_with(&[1], &[2]));
    n1.become_follower(1, NONE);
    n2.become_follower(1, NONE);
    let mut nt = Network::new(vec![Peer::Raft(Box::new(n1)), Peer::Raft(Box::new(n2))]);
    let n1 = nt.raft_mut(1);
    n1.randomized_election_timeout = n1.election_timeout;
    for _ in 0..n1.election_timeout {
        n1.tick();
    }
    advance_messages_after_append(n1);
    nt.send1(beat(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert!(nt.raft(2).is_learner);

    nt.send1(prop(1, 1, b"somedata"));
    assert_eq!(nt.raft(1).raft_log.committed, 2);
    assert_eq!(nt.raft(2).raft_log.committed, 2);
    assert_eq!(nt.raft(1).trk.progress[&2].matched, 2);
}

#[test]
fn single_node_commit() {
    let r = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
    let mut tt = Network::new(vec![Peer::Raft(Box::new(r))]);
    tt.send1(hup(1));
    tt.send1(prop(1, 1, b"some data"));
    tt.send1(prop(1, 1, b"some data"));
    assert_eq!(tt.raft(1).raft_log.committed, 3);
}

#[test]
fn cannot_commit_without_new_term_entry() {
    let mut tt = Network::new((0..5).map(|_| Peer::New).collect());
    tt.send1(hup(1));
    tt.cut(1, 3);
    tt.cut(1, 4);
    tt.cut(1, 5);
    tt.send1(prop(1, 1, b"some data"));
    tt.send1(prop(1, 1, b"some data"));
    assert_eq!(tt.raft(1).raft_log.committed, 1);

    tt.recover();
    // Keep the new leader from replicating its term's entry.
    tt.ignore(MessageType::MsgApp);
    tt.send1(hup(2));
    assert_eq!(tt.raft(2).raft_log.committed, 1);

    tt.recover();
    tt.send1(beat(2));
    tt.send1(prop(2, 2, b"some data"));
    assert_eq!(tt.raft(2).raft_log.committed, 5);
}

#[test]
fn commit_without_new_term_entry() {
    let mut tt = Network::new((0..5).map(|_| Peer::New).collect());
    tt.send1(hup(1));
    tt.cut(1, 3);
    tt.cut(1, 4);
    tt.cut(1, 5);
    tt.send1(prop(1, 1, b"some data"));
    tt.send1(prop(1, 1, b"some data"));
    assert_eq!(tt.raft(1).raft_log.committed, 1);
    tt.recover();
    // The new leader's empty entry commits everything before it.
    tt.send1(hup(2));
    assert_eq!(tt.raft(1).raft_log.committed, 4);
}

#[test]
fn dueling_candidates() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.cut(1, 3);
    nt.send1(hup(1));
    nt.send1(hup(3));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(3).state, StateType::Candidate);

    nt.recover();
    // 3 disrupts the leader with its higher term but loses: its log is
    // behind.
    nt.send1(hup(3));
    assert_eq!(nt.raft(3).state, StateType::Follower);
    for (id, state, term, last) in [
        (1, StateType::Follower, 2, 1),
        (2, StateType::Follower, 2, 1),
        (3, StateType::Follower, 2, 0),
    ] {
        let r = nt.raft(id);
        assert_eq!(
            (r.state, r.term, r.raft_log.last_index()),
            (state, term, last),
            "{id}"
        );
    }
}

#[test]
fn dueling_pre_candidates() {
    let mut nt = Network::with_config(pre_vote, vec![Peer::New, Peer::New, Peer::New]);
    nt.cut(1, 3);
    nt.send1(hup(1));
    nt.send1(hup(3));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(3).state, StateType::Follower);

    nt.recover();
    // With PreVote, 3 does not disrupt the leader.
    nt.send1(hup(3));
    for (id, state, term, last) in [
        (1, StateType::Leader, 1, 1),
        (2, StateType::Follower, 1, 1),
        (3, StateType::Follower, 1, 0),
    ] {
        let r = nt.raft(id);
        assert_eq!(
            (r.state, r.term, r.raft_log.last_index()),
            (state, term, last),
            "{id}"
        );
    }
}

#[test]
fn candidate_concede() {
    let mut tt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    tt.isolate(1);
    tt.send1(hup(1));
    tt.send1(hup(3));
    tt.recover();
    tt.send1(beat(3));
    tt.send1(prop(3, 3, b"force follower"));
    tt.send1(beat(3));

    assert_eq!(tt.raft(1).state, StateType::Follower);
    assert_eq!(tt.raft(1).term, 1);
    let want = (
        2,
        vec![
            (1, 1, Bytes::new()),
            (1, 2, Bytes::from_static(b"force follower")),
        ],
    );
    for id in 1..=3 {
        assert_eq!(log_summary(tt.raft(id)), want, "{id}");
    }
}

#[test]
fn single_node_candidate() {
    let mut tt = Network::new(vec![Peer::New]);
    tt.send1(hup(1));
    assert_eq!(tt.raft(1).state, StateType::Leader);
}

#[test]
fn single_node_pre_candidate() {
    let mut tt = Network::with_config(pre_vote, vec![Peer::New]);
    tt.send1(hup(1));
    assert_eq!(tt.raft(1).state, StateType::Leader);
}

#[test]
fn old_messages_are_ignored() {
    let mut tt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    tt.send1(hup(1));
    tt.send1(hup(2));
    tt.send1(hup(1));
    // An old leader's append is ignored.
    let mut m = msg_term(2, 1, MessageType::MsgApp, 2);
    m.entries = vec![ent(2, 3)];
    tt.send1(m);
    tt.send1(prop(1, 1, b"somedata"));

    let want = (
        4,
        vec![
            (1, 1, Bytes::new()),
            (2, 2, Bytes::new()),
            (3, 3, Bytes::new()),
            (3, 4, Bytes::from_static(b"somedata")),
        ],
    );
    for id in 1..=3 {
        assert_eq!(log_summary(tt.raft(id)), want, "{id}");
    }
}

#[test]
fn proposal() {
    use Peer::{BlackHole as B, New as N};
    let cases = vec![
        (vec![N, N, N], true),
        (vec![N, N, B], true),
        (vec![N, B, B], false),
        (vec![N, B, B, N], false),
        (vec![N, B, B, N, N], true),
    ];
    for (j, (peers, success)) in cases.into_iter().enumerate() {
        let mut tt = Network::new(peers);
        tt.send1(hup(1));
        tt.send1(prop(1, 1, b"somedata"));
        let want = if success {
            (
                2,
                vec![
                    (1, 1, Bytes::new()),
                    (1, 2, Bytes::from_static(b"somedata")),
                ],
            )
        } else {
            (0, vec![])
        };
        let ids: Vec<u64> = tt.peers.keys().copied().collect();
        for id in ids {
            if let Some(Some(sm)) = tt.peers.get(&id) {
                assert_eq!(log_summary(sm), want, "#{j}.{id}");
            }
        }
        assert_eq!(tt.raft(1).term, 1, "#{j}");
    }
}

#[test]
fn proposal_by_proxy() {
    use Peer::{BlackHole as B, New as N};
    for (j, peers) in [vec![N, N, N], vec![N, N, B]].into_iter().enumerate() {
        let mut tt = Network::new(peers);
        tt.send1(hup(1));
        // Propose via a follower.
        tt.send1(prop(2, 2, b"somedata"));
        let want = (
            2,
            vec![
                (1, 1, Bytes::new()),
                (1, 2, Bytes::from_static(b"somedata")),
            ],
        );
        for id in 1..=3 {
            if let Some(Some(sm)) = tt.peers.get(&id) {
                assert_eq!(log_summary(sm), want, "#{j}.{id}");
            }
        }
        assert_eq!(tt.raft(1).term, 1);
    }
}

#[test]
fn commit_needs_a_quorum_at_the_current_term() {
    let cases: Vec<(Vec<u64>, Vec<u64>, u64, u64)> = vec![
        // single
        (vec![1], vec![1], 1, 1),
        (vec![1], vec![1], 2, 0),
        (vec![2], vec![1, 2], 2, 2),
        (vec![1], vec![2], 2, 1),
        // odd
        (vec![2, 1, 1], vec![1, 2], 1, 1),
        (vec![2, 1, 1], vec![1, 1], 2, 0),
        (vec![2, 1, 2], vec![1, 2], 2, 2),
        (vec![2, 1, 2], vec![1, 1], 2, 0),
        // even
        (vec![2, 1, 1, 1], vec![1, 2], 1, 1),
        (vec![2, 1, 1, 1], vec![1, 1], 2, 0),
        (vec![2, 1, 1, 2], vec![1, 2], 1, 1),
        (vec![2, 1, 1, 2], vec![1, 1], 2, 0),
        (vec![2, 1, 2, 2], vec![1, 2], 2, 2),
        (vec![2, 1, 2, 2], vec![1, 1], 2, 0),
    ];
    for (i, (matches, terms, sm_term, w)) in cases.into_iter().enumerate() {
        let mut s = storage_with(&[1], &[]);
        s.append(&ents_from(1, &terms)).unwrap();
        s.set_hard_state(HardState {
            term: sm_term,
            ..Default::default()
        });
        let mut sm = new_test_raft(1, 10, 2, s);
        for (j, &m) in matches.iter().enumerate() {
            let id = j as u64 + 1;
            if id > 1 {
                sm.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddNode, id))
                    .unwrap();
            }
            let pr = sm.trk.progress.get_mut(&id).unwrap();
            pr.matched = m;
            pr.next_idx = m + 1;
        }
        sm.maybe_commit();
        assert_eq!(sm.raft_log.committed, w, "#{i}");
    }
}

#[test]
fn past_election_timeout_is_spread_uniformly() {
    let cases = [
        (5, 0.0, false),
        (10, 0.1, true),
        (13, 0.4, true),
        (15, 0.6, true),
        (18, 0.9, true),
        (20, 1.0, false),
    ];
    for (i, (elapse, wprob, round)) in cases.into_iter().enumerate() {
        let mut sm = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
        sm.election_elapsed = elapse;
        let mut c = 0;
        for _ in 0..10000 {
            sm.reset_randomized_election_timeout();
            if sm.past_election_timeout() {
                c += 1;
            }
        }
        let mut got = c as f64 / 10000.0;
        if round {
            got = (got * 10.0 + 0.5).floor() / 10.0;
        }
        assert_eq!(got, wprob, "#{i}");
    }
}

#[test]
fn randomized_election_timeout_is_deterministic_per_seed() {
    let draw = |seed: u64| {
        let mut c = test_config(1, 10, 1);
        c.random_seed = seed;
        let mut r = Raft::new(&c, storage_with(&[1], &[])).unwrap();
        (0..20)
            .map(|_| {
                r.reset_randomized_election_timeout();
                r.randomized_election_timeout
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
    assert!(draw(9).iter().all(|&t| (10..20).contains(&t)));
}

#[test]
fn step_ignores_old_term_messages() {
    let mut sm = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    sm.become_follower(2, NONE);
    let mut m = msg_term(2, 1, MessageType::MsgApp, 1);
    m.entries = vec![ent(1, 1)];
    sm.step(m).unwrap();
    assert_eq!(sm.raft_log.last_index(), 0);
    assert_eq!(sm.lead, NONE);
    assert!(read_messages(&mut sm).is_empty());
}

// ---------------------------------------------------------------------------
// Follower message handling.

#[test]
fn handle_msg_app() {
    // (index, log_term, commit, entries) -> (windex, wcommit, wreject)
    type Case = (u64, u64, u64, Vec<Entry>, u64, u64, bool);
    let cases: Vec<Case> = vec![
        // Ensure 1: previous entry must match.
        (2, 3, 3, vec![], 2, 0, true),
        (3, 3, 3, vec![], 2, 0, true),
        // Ensure 2.
        (1, 1, 1, vec![], 2, 1, false),
        (0, 0, 1, vec![ent(2, 1)], 1, 1, false),
        (2, 2, 3, vec![ent(2, 3), ent(2, 4)], 4, 3, false),
        (2, 2, 4, vec![ent(2, 3)], 3, 3, false),
        (1, 1, 4, vec![ent(2, 2)], 2, 2, false),
        // Ensure 3.
        (1, 1, 3, vec![], 2, 1, false),
        (1, 1, 3, vec![ent(2, 2)], 2, 2, false),
        (2, 2, 3, vec![], 2, 2, false),
        (2, 2, 4, vec![], 2, 2, false),
    ];
    for (i, (index, log_term, commit, entries, windex, wcommit, wreject)) in
        cases.into_iter().enumerate()
    {
        let mut s = storage_with(&[1], &[]);
        s.append(&[ent(1, 1), ent(2, 2)]).unwrap();
        let mut sm = new_test_raft(1, 10, 1, s);
        sm.become_follower(2, NONE);
        let mut m = msg_term(2, 1, MessageType::MsgApp, 2);
        m.log_term = log_term;
        m.index = index;
        m.commit = commit;
        m.entries = entries;
        sm.handle_append_entries(m);
        assert_eq!(sm.raft_log.last_index(), windex, "#{i}");
        assert_eq!(sm.raft_log.committed, wcommit, "#{i}");
        let m = read_messages(&mut sm);
        assert_eq!(m.len(), 1, "#{i}");
        assert_eq!(m[0].reject, wreject, "#{i}");
    }
}

#[test]
fn handle_heartbeat() {
    let commit = 2;
    let cases = [(commit + 1, commit + 1), (commit - 1, commit)];
    for (i, (mcommit, wcommit)) in cases.into_iter().enumerate() {
        let mut s = storage_with(&[1, 2], &[]);
        s.append(&[ent(1, 1), ent(2, 2), ent(3, 3)]).unwrap();
        let mut sm = new_test_raft(1, 5, 1, s);
        sm.become_follower(2, 2);
        sm.raft_log.commit_to(commit);
        let mut m = msg_term(2, 1, MessageType::MsgHeartbeat, 2);
        m.commit = mcommit;
        sm.handle_heartbeat(m);
        assert_eq!(sm.raft_log.committed, wcommit, "#{i}");
        let m = read_messages(&mut sm);
        assert_eq!(m.len(), 1, "#{i}");
        assert_eq!(m[0].r#type(), MessageType::MsgHeartbeatResp, "#{i}");
    }
}

#[test]
fn heartbeat_commit_beyond_the_log_is_not_applied() {
    let mut s = storage_with(&[1, 2], &[]);
    s.append(&[ent(1, 1)]).unwrap();
    let mut sm = new_test_raft(1, 5, 1, s);
    sm.become_follower(1, 2);
    let mut m = msg_term(2, 1, MessageType::MsgHeartbeat, 1);
    m.commit = 10;
    sm.step(m).unwrap();
    assert_eq!(sm.raft_log.committed, 0);
    assert_eq!(read_messages(&mut sm).len(), 1);
}

#[test]
fn handle_heartbeat_resp() {
    let mut s = storage_with(&[1, 2], &[]);
    s.append(&[ent(1, 1), ent(2, 2), ent(3, 3)]).unwrap();
    let mut sm = new_test_raft(1, 5, 1, s);
    sm.become_candidate();
    sm.become_leader();
    let last = sm.raft_log.last_index();
    sm.raft_log.commit_to(last);

    // A heartbeat response from a lagging node triggers an append.
    sm.step(msg_term(2, 1, MessageType::MsgHeartbeatResp, sm.term))
        .unwrap();
    let msgs = read_messages(&mut sm);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgApp);

    // A second heartbeat response triggers another append while in probe.
    sm.step(msg_term(2, 1, MessageType::MsgHeartbeatResp, sm.term))
        .unwrap();
    let msgs = read_messages(&mut sm);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgApp);

    // Once the follower acks the whole log, no more appends.
    let mut m = msg_term(2, 1, MessageType::MsgAppResp, sm.term);
    m.index = msgs[0].index + msgs[0].entries.len() as u64;
    sm.step(m).unwrap();
    read_messages(&mut sm);
    sm.step(msg_term(2, 1, MessageType::MsgHeartbeatResp, sm.term))
        .unwrap();
    assert!(read_messages(&mut sm).is_empty());
}

#[test]
fn raft_frees_read_only_mem() {
    let mut sm = new_test_raft(1, 5, 1, storage_with(&[1, 2], &[]));
    sm.become_candidate();
    sm.become_leader();
    let last = sm.raft_log.last_index();
    sm.raft_log.commit_to(last);

    let ctx = Bytes::from_static(b"ctx");
    let mut m = msg(2, 2, MessageType::MsgReadIndex);
    m.entries = vec![Entry {
        data: ctx.clone(),
        ..Default::default()
    }];
    sm.step(m).unwrap();
    let msgs = read_messages(&mut sm);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgHeartbeat);
    assert_eq!(sm.read_only.pending_read_count(), 1);

    let mut m = msg_term(2, 1, MessageType::MsgHeartbeatResp, sm.term);
    m.context = msgs[0].context.clone();
    sm.step(m).unwrap();
    assert_eq!(sm.read_only.pending_read_count(), 0);
}

#[test]
fn msg_app_resp_wait_reset() {
    let mut sm = new_test_raft(1, 5, 1, storage_with(&[1, 2, 3], &[]));
    sm.become_candidate();
    sm.become_leader();
    // Run the new leader's empty entry through the cluster.
    next_ents(&mut sm);
    read_messages(&mut sm);

    // Node 2 acks the first entry, committing it.
    let mut m = msg(2, 1, MessageType::MsgAppResp);
    m.index = 1;
    sm.step(m).unwrap();
    assert_eq!(sm.raft_log.committed, 1);
    // Also consume the MsgApp messages that update Commit on the followers.
    read_messages(&mut sm);

    // A new command is appended, sent to 2 (replicate) but not to 3
    // (probe, paused: it never answered).
    sm.step(prop(1, 1, b"")).unwrap_or_default();
    let mut p = msg(1, 1, MessageType::MsgProp);
    p.entries = vec![Entry::default()];
    sm.step(p).unwrap();
    let msgs = read_messages(&mut sm);
    assert!(!msgs.is_empty());
    for m in &msgs {
        assert_eq!(m.r#type(), MessageType::MsgApp);
        assert_eq!(m.to, 2);
    }
    // Once 3 acks, it is sent what it is missing.
    let mut m = msg(3, 1, MessageType::MsgAppResp);
    m.index = 1;
    sm.step(m).unwrap();
    let msgs = read_messages(&mut sm);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgApp);
    assert_eq!(msgs[0].to, 3);
    assert_eq!(msgs[0].entries.len(), 2);
    assert_eq!(msgs[0].entries[0].index, 2);
}

fn check_recv_msg_vote(t: MessageType) {
    // (state, index, log_term, vote_for, wreject)
    use StateType::{Candidate as C, Follower as F, Leader as L, PreCandidate as P};
    let cases = [
        (F, 0, 0, NONE, true),
        (F, 0, 1, NONE, true),
        (F, 0, 2, NONE, true),
        (F, 0, 3, NONE, false),
        (F, 1, 0, NONE, true),
        (F, 1, 1, NONE, true),
        (F, 1, 2, NONE, true),
        (F, 1, 3, NONE, false),
        (F, 2, 0, NONE, true),
        (F, 2, 1, NONE, true),
        (F, 2, 2, NONE, false),
        (F, 2, 3, NONE, false),
        (F, 3, 0, NONE, true),
        (F, 3, 1, NONE, true),
        (F, 3, 2, NONE, false),
        (F, 3, 3, NONE, false),
        (F, 3, 2, 2, false),
        (F, 3, 2, 1, true),
        (L, 3, 3, 1, true),
        (P, 3, 3, 1, true),
        (C, 3, 3, 1, true),
    ];
    for (i, (state, index, log_term, vote_for, wreject)) in cases.into_iter().enumerate() {
        let mut s = storage_with(&[1], &[]);
        s.append(&[ent(2, 1), ent(2, 2)]).unwrap();
        let mut sm = new_test_raft(1, 10, 1, s);
        sm.state = state;
        sm.vote = vote_for;
        // Both at the same term (at least the log's last term): only the
        // logs and the vote already given decide.
        let term = log_term.max(2);
        sm.term = term;
        let mut m = msg_term(2, 1, t, term);
        m.index = index;
        m.log_term = log_term;
        sm.step(m).unwrap();
        let msgs = read_messages(&mut sm);
        assert_eq!(msgs.len(), 1, "#{i}");
        assert_eq!(msgs[0].r#type(), vote_resp_msg_type(t), "#{i}");
        assert_eq!(msgs[0].reject, wreject, "#{i}");
    }
}

#[test]
fn recv_msg_vote() {
    check_recv_msg_vote(MessageType::MsgVote);
}

#[test]
fn recv_msg_pre_vote() {
    check_recv_msg_vote(MessageType::MsgPreVote);
}

#[test]
fn vote_request_without_a_term_is_dropped() {
    let mut sm = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    let mut m = msg(2, 1, MessageType::MsgVote);
    m.index = 5;
    m.log_term = 5;
    sm.step(m).unwrap();
    assert!(read_messages(&mut sm).is_empty());
    assert_eq!(sm.vote, NONE);
}

#[test]
fn state_transitions() {
    use StateType::{Candidate as C, Follower as F, Leader as L, PreCandidate as P};
    // (from, to, allowed, wterm, wlead)
    let cases = [
        (F, F, true, 1, NONE),
        (F, P, true, 0, NONE),
        (F, C, true, 1, NONE),
        (P, F, true, 0, NONE),
        (P, P, true, 0, NONE),
        (P, C, true, 1, NONE),
        (P, L, true, 0, 1),
        (C, F, true, 0, NONE),
        (C, P, true, 0, NONE),
        (C, C, true, 1, NONE),
        (C, L, true, 0, 1),
        (L, F, true, 1, NONE),
        (L, L, true, 0, 1),
    ];
    for (i, (from, to, _, wterm, wlead)) in cases.into_iter().enumerate() {
        let mut sm = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
        sm.state = from;
        match to {
            F => sm.become_follower(wterm, wlead),
            P => sm.become_pre_candidate(),
            C => sm.become_candidate(),
            L => sm.become_leader(),
        }
        assert_eq!(sm.term, wterm, "#{i}");
        assert_eq!(sm.lead, wlead, "#{i}");
    }
    for (from, to) in [(F, L), (L, P), (L, C)] {
        let res = std::panic::catch_unwind(|| {
            let mut sm = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
            sm.state = from;
            match to {
                L => sm.become_leader(),
                P => sm.become_pre_candidate(),
                _ => sm.become_candidate(),
            }
        });
        assert!(res.is_err(), "{from} -> {to} must panic");
    }
}

#[test]
fn all_servers_step_down_on_a_higher_term() {
    use StateType::{Candidate as C, Follower as F, Leader as L, PreCandidate as P};
    let cases = [(F, F, 3, 0), (P, F, 3, 0), (C, F, 3, 0), (L, F, 3, 1)];
    let tmsg_types = [MessageType::MsgVote, MessageType::MsgApp];
    let tterm = 3;
    for (i, (state, wstate, wterm, windex)) in cases.into_iter().enumerate() {
        for (j, &mt) in tmsg_types.iter().enumerate() {
            let mut sm = new_test_raft(1, 10, 1, storage_with(&[1, 2, 3], &[]));
            match state {
                F => sm.become_follower(1, NONE),
                P => sm.become_pre_candidate(),
                C => sm.become_candidate(),
                L => {
                    sm.become_candidate();
                    sm.become_leader();
                }
            }
            let mut m = msg_term(2, 1, mt, tterm);
            m.log_term = tterm;
            sm.step(m).unwrap();
            assert_eq!(sm.state, wstate, "#{i}.{j}");
            assert_eq!(sm.term, wterm, "#{i}.{j}");
            assert_eq!(sm.raft_log.last_index(), windex, "#{i}.{j}");
            assert_eq!(sm.raft_log.all_entries().len() as u64, windex, "#{i}.{j}");
            let wlead = if mt == MessageType::MsgVote { NONE } else { 2 };
            assert_eq!(sm.lead, wlead, "#{i}.{j}");
        }
    }
}

fn check_candidate_reset_term(mt: MessageType) {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Follower);

    // Isolate 3 and let it campaign alone: it becomes a candidate at term 2.
    nt.isolate(3);
    nt.send1(hup(2));
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);

    let c = nt.raft_mut(3);
    c.randomized_election_timeout = c.election_timeout + 1;
    for _ in 0..c.randomized_election_timeout {
        c.tick();
    }
    advance_messages_after_append(c);
    assert_eq!(nt.raft(3).state, StateType::Candidate);

    nt.recover();
    // A heartbeat/append from the leader of the same term makes the
    // candidate a follower again.
    let term = nt.raft(1).term;
    nt.send1(msg_term(1, 3, mt, term));
    assert_eq!(nt.raft(3).state, StateType::Follower);
    assert_eq!(nt.raft(3).term, nt.raft(1).term);
}

#[test]
fn candidate_reset_term_msg_heartbeat() {
    check_candidate_reset_term(MessageType::MsgHeartbeat);
}

#[test]
fn candidate_reset_term_msg_app() {
    check_candidate_reset_term(MessageType::MsgApp);
}

fn check_candidate_self_vote_after_lost_election(pre: bool) {
    let mut c = test_config(1, 5, 1);
    c.pre_vote = pre;
    let mut sm = Raft::new(&c, storage_with(&[1, 2, 3], &[])).unwrap();
    // The node campaigns; its self-vote waits for durability.
    sm.step(hup(1)).unwrap();
    let steps = std::mem::take(&mut sm.msgs_after_append);
    // Two rejections lose the election before the self-vote is durable.
    let resp = if pre {
        MessageType::MsgPreVoteResp
    } else {
        MessageType::MsgVoteResp
    };
    let term = if pre { sm.term + 1 } else { sm.term };
    for from in [2, 3] {
        let mut m = msg_term(from, 1, resp, term);
        m.reject = true;
        sm.step(m).unwrap();
    }
    // The late self-vote is harmless.
    for m in steps {
        if m.to == 1 {
            sm.step(m).unwrap();
        }
    }
    assert_eq!(sm.state, StateType::Follower);
}

#[test]
fn candidate_self_vote_after_lost_election() {
    check_candidate_self_vote_after_lost_election(false);
}

#[test]
fn candidate_self_vote_after_lost_election_pre_vote() {
    check_candidate_self_vote_after_lost_election(true);
}

#[test]
fn candidate_delivers_pre_candidate_self_vote_after_becoming_candidate() {
    let mut c = test_config(1, 5, 1);
    c.pre_vote = true;
    let mut sm = Raft::new(&c, storage_with(&[1, 2, 3], &[])).unwrap();
    sm.step(hup(1)).unwrap();
    assert_eq!(sm.state, StateType::PreCandidate);
    let steps = std::mem::take(&mut sm.msgs_after_append);
    // Two pre-votes win the pre-election before the self pre-vote lands.
    for from in [2, 3] {
        sm.step(msg_term(from, 1, MessageType::MsgPreVoteResp, sm.term + 1))
            .unwrap();
        if sm.state == StateType::Candidate {
            break;
        }
    }
    assert_eq!(sm.state, StateType::Candidate);
    // The stale pre-vote self answer must not count as a vote.
    for m in steps {
        sm.step(m).unwrap();
    }
    assert_eq!(sm.state, StateType::Candidate);
    assert_eq!(sm.trk.votes.len(), 0, "no real vote counted yet");
    // The real self-vote and one grant win.
    advance_messages_after_append(&mut sm);
    sm.step(msg_term(2, 1, MessageType::MsgVoteResp, sm.term))
        .unwrap();
    assert_eq!(sm.state, StateType::Leader);
}

#[test]
fn leader_msg_app_self_ack_after_term_change() {
    let mut sm = new_test_raft(1, 5, 1, storage_with(&[1, 2, 3], &[]));
    sm.become_candidate();
    sm.become_leader();
    sm.step(prop(1, 1, b"data")).unwrap();
    // The self-ack waits for durability; meanwhile the term changes.
    let steps = std::mem::take(&mut sm.msgs_after_append);
    sm.step(msg_term(2, 1, MessageType::MsgHeartbeat, sm.term + 1))
        .unwrap();
    assert_eq!(sm.state, StateType::Follower);
    // The stale self-ack is ignored.
    for m in steps {
        sm.step(m).unwrap();
    }
    assert_eq!(sm.state, StateType::Follower);
}

// ---------------------------------------------------------------------------
// CheckQuorum, leases, PreVote.

#[test]
fn leader_stepdown_when_quorum_active() {
    let mut sm = new_test_raft(1, 5, 1, storage_with(&[1, 2, 3], &[]));
    sm.check_quorum = true;
    sm.become_candidate();
    sm.become_leader();
    for _ in 0..sm.election_timeout + 1 {
        let t = sm.term;
        sm.step(msg_term(2, 1, MessageType::MsgHeartbeatResp, t))
            .unwrap();
        sm.tick();
    }
    assert_eq!(sm.state, StateType::Leader);
}

#[test]
fn leader_stepdown_when_quorum_lost() {
    let mut sm = new_test_raft(1, 5, 1, storage_with(&[1, 2, 3], &[]));
    sm.check_quorum = true;
    sm.become_candidate();
    sm.become_leader();
    for _ in 0..sm.election_timeout + 1 {
        sm.tick();
    }
    assert_eq!(sm.state, StateType::Follower);
}

fn quorum_config(c: &mut Config) {
    c.check_quorum = true;
}

#[test]
fn leader_superseding_with_check_quorum() {
    let mut nt = Network::with_config(quorum_config, vec![Peer::New, Peer::New, Peer::New]);
    let b_timeout = nt.raft(2).election_timeout;
    nt.raft_mut(2).randomized_election_timeout = b_timeout + 1;
    for _ in 0..b_timeout {
        nt.raft_mut(2).tick();
    }
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(3).state, StateType::Follower);

    nt.send1(hup(3));
    // 2 is still in 1's lease: it rejects 3's vote.
    assert_eq!(nt.raft(3).state, StateType::Candidate);

    // Once 2's election timeout passes, it votes for 3.
    for _ in 0..b_timeout {
        nt.raft_mut(2).tick();
    }
    nt.send1(hup(3));
    assert_eq!(nt.raft(3).state, StateType::Leader);
}

#[test]
fn leader_election_with_check_quorum() {
    let mut nt = Network::with_config(quorum_config, vec![Peer::New, Peer::New, Peer::New]);
    let t = nt.raft(1).election_timeout;
    nt.raft_mut(1).randomized_election_timeout = t + 1;
    nt.raft_mut(2).randomized_election_timeout = t + 2;
    // Nobody has a leader yet: no lease blocks the first election.
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(3).state, StateType::Follower);

    // Make sure 1's and 2's leases have expired.
    nt.raft_mut(1).randomized_election_timeout = t + 1;
    nt.raft_mut(2).randomized_election_timeout = t + 2;
    for _ in 0..t {
        nt.raft_mut(1).tick();
    }
    for _ in 0..t {
        nt.raft_mut(2).tick();
    }
    nt.send1(hup(3));
    assert_eq!(nt.raft(1).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Leader);
}

#[test]
fn free_stuck_candidate_with_check_quorum() {
    let mut nt = Network::with_config(quorum_config, vec![Peer::New, Peer::New, Peer::New]);
    let t = nt.raft(2).election_timeout;
    nt.raft_mut(2).randomized_election_timeout = t + 1;
    for _ in 0..t {
        nt.raft_mut(2).tick();
    }
    nt.send1(hup(1));

    nt.isolate(1);
    nt.send1(hup(3));
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Candidate);
    assert_eq!(nt.raft(3).term, nt.raft(2).term + 1);

    // Stays a candidate in its own term.
    nt.send1(hup(3));
    assert_eq!(nt.raft(3).state, StateType::Candidate);
    assert_eq!(nt.raft(3).term, nt.raft(2).term + 2);

    nt.recover();
    // The leader's heartbeat at the old term gets an answer at the newer one
    // and the leader steps down.
    let term = nt.raft(1).term;
    nt.send1(msg_term(1, 3, MessageType::MsgHeartbeat, term));
    assert_eq!(nt.raft(1).state, StateType::Follower);
    assert_eq!(nt.raft(3).term, nt.raft(1).term);

    // A new election unblocks the cluster.
    nt.send1(hup(3));
    assert_eq!(nt.raft(3).state, StateType::Leader);
}

#[test]
fn non_promotable_voter_with_check_quorum() {
    let a = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    let b = new_test_raft(2, 10, 1, storage_with(&[1], &[]));
    let mut a = a;
    let mut b = b;
    a.check_quorum = true;
    b.check_quorum = true;
    let mut nt = Network::new(vec![Peer::Raft(Box::new(a)), Peer::Raft(Box::new(b))]);
    // The network gave b a progress of its own; take it away again.
    nt.raft_mut(2)
        .apply_conf_change(&cc_v2(ConfChangeType::ConfChangeRemoveNode, 2))
        .unwrap();
    assert!(!nt.raft(2).promotable());

    elect_1_while_2_waits(&mut nt);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(2).lead, 1);
}

#[test]
fn disruptive_follower() {
    let mut nt = Network::with_config(quorum_config, vec![Peer::New, Peer::New, Peer::New]);
    for id in 1..=3 {
        nt.raft_mut(id).become_follower(1, NONE);
    }
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Follower);

    // The leader's messages to 3 are delayed while 3's ticks elapse: its
    // last tick makes it campaign.
    let n3 = nt.raft_mut(3);
    n3.randomized_election_timeout = n3.election_timeout + 2;
    for _ in 0..n3.randomized_election_timeout - 1 {
        n3.tick();
    }
    n3.tick();
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Candidate);
    assert_eq!(
        (nt.raft(1).term, nt.raft(2).term, nt.raft(3).term),
        (2, 2, 3)
    );

    // The delayed heartbeat (at the older term) reaches the candidate, whose
    // answer at its higher term makes the leader step down.
    let term = nt.raft(1).term;
    nt.send1(msg_term(1, 3, MessageType::MsgHeartbeat, term));
    assert_eq!(nt.raft(1).state, StateType::Follower);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Candidate);
    assert_eq!(
        (nt.raft(1).term, nt.raft(2).term, nt.raft(3).term),
        (3, 2, 3)
    );
}

#[test]
fn disruptive_follower_pre_vote() {
    let mut nt = Network::with_config(quorum_config, vec![Peer::New, Peer::New, Peer::New]);
    for id in 1..=3 {
        nt.raft_mut(id).become_follower(1, NONE);
    }
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Follower);

    nt.isolate(3);
    for _ in 0..3 {
        nt.send1(prop(1, 1, b"somedata"));
    }
    for id in 1..=3 {
        nt.raft_mut(id).pre_vote = true;
    }
    nt.recover();
    nt.send1(hup(3));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::PreCandidate);
    for id in 1..=3 {
        assert_eq!(nt.raft(id).term, 2, "{id}");
    }
    // A delayed heartbeat of the leader does not make it step down.
    let term = nt.raft(1).term;
    nt.send1(msg_term(1, 3, MessageType::MsgHeartbeat, term));
    assert_eq!(nt.raft(1).state, StateType::Leader);
}

#[test]
fn pre_vote_with_split_vote() {
    let mut nt = Network::with_config(pre_vote, vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    // Simulate leader down; 2 and 3 campaign at once.
    nt.isolate(1);
    nt.send(vec![hup(2), hup(3)]);
    assert_eq!(nt.raft(2).term, 2);
    assert_eq!(nt.raft(3).term, 2);
    assert_eq!(nt.raft(2).state, StateType::Candidate);
    assert_eq!(nt.raft(3).state, StateType::Candidate);
    // Node 2 times out again and wins.
    nt.send1(hup(2));
    assert_eq!(nt.raft(2).term, 3);
    assert_eq!(nt.raft(3).term, 3);
    assert_eq!(nt.raft(2).state, StateType::Leader);
    assert_eq!(nt.raft(3).state, StateType::Follower);
}

#[test]
fn pre_vote_with_check_quorum() {
    let mut nt = Network::with_config(
        |c| {
            c.pre_vote = true;
            c.check_quorum = true;
        },
        vec![Peer::New, Peer::New, Peer::New],
    );
    for id in 1..=3 {
        nt.raft_mut(id).become_follower(1, NONE);
    }
    nt.send1(hup(1));
    // Isolate node 1; nodes 2 and 3 still know it as leader.
    nt.isolate(1);
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Follower);
    // Node 2 ignores node 3's pre-vote (lease), then campaigns itself.
    nt.send1(hup(3));
    nt.send1(hup(2));
    assert!(nt.raft(2).state == StateType::Leader || nt.raft(3).state == StateType::Follower);
}

#[test]
fn learner_cannot_campaign() {
    let mut n1 = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
    n1.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddLearnerNode, 2))
        .unwrap();
    let mut n2 = new_test_raft(2, 10, 1, storage_with(&[1], &[]));
    n2.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddLearnerNode, 2))
        .unwrap();
    let mut nt = Network::new(vec![Peer::Raft(Box::new(n1)), Peer::Raft(Box::new(n2))]);
    nt.send1(hup(2));
    assert!(nt.raft(2).is_learner);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(1).lead, 1);
    // A learner told to time out does not campaign either.
    nt.send1(msg_term(1, 2, MessageType::MsgTimeoutNow, nt.raft(1).term));
    assert_eq!(nt.raft(2).state, StateType::Follower);
}

// ---------------------------------------------------------------------------
// Reads.

/// Lets node 2's election timer run to just before its timeout, then elects
/// node 1 (so node 2 does not campaign during the test).
fn elect_1_while_2_waits(nt: &mut Network) {
    let t = nt.raft(2).election_timeout;
    nt.raft_mut(2).randomized_election_timeout = t + 1;
    for _ in 0..t {
        nt.raft_mut(2).tick();
    }
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
}

/// Each case: `proposals` proposals at node 1, then a ReadIndex with
/// context `wctx` at node `id`, which must be answered with index `wri`.
fn check_read_cases(nt: &mut Network, cases: &[(u64, usize, u64, &[u8])]) {
    for (i, (id, proposals, wri, wctx)) in cases.iter().copied().enumerate() {
        for _ in 0..proposals {
            nt.send1(prop(1, 1, b""));
        }
        let mut m = msg(id, id, MessageType::MsgReadIndex);
        m.entries = vec![Entry {
            data: Bytes::copy_from_slice(wctx),
            ..Default::default()
        }];
        nt.send1(m);
        let r = nt.raft_mut(id);
        assert_eq!(r.read_states.len(), 1, "#{i}");
        let rs = r.read_states.remove(0);
        assert_eq!(rs.index, wri, "#{i}");
        assert_eq!(&rs.request_ctx[..], wctx, "#{i}");
    }
}

#[test]
fn read_only_option_safe() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    elect_1_while_2_waits(&mut nt);

    // (node asked, proposals before, wri, wctx)
    let cases: [(u64, usize, u64, &[u8]); 6] = [
        (1, 10, 11, b"ctx1"),
        (2, 10, 21, b"ctx2"),
        (3, 10, 31, b"ctx3"),
        (1, 10, 41, b"ctx4"),
        (2, 10, 51, b"ctx5"),
        (3, 10, 61, b"ctx6"),
    ];
    check_read_cases(&mut nt, &cases);
}

#[test]
fn read_only_with_learner() {
    let a = new_test_raft(1, 10, 1, storage_with(&[1], &[2]));
    let b = new_test_raft(2, 10, 1, storage_with(&[1], &[2]));
    let mut nt = Network::new(vec![Peer::Raft(Box::new(a)), Peer::Raft(Box::new(b))]);
    elect_1_while_2_waits(&mut nt);

    let cases: [(u64, usize, u64, &[u8]); 4] = [
        (1, 10, 11, b"ctx1"),
        (2, 10, 21, b"ctx2"),
        (1, 10, 31, b"ctx3"),
        (2, 10, 41, b"ctx4"),
    ];
    check_read_cases(&mut nt, &cases);
}

#[test]
fn read_only_option_lease() {
    let mut nt = Network::with_config(
        |c| {
            c.read_only_option = ReadOnlyOption::LeaseBased;
            c.check_quorum = true;
        },
        vec![Peer::New, Peer::New, Peer::New],
    );
    elect_1_while_2_waits(&mut nt);
    let cases: [(u64, usize, u64, &[u8]); 6] = [
        (1, 10, 11, b"ctx1"),
        (2, 10, 21, b"ctx2"),
        (3, 10, 31, b"ctx3"),
        (1, 10, 41, b"ctx4"),
        (2, 10, 51, b"ctx5"),
        (3, 10, 61, b"ctx6"),
    ];
    check_read_cases(&mut nt, &cases);
}

#[test]
fn read_only_for_new_leader_waits_for_a_commit_in_its_term() {
    let mut peers = Vec::new();
    for (id, committed, applied, compact) in [(1u64, 1u64, 1u64, 0u64), (2, 2, 2, 2), (3, 2, 2, 2)]
    {
        let mut s = storage_with(&[1, 2, 3], &[]);
        s.append(&[ent(1, 1), ent(1, 2)]).unwrap();
        s.set_hard_state(HardState {
            term: 1,
            commit: committed,
            vote: 0,
        });
        if compact != 0 {
            s.compact(compact).unwrap();
        }
        let mut c = test_config(id, 10, 1);
        c.applied = applied;
        peers.push(Peer::Raft(Box::new(Raft::new(&c, s).unwrap())));
    }
    let mut nt = Network::new(peers);
    // Drop MsgApp so the new leader cannot commit at its term.
    nt.ignore(MessageType::MsgApp);
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);

    let windex = 4;
    let wctx = b"ctx";
    let mut m = msg(1, 1, MessageType::MsgReadIndex);
    m.entries = vec![Entry {
        data: Bytes::from_static(wctx),
        ..Default::default()
    }];
    nt.send1(m.clone());
    assert!(nt.raft(1).read_states.is_empty(), "held until a commit");

    nt.recover();
    // Committing an entry at the leader's term releases the held read.
    for _ in 0..nt.raft(1).heartbeat_timeout {
        nt.raft_mut(1).tick();
    }
    let mut p = msg(1, 1, MessageType::MsgProp);
    p.entries = vec![Entry::default()];
    nt.send1(p);
    let sm = nt.raft(1);
    assert_eq!(sm.raft_log.committed, 4);
    let t = sm.raft_log.term(sm.raft_log.committed);
    assert_eq!(sm.raft_log.zero_term_on_out_of_bounds(t), sm.term);
    assert_eq!(sm.read_states.len(), 1);
    assert_eq!(sm.read_states[0].index, windex);
    assert_eq!(&sm.read_states[0].request_ctx[..], wctx);

    // A later read is answered after a heartbeat round.
    nt.send1(m);
    let sm = nt.raft(1);
    assert_eq!(sm.read_states.len(), 2);
    assert_eq!(sm.read_states[1].index, windex);
    assert_eq!(&sm.read_states[1].request_ctx[..], wctx);
}

#[test]
fn read_only_duplicate_request_is_never_answered_too_low() {
    use std::cell::RefCell;
    use std::rc::Rc;

    let mut net = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    net.send1(hup(1));

    let read = |from: u64, to: u64, ctx: &'static [u8]| {
        let mut m = msg(from, to, MessageType::MsgReadIndex);
        m.entries = vec![Entry {
            data: Bytes::from_static(ctx),
            ..Default::default()
        }];
        m
    };
    // A's answer must be at least this.
    let read_a = read(2, 1, b"A");
    let min_a = net.raft(1).raft_log.committed;
    // A duplicate of A (a retry, or the network) delivered at the very end.
    let delayed: Rc<RefCell<Vec<Message>>> = Rc::new(RefCell::new(vec![read_a.clone()]));

    // Process A, delaying the heartbeat responses until the end.
    let d = delayed.clone();
    net.msg_hook = Some(Box::new(move |m: &Message| {
        if m.r#type() == MessageType::MsgHeartbeatResp {
            d.borrow_mut().push(m.clone());
            return false;
        }
        true
    }));
    net.send1(read_a);
    net.msg_hook = None;

    // Tick and send whatever the leader wants to send; this finishes A.
    net.raft_mut(1).tick();
    let msgs = read_messages(net.raft_mut(1));
    net.send(msgs);

    net.isolate(1);
    // Elect 2 and commit a new entry.
    net.send1(hup(2));
    net.send1(prop(2, 2, b"someOp"));

    // Read from the disconnected, stale leader 1.
    let min_b = net.raft(2).raft_log.committed;
    net.send1(read(1, 1, b"B"));
    net.recover();
    // The delayed duplicate of A, then the delayed heartbeat responses: they
    // must not confirm B.
    let delayed = std::mem::take(&mut *delayed.borrow_mut());
    net.send(delayed);

    for id in 1..=3 {
        for rs in &net.raft(id).read_states {
            match &rs.request_ctx[..] {
                b"A" => assert!(rs.index >= min_a, "A read at {} < {min_a}", rs.index),
                b"B" => assert!(rs.index >= min_b, "B read at {} < {min_b}", rs.index),
                _ => {}
            }
        }
    }
}

#[test]
fn slow_node_restores_from_a_snapshot() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    nt.isolate(3);
    for _ in 0..=100 {
        let mut m = msg(1, 1, MessageType::MsgProp);
        m.entries = vec![Entry::default()];
        nt.send1(m);
    }
    let lead = nt.raft_mut(1);
    next_ents(lead);
    let applied = lead.raft_log.applied;
    let cs = ConfState {
        voters: lead.trk.voter_nodes(),
        ..Default::default()
    };
    lead.raft_log
        .store
        .create_snapshot(applied, Some(cs), Bytes::new())
        .unwrap();
    lead.raft_log.store.compact(applied).unwrap();

    nt.recover();
    // Heartbeats until the leader knows 3 is active.
    while !nt.raft(1).trk.progress[&3].recent_active {
        nt.send1(beat(1));
    }
    // Trigger a snapshot, then a commit.
    let mut m = msg(1, 1, MessageType::MsgProp);
    m.entries = vec![Entry::default()];
    nt.send1(m.clone());
    nt.send1(m);
    assert_eq!(nt.raft(3).raft_log.committed, nt.raft(1).raft_log.committed);
}

fn pre_vote_migration_cluster() -> Network {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    for id in 1..=3 {
        nt.raft_mut(id).become_follower(1, NONE);
    }
    // A rolling restart: PreVote is on for 1 and 2 only.
    nt.raft_mut(1).pre_vote = true;
    nt.raft_mut(2).pre_vote = true;
    nt.send1(hup(1));
    nt.isolate(3);
    nt.send1(prop(1, 1, b"some data"));
    nt.send1(hup(3));
    nt.send1(hup(3));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::Candidate);
    assert_eq!(
        (nt.raft(1).term, nt.raft(2).term, nt.raft(3).term),
        (2, 2, 4)
    );
    nt.raft_mut(3).pre_vote = true;
    nt.recover();
    nt
}

#[test]
fn pre_vote_migration_can_complete_election() {
    let mut nt = pre_vote_migration_cluster();
    // The leader goes down; 2 and 3 both call elections.
    nt.isolate(1);
    nt.send1(hup(3));
    nt.send1(hup(2));
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::PreCandidate);
    nt.send1(hup(3));
    nt.send1(hup(2));
    assert!(nt.raft(2).state == StateType::Leader || nt.raft(3).state == StateType::Follower);
}

#[test]
fn pre_vote_migration_with_free_stuck_pre_candidate() {
    let mut nt = pre_vote_migration_cluster();
    nt.send1(hup(3));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::PreCandidate);
    // Pre-vote again for safety.
    nt.send1(hup(3));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);
    assert_eq!(nt.raft(3).state, StateType::PreCandidate);
    // The leader's heartbeat is answered at the stuck node's higher term:
    // the leader steps down, freeing it.
    let term = nt.raft(1).term;
    nt.send1(msg_term(1, 3, MessageType::MsgHeartbeat, term));
    assert_eq!(nt.raft(1).state, StateType::Follower);
    assert_eq!(nt.raft(1).term, nt.raft(3).term);
}

#[test]
fn read_index_on_a_singleton_is_answered_once_an_entry_of_its_term_commits() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
    r.become_candidate();
    r.become_leader();
    let mut m = msg(1, 1, MessageType::MsgReadIndex);
    m.entries = vec![Entry {
        data: Bytes::from_static(b"x"),
        ..Default::default()
    }];
    r.step(m).unwrap();
    // Held, unlike etcd-raft: a node that became the only voter while
    // another led may not know all that was committed (corelog-sim, seed
    // 7663 of the first simulator).
    assert!(r.read_states.is_empty());
    // The leader's own append ack commits its empty entry; no round trip.
    advance_messages_after_append(&mut r);
    assert_eq!(r.read_states.len(), 1);
    assert_eq!(r.read_states[0].index, r.raft_log.committed);
}

#[test]
fn follower_drops_malformed_read_index_resp() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_follower(1, 2);
    let mut m = msg_term(2, 1, MessageType::MsgReadIndexResp, 1);
    m.index = 5;
    r.step(m).unwrap();
    assert!(r.read_states.is_empty());
}

// ---------------------------------------------------------------------------
// Leader: appends, heartbeats, probing.

#[test]
fn leader_app_resp() {
    // (index, reject, wmatch, wnext, wmsg_num, windex, wcommitted)
    let cases = [
        (3, true, 0, 3, 0, 0, 0),  // stale resp; no replies
        (2, true, 0, 2, 1, 1, 0), // denied resp; leader does not commit; decrease next and send probing msg
        (2, false, 2, 4, 2, 2, 2), // accept resp; leader commits; broadcast with commit index
        // A probing follower acking its match moves to Replicate and gets
        // everything at once.
        (0, false, 0, 4, 1, 0, 0),
    ];
    for (i, (index, reject, wmatch, wnext, wmsg_num, windex, wcommitted)) in
        cases.into_iter().enumerate()
    {
        let mut s = storage_with(&[1, 2, 3], &[]);
        s.append(&[ent(1, 1), ent(1, 2)]).unwrap();
        let mut sm = new_test_raft(1, 10, 1, s);
        sm.become_candidate();
        sm.become_leader();
        read_messages(&mut sm);
        let mut m = msg_term(2, 1, MessageType::MsgAppResp, sm.term);
        m.index = index;
        m.reject = reject;
        m.reject_hint = index;
        sm.step(m).unwrap();

        let p = &sm.trk.progress[&2];
        assert_eq!(p.matched, wmatch, "#{i}");
        assert_eq!(p.next_idx, wnext, "#{i}");
        let msgs = read_messages(&mut sm);
        assert_eq!(msgs.len(), wmsg_num, "#{i}");
        for m in &msgs {
            assert_eq!(m.index, windex, "#{i}");
            assert_eq!(m.commit, wcommitted, "#{i}");
        }
    }
}

#[test]
fn bcast_beat_caps_commit_at_match() {
    let offset = 1000;
    let snap = Snapshot {
        metadata: Some(SnapshotMetadata {
            index: offset,
            term: 1,
            conf_state: Some(ConfState {
                voters: vec![1, 2, 3],
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let mut s = MemStorage::new();
    s.apply_snapshot(snap).unwrap();
    let mut sm = new_test_raft(1, 10, 1, s);
    sm.term = 1;
    sm.become_candidate();
    sm.become_leader();
    for _ in 0..10 {
        sm.append_entry(vec![Entry::default()]);
    }
    advance_messages_after_append(&mut sm);
    // Slow follower.
    {
        let pr = sm.trk.progress.get_mut(&2).unwrap();
        pr.matched = 5;
        pr.next_idx = 6;
    }
    // Normal follower.
    let last = sm.raft_log.last_index();
    {
        let pr = sm.trk.progress.get_mut(&3).unwrap();
        pr.matched = last;
        pr.next_idx = last + 1;
    }
    sm.step(beat(1)).unwrap();
    let msgs = read_messages(&mut sm);
    assert_eq!(msgs.len(), 2);
    let want_commit: BTreeMap<u64, u64> = [
        (2, 5.min(sm.raft_log.committed)),
        (3, last.min(sm.raft_log.committed)),
    ]
    .into_iter()
    .collect();
    for m in msgs {
        assert_eq!(m.r#type(), MessageType::MsgHeartbeat);
        assert_eq!(m.index, 0);
        assert_eq!(m.log_term, 0);
        assert_eq!(m.commit, want_commit[&m.to]);
        assert!(m.entries.is_empty());
    }
}

#[test]
fn recv_msg_beat_only_on_leader() {
    use StateType::{Candidate as C, Follower as F, Leader as L};
    for (i, (state, wmsg)) in [(L, 2), (C, 0), (F, 0)].into_iter().enumerate() {
        let mut s = storage_with(&[1, 2, 3], &[]);
        s.append(&[ent(0, 1), ent(1, 2)]).unwrap();
        let mut sm = new_test_raft(1, 10, 1, s);
        sm.term = 1;
        sm.state = state;
        sm.step(beat(1)).unwrap();
        let msgs = read_messages(&mut sm);
        assert_eq!(msgs.len(), wmsg, "#{i}");
        for m in msgs {
            assert_eq!(m.r#type(), MessageType::MsgHeartbeat, "#{i}");
        }
    }
}

#[test]
fn leader_increase_next() {
    let previous = [ent(1, 1), ent(1, 2), ent(1, 3)];
    // (state, next, wnext)
    let cases = [
        // Replicate: optimistically increase next.
        (
            ProgressState::Replicate,
            2,
            previous.len() as u64 + 1 + 1 + 1,
        ),
        // Probe: not optimistically increased.
        (ProgressState::Probe, 2, 2),
    ];
    for (i, (state, next, wnext)) in cases.into_iter().enumerate() {
        let mut s = storage_with(&[1, 2], &[]);
        s.append(&previous).unwrap();
        let mut sm = new_test_raft(1, 10, 1, s);
        sm.become_candidate();
        sm.become_leader();
        {
            let pr = sm.trk.progress.get_mut(&2).unwrap();
            pr.state = state;
            pr.next_idx = next;
        }
        sm.step(prop(1, 1, b"somedata")).unwrap();
        assert_eq!(sm.trk.progress[&2].next_idx, wnext, "#{i}");
    }
}

#[test]
fn send_append_for_progress_probe() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    read_messages(&mut r);
    r.trk.progress.get_mut(&2).unwrap().become_probe();

    // Each round is a heartbeat.
    for i in 0..3 {
        if i == 0 {
            // We expect that raft will only send out one MsgApp on the first
            // loop. After that, the follower is paused until a heartbeat
            // response is received.
            r.append_entry(vec![Entry {
                data: Bytes::from_static(b"somedata"),
                ..Default::default()
            }]);
            r.send_append(2);
            let msgs = read_messages(&mut r);
            assert_eq!(msgs.len(), 1);
            assert_eq!(msgs[0].index, 0);
        }
        assert!(r.trk.progress[&2].msg_app_flow_paused);
        for _ in 0..10 {
            r.append_entry(vec![Entry {
                data: Bytes::from_static(b"somedata"),
                ..Default::default()
            }]);
            r.send_append(2);
            assert!(read_messages(&mut r).is_empty());
        }
        // Do a heartbeat.
        for _ in 0..r.heartbeat_timeout {
            r.step(beat(1)).unwrap();
        }
        assert!(r.trk.progress[&2].msg_app_flow_paused);
        // Consume the heartbeat.
        let msgs = read_messages(&mut r);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].r#type(), MessageType::MsgHeartbeat);
    }
    // A heartbeat response unpauses and sends one append.
    r.step(msg(2, 1, MessageType::MsgHeartbeatResp)).unwrap();
    let msgs = read_messages(&mut r);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].index, 0);
    assert!(r.trk.progress[&2].msg_app_flow_paused);
}

#[test]
fn send_append_for_progress_replicate() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    read_messages(&mut r);
    r.trk.progress.get_mut(&2).unwrap().become_replicate();
    for _ in 0..10 {
        r.append_entry(vec![Entry {
            data: Bytes::from_static(b"somedata"),
            ..Default::default()
        }]);
        r.send_append(2);
        assert_eq!(read_messages(&mut r).len(), 1);
    }
}

#[test]
fn send_append_for_progress_snapshot() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    read_messages(&mut r);
    r.trk.progress.get_mut(&2).unwrap().become_snapshot(10);
    for _ in 0..10 {
        r.append_entry(vec![Entry {
            data: Bytes::from_static(b"somedata"),
            ..Default::default()
        }]);
        r.send_append(2);
        assert!(read_messages(&mut r).is_empty());
    }
}

#[test]
fn recv_msg_unreachable() {
    let previous = [ent(1, 1), ent(1, 2), ent(1, 3)];
    let mut s = storage_with(&[1, 2], &[]);
    s.append(&previous).unwrap();
    let mut r = new_test_raft(1, 10, 1, s);
    r.become_candidate();
    r.become_leader();
    read_messages(&mut r);
    // Set node 2 to state replicate.
    {
        let pr = r.trk.progress.get_mut(&2).unwrap();
        pr.matched = 3;
        pr.become_replicate();
        pr.maybe_update(5);
    }
    r.step(msg(2, 1, MessageType::MsgUnreachable)).unwrap();
    let pr = &r.trk.progress[&2];
    assert_eq!(pr.state, ProgressState::Probe);
    assert_eq!(pr.next_idx, pr.matched + 1);
}

#[test]
fn responses_from_unknown_peers_are_ignored() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    read_messages(&mut r);
    for t in [
        MessageType::MsgAppResp,
        MessageType::MsgHeartbeatResp,
        MessageType::MsgSnapStatus,
        MessageType::MsgUnreachable,
        MessageType::MsgTransferLeader,
    ] {
        let mut m = msg_term(9, 1, t, r.term);
        m.index = 100;
        r.step(m).unwrap();
    }
    assert!(read_messages(&mut r).is_empty());
    assert_eq!(r.state, StateType::Leader);
}

#[test]
fn append_resp_beyond_the_log_does_not_panic() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2, 3], &[]));
    r.become_candidate();
    r.become_leader();
    advance_messages_after_append(&mut r);
    read_messages(&mut r);
    let mut m = msg_term(2, 1, MessageType::MsgAppResp, r.term);
    m.index = 1_000_000;
    r.step(m).unwrap();
    // The bogus match cannot commit anything beyond the log.
    assert!(r.raft_log.committed <= r.raft_log.last_index());
    read_messages(&mut r);
    // A rejection with an absurd hint does not panic either.
    let mut m = msg_term(3, 1, MessageType::MsgAppResp, r.term);
    m.index = 1;
    m.reject = true;
    m.reject_hint = u64::MAX;
    m.log_term = u64::MAX;
    r.step(m).unwrap();
    read_messages(&mut r);
}

#[test]
fn malformed_append_is_dropped() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_follower(2, 2);
    // Entries that do not follow the previous index.
    let mut m = msg_term(2, 1, MessageType::MsgApp, 2);
    m.index = 0;
    m.log_term = 0;
    m.entries = vec![ent(1, 5)];
    r.step(m).unwrap();
    assert_eq!(r.raft_log.last_index(), 0);
    assert!(read_messages(&mut r).is_empty());
}

#[test]
fn unknown_message_type_is_ignored() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    let m = Message {
        r#type: 99,
        from: 2,
        to: 1,
        ..Default::default()
    };
    r.step(m).unwrap();
    assert_eq!(r.state, StateType::Follower);
    assert!(read_messages(&mut r).is_empty());
}

// ---------------------------------------------------------------------------
// Snapshots.

fn test_snap(index: u64, term: u64, voters: &[u64], learners: &[u64]) -> Snapshot {
    Snapshot {
        metadata: Some(SnapshotMetadata {
            index,
            term,
            conf_state: Some(ConfState {
                voters: voters.to_vec(),
                learners: learners.to_vec(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[test]
fn restore() {
    let s = test_snap(11, 11, &[1, 2, 3], &[]);
    let mut sm = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    assert!(sm.restore(s.clone()));
    assert_eq!(sm.raft_log.last_index(), 11);
    assert_eq!(sm.raft_log.term(11), Ok(11));
    assert_eq!(sm.trk.voter_nodes(), vec![1, 2, 3]);
    assert!(!sm.restore(s), "a second restore is ignored");
    // The node can't campaign while the snapshot is pending.
    for _ in 0..sm.randomized_election_timeout {
        sm.tick();
    }
    assert_eq!(sm.state, StateType::Follower);
}

#[test]
fn restore_with_learner() {
    let s = test_snap(11, 11, &[1, 2], &[3]);
    let mut sm = new_test_raft(3, 8, 2, storage_with(&[1, 2], &[3]));
    assert!(sm.restore(s.clone()));
    assert_eq!(sm.raft_log.last_index(), 11);
    assert_eq!(sm.trk.voter_nodes(), vec![1, 2]);
    assert_eq!(sm.trk.learner_nodes(), vec![3]);
    for id in [1, 2] {
        assert!(!sm.trk.progress[&id].is_learner);
    }
    assert!(sm.trk.progress[&3].is_learner);
    assert!(!sm.restore(s));
}

#[test]
fn restore_with_voters_outgoing() {
    let s = Snapshot {
        metadata: Some(SnapshotMetadata {
            index: 11,
            term: 11,
            conf_state: Some(ConfState {
                voters: vec![2, 3, 4],
                voters_outgoing: vec![1, 2, 3],
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let mut sm = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    assert!(sm.restore(s.clone()));
    assert_eq!(sm.raft_log.last_index(), 11);
    assert_eq!(sm.trk.voter_nodes(), vec![1, 2, 3, 4]);
    assert!(!sm.restore(s));
    // It can't campaign while the snapshot is pending.
    for _ in 0..sm.randomized_election_timeout {
        sm.tick();
    }
    assert_eq!(sm.state, StateType::Follower);
}

#[test]
fn restore_voter_to_learner() {
    let s = test_snap(11, 11, &[1, 2], &[3]);
    let mut sm = new_test_raft(3, 10, 1, storage_with(&[1, 2, 3], &[]));
    assert!(!sm.is_learner);
    assert!(sm.restore(s));
    assert!(sm.is_learner);
}

#[test]
fn restore_learner_promotion() {
    let s = test_snap(11, 11, &[1, 2, 3], &[]);
    let mut sm = new_test_raft(3, 10, 1, storage_with(&[1, 2], &[3]));
    assert!(sm.is_learner);
    assert!(sm.restore(s));
    assert!(!sm.is_learner);
}

#[test]
fn learner_receives_snapshot() {
    let s = test_snap(11, 11, &[1], &[2]);
    let mut n1 = new_test_raft(1, 10, 1, storage_with(&[1], &[2]));
    let n2 = new_test_raft(2, 10, 1, storage_with(&[1], &[2]));
    assert!(n1.restore(s));
    let snap = n1.raft_log.next_unstable_snapshot().cloned().unwrap();
    n1.raft_log.store.apply_snapshot(snap).unwrap();
    n1.applied_snap(11);

    let mut nt = Network::new(vec![Peer::Raft(Box::new(n1)), Peer::Raft(Box::new(n2))]);
    let n1 = nt.raft_mut(1);
    n1.randomized_election_timeout = n1.election_timeout;
    for _ in 0..n1.election_timeout {
        n1.tick();
    }
    advance_messages_after_append(n1);
    nt.send1(beat(1));
    assert_eq!(nt.raft(2).raft_log.committed, nt.raft(1).raft_log.committed);
}

#[test]
fn restore_ignores_old_snapshot() {
    let previous = [ent(1, 1), ent(1, 2), ent(1, 3)];
    let commit = 1;
    let mut s = storage_with(&[1, 2], &[]);
    s.append(&previous).unwrap();
    let mut sm = new_test_raft(1, 10, 1, s);
    sm.raft_log.commit_to(commit);
    let snap = test_snap(commit, 1, &[1, 2], &[]);
    // Ignore a snapshot at or below the commit index.
    assert!(!sm.restore(snap));
    assert_eq!(sm.raft_log.committed, commit);

    // Fast-forward commit when the snapshot's entry is in the log.
    let snap = test_snap(commit + 1, 1, &[1, 2], &[]);
    assert!(!sm.restore(snap));
    assert_eq!(sm.raft_log.committed, commit + 1);
}

#[test]
fn restore_ignores_snapshot_without_this_node() {
    let mut sm = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    assert!(!sm.restore(test_snap(11, 11, &[2, 3], &[])));
    assert_eq!(sm.raft_log.last_index(), 0);
}

#[test]
fn provide_snapshot_to_a_lagging_follower() {
    let s = test_snap(11, 11, &[1, 2], &[]);
    let mut store = storage_with(&[1], &[]);
    store.apply_snapshot(s).unwrap();
    let mut sm = new_test_raft(1, 10, 1, store);
    sm.become_candidate();
    sm.become_leader();
    // Force set the next of node 2, so that node 2 needs a snapshot.
    let first = sm.raft_log.first_index();
    sm.trk.progress.get_mut(&2).unwrap().next_idx = first;
    let mut m = msg_term(2, 1, MessageType::MsgAppResp, sm.term);
    m.index = first - 1;
    m.reject = true;
    sm.step(m).unwrap();
    let msgs = read_messages(&mut sm);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgSnap);
}

#[test]
fn ignore_providing_snapshot_to_an_inactive_follower() {
    let s = test_snap(11, 11, &[1, 2], &[]);
    let mut store = storage_with(&[1], &[]);
    store.apply_snapshot(s).unwrap();
    let mut sm = new_test_raft(1, 10, 1, store);
    sm.become_candidate();
    sm.become_leader();
    let first = sm.raft_log.first_index();
    {
        let pr = sm.trk.progress.get_mut(&2).unwrap();
        pr.next_idx = first - 1;
        pr.recent_active = false;
    }
    sm.step(prop(1, 1, b"somedata")).unwrap();
    assert!(read_messages(&mut sm).is_empty());
}

#[test]
fn restore_from_snap_msg() {
    let s = test_snap(11, 11, &[1, 2], &[]);
    let mut sm = new_test_raft(2, 10, 1, storage_with(&[1, 2], &[]));
    let mut m = msg_term(1, 2, MessageType::MsgSnap, 2);
    m.snapshot = Some(Box::new(s));
    sm.step(m).unwrap();
    assert_eq!(sm.lead, 1);
    assert_eq!(sm.raft_log.last_index(), 11);
    let msgs = read_messages(&mut sm);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgAppResp);
    assert_eq!(msgs[0].index, 11);
}

#[test]
fn snap_msg_without_snapshot_is_ignored() {
    let mut sm = new_test_raft(2, 10, 1, storage_with(&[1, 2], &[]));
    sm.step(msg_term(1, 2, MessageType::MsgSnap, 2)).unwrap();
    assert_eq!(sm.raft_log.last_index(), 0);
    let msgs = read_messages(&mut sm);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].index, 0);
}

#[test]
fn snap_status_moves_follower_back_to_probe() {
    for reject in [false, true] {
        let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
        r.become_candidate();
        r.become_leader();
        r.trk.progress.get_mut(&2).unwrap().become_snapshot(10);
        let mut m = msg(2, 1, MessageType::MsgSnapStatus);
        m.reject = reject;
        r.step(m).unwrap();
        let pr = &r.trk.progress[&2];
        assert_eq!(pr.state, ProgressState::Probe);
        assert!(pr.msg_app_flow_paused);
        assert_eq!(pr.next_idx, if reject { 1 } else { 11 });
    }
}

// ---------------------------------------------------------------------------
// Membership changes.

fn conf_change_entry(t: ConfChangeType, id: u64) -> Entry {
    Entry {
        r#type: EntryType::EntryConfChange as i32,
        data: Bytes::from(prost::Message::encode_to_vec(&ConfChange {
            r#type: t as i32,
            node_id: id,
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn step_config_sets_pending_conf_index() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    let index = r.raft_log.last_index();
    let mut m = msg(1, 1, MessageType::MsgProp);
    m.entries = vec![conf_change_entry(ConfChangeType::ConfChangeAddNode, 3)];
    r.step(m).unwrap();
    assert_eq!(r.raft_log.last_index(), index + 1);
    assert_eq!(r.pending_conf_index, index + 1);
}

#[test]
fn step_ignores_a_second_pending_config() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    let mut m = msg(1, 1, MessageType::MsgProp);
    m.entries = vec![conf_change_entry(ConfChangeType::ConfChangeAddNode, 3)];
    r.step(m.clone()).unwrap();
    let index = r.raft_log.last_index();
    let pending = r.pending_conf_index;
    r.step(m).unwrap();
    let ents = r.raft_log.entries(index + 1, NO_LIMIT).unwrap();
    assert_eq!(ents.len(), 1);
    assert_eq!(ents[0].r#type(), EntryType::EntryNormal);
    assert!(ents[0].data.is_empty());
    assert_eq!(r.pending_conf_index, pending);
}

#[test]
fn new_leader_pending_config() {
    for (i, (add_entry, wpending)) in [(false, 0), (true, 1)].into_iter().enumerate() {
        let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
        if add_entry {
            assert!(r.append_entry(vec![Entry::default()]));
        }
        r.become_candidate();
        r.become_leader();
        assert_eq!(r.pending_conf_index, wpending, "#{i}");
    }
}

#[test]
fn add_node() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
    r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddNode, 2))
        .unwrap();
    assert_eq!(r.trk.voter_nodes(), vec![1, 2]);
}

#[test]
fn add_learner_and_promote() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
    r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddLearnerNode, 2))
        .unwrap();
    assert!(!r.is_learner);
    assert_eq!(r.trk.learner_nodes(), vec![2]);
    assert!(r.trk.progress[&2].is_learner);
    // Promote peer to voter.
    r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddNode, 2))
        .unwrap();
    assert!(!r.trk.progress[&2].is_learner);
    // Demote r.
    r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddLearnerNode, 1))
        .unwrap();
    assert!(r.trk.progress[&1].is_learner);
    assert!(r.is_learner);
    // Promote r again.
    r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddNode, 1))
        .unwrap();
    assert!(!r.trk.progress[&1].is_learner);
    assert!(!r.is_learner);
}

#[test]
fn add_node_check_quorum() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
    r.check_quorum = true;
    r.become_candidate();
    r.become_leader();
    for _ in 0..r.election_timeout - 1 {
        r.tick();
    }
    r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeAddNode, 2))
        .unwrap();
    // This tick will reach electionTimeout, which triggers a quorum check.
    r.tick();
    // Node 1 should still be the leader after a single tick.
    assert_eq!(r.state, StateType::Leader);
    // After another electionTimeout ticks without hearing from node 2, node
    // 1 should step down.
    for _ in 0..r.election_timeout {
        r.tick();
    }
    assert_eq!(r.state, StateType::Follower);
}

#[test]
fn remove_node() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeRemoveNode, 2))
        .unwrap();
    assert_eq!(r.trk.voter_nodes(), vec![1]);
    // Removing the remaining voter fails.
    assert!(
        r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeRemoveNode, 1))
            .is_err()
    );
    assert_eq!(r.trk.voter_nodes(), vec![1]);
}

#[test]
fn remove_learner() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1], &[2]));
    r.apply_conf_change(&cc_v2(ConfChangeType::ConfChangeRemoveNode, 2))
        .unwrap();
    assert_eq!(r.trk.voter_nodes(), vec![1]);
    assert!(r.trk.learner_nodes().is_empty());
}

#[test]
fn promotable() {
    let cases: [(&[u64], bool); 4] = [
        (&[1], true),
        (&[1, 2, 3], true),
        (&[], false),
        (&[2, 3], false),
    ];
    for (i, (peers, wp)) in cases.into_iter().enumerate() {
        let r = new_test_raft(1, 5, 1, storage_with(peers, &[]));
        assert_eq!(r.promotable(), wp, "#{i}");
    }
}

fn check_campaign_while_leader(pre: bool) {
    let mut c = test_config(1, 5, 1);
    c.pre_vote = pre;
    let mut r = Raft::new(&c, storage_with(&[1], &[])).unwrap();
    assert_eq!(r.state, StateType::Follower);
    // We don't call campaign() directly because it comes after the check
    // for our current state.
    r.step(hup(1)).unwrap();
    advance_messages_after_append(&mut r);
    assert_eq!(r.state, StateType::Leader);
    let term = r.term;
    r.step(hup(1)).unwrap();
    advance_messages_after_append(&mut r);
    assert_eq!(r.state, StateType::Leader);
    assert_eq!(r.term, term);
}

#[test]
fn campaign_while_leader() {
    check_campaign_while_leader(false);
}

#[test]
fn pre_campaign_while_leader() {
    check_campaign_while_leader(true);
}

#[test]
fn commit_after_remove_node() {
    // Create a cluster with two nodes.
    let mut r = new_test_raft(1, 5, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();

    // Begin to remove the second node.
    let cc = ConfChange {
        r#type: ConfChangeType::ConfChangeRemoveNode as i32,
        node_id: 2,
        ..Default::default()
    };
    let mut m = msg(1, 1, MessageType::MsgProp);
    m.entries = vec![conf_change_entry(ConfChangeType::ConfChangeRemoveNode, 2)];
    r.step(m).unwrap();
    // Stabilize the log and make sure nothing is committed yet.
    assert!(next_ents(&mut r).is_empty());
    let cc_index = r.raft_log.last_index();

    // While the config change is pending, make another proposal.
    r.step(prop(1, 1, b"hello")).unwrap();

    // Node 2 acknowledges the config change, committing it.
    let mut m = msg(2, 1, MessageType::MsgAppResp);
    m.index = cc_index;
    r.step(m).unwrap();
    let ents = next_ents(&mut r);
    assert_eq!(ents.len(), 2);
    assert_eq!(ents[0].r#type(), EntryType::EntryNormal);
    assert!(ents[0].data.is_empty());
    assert_eq!(ents[1].r#type(), EntryType::EntryConfChange);

    // Apply the config change. This reduces quorum requirements so the
    // pending command can now commit.
    r.apply_conf_change(&cc.as_v2()).unwrap();
    let ents = next_ents(&mut r);
    assert_eq!(ents.len(), 1);
    assert_eq!(ents[0].r#type(), EntryType::EntryNormal);
    assert_eq!(&ents[0].data[..], b"hello");
}

fn check_conf_change_check_before_campaign(v2: bool) {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);

    // Begin to remove the third node.
    let cc = ConfChange {
        r#type: ConfChangeType::ConfChangeRemoveNode as i32,
        node_id: 2,
        ..Default::default()
    };
    let (typ, data) = if v2 {
        (
            EntryType::EntryConfChangeV2,
            Bytes::from(prost::Message::encode_to_vec(&cc.as_v2())),
        )
    } else {
        (
            EntryType::EntryConfChange,
            Bytes::from(prost::Message::encode_to_vec(&cc)),
        )
    };
    let mut m = msg(1, 1, MessageType::MsgProp);
    m.entries = vec![Entry {
        r#type: typ as i32,
        data,
        ..Default::default()
    }];
    nt.send1(m);

    // Trigger campaign in node 2.
    for _ in 0..nt.raft(2).randomized_election_timeout {
        nt.raft_mut(2).tick();
    }
    // It's still a follower: the conf change is committed but not applied.
    assert_eq!(nt.raft(2).state, StateType::Follower);

    // Transfer leadership to peer 2.
    nt.send1(msg(2, 1, MessageType::MsgTransferLeader));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    // It's still a follower.
    assert_eq!(nt.raft(2).state, StateType::Follower);

    // Abort the transfer; apply the change on node 2.
    let t = nt.raft(1).election_timeout;
    for _ in 0..t {
        nt.raft_mut(1).tick();
    }
    // Apply the committed entries (not the change itself) on node 2.
    next_ents(nt.raft_mut(2));

    // Transfer leadership to peer 2 again.
    nt.send1(msg(2, 1, MessageType::MsgTransferLeader));
    assert_eq!(nt.raft(1).state, StateType::Follower);
    assert_eq!(nt.raft(2).state, StateType::Leader);

    next_ents(nt.raft_mut(1));

    // Trigger campaign in node 1.
    for _ in 0..nt.raft(1).randomized_election_timeout {
        nt.raft_mut(1).tick();
    }
    assert_eq!(nt.raft(1).state, StateType::Candidate);
}

#[test]
fn conf_change_check_before_campaign() {
    check_conf_change_check_before_campaign(false);
}

#[test]
fn conf_change_v2_check_before_campaign() {
    check_conf_change_check_before_campaign(true);
}

#[test]
fn undecodable_conf_change_proposal_becomes_a_normal_entry() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    let mut m = msg(1, 1, MessageType::MsgProp);
    m.entries = vec![Entry {
        r#type: EntryType::EntryConfChangeV2 as i32,
        data: Bytes::from_static(&[0xff, 0xff, 0xff]),
        ..Default::default()
    }];
    r.step(m).unwrap();
    let last = r.raft_log.last_index();
    let e = &r.raft_log.entries(last, NO_LIMIT).unwrap()[0];
    assert_eq!(e.r#type(), EntryType::EntryNormal);
    assert!(e.data.is_empty());
}

// ---------------------------------------------------------------------------
// Leadership transfer.

fn check_leader_transfer_state(r: &Raft<MemStorage>, state: StateType, lead: u64) {
    assert_eq!(r.state, state);
    assert_eq!(r.lead, lead);
    assert_eq!(r.lead_transferee, NONE);
}

#[test]
fn leader_transfer_to_up_to_date_node() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).lead, 1);
    // Transfer leadership to 2.
    nt.send1(msg(2, 1, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Follower, 2);
    // After some log replication, transfer leadership back to 1.
    nt.send1(prop(1, 1, b""));
    nt.send1(msg(1, 2, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn leader_transfer_to_up_to_date_node_from_follower() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    // Transfer leadership to 2, asked of 2 (a follower).
    nt.send1(msg(2, 2, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Follower, 2);
    nt.send1(prop(1, 1, b""));
    nt.send1(msg(1, 1, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn leader_transfer_with_check_quorum() {
    let mut nt = Network::with_config(quorum_config, vec![Peer::New, Peer::New, Peer::New]);
    for id in 1..=3 {
        let r = nt.raft_mut(id);
        r.randomized_election_timeout = r.election_timeout + id as usize;
    }
    // Let node 2's election timeout pass so it can vote for 1.
    let t = nt.raft(2).election_timeout;
    for _ in 0..t {
        nt.raft_mut(2).tick();
    }
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).lead, 1);
    // Transfer leadership to 2: the transfer vote breaks 3's lease.
    nt.send1(msg(2, 1, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Follower, 2);
    nt.send1(prop(1, 1, b""));
    nt.send1(msg(1, 2, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn leader_transfer_to_slow_follower() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    nt.isolate(3);
    nt.send1(prop(1, 1, b""));
    nt.recover();
    assert_eq!(nt.raft(1).trk.progress[&3].matched, 1);
    // Transfer to 3, which first needs to catch up.
    nt.send1(msg(3, 1, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Follower, 3);
}

#[test]
fn leader_transfer_after_snapshot() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    nt.isolate(3);
    nt.send1(prop(1, 1, b""));
    let lead = nt.raft_mut(1);
    next_ents(lead);
    let applied = lead.raft_log.applied;
    let cs = lead.trk.conf_state();
    lead.raft_log
        .store
        .create_snapshot(applied, Some(cs), Bytes::new())
        .unwrap();
    lead.raft_log.store.compact(applied).unwrap();
    nt.recover();
    assert_eq!(nt.raft(1).trk.progress[&3].matched, 1);

    // Hold the follower's answer to the snapshot until we say so.
    let filtered: std::rc::Rc<std::cell::RefCell<Option<Message>>> = Default::default();
    let f = filtered.clone();
    nt.msg_hook = Some(Box::new(move |m: &Message| {
        if m.r#type() != MessageType::MsgAppResp || m.from != 3 || m.reject {
            return true;
        }
        *f.borrow_mut() = Some(m.clone());
        false
    }));
    // Transfer leadership to 3 when node 3 is missing a snapshot.
    nt.send1(msg(3, 1, MessageType::MsgTransferLeader));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    let held = filtered
        .borrow_mut()
        .take()
        .expect("follower answered the snapshot");
    // Apply the snapshot on 3 and let the answer through.
    let follower = nt.raft_mut(3);
    let snap = follower.raft_log.next_unstable_snapshot().cloned().unwrap();
    let index = snap.metadata.as_ref().unwrap().index;
    follower.raft_log.store.apply_snapshot(snap).unwrap();
    follower.applied_snap(index);
    nt.msg_hook = None;
    nt.send1(held);
    check_leader_transfer_state(nt.raft(1), StateType::Follower, 3);
}

#[test]
fn leader_transfer_to_self_is_a_noop() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    nt.send1(msg(1, 1, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn leader_transfer_to_non_existing_node() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    nt.send1(msg(4, 1, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn leader_transfer_timeout() {
    let mut nt = leader_1_transferring_to_isolated_3();
    let (hb, el) = (nt.raft(1).heartbeat_timeout, nt.raft(1).election_timeout);
    for _ in 0..hb {
        nt.raft_mut(1).tick();
    }
    assert_eq!(nt.raft(1).lead_transferee, 3);
    for _ in 0..el - hb {
        nt.raft_mut(1).tick();
    }
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn leader_transfer_ignores_proposals() {
    let mut nt = leader_1_transferring_to_isolated_3();
    nt.send1(prop(1, 1, b""));
    assert_eq!(
        nt.raft_mut(1).step(prop(1, 1, b"")),
        Err(Error::ProposalDropped)
    );
    assert_eq!(nt.raft(1).trk.progress[&1].matched, 1);
}

#[test]
fn leader_transfer_receive_higher_term_vote() {
    let mut nt = leader_1_transferring_to_isolated_3();
    let mut m = msg_term(2, 2, MessageType::MsgHup, 0);
    m.index = 1;
    nt.send1(m);
    check_leader_transfer_state(nt.raft(1), StateType::Follower, 2);
}

#[test]
fn leader_transfer_remove_node() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    nt.ignore(MessageType::MsgTimeoutNow);
    // The leadTransferee is removed when leadership transferring.
    nt.send1(msg(3, 1, MessageType::MsgTransferLeader));
    assert_eq!(nt.raft(1).lead_transferee, 3);
    nt.raft_mut(1)
        .apply_conf_change(&cc_v2(ConfChangeType::ConfChangeRemoveNode, 3))
        .unwrap();
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn leader_transfer_demote_node() {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    nt.ignore(MessageType::MsgTimeoutNow);
    nt.send1(msg(3, 1, MessageType::MsgTransferLeader));
    assert_eq!(nt.raft(1).lead_transferee, 3);
    // Demote 3 through a joint configuration.
    let enter = ConfChangeV2 {
        changes: vec![
            crate::raftpb::ConfChangeSingle {
                r#type: ConfChangeType::ConfChangeRemoveNode as i32,
                node_id: 3,
            },
            crate::raftpb::ConfChangeSingle {
                r#type: ConfChangeType::ConfChangeAddLearnerNode as i32,
                node_id: 3,
            },
        ],
        ..Default::default()
    };
    nt.raft_mut(1).apply_conf_change(&enter).unwrap();
    // Leave the joint config.
    nt.raft_mut(1)
        .apply_conf_change(&ConfChangeV2::default())
        .unwrap();
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

/// Three nodes, 1 leads and has started a transfer to 3, which is cut off
/// and so never catches up.
fn leader_1_transferring_to_isolated_3() -> Network {
    let mut nt = Network::new(vec![Peer::New, Peer::New, Peer::New]);
    nt.send1(hup(1));
    nt.isolate(3);
    nt.send1(msg(3, 1, MessageType::MsgTransferLeader));
    assert_eq!(nt.raft(1).lead_transferee, 3);
    nt
}

#[test]
fn leader_transfer_back() {
    let mut nt = leader_1_transferring_to_isolated_3();
    // Transfer leadership back to self.
    nt.send1(msg(1, 1, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn leader_transfer_second_transfer_to_another_node() {
    let mut nt = leader_1_transferring_to_isolated_3();
    // Transfer leadership to another node.
    nt.send1(msg(2, 1, MessageType::MsgTransferLeader));
    check_leader_transfer_state(nt.raft(1), StateType::Follower, 2);
}

#[test]
fn leader_transfer_second_transfer_to_same_node() {
    let mut nt = leader_1_transferring_to_isolated_3();
    let (hb, el) = (nt.raft(1).heartbeat_timeout, nt.raft(1).election_timeout);
    for _ in 0..hb {
        nt.raft_mut(1).tick();
    }
    // A second request to the same node does not restart the timeout.
    nt.send1(msg(3, 1, MessageType::MsgTransferLeader));
    for _ in 0..el - hb {
        nt.raft_mut(1).tick();
    }
    check_leader_transfer_state(nt.raft(1), StateType::Leader, 1);
}

#[test]
fn transfer_non_member_does_nothing() {
    let mut r = new_test_raft(1, 5, 1, storage_with(&[2, 3, 4], &[]));
    r.step(msg_term(2, 1, MessageType::MsgTimeoutNow, 0))
        .unwrap();
    r.step(msg_term(2, 1, MessageType::MsgVoteResp, 1)).unwrap();
    r.step(msg_term(3, 1, MessageType::MsgVoteResp, 1)).unwrap();
    assert_eq!(r.state, StateType::Follower);
}

#[test]
fn node_with_smaller_term_can_complete_election() {
    let mut nt = Network::with_config(pre_vote, vec![Peer::New, Peer::New, Peer::New]);
    for id in 1..=3 {
        nt.raft_mut(id).become_follower(1, NONE);
    }
    // Cause a network partition to isolate node 3.
    nt.cut(1, 3);
    nt.cut(2, 3);
    nt.send1(hup(1));
    assert_eq!(nt.raft(1).state, StateType::Leader);
    assert_eq!(nt.raft(2).state, StateType::Follower);

    nt.send1(hup(3));
    assert_eq!(nt.raft(3).state, StateType::PreCandidate);
    nt.send1(hup(2));

    // Check whether the term values are expected: a=3, b=3, c=1.
    assert_eq!(nt.raft(1).term, 3);
    assert_eq!(nt.raft(2).term, 3);
    assert_eq!(nt.raft(3).term, 1);
    assert_eq!(nt.raft(1).state, StateType::Follower);
    assert_eq!(nt.raft(2).state, StateType::Leader);
    assert_eq!(nt.raft(3).state, StateType::PreCandidate);

    // Recover the network then immediately isolate b which is currently the
    // leader; this is to emulate the crash of b.
    nt.recover();
    nt.cut(2, 1);
    nt.cut(2, 3);
    // Call for an election.
    nt.send1(hup(3));
    nt.send1(hup(1));
    // Do we have a leader?
    assert!(
        nt.raft(1).state == StateType::Leader || nt.raft(3).state == StateType::Leader,
        "no leader"
    );
}

// ---------------------------------------------------------------------------
// Fast log rejection.

#[test]
fn fast_log_rejection() {
    // (leader terms, follower terms, follower compact index, reject hint
    // term, reject hint index, next append term, next append index)
    type Case = (&'static [u64], &'static [u64], u64, u64, u64, u64, u64);
    let cases: [Case; 9] = [
        (
            &[1, 2, 2, 4, 4, 4, 4],
            &[1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3],
            0,
            3,
            7,
            2,
            3,
        ),
        (
            &[1, 2, 2, 3, 4, 4, 4, 5],
            &[1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3],
            0,
            3,
            8,
            3,
            4,
        ),
        (&[1, 1, 1, 1], &[1, 2, 2, 4], 0, 1, 1, 1, 1),
        (&[1, 1, 1, 1, 1, 1], &[1, 2, 2, 4], 0, 1, 1, 1, 1),
        (&[1, 1, 1, 1], &[1, 2, 2, 4, 4, 4], 0, 1, 1, 1, 1),
        (&[1, 1, 1, 4, 5], &[1, 1, 1, 4], 0, 4, 4, 4, 4),
        (
            &[2, 5, 5, 5, 5, 5, 5, 5, 5],
            &[2, 4, 4, 4, 4, 4],
            0,
            4,
            6,
            2,
            1,
        ),
        (&[2, 2, 2, 2, 2], &[2, 4, 4, 4, 4, 4, 4, 4], 0, 2, 1, 2, 1),
        // The follower's log is compacted at 5: its hint has an unknown term.
        (&[1, 1, 3], &[1, 1, 3, 3, 3], 5, 0, 3, 1, 2),
    ];
    for (i, (lterms, fterms, fcompact, hint_term, hint_index, next_term, next_index)) in
        cases.into_iter().enumerate()
    {
        let last_term = *lterms.last().unwrap();
        let last_index = lterms.len() as u64;
        let mut s1 = storage_with(&[1, 2, 3], &[]);
        s1.append(&ents_from(1, lterms)).unwrap();
        s1.set_hard_state(HardState {
            term: last_term - 1,
            commit: last_index,
            vote: 0,
        });
        let mut n1 = new_test_raft(1, 10, 1, s1);
        n1.become_candidate();
        n1.become_leader();

        let mut s2 = storage_with(&[1, 2, 3], &[]);
        s2.append(&ents_from(1, fterms)).unwrap();
        s2.set_hard_state(HardState {
            term: last_term,
            vote: 1,
            commit: 0,
        });
        let mut n2 = new_test_raft(2, 10, 1, s2);
        if fcompact != 0 {
            n2.raft_log.store.compact(fcompact).unwrap();
        }

        n2.step(msg(1, 2, MessageType::MsgHeartbeat)).unwrap();
        let msgs = read_messages(&mut n2);
        assert_eq!(msgs.len(), 1, "#{i}");
        assert_eq!(msgs[0].r#type(), MessageType::MsgHeartbeatResp, "#{i}");

        n1.step(msgs[0].clone()).unwrap();
        let msgs = read_messages(&mut n1);
        assert_eq!(msgs.len(), 1, "#{i}");
        assert_eq!(msgs[0].r#type(), MessageType::MsgApp, "#{i}");

        n2.step(msgs[0].clone()).unwrap();
        let msgs = read_messages(&mut n2);
        assert_eq!(msgs.len(), 1, "#{i}");
        assert_eq!(msgs[0].r#type(), MessageType::MsgAppResp, "#{i}");
        assert!(msgs[0].reject, "#{i}");
        assert_eq!(msgs[0].log_term, hint_term, "#{i} hint term");
        assert_eq!(msgs[0].reject_hint, hint_index, "#{i} hint index");

        n1.step(msgs[0].clone()).unwrap();
        let msgs = read_messages(&mut n1);
        assert_eq!(msgs[0].log_term, next_term, "#{i} next term");
        assert_eq!(msgs[0].index, next_index, "#{i} next index");
    }
}

#[test]
fn log_replication_with_reordered_message() {
    let mut r1 = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r1.become_candidate();
    r1.become_leader();
    read_messages(&mut r1);
    r1.trk.progress.get_mut(&2).unwrap().become_replicate();

    let mut r2 = new_test_raft(2, 10, 1, storage_with(&[1, 2], &[]));

    // r1 sends 2 MsgApp messages to r2.
    r1.step(prop(1, 1, b"a")).unwrap();
    let req1 = read_messages(&mut r1).remove(0);
    r1.step(prop(1, 1, b"b")).unwrap();
    let req2 = read_messages(&mut r1).remove(0);

    // r2 receives the second MsgApp first due to reordering.
    r2.step(req2).unwrap();
    let resp2 = read_messages(&mut r2).remove(0);
    // r2 rejects req2.
    assert!(resp2.reject);
    assert_eq!(resp2.reject_hint, 0);
    assert_eq!(resp2.index, 2);

    // r2 handles the first MsgApp and responds to r1.
    r2.step(req1).unwrap();
    let resp1 = read_messages(&mut r2).remove(0);
    assert!(!resp1.reject);
    assert_eq!(resp1.index, 2);

    // r1 receives the responses in order and sends r2 what it misses.
    r1.step(resp2).unwrap();
    let m = read_messages(&mut r1).remove(0);
    assert_eq!(m.index, 0);
    r1.step(resp1).unwrap();
    // The stale rejection moved r2 to probe; the ack moves it back, and the
    // leader sends the last entry.
    let m = read_messages(&mut r1).remove(0);
    assert_eq!(m.index, 2);
    assert_eq!(m.entries.len(), 1);
    assert_eq!(m.entries[0].index, 3);
}

// ---------------------------------------------------------------------------
// Forgetting the leader.

#[test]
fn forget_leader_only_on_followers_without_lease_reads() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_follower(1, 2);
    r.forget_leader().unwrap();
    assert_eq!(r.lead, NONE);

    let mut c = test_config(1, 10, 1);
    c.check_quorum = true;
    c.read_only_option = ReadOnlyOption::LeaseBased;
    let mut r = Raft::new(&c, storage_with(&[1, 2], &[])).unwrap();
    r.become_follower(1, 2);
    r.forget_leader().unwrap();
    assert_eq!(r.lead, 2, "lease-based reads keep the leader");

    let mut r = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
    r.become_candidate();
    r.become_leader();
    r.forget_leader().unwrap();
    assert_eq!(r.lead, 1);
}

// ---------------------------------------------------------------------------
// Joint configurations.

#[test]
fn auto_leave_joint_is_proposed_once_the_entering_change_applies() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1], &[]));
    r.become_candidate();
    r.become_leader();
    advance_messages_after_append(&mut r);
    next_ents(&mut r);
    let enter = ConfChangeV2 {
        transition: crate::raftpb::ConfChangeTransition::ConfChangeTransitionJointImplicit as i32,
        changes: vec![crate::raftpb::ConfChangeSingle {
            r#type: ConfChangeType::ConfChangeAddNode as i32,
            node_id: 2,
        }],
        ..Default::default()
    };
    let mut m = msg(1, 1, MessageType::MsgProp);
    m.entries = vec![Entry {
        r#type: EntryType::EntryConfChangeV2 as i32,
        data: Bytes::from(prost::Message::encode_to_vec(&enter)),
        ..Default::default()
    }];
    r.step(m).unwrap();
    let ents = next_ents(&mut r);
    assert_eq!(ents.last().unwrap().r#type(), EntryType::EntryConfChangeV2);
    r.apply_conf_change(&enter).unwrap();
    assert!(r.trk.config.auto_leave);
    let before = r.raft_log.last_index();
    // Applying up to the pending index proposes leaving the joint config.
    let applied = r.raft_log.applied;
    r.applied_to(applied, 0);
    assert_eq!(r.raft_log.last_index(), before + 1);
    let e = &r.raft_log.entries(before + 1, NO_LIMIT).unwrap()[0];
    assert_eq!(e.r#type(), EntryType::EntryConfChangeV2);
    assert!(e.data.is_empty());
}

#[test]
fn pre_vote_rejection_at_term_zero_does_not_panic() {
    // A node that never saw a term, with a longer log, rejects a pre-vote.
    let mut s = storage_with(&[1, 2], &[]);
    s.append(&[ent(1, 1), ent(1, 2)]).unwrap();
    let mut r = new_test_raft(1, 10, 1, s);
    assert_eq!(r.term, 0);
    let mut m = msg_term(2, 1, MessageType::MsgPreVote, 1);
    m.index = 1;
    m.log_term = 1;
    r.step(m).unwrap();
    let msgs = read_messages(&mut r);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].r#type(), MessageType::MsgPreVoteResp);
    assert!(msgs[0].reject);
    assert_eq!(msgs[0].term, 0);

    // The pre-candidate counts the term-less rejection as a rejection.
    let mut c = test_config(2, 10, 1);
    c.pre_vote = true;
    let mut cand = Raft::new(&c, storage_with(&[1, 2], &[])).unwrap();
    cand.step(hup(2)).unwrap();
    advance_messages_after_append(&mut cand);
    assert_eq!(cand.state, StateType::PreCandidate);
    cand.step(msgs[0].clone()).unwrap();
    assert_eq!(cand.state, StateType::Follower);
    assert_eq!(cand.term, 0);
}

#[test]
fn conf_change_with_unknown_transition_becomes_a_normal_entry() {
    let mut r = new_test_raft(1, 10, 1, storage_with(&[1, 2], &[]));
    r.become_candidate();
    r.become_leader();
    let cc = ConfChangeV2 {
        transition: 42,
        changes: vec![crate::raftpb::ConfChangeSingle {
            r#type: ConfChangeType::ConfChangeAddNode as i32,
            node_id: 3,
        }],
        ..Default::default()
    };
    let mut m = msg(1, 1, MessageType::MsgProp);
    m.entries = vec![Entry {
        r#type: EntryType::EntryConfChangeV2 as i32,
        data: Bytes::from(prost::Message::encode_to_vec(&cc)),
        ..Default::default()
    }];
    r.step(m).unwrap();
    let last = r.raft_log.last_index();
    let e = &r.raft_log.entries(last, NO_LIMIT).unwrap()[0];
    assert_eq!(e.r#type(), EntryType::EntryNormal);
    assert_eq!(r.pending_conf_index, 0, "no conf change became pending");
}

#[test]
fn snapshot_at_the_end_of_the_index_space_does_not_panic() {
    for index in [u64::MAX, u64::MAX - 1, MAX_INDEX, MAX_INDEX + 1] {
        let mut sm = new_test_raft(2, 10, 1, storage_with(&[1, 2], &[]));
        let mut m = msg_term(1, 2, MessageType::MsgSnap, 2);
        m.snapshot = Some(Box::new(test_snap(index, 2, &[1, 2], &[])));
        sm.step(m).unwrap();
        read_messages(&mut sm);
        // Appends after it cannot panic either.
        let mut m = msg_term(1, 2, MessageType::MsgApp, 2);
        m.index = index;
        m.log_term = 2;
        m.commit = index;
        m.entries = vec![ent(2, index.wrapping_add(1))];
        sm.step(m).unwrap();
        read_messages(&mut sm);
    }
}
