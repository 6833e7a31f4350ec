//! The peer codec against its contract: frames byte-identical to prost's
//! encoding of each message, payloads shared (never copied) on the way out
//! and sliced out of the receive buffer on the way in, every limit checked
//! with a typed error, and no input, however broken, causing a panic.

use std::io::{self, Write};

use bytes::{Bytes, BytesMut};
use corelog::raftpb::{ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata};
use corelog::transport::codec::{INLINE_MAX, MAX_IOV, decode_message};
use corelog::transport::frame::checksum;
use corelog::transport::heartbeats::{HeartbeatBatch, RECORD_KIND_BIT};
use corelog::transport::{
    Encoder, Error, FRAME_HEADER_LEN, Limits, Messages, decode_all, split_frame,
};
use proptest::prelude::*;
use prost::Message as _;

// ---- strategies ----

fn num() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1..300u64, any::<u64>()]
}

fn enum_value(max: i32) -> impl Strategy<Value = i32> {
    // Mostly valid values; sometimes any i32, negative ones included, which
    // protobuf encodes as ten-byte varints.
    prop_oneof![8 => 0..max, 1 => any::<i32>()]
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..=2 * INLINE_MAX),
        1 => proptest::collection::vec(any::<u8>(), INLINE_MAX + 1..INLINE_MAX + 3000),
    ]
    .prop_map(Bytes::from)
}

fn entry() -> impl Strategy<Value = Entry> {
    (enum_value(3), num(), num(), payload()).prop_map(|(t, term, index, data)| Entry {
        r#type: t,
        term,
        index,
        data,
    })
}

fn ids() -> impl Strategy<Value = Vec<u64>> {
    proptest::collection::vec(num(), 0..4)
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let conf =
        (ids(), ids(), ids(), ids(), any::<bool>()).prop_map(|(v, l, vo, ln, a)| ConfState {
            voters: v,
            learners: l,
            voters_outgoing: vo,
            learners_next: ln,
            auto_leave: a,
        });
    let meta =
        (proptest::option::of(conf), num(), num()).prop_map(|(c, index, term)| SnapshotMetadata {
            conf_state: c,
            index,
            term,
        });
    (payload(), proptest::option::of(meta)).prop_map(|(data, metadata)| Snapshot { data, metadata })
}

fn message() -> impl Strategy<Value = Message> {
    (
        enum_value(19),
        (num(), num(), num(), num(), num()),
        proptest::collection::vec(entry(), 0..6),
        num(),
        proptest::option::of(snapshot()),
        (any::<bool>(), num()),
        payload(),
    )
        .prop_map(
            |(t, (to, from, term, log_term, index), entries, commit, snap, (reject, hint), ctx)| {
                Message {
                    r#type: t,
                    to,
                    from,
                    term,
                    log_term,
                    index,
                    entries,
                    commit,
                    snapshot: snap.map(Box::new),
                    reject,
                    reject_hint: hint,
                    context: ctx,
                    ..Message::default()
                }
            },
        )
}

/// Applies proptest's edits to `bytes`: overwrite a byte, flip a bit,
/// truncate, or insert (`op` 0 to 3), at positions drawn as indexes.
fn mutate(bytes: &mut Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) {
    for &(ref at, byte, op) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = at.index(bytes.len());
        match op {
            0 => bytes[i] = byte,
            1 => bytes[i] ^= 1 << (byte % 8),
            2 => bytes.truncate(i),
            _ => bytes.insert(i, byte),
        }
    }
}

/// Group ids: any below 2^63 (ids with the top bit name the transport's
/// own records).
fn group() -> impl Strategy<Value = u64> {
    num().prop_map(|g| g & !RECORD_KIND_BIT)
}

fn batch() -> impl Strategy<Value = Vec<(u64, Message)>> {
    proptest::collection::vec((group(), message()), 0..6)
}

// ---- helpers ----

fn encode(batch: &[(u64, Message)]) -> Vec<u8> {
    let mut enc = Encoder::new(Limits::default());
    for (g, m) in batch {
        enc.push_ref(*g, m).unwrap();
    }
    enc.finish().to_vec()
}

/// The frame's messages as (group, message bytes), read with the layout of
/// codec.rs by hand, not by the decoder under test.
fn split_by_hand(frame: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let len = u32::from_le_bytes(frame[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(frame[4..8].try_into().unwrap());
    assert_eq!(len, frame.len() - FRAME_HEADER_LEN, "header length");
    assert_eq!(crc, checksum(&frame[8..]), "header crc");
    let count = u32::from_le_bytes(frame[8..12].try_into().unwrap());
    let mut pos = 12;
    let mut out = Vec::new();
    for _ in 0..count {
        let g = u64::from_le_bytes(frame[pos..pos + 8].try_into().unwrap());
        let l = u32::from_le_bytes(frame[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 12;
        out.push((g, frame[pos..pos + l].to_vec()));
        pos += l;
    }
    assert_eq!(pos, frame.len(), "no bytes after the last message");
    out
}

fn receive(frame: &[u8]) -> Result<Vec<(u64, Message)>, Error> {
    let mut buf = BytesMut::from(frame);
    let payload = split_frame(&mut buf, &Limits::default())?.expect("a whole frame");
    decode_all(payload, &Limits::default())
}

/// A payload with a valid crc around arbitrary bytes, so the codec (not the
/// crc) is what meets them.
fn frame_around(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 8);
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&checksum(payload).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

fn big_entry(len: usize, fill: u8) -> Entry {
    Entry {
        r#type: 0,
        term: 3,
        index: 10,
        data: Bytes::from(vec![fill; len]),
    }
}

fn app(entries: Vec<Entry>) -> Message {
    Message {
        r#type: 3,
        to: 2,
        from: 1,
        term: 3,
        log_term: 3,
        index: 9,
        commit: 8,
        entries,
        ..Message::default()
    }
}

// ---- byte identity and round trip ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_is_byte_identical_to_prost(batch in batch()) {
        let frame = encode(&batch);
        let parts = split_by_hand(&frame);
        prop_assert_eq!(parts.len(), batch.len());
        for ((g, m), (pg, bytes)) in batch.iter().zip(&parts) {
            prop_assert_eq!(g, pg);
            prop_assert_eq!(&m.encode_to_vec(), bytes);
        }
    }

    #[test]
    fn push_by_value_writes_the_same_bytes_as_push_ref(batch in batch()) {
        let by_ref = encode(&batch);
        let mut enc = Encoder::new(Limits::default());
        for (g, m) in batch.clone() {
            enc.push(g, m).unwrap();
        }
        prop_assert_eq!(enc.finish().to_vec(), by_ref);
    }

    #[test]
    fn frames_decode_to_what_was_encoded(batch in batch()) {
        let frame = encode(&batch);
        prop_assert_eq!(receive(&frame).unwrap(), batch);
    }

    #[test]
    fn an_encoder_reused_after_clear_writes_fresh_frames(a in batch(), b in batch()) {
        let mut enc = Encoder::new(Limits::default());
        for (g, m) in &a {
            enc.push_ref(*g, m).unwrap();
        }
        let _ = enc.finish();
        enc.clear();
        for (g, m) in &b {
            enc.push_ref(*g, m).unwrap();
        }
        prop_assert_eq!(enc.finish().to_vec(), encode(&b));
    }

    #[test]
    fn vectored_writes_survive_partial_writes(batch in batch(), step in 1usize..50) {
        let mut enc = Encoder::new(Limits::default());
        for (g, m) in &batch {
            enc.push_ref(*g, m).unwrap();
        }
        let frame = enc.finish();
        let mut w = Dribble { out: Vec::new(), step };
        frame.write_to(&mut w).unwrap();
        prop_assert_eq!(w.out, frame.to_vec());
    }
}

/// A writer that takes at most `step` bytes per call, across slices.
struct Dribble {
    out: Vec<u8>,
    step: usize,
}

impl Write for Dribble {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        assert!(bufs.len() <= MAX_IOV, "{} slices in one writev", bufs.len());
        let mut left = self.step;
        for b in bufs {
            let n = b.len().min(left);
            self.out.extend_from_slice(&b[..n]);
            left -= n;
            if left == 0 {
                break;
            }
        }
        Ok(self.step - left)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_frame_of_more_chunks_than_one_writev_takes_is_written_whole() {
    let entries: Vec<Entry> = (0..3000).map(|i| big_entry(64, i as u8)).collect();
    let mut enc = Encoder::with_inline_max(Limits::default(), 0);
    enc.push(7, app(entries)).unwrap();
    let frame = enc.finish();
    let mut slices = Vec::new();
    frame.io_slices(&mut slices);
    assert!(slices.len() > 2 * MAX_IOV, "{} slices", slices.len());
    let mut w = Dribble {
        out: Vec::new(),
        step: usize::MAX,
    };
    frame.write_to(&mut w).unwrap();
    assert_eq!(w.out, frame.to_vec());
}

#[test]
fn every_message_type_round_trips_with_entries_snapshot_and_context() {
    for t in 0..19 {
        let m = Message {
            r#type: t,
            to: 2,
            from: 1,
            term: 5,
            log_term: 4,
            index: 100,
            entries: vec![big_entry(10, 1), big_entry(500, 2), Entry::default()],
            commit: 99,
            snapshot: Some(Box::new(Snapshot {
                data: Bytes::from(vec![9u8; 300]),
                metadata: Some(SnapshotMetadata {
                    conf_state: Some(ConfState {
                        voters: vec![1, 2, 3],
                        learners: vec![4],
                        ..ConfState::default()
                    }),
                    index: 50,
                    term: 4,
                }),
            })),
            reject: true,
            reject_hint: 77,
            context: Bytes::from_static(b"read-index context, longer than the inline limit"),
            ..Message::default()
        };
        let frame = encode(&[(t as u64, m.clone())]);
        assert_eq!(split_by_hand(&frame)[0].1, m.encode_to_vec(), "type {t}");
        assert_eq!(receive(&frame).unwrap(), vec![(t as u64, m)], "type {t}");
    }
}

/// What our decoder makes of a message prost decoded: the same, without the
/// local-only fields `vote` and `responses`, which it drops by design (see
/// `the_decoder_drops_local_only_fields_sent_by_a_peer`).
fn without_local_fields(mut m: Message) -> Message {
    m.vote = 0;
    m.responses.clear();
    m
}

/// The messages of asynchronous storage writes (types 19-22) and their
/// local-only fields (`vote`, `responses`) never go on the wire.
#[test]
fn local_storage_messages_are_refused_by_the_encoder() {
    let mut enc = Encoder::new(Limits::default());
    for t in 19..=22 {
        let m = Message {
            r#type: t,
            ..Message::default()
        };
        assert!(
            matches!(enc.push_ref(1, &m), Err(Error::LocalOnly { msg_type }) if msg_type == t),
            "type {t}"
        );
    }
    let with_vote = Message {
        r#type: 3,
        vote: 2,
        ..Message::default()
    };
    assert!(matches!(
        enc.push_ref(1, &with_vote),
        Err(Error::LocalOnly { .. })
    ));
    let with_responses = Message {
        r#type: 3,
        responses: vec![Message::default()],
        ..Message::default()
    };
    assert!(matches!(
        enc.push(1, with_responses),
        Err(Error::LocalOnly { .. })
    ));
    assert!(
        enc.is_empty(),
        "a refused message leaves the frame unchanged"
    );
}

/// A hostile peer may write the local-only fields anyway: the decoder
/// refuses such a message, so no `responses` reach the core from the
/// network (and nothing of a malformed `responses` is trusted).
#[test]
fn the_decoder_refuses_local_only_fields_sent_by_a_peer() {
    let m = Message {
        r#type: 4,
        to: 2,
        from: 1,
        term: 3,
        vote: 7,
        responses: vec![Message {
            r#type: 4,
            to: 1,
            ..Message::default()
        }],
        ..Message::default()
    };
    let bytes = Bytes::from(m.encode_to_vec());
    assert!(matches!(
        decode_message(&bytes, 0..bytes.len(), &Limits::default()),
        Err(Error::Malformed { reason, .. }) if reason.contains("local-only")
    ));
    let only_vote = Message {
        r#type: 4,
        vote: 7,
        ..Message::default()
    };
    let bytes = Bytes::from(only_vote.encode_to_vec());
    assert!(decode_message(&bytes, 0..bytes.len(), &Limits::default()).is_err());
}

// ---- zero copy ----

#[test]
fn encoding_shares_the_entries_buffers() {
    let entries: Vec<Entry> = (0..8)
        .map(|i| big_entry(INLINE_MAX + 1 + i, i as u8))
        .collect();
    let small = big_entry(INLINE_MAX, 0xee);
    let msg = app(entries.iter().cloned().chain([small]).collect());
    let mut enc = Encoder::new(Limits::default());
    enc.push_ref(1, &msg).unwrap();
    let frame = enc.finish();
    let mut slices = Vec::new();
    frame.io_slices(&mut slices);
    for e in &entries {
        let shared = slices
            .iter()
            .any(|s| s.as_ptr() == e.data.as_ptr() && s.len() == e.data.len());
        assert!(shared, "entry {} data not passed by reference", e.index);
    }
    // At or below INLINE_MAX the payload is copied into the header slices.
    let small = &msg.entries[8].data;
    assert!(slices.iter().all(|s| s.as_ptr() != small.as_ptr()));
    assert_eq!(
        slices.len(),
        2 * entries.len() + 1,
        "one header slice around each payload"
    );
}

proptest! {
    #[test]
    fn with_inline_max_zero_no_payload_is_copied(batch in batch()) {
        let mut enc = Encoder::with_inline_max(Limits::default(), 0);
        for (g, m) in &batch {
            enc.push_ref(*g, m).unwrap();
        }
        let frame = enc.finish();
        let chunks: Vec<(usize, usize)> =
            frame.chunks().map(|c| (c.as_ptr() as usize, c.len())).collect();
        for (_, m) in &batch {
            let payloads = m
                .entries
                .iter()
                .map(|e| &e.data)
                .chain(m.snapshot.as_ref().map(|s| &s.data))
                .chain([&m.context]);
            for p in payloads.filter(|p| !p.is_empty()) {
                prop_assert!(chunks.contains(&(p.as_ptr() as usize, p.len())));
            }
        }
        prop_assert_eq!(frame.to_vec(), encode(&batch));
    }
}

#[test]
fn encoding_by_value_moves_the_buffers_into_the_frame() {
    let entries: Vec<Entry> = (0..4).map(|i| big_entry(4096, i as u8)).collect();
    let ptrs: Vec<usize> = entries.iter().map(|e| e.data.as_ptr() as usize).collect();
    let snap = Snapshot {
        data: Bytes::from(vec![1u8; 4096]),
        metadata: None,
    };
    let snap_ptr = snap.data.as_ptr() as usize;
    let mut msg = app(entries);
    msg.snapshot = Some(Box::new(snap));
    let mut enc = Encoder::new(Limits::default());
    enc.push(1, msg).unwrap();
    let frame = enc.finish();
    let chunk_ptrs: Vec<usize> = frame.chunks().map(|c| c.as_ptr() as usize).collect();
    for p in ptrs.iter().chain([&snap_ptr]) {
        assert!(chunk_ptrs.contains(p), "payload at {p:#x} was copied");
    }
}

#[test]
fn try_push_gives_back_a_message_that_does_not_fit_untouched() {
    let limits = Limits {
        max_frame_bytes: 10_000,
        ..Limits::default()
    };
    let mut enc = Encoder::new(limits);
    enc.try_push(1, app(vec![big_entry(6000, 1)])).unwrap();
    let second = app(vec![big_entry(6000, 2)]);
    let ptr = second.entries[0].data.as_ptr() as usize;
    let before = enc.frame_len();
    let (err, back) = enc.try_push(2, second.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "frame bytes",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(back, second);
    assert_eq!(back.entries[0].data.as_ptr() as usize, ptr, "same buffer");
    assert_eq!(enc.frame_len(), before, "the frame is unchanged");
    // A fresh frame takes it, buffer and all.
    enc.clear();
    enc.try_push(2, back).unwrap();
    let frame = enc.finish();
    assert!(frame.chunks().any(|c| c.as_ptr() as usize == ptr));
}

#[test]
fn decoding_slices_entries_out_of_the_receive_buffer() {
    let msg = app((0..5).map(|i| big_entry(2000, i)).collect());
    let mut snap_msg = app(vec![]);
    snap_msg.snapshot = Some(Box::new(Snapshot {
        data: Bytes::from(vec![3u8; 500]),
        metadata: None,
    }));
    snap_msg.context = Bytes::from(vec![4u8; 100]);
    let frame = encode(&[(1, msg), (2, snap_msg)]);
    let mut buf = BytesMut::from(&frame[..]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let payload = split_frame(&mut buf, &Limits::default()).unwrap().unwrap();
    let got = decode_all(payload, &Limits::default()).unwrap();
    let inside = |b: &Bytes| {
        let p = b.as_ptr() as usize;
        range.contains(&p) && p + b.len() <= range.end
    };
    for e in &got[0].1.entries {
        assert_eq!(e.data.len(), 2000);
        assert!(inside(&e.data), "entry {} data was copied", e.index);
    }
    let s = got[1].1.snapshot.as_ref().unwrap();
    assert!(inside(&s.data), "snapshot data was copied");
    assert!(inside(&got[1].1.context), "context was copied");
}

// ---- limits ----

fn tight() -> Limits {
    Limits {
        max_frame_bytes: 10_000,
        max_messages_per_frame: 3,
        max_entries_per_message: 4,
    }
}

#[test]
fn the_encoder_refuses_what_the_decoder_would_and_stays_unchanged() {
    let mut enc = Encoder::new(tight());
    enc.push(1, app(vec![big_entry(100, 1)])).unwrap();
    let before = enc.finish().to_vec();

    let err = enc.push(1, app((0..5).map(|i| big_entry(10, i)).collect()));
    assert_eq!(
        err,
        Err(Error::Limit {
            what: "entries per message",
            value: 5,
            limit: 4
        })
    );
    let err = enc.push(1, app(vec![big_entry(10_000, 1)])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "frame bytes",
                limit: 10_000,
                ..
            }
        ),
        "{err:?}"
    );
    enc.push(2, app(vec![])).unwrap();
    enc.push(3, app(vec![])).unwrap();
    assert_eq!(
        enc.push(4, app(vec![])),
        Err(Error::Limit {
            what: "messages per frame",
            value: 4,
            limit: 3
        })
    );
    assert_eq!(enc.message_count(), 3);
    // The refused pushes left no bytes behind.
    let expected = encode(&[
        (1, app(vec![big_entry(100, 1)])),
        (2, app(vec![])),
        (3, app(vec![])),
    ]);
    assert_eq!(enc.finish().to_vec(), expected);
    assert_ne!(before, expected);
}

#[test]
fn the_decoder_checks_every_count_against_its_limit() {
    let loose = |batch: &[(u64, Message)]| encode(batch);
    let lim = tight();

    // Frame length: refused from the header alone.
    let frame = loose(&[(1, app(vec![big_entry(20_000, 1)]))]);
    let mut buf = BytesMut::from(&frame[..]);
    let err = split_frame(&mut buf, &lim).unwrap_err();
    assert_eq!(
        err,
        Error::Limit {
            what: "frame bytes",
            value: (frame.len() - 8) as u64,
            limit: 10_000
        }
    );

    // Messages per frame: refused from the count, before any message.
    let frame = loose(&[
        (1, app(vec![])),
        (2, app(vec![])),
        (3, app(vec![])),
        (4, app(vec![])),
    ]);
    let payload = Bytes::copy_from_slice(&frame[8..]);
    assert_eq!(
        Messages::new(payload, &lim).unwrap_err(),
        Error::Limit {
            what: "messages per frame",
            value: 4,
            limit: 3
        }
    );

    // Entries per message: refused before the entries are allocated.
    let frame = loose(&[(1, app((0..5).map(|i| big_entry(10, i)).collect()))]);
    let payload = Bytes::copy_from_slice(&frame[8..]);
    assert_eq!(
        decode_all(payload, &lim).unwrap_err(),
        Error::Limit {
            what: "entries per message",
            value: 5,
            limit: 4
        }
    );
}

#[test]
fn a_message_count_the_payload_cannot_hold_is_refused_before_any_allocation() {
    // Found by corelog-fuzz's allocation check (tools/fuzz/regressions/
    // peer): a 4-byte payload announcing 65,536 messages (within the
    // default limit) made decode_all reserve 65,536 message slots, about
    // 11 MB, before reading any. Every record takes at least its 12-byte
    // header, so the count is checked against the bytes first.
    let lim = Limits::default();
    let payload = Bytes::copy_from_slice(&65_536u32.to_le_bytes());
    let err = Messages::new(payload.clone(), &lim).unwrap_err();
    assert_eq!(
        err,
        Error::Truncated {
            what: "frame records",
            needed: 65_536 * 12,
            available: 0
        }
    );
    assert_eq!(decode_all(payload, &lim).unwrap_err(), err);

    // Three records announced, one (of 26 bytes) present: three record
    // headers alone need 36.
    let frame = encode(&[(1, app(vec![]))]);
    let mut payload = frame[8..].to_vec();
    payload[..4].copy_from_slice(&3u32.to_le_bytes());
    let available = (payload.len() - 4) as u64;
    assert!(available < 36, "{available}");
    assert_eq!(
        Messages::new(Bytes::from(payload), &lim).unwrap_err(),
        Error::Truncated {
            what: "frame records",
            needed: 3 * 12,
            available
        }
    );
}

#[test]
fn a_message_length_past_the_payload_is_truncated() {
    let frame = encode(&[(1, app(vec![big_entry(100, 1)]))]);
    let mut payload = frame[8..].to_vec();
    // Claim one byte more than there is.
    let l = u32::from_le_bytes(payload[12..16].try_into().unwrap()) + 1;
    payload[12..16].copy_from_slice(&l.to_le_bytes());
    let err = decode_all(Bytes::from(payload), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Truncated {
                what: "message",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn decode_message_refuses_a_range_outside_its_buffer() {
    let b = Bytes::from(app(vec![]).encode_to_vec());
    let err = decode_message(&b, 0..b.len() + 1, &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Truncated {
                what: "message",
                ..
            }
        ),
        "{err:?}"
    );
    #[allow(clippy::reversed_empty_ranges)]
    let err = decode_message(&b, 3..1, &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
}

#[test]
fn bytes_after_the_last_message_are_refused() {
    let frame = encode(&[(1, app(vec![]))]);
    let mut payload = frame[8..].to_vec();
    payload.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        decode_all(Bytes::from(payload), &Limits::default()).unwrap_err(),
        Error::TrailingBytes { count: 3 }
    );
}

#[test]
fn a_corrupted_frame_fails_its_crc() {
    let mut frame = encode(&[(1, app(vec![big_entry(1000, 1)]))]);
    let mid = frame.len() / 2;
    frame[mid] ^= 0x04;
    assert!(matches!(receive(&frame), Err(Error::CrcMismatch { .. })));
}

// ---- garbage ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // As a whole stream (header checks, crc)...
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(p)) = split_frame(&mut buf, &Limits::default()) {
            let _ = decode_all(p, &Limits::default());
        }
        // ...as a payload that passed its crc...
        let _ = receive(&frame_around(&bytes));
        // ...and as one message.
        let b = Bytes::from(bytes);
        let _ = decode_message(&b, 0..b.len(), &Limits::default());
    }

    #[test]
    fn mutated_frames_never_panic_and_what_decodes_is_what_prost_decodes(
        batch in batch(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let frame = encode(&batch);
        let mut payload = frame[8..].to_vec();
        mutate(&mut payload, &edits);
        if let Ok(got) = receive(&frame_around(&payload)) {
            // Whatever we accept, prost reads the same way from the same
            // bytes (our decoder is no more lenient than prost's).
            let parts = split_by_hand(&frame_around(&payload));
            prop_assert_eq!(got.len(), parts.len());
            for ((g, m), (pg, bytes)) in got.iter().zip(parts) {
                prop_assert_eq!(*g, pg);
                let theirs = Message::decode(Bytes::from(bytes)).map(without_local_fields);
                prop_assert_eq!(Some(m), theirs.as_ref().ok());
            }
        }
    }

    #[test]
    fn mutated_messages_decode_as_prost_does(
        msg in message(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
    ) {
        let mut bytes = msg.encode_to_vec();
        mutate(&mut bytes, &edits);
        let b = Bytes::from(bytes);
        let ours = decode_message(&b, 0..b.len(), &Limits::default());
        let theirs = Message::decode(b.clone()).map(without_local_fields);
        if let Ok(m) = &ours {
            prop_assert_eq!(Some(m), theirs.as_ref().ok(), "prost: {:?}", theirs.as_ref().err());
        }
        if let Err(e) = &theirs {
            prop_assert!(ours.is_err(), "prost: {e}");
        }
    }
}

/// A peer can write a storage-thread response (types 19-22) with the
/// storage thread's id as `from`: `RawNode::step` tells a storage thread's
/// response only by that id, so such a message, decoded and stepped into a
/// node with asynchronous storage writes, would mark entries durable that
/// are not (`MsgStorageAppendResp`) or applied that never were
/// (`MsgStorageApplyResp`). The decoder refuses the local types outright.
#[test]
fn the_decoder_refuses_storage_messages_sent_by_a_peer() {
    for t in 19..=22 {
        let m = Message {
            r#type: t,
            to: 1,
            from: u64::MAX - u64::from(t % 2 == 0),
            term: 3,
            index: 9,
            log_term: 3,
            ..Message::default()
        };
        let bytes = Bytes::from(m.encode_to_vec());
        let got = decode_message(&bytes, 0..bytes.len(), &Limits::default());
        assert!(
            matches!(got, Err(Error::LocalOnly { msg_type }) if msg_type == t),
            "type {t}: {got:?}"
        );
    }
}

// ---- coalesced heartbeats ----

fn heartbeats() -> impl Strategy<Value = Vec<(u64, u64, u64, bool)>> {
    // (group, term, commit, response?)
    proptest::collection::vec((group(), num(), num(), any::<bool>()), 1..200)
}

fn heartbeat(resp: bool, term: u64, commit: u64) -> Message {
    Message {
        r#type: if resp {
            MessageType::MsgHeartbeatResp as i32
        } else {
            MessageType::MsgHeartbeat as i32
        },
        from: 1,
        to: 2,
        term,
        commit,
        ..Message::default()
    }
}

proptest! {
    #[test]
    fn heartbeat_batches_expand_to_the_messages_gathered(
        plain in batch(),
        hbs in heartbeats(),
    ) {
        let mut enc = Encoder::new(Limits::default());
        for (g, m) in &plain {
            enc.push_ref(*g, m).unwrap();
        }
        let mut batches = [HeartbeatBatch::default(), HeartbeatBatch::default()];
        for &(g, term, commit, resp) in &hbs {
            prop_assert!(batches[usize::from(resp)].push(g, &heartbeat(resp, term, commit)));
        }
        let mut expected: Vec<(u64, Message)> = plain.clone();
        for b in &batches {
            if !b.is_empty() {
                enc.push_heartbeats(b, 0..b.len()).unwrap();
                expected.extend(b.messages());
            }
        }
        let wire = enc.finish().to_vec();
        let got = receive(&wire).unwrap();
        let plain_n = plain.len();
        prop_assert_eq!(
            got[..plain_n].iter().map(|(g, m)| (*g, without_local_fields(m.clone()))).collect::<Vec<_>>(),
            expected[..plain_n].iter().map(|(g, m)| (*g, without_local_fields(m.clone()))).collect::<Vec<_>>()
        );
        prop_assert_eq!(&got[plain_n..], &expected[plain_n..]);
        // Byte-exact: the expanded heartbeats, gathered again, encode to
        // the same bytes.
        let mut again = [HeartbeatBatch::default(), HeartbeatBatch::default()];
        for (g, m) in &got[plain_n..] {
            let resp = m.r#type == MessageType::MsgHeartbeatResp as i32;
            prop_assert!(again[usize::from(resp)].push(*g, m));
        }
        let mut enc2 = Encoder::new(Limits::default());
        for (g, m) in &plain {
            enc2.push_ref(*g, m).unwrap();
        }
        for b in &again {
            if !b.is_empty() {
                enc2.push_heartbeats(b, 0..b.len()).unwrap();
            }
        }
        prop_assert_eq!(enc2.finish().to_vec(), wire);
    }

    #[test]
    fn mutated_heartbeat_frames_never_panic(
        hbs in heartbeats(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
    ) {
        let mut b = HeartbeatBatch::default();
        for &(g, term, commit, _) in &hbs {
            b.push(g, &heartbeat(false, term, commit));
        }
        let mut enc = Encoder::new(Limits::default());
        enc.push_heartbeats(&b, 0..b.len()).unwrap();
        let wire = enc.finish().to_vec();
        let mut payload = wire[FRAME_HEADER_LEN..].to_vec();
        mutate(&mut payload, &edits);
        let _ = receive(&frame_around(&payload));
    }
}

#[test]
fn group_ids_with_the_record_bit_are_refused_by_the_encoder() {
    let mut enc = Encoder::new(Limits::default());
    let err = enc.push(RECORD_KIND_BIT | 1, app(vec![])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "group id",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(enc.is_empty());
}

#[test]
fn a_batch_cannot_expand_past_the_messages_per_frame_limit() {
    let mut b = HeartbeatBatch::default();
    for g in 0..10 {
        b.push(g, &heartbeat(false, 1, 1));
    }
    let mut enc = Encoder::new(Limits::default());
    enc.push(100, app(vec![])).unwrap();
    enc.push_heartbeats(&b, 0..10).unwrap();
    let wire = enc.finish().to_vec();
    let tight = Limits {
        max_messages_per_frame: 10,
        ..Limits::default()
    };
    let mut buf = BytesMut::from(&wire[..]);
    let payload = split_frame(&mut buf, &tight).unwrap().unwrap();
    // Two records (within the limit), eleven messages (beyond it).
    let err = decode_all(payload, &tight).unwrap_err();
    assert_eq!(
        err,
        Error::Limit {
            what: "messages per frame",
            value: 11,
            limit: 10
        }
    );
}

#[test]
fn an_unknown_record_kind_is_refused() {
    // Kind 1 is a heartbeat batch, kind 2 a snapshot chunk; 3 is unknown.
    let mut payload = Vec::new();
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(&(RECORD_KIND_BIT | 3).to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    let err = receive(&frame_around(&payload)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed {
                reason: "unknown record kind",
                ..
            }
        ),
        "{err:?}"
    );
}
