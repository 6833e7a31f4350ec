//! The snapshot of a `LogState`: everything a replica needs besides the
//! records themselves (which are the Raft log): the configuration, the
//! applied index, next and retention offsets, the producer id counter,
//! the offset index's live part and the exactly-once table. All integers
//! little-endian:
//!
//! ```text
//! header
//! 0   magic      u32   0x53534C43 ("CLSS")
//! 4   version    u16   2
//! 6   reserved   u16   0
//! 8   body_len   u64   bytes after the 24-byte header
//! 16  crc        u32   CRC-32 (crc32fast) of bytes 0..16 then the body
//! 20  reserved   u32   0
//! body
//! 0   applied_index     u64
//! 8   next_offset       u64   <= MAX_OFFSET
//! 16  retention_offset  u64   <= next_offset
//! 24  total_bytes       u64   bytes of every batch ever appended
//! 32  max_timestamp_ms  u64   largest producer timestamp ever appended
//! 40  next_producer_id  u64   >= 1: the id the next InitProducer gives
//! 48  max_producers     u32   1..=LogConfig::MAX_PRODUCERS
//! 52  batch_count       u32
//! 56  producer_count    u32   <= max_producers
//! 60  batch_count times (32 bytes, base offsets and entries increasing):
//!       base_offset u64, entry_index u64, start_bytes u64, max_timestamp_ms u64
//!     producer_count times, least recently used first:
//!       producer_id u64 (1..next_producer_id, unique), remembered u8 (0..=5:
//!       0 for a producer registered that has appended nothing yet),
//!       remembered times, oldest first (20 bytes):
//!         first_seq u64, count u32, base_offset u64
//! ```
//!
//! Version 1 (before the group gave producer ids: no `next_producer_id`,
//! ids chosen by clients) is refused as `UnsupportedVersion`: its table
//! holds ids the group never gave, and its log holds batches that the
//! rules of version 2 would decide differently on replay.
//!
//! Decoding never trusts a count before checking that the bytes it needs
//! are present, and checks every relation a state built by `apply` keeps
//! (`SnapshotError::Inconsistent` names the one that failed), so a
//! restored state decides every later entry as the original would.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::dedup::{DedupTable, REMEMBERED_BATCHES, SeqBatch};
use super::error::SnapshotError;
use super::le::{u16_at, u32_at, u64_at};
use super::offsets::{BatchPos, OffsetIndex};
use super::state::{LogConfig, LogState, MAX_OFFSET};

/// "CLSS" read as a little-endian u32.
pub const SNAPSHOT_MAGIC: u32 = u32::from_le_bytes(*b"CLSS");
/// The snapshot format version this build writes and reads.
pub const SNAPSHOT_VERSION: u16 = 2;
/// Bytes of the fixed header.
pub const SNAPSHOT_HEADER_LEN: usize = 24;

const AT_CRC: usize = 16;
const FIXED_BODY_LEN: usize = 60;
const BATCH_LEN: usize = 32;
const SEQ_BATCH_LEN: usize = 20;
const MIN_PRODUCER_LEN: usize = 9;

fn snapshot_crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b.get(..AT_CRC).unwrap_or(b));
    h.update(b.get(SNAPSHOT_HEADER_LEN..).unwrap_or(&[]));
    h.finalize()
}

/// Encodes `state`.
pub(crate) fn encode(state: &LogState) -> Bytes {
    let index = state.index();
    let dedup = state.dedup();
    let producers_len: usize = dedup
        .producers()
        .map(|(_, bs)| 9 + bs.count() * SEQ_BATCH_LEN)
        .sum();
    let body_len = FIXED_BODY_LEN + index.batch_count() * BATCH_LEN + producers_len;
    let mut b = BytesMut::with_capacity(SNAPSHOT_HEADER_LEN + body_len);
    b.put_u32_le(SNAPSHOT_MAGIC);
    b.put_u16_le(SNAPSHOT_VERSION);
    b.put_u16_le(0);
    b.put_u64_le(body_len as u64);
    b.put_u32_le(0); // crc, patched below
    b.put_u32_le(0);
    b.put_u64_le(state.applied_index());
    b.put_u64_le(index.next_offset());
    b.put_u64_le(state.retention_offset());
    b.put_u64_le(index.total_bytes());
    b.put_u64_le(index.max_timestamp_ms());
    b.put_u64_le(state.next_producer_id());
    b.put_u32_le(state.config().max_producers);
    // u32 counts: producers are at most MAX_PRODUCERS; 2^32 retained
    // batches would take 128 GiB of index in memory before this point.
    b.put_u32_le(index.batch_count() as u32);
    b.put_u32_le(dedup.len() as u32);
    for p in index.batches() {
        b.put_u64_le(p.base_offset);
        b.put_u64_le(p.entry_index);
        b.put_u64_le(p.start_bytes);
        b.put_u64_le(p.max_timestamp_ms);
    }
    for (id, batches) in dedup.producers() {
        b.put_u64_le(id);
        let at = b.len();
        b.put_u8(0);
        let mut n = 0u8;
        for s in batches {
            b.put_u64_le(s.first_seq);
            b.put_u32_le(s.count);
            b.put_u64_le(s.base_offset);
            n += 1;
        }
        b[at] = n;
    }
    let crc = snapshot_crc(&b);
    b[AT_CRC..AT_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    b.freeze()
}

/// Reads fixed-size fields in order, refusing a short read by name.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn need(&self, what: &'static str, n: usize) -> Result<(), SnapshotError> {
        let available = self.b.len() - self.at;
        if n > available {
            return Err(SnapshotError::Truncated {
                what,
                needed: n as u64,
                available: available as u64,
            });
        }
        Ok(())
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, SnapshotError> {
        self.need(what, 8)?;
        let v = u64_at(self.b, self.at).ok_or(SnapshotError::Inconsistent { what })?;
        self.at += 8;
        Ok(v)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotError> {
        self.need(what, 4)?;
        let v = u32_at(self.b, self.at).ok_or(SnapshotError::Inconsistent { what })?;
        self.at += 4;
        Ok(v)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, SnapshotError> {
        self.need(what, 1)?;
        let v = self.b[self.at];
        self.at += 1;
        Ok(v)
    }
}

fn check(ok: bool, what: &'static str) -> Result<(), SnapshotError> {
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::Inconsistent { what })
    }
}

/// Decodes and checks a snapshot.
pub(crate) fn decode(bytes: &Bytes) -> Result<LogState, SnapshotError> {
    let b: &[u8] = bytes;
    if b.len() < SNAPSHOT_HEADER_LEN {
        return Err(SnapshotError::Truncated {
            what: "header",
            needed: SNAPSHOT_HEADER_LEN as u64,
            available: b.len() as u64,
        });
    }
    let magic = u32_at(b, 0).unwrap_or(0);
    if magic != SNAPSHOT_MAGIC {
        return Err(SnapshotError::BadMagic { found: magic });
    }
    let version = u16_at(b, 4).unwrap_or(0);
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: version });
    }
    let body_len = u64_at(b, 8).unwrap_or(u64::MAX);
    let declared = (SNAPSHOT_HEADER_LEN as u64).saturating_add(body_len);
    if declared != b.len() as u64 {
        return Err(SnapshotError::LengthMismatch {
            declared,
            actual: b.len() as u64,
        });
    }
    let stored = u32_at(b, AT_CRC).unwrap_or(0);
    let computed = snapshot_crc(b);
    if stored != computed {
        return Err(SnapshotError::CrcMismatch { stored, computed });
    }
    check(
        u16_at(b, 6) == Some(0) && u32_at(b, 20) == Some(0),
        "reserved header bytes are not zero",
    )?;
    let mut c = Cursor {
        b,
        at: SNAPSHOT_HEADER_LEN,
    };
    let applied_index = c.u64("applied index")?;
    let next_offset = c.u64("next offset")?;
    let retention_offset = c.u64("retention offset")?;
    let total_bytes = c.u64("total bytes")?;
    let max_timestamp_ms = c.u64("max timestamp")?;
    let next_producer_id = c.u64("next producer id")?;
    let max_producers = c.u32("max producers")?;
    let batch_count = c.u32("batch count")?;
    let producer_count = c.u32("producer count")?;
    let config = LogConfig { max_producers };
    if !config.is_valid() {
        return Err(SnapshotError::Limit {
            what: "max producers",
            value: u64::from(max_producers),
            limit: u64::from(LogConfig::MAX_PRODUCERS),
        });
    }
    if producer_count > max_producers {
        return Err(SnapshotError::Limit {
            what: "producers",
            value: u64::from(producer_count),
            limit: u64::from(max_producers),
        });
    }
    if next_offset > MAX_OFFSET {
        return Err(SnapshotError::Limit {
            what: "next offset",
            value: next_offset,
            limit: MAX_OFFSET,
        });
    }
    check(
        retention_offset <= next_offset,
        "retention offset past the next offset",
    )?;
    check(next_producer_id >= 1, "next producer id 0")?;
    let batches = decode_batches(
        &mut c,
        batch_count,
        applied_index,
        total_bytes,
        max_timestamp_ms,
    )?;
    check_batches_against_offsets(&batches, retention_offset, next_offset)?;
    let dedup = decode_producers(
        &mut c,
        producer_count,
        max_producers,
        next_offset,
        next_producer_id,
    )?;
    check(c.at == b.len(), "bytes after the last producer")?;
    let index = OffsetIndex::from_parts(
        batches,
        retention_offset,
        next_offset,
        total_bytes,
        max_timestamp_ms,
    );
    Ok(LogState::from_parts(
        config,
        applied_index,
        retention_offset,
        index,
        dedup,
        next_producer_id,
    ))
}

fn decode_batches(
    c: &mut Cursor<'_>,
    count: u32,
    applied_index: u64,
    total_bytes: u64,
    max_timestamp_ms: u64,
) -> Result<VecDeque<BatchPos>, SnapshotError> {
    // Checked before the allocation it sizes.
    c.need("offset index", count as usize * BATCH_LEN)?;
    let mut batches = VecDeque::with_capacity(count as usize);
    let mut prev: Option<BatchPos> = None;
    for _ in 0..count {
        let p = BatchPos {
            base_offset: c.u64("batch base offset")?,
            entry_index: c.u64("batch entry index")?,
            start_bytes: c.u64("batch start bytes")?,
            max_timestamp_ms: c.u64("batch max timestamp")?,
        };
        check(
            (1..=applied_index).contains(&p.entry_index),
            "batch entry index outside 1..=applied index",
        )?;
        check(
            p.start_bytes < total_bytes,
            "batch starts past the total bytes",
        )?;
        check(
            p.max_timestamp_ms <= max_timestamp_ms,
            "batch timestamp above the maximum",
        )?;
        if let Some(q) = prev {
            check(
                q.base_offset < p.base_offset,
                "batch offsets not increasing",
            )?;
            check(
                q.entry_index < p.entry_index,
                "batch entries not increasing",
            )?;
            check(q.start_bytes < p.start_bytes, "batch bytes not increasing")?;
            check(
                q.max_timestamp_ms <= p.max_timestamp_ms,
                "batch timestamps not a running maximum",
            )?;
        }
        prev = Some(p);
        batches.push_back(p);
    }
    Ok(batches)
}

/// The batches held must end at the next offset, and the first must hold
/// an offset at or past the retention point (wholly truncated batches are
/// never kept).
fn check_batches_against_offsets(
    batches: &VecDeque<BatchPos>,
    retention_offset: u64,
    next_offset: u64,
) -> Result<(), SnapshotError> {
    if let Some(last) = batches.back() {
        check(
            last.base_offset < next_offset,
            "batch at or past the next offset",
        )?;
    }
    if !batches.is_empty() {
        let end = batches.get(1).map_or(next_offset, |b| b.base_offset);
        check(
            end > retention_offset,
            "batch wholly below the retention point",
        )?;
    }
    Ok(())
}

fn decode_producers(
    c: &mut Cursor<'_>,
    count: u32,
    max_producers: u32,
    next_offset: u64,
    next_producer_id: u64,
) -> Result<DedupTable, SnapshotError> {
    c.need("producers", count as usize * MIN_PRODUCER_LEN)?;
    let mut dedup = DedupTable::new(max_producers);
    let mut ring = [SeqBatch::default(); REMEMBERED_BATCHES];
    for _ in 0..count {
        let id = c.u64("producer id")?;
        check(id != 0, "producer id 0")?;
        check(id < next_producer_id, "producer id not given yet")?;
        check(!dedup.contains(id), "producer id twice")?;
        let n = c.u8("remembered batches")? as usize;
        check(n <= REMEMBERED_BATCHES, "remembered batches above 5")?;
        for k in 0..n {
            let s = SeqBatch {
                first_seq: c.u64("remembered first seq")?,
                count: c.u32("remembered count")?,
                base_offset: c.u64("remembered base offset")?,
            };
            check(s.count >= 1, "remembered batch of no records")?;
            check(
                s.first_seq.checked_add(u64::from(s.count) - 1).is_some(),
                "remembered sequences overflow",
            )?;
            check(
                s.base_offset
                    .checked_add(u64::from(s.count))
                    .is_some_and(|end| end <= next_offset),
                "remembered batch past the next offset",
            )?;
            if let Some(q) = k.checked_sub(1).map(|j| ring[j]) {
                check(
                    q.last_seq().checked_add(1) == Some(s.first_seq),
                    "remembered sequences not consecutive",
                )?;
                check(
                    q.base_offset + u64::from(q.count) <= s.base_offset,
                    "remembered offsets not increasing",
                )?;
            }
            ring[k] = s;
        }
        dedup.restore_producer(id, &ring[..n]);
    }
    Ok(dedup)
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
