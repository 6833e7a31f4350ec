//! `LogState`: the replicated state machine of one log group. The runtime
//! hands it every committed entry in index order; it decides, the same way
//! on every replica, what the entry does (append records at the next
//! offsets, answer a retry with its original offsets, refuse a sequence
//! gap, move the retention point, give a producer id, nothing) and keeps
//! the offset index that reads use.
//!
//! Determinism is the whole contract: the outcome of an entry depends on
//! the entries before it and the group's replicated `LogConfig`, never on
//! a replica's own configuration, clock or history of restarts and
//! snapshots. Bad bytes in a committed entry are applied as a no-op
//! (`Refused`), on every replica alike, never a panic.

use bytes::Bytes;

use super::batch::{BatchLimits, RecordBatch};
use super::command::Command;
use super::dedup::{Admission, DedupTable};
use super::entry::EntryKind;
use super::error::{ApplyError, EntryError, SnapshotError};
use super::offsets::{BatchLocation, OffsetIndex, OffsetOutOfRange};
use crate::raftpb::{Entry, EntryType};

/// The largest offset a group will assign: 2^63, so that no sum of an
/// offset and a count can overflow (a snapshot's offsets are checked
/// against it). At a billion records a second, 292 years.
pub const MAX_OFFSET: u64 = 1 << 63;

/// A group's replicated configuration. It decides outcomes, so it must be
/// the same on every replica: it is fixed when the group is created (by
/// the metadata that creates it, not by a server's config file) and
/// carried in snapshots, which restore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Producers whose sequences are tracked at most (1..=MAX_PRODUCERS).
    pub max_producers: u32,
}

impl LogConfig {
    /// The largest `max_producers` a group may be created with.
    pub const MAX_PRODUCERS: u32 = 1 << 20;

    /// 4,096 producers per group: about 600 KiB of state when full.
    pub const DEFAULT: LogConfig = LogConfig {
        max_producers: 4096,
    };

    /// Whether the configuration is one a group may have.
    pub fn is_valid(&self) -> bool {
        (1..=LogConfig::MAX_PRODUCERS).contains(&self.max_producers)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::DEFAULT
    }
}

/// What applying one committed entry did; the runtime answers the entry's
/// proposer (if it is waiting on this replica) with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// A batch was appended: its records have offsets
    /// `base_offset .. base_offset + count`.
    Appended { base_offset: u64, count: u32 },
    /// A retry of a batch already appended: no new offsets; these are the
    /// original ones.
    Duplicate { base_offset: u64, count: u32 },
    /// Applied as a no-op; the proposer is told why.
    Refused(Refusal),
    /// A `Truncate` was applied: the earliest offset is now this (it never
    /// moves back, so a truncate below it answers the current one).
    Truncated { earliest_offset: u64 },
    /// An `InitProducer` was applied: this id is the producer's, tracked
    /// from now on with no batch (its first starts at sequence 0).
    ProducerInit { producer_id: u64 },
    /// An entry with no data (a new leader's): nothing to do.
    Empty,
    /// A configuration change entry: membership is Raft's business; it
    /// takes no offset.
    Config,
}

/// Why an entry was applied as a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The entry's bytes are not a valid batch or command.
    Invalid(EntryError),
    /// The producer's sequences are missing before this batch.
    SequenceGap { expected: u64 },
    /// An old sequence that is not (exactly) one of the remembered batches.
    StaleSequence { last_seq: u64 },
    /// The producer id is not tracked: the group never gave it, or its
    /// state was evicted since. Whatever the sequence, nothing is written.
    UnknownProducer,
    /// A truncate past the end of the log.
    TruncateBeyondEnd { requested: u64, latest: u64 },
    /// The group has assigned offsets up to `MAX_OFFSET`.
    OffsetsExhausted { next_offset: u64, count: u32 },
    /// The group has given every producer id below `u64::MAX`.
    ProducerIdsExhausted,
}

/// The state of one log group (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    config: LogConfig,
    applied_index: u64,
    /// The earliest offset by retention: replicated, moved by `Truncate`.
    retention_offset: u64,
    index: OffsetIndex,
    dedup: DedupTable,
    /// The id the next `InitProducer` gives (replicated; from 1: id 0
    /// means "no deduplication" in a batch).
    next_producer_id: u64,
}

/// The first producer id a group gives.
pub const FIRST_PRODUCER_ID: u64 = 1;

impl LogState {
    /// The state of a new group, before its first entry (index 1).
    /// `config` is clamped into range (`LogConfig::is_valid`).
    pub fn new(config: LogConfig) -> LogState {
        let config = LogConfig {
            max_producers: config.max_producers.clamp(1, LogConfig::MAX_PRODUCERS),
        };
        LogState {
            config,
            applied_index: 0,
            retention_offset: 0,
            index: OffsetIndex::new(),
            dedup: DedupTable::new(config.max_producers),
            next_producer_id: FIRST_PRODUCER_ID,
        }
    }

    /// Applies committed entry `entry_index` (normal entries; see
    /// `apply_entry` for any entry). Entries must come once each, in index
    /// order with no gap, starting after `applied_index()`.
    pub fn apply(&mut self, entry_index: u64, data: &Bytes) -> Result<ApplyOutcome, ApplyError> {
        self.advance(entry_index)?;
        Ok(match EntryKind::of(data) {
            EntryKind::Empty => ApplyOutcome::Empty,
            EntryKind::Batch => self.apply_batch(entry_index, data),
            EntryKind::Command => self.apply_command(data),
            EntryKind::Unknown(magic) => {
                ApplyOutcome::Refused(Refusal::Invalid(EntryError::UnknownKind { magic }))
            }
        })
    }

    /// Applies any committed Raft entry: normal entries by their data,
    /// configuration changes as `Config` (they take no offset).
    pub fn apply_entry(&mut self, entry: &Entry) -> Result<ApplyOutcome, ApplyError> {
        match EntryType::try_from(entry.r#type) {
            Ok(EntryType::EntryNormal) => self.apply(entry.index, &entry.data),
            Ok(EntryType::EntryConfChange | EntryType::EntryConfChangeV2) => {
                self.advance(entry.index)?;
                Ok(ApplyOutcome::Config)
            }
            Err(_) => {
                self.advance(entry.index)?;
                Ok(ApplyOutcome::Refused(Refusal::Invalid(
                    EntryError::UnknownEntryType {
                        entry_type: entry.r#type,
                    },
                )))
            }
        }
    }

    fn advance(&mut self, entry_index: u64) -> Result<(), ApplyError> {
        let expected = self.applied_index.saturating_add(1);
        if entry_index != expected {
            return Err(ApplyError::NotNext {
                expected,
                got: entry_index,
            });
        }
        self.applied_index = entry_index;
        Ok(())
    }

    fn apply_batch(&mut self, entry_index: u64, data: &Bytes) -> ApplyOutcome {
        // The format's ceiling, not a configured limit: see BatchLimits.
        let batch = match RecordBatch::parse(data, &BatchLimits::CEILING) {
            Ok(b) => b,
            Err(e) => return ApplyOutcome::Refused(Refusal::Invalid(EntryError::Batch(e))),
        };
        let h = *batch.header();
        let count = h.record_count;
        let base = self.index.next_offset();
        if base + u64::from(count) > MAX_OFFSET {
            return ApplyOutcome::Refused(Refusal::OffsetsExhausted {
                next_offset: base,
                count,
            });
        }
        if h.producer_id != 0 {
            match self.dedup.admit(h.producer_id, h.producer_seq, count, base) {
                Admission::Accepted => {}
                Admission::Duplicate { base_offset, count } => {
                    return ApplyOutcome::Duplicate { base_offset, count };
                }
                Admission::SequenceGap { expected } => {
                    return ApplyOutcome::Refused(Refusal::SequenceGap { expected });
                }
                Admission::StaleSequence { last_seq } => {
                    return ApplyOutcome::Refused(Refusal::StaleSequence { last_seq });
                }
                Admission::UnknownProducer => {
                    return ApplyOutcome::Refused(Refusal::UnknownProducer);
                }
            }
        }
        let base_offset = self
            .index
            .append(entry_index, count, data.len() as u64, h.timestamp_ms);
        ApplyOutcome::Appended { base_offset, count }
    }

    fn apply_command(&mut self, data: &Bytes) -> ApplyOutcome {
        match Command::parse(data) {
            Ok(Command::Truncate { before_offset }) => {
                let latest = self.index.next_offset();
                if before_offset > latest {
                    return ApplyOutcome::Refused(Refusal::TruncateBeyondEnd {
                        requested: before_offset,
                        latest,
                    });
                }
                self.retention_offset = self.retention_offset.max(before_offset);
                self.index.truncate_before(self.retention_offset);
                ApplyOutcome::Truncated {
                    earliest_offset: self.retention_offset,
                }
            }
            Ok(Command::InitProducer) => {
                let producer_id = self.next_producer_id;
                // u64::MAX is never given, so the counter never wraps
                // back to ids given before.
                let Some(next) = producer_id.checked_add(1) else {
                    return ApplyOutcome::Refused(Refusal::ProducerIdsExhausted);
                };
                self.next_producer_id = next;
                self.dedup.register(producer_id);
                ApplyOutcome::ProducerInit { producer_id }
            }
            Err(e) => ApplyOutcome::Refused(Refusal::Invalid(EntryError::Command(e))),
        }
    }

    /// The last entry applied (0 before the first).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The group's replicated configuration.
    pub fn config(&self) -> LogConfig {
        self.config
    }

    /// The first offset readable on this replica: the retention point, or
    /// later on a replica that caught up by snapshot.
    pub fn earliest_offset(&self) -> u64 {
        self.index.earliest_offset()
    }

    /// The group's earliest offset by retention (replicated).
    pub fn retention_offset(&self) -> u64 {
        self.retention_offset
    }

    /// The offset the next record will get (replicated).
    pub fn next_offset(&self) -> u64 {
        self.index.next_offset()
    }

    /// The batch holding `offset`, if readable here.
    pub fn lookup(&self, offset: u64) -> Result<BatchLocation, OffsetOutOfRange> {
        self.index.lookup(offset)
    }

    /// The offset index.
    pub fn index(&self) -> &OffsetIndex {
        &self.index
    }

    /// The exactly-once table.
    pub fn dedup(&self) -> &DedupTable {
        &self.dedup
    }

    /// The producer id the next `InitProducer` gives (replicated): every
    /// id the group gave is below it.
    pub fn next_producer_id(&self) -> u64 {
        self.next_producer_id
    }

    /// The highest Raft index whose entries hold no readable record: the
    /// log may be compacted up to it (once a snapshot covers it).
    pub fn compactable_index(&self) -> u64 {
        self.index
            .first_entry_index()
            .map_or(self.applied_index, |first| first.saturating_sub(1))
    }

    /// This state encoded for a Raft snapshot at `applied_index()`: all but
    /// the records themselves (see `snapshot.rs`).
    pub fn snapshot(&self) -> Bytes {
        super::snapshot::encode(self)
    }

    /// The state a snapshot holds, on a replica whose log holds entries
    /// from `first_held_entry` on: the snapshot's index + 1 for a replica
    /// that just installed it (it reads from the snapshot's next offset),
    /// the log's first index for a restart. Batches in entries below it
    /// are not readable here.
    pub fn restore(snapshot: &Bytes, first_held_entry: u64) -> Result<LogState, SnapshotError> {
        let mut state = super::snapshot::decode(snapshot)?;
        state.index.drop_entries_below(first_held_entry);
        Ok(state)
    }

    pub(crate) fn from_parts(
        config: LogConfig,
        applied_index: u64,
        retention_offset: u64,
        index: OffsetIndex,
        dedup: DedupTable,
        next_producer_id: u64,
    ) -> LogState {
        LogState {
            config,
            applied_index,
            retention_offset,
            index,
            dedup,
            next_producer_id,
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
