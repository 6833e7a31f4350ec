//! The consensus core allocates per message, never per entry: proposing a
//! batch of 64 entries through a 3-node cluster until it is committed and
//! applied everywhere costs about as many heap allocations as a batch of 1.
//! A counting global allocator measures it (this test binary only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use corelog::raft::{Config, MemStorage, NO_LIMIT, RawNode};
use corelog::raftpb::{ConfState, Entry, Message};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|a| a.get())
}

struct Cluster {
    nodes: Vec<RawNode<MemStorage>>,
    queue: Vec<Message>,
}

impl Cluster {
    fn new() -> Cluster {
        let nodes = (1..=3)
            .map(|id| {
                let c = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 1,
                    max_size_per_msg: NO_LIMIT,
                    max_inflight_msgs: 256,
                    ..Default::default()
                };
                let s = MemStorage::new_with_conf_state(ConfState {
                    voters: vec![1, 2, 3],
                    ..Default::default()
                });
                RawNode::new(&c, s).unwrap()
            })
            .collect();
        let mut c = Cluster {
            nodes,
            queue: Vec::with_capacity(64),
        };
        c.nodes[0].campaign().unwrap();
        c.pump();
        c
    }

    /// Runs Ready/advance and delivery until the cluster is quiet.
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                let n = &mut self.nodes[i];
                if !n.has_ready() {
                    continue;
                }
                busy = true;
                let mut rd = n.ready();
                if let Some(s) = &rd.snapshot {
                    n.store_mut().apply_snapshot(s.clone()).unwrap();
                }
                n.store_mut().append(&rd.entries).unwrap();
                if let Some(hs) = rd.hard_state {
                    n.store_mut().set_hard_state(hs);
                }
                self.queue.append(&mut rd.messages);
                n.advance(rd);
            }
            for m in self.queue.drain(..) {
                let to = m.to as usize - 1;
                let _ = self.nodes[to].step(m);
            }
            if !busy {
                break;
            }
        }
    }

    fn applied(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.raft.raft_log.applied)
            .min()
            .unwrap()
    }

    /// Allocations to commit and apply one batch of `n` entries everywhere.
    fn allocs_for_batch(&mut self, data: &Bytes, n: usize) -> u64 {
        let target = self.nodes[0].raft.raft_log.last_index() + n as u64;
        let before = allocs();
        let entries: Vec<Entry> = (0..n)
            .map(|_| Entry {
                data: data.clone(),
                ..Default::default()
            })
            .collect();
        self.nodes[0].propose_entries(entries).unwrap();
        self.pump();
        let spent = allocs() - before;
        assert!(self.applied() >= target);
        spent
    }
}

#[test]
fn a_batch_of_64_allocates_about_as_often_as_a_batch_of_1() {
    let data = Bytes::from(vec![7u8; 128]);
    let mut c = Cluster::new();
    // Warm up the storage's and the log's buffers.
    for _ in 0..20 {
        c.allocs_for_batch(&data, 64);
        c.allocs_for_batch(&data, 1);
    }
    let one: u64 = (0..10).map(|_| c.allocs_for_batch(&data, 1)).sum::<u64>() / 10;
    let many: u64 = (0..10).map(|_| c.allocs_for_batch(&data, 64)).sum::<u64>() / 10;
    eprintln!("allocations per batch: 1 entry {one}, 64 entries {many}");
    // Vec growth in storage may add a few reallocations; 64 entries must
    // not add anything near 64.
    assert!(
        many <= one + 16,
        "batch of 64: {many} allocations, batch of 1: {one}"
    );
}
