//! The outer frame of peer traffic and how frames are cut out of a receive
//! buffer. All integers little-endian:
//!
//! ```text
//! 0  length u32   payload bytes that follow the header (<= max_frame_bytes)
//! 4  crc    u32   CRC-32 (IEEE, crc32fast) of the payload bytes
//! 8  payload      see codec.rs
//! ```
//!
//! Why a crc on TCP: TCP's 16-bit ones'-complement checksum misses some
//! multi-bit errors, and offloading NICs check it after the bytes crossed
//! the bus, so corruption in a NIC, driver or middlebox reaches the
//! socket unseen. A corrupted entry would be made durable by the follower
//! under the WAL's own, valid crc: silent divergence. The crc is computed
//! over the payload once per frame; benches/transport.rs measures it.

use bytes::{Buf, Bytes, BytesMut};

use super::{Error, Limits};

/// The frame checksum (CRC-32, IEEE, as the WAL's) of `data`.
pub fn checksum(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Bytes of the frame header: `length u32 | crc32 u32`.
pub const FRAME_HEADER_LEN: usize = 8;

/// The decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload bytes after the header.
    pub len: u32,
    /// CRC-32 of the payload.
    pub crc: u32,
}

impl FrameHeader {
    /// The header's 8 bytes.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..8].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Reads a header from the first 8 bytes of `buf`, refusing a length
    /// above `limits.max_frame_bytes` before anything is reserved for it.
    pub fn decode(buf: &[u8], limits: &Limits) -> Result<Self, Error> {
        let Some(b) = buf.get(..FRAME_HEADER_LEN) else {
            return Err(Error::Truncated {
                what: "frame header",
                needed: FRAME_HEADER_LEN as u64,
                available: buf.len() as u64,
            });
        };
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let crc = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if len > limits.max_frame_bytes {
            return Err(Error::Limit {
                what: "frame bytes",
                value: u64::from(len),
                limit: u64::from(limits.max_frame_bytes),
            });
        }
        Ok(FrameHeader { len, crc })
    }
}

/// Cuts the first complete frame off the front of a receive buffer and
/// returns its payload, crc verified. The payload is a `Bytes` view of the
/// receive buffer's own allocation (no copy), so the entries decoded from
/// it point into the bytes the socket wrote.
///
/// `Ok(None)` means more bytes are needed; the buffer then has capacity
/// reserved for the whole frame, so the next reads fill it without
/// reallocating. An `Err` means the connection must be closed: what
/// follows a bad frame cannot be trusted to start at a frame boundary.
pub fn split_frame(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Bytes>, Error> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let header = FrameHeader::decode(buf, limits)?;
    let total = FRAME_HEADER_LEN + header.len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(FRAME_HEADER_LEN);
    let payload = frame.freeze();
    let computed = checksum(&payload);
    if computed != header.crc {
        return Err(Error::CrcMismatch {
            expected: header.crc,
            computed,
        });
    }
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(payload: &[u8]) -> Vec<u8> {
        let h = FrameHeader {
            len: payload.len() as u32,
            crc: checksum(payload),
        };
        let mut v = h.encode().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// The encoder sends a frame of exactly `max_frame_bytes` (codec.rs
    /// refuses only above it), so the reader must take one: refusing it
    /// would close a healthy connection at every full frame (a mutation
    /// of `>` to `>=` survived every other test).
    #[test]
    fn a_frame_of_exactly_the_limit_is_taken() {
        let limits = Limits {
            max_frame_bytes: 100,
            ..Limits::default()
        };
        let payload = [7u8; 100];
        let mut buf = BytesMut::from(&frame_of(&payload)[..]);
        let got = split_frame(&mut buf, &limits).unwrap();
        assert_eq!(got.as_deref(), Some(&payload[..]));
        assert!(buf.is_empty());
        let mut over = BytesMut::from(&frame_of(&[7u8; 101])[..]);
        assert!(split_frame(&mut over, &limits).is_err());
    }

    #[test]
    fn checksum_is_crc32_ieee() {
        // The standard check value of CRC-32 (IEEE 802.3).
        assert_eq!(checksum(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn header_round_trips_little_endian() {
        let h = FrameHeader {
            len: 0x0102_0304,
            crc: 0xa0b0_c0d0,
        };
        let b = h.encode();
        assert_eq!(b, [4, 3, 2, 1, 0xd0, 0xc0, 0xb0, 0xa0]);
        let limits = Limits {
            max_frame_bytes: u32::MAX,
            ..Limits::default()
        };
        assert_eq!(FrameHeader::decode(&b, &limits).unwrap(), h);
    }

    #[test]
    fn length_above_the_limit_is_refused_before_reserving() {
        let limits = Limits {
            max_frame_bytes: 100,
            ..Limits::default()
        };
        let mut buf = BytesMut::from(&FrameHeader { len: 101, crc: 0 }.encode()[..]);
        let cap = buf.capacity();
        let err = split_frame(&mut buf, &limits).unwrap_err();
        assert_eq!(
            err,
            Error::Limit {
                what: "frame bytes",
                value: 101,
                limit: 100
            }
        );
        assert_eq!(buf.capacity(), cap, "nothing reserved for a refused frame");
    }

    #[test]
    fn frames_are_cut_one_by_one_as_bytes_arrive() {
        let limits = Limits::default();
        let mut wire = frame_of(b"first");
        wire.extend(frame_of(b""));
        wire.extend(frame_of(b"third payload"));
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        // Feed one byte at a time: every prefix is either incomplete or a frame.
        for &b in &wire {
            buf.extend_from_slice(&[b]);
            while let Some(p) = split_frame(&mut buf, &limits).unwrap() {
                got.push(p);
            }
        }
        assert_eq!(got, vec![&b"first"[..], &b""[..], &b"third payload"[..]]);
        assert!(buf.is_empty());
    }

    #[test]
    fn payload_is_a_view_of_the_receive_buffer() {
        let limits = Limits::default();
        let mut buf = BytesMut::from(&frame_of(b"zero copy please")[..]);
        let base = buf.as_ptr() as usize;
        let p = split_frame(&mut buf, &limits).unwrap().unwrap();
        assert_eq!(p.as_ptr() as usize, base + FRAME_HEADER_LEN);
    }

    #[test]
    fn incomplete_frame_reserves_its_whole_size() {
        let limits = Limits::default();
        let wire = frame_of(&[7u8; 10_000]);
        let mut buf = BytesMut::from(&wire[..100]);
        assert_eq!(split_frame(&mut buf, &limits).unwrap(), None);
        assert!(buf.capacity() >= wire.len());
    }

    #[test]
    fn every_flipped_bit_of_the_payload_is_caught_by_the_crc() {
        let limits = Limits::default();
        let wire = frame_of(b"a raft message, more or less");
        for byte in FRAME_HEADER_LEN..wire.len() {
            for bit in 0..8 {
                let mut w = wire.clone();
                w[byte] ^= 1 << bit;
                let mut buf = BytesMut::from(&w[..]);
                let err = split_frame(&mut buf, &limits).unwrap_err();
                assert!(matches!(err, Error::CrcMismatch { .. }), "{err:?}");
            }
        }
    }
}
