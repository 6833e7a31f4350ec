//! Answer frames as a list of `Bytes` pieces for a vectored write, so a
//! read answer's batches go from the WAL to the socket without a copy
//! (DESIGN.md: `Bytes` travels from the socket to the WAL and back out).
//! The bytes on the wire are exactly `protocol::encode_frame`'s (prost's
//! encoding of the `Response`): a read answer is written here as small
//! header pieces around each batch's own buffer; any other answer is
//! encoded by prost into one piece.
//!
//! Layout of a read answer's payload (proto3: zero fields omitted,
//! fields in number order, as prost writes them):
//!
//! ```text
//! 0x1a len(ReadResponse)                    Response.read (field 3)
//!   per batch: 0x0a len(ReadBatch)          ReadResponse.batches (1)
//!                [0x08 base_offset]          ReadBatch.base_offset (1), if not 0
//!                [0x12 len(batch) batch]     ReadBatch.batch (2), if not empty
//!   [0x10 earliest] [0x18 latest]           ReadResponse.earliest (2), latest (3)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::clientpb::{self, response::Result as Answer};
use crate::protocol::{FRAME_HEADER_LEN, FrameError, Limits, encode_frame};

/// Bytes of `v` as a protobuf varint.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Encoded length of one `ReadBatch`.
fn batch_len(b: &clientpb::ReadBatch) -> usize {
    let mut n = 0;
    if b.base_offset != 0 {
        n += 1 + varint_len(b.base_offset);
    }
    if !b.batch.is_empty() {
        n += 1 + varint_len(b.batch.len() as u64) + b.batch.len();
    }
    n
}

/// Payload bytes one batch adds to a read answer: its `ReadBatch` with
/// the key and length that hold it. A read answer holding `batches` takes
/// `READ_ANSWER_FIXED_MAX` plus the sum of these, at most.
pub fn read_batch_wire_len(base_offset: u64, batch_bytes: usize) -> usize {
    let mut l = 0;
    if base_offset != 0 {
        l += 1 + varint_len(base_offset);
    }
    if batch_bytes != 0 {
        l += 1 + varint_len(batch_bytes as u64) + batch_bytes;
    }
    1 + varint_len(l as u64) + l
}

/// The most a read answer's payload takes besides its batches: the
/// `Response.read` key and length (a frame is below 4 GiB: 5 varint bytes
/// at most) and `earliest` and `latest` (11 bytes each at most).
pub const READ_ANSWER_FIXED_MAX: usize = 1 + 5 + 2 * 11;

/// Appends the frame answering `request_id` with `resp` to `out`, as
/// pieces (`scratch` holds the small ones until they are split off).
/// Refused, with nothing appended, if the payload is above the frame
/// limit.
pub fn encode_answer(
    request_id: u64,
    resp: &clientpb::Response,
    limits: &Limits,
    scratch: &mut BytesMut,
    out: &mut Vec<Bytes>,
) -> Result<(), FrameError> {
    let Some(Answer::Read(r)) = &resp.result else {
        encode_frame(request_id, resp, limits, scratch)?;
        out.push(scratch.split().freeze());
        return Ok(());
    };
    let mut inner = 0usize;
    for b in &r.batches {
        let l = batch_len(b);
        inner += 1 + varint_len(l as u64) + l;
    }
    if r.earliest != 0 {
        inner += 1 + varint_len(r.earliest);
    }
    if r.latest != 0 {
        inner += 1 + varint_len(r.latest);
    }
    let payload = 1 + varint_len(inner as u64) + inner;
    if payload as u64 > u64::from(limits.max_frame_bytes) {
        return Err(FrameError::Limit {
            what: "frame bytes",
            value: payload as u64,
            limit: u64::from(limits.max_frame_bytes),
        });
    }
    // The header is its own piece, made last: its crc covers the request
    // id and every payload piece after it.
    let first = out.len();
    out.push(Bytes::new());
    scratch.put_u8(0x1a);
    put_varint(scratch, inner as u64);
    for b in &r.batches {
        scratch.put_u8(0x0a);
        put_varint(scratch, batch_len(b) as u64);
        if b.base_offset != 0 {
            scratch.put_u8(0x08);
            put_varint(scratch, b.base_offset);
        }
        if !b.batch.is_empty() {
            scratch.put_u8(0x12);
            put_varint(scratch, b.batch.len() as u64);
            // The pieces so far, then the batch's own buffer.
            out.push(scratch.split().freeze());
            out.push(b.batch.clone());
        }
    }
    if r.earliest != 0 {
        scratch.put_u8(0x10);
        put_varint(scratch, r.earliest);
    }
    if r.latest != 0 {
        scratch.put_u8(0x18);
        put_varint(scratch, r.latest);
    }
    if !scratch.is_empty() {
        out.push(scratch.split().freeze());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&request_id.to_le_bytes());
    for p in &out[first + 1..] {
        crc.update(p);
    }
    scratch.put_u32_le(payload as u32);
    scratch.put_u32_le(crc.finalize());
    scratch.put_u64_le(request_id);
    out[first] = scratch.split().freeze();
    debug_assert_eq!(
        out[first..].iter().map(Bytes::len).sum::<usize>(),
        FRAME_HEADER_LEN + payload
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_read_answer_takes_at_most_the_fixed_part_plus_each_batchs_wire_length() {
        for (offsets, earliest, latest) in [
            (vec![0u64, 1, 300], 0u64, 0u64),
            (vec![5, u64::MAX - 9], u64::MAX, u64::MAX),
            (vec![], 7, 0),
        ] {
            let batches: Vec<clientpb::ReadBatch> = offsets
                .iter()
                .enumerate()
                .map(|(k, &o)| clientpb::ReadBatch {
                    base_offset: o,
                    batch: Bytes::from(vec![1u8; 1 + 150 * k]),
                })
                .collect();
            let sum: usize = batches
                .iter()
                .map(|b| read_batch_wire_len(b.base_offset, b.batch.len()))
                .sum();
            let resp = clientpb::Response {
                result: Some(Answer::Read(clientpb::ReadResponse {
                    batches,
                    earliest,
                    latest,
                })),
            };
            let exact = prost::Message::encoded_len(&resp);
            assert!(
                exact <= READ_ANSWER_FIXED_MAX + sum,
                "{exact} > {sum} + fixed"
            );
            // The batches' part is exact: only the fixed part is a bound.
            assert!(exact >= sum, "{exact} < {sum}");
        }
    }

    fn prost_frame(id: u64, resp: &clientpb::Response) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_frame(id, resp, &Limits::DEFAULT, &mut b).unwrap();
        b.to_vec()
    }

    fn pieces(id: u64, resp: &clientpb::Response) -> Vec<Bytes> {
        let (mut scratch, mut out) = (BytesMut::new(), Vec::new());
        encode_answer(id, resp, &Limits::DEFAULT, &mut scratch, &mut out).unwrap();
        out
    }

    fn read(batches: Vec<(u64, Vec<u8>)>, earliest: u64, latest: u64) -> clientpb::Response {
        clientpb::Response {
            result: Some(Answer::Read(clientpb::ReadResponse {
                batches: batches
                    .into_iter()
                    .map(|(base_offset, b)| clientpb::ReadBatch {
                        base_offset,
                        batch: Bytes::from(b),
                    })
                    .collect(),
                earliest,
                latest,
            })),
        }
    }

    proptest! {
        #[test]
        fn read_answers_are_byte_identical_to_prost(
            id in any::<u64>(),
            batches in proptest::collection::vec(
                (prop_oneof![Just(0u64), any::<u64>(), 0u64..300],
                 proptest::collection::vec(any::<u8>(), 0..300)),
                0..6),
            earliest in prop_oneof![Just(0u64), any::<u64>()],
            latest in prop_oneof![Just(0u64), any::<u64>()],
        ) {
            let r = read(batches, earliest, latest);
            let got: Vec<u8> = pieces(id, &r).concat();
            prop_assert_eq!(got, prost_frame(id, &r));
        }
    }

    #[test]
    fn a_batch_is_sent_from_its_own_buffer_not_copied() {
        let r = read(vec![(7, vec![0xb1; 1000]), (9, vec![0xb1; 50])], 0, 20);
        let Some(Answer::Read(rr)) = &r.result else {
            unreachable!()
        };
        let out = pieces(1, &r);
        for b in &rr.batches {
            assert!(
                out.iter()
                    .any(|p| p.as_ptr() == b.batch.as_ptr() && p.len() == b.batch.len()),
                "batch copied"
            );
        }
    }

    #[test]
    fn other_answers_are_prosts_frame_and_limits_hold() {
        let done = clientpb::Response {
            result: Some(Answer::Done(clientpb::Done {})),
        };
        assert_eq!(pieces(3, &done).concat(), prost_frame(3, &done));
        let big = read(vec![(1, vec![1; 200])], 0, 0);
        let small = Limits {
            max_frame_bytes: 100,
            ..Limits::DEFAULT
        };
        let (mut s, mut out) = (BytesMut::new(), Vec::new());
        assert!(matches!(
            encode_answer(1, &big, &small, &mut s, &mut out),
            Err(FrameError::Limit { .. })
        ));
        assert!(out.is_empty());
    }
}
