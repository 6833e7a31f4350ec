//! The first bytes of every peer connection, in both directions: who is
//! speaking, to whom, in which cluster and protocol version, and whether
//! the shared-secret exchange follows. The dialler sends its handshake;
//! the acceptor checks it against the cluster and answers with the
//! mirror image ([`Handshake::reply`]), which the dialler checks in turn
//! ([`Handshake::check_reply`]). Only then do frames flow.
//!
//! Fixed layout, 44 bytes, integers little-endian:
//!
//! ```text
//! 0   magic        u32   "CLPH" (HANDSHAKE_MAGIC)
//! 4   version      u16   PROTOCOL_VERSION
//! 6   flags        u16   bit 0: AUTH (the shared-secret exchange follows); others 0
//! 8   cluster id   u64
//! 16  from member  u64
//! 24  to member    u64
//! 32  from shard   u32
//! 36  to shard     u32
//! 40  crc32        u32   of bytes 0..40
//! ```
//!
//! With AUTH, each side's 44 bytes are followed at once by its 32-byte
//! nonce, and the dialler then sends its 32-byte proof, the acceptor
//! answers with its own (`peer_auth`). Both sides must agree on AUTH: a
//! member with a secret refuses one without, and the reverse.
//!
//! Checked in this order, so the error says the most useful thing: the
//! magic (is this a corelog peer at all?), the version (a later version
//! may change what follows it), the crc, the flags; then, against the
//! cluster, the cluster id, the addressee, the sender, the shards.

use super::Error;
use super::frame::checksum;
use crate::cluster::Cluster;

/// Bytes of a handshake.
pub const HANDSHAKE_LEN: usize = 44;
/// First four bytes of every peer connection.
pub const HANDSHAKE_MAGIC: u32 = u32::from_le_bytes(*b"CLPH");
/// The peer protocol (handshake, frame and codec layouts) of this build.
/// 2: frames may carry transport records (coalesced heartbeats), which a
/// version 1 reader would take for a message of a group.
/// 3: the reserved field became flags (AUTH), which a version 2 reader
/// would refuse as a non-zero reserved field.
pub const PROTOCOL_VERSION: u16 = 3;
/// Flag: the shared-secret exchange follows the handshake.
pub const FLAG_AUTH: u16 = 1;

/// One side's handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The cluster the sender belongs to.
    pub cluster_id: u64,
    /// The sender's member id.
    pub from_member: u64,
    /// The member the sender means to reach.
    pub to_member: u64,
    /// The sender's shard.
    pub from_shard: u32,
    /// The receiver's shard the connection is for.
    pub to_shard: u32,
    /// The sender holds a secret and runs the shared-secret exchange.
    pub auth: bool,
}

impl Handshake {
    /// The handshake's bytes, with this build's magic and version.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        self.encode_version(PROTOCOL_VERSION)
    }

    fn encode_version(&self, version: u16) -> [u8; HANDSHAKE_LEN] {
        let mut b = [0u8; HANDSHAKE_LEN];
        b[0..4].copy_from_slice(&HANDSHAKE_MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&version.to_le_bytes());
        b[8..16].copy_from_slice(&self.cluster_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.from_member.to_le_bytes());
        b[24..32].copy_from_slice(&self.to_member.to_le_bytes());
        b[32..36].copy_from_slice(&self.from_shard.to_le_bytes());
        b[36..40].copy_from_slice(&self.to_shard.to_le_bytes());
        let flags = if self.auth { FLAG_AUTH } else { 0 };
        b[6..8].copy_from_slice(&flags.to_le_bytes());
        let crc = checksum(&b[..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads a handshake's bytes: its format only, not whether the cluster
    /// knows the members it names (that is [`Handshake::validate`]).
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        let Some(b) = buf.get(..HANDSHAKE_LEN) else {
            return Err(Error::Truncated {
                what: "handshake",
                needed: HANDSHAKE_LEN as u64,
                available: buf.len() as u64,
            });
        };
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let magic = u32_at(0);
        if magic != HANDSHAKE_MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        let version = u16_at(4);
        if version != PROTOCOL_VERSION {
            return Err(Error::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: version,
            });
        }
        let expected = u32_at(40);
        let computed = checksum(&b[..40]);
        if expected != computed {
            return Err(Error::CrcMismatch { expected, computed });
        }
        let flags = u16_at(6);
        if flags & !FLAG_AUTH != 0 {
            return Err(Error::Malformed {
                what: "handshake",
                offset: 6,
                reason: "unknown flag bits",
            });
        }
        Ok(Handshake {
            auth: flags & FLAG_AUTH != 0,
            cluster_id: u64_at(8),
            from_member: u64_at(16),
            to_member: u64_at(24),
            from_shard: u32_at(32),
            to_shard: u32_at(36),
        })
    }

    /// Checks a received handshake against the cluster, as read by member
    /// `local`: same cluster, addressed to `local`, from a member of the
    /// cluster, naming shards both members have.
    pub fn validate(&self, cluster: &Cluster, local: u64) -> Result<(), Error> {
        if self.cluster_id != cluster.id() {
            return Err(Error::ForeignCluster {
                ours: cluster.id(),
                theirs: self.cluster_id,
            });
        }
        if self.to_member != local {
            return Err(Error::WrongMember {
                ours: local,
                theirs: self.to_member,
            });
        }
        let Some(to) = cluster.member(local) else {
            return Err(Error::UnknownMember {
                role: "to",
                id: local,
            });
        };
        let Some(from) = cluster.member(self.from_member) else {
            return Err(Error::UnknownMember {
                role: "from",
                id: self.from_member,
            });
        };
        if self.to_shard >= to.shards {
            return Err(Error::UnknownShard {
                member: to.id,
                shard: self.to_shard,
                shard_count: to.shards,
            });
        }
        if self.from_shard >= from.shards {
            return Err(Error::UnknownShard {
                member: from.id,
                shard: self.from_shard,
                shard_count: from.shards,
            });
        }
        Ok(())
    }

    /// The acceptor's answer to this handshake: the same connection seen
    /// from the other end.
    pub fn reply(&self) -> Handshake {
        Handshake {
            cluster_id: self.cluster_id,
            from_member: self.to_member,
            to_member: self.from_member,
            from_shard: self.to_shard,
            to_shard: self.from_shard,
            auth: self.auth,
        }
    }

    /// Checks, on the dialler's side, that `self` (the answer received) is
    /// the reply to `sent`: the member and shard dialled answered, not some
    /// other process that took over the address.
    pub fn check_reply(&self, sent: &Handshake) -> Result<(), Error> {
        let want = sent.reply();
        if self.cluster_id != want.cluster_id {
            return Err(Error::ForeignCluster {
                ours: want.cluster_id,
                theirs: self.cluster_id,
            });
        }
        if self.to_member != want.to_member {
            return Err(Error::WrongMember {
                ours: want.to_member,
                theirs: self.to_member,
            });
        }
        if self.from_member != want.from_member {
            return Err(Error::UnexpectedPeer {
                field: "member",
                expected: want.from_member,
                found: self.from_member,
            });
        }
        if self.from_shard != want.from_shard || self.to_shard != want.to_shard {
            return Err(Error::UnexpectedPeer {
                field: "shard",
                expected: u64::from(want.from_shard),
                found: u64::from(self.from_shard),
            });
        }
        check_auth(sent.auth, self.auth)
    }
}

/// Whether a side holding a secret (`ours`) may go on with a peer whose
/// handshake says `theirs`: only if both hold one or neither does. A
/// member with a secret never talks to one without (it could be anyone),
/// and one without never runs an exchange it cannot finish.
pub fn check_auth(ours: bool, theirs: bool) -> Result<(), Error> {
    match (ours, theirs) {
        (true, false) => Err(Error::AuthMissing),
        (false, true) => Err(Error::AuthUnexpected),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Member;
    use std::net::SocketAddr;

    fn cluster() -> Cluster {
        let members = (1..=3u64)
            .map(|id| Member {
                id,
                name: format!("m{id}"),
                peer_addr: SocketAddr::from(([127, 0, 0, 1], 7000 + 10 * id as u16)),
                client_addr: SocketAddr::from(([127, 0, 0, 1], 8000 + 10 * id as u16)),
                shards: id as u32,
            })
            .collect();
        Cluster::new(0xc1, members, 10, 3).unwrap()
    }

    fn hello() -> Handshake {
        Handshake {
            cluster_id: 0xc1,
            from_member: 3,
            to_member: 2,
            from_shard: 2,
            to_shard: 1,
            auth: false,
        }
    }

    #[test]
    fn layout_is_fixed_little_endian() {
        let b = hello().encode();
        assert_eq!(&b[0..4], b"CLPH");
        assert_eq!(&b[4..8], &[3, 0, 0, 0]);
        assert_eq!(&b[8..16], &0xc1u64.to_le_bytes());
        assert_eq!(&b[16..24], &3u64.to_le_bytes());
        assert_eq!(&b[24..32], &2u64.to_le_bytes());
        assert_eq!(&b[32..36], &2u32.to_le_bytes());
        assert_eq!(&b[36..40], &1u32.to_le_bytes());
        assert_eq!(&b[40..44], &checksum(&b[..40]).to_le_bytes());
        assert_eq!(Handshake::decode(&b), Ok(hello()));
        let a = Handshake {
            auth: true,
            ..hello()
        };
        let b = a.encode();
        assert_eq!(&b[4..8], &[3, 0, 1, 0]);
        assert_eq!(Handshake::decode(&b), Ok(a));
    }

    #[test]
    fn a_valid_handshake_and_its_reply_are_accepted() {
        let c = cluster();
        let h = Handshake::decode(&hello().encode()).unwrap();
        h.validate(&c, 2).unwrap();
        let r = Handshake::decode(&h.reply().encode()).unwrap();
        r.validate(&c, 3).unwrap();
        r.check_reply(&hello()).unwrap();
    }

    #[test]
    fn bad_magic_is_refused() {
        let mut b = hello().encode();
        b[..4].copy_from_slice(b"GET ");
        assert_eq!(
            Handshake::decode(&b),
            Err(Error::BadMagic {
                found: u32::from_le_bytes(*b"GET ")
            })
        );
    }

    #[test]
    fn another_version_is_refused_before_its_crc_is_read() {
        let b = hello().encode_version(4);
        assert_eq!(
            Handshake::decode(&b),
            Err(Error::VersionMismatch { ours: 3, theirs: 4 })
        );
    }

    #[test]
    fn a_flipped_bit_is_caught() {
        let good = hello().encode();
        for byte in 8..40 {
            let mut b = good;
            b[byte] ^= 0x10;
            assert!(
                matches!(Handshake::decode(&b), Err(Error::CrcMismatch { .. })),
                "byte {byte}"
            );
        }
    }

    #[test]
    fn unknown_flag_bits_are_refused() {
        let mut b = hello().encode();
        b[6] = 2;
        let crc = checksum(&b[..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Handshake::decode(&b),
            Err(Error::Malformed { offset: 6, .. })
        ));
    }

    #[test]
    fn short_input_is_truncated_not_a_panic() {
        let b = hello().encode();
        for n in 0..HANDSHAKE_LEN {
            assert_eq!(
                Handshake::decode(&b[..n]),
                Err(Error::Truncated {
                    what: "handshake",
                    needed: 44,
                    available: n as u64
                })
            );
        }
    }

    #[test]
    fn foreign_cluster_is_refused() {
        let h = Handshake {
            cluster_id: 0xc2,
            ..hello()
        };
        assert_eq!(
            h.validate(&cluster(), 2),
            Err(Error::ForeignCluster {
                ours: 0xc1,
                theirs: 0xc2
            })
        );
    }

    #[test]
    fn unknown_sender_is_refused() {
        let h = Handshake {
            from_member: 9,
            ..hello()
        };
        assert_eq!(
            h.validate(&cluster(), 2),
            Err(Error::UnknownMember {
                role: "from",
                id: 9
            })
        );
    }

    #[test]
    fn handshake_for_another_member_is_refused() {
        assert_eq!(
            hello().validate(&cluster(), 1),
            Err(Error::WrongMember { ours: 1, theirs: 2 })
        );
    }

    #[test]
    fn a_reader_missing_from_the_cluster_is_refused() {
        let h = Handshake {
            to_member: 5,
            ..hello()
        };
        assert_eq!(
            h.validate(&cluster(), 5),
            Err(Error::UnknownMember { role: "to", id: 5 })
        );
    }

    #[test]
    fn shards_the_members_do_not_have_are_refused() {
        // Member 2 has shards 0..2, member 3 has 0..3.
        let h = Handshake {
            to_shard: 2,
            ..hello()
        };
        assert_eq!(
            h.validate(&cluster(), 2),
            Err(Error::UnknownShard {
                member: 2,
                shard: 2,
                shard_count: 2
            })
        );
        let h = Handshake {
            from_shard: 3,
            ..hello()
        };
        assert_eq!(
            h.validate(&cluster(), 2),
            Err(Error::UnknownShard {
                member: 3,
                shard: 3,
                shard_count: 3
            })
        );
    }

    #[test]
    fn a_reply_from_another_member_or_shard_is_refused() {
        let sent = hello();
        let r = Handshake {
            from_member: 1,
            ..sent.reply()
        };
        assert_eq!(
            r.check_reply(&sent),
            Err(Error::UnexpectedPeer {
                field: "member",
                expected: 2,
                found: 1
            })
        );
        let r = Handshake {
            from_shard: 0,
            ..sent.reply()
        };
        assert!(matches!(
            r.check_reply(&sent),
            Err(Error::UnexpectedPeer { field: "shard", .. })
        ));
    }

    #[test]
    fn both_sides_must_agree_on_auth() {
        let sent = Handshake {
            auth: true,
            ..hello()
        };
        let plain = Handshake {
            auth: false,
            ..sent.reply()
        };
        assert_eq!(plain.check_reply(&sent), Err(Error::AuthMissing));
        assert_eq!(sent.reply().check_reply(&sent), Ok(()));
        assert_eq!(hello().reply().check_reply(&hello()), Ok(()));
        let r = Handshake {
            auth: true,
            ..hello().reply()
        };
        assert_eq!(r.check_reply(&hello()), Err(Error::AuthUnexpected));
        assert_eq!(check_auth(true, false), Err(Error::AuthMissing));
        assert_eq!(check_auth(false, true), Err(Error::AuthUnexpected));
    }
}
