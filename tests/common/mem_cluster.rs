//! A cluster of in-memory RawNodes in one thread, pumped through
//! Ready/advance (or, with asynchronous storage writes, through the storage
//! messages) and direct message delivery. Used by the allocation test and
//! by benches/raft_core.rs (through `#[path]`), so both measure one loop.

use bytes::Bytes;
use corelog::raft::{
    Config, LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, MemStorage, RawNode, StateType, Storage,
};
use corelog::raftpb::{ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata};

pub struct MemCluster {
    pub nodes: Vec<RawNode<MemStorage>>,
    queue: Vec<Message>,
    /// Highest index each node has applied.
    pub applied: Vec<u64>,
    /// Compact each node's storage once this many entries are applied past
    /// its first index, so long runs stay bounded in memory.
    compact_every: u64,
    /// Asynchronous storage writes: the storage messages of the current
    /// round, completed after the round's network delivery (so each write
    /// is in flight while the messages sent beside it are handled).
    storage: Vec<(usize, Message)>,
    async_writes: bool,
}

impl MemCluster {
    /// `n` voters with ids 1..=n, all starting from a snapshot at index 1.
    pub fn new(n: u64) -> MemCluster {
        MemCluster::with_mode(n, false)
    }

    /// Like `new`, every node with `Config::async_storage_writes` if
    /// `async_writes`.
    #[allow(dead_code)] // not every user of this module runs both modes
    pub fn with_mode(n: u64, async_writes: bool) -> MemCluster {
        let voters: Vec<u64> = (1..=n).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let mut store = MemStorage::new();
                store
                    .apply_snapshot(Snapshot {
                        data: Bytes::new(),
                        metadata: Some(SnapshotMetadata {
                            conf_state: Some(ConfState {
                                voters: voters.clone(),
                                ..Default::default()
                            }),
                            index: 1,
                            term: 1,
                        }),
                    })
                    .expect("fresh storage takes a snapshot");
                let cfg = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 1,
                    max_size_per_msg: 1024 * 1024,
                    max_inflight_msgs: 256,
                    async_storage_writes: async_writes,
                    ..Config::default()
                };
                RawNode::new(&cfg, store).expect("valid config")
            })
            .collect();
        MemCluster {
            nodes,
            queue: Vec::with_capacity(64),
            applied: vec![1; n as usize],
            compact_every: 4096,
            storage: Vec::new(),
            async_writes,
        }
    }

    /// Elects node 1 and pumps until every node has applied its empty entry.
    pub fn elect_first(&mut self) {
        self.nodes[0].campaign().expect("campaign");
        self.pump();
        assert_eq!(self.nodes[0].raft.state, StateType::Leader);
    }

    /// Proposes `batch` entries as one MsgProp at the leader (node 1) and
    /// pumps until all nodes applied them. Returns the last index.
    pub fn propose_batch(&mut self, batch: usize, payload: &Bytes) -> u64 {
        let entries: Vec<Entry> = (0..batch)
            .map(|_| Entry {
                data: payload.clone(),
                ..Default::default()
            })
            .collect();
        let m = Message {
            r#type: MessageType::MsgProp as i32,
            from: 1,
            to: 1,
            entries,
            ..Default::default()
        };
        self.nodes[0].step(m).expect("leader takes the proposal");
        let target = self.nodes[0].raft.raft_log.last_index();
        self.pump();
        debug_assert!(self.applied.iter().all(|&a| a >= target));
        target
    }

    /// Runs Ready/advance on every node and delivers messages until quiet.
    pub fn pump(&mut self) {
        loop {
            let mut active = false;
            for i in 0..self.nodes.len() {
                let node = &mut self.nodes[i];
                if !node.has_ready() {
                    continue;
                }
                active = true;
                let mut rd = node.ready();
                if self.async_writes {
                    // The storage work travels as messages; the rest of
                    // the Ready is a copy of it.
                    for m in rd.messages.drain(..) {
                        match m.to {
                            LOCAL_APPEND_THREAD | LOCAL_APPLY_THREAD => self.storage.push((i, m)),
                            _ => self.queue.push(m),
                        }
                    }
                    continue;
                }
                if let Some(snap) = &rd.snapshot {
                    node.store_mut()
                        .apply_snapshot(snap.clone())
                        .expect("snapshot applies");
                }
                if !rd.entries.is_empty() {
                    // `advance` does not look at the Ready's entries: hand
                    // them to the storage without cloning.
                    let ents = std::mem::take(&mut rd.entries);
                    node.store_mut().append_owned(ents).expect("append");
                }
                if let Some(hs) = &rd.hard_state {
                    node.store_mut().set_hard_state(*hs);
                }
                if let Some(last) = rd.committed_entries.last() {
                    self.applied[i] = last.index;
                }
                self.queue.append(&mut rd.messages);
                node.advance(rd);
                let first = node.store().first_index().unwrap_or(1);
                if self.applied[i] > first + self.compact_every {
                    node.store_mut()
                        .compact(self.applied[i])
                        .expect("compact below applied");
                }
            }
            for m in self.queue.drain(..) {
                let to = m.to as usize - 1;
                let _ = self.nodes[to].step(m);
            }
            for (i, mut m) in std::mem::take(&mut self.storage) {
                self.complete_storage(i, &mut m);
                active = true;
            }
            if !active {
                break;
            }
        }
    }

    /// Does the work of one storage message of node `i` (append: snapshot,
    /// entries, hard state; apply: note the applied index), then delivers
    /// its responses.
    fn complete_storage(&mut self, i: usize, m: &mut Message) {
        let node = &mut self.nodes[i];
        if m.to == LOCAL_APPEND_THREAD {
            if let Some(snap) = m.snapshot.take() {
                node.store_mut()
                    .apply_snapshot(*snap)
                    .expect("snapshot applies");
            }
            if !m.entries.is_empty() {
                let ents = std::mem::take(&mut m.entries);
                node.store_mut().append_owned(ents).expect("append");
            }
            if m.term != 0 || m.vote != 0 || m.commit != 0 {
                node.store_mut().set_hard_state(corelog::raftpb::HardState {
                    term: m.term,
                    vote: m.vote,
                    commit: m.commit,
                });
            }
        } else if let Some(last) = m.entries.last() {
            self.applied[i] = last.index;
            let first = node.store().first_index().unwrap_or(1);
            if self.applied[i] > first + self.compact_every {
                node.store_mut()
                    .compact(self.applied[i])
                    .expect("compact below applied");
            }
        }
        for r in m.responses.drain(..) {
            let to = r.to as usize - 1;
            let _ = self.nodes[to].step(r);
        }
    }
}
