use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::log::batch::BatchLimits;
use crate::log::builder::BatchBuilder;
use crate::log::command::Command;
use crate::log::state::ApplyOutcome;

fn batch(producer_id: u64, seq: u64, records: usize) -> Bytes {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(producer_id, seq, 500 + seq);
    for _ in 0..records {
        w.push(b"rec").unwrap();
    }
    w.finish().unwrap()
}

fn init() -> Bytes {
    Command::InitProducer.encode()
}

/// A state with batches, a truncation, producers given ids 1 to 4 (1
/// evicted, 4 registered with no batch yet) and remembered batches
/// wrapping their ring.
fn busy_state() -> LogState {
    let mut s = LogState::new(LogConfig { max_producers: 3 });
    let mut entries = vec![Bytes::new(), batch(0, 0, 2), init(), batch(1, 0, 3), init()];
    // Seven batches of 2: its ring of five remembered batches wraps.
    for k in 0..7 {
        entries.push(batch(2, k, 1));
    }
    entries.push(init());
    entries.push(batch(3, 0, 1));
    entries.push(init()); // the table is full: 4 evicts 1
    entries.push(Command::Truncate { before_offset: 3 }.encode());
    entries.push(batch(3, 1, 2));
    for e in &entries {
        let out = s.apply(s.applied_index() + 1, e).unwrap();
        assert!(!matches!(out, ApplyOutcome::Refused(_)), "{out:?}");
    }
    s
}

#[test]
fn a_snapshot_restores_an_equal_state() {
    let s = busy_state();
    assert_eq!(s.dedup().len(), 3);
    assert!(!s.dedup().contains(1));
    assert_eq!(s.next_producer_id(), 5);
    let remembered: Vec<(u64, usize)> = s
        .dedup()
        .producers()
        .map(|(id, bs)| (id, bs.count()))
        .collect();
    assert_eq!(remembered, vec![(2, 5), (4, 0), (3, 2)]);
    let snap = s.snapshot();
    let r = LogState::restore(&snap, 1).unwrap();
    assert_eq!(r, s);
    assert_eq!(r.snapshot(), snap);
}

#[test]
fn a_restored_state_decides_later_entries_as_the_original() {
    let mut s = busy_state();
    let mut r = LogState::restore(&s.snapshot(), 1).unwrap();
    let later = [
        batch(1, 3, 2),
        batch(1, 0, 3),
        batch(2, 7, 1),
        batch(5, 0, 1),
        init(),
        batch(5, 0, 1),
        batch(4, 1, 1),
        batch(4, 0, 1),
        batch(3, 0, 1),
        batch(0, 0, 4),
    ];
    for e in &later {
        let i = s.applied_index() + 1;
        assert_eq!(s.apply(i, e), r.apply(i, e));
    }
    assert_eq!(r, s);
}

#[test]
fn a_replica_restored_after_its_log_reads_from_the_snapshots_next_offset() {
    let s = busy_state();
    let at = s.applied_index();
    let mut r = LogState::restore(&s.snapshot(), at + 1).unwrap();
    assert_eq!(r.earliest_offset(), s.next_offset());
    assert_eq!(r.retention_offset(), s.retention_offset());
    assert_eq!(r.index().batch_count(), 0);
    let below = r.lookup(s.next_offset() - 1).unwrap_err();
    assert_eq!(below.earliest, s.next_offset());
    assert_eq!(
        r.apply(at + 1, &batch(0, 0, 2)),
        Ok(ApplyOutcome::Appended {
            base_offset: s.next_offset(),
            count: 2
        })
    );
    assert_eq!(r.lookup(s.next_offset()).unwrap().entry_index, at + 1);
}

#[test]
fn a_restart_keeps_the_batches_its_log_still_holds() {
    let s = busy_state();
    let first = s.index().first_entry_index().unwrap();
    let r = LogState::restore(&s.snapshot(), first + 1).unwrap();
    assert_eq!(r.index().batch_count(), s.index().batch_count() - 1);
    assert_eq!(r.lookup(s.next_offset() - 1), s.lookup(s.next_offset() - 1));
}

#[test]
fn the_header_is_the_documented_layout() {
    let snap = LogState::new(LogConfig::DEFAULT).snapshot();
    assert_eq!(&snap[0..4], b"CLSS");
    assert_eq!(&snap[4..8], &[2, 0, 0, 0]);
    assert_eq!(&snap[8..16], &60u64.to_le_bytes());
    let mut covered = snap[..16].to_vec();
    covered.extend_from_slice(&snap[24..]);
    assert_eq!(&snap[16..20], &crc32fast::hash(&covered).to_le_bytes());
    assert_eq!(&snap[20..24], &[0; 4]);
    assert_eq!(snap.len(), 24 + 60);
    assert_eq!(&snap[24 + 40..24 + 48], &1u64.to_le_bytes());
    assert_eq!(&snap[24 + 48..24 + 52], &4096u32.to_le_bytes());
}

#[test]
fn a_version_1_snapshot_is_refused() {
    // Version 1 came before the group gave producer ids (its table holds
    // ids clients chose): refused, not read under rules it was not made
    // by.
    let mut v = LogState::new(LogConfig::DEFAULT).snapshot().to_vec();
    v[4] = 1;
    let crc = snapshot_crc(&v);
    v[16..20].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        LogState::restore(&Bytes::from(v), 1),
        Err(SnapshotError::UnsupportedVersion { found: 1 })
    );
}

#[test]
fn every_flipped_bit_and_every_cut_is_refused() {
    let snap = busy_state().snapshot();
    for at in 0..snap.len() {
        for bit in [0, 3, 7] {
            let mut v = snap.to_vec();
            v[at] ^= 1 << bit;
            assert!(
                LogState::restore(&Bytes::from(v), 1).is_err(),
                "byte {at} bit {bit}"
            );
        }
    }
    for n in 0..snap.len() {
        assert!(
            LogState::restore(&snap.slice(..n), 1).is_err(),
            "cut at {n}"
        );
    }
}

/// Snapshot bytes around a hand-written body, sealed with a valid crc.
fn sealed(body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32_le(SNAPSHOT_MAGIC);
    b.put_u16_le(SNAPSHOT_VERSION);
    b.put_u16_le(0);
    b.put_u64_le(body.len() as u64);
    b.put_u32_le(0);
    b.put_u32_le(0);
    b.put_slice(body);
    let crc = snapshot_crc(&b);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b.freeze()
}

struct Body {
    applied: u64,
    next: u64,
    retention: u64,
    total_bytes: u64,
    max_ts: u64,
    next_producer_id: u64,
    max_producers: u32,
    batch_count: u32,
    producer_count: u32,
    rest: Vec<u8>,
}

impl Body {
    fn ok() -> Body {
        Body {
            applied: 10,
            next: 5,
            retention: 0,
            total_bytes: 100,
            max_ts: 9,
            next_producer_id: 100,
            max_producers: 8,
            batch_count: 0,
            producer_count: 0,
            rest: Vec::new(),
        }
    }

    fn bytes(&self) -> Bytes {
        let mut b = Vec::new();
        for v in [
            self.applied,
            self.next,
            self.retention,
            self.total_bytes,
            self.max_ts,
            self.next_producer_id,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.max_producers, self.batch_count, self.producer_count] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&self.rest);
        sealed(&b)
    }
}

fn batch_pos(base: u64, entry: u64, start: u64, ts: u64) -> Vec<u8> {
    [base, entry, start, ts]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

fn producer(id: u64, batches: &[(u64, u32, u64)]) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.push(batches.len() as u8);
    for &(seq, count, base) in batches {
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(&base.to_le_bytes());
    }
    v
}

fn inconsistent(b: Body) -> &'static str {
    match LogState::restore(&b.bytes(), 1) {
        Err(SnapshotError::Inconsistent { what }) => what,
        other => panic!("expected Inconsistent, got {other:?}"),
    }
}

#[test]
fn a_well_formed_hand_written_snapshot_restores() {
    let mut b = Body::ok();
    b.batch_count = 2;
    b.producer_count = 2;
    b.rest = [
        batch_pos(0, 3, 0, 4),
        batch_pos(2, 7, 50, 9),
        producer(77, &[(0, 2, 0), (2, 3, 2)]),
        producer(99, &[]),
    ]
    .concat();
    let s = LogState::restore(&b.bytes(), 1).unwrap();
    assert_eq!(s.lookup(4).unwrap().entry_index, 7);
    assert_eq!(s.dedup().last_seq(77), Some(4));
    assert!(s.dedup().contains(99));
    assert_eq!(s.dedup().last_seq(99), None);
    assert_eq!(s.next_producer_id(), 100);
    assert_eq!(s.snapshot(), b.bytes());
}

#[test]
fn counts_are_checked_against_the_bytes_before_allocating() {
    let mut b = Body::ok();
    b.batch_count = u32::MAX;
    assert!(matches!(
        LogState::restore(&b.bytes(), 1),
        Err(SnapshotError::Truncated {
            what: "offset index",
            ..
        })
    ));
    let mut b = Body::ok();
    b.producer_count = 8;
    assert!(matches!(
        LogState::restore(&b.bytes(), 1),
        Err(SnapshotError::Truncated {
            what: "producers",
            ..
        })
    ));
}

#[test]
fn limits_are_named() {
    let mut b = Body::ok();
    b.producer_count = 9;
    assert_eq!(
        LogState::restore(&b.bytes(), 1),
        Err(SnapshotError::Limit {
            what: "producers",
            value: 9,
            limit: 8
        })
    );
    let mut b = Body::ok();
    b.max_producers = 0;
    assert!(matches!(
        LogState::restore(&b.bytes(), 1),
        Err(SnapshotError::Limit {
            what: "max producers",
            ..
        })
    ));
    let mut b = Body::ok();
    b.next = MAX_OFFSET + 1;
    assert!(matches!(
        LogState::restore(&b.bytes(), 1),
        Err(SnapshotError::Limit {
            what: "next offset",
            ..
        })
    ));
}

#[test]
fn inconsistent_contents_name_the_broken_relation() {
    let mut b = Body::ok();
    b.retention = 6;
    assert_eq!(inconsistent(b), "retention offset past the next offset");
    let mut b = Body::ok();
    b.next_producer_id = 0;
    assert_eq!(inconsistent(b), "next producer id 0");

    let with_batches = |rest: Vec<u8>| Body {
        batch_count: 2,
        rest,
        ..Body::ok()
    };
    assert_eq!(
        inconsistent(with_batches(
            [batch_pos(0, 3, 0, 1), batch_pos(2, 11, 50, 1)].concat()
        )),
        "batch entry index outside 1..=applied index"
    );
    assert_eq!(
        inconsistent(with_batches(
            [batch_pos(2, 3, 0, 1), batch_pos(2, 4, 50, 1)].concat()
        )),
        "batch offsets not increasing"
    );
    assert_eq!(
        inconsistent(with_batches(
            [batch_pos(0, 4, 0, 1), batch_pos(2, 4, 50, 1)].concat()
        )),
        "batch entries not increasing"
    );
    assert_eq!(
        inconsistent(with_batches(
            [batch_pos(0, 3, 0, 5), batch_pos(2, 4, 50, 1)].concat()
        )),
        "batch timestamps not a running maximum"
    );
    assert_eq!(
        inconsistent(with_batches(
            [batch_pos(0, 3, 0, 1), batch_pos(5, 4, 50, 1)].concat()
        )),
        "batch at or past the next offset"
    );
    let mut b = with_batches([batch_pos(0, 3, 0, 1), batch_pos(2, 4, 50, 1)].concat());
    b.retention = 2;
    assert_eq!(inconsistent(b), "batch wholly below the retention point");

    let with_producers = |rest: Vec<u8>, n: u32| Body {
        producer_count: n,
        rest,
        ..Body::ok()
    };
    assert_eq!(
        inconsistent(with_producers(producer(0, &[(0, 1, 0)]), 1)),
        "producer id 0"
    );
    assert_eq!(
        inconsistent(with_producers(producer(100, &[]), 1)),
        "producer id not given yet"
    );
    assert_eq!(
        inconsistent(with_producers(
            [producer(3, &[(0, 1, 0)]), producer(3, &[(0, 1, 1)])].concat(),
            2
        )),
        "producer id twice"
    );
    assert_eq!(
        inconsistent(with_producers(producer(3, &[(0, 1, 0), (2, 1, 1)]), 1)),
        "remembered sequences not consecutive"
    );
    assert_eq!(
        inconsistent(with_producers(producer(3, &[(0, 2, 1), (2, 1, 1)]), 1)),
        "remembered offsets not increasing"
    );
    assert_eq!(
        inconsistent(with_producers(producer(3, &[(0, 1, 5)]), 1)),
        "remembered batch past the next offset"
    );
    assert_eq!(
        inconsistent(with_producers(producer(3, &[(0, 0, 0)]), 1)),
        "remembered batch of no records"
    );
    let mut p = producer(3, &[(0, 1, 0)]);
    p[8] = 6;
    p.extend_from_slice(&[0; 5 * 20]);
    assert_eq!(
        inconsistent(with_producers(p, 1)),
        "remembered batches above 5"
    );
    assert_eq!(
        inconsistent(with_producers(
            [producer(3, &[(0, 1, 0)]), vec![0]].concat(),
            1
        )),
        "bytes after the last producer"
    );
}
