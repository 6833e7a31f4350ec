use bytes::Bytes;

use super::*;
use crate::log::builder::BatchBuilder;

fn build(producer_id: u64, seq: u64, records: &[&[u8]]) -> Bytes {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(producer_id, seq, 1_700_000_000_000);
    for r in records {
        w.push(r).unwrap();
    }
    w.finish().unwrap()
}

/// Hand-made batch bytes: header fields as given, crc recomputed so that
/// only the field under test is wrong.
fn sealed(mut b: Vec<u8>) -> Bytes {
    let crc = batch_crc(&b);
    b[AT_CRC..AT_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    Bytes::from(b)
}

fn header_bytes(count: u32, records_len: u32) -> Vec<u8> {
    let h = BatchHeader {
        record_count: count,
        records_len,
        ..BatchHeader::default()
    };
    let mut out = [0u8; BATCH_HEADER_LEN];
    h.write(&mut out);
    out.to_vec()
}

fn parse(b: &Bytes) -> Result<RecordBatch, BatchError> {
    RecordBatch::parse(b, &BatchLimits::DEFAULT)
}

#[test]
fn built_batch_parses_with_its_header_and_records_in_order() {
    let b = build(7, 100, &[b"alpha", b"", b"gamma!"]);
    assert_eq!(b.len(), BATCH_HEADER_LEN + 3 * 4 + 5 + 6);
    let batch = parse(&b).unwrap();
    let h = batch.header();
    assert_eq!(h.record_count, 3);
    assert_eq!(h.producer_id, 7);
    assert_eq!(h.producer_seq, 100);
    assert_eq!(h.last_seq(), 102);
    assert_eq!(h.timestamp_ms, 1_700_000_000_000);
    assert_eq!(h.records_len, 23);
    assert_eq!(batch.producer(), Some(7));
    let records: Vec<Bytes> = batch.records().collect();
    assert_eq!(records, vec![&b"alpha"[..], b"", b"gamma!"]);
    assert_eq!(batch.records().len(), 3);
    let raw: Vec<&[u8]> = batch.raw_records().collect();
    assert_eq!(raw, vec![&b"alpha"[..], b"", b"gamma!"]);
}

#[test]
fn header_bytes_are_the_documented_layout() {
    let b = build(0x0102_0304_0506_0708, 9, &[b"xy"]);
    assert_eq!(b[0], 0xB1);
    assert_eq!(b[1], 1);
    assert_eq!(&b[2..4], &[0, 0]);
    assert_eq!(&b[4..8], &1u32.to_le_bytes());
    assert_eq!(&b[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
    assert_eq!(&b[16..24], &9u64.to_le_bytes());
    assert_eq!(&b[24..32], &1_700_000_000_000u64.to_le_bytes());
    assert_eq!(&b[32..36], &6u32.to_le_bytes());
    let mut covered = b[..36].to_vec();
    covered.extend_from_slice(&b[40..]);
    assert_eq!(&b[36..40], &crc32fast::hash(&covered).to_le_bytes());
    assert_eq!(&b[40..44], &2u32.to_le_bytes());
    assert_eq!(&b[44..], b"xy");
}

#[test]
fn records_are_slices_of_the_batch_buffer_not_copies() {
    let b = build(0, 0, &[b"one", b"two-two", b"three"]);
    let batch = parse(&b).unwrap();
    let base = b.as_ptr() as usize;
    let mut expected_at = BATCH_HEADER_LEN;
    for r in batch.records() {
        assert_eq!(r.as_ptr() as usize, base + expected_at + 4);
        expected_at += 4 + r.len();
    }
    assert_eq!(batch.as_bytes().as_ptr(), b.as_ptr());
}

#[test]
fn a_flipped_bit_anywhere_but_the_crc_is_a_crc_mismatch() {
    let b = build(5, 1, &[b"payload", b"more"]);
    for at in (0..b.len()).filter(|&i| !(AT_CRC..BATCH_HEADER_LEN).contains(&i)) {
        // Magic, version, flags, count and records_len are checked before
        // the crc; a flip there is refused by that check instead.
        let mut v = b.to_vec();
        v[at] ^= 0x10;
        let err = parse(&Bytes::from(v)).unwrap_err();
        match at {
            0 => assert!(matches!(err, BatchError::BadMagic { .. })),
            1 => assert!(matches!(err, BatchError::UnsupportedVersion { .. })),
            2..=3 => assert!(matches!(err, BatchError::UnknownFlags { .. })),
            4..=7 | 32..=35 => assert!(
                matches!(
                    err,
                    BatchError::LengthMismatch { .. }
                        | BatchError::Limit { .. }
                        | BatchError::CrcMismatch { .. }
                ),
                "byte {at}: {err:?}"
            ),
            _ => assert!(
                matches!(err, BatchError::CrcMismatch { .. }),
                "byte {at}: {err:?}"
            ),
        }
    }
}

#[test]
fn a_flipped_producer_sequence_bit_is_caught_by_the_crc() {
    let b = build(5, 1, &[b"payload"]);
    let mut v = b.to_vec();
    v[16] ^= 1;
    assert!(matches!(
        parse(&Bytes::from(v)),
        Err(BatchError::CrcMismatch { .. })
    ));
}

#[test]
fn short_input_is_truncated() {
    for n in [0usize, 1, 39] {
        assert_eq!(
            parse(&Bytes::from(vec![0xB1; n])),
            Err(BatchError::Truncated {
                needed: 40,
                available: n as u64
            })
        );
    }
}

#[test]
fn wrong_magic_version_and_flags_are_named() {
    let good = build(0, 0, &[b"r"]).to_vec();
    let mut v = good.clone();
    v[0] = 0xC1;
    assert_eq!(parse(&sealed(v)), Err(BatchError::BadMagic { found: 0xC1 }));
    let mut v = good.clone();
    v[1] = 2;
    assert_eq!(
        parse(&sealed(v)),
        Err(BatchError::UnsupportedVersion { found: 2 })
    );
    let mut v = good;
    v[3] = 0x80;
    assert_eq!(
        parse(&sealed(v)),
        Err(BatchError::UnknownFlags { flags: 0x8000 })
    );
}

#[test]
fn zero_records_is_refused() {
    assert_eq!(
        parse(&sealed(header_bytes(0, 0))),
        Err(BatchError::NoRecords)
    );
}

#[test]
fn counts_and_lengths_above_the_limits_are_refused_before_use() {
    let limits = BatchLimits {
        max_batch_bytes: 100,
        max_records: 2,
        max_record_bytes: 10,
    };
    // A header claiming 3 records and 4 GiB of them, with nothing after it.
    let b = sealed(header_bytes(3, u32::MAX));
    assert_eq!(
        RecordBatch::parse(&b, &limits),
        Err(BatchError::Limit {
            what: "records per batch",
            value: 3,
            limit: 2
        })
    );
    let b = sealed(header_bytes(2, u32::MAX));
    assert_eq!(
        RecordBatch::parse(&b, &limits),
        Err(BatchError::Limit {
            what: "batch bytes",
            value: 40 + u64::from(u32::MAX),
            limit: 100
        })
    );
    let mut v = header_bytes(1, 15);
    v.extend_from_slice(&11u32.to_le_bytes());
    v.extend_from_slice(&[0; 11]);
    assert_eq!(
        RecordBatch::parse(&sealed(v), &limits),
        Err(BatchError::Limit {
            what: "record bytes",
            value: 11,
            limit: 10
        })
    );
}

#[test]
fn records_len_must_match_the_bytes_present() {
    let mut v = header_bytes(1, 10);
    v.extend_from_slice(&6u32.to_le_bytes());
    v.extend_from_slice(&[1; 6]);
    v.push(0);
    assert_eq!(
        parse(&sealed(v)),
        Err(BatchError::LengthMismatch {
            declared: 50,
            actual: 51
        })
    );
}

#[test]
fn a_record_running_past_the_section_is_an_overrun() {
    // Two records announced; the first takes the whole section.
    let mut v = header_bytes(2, 10);
    v.extend_from_slice(&6u32.to_le_bytes());
    v.extend_from_slice(&[1; 6]);
    assert_eq!(
        parse(&sealed(v)),
        Err(BatchError::RecordOverrun {
            record: 1,
            needed: 4,
            remaining: 0
        })
    );
    let mut v = header_bytes(1, 10);
    v.extend_from_slice(&7u32.to_le_bytes());
    v.extend_from_slice(&[1; 6]);
    assert_eq!(
        parse(&sealed(v)),
        Err(BatchError::RecordOverrun {
            record: 0,
            needed: 11,
            remaining: 10
        })
    );
}

#[test]
fn bytes_after_the_last_record_are_refused() {
    let mut v = header_bytes(1, 12);
    v.extend_from_slice(&6u32.to_le_bytes());
    v.extend_from_slice(&[1; 8]);
    assert_eq!(
        parse(&sealed(v)),
        Err(BatchError::TrailingBytes { count: 2 })
    );
}

#[test]
fn a_sequence_range_past_u64_max_is_refused_only_with_a_producer() {
    let mut v = header_bytes(2, 8);
    v[8..16].copy_from_slice(&1u64.to_le_bytes());
    v[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    assert_eq!(
        parse(&sealed(v.clone())),
        Err(BatchError::SequenceOverflow {
            producer_seq: u64::MAX,
            record_count: 2
        })
    );
    v[8..16].copy_from_slice(&0u64.to_le_bytes());
    assert!(parse(&sealed(v)).is_ok());
}

#[test]
fn ceiling_is_above_the_defaults() {
    assert!(BatchLimits::DEFAULT.within_ceiling());
    assert!(BatchLimits::CEILING.within_ceiling());
    let too_big = BatchLimits {
        max_batch_bytes: BatchLimits::CEILING.max_batch_bytes + 1,
        ..BatchLimits::DEFAULT
    };
    assert!(!too_big.within_ceiling());
}

#[test]
fn builder_refuses_what_would_break_a_limit_and_keeps_the_batch() {
    let limits = BatchLimits {
        max_batch_bytes: 40 + 2 * (4 + 8),
        max_records: 2,
        max_record_bytes: 8,
    };
    let mut b = BatchBuilder::new(limits);
    let mut w = b.start(0, 0, 0);
    assert!(matches!(
        w.push(&[0; 9]),
        Err(BatchError::Limit {
            what: "record bytes",
            ..
        })
    ));
    w.push(&[1; 8]).unwrap();
    w.push(&[2; 8]).unwrap();
    assert!(matches!(
        w.push(b""),
        Err(BatchError::Limit {
            what: "records per batch",
            ..
        })
    ));
    let batch = w.finish().unwrap();
    let parsed = RecordBatch::parse(&batch, &limits).unwrap();
    assert_eq!(
        parsed.records().collect::<Vec<_>>(),
        vec![&[1u8; 8][..], &[2; 8]]
    );

    let limits = BatchLimits {
        max_batch_bytes: 40 + 4 + 8,
        ..limits
    };
    let mut b = BatchBuilder::new(limits);
    let mut w = b.start(0, 0, 0);
    w.push(&[1; 4]).unwrap();
    assert!(matches!(
        w.push(&[2; 1]),
        Err(BatchError::Limit {
            what: "batch bytes",
            value: 53,
            limit: 52
        })
    ));
}

#[test]
fn builder_refuses_an_empty_batch_and_an_overflowing_sequence() {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    assert_eq!(b.start(1, 0, 0).finish(), Err(BatchError::NoRecords));
    let mut w = b.start(1, u64::MAX, 0);
    w.push(b"a").unwrap();
    w.push(b"b").unwrap();
    assert!(matches!(
        w.finish(),
        Err(BatchError::SequenceOverflow { .. })
    ));
}

#[test]
fn builder_never_overwrites_a_batch_it_handed_out() {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut kept = Vec::new();
    for round in 0..32u64 {
        let mut w = b.start(0, 0, round);
        for _ in 0..(1 + round % 5) {
            w.push(&[round as u8; 100]).unwrap();
        }
        kept.push(w.finish().unwrap());
        // Drop some, keep others, so the buffer is both reclaimed and not.
        if round % 3 == 0 {
            kept.remove(0);
        }
    }
    for batch in &kept {
        let parsed = parse(batch).unwrap();
        let round = parsed.header().timestamp_ms;
        assert_eq!(u64::from(parsed.record_count()), 1 + round % 5);
        assert!(parsed.raw_records().all(|r| r == [round as u8; 100]));
    }
}
