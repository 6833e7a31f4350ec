//! `FrameError`: a client frame that cannot be trusted. What follows it on
//! the connection cannot be trusted to start at a frame boundary, so the
//! connection is closed (never the process). A frame that is sound but
//! whose payload is not a valid request is not a `FrameError`: it is
//! answered with a typed error under its request id (`request.rs`).

use std::fmt;

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A payload length above the connection's limit, read from a header
    /// (or, encoding, about to be written).
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// The frame's crc does not match its request id and payload.
    CrcMismatch { stored: u32, computed: u32 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Limit { what, value, limit } => {
                write!(f, "client frame: {what} {value} exceeds the limit {limit}")
            }
            FrameError::CrcMismatch { stored, computed } => write!(
                f,
                "client frame: crc {stored:#010x} does not match the contents' crc {computed:#010x}"
            ),
        }
    }
}

impl std::error::Error for FrameError {}
