//! Client protocol: the bytes a client connection delivers, cut into
//! frames by `protocol::split_frame` (length checked before anything is
//! reserved, crc verified) and decoded by `decode_request` (a `Request`,
//! an append's batch validated). A request that decodes is framed again and
//! must come back equal; an append's batch gets the batch target's checks.

use bytes::BytesMut;
use corelog::clientpb::{
    AppendRequest, ReadRequest, Request, TailRequest, TruncateRequest, request::Op,
};
use corelog::log::BatchLimits;
use corelog::protocol::{FRAME_HEADER_LEN, Limits, decode_request, encode_frame, split_frame};

use super::{Target, label, set};

pub const TARGET: Target = Target {
    name: "client",
    seeds,
    fixup,
    run,
    max_alloc: MAX_ALLOC,
    alloc_per_input_byte: 0,
};

const LIMITS: Limits = Limits {
    max_frame_bytes: 1 << 20,
    max_read_records: 1000,
    max_read_bytes: 1 << 20,
};
/// A frame's reservation (grown at most 2x by `BytesMut`) plus slack.
const MAX_ALLOC: usize = 2 * (LIMITS.max_frame_bytes as usize + FRAME_HEADER_LEN) + (64 << 10);

fn run(input: &[u8]) -> u64 {
    let mut buf = BytesMut::from(input);
    let mut outcome = 0;
    loop {
        let frame = match split_frame(&mut buf, &LIMITS) {
            Ok(Some(f)) => f,
            Ok(None) => return set(outcome, 1),
            Err(e) => return set(outcome, label(&format!("{e:?}"))),
        };
        let op = match decode_request(&frame, &BatchLimits::DEFAULT) {
            Ok(op) => op,
            Err(e) => {
                outcome = set(
                    outcome,
                    label(&format!("{:?}", e.kind.map(|k| kind_name(&k)))),
                );
                continue;
            }
        };
        if let Op::Append(a) = &op {
            outcome = set(
                outcome,
                super::batch::check(&a.batch, &BatchLimits::DEFAULT),
            );
        }
        outcome = set(
            outcome,
            label(&format!("{:?}", std::mem::discriminant(&op))),
        );
        let req = Request { op: Some(op) };
        let mut again = BytesMut::new();
        encode_frame(frame.request_id, &req, &LIMITS, &mut again)
            .expect("a request that fit a frame fits one again");
        let back = split_frame(&mut again, &LIMITS)
            .expect("our own frame is valid")
            .expect("our own frame is complete");
        assert_eq!(back.request_id, frame.request_id, "request id round trip");
        let op2 = decode_request(&back, &BatchLimits::DEFAULT).expect("our own request decodes");
        assert_eq!(Some(op2), req.op, "request round trip");
    }
}

fn kind_name(k: &corelog::clientpb::error::Kind) -> String {
    // The variant only: reasons carry offsets and prost's text.
    format!("{k:?}")
        .split(['(', ' '])
        .next()
        .unwrap_or("")
        .to_string()
}

/// Recomputes the crc (over request id and payload) of every frame whose
/// length fits the input.
fn fixup(b: &mut [u8]) {
    let mut at = 0;
    while at + FRAME_HEADER_LEN <= b.len() {
        let len = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let start = at + FRAME_HEADER_LEN;
        let Some(end) = start.checked_add(len).filter(|&e| e <= b.len()) else {
            return;
        };
        let mut h = crc32fast::Hasher::new();
        h.update(&b[at + 8..end]);
        let crc = h.finalize();
        b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut ops: Vec<Op> = super::batch::sample_batches()
        .into_iter()
        .map(|batch| Op::Append(AppendRequest { group: 3, batch }))
        .collect();
    ops.push(Op::Read(ReadRequest {
        group: 3,
        offset: 10,
        max_records: 100,
        max_bytes: 4096,
        consistency: 1,
    }));
    ops.push(Op::Tail(TailRequest {
        group: 3,
        offset: 0,
        max_bytes_in_flight: 1 << 16,
    }));
    ops.push(Op::Truncate(TruncateRequest {
        group: 3,
        before_offset: 42,
    }));
    let mut out: Vec<Vec<u8>> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let mut b = BytesMut::new();
            let req = Request {
                op: Some(op.clone()),
            };
            encode_frame(i as u64 + 1, &req, &LIMITS, &mut b).unwrap();
            b.to_vec()
        })
        .collect();
    // Pipelined: several frames in one read.
    let all: Vec<u8> = out.iter().flatten().copied().collect();
    out.push(all);
    out
}
