//! The few protobuf wire primitives the peer codec writes and reads by
//! hand: varints, field keys, and skipping unknown fields. Written here
//! rather than taken from `prost::encoding`, which prost marks as not part
//! of its public API. Decoding never panics and never reads past the slice
//! it is given; every error names what was being read.

use super::Error;

/// Wire type of varint fields (integers, enums, bools).
pub const WIRE_VARINT: u8 = 0;
/// Wire type of fixed 64-bit fields.
pub const WIRE_FIXED64: u8 = 1;
/// Wire type of length-delimited fields (bytes, strings, messages).
pub const WIRE_LEN: u8 = 2;
/// Wire type of fixed 32-bit fields.
pub const WIRE_FIXED32: u8 = 5;

/// The one-byte key of field `tag` (< 16) with `wire_type`.
pub const fn key(tag: u8, wire_type: u8) -> u8 {
    (tag << 3) | wire_type
}

/// Bytes a varint of `v` takes (1..=10).
#[inline]
pub const fn varint_len(v: u64) -> usize {
    // Each byte carries 7 bits; `| 1` makes the log defined for 0.
    ((64 - (v | 1).leading_zeros()) as usize).div_ceil(7)
}

/// Appends `v` as a varint.
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it. Rejects (as protobuf does) a
/// varint longer than 10 bytes or one that overflows 64 bits.
#[inline]
pub fn get_varint(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<u64, Error> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos + i) else {
            return Err(Error::Malformed {
                what,
                offset: *pos,
                reason: "truncated varint",
            });
        };
        if i == 9 && b > 1 {
            break;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos += i + 1;
            return Ok(v);
        }
    }
    Err(Error::Malformed {
        what,
        offset: *pos,
        reason: "varint overflows 64 bits",
    })
}

/// Reads a field key at `*pos`: (field number, wire type).
#[inline]
pub fn get_key(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<(u32, u8), Error> {
    let start = *pos;
    let k = get_varint(buf, pos, what)?;
    let field = k >> 3;
    if field == 0 || field > u64::from(u32::MAX >> 3) {
        return Err(Error::Malformed {
            what,
            offset: start,
            reason: "invalid field number",
        });
    }
    Ok((field as u32, (k & 7) as u8))
}

/// Reads a length prefix at `*pos` and returns the range of the bytes it
/// announces, checked against the end of `buf`; `*pos` moves past them.
#[inline]
pub fn get_len_delimited(
    buf: &[u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<std::ops::Range<usize>, Error> {
    let start = *pos;
    let len = get_varint(buf, pos, what)?;
    let avail = buf.len() - *pos;
    if len > avail as u64 {
        return Err(Error::Malformed {
            what,
            offset: start,
            reason: "length runs past the end of its message",
        });
    }
    let r = *pos..*pos + len as usize;
    *pos = r.end;
    Ok(r)
}

/// Skips one field of `wire_type` whose key was just read. Groups (wire
/// types 3 and 4, deprecated and never written by raftpb) are refused.
pub fn skip_field(
    buf: &[u8],
    pos: &mut usize,
    wire_type: u8,
    what: &'static str,
) -> Result<(), Error> {
    let fixed = match wire_type {
        WIRE_VARINT => {
            get_varint(buf, pos, what)?;
            return Ok(());
        }
        WIRE_LEN => {
            get_len_delimited(buf, pos, what)?;
            return Ok(());
        }
        WIRE_FIXED64 => 8,
        WIRE_FIXED32 => 4,
        _ => {
            return Err(Error::Malformed {
                what,
                offset: *pos,
                reason: "unsupported wire type",
            });
        }
    };
    if buf.len() - *pos < fixed {
        return Err(Error::Malformed {
            what,
            offset: *pos,
            reason: "truncated fixed-width field",
        });
    }
    *pos += fixed;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_and_matches_prost_lengths() {
        let samples = [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            (1 << 63) - 1,
            1 << 63,
            u64::MAX,
        ];
        for v in samples {
            let mut ours = Vec::new();
            put_varint(&mut ours, v);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "varint bytes of {v}");
            assert_eq!(varint_len(v), ours.len(), "varint_len of {v}");
            let mut pos = 0;
            assert_eq!(get_varint(&ours, &mut pos, "t").unwrap(), v);
            assert_eq!(pos, ours.len());
        }
    }

    #[test]
    fn varint_refuses_truncation_and_overflow() {
        let mut pos = 0;
        assert!(get_varint(&[0x80, 0x80], &mut pos, "t").is_err());
        assert_eq!(pos, 0, "a failed read does not move the position");
        // Ten bytes whose last carries more than the 64th bit.
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(get_varint(&over, &mut pos, "t").is_err());
        // Eleven bytes.
        let long = [0x80u8; 11];
        assert!(get_varint(&long, &mut pos, "t").is_err());
    }

    #[test]
    fn length_prefix_past_the_end_is_refused() {
        let mut pos = 0;
        let err = get_len_delimited(&[5, 1, 2], &mut pos, "entry").unwrap_err();
        assert!(
            matches!(err, Error::Malformed { what: "entry", .. }),
            "{err:?}"
        );
    }
}
