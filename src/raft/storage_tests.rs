//! Tests of `MemStorage` (the cases of etcd-raft's storage_test.go, plus the
//! panics and the bootstrap helpers).

use bytes::Bytes;

use super::*;
use crate::raft::config::NO_LIMIT;
use crate::raft::errors::Error;
use crate::raft::types::entry_encoding_size;
use crate::raft::types::test_util::{ents, snap};

/// A storage whose dummy entry is `ents[0]`, as if compacted to it.
fn storage_with(entries: Vec<Entry>) -> MemStorage {
    MemStorage {
        ents: entries,
        ..MemStorage::new()
    }
}

fn err(e: StorageError) -> Error {
    Error::Storage(e)
}

#[test]
fn term_is_readable_from_the_dummy_to_the_last_entry() {
    let s = storage_with(ents(3, &[3, 4, 5]));
    assert_eq!(s.term(2), Err(err(StorageError::Compacted)));
    assert_eq!(s.term(3), Ok(3));
    assert_eq!(s.term(4), Ok(4));
    assert_eq!(s.term(5), Ok(5));
    assert_eq!(s.term(6), Err(err(StorageError::Unavailable)));
}

#[test]
fn entries_respect_bounds_and_size_limit_but_return_at_least_one() {
    let es = ents(3, &[3, 4, 5, 6]);
    let size = |r: std::ops::Range<usize>| -> u64 { es[r].iter().map(entry_encoding_size).sum() };
    let half_of_last = entry_encoding_size(&es[3]) / 2;
    // (lo, hi, max_size, expected)
    let cases: Vec<(u64, u64, u64, Result<Vec<Entry>>)> = vec![
        (2, 6, NO_LIMIT, Err(err(StorageError::Compacted))),
        (3, 4, NO_LIMIT, Err(err(StorageError::Compacted))),
        (4, 5, NO_LIMIT, Ok(ents(4, &[4]))),
        (4, 6, NO_LIMIT, Ok(ents(4, &[4, 5]))),
        (4, 7, NO_LIMIT, Ok(ents(4, &[4, 5, 6]))),
        // Even with a zero budget the first entry is returned.
        (4, 7, 0, Ok(ents(4, &[4]))),
        (4, 7, size(1..3), Ok(ents(4, &[4, 5]))),
        (4, 7, size(1..3) + half_of_last, Ok(ents(4, &[4, 5]))),
        (4, 7, size(1..4) - 1, Ok(ents(4, &[4, 5]))),
        (4, 7, size(1..4), Ok(ents(4, &[4, 5, 6]))),
    ];
    for (lo, hi, max, want) in cases {
        let s = storage_with(es.clone());
        assert_eq!(s.entries(lo, hi, max), want, "entries({lo}, {hi}, {max})");
    }
}

#[test]
fn entries_of_a_storage_holding_only_the_dummy_are_unavailable() {
    let s = MemStorage::new();
    assert_eq!(
        s.entries(1, 1, NO_LIMIT),
        Err(err(StorageError::Unavailable))
    );
}

#[test]
#[should_panic(expected = "out of bound lastindex(5)")]
fn entries_past_the_last_index_panic() {
    let s = storage_with(ents(3, &[3, 4, 5]));
    let _ = s.entries(4, 7, NO_LIMIT);
}

#[test]
fn last_index_follows_appends() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    assert_eq!(s.last_index(), Ok(5));
    s.append(&ents(6, &[5])).unwrap();
    assert_eq!(s.last_index(), Ok(6));
}

#[test]
fn first_index_follows_compaction() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    assert_eq!(s.first_index(), Ok(4));
    s.compact(4).unwrap();
    assert_eq!(s.first_index(), Ok(5));
}

#[test]
fn compact_moves_the_dummy_and_refuses_to_go_back() {
    // (compact_index, expected result, dummy index, dummy term, len of ents)
    let cases = [
        (2, Err(err(StorageError::Compacted)), 3, 3, 3),
        (3, Err(err(StorageError::Compacted)), 3, 3, 3),
        (4, Ok(()), 4, 4, 2),
        (5, Ok(()), 5, 5, 1),
    ];
    for (i, want, windex, wterm, wlen) in cases {
        let mut s = storage_with(ents(3, &[3, 4, 5]));
        assert_eq!(s.compact(i), want, "compact({i})");
        assert_eq!(s.ents[0].index, windex, "compact({i})");
        assert_eq!(s.ents[0].term, wterm, "compact({i})");
        assert_eq!(s.ents.len(), wlen, "compact({i})");
    }
}

#[test]
fn compact_keeps_only_index_and_term_of_the_new_dummy() {
    let mut es = ents(3, &[3, 4, 5]);
    es[1].data = Bytes::from_static(b"payload");
    let mut s = storage_with(es);
    s.compact(4).unwrap();
    assert_eq!(s.ents[0], ents(4, &[4])[0]);
}

#[test]
#[should_panic(expected = "compact 6 is out of bound lastindex(5)")]
fn compact_past_the_last_index_panics() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    let _ = s.compact(6);
}

#[test]
fn create_snapshot_records_index_term_conf_state_and_data() {
    let cs = ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    };
    let data = Bytes::from_static(b"data");
    for (i, term) in [(4, 4), (5, 5)] {
        let mut s = storage_with(ents(3, &[3, 4, 5]));
        let got = s
            .create_snapshot(i, Some(cs.clone()), data.clone())
            .unwrap();
        let want = Snapshot {
            data: data.clone(),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(cs.clone()),
                index: i,
                term,
            }),
        };
        assert_eq!(got, want);
        assert_eq!(s.snapshot(), Ok(want));
    }
}

#[test]
fn create_snapshot_keeps_the_conf_state_when_none_is_given() {
    let cs = ConfState {
        voters: vec![1],
        ..Default::default()
    };
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    s.set_conf_state(cs.clone());
    let got = s.create_snapshot(4, None, Bytes::new()).unwrap();
    assert_eq!(got.metadata.unwrap().conf_state, Some(cs));
}

#[test]
fn create_snapshot_at_or_before_the_current_one_is_out_of_date() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    s.create_snapshot(4, None, Bytes::new()).unwrap();
    for i in [3, 4] {
        assert_eq!(
            s.create_snapshot(i, None, Bytes::new()),
            Err(err(StorageError::SnapshotOutOfDate))
        );
    }
}

#[test]
#[should_panic(expected = "snapshot 6 is out of bound lastindex(5)")]
fn create_snapshot_past_the_last_index_panics() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    let _ = s.create_snapshot(6, None, Bytes::new());
}

#[test]
fn append_skips_compacted_entries_and_replaces_a_conflicting_suffix() {
    // (entries to append, expected ents including the dummy)
    let cases = [
        (ents(1, &[1, 2]), ents(3, &[3, 4, 5])),
        (ents(3, &[3, 4, 5]), ents(3, &[3, 4, 5])),
        (ents(3, &[3, 6, 6]), ents(3, &[3, 6, 6])),
        (ents(3, &[3, 4, 5, 5]), ents(3, &[3, 4, 5, 5])),
        // Drop the compacted head of the input, truncate, append.
        (ents(2, &[3, 3, 5]), ents(3, &[3, 5])),
        // Truncate the stored suffix and append.
        (ents(4, &[5]), ents(3, &[3, 5])),
        // A plain append.
        (ents(6, &[5]), ents(3, &[3, 4, 5, 5])),
    ];
    for (input, want) in cases {
        let mut s = storage_with(ents(3, &[3, 4, 5]));
        s.append(&input).unwrap();
        assert_eq!(s.ents, want, "append({input:?})");

        let mut owned = storage_with(ents(3, &[3, 4, 5]));
        owned.append_owned(input.clone()).unwrap();
        assert_eq!(owned.ents, want, "append_owned({input:?})");
    }
}

#[test]
fn append_of_nothing_is_a_no_op() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    s.append(&[]).unwrap();
    s.append_owned(Vec::new()).unwrap();
    assert_eq!(s.ents, ents(3, &[3, 4, 5]));
}

#[test]
#[should_panic(expected = "missing log entry [last: 5, append at: 7]")]
fn append_leaving_a_gap_panics() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    let _ = s.append(&ents(7, &[5]));
}

#[test]
#[should_panic(expected = "missing log entry [last: 5, append at: 7]")]
fn append_owned_leaving_a_gap_panics() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    let _ = s.append_owned(ents(7, &[5]));
}

#[test]
fn apply_snapshot_accepts_newer_snapshots_and_bootstrap_conf_states() {
    let cs = ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    };
    let with = |index, term| Snapshot {
        data: Bytes::from_static(b"data"),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(cs.clone()),
            index,
            term,
        }),
    };

    // The normal case.
    let mut s = MemStorage::new();
    assert_eq!(s.apply_snapshot(with(4, 4)), Ok(()));
    assert_eq!((s.first_index(), s.last_index()), (Ok(5), Ok(4)));
    assert_eq!(s.term(4), Ok(4));
    assert_eq!(s.snapshot(), Ok(with(4, 4)));

    // An older snapshot is refused.
    assert_eq!(
        s.apply_snapshot(with(3, 3)),
        Err(err(StorageError::SnapshotOutOfDate))
    );
    assert_eq!(
        s.apply_snapshot(with(4, 4)),
        Err(err(StorageError::SnapshotOutOfDate))
    );

    // Bootstrapping: index and term 0, only a configuration.
    let mut s = MemStorage::new();
    assert_eq!(s.apply_snapshot(with(0, 0)), Ok(()));
    assert_eq!(s.initial_state().unwrap().conf_state, cs);
}

#[test]
fn apply_snapshot_replaces_all_entries() {
    let mut s = storage_with(ents(3, &[3, 4, 5]));
    s.apply_snapshot(snap(10, 6)).unwrap();
    assert_eq!(s.ents, ents(10, &[6]));
    assert_eq!(s.term(10), Ok(6));
    assert_eq!(s.term(9), Err(err(StorageError::Compacted)));
}

#[test]
fn initial_state_reports_hard_state_and_conf_state() {
    let cs = ConfState {
        voters: vec![1, 2],
        learners: vec![3],
        ..Default::default()
    };
    let mut s = MemStorage::new_with_conf_state(cs.clone());
    let hs = HardState {
        term: 2,
        vote: 1,
        commit: 0,
    };
    s.set_hard_state(hs);
    assert_eq!(s.hard_state(), hs);
    assert_eq!(
        s.initial_state(),
        Ok(RaftState {
            hard_state: hs,
            conf_state: cs
        })
    );
    assert_eq!(MemStorage::new().initial_state(), Ok(RaftState::default()));
}

#[test]
fn a_new_storage_is_empty_at_index_zero() {
    let s = MemStorage::default();
    assert_eq!(s.first_index(), Ok(1));
    assert_eq!(s.last_index(), Ok(0));
    assert_eq!(s.term(0), Ok(0));
    assert_eq!(s.term(1), Err(err(StorageError::Unavailable)));
    let sn = s.snapshot().unwrap();
    assert_eq!(sn.metadata.map(|m| (m.index, m.term)), Some((0, 0)));
}

#[test]
#[should_panic(expected = "snapshot 4 is before the compaction point 5")]
fn create_snapshot_before_the_compaction_point_panics() {
    let mut s = storage_with(ents(3, &[3, 4, 5, 6]));
    s.compact(5).unwrap();
    let _ = s.create_snapshot(4, None, Bytes::new());
}

#[test]
fn create_snapshot_at_the_compaction_point_uses_the_dummy_term() {
    let mut s = storage_with(ents(3, &[3, 4, 5, 6]));
    s.compact(5).unwrap();
    let got = s.create_snapshot(5, None, Bytes::new()).unwrap();
    assert_eq!(got.metadata.map(|m| (m.index, m.term)), Some((5, 5)));
}
