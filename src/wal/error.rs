//! `wal::Error`: every way opening, writing or reading the WAL can fail, each
//! naming the file, offset, field or limit involved so that an operator can
//! act on the message alone.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Errors of the segment WAL.
#[derive(Debug)]
pub enum Error {
    /// A system call failed; `op` says which step, `path` on which file.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Bytes on disk that fail a check before the tail of the log: the WAL
    /// refuses to start rather than silently drop acknowledged records.
    Corrupt {
        file: PathBuf,
        offset: u64,
        what: String,
    },
    /// A segment whose header does not start with the WAL's magic bytes.
    BadMagic { file: PathBuf },
    /// A segment written by a format version this build does not know.
    UnknownVersion {
        file: PathBuf,
        found: u32,
        supported: u32,
    },
    /// A segment of another cluster or shard: never mix two WALs.
    Foreign {
        file: PathBuf,
        field: &'static str,
        expected: u64,
        found: u64,
    },
    /// A segment file shorter than the size its header (or the options)
    /// promise: segments are preallocated, so this is lost data.
    TruncatedSegment {
        file: PathBuf,
        len: u64,
        expected: u64,
    },
    /// The segment sequence has a hole: `seq` is missing between two
    /// segments that exist.
    MissingSegment { dir: PathBuf, seq: u64 },
    /// An input (from the caller or from disk) exceeds a limit.
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// Appended entries would leave a hole or go below the compaction point.
    NotContiguous {
        group: u64,
        first: u64,
        last: u64,
        compacted: u64,
    },
    /// Entries passed to one append do not have consecutive indexes.
    NonConsecutive {
        group: u64,
        expected: u64,
        found: u64,
    },
    /// A read below the group's first available index.
    Compacted { group: u64, index: u64, first: u64 },
    /// A read above the group's last index.
    Unavailable { group: u64, index: u64, last: u64 },
    /// A previous flush failed: what reached the disk is unknown, so every
    /// further write is refused. The WAL stays poisoned; only a new process
    /// recovers its directory (see `PoisonedDirectory`).
    Poisoned { cause: String },
    /// An open of a directory whose WAL failed a flush in this process:
    /// pages that never reached the disk may still be in the page cache,
    /// and a new descriptor's fsync would not report the old error
    /// (PostgreSQL's "fsyncgate"), so recovery here would trust records
    /// that are not durable. Restart the process to recover it.
    PoisonedDirectory { dir: PathBuf, cause: String },
    /// The directory is held by another open `Wal` (of this process or
    /// another): two writers would interleave their segments. `holder` is
    /// the process id a read-write holder wrote into the lock file (`None`
    /// if read-only opens hold it).
    Locked { dir: PathBuf, holder: Option<u32> },
    /// A snapshot older than the group's compaction point.
    SnapshotOutOfDate {
        group: u64,
        index: u64,
        compacted: u64,
    },
    /// The WAL was dropped before the flush a waiter was waiting for.
    Closed,
    /// A write to a WAL opened read-only.
    ReadOnly,
    /// An option that cannot work.
    InvalidOptions { field: &'static str, reason: String },
}

/// Result type of the WAL.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => {
                write!(f, "wal: {op} {}: {source}", path.display())
            }
            Error::Corrupt { file, offset, what } => {
                write!(f, "corrupt {} at offset {offset}: {what}", file.display())
            }
            Error::BadMagic { file } => {
                write!(
                    f,
                    "{}: not a corelog WAL segment (bad magic)",
                    file.display()
                )
            }
            Error::UnknownVersion {
                file,
                found,
                supported,
            } => write!(
                f,
                "{}: unknown WAL format version {found} (this build reads {supported})",
                file.display()
            ),
            Error::Foreign {
                file,
                field,
                expected,
                found,
            } => write!(
                f,
                "{}: segment belongs to {field} {found}, this WAL is {field} {expected}",
                file.display()
            ),
            Error::TruncatedSegment {
                file,
                len,
                expected,
            } => write!(
                f,
                "{}: truncated segment: {len} bytes, expected {expected}",
                file.display()
            ),
            Error::MissingSegment { dir, seq } => {
                write!(f, "{}: segment {seq} is missing", dir.display())
            }
            Error::Limit { what, value, limit } => {
                write!(f, "wal: {what} is {value}, limit {limit}")
            }
            Error::NotContiguous {
                group,
                first,
                last,
                compacted,
            } => write!(
                f,
                "wal: group {group}: append at {first} would not be contiguous \
                 (last {last}, compacted through {compacted})"
            ),
            Error::NonConsecutive {
                group,
                expected,
                found,
            } => write!(
                f,
                "wal: group {group}: entries not consecutive: expected index {expected}, found {found}"
            ),
            Error::Compacted {
                group,
                index,
                first,
            } => write!(
                f,
                "wal: group {group}: index {index} is compacted (first {first})"
            ),
            Error::Unavailable { group, index, last } => {
                write!(
                    f,
                    "wal: group {group}: index {index} unavailable (last {last})"
                )
            }
            Error::Poisoned { cause } => {
                write!(
                    f,
                    "wal: a flush failed ({cause}); restart the process to recover"
                )
            }
            Error::PoisonedDirectory { dir, cause } => write!(
                f,
                "wal: {}: a flush failed in this process ({cause}); its page cache \
                 cannot be trusted: restart the process to recover",
                dir.display()
            ),
            Error::Locked { dir, holder } => match holder {
                Some(pid) => write!(f, "wal: {} is in use by process {pid}", dir.display()),
                None => write!(f, "wal: {} is in use by read-only opens", dir.display()),
            },
            Error::SnapshotOutOfDate {
                group,
                index,
                compacted,
            } => write!(
                f,
                "wal: group {group}: snapshot at {index} is older than the compaction point {compacted}"
            ),
            Error::Closed => f.write_str("wal: dropped before this append was flushed"),
            Error::ReadOnly => f.write_str("wal: opened read-only"),
            Error::InvalidOptions { field, reason } => {
                write!(f, "wal: invalid option {field}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
