//! Snapshot data in chunks: a MsgSnap's data does not travel inside the
//! message but before it, on the same connection, as records of kind
//! [`KIND_SNAPSHOT_CHUNK`] (heartbeats.rs) of at most `CHUNK_BYTES` each,
//! so a large snapshot never needs one large frame, and the receiver holds
//! at most a bounded assembly per connection (and in total).
//!
//! Chunk record body (little-endian), after the record's `group | len`:
//!
//! ```text
//! 0   group   u64   the Raft group of the snapshot
//! 8   index   u64   the snapshot's index (its metadata's)
//! 16  total   u64   bytes of the whole snapshot data (> 0)
//! 24  offset  u64   where this chunk's bytes start (chunks in order)
//! 32  data    ...   1..=total - offset bytes
//! ```
//!
//! The MsgSnap follows the last chunk with empty data, in the same frame
//! or the next one (the sender queues it right after the last chunk); the
//! receiver gives it the assembled data if the assembly for its group and
//! index is complete, and drops it otherwise (counted). A chunk out of
//! order, of another snapshot before the last one completed, or above a
//! limit is garbage: the connection closes.
//!
//! A completed snapshot stays counted against the shard's total until its
//! MsgSnap claims it, a new snapshot starts on the connection, the frame
//! after the one that completed it ends unclaimed (`CLAIM_FRAMES`), or
//! the connection closes: a peer that never sends the MsgSnap holds no
//! memory the budget does not see, and not for long on a live connection.

use bytes::{Bytes, BytesMut};

use super::Error;

pub use super::heartbeats::KIND_SNAPSHOT_CHUNK;

/// Bytes of a chunk record's header.
pub const CHUNK_HEADER_LEN: usize = 32;
/// Default (and most) data bytes per chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// What a chunk record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub group: u64,
    pub index: u64,
    pub total: u64,
    pub offset: u64,
}

impl ChunkHeader {
    pub fn encode(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut b = [0u8; CHUNK_HEADER_LEN];
        b[..8].copy_from_slice(&self.group.to_le_bytes());
        b[8..16].copy_from_slice(&self.index.to_le_bytes());
        b[16..24].copy_from_slice(&self.total.to_le_bytes());
        b[24..].copy_from_slice(&self.offset.to_le_bytes());
        b
    }

    /// Splits a record body into its header and data, checking the
    /// header's own relations.
    pub fn decode(body: &Bytes) -> Result<(ChunkHeader, Bytes), Error> {
        if body.len() < CHUNK_HEADER_LEN {
            return Err(Error::Truncated {
                what: "snapshot chunk header",
                needed: CHUNK_HEADER_LEN as u64,
                available: body.len() as u64,
            });
        }
        let u = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&body[at..at + 8]);
            u64::from_le_bytes(x)
        };
        let h = ChunkHeader {
            group: u(0),
            index: u(8),
            total: u(16),
            offset: u(24),
        };
        let data = body.slice(CHUNK_HEADER_LEN..);
        let end = h.offset.checked_add(data.len() as u64);
        if data.is_empty() || h.index == 0 || end.is_none_or(|e| e > h.total) {
            return Err(Error::Malformed {
                what: "snapshot chunk",
                offset: 0,
                reason: "empty, at index 0, or past the snapshot's total",
            });
        }
        Ok((h, data))
    }
}

/// The chunks of `data` (group's snapshot at `index`), in order, each at
/// most `chunk` bytes: slices of `data`, not copies.
pub fn split(group: u64, index: u64, data: &Bytes, chunk: usize) -> Vec<(ChunkHeader, Bytes)> {
    let chunk = chunk.max(1);
    let total = data.len() as u64;
    (0..data.len())
        .step_by(chunk)
        .map(|at| {
            let end = (at + chunk).min(data.len());
            (
                ChunkHeader {
                    group,
                    index,
                    total,
                    offset: at as u64,
                },
                data.slice(at..end),
            )
        })
        .collect()
}

/// Bounds of what one connection (and all of a shard's connections
/// together) may be assembling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// Bytes of one snapshot, so of one connection's assembly.
    pub max_bytes: u64,
}

/// Frames that end while a completed snapshot waits for its MsgSnap
/// before it is dropped: the one that completed it and the next (the
/// sender puts the MsgSnap in one of those two).
pub const CLAIM_FRAMES: u32 = 2;

/// A completed snapshot waiting for its MsgSnap.
#[derive(Debug)]
struct Done {
    group: u64,
    index: u64,
    data: Bytes,
    /// Frames ended since it completed (the completing one included).
    frames: u32,
}

/// The snapshot one inbound connection is assembling.
#[derive(Debug, Default)]
pub struct Assembler {
    current: Option<(ChunkHeader, BytesMut)>,
    /// The last completed snapshot, waiting for its MsgSnap.
    done: Option<Done>,
}

impl Assembler {
    /// Bytes this connection holds against the shard's total: the
    /// assembly in progress (all of its total, reserved when it started)
    /// and the completed snapshot not yet claimed.
    pub fn reserved(&self) -> u64 {
        let current = self.current.as_ref().map_or(0, |(h, _)| h.total);
        current + self.done.as_ref().map_or(0, |d| d.data.len() as u64)
    }

    /// Drops the completed snapshot not claimed; returns its bytes.
    pub fn drop_done(&mut self) -> u64 {
        self.done.take().map_or(0, |d| d.data.len() as u64)
    }

    /// A frame of the connection ended: the completed snapshot still not
    /// claimed after `CLAIM_FRAMES` frames is dropped. Returns the bytes
    /// dropped (0: none).
    pub fn frame_ended(&mut self) -> u64 {
        let Some(d) = self.done.as_mut() else {
            return 0;
        };
        d.frames += 1;
        if d.frames < CLAIM_FRAMES {
            return 0;
        }
        self.drop_done()
    }

    /// Takes one chunk. `reserve(n)` asks the shard-wide budget for `n`
    /// more bytes when a new snapshot starts (false: over the total
    /// limit); the caller gives back what `drop_done` returns first (a new
    /// snapshot supersedes one completed and never claimed). `Err`: the
    /// connection closes.
    pub fn push(
        &mut self,
        h: ChunkHeader,
        data: &Bytes,
        limits: &SnapshotLimits,
        reserve: &mut dyn FnMut(u64) -> bool,
    ) -> Result<(), Error> {
        if h.total > limits.max_bytes {
            return Err(Error::Limit {
                what: "snapshot bytes",
                value: h.total,
                limit: limits.max_bytes,
            });
        }
        if h.offset == 0 {
            if self.current.is_some() {
                return Err(Error::Malformed {
                    what: "snapshot chunk",
                    offset: 0,
                    reason: "a snapshot started before the last one completed",
                });
            }
            if !reserve(h.total) {
                return Err(Error::Limit {
                    what: "snapshot bytes being assembled on this shard",
                    value: h.total,
                    limit: limits.max_bytes,
                });
            }
            self.current = Some((h, BytesMut::with_capacity(h.total as usize)));
        }
        let Some((cur, buf)) = self.current.as_mut() else {
            return Err(Error::Malformed {
                what: "snapshot chunk",
                offset: 0,
                reason: "a chunk past the start of a snapshot not begun",
            });
        };
        if (cur.group, cur.index, cur.total) != (h.group, h.index, h.total)
            || h.offset != buf.len() as u64
        {
            return Err(Error::Malformed {
                what: "snapshot chunk",
                offset: 0,
                reason: "a chunk out of order or of another snapshot",
            });
        }
        buf.extend_from_slice(data);
        let complete = buf.len() as u64 == cur.total;
        if complete && let Some((h, buf)) = self.current.take() {
            self.done = Some(Done {
                group: h.group,
                index: h.index,
                data: buf.freeze(),
                frames: 0,
            });
        }
        Ok(())
    }

    /// The data of the completed snapshot of `group` at `index`, if that
    /// is the one assembled (taken: its bytes leave `reserved`).
    pub fn take(&mut self, group: u64, index: u64) -> Option<Bytes> {
        match &self.done {
            Some(d) if d.group == group && d.index == index => self.done.take().map(|d| d.data),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: SnapshotLimits = SnapshotLimits { max_bytes: 100 };

    fn data(n: usize) -> Bytes {
        Bytes::from((0..n).map(|i| i as u8).collect::<Vec<_>>())
    }

    fn body(h: ChunkHeader, d: &[u8]) -> Bytes {
        let mut b = h.encode().to_vec();
        b.extend_from_slice(d);
        Bytes::from(b)
    }

    #[test]
    fn split_chunks_reassemble_to_the_data_they_slice() {
        let d = data(95);
        let chunks = split(4, 9, &d, 10);
        assert_eq!(chunks.len(), 10);
        let mut a = Assembler::default();
        let mut reserved = 0;
        for (h, c) in &chunks {
            // Slices of the original, not copies.
            assert!(c.as_ptr() >= d.as_ptr() && c.len() <= 10);
            let (h2, c2) = ChunkHeader::decode(&body(*h, c)).unwrap();
            assert_eq!((h2, &c2), (*h, c));
            a.push(h2, &c2, &LIM, &mut |n| {
                reserved += n;
                true
            })
            .unwrap();
        }
        assert_eq!(reserved, 95);
        assert_eq!(a.take(4, 8), None, "another index");
        assert_eq!(a.take(4, 9), Some(d));
        assert_eq!(a.take(4, 9), None, "taken once");
    }

    #[test]
    fn garbage_and_oversized_chunks_are_refused() {
        let h = ChunkHeader {
            group: 1,
            index: 5,
            total: 20,
            offset: 0,
        };
        let ok = &mut |_| true;
        // Short header, empty data, index 0, past the total.
        assert!(ChunkHeader::decode(&Bytes::from_static(&[0; 31])).is_err());
        assert!(ChunkHeader::decode(&body(h, &[])).is_err());
        assert!(ChunkHeader::decode(&body(ChunkHeader { index: 0, ..h }, &[1])).is_err());
        assert!(ChunkHeader::decode(&body(ChunkHeader { offset: 15, ..h }, &[1; 6])).is_err());
        assert!(
            ChunkHeader::decode(&body(
                ChunkHeader {
                    offset: u64::MAX,
                    ..h
                },
                &[1]
            ))
            .is_err()
        );
        // Above the per-connection limit, before anything is reserved.
        let mut a = Assembler::default();
        let big = ChunkHeader { total: 101, ..h };
        assert!(matches!(
            a.push(big, &data(1), &LIM, &mut |_| panic!("reserved")),
            Err(Error::Limit { .. })
        ));
        // Over the shard's total.
        assert!(matches!(
            a.push(h, &data(1), &LIM, &mut |_| false),
            Err(Error::Limit { .. })
        ));
        // A chunk not at the start of an assembly, out of order, of
        // another snapshot, or a new start before the last completed.
        let mut a = Assembler::default();
        assert!(
            a.push(ChunkHeader { offset: 3, ..h }, &data(1), &LIM, ok)
                .is_err()
        );
        let mut a = Assembler::default();
        a.push(h, &data(5), &LIM, ok).unwrap();
        assert!(
            a.push(ChunkHeader { offset: 6, ..h }, &data(1), &LIM, ok)
                .is_err()
        );
        let mut a = Assembler::default();
        a.push(h, &data(5), &LIM, ok).unwrap();
        assert!(
            a.push(
                ChunkHeader {
                    offset: 5,
                    index: 6,
                    ..h
                },
                &data(1),
                &LIM,
                ok
            )
            .is_err()
        );
        let mut a = Assembler::default();
        a.push(h, &data(5), &LIM, ok).unwrap();
        assert!(a.push(h, &data(5), &LIM, ok).is_err());
        assert_eq!(a.reserved(), 20);
    }
}
