//! The record batch: what one append carries, the data of one Raft entry,
//! and the same bytes on the client wire, in the WAL and in read answers
//! (no layer re-encodes or copies records). All integers little-endian:
//!
//! ```text
//! 0   magic         u8    0xB1 (a command is 0xC1; a leader's empty entry has no data)
//! 1   version       u8    1
//! 2   flags         u16   0 (no flag is defined; any set bit is refused)
//! 4   record_count  u32   >= 1
//! 8   producer_id   u64   0 = no producer (no deduplication)
//! 16  producer_seq  u64   sequence of the first record (ignored when producer_id is 0)
//! 24  timestamp_ms  u64   the producer's clock, informational (and age retention's input)
//! 32  records_len   u32   bytes of the records section
//! 36  crc           u32   CRC-32 (crc32fast) of bytes 0..36 then the records section
//! 40  records       record_count times: length u32, bytes[length]
//! ```
//!
//! The crc covers the header too (all but itself): a flipped bit in the
//! producer id or sequence would otherwise pass end to end and break
//! deduplication silently. Nothing rewrites a batch after the producer
//! sealed it (offsets are not in it: they are assigned at apply time and
//! travel beside the batch in read answers), so the crc stays true from
//! producer to reader.
//!
//! [`RecordBatch::parse`] validates everything once (header, every length
//! against [`BatchLimits`] before it is used, the sum of lengths against
//! `records_len`, the crc) and never panics; afterwards iterating the
//! records needs no checks and yields `Bytes` slices of the batch itself.

use bytes::Bytes;

use super::error::BatchError;
use super::le::{u16_at, u32_at, u64_at};

/// First byte of a record batch.
pub const BATCH_MAGIC: u8 = 0xB1;
/// The batch format version this build writes and reads.
pub const BATCH_VERSION: u8 = 1;
/// Bytes of the fixed header before the records.
pub const BATCH_HEADER_LEN: usize = 40;
/// Bytes of the length prefix of every record.
pub const RECORD_PREFIX_LEN: usize = 4;

const AT_MAGIC: usize = 0;
const AT_VERSION: usize = 1;
const AT_FLAGS: usize = 2;
const AT_COUNT: usize = 4;
const AT_PRODUCER_ID: usize = 8;
const AT_PRODUCER_SEQ: usize = 16;
const AT_TIMESTAMP: usize = 24;
const AT_RECORDS_LEN: usize = 32;
/// Where the crc sits; the crc covers everything before it and after it.
pub(crate) const AT_CRC: usize = 36;

/// Bounds a batch is checked against before any length in it is used.
///
/// Two uses, deliberately different: the server's door checks proposals
/// against its configured limits (`DEFAULT` or tighter); the state machine
/// checks committed entries against `CEILING`, the format's own bounds,
/// which are the same on every replica. If apply used a configurable
/// limit, two replicas configured differently would accept and refuse the
/// same committed batch and give different offsets to everything after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Whole batch, header included.
    pub max_batch_bytes: u32,
    /// Records in one batch.
    pub max_records: u32,
    /// Bytes of one record (its length prefix not included).
    pub max_record_bytes: u32,
}

impl BatchLimits {
    /// What the server accepts unless configured otherwise.
    pub const DEFAULT: BatchLimits = BatchLimits {
        max_batch_bytes: 1 << 20,
        max_records: 1 << 16,
        max_record_bytes: 1 << 20,
    };

    /// The format's bounds, used when committed entries are applied. A
    /// batch above 64 MiB could not cross the peer transport's largest
    /// frame anyway (transport::Limits' default), and a record takes at
    /// least its 4-byte prefix, which bounds the count.
    pub const CEILING: BatchLimits = BatchLimits {
        max_batch_bytes: 64 << 20,
        max_records: (64 << 20) / RECORD_PREFIX_LEN as u32,
        max_record_bytes: 64 << 20,
    };

    /// Whether every bound is at most `CEILING`'s: a door that let through
    /// what apply refuses would answer "appended" for a no-op.
    pub fn within_ceiling(&self) -> bool {
        let c = BatchLimits::CEILING;
        self.max_batch_bytes <= c.max_batch_bytes
            && self.max_records <= c.max_records
            && self.max_record_bytes <= c.max_record_bytes
    }
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits::DEFAULT
    }
}

/// The header fields of a batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchHeader {
    pub flags: u16,
    pub record_count: u32,
    pub producer_id: u64,
    pub producer_seq: u64,
    pub timestamp_ms: u64,
    pub records_len: u32,
    pub crc: u32,
}

impl BatchHeader {
    /// Writes the header into `out` (40 bytes), with `self.crc` as given.
    pub fn write(&self, out: &mut [u8; BATCH_HEADER_LEN]) {
        out[AT_MAGIC] = BATCH_MAGIC;
        out[AT_VERSION] = BATCH_VERSION;
        out[AT_FLAGS..AT_FLAGS + 2].copy_from_slice(&self.flags.to_le_bytes());
        out[AT_COUNT..AT_COUNT + 4].copy_from_slice(&self.record_count.to_le_bytes());
        out[AT_PRODUCER_ID..AT_PRODUCER_ID + 8].copy_from_slice(&self.producer_id.to_le_bytes());
        out[AT_PRODUCER_SEQ..AT_PRODUCER_SEQ + 8].copy_from_slice(&self.producer_seq.to_le_bytes());
        out[AT_TIMESTAMP..AT_TIMESTAMP + 8].copy_from_slice(&self.timestamp_ms.to_le_bytes());
        out[AT_RECORDS_LEN..AT_RECORDS_LEN + 4].copy_from_slice(&self.records_len.to_le_bytes());
        out[AT_CRC..AT_CRC + 4].copy_from_slice(&self.crc.to_le_bytes());
    }

    /// Sequence of the batch's last record (`producer_seq` for a batch of
    /// one). Parsed batches never overflow here; a header built by hand
    /// saturates rather than wraps.
    pub fn last_seq(&self) -> u64 {
        self.producer_seq
            .saturating_add(u64::from(self.record_count.saturating_sub(1)))
    }
}

/// The crc of a batch laid out in `b` (header and records present): over
/// the header up to the crc field, then everything after it.
pub(crate) fn batch_crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b.get(..AT_CRC).unwrap_or(b));
    h.update(b.get(BATCH_HEADER_LEN..).unwrap_or(&[]));
    h.finalize()
}

/// A validated record batch: a view over the entry's own `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
    header: BatchHeader,
}

impl RecordBatch {
    /// Validates `bytes` as exactly one record batch within `limits`.
    /// Takes a reference count on `bytes`, never copies it.
    pub fn parse(bytes: &Bytes, limits: &BatchLimits) -> Result<RecordBatch, BatchError> {
        let header = validate(bytes, limits)?;
        Ok(RecordBatch {
            bytes: bytes.clone(),
            header,
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Records in the batch (at least 1).
    pub fn record_count(&self) -> u32 {
        self.header.record_count
    }

    /// The producer id, `None` for 0.
    pub fn producer(&self) -> Option<u64> {
        (self.header.producer_id != 0).then_some(self.header.producer_id)
    }

    /// The whole batch, header included: what travels and is stored.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Bytes of the whole batch.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a valid batch has a header and a record.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The records, each a `Bytes` slice of the batch (a reference count,
    /// no copy).
    pub fn records(&self) -> Records<'_> {
        Records {
            raw: self.raw_records(),
        }
    }

    /// The records as borrowed slices (not even a reference count).
    pub fn raw_records(&self) -> RawRecords<'_> {
        RawRecords {
            bytes: &self.bytes,
            pos: BATCH_HEADER_LEN,
            left: self.header.record_count,
        }
    }
}

/// Checks `b` as one batch within `limits`; the header if it is one.
fn validate(b: &[u8], limits: &BatchLimits) -> Result<BatchHeader, BatchError> {
    if b.len() < BATCH_HEADER_LEN {
        return Err(BatchError::Truncated {
            needed: BATCH_HEADER_LEN as u64,
            available: b.len() as u64,
        });
    }
    // The length check above makes every read below succeed; `?` on the
    // `Option` reports a (impossible) short read as truncation, not a panic.
    let short = || BatchError::Truncated {
        needed: BATCH_HEADER_LEN as u64,
        available: b.len() as u64,
    };
    if b[AT_MAGIC] != BATCH_MAGIC {
        return Err(BatchError::BadMagic { found: b[AT_MAGIC] });
    }
    if b[AT_VERSION] != BATCH_VERSION {
        return Err(BatchError::UnsupportedVersion {
            found: b[AT_VERSION],
        });
    }
    let flags = u16_at(b, AT_FLAGS).ok_or_else(short)?;
    if flags != 0 {
        return Err(BatchError::UnknownFlags { flags });
    }
    let record_count = u32_at(b, AT_COUNT).ok_or_else(short)?;
    if record_count == 0 {
        return Err(BatchError::NoRecords);
    }
    if record_count > limits.max_records {
        return Err(BatchError::Limit {
            what: "records per batch",
            value: u64::from(record_count),
            limit: u64::from(limits.max_records),
        });
    }
    let records_len = u32_at(b, AT_RECORDS_LEN).ok_or_else(short)?;
    let declared = BATCH_HEADER_LEN as u64 + u64::from(records_len);
    if declared > u64::from(limits.max_batch_bytes) {
        return Err(BatchError::Limit {
            what: "batch bytes",
            value: declared,
            limit: u64::from(limits.max_batch_bytes),
        });
    }
    if declared != b.len() as u64 {
        return Err(BatchError::LengthMismatch {
            declared,
            actual: b.len() as u64,
        });
    }
    // The crc before the record lengths: a corrupted length is then
    // reported as the corruption it is, not as a malformed record.
    let stored = u32_at(b, AT_CRC).ok_or_else(short)?;
    let computed = batch_crc(b);
    if stored != computed {
        return Err(BatchError::CrcMismatch { stored, computed });
    }
    let producer_id = u64_at(b, AT_PRODUCER_ID).ok_or_else(short)?;
    let producer_seq = u64_at(b, AT_PRODUCER_SEQ).ok_or_else(short)?;
    if producer_id != 0
        && producer_seq
            .checked_add(u64::from(record_count) - 1)
            .is_none()
    {
        return Err(BatchError::SequenceOverflow {
            producer_seq,
            record_count,
        });
    }
    walk_records(b, record_count, limits)?;
    Ok(BatchHeader {
        flags,
        record_count,
        producer_id,
        producer_seq,
        timestamp_ms: u64_at(b, AT_TIMESTAMP).ok_or_else(short)?,
        records_len,
        crc: stored,
    })
}

/// Checks that `count` length-prefixed records fill the records section
/// exactly, each within `limits.max_record_bytes`.
fn walk_records(b: &[u8], count: u32, limits: &BatchLimits) -> Result<(), BatchError> {
    let mut pos = BATCH_HEADER_LEN;
    for record in 0..count {
        let remaining = (b.len() - pos) as u64;
        let Some(len) = u32_at(b, pos) else {
            return Err(BatchError::RecordOverrun {
                record,
                needed: RECORD_PREFIX_LEN as u64,
                remaining,
            });
        };
        if len > limits.max_record_bytes {
            return Err(BatchError::Limit {
                what: "record bytes",
                value: u64::from(len),
                limit: u64::from(limits.max_record_bytes),
            });
        }
        let needed = RECORD_PREFIX_LEN as u64 + u64::from(len);
        if needed > remaining {
            return Err(BatchError::RecordOverrun {
                record,
                needed,
                remaining,
            });
        }
        pos += needed as usize;
    }
    if pos != b.len() {
        return Err(BatchError::TrailingBytes {
            count: (b.len() - pos) as u64,
        });
    }
    Ok(())
}

/// Borrowed record slices of a validated batch.
#[derive(Debug, Clone)]
pub struct RawRecords<'a> {
    bytes: &'a Bytes,
    pos: usize,
    left: u32,
}

impl<'a> Iterator for RawRecords<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        // Validated by `parse`; a `None` here would end the iteration
        // early rather than panic.
        let len = u32_at(self.bytes, self.pos)? as usize;
        let start = self.pos + RECORD_PREFIX_LEN;
        let record = self.bytes.get(start..start + len)?;
        self.pos = start + len;
        self.left -= 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for RawRecords<'_> {}

/// Records of a validated batch as `Bytes` slices of its buffer.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    raw: RawRecords<'a>,
}

impl Iterator for Records<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let bytes = self.raw.bytes;
        self.raw.next().map(|r| bytes.slice_ref(r))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.raw.size_hint()
    }
}

impl ExactSizeIterator for Records<'_> {}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
