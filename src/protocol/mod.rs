//! The client protocol's codec: frames on a client connection, requests
//! decoded from them (with the checks the server's door makes before it
//! proposes anything), and the log state's outcomes and errors as typed
//! protocol answers. Pure: no socket, no clock; the server (not built yet)
//! owns connections, and docs/protocol.md is the specification.
//!
//! Files: `frame.rs` (the frame layout and cutting frames out of a receive
//! buffer), `request.rs` (decoding and checking requests), `answer.rs`
//! (outcomes and errors as `Response`s), `error.rs` (`FrameError`: what
//! closes a connection).

pub mod answer;
pub mod error;
pub mod frame;
pub mod request;

pub use answer::{apply_answer, batch_error, offset_out_of_range, refusal};
pub use error::FrameError;
pub use frame::{FRAME_HEADER_LEN, Frame, encode_frame, split_frame};
pub use request::{ReadBounds, decode_request, read_bounds};

/// Bounds of a client connection, checked where each value enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Payload bytes of one frame (after its 16-byte header), either way.
    pub max_frame_bytes: u32,
    /// Records one read answers at most (a request's 0 or larger value is
    /// brought to this).
    pub max_read_records: u32,
    /// Batch bytes one read answers at most (whole batches; the first
    /// batch is always answered, even if larger).
    pub max_read_bytes: u32,
}

impl Limits {
    /// 4 MiB frames (a 1 MiB batch with room to spare; read answers up to
    /// 1 MiB of batches), 10,000 records per read.
    pub const DEFAULT: Limits = Limits {
        max_frame_bytes: 4 << 20,
        max_read_records: 10_000,
        max_read_bytes: 1 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
