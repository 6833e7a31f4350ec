//! Snapshot data files: the state machine's snapshot of a group at an
//! index, kept in `<shard dir>/snap/<group>-<index>.snap` because the WAL
//! keeps only a snapshot's metadata. A file is made durable (temporary
//! name, fdatasync, rename, directory fsync) before any WAL record that
//! needs it is queued, and an older file of the group is deleted only
//! once the newer compaction is durable; so the file the WAL's snapshot
//! index names always exists after a crash.
//!
//! The bytes are the state machine's own encoding (for a log group,
//! `log::snapshot`, which carries its own crc and checks everything when
//! decoded); this file adds no framing and checks only that the file
//! exists, is readable and within a size limit.
//!
//! Everything here is blocking I/O: the shard calls the writers and
//! deleters on glommio's blocking thread pool, never on its loop; the
//! reader runs at startup, before the shard serves (as WAL recovery does).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// The directory of a shard's snapshot files, inside its WAL directory
/// (the WAL ignores names that are not its own).
pub const SNAP_DIR: &str = "snap";
const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".snap.tmp";

/// Why a snapshot file could not be written or read.
#[derive(Debug)]
pub enum SnapFileError {
    /// The file the WAL names for the group does not exist.
    Missing { path: PathBuf },
    /// The file is larger than the shard accepts.
    TooLarge { path: PathBuf, len: u64, limit: u64 },
    /// No room for the file (`ENOSPC`, `EDQUOT`, `EFBIG` while creating,
    /// writing or syncing it): nothing refers to it yet and its partial
    /// file is gone, so the write may be tried again once there is room.
    NoSpace {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A system call failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for SnapFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapFileError::Missing { path } => {
                write!(f, "snapshot file {} is missing", path.display())
            }
            SnapFileError::TooLarge { path, len, limit } => write!(
                f,
                "snapshot file {} holds {len} bytes, above the limit {limit}",
                path.display()
            ),
            SnapFileError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            SnapFileError::NoSpace { op, path, source } => {
                write!(f, "no room to {op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for SnapFileError {}

impl SnapFileError {
    /// Whether the disk had no room for the file: retryable, not a disk
    /// failing under the shard.
    pub fn is_no_space(&self) -> bool {
        matches!(self, SnapFileError::NoSpace { .. })
    }
}

/// Whether `e` says the file system (or the process's quota or file size
/// limit) has no room.
fn no_room(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    )
}

/// As `io_err`, but a full disk is `NoSpace`.
fn space_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapFileError + 'a {
    move |source| {
        if no_room(&source) {
            SnapFileError::NoSpace {
                op,
                path: path.to_path_buf(),
                source,
            }
        } else {
            SnapFileError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapFileError + 'a {
    move |source| SnapFileError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshot directory of the shard whose WAL lives in `wal_dir`.
pub fn dir_of(wal_dir: &Path) -> PathBuf {
    wal_dir.join(SNAP_DIR)
}

/// The file of `group`'s snapshot at `index`.
pub fn path_of(dir: &Path, group: u64, index: u64) -> PathBuf {
    dir.join(format!("{group}-{index}{SUFFIX}"))
}

/// Parses `<group>-<index>.snap`.
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (g, i) = stem.split_once('-')?;
    Some((g.parse().ok()?, i.parse().ok()?))
}

fn sync_dir(dir: &Path) -> Result<(), SnapFileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Writes `data` as `group`'s snapshot at `index`, durably: a temporary
/// file written and fdatasynced, renamed into place, the directory
/// fsynced (and created first if it is new). Blocking.
///
/// A full disk while creating, writing or syncing the temporary file is
/// `NoSpace`, and the temporary file is removed (it would keep the space
/// it took; nothing names it, so its unsynced pages matter to no one).
/// Any failure after the rename is `Io`: the file is in place, and
/// whether its name is durable is unknown.
pub fn write_durable(
    dir: &Path,
    group: u64,
    index: u64,
    data: &[u8],
) -> Result<PathBuf, SnapFileError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(space_err("create directory", dir))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    let path = path_of(dir, group, index);
    let tmp = dir.join(format!("{group}-{index}{TMP_SUFFIX}"));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(space_err("create", &tmp))
        .and_then(|mut f| {
            f.write_all(data).map_err(space_err("write", &tmp))?;
            f.sync_data().map_err(space_err("fdatasync", &tmp))
        });
    if let Err(e) = written {
        // Best effort: a leftover is removed with the group's next
        // deletion of older files anyway.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Reads `group`'s snapshot at `index`; at most `limit` bytes. A missing
/// file is `Missing`: the WAL names it, so a state machine cannot start
/// without it. Blocking.
pub fn read(dir: &Path, group: u64, index: u64, limit: u64) -> Result<Bytes, SnapFileError> {
    let path = path_of(dir, group, index);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SnapFileError::Missing { path });
        }
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    let len = f.metadata().map_err(io_err("stat", &path))?.len();
    if len > limit {
        return Err(SnapFileError::TooLarge { path, len, limit });
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.read_to_end(&mut buf).map_err(io_err("read", &path))?;
    Ok(Bytes::from(buf))
}

/// Deletes `group`'s snapshot files older than `index` (and temporary
/// files of the group left by a crash), then fsyncs the directory.
/// Returns how many files went. Blocking.
pub fn remove_older(dir: &Path, group: u64, index: u64) -> Result<usize, SnapFileError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut removed = 0;
    for e in entries {
        let e = e.map_err(io_err("read directory", dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let doomed = match parse_name(name) {
            Some((g, i)) => g == group && i < index,
            None => name
                .strip_suffix(TMP_SUFFIX)
                .and_then(|s| s.split_once('-'))
                .is_some_and(|(g, _)| g.parse::<u64>().ok() == Some(group)),
        };
        if doomed {
            let p = e.path();
            fs::remove_file(&p).map_err(io_err("unlink", &p))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// The snapshot files of `dir`, as (group, index), sorted.
pub fn list(dir: &Path) -> Result<Vec<(u64, u64)>, SnapFileError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(io_err("read directory", dir))?;
        if let Some(gi) = e.file_name().to_str().and_then(parse_name) {
            out.push(gi);
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "corelog-snapfile-{}-{}",
            std::process::id(),
            super::super::seed::os_random_u64().unwrap()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn written_files_read_back_and_older_ones_go() {
        let base = tmp();
        let dir = dir_of(&base);
        write_durable(&dir, 3, 10, b"ten").unwrap();
        write_durable(&dir, 3, 20, b"twenty").unwrap();
        write_durable(&dir, 4, 5, b"other group").unwrap();
        fs::write(dir.join("3-30.snap.tmp"), b"torn").unwrap();
        assert_eq!(
            read(&dir, 3, 20, 1 << 20).unwrap(),
            Bytes::from_static(b"twenty")
        );
        assert_eq!(list(&dir).unwrap(), vec![(3, 10), (3, 20), (4, 5)]);
        assert_eq!(remove_older(&dir, 3, 20).unwrap(), 2);
        assert_eq!(list(&dir).unwrap(), vec![(3, 20), (4, 5)]);
        assert!(!dir.join("3-30.snap.tmp").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_missing_or_oversized_file_is_a_typed_error() {
        let base = tmp();
        let dir = dir_of(&base);
        assert!(matches!(
            read(&dir, 1, 7, 1 << 20),
            Err(SnapFileError::Missing { path }) if path == path_of(&dir, 1, 7)
        ));
        write_durable(&dir, 1, 7, &[0u8; 100]).unwrap();
        assert!(matches!(
            read(&dir, 1, 7, 99),
            Err(SnapFileError::TooLarge {
                len: 100,
                limit: 99,
                ..
            })
        ));
        fs::remove_dir_all(&base).unwrap();
    }
}
