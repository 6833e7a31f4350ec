//! The client port's door when the server holds the cluster's secret:
//! before its first frame, a connection runs the handshake of
//! `auth::client_wire` (hello, challenge, proof, verdict), bounded by
//! `ConnLimits::handshake_timeout`. A connection that fails it is closed
//! (that one only), logged and counted by kind; one whose first bytes are
//! a frame (a client without the secret) is answered `Unauthorized` under
//! that frame's request id first, so it learns why.
//!
//! The client proves first; the server's proof goes only to a client
//! whose proof was right.

use std::net::SocketAddr;

use bytes::BytesMut;
use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::listener::ShardServer;
use super::ops;
use crate::auth::client_wire::{self, Challenge, HELLO_LEN, Hello, PROOF_MSG_LEN, Verdict};
use crate::auth::{AuthKey, nonce};
use crate::clientpb::{self, error::Kind};
use crate::protocol::{FRAME_HEADER_LEN, encode_frame};

/// How a handshake on the client port ended, for the counters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The client proved it holds the secret; frames may flow.
    Accepted,
    /// The client sent a frame without the handshake: answered
    /// `Unauthorized`, closed.
    Unauthenticated,
    /// The client's proof was wrong (another secret, a replayed proof):
    /// answered with a refused verdict, closed.
    BadProof,
    /// Bytes that are neither a hello nor a frame, another handshake
    /// version, or a message that is not the one expected.
    Malformed,
    /// The handshake did not complete within the timeout.
    Timeout,
    /// The client closed the connection (or it failed) mid-handshake.
    Closed,
}

impl AuthOutcome {
    /// The kind's name in metrics and logs.
    pub fn kind(self) -> &'static str {
        match self {
            AuthOutcome::Accepted => "accepted",
            AuthOutcome::Unauthenticated => "unauthenticated",
            AuthOutcome::BadProof => "bad_proof",
            AuthOutcome::Malformed => "malformed",
            AuthOutcome::Timeout => "timeout",
            AuthOutcome::Closed => "closed",
        }
    }
}

/// The reason an `Unauthorized` answer gives a client that sent a frame
/// first.
pub const NO_HANDSHAKE: &str = "this server requires authentication: send the auth hello before any frame (docs/protocol.md section 9)";

/// Runs the handshake on a fresh connection; counts and logs its outcome.
/// `true`: the client proved it holds the secret.
pub(crate) async fn authenticate(srv: &ShardServer, stream: &mut TcpStream, key: &AuthKey) -> bool {
    let peer = stream.peer_addr().ok();
    let outcome = or(exchange(srv, stream, key), async {
        glommio::timer::sleep(srv.limits.handshake_timeout).await;
        AuthOutcome::Timeout
    });
    let outcome = or(outcome, async {
        srv.stopping.wait().await;
        AuthOutcome::Closed
    })
    .await;
    srv.count_auth(outcome);
    if outcome != AuthOutcome::Accepted {
        log_failure(srv, peer, outcome);
    }
    outcome == AuthOutcome::Accepted
}

fn log_failure(srv: &ShardServer, peer: Option<SocketAddr>, outcome: AuthOutcome) {
    let peer = peer.map_or_else(|| "?".to_string(), |a| a.to_string());
    tracing::warn!(
        shard = srv.shard.index(),
        peer = %peer,
        kind = outcome.kind(),
        "client connection closed: authentication failed"
    );
}

/// Reads `buf.len()` bytes; `false` if the stream ended or failed first.
async fn read_full(stream: &mut TcpStream, buf: &mut [u8]) -> bool {
    stream.read_exact(buf).await.is_ok()
}

async fn exchange(srv: &ShardServer, stream: &mut TcpStream, key: &AuthKey) -> AuthOutcome {
    // The first 16 bytes: a hello's start, or a frame's header.
    let mut hello = [0u8; HELLO_LEN];
    if !read_full(stream, &mut hello[..FRAME_HEADER_LEN]).await {
        return AuthOutcome::Closed;
    }
    let mut first = [0u8; 4];
    first.copy_from_slice(&hello[..4]);
    if !client_wire::is_hello(&first) {
        return answer_frame(srv, stream, &hello[..FRAME_HEADER_LEN]).await;
    }
    if !read_full(stream, &mut hello[FRAME_HEADER_LEN..]).await {
        return AuthOutcome::Closed;
    }
    if Hello::decode(&hello).is_err() {
        return AuthOutcome::Malformed;
    }
    let Ok(server_nonce) = nonce() else {
        tracing::error!("no randomness from the OS for a client handshake");
        return AuthOutcome::Closed;
    };
    let challenge = Challenge {
        cluster_id: srv.cluster.id(),
        member: srv.shard.member(),
        shard: srv.shard.index(),
        nonce: server_nonce,
    }
    .encode();
    if stream.write_all(&challenge).await.is_err() {
        return AuthOutcome::Closed;
    }
    let mut proof = [0u8; PROOF_MSG_LEN];
    if !read_full(stream, &mut proof).await {
        return AuthOutcome::Closed;
    }
    let Ok(proof) = client_wire::decode_proof(&proof) else {
        return AuthOutcome::Malformed;
    };
    if !client_wire::check_client_proof(key, &hello, &challenge, &proof) {
        // The client learns it was refused, not merely cut off.
        let _ = stream.write_all(&Verdict::Refused.encode()).await;
        return AuthOutcome::BadProof;
    }
    let ours = client_wire::server_proof(key, &hello, &challenge);
    if stream
        .write_all(&Verdict::Accepted(ours).encode())
        .await
        .is_err()
    {
        return AuthOutcome::Closed;
    }
    AuthOutcome::Accepted
}

/// A client that opened with a frame: if the header could be one, it is
/// answered `Unauthorized` under its request id (its payload is never
/// read); bytes that cannot be a frame are closed on.
async fn answer_frame(srv: &ShardServer, stream: &mut TcpStream, header: &[u8]) -> AuthOutcome {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if len > srv.limits.protocol.max_frame_bytes {
        return AuthOutcome::Malformed;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&header[8..16]);
    let resp = ops::error(Kind::Unauthorized(clientpb::Unauthorized {
        reason: NO_HANDSHAKE.into(),
    }));
    srv.count_answer(&resp);
    let mut out = BytesMut::new();
    if encode_frame(
        u64::from_le_bytes(id),
        &resp,
        &srv.limits.protocol,
        &mut out,
    )
    .is_ok()
    {
        let _ = stream.write_all(&out).await;
    }
    AuthOutcome::Unauthenticated
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::client_wire::CHALLENGE_LEN;

    #[test]
    fn kinds_are_distinct_metric_labels() {
        let all = [
            AuthOutcome::Accepted,
            AuthOutcome::Unauthenticated,
            AuthOutcome::BadProof,
            AuthOutcome::Malformed,
            AuthOutcome::Timeout,
            AuthOutcome::Closed,
        ];
        let mut names: Vec<&str> = all.iter().map(|o| o.kind()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn the_challenge_fits_its_layout() {
        assert_eq!(CHALLENGE_LEN, 64);
        const { assert!(HELLO_LEN >= FRAME_HEADER_LEN) };
    }
}
