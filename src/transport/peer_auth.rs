//! The shared-secret exchange of a peer connection, after the two
//! handshakes (both with AUTH): what each side proves and over which
//! bytes. No I/O here (`conn_in` and `conn_out` move the bytes).
//!
//! ```text
//! dialler  -> acceptor  hello (44) || Nd (32)
//! acceptor -> dialler   reply (44) || Na (32)
//! dialler  -> acceptor  Pd = MAC(PEER_DIALLER,  hello || Nd || reply || Na)   32 bytes
//! acceptor -> dialler   Pa = MAC(PEER_ACCEPTOR, hello || Nd || reply || Na)   32 bytes
//! ```
//!
//! The dialler proves first, over the acceptor's fresh nonce; the
//! acceptor answers with its proof only to a dialler that proved, over
//! the dialler's fresh nonce. The transcript holds both handshakes, so
//! the cluster id, both members and shards and the protocol version are
//! bound into each proof with both nonces: a proof recorded on one
//! connection fails on any other, and the labels keep one side's proof
//! from passing as the other's.

use crate::auth::{AuthKey, Nonce, Proof, label};

use super::handshake::HANDSHAKE_LEN;

/// The bytes both proofs cover, in order.
pub struct Transcript<'a> {
    pub hello: &'a [u8; HANDSHAKE_LEN],
    pub dialler_nonce: &'a Nonce,
    pub reply: &'a [u8; HANDSHAKE_LEN],
    pub acceptor_nonce: &'a Nonce,
}

impl Transcript<'_> {
    fn parts(&self) -> [&[u8]; 4] {
        [
            self.hello,
            self.dialler_nonce,
            self.reply,
            self.acceptor_nonce,
        ]
    }

    /// The dialler's proof.
    pub fn dialler_proof(&self, key: &AuthKey) -> Proof {
        key.prove(label::PEER_DIALLER, &self.parts())
    }

    /// Whether `p` is the dialler's proof (constant time).
    pub fn check_dialler(&self, key: &AuthKey, p: &[u8]) -> bool {
        key.verify(label::PEER_DIALLER, &self.parts(), p)
    }

    /// The acceptor's proof.
    pub fn acceptor_proof(&self, key: &AuthKey) -> Proof {
        key.prove(label::PEER_ACCEPTOR, &self.parts())
    }

    /// Whether `p` is the acceptor's proof (constant time).
    pub fn check_acceptor(&self, key: &AuthKey, p: &[u8]) -> bool {
        key.verify(label::PEER_ACCEPTOR, &self.parts(), p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Handshake;

    fn hello() -> Handshake {
        Handshake {
            cluster_id: 0xc1,
            from_member: 3,
            to_member: 2,
            from_shard: 0,
            to_shard: 1,
            auth: true,
        }
    }

    #[test]
    fn each_proof_binds_both_handshakes_both_nonces_and_its_direction() {
        let k = AuthKey::from_secret(&[b'k'; 32]).unwrap();
        let (h, r) = (hello().encode(), hello().reply().encode());
        let (nd, na) = ([1u8; 32], [2u8; 32]);
        let t = Transcript {
            hello: &h,
            dialler_nonce: &nd,
            reply: &r,
            acceptor_nonce: &na,
        };
        let pd = t.dialler_proof(&k);
        let pa = t.acceptor_proof(&k);
        assert!(t.check_dialler(&k, &pd));
        assert!(t.check_acceptor(&k, &pa));
        // Reflection: the dialler's proof sent back is not the acceptor's.
        assert!(!t.check_acceptor(&k, &pd));
        assert!(!t.check_dialler(&k, &pa));
        // Replay on a connection with another acceptor nonce.
        let na2 = [3u8; 32];
        let t2 = Transcript {
            acceptor_nonce: &na2,
            ..t
        };
        assert!(!t2.check_dialler(&k, &pd));
        // Another cluster (or member, shard, version) in the hello.
        let h3 = Handshake {
            cluster_id: 0xc2,
            ..hello()
        }
        .encode();
        let t3 = Transcript { hello: &h3, ..t };
        assert!(!t3.check_dialler(&k, &pd));
        let other = AuthKey::from_secret(&[b'j'; 32]).unwrap();
        assert!(!t.check_dialler(&other, &pd));
    }
}
