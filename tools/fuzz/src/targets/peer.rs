//! Peer transport: the bytes an inbound peer connection delivers, read the
//! way `transport::reader` reads them (the reader itself is crate-private):
//! the 44-byte handshake, then frames cut by `split_frame`, their records
//! decoded by `Messages` (raftpb messages, heartbeat batches, snapshot
//! chunks), chunks assembled by `snapchunk::Assembler`. Every message
//! decoded is encoded again and must decode to itself.

use bytes::{Bytes, BytesMut};
use corelog::raftpb::{Entry, Message, MessageType, Snapshot, SnapshotMetadata};
use corelog::transport::Limits;
use corelog::transport::frame::checksum;
use corelog::transport::heartbeats::{HeartbeatBatch, KIND_SNAPSHOT_CHUNK, RECORD_KIND_BIT};
use corelog::transport::snapchunk::{self, Assembler, ChunkHeader, SnapshotLimits};
use corelog::transport::{
    Encoder, FRAME_HEADER_LEN, HANDSHAKE_LEN, Handshake, Messages, decode_all, split_frame,
};

use super::{Target, label, set};

pub const TARGET: Target = Target {
    name: "peer",
    seeds,
    fixup,
    run,
    max_alloc: MAX_ALLOC,
    alloc_per_input_byte: super::RAFTPB_PER_BYTE,
};

/// A smaller frame than the default, so that a length that escapes its
/// check shows up as an allocation above `MAX_ALLOC`; the default counts,
/// so that a count trusted beyond the bytes that hold it shows up too.
pub const LIMITS: Limits = Limits {
    max_frame_bytes: 1 << 20,
    max_messages_per_frame: 1 << 16,
    max_entries_per_message: 1 << 16,
};
const SNAP_LIMITS: SnapshotLimits = SnapshotLimits { max_bytes: 1 << 20 };
/// A frame's reservation (grown at most 2x by `BytesMut`) plus slack.
const MAX_ALLOC: usize = 2 * (LIMITS.max_frame_bytes as usize + FRAME_HEADER_LEN) + (64 << 10);

const CHUNK_RECORD: u64 = RECORD_KIND_BIT | KIND_SNAPSHOT_CHUNK;

fn run(input: &[u8]) -> u64 {
    let mut outcome = 0;
    let (hs, rest) = input.split_at(input.len().min(HANDSHAKE_LEN));
    outcome = set(outcome, handshake(hs));
    let mut buf = BytesMut::from(rest);
    let mut asm = Assembler::default();
    let mut reserved = 0u64;
    loop {
        match split_frame(&mut buf, &LIMITS) {
            Ok(Some(payload)) => outcome |= frame(payload, &mut asm, &mut reserved),
            Ok(None) => return set(outcome, 1),
            Err(e) => return set(outcome, label(&format!("{e:?}"))),
        }
    }
}

fn handshake(b: &[u8]) -> u64 {
    match Handshake::decode(b) {
        Ok(h) => {
            assert_eq!(
                Handshake::decode(&h.encode()).ok(),
                Some(h),
                "handshake round trip"
            );
            2
        }
        Err(e) => label(&format!("{e:?}")),
    }
}

fn frame(payload: Bytes, asm: &mut Assembler, reserved: &mut u64) -> u64 {
    let all = decode_all(payload.clone(), &LIMITS);
    let msgs = match Messages::new(payload, &LIMITS) {
        Ok(m) => m,
        Err(e) => {
            assert!(all.is_err(), "decode_all accepted what Messages refused");
            return label(&format!("{e:?}"));
        }
    };
    let mut outcome = 3;
    let mut decoded = Vec::new();
    for m in msgs {
        let (group, mut msg) = match m {
            Ok(p) => p,
            Err(e) => {
                assert!(all.is_err(), "decode_all accepted what Messages refused");
                return set(outcome, label(&format!("{e:?}")));
            }
        };
        if group == CHUNK_RECORD {
            let body = msg.snapshot.map(|s| s.data).unwrap_or_default();
            let r = ChunkHeader::decode(&body).and_then(|(h, data)| {
                asm.push(h, &data, &SNAP_LIMITS, &mut |n| {
                    *reserved += n;
                    *reserved <= SNAP_LIMITS.max_bytes
                })
            });
            outcome = set(outcome, r.map_or_else(|e| label(&format!("{e:?}")), |()| 4));
            continue;
        }
        if msg.r#type == MessageType::MsgSnap as i32
            && let Some(s) = msg.snapshot.as_mut()
            && s.data.is_empty()
        {
            let index = s.metadata.as_ref().map_or(0, |md| md.index);
            if let Some(d) = asm.take(group, index) {
                *reserved = reserved.saturating_sub(d.len() as u64);
                outcome = set(outcome, 5);
            }
            continue;
        }
        round_trip(group, &msg);
        outcome = set(outcome, 6 + msg.r#type as u64);
        decoded.push((group, msg));
    }
    if let Ok(all) = all {
        let plain = all.into_iter().filter(|(g, _)| *g != CHUNK_RECORD).count();
        assert!(plain >= decoded.len(), "decode_all lost messages");
    }
    outcome
}

/// One message through the encoder and back must be itself.
fn round_trip(group: u64, msg: &Message) {
    let mut enc = Encoder::new(LIMITS);
    if enc.push_ref(group, msg).is_err() {
        return;
    }
    let bytes = enc.finish().to_vec();
    let mut buf = BytesMut::from(&bytes[..]);
    let payload = split_frame(&mut buf, &LIMITS)
        .expect("our own frame is valid")
        .expect("our own frame is complete");
    let back = decode_all(payload, &LIMITS).expect("our own payload decodes");
    assert_eq!(back, vec![(group, msg.clone())], "message round trip");
}

/// Recomputes the crc of every frame whose length fits the input.
fn fixup(b: &mut [u8]) {
    let mut at = HANDSHAKE_LEN;
    while at + FRAME_HEADER_LEN <= b.len() {
        let len = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let start = at + FRAME_HEADER_LEN;
        let Some(end) = start.checked_add(len).filter(|&e| e <= b.len()) else {
            return;
        };
        let crc = checksum(&b[start..end]);
        b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn entry(index: u64, data: &[u8]) -> Entry {
    Entry {
        term: 2,
        index,
        data: Bytes::copy_from_slice(data),
        ..Entry::default()
    }
}

fn msg(ty: MessageType) -> Message {
    Message {
        r#type: ty as i32,
        from: 1,
        to: 2,
        term: 3,
        ..Message::default()
    }
}

fn hello() -> Vec<u8> {
    Handshake {
        cluster_id: 7,
        from_member: 1,
        to_member: 2,
        from_shard: 0,
        to_shard: 0,
        auth: false,
    }
    .encode()
    .to_vec()
}

/// Sample messages of every shape the transport carries.
pub fn sample_messages() -> Vec<Message> {
    let mut app = msg(MessageType::MsgApp);
    app.log_term = 2;
    app.index = 10;
    app.commit = 9;
    app.entries = vec![entry(11, b"hello"), entry(12, &[0xAB; 40]), entry(13, b"")];
    let mut resp = msg(MessageType::MsgAppResp);
    resp.index = 13;
    resp.reject = true;
    resp.reject_hint = 11;
    let mut vote = msg(MessageType::MsgVote);
    vote.log_term = 2;
    vote.index = 13;
    vote.context = Bytes::from_static(b"CampaignTransfer");
    let mut snap = msg(MessageType::MsgSnap);
    snap.snapshot = Some(Box::new(Snapshot {
        data: Bytes::from_static(b"snapshot data"),
        metadata: Some(SnapshotMetadata {
            index: 20,
            term: 3,
            ..SnapshotMetadata::default()
        }),
    }));
    let mut hb = msg(MessageType::MsgHeartbeat);
    hb.commit = 5;
    vec![app, resp, vote, snap, hb, msg(MessageType::MsgTimeoutNow)]
}

fn framed(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut enc = Encoder::new(LIMITS);
    f(&mut enc);
    enc.finish().to_vec()
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, m) in sample_messages().into_iter().enumerate() {
        let mut s = hello();
        s.extend(framed(|e| e.push(i as u64 + 1, m).unwrap()));
        out.push(s);
    }
    // Several messages in one frame, two frames in a row.
    let mut s = hello();
    s.extend(framed(|e| {
        for (i, m) in sample_messages().into_iter().enumerate() {
            e.push(100 + i as u64, m).unwrap();
        }
    }));
    s.extend(framed(|e| {
        e.push(5, msg(MessageType::MsgVoteResp)).unwrap()
    }));
    out.push(s);
    // A heartbeat batch record.
    let mut batch = HeartbeatBatch::default();
    for g in 1..6 {
        let mut hb = msg(MessageType::MsgHeartbeat);
        hb.commit = g * 3;
        assert!(batch.push(g, &hb));
    }
    let mut s = hello();
    s.extend(framed(|e| {
        e.push_heartbeats(&batch, 0..batch.len()).unwrap()
    }));
    out.push(s);
    // A snapshot in chunks, then its MsgSnap with the data left out.
    let data = Bytes::from((0..100u8).collect::<Vec<_>>());
    let mut s = hello();
    s.extend(framed(|e| {
        for (h, d) in snapchunk::split(4, 20, &data, 40) {
            e.push_snapshot_chunk(&h, d).unwrap();
        }
        let mut m = msg(MessageType::MsgSnap);
        m.snapshot = Some(Box::new(Snapshot {
            data: Bytes::new(),
            metadata: Some(SnapshotMetadata {
                index: 20,
                term: 3,
                ..SnapshotMetadata::default()
            }),
        }));
        e.push(4, m).unwrap();
    }));
    out.push(s);
    out
}
