//! The client port's authentication handshake, as bytes: four fixed-size
//! messages, every integer little-endian (docs/protocol.md section 9).
//!
//! ```text
//! client -> server  Hello      40 bytes  magic "CLAH", version, flags, client nonce
//! server -> client  Challenge  64 bytes  magic "CLAC", version, cluster id, member,
//!                                        shard, server nonce
//! client -> server  Proof      36 bytes  magic "CLAP", MAC(CLIENT, hello || challenge)
//! server -> client  Verdict    40 bytes  magic "CLAV", status, MAC(SERVER, hello || challenge)
//! ```
//!
//! The client proves first, over the server's fresh nonce, so a server
//! never hands a proof to anyone who has not shown the secret; the
//! server's proof, over the client's fresh nonce, tells the client it
//! reached a holder of the secret. Each side's nonce makes the other's
//! proof single-use; the labels make a proof of one direction useless in
//! the other.
//!
//! A hello's magic read as a frame header's length is above any frame
//! limit (1.2 GB), so the server tells a hello from a frame by its first
//! 4 bytes, and a client without the secret is answered `Unauthorized`
//! under its first frame's request id.

use std::fmt;

use super::key::{AuthKey, NONCE_LEN, Nonce, PROOF_LEN, Proof};
use super::label;

/// This build's client handshake version.
pub const VERSION: u16 = 1;
pub const HELLO_MAGIC: u32 = u32::from_le_bytes(*b"CLAH");
pub const CHALLENGE_MAGIC: u32 = u32::from_le_bytes(*b"CLAC");
pub const PROOF_MAGIC: u32 = u32::from_le_bytes(*b"CLAP");
pub const VERDICT_MAGIC: u32 = u32::from_le_bytes(*b"CLAV");
pub const HELLO_LEN: usize = 8 + NONCE_LEN;
pub const CHALLENGE_LEN: usize = 32 + NONCE_LEN;
pub const PROOF_MSG_LEN: usize = 4 + PROOF_LEN;
pub const VERDICT_LEN: usize = 8 + PROOF_LEN;
/// Verdict status: the client's proof was right.
pub const ACCEPTED: u32 = 1;
/// Verdict status: the client's proof was wrong; the server closes.
pub const REFUSED: u32 = 2;

/// Why handshake bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the message's fixed size.
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// Not the message expected here.
    BadMagic { what: &'static str, found: u32 },
    /// Another handshake version.
    Version { ours: u16, theirs: u16 },
    /// A field that must be zero is not (flags, reserved).
    NonZero { what: &'static str, offset: usize },
    /// A verdict whose status is neither accepted nor refused.
    BadStatus { found: u32 },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated {
                what,
                needed,
                available,
            } => write!(f, "auth {what}: needs {needed} bytes, {available} present"),
            WireError::BadMagic { what, found } => {
                write!(f, "auth {what}: bad magic {found:#010x}")
            }
            WireError::Version { ours, theirs } => write!(
                f,
                "auth handshake version {theirs}, this build speaks {ours}"
            ),
            WireError::NonZero { what, offset } => {
                write!(f, "auth {what}: byte {offset} must be zero")
            }
            WireError::BadStatus { found } => write!(f, "auth verdict: status {found}"),
        }
    }
}

impl std::error::Error for WireError {}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}
fn take<'a>(buf: &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
    buf.get(..n).ok_or(WireError::Truncated {
        what,
        needed: n,
        available: buf.len(),
    })
}
fn magic(b: &[u8], want: u32, what: &'static str) -> Result<(), WireError> {
    let found = u32_at(b, 0);
    if found != want {
        return Err(WireError::BadMagic { what, found });
    }
    Ok(())
}

/// Whether the first 4 bytes a client sent open a hello (else they open
/// a frame, or nothing the server knows).
pub fn is_hello(first: &[u8; 4]) -> bool {
    u32::from_le_bytes(*first) == HELLO_MAGIC
}

/// Client to server: the client's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub nonce: Nonce,
}

impl Hello {
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[0..4].copy_from_slice(&HELLO_MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[8..].copy_from_slice(&self.nonce);
        b
    }

    pub fn decode(buf: &[u8]) -> Result<Hello, WireError> {
        let b = take(buf, HELLO_LEN, "hello")?;
        magic(b, HELLO_MAGIC, "hello")?;
        let v = u16_at(b, 4);
        if v != VERSION {
            return Err(WireError::Version {
                ours: VERSION,
                theirs: v,
            });
        }
        if u16_at(b, 6) != 0 {
            return Err(WireError::NonZero {
                what: "hello flags",
                offset: 6,
            });
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[8..]);
        Ok(Hello { nonce })
    }
}

/// Server to client: which server, and the server's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    pub cluster_id: u64,
    pub member: u64,
    pub shard: u32,
    pub nonce: Nonce,
}

impl Challenge {
    pub fn encode(&self) -> [u8; CHALLENGE_LEN] {
        let mut b = [0u8; CHALLENGE_LEN];
        b[0..4].copy_from_slice(&CHALLENGE_MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.cluster_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.member.to_le_bytes());
        b[24..28].copy_from_slice(&self.shard.to_le_bytes());
        b[32..].copy_from_slice(&self.nonce);
        b
    }

    pub fn decode(buf: &[u8]) -> Result<Challenge, WireError> {
        let b = take(buf, CHALLENGE_LEN, "challenge")?;
        magic(b, CHALLENGE_MAGIC, "challenge")?;
        let v = u16_at(b, 4);
        if v != VERSION {
            return Err(WireError::Version {
                ours: VERSION,
                theirs: v,
            });
        }
        for (offset, zero) in [(6, u32::from(u16_at(b, 6))), (28, u32_at(b, 28))] {
            if zero != 0 {
                return Err(WireError::NonZero {
                    what: "challenge reserved field",
                    offset,
                });
            }
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[32..]);
        Ok(Challenge {
            cluster_id: u64_at(b, 8),
            member: u64_at(b, 16),
            shard: u32_at(b, 24),
            nonce,
        })
    }
}

/// Client to server: the client's proof.
pub fn encode_proof(proof: &Proof) -> [u8; PROOF_MSG_LEN] {
    let mut b = [0u8; PROOF_MSG_LEN];
    b[0..4].copy_from_slice(&PROOF_MAGIC.to_le_bytes());
    b[4..].copy_from_slice(proof);
    b
}

/// The proof a proof message carries.
pub fn decode_proof(buf: &[u8]) -> Result<Proof, WireError> {
    let b = take(buf, PROOF_MSG_LEN, "proof")?;
    magic(b, PROOF_MAGIC, "proof")?;
    let mut p = [0u8; PROOF_LEN];
    p.copy_from_slice(&b[4..]);
    Ok(p)
}

/// Server to client: accepted with the server's proof, or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted(Proof),
    Refused,
}

impl Verdict {
    pub fn encode(&self) -> [u8; VERDICT_LEN] {
        let mut b = [0u8; VERDICT_LEN];
        b[0..4].copy_from_slice(&VERDICT_MAGIC.to_le_bytes());
        match self {
            Verdict::Accepted(p) => {
                b[4..8].copy_from_slice(&ACCEPTED.to_le_bytes());
                b[8..].copy_from_slice(p);
            }
            Verdict::Refused => b[4..8].copy_from_slice(&REFUSED.to_le_bytes()),
        }
        b
    }

    pub fn decode(buf: &[u8]) -> Result<Verdict, WireError> {
        let b = take(buf, VERDICT_LEN, "verdict")?;
        magic(b, VERDICT_MAGIC, "verdict")?;
        match u32_at(b, 4) {
            ACCEPTED => {
                let mut p = [0u8; PROOF_LEN];
                p.copy_from_slice(&b[8..]);
                Ok(Verdict::Accepted(p))
            }
            REFUSED => Ok(Verdict::Refused),
            found => Err(WireError::BadStatus { found }),
        }
    }
}

/// The client's proof: over the hello and the challenge as sent.
pub fn client_proof(key: &AuthKey, hello: &[u8; HELLO_LEN], ch: &[u8; CHALLENGE_LEN]) -> Proof {
    key.prove(label::CLIENT, &[hello, ch])
}

/// Checks a client's proof in constant time.
pub fn check_client_proof(
    key: &AuthKey,
    hello: &[u8; HELLO_LEN],
    ch: &[u8; CHALLENGE_LEN],
    proof: &Proof,
) -> bool {
    key.verify(label::CLIENT, &[hello, ch], proof)
}

/// The server's proof: over the same bytes, under the server's label.
pub fn server_proof(key: &AuthKey, hello: &[u8; HELLO_LEN], ch: &[u8; CHALLENGE_LEN]) -> Proof {
    key.prove(label::SERVER, &[hello, ch])
}

/// Checks a server's proof in constant time.
pub fn check_server_proof(
    key: &AuthKey,
    hello: &[u8; HELLO_LEN],
    ch: &[u8; CHALLENGE_LEN],
    proof: &Proof,
) -> bool {
    key.verify(label::SERVER, &[hello, ch], proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuthKey {
        AuthKey::from_secret(&[b's'; 32]).unwrap()
    }

    fn challenge() -> Challenge {
        Challenge {
            cluster_id: 0xc1,
            member: 2,
            shard: 1,
            nonce: [0x22; 32],
        }
    }

    #[test]
    fn messages_round_trip_with_fixed_layouts() {
        let h = Hello { nonce: [0x11; 32] };
        let b = h.encode();
        assert_eq!(&b[..8], b"CLAH\x01\x00\x00\x00");
        assert_eq!(Hello::decode(&b), Ok(h));
        let c = challenge();
        let b = c.encode();
        assert_eq!(&b[..8], b"CLAC\x01\x00\x00\x00");
        assert_eq!(&b[8..16], &0xc1u64.to_le_bytes());
        assert_eq!(&b[16..24], &2u64.to_le_bytes());
        assert_eq!(&b[24..32], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Challenge::decode(&b), Ok(c));
        let p = [0x33; 32];
        assert_eq!(decode_proof(&encode_proof(&p)), Ok(p));
        for v in [Verdict::Accepted(p), Verdict::Refused] {
            assert_eq!(Verdict::decode(&v.encode()), Ok(v));
        }
        assert_eq!(&Verdict::Refused.encode()[..8], b"CLAV\x02\x00\x00\x00");
    }

    #[test]
    fn short_or_foreign_bytes_are_typed_errors() {
        let h = Hello { nonce: [1; 32] }.encode();
        for n in 0..HELLO_LEN {
            assert!(matches!(
                Hello::decode(&h[..n]),
                Err(WireError::Truncated { needed: 40, .. })
            ));
        }
        let c = challenge().encode();
        assert!(matches!(
            Challenge::decode(&c[..63]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Hello::decode(&c[..40]),
            Err(WireError::BadMagic { what: "hello", .. })
        ));
        let mut v2 = h;
        v2[4] = 2;
        assert_eq!(
            Hello::decode(&v2),
            Err(WireError::Version { ours: 1, theirs: 2 })
        );
        let mut flags = h;
        flags[6] = 1;
        assert!(matches!(
            Hello::decode(&flags),
            Err(WireError::NonZero { offset: 6, .. })
        ));
        let mut res = c;
        res[29] = 1;
        assert!(matches!(
            Challenge::decode(&res),
            Err(WireError::NonZero { offset: 28, .. })
        ));
        let mut st = Verdict::Refused.encode();
        st[4] = 9;
        assert_eq!(Verdict::decode(&st), Err(WireError::BadStatus { found: 9 }));
        assert!(matches!(
            decode_proof(&h[..36]),
            Err(WireError::BadMagic { what: "proof", .. })
        ));
    }

    #[test]
    fn a_hello_is_told_from_any_frame_header() {
        assert!(is_hello(b"CLAH"));
        // As a frame's length the magic is above the largest frame limit
        // (64 MiB), so no frame a server accepts starts like a hello.
        const { assert!(HELLO_MAGIC > 64 << 20) };
        assert!(!is_hello(&[16, 0, 0, 0]));
    }

    #[test]
    fn proofs_bind_both_nonces_the_server_and_the_direction() {
        let k = key();
        let h = Hello { nonce: [1; 32] }.encode();
        let c = challenge().encode();
        let pc = client_proof(&k, &h, &c);
        assert!(check_client_proof(&k, &h, &c, &pc));
        // Reflected: the client's proof is not the server's.
        assert!(!check_server_proof(&k, &h, &c, &pc));
        assert_ne!(server_proof(&k, &h, &c), pc);
        // Another server nonce (a replay on a new connection).
        let c2 = Challenge {
            nonce: [3; 32],
            ..challenge()
        }
        .encode();
        assert!(!check_client_proof(&k, &h, &c2, &pc));
        // Another client nonce.
        let h2 = Hello { nonce: [4; 32] }.encode();
        assert!(!check_client_proof(&k, &h2, &c, &pc));
        // Another member or shard.
        let c3 = Challenge {
            shard: 0,
            ..challenge()
        }
        .encode();
        assert!(!check_client_proof(&k, &h, &c3, &pc));
        let wrong = AuthKey::from_secret(&[b't'; 32]).unwrap();
        assert!(!check_client_proof(&wrong, &h, &c, &pc));
    }
}
