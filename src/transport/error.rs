//! `transport::Error`: every way a peer frame or handshake can be refused.
//! Each names the field and, where one applies, the limit, so that the
//! connection that sent it can be closed (never the process) and the
//! reason logged and counted.

use std::fmt;

/// Errors of the peer transport's codecs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A length or count read from (or about to be written to) the wire is
    /// above its limit. `what` names it: "frame bytes", "messages per
    /// frame", "entries per message", ...
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// Fewer bytes than a fixed-size field or an announced length needs.
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// The frame's crc32 does not match its payload.
    CrcMismatch { expected: u32, computed: u32 },
    /// Bytes that are not a valid encoding of `what`.
    Malformed {
        what: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// Bytes after the last message a frame announced.
    TrailingBytes { count: u64 },
    /// A handshake that does not start with the transport's magic number:
    /// not a corelog peer at all.
    BadMagic { found: u32 },
    /// A handshake of another protocol version.
    VersionMismatch { ours: u16, theirs: u16 },
    /// A handshake from a member of another cluster.
    ForeignCluster { ours: u64, theirs: u64 },
    /// A handshake naming a member id this cluster does not have (`role`
    /// says which side: "from" or "to").
    UnknownMember { role: &'static str, id: u64 },
    /// A handshake addressed to another member than the one that read it.
    WrongMember { ours: u64, theirs: u64 },
    /// A handshake naming a shard the member does not have.
    UnknownShard {
        member: u64,
        shard: u32,
        shard_count: u32,
    },
    /// A handshake that reached the listener of another shard of this
    /// member than the one it names.
    WrongShard { ours: u32, theirs: u32 },
    /// The peer listener could not be bound.
    Bind {
        addr: std::net::SocketAddr,
        kind: std::io::ErrorKind,
    },
    /// A message that never crosses the wire: a local storage message
    /// (types 19-22) or one carrying the local-only fields `vote` or
    /// `responses` (asynchronous storage writes).
    LocalOnly { msg_type: i32 },
    /// The answer to our handshake came from another member or shard than
    /// the one dialled.
    UnexpectedPeer {
        field: &'static str,
        expected: u64,
        found: u64,
    },
    /// This member requires the shared-secret exchange; the peer's
    /// handshake does not offer it (no secret configured there).
    AuthMissing,
    /// The peer's handshake offers the shared-secret exchange; this
    /// member has no secret configured.
    AuthUnexpected,
    /// The peer's proof is wrong (another secret, or a replayed or
    /// reflected proof). `from` says which side sent it: "dialler" or
    /// "acceptor".
    BadProof { from: &'static str },
    /// The acceptor closed the connection after our proof: it found it
    /// wrong (another secret there).
    AuthRefused,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Limit { what, value, limit } => {
                write!(f, "transport: {what} {value} exceeds the limit {limit}")
            }
            Error::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "transport: {what} needs {needed} bytes, only {available} present"
            ),
            Error::CrcMismatch { expected, computed } => write!(
                f,
                "transport: frame crc {expected:#010x} does not match payload crc {computed:#010x}"
            ),
            Error::Malformed {
                what,
                offset,
                reason,
            } => write!(
                f,
                "transport: malformed {what} at offset {offset}: {reason}"
            ),
            Error::TrailingBytes { count } => {
                write!(f, "transport: {count} bytes after the frame's last message")
            }
            Error::BadMagic { found } => {
                write!(f, "transport: not a corelog peer (magic {found:#010x})")
            }
            Error::VersionMismatch { ours, theirs } => write!(
                f,
                "transport: peer speaks protocol version {theirs}, this build {ours}"
            ),
            Error::ForeignCluster { ours, theirs } => write!(
                f,
                "transport: peer belongs to cluster {theirs:#x}, this is cluster {ours:#x}"
            ),
            Error::UnknownMember { role, id } => {
                write!(
                    f,
                    "transport: handshake {role} member {id} is not in the cluster"
                )
            }
            Error::WrongMember { ours, theirs } => write!(
                f,
                "transport: handshake addressed to member {theirs}, this is member {ours}"
            ),
            Error::UnknownShard {
                member,
                shard,
                shard_count,
            } => write!(
                f,
                "transport: member {member} has {shard_count} shards, no shard {shard}"
            ),
            Error::WrongShard { ours, theirs } => write!(
                f,
                "transport: handshake addressed to shard {theirs}, this is shard {ours}"
            ),
            Error::Bind { addr, kind } => {
                write!(f, "transport: cannot listen on {addr}: {kind}")
            }
            Error::LocalOnly { msg_type } => write!(
                f,
                "transport: message of type {msg_type} is local to a node and never sent"
            ),
            Error::UnexpectedPeer {
                field,
                expected,
                found,
            } => write!(
                f,
                "transport: handshake answered by {field} {found}, expected {expected}"
            ),
            Error::AuthMissing => write!(
                f,
                "transport: this member requires the shared secret, the peer offers none"
            ),
            Error::AuthUnexpected => write!(
                f,
                "transport: the peer offers the shared-secret exchange, this member has no secret"
            ),
            Error::BadProof { from } => write!(
                f,
                "transport: the {from}'s proof of the shared secret is wrong (another secret?)"
            ),
            Error::AuthRefused => write!(
                f,
                "transport: the peer refused our proof of the shared secret (another secret there?)"
            ),
        }
    }
}

impl std::error::Error for Error {}
