//! Errors of the consensus core. Input errors are typed values; a caller
//! breaking the Ready/advance contract gets a panic naming the rule instead.

use std::fmt;

/// Errors a `Storage` returns; the core reacts to each kind differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageError {
    /// The requested index is at or below the compaction point.
    Compacted,
    /// The requested index is above the last index.
    Unavailable,
    /// The snapshot offered is older than the one already held.
    SnapshotOutOfDate,
    /// A snapshot cannot be produced right now; the leader retries later.
    SnapshotTemporarilyUnavailable,
    /// What the storage holds could not be read (corruption found after
    /// recovery, an I/O error): that group cannot go on, the others can.
    Unreadable,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageError::Compacted => "requested index is unavailable due to compaction",
            StorageError::Unavailable => "requested entry at index is unavailable",
            StorageError::SnapshotOutOfDate => {
                "requested index is older than the existing snapshot"
            }
            StorageError::SnapshotTemporarilyUnavailable => "snapshot is temporarily unavailable",
            StorageError::Unreadable => "the log could not be read from storage",
        })
    }
}

/// Errors of the consensus core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// From the `Storage`.
    Storage(StorageError),
    /// A proposal was dropped: no leader known, forwarding disabled, a
    /// leadership transfer is under way, the uncommitted log is full, or a
    /// conf change is already pending.
    ProposalDropped,
    /// A local-only message type was given to `RawNode::step`.
    StepLocalMsg,
    /// A response came from a peer that is not in the configuration.
    StepPeerNotFound,
    /// `Config` field `field` is invalid because `reason`.
    ConfigInvalid { field: &'static str, reason: String },
    /// A configuration change could not be applied.
    ConfChange(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Storage(e) => write!(f, "{e}"),
            Error::ProposalDropped => f.write_str("raft proposal dropped"),
            Error::StepLocalMsg => f.write_str("raft: cannot step raft local message"),
            Error::StepPeerNotFound => f.write_str("raft: cannot step as peer not found"),
            Error::ConfigInvalid { field, reason } => {
                write!(f, "invalid raft config: {field}: {reason}")
            }
            Error::ConfChange(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::Storage(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
