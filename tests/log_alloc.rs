//! The log state machine allocates per batch at most, never per record:
//! applying (parse, offsets, exactly-once check), iterating records and
//! building batches cost no more heap allocations for 64 records than for
//! one. Batches are built before the counted window, so every allocation
//! counted is the code under test's.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs;

use bytes::Bytes;
use corelog::log::{BatchBuilder, BatchLimits, Command, LogConfig, LogState, RecordBatch};

const BATCHES: u64 = 4096;

/// `BATCHES` batches of `records` records of 128 B, producers 1..=4 in
/// turn with consecutive sequences (or no producer).
fn batches(records: usize, with_producers: bool) -> Vec<Bytes> {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    (0..BATCHES)
        .map(|k| {
            let (p, seq) = if with_producers {
                (1 + k % 4, (k / 4) * records as u64)
            } else {
                (0, 0)
            };
            let mut w = b.start(p, seq, k);
            for _ in 0..records {
                w.push(&[7; 128]).unwrap();
            }
            w.finish().unwrap()
        })
        .collect()
}

/// Allocations per batch applying `batches` to a state that has already
/// seen a first round of the same producers (so the table is warm).
fn apply_allocs_per_batch(records: usize, with_producers: bool) -> f64 {
    let data = batches(records, with_producers);
    let mut s = LogState::new(LogConfig::DEFAULT);
    // The group gives ids 1..=4.
    for _ in 0..4 {
        s.apply(s.applied_index() + 1, &Command::InitProducer.encode())
            .unwrap();
    }
    // Warm-up: the producers' rings fill, the index takes its size.
    let (warm, counted) = data.split_at(BATCHES as usize / 2);
    for d in warm {
        s.apply(s.applied_index() + 1, d).unwrap();
    }
    let before = allocs();
    for d in counted {
        let out = s.apply(s.applied_index() + 1, d).unwrap();
        assert!(matches!(out, corelog::log::ApplyOutcome::Appended { .. }));
    }
    (allocs() - before) as f64 / counted.len() as f64
}

#[test]
fn apply_does_not_allocate_per_record() {
    for with_producers in [false, true] {
        let one = apply_allocs_per_batch(1, with_producers);
        let many = apply_allocs_per_batch(64, with_producers);
        println!(
            "apply (producers: {with_producers}): {one:.4} allocations per batch of 1, {many:.4} per batch of 64"
        );
        // The offset index grows by doubling: a few reallocations over
        // thousands of batches. One per batch or record would be >= 1.
        assert!(many < 0.01, "apply allocates per batch: {many:.4}");
        assert!(
            (many - one).abs() < 0.01,
            "apply allocates per record: {one:.4} vs {many:.4}"
        );
    }
}

#[test]
fn iterating_records_does_not_allocate() {
    let data = batches(64, false);
    let parsed = RecordBatch::parse(&data[0], &BatchLimits::DEFAULT).unwrap();
    let before = allocs();
    let mut n = 0;
    for r in parsed.records() {
        n += r.len();
    }
    for r in parsed.raw_records() {
        n += r.len();
    }
    assert_eq!(n, 2 * 64 * 128);
    assert_eq!(allocs() - before, 0);
}

/// Allocations per batch building `rounds` batches of `records` records,
/// each dropped before the next (a client that sent it).
fn build_allocs_per_batch(records: usize) -> f64 {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let build = |b: &mut BatchBuilder| {
        let mut w = b.start(1, 0, 0);
        for _ in 0..records {
            w.push(&[7; 128]).unwrap();
        }
        w.finish().unwrap()
    };
    for _ in 0..16 {
        drop(build(&mut b));
    }
    let before = allocs();
    for _ in 0..1024 {
        drop(build(&mut b));
    }
    (allocs() - before) as f64 / 1024.0
}

#[test]
fn building_reuses_the_buffer_and_does_not_allocate_per_record() {
    let one = build_allocs_per_batch(1);
    let many = build_allocs_per_batch(64);
    println!("build: {one:.4} allocations per batch of 1, {many:.4} per batch of 64");
    assert!(
        one < 0.01 && many < 0.01,
        "build allocates: {one:.4} / {many:.4}"
    );
}
