use super::*;

/// An index with batches of the given record counts, in entries 10, 20,
/// 30, ... of 100 bytes each, timestamps 1000, 2000, ...
fn index_of(counts: &[u32]) -> OffsetIndex {
    let mut ix = OffsetIndex::new();
    for (i, &c) in counts.iter().enumerate() {
        let n = i as u64 + 1;
        ix.append(n * 10, c, 100, n * 1000);
    }
    ix
}

fn loc(entry_index: u64, base_offset: u64, count: u64) -> BatchLocation {
    BatchLocation {
        entry_index,
        base_offset,
        count,
    }
}

#[test]
fn offsets_are_dense_across_batches() {
    let mut ix = OffsetIndex::new();
    assert_eq!(ix.append(3, 5, 100, 0), 0);
    assert_eq!(ix.append(4, 1, 100, 0), 5);
    assert_eq!(ix.append(9, 3, 100, 0), 6);
    assert_eq!(ix.next_offset(), 9);
    assert_eq!(ix.earliest_offset(), 0);
    assert_eq!(ix.total_bytes(), 300);
}

#[test]
fn lookup_finds_the_batch_holding_every_offset() {
    let ix = index_of(&[3, 1, 4]);
    let expected = [
        loc(10, 0, 3),
        loc(10, 0, 3),
        loc(10, 0, 3),
        loc(20, 3, 1),
        loc(30, 4, 4),
        loc(30, 4, 4),
        loc(30, 4, 4),
        loc(30, 4, 4),
    ];
    for (o, want) in expected.iter().enumerate() {
        assert_eq!(ix.lookup(o as u64), Ok(*want), "offset {o}");
    }
}

#[test]
fn lookup_outside_the_range_names_earliest_and_latest() {
    let mut ix = index_of(&[3, 1, 4]);
    assert_eq!(
        ix.lookup(8),
        Err(OffsetOutOfRange {
            offset: 8,
            earliest: 0,
            latest: 8
        })
    );
    ix.truncate_before(2);
    assert_eq!(
        ix.lookup(1),
        Err(OffsetOutOfRange {
            offset: 1,
            earliest: 2,
            latest: 8
        })
    );
    assert_eq!(OffsetIndex::new().lookup(0).unwrap_err().latest, 0);
}

#[test]
fn truncate_inside_a_batch_keeps_it_and_its_later_records() {
    let mut ix = index_of(&[3, 1, 4]);
    ix.truncate_before(2);
    assert_eq!(ix.earliest_offset(), 2);
    assert_eq!(ix.batch_count(), 3);
    assert_eq!(ix.lookup(2), Ok(loc(10, 0, 3)));
    ix.truncate_before(3);
    assert_eq!(ix.batch_count(), 2);
    assert_eq!(ix.first_entry_index(), Some(20));
    assert_eq!(ix.lookup(3), Ok(loc(20, 3, 1)));
    assert_eq!(ix.retained_bytes(), 200);
}

#[test]
fn truncate_never_moves_back_and_stops_at_the_next_offset() {
    let mut ix = index_of(&[3, 1, 4]);
    ix.truncate_before(5);
    ix.truncate_before(1);
    assert_eq!(ix.earliest_offset(), 5);
    ix.truncate_before(100);
    assert_eq!(ix.earliest_offset(), 8);
    assert_eq!(ix.batch_count(), 0);
    assert_eq!(ix.retained_bytes(), 0);
    // Appends after a full truncation start where the log ended.
    assert_eq!(ix.append(40, 2, 100, 0), 8);
    assert_eq!(ix.lookup(8), Ok(loc(40, 8, 2)));
}

#[test]
fn dropping_entries_below_a_snapshot_moves_the_readable_start() {
    let mut ix = index_of(&[3, 1, 4]);
    ix.drop_entries_below(21);
    assert_eq!(ix.earliest_offset(), 4);
    assert_eq!(ix.lookup(3).unwrap_err().earliest, 4);
    assert_eq!(ix.lookup(4), Ok(loc(30, 4, 4)));
    ix.drop_entries_below(31);
    assert_eq!(ix.earliest_offset(), 8);
    assert_eq!(ix.batch_count(), 0);
    // Replicated totals are untouched by what this replica holds.
    assert_eq!(ix.total_bytes(), 300);
    assert_eq!(ix.next_offset(), 8);
}

#[test]
fn locations_from_walks_the_batch_holding_the_offset_and_all_after() {
    let ix = index_of(&[3, 1, 4]);
    let walked: Vec<_> = ix.locations_from(3).unwrap().collect();
    assert_eq!(walked, vec![loc(20, 3, 1), loc(30, 4, 4)]);
    assert!(ix.locations_from(8).is_err());
}

#[test]
fn size_limit_point_keeps_at_most_the_limit_in_whole_batches() {
    let ix = index_of(&[3, 1, 4]);
    assert_eq!(ix.offset_keeping_bytes(300), 0);
    assert_eq!(ix.offset_keeping_bytes(299), 3);
    assert_eq!(ix.offset_keeping_bytes(200), 3);
    assert_eq!(ix.offset_keeping_bytes(100), 4);
    assert_eq!(ix.offset_keeping_bytes(99), 8);
    assert_eq!(ix.offset_keeping_bytes(0), 8);
}

#[test]
fn age_limit_point_uses_the_running_maximum_timestamp() {
    let mut ix = OffsetIndex::new();
    ix.append(1, 1, 10, 5000);
    // A producer whose clock is behind: the running maximum stays 5000,
    // so this batch is not older than the one before it.
    ix.append(2, 1, 10, 1000);
    ix.append(3, 1, 10, 7000);
    assert_eq!(ix.offset_newer_than(5000), 0);
    assert_eq!(ix.offset_newer_than(5001), 2);
    assert_eq!(ix.offset_newer_than(7001), 3);
    assert_eq!(ix.max_timestamp_ms(), 7000);
}

#[test]
fn retention_points_never_fall_below_the_earliest_offset() {
    let mut ix = index_of(&[3, 1, 4]);
    ix.truncate_before(2);
    assert_eq!(ix.offset_keeping_bytes(1000), 2);
    assert_eq!(ix.offset_newer_than(0), 2);
}

#[test]
fn from_parts_derives_the_readable_start() {
    let ix = index_of(&[3, 1, 4]);
    let rebuilt = OffsetIndex::from_parts(ix.batches().clone(), 0, 8, 300, 3000);
    assert_eq!(rebuilt, ix);
    let mut dropped = ix.clone();
    dropped.drop_entries_below(21);
    let rebuilt = OffsetIndex::from_parts(dropped.batches().clone(), 0, 8, 300, 3000);
    assert_eq!(rebuilt, dropped);
}

#[test]
fn memory_is_given_back_after_a_large_truncation() {
    let mut ix = OffsetIndex::new();
    for i in 1..=10_000 {
        ix.append(i, 1, 1, 0);
    }
    let before = ix.batches.capacity();
    ix.truncate_before(9_990);
    assert!(
        ix.batches.capacity() < before / 4,
        "{}",
        ix.batches.capacity()
    );
    assert_eq!(ix.lookup(9_995), Ok(loc(9_996, 9_995, 1)));
}
