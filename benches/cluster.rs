//! Proposals per second and commit latency of the runtime, end to end
//! through `Node::propose`: one member, one shard, one group (replication
//! factor 1, so a commit is the member's own durable write), 128-byte
//! records, fsync on (every flush is a linked write + fdatasync).
//!
//! `batch` records travel as one entry (a client batch is one entry);
//! `clients` tasks on the shard each propose and wait, in a loop, so
//! `clients` entries are in flight at once. The disk's fsync rate drifts
//! several-fold on this shared machine, so the shapes run interleaved:
//! `CORELOG_BENCH_ROUNDS` rounds (default 3), each running every shape
//! for `CORELOG_BENCH_SECS` seconds (default 2) after a warm-up of 0.5 s
//! on a fresh directory whose spare segment is zero-filled first. A row
//! reports the median over rounds of entries/s (and records/s), the
//! latency of one proposal (from the call to its answer: committed and
//! applied) at p50 / p99 / max over all rounds, and WAL flushes per
//! second. `CORELOG_BENCH_DIR` says where the WAL goes (default: the
//! temporary directory, which must not be a tmpfs for the fsync to mean
//! anything).
//!
//! `cargo bench --bench cluster`

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::cluster::{Cluster, Member};
use corelog::raft::StateType;
use corelog::shard::{CpuPlacement, MemberConfig, MemberRuntime, NullApply, RuntimeConfig};

struct Row {
    /// The disk's own rate just before: 128-byte pwrite + fdatasync per
    /// second into a zero-filled file.
    raw_fsyncs: f64,
    entries: u64,
    secs: f64,
    lat_us: Vec<u32>,
    flushes: u64,
}

const SHAPES: [(usize, usize); 6] = [(1, 1), (1, 16), (1, 64), (64, 1), (64, 16), (64, 64)];

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
        "runtime: 1 member, 1 shard, 1 group, 128-byte records, fsync on, \
         {rounds} rounds x {secs} s per shape"
    );
    let mut rows: Vec<Vec<Row>> = SHAPES.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, &(batch, clients)) in SHAPES.iter().enumerate() {
            let dir = tempfile::tempdir_in(&base).unwrap();
            let raw = raw_fsyncs(dir.path(), 0.5);
            let mut r = run(dir.path(), batch, clients, secs);
            r.raw_fsyncs = raw;
            rows[i].push(r);
        }
    }
    println!(
        "{:>6} {:>8} {:>12} {:>12} {:>9} {:>9} {:>9} {:>10} {:>10}  entries/s per round (raw fsyncs/s)",
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
    for ((batch, clients), rs) in SHAPES.iter().zip(&rows) {
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
        let pct = |p: f64| l[((l.len() as f64 - 1.0) * p) as usize];
        let fps: f64 = rs.iter().map(|r| r.flushes as f64).sum::<f64>()
            / rs.iter().map(|r| r.secs).sum::<f64>();
        println!(
            "{:>6} {:>8} {:>12.0} {:>12.0} {:>9} {:>9} {:>9} {:>10.0} {:>10.0}  {}",
            batch,
            clients,
            med,
            med * *batch as f64,
            pct(0.5),
            pct(0.99),
            l[l.len() - 1],
            fps,
            raw[raw.len() / 2],
            per_round.join(" ")
        );
    }
}

/// 128-byte `pwrite` + `fdatasync` per second, for `secs`, into a
/// zero-filled, synced file (the state of a WAL segment): what the disk
/// gives a single writer right now.
fn raw_fsyncs(dir: &std::path::Path, secs: f64) -> f64 {
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

fn run(dir: &std::path::Path, batch: usize, clients: usize, secs: f64) -> Row {
    let m = Member {
        id: 1,
        name: "bench".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], 27_000)),
        client_addr: SocketAddr::from(([127, 0, 0, 1], 27_500)),
        shards: 1,
    };
    let cluster = Arc::new(Cluster::new(1, vec![m], 1, 1).unwrap());
    let cfg = MemberConfig {
        data_dir: dir.to_path_buf(),
        cluster,
        member: 1,
        runtime: RuntimeConfig::default(),
        apply: NullApply::factory(),
        peers: None,
        cpus: CpuPlacement::Auto,
    };
    let rt = MemberRuntime::start(cfg).unwrap();
    let shard = &rt.shards()[0];
    let row = shard
        .call(move |s| async move {
            // The first spare segment's zero-fill is a one-off cost of a
            // new directory: not what this measures.
            s.wal_cell().borrow_mut().wait_prepared();
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
    rt.stop().unwrap();
    row
}
