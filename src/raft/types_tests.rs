//! Tests of the log layer's value types and size helpers (the cases of
//! etcd-raft's types_test.go and the size tests of util_test.go).

use bytes::Bytes;

use super::test_util::{ent, ents};
use super::*;
use crate::raft::config::NO_LIMIT;

#[test]
fn entry_id_identifies_by_term_and_index() {
    assert_eq!(EntryId::new(5, 10), EntryId::new(5, 10));
    assert_ne!(EntryId::new(4, 10), EntryId::new(5, 10));
    assert_ne!(EntryId::new(5, 9), EntryId::new(5, 10));

    assert_eq!(EntryId::of(&Entry::default()), EntryId::new(0, 0));
    let with_data = Entry {
        data: Bytes::from_static(b"data"),
        ..ent(1, 2)
    };
    assert_eq!(EntryId::of(&with_data), EntryId::new(1, 2));
    assert_eq!(EntryId::from(&ent(10, 123)), EntryId::new(10, 123));
}

#[test]
fn log_slice_valid_accepts_only_well_formed_slices() {
    // Written (index, term) like the entries below.
    let id = |index, term| EntryId::new(term, index);
    let e = |index, term| ent(term, index);
    struct Case {
        term: u64,
        prev: EntryId,
        entries: Vec<Entry>,
        ok: bool,
        last: EntryId,
    }
    let case = |term, prev, entries, last: Option<EntryId>| Case {
        term,
        prev,
        entries,
        ok: last.is_some(),
        last: last.unwrap_or_default(),
    };
    let cases = [
        // The empty slice at the origin of the log.
        case(0, id(0, 0), vec![], Some(id(0, 0))),
        // Empty slices are valid only if term >= prev.term.
        case(0, id(123, 10), vec![], None),
        case(9, id(123, 10), vec![], None),
        case(10, id(123, 10), vec![], Some(id(123, 10))),
        case(11, id(123, 10), vec![], Some(id(123, 10))),
        // One entry.
        case(0, id(0, 0), vec![e(1, 1)], None),
        case(1, id(0, 0), vec![e(1, 1)], Some(id(1, 1))),
        case(2, id(0, 0), vec![e(1, 1)], Some(id(1, 1))),
        // Several entries.
        case(2, id(0, 0), vec![e(2, 1), e(3, 1), e(4, 2)], None),
        case(1, id(1, 1), vec![e(2, 1), e(3, 1), e(4, 2)], None),
        case(2, id(1, 1), vec![e(2, 1), e(3, 1), e(4, 2)], Some(id(4, 2))),
        // The first entry does not follow prev.
        case(10, id(123, 5), vec![e(111, 5)], None),
        case(10, id(123, 5), vec![e(124, 4)], None),
        case(10, id(123, 5), vec![e(234, 6)], None),
        case(10, id(123, 5), vec![e(124, 6)], Some(id(124, 6))),
        // Entries that do not follow each other.
        case(10, id(12, 2), vec![e(13, 2), e(12, 2)], None),
        case(10, id(12, 2), vec![e(13, 2), e(15, 2)], None),
        case(10, id(12, 2), vec![e(13, 2), e(14, 1)], None),
        case(10, id(12, 2), vec![e(13, 2), e(14, 3)], Some(id(14, 3))),
    ];
    for (i, c) in cases.into_iter().enumerate() {
        let s = LogSlice::new(c.term, c.prev, c.entries);
        assert_eq!(s.valid().is_ok(), c.ok, "case {i}: {:?}", s.valid());
        if c.ok {
            assert_eq!(s.last_entry_id(), c.last, "case {i}");
            assert_eq!(s.last_index(), c.last.index, "case {i}");
        }
    }
}

#[test]
fn limit_size_keeps_the_longest_prefix_within_the_limit_but_never_nothing() {
    let es = ents(4, &[4, 5, 6]);
    let size = |n: usize| ents_size(&es[..n]);
    let third = entry_encoding_size(&es[2]);
    // (max_size, expected prefix length)
    let cases = [
        (NO_LIMIT, 3),
        // Even with no budget at all, the first entry goes out.
        (0, 1),
        (size(2), 2),
        (size(2) + third / 2, 2),
        (size(3) - 1, 2),
        (size(3), 3),
    ];
    for (max, want) in cases {
        let got = limit_size(&es, max);
        assert_eq!(got, &es[..want], "max_size {max}");
        assert!(got.len() == 1 || ents_size(got) <= max, "max_size {max}");
        assert_eq!(limit_size_len(&es, max), want, "max_size {max}");
    }
    assert!(limit_size(&[], 0).is_empty());
}

#[test]
fn payload_size_of_an_empty_entry_is_zero() {
    // A new leader's empty entry must not count against the uncommitted
    // budget, or a full budget could block leadership itself.
    assert_eq!(entry_payload_size(&Entry::default()), 0);
    assert_eq!(entry_payload_size(&ent(7, 7)), 0);
}

#[test]
fn payload_size_counts_data_only_and_encoding_size_counts_everything() {
    let e = Entry {
        data: Bytes::from_static(b"abc"),
        ..ent(9, 9)
    };
    assert_eq!(entry_payload_size(&e), 3);
    assert_eq!(payloads_size(&[e.clone(), e.clone()]), 6);
    // tag+varint for term and index, tag+len+3 bytes for data.
    assert_eq!(entry_encoding_size(&e), 2 + 2 + 5);
    assert_eq!(ents_size(&[e.clone(), e]), 18);
}
