//! Shared-secret authentication of the two doors, the peer port and the
//! client port: a challenge-response at the start of each connection in
//! which both ends prove they hold the cluster's secret, so neither a
//! member nor a client ever talks to an impostor.
//!
//! This module owns the pieces without I/O: the key made from the secret
//! file ([`AuthKey`], `key.rs`), fresh nonces from the OS, the proofs
//! (HMAC-SHA256 over a label naming the direction and the handshake's
//! bytes, compared in constant time), and the byte layout of the client
//! port's handshake messages (`client_wire.rs`). The peer port's messages
//! live with its handshake (`transport::handshake`), the exchanges
//! themselves with the connections that run them (`transport::conn_in`,
//! `conn_out`, `server::auth_conn`, `client::conn`).
//!
//! What it must never do: compare a proof with `==`, send a proof before
//! the other side's fresh nonce is in it, or accept a proof whose label
//! says it was made for the other direction or the other door.

pub mod client_wire;
mod key;

pub use key::{
    AuthKey, LoadedSecret, MIN_SECRET_BYTES, NONCE_LEN, Nonce, PROOF_LEN, Proof, SecretError, nonce,
};

/// The labels that open every proof's MAC input: one per door and
/// direction, so a proof made for one can never pass as another (a
/// reflected or cross-door proof fails).
pub mod label {
    /// The peer that dialled proves itself to the acceptor.
    pub const PEER_DIALLER: &[u8] = b"corelog-auth v1 peer dialler";
    /// The acceptor proves itself to the dialler.
    pub const PEER_ACCEPTOR: &[u8] = b"corelog-auth v1 peer acceptor";
    /// A client proves itself to a server's shard.
    pub const CLIENT: &[u8] = b"corelog-auth v1 client";
    /// A server's shard proves itself to a client.
    pub const SERVER: &[u8] = b"corelog-auth v1 server";
}
