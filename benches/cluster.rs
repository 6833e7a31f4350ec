//! Proposals per second and commit latency of the runtime, end to end
//! through `Node::propose`, 128-byte records, fsync on (every flush is a
//! linked write + fdatasync):
//!
//! - one member, one shard, one group (replication factor 1: a commit is
//!   the member's own durable write);
//! - three members in this process, one shard each, one group of three
//!   replicas, over TCP on 127.0.0.1 (the leader's write and the
//!   followers' writes and acknowledgements; on this 2-CPU machine three
//!   shard threads share two CPUs).
//!
//! `batch` records travel as one entry (a client batch is one entry);
//! `clients` tasks on the leader's shard each propose and wait, in a
//! loop, so `clients` entries are in flight at once. The disk's fsync rate
//! drifts several-fold on this shared machine, so the shapes run
//! interleaved: `CORELOG_BENCH_ROUNDS` rounds (default 3), each running
//! every shape for `CORELOG_BENCH_SECS` seconds (default 2) after a
//! warm-up of 0.5 s on fresh directories whose spare segments are
//! zero-filled first, right after 0.5 s of the disk's own rate (128-byte
//! pwrite + fdatasync in a loop). A row reports the median over rounds of
//! entries/s (and records/s), the latency of one proposal (from the call
//! to its answer: committed and applied on the leader) at p50 / p99 / max
//! over all rounds, the leader's WAL flushes per second, and the disk's
//! rate. `CORELOG_BENCH_DIR` says where the WALs go (default: the
//! temporary directory, which must not be a tmpfs for the fsync to mean
//! anything).
//!
//! `cargo bench --bench cluster`

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::cluster::{Cluster, Member};
use corelog::raft::StateType;
use corelog::shard::{
    CpuPlacement, MemberConfig, MemberRuntime, NullApply, RuntimeConfig, TcpSettings, tcp_peers,
};

struct Row {
    /// The disk's own rate just before: 128-byte pwrite + fdatasync per
    /// second into a zero-filled file.
    raw_fsyncs: f64,
    entries: u64,
    secs: f64,
    lat_us: Vec<u32>,
    flushes: u64,
}

/// (members, batch, clients)
const SHAPES: [(u64, usize, usize); 10] = [
    (1, 1, 1),
    (1, 1, 16),
    (1, 1, 64),
    (1, 64, 1),
    (1, 64, 16),
    (1, 64, 64),
    (3, 1, 1),
    (3, 1, 64),
    (3, 64, 1),
    (3, 64, 64),
];

fn main() {
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let secs = env("CORELOG_BENCH_SECS", 2.0);
    let rounds = env("CORELOG_BENCH_ROUNDS", 3.0) as usize;
    let base: std::path::PathBuf = std::env::var_os("CORELOG_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    println!(
        "runtime: 1 shard per member, 1 group, 128-byte records, fsync on, \
         {rounds} rounds x {secs} s per shape"
    );
    let mut rows: Vec<Vec<Row>> = SHAPES.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, &(members, batch, clients)) in SHAPES.iter().enumerate() {
            let dir = tempfile::tempdir_in(&base).unwrap();
            let raw = raw_fsyncs(dir.path(), 0.5);
            let mut r = run(dir.path(), members, batch, clients, secs);
            r.raw_fsyncs = raw;
            rows[i].push(r);
        }
    }
    println!(
        "{:>7} {:>5} {:>7} {:>10} {:>10} {:>7} {:>7} {:>7} {:>9} {:>8}  entries/s per round (raw fsyncs/s)",
        "members",
        "batch",
        "clients",
        "entries/s",
        "records/s",
        "p50 us",
        "p99 us",
        "max us",
        "flushes/s",
        "raw fs/s"
    );
    for ((members, batch, clients), rs) in SHAPES.iter().zip(&rows) {
        let mut eps: Vec<f64> = rs.iter().map(|r| r.entries as f64 / r.secs).collect();
        let per_round: Vec<String> = rs
            .iter()
            .map(|r| format!("{:.0} ({:.0})", r.entries as f64 / r.secs, r.raw_fsyncs))
            .collect();
        let mut raw: Vec<f64> = rs.iter().map(|r| r.raw_fsyncs).collect();
        raw.sort_by(|a, b| a.total_cmp(b));
        eps.sort_by(|a, b| a.total_cmp(b));
        let med = eps[eps.len() / 2];
        let mut l: Vec<u32> = rs.iter().flat_map(|r| r.lat_us.iter().copied()).collect();
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len().max(1) - 1) as f64 * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        let fps: f64 = rs.iter().map(|r| r.flushes as f64).sum::<f64>()
            / rs.iter().map(|r| r.secs).sum::<f64>();
        println!(
            "{:>7} {:>5} {:>7} {:>10.0} {:>10.0} {:>7} {:>7} {:>7} {:>9.0} {:>8.0}  {}",
            members,
            batch,
            clients,
            med,
            med * *batch as f64,
            pct(0.5),
            pct(0.99),
            pct(1.0),
            fps,
            raw[raw.len() / 2],
            per_round.join(" ")
        );
    }
}

/// 128-byte `pwrite` + `fdatasync` per second, for `secs`, into a
/// zero-filled, synced file (the state of a WAL segment): what the disk
/// gives a single writer right now.
fn raw_fsyncs(dir: &Path, secs: f64) -> f64 {
    use std::os::unix::fs::FileExt;
    let path = dir.join("raw");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.write_all_at(&vec![0u8; 8 << 20], 0).unwrap();
    f.sync_all().unwrap();
    let buf = [0x5au8; 128];
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        f.write_all_at(&buf, (n * 128) % (8 << 20)).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    n as f64 / t0.elapsed().as_secs_f64()
}

/// A free port of 127.0.0.1 (bound to :0, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn run(dir: &Path, members: u64, batch: usize, clients: usize, secs: f64) -> Row {
    let ms: Vec<Member> = (1..=members)
        .map(|id| Member {
            id,
            name: format!("bench{id}"),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            client_addr: SocketAddr::from(([127, 0, 0, 2], 1000 + id as u16)),
            shards: 1,
        })
        .collect();
    let cluster = Arc::new(Cluster::new(1, ms, 1, members as u32).unwrap());
    let rts: Vec<MemberRuntime> = std::thread::scope(|s| {
        let hs: Vec<_> = (1..=members)
            .map(|id| {
                let cfg = MemberConfig {
                    data_dir: dir.join(format!("m{id}")),
                    cluster: cluster.clone(),
                    member: id,
                    runtime: RuntimeConfig::default(),
                    apply: NullApply::factory(),
                    peers: (members > 1).then(|| tcp_peers(TcpSettings::default())),
                    // One member: pinned as a server runs. Three in one
                    // process: left to the scheduler, not all on CPU 0.
                    cpus: if members == 1 {
                        CpuPlacement::Auto
                    } else {
                        CpuPlacement::Unbound
                    },
                };
                s.spawn(move || MemberRuntime::start(cfg).unwrap())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The first spare segment's zero-fill is a one-off cost of a new
    // directory: not what this measures.
    for rt in &rts {
        rt.shards()[0]
            .call(|s| async move { s.wal_cell().borrow_mut().wait_prepared() })
            .unwrap();
    }
    let leader = cluster.replicas(0).unwrap()[0];
    let shard = &rts[(leader - 1) as usize].shards()[0];
    let row = shard
        .call(move |s| async move {
            let node = s.node(0).unwrap();
            while node.status().role != StateType::Leader {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            // One payload shared by every proposal: a reference count, no
            // copy, so the figure is the runtime's and the disk's.
            let data = Bytes::from(vec![0x5au8; 128 * batch]);
            let warm = Instant::now() + Duration::from_millis(500);
            let end = warm + Duration::from_secs_f64(secs);
            let lat = Rc::new(RefCell::new(Vec::<u32>::with_capacity(1 << 20)));
            let count = Rc::new(RefCell::new(0u64));
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (node, data, lat, count) =
                    (node.clone(), data.clone(), lat.clone(), count.clone());
                tasks.push(glommio::spawn_local(async move {
                    loop {
                        let t0 = Instant::now();
                        if t0 >= end {
                            break;
                        }
                        node.propose(data.clone()).await.expect("proposal");
                        if t0 >= warm {
                            let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                            lat.borrow_mut().push(us);
                            *count.borrow_mut() += 1;
                        }
                    }
                }));
            }
            glommio::timer::sleep(warm.saturating_duration_since(Instant::now())).await;
            let f0 = s.stats().wal.flushes;
            for t in tasks {
                t.await;
            }
            let flushes = s.stats().wal.flushes - f0;
            let lat_us = std::mem::take(&mut *lat.borrow_mut());
            let entries = *count.borrow();
            Row {
                raw_fsyncs: 0.0,
                entries,
                secs,
                lat_us,
                flushes,
            }
        })
        .unwrap();
    for rt in rts {
        rt.stop().unwrap();
    }
    row
}
