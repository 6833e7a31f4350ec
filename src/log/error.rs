//! Every way the log state layer refuses bytes or a call: a batch, a
//! command, an entry of unknown kind, a snapshot, an apply out of order.
//! Each variant names the field and, where one applies, the limit, so the
//! refusal can be answered to a client, logged and counted as it is.

use std::fmt;

/// Why bytes are not a valid record batch (`batch.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the fixed header needs.
    Truncated { needed: u64, available: u64 },
    /// The first byte is not the batch magic: not a record batch.
    BadMagic { found: u8 },
    /// A batch of a format version this build does not read.
    UnsupportedVersion { found: u8 },
    /// Flag bits this version does not define (all of them, for now).
    UnknownFlags { flags: u16 },
    /// `record_count` is 0: a batch carries at least one record.
    NoRecords,
    /// A length or count above its limit. `what` names it: "batch bytes",
    /// "records per batch", "record bytes".
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// The header's `records_len` does not account for the bytes present
    /// (one entry holds exactly one batch, nothing before or after it).
    LengthMismatch { declared: u64, actual: u64 },
    /// The batch's crc does not match its header and records.
    CrcMismatch { stored: u32, computed: u32 },
    /// Record `record` (0-based) announces more bytes than remain in the
    /// records section (or its 4-byte length prefix itself is cut off).
    RecordOverrun {
        record: u32,
        needed: u64,
        remaining: u64,
    },
    /// Bytes left in the records section after the last record.
    TrailingBytes { count: u64 },
    /// `producer_seq + record_count - 1` does not fit in a u64.
    SequenceOverflow {
        producer_seq: u64,
        record_count: u32,
    },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated { needed, available } => write!(
                f,
                "batch: header needs {needed} bytes, only {available} present"
            ),
            BatchError::BadMagic { found } => {
                write!(f, "batch: not a record batch (magic {found:#04x})")
            }
            BatchError::UnsupportedVersion { found } => {
                write!(f, "batch: format version {found} is not supported")
            }
            BatchError::UnknownFlags { flags } => {
                write!(f, "batch: unknown flag bits {flags:#06x}")
            }
            BatchError::NoRecords => write!(f, "batch: record count is 0"),
            BatchError::Limit { what, value, limit } => {
                write!(f, "batch: {what} {value} exceeds the limit {limit}")
            }
            BatchError::LengthMismatch { declared, actual } => write!(
                f,
                "batch: header declares {declared} bytes, the entry holds {actual}"
            ),
            BatchError::CrcMismatch { stored, computed } => write!(
                f,
                "batch: crc {stored:#010x} does not match the contents' crc {computed:#010x}"
            ),
            BatchError::RecordOverrun {
                record,
                needed,
                remaining,
            } => write!(
                f,
                "batch: record {record} needs {needed} bytes, only {remaining} remain"
            ),
            BatchError::TrailingBytes { count } => {
                write!(f, "batch: {count} bytes after the last record")
            }
            BatchError::SequenceOverflow {
                producer_seq,
                record_count,
            } => write!(
                f,
                "batch: producer sequence {producer_seq} + {record_count} records overflows"
            ),
        }
    }
}

impl std::error::Error for BatchError {}

/// Why bytes are not a valid command (`command.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Fewer bytes than the fixed header needs.
    Truncated { needed: u64, available: u64 },
    /// The first byte is not the command magic.
    BadMagic { found: u8 },
    /// A command of a format version this build does not read.
    UnsupportedVersion { found: u8 },
    /// A command kind this version does not define.
    UnknownKind { kind: u16 },
    /// The payload length is above `MAX_COMMAND_PAYLOAD`.
    Limit { value: u64, limit: u64 },
    /// The header's payload length does not account for the bytes present.
    LengthMismatch { declared: u64, actual: u64 },
    /// The payload length is not the one `kind` has.
    PayloadSize {
        kind: u16,
        expected: u32,
        found: u32,
    },
    /// The command's crc does not match its header and payload.
    CrcMismatch { stored: u32, computed: u32 },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Truncated { needed, available } => write!(
                f,
                "command: header needs {needed} bytes, only {available} present"
            ),
            CommandError::BadMagic { found } => {
                write!(f, "command: not a command (magic {found:#04x})")
            }
            CommandError::UnsupportedVersion { found } => {
                write!(f, "command: format version {found} is not supported")
            }
            CommandError::UnknownKind { kind } => write!(f, "command: unknown kind {kind}"),
            CommandError::Limit { value, limit } => {
                write!(f, "command: payload bytes {value} exceed the limit {limit}")
            }
            CommandError::LengthMismatch { declared, actual } => write!(
                f,
                "command: header declares {declared} bytes, the entry holds {actual}"
            ),
            CommandError::PayloadSize {
                kind,
                expected,
                found,
            } => write!(
                f,
                "command: kind {kind} has a {expected}-byte payload, found {found}"
            ),
            CommandError::CrcMismatch { stored, computed } => write!(
                f,
                "command: crc {stored:#010x} does not match the contents' crc {computed:#010x}"
            ),
        }
    }
}

impl std::error::Error for CommandError {}

/// Why a committed entry's data could not be applied: the group applies it
/// as a no-op (on every replica alike) and answers its proposer with this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// Non-empty data whose first byte names no entry kind.
    UnknownKind { magic: u8 },
    /// A raftpb entry type this build does not know.
    UnknownEntryType { entry_type: i32 },
    /// A record batch that does not validate.
    Batch(BatchError),
    /// A command that does not validate.
    Command(CommandError),
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::UnknownKind { magic } => {
                write!(f, "entry: unknown kind (first byte {magic:#04x})")
            }
            EntryError::UnknownEntryType { entry_type } => {
                write!(f, "entry: unknown raft entry type {entry_type}")
            }
            EntryError::Batch(e) => e.fmt(f),
            EntryError::Command(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for EntryError {}

/// The caller broke the apply contract (entries are applied once each, in
/// index order, with no gap). Not an input error: the runtime has a bug,
/// and the group must stop applying rather than guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// `got` is not the entry after the last applied one.
    NotNext { expected: u64, got: u64 },
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::NotNext { expected, got } => write!(
                f,
                "log state: applying entry {got}, the next entry to apply is {expected}"
            ),
        }
    }
}

impl std::error::Error for ApplyError {}

/// Why bytes are not a snapshot this build can restore (`snapshot.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Fewer bytes than a field or an announced count needs.
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// Not a log state snapshot at all.
    BadMagic { found: u32 },
    /// A snapshot of a format version this build does not read.
    UnsupportedVersion { found: u16 },
    /// The header's body length does not match the bytes present.
    LengthMismatch { declared: u64, actual: u64 },
    /// The snapshot's crc does not match its contents.
    CrcMismatch { stored: u32, computed: u32 },
    /// A count or value above its limit ("producers", "max producers", ...).
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// Decoded values that no state this build produces could hold;
    /// `what` says which relation failed.
    Inconsistent { what: &'static str },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "log snapshot: {what} needs {needed} bytes, only {available} present"
            ),
            SnapshotError::BadMagic { found } => {
                write!(f, "log snapshot: bad magic {found:#010x}")
            }
            SnapshotError::UnsupportedVersion { found } => {
                write!(f, "log snapshot: format version {found} is not supported")
            }
            SnapshotError::LengthMismatch { declared, actual } => write!(
                f,
                "log snapshot: header declares {declared} bytes, {actual} present"
            ),
            SnapshotError::CrcMismatch { stored, computed } => write!(
                f,
                "log snapshot: crc {stored:#010x} does not match the contents' crc {computed:#010x}"
            ),
            SnapshotError::Limit { what, value, limit } => {
                write!(f, "log snapshot: {what} {value} exceeds the limit {limit}")
            }
            SnapshotError::Inconsistent { what } => {
                write!(f, "log snapshot: inconsistent contents: {what}")
            }
        }
    }
}

impl std::error::Error for SnapshotError {}
