//! The state machine behind a group: what the shard hands committed
//! entries to (`Apply`), and an in-memory one that records what it was
//! given (`MemApply`, for tests and benchmarks). The server's log state
//! machine (retention point, deduplication, the offsets of records) will
//! implement `Apply`; for a log service the entries themselves stay in
//! the WAL, so applying is bookkeeping, never a copy of the data.

use std::any::Any;
use std::sync::Arc;

use crate::raftpb::Entry;

/// One group's state machine, driven by its shard. Runs on the shard's
/// thread, inside the loop: it must not block or wait.
pub trait Apply: 'static {
    /// Committed entries of the group, in index order, each exactly once
    /// per life of the process (after a restart, from the first entry the
    /// WAL holds again; an in-memory state machine starts empty).
    /// Configuration changes come through here too, after the runtime
    /// applied them to Raft; a leader's empty entries as well.
    fn apply(&mut self, entries: &[Entry]);

    /// For tests and tools that know the concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// Makes the state machine of a group (called on the group's shard, once
/// per group and life).
pub type ApplyFactory = Arc<dyn Fn(u64) -> Box<dyn Apply> + Send + Sync>;

/// A state machine that keeps every entry it is given, in memory.
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
    fn apply(&mut self, entries: &[Entry]) {
        self.entries.extend_from_slice(entries);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A state machine that applies nothing and keeps nothing (benchmarks:
/// the cost of the runtime alone).
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
    fn apply(&mut self, entries: &[Entry]) {
        if let Some(e) = entries.last() {
            self.applied = e.index;
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
