//! The client frame. Both directions, all integers little-endian:
//!
//! ```text
//! 0   len         u32   payload bytes after this 16-byte header (<= max_frame_bytes)
//! 4   crc         u32   CRC-32 (crc32fast) of bytes 8..16+len: request id and payload
//! 8   request_id  u64   chosen by the client; a response carries its request's
//! 16  payload     a clientpb.Request (client to server) or Response (server to client)
//! ```
//!
//! The request
//! id is in the header, not only in the protobuf, so that a sound frame
//! whose payload does not decode can still be answered with an error under
//! its id, and the connection kept; the crc covers it, so a corrupted id
//! never answers another request. Why a crc on TCP at all: see
//! transport/frame.rs (NIC and middlebox corruption that TCP's checksum
//! misses); here it also covers the record batch inside an append, whose
//! own crc only the producer and readers check.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Limits;
use super::error::FrameError;

/// Bytes of the frame header.
pub const FRAME_HEADER_LEN: usize = 16;

/// One frame: its request id and its payload, a `Bytes` slice of the
/// receive buffer (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub request_id: u64,
    pub payload: Bytes,
}

fn frame_crc(request_id: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(request_id);
    h.update(payload);
    h.finalize()
}

/// Cuts the first complete frame off the front of a receive buffer, crc
/// verified. `Ok(None)`: more bytes are needed (the buffer then has room
/// reserved for the whole frame, whose length was checked first). `Err`:
/// close the connection.
pub fn split_frame(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, FrameError> {
    let Some(h) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let stored = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if len > limits.max_frame_bytes {
        return Err(FrameError::Limit {
            what: "frame bytes",
            value: u64::from(len),
            limit: u64::from(limits.max_frame_bytes),
        });
    }
    let total = FRAME_HEADER_LEN + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let computed = frame_crc(&buf[8..16], &buf[FRAME_HEADER_LEN..total]);
    if stored != computed {
        return Err(FrameError::CrcMismatch { stored, computed });
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(8);
    let request_id = frame.get_u64_le();
    Ok(Some(Frame {
        request_id,
        payload: frame,
    }))
}

/// Appends a frame carrying `msg` under `request_id` to `out`. Refused if
/// the encoded message is above `limits.max_frame_bytes` (`out` unchanged).
pub fn encode_frame(
    request_id: u64,
    msg: &impl prost::Message,
    limits: &Limits,
    out: &mut BytesMut,
) -> Result<(), FrameError> {
    let len = msg.encoded_len();
    if len as u64 > u64::from(limits.max_frame_bytes) {
        return Err(FrameError::Limit {
            what: "frame bytes",
            value: len as u64,
            limit: u64::from(limits.max_frame_bytes),
        });
    }
    let start = out.len();
    out.reserve(FRAME_HEADER_LEN + len);
    out.put_u32_le(len as u32);
    out.put_u32_le(0);
    out.put_u64_le(request_id);
    // Cannot fail: `reserve` made room for `encoded_len` bytes.
    msg.encode_raw(out);
    let crc = frame_crc(
        &out[start + 8..start + 16],
        &out[start + FRAME_HEADER_LEN..],
    );
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clientpb::{Request, TruncateRequest, request::Op};

    fn req() -> Request {
        Request {
            op: Some(Op::Truncate(TruncateRequest {
                group: 3,
                before_offset: 99,
            })),
        }
    }

    #[test]
    fn a_frame_round_trips_in_the_documented_layout() {
        let mut out = BytesMut::new();
        encode_frame(0x0102_0304_0506_0708, &req(), &Limits::DEFAULT, &mut out).unwrap();
        let len = prost::Message::encoded_len(&req());
        assert_eq!(&out[0..4], &(len as u32).to_le_bytes());
        assert_eq!(&out[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&out[4..8], &crc32fast::hash(&out[8..]).to_le_bytes());
        let f = split_frame(&mut out, &Limits::DEFAULT).unwrap().unwrap();
        assert_eq!(f.request_id, 0x0102_0304_0506_0708);
        assert_eq!(
            <Request as prost::Message>::decode(f.payload).unwrap(),
            req()
        );
        assert!(out.is_empty());
    }

    #[test]
    fn frames_arriving_in_pieces_are_cut_whole_and_in_order() {
        let mut wire = BytesMut::new();
        for id in 1..=3 {
            encode_frame(id, &req(), &Limits::DEFAULT, &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = split_frame(&mut buf, &Limits::DEFAULT).unwrap() {
                got.push(f.request_id);
            }
        }
        assert_eq!(got, vec![1, 2, 3]);
    }

    #[test]
    fn an_oversized_length_is_refused_before_anything_is_reserved() {
        let limits = Limits {
            max_frame_bytes: 100,
            ..Limits::DEFAULT
        };
        let mut buf = BytesMut::new();
        buf.put_u32_le(101);
        buf.put_bytes(0, 12);
        assert_eq!(
            split_frame(&mut buf, &limits),
            Err(FrameError::Limit {
                what: "frame bytes",
                value: 101,
                limit: 100
            })
        );
        assert!(buf.capacity() < 100);
        let mut out = BytesMut::new();
        let big = Request {
            op: Some(Op::Append(crate::clientpb::AppendRequest {
                group: 1,
                batch: Bytes::from(vec![0; 200]),
            })),
        };
        assert!(matches!(
            encode_frame(1, &big, &limits, &mut out),
            Err(FrameError::Limit { .. })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn a_flipped_bit_in_the_id_or_payload_fails_the_crc() {
        let mut out = BytesMut::new();
        encode_frame(5, &req(), &Limits::DEFAULT, &mut out).unwrap();
        for at in 4..out.len() {
            let mut v = BytesMut::from(&out[..]);
            v[at] ^= 0x04;
            assert!(
                matches!(
                    split_frame(&mut v, &Limits::DEFAULT),
                    Err(FrameError::CrcMismatch { .. })
                ),
                "byte {at}"
            );
        }
    }
}
