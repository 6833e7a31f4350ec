//! The state machine behind a group: what the shard hands committed
//! entries to (`Apply`), and an in-memory one that records what it was
//! given (`MemApply`, for tests and benchmarks). The server's log state
//! machine (`server::LogApply`: retention point, deduplication, the
//! offsets of records) implements `Apply`; for a log service the entries
//! themselves stay in the WAL, so applying is bookkeeping, never a copy of
//! the data.
//!
//! What applying an entry did (`ApplyOutcome`: the offsets a batch got, a
//! duplicate's original ones, a refusal) goes back to the entry's
//! proposer, if it waits on this replica: a proposal completes with its
//! index and that outcome (`node::Applied`).
//!
//! Snapshots (for log compaction): a state machine that can be compacted
//! says up to which index its entries are no longer needed
//! (`compactable_index`), builds its state as of such an index from the
//! previous snapshot and the entries after it (`snapshot_builder`), and
//! restores itself from snapshot data (`check_snapshot`, `restore`). The
//! defaults say "no snapshots": such a group never compacts, and so never
//! needs to send or receive one.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::raftpb::Entry;

pub use crate::log::ApplyOutcome;

/// One group's state machine, driven by its shard. Runs on the shard's
/// thread, inside the loop: it must not block or wait.
pub trait Apply: 'static {
    /// Committed entries of the group, in index order, each exactly once
    /// per life of the process (after a restart, from the first entry the
    /// WAL holds again; an in-memory state machine starts empty).
    /// Configuration changes come through here too, after the runtime
    /// applied them to Raft; a leader's empty entries as well.
    ///
    /// `outcomes` comes empty; the state machine pushes what each entry
    /// did, in order (`outcomes[k]` is `entries[k]`'s), for the entries'
    /// proposers. One that has nothing to say pushes nothing: a proposer
    /// whose entry has no outcome gets `None`. The vector is the group's,
    /// reused, so this allocates nothing per entry.
    fn apply(&mut self, entries: &[Entry], outcomes: &mut Vec<ApplyOutcome>);

    /// The highest applied index whose entries the state machine no longer
    /// needs in the log (for a log: every record of entries up to it lies
    /// below the retention offset). The runtime compacts the log up to it
    /// once a snapshot at that index is durable. 0: never compact.
    fn compactable_index(&self) -> u64 {
        0
    }

    /// A builder of the state as of a later index: it starts from `base`,
    /// the data of the previous snapshot (`None`: the empty state before
    /// index 1), is fed the committed entries after it in order, and
    /// encodes the state it reached. Deterministic: the same base and
    /// entries give the same bytes on every replica, so a follower
    /// restored from them computes what the leader computed after them.
    fn snapshot_builder(
        &self,
        base: Option<&Bytes>,
    ) -> Result<Box<dyn SnapshotBuilder>, SnapshotFault> {
        let _ = base;
        Err(SnapshotFault::Unsupported)
    }

    /// Whether `data` is a snapshot this state machine would restore
    /// (checked before a leader's snapshot is handed to Raft, so that bad
    /// bytes from the network are refused rather than installed).
    fn check_snapshot(&self, data: &Bytes) -> Result<(), SnapshotFault> {
        let _ = data;
        Err(SnapshotFault::Unsupported)
    }

    /// Replaces the whole state with the snapshot `data` taken at `index`,
    /// on a replica whose log holds the entries from `first_held` on (the
    /// snapshot's index + 1 after installing a leader's snapshot; the
    /// log's first index on a restart). The next entry applied is
    /// `index + 1`.
    fn restore(&mut self, data: &Bytes, index: u64, first_held: u64) -> Result<(), SnapshotFault> {
        let _ = (data, index, first_held);
        Err(SnapshotFault::Unsupported)
    }

    /// For tests and tools that know the concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// Builds a snapshot at a later index (see `Apply::snapshot_builder`).
pub trait SnapshotBuilder {
    /// The next committed entries, in index order, none skipped.
    fn apply(&mut self, entries: &[Entry]) -> Result<(), SnapshotFault>;
    /// The index the state has reached (the last entry fed).
    fn index(&self) -> u64;
    /// The encoded state.
    fn finish(self: Box<Self>) -> Bytes;
}

/// Why a snapshot could not be built, checked or restored.
#[derive(Debug)]
pub enum SnapshotFault {
    /// This state machine keeps no snapshots.
    Unsupported,
    /// The snapshot data was refused; the state machine's own error says
    /// what was wrong (a crc, a count, a relation).
    Invalid(Box<dyn std::error::Error + Send + Sync>),
    /// An entry fed to a builder did not follow the one before.
    NotNext { expected: u64, got: u64 },
}

impl fmt::Display for SnapshotFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotFault::Unsupported => write!(f, "the state machine keeps no snapshots"),
            SnapshotFault::Invalid(e) => write!(f, "snapshot refused: {e}"),
            SnapshotFault::NotNext { expected, got } => {
                write!(f, "snapshot builder fed entry {got}, expected {expected}")
            }
        }
    }
}

impl std::error::Error for SnapshotFault {}

/// Makes the state machine of a group (called on the group's shard, once
/// per group and life).
pub type ApplyFactory = Arc<dyn Fn(u64) -> Box<dyn Apply> + Send + Sync>;

/// A state machine that keeps every entry it is given, in memory. It
/// never compacts (the defaults): every entry it was given is what tests
/// compare.
#[derive(Debug, Default)]
pub struct MemApply {
    /// Every applied entry, in order (`Entry::data` shares the log's
    /// buffer: a reference count, no copy).
    pub entries: Vec<Entry>,
}

impl MemApply {
    /// A factory of empty `MemApply`s.
    pub fn factory() -> ApplyFactory {
        Arc::new(|_| Box::new(MemApply::default()))
    }

    /// Index of the last entry applied (0: none).
    pub fn applied(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.index)
    }
}

impl Apply for MemApply {
    fn apply(&mut self, entries: &[Entry], _outcomes: &mut Vec<ApplyOutcome>) {
        self.entries.extend_from_slice(entries);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A state machine that applies nothing and keeps nothing (benchmarks:
/// the cost of the runtime alone). It never compacts (the defaults), so
/// benchmarks measure the append path without snapshots.
#[derive(Debug, Default)]
pub struct NullApply {
    pub applied: u64,
}

impl NullApply {
    pub fn factory() -> ApplyFactory {
        Arc::new(|_| Box::new(NullApply::default()))
    }
}

impl Apply for NullApply {
    fn apply(&mut self, entries: &[Entry], _outcomes: &mut Vec<ApplyOutcome>) {
        if let Some(e) = entries.last() {
            self.applied = e.index;
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
