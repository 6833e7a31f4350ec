use bytes::Bytes;

use super::*;
use crate::log::batch::BatchLimits;
use crate::log::builder::BatchBuilder;
use crate::log::error::BatchError;
use crate::log::offsets::OffsetOutOfRange;
use crate::raftpb::Entry;

fn batch(producer_id: u64, seq: u64, records: usize) -> Bytes {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(producer_id, seq, 1000 + seq);
    for i in 0..records {
        w.push(format!("record {i}").as_bytes()).unwrap();
    }
    w.finish().unwrap()
}

fn truncate(before_offset: u64) -> Bytes {
    Command::Truncate { before_offset }.encode()
}

fn init() -> Bytes {
    Command::InitProducer.encode()
}

fn given(producer_id: u64) -> ApplyOutcome {
    ApplyOutcome::ProducerInit { producer_id }
}

/// Applies `entries` from index 1 and returns the outcomes.
fn apply_all(s: &mut LogState, entries: &[Bytes]) -> Vec<ApplyOutcome> {
    entries
        .iter()
        .map(|e| s.apply(s.applied_index() + 1, e).unwrap())
        .collect()
}

fn appended(base_offset: u64, count: u32) -> ApplyOutcome {
    ApplyOutcome::Appended { base_offset, count }
}

#[test]
fn offsets_are_dense_and_skip_empty_entries_commands_and_config_changes() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let out = apply_all(
        &mut s,
        &[
            Bytes::new(),
            batch(0, 0, 3),
            Bytes::new(),
            batch(0, 0, 1),
            truncate(0),
        ],
    );
    assert_eq!(
        out,
        vec![
            ApplyOutcome::Empty,
            appended(0, 3),
            ApplyOutcome::Empty,
            appended(3, 1),
            ApplyOutcome::Truncated { earliest_offset: 0 },
        ]
    );
    let conf = Entry {
        r#type: EntryType::EntryConfChangeV2 as i32,
        index: 6,
        term: 1,
        data: Bytes::from_static(&[0x08, 0x01]),
    };
    assert_eq!(s.apply_entry(&conf), Ok(ApplyOutcome::Config));
    let normal = Entry {
        r#type: EntryType::EntryNormal as i32,
        index: 7,
        term: 1,
        data: batch(0, 0, 2),
    };
    assert_eq!(s.apply_entry(&normal), Ok(appended(4, 2)));
    assert_eq!(s.next_offset(), 6);
    assert_eq!(s.applied_index(), 7);
    assert_eq!(s.lookup(3).unwrap().entry_index, 4);
    assert_eq!(s.lookup(5).unwrap().entry_index, 7);
}

#[test]
fn batches_without_a_producer_are_never_deduplicated() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let b = batch(0, 0, 2);
    let out = apply_all(&mut s, &[b.clone(), b]);
    assert_eq!(out, vec![appended(0, 2), appended(2, 2)]);
}

#[test]
fn a_retry_committed_twice_is_applied_once_and_answered_with_the_original_offsets() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let first = batch(1, 0, 3);
    let out = apply_all(
        &mut s,
        &[init(), first.clone(), batch(0, 0, 1), first, batch(1, 3, 2)],
    );
    assert_eq!(
        out,
        vec![
            given(1),
            appended(0, 3),
            appended(3, 1),
            ApplyOutcome::Duplicate {
                base_offset: 0,
                count: 3
            },
            appended(4, 2),
        ]
    );
    assert_eq!(s.next_offset(), 6);
    assert_eq!(s.index().batch_count(), 3);
}

#[test]
fn sequence_errors_are_refused_without_taking_offsets() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let out = apply_all(
        &mut s,
        &[
            batch(1, 0, 1),
            init(),
            batch(1, 4, 1),
            batch(1, 0, 2),
            batch(1, 5, 1),
            batch(1, 1, 1),
            batch(1, 2, 1),
        ],
    );
    assert_eq!(
        out,
        vec![
            // Before the group gave id 1: not even sequence 0 is taken.
            ApplyOutcome::Refused(Refusal::UnknownProducer),
            given(1),
            ApplyOutcome::Refused(Refusal::SequenceGap { expected: 0 }),
            appended(0, 2),
            ApplyOutcome::Refused(Refusal::SequenceGap { expected: 2 }),
            ApplyOutcome::Refused(Refusal::StaleSequence { last_seq: 1 }),
            appended(2, 1),
        ]
    );
}

#[test]
fn invalid_entries_are_refused_and_still_applied() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let mut corrupt = batch(0, 0, 2).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let mut bad_cmd = truncate(0).to_vec();
    bad_cmd[12] ^= 1;
    let out = apply_all(
        &mut s,
        &[
            Bytes::from(corrupt),
            Bytes::from_static(&[0x42, 0, 0]),
            Bytes::from(bad_cmd),
            batch(0, 0, 1),
        ],
    );
    assert!(matches!(
        &out[0],
        ApplyOutcome::Refused(Refusal::Invalid(EntryError::Batch(
            BatchError::CrcMismatch { .. }
        )))
    ));
    assert_eq!(
        out[1],
        ApplyOutcome::Refused(Refusal::Invalid(EntryError::UnknownKind { magic: 0x42 }))
    );
    assert!(matches!(
        &out[2],
        ApplyOutcome::Refused(Refusal::Invalid(EntryError::Command(_)))
    ));
    assert_eq!(out[3], appended(0, 1));
    assert_eq!(s.applied_index(), 4);
}

#[test]
fn an_unknown_raft_entry_type_is_refused() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let e = Entry {
        r#type: 7,
        index: 1,
        term: 1,
        data: batch(0, 0, 1),
    };
    assert_eq!(
        s.apply_entry(&e),
        Ok(ApplyOutcome::Refused(Refusal::Invalid(
            EntryError::UnknownEntryType { entry_type: 7 }
        )))
    );
    assert_eq!(s.next_offset(), 0);
}

#[test]
fn entries_out_of_order_are_an_error_and_change_nothing() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let b = batch(0, 0, 1);
    assert_eq!(
        s.apply(2, &b),
        Err(ApplyError::NotNext {
            expected: 1,
            got: 2
        })
    );
    s.apply(1, &b).unwrap();
    assert_eq!(
        s.apply(1, &b),
        Err(ApplyError::NotNext {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(s.next_offset(), 1);
    assert_eq!(s.applied_index(), 1);
}

#[test]
fn a_batch_above_a_servers_limits_but_within_the_format_is_applied() {
    // Replicas with different configured limits must agree: apply checks
    // the format's ceiling only.
    let big = BatchLimits {
        max_batch_bytes: 4 << 20,
        max_records: 1 << 20,
        max_record_bytes: 4 << 20,
    };
    let mut b = BatchBuilder::new(big);
    let mut w = b.start(0, 0, 0);
    w.push(&vec![1u8; 2 << 20]).unwrap();
    let data = w.finish().unwrap();
    assert!(RecordBatch::parse(&data, &BatchLimits::DEFAULT).is_err());
    let mut s = LogState::new(LogConfig::DEFAULT);
    assert_eq!(s.apply(1, &data), Ok(appended(0, 1)));
}

#[test]
fn truncate_moves_the_earliest_offset_forward_only() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let out = apply_all(
        &mut s,
        &[
            batch(0, 0, 3),
            batch(0, 0, 3),
            truncate(4),
            truncate(2),
            truncate(7),
        ],
    );
    assert_eq!(out[2], ApplyOutcome::Truncated { earliest_offset: 4 });
    assert_eq!(out[3], ApplyOutcome::Truncated { earliest_offset: 4 });
    assert_eq!(
        out[4],
        ApplyOutcome::Refused(Refusal::TruncateBeyondEnd {
            requested: 7,
            latest: 6
        })
    );
    assert_eq!(s.earliest_offset(), 4);
    assert_eq!(s.retention_offset(), 4);
    assert_eq!(
        s.lookup(3),
        Err(OffsetOutOfRange {
            offset: 3,
            earliest: 4,
            latest: 6
        })
    );
    assert_eq!(s.lookup(4).unwrap().entry_index, 2);
    // Truncating to the end empties the log; appends continue densely.
    s.apply(6, &truncate(6)).unwrap();
    assert_eq!(s.index().batch_count(), 0);
    assert_eq!(s.apply(7, &batch(0, 0, 1)), Ok(appended(6, 1)));
}

#[test]
fn a_retry_of_a_truncated_batch_is_still_answered_with_its_offsets() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let first = batch(1, 0, 2);
    let out = apply_all(&mut s, &[init(), first.clone(), truncate(2), first]);
    assert_eq!(
        out[3],
        ApplyOutcome::Duplicate {
            base_offset: 0,
            count: 2
        }
    );
}

#[test]
fn compactable_index_is_below_the_first_retained_batch() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    assert_eq!(s.compactable_index(), 0);
    apply_all(
        &mut s,
        &[Bytes::new(), batch(0, 0, 2), batch(0, 0, 2), Bytes::new()],
    );
    assert_eq!(s.compactable_index(), 1);
    s.apply(5, &truncate(3)).unwrap();
    assert_eq!(s.compactable_index(), 2);
    s.apply(6, &truncate(4)).unwrap();
    assert_eq!(s.compactable_index(), 6);
}

#[test]
fn offsets_stop_at_max_offset() {
    let index = OffsetIndex::from_parts(Default::default(), MAX_OFFSET - 1, MAX_OFFSET - 1, 0, 0);
    let mut s = LogState::from_parts(
        LogConfig::DEFAULT,
        0,
        MAX_OFFSET - 1,
        index,
        DedupTable::new(1),
        FIRST_PRODUCER_ID,
    );
    assert_eq!(
        s.apply(1, &batch(0, 0, 2)),
        Ok(ApplyOutcome::Refused(Refusal::OffsetsExhausted {
            next_offset: MAX_OFFSET - 1,
            count: 2
        }))
    );
    assert_eq!(s.apply(2, &batch(0, 0, 1)), Ok(appended(MAX_OFFSET - 1, 1)));
}

#[test]
fn the_producer_bound_is_the_groups_config() {
    let mut s = LogState::new(LogConfig { max_producers: 2 });
    apply_all(&mut s, &[init(), init(), init()]);
    assert_eq!(s.dedup().len(), 2);
    assert!(!s.dedup().contains(1));
    assert_eq!(
        s.apply(4, &batch(1, 0, 1)),
        Ok(ApplyOutcome::Refused(Refusal::UnknownProducer))
    );
    assert_eq!(
        LogState::new(LogConfig { max_producers: 0 })
            .config()
            .max_producers,
        1
    );
}

/// The review's finding (issue 8 part 3): producer P's first batch
/// commits but its client times out; `max_producers` other producers
/// append and evict P; P's retry of that first batch (sequence 0) must be
/// refused, not written a second time. Records are counted by value.
#[test]
fn an_evicted_producers_retry_of_its_first_batch_is_refused_not_written_twice() {
    const CAPACITY: u32 = 4;
    let mut s = LogState::new(LogConfig {
        max_producers: CAPACITY,
    });
    const P: u64 = 1;
    assert_eq!(s.apply(1, &init()), Ok(given(P)));
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(P, 0, 1000);
    w.push(b"P's first").unwrap();
    let first = w.finish().unwrap();
    assert_eq!(s.apply(s.applied_index() + 1, &first), Ok(appended(0, 1)));
    for other in 2..=u64::from(CAPACITY) + 1 {
        assert_eq!(s.apply(s.applied_index() + 1, &init()), Ok(given(other)));
        let out = s.apply(s.applied_index() + 1, &batch(other, 0, 1)).unwrap();
        assert!(matches!(out, ApplyOutcome::Appended { .. }), "{out:?}");
    }
    assert!(!s.dedup().contains(P), "P was not evicted");
    let retry = s.apply(s.applied_index() + 1, &first).unwrap();
    assert_eq!(retry, ApplyOutcome::Refused(Refusal::UnknownProducer));
    assert_eq!(s.next_offset(), 1 + u64::from(CAPACITY));
    assert_eq!(s.index().batch_count(), 1 + CAPACITY as usize);
}

#[test]
fn init_gives_distinct_increasing_ids_the_same_on_every_replica() {
    let entries = [
        init(),
        batch(0, 0, 2),
        init(),
        Bytes::new(),
        truncate(1),
        init(),
        batch(2, 0, 1),
        init(),
    ];
    let mut a = LogState::new(LogConfig::DEFAULT);
    let mut b = LogState::new(LogConfig::DEFAULT);
    let out = apply_all(&mut a, &entries);
    assert_eq!(apply_all(&mut b, &entries), out);
    let ids: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            ApplyOutcome::ProducerInit { producer_id } => Some(*producer_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    assert_eq!(a.next_producer_id(), 5);
    assert_eq!(a, b);
    // Every id given is tracked, the newest most recently used; an init
    // takes no offset.
    assert_eq!(
        a.dedup().producers().map(|(id, _)| id).collect::<Vec<_>>(),
        vec![1, 3, 2, 4]
    );
    assert_eq!(a.next_offset(), 3);
}

#[test]
fn an_id_the_group_never_gave_is_refused_and_writes_nothing() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    let out = apply_all(&mut s, &[init(), batch(2, 0, 1), batch(u64::MAX, 0, 1)]);
    assert_eq!(
        out[1..],
        [
            ApplyOutcome::Refused(Refusal::UnknownProducer),
            ApplyOutcome::Refused(Refusal::UnknownProducer)
        ]
    );
    assert_eq!(s.next_offset(), 0);
    assert!(!s.dedup().contains(2));
    // Once given, the same id's batch at sequence 0 is taken.
    assert_eq!(s.apply(4, &init()), Ok(given(2)));
    assert_eq!(s.apply(5, &batch(2, 0, 1)), Ok(appended(0, 1)));
}

#[test]
fn the_id_counter_survives_a_snapshot_and_a_restart() {
    let mut s = LogState::new(LogConfig::DEFAULT);
    apply_all(&mut s, &[init(), init(), batch(2, 0, 2), init()]);
    assert_eq!(s.next_producer_id(), 4);
    // A follower installing the snapshot, and a restart replaying its log
    // from the first retained batch.
    let at = s.applied_index();
    let mut installed = LogState::restore(&s.snapshot(), at + 1).unwrap();
    let mut restarted = LogState::restore(&s.snapshot(), 3).unwrap();
    assert_eq!(installed.next_producer_id(), 4);
    assert_eq!(restarted, s);
    for r in [&mut s, &mut installed, &mut restarted] {
        assert_eq!(r.apply(at + 1, &init()), Ok(given(4)));
        // The producers tracked before are still known: 2's retry is a
        // duplicate, 1 (registered, no batch) starts at 0.
        assert_eq!(
            r.apply(at + 2, &batch(2, 0, 2)),
            Ok(ApplyOutcome::Duplicate {
                base_offset: 0,
                count: 2
            })
        );
        assert_eq!(r.apply(at + 3, &batch(1, 0, 1)), Ok(appended(2, 1)));
    }
    assert_eq!(installed.next_producer_id(), 5);
    assert_eq!(restarted, s);
}

#[test]
fn producer_ids_stop_below_u64_max() {
    let mut s = LogState::from_parts(
        LogConfig::DEFAULT,
        0,
        0,
        OffsetIndex::new(),
        DedupTable::new(4),
        u64::MAX - 1,
    );
    assert_eq!(s.apply(1, &init()), Ok(given(u64::MAX - 1)));
    assert_eq!(
        s.apply(2, &init()),
        Ok(ApplyOutcome::Refused(Refusal::ProducerIdsExhausted))
    );
    assert_eq!(s.next_producer_id(), u64::MAX);
    assert_eq!(s.dedup().len(), 1);
}
