//! The production disk: a real directory, files through std, segment views
//! as shared read-only mmaps, the flush through io_uring (uring_flush.rs),
//! the directory lock through flock (lock.rs), and the process's registry
//! of poisoned directories.
//!
//! It must cost what the WAL's direct file code cost before the interface
//! existed: a view of a mapped file is a refcount (the map is made once per
//! open file), and nothing here runs per record.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::lock::{self, DirLock};
use super::uring_flush::UringFlusher;
use super::{Disk, DiskFile};
use crate::wal::error::{Error, Result};

/// A WAL directory on the real file system. Clones share it.
#[derive(Clone, Debug)]
pub struct UringDisk {
    inner: Arc<DirInner>,
    /// Flushers made from now on skip fdatasync (`Options::unsafe_no_fsync`).
    no_fsync: bool,
}

#[derive(Debug)]
struct DirInner {
    dir: PathBuf,
    /// `dir` resolved: the key of the poisoned-directory registry, so that
    /// another spelling of the directory is refused too.
    canonical: PathBuf,
}

/// Directories whose WAL failed a flush in this process, with the cause.
/// Never emptied: only a new process may recover them (see
/// `Error::PoisonedDirectory`). Touched only when a WAL opens or fails.
static POISONED_DIRS: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());

fn poisoned_dirs() -> MutexGuard<'static, BTreeMap<PathBuf, String>> {
    match POISONED_DIRS.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl UringDisk {
    /// The directory `dir`, created (and its creation made durable) if it
    /// does not exist and `create` says so.
    pub fn open(dir: impl AsRef<Path>, create: bool) -> Result<UringDisk> {
        let dir = dir.as_ref().to_path_buf();
        if create && !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| Error::io("fsync directory", parent, e))?;
            }
        }
        let canonical = dir
            .canonicalize()
            .map_err(|e| Error::io("resolve directory", &dir, e))?;
        Ok(UringDisk {
            inner: Arc::new(DirInner { dir, canonical }),
            no_fsync: false,
        })
    }

    /// Benchmarks only: the flushers of this disk write without fdatasync.
    pub fn set_unsafe_no_fsync(&mut self, on: bool) {
        self.no_fsync = on;
    }

    fn at(&self, name: &str) -> PathBuf {
        self.inner.dir.join(name)
    }

    fn file(&self, name: &str, f: File) -> UringFile {
        UringFile {
            inner: Arc::new(FileInner {
                file: f,
                path: self.at(name),
                map: Mutex::new(None),
            }),
        }
    }
}

impl Disk for UringDisk {
    type File = UringFile;
    type Flusher = UringFlusher;
    type Lock = DirLock;

    const BACKGROUND: bool = true;
    const LIVE_VIEWS: bool = true;

    fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for ent in fs::read_dir(&self.inner.dir)? {
            if let Ok(name) = ent?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str) -> io::Result<UringFile> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.at(name))?;
        Ok(self.file(name, f))
    }

    fn open(&self, name: &str, writable: bool) -> io::Result<UringFile> {
        let f = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(self.at(name))?;
        Ok(self.file(name, f))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.at(from), self.at(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.at(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.inner.dir)?.sync_all()
    }

    fn lock(&self, shared: bool) -> Result<Option<DirLock>> {
        lock::acquire(&self.inner.dir, shared)
    }

    fn poison(&self, _held: &DirLock, cause: &str) {
        poisoned_dirs().insert(self.inner.canonical.clone(), cause.to_string());
    }

    fn poisoned(&self) -> Option<(PathBuf, String)> {
        let cause = poisoned_dirs().get(&self.inner.canonical).cloned()?;
        Some((self.inner.canonical.clone(), cause))
    }

    fn flusher(&self) -> io::Result<UringFlusher> {
        let mut f = UringFlusher::new()?;
        f.no_fsync = self.no_fsync;
        Ok(f)
    }
}

/// An open file of the directory. Clones share the descriptor and the map.
#[derive(Clone, Debug)]
pub struct UringFile {
    inner: Arc<FileInner>,
}

#[derive(Debug)]
struct FileInner {
    file: File,
    path: PathBuf,
    /// The whole file mapped read-only, made by the first `view`. Locked
    /// only by `view` and `view_in_use` (at open, roll and GC), never on a
    /// read: readers hold `Bytes` slices of the map.
    map: Mutex<Option<Arc<memmap2::Mmap>>>,
}

impl UringFile {
    /// The descriptor, for the flush's io_uring operations.
    pub(super) fn fd(&self) -> RawFd {
        self.inner.file.as_raw_fd()
    }

    #[cfg(test)]
    pub(super) fn inner_file(&self) -> &File {
        &self.inner.file
    }

    /// The file's path, for error messages.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn map(&self) -> MutexGuard<'_, Option<Arc<memmap2::Mmap>>> {
        match self.inner.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Owner of a segment map inside `Bytes`: the `Arc` lets the WAL see
/// whether any slice handed out is still alive before it reuses the file.
struct MapOwner(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl DiskFile for UringFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.inner.file.metadata()?.len())
    }

    /// Writes zeros from the current end to `len`: blocks that exist and
    /// are written make every later fdatasync flush data only.
    fn allocate(&self, len: u64) -> io::Result<()> {
        let mut at = self.size()?;
        if at >= len {
            return Ok(());
        }
        let zeros = vec![0u8; (len - at).min(1 << 20) as usize];
        while at < len {
            let n = (len - at).min(zeros.len() as u64) as usize;
            self.inner.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.file.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.file.sync_data()
    }

    fn drop_cache(&self) {
        // Advice: a failure changes only speed, so it is not reported.
        // SAFETY: a valid descriptor owned by this file; no memory passed.
        let _ = unsafe {
            libc::posix_fadvise(self.inner.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
        };
    }

    /// The map, shared with the page cache: bytes written later through
    /// the file (or a flush) show in it. Handed out as `Bytes` so that
    /// entries are sliced from it without copying and the map lives as
    /// long as any slice does (even after the file is deleted).
    fn view(&self) -> io::Result<Bytes> {
        let mut slot = self.map();
        let m = match slot.as_ref() {
            Some(m) => m.clone(),
            None => {
                // SAFETY: the WAL's own segments are only ever written at
                // offsets past the durable data being read, never truncated
                // while mapped (they are fixed-size), and reused only once
                // no slice of their map is alive (`view_in_use`); another
                // process modifying them is outside the contract, as for
                // any database file.
                let m = Arc::new(unsafe { memmap2::MmapOptions::new().map(&self.inner.file) }?);
                *slot = Some(m.clone());
                m
            }
        };
        Ok(Bytes::from_owner(MapOwner(m)))
    }

    fn view_in_use(&self) -> bool {
        self.map()
            .as_ref()
            .is_some_and(|m| Arc::strong_count(m) > 1)
    }
}
