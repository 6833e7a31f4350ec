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
    /// No room for the next segment: the file system is full (or over a
    /// quota), or the segments would exceed `Options::max_disk_bytes`.
    /// Not a failure of the log: the call that needed the segment was
    /// refused before it changed anything (see `Wal::append_entries` for
    /// the one exception, an append longer than a segment), nothing is
    /// poisoned, and a later call that needs a segment tries again
    /// (segments are preallocated, so no write into a block that is not
    /// there ever reaches a flush).
    NoSpace {
        op: &'static str,
        path: PathBuf,
        cause: NoRoom,
    },
    /// An option that cannot work.
    InvalidOptions { field: &'static str, reason: String },
}

/// What ran out when a segment could not be made (`Error::NoSpace`).
#[derive(Debug)]
pub enum NoRoom {
    /// The file system refused: `ENOSPC`, `EDQUOT` (a disk quota) or
    /// `EFBIG` (a file size limit, RLIMIT_FSIZE).
    Disk(io::Error),
    /// The WAL's own limit, `Options::max_disk_bytes`: its files hold
    /// `used` bytes, a new segment needs `needed` more.
    Quota { used: u64, needed: u64, limit: u64 },
}

/// Whether an OS error means "no room" rather than a failing disk.
pub(crate) fn is_space_errno(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    )
}

/// Result type of the WAL.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether this is `NoSpace`: the write may be retried once there is
    /// room, nothing was poisoned.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Error::NoSpace { .. })
    }

    /// `NoSpace` if `source` says the disk is full, else `Io`.
    pub(crate) fn io_or_space(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        if is_space_errno(&source) {
            Error::NoSpace {
                op,
                path: path.into(),
                cause: NoRoom::Disk(source),
            }
        } else {
            Error::io(op, path, source)
        }
    }

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
            Error::NoSpace { op, path, cause } => {
                write!(
                    f,
                    "wal: no space for a new segment: {op} {}: ",
                    path.display()
                )?;
                match cause {
                    NoRoom::Disk(e) => write!(f, "{e}")?,
                    NoRoom::Quota {
                        used,
                        needed,
                        limit,
                    } => write!(
                        f,
                        "max_disk_bytes {limit} reached ({used} bytes used, {needed} more needed)"
                    )?,
                }
                f.write_str(" (writes resume once there is room)")
            }
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
            Error::NoSpace {
                cause: NoRoom::Disk(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}
