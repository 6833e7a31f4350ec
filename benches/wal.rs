//! WAL throughput against the raw limits of this disk, in one run.
//!
//! For flushes of 1, 16 and 256 records of 128 B and of 4 KiB (fsync on):
//! - `wal/<n>x<size>`: `n` appends (round-robin over 8 groups) then one
//!   `flush` (one io_uring submission: write + fdatasync);
//! - `wal_inline/<n>x<size>`: the same appends, then `flush_inline`
//!   (pwrite + fdatasync on the calling thread);
//! - `raw_fdatasync/<n>x<size>`: a plain loop of pwrite + fdatasync of the
//!   same number of bytes, into a zero-filled file like a WAL segment;
//! - `raw_odirect_seq`: one large O_DIRECT sequential write (64 MiB), the
//!   disk's sequential bandwidth.
//!
//! At the end it prints appends/s and MB/s of each, then measures every
//! shape again with four flushes in turn (`paired`): a WAL flush on the
//! ring, a WAL flush inline, the same appends written and synced by TiKV's
//! raft-engine (0.4.2, default `Config`), and a raw pwrite + fdatasync of
//! the same bytes, so that all four see the same disk. It prints the
//! ratios the goals are stated in: each WAL path against raft-engine (goal:
//! at least 1.0) and against the raw fdatasync loop, the inline path
//! against the ring, and large batches against sequential bandwidth, each
//! both as a
//! ratio of rates over the run and as the median over rounds of the
//! per-round latency ratio. Payloads are distinct random bytes, so
//! raft-engine's lz4 compression of batches over 8 KiB gains nothing it
//! would not gain on real data.
//!
//! Run: `cargo bench --bench wal`. `CORELOG_BENCH_QUICK=1` skips the
//! criterion runs and gives the paired measurement 1 s per shape;
//! `CORELOG_BENCH_PAIRED_SECS=N` sets that budget (default 3 s, or 1 s in
//! quick mode). `CORELOG_BENCH_SOLO=ring|inline|re|raw` runs one side
//! alone on one shape (`CORELOG_BENCH_SHAPE`, default `1x128`) for that
//! budget, and prints its flushes and the context switches of the timed
//! loop, for counting what a flush costs with `perf stat` (run it with a
//! budget of 0 too: the difference is the flushes' share).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::raftpb::Entry;
use corelog::wal::{Options, Wal};
use criterion::Criterion;

const SEGMENT: u64 = 64 << 20;
const GROUPS: u64 = 8;
const ODIRECT_BYTES: usize = 64 << 20;

/// Random bytes that payloads are sliced from (no copy): distinct records
/// within any flush, incompressible, and no RNG cost inside the timing.
const POOL: usize = 32 << 20;

fn pool() -> &'static Bytes {
    static P: OnceLock<Bytes> = OnceLock::new();
    P.get_or_init(|| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut v = Vec::with_capacity(POOL);
        while v.len() < POOL {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        Bytes::from(v)
    })
}

/// Hands out payloads of one size, each a different slice of the pool.
struct Payloads {
    off: usize,
    size: usize,
}

impl Payloads {
    fn new(size: usize, seed: usize) -> Payloads {
        Payloads {
            off: seed % (POOL - size),
            size,
        }
    }

    fn next(&mut self) -> Bytes {
        if self.off + self.size > POOL {
            self.off = (self.off + 1) % 64;
        }
        let b = pool().slice(self.off..self.off + self.size);
        self.off += self.size;
        b
    }
}

/// Total time and iterations per benchmark id, to print the ratios.
static STATS: Mutex<BTreeMap<String, (Duration, u64)>> = Mutex::new(BTreeMap::new());

fn record(id: &str, d: Duration, iters: u64) {
    let mut s = STATS.lock().unwrap();
    let e = s.entry(id.to_string()).or_default();
    e.0 += d;
    e.1 += iters;
}

/// One WAL under a flush workload: `n` one-entry appends (of `size`
/// bytes, round-robin over `GROUPS` groups) then a flush, with retention
/// (compact everything, `gc`) every two segments so disk use stays flat
/// over a long run. Shared by the criterion and the paired measurements.
struct FlushWorkload {
    wal: Wal,
    /// `flush_inline` instead of `flush`.
    inline: bool,
    _dir: tempfile::TempDir,
    data: Payloads,
    next: [u64; GROUPS as usize],
    one: [Entry; 1],
    since_gc: usize,
    n: usize,
    size: usize,
}

impl FlushWorkload {
    fn open(n: usize, size: usize, inline: bool) -> FlushWorkload {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let mut o = Options::new(1, 0);
        o.segment_size = SEGMENT;
        o.max_flush_bytes = 8 << 20;
        let mut wal = Wal::open(dir.path(), o).unwrap();
        // The first spare segment's zero-fill is a startup cost, not a flush's.
        wal.wait_prepared();
        FlushWorkload {
            wal,
            inline,
            _dir: dir,
            data: Payloads::new(size, 0),
            next: [1; GROUPS as usize],
            one: [Entry::default()],
            since_gc: 0,
            n,
            size,
        }
    }

    /// `n` appends, then a flush with retention.
    fn flush_once(&mut self) {
        self.append(self.n);
        self.flush_and_retain(self.n);
    }

    /// `count` one-entry appends, round-robin over the groups.
    fn append(&mut self, count: usize) {
        for k in 0..count {
            let g = k as u64 % GROUPS;
            self.one[0] = Entry {
                term: 1,
                index: self.next[g as usize],
                r#type: 0,
                data: self.data.next(),
            };
            let _ = self.wal.append_entries(g, &self.one).unwrap();
            self.next[g as usize] += 1;
        }
    }

    /// Flushes `appended` records' worth, compacting and collecting every two
    /// segments.
    fn flush_and_retain(&mut self, appended: usize) {
        if self.inline {
            self.wal.flush_inline().unwrap();
        } else {
            self.wal.flush().unwrap();
        }
        self.since_gc += appended * self.size;
        if self.since_gc > 2 * SEGMENT as usize {
            for g in 0..GROUPS {
                let last = self.wal.last_index(g);
                let _ = self.wal.compact(g, last, 1).unwrap();
            }
            self.wal.gc().unwrap();
            self.since_gc = 0;
        }
    }
}

fn bench_wal(c: &mut Criterion, n: usize, size: usize, inline: bool) {
    let id = format!("{}/{n}x{size}", if inline { "wal_inline" } else { "wal" });
    let mut w = FlushWorkload::open(n, size, inline);
    c.bench_function(&id, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                w.flush_once();
            }
            let d = t.elapsed();
            record(&id, d, iters);
            d
        })
    });
}

/// CPU cost of one append on the append path (framing, crc, index, cache),
/// flushes excluded from the timing: DESIGN.md asks for a few hundred ns.
fn bench_append_cpu(c: &mut Criterion, size: usize) {
    let id = format!("append_cpu/{size}");
    let mut w = FlushWorkload::open(0, size, false);
    c.bench_function(&id, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = (iters - done).min(1024);
                let t = Instant::now();
                w.append(n as usize);
                spent += t.elapsed();
                done += n;
                w.flush_and_retain(n as usize);
            }
            spent
        })
    });
}

/// A zero-filled file of `len` bytes, synced: the state of a new segment.
fn zero_file(path: &std::path::Path, len: u64) -> std::fs::File {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    let z = vec![0u8; 1 << 20];
    for _ in 0..len >> 20 {
        f.write_all(&z).unwrap();
    }
    f.sync_all().unwrap();
    f
}

fn bench_raw_fdatasync(c: &mut Criterion, n: usize, size: usize) {
    let id = format!("raw_fdatasync/{n}x{size}");
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let path = dir.path().join("raw");
    let mut f = zero_file(&path, SEGMENT);
    // The same bytes a flush of the WAL writes, minus its framing.
    let buf = vec![0x5a; n * size];
    let mut off = 0u64;
    c.bench_function(&id, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut t = Instant::now();
            for _ in 0..iters {
                if off + buf.len() as u64 > SEGMENT {
                    // A fresh zero-filled file, outside the timing.
                    spent += t.elapsed();
                    f = zero_file(&path, SEGMENT);
                    off = 0;
                    t = Instant::now();
                }
                f.write_all_at(&buf, off).unwrap();
                f.sync_data().unwrap();
                off += buf.len() as u64;
            }
            spent += t.elapsed();
            record(&id, spent, iters);
            spent
        })
    });
}

fn bench_odirect(c: &mut Criterion) {
    let id = "raw_odirect_seq".to_string();
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let path = dir.path().join("direct");
    // O_DIRECT needs an aligned buffer: over-allocate and align by hand.
    let mut raw = vec![0x5au8; ODIRECT_BYTES + 4096];
    let skew = raw.as_ptr().align_offset(4096);
    let buf = &mut raw[skew..skew + ODIRECT_BYTES];
    buf.fill(0x5a);
    let mut g = c.benchmark_group("raw");
    g.sample_size(10);
    g.bench_function("odirect_seq", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let _ = std::fs::remove_file(&path);
                let f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(&path)
                    .unwrap();
                let t = Instant::now();
                f.write_all_at(buf, 0).unwrap();
                f.sync_data().unwrap();
                spent += t.elapsed();
            }
            record(&id, spent, iters);
            spent
        })
    });
    g.finish();
}

/// Benchmarks write where the project lives (the disk under test), not a
/// tmpfs: `CORELOG_BENCH_DIR` overrides.
fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("CORELOG_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
}

fn rate(id: &str) -> Option<f64> {
    let s = STATS.lock().unwrap();
    let (d, n) = s.get(id)?;
    (*n > 0).then(|| *n as f64 / d.as_secs_f64())
}

/// The same flush workload on raft-engine: `n` entries (of `size` random
/// bytes, round-robin over `GROUPS` groups) in one `LogBatch`, written with
/// `sync = true`, on an engine with the default `Config`. Every 256 MiB it
/// compacts every group and purges, as the WAL side collects.
struct RaftEngineWorkload {
    engine: raft_engine::Engine,
    _dir: tempfile::TempDir,
    batch: raft_engine::LogBatch,
    per_group: Vec<Vec<raft::eraftpb::Entry>>,
    data: Payloads,
    next: [u64; GROUPS as usize],
    since_purge: usize,
    n: usize,
    size: usize,
}

/// raft-engine's view of the entry type (raft-rs's protobuf `Entry`).
#[derive(Clone)]
struct ReEntries;

impl raft_engine::MessageExt for ReEntries {
    type Entry = raft::eraftpb::Entry;

    fn index(e: &Self::Entry) -> u64 {
        e.index
    }
}

impl RaftEngineWorkload {
    fn open(n: usize, size: usize) -> RaftEngineWorkload {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let cfg = raft_engine::Config {
            dir: dir.path().to_str().unwrap().to_owned(),
            ..Default::default()
        };
        RaftEngineWorkload {
            engine: raft_engine::Engine::open(cfg).unwrap(),
            _dir: dir,
            batch: raft_engine::LogBatch::default(),
            per_group: (0..GROUPS).map(|_| Vec::with_capacity(n)).collect(),
            // Another stretch of the pool than the WAL's.
            data: Payloads::new(size, POOL / 2),
            next: [1; GROUPS as usize],
            since_purge: 0,
            n,
            size,
        }
    }

    fn flush_once(&mut self) {
        for v in &mut self.per_group {
            v.clear();
        }
        for k in 0..self.n {
            let g = k % GROUPS as usize;
            self.per_group[g].push(raft::eraftpb::Entry {
                term: 1,
                index: self.next[g],
                data: self.data.next(),
                ..Default::default()
            });
            self.next[g] += 1;
        }
        for (g, v) in self.per_group.iter().enumerate() {
            if !v.is_empty() {
                self.batch
                    .add_entries::<ReEntries>(g as u64 + 1, v)
                    .unwrap();
            }
        }
        self.engine.write(&mut self.batch, true).unwrap();
        debug_assert!(self.batch.is_empty());
        self.since_purge += self.n * self.size;
        if self.since_purge > 2 * SEGMENT as usize {
            for g in 0..GROUPS {
                self.engine.compact_to(g + 1, self.next[g as usize]);
            }
            self.engine.purge_expired_files().unwrap();
            self.since_purge = 0;
        }
    }
}

/// A plain loop of pwrite + fdatasync of a flush's payload bytes into a
/// zero-filled file, re-created (outside the timing) when full.
struct RawWorkload {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    f: std::fs::File,
    buf: Vec<u8>,
    off: u64,
}

impl RawWorkload {
    fn open(n: usize, size: usize) -> RawWorkload {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let path = dir.path().join("raw");
        let f = zero_file(&path, SEGMENT);
        RawWorkload {
            _dir: dir,
            path,
            f,
            buf: pool()[..n * size].to_vec(),
            off: 0,
        }
    }

    /// Makes room for the next flush (untimed).
    fn prepare(&mut self) {
        if self.off + self.buf.len() as u64 > SEGMENT {
            self.f = zero_file(&self.path, SEGMENT);
            self.off = 0;
        }
    }

    fn flush_once(&mut self) {
        self.f.write_all_at(&self.buf, self.off).unwrap();
        self.f.sync_data().unwrap();
        self.off += self.buf.len() as u64;
    }
}

/// Rate and median latency of one side of a paired measurement.
#[derive(Clone, Default)]
struct Side {
    lat: Vec<Duration>,
}

impl Side {
    fn flushes_per_s(&self) -> f64 {
        let total: Duration = self.lat.iter().sum();
        self.lat.len() as f64 / total.as_secs_f64()
    }

    fn median(&self) -> Duration {
        let mut sorted = self.lat.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }

    /// This side against `other`: (ratio of rates over the run, median over
    /// rounds of `other`'s latency / this side's in the same round). Above
    /// 1.0 this side is faster.
    fn against(&self, other: &Side) -> (f64, f64) {
        let mut per_round: Vec<f64> = self
            .lat
            .iter()
            .zip(&other.lat)
            .map(|(x, o)| o.as_secs_f64() / x.as_secs_f64())
            .collect();
        per_round.sort_unstable_by(f64::total_cmp);
        (
            self.flushes_per_s() / other.flushes_per_s(),
            per_round.get(per_round.len() / 2).copied().unwrap_or(0.0),
        )
    }
}

/// The sides of a paired measurement, in `paired`'s order.
const RING: usize = 0;
const INLINE: usize = 1;
const ENGINE: usize = 2;
const RAW: usize = 3;

/// A WAL flush on the ring, a WAL flush inline, a raft-engine flush and a
/// raw write+fdatasync of the same bytes, timed in turn (one flush of each
/// per round, in a fresh random order each round), so that all four see
/// the same disk: on a machine shared with other work, fsync latency
/// drifts by several times within seconds, and only an interleaved
/// measurement gives a ratio that means something.
fn paired(n: usize, size: usize, budget: Duration) -> [Side; 4] {
    let mut ring = FlushWorkload::open(n, size, false);
    let mut inline = FlushWorkload::open(n, size, true);
    let mut re = RaftEngineWorkload::open(n, size);
    let mut raw = RawWorkload::open(n, size);
    let mut sides: [Side; 4] = Default::default();
    let mut order = [RING, INLINE, ENGINE, RAW];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let start = Instant::now();
    while start.elapsed() < budget {
        raw.prepare();
        for k in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(k, (x % (k as u64 + 1)) as usize);
        }
        for &which in &order {
            let t = Instant::now();
            match which {
                RING => ring.flush_once(),
                INLINE => inline.flush_once(),
                ENGINE => re.flush_once(),
                _ => raw.flush_once(),
            }
            sides[which].lat.push(t.elapsed());
        }
    }
    sides
}

/// Seconds per shape of the paired measurement.
fn paired_budget() -> Duration {
    let quick = std::env::var_os("CORELOG_BENCH_QUICK").is_some();
    let secs = std::env::var("CORELOG_BENCH_PAIRED_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(if quick { 1.0 } else { 3.0 });
    Duration::from_secs_f64(secs)
}

fn report() {
    let seq = rate("raw_odirect_seq").map(|r| r * ODIRECT_BYTES as f64 / 1e6);
    println!();
    println!("== criterion means (each run alone; drifts with other load on the disk) ==");
    for size in [128usize, 4096] {
        for n in [1usize, 16, 256] {
            let (Some(w), Some(wi), Some(r)) = (
                rate(&format!("wal/{n}x{size}")),
                rate(&format!("wal_inline/{n}x{size}")),
                rate(&format!("raw_fdatasync/{n}x{size}")),
            ) else {
                continue;
            };
            println!(
                "{:<9} wal {:>9.0} appends/s {:>7.1} MB/s | inline {:>9.0} appends/s | raw {:>6.0} flushes/s {:>7.1} MB/s | {:>4.0}% {:>4.0}%",
                format!("{n}x{size}"),
                w * n as f64,
                w * (n * size) as f64 / 1e6,
                wi * n as f64,
                r,
                r * (n * size) as f64 / 1e6,
                100.0 * w / r,
                100.0 * wi / r
            );
        }
    }
    if let Some(s) = seq {
        println!(
            "raw O_DIRECT sequential write ({} MiB): {s:.0} MB/s",
            ODIRECT_BYTES >> 20
        );
    }
    // Quick mode (`cargo test --benches`) stops here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    print_paired(seq);
}

fn print_paired(seq: Option<f64>) {
    let budget = paired_budget();
    println!();
    println!(
        "== paired: WAL on the ring, WAL inline, raft-engine 0.4.2 and raw write+fdatasync in turn, {:.1} s per shape ==",
        budget.as_secs_f64()
    );
    println!(
        "{:<9} {:>10} {:>10} {:>10} {:>9} | {:>11} {:>11} {:>11} {:>11} {:>11} | {:>8}",
        "flush",
        "ring app/s",
        "inl app/s",
        "re app/s",
        "raw fl/s",
        "ring/re",
        "inline/re",
        "ring/raw",
        "inline/raw",
        "inline/ring",
        "ring/seq"
    );
    println!(
        "{:<9} {:>10} {:>10} {:>10} {:>9} | {:>11} {:>11} {:>11} {:>11} {:>11} |",
        "", "", "", "", "", "rate round", "rate round", "rate round", "rate round", "rate round"
    );
    let pair = |(rate, round): (f64, f64)| format!("{rate:>5.2} {round:>5.2}");
    for size in [128usize, 4096] {
        for n in [1usize, 16, 256] {
            let s = paired(n, size, budget);
            let ring_mb = s[RING].flushes_per_s() * (n * size) as f64 / 1e6;
            println!(
                "{:<9} {:>10.0} {:>10.0} {:>10.0} {:>9.0} | {:>11} {:>11} {:>11} {:>11} {:>11} | {:>8}",
                format!("{n}x{size}"),
                s[RING].flushes_per_s() * n as f64,
                s[INLINE].flushes_per_s() * n as f64,
                s[ENGINE].flushes_per_s() * n as f64,
                s[RAW].flushes_per_s(),
                pair(s[RING].against(&s[ENGINE])),
                pair(s[INLINE].against(&s[ENGINE])),
                pair(s[RING].against(&s[RAW])),
                pair(s[INLINE].against(&s[RAW])),
                pair(s[INLINE].against(&s[RING])),
                seq.map_or("-".to_string(), |q| format!("{:.1}%", 100.0 * ring_mb / q))
            );
            println!(
                "{:<9} p50 latency: ring {:>7.1} us, inline {:>7.1} us, raft-engine {:>7.1} us, raw {:>7.1} us ({} rounds)",
                "",
                s[RING].median().as_secs_f64() * 1e6,
                s[INLINE].median().as_secs_f64() * 1e6,
                s[ENGINE].median().as_secs_f64() * 1e6,
                s[RAW].median().as_secs_f64() * 1e6,
                s[RING].lat.len()
            );
        }
    }
    println!(
        "a/b: above 1.0 a is faster; rate: ratio of flushes/s over the run; round: median over rounds of b's latency / a's in the same round"
    );
    println!(
        "goals: 1-record flushes inline >= 1.0 of raft-engine and of raw fdatasync; batched shapes on the ring >= 1.0 of raft-engine"
    );
}

/// Context switches of the whole process so far: (voluntary, involuntary).
fn context_switches() -> (i64, i64) {
    // SAFETY: getrusage fills the struct it is given, nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF counts every thread of the process.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    (u.ru_nvcsw, u.ru_nivcsw)
}

/// `CORELOG_BENCH_SOLO`: one side alone, for counting its syscalls and
/// context switches per flush.
fn solo(side: &str) {
    let shape = std::env::var("CORELOG_BENCH_SHAPE").unwrap_or_else(|_| "1x128".into());
    let (n, size) = shape
        .split_once('x')
        .and_then(|(n, s)| Some((n.parse::<usize>().ok()?, s.parse::<usize>().ok()?)))
        .expect("CORELOG_BENCH_SHAPE: <records>x<bytes>, e.g. 1x128");
    let budget = paired_budget();
    let mut flush: Box<dyn FnMut()> = match side {
        "ring" | "inline" => {
            let mut w = FlushWorkload::open(n, size, side == "inline");
            Box::new(move || w.flush_once())
        }
        "re" => {
            let mut re = RaftEngineWorkload::open(n, size);
            Box::new(move || re.flush_once())
        }
        "raw" => {
            let mut raw = RawWorkload::open(n, size);
            Box::new(move || {
                raw.prepare();
                raw.flush_once()
            })
        }
        other => panic!("CORELOG_BENCH_SOLO: ring, inline, re or raw, not {other}"),
    };
    let before = context_switches();
    let start = Instant::now();
    let mut flushes = 0u64;
    while start.elapsed() < budget {
        flush();
        flushes += 1;
    }
    let spent = start.elapsed();
    let after = context_switches();
    let per = |a: i64, b: i64| (a - b) as f64 / flushes.max(1) as f64;
    println!(
        "solo {side} {shape}: {flushes} flushes in {:.2} s ({:.1} us each); per flush: {:.2} voluntary, {:.2} involuntary context switches",
        spent.as_secs_f64(),
        spent.as_secs_f64() * 1e6 / flushes.max(1) as f64,
        per(after.0, before.0),
        per(after.1, before.1)
    );
}

fn main() {
    if let Ok(side) = std::env::var("CORELOG_BENCH_SOLO") {
        solo(&side);
        return;
    }
    if std::env::var_os("CORELOG_BENCH_QUICK").is_some() && std::env::args().any(|a| a == "--bench")
    {
        // Quick mode: the paired measurement alone.
        print_paired(None);
        return;
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for size in [128usize, 4096] {
        for n in [1usize, 16, 256] {
            bench_raw_fdatasync(&mut c, n, size);
            bench_wal(&mut c, n, size, false);
            bench_wal(&mut c, n, size, true);
        }
    }
    bench_odirect(&mut c);
    bench_append_cpu(&mut c, 128);
    bench_append_cpu(&mut c, 4096);
    c.final_summary();
    report();
}
