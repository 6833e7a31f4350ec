//! Writing record batches (clients, tests, benches) into one reused
//! buffer: records are appended in place, the header is patched when the
//! batch is sealed, and the sealed batch is split off the buffer as
//! `Bytes` without a copy. No allocation per record; the buffer grows (or
//! reclaims the space of batches already dropped) per batch at most.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{BATCH_HEADER_LEN, BatchHeader, BatchLimits, RECORD_PREFIX_LEN, batch_crc};
use super::error::BatchError;

/// Builds batches one after another in a reused buffer.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: BytesMut,
    limits: BatchLimits,
}

impl BatchBuilder {
    /// A builder whose batches stay within `limits` (checked on every push).
    pub fn new(limits: BatchLimits) -> BatchBuilder {
        BatchBuilder {
            buf: BytesMut::new(),
            limits,
        }
    }

    /// Starts a batch (discarding any unsealed one). `producer_id` 0 means
    /// no producer; `producer_seq` is the sequence of its first record.
    pub fn start(
        &mut self,
        producer_id: u64,
        producer_seq: u64,
        timestamp_ms: u64,
    ) -> BatchWriter<'_> {
        self.buf.clear();
        self.buf.reserve(BATCH_HEADER_LEN);
        self.buf.put_bytes(0, BATCH_HEADER_LEN);
        BatchWriter {
            builder: self,
            header: BatchHeader {
                producer_id,
                producer_seq,
                timestamp_ms,
                ..BatchHeader::default()
            },
        }
    }
}

/// One batch being written; `finish` seals it.
#[derive(Debug)]
pub struct BatchWriter<'a> {
    builder: &'a mut BatchBuilder,
    header: BatchHeader,
}

impl BatchWriter<'_> {
    /// Appends one record. Refused (and the batch left as it was) if it
    /// would break a limit.
    pub fn push(&mut self, record: &[u8]) -> Result<(), BatchError> {
        let limits = &self.builder.limits;
        if record.len() as u64 > u64::from(limits.max_record_bytes) {
            return Err(BatchError::Limit {
                what: "record bytes",
                value: record.len() as u64,
                limit: u64::from(limits.max_record_bytes),
            });
        }
        if self.header.record_count >= limits.max_records {
            return Err(BatchError::Limit {
                what: "records per batch",
                value: u64::from(self.header.record_count) + 1,
                limit: u64::from(limits.max_records),
            });
        }
        let total = self.builder.buf.len() as u64 + (RECORD_PREFIX_LEN + record.len()) as u64;
        if total > u64::from(limits.max_batch_bytes) {
            return Err(BatchError::Limit {
                what: "batch bytes",
                value: total,
                limit: u64::from(limits.max_batch_bytes),
            });
        }
        let buf = &mut self.builder.buf;
        // `record.len()` fits in a u32: it is at most max_record_bytes.
        buf.put_u32_le(record.len() as u32);
        buf.put_slice(record);
        self.header.record_count += 1;
        Ok(())
    }

    /// Records pushed so far.
    pub fn record_count(&self) -> u32 {
        self.header.record_count
    }

    /// Bytes of the batch so far, header included.
    pub fn len(&self) -> usize {
        self.builder.buf.len()
    }

    /// Always false: the header is written at `start`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Seals the batch (count, length, crc) and hands it out as `Bytes`,
    /// split off the builder's buffer without a copy.
    pub fn finish(self) -> Result<Bytes, BatchError> {
        let mut header = self.header;
        if header.record_count == 0 {
            return Err(BatchError::NoRecords);
        }
        if header.producer_id != 0
            && header
                .producer_seq
                .checked_add(u64::from(header.record_count) - 1)
                .is_none()
        {
            return Err(BatchError::SequenceOverflow {
                producer_seq: header.producer_seq,
                record_count: header.record_count,
            });
        }
        let buf = &mut self.builder.buf;
        // Below max_batch_bytes (a u32), checked on every push.
        header.records_len = (buf.len() - BATCH_HEADER_LEN) as u32;
        let mut head = [0u8; BATCH_HEADER_LEN];
        header.write(&mut head);
        buf[..BATCH_HEADER_LEN].copy_from_slice(&head);
        let crc = batch_crc(buf);
        buf[super::batch::AT_CRC..BATCH_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        Ok(buf.split().freeze())
    }
}
