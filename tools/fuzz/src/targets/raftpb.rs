//! raftpb `Message` decoding through our codec (`transport::codec::
//! decode_message`, the hand-written decoder the peer transport uses
//! instead of prost's), judged against prost's own decoding of the same
//! bytes: whatever ours accepts, prost must accept and read the same
//! (ours drops the local-only `vote` and `responses`). A message that
//! decodes goes through our encoder and back unchanged.

use bytes::{Bytes, BytesMut};
use corelog::raftpb::Message;
use corelog::transport::codec::decode_message;
use corelog::transport::{Encoder, decode_all, split_frame};
use prost::Message as _;

use super::peer::{LIMITS, sample_messages};
use super::{Target, label};

pub const TARGET: Target = Target {
    name: "raftpb",
    seeds,
    fixup,
    run,
    max_alloc: MAX_ALLOC,
    alloc_per_input_byte: super::RAFTPB_PER_BYTE,
};

/// The entries vector is sized by the entries counted in the bytes (the
/// per-input-byte allowance); the re-encoded frame is at most twice the
/// input.
const MAX_ALLOC: usize = 2 * crate::mutate::MAX_INPUT + (64 << 10);

fn run(input: &[u8]) -> u64 {
    let buf = Bytes::copy_from_slice(input);
    let ours = decode_message(&buf, 0..buf.len(), &LIMITS);
    let theirs = Message::decode(buf.clone());
    let msg = match ours {
        Ok(m) => m,
        Err(e) => return label(&format!("{e:?}")),
    };
    let mut theirs = match theirs {
        Ok(t) => t,
        Err(e) => panic!("our decoder accepted what prost refuses ({e}): {msg:?}"),
    };
    theirs.vote = 0;
    theirs.responses.clear();
    assert_eq!(msg, theirs, "our decoder and prost disagree");
    let mut enc = Encoder::new(LIMITS);
    if enc.push_ref(9, &msg).is_ok() {
        let frame = enc.finish().to_vec();
        let mut b = BytesMut::from(&frame[..]);
        let payload = split_frame(&mut b, &LIMITS)
            .expect("our own frame is valid")
            .expect("our own frame is complete");
        let back = decode_all(payload, &LIMITS).expect("our own payload decodes");
        assert_eq!(back, vec![(9, msg.clone())], "message round trip");
    }
    label(&format!("ok {} {}", msg.r#type, msg.entries.len().min(2)))
}

/// Protobuf carries no checksum.
fn fixup(_: &mut [u8]) {}

fn seeds() -> Vec<Vec<u8>> {
    sample_messages()
        .iter()
        .map(|m| m.encode_to_vec())
        .collect()
}
