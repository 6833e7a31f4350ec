//! The payload of a peer frame: a batch of (group id, raftpb `Message`)
//! pairs (raftpb has no group field), encoded without copying entry
//! payloads and decoded without copying them either.
//!
//! Payload layout (after the 8-byte frame header of frame.rs), integers
//! little-endian:
//!
//! ```text
//! 0   count u32                 (group, message) pairs that follow
//!     count times:
//!       group u64
//!       len   u32               bytes of the message
//!       message[len]            exactly prost's encoding of the Message
//! ```
//!
//! Encoding: [`Encoder`] writes every protobuf key, varint and length of
//! `Message` and `Entry` itself into one reusable scratch buffer and hands
//! each entry's `data` (and a snapshot's `data`, and a long `context`) over
//! as its own `Bytes`, so a frame is a list of small header slices and the
//! payloads themselves, ready for one vectored write. The bytes are those
//! `prost::Message::encode` would produce (fields in tag order, zero
//! values omitted); the small rest (`SnapshotMetadata`) is encoded by
//! prost. Payloads of at most [`INLINE_MAX`] (1 KiB) bytes are copied
//! into the scratch buffer instead: for them a slice of its own costs more
//! than the copy (measured), and the kernel copies every byte into the
//! socket anyway. `Encoder::with_inline_max(limits, 0)` never copies.
//!
//! Decoding: [`Messages`] walks a payload `Bytes` (a view of the receive
//! buffer, see `frame::split_frame`); every entry's `data` is a slice of
//! it, not a copy. Every count and length is checked against [`Limits`]
//! and the bytes present before it is used; a message's entries are
//! counted before their vector is allocated.

use std::io::{self, IoSlice, Write};
use std::ops::Range;

use bytes::Bytes;
use prost::Message as _;

use super::frame::{FRAME_HEADER_LEN, FrameHeader};
use super::heartbeats::{
    HeartbeatBatch, HeartbeatCursor, KIND_HEARTBEATS, KIND_SNAPSHOT_CHUNK, RECORD_KIND_BIT,
};
use super::pbwire::{
    WIRE_LEN, WIRE_VARINT, get_key, get_len_delimited, get_varint, key, put_varint, skip_field,
    varint_len,
};
use super::snapchunk::{CHUNK_HEADER_LEN, ChunkHeader};
use super::{Error, Limits};
use crate::raftpb::{Entry, Message, Snapshot};

/// Bytes of the payload's header: the message count.
pub const PAYLOAD_HEADER_LEN: usize = 4;
/// Bytes before each message: `group u64 | len u32`.
pub const MESSAGE_HEADER_LEN: usize = 12;
/// Default of [`Encoder::with_inline_max`]: payloads up to this many bytes
/// are copied into the scratch buffer rather than given an `IoSlice` of
/// their own. Measured (docs/benchmarks.md, "Peer codec"): up to 1 KiB the
/// copy costs less than referencing the buffer (a reference count taken
/// and dropped, one more slice to checksum and to hand the kernel, which
/// copies every byte into the socket either way); from 4 KiB on,
/// referencing wins, and by 16 KiB it is twice as fast as copying.
pub const INLINE_MAX: usize = 1024;
/// Most `IoSlice`s one `write_vectored` call is given (Linux's IOV_MAX).
pub const MAX_IOV: usize = 1024;

/// One piece of an encoded frame, in order.
#[derive(Debug)]
enum Part {
    /// `scratch[start..end]`: keys, varints, fixed headers, small payloads.
    Scratch { start: usize, end: usize },
    /// A payload buffer shared with the message it came from.
    Shared(Bytes),
}

/// Builds frames of (group, `Message`) pairs. Reused across frames: its
/// buffers keep their capacity, so a steady stream of frames allocates
/// nothing per entry (the parts list grows only when a frame holds more
/// payloads than any before it).
#[derive(Debug)]
pub struct Encoder {
    limits: Limits,
    scratch: Vec<u8>,
    parts: Vec<Part>,
    /// Start of the scratch bytes not yet closed into a `Part`.
    run_start: usize,
    /// Payloads up to this length are copied into `scratch`.
    inline_max: usize,
    messages: u32,
    /// Payload bytes so far (the frame header excluded).
    payload_len: u64,
}

impl Encoder {
    /// An empty frame that will be kept within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self::with_inline_max(limits, INLINE_MAX)
    }

    /// An encoder that copies payloads of at most `inline_max` bytes into
    /// its scratch buffer and references longer ones (0: never copy).
    pub fn with_inline_max(limits: Limits, inline_max: usize) -> Self {
        let mut e = Encoder {
            limits,
            scratch: Vec::with_capacity(4096),
            parts: Vec::new(),
            run_start: 0,
            inline_max,
            messages: 0,
            payload_len: 0,
        };
        e.clear();
        e
    }

    /// Starts a new, empty frame, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.scratch.clear();
        // Frame header and message count, patched by `finish`.
        self.scratch
            .resize(FRAME_HEADER_LEN + PAYLOAD_HEADER_LEN, 0);
        self.parts.clear();
        self.run_start = 0;
        self.messages = 0;
        self.payload_len = PAYLOAD_HEADER_LEN as u64;
    }

    /// Number of (group, message) pairs in the frame.
    pub fn message_count(&self) -> u32 {
        self.messages
    }

    /// True when no message has been pushed since the last `clear`.
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// Bytes the finished frame will have, header included.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + self.payload_len
    }

    /// Appends `msg` for `group`, taking its payload buffers (no reference
    /// count is touched, nothing is copied). On error the frame is
    /// unchanged: the caller sends this frame and starts another (or, for
    /// a message that alone breaks a limit, drops it).
    pub fn push(&mut self, group: u64, mut msg: Message) -> Result<(), Error> {
        self.push_message(group, &mut MessageRef::Owned(&mut msg))
    }

    /// As [`Encoder::push`], but a message that does not fit comes back
    /// with the error, untouched: the caller starts another frame and
    /// pushes it there, without a reference count or a copy either way.
    #[allow(clippy::result_large_err)]
    pub fn try_push(&mut self, group: u64, mut msg: Message) -> Result<(), (Error, Message)> {
        // `push_message` checks every limit before it takes a buffer out
        // of the message, so on an error nothing has been moved.
        match self.push_message(group, &mut MessageRef::Owned(&mut msg)) {
            Ok(()) => Ok(()),
            Err(e) => Err((e, msg)),
        }
    }

    /// Appends the heartbeats `batch.items[range]` as one heartbeat batch
    /// record (heartbeats.rs). On error the frame is unchanged.
    pub fn push_heartbeats(
        &mut self,
        batch: &HeartbeatBatch,
        range: Range<usize>,
    ) -> Result<(), Error> {
        if range.is_empty() || range.end > batch.len() {
            return Err(Error::Malformed {
                what: "heartbeat batch",
                offset: range.start,
                reason: "empty or out-of-bounds range of heartbeats",
            });
        }
        let count = u64::from(self.messages) + 1;
        if count > u64::from(self.limits.max_messages_per_frame)
            || range.len() as u64 > u64::from(self.limits.max_messages_per_frame)
        {
            return Err(Error::Limit {
                what: "messages per frame",
                value: count.max(range.len() as u64),
                limit: u64::from(self.limits.max_messages_per_frame),
            });
        }
        let header_at = self.scratch.len();
        self.scratch
            .extend_from_slice(&(RECORD_KIND_BIT | KIND_HEARTBEATS).to_le_bytes());
        self.scratch.extend_from_slice(&[0u8; 4]);
        let body_at = self.scratch.len();
        batch.encode_body(range, &mut self.scratch);
        let len = (self.scratch.len() - body_at) as u64;
        let payload_len = self.payload_len + MESSAGE_HEADER_LEN as u64 + len;
        if payload_len > u64::from(self.limits.max_frame_bytes) {
            self.scratch.truncate(header_at);
            return Err(Error::Limit {
                what: "frame bytes",
                value: payload_len,
                limit: u64::from(self.limits.max_frame_bytes),
            });
        }
        // `payload_len` fits a u32 (it is within max_frame_bytes).
        self.scratch[body_at - 4..body_at].copy_from_slice(&(len as u32).to_le_bytes());
        self.messages += 1;
        self.payload_len = payload_len;
        Ok(())
    }

    /// Appends one snapshot chunk record (snapchunk.rs); `data` is shared,
    /// not copied, when longer than the inline size. On error the frame
    /// is unchanged.
    pub fn push_snapshot_chunk(&mut self, h: &ChunkHeader, data: Bytes) -> Result<(), Error> {
        let count = u64::from(self.messages) + 1;
        if count > u64::from(self.limits.max_messages_per_frame) {
            return Err(Error::Limit {
                what: "messages per frame",
                value: count,
                limit: u64::from(self.limits.max_messages_per_frame),
            });
        }
        let len = (CHUNK_HEADER_LEN + data.len()) as u64;
        let payload_len = self.payload_len + MESSAGE_HEADER_LEN as u64 + len;
        if payload_len > u64::from(self.limits.max_frame_bytes) {
            return Err(Error::Limit {
                what: "frame bytes",
                value: payload_len,
                limit: u64::from(self.limits.max_frame_bytes),
            });
        }
        self.scratch
            .extend_from_slice(&(RECORD_KIND_BIT | KIND_SNAPSHOT_CHUNK).to_le_bytes());
        self.scratch.extend_from_slice(&(len as u32).to_le_bytes());
        self.scratch.extend_from_slice(&h.encode());
        if data.len() <= self.inline_max {
            self.scratch.extend_from_slice(&data);
        } else {
            self.close_run();
            self.parts.push(Part::Shared(data));
        }
        self.messages += 1;
        self.payload_len = payload_len;
        Ok(())
    }

    /// Appends `msg` for `group`, sharing its payload buffers (a
    /// `Bytes::clone` each: a reference count, not a copy).
    pub fn push_ref(&mut self, group: u64, msg: &Message) -> Result<(), Error> {
        self.push_message(group, &mut MessageRef::Borrowed(msg))
    }

    fn push_message(&mut self, group: u64, m: &mut MessageRef<'_>) -> Result<(), Error> {
        // Ids with the top bit name the transport's own records
        // (heartbeats.rs), never a Raft group.
        if group & RECORD_KIND_BIT != 0 {
            return Err(Error::Limit {
                what: "group id",
                value: group,
                limit: RECORD_KIND_BIT - 1,
            });
        }
        let msg = m.get();
        // The storage messages of asynchronous writes and their fields stay
        // inside a node; the encoder writes neither, so refusing them keeps
        // every frame byte-identical to prost's encoding.
        if LOCAL_TYPES.contains(&msg.r#type) || msg.vote != 0 || !msg.responses.is_empty() {
            return Err(Error::LocalOnly {
                msg_type: msg.r#type,
            });
        }
        let len = message_len(msg, &self.limits)?;
        if len > u64::from(u32::MAX) {
            return Err(Error::Limit {
                what: "message bytes",
                value: len,
                limit: u64::from(u32::MAX),
            });
        }
        let count = u64::from(self.messages) + 1;
        if count > u64::from(self.limits.max_messages_per_frame) {
            return Err(Error::Limit {
                what: "messages per frame",
                value: count,
                limit: u64::from(self.limits.max_messages_per_frame),
            });
        }
        let payload_len = self.payload_len + MESSAGE_HEADER_LEN as u64 + len;
        if payload_len > u64::from(self.limits.max_frame_bytes) {
            return Err(Error::Limit {
                what: "frame bytes",
                value: payload_len,
                limit: u64::from(self.limits.max_frame_bytes),
            });
        }
        let before = self.bytes_written();
        self.scratch.extend_from_slice(&group.to_le_bytes());
        self.scratch.extend_from_slice(&(len as u32).to_le_bytes());
        self.encode_message(m);
        // The length computed up front is the length written: the message
        // header above promised it to the reader.
        debug_assert_eq!(
            self.bytes_written() - before,
            MESSAGE_HEADER_LEN as u64 + len
        );
        self.messages += 1;
        self.payload_len = payload_len;
        Ok(())
    }

    /// Finishes the frame (message count, length, crc) and returns a view
    /// of it for writing. The encoder may be pushed to again afterwards;
    /// `finish` then covers the longer frame.
    pub fn finish(&mut self) -> Frame<'_> {
        self.close_run();
        self.scratch[FRAME_HEADER_LEN..FRAME_HEADER_LEN + PAYLOAD_HEADER_LEN]
            .copy_from_slice(&self.messages.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        for (i, chunk) in self.chunks().enumerate() {
            // The first chunk starts with the frame header, which the crc
            // does not cover.
            crc.update(if i == 0 {
                &chunk[FRAME_HEADER_LEN..]
            } else {
                chunk
            });
        }
        let header = FrameHeader {
            // `push` kept payload_len within max_frame_bytes, a u32.
            len: self.payload_len as u32,
            crc: crc.finalize(),
        };
        self.scratch[..FRAME_HEADER_LEN].copy_from_slice(&header.encode());
        Frame { enc: self }
    }

    fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.parts.iter().map(|p| match p {
            Part::Scratch { start, end } => &self.scratch[*start..*end],
            Part::Shared(b) => &b[..],
        })
    }

    /// Bytes encoded so far (closed parts plus the open scratch run).
    fn bytes_written(&self) -> u64 {
        let closed: usize = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Scratch { start, end } => end - start,
                Part::Shared(b) => b.len(),
            })
            .sum();
        (closed + self.scratch.len() - self.run_start) as u64
    }

    fn close_run(&mut self) {
        if self.run_start < self.scratch.len() {
            self.parts.push(Part::Scratch {
                start: self.run_start,
                end: self.scratch.len(),
            });
            self.run_start = self.scratch.len();
        }
    }

    fn put_key_varint(&mut self, tag: u8, v: u64) {
        if v != 0 {
            self.scratch.push(key(tag, WIRE_VARINT));
            put_varint(&mut self.scratch, v);
        }
    }

    /// A length-delimited bytes field; empty ones are omitted, as proto3
    /// does.
    fn put_bytes_field(&mut self, tag: u8, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.scratch.push(key(tag, WIRE_LEN));
        put_varint(&mut self.scratch, data.len() as u64);
        if data.len() <= self.inline_max {
            self.scratch.extend_from_slice(&data);
        } else {
            self.close_run();
            self.parts.push(Part::Shared(data));
        }
    }

    fn encode_message(&mut self, m: &mut MessageRef<'_>) {
        let msg = m.get();
        // Fields in tag order, as prost writes them.
        self.put_key_varint(1, enum_varint(msg.r#type));
        self.put_key_varint(2, msg.to);
        self.put_key_varint(3, msg.from);
        self.put_key_varint(4, msg.term);
        self.put_key_varint(5, msg.log_term);
        self.put_key_varint(6, msg.index);
        let n = msg.entries.len();
        for i in 0..n {
            let e = &m.get().entries[i];
            let (etype, term, index) = (e.r#type, e.term, e.index);
            let elen = entry_len(e);
            self.scratch.push(key(7, WIRE_LEN));
            put_varint(&mut self.scratch, elen);
            self.put_key_varint(1, enum_varint(etype));
            self.put_key_varint(2, term);
            self.put_key_varint(3, index);
            let data = m.entry_data(i);
            self.put_bytes_field(4, data);
        }
        let msg = m.get();
        let (commit, reject, reject_hint) = (msg.commit, msg.reject, msg.reject_hint);
        self.put_key_varint(8, commit);
        if let Some(snap) = msg.snapshot.as_deref() {
            self.scratch.push(key(9, WIRE_LEN));
            put_varint(&mut self.scratch, snap.encoded_len() as u64);
            let meta = snap.metadata.clone();
            let data = m.snapshot_data();
            self.put_bytes_field(1, data);
            if let Some(meta) = meta {
                self.scratch.push(key(2, WIRE_LEN));
                // A Vec grows as needed: encoding into it cannot fail.
                meta.encode_length_delimited(&mut self.scratch)
                    .unwrap_or_else(|_| unreachable!("encoding into a Vec"));
            }
        }
        if reject {
            self.scratch.push(key(10, WIRE_VARINT));
            self.scratch.push(1);
        }
        self.put_key_varint(11, reject_hint);
        let context = m.context();
        self.put_bytes_field(12, context);
    }
}

/// The message being pushed: borrowed (payloads are cloned, a reference
/// count each) or owned by the encoder for the call (payloads are moved).
enum MessageRef<'a> {
    Borrowed(&'a Message),
    Owned(&'a mut Message),
}

impl MessageRef<'_> {
    fn get(&self) -> &Message {
        match self {
            MessageRef::Borrowed(m) => m,
            MessageRef::Owned(m) => m,
        }
    }

    fn entry_data(&mut self, i: usize) -> Bytes {
        match self {
            MessageRef::Borrowed(m) => m.entries[i].data.clone(),
            MessageRef::Owned(m) => std::mem::take(&mut m.entries[i].data),
        }
    }

    fn snapshot_data(&mut self) -> Bytes {
        match self {
            MessageRef::Borrowed(m) => m.snapshot.as_ref().map(|s| s.data.clone()),
            MessageRef::Owned(m) => m.snapshot.as_mut().map(|s| std::mem::take(&mut s.data)),
        }
        .unwrap_or_default()
    }

    fn context(&mut self) -> Bytes {
        match self {
            MessageRef::Borrowed(m) => m.context.clone(),
            MessageRef::Owned(m) => std::mem::take(&mut m.context),
        }
    }
}

/// An enum field's varint: protobuf sign-extends a negative int32 to 64
/// bits (ten bytes).
/// `MsgStorageAppend` (19) to `MsgStorageApplyResp` (22): local to a node.
const LOCAL_TYPES: std::ops::RangeInclusive<i32> = 19..=22;

fn enum_varint(v: i32) -> u64 {
    i64::from(v) as u64
}

fn key_varint_len(v: u64) -> u64 {
    if v == 0 { 0 } else { 1 + varint_len(v) as u64 }
}

fn bytes_field_len(len: usize) -> u64 {
    if len == 0 {
        0
    } else {
        1 + varint_len(len as u64) as u64 + len as u64
    }
}

fn entry_len(e: &Entry) -> u64 {
    key_varint_len(enum_varint(e.r#type))
        + key_varint_len(e.term)
        + key_varint_len(e.index)
        + bytes_field_len(e.data.len())
}

/// prost's encoded length of `msg`, with its entry count checked.
fn message_len(msg: &Message, limits: &Limits) -> Result<u64, Error> {
    if msg.entries.len() as u64 > u64::from(limits.max_entries_per_message) {
        return Err(Error::Limit {
            what: "entries per message",
            value: msg.entries.len() as u64,
            limit: u64::from(limits.max_entries_per_message),
        });
    }
    let mut n = key_varint_len(enum_varint(msg.r#type))
        + key_varint_len(msg.to)
        + key_varint_len(msg.from)
        + key_varint_len(msg.term)
        + key_varint_len(msg.log_term)
        + key_varint_len(msg.index)
        + key_varint_len(msg.commit)
        + if msg.reject { 2 } else { 0 }
        + key_varint_len(msg.reject_hint)
        + bytes_field_len(msg.context.len());
    for e in &msg.entries {
        let l = entry_len(e);
        n += 1 + varint_len(l) as u64 + l;
    }
    if let Some(s) = msg.snapshot.as_deref() {
        let l = s.encoded_len() as u64;
        n += 1 + varint_len(l) as u64 + l;
    }
    Ok(n)
}

/// A finished frame: its bytes in order, as slices of the encoder's
/// scratch buffer and of the messages' own payload buffers.
#[derive(Debug)]
pub struct Frame<'a> {
    enc: &'a Encoder,
}

impl<'a> Frame<'a> {
    /// Total bytes, header included.
    pub fn len(&self) -> usize {
        self.enc.frame_len() as usize
    }

    /// Never true: a frame has at least its header and message count.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The frame's bytes, chunk by chunk, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.enc.chunks()
    }

    /// Appends one `IoSlice` per chunk to `out` (a vector the caller
    /// reuses). A frame may have more chunks than one `writev` takes
    /// ([`MAX_IOV`]); [`Frame::write_to`] handles that.
    pub fn io_slices(&self, out: &mut Vec<IoSlice<'a>>) {
        out.extend(self.chunks().map(IoSlice::new));
    }

    /// The frame as one contiguous vector (a copy: for tests and tools).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for c in self.chunks() {
            v.extend_from_slice(c);
        }
        v
    }

    /// Writes the whole frame with vectored writes of at most [`MAX_IOV`]
    /// slices each, resuming after partial writes.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let mut slices = Vec::with_capacity(self.enc.parts.len().min(MAX_IOV));
        let mut chunks = self.chunks().peekable();
        while chunks.peek().is_some() {
            slices.clear();
            slices.extend(chunks.by_ref().take(MAX_IOV).map(IoSlice::new));
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                let n = w.write_vectored(rest)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "peer frame: write returned 0",
                    ));
                }
                IoSlice::advance_slices(&mut rest, n);
            }
        }
        Ok(())
    }
}

/// The (group, message) pairs of one frame's payload, decoded one at a
/// time. After an error the iterator ends: the connection is to be closed.
#[derive(Debug)]
pub struct Messages {
    payload: Bytes,
    pos: usize,
    /// Records not yet read.
    remaining: u32,
    limits: Limits,
    /// The heartbeat batch record being expanded, if any.
    heartbeats: Option<HeartbeatCursor>,
    /// Messages returned so far (a heartbeat batch expands to many).
    returned: u64,
}

impl Messages {
    /// Reads the payload's message count, checked against the limit.
    pub fn new(payload: Bytes, limits: &Limits) -> Result<Self, Error> {
        let Some(c) = payload.get(..PAYLOAD_HEADER_LEN) else {
            return Err(Error::Truncated {
                what: "frame message count",
                needed: PAYLOAD_HEADER_LEN as u64,
                available: payload.len() as u64,
            });
        };
        let count = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if count > limits.max_messages_per_frame {
            return Err(Error::Limit {
                what: "messages per frame",
                value: u64::from(count),
                limit: u64::from(limits.max_messages_per_frame),
            });
        }
        // Every record takes at least its header: a count the bytes cannot
        // hold is refused here, before `decode_all` (or any caller) sizes
        // a vector by it.
        let available = (payload.len() - PAYLOAD_HEADER_LEN) as u64;
        let needed = u64::from(count) * MESSAGE_HEADER_LEN as u64;
        if needed > available {
            return Err(Error::Truncated {
                what: "frame records",
                needed,
                available,
            });
        }
        Ok(Messages {
            payload,
            pos: PAYLOAD_HEADER_LEN,
            remaining: count,
            limits: *limits,
            heartbeats: None,
            returned: 0,
        })
    }

    /// Records not yet read (a heartbeat batch record is one record and
    /// many messages): a lower bound of the messages not yet returned.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    fn next_pair(&mut self) -> Result<(u64, Message), Error> {
        let avail = self.payload.len() - self.pos;
        let Some(h) = self.payload.get(self.pos..self.pos + MESSAGE_HEADER_LEN) else {
            return Err(Error::Truncated {
                what: "message header",
                needed: MESSAGE_HEADER_LEN as u64,
                available: avail as u64,
            });
        };
        let mut g = [0u8; 8];
        g.copy_from_slice(&h[..8]);
        let group = u64::from_le_bytes(g);
        let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let start = self.pos + MESSAGE_HEADER_LEN;
        if len > self.payload.len() - start {
            return Err(Error::Truncated {
                what: "message",
                needed: len as u64,
                available: (self.payload.len() - start) as u64,
            });
        }
        if group == RECORD_KIND_BIT | KIND_SNAPSHOT_CHUNK {
            // Handed up whole: the record's body (a slice of the payload)
            // as the data of an otherwise empty message; the reader
            // decodes and assembles it (snapchunk.rs).
            let body = self.payload.slice(start..start + len);
            self.pos = start + len;
            let msg = Message {
                snapshot: Some(Box::new(Snapshot {
                    data: body,
                    metadata: None,
                })),
                ..Message::default()
            };
            return Ok((group, msg));
        }
        if group & RECORD_KIND_BIT != 0 {
            if group != RECORD_KIND_BIT | KIND_HEARTBEATS {
                return Err(Error::Malformed {
                    what: "frame record",
                    offset: self.pos,
                    reason: "unknown record kind",
                });
            }
            let mut cursor = HeartbeatCursor::new(
                &self.payload,
                start..start + len,
                self.limits.max_messages_per_frame,
            )?;
            self.pos = start + len;
            let first = cursor.next(&self.payload)?;
            if cursor.remaining() > 0 {
                self.heartbeats = Some(cursor);
            }
            return Ok(first);
        }
        let msg = decode_message(&self.payload, start..start + len, &self.limits)?;
        self.pos = start + len;
        Ok((group, msg))
    }

    fn next_heartbeat(&mut self) -> Option<Result<(u64, Message), Error>> {
        let cursor = self.heartbeats.as_mut()?;
        let r = cursor.next(&self.payload);
        if r.is_err() || cursor.remaining() == 0 {
            self.heartbeats = None;
        }
        Some(r)
    }

    /// Every message returned counts against `max_messages_per_frame`,
    /// heartbeats expanded from a batch included: a frame cannot make the
    /// receiver build more messages than that.
    fn count(&mut self) -> Result<(), Error> {
        self.returned += 1;
        if self.returned > u64::from(self.limits.max_messages_per_frame) {
            return Err(Error::Limit {
                what: "messages per frame",
                value: self.returned,
                limit: u64::from(self.limits.max_messages_per_frame),
            });
        }
        Ok(())
    }
}

impl Iterator for Messages {
    type Item = Result<(u64, Message), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(r) = self.next_heartbeat() {
            let r = r.and_then(|pair| self.count().map(|()| pair));
            if r.is_err() {
                self.fuse();
            }
            return Some(r);
        }
        if self.remaining == 0 {
            if self.pos < self.payload.len() {
                let count = (self.payload.len() - self.pos) as u64;
                self.pos = self.payload.len();
                return Some(Err(Error::TrailingBytes { count }));
            }
            return None;
        }
        let r = self
            .next_pair()
            .and_then(|pair| self.count().map(|()| pair));
        match r {
            Ok(_) => self.remaining -= 1,
            Err(_) => self.fuse(),
        }
        Some(r)
    }
}

impl Messages {
    /// Nothing after a bad message can be trusted: the iterator ends.
    fn fuse(&mut self) {
        self.remaining = 0;
        self.heartbeats = None;
        self.pos = self.payload.len();
    }
}

/// Decodes a whole payload, all or nothing.
pub fn decode_all(payload: Bytes, limits: &Limits) -> Result<Vec<(u64, Message)>, Error> {
    let msgs = Messages::new(payload, limits)?;
    let mut out = Vec::with_capacity(msgs.remaining() as usize);
    for m in msgs {
        out.push(m?);
    }
    Ok(out)
}

fn wrong_wire_type(what: &'static str, offset: usize) -> Error {
    Error::Malformed {
        what,
        offset,
        reason: "wrong wire type for the field",
    }
}

fn varint_field(b: &[u8], pos: &mut usize, wt: u8, what: &'static str) -> Result<u64, Error> {
    if wt != WIRE_VARINT {
        return Err(wrong_wire_type(what, *pos));
    }
    get_varint(b, pos, what)
}

fn len_field(b: &[u8], pos: &mut usize, wt: u8, what: &'static str) -> Result<Range<usize>, Error> {
    if wt != WIRE_LEN {
        return Err(wrong_wire_type(what, *pos));
    }
    get_len_delimited(b, pos, what)
}

/// Decodes the `Message` at `range` of `buf`, with prost's semantics for
/// what it accepts (last value wins for scalars, embedded messages merge,
/// unknown fields are skipped), except that groups (a deprecated wire type
/// raftpb never writes) and the local storage types 19-22 are refused, and
/// the local-only fields `vote` and `responses` are dropped.
pub fn decode_message(buf: &Bytes, range: Range<usize>, limits: &Limits) -> Result<Message, Error> {
    if range.start > range.end || range.end > buf.len() {
        return Err(Error::Truncated {
            what: "message",
            needed: range.end as u64,
            available: buf.len() as u64,
        });
    }
    // Offsets stay those of `buf`; slicing to the message's end keeps every
    // inner length within it.
    let b = &buf[..range.end];
    // First pass: count entries, so that the limit is checked and the
    // vector allocated once, before any entry is decoded.
    let mut pos = range.start;
    let mut entries: u64 = 0;
    while pos < b.len() {
        let (field, wt) = get_key(b, &mut pos, "message")?;
        if field == 7 && wt == WIRE_LEN {
            entries += 1;
            if entries > u64::from(limits.max_entries_per_message) {
                return Err(Error::Limit {
                    what: "entries per message",
                    value: entries,
                    limit: u64::from(limits.max_entries_per_message),
                });
            }
        }
        skip_field(b, &mut pos, wt, "message")?;
    }
    let mut m = Message {
        entries: Vec::with_capacity(entries as usize),
        ..Message::default()
    };
    let mut pos = range.start;
    while pos < b.len() {
        let (field, wt) = get_key(b, &mut pos, "message")?;
        match field {
            1 => m.r#type = varint_field(b, &mut pos, wt, "message type")? as i32,
            2 => m.to = varint_field(b, &mut pos, wt, "message to")?,
            3 => m.from = varint_field(b, &mut pos, wt, "message from")?,
            4 => m.term = varint_field(b, &mut pos, wt, "message term")?,
            5 => m.log_term = varint_field(b, &mut pos, wt, "message logTerm")?,
            6 => m.index = varint_field(b, &mut pos, wt, "message index")?,
            7 => {
                let r = len_field(b, &mut pos, wt, "entry")?;
                m.entries.push(decode_entry(buf, r)?);
            }
            8 => m.commit = varint_field(b, &mut pos, wt, "message commit")?,
            9 => {
                let r = len_field(b, &mut pos, wt, "snapshot")?;
                let start = r.start;
                let snap = m.snapshot.get_or_insert_with(Box::<Snapshot>::default);
                // prost decoding from a `Bytes` slices it: the snapshot's
                // data is not copied either.
                snap.merge(buf.slice(r)).map_err(|_| Error::Malformed {
                    what: "snapshot",
                    offset: start,
                    reason: "invalid protobuf",
                })?;
            }
            10 => m.reject = varint_field(b, &mut pos, wt, "message reject")? != 0,
            11 => m.reject_hint = varint_field(b, &mut pos, wt, "message rejectHint")?,
            12 => m.context = buf.slice(len_field(b, &mut pos, wt, "message context")?),
            // `vote` and `responses` belong to the storage messages of
            // asynchronous writes, local to a node: a peer that writes them
            // is broken or hostile, and its frame is refused whole.
            13 | 14 => {
                return Err(Error::Malformed {
                    what: "message",
                    offset: pos,
                    reason: "local-only field (vote or responses) from a peer",
                });
            }
            _ => skip_field(b, &mut pos, wt, "message")?,
        }
    }
    // A storage thread's message from a peer is forged: `RawNode::step`
    // recognises a storage thread's response by its `from` id alone, which
    // the peer wrote.
    if LOCAL_TYPES.contains(&m.r#type) {
        return Err(Error::LocalOnly { msg_type: m.r#type });
    }
    Ok(m)
}

fn decode_entry(buf: &Bytes, range: Range<usize>) -> Result<Entry, Error> {
    let b = &buf[..range.end];
    let mut e = Entry::default();
    let mut pos = range.start;
    while pos < b.len() {
        let (field, wt) = get_key(b, &mut pos, "entry")?;
        match field {
            1 => e.r#type = varint_field(b, &mut pos, wt, "entry type")? as i32,
            2 => e.term = varint_field(b, &mut pos, wt, "entry term")?,
            3 => e.index = varint_field(b, &mut pos, wt, "entry index")?,
            4 => e.data = buf.slice(len_field(b, &mut pos, wt, "entry data")?),
            _ => skip_field(b, &mut pos, wt, "entry")?,
        }
    }
    Ok(e)
}
