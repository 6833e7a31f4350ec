//! Commands: the entries a group replicates besides record batches. They
//! take no offsets. Same rules as batches: a fixed little-endian layout, a
//! crc over everything but itself, every length checked before use, a
//! typed error for every refusal.
//!
//! ```text
//! 0   magic        u8    0xC1
//! 1   version      u8    1
//! 2   kind         u16   1 = Truncate, 2 = InitProducer
//! 4   payload_len  u32   bytes after the header (<= MAX_COMMAND_PAYLOAD)
//! 8   crc          u32   CRC-32 (crc32fast) of bytes 0..8 then the payload
//! 12  payload      per kind:
//!                  Truncate: before_offset u64 (8 bytes)
//!                  InitProducer: none (0 bytes): the id is the group's
//!                  counter at apply time, so it cannot be in the entry
//! ```
//!
//! Room for more kinds (a group configuration change, for one); an unknown
//! kind is refused, on every replica alike, so a newer leader's command is
//! a no-op on an older replica only if every replica is older. Rolling
//! upgrades must therefore gate new kinds behind a replicated version.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::CommandError;
use super::le::{u16_at, u32_at, u64_at};

/// First byte of a command.
pub const COMMAND_MAGIC: u8 = 0xC1;
/// The command format version this build writes and reads.
pub const COMMAND_VERSION: u8 = 1;
/// Bytes of the fixed header before the payload.
pub const COMMAND_HEADER_LEN: usize = 12;
/// The largest payload any command kind may have.
pub const MAX_COMMAND_PAYLOAD: u32 = 4096;

const KIND_TRUNCATE: u16 = 1;
const TRUNCATE_PAYLOAD: u32 = 8;
const KIND_INIT_PRODUCER: u16 = 2;
const INIT_PRODUCER_PAYLOAD: u32 = 0;
const AT_CRC: usize = 8;

/// A replicated command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Retention: records below `before_offset` are dropped (the group's
    /// earliest offset moves up to it). Idempotent; never moves back.
    Truncate { before_offset: u64 },
    /// A producer id for exactly-once appends: the group gives the next
    /// one of its replicated counter and tracks it (`dedup.rs`). Each
    /// applied copy gives a new id, so a proposal retried after a lost
    /// answer costs an id, never hands one out twice.
    InitProducer,
}

impl Command {
    /// The command's bytes, as proposed. Commands are rare (retention, a
    /// producer's start), so one small allocation each is fine.
    pub fn encode(&self) -> Bytes {
        let truncate;
        let (kind, payload): (u16, &[u8]) = match self {
            Command::Truncate { before_offset } => {
                truncate = before_offset.to_le_bytes();
                (KIND_TRUNCATE, &truncate)
            }
            Command::InitProducer => (KIND_INIT_PRODUCER, &[]),
        };
        let mut b = BytesMut::with_capacity(COMMAND_HEADER_LEN + payload.len());
        b.put_u8(COMMAND_MAGIC);
        b.put_u8(COMMAND_VERSION);
        b.put_u16_le(kind);
        b.put_u32_le(payload.len() as u32);
        b.put_u32_le(0);
        b.put_slice(payload);
        let crc = command_crc(&b);
        b[AT_CRC..COMMAND_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        b.freeze()
    }

    /// Validates `b` as exactly one command.
    pub fn parse(b: &[u8]) -> Result<Command, CommandError> {
        let short = || CommandError::Truncated {
            needed: COMMAND_HEADER_LEN as u64,
            available: b.len() as u64,
        };
        if b.len() < COMMAND_HEADER_LEN {
            return Err(short());
        }
        if b[0] != COMMAND_MAGIC {
            return Err(CommandError::BadMagic { found: b[0] });
        }
        if b[1] != COMMAND_VERSION {
            return Err(CommandError::UnsupportedVersion { found: b[1] });
        }
        let kind = u16_at(b, 2).ok_or_else(short)?;
        let payload_len = u32_at(b, 4).ok_or_else(short)?;
        if payload_len > MAX_COMMAND_PAYLOAD {
            return Err(CommandError::Limit {
                value: u64::from(payload_len),
                limit: u64::from(MAX_COMMAND_PAYLOAD),
            });
        }
        let declared = COMMAND_HEADER_LEN as u64 + u64::from(payload_len);
        if declared != b.len() as u64 {
            return Err(CommandError::LengthMismatch {
                declared,
                actual: b.len() as u64,
            });
        }
        let stored = u32_at(b, AT_CRC).ok_or_else(short)?;
        let computed = command_crc(b);
        if stored != computed {
            return Err(CommandError::CrcMismatch { stored, computed });
        }
        match kind {
            KIND_TRUNCATE => {
                if payload_len != TRUNCATE_PAYLOAD {
                    return Err(CommandError::PayloadSize {
                        kind,
                        expected: TRUNCATE_PAYLOAD,
                        found: payload_len,
                    });
                }
                let before_offset = u64_at(b, COMMAND_HEADER_LEN).ok_or_else(short)?;
                Ok(Command::Truncate { before_offset })
            }
            KIND_INIT_PRODUCER => {
                if payload_len != INIT_PRODUCER_PAYLOAD {
                    return Err(CommandError::PayloadSize {
                        kind,
                        expected: INIT_PRODUCER_PAYLOAD,
                        found: payload_len,
                    });
                }
                Ok(Command::InitProducer)
            }
            _ => Err(CommandError::UnknownKind { kind }),
        }
    }
}

fn command_crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b.get(..AT_CRC).unwrap_or(b));
    h.update(b.get(COMMAND_HEADER_LEN..).unwrap_or(&[]));
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resealed(mut v: Vec<u8>) -> Vec<u8> {
        let crc = command_crc(&v);
        v[AT_CRC..COMMAND_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        v
    }

    #[test]
    fn truncate_round_trips_in_the_documented_layout() {
        let c = Command::Truncate {
            before_offset: 0x1122_3344_5566_7788,
        };
        let b = c.encode();
        assert_eq!(b.len(), 20);
        assert_eq!(&b[..8], &[0xC1, 1, 1, 0, 8, 0, 0, 0]);
        let mut covered = b[..8].to_vec();
        covered.extend_from_slice(&b[12..]);
        assert_eq!(&b[8..12], &crc32fast::hash(&covered).to_le_bytes());
        assert_eq!(&b[12..], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(Command::parse(&b), Ok(c));
    }

    #[test]
    fn init_producer_round_trips_in_the_documented_layout() {
        let b = Command::InitProducer.encode();
        assert_eq!(b.len(), 12);
        assert_eq!(&b[..8], &[0xC1, 1, 2, 0, 0, 0, 0, 0]);
        assert_eq!(&b[8..12], &crc32fast::hash(&b[..8]).to_le_bytes());
        assert_eq!(Command::parse(&b), Ok(Command::InitProducer));
        // A payload it does not have is refused by size.
        let mut v = b.to_vec();
        v.extend_from_slice(&[0; 8]);
        v[4..8].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(
            Command::parse(&resealed(v)),
            Err(CommandError::PayloadSize {
                kind: 2,
                expected: 0,
                found: 8
            })
        );
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        for c in [
            Command::Truncate { before_offset: 42 },
            Command::InitProducer,
        ] {
            let b = c.encode();
            for at in 0..b.len() {
                for bit in 0..8 {
                    let mut v = b.to_vec();
                    v[at] ^= 1 << bit;
                    assert!(Command::parse(&v).is_err(), "{c:?} byte {at} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn malformed_commands_are_named() {
        let good = Command::Truncate { before_offset: 5 }.encode().to_vec();
        assert_eq!(
            Command::parse(&good[..11]),
            Err(CommandError::Truncated {
                needed: 12,
                available: 11
            })
        );
        let mut v = good.clone();
        v[0] = 0xB1;
        assert_eq!(
            Command::parse(&resealed(v)),
            Err(CommandError::BadMagic { found: 0xB1 })
        );
        let mut v = good.clone();
        v[1] = 9;
        assert_eq!(
            Command::parse(&resealed(v)),
            Err(CommandError::UnsupportedVersion { found: 9 })
        );
        let mut v = good.clone();
        v[2] = 77;
        assert_eq!(
            Command::parse(&resealed(v)),
            Err(CommandError::UnknownKind { kind: 77 })
        );
        let mut v = good.clone();
        v[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Command::parse(&resealed(v)),
            Err(CommandError::Limit {
                value: u64::from(u32::MAX),
                limit: 4096
            })
        );
        let mut v = good.clone();
        v.push(0);
        assert_eq!(
            Command::parse(&resealed(v)),
            Err(CommandError::LengthMismatch {
                declared: 20,
                actual: 21
            })
        );
        let mut v = good[..12].to_vec();
        v.extend_from_slice(&[0; 4]);
        v[4..8].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(
            Command::parse(&resealed(v)),
            Err(CommandError::PayloadSize {
                kind: 1,
                expected: 8,
                found: 4
            })
        );
    }
}
