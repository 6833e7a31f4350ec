//! WAL throughput against the raw limits of this disk, in one run.
//!
//! For flushes of 1, 16 and 256 records of 128 B and of 4 KiB (fsync on):
//! - `wal/<n>x<size>`: `n` appends (round-robin over 8 groups) then one
//!   `flush` (one io_uring submission: write + fdatasync);
//! - `raw_fdatasync/<n>x<size>`: a plain loop of pwrite + fdatasync of the
//!   same number of bytes, into a zero-filled file like a WAL segment;
//! - `raw_odirect_seq`: one large O_DIRECT sequential write (64 MiB), the
//!   disk's sequential bandwidth.
//!
//! At the end it prints appends/s and MB/s of each, then measures every
//! shape again with WAL and raw flushes alternating (`paired`), and prints
//! the ratios the goals are stated in: single-record flushes against the
//! raw fdatasync rate (goal >= 90%), large batches against sequential
//! bandwidth (goal >= 70%). Run: `cargo bench --bench wal`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::raftpb::Entry;
use corelog::wal::{Options, Wal};
use criterion::Criterion;

const SEGMENT: u64 = 64 << 20;
const GROUPS: u64 = 8;
const ODIRECT_BYTES: usize = 64 << 20;

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
    _dir: tempfile::TempDir,
    data: Bytes,
    next: [u64; GROUPS as usize],
    one: [Entry; 1],
    since_gc: usize,
    n: usize,
    size: usize,
}

impl FlushWorkload {
    fn open(n: usize, size: usize) -> FlushWorkload {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let mut o = Options::new(1, 0);
        o.segment_size = SEGMENT;
        o.max_flush_bytes = 8 << 20;
        let mut wal = Wal::open(dir.path(), o).unwrap();
        // The first spare segment's zero-fill is a startup cost, not a flush's.
        wal.wait_prepared();
        FlushWorkload {
            wal,
            _dir: dir,
            data: Bytes::from(vec![0x5a; size]),
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
                data: self.data.clone(),
            };
            let _ = self.wal.append_entries(g, &self.one).unwrap();
            self.next[g as usize] += 1;
        }
    }

    /// Flushes `appended` records' worth, compacting and collecting every two
    /// segments.
    fn flush_and_retain(&mut self, appended: usize) {
        self.wal.flush().unwrap();
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

fn bench_wal(c: &mut Criterion, n: usize, size: usize) {
    let id = format!("wal/{n}x{size}");
    let mut w = FlushWorkload::open(n, size);
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
    let mut w = FlushWorkload::open(0, size);
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

/// WAL flushes and raw write+fdatasync of the same bytes, timed
/// alternately (`ROUND` flushes of each in turn), so that both see the same
/// disk: on a machine shared with other work, fsync latency drifts by
/// several times within seconds, and only a paired measurement gives a
/// ratio that means something. Returns flushes/s of each.
fn paired(n: usize, size: usize, budget: Duration) -> (f64, f64) {
    const ROUND: usize = 1;
    let mut w = FlushWorkload::open(n, size);
    let rdir = tempfile::tempdir_in(bench_dir()).unwrap();
    let path = rdir.path().join("raw");
    let mut f = zero_file(&path, SEGMENT);
    let buf = vec![0x5a; n * size];
    let (mut wal_t, mut raw_t, mut flushes) = (Duration::ZERO, Duration::ZERO, 0u64);
    let mut off = 0u64;
    while wal_t + raw_t < budget {
        let t = Instant::now();
        for _ in 0..ROUND {
            w.flush_once();
        }
        wal_t += t.elapsed();
        if off + (ROUND * buf.len()) as u64 > SEGMENT {
            f = zero_file(&path, SEGMENT);
            off = 0;
        }
        let t = Instant::now();
        for _ in 0..ROUND {
            f.write_all_at(&buf, off).unwrap();
            f.sync_data().unwrap();
            off += buf.len() as u64;
        }
        raw_t += t.elapsed();
        flushes += ROUND as u64;
    }
    (
        flushes as f64 / wal_t.as_secs_f64(),
        flushes as f64 / raw_t.as_secs_f64(),
    )
}

fn report() {
    let seq = rate("raw_odirect_seq").map(|r| r * ODIRECT_BYTES as f64 / 1e6);
    println!();
    println!("== criterion means (each run alone; drifts with other load on the disk) ==");
    for size in [128usize, 4096] {
        for n in [1usize, 16, 256] {
            let (Some(w), Some(r)) = (
                rate(&format!("wal/{n}x{size}")),
                rate(&format!("raw_fdatasync/{n}x{size}")),
            ) else {
                continue;
            };
            println!(
                "{:<9} wal {:>9.0} appends/s {:>7.1} MB/s | raw {:>6.0} flushes/s {:>7.1} MB/s | {:>4.0}%",
                format!("{n}x{size}"),
                w * n as f64,
                w * (n * size) as f64 / 1e6,
                r,
                r * (n * size) as f64 / 1e6,
                100.0 * w / r
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
    println!();
    println!("== paired: WAL and raw write+fdatasync alternating, 3 s per shape ==");
    println!(
        "{:<9} {:>12} {:>9} {:>11} {:>9} {:>9} {:>11}",
        "flush", "wal app/s", "wal MB/s", "raw flush/s", "raw MB/s", "wal/raw", "wal/seq bw"
    );
    for size in [128usize, 4096] {
        for n in [1usize, 16, 256] {
            let (w, r) = paired(n, size, Duration::from_secs(3));
            let wal_mb = w * (n * size) as f64 / 1e6;
            println!(
                "{:<9} {:>12.0} {:>9.1} {:>11.0} {:>9.1} {:>8.0}% {:>10.1}%",
                format!("{n}x{size}"),
                w * n as f64,
                wal_mb,
                r,
                r * (n * size) as f64 / 1e6,
                100.0 * w / r,
                seq.map_or(0.0, |s| 100.0 * wal_mb / s)
            );
        }
    }
    println!(
        "goals: 1-record flushes >= 90% of raw fdatasync rate; 256-record flushes >= 70% of sequential bandwidth"
    );
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for size in [128usize, 4096] {
        for n in [1usize, 16, 256] {
            bench_raw_fdatasync(&mut c, n, size);
            bench_wal(&mut c, n, size);
        }
    }
    bench_odirect(&mut c);
    bench_append_cpu(&mut c, 128);
    bench_append_cpu(&mut c, 4096);
    c.final_summary();
    report();
}
