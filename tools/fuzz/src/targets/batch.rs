//! Record batches (`RecordBatch::parse`): what a client's append carries
//! and what apply reads back out of every committed entry. A batch that
//! parses must iterate to exactly its header's count and length, and
//! rebuilding it from its records with `BatchBuilder` must give the same
//! bytes.

use bytes::Bytes;
use corelog::log::{BatchBuilder, BatchLimits, RecordBatch};

use super::{Target, label};

pub const TARGET: Target = Target {
    name: "batch",
    seeds,
    fixup,
    run,
    max_alloc: MAX_ALLOC,
    alloc_per_input_byte: 0,
};

/// Parsing copies nothing; the rebuild holds one batch of at most the
/// input's size (64 KiB slack for fixed overheads).
const MAX_ALLOC: usize = 2 * crate::mutate::MAX_INPUT + (64 << 10);

const AT_CRC: usize = 36;
const HEADER: usize = 40;

fn run(input: &[u8]) -> u64 {
    check(&Bytes::copy_from_slice(input), &BatchLimits::DEFAULT)
}

/// Parses `bytes` and checks a batch that parses (shared with the client
/// target, which finds batches inside append requests).
pub fn check(bytes: &Bytes, limits: &BatchLimits) -> u64 {
    let batch = match RecordBatch::parse(bytes, limits) {
        Ok(b) => b,
        Err(e) => return label(&format!("{e:?}")),
    };
    let h = *batch.header();
    let raw: Vec<&[u8]> = batch.raw_records().collect();
    assert_eq!(
        raw.len() as u64,
        u64::from(h.record_count),
        "raw record count"
    );
    let section: usize = raw.iter().map(|r| 4 + r.len()).sum();
    assert_eq!(
        section as u64,
        u64::from(h.records_len),
        "records section length"
    );
    assert_eq!(HEADER + section, bytes.len(), "batch length");
    let records: Vec<Bytes> = batch.records().collect();
    assert_eq!(records.len(), raw.len(), "record count");
    for (a, b) in records.iter().zip(&raw) {
        assert_eq!(&a[..], *b, "records() and raw_records() disagree");
        assert!(
            a.len() as u64 <= u64::from(limits.max_record_bytes),
            "record above limit"
        );
    }
    assert!(
        batch.record_count() <= limits.max_records,
        "records above limit"
    );
    assert!(
        bytes.len() as u64 <= u64::from(limits.max_batch_bytes),
        "batch above limit"
    );
    let mut builder = BatchBuilder::new(*limits);
    let mut w = builder.start(h.producer_id, h.producer_seq, h.timestamp_ms);
    for r in &raw {
        w.push(r)
            .expect("a record of a parsed batch is within the limits");
    }
    let rebuilt = w.finish().expect("a parsed batch rebuilds");
    assert_eq!(rebuilt, *bytes, "rebuilt batch differs");
    label(&format!("ok {}", raw.len().min(3)))
}

/// Recomputes the batch crc (header up to the crc, then the records).
pub fn fixup(b: &mut [u8]) {
    if b.len() < HEADER {
        return;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..AT_CRC]);
    h.update(&b[HEADER..]);
    let crc = h.finalize();
    b[AT_CRC..HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// Batches of a few shapes: with and without a producer, empty and
/// larger records.
pub fn sample_batches() -> Vec<Bytes> {
    let shapes: &[(u64, u64, &[&[u8]])] = &[
        (0, 0, &[b"one"]),
        (7, 100, &[b"a", b"", b"ccc", &[0xEE; 300]]),
        (u64::MAX, 1 << 40, &[&[1, 2, 3, 4, 5, 6, 7, 8]]),
    ];
    shapes
        .iter()
        .map(|(producer, seq, records)| {
            let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
            let mut w = b.start(*producer, *seq, 1_700_000_000_000);
            for r in *records {
                w.push(r).unwrap();
            }
            w.finish().unwrap()
        })
        .collect()
}

fn seeds() -> Vec<Vec<u8>> {
    sample_batches().into_iter().map(|b| b.to_vec()).collect()
}
