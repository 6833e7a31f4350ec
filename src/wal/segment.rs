//! Segment files: naming, creation (preallocated, zero-filled, header,
//! fsync, rename, directory fsync), listing and mapping. Knows the layout of
//! the header only through `format`; knows nothing of records.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::error::{Error, Result};
use super::format::{RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, SegmentHeader};

const SUFFIX: &str = ".wal";
const TMP_SUFFIX: &str = ".wal.tmp";
const FREE_SUFFIX: &str = ".wal.free";

/// `00000000000000000042.wal`: fixed width so that names sort like numbers.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}{SUFFIX}")
}

/// Path of segment `seq` in `dir`.
pub fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(file_name(seq))
}

/// Path under which a deleted segment waits to be recycled.
pub fn free_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{FREE_SUFFIX}"))
}

/// The segments of `dir` in sequence order, leftover temporary files of a
/// creation that crashed before its rename, and free (recyclable) files.
pub struct Listing {
    pub segments: Vec<(u64, PathBuf)>,
    pub temporaries: Vec<PathBuf>,
    pub free: Vec<PathBuf>,
}

/// Lists `dir`, ignoring files that are not ours.
pub fn list(dir: &Path) -> Result<Listing> {
    let mut segments = Vec::new();
    let mut temporaries = Vec::new();
    let mut free = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io("read directory", dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        let numbered = |stem: &str| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit());
        if let Some(stem) = name.strip_suffix(TMP_SUFFIX) {
            if numbered(stem) {
                temporaries.push(ent.path());
            }
        } else if let Some(stem) = name.strip_suffix(FREE_SUFFIX) {
            if numbered(stem) {
                free.push(ent.path());
            }
        } else if let Some(stem) = name.strip_suffix(SUFFIX)
            && stem.len() == 20
            && let Ok(seq) = stem.parse::<u64>()
        {
            segments.push((seq, ent.path()));
        }
    }
    segments.sort_unstable_by_key(|s| s.0);
    free.sort();
    Ok(Listing {
        segments,
        temporaries,
        free,
    })
}

/// fsync of the directory itself: makes a create, rename or unlink durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Creates segment `header.sequence` in `dir`, from a free file if one is
/// given (and usable), else from scratch.
///
/// From scratch, the whole file is written with zeros first, because
/// overwriting blocks that already exist lets each later fdatasync flush
/// data only (no extent or size metadata): on ext4 here that is ~6x more
/// syncs per second than appending or than writing into fallocate'd
/// (unwritten) extents. Recycling a free file (a deleted segment) keeps
/// that property without writing the zeros again: its old bytes stay, and
/// their crcs, seeded with the old segment sequence, never pass for
/// records of the new life (the header is flagged recycled).
///
/// Either way: header, fsync, rename into place, directory fsync; a segment
/// under its final name is always complete.
pub fn create(dir: &Path, header: &SegmentHeader, recycle: Option<PathBuf>) -> Result<File> {
    let final_path = path(dir, header.sequence);
    let tmp = dir.join(format!("{:020}{TMP_SUFFIX}", header.sequence));
    let recycled = recycle.and_then(|free| {
        let len = fs::metadata(&free).ok()?.len();
        if len != header.segment_size {
            let _ = fs::remove_file(&free);
            return None;
        }
        fs::rename(&free, &tmp).ok()?;
        OpenOptions::new().read(true).write(true).open(&tmp).ok()
    });
    let f = match recycled {
        Some(f) => {
            // The header and an end marker (an all-zero record header) where
            // the first batch will go: the old bytes there belong to the
            // previous life, and their crcs are seeded with another segment
            // sequence, so without the marker they would read as garbage
            // rather than as the end of this (still empty) segment's data.
            let mut head = [0u8; SEGMENT_HEADER_SIZE as usize + RECORD_HEADER_SIZE];
            let h = SegmentHeader {
                recycled: true,
                ..*header
            };
            head[..SEGMENT_HEADER_SIZE as usize].copy_from_slice(&h.encode());
            f.write_all_at(&head, 0)
                .map_err(|e| Error::io("write segment header", &tmp, e))?;
            // Same blocks, same size: only data to sync.
            f.sync_data()
                .map_err(|e| Error::io("fsync recycled segment", &tmp, e))?;
            f
        }
        None => {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| Error::io("create segment", &tmp, e))?;
            let zeros = vec![0u8; 1 << 20];
            let mut left = header.segment_size;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                f.write_all(&zeros[..n])
                    .map_err(|e| Error::io("preallocate segment", &tmp, e))?;
                left -= n as u64;
            }
            f.write_all_at(&header.encode(), 0)
                .map_err(|e| Error::io("write segment header", &tmp, e))?;
            f.sync_all()
                .map_err(|e| Error::io("fsync new segment", &tmp, e))?;
            f
        }
    };
    fs::rename(&tmp, &final_path).map_err(|e| Error::io("rename segment", &tmp, e))?;
    fsync_dir(dir)?;
    Ok(f)
}

/// Opens an existing segment for reading (and writing unless `read_only`).
pub fn open(p: &Path, read_only: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(!read_only)
        .open(p)
        .map_err(|e| Error::io("open segment", p, e))
}

/// Owner of a segment map inside `Bytes`: the `Arc` lets the WAL see
/// whether any slice handed out is still alive before it reuses the file.
pub struct MapOwner(pub Arc<memmap2::Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Maps a whole segment read-only. The map is shared with the page cache, so
/// bytes written later through the file are visible in it; it is handed out
/// as `Bytes` so that entries can be sliced from it without copying and the
/// map lives as long as any slice does (even after the file is deleted).
pub fn map(f: &File, p: &Path) -> Result<(Bytes, Arc<memmap2::Mmap>)> {
    // SAFETY: the WAL's own segments are only ever written at offsets past
    // the durable data being read, never truncated while mapped (they are
    // fixed-size), and recycled only once no slice of their map is alive;
    // another process modifying them is outside the contract, as for any
    // database file.
    let m = unsafe { memmap2::MmapOptions::new().map(f) }
        .map_err(|e| Error::io("mmap segment", p, e))?;
    let m = Arc::new(m);
    Ok((Bytes::from_owner(MapOwner(m.clone())), m))
}

/// An open segment: its file (for writes), and its map (for reads).
pub struct Segment {
    pub seq: u64,
    pub path: PathBuf,
    pub file: File,
    pub map: Bytes,
    /// The map's owner, to count the slices still alive.
    pub mmap: Arc<memmap2::Mmap>,
    pub size: u64,
    pub base_flush_seq: u64,
    /// From the header (as found at recovery; false for segments this
    /// process created, whose flag recovery alone reads).
    pub recycled: bool,
}
