//! Small value types of the log layer: the identity of an entry (`EntryId`),
//! a contiguous run of entries as a leader sent it (`LogSlice`), and the two
//! ways of measuring entries (encoded bytes for transport and apply limits,
//! payload bytes for the uncommitted-tail limit).
//!
//! Everything here is a pure function of its arguments; nothing allocates
//! beyond what a caller asks to be returned.

use std::fmt;

use prost::Message as _;

use crate::raftpb::Entry;

/// Names one log entry: at most one leader exists per term and a leader
/// never issues two entries at one index, so `(term, index)` identifies an
/// entry across all logs of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EntryId {
    pub term: u64,
    pub index: u64,
}

impl EntryId {
    pub const fn new(term: u64, index: u64) -> Self {
        EntryId { term, index }
    }

    /// The id of `e` (etcd's `pbEntryID`).
    pub fn of(e: &Entry) -> Self {
        EntryId {
            term: e.term,
            index: e.index,
        }
    }
}

impl From<&Entry> for EntryId {
    fn from(e: &Entry) -> Self {
        EntryId::of(e)
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{term:{} index:{}}}", self.term, self.index)
    }
}

/// A contiguous piece of the log of the leader at `term`, following the entry
/// `prev`.
///
/// A well-formed slice satisfies:
/// 1. `entries[i].index == prev.index + 1 + i` (contiguous);
/// 2. `prev.term <= entries[0].term` and terms never decrease along the
///    slice (terms in a log only grow);
/// 3. the last entry's term is `<= term` (a leader holds no entries of later
///    terms than its own).
///
/// Code that builds a `LogSlice` from outside data (a message, a storage
/// read) checks it with [`LogSlice::valid`]; everything downstream may rely
/// on the properties.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogSlice {
    /// The term of the leader whose log this slice is part of.
    pub term: u64,
    /// The entry just before `entries[0]`.
    pub prev: EntryId,
    pub entries: Vec<Entry>,
}

impl LogSlice {
    pub fn new(term: u64, prev: EntryId, entries: Vec<Entry>) -> Self {
        LogSlice {
            term,
            prev,
            entries,
        }
    }

    /// Index of the last entry, or `prev.index` if the slice is empty.
    pub fn last_index(&self) -> u64 {
        self.prev.index + self.entries.len() as u64
    }

    /// Id of the last entry, or `prev` if the slice is empty.
    pub fn last_entry_id(&self) -> EntryId {
        self.entries.last().map_or(self.prev, EntryId::of)
    }

    /// Checks the well-formedness properties listed on the type; the error
    /// names the first pair of ids that breaks them.
    pub fn valid(&self) -> Result<(), String> {
        let mut prev = self.prev;
        for e in &self.entries {
            let id = EntryId::of(e);
            if id.term < prev.term || id.index != prev.index + 1 {
                return Err(format!(
                    "leader term {}: entries {} and {} not consistent",
                    self.term, prev, id
                ));
            }
            prev = id;
        }
        if self.term < prev.term {
            return Err(format!(
                "leader term {}: entry {} has a newer term",
                self.term, prev
            ));
        }
        Ok(())
    }
}

/// Encoded (protobuf) size of one entry: the unit of `max_size_per_msg`,
/// `max_committed_size_per_ready` and storage reads.
///
/// This is prost's proto3 length, which omits zero-valued fields. etcd's
/// proto2 messages also count fields explicitly set to zero (e.g. an entry
/// whose type was set to `EntryNormal`), so a few such entries measure two
/// bytes less here than in etcd; entries with non-zero term and index and
/// default type measure the same.
pub fn entry_encoding_size(e: &Entry) -> u64 {
    e.encoded_len() as u64
}

/// Sum of [`entry_encoding_size`] over `ents` (etcd's `entsSize`).
pub fn ents_size(ents: &[Entry]) -> u64 {
    ents.iter().map(entry_encoding_size).sum()
}

/// Size of an entry's payload alone: the unit of
/// `max_uncommitted_entries_size`. Independent of term and index so that the
/// leader can add and later subtract the same amount; an empty entry (the one
/// a new leader appends) is 0 and therefore never refused.
pub fn entry_payload_size(e: &Entry) -> u64 {
    e.data.len() as u64
}

/// Sum of [`entry_payload_size`] over `ents` (etcd's `payloadsSize`).
pub fn payloads_size(ents: &[Entry]) -> u64 {
    ents.iter().map(entry_payload_size).sum()
}

/// The longest prefix of `ents` whose total encoded size is at most
/// `max_size`, but never empty when `ents` is not: a single entry larger than
/// the limit is still returned alone, otherwise the log could never make
/// progress past it.
pub fn limit_size(ents: &[Entry], max_size: u64) -> &[Entry] {
    &ents[..limit_size_len(ents, max_size)]
}

/// The length of the prefix [`limit_size`] returns; lets callers truncate an
/// owned `Vec` in place instead of copying.
pub fn limit_size_len(ents: &[Entry], max_size: u64) -> usize {
    let Some(first) = ents.first() else {
        return 0;
    };
    let mut size = entry_encoding_size(first);
    for (n, e) in ents.iter().enumerate().skip(1) {
        size = size.saturating_add(entry_encoding_size(e));
        if size > max_size {
            return n;
        }
    }
    ents.len()
}

/// Builders shared by the log layer's tests.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::raftpb::{Entry, Snapshot, SnapshotMetadata};

    /// One entry with the given term and index and nothing else.
    pub fn ent(term: u64, index: u64) -> Entry {
        Entry {
            term,
            index,
            ..Default::default()
        }
    }

    /// Entries at consecutive indexes from `first`, with the given terms.
    pub fn ents(first: u64, terms: &[u64]) -> Vec<Entry> {
        (first..).zip(terms).map(|(i, &t)| ent(t, i)).collect()
    }

    /// Entries at consecutive indexes from `first` with terms `from..to`.
    pub fn term_range(first: u64, from: u64, to: u64) -> Vec<Entry> {
        (first..).zip(from..to).map(|(i, t)| ent(t, i)).collect()
    }

    /// A snapshot with only index and term set.
    pub fn snap(index: u64, term: u64) -> Snapshot {
        Snapshot {
            metadata: Some(SnapshotMetadata {
                index,
                term,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
