use super::*;

fn ids_in_use_order(t: &DedupTable) -> Vec<u64> {
    t.producers().map(|(id, _)| id).collect()
}

/// A table of `capacity` with `ids` registered, in that order.
fn table(capacity: u32, ids: &[u64]) -> DedupTable {
    let mut t = DedupTable::new(capacity);
    for &id in ids {
        t.register(id);
    }
    t
}

#[test]
fn a_registered_producer_starts_at_sequence_zero() {
    let mut t = table(8, &[7]);
    assert!(t.contains(7));
    assert_eq!(t.last_seq(7), None);
    assert_eq!(t.admit(7, 3, 1, 0), Admission::SequenceGap { expected: 0 });
    assert_eq!(t.admit(7, 0, 2, 0), Admission::Accepted);
    assert_eq!(t.last_seq(7), Some(1));
}

#[test]
fn a_producer_never_registered_is_refused_at_any_sequence() {
    let mut t = table(8, &[1]);
    for seq in [0, 1, 7, u64::MAX] {
        assert_eq!(t.admit(9, seq, 1, 0), Admission::UnknownProducer);
    }
    assert!(!t.contains(9));
    assert_eq!(ids_in_use_order(&t), vec![1]);
}

#[test]
fn registering_evicts_the_least_recently_used_producer() {
    let mut t = table(2, &[1, 2]);
    t.admit(1, 0, 1, 0);
    // 2 (registered, no batch) is now the least recently used.
    t.register(3);
    assert_eq!(ids_in_use_order(&t), vec![1, 3]);
    // Evicted: even its first batch is refused, at sequence 0.
    assert_eq!(t.admit(2, 0, 1, 1), Admission::UnknownProducer);
    // Registering an id already tracked only touches it.
    t.register(1);
    assert_eq!(ids_in_use_order(&t), vec![3, 1]);
    assert_eq!(t.last_seq(1), Some(0));
}

#[test]
fn consecutive_batches_are_accepted() {
    let mut t = table(8, &[7]);
    assert_eq!(t.admit(7, 0, 2, 10), Admission::Accepted);
    assert_eq!(t.admit(7, 2, 3, 12), Admission::Accepted);
    assert_eq!(t.admit(7, 5, 1, 15), Admission::Accepted);
    assert_eq!(t.last_seq(7), Some(5));
}

#[test]
fn a_retry_is_answered_with_the_original_offsets() {
    let mut t = table(8, &[7]);
    t.admit(7, 0, 2, 10);
    t.admit(7, 2, 3, 40);
    assert_eq!(
        t.admit(7, 0, 2, 99),
        Admission::Duplicate {
            base_offset: 10,
            count: 2
        }
    );
    assert_eq!(
        t.admit(7, 2, 3, 99),
        Admission::Duplicate {
            base_offset: 40,
            count: 3
        }
    );
    // A duplicate changes nothing: the next batch still follows seq 4.
    assert_eq!(t.admit(7, 5, 1, 99), Admission::Accepted);
}

#[test]
fn a_gap_names_the_expected_sequence() {
    let mut t = table(8, &[7]);
    t.admit(7, 0, 2, 0);
    assert_eq!(t.admit(7, 3, 1, 2), Admission::SequenceGap { expected: 2 });
    assert_eq!(t.last_seq(7), Some(1));
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let mut t = table(8, &[7]);
    for k in 0..7u64 {
        assert_eq!(t.admit(7, k, 1, 100 + k), Admission::Accepted);
    }
    // Batches 2..=6 are remembered; 0 and 1 have been forgotten.
    for k in 2..7u64 {
        assert_eq!(
            t.admit(7, k, 1, 0),
            Admission::Duplicate {
                base_offset: 100 + k,
                count: 1
            }
        );
    }
    assert_eq!(
        t.admit(7, 1, 1, 0),
        Admission::StaleSequence { last_seq: 6 }
    );
}

#[test]
fn a_range_overlapping_a_remembered_batch_without_equalling_it_is_stale() {
    let mut t = table(8, &[7]);
    t.admit(7, 0, 4, 0);
    assert_eq!(
        t.admit(7, 0, 3, 0),
        Admission::StaleSequence { last_seq: 3 }
    );
    assert_eq!(
        t.admit(7, 2, 5, 0),
        Admission::StaleSequence { last_seq: 3 }
    );
}

#[test]
fn producers_are_independent() {
    let mut t = table(8, &[1, 2]);
    t.admit(1, 0, 1, 0);
    t.admit(2, 0, 1, 1);
    assert_eq!(
        t.admit(1, 0, 1, 5),
        Admission::Duplicate {
            base_offset: 0,
            count: 1
        }
    );
    assert_eq!(t.admit(2, 1, 1, 5), Admission::Accepted);
}

#[test]
fn a_full_table_evicts_the_least_recently_applied_producer() {
    let mut t = table(3, &[1, 2, 3]);
    t.admit(1, 0, 1, 0);
    t.admit(2, 0, 1, 1);
    t.admit(3, 0, 1, 2);
    // Producer 1 is used again (a refused batch counts as use).
    assert_eq!(t.admit(1, 5, 1, 3), Admission::SequenceGap { expected: 1 });
    assert_eq!(ids_in_use_order(&t), vec![2, 3, 1]);
    t.register(4);
    assert_eq!(t.admit(4, 0, 1, 3), Admission::Accepted);
    assert_eq!(ids_in_use_order(&t), vec![3, 1, 4]);
    assert!(!t.contains(2));
    assert_eq!(t.len(), 3);
    // The evicted producer's state is gone: its next batch is refused
    // rather than taken for a new one.
    assert_eq!(t.admit(2, 1, 1, 4), Admission::UnknownProducer);
    // And the others still deduplicate.
    assert_eq!(
        t.admit(3, 0, 1, 9),
        Admission::Duplicate {
            base_offset: 2,
            count: 1
        }
    );
}

#[test]
fn an_unknown_producer_refused_does_not_evict() {
    let mut t = table(1, &[1]);
    t.admit(1, 0, 1, 0);
    assert_eq!(t.admit(2, 0, 1, 1), Admission::UnknownProducer);
    assert!(t.contains(1));
}

#[test]
fn the_last_possible_sequence_has_no_successor() {
    let mut t = table(1, &[1]);
    t.admit(1, 0, 1, 0);
    // Jump to the top with a gap first refused...
    assert_eq!(
        t.admit(1, u64::MAX, 1, 1),
        Admission::SequenceGap { expected: 1 }
    );
    let mut t = DedupTable::new(1);
    t.restore_producer(
        1,
        &[SeqBatch {
            first_seq: u64::MAX - 1,
            count: 2,
            base_offset: 0,
        }],
    );
    // ...and after a batch ending at u64::MAX every batch is stale.
    assert_eq!(
        t.admit(1, u64::MAX, 1, 2),
        Admission::StaleSequence { last_seq: u64::MAX }
    );
}

#[test]
fn equality_ignores_slot_positions_but_not_use_order() {
    let mut a = table(2, &[1]);
    a.admit(1, 0, 1, 0);
    a.register(2);
    a.admit(2, 0, 1, 1);
    a.register(3); // evicts 1; 3 takes slot 0
    a.admit(3, 0, 1, 2);
    let mut b = DedupTable::new(2);
    b.restore_producer(
        2,
        &[SeqBatch {
            first_seq: 0,
            count: 1,
            base_offset: 1,
        }],
    );
    b.restore_producer(
        3,
        &[SeqBatch {
            first_seq: 0,
            count: 1,
            base_offset: 2,
        }],
    );
    assert_eq!(a, b);
    a.admit(2, 1, 1, 3);
    b.admit(3, 1, 1, 3);
    assert_ne!(a, b);
}
