//! Coalesced heartbeats: the plain `MsgHeartbeat`s (or `MsgHeartbeatResp`s)
//! of many groups toward one peer, carried as one record of a frame
//! instead of one message each, and expanded back into the very same
//! per-group messages on receipt, so Raft sees nothing different.
//!
//! A frame's records are `group u64 | len u32 | bytes[len]` (codec.rs).
//! Raft group ids are below `cluster::MAX_GROUPS` (2^24); a record whose
//! `group` has bit 63 set ([`RECORD_KIND_BIT`]) is a transport record of
//! kind `group & !RECORD_KIND_BIT` instead:
//!
//! | kind | record |
//! | ---: | --- |
//! | 1 | heartbeat batch (this file) |
//! | 2 | snapshot data chunk (snapchunk.rs) |
//! | other | refused (`Malformed`): the connection closes |
//!
//! The heartbeat batch record, varints as protobuf's:
//!
//! ```text
//! type    u8       8 (MsgHeartbeat) or 9 (MsgHeartbeatResp)
//! from    varint   sender member of every message
//! to      varint   addressee member of every message
//! count   varint   1..=max_messages_per_frame
//! count times:
//!   group  varint
//!   term   varint
//!   commit varint
//! ```
//!
//! Only a heartbeat with nothing but `to`, `from`, `term` and `commit` set
//! is coalesced ([`coalescible`]): one carrying a context (a ReadIndex
//! round) or anything else travels as a message of its own, so the round
//! trip is exact. A full batch of 1,000 idle groups costs about 8 bytes
//! per group on the wire, against 12 + ~10 as separate messages, and
//! one record to decode.

use std::ops::Range;

use super::Error;
use super::pbwire::{get_varint, put_varint};
use crate::raftpb::{Message, MessageType};

/// Set in a record's `group` field: the record is the transport's, not a
/// Raft group's message.
pub const RECORD_KIND_BIT: u64 = 1 << 63;
/// Record kind of a heartbeat batch.
pub const KIND_HEARTBEATS: u64 = 1;
/// Record kind of a snapshot data chunk (snapchunk.rs).
pub const KIND_SNAPSHOT_CHUNK: u64 = 2;

const HEARTBEAT: i32 = MessageType::MsgHeartbeat as i32;
const HEARTBEAT_RESP: i32 = MessageType::MsgHeartbeatResp as i32;

/// True when `msg` is a heartbeat (or its response) that a batch carries
/// exactly: no field set but `to`, `from`, `term`, `commit`.
pub fn coalescible(msg: &Message) -> bool {
    (msg.r#type == HEARTBEAT || msg.r#type == HEARTBEAT_RESP)
        && msg.log_term == 0
        && msg.index == 0
        && msg.entries.is_empty()
        && msg.snapshot.is_none()
        && !msg.reject
        && msg.reject_hint == 0
        && msg.context.is_empty()
        && msg.vote == 0
        && msg.responses.is_empty()
}

/// The heartbeats of one type, from one member to one member, gathered
/// during a loop turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatBatch {
    msg_type: i32,
    from: u64,
    to: u64,
    /// (group, term, commit), in the order pushed.
    items: Vec<(u64, u64, u64)>,
}

impl HeartbeatBatch {
    /// Adds `msg` of `group` if it is [`coalescible`] and of the batch's
    /// type, sender and addressee (any, while the batch is empty).
    /// Returns false (and leaves `msg` to the caller) otherwise.
    pub fn push(&mut self, group: u64, msg: &Message) -> bool {
        if !coalescible(msg) {
            return false;
        }
        if self.items.is_empty() {
            self.msg_type = msg.r#type;
            self.from = msg.from;
            self.to = msg.to;
        } else if (self.msg_type, self.from, self.to) != (msg.r#type, msg.from, msg.to) {
            return false;
        }
        self.items.push((group, msg.term, msg.commit));
        true
    }

    /// Heartbeats gathered.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when none is gathered.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The groups gathered, in order.
    pub fn groups(&self) -> impl Iterator<Item = u64> + '_ {
        self.items.iter().map(|i| i.0)
    }

    /// Forgets every heartbeat, keeping the capacity.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// The messages gathered, as they were pushed.
    pub fn messages(&self) -> impl Iterator<Item = (u64, Message)> + '_ {
        self.items.iter().map(|&(g, term, commit)| {
            (
                g,
                heartbeat(self.msg_type, self.from, self.to, term, commit),
            )
        })
    }

    /// Appends the record body of `items[range]` to `out`.
    pub(crate) fn encode_body(&self, range: Range<usize>, out: &mut Vec<u8>) {
        out.push(self.msg_type as u8);
        put_varint(out, self.from);
        put_varint(out, self.to);
        put_varint(out, range.len() as u64);
        for &(g, term, commit) in &self.items[range] {
            put_varint(out, g);
            put_varint(out, term);
            put_varint(out, commit);
        }
    }
}

fn heartbeat(msg_type: i32, from: u64, to: u64, term: u64, commit: u64) -> Message {
    Message {
        r#type: msg_type,
        from,
        to,
        term,
        commit,
        ..Message::default()
    }
}

/// Reads a heartbeat batch record's body one message at a time.
#[derive(Debug)]
pub(crate) struct HeartbeatCursor {
    msg_type: i32,
    from: u64,
    to: u64,
    remaining: u64,
    /// Next item's offset in the payload, and the record's end.
    pos: usize,
    end: usize,
}

impl HeartbeatCursor {
    /// Reads the header of the record at `payload[range]`, its count
    /// checked against `max_count` before anything else is read.
    pub(crate) fn new(payload: &[u8], range: Range<usize>, max_count: u32) -> Result<Self, Error> {
        let b = &payload[..range.end];
        let mut pos = range.start;
        let Some(&t) = b.get(pos) else {
            return Err(Error::Truncated {
                what: "heartbeat batch",
                needed: 1,
                available: 0,
            });
        };
        let msg_type = i32::from(t);
        if msg_type != HEARTBEAT && msg_type != HEARTBEAT_RESP {
            return Err(Error::Malformed {
                what: "heartbeat batch",
                offset: pos,
                reason: "not a heartbeat type",
            });
        }
        pos += 1;
        let from = get_varint(b, &mut pos, "heartbeat batch from")?;
        let to = get_varint(b, &mut pos, "heartbeat batch to")?;
        let count_at = pos;
        let count = get_varint(b, &mut pos, "heartbeat batch count")?;
        if count == 0 {
            return Err(Error::Malformed {
                what: "heartbeat batch",
                offset: count_at,
                reason: "empty batch",
            });
        }
        if count > u64::from(max_count) {
            return Err(Error::Limit {
                what: "heartbeats per batch",
                value: count,
                limit: u64::from(max_count),
            });
        }
        // Each item takes at least three bytes.
        if count.saturating_mul(3) > (range.end - pos) as u64 {
            return Err(Error::Truncated {
                what: "heartbeat batch",
                needed: count.saturating_mul(3),
                available: (range.end - pos) as u64,
            });
        }
        Ok(HeartbeatCursor {
            msg_type,
            from,
            to,
            remaining: count,
            pos,
            end: range.end,
        })
    }

    /// Heartbeats not yet read.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next (group, heartbeat); after the last one, bytes left in the
    /// record are an error.
    pub(crate) fn next(&mut self, payload: &[u8]) -> Result<(u64, Message), Error> {
        let b = &payload[..self.end];
        let group = get_varint(b, &mut self.pos, "heartbeat group")?;
        let term = get_varint(b, &mut self.pos, "heartbeat term")?;
        let commit = get_varint(b, &mut self.pos, "heartbeat commit")?;
        if group & RECORD_KIND_BIT != 0 {
            return Err(Error::Malformed {
                what: "heartbeat batch",
                offset: self.pos,
                reason: "group id with the record kind bit",
            });
        }
        self.remaining -= 1;
        if self.remaining == 0 && self.pos != self.end {
            return Err(Error::TrailingBytes {
                count: (self.end - self.pos) as u64,
            });
        }
        Ok((
            group,
            heartbeat(self.msg_type, self.from, self.to, term, commit),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn hb(to: u64, term: u64, commit: u64) -> Message {
        heartbeat(HEARTBEAT, 1, to, term, commit)
    }

    #[test]
    fn only_plain_heartbeats_are_coalescible() {
        assert!(coalescible(&hb(2, 3, 4)));
        assert!(coalescible(&heartbeat(HEARTBEAT_RESP, 2, 1, 3, 0)));
        let with_context = Message {
            context: Bytes::from_static(b"read-index"),
            ..hb(2, 3, 4)
        };
        assert!(!coalescible(&with_context));
        let app = Message {
            r#type: MessageType::MsgApp as i32,
            ..hb(2, 3, 4)
        };
        assert!(!coalescible(&app));
        let rejected = Message {
            reject: true,
            ..hb(2, 3, 4)
        };
        assert!(!coalescible(&rejected));
    }

    #[test]
    fn a_batch_holds_one_type_sender_and_addressee() {
        let mut b = HeartbeatBatch::default();
        assert!(b.push(5, &hb(2, 3, 4)));
        assert!(!b.push(6, &hb(3, 3, 4)), "another addressee");
        assert!(!b.push(6, &heartbeat(HEARTBEAT_RESP, 1, 2, 3, 0)));
        assert!(b.push(6, &hb(2, 9, 1)));
        let got: Vec<(u64, Message)> = b.messages().collect();
        assert_eq!(got, vec![(5, hb(2, 3, 4)), (6, hb(2, 9, 1))]);
    }

    #[test]
    fn a_record_reads_back_the_same_messages() {
        let mut b = HeartbeatBatch::default();
        for g in 0..300u64 {
            assert!(b.push(g * 1000, &hb(2, g + 1, g * 3)));
        }
        let mut body = Vec::new();
        b.encode_body(0..300, &mut body);
        let mut c = HeartbeatCursor::new(&body, 0..body.len(), 1000).unwrap();
        let mut got = Vec::new();
        while c.remaining() > 0 {
            got.push(c.next(&body).unwrap());
        }
        assert_eq!(got, b.messages().collect::<Vec<_>>());
    }

    #[test]
    fn bad_records_are_refused_never_a_panic() {
        let mut b = HeartbeatBatch::default();
        b.push(7, &hb(2, 3, 4));
        b.push(8, &hb(2, 3, 4));
        let mut body = Vec::new();
        b.encode_body(0..2, &mut body);
        // Every prefix, read to the end, fails cleanly.
        for n in 0..body.len() {
            let r = HeartbeatCursor::new(&body, 0..n, 1000).and_then(|mut c| {
                while c.remaining() > 0 {
                    c.next(&body[..n])?;
                }
                Ok(())
            });
            assert!(r.is_err(), "prefix of {n} bytes accepted");
        }
        // A count above the limit is refused before any item is read.
        assert!(matches!(
            HeartbeatCursor::new(&body, 0..body.len(), 1),
            Err(Error::Limit { .. })
        ));
        // Another message type.
        let mut wrong = body.clone();
        wrong[0] = 3;
        assert!(HeartbeatCursor::new(&wrong, 0..wrong.len(), 10).is_err());
        // A byte after the last item.
        let mut long = body.clone();
        long.push(0);
        let mut c = HeartbeatCursor::new(&long, 0..long.len(), 10).unwrap();
        c.next(&long).unwrap();
        assert!(matches!(
            c.next(&long),
            Err(Error::TrailingBytes { count: 1 })
        ));
    }
}
