//! The on-disk byte layout: segment header, record framing, and the payload
//! of each record type. All integers are little-endian with exact sizes.
//! This module only encodes and decodes bytes; it never touches a file, and
//! every length or count it decodes is checked against the bytes present
//! (and a limit) before it is used.
//!
//! Segment (fixed size, preallocated and zero-filled):
//!
//! ```text
//! 0   magic "CLOGWAL\0"      8
//! 8   version u32            4
//! 12  flags u32              4   bit 0: recycled (the file had a
//!                                previous life; its old bytes remain)
//! 16  cluster id u64         8
//! 24  shard id u64           8
//! 32  sequence u64           8
//! 40  segment size u64       8
//! 48  base flush seq u64     8   every batch of this segment's life has
//!                                a flush sequence >= this (a check: stale
//!                                bytes of a recycled file fail their
//!                                seeded crcs)
//! 56  crc32 of bytes 0..56   4
//! 60  zero padding up to SEGMENT_HEADER_SIZE (64)
//! 64  records ...  then zeros (or stale bytes, in a recycled segment)
//! ```
//!
//! Record: `len u32 | crc u32 | type u8 | payload[len]`, where `crc` is the
//! crc32 of `segment_seq u64 | flush_seq u64 | type | payload` (see
//! `record_seed`). An all-zero record header marks the end of a segment's
//! data. Every flush writes, per segment it touches, one `Batch` record
//! followed by `body_len` bytes holding `records` other records: the batch
//! is the unit of atomicity (see recovery.rs).

use bytes::{BufMut, Bytes};

/// First bytes of every segment.
pub const MAGIC: [u8; 8] = *b"CLOGWAL\0";
/// The format version this build writes and reads.
pub const VERSION: u32 = 2;
/// Bytes reserved for the segment header; records start here.
pub const SEGMENT_HEADER_SIZE: u64 = 64;
/// `len u32 | crc u32 | type u8`.
pub const RECORD_HEADER_SIZE: usize = 9;
/// Payload of a batch record:
/// `flush_seq u64 | prev_seq u64 | body_len u32 | records u32 | flags u32`.
pub const BATCH_PAYLOAD_SIZE: usize = 28;
/// Batch flag: the flush goes on in the next segment (this is not its last
/// part). Recovery applies a flush only once it has its last part.
pub const BATCH_CONTINUED: u32 = 1;
/// A batch record with its header.
pub const BATCH_RECORD_SIZE: usize = RECORD_HEADER_SIZE + BATCH_PAYLOAD_SIZE;
/// Fixed part of an entries payload: `group u64 | first_index u64 | count u32`.
pub const ENTRIES_FIXED: usize = 20;
/// Fixed part of one entry inside an entries payload:
/// `term u64 | entry_type u8 | data_len u32`.
pub const ENTRY_FIXED: usize = 13;
/// Hard state payload: `group | term | vote | commit`, all u64.
pub const HARD_STATE_PAYLOAD: usize = 32;
/// Compaction mark payload: `group | index | term`, all u64.
pub const COMPACT_PAYLOAD: usize = 24;
/// Fixed part of a snapshot-metadata payload: `group u64 | len u32`.
pub const SNAPSHOT_FIXED: usize = 12;
/// Upper bound of an encoded `SnapshotMetadata` (a `ConfState` of thousands
/// of members fits many times over).
pub const MAX_SNAPSHOT_META: usize = 1 << 20;
/// Smallest segment that can hold a header and a useful record.
pub const MIN_SEGMENT_SIZE: u64 = 4096;
/// Largest segment: record offsets are kept as u32 in the index.
pub const MAX_SEGMENT_SIZE: u64 = 1 << 32;

/// Record types. Zero is never used so that zeroed space reads as "end".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    Batch = 1,
    Entries = 2,
    HardState = 3,
    Snapshot = 4,
    Compact = 5,
    /// Entries copied forward from an old segment so that it can be
    /// deleted: same payload as `Entries`, but it moves the entries it
    /// names instead of truncating the log after them.
    Relocate = 6,
    /// A snapshot that replaces the whole log: same payload as `Snapshot`;
    /// it also drops every entry and restarts the log after the snapshot's
    /// index (one record, so that no recovered prefix holds half of it).
    Restart = 7,
}

impl RecordType {
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => RecordType::Batch,
            2 => RecordType::Entries,
            3 => RecordType::HardState,
            4 => RecordType::Snapshot,
            5 => RecordType::Compact,
            6 => RecordType::Relocate,
            7 => RecordType::Restart,
            _ => return None,
        })
    }
}

/// The identity and place of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u32,
    pub cluster_id: u64,
    pub shard_id: u64,
    pub sequence: u64,
    pub segment_size: u64,
    pub base_flush_seq: u64,
    /// The file was a deleted segment, reused: past its data lie its
    /// previous life's bytes, not zeros (recovery cannot tell a torn write
    /// from bit rot there).
    pub recycled: bool,
}

/// Header flag: the segment is a recycled file.
pub const SEGMENT_RECYCLED: u32 = 1;

/// Why a segment header was rejected (the caller adds the file name).
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    Short,
    BadMagic,
    BadCrc,
    UnknownVersion(u32),
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_SIZE as usize] {
        let mut b = [0u8; SEGMENT_HEADER_SIZE as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        let flags = if self.recycled { SEGMENT_RECYCLED } else { 0 };
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.cluster_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.shard_id.to_le_bytes());
        b[32..40].copy_from_slice(&self.sequence.to_le_bytes());
        b[40..48].copy_from_slice(&self.segment_size.to_le_bytes());
        b[48..56].copy_from_slice(&self.base_flush_seq.to_le_bytes());
        let crc = crc32fast::hash(&b[0..56]);
        b[56..60].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < SEGMENT_HEADER_SIZE as usize {
            return Err(HeaderError::Short);
        }
        if b[0..8] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        if crc32fast::hash(&b[0..56]) != u32_at(b, 56) {
            return Err(HeaderError::BadCrc);
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(HeaderError::UnknownVersion(version));
        }
        Ok(SegmentHeader {
            version,
            cluster_id: u64_at(b, 16),
            shard_id: u64_at(b, 24),
            sequence: u64_at(b, 32),
            segment_size: u64_at(b, 40),
            base_flush_seq: u64_at(b, 48),
            recycled: u32_at(b, 12) & SEGMENT_RECYCLED != 0,
        })
    }
}

/// Reads a u32 at `at`; the caller has checked `at + 4 <= b.len()`.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Reads a u64 at `at`; the caller has checked `at + 8 <= b.len()`.
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The crc seed of every record of one batch: the crc32 of
/// `segment_seq u64 | flush_seq u64`. Each record's crc is the crc32 of
/// those 16 bytes followed by its type and payload, so a record written in
/// another segment, in another life of a recycled file, or by another
/// flush never passes for one of this batch (as RocksDB's recyclable log
/// records carry their log number). Computed once per batch: the records
/// pay nothing for it.
pub fn record_seed(segment_seq: u64, flush_seq: u64) -> u32 {
    if super::bugs::unbound_records() {
        return 0;
    }
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&segment_seq.to_le_bytes());
    b[8..16].copy_from_slice(&flush_seq.to_le_bytes());
    crc32fast::hash(&b)
}

/// crc32 of the bytes the seed stands for, followed by `bytes`.
fn seeded_crc(seed: u32, bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(bytes);
    h.finalize()
}

/// Appends a record header with a placeholder crc and returns the record's
/// start, to be sealed by `finish_record` once the payload is written. The
/// payload is written straight into `buf`: no intermediate allocation.
pub fn begin_record(buf: &mut Vec<u8>, ty: RecordType) -> usize {
    let start = buf.len();
    buf.put_u32_le(0);
    buf.put_u32_le(0);
    buf.put_u8(ty as u8);
    start
}

/// Fills in the length and crc (seeded with its batch's `seed`) of the
/// record begun at `start`.
pub fn finish_record(buf: &mut [u8], start: usize, seed: u32) {
    let payload_len = buf.len() - start - RECORD_HEADER_SIZE;
    let crc = seeded_crc(seed, &buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Writes a complete batch record at `buf[0..BATCH_RECORD_SIZE]`, its crc
/// seeded as its records' are (with `record_seed(segment, h.flush_seq)`).
pub fn write_batch_header(buf: &mut [u8], seed: u32, h: &BatchHeader) {
    buf[8] = RecordType::Batch as u8;
    buf[9..17].copy_from_slice(&h.flush_seq.to_le_bytes());
    buf[17..25].copy_from_slice(&h.prev_seq.to_le_bytes());
    buf[25..29].copy_from_slice(&h.body_len.to_le_bytes());
    buf[29..33].copy_from_slice(&h.records.to_le_bytes());
    buf[33..37].copy_from_slice(&h.flags.to_le_bytes());
    let crc = seeded_crc(seed, &buf[8..BATCH_RECORD_SIZE]);
    buf[0..4].copy_from_slice(&(BATCH_PAYLOAD_SIZE as u32).to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// One record as found on disk (payload borrowed from the segment).
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub ty: RecordType,
    pub payload: &'a [u8],
    /// Offset of the next record.
    pub next: usize,
}

/// Why the bytes at an offset are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// All-zero header: no record was ever written here.
    End,
    /// The header does not fit before `limit`.
    HeaderCut,
    /// The length field points past `limit`.
    LengthTooLarge(u32),
    /// crc32 over type and payload does not match.
    BadCrc,
    /// The type byte is not a known record type.
    UnknownType(u8),
    /// A batch record was expected here, and this is another record (or
    /// has the wrong size for a batch).
    NotBatch,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::End => f.write_str("end of data"),
            RecordError::HeaderCut => f.write_str("record header cut by the end of its batch"),
            RecordError::LengthTooLarge(l) => {
                write!(f, "record length {l} runs past the end of its batch")
            }
            RecordError::BadCrc => f.write_str("record checksum mismatch"),
            RecordError::UnknownType(t) => write!(f, "unknown record type {t}"),
            RecordError::NotBatch => f.write_str("not a batch record"),
        }
    }
}

/// Parses the record at `at`, which must end at or before `limit`, and
/// whose crc is seeded with `seed`.
pub fn read_record(
    b: &[u8],
    at: usize,
    limit: usize,
    seed: u32,
) -> Result<RawRecord<'_>, RecordError> {
    let limit = limit.min(b.len());
    if at + RECORD_HEADER_SIZE > limit {
        if b[at.min(limit)..limit].iter().all(|&x| x == 0) {
            return Err(RecordError::End);
        }
        return Err(RecordError::HeaderCut);
    }
    let len = u32_at(b, at);
    let crc = u32_at(b, at + 4);
    let ty = b[at + 8];
    if len == 0 && crc == 0 && ty == 0 {
        return Err(RecordError::End);
    }
    let end = at + RECORD_HEADER_SIZE + len as usize;
    if end > limit {
        return Err(RecordError::LengthTooLarge(len));
    }
    if seeded_crc(seed, &b[at + 8..end]) != crc {
        return Err(RecordError::BadCrc);
    }
    let ty = RecordType::from_u8(ty).ok_or(RecordError::UnknownType(ty))?;
    Ok(RawRecord {
        ty,
        payload: &b[at + RECORD_HEADER_SIZE..end],
        next: end,
    })
}

/// A decoded batch record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub flush_seq: u64,
    /// The flush sequence of the batch before this one in the log (0 for
    /// the first batch ever written): the chain that proves no batch is
    /// missing even though sequences are not consecutive.
    pub prev_seq: u64,
    /// Bytes of records after the batch record.
    pub body_len: u32,
    /// How many records those bytes hold: a batch is checked complete as a
    /// unit before any of it is applied.
    pub records: u32,
    /// `BATCH_CONTINUED` or 0; other bits are refused.
    pub flags: u32,
}

/// Parses the batch record at `at` of segment `segment_seq`: its sequence
/// is read first, to seed the check of its crc.
pub fn read_batch(
    b: &[u8],
    at: usize,
    limit: usize,
    segment_seq: u64,
) -> Result<(BatchHeader, usize), RecordError> {
    let limit = limit.min(b.len());
    if at + BATCH_RECORD_SIZE > limit {
        return match read_record(b, at, limit, 0) {
            Err(RecordError::End) => Err(RecordError::End),
            _ => Err(RecordError::HeaderCut),
        };
    }
    let len = u32_at(b, at);
    let ty = b[at + 8];
    if len == 0 && u32_at(b, at + 4) == 0 && ty == 0 {
        return Err(RecordError::End);
    }
    if len as usize != BATCH_PAYLOAD_SIZE || ty != RecordType::Batch as u8 {
        return Err(RecordError::NotBatch);
    }
    let p = &b[at + RECORD_HEADER_SIZE..at + BATCH_RECORD_SIZE];
    let h = BatchHeader {
        flush_seq: u64_at(p, 0),
        prev_seq: u64_at(p, 8),
        body_len: u32_at(p, 16),
        records: u32_at(p, 20),
        flags: u32_at(p, 24),
    };
    let r = read_record(b, at, limit, record_seed(segment_seq, h.flush_seq))?;
    Ok((h, r.next))
}

/// One entry found inside an entries payload; `data` is the byte range of
/// its data within the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef {
    pub index: u64,
    pub term: u64,
    pub entry_type: u8,
    /// Offset of the entry's fixed part within the payload.
    pub at: usize,
    pub data_len: u32,
}

/// Checks an entries payload and returns `(group, first_index, count)`.
/// Every entry is bounds-checked here so that `entries_iter` cannot fail.
pub fn check_entries(p: &[u8]) -> Result<(u64, u64, u32), &'static str> {
    if p.len() < ENTRIES_FIXED {
        return Err("entries record shorter than its fixed part");
    }
    let group = u64_at(p, 0);
    let first = u64_at(p, 8);
    let count = u32_at(p, 16);
    // Each entry takes at least ENTRY_FIXED bytes: a count beyond that is a
    // lie, refused before any loop trusts it.
    if count as usize > (p.len() - ENTRIES_FIXED) / ENTRY_FIXED {
        return Err("entry count exceeds the record's length");
    }
    if count == 0 {
        return Err("entries record with no entries");
    }
    if first == 0 || first.checked_add(count as u64).is_none() {
        return Err("entry index out of range");
    }
    let mut at = ENTRIES_FIXED;
    for _ in 0..count {
        if at + ENTRY_FIXED > p.len() {
            return Err("entry header runs past the record");
        }
        let len = u32_at(p, at + 9) as usize;
        at += ENTRY_FIXED;
        if len > p.len() - at {
            return Err("entry data runs past the record");
        }
        at += len;
    }
    if at != p.len() {
        return Err("trailing bytes after the last entry");
    }
    Ok((group, first, count))
}

/// Iterates the entries of a payload already accepted by `check_entries`.
pub fn entries_iter(p: &[u8]) -> impl Iterator<Item = EntryRef> + '_ {
    let first = u64_at(p, 8);
    let count = u32_at(p, 16) as u64;
    let mut at = ENTRIES_FIXED;
    (0..count).map(move |i| {
        let e = EntryRef {
            index: first + i,
            term: u64_at(p, at),
            entry_type: p[at + 8],
            at,
            data_len: u32_at(p, at + 9),
        };
        at += ENTRY_FIXED + e.data_len as usize;
        e
    })
}

/// Decodes one entry stored at `at` of a segment mapped as `seg`, slicing
/// its data out of the map without copying. `None` if the bytes there do
/// not hold an entry of the expected shape (which the index never asks for
/// unless the file changed under it).
pub fn entry_at(seg: &Bytes, at: usize) -> Option<(u64, u8, Bytes)> {
    if at.checked_add(ENTRY_FIXED)? > seg.len() {
        return None;
    }
    let term = u64_at(seg, at);
    let ty = seg[at + 8];
    let len = u32_at(seg, at + 9) as usize;
    let start = at + ENTRY_FIXED;
    if len > seg.len() - start {
        return None;
    }
    Some((term, ty, seg.slice(start..start + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_crc_is_the_crc_of_the_seed_bytes_then_the_record() {
        let mut all = Vec::new();
        all.extend_from_slice(&5u64.to_le_bytes());
        all.extend_from_slice(&9u64.to_le_bytes());
        all.extend_from_slice(b"\x03payload");
        assert_eq!(
            seeded_crc(record_seed(5, 9), b"\x03payload"),
            crc32fast::hash(&all)
        );
        assert_ne!(record_seed(5, 9), record_seed(6, 9));
        assert_ne!(record_seed(5, 9), record_seed(5, 10));
    }

    #[test]
    fn a_batch_reads_back_only_in_its_own_segment() {
        let mut b = vec![0u8; BATCH_RECORD_SIZE + 4];
        let h = BatchHeader {
            flush_seq: 12,
            prev_seq: 11,
            body_len: 0,
            records: 0,
            flags: BATCH_CONTINUED,
        };
        write_batch_header(&mut b, record_seed(3, 12), &h);
        assert_eq!(read_batch(&b, 0, b.len(), 3), Ok((h, BATCH_RECORD_SIZE)));
        assert_eq!(read_batch(&b, 0, b.len(), 4), Err(RecordError::BadCrc));
        assert_eq!(
            read_batch(&b, BATCH_RECORD_SIZE, b.len(), 3),
            Err(RecordError::End)
        );
    }
}
