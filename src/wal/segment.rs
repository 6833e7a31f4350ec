//! Segment files: naming, creation (preallocated, zero-filled, header,
//! sync, rename, directory sync), listing and opening, all through the
//! `Disk` interface. Knows the layout of the header only through `format`;
//! knows nothing of records.

use std::io;
use std::path::PathBuf;

use bytes::Bytes;

use super::disk::{Disk, DiskFile};
use super::error::{Error, Result};
use super::format::{RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, SegmentHeader};

const SUFFIX: &str = ".wal";
const TMP_SUFFIX: &str = ".wal.tmp";
const FREE_SUFFIX: &str = ".wal.free";

/// `00000000000000000042.wal`: fixed width so that names sort like numbers.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}{SUFFIX}")
}

/// Name under which a deleted segment waits to be recycled.
pub fn free_name(seq: u64) -> String {
    format!("{seq:020}{FREE_SUFFIX}")
}

fn tmp_name(seq: u64) -> String {
    format!("{seq:020}{TMP_SUFFIX}")
}

/// Path of `name` on `disk`, for error messages.
pub fn path<D: Disk>(disk: &D, name: &str) -> PathBuf {
    disk.dir().join(name)
}

/// The segments of a directory in sequence order, leftover temporary files
/// of a creation that crashed before its rename, and free (recyclable)
/// files, by name.
pub struct Listing {
    pub segments: Vec<(u64, String)>,
    pub temporaries: Vec<String>,
    pub free: Vec<String>,
}

/// Lists the directory, ignoring files that are not ours.
pub fn list<D: Disk>(disk: &D) -> Result<Listing> {
    let mut segments = Vec::new();
    let mut temporaries = Vec::new();
    let mut free = Vec::new();
    let names = disk
        .list()
        .map_err(|e| Error::io("read directory", disk.dir(), e))?;
    let numbered = |stem: &str| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit());
    for name in names {
        if let Some(stem) = name.strip_suffix(TMP_SUFFIX) {
            if numbered(stem) {
                temporaries.push(name);
            }
        } else if let Some(stem) = name.strip_suffix(FREE_SUFFIX) {
            if numbered(stem) {
                free.push(name);
            }
        } else if let Some(stem) = name.strip_suffix(SUFFIX)
            && numbered(stem)
            && let Ok(seq) = stem.parse::<u64>()
        {
            segments.push((seq, name));
        }
    }
    segments.sort_unstable_by_key(|s| s.0);
    temporaries.sort();
    free.sort();
    Ok(Listing {
        segments,
        temporaries,
        free,
    })
}

/// Sync of the directory itself: makes a create, rename or unlink durable.
pub fn sync_dir<D: Disk>(disk: &D) -> Result<()> {
    disk.sync_dir()
        .map_err(|e| Error::io("fsync directory", disk.dir(), e))
}

/// Creates segment `header.sequence`, from a free file if one is given
/// (and usable), else from scratch.
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
/// Either way: header, sync, rename into place, directory sync; a segment
/// under its final name is always complete.
///
/// A full disk (`ENOSPC`, `EDQUOT`, `EFBIG` while creating, preallocating
/// or writing the header) is `Error::NoSpace`, and the temporary file is
/// removed so that the space it took is free again.
pub fn create<D: Disk>(
    disk: &D,
    header: &SegmentHeader,
    recycle: Option<String>,
) -> Result<D::File> {
    let final_name = file_name(header.sequence);
    let tmp = tmp_name(header.sequence);
    let at = |name: &str| path(disk, name);
    let recycled = recycle.and_then(|free| {
        let f = disk.open(&free, true).ok()?;
        if f.size().ok()? != header.segment_size {
            drop(f);
            let _ = disk.remove(&free);
            return None;
        }
        disk.rename(&free, &tmp).ok()?;
        Some(f)
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
            f.write_at(&head, 0)
                .map_err(|e| Error::io("write segment header", at(&tmp), e))?;
            // Same blocks, same size: only data to sync.
            f.sync_data()
                .map_err(|e| Error::io("fsync recycled segment", at(&tmp), e))?;
            f
        }
        None => {
            let f = match disk.create(&tmp) {
                // A creation of this process that failed half-way (a full
                // disk) left it: never part of the log.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    disk.remove(&tmp).and_then(|()| disk.create(&tmp))
                }
                r => r,
            }
            .map_err(|e| Error::io_or_space("create segment", at(&tmp), e))?;
            let made = f
                .allocate(header.segment_size)
                .map_err(|e| Error::io_or_space("preallocate segment", at(&tmp), e))
                .and_then(|()| {
                    f.write_at(&header.encode(), 0)
                        .map_err(|e| Error::io_or_space("write segment header", at(&tmp), e))
                })
                .and_then(|()| {
                    f.sync_data()
                        .map_err(|e| Error::io("fsync new segment", at(&tmp), e))
                });
            if let Err(e) = made {
                // A full disk stays full while the part already written
                // sits in a file nobody will use: give it back now (best
                // effort: an open removes leftovers too).
                drop(f);
                let _ = disk.remove(&tmp);
                return Err(e);
            }
            f
        }
    };
    f.drop_cache();
    disk.rename(&tmp, &final_name)
        .map_err(|e| Error::io("rename segment", at(&tmp), e))?;
    sync_dir(disk)?;
    Ok(f)
}

/// Opens an existing segment for reading (and writing unless `read_only`).
pub fn open<D: Disk>(disk: &D, name: &str, read_only: bool) -> Result<D::File> {
    disk.open(name, !read_only)
        .map_err(|e| Error::io("open segment", path(disk, name), e))
}

/// The whole segment as `Bytes` (a refcount of its map in production).
pub fn view<F: DiskFile>(f: &F, p: &std::path::Path) -> Result<Bytes> {
    f.view()
        .map_err(|e: io::Error| Error::io("mmap segment", p, e))
}

/// An open segment: its file (for writes), and a view of it (for reads).
pub struct Segment<F> {
    pub seq: u64,
    pub path: PathBuf,
    pub file: F,
    pub map: Bytes,
    pub size: u64,
    pub base_flush_seq: u64,
    /// From the header (as found at recovery; false for segments this
    /// process created, whose flag recovery alone reads).
    pub recycled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::disk::UringDisk;
    use crate::wal::format::VERSION;

    /// Pages of `bytes` (a file map) resident in the page cache.
    fn resident_pages(bytes: &[u8]) -> usize {
        let page = 4096;
        let mut vec = vec![0u8; bytes.len().div_ceil(page)];
        // SAFETY: `bytes` is a live page-aligned map of that length and
        // `vec` has one byte per page of it, as mincore(2) requires.
        let rc = unsafe {
            libc::mincore(
                bytes.as_ptr() as *mut libc::c_void,
                bytes.len(),
                vec.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0, "mincore: {}", io::Error::last_os_error());
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }

    /// The zero fill must not stay in the page cache (the `drop_cache`
    /// advice): its large folios make every later small flush slower.
    #[test]
    fn a_new_segment_leaves_its_zero_fill_out_of_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let disk = UringDisk::open(dir.path(), false).unwrap();
        let header = SegmentHeader {
            version: VERSION,
            cluster_id: 1,
            shard_id: 0,
            sequence: 1,
            segment_size: 8 << 20,
            base_flush_seq: 1,
            recycled: false,
        };
        let f = create(&disk, &header, None).unwrap();
        let view = f.view().unwrap();
        let pages = view.len() / 4096;
        let resident = resident_pages(&view);
        // Without the advice every one of the 2,048 pages stays resident.
        assert!(
            resident <= pages / 16,
            "{resident} of {pages} pages of a new segment are in the page cache"
        );
    }
}
