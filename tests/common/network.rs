//! A small in-memory cluster for the scenario tests (raft_paper, raft_flow,
//! raft_snapshot, ...): `RawNode`s over `MemStorage`, driven the way a
//! synchronous application drives them (persist, send, apply, advance), and a
//! `Network` that delivers messages between them in FIFO order, with links
//! that can be cut and message types that can be dropped.
//!
//! Nothing here is random: a dropped link drops every message on it, so a
//! scenario replays identically on every run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use corelog::raft::{Config, MemStorage, NO_LIMIT, RawNode, ReadState, Ready, StateType};
use corelog::raftpb::{
    ConfChange, ConfChangeV2, ConfState, Entry, EntryType, HardState, Message, MessageType,
};
use prost::Message as _;

pub type Node = RawNode<MemStorage>;

/// The configuration etcd's scenario tests use: no size limit per message,
/// 256 inflight appends.
pub fn config(id: u64, election: usize, heartbeat: usize) -> Config {
    Config {
        id,
        election_tick: election,
        heartbeat_tick: heartbeat,
        max_size_per_msg: NO_LIMIT,
        max_inflight_msgs: 256,
        ..Config::new(id)
    }
}

/// A fresh storage whose bootstrap configuration has these voters.
pub fn storage_with_peers(voters: &[u64]) -> MemStorage {
    storage_with(voters, &[])
}

/// A fresh storage whose bootstrap configuration has these voters and
/// learners.
pub fn storage_with(voters: &[u64], learners: &[u64]) -> MemStorage {
    MemStorage::new_with_conf_state(ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        ..Default::default()
    })
}

/// Ids 1..=n.
pub fn ids_by_size(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

/// A node with etcd's test config (election 10, heartbeat 1) and a fresh
/// storage with these voters.
pub fn new_node(id: u64, voters: &[u64]) -> Node {
    new_node_with(config(id, 10, 1), storage_with_peers(voters))
}

pub fn new_node_with(cfg: Config, store: MemStorage) -> Node {
    RawNode::new(&cfg, store).expect("test config and storage are valid")
}

/// A node over `store` after `hs` was persisted (as on a restart).
pub fn new_node_with_state(cfg: Config, mut store: MemStorage, hs: HardState) -> Node {
    store.set_hard_state(hs);
    new_node_with(cfg, store)
}

/// Entries `first, first+1, ...` with the given terms and no data.
pub fn ents_with_terms(first: u64, terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry {
            term,
            index: first + i as u64,
            ..Default::default()
        })
        .collect()
}

/// A normal entry with data.
pub fn data_entry(term: u64, index: u64, data: &'static [u8]) -> Entry {
    Entry {
        term,
        index,
        data: Bytes::from_static(data),
        ..Default::default()
    }
}

/// A message of type `t` from `from` to `to` at `term`; the rest default.
pub fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    Message {
        r#type: t as i32,
        from,
        to,
        term,
        ..Default::default()
    }
}

/// A local proposal of one entry with `data`.
pub fn prop(id: u64, data: &'static [u8]) -> Message {
    Message {
        entries: vec![Entry {
            data: Bytes::from_static(data),
            ..Default::default()
        }],
        ..msg(MessageType::MsgProp, id, id, 0)
    }
}

/// What a follower that accepted the MsgApp `m` answers.
pub fn accept_and_reply(m: &Message) -> Message {
    assert_eq!(m.r#type(), MessageType::MsgApp, "only a MsgApp is accepted");
    Message {
        index: m.index + m.entries.len() as u64,
        ..msg(MessageType::MsgAppResp, m.to, m.from, m.term)
    }
}

/// Sorts messages by recipient, then type, then sender: etcd's order for
/// comparing broadcasts.
pub fn sort_msgs(msgs: &mut [Message]) {
    msgs.sort_by_key(|m| (m.to, m.r#type, m.from));
}

/// Everything a node handed out while its Readys were drained.
#[derive(Debug, Default)]
pub struct Drained {
    pub messages: Vec<Message>,
    /// Entries persisted to the log (in order; a rewrite appears again).
    pub entries: Vec<Entry>,
    pub committed_entries: Vec<Entry>,
    pub read_states: Vec<ReadState>,
    pub hard_state: Option<HardState>,
    pub snapshot_applied: bool,
}

/// Handles one Ready as a synchronous application would: persist the hard
/// state, snapshot and entries, apply conf changes among the committed
/// entries, then advance.
pub fn handle_ready(node: &mut Node, rd: &Ready) {
    let store = node.store_mut();
    if let Some(hs) = rd.hard_state {
        store.set_hard_state(hs);
    }
    if let Some(snap) = &rd.snapshot {
        store
            .apply_snapshot(snap.clone())
            .expect("a Ready's snapshot is newer than the storage's");
    }
    store
        .append(&rd.entries)
        .expect("a Ready's entries follow the log");
    // The storage's ConfState stays the one of its snapshot (snapshots
    // taken by tests name theirs), as a restart would need.
    for e in &rd.committed_entries {
        match e.r#type() {
            EntryType::EntryNormal => {}
            EntryType::EntryConfChange => {
                let cc = ConfChange::decode(e.data.clone()).expect("committed conf change");
                node.apply_conf_change(&cc);
            }
            EntryType::EntryConfChangeV2 => {
                let cc = ConfChangeV2::decode(e.data.clone()).expect("committed conf change");
                node.apply_conf_change(&cc);
            }
        }
    }
}

/// Drains every Ready of `node`, handling each (see `handle_ready`), and
/// returns what they carried.
pub fn drain(node: &mut Node) -> Drained {
    let mut out = Drained::default();
    while node.has_ready() {
        let mut rd = node.ready();
        handle_ready(node, &rd);
        out.messages.append(&mut rd.messages);
        out.entries.extend(rd.entries.iter().cloned());
        out.committed_entries
            .extend(rd.committed_entries.iter().cloned());
        out.read_states.append(&mut rd.read_states);
        if rd.hard_state.is_some() {
            out.hard_state = rd.hard_state;
        }
        out.snapshot_applied |= rd.snapshot.is_some();
        node.advance(rd);
    }
    out
}

/// The messages a node sends once its pending Readys are handled.
pub fn read_messages(node: &mut Node) -> Vec<Message> {
    drain(node).messages
}

/// Makes `node` leader of its configuration without a network: it
/// campaigns, every other voter grants its vote, and every follower accepts
/// the empty entry of the new term, which commits and is applied. What the
/// leader sends afterwards (the new commit index) is discarded. Returns the
/// index of that entry.
pub fn elect(node: &mut Node) -> u64 {
    node.campaign().expect("campaign");
    drain(node);
    let (id, term) = (node.raft.id, node.raft.term);
    let voters: Vec<u64> = node.raft.trk.config.voters.ids().into_iter().collect();
    for v in voters.into_iter().filter(|&v| v != id) {
        if node.raft.state == StateType::Leader {
            break;
        }
        let _ = node.raft.step(msg(MessageType::MsgVoteResp, v, id, term));
    }
    assert_eq!(node.raft.state, StateType::Leader, "granted votes elect");
    for m in read_messages(node) {
        if m.r#type() == MessageType::MsgApp {
            node.raft.step(accept_and_reply(&m)).expect("step");
        }
    }
    drain(node);
    assert_eq!(
        node.raft.raft_log.committed,
        node.raft.raft_log.last_index(),
        "the empty entry of the new term commits"
    );
    node.raft.raft_log.committed
}

/// Several nodes exchanging messages. Messages to ids without a node, on a
/// cut link, or of an ignored type are dropped.
pub struct Network {
    pub peers: BTreeMap<u64, Node>,
    dropped: BTreeSet<(u64, u64)>,
    ignored: BTreeSet<i32>,
    /// Every message handed to `send` (delivered or not), in order.
    pub trace: Vec<Message>,
    /// The read states each node handed out, in order.
    pub read_states: BTreeMap<u64, Vec<ReadState>>,
    /// The entries each node applied, in order.
    pub applied: BTreeMap<u64, Vec<Entry>>,
}

impl Network {
    /// A cluster of nodes `ids` with etcd's test config.
    pub fn new(ids: &[u64]) -> Network {
        Network::new_with_config(ids, |_| {})
    }

    /// A cluster of nodes `ids`, each config adjusted by `f`.
    pub fn new_with_config(ids: &[u64], f: impl Fn(&mut Config)) -> Network {
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut cfg = config(id, 10, 1);
                f(&mut cfg);
                new_node_with(cfg, storage_with_peers(ids))
            })
            .collect();
        Network::from_nodes(nodes)
    }

    /// A network over prepared nodes.
    pub fn from_nodes(nodes: Vec<Node>) -> Network {
        let mut peers = BTreeMap::new();
        for mut n in nodes {
            // Start from a clean slate: nothing pending from construction.
            drain(&mut n);
            peers.insert(n.raft.id, n);
        }
        Network {
            peers,
            dropped: BTreeSet::new(),
            ignored: BTreeSet::new(),
            trace: Vec::new(),
            read_states: BTreeMap::new(),
            applied: BTreeMap::new(),
        }
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.peers[&id]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        self.peers.get_mut(&id).expect("no such node")
    }

    /// Steps each message into its recipient (with `Raft::step`, so local
    /// messages such as MsgHup and MsgProp work too), and keeps delivering
    /// what the recipients send until the network is quiet.
    pub fn send(&mut self, msgs: Vec<Message>) {
        let mut queue: VecDeque<Message> = msgs.into();
        while let Some(m) = queue.pop_front() {
            self.trace.push(m.clone());
            let to = m.to;
            let Some(p) = self.peers.get_mut(&to) else {
                continue;
            };
            let _ = p.raft.step(m);
            let out = self.collect(to);
            queue.extend(out.into_iter().filter(|m| self.delivers(m)));
        }
    }

    /// Delivers whatever the nodes have pending (e.g. after ticks or direct
    /// calls on a node), until the network is quiet.
    pub fn flush(&mut self) {
        let mut pending = Vec::new();
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for id in ids {
            pending.extend(self.collect(id));
        }
        pending.retain(|m| self.delivers(m));
        if !pending.is_empty() {
            self.send(pending);
        }
    }

    /// Drains node `id`'s Readys, records its read states and applied
    /// entries, and returns what it sends.
    fn collect(&mut self, id: u64) -> Vec<Message> {
        let Some(p) = self.peers.get_mut(&id) else {
            return Vec::new();
        };
        let out = drain(p);
        self.read_states
            .entry(id)
            .or_default()
            .extend(out.read_states);
        self.applied
            .entry(id)
            .or_default()
            .extend(out.committed_entries);
        out.messages
    }

    fn delivers(&self, m: &Message) -> bool {
        !self.ignored.contains(&m.r#type) && !self.dropped.contains(&(m.from, m.to))
    }

    /// Node `id` campaigns (MsgHup) and the election runs to completion.
    pub fn campaign(&mut self, id: u64) {
        self.send(vec![msg(MessageType::MsgHup, id, id, 0)]);
    }

    /// Node `id` is asked to propose `data`.
    pub fn propose(&mut self, id: u64, data: &'static [u8]) {
        self.send(vec![prop(id, data)]);
    }

    /// Ticks node `id` `n` times, delivering what it sends after each tick.
    pub fn tick(&mut self, id: u64, n: usize) {
        for _ in 0..n {
            self.node_mut(id).tick();
            self.flush();
        }
    }

    /// Drops every message from `from` to `to`.
    pub fn drop_link(&mut self, from: u64, to: u64) {
        self.dropped.insert((from, to));
    }

    /// Drops every message between `a` and `b`, both ways.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.drop_link(a, b);
        self.drop_link(b, a);
    }

    /// Cuts `id` off from every other node.
    pub fn isolate(&mut self, id: u64) {
        let others: Vec<u64> = self.peers.keys().copied().filter(|&o| o != id).collect();
        for o in others {
            self.cut(id, o);
        }
    }

    /// Drops every message of type `t`.
    pub fn ignore(&mut self, t: MessageType) {
        self.ignored.insert(t as i32);
    }

    /// Heals every link and stops ignoring message types.
    pub fn recover(&mut self) {
        self.dropped.clear();
        self.ignored.clear();
    }

    /// The state of node `id`.
    pub fn state(&self, id: u64) -> StateType {
        self.node(id).raft.state
    }
}
