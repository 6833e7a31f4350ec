//! Tests of `Unstable` (the cases of etcd-raft's log_unstable_test.go).

use super::*;
use crate::raft::types::test_util::{ents, snap};

fn unstable(entries: Vec<Entry>, offset: u64, snapshot: Option<Snapshot>) -> Unstable {
    Unstable {
        snapshot,
        entries,
        offset,
        snapshot_in_progress: false,
        offset_in_progress: offset,
    }
}

#[test]
fn maybe_first_index_is_defined_only_by_a_snapshot() {
    // (entries, offset, snapshot, expected)
    let cases = [
        (ents(5, &[1]), 5, None, None),
        (vec![], 0, None, None),
        (ents(5, &[1]), 5, Some(snap(4, 1)), Some(5)),
        (vec![], 5, Some(snap(4, 1)), Some(5)),
    ];
    for (i, (es, offset, sn, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            unstable(es, offset, sn).maybe_first_index(),
            want,
            "case {i}"
        );
    }
}

#[test]
fn maybe_last_index_comes_from_entries_then_snapshot() {
    let cases = [
        // The last entry.
        (ents(5, &[1]), 5, None, Some(5)),
        (ents(5, &[1]), 5, Some(snap(4, 1)), Some(5)),
        // The snapshot.
        (vec![], 5, Some(snap(4, 1)), Some(4)),
        // Nothing.
        (vec![], 0, None, None),
    ];
    for (i, (es, offset, sn, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            unstable(es, offset, sn).maybe_last_index(),
            want,
            "case {i}"
        );
    }
}

#[test]
fn maybe_term_comes_from_entries_or_the_snapshot_index() {
    // (entries, offset, snapshot, index, expected)
    let cases = [
        // From entries.
        (ents(5, &[1]), 5, None, 5, Some(1)),
        (ents(5, &[1]), 5, None, 6, None),
        (ents(5, &[1]), 5, None, 4, None),
        (ents(5, &[1]), 5, Some(snap(4, 1)), 5, Some(1)),
        (ents(5, &[1]), 5, Some(snap(4, 1)), 6, None),
        // From the snapshot.
        (ents(5, &[1]), 5, Some(snap(4, 1)), 4, Some(1)),
        (ents(5, &[1]), 5, Some(snap(4, 1)), 3, None),
        (vec![], 5, Some(snap(4, 1)), 5, None),
        (vec![], 5, Some(snap(4, 1)), 4, Some(1)),
        (vec![], 0, None, 5, None),
    ];
    for (i, (es, offset, sn, index, want)) in cases.into_iter().enumerate() {
        assert_eq!(unstable(es, offset, sn).maybe_term(index), want, "case {i}");
    }
}

#[test]
fn restore_replaces_everything_with_the_snapshot() {
    let mut u = Unstable {
        entries: ents(5, &[1]),
        offset: 5,
        offset_in_progress: 6,
        snapshot: Some(snap(4, 1)),
        snapshot_in_progress: true,
    };
    let s = snap(6, 2);
    u.restore(s.clone());
    assert_eq!(u.offset, 7);
    assert_eq!(u.offset_in_progress, 7);
    assert!(u.entries.is_empty());
    assert_eq!(u.snapshot, Some(s));
    assert!(!u.snapshot_in_progress);
}

#[test]
fn next_entries_skips_those_in_progress() {
    // (offset_in_progress, expected)
    let cases = [
        // Nothing in progress.
        (5, ents(5, &[1, 1])),
        // Partly in progress.
        (6, ents(6, &[1])),
        // All in progress.
        (7, vec![]),
    ];
    for (in_progress, want) in cases {
        let u = Unstable {
            offset_in_progress: in_progress,
            ..unstable(ents(5, &[1, 1]), 5, None)
        };
        assert_eq!(
            u.next_entries(),
            &want[..],
            "in progress up to {in_progress}"
        );
    }
}

#[test]
fn next_snapshot_is_the_snapshot_unless_in_progress() {
    let s = snap(4, 1);
    let cases = [
        (None, false, None),
        (Some(s.clone()), false, Some(&s)),
        (Some(s.clone()), true, None),
    ];
    for (i, (sn, in_progress, want)) in cases.into_iter().enumerate() {
        let u = Unstable {
            snapshot: sn,
            snapshot_in_progress: in_progress,
            ..Default::default()
        };
        assert_eq!(u.next_snapshot(), want, "case {i}");
    }
}

#[test]
fn accept_in_progress_marks_all_entries_and_the_snapshot() {
    // (entries, snapshot?, offset_in_progress, snapshot_in_progress,
    //  expected offset_in_progress, expected snapshot_in_progress)
    let mut cases = vec![];
    for (with_snap, snap_in_progress) in [(false, false), (true, false), (true, true)] {
        let want_snap = with_snap;
        cases.extend([
            (vec![], with_snap, 5, snap_in_progress, 5, want_snap),
            (ents(5, &[1]), with_snap, 5, snap_in_progress, 6, want_snap),
            (
                ents(5, &[1, 1]),
                with_snap,
                5,
                snap_in_progress,
                7,
                want_snap,
            ),
            (
                ents(5, &[1, 1]),
                with_snap,
                6,
                snap_in_progress,
                7,
                want_snap,
            ),
            (
                ents(5, &[1, 1]),
                with_snap,
                7,
                snap_in_progress,
                7,
                want_snap,
            ),
        ]);
    }
    for (i, (es, with_snap, oip, sip, want_oip, want_sip)) in cases.into_iter().enumerate() {
        let mut u = Unstable {
            entries: es,
            snapshot: with_snap.then(|| snap(4, 1)),
            offset_in_progress: oip,
            snapshot_in_progress: sip,
            ..Default::default()
        };
        u.accept_in_progress();
        assert_eq!(u.offset_in_progress, want_oip, "case {i}");
        assert_eq!(u.snapshot_in_progress, want_sip, "case {i}");
    }
}

#[test]
fn stable_to_drops_persisted_entries_and_ignores_stale_acknowledgements() {
    struct Case {
        entries: Vec<Entry>,
        offset: u64,
        offset_in_progress: u64,
        snapshot: Option<Snapshot>,
        id: EntryId,
        // Expected offset, offset_in_progress, number of entries left.
        want: (u64, u64, usize),
    }
    let case = |entries, offset, offset_in_progress, snapshot, (index, term), want| Case {
        entries,
        offset,
        offset_in_progress,
        snapshot,
        id: EntryId::new(term, index),
        want,
    };
    let cases = [
        case(vec![], 0, 0, None, (5, 1), (0, 0, 0)),
        // Stable up to the first entry.
        case(ents(5, &[1]), 5, 6, None, (5, 1), (6, 6, 0)),
        case(ents(5, &[1, 1]), 5, 6, None, (5, 1), (6, 6, 1)),
        // ... with writes in progress beyond it.
        case(ents(5, &[1, 1]), 5, 7, None, (5, 1), (6, 7, 1)),
        // ... but the term does not match.
        case(ents(6, &[2]), 6, 7, None, (6, 1), (6, 7, 1)),
        // An entry that is already stable.
        case(ents(5, &[1]), 5, 6, None, (4, 1), (5, 6, 1)),
        case(ents(5, &[1]), 5, 6, None, (4, 2), (5, 6, 1)),
        // The same with a snapshot.
        case(ents(5, &[1]), 5, 6, Some(snap(4, 1)), (5, 1), (6, 6, 0)),
        case(ents(5, &[1, 1]), 5, 6, Some(snap(4, 1)), (5, 1), (6, 6, 1)),
        case(ents(5, &[1, 1]), 5, 7, Some(snap(4, 1)), (5, 1), (6, 7, 1)),
        case(ents(6, &[2]), 6, 7, Some(snap(5, 1)), (6, 1), (6, 7, 1)),
        // The id names the snapshot, not an entry.
        case(ents(5, &[1]), 5, 6, Some(snap(4, 1)), (4, 1), (5, 6, 1)),
        case(ents(5, &[2]), 5, 6, Some(snap(4, 2)), (4, 1), (5, 6, 1)),
    ];
    for (i, c) in cases.into_iter().enumerate() {
        let mut u = Unstable {
            entries: c.entries,
            offset: c.offset,
            offset_in_progress: c.offset_in_progress,
            snapshot: c.snapshot,
            snapshot_in_progress: false,
        };
        u.stable_to(c.id);
        assert_eq!(
            (u.offset, u.offset_in_progress, u.entries.len()),
            c.want,
            "case {i}"
        );
    }
}

#[test]
fn stable_snap_to_drops_only_the_matching_snapshot() {
    let mut u = Unstable {
        snapshot: Some(snap(4, 1)),
        snapshot_in_progress: true,
        ..Unstable::new(5)
    };
    u.stable_snap_to(3);
    assert!(u.snapshot.is_some());
    assert!(u.snapshot_in_progress);
    u.stable_snap_to(4);
    assert_eq!(u.snapshot, None);
    assert!(!u.snapshot_in_progress);
}

#[test]
fn truncate_and_append_appends_replaces_or_truncates() {
    // (entries, offset, offset_in_progress, to append,
    //  expected offset, expected offset_in_progress, expected entries)
    let cases = [
        // Append at the end.
        (
            ents(5, &[1]),
            5,
            5,
            ents(6, &[1, 1]),
            5,
            5,
            ents(5, &[1, 1, 1]),
        ),
        (
            ents(5, &[1]),
            5,
            6,
            ents(6, &[1, 1]),
            5,
            6,
            ents(5, &[1, 1, 1]),
        ),
        // Replace all unstable entries.
        (
            ents(5, &[1]),
            5,
            5,
            ents(5, &[2, 2]),
            5,
            5,
            ents(5, &[2, 2]),
        ),
        (
            ents(5, &[1]),
            5,
            5,
            ents(4, &[2, 2, 2]),
            4,
            4,
            ents(4, &[2, 2, 2]),
        ),
        (
            ents(5, &[1]),
            5,
            6,
            ents(5, &[2, 2]),
            5,
            5,
            ents(5, &[2, 2]),
        ),
        // Truncate some and append.
        (
            ents(5, &[1, 1, 1]),
            5,
            5,
            ents(6, &[2]),
            5,
            5,
            ents(5, &[1, 2]),
        ),
        (
            ents(5, &[1, 1, 1]),
            5,
            5,
            ents(7, &[2, 2]),
            5,
            5,
            ents(5, &[1, 1, 2, 2]),
        ),
        (
            ents(5, &[1, 1, 1]),
            5,
            6,
            ents(6, &[2]),
            5,
            6,
            ents(5, &[1, 2]),
        ),
        (
            ents(5, &[1, 1, 1]),
            5,
            7,
            ents(6, &[2]),
            5,
            6,
            ents(5, &[1, 2]),
        ),
    ];
    for (i, (es, offset, oip, app, woffset, woip, want)) in cases.into_iter().enumerate() {
        let mut u = Unstable {
            offset_in_progress: oip,
            ..unstable(es, offset, None)
        };
        u.truncate_and_append(app);
        assert_eq!(u.offset, woffset, "case {i}");
        assert_eq!(u.offset_in_progress, woip, "case {i}");
        assert_eq!(u.entries, want, "case {i}");
    }
}

#[test]
fn truncate_and_append_into_an_empty_unstable_takes_the_vec() {
    let mut u = Unstable::new(3);
    let app = ents(3, &[1, 1]);
    let buf = app.as_ptr();
    u.truncate_and_append(app);
    // The caller's buffer is reused, not copied.
    assert_eq!(u.entries.as_ptr(), buf);
}

#[test]
fn slice_returns_the_requested_range() {
    let u = unstable(ents(5, &[1, 2, 3]), 5, None);
    assert_eq!(u.slice(5, 8), &ents(5, &[1, 2, 3])[..]);
    assert_eq!(u.slice(6, 7), &ents(6, &[2])[..]);
    assert!(u.slice(8, 8).is_empty());
}

#[test]
#[should_panic(expected = "unstable.slice[4,6) out of bound [5,8]")]
fn slice_below_the_offset_panics() {
    let u = unstable(ents(5, &[1, 2, 3]), 5, None);
    let _ = u.slice(4, 6);
}

#[test]
#[should_panic(expected = "unstable.slice[6,9) out of bound [5,8]")]
fn slice_past_the_end_panics() {
    let u = unstable(ents(5, &[1, 2, 3]), 5, None);
    let _ = u.slice(6, 9);
}

#[test]
#[should_panic(expected = "invalid unstable.slice 7 > 6")]
fn inverted_slice_panics() {
    let u = unstable(ents(5, &[1, 2, 3]), 5, None);
    let _ = u.slice(7, 6);
}
