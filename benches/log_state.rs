//! The log group state machine's cost per record: one batch of 64 records
//! of 128 B (8,488 bytes), the append path's unit, through each step the
//! state machine adds on a replica.
//!
//! - `crc32_only`: crc32fast over the batch: the floor of verifying a batch
//!   end to end, which `parse` includes.
//! - `parse`: `RecordBatch::parse` (header, limits, crc, record lengths).
//! - `apply`: `LogState::apply` of a batch without producer: parse plus an
//!   offset index append.
//! - `apply_producer`: the same with a producer id: plus the exactly-once
//!   check (one producer, consecutive sequences).
//! - `apply_1000_producers`: batches of 1,000 producers in turn (a table
//!   larger than the caches' sweet spot).
//! - `build`: `BatchBuilder`, 64 pushes and `finish` (a client's cost).
//! - `iterate`: reading the 64 records of a parsed batch as `Bytes` (a
//!   reference count taken and dropped per record).
//! - `iterate_raw`: the same as borrowed slices (`raw_records`).
//!
//! The apply variants replay 1,024 pre-built batches into a state and then
//! start again from a clone of a fresh one whose producers the group has
//! given their ids (the restart is in the timing, amortised over 1,024
//! batches; the inits are not). After criterion, `compare()` prints the
//! variants measured in interleaved rounds (medians, ns per record): the
//! table docs/benchmarks.md records.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use corelog::log::{BatchBuilder, BatchLimits, Command, LogConfig, LogState, RecordBatch};
use criterion::{Criterion, Throughput};

const RECORDS: usize = 64;
const RECORD_BYTES: usize = 128;
const CYCLE: usize = 1024;

fn batch(b: &mut BatchBuilder, producer_id: u64, seq: u64) -> Bytes {
    let payload = [0x5a; RECORD_BYTES];
    let mut w = b.start(producer_id, seq, 1_700_000_000_000);
    for _ in 0..RECORDS {
        w.push(&payload).expect("within limits");
    }
    w.finish().expect("records pushed")
}

/// Applies pre-built batches in order, starting again from a fresh state
/// after the last one (their sequences begin again at 0).
struct Feeder {
    batches: Vec<Bytes>,
    /// A new state that has given the producers their ids (1..=n): cloned
    /// once a cycle, so the inits are not timed as batches.
    fresh: LogState,
    state: LogState,
    next: usize,
}

impl Feeder {
    /// `producers` 0: no producer id; otherwise batches of producers
    /// 1..=producers in turn, each with consecutive sequences.
    fn new(producers: u64) -> Feeder {
        let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
        let batches = (0..CYCLE as u64)
            .map(|k| match producers {
                0 => batch(&mut b, 0, 0),
                n => batch(&mut b, 1 + k % n, (k / n) * RECORDS as u64),
            })
            .collect();
        let mut fresh = LogState::new(LogConfig::DEFAULT);
        for i in 1..=producers {
            fresh
                .apply(i, &Command::InitProducer.encode())
                .expect("in order");
        }
        Feeder {
            batches,
            state: fresh.clone(),
            fresh,
            next: 0,
        }
    }

    fn apply_one(&mut self) {
        if self.next == CYCLE {
            self.state = self.fresh.clone();
            self.next = 0;
        }
        let i = self.state.applied_index() + 1;
        let out = self.state.apply(i, &self.batches[self.next]);
        black_box(out.expect("in order"));
        self.next += 1;
    }
}

fn bench(c: &mut Criterion) {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let data = batch(&mut b, 0, 0);
    let parsed = RecordBatch::parse(&data, &BatchLimits::CEILING).expect("valid");
    let mut g = c.benchmark_group("log_state_64x128B");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("crc32_only", |bn| {
        bn.iter(|| crc32fast::hash(black_box(&data)))
    });
    g.bench_function("parse", |bn| {
        bn.iter(|| RecordBatch::parse(black_box(&data), &BatchLimits::CEILING))
    });
    for (name, producers) in [
        ("apply", 0),
        ("apply_producer", 1),
        ("apply_1000_producers", 1000),
    ] {
        let mut f = Feeder::new(producers);
        g.bench_function(name, |bn| bn.iter(|| f.apply_one()));
    }
    g.bench_function("build", |bn| {
        bn.iter(|| batch(&mut b, black_box(1), black_box(0)))
    });
    g.bench_function("iterate", |bn| {
        bn.iter(|| black_box(&parsed).records().map(|r| r.len()).sum::<usize>())
    });
    g.bench_function("iterate_raw", |bn| {
        bn.iter(|| {
            black_box(&parsed)
                .raw_records()
                .map(|r| r.len())
                .sum::<usize>()
        })
    });
    g.finish();
}

/// Median ns per call of each variant over `rounds` interleaved rounds.
fn interleaved(rounds: usize, iters: u64, variants: &mut [(&str, &mut dyn FnMut())]) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            samples[i].push(t.elapsed().as_nanos() as f64 / iters as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(|a, b| a.total_cmp(b));
            s[s.len() / 2]
        })
        .collect()
}

/// The comparison this bench exists for, printed as a table.
fn compare() {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let data = batch(&mut b, 0, 0);
    let parsed = RecordBatch::parse(&data, &BatchLimits::CEILING).expect("valid");
    let mut f0 = Feeder::new(0);
    let mut f1 = Feeder::new(1);
    let mut f1000 = Feeder::new(1000);
    let d = &data;
    let p = &parsed;
    let mut variants: [(&str, &mut dyn FnMut()); 8] = [
        ("crc32_only", &mut || {
            black_box(crc32fast::hash(black_box(d)));
        }),
        ("parse", &mut || {
            let _ = black_box(RecordBatch::parse(black_box(d), &BatchLimits::CEILING));
        }),
        ("apply", &mut || f0.apply_one()),
        ("apply_producer", &mut || f1.apply_one()),
        ("apply_1000_producers", &mut || f1000.apply_one()),
        ("build", &mut || {
            black_box(batch(&mut b, 1, 0));
        }),
        ("iterate", &mut || {
            black_box(black_box(p).records().map(|r| r.len()).sum::<usize>());
        }),
        ("iterate_raw", &mut || {
            black_box(black_box(p).raw_records().map(|r| r.len()).sum::<usize>());
        }),
    ];
    let medians = interleaved(15, 20_000, &mut variants);
    println!();
    println!("interleaved medians, one batch of {RECORDS} x {RECORD_BYTES} B (15 rounds):");
    println!("{:<22} {:>12} {:>12}", "variant", "ns/batch", "ns/record");
    for ((name, _), ns) in variants.iter().zip(medians) {
        println!("{name:<22} {ns:>12.0} {:>12.1}", ns / RECORDS as f64);
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    // Only in a real bench run (`cargo bench`), not under `cargo test`.
    if std::env::args().any(|a| a == "--bench") {
        compare();
    }
}
