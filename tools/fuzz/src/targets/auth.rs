//! The authentication handshakes' decoders, both ports: the client port's
//! hello, challenge, proof and verdict (`auth::client_wire`), and the peer
//! handshake with its AUTH flag followed by a nonce (what an acceptor reads
//! before any proof). Fixed sizes, so the property is exactness: whatever
//! decodes re-encodes to the very bytes it came from, and a hello is told
//! from a frame by its first four bytes alone.

use corelog::auth::client_wire::{
    self, CHALLENGE_LEN, Challenge, HELLO_LEN, Hello, PROOF_MSG_LEN, VERDICT_LEN, Verdict,
};
use corelog::transport::{HANDSHAKE_LEN, Handshake, frame::checksum};

use super::{Target, label, mix};

pub const TARGET: Target = Target {
    name: "auth",
    seeds,
    fixup,
    run,
    max_alloc: MAX_ALLOC,
    alloc_per_input_byte: 0,
};

/// Decoding allocates nothing; the labels' Debug text is small.
const MAX_ALLOC: usize = 64 << 10;

fn seeds() -> Vec<Vec<u8>> {
    let hello = Hello { nonce: [0x11; 32] }.encode().to_vec();
    let challenge = Challenge {
        cluster_id: 77,
        member: 2,
        shard: 1,
        nonce: [0x22; 32],
    }
    .encode()
    .to_vec();
    let proof = client_wire::encode_proof(&[0x33; 32]).to_vec();
    let verdict = Verdict::Accepted([0x44; 32]).encode().to_vec();
    let refused = Verdict::Refused.encode().to_vec();
    let mut peer = Handshake {
        cluster_id: 77,
        from_member: 1,
        to_member: 2,
        from_shard: 0,
        to_shard: 0,
        auth: true,
    }
    .encode()
    .to_vec();
    peer.extend_from_slice(&[0x55; 32]);
    vec![hello, challenge, proof, verdict, refused, peer]
}

/// The peer handshake's crc, so a mutated flag or id reaches the checks
/// behind it; the client messages carry no checksum.
fn fixup(input: &mut [u8]) {
    if input.len() >= HANDSHAKE_LEN && input[..4] == *b"CLPH" {
        let crc = checksum(&input[..40]);
        input[40..44].copy_from_slice(&crc.to_le_bytes());
    }
}

fn run(input: &[u8]) -> u64 {
    let mut out = 0;
    if let Some(first) = input.first_chunk::<4>() {
        // A hello by its magic, and never a frame a server would accept.
        let hello = client_wire::is_hello(first);
        assert_eq!(hello, first == b"CLAH", "is_hello");
        if hello {
            assert!(u32::from_le_bytes(*first) > 64 << 20, "a hello is no frame");
        }
    }
    out = mix(
        out,
        match Hello::decode(input) {
            Ok(h) => {
                assert_eq!(h.encode()[..], input[..HELLO_LEN], "hello round trip");
                1
            }
            Err(e) => label(&format!("{e:?}")),
        },
    );
    out = mix(
        out,
        match Challenge::decode(input) {
            Ok(c) => {
                assert_eq!(
                    c.encode()[..],
                    input[..CHALLENGE_LEN],
                    "challenge round trip"
                );
                2
            }
            Err(e) => label(&format!("{e:?}")),
        },
    );
    out = mix(
        out,
        match client_wire::decode_proof(input) {
            Ok(p) => {
                assert_eq!(
                    client_wire::encode_proof(&p)[..],
                    input[..PROOF_MSG_LEN],
                    "proof round trip"
                );
                3
            }
            Err(e) => label(&format!("{e:?}")),
        },
    );
    out = mix(
        out,
        match Verdict::decode(input) {
            Ok(Verdict::Accepted(p)) => {
                assert_eq!(
                    Verdict::Accepted(p).encode()[..],
                    input[..VERDICT_LEN],
                    "verdict round trip"
                );
                4
            }
            // A refusal's proof bytes are not read: only the head is exact.
            Ok(Verdict::Refused) => {
                assert_eq!(Verdict::Refused.encode()[..8], input[..8], "refusal");
                5
            }
            Err(e) => label(&format!("{e:?}")),
        },
    );
    mix(
        out,
        match Handshake::decode(input) {
            Ok(h) => {
                assert_eq!(
                    h.encode()[..],
                    input[..HANDSHAKE_LEN],
                    "peer handshake round trip"
                );
                6 + u64::from(h.auth)
            }
            Err(e) => label(&format!("{e:?}")),
        },
    )
}
