//! Tests of `RaftLog` (the cases of etcd-raft's log_test.go, plus the
//! applying budget, the error mapping and the panics that guard the cursor
//! invariants).

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;
use crate::raft::storage::MemStorage;
use crate::raft::types::entry_encoding_size;
use crate::raft::types::test_util::{ent, ents, snap, term_range};

type Log = RaftLog<MemStorage>;

fn compacted<T>() -> Result<T> {
    Err(StorageError::Compacted.into())
}

fn unavailable<T>() -> Result<T> {
    Err(StorageError::Unavailable.into())
}

/// A log over an empty storage holding `es` as unstable entries.
fn log_with_unstable(es: &[Entry]) -> Log {
    let mut l = RaftLog::new(MemStorage::new());
    l.append(es.to_vec());
    l
}

/// A log over a storage restored from snapshot (`index`, `term`).
fn log_after_snapshot(index: u64, term: u64) -> Log {
    let mut s = MemStorage::new();
    s.apply_snapshot(snap(index, term)).unwrap();
    RaftLog::new(s)
}

/// Whether `f` panics (the panic message still goes to stderr).
fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

#[test]
fn find_conflict_returns_the_first_mismatch_or_new_entry() {
    let cases = [
        // No conflict.
        (vec![], 0),
        (ents(1, &[1, 2, 3]), 0),
        (ents(2, &[2, 3]), 0),
        (ents(3, &[3]), 0),
        // No conflict, but new entries.
        (ents(1, &[1, 2, 3, 4, 4]), 4),
        (ents(2, &[2, 3, 4, 5]), 4),
        (ents(3, &[3, 4, 4]), 4),
        (ents(4, &[4, 4]), 4),
        // Conflicts with existing entries.
        (ents(1, &[4, 4]), 1),
        (ents(2, &[1, 4, 4]), 2),
        (ents(3, &[1, 2, 4, 4]), 3),
    ];
    for (es, want) in cases {
        let l = log_with_unstable(&ents(1, &[1, 2, 3]));
        assert_eq!(l.find_conflict(&es), want, "{es:?}");
    }
}

#[test]
fn find_conflict_by_term_finds_the_last_index_with_a_term_not_above_the_hint() {
    // (snapshot (index, term), terms of the entries after it, index, term,
    //  expected index)
    let log_from_1 = ((0, 0), vec![2, 2, 5, 5, 5]);
    let compacted_to_10 = ((10, 3), vec![3, 3, 4, 4, 4]);
    let cases = [
        (&log_from_1, 100, 2, 100), // Unavailable
        (&log_from_1, 5, 6, 5),
        (&log_from_1, 5, 5, 5),
        (&log_from_1, 5, 4, 2),
        (&log_from_1, 5, 2, 2),
        (&log_from_1, 5, 1, 0),
        (&log_from_1, 1, 2, 1),
        (&log_from_1, 1, 1, 0),
        (&log_from_1, 0, 0, 0),
        (&compacted_to_10, 30, 3, 30), // Unavailable
        (&compacted_to_10, 14, 9, 14),
        (&compacted_to_10, 14, 4, 14),
        (&compacted_to_10, 14, 3, 12),
        (&compacted_to_10, 14, 2, 9),
        (&compacted_to_10, 11, 5, 11),
        (&compacted_to_10, 10, 5, 10),
        (&compacted_to_10, 10, 3, 10),
        (&compacted_to_10, 10, 2, 9),
        (&compacted_to_10, 9, 2, 9), // Compacted
        (&compacted_to_10, 4, 2, 4), // Compacted
        (&compacted_to_10, 0, 0, 0), // Compacted
    ];
    for (((si, st), terms), index, term, want) in cases {
        let mut l = log_after_snapshot(*si, *st);
        l.append(ents(si + 1, terms));
        let (got, got_term) = l.find_conflict_by_term(index, term);
        assert_eq!(
            got, want,
            "find_conflict_by_term({index}, {term}) after snapshot {si}"
        );
        let want_term = l.zero_term_on_out_of_bounds(l.term(got));
        assert_eq!(got_term, want_term, "term at {got}");
    }
}

#[test]
fn is_up_to_date_compares_last_term_then_last_index() {
    let l = log_with_unstable(&ents(1, &[1, 2, 3]));
    let last = l.last_index();
    let cases = [
        // A later term wins whatever the index.
        (last - 1, 4, true),
        (last, 4, true),
        (last + 1, 4, true),
        // An earlier term loses whatever the index.
        (last - 1, 2, false),
        (last, 2, false),
        (last + 1, 2, false),
        // The same term: the longer (or equal) log wins.
        (last - 1, 3, false),
        (last, 3, true),
        (last + 1, 3, true),
    ];
    for (index, term, want) in cases {
        assert_eq!(
            l.is_up_to_date(EntryId::new(term, index)),
            want,
            "({term}, {index})"
        );
    }
}

#[test]
fn append_truncates_conflicts_and_moves_the_unstable_offset() {
    // (to append, expected last index, expected log, expected unstable offset)
    let cases = [
        (vec![], 2, ents(1, &[1, 2]), 3),
        (ents(3, &[2]), 3, ents(1, &[1, 2, 2]), 3),
        // Conflicts at index 1.
        (ents(1, &[2]), 1, ents(1, &[2]), 1),
        // Conflicts at index 2.
        (ents(2, &[3, 3]), 3, ents(1, &[1, 3, 3]), 2),
    ];
    for (app, want_last, want, want_offset) in cases {
        let mut s = MemStorage::new();
        s.append(&ents(1, &[1, 2])).unwrap();
        let mut l = RaftLog::new(s);
        assert_eq!(l.append(app.clone()), want_last, "{app:?}");
        assert_eq!(l.entries(1, NO_LIMIT), Ok(want), "{app:?}");
        assert_eq!(l.unstable.offset, want_offset, "{app:?}");
    }
}

#[test]
#[should_panic(expected = "after(1) is out of range [committed(2)]")]
fn append_over_a_committed_entry_panics() {
    let mut l = log_with_unstable(&ents(1, &[1, 2, 3]));
    l.committed = 2;
    l.append(ents(2, &[4]));
}

#[test]
fn maybe_append_matches_prev_then_appends_and_commits() {
    let (last, last_term, commit) = (3u64, 3u64, 1u64);
    struct Case {
        prev: EntryId,
        committed: u64,
        entries: Vec<Entry>,
        want: Option<u64>,
        want_commit: u64,
        want_panic: bool,
    }
    let case = |(prev_term, prev_index), committed, entries, want, want_commit| Case {
        prev: EntryId::new(prev_term, prev_index),
        committed,
        entries,
        want,
        want_commit,
        want_panic: false,
    };
    let cases = [
        // No match: the term differs.
        case(
            (last_term - 1, last),
            last,
            ents(last + 1, &[4]),
            None,
            commit,
        ),
        // No match: the index is past the end.
        case(
            (last_term, last + 1),
            last,
            ents(last + 2, &[4]),
            None,
            commit,
        ),
        // Match with the last entry.
        case((last_term, last), last, vec![], Some(last), last),
        // Commit no further than the slice goes.
        case((last_term, last), last + 1, vec![], Some(last), last),
        // Commit up to the given commit index.
        case((last_term, last), last - 1, vec![], Some(last), last - 1),
        // Commit never decreases.
        case((last_term, last), 0, vec![], Some(last), commit),
        case((0, 0), last, vec![], Some(0), commit),
        case(
            (last_term, last),
            last,
            ents(last + 1, &[4]),
            Some(last + 1),
            last,
        ),
        case(
            (last_term, last),
            last + 1,
            ents(last + 1, &[4]),
            Some(last + 1),
            last + 1,
        ),
        case(
            (last_term, last),
            last + 2,
            ents(last + 1, &[4]),
            Some(last + 1),
            last + 1,
        ),
        case(
            (last_term, last),
            last + 2,
            ents(last + 1, &[4, 4]),
            Some(last + 2),
            last + 2,
        ),
        // Match with an entry in the middle.
        case(
            (last_term - 1, last - 1),
            last,
            ents(last, &[4]),
            Some(last),
            last,
        ),
        case(
            (last_term - 2, last - 2),
            last,
            ents(last - 1, &[4]),
            Some(last - 1),
            last - 1,
        ),
        // Conflict with a committed entry.
        Case {
            want_panic: true,
            ..case(
                (last_term - 3, last - 3),
                last,
                ents(last - 2, &[4]),
                None,
                0,
            )
        },
        case(
            (last_term - 2, last - 2),
            last,
            ents(last - 1, &[4, 4]),
            Some(last),
            last,
        ),
    ];
    for (i, c) in cases.into_iter().enumerate() {
        // A leader term high enough for every slice here to be valid.
        let a = LogSlice::new(100, c.prev, c.entries.clone());
        a.valid().unwrap();
        let mut l = log_with_unstable(&ents(1, &[1, 2, 3]));
        l.committed = commit;
        let mut got = None;
        let panicked = panics(|| got = l.maybe_append(a, c.committed));
        assert_eq!(panicked, c.want_panic, "case {i}");
        if panicked {
            continue;
        }
        assert_eq!(got, c.want, "case {i}");
        assert_eq!(l.committed, c.want_commit, "case {i}");
        if got.is_some() && !c.entries.is_empty() {
            let last = l.last_index();
            let n = c.entries.len() as u64;
            assert_eq!(
                l.slice(last - n + 1, last + 1, NO_LIMIT),
                Ok(c.entries),
                "case {i}"
            );
        }
    }
}

#[test]
fn compaction_keeps_terms_and_unstable_entries_readable() {
    // 750 entries stable, 250 unstable, all committed and applied.
    let (last, unstable_from) = (1000u64, 751u64);
    let mut s = MemStorage::new();
    s.append(&term_range(1, 1, unstable_from)).unwrap();
    let mut l = RaftLog::new(s);
    l.append(term_range(unstable_from, unstable_from, last + 1));
    assert!(l.maybe_commit(l.last_entry_id()));
    l.applied_to(l.committed, 0);

    let offset = 500;
    l.store.compact(offset).unwrap();
    assert_eq!(l.last_index(), last);
    for j in offset..=l.last_index() {
        assert_eq!(l.term(j), Ok(j));
        assert!(l.match_term(EntryId::new(j, j)));
    }

    let unstable = l.next_unstable_ents();
    assert_eq!(unstable.len(), 250);
    assert_eq!(unstable[0].index, 751);

    let prev = l.last_index();
    l.append(vec![ent(prev + 1, prev + 1)]);
    assert_eq!(l.last_index(), prev + 1);
    assert_eq!(l.entries(l.last_index(), NO_LIMIT).map(|e| e.len()), Ok(1));
}

/// The setup of etcd's applying tests: snapshot at 3, entry 4 stable,
/// entries 5 and 6 unstable, committed up to 5, applied up to `applied`,
/// handed out for applying up to `applying`.
fn applying_log(max_size: u64, applied: u64, applying: u64, allow_unstable: bool) -> Log {
    let es = ents(4, &[1, 1, 1]);
    let mut s = MemStorage::new();
    s.apply_snapshot(snap(3, 1)).unwrap();
    s.append(&es[..1]).unwrap();
    let mut l = RaftLog::new_with_size(s, max_size);
    l.append(es);
    l.stable_to(EntryId::new(1, 4));
    l.maybe_commit(EntryId::new(1, 5));
    l.applied_to(applied, 0);
    l.accept_applying(applying, 0, allow_unstable);
    l
}

/// The applying cases shared by `has_next_committed_ents` and
/// `next_committed_ents`: (applied, applying, allow_unstable, paused,
/// pending snapshot, expected entries).
fn applying_cases() -> Vec<(u64, u64, bool, bool, bool, Vec<Entry>)> {
    let es = ents(4, &[1, 1, 1]);
    vec![
        (3, 3, true, false, false, es[..2].to_vec()),
        (3, 4, true, false, false, es[1..2].to_vec()),
        (3, 5, true, false, false, vec![]),
        (4, 4, true, false, false, es[1..2].to_vec()),
        (4, 5, true, false, false, vec![]),
        (5, 5, true, false, false, vec![]),
        // Only stable entries may be applied.
        (3, 3, false, false, false, es[..1].to_vec()),
        (3, 4, false, false, false, vec![]),
        (3, 5, false, false, false, vec![]),
        (4, 4, false, false, false, vec![]),
        (4, 5, false, false, false, vec![]),
        (5, 5, false, false, false, vec![]),
        // Paused.
        (3, 3, true, true, false, vec![]),
        // A snapshot is pending.
        (3, 3, true, false, true, vec![]),
    ]
}

#[test]
fn has_next_committed_ents_tracks_applying_stability_pause_and_snapshot() {
    for (i, (applied, applying, allow, paused, with_snap, want)) in
        applying_cases().into_iter().enumerate()
    {
        let mut l = applying_log(NO_LIMIT, applied, applying, allow);
        l.applying_ents_paused = paused;
        if with_snap {
            l.restore(snap(4, 1));
        }
        assert_eq!(
            l.has_next_committed_ents(allow),
            !want.is_empty(),
            "case {i}"
        );
    }
}

#[test]
fn next_committed_ents_tracks_applying_stability_pause_and_snapshot() {
    for (i, (applied, applying, allow, paused, with_snap, want)) in
        applying_cases().into_iter().enumerate()
    {
        let mut l = applying_log(NO_LIMIT, applied, applying, allow);
        l.applying_ents_paused = paused;
        if with_snap {
            l.restore(snap(4, 1));
        }
        assert_eq!(l.next_committed_ents(allow), want, "case {i}");
    }
}

#[test]
fn next_committed_ents_is_bounded_by_the_remaining_applying_budget() {
    let one = entry_encoding_size(&ent(1, 4));
    // Room for one entry and a bit: only entry 4 fits.
    let mut l = applying_log(one * 2 - 1, 3, 3, true);
    // The setup's accept_applying(3) paused (it stopped short of 5).
    l.applying_ents_paused = false;
    assert_eq!(l.next_committed_ents(true), ents(4, &[1]));
    // Entry 4 is handed out: the budget left is under one entry, but at
    // least one entry always goes out.
    l.accept_applying(4, one, true);
    assert!(l.applying_ents_paused, "cut short by the limit, so paused");
    assert!(l.next_committed_ents(true).is_empty());
    l.applied_to(4, one);
    assert!(!l.applying_ents_paused);
    assert_eq!(l.next_committed_ents(true), ents(5, &[1]));
}

#[test]
fn accept_applying_pauses_at_the_limit_or_when_cut_short() {
    let max = 100u64;
    // (index, allow_unstable, size, expected paused)
    let cases = [
        (3, true, max - 1, true),
        (3, true, max, true),
        (3, true, max + 1, true),
        (4, true, max - 1, true),
        (4, true, max, true),
        (4, true, max + 1, true),
        (5, true, max - 1, false),
        (5, true, max, true),
        (5, true, max + 1, true),
        // Only stable entries may be applied.
        (3, false, max - 1, true),
        (3, false, max, true),
        (3, false, max + 1, true),
        (4, false, max - 1, false),
        (4, false, max, true),
        (4, false, max + 1, true),
        (5, false, max - 1, false),
        (5, false, max, true),
        (5, false, max + 1, true),
    ];
    for (index, allow, size, want) in cases {
        let mut l = applying_log(max, 3, 3, allow);
        l.accept_applying(index, size, allow);
        assert_eq!(
            l.applying_ents_paused, want,
            "accept_applying({index}, {size}, {allow})"
        );
    }
}

#[test]
fn applied_to_releases_budget_without_underflow() {
    let (max, overshoot) = (100u64, 5u64);
    // (index, size, expected applying_ents_size, expected paused)
    let cases = [
        // Apply part of what is being applied (applying = 5).
        (4, overshoot - 1, max + 1, true),
        (4, overshoot, max, true),
        (4, overshoot + 1, max - 1, false),
        // Apply all of it.
        (5, overshoot - 1, max + 1, true),
        (5, overshoot, max, true),
        (5, overshoot + 1, max - 1, false),
        // Release all outstanding bytes.
        (4, max + overshoot, 0, false),
        // Release more than outstanding: no underflow.
        (4, max + overshoot + 1, 0, false),
    ];
    for (index, size, want_size, want_paused) in cases {
        let mut l = applying_log(max, 3, 3, false);
        l.accept_applying(5, max + overshoot, false);
        l.applied_to(index, size);
        assert_eq!(l.applied, index);
        assert_eq!(l.applying, 5);
        assert_eq!(
            l.applying_ents_size, want_size,
            "applied_to({index}, {size})"
        );
        assert_eq!(
            l.applying_ents_paused, want_paused,
            "applied_to({index}, {size})"
        );
    }
}

#[test]
#[should_panic(expected = "applied(6) is out of range [prevApplied(3), committed(5)]")]
fn applied_to_past_committed_panics() {
    applying_log(NO_LIMIT, 3, 3, true).applied_to(6, 0);
}

#[test]
#[should_panic(expected = "applied(2) is out of range [prevApplied(3), committed(5)]")]
fn applied_to_going_back_panics() {
    applying_log(NO_LIMIT, 3, 3, true).applied_to(2, 0);
}

#[test]
#[should_panic(expected = "applying(6) is out of range [prevApplying(3), committed(5)]")]
fn accept_applying_past_committed_panics() {
    applying_log(NO_LIMIT, 3, 3, true).accept_applying(6, 0, true);
}

#[test]
fn next_unstable_ents_returns_only_what_storage_lacks() {
    let previous = ents(1, &[1, 2]);
    // (first unstable index, expected)
    for (unstable, want) in [(3, vec![]), (1, previous.clone())] {
        let split = (unstable - 1) as usize;
        let mut s = MemStorage::new();
        s.append(&previous[..split]).unwrap();
        let mut l = RaftLog::new(s);
        l.append(previous[split..].to_vec());

        let got = l.next_unstable_ents().to_vec();
        if let Some(last) = got.last() {
            l.stable_to(EntryId::of(last));
        }
        assert_eq!(got, want);
        assert_eq!(l.unstable.offset, 3);
        assert!(!l.has_next_unstable_ents());
    }
}

#[test]
fn unstable_entries_in_progress_are_not_next_but_still_pending() {
    let mut l = log_with_unstable(&ents(1, &[1, 1]));
    assert!(l.has_next_unstable_ents());
    l.accept_unstable();
    assert!(!l.has_next_unstable_ents());
    assert!(l.has_next_or_in_progress_unstable_ents());
    l.append(ents(3, &[1]));
    assert_eq!(l.next_unstable_ents(), &ents(3, &[1])[..]);
    l.stable_to(EntryId::new(1, 3));
    assert!(!l.has_next_or_in_progress_unstable_ents());
}

#[test]
fn commit_to_never_decreases_and_never_passes_the_last_index() {
    // (commit to, expected committed or None for a panic)
    for (to, want) in [(3, Some(3)), (1, Some(2)), (4, None)] {
        let mut l = log_with_unstable(&ents(1, &[1, 2, 3]));
        l.committed = 2;
        let panicked = panics(|| l.commit_to(to));
        match want {
            Some(w) => {
                assert!(!panicked, "commit_to({to})");
                assert_eq!(l.committed, w, "commit_to({to})");
            }
            None => assert!(panicked, "commit_to({to})"),
        }
    }
}

#[test]
#[should_panic(expected = "tocommit(4) is out of range [lastIndex(3)]")]
fn commit_to_past_the_last_index_names_the_rule() {
    log_with_unstable(&ents(1, &[1, 2, 3])).commit_to(4);
}

#[test]
fn stable_to_moves_the_offset_only_for_a_matching_entry() {
    // (index, term, expected unstable offset)
    let cases = [
        (1, 1, 2),
        (2, 2, 3),
        (2, 1, 1), // the term does not match
        (3, 1, 1), // no such entry
    ];
    for (index, term, want) in cases {
        let mut l = log_with_unstable(&ents(1, &[1, 2]));
        l.stable_to(EntryId::new(term, index));
        assert_eq!(l.unstable.offset, want, "stable_to({term}, {index})");
    }
}

#[test]
fn stable_to_after_a_snapshot() {
    let (si, st) = (5u64, 2u64);
    // (index, term, unstable entries, expected unstable offset)
    let cases = [
        (si + 1, st, vec![], si + 1),
        (si, st, vec![], si + 1),
        (si - 1, st, vec![], si + 1),
        (si + 1, st + 1, vec![], si + 1),
        (si, st + 1, vec![], si + 1),
        (si - 1, st + 1, vec![], si + 1),
        (si + 1, st, ents(si + 1, &[st]), si + 2),
        (si, st, ents(si + 1, &[st]), si + 1),
        (si - 1, st, ents(si + 1, &[st]), si + 1),
        (si + 1, st + 1, ents(si + 1, &[st]), si + 1),
        (si, st + 1, ents(si + 1, &[st]), si + 1),
        (si - 1, st + 1, ents(si + 1, &[st]), si + 1),
    ];
    for (i, (index, term, new, want)) in cases.into_iter().enumerate() {
        let mut l = log_after_snapshot(si, st);
        l.append(new);
        l.stable_to(EntryId::new(term, index));
        assert_eq!(l.unstable.offset, want, "case {i}");
    }
}

#[test]
fn compaction_shrinks_the_readable_log() {
    // (compactions, entries left after each or None for an error, panics)
    type Case<'a> = (&'a [u64], &'a [Option<usize>], bool);
    let cases: [Case; 3] = [
        // Past the last index.
        (&[1001], &[None], true),
        (
            &[300, 500, 800, 900],
            &[Some(700), Some(500), Some(200), Some(100)],
            false,
        ),
        // Below the current compaction point.
        (&[300, 299], &[Some(700), None], false),
    ];
    for (compacts, left, want_panic) in cases {
        let mut s = MemStorage::new();
        s.append(&term_range(1, 1, 1001)).unwrap();
        let mut l = RaftLog::new(s);
        // A term of 0 never commits anything.
        assert!(!l.maybe_commit(EntryId::new(0, 1000)));
        l.applied_to(l.committed, 0);
        let panicked = panics(|| {
            for (&c, &want) in compacts.iter().zip(left) {
                match l.store.compact(c) {
                    Ok(()) => assert_eq!(Some(l.all_entries().len()), want, "compact({c})"),
                    Err(e) => {
                        assert_eq!(e, Error::Storage(StorageError::Compacted));
                        assert_eq!(want, None, "compact({c})");
                    }
                }
            }
        });
        assert_eq!(panicked, want_panic, "{compacts:?}");
    }
}

#[test]
fn a_log_over_a_restored_storage_starts_at_the_snapshot() {
    let (index, term) = (1000, 1000);
    let l = log_after_snapshot(index, term);
    assert!(l.all_entries().is_empty());
    assert_eq!(l.first_index(), index + 1);
    assert_eq!(l.committed, index);
    assert_eq!(l.applied, index);
    assert_eq!(l.applying, index);
    assert_eq!(l.unstable.offset, index + 1);
    assert_eq!(l.term(index), Ok(term));
}

#[test]
fn must_check_out_of_bounds_reports_compaction_and_panics_past_the_end() {
    let (offset, num) = (100u64, 100u64);
    let mut l = log_after_snapshot(offset, 0);
    l.append(term_range(offset + 1, offset + 1, offset + num + 1));
    let first = offset + 1;
    // (lo, hi, expected: Some(result) or None for a panic)
    let cases = [
        (first - 2, first + 1, Some(compacted())),
        (first - 1, first + 1, Some(compacted())),
        (first, first, Some(Ok(()))),
        (first + num / 2, first + num / 2, Some(Ok(()))),
        (first + num - 1, first + num - 1, Some(Ok(()))),
        (first + num, first + num, Some(Ok(()))),
        (first + num, first + num + 1, None),
        (first + num + 1, first + num + 1, None),
    ];
    for (lo, hi, want) in cases {
        let mut got = None;
        let panicked = panics(|| got = Some(l.must_check_out_of_bounds(lo, hi)));
        assert_eq!(panicked, want.is_none(), "[{lo}, {hi})");
        assert_eq!(got, want, "[{lo}, {hi})");
    }
}

#[test]
fn term_is_readable_from_the_snapshot_to_the_last_entry() {
    let (offset, num) = (100u64, 100u64);
    let mut l = log_after_snapshot(offset, 1);
    l.append(term_range(offset + 1, 1, num));
    assert_eq!(l.term(offset - 1), compacted());
    assert_eq!(l.term(offset), Ok(1));
    assert_eq!(l.term(offset + num / 2), Ok(num / 2));
    assert_eq!(l.term(offset + num - 1), Ok(num - 1));
    assert_eq!(l.term(offset + num), unavailable());
}

#[test]
fn term_with_an_unstable_snapshot() {
    let stored = 100u64;
    let restored = stored + 5;
    let mut l = log_after_snapshot(stored, 1);
    l.restore(snap(restored, 1));
    // The storage's entries are behind the unstable snapshot.
    assert_eq!(l.term(stored), compacted());
    // The gap between storage and the unstable snapshot.
    assert_eq!(l.term(stored + 1), compacted());
    assert_eq!(l.term(restored - 1), compacted());
    // The snapshot's own index.
    assert_eq!(l.term(restored), Ok(1));
    // Nothing after it.
    assert_eq!(l.term(restored + 1), unavailable());
}

#[test]
fn slice_stitches_stable_and_unstable_entries_within_the_limit() {
    // Indexes and terms in [128, 16384) all encode in two bytes, so every
    // entry has the same size and the limits below count entries exactly.
    let (offset, num) = (1000u64, 100u64);
    let last = offset + num;
    let half = offset + num / 2;
    let range = |from: u64, to: u64| term_range(from, from, to);
    let size = entry_encoding_size(&ent(half, half));

    let mut s = MemStorage::new();
    s.apply_snapshot(snap(offset, 0)).unwrap();
    s.append(&range(offset + 1, half)).unwrap();
    let mut l = RaftLog::new(s);
    l.append(range(half, last));

    // (lo, hi, limit, expected: Some(result) or None for a panic)
    let cases = [
        (offset - 1, offset + 1, NO_LIMIT, Some(compacted())),
        (offset, offset + 1, NO_LIMIT, Some(compacted())),
        // lo and hi inverted.
        (half, half - 1, NO_LIMIT, None),
        // hi past the end.
        (last, last + 1, NO_LIMIT, None),
        // No limit.
        (offset + 1, offset + 1, NO_LIMIT, Some(Ok(vec![]))),
        (
            offset + 1,
            half - 1,
            NO_LIMIT,
            Some(Ok(range(offset + 1, half - 1))),
        ),
        (
            offset + 1,
            half,
            NO_LIMIT,
            Some(Ok(range(offset + 1, half))),
        ),
        (
            offset + 1,
            half + 1,
            NO_LIMIT,
            Some(Ok(range(offset + 1, half + 1))),
        ),
        (
            offset + 1,
            last,
            NO_LIMIT,
            Some(Ok(range(offset + 1, last))),
        ),
        (half - 1, half, NO_LIMIT, Some(Ok(range(half - 1, half)))),
        (
            half - 1,
            half + 1,
            NO_LIMIT,
            Some(Ok(range(half - 1, half + 1))),
        ),
        (half - 1, last, NO_LIMIT, Some(Ok(range(half - 1, last)))),
        (half, half + 1, NO_LIMIT, Some(Ok(range(half, half + 1)))),
        (half, last, NO_LIMIT, Some(Ok(range(half, last)))),
        (last - 1, last, NO_LIMIT, Some(Ok(range(last - 1, last)))),
        // At least one entry, whatever the limit.
        (offset + 1, last, 0, Some(Ok(range(offset + 1, offset + 2)))),
        (half - 1, half + 1, 0, Some(Ok(range(half - 1, half)))),
        (half, last, 0, Some(Ok(range(half, half + 1)))),
        (half + 1, last, 0, Some(Ok(range(half + 1, half + 2)))),
        // Below one entry.
        (
            offset + 1,
            last,
            size - 1,
            Some(Ok(range(offset + 1, offset + 2))),
        ),
        (
            half - 1,
            half + 1,
            size - 1,
            Some(Ok(range(half - 1, half))),
        ),
        (half, last, size - 1, Some(Ok(range(half, half + 1)))),
        // Exactly one entry.
        (
            offset + 1,
            last,
            size,
            Some(Ok(range(offset + 1, offset + 2))),
        ),
        (half - 1, half + 1, size, Some(Ok(range(half - 1, half)))),
        (half, last, size, Some(Ok(range(half, half + 1)))),
        // Short of two.
        (
            offset + 1,
            last,
            size + 1,
            Some(Ok(range(offset + 1, offset + 2))),
        ),
        (
            half - 1,
            half + 1,
            size + 1,
            Some(Ok(range(half - 1, half))),
        ),
        (half, last, size + 1, Some(Ok(range(half, half + 1)))),
        // Exactly two.
        (
            offset + 1,
            last,
            size * 2,
            Some(Ok(range(offset + 1, offset + 3))),
        ),
        (
            half - 2,
            half + 1,
            size * 2,
            Some(Ok(range(half - 2, half))),
        ),
        (
            half - 1,
            half + 1,
            size * 2,
            Some(Ok(range(half - 1, half + 1))),
        ),
        (half, last, size * 2, Some(Ok(range(half, half + 2)))),
        // Short of three.
        (
            half - 2,
            half + 1,
            size * 3 - 1,
            Some(Ok(range(half - 2, half))),
        ),
        // Exactly three.
        (
            half - 1,
            half + 2,
            size * 3,
            Some(Ok(range(half - 1, half + 2))),
        ),
    ];
    for (lo, hi, lim, want) in cases {
        let mut got = None;
        let panicked = panics(|| got = Some(l.slice(lo, hi, lim)));
        assert_eq!(panicked, want.is_none(), "slice({lo}, {hi}, {lim})");
        assert_eq!(got, want, "slice({lo}, {hi}, {lim})");
    }
}

#[test]
fn scan_pages_through_the_same_entries_as_slice() {
    let (offset, num) = (47u64, 20u64);
    let last = offset + num;
    let half = offset + num / 2;
    let range = |from: u64, to: u64| term_range(from, from, to);
    let entry_size = ents_size(&range(half, half + 1));

    let mut s = MemStorage::new();
    s.apply_snapshot(snap(offset, 0)).unwrap();
    s.append(&range(offset + 1, half)).unwrap();
    let mut l = RaftLog::new(s);
    l.append(range(half, last));

    for page in [0, 1, 10, 100, entry_size, entry_size + 1] {
        for lo in offset + 1..last {
            for hi in lo..=last {
                let mut got = vec![];
                l.scan(lo, hi, page, |es| {
                    assert!(es.len() == 1 || ents_size(es) <= page);
                    got.extend_from_slice(es);
                    ControlFlow::Continue(())
                })
                .unwrap();
                assert_eq!(
                    Ok(got),
                    l.slice(lo, hi, NO_LIMIT),
                    "scan and slice differ on [{lo}, {hi}) with page {page}"
                );
            }
        }
    }

    // Breaking out of the callback stops the scan.
    let mut iters = 0;
    l.scan(offset + 1, half, 0, |_| {
        iters += 1;
        if iters == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(iters, 2);

    // Pages are filled up to the limit, not one entry at a time (the range
    // has an even length so every page holds two).
    l.scan(offset + 1, offset + 11, entry_size * 2, |es| {
        assert_eq!(es.len(), 2);
        assert_eq!(ents_size(es), entry_size * 2);
        ControlFlow::Continue(())
    })
    .unwrap();
}

#[test]
fn scan_of_a_compacted_range_is_an_error() {
    let l = log_after_snapshot(10, 1);
    assert_eq!(
        l.scan(5, 11, NO_LIMIT, |_| ControlFlow::Continue(())),
        compacted()
    );
}

#[test]
fn snapshot_prefers_the_unstable_one() {
    let mut l = log_after_snapshot(10, 1);
    assert_eq!(l.snapshot(), Ok(snap(10, 1)));
    assert!(!l.has_next_unstable_snapshot());
    assert!(!l.has_next_or_in_progress_snapshot());

    l.restore(snap(20, 2));
    assert_eq!(l.snapshot(), Ok(snap(20, 2)));
    assert_eq!(l.committed, 20);
    assert_eq!(l.first_index(), 21);
    assert_eq!(l.last_index(), 20);
    assert_eq!(l.last_entry_id(), EntryId::new(2, 20));
    assert_eq!(l.next_unstable_snapshot(), Some(&snap(20, 2)));

    // Handed out for writing: no longer next, still pending.
    l.accept_unstable();
    assert!(!l.has_next_unstable_snapshot());
    assert!(l.has_next_or_in_progress_snapshot());

    // Persisted.
    l.store.apply_snapshot(snap(20, 2)).unwrap();
    l.stable_snap_to(20);
    assert!(!l.has_next_or_in_progress_snapshot());
    assert_eq!(l.snapshot(), Ok(snap(20, 2)));
    assert_eq!(l.first_index(), 21);
}

#[test]
fn maybe_commit_needs_a_matching_entry_of_a_non_zero_term() {
    let mut l = log_with_unstable(&ents(1, &[1, 2, 2]));
    // Term 0 never commits.
    assert!(!l.maybe_commit(EntryId::new(0, 1)));
    // The term does not match.
    assert!(!l.maybe_commit(EntryId::new(1, 2)));
    assert_eq!(l.committed, 0);
    assert!(l.maybe_commit(EntryId::new(2, 2)));
    assert_eq!(l.committed, 2);
    // Not progress.
    assert!(!l.maybe_commit(EntryId::new(2, 2)));
    assert!(!l.maybe_commit(EntryId::new(1, 1)));
    assert!(l.maybe_commit(EntryId::new(2, 3)));
    assert_eq!(l.committed, 3);
}

#[test]
fn entries_past_the_end_are_empty_and_all_entries_reads_everything() {
    let mut s = MemStorage::new();
    s.append(&ents(1, &[1, 1])).unwrap();
    let mut l = RaftLog::new(s);
    l.append(ents(3, &[2, 2]));
    assert_eq!(l.entries(5, NO_LIMIT), Ok(vec![]));
    assert_eq!(l.entries(2, NO_LIMIT), Ok(ents(2, &[1, 2, 2])));
    assert_eq!(l.all_entries(), ents(1, &[1, 1, 2, 2]));
}

#[test]
fn zero_term_on_out_of_bounds_maps_range_errors_to_zero() {
    let l = log_with_unstable(&ents(1, &[1]));
    assert_eq!(l.zero_term_on_out_of_bounds(Ok(3)), 3);
    assert_eq!(l.zero_term_on_out_of_bounds(compacted()), 0);
    assert_eq!(l.zero_term_on_out_of_bounds(unavailable()), 0);
    assert_eq!(l.zero_term_on_out_of_bounds(l.term(9)), 0);
}

#[test]
#[should_panic(expected = "unexpected error")]
fn zero_term_on_out_of_bounds_panics_on_other_errors() {
    let l = log_with_unstable(&ents(1, &[1]));
    l.zero_term_on_out_of_bounds(Err(StorageError::SnapshotTemporarilyUnavailable.into()));
}

#[test]
fn display_matches_etcd() {
    let mut l = log_after_snapshot(4, 1);
    l.append(ents(5, &[1, 1]));
    l.accept_unstable();
    assert_eq!(
        l.to_string(),
        "committed=4, applied=4, applying=4, unstable.offset=5, \
         unstable.offsetInProgress=7, len(unstable.Entries)=2"
    );
}
