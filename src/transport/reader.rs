//! From receive buffer to `Inbox`, for one inbound connection: cuts the
//! complete frames out of the bytes read so far, decodes them (entries'
//! payloads stay slices of the receive buffer) and delivers the messages
//! that belong to this shard. No I/O here: `conn_in` reads the socket
//! into the buffer and calls [`FrameReader::deliver`].

use std::cell::Cell;
use std::rc::Rc;

use bytes::BytesMut;

use super::codec::Messages;
use super::frame::split_frame;
use super::heartbeats::{KIND_SNAPSHOT_CHUNK, RECORD_KIND_BIT};
use super::inbox::Inbox;
use super::snapchunk::{Assembler, ChunkHeader, SnapshotLimits};
use super::stats::Stats;
use super::{Error, Limits};
use crate::cluster::shard_of;
use crate::raftpb::{Message, MessageType};

const CHUNK_RECORD: u64 = RECORD_KIND_BIT | KIND_SNAPSHOT_CHUNK;
const MSG_SNAP: i32 = MessageType::MsgSnap as i32;

/// What a connection's messages are checked against.
pub(crate) struct FrameReader {
    limits: Limits,
    /// This member and shard, and this member's shard count.
    member: u64,
    shard: u32,
    shards: u32,
    /// The member that opened the connection (its handshake's sender).
    from: u64,
    /// The messages of the frame being decoded (reused).
    batch: Vec<(u64, Message)>,
    /// The snapshot this connection is assembling from chunk records.
    assembler: Assembler,
    snap_limits: SnapshotLimits,
    /// Snapshot bytes all connections of the shard are assembling, and
    /// their bound.
    snap_budget: Rc<Cell<u64>>,
    snap_budget_max: u64,
}

impl Drop for FrameReader {
    /// A connection that closes mid-snapshot, or holding a completed one
    /// not claimed, gives its bytes back.
    fn drop(&mut self) {
        let r = self.assembler.reserved();
        self.snap_budget
            .set(self.snap_budget.get().saturating_sub(r));
    }
}

impl FrameReader {
    pub(crate) fn new(limits: Limits, member: u64, shard: u32, shards: u32, from: u64) -> Self {
        FrameReader {
            limits,
            member,
            shard,
            shards,
            from,
            batch: Vec::new(),
            assembler: Assembler::default(),
            snap_limits: SnapshotLimits {
                max_bytes: 256 << 20,
            },
            snap_budget: Rc::new(Cell::new(0)),
            snap_budget_max: 512 << 20,
        }
    }

    /// Bounds of the snapshots this connection assembles: `max` bytes
    /// each, `total_max` bytes over every connection sharing `budget`.
    pub(crate) fn with_snapshot_limits(
        mut self,
        max: u64,
        total_max: u64,
        budget: Rc<Cell<u64>>,
    ) -> Self {
        self.snap_limits = SnapshotLimits { max_bytes: max };
        self.snap_budget = budget;
        self.snap_budget_max = total_max;
        self
    }

    /// Gives `n` snapshot bytes back to the shard-wide budget.
    fn release(&self, n: u64) {
        self.snap_budget
            .set(self.snap_budget.get().saturating_sub(n));
    }

    /// A chunk record: into the assembly (its group must be this
    /// shard's). `Err`: garbage or over a limit; the connection closes.
    fn take_chunk(&mut self, m: &Message, stats: &Stats) -> Result<(), Error> {
        let body = m
            .snapshot
            .as_ref()
            .map(|s| s.data.clone())
            .unwrap_or_default();
        let (h, data) = ChunkHeader::decode(&body)?;
        if h.offset == 0 {
            // A new snapshot supersedes the one completed and never
            // claimed.
            let n = self.assembler.drop_done();
            if n > 0 {
                self.release(n);
                stats.bump(|s| s.dropped_snapshot_unclaimed += 1);
            }
        }
        let (budget, max) = (self.snap_budget.clone(), self.snap_budget_max);
        self.assembler.push(h, &data, &self.snap_limits, &mut |n| {
            let used = budget.get();
            if used.saturating_add(n) > max {
                return false;
            }
            budget.set(used + n);
            true
        })?;
        stats.bump(|s| s.snapshot_chunks_received += 1);
        if h.offset + data.len() as u64 == h.total {
            // Complete: its bytes stay counted until its MsgSnap claims
            // them or they are dropped.
            stats.bump(|s| s.snapshots_assembled += 1);
        }
        Ok(())
    }

    /// Delivers every complete frame at the front of `buf` to `inbox`,
    /// leaving an incomplete one in place. A frame is delivered whole or
    /// not at all; on `Err` (already counted) the connection must close.
    pub(crate) fn deliver(
        &mut self,
        buf: &mut BytesMut,
        stats: &Stats,
        inbox: &Inbox,
    ) -> Result<(), Error> {
        let r = self.deliver_frames(buf, stats, inbox);
        if let Err(e) = &r {
            self.batch.clear();
            stats.frame_refused(e);
        }
        r
    }

    fn deliver_frames(
        &mut self,
        buf: &mut BytesMut,
        stats: &Stats,
        inbox: &Inbox,
    ) -> Result<(), Error> {
        while let Some(payload) = split_frame(buf, &self.limits)? {
            let mut incomplete = 0u64;
            for m in Messages::new(payload, &self.limits)? {
                let (group, mut msg) = m?;
                if group == CHUNK_RECORD {
                    self.take_chunk(&msg, stats)?;
                    continue;
                }
                if msg.r#type == MSG_SNAP
                    && let Some(s) = msg.snapshot.as_mut()
                    && s.data.is_empty()
                {
                    let index = s.metadata.as_ref().map_or(0, |md| md.index);
                    match self.assembler.take(group, index) {
                        Some(d) => {
                            // Claimed: the bytes leave the budget with the
                            // message (the group's snapshot bounds it).
                            self.release(d.len() as u64);
                            s.data = d;
                        }
                        None => {
                            incomplete += 1;
                            continue;
                        }
                    }
                }
                self.batch.push((group, msg));
            }
            if incomplete > 0 {
                stats.bump(|s| s.dropped_snapshot_incomplete += incomplete);
            }
            let unclaimed = self.assembler.frame_ended();
            if unclaimed > 0 {
                self.release(unclaimed);
                stats.bump(|s| s.dropped_snapshot_unclaimed += 1);
            }
            let decoded = self.batch.len() as u64;
            let (mut wrong_to, mut wrong_from, mut wrong_shard) = (0u64, 0u64, 0u64);
            let (member, from, shard, shards) = (self.member, self.from, self.shard, self.shards);
            self.batch.retain(|(group, m)| {
                if m.to != member {
                    wrong_to += 1;
                    false
                } else if m.from != from {
                    // The connection speaks for the member of its
                    // handshake only.
                    wrong_from += 1;
                    false
                } else if shard_of(*group, shards) != shard {
                    wrong_shard += 1;
                    false
                } else {
                    true
                }
            });
            stats.bump(|s| {
                s.frames_received += 1;
                s.messages_received += decoded;
                s.dropped_wrong_to += wrong_to;
                s.dropped_wrong_from += wrong_from;
                s.dropped_wrong_shard += wrong_shard;
            });
            inbox.push_all(&mut self.batch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::Entry;
    use crate::transport::Encoder;
    use bytes::Bytes;

    fn app(from: u64, to: u64, index: u64, payload: usize) -> Message {
        Message {
            r#type: 3,
            from,
            to,
            index,
            entries: (0..3)
                .map(|i| Entry {
                    index: index + i,
                    data: Bytes::from(vec![i as u8 + 1; payload]),
                    ..Entry::default()
                })
                .collect(),
            ..Message::default()
        }
    }

    fn frame(msgs: Vec<(u64, Message)>) -> Vec<u8> {
        let mut enc = Encoder::new(Limits::default());
        for (g, m) in msgs {
            enc.push(g, m).unwrap();
        }
        enc.finish().to_vec()
    }

    /// Member 1 of 2 shards, shard 0, connection from member 3.
    fn reader() -> FrameReader {
        FrameReader::new(Limits::default(), 1, 0, 2, 3)
    }

    fn on_shard(s: u32) -> u64 {
        (0..).find(|&g| shard_of(g, 2) == s).unwrap()
    }

    #[test]
    fn delivered_payloads_are_slices_of_the_receive_buffer() {
        let g = on_shard(0);
        let mut wire = frame(vec![(g, app(3, 1, 10, 100)), (g, app(3, 1, 13, 5000))]);
        wire.extend(frame(vec![(g, app(3, 1, 16, 2000))]));
        let mut buf = BytesMut::with_capacity(wire.len());
        buf.extend_from_slice(&wire);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + wire.len();
        let (stats, inbox) = (Stats::default(), Inbox::new());
        reader().deliver(&mut buf, &stats, &inbox).unwrap();
        let mut out = Vec::new();
        inbox.drain_into(&mut out);
        assert_eq!(out.len(), 3);
        for (_, m) in &out {
            for e in &m.entries {
                let p = e.data.as_ptr() as usize;
                assert!(
                    range.contains(&p) && range.contains(&(p + e.data.len() - 1)),
                    "entry {} at {p:#x} is outside the receive buffer {range:x?}",
                    e.index
                );
            }
        }
        assert_eq!(stats.get().frames_received, 2);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_incomplete_frame_waits_for_its_bytes() {
        let g = on_shard(0);
        let wire = frame(vec![(g, app(3, 1, 10, 100))]);
        let (stats, inbox) = (Stats::default(), Inbox::new());
        let mut r = reader();
        let mut buf = BytesMut::new();
        for &b in &wire {
            assert!(inbox.is_empty());
            buf.extend_from_slice(&[b]);
            r.deliver(&mut buf, &stats, &inbox).unwrap();
        }
        assert_eq!(inbox.len(), 1);
    }

    #[test]
    fn a_refused_message_drops_its_whole_frame() {
        let g = on_shard(0);
        let mut wire = frame(vec![(g, app(3, 1, 10, 100)), (g, app(3, 1, 13, 100))]);
        // Cut the second message's last byte and fix the lengths and the
        // crc, so only the decoder can refuse it.
        let payload_len = wire.len() - 8 - 1;
        wire.truncate(wire.len() - 1);
        let second_len_at = {
            let first_len = u32::from_le_bytes(wire[8 + 4 + 8..8 + 4 + 12].try_into().unwrap());
            8 + 4 + 12 + first_len as usize + 8
        };
        let l = u32::from_le_bytes(wire[second_len_at..second_len_at + 4].try_into().unwrap());
        wire[second_len_at..second_len_at + 4].copy_from_slice(&(l - 1).to_le_bytes());
        let crc = crate::transport::frame::checksum(&wire[8..]);
        wire[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        wire[4..8].copy_from_slice(&crc.to_le_bytes());
        let (stats, inbox) = (Stats::default(), Inbox::new());
        let mut buf = BytesMut::from(&wire[..]);
        let err = reader().deliver(&mut buf, &stats, &inbox).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        assert!(inbox.is_empty(), "nothing of a refused frame is delivered");
        assert_eq!(stats.get().closed_malformed, 1);
    }

    #[test]
    fn messages_not_for_this_shard_are_dropped_and_counted() {
        let (g0, g1) = (on_shard(0), on_shard(1));
        let wire = frame(vec![
            (g0, app(3, 2, 1, 10)),
            (g0, app(3, 1, 2, 10)),
            (g1, app(3, 1, 3, 10)),
            (g0, app(2, 1, 4, 10)),
        ]);
        let (stats, inbox) = (Stats::default(), Inbox::new());
        reader()
            .deliver(&mut BytesMut::from(&wire[..]), &stats, &inbox)
            .unwrap();
        let mut out = Vec::new();
        inbox.drain_into(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].0, out[0].1.index), (g0, 2));
        let s = stats.get();
        assert_eq!(
            (
                s.dropped_wrong_to,
                s.dropped_wrong_shard,
                s.dropped_wrong_from
            ),
            (1, 1, 1)
        );
        assert_eq!(s.messages_received, 4);
    }

    /// The wire of a snapshot's chunks of `group` at `index`, and of its
    /// MsgSnap (from member 3 to member 1) as a frame of its own.
    fn snapshot_wire(group: u64, index: u64, data: &Bytes) -> (Vec<u8>, Vec<u8>) {
        let mut enc = Encoder::new(Limits::default());
        for (h, d) in super::super::snapchunk::split(group, index, data, 400) {
            enc.push_snapshot_chunk(&h, d).unwrap();
        }
        let chunks = enc.finish().to_vec();
        let snap = Message {
            r#type: MSG_SNAP,
            from: 3,
            to: 1,
            snapshot: Some(Box::new(crate::raftpb::Snapshot {
                data: Bytes::new(),
                metadata: Some(crate::raftpb::SnapshotMetadata {
                    index,
                    term: 1,
                    ..Default::default()
                }),
            })),
            ..Message::default()
        };
        (chunks, frame(vec![(group, snap)]))
    }

    /// A completed snapshot stays counted against the shard's total until
    /// its MsgSnap claims it (here in the next frame, where the sender may
    /// put it), and the claim gives the bytes back.
    #[test]
    fn a_completed_snapshot_counts_until_its_msgsnap_claims_it_in_the_next_frame() {
        let budget = Rc::new(Cell::new(0u64));
        let g = on_shard(0);
        let (stats, inbox) = (Stats::default(), Inbox::new());
        let mut r = reader().with_snapshot_limits(1000, 1000, budget.clone());
        let data = Bytes::from(vec![5u8; 1000]);
        let (chunks, snap) = snapshot_wire(g, 10, &data);
        r.deliver(&mut BytesMut::from(&chunks[..]), &stats, &inbox)
            .unwrap();
        assert_eq!(budget.get(), 1000, "complete, not yet claimed: counted");
        r.deliver(&mut BytesMut::from(&snap[..]), &stats, &inbox)
            .unwrap();
        assert_eq!(budget.get(), 0, "claimed: given back");
        let mut out = Vec::new();
        inbox.drain_into(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.snapshot.as_ref().unwrap().data, data);
        assert_eq!(stats.get().dropped_snapshot_unclaimed, 0);
    }

    /// A completed snapshot whose MsgSnap does not come within
    /// `CLAIM_FRAMES` frames is dropped and its bytes given back (a later
    /// MsgSnap finds nothing); so is one a new snapshot supersedes.
    #[test]
    fn a_completed_snapshot_never_claimed_is_dropped_after_the_next_frame() {
        let budget = Rc::new(Cell::new(0u64));
        let g = on_shard(0);
        let (stats, inbox) = (Stats::default(), Inbox::new());
        let mut r = reader().with_snapshot_limits(1000, 1000, budget.clone());
        let (chunks, snap) = snapshot_wire(g, 10, &Bytes::from(vec![5u8; 1000]));
        r.deliver(&mut BytesMut::from(&chunks[..]), &stats, &inbox)
            .unwrap();
        let other = frame(vec![(g, app(3, 1, 10, 10))]);
        r.deliver(&mut BytesMut::from(&other[..]), &stats, &inbox)
            .unwrap();
        assert_eq!(budget.get(), 0, "unclaimed after the next frame: dropped");
        assert_eq!(stats.get().dropped_snapshot_unclaimed, 1);
        r.deliver(&mut BytesMut::from(&snap[..]), &stats, &inbox)
            .unwrap();
        assert_eq!(stats.get().dropped_snapshot_incomplete, 1);
        // A new snapshot on the connection supersedes an unclaimed one.
        let (first, _) = snapshot_wire(g, 11, &Bytes::from(vec![6u8; 600]));
        let (second, _) = snapshot_wire(g, 12, &Bytes::from(vec![7u8; 700]));
        let mut both = first;
        both.extend_from_slice(&second);
        r.deliver(&mut BytesMut::from(&both[..]), &stats, &inbox)
            .unwrap();
        assert_eq!(budget.get(), 700, "only the newer one is held");
        assert_eq!(stats.get().dropped_snapshot_unclaimed, 2);
        drop(r);
        assert_eq!(budget.get(), 0, "a closed connection gives it back");
    }

    /// Issue 7 (found by review, failed before the fix): the shard-wide snapshot
    /// budget (`max_snapshot_bytes_total`) is given back as soon as an
    /// assembly completes, but the completed data stays on its connection
    /// (`Assembler::done`) until a MsgSnap takes it, which a peer need
    /// never send. So each connection holds one full snapshot outside the
    /// budget, and the bytes held over all connections grow with their
    /// number (up to `max_inbound_connections`, 1,024 by default, times
    /// `max_snapshot_bytes`, 256 MiB): here three connections hold three
    /// times the shard's total. Now completed data stays counted until
    /// claimed or dropped, so the second and third connections are refused.
    #[test]
    fn review7_completed_snapshots_never_claimed_stay_within_the_shard_total() {
        let total = 1000u64;
        let budget = Rc::new(Cell::new(0u64));
        let g = on_shard(0);
        let (stats, inbox) = (Stats::default(), Inbox::new());
        let mut readers = Vec::new();
        let mut accepted = 0u64;
        for k in 0..3u64 {
            let mut r = reader().with_snapshot_limits(total, total, budget.clone());
            let mut enc = Encoder::new(Limits::default());
            let data = Bytes::from(vec![k as u8 + 1; total as usize]);
            for (h, d) in super::super::snapchunk::split(g, 10 + k, &data, 400) {
                enc.push_snapshot_chunk(&h, d).unwrap();
            }
            let wire = enc.finish().to_vec();
            if r.deliver(&mut BytesMut::from(&wire[..]), &stats, &inbox)
                .is_ok()
            {
                accepted += total;
            }
            // No MsgSnap follows: the connection stays open, holding it.
            readers.push(r);
        }
        assert!(inbox.is_empty());
        assert!(
            accepted <= total,
            "{accepted} snapshot bytes held by idle connections, over the shard's total of \
             {total} (the budget says {} are in use)",
            budget.get()
        );
    }
}
