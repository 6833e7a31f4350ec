//! The replicated state machine of one log group: record batches (the unit
//! of replication, one Raft entry's data), commands (retention), dense
//! record offsets, exactly-once deduplication of producer retries, and the
//! group state that applies committed entries and snapshots itself.
//!
//! Pure, like `src/raft`: no I/O, no clock, no threads, no randomness that
//! can change an outcome. Every replica applies the same committed entries
//! in the same order and must reach the same state, so nothing here may
//! depend on a replica's configuration, wall clock or hash seed. The
//! runtime (src/shard, src/node.rs) feeds committed entries to
//! [`LogState::apply_entry`] and answers proposers with the outcome.
//!
//! Files, one job each:
//! - `batch.rs`: the record batch layout and its zero-copy, validated view.
//! - `builder.rs`: writing batches into a reused buffer (clients, tests).
//! - `command.rs`: the other entry kind the group replicates (`Truncate`,
//!   `InitProducer`).
//! - `entry.rs`: which kind an entry's data is (batch, command, empty).
//! - `offsets.rs`: the offset index (offset -> Raft entry, retention front).
//! - `dedup.rs`: per-producer sequence state for the ids the group gives,
//!   bounded, evicted by apply order.
//! - `state.rs`: `LogState`, the group's state machine.
//! - `snapshot.rs`: `LogState`'s versioned, checksummed snapshot encoding.
//! - `retention.rs`: the size/age policy a leader turns into `Truncate`.
//! - `error.rs`: every way an entry, a snapshot or an apply is refused.

pub mod batch;
pub mod builder;
pub mod command;
pub mod dedup;
pub mod entry;
pub mod error;
pub mod offsets;
pub mod retention;
pub mod snapshot;
pub mod state;

mod le;

pub use batch::{BATCH_HEADER_LEN, BATCH_MAGIC, BatchHeader, BatchLimits, RecordBatch};
pub use builder::{BatchBuilder, BatchWriter};
pub use command::{COMMAND_MAGIC, Command};
pub use dedup::{Admission, DedupTable, REMEMBERED_BATCHES, SeqBatch};
pub use entry::EntryKind;
pub use error::{ApplyError, BatchError, CommandError, EntryError, SnapshotError};
pub use offsets::{BatchLocation, OffsetIndex, OffsetOutOfRange};
pub use retention::RetentionPolicy;
pub use state::{ApplyOutcome, FIRST_PRODUCER_ID, LogConfig, LogState, MAX_OFFSET, Refusal};
