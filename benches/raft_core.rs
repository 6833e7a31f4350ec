//! Raft core throughput: three in-memory nodes in one thread, 128-byte
//! entries proposed in batches (one MsgProp per batch), pumped through
//! Ready/advance and message delivery until committed and applied on all
//! three. The same workload runs on raft-rs (the `raft` crate) in the same
//! process, and on corelog with asynchronous storage writes (storage work
//! as messages, completed after each round's network delivery); the run
//! ends with `ratio vs raft-rs (batch 64): X` and `async vs sync (batch
//! N): X`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};

#[path = "../tests/common/mem_cluster.rs"]
mod mem_cluster;

use mem_cluster::MemCluster;

static PAYLOAD: [u8; 128] = [0x5a; 128];

/// The same workload on raft-rs 0.7.
mod raftrs {
    use bytes::Bytes;
    use raft::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot};
    use raft::storage::MemStorage;
    use raft::{Config, RawNode, StateRole, Storage};

    pub struct Cluster {
        nodes: Vec<RawNode<MemStorage>>,
        queue: Vec<Message>,
        applied: Vec<u64>,
    }

    impl Cluster {
        pub fn new() -> Cluster {
            let logger = slog::Logger::root(slog::Discard, slog::o!());
            let nodes = (1..=3u64)
                .map(|id| {
                    let store = MemStorage::new();
                    let mut snap = Snapshot::default();
                    snap.mut_metadata().index = 1;
                    snap.mut_metadata().term = 1;
                    snap.mut_metadata().set_conf_state(ConfState {
                        voters: vec![1, 2, 3],
                        ..Default::default()
                    });
                    store.wl().apply_snapshot(snap).expect("snapshot");
                    let cfg = Config {
                        id,
                        election_tick: 10,
                        heartbeat_tick: 1,
                        max_size_per_msg: 1024 * 1024,
                        max_inflight_msgs: 256,
                        ..Default::default()
                    };
                    RawNode::new(&cfg, store, &logger).expect("config")
                })
                .collect();
            let mut c = Cluster {
                nodes,
                queue: Vec::with_capacity(64),
                applied: vec![1; 3],
            };
            c.nodes[0].campaign().expect("campaign");
            c.pump();
            assert_eq!(c.nodes[0].raft.state, StateRole::Leader);
            c
        }

        pub fn propose_batch(&mut self, batch: usize, payload: &Bytes) -> u64 {
            let mut m = Message::default();
            m.set_msg_type(MessageType::MsgPropose);
            m.from = 1;
            m.to = 1;
            m.entries = (0..batch)
                .map(|_| Entry {
                    data: payload.clone(),
                    ..Default::default()
                })
                .collect::<Vec<_>>()
                .into();
            self.nodes[0].step(m).expect("leader takes the proposal");
            let target = self.nodes[0].raft.raft_log.last_index();
            self.pump();
            debug_assert!(self.applied.iter().all(|&a| a >= target));
            target
        }

        fn pump(&mut self) {
            loop {
                let mut active = false;
                for i in 0..self.nodes.len() {
                    let node = &mut self.nodes[i];
                    if !node.has_ready() {
                        continue;
                    }
                    active = true;
                    let mut rd = node.ready();
                    self.queue.extend(rd.take_messages());
                    if !rd.snapshot().is_empty() {
                        let s = rd.snapshot().clone();
                        node.store().wl().apply_snapshot(s).expect("snapshot");
                    }
                    if let Some(last) = rd.committed_entries().last() {
                        self.applied[i] = last.index;
                    }
                    node.store().wl().append(rd.entries()).expect("append");
                    if let Some(hs) = rd.hs() {
                        node.store().wl().set_hardstate(hs.clone());
                    }
                    self.queue.extend(rd.take_persisted_messages());
                    let mut light = node.advance(rd);
                    if let Some(commit) = light.commit_index() {
                        node.store().wl().mut_hard_state().commit = commit;
                    }
                    self.queue.extend(light.take_messages());
                    if let Some(last) = light.committed_entries().last() {
                        self.applied[i] = last.index;
                    }
                    node.advance_apply();
                    let first = node.store().first_index().unwrap_or(1);
                    if self.applied[i] > first + 4096 {
                        node.store().wl().compact(self.applied[i]).expect("compact");
                    }
                }
                for m in self.queue.drain(..) {
                    let to = m.to as usize - 1;
                    let _ = self.nodes[to].step(m);
                }
                if !active {
                    break;
                }
            }
        }
    }
}

fn bench_batches(c: &mut Criterion) {
    let payload = Bytes::from_static(&PAYLOAD);
    for batch in [1usize, 64] {
        let mut g = c.benchmark_group(format!("raft_core/batch_{batch}"));
        g.throughput(Throughput::Elements(batch as u64));
        g.measurement_time(Duration::from_secs(4));
        let mut ours = MemCluster::new(3);
        ours.elect_first();
        g.bench_function("corelog", |b| {
            b.iter(|| ours.propose_batch(batch, &payload))
        });
        let mut ours_async = MemCluster::with_mode(3, true);
        ours_async.elect_first();
        g.bench_function("corelog-async", |b| {
            b.iter(|| ours_async.propose_batch(batch, &payload))
        });
        let mut theirs = raftrs::Cluster::new();
        g.bench_function("raft-rs", |b| {
            b.iter(|| theirs.propose_batch(batch, &payload))
        });
        g.finish();
    }
}

/// Committed entries per second of `run`, the median of `rounds` timed
/// rounds of `batches` batches each.
fn entries_per_sec(rounds: usize, batches: usize, batch: usize, mut run: impl FnMut()) -> f64 {
    let mut rates: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batches {
                run();
            }
            (batches * batch) as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(|a, b| a.partial_cmp(b).expect("finite rates"));
    rates[rates.len() / 2]
}

/// Interleaved rounds of both implementations, so machine noise hits both.
fn print_ratios() {
    let payload = Bytes::from_static(&PAYLOAD);
    println!("\nraft core, 3 nodes in one thread, 128 B entries (median of 7 rounds):");
    for (batch, batches) in [(1usize, 20_000usize), (64, 2_000)] {
        let mut ours = MemCluster::new(3);
        ours.elect_first();
        let mut ours_async = MemCluster::with_mode(3, true);
        ours_async.elect_first();
        let mut theirs = raftrs::Cluster::new();
        let (mut o, mut a, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..7 {
            o.push(entries_per_sec(1, batches, batch, || {
                ours.propose_batch(batch, &payload);
            }));
            a.push(entries_per_sec(1, batches, batch, || {
                ours_async.propose_batch(batch, &payload);
            }));
            t.push(entries_per_sec(1, batches, batch, || {
                theirs.propose_batch(batch, &payload);
            }));
        }
        for v in [&mut o, &mut a, &mut t] {
            v.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
        }
        let (om, am, tm) = (o[3], a[3], t[3]);
        println!(
            "batch {batch:>2}: corelog {om:>12.0} entries/s, corelog async {am:>12.0} entries/s, raft-rs {tm:>12.0} entries/s"
        );
        println!("ratio vs raft-rs (batch {batch}): {:.2}", om / tm);
        println!("async vs sync (batch {batch}): {:.2}", am / om);
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_batches(&mut c);
    c.final_summary();
    print_ratios();
}
