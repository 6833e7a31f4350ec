//! `ClientError`: why a client call failed.

use std::fmt;

use crate::clientpb;

#[derive(Debug, Clone, PartialEq)]
pub enum ClientError {
    /// No connection could be made.
    Connect(String),
    /// The connection ended with the request unanswered.
    Disconnected(String),
    /// No answer (or no success after retries) within the call's timeout.
    Timeout,
    /// The server's frame or answer broke the protocol.
    Protocol(String),
    /// The request does not fit a frame, or a batch its limits.
    TooLarge(String),
    /// A typed error from the server that retrying cannot fix.
    Server(clientpb::error::Kind),
    /// No member could be found for the request (status lists none).
    NoMember(String),
    /// Authentication failed (docs/protocol.md section 9): the server
    /// requires a secret this client lacks (its `Unauthorized` answer),
    /// refused our proof (another secret), sent a wrong proof of its own,
    /// or closed the handshake (no secret there). Not retried: another
    /// attempt would fail the same way.
    Unauthorized(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "connect: {e}"),
            ClientError::Disconnected(e) => write!(f, "disconnected: {e}"),
            ClientError::Timeout => write!(f, "timed out"),
            ClientError::Protocol(e) => write!(f, "protocol: {e}"),
            ClientError::TooLarge(e) => write!(f, "too large: {e}"),
            ClientError::Server(k) => write!(f, "server: {k:?}"),
            ClientError::NoMember(e) => write!(f, "{e}"),
            ClientError::Unauthorized(e) => write!(f, "unauthorized: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}
