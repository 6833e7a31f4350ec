//! Peer transport: the bytes exchanged between members and the
//! connections that carry them. Leaves without I/O: the frame layout
//! (`frame`), the zero-copy encoding of (group, raftpb `Message`) pairs
//! into a frame and its decoding (`codec`), coalesced heartbeat records
//! (`heartbeats`), the connection handshake (`handshake`) and its
//! shared-secret exchange (`peer_auth`). On top, one
//! shard's peer network on its glommio executor (`net`: `PeerNet`, the
//! `Inbox`), made of the outbound connections and their queues
//! (`conn_out`), the inbound side (`conn_in`, `reader`), the raw socket
//! calls (`sock`), reconnect backoff (`backoff`), wake-ups (`signal`) and
//! counters (`stats`). It knows nothing of Raft's rules beyond which
//! heartbeats carry nothing but a term and a commit.
//!
//! Everything read from a socket is checked against [`Limits`] before it is
//! trusted; bad input is a typed [`Error`], never a panic, and costs the
//! connection that sent it, not the process.

pub(crate) mod accept;
mod backoff;
mod conn_in;
mod conn_out;
mod error;
pub mod heartbeats;
mod inbox;
mod pbwire;
pub mod peer_auth;
mod reader;
mod signal;
pub mod snapchunk;
pub(crate) mod sock;
mod stats;

pub mod codec;
pub mod frame;
pub mod handshake;
pub mod net;

pub use codec::{Encoder, Frame, Messages, decode_all};
pub use error::Error;
pub use frame::{FRAME_HEADER_LEN, FrameHeader, split_frame};
pub use handshake::{HANDSHAKE_LEN, Handshake};
pub use net::{Inbox, NetConfig, NetOptions, NetStats, PeerNet, SendError};

/// Default bound of one frame's payload: larger than any batch a loop turn
/// should send to one peer (Raft's `max_size_per_msg` caps each MsgApp),
/// small enough that a hostile length cannot make us reserve much memory.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 64 << 20;
/// Default bound of the (group, message) pairs in one frame: a loop turn
/// of a shard with thousands of groups, heartbeats coalesced.
pub const DEFAULT_MAX_MESSAGES_PER_FRAME: u32 = 1 << 16;
/// Default bound of the entries of one message.
pub const DEFAULT_MAX_ENTRIES_PER_MESSAGE: u32 = 1 << 16;

/// The bounds every frame is checked against, on both sides: the encoder
/// refuses to build a frame the decoder would refuse to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Payload bytes of one frame (the header's `length` field).
    pub max_frame_bytes: u32,
    /// (group, message) pairs in one frame.
    pub max_messages_per_frame: u32,
    /// Entries in one message.
    pub max_entries_per_message: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_messages_per_frame: DEFAULT_MAX_MESSAGES_PER_FRAME,
            max_entries_per_message: DEFAULT_MAX_ENTRIES_PER_MESSAGE,
        }
    }
}
