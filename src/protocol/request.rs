//! Requests out of frames, with the checks the server's door makes before
//! anything is proposed: a payload that is not a `Request`, an operation
//! this build does not know, an append whose batch is invalid or above the
//! server's limits are answered with a typed error under the frame's
//! request id, and the connection goes on. Read bounds are brought within
//! the server's limits.
//!
//! An append's batch stays a `Bytes` slice of the receive buffer: prost
//! slices `bytes` fields when it decodes from `Bytes`, and the batch is
//! validated in place, so the bytes proposed are the bytes received.

use crate::clientpb::{self, ReadRequest, Request, error::Kind, request::Op};
use crate::log::{BatchLimits, RecordBatch};

use super::answer::batch_error;
use super::{Frame, Limits};

fn error(kind: Kind) -> clientpb::Error {
    clientpb::Error { kind: Some(kind) }
}

/// The operation a frame asks for, checked; or the error to answer it with.
pub fn decode_request(frame: &Frame, batch_limits: &BatchLimits) -> Result<Op, clientpb::Error> {
    let req = <Request as prost::Message>::decode(frame.payload.clone()).map_err(|e| {
        error(Kind::Malformed(clientpb::Malformed {
            reason: e.to_string(),
        }))
    })?;
    let op = req
        .op
        .ok_or_else(|| error(Kind::UnknownOperation(clientpb::UnknownOperation {})))?;
    if let Op::Append(a) = &op {
        RecordBatch::parse(&a.batch, batch_limits).map_err(|e| batch_error(&e))?;
    }
    Ok(op)
}

/// How much one read answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBounds {
    pub max_records: u32,
    pub max_bytes: u32,
}

/// A read's bounds within the server's: 0 (unset) or more than the limit
/// is the limit.
pub fn read_bounds(req: &ReadRequest, limits: &Limits) -> ReadBounds {
    let within = |asked: u32, limit: u32| if asked == 0 { limit } else { asked.min(limit) };
    ReadBounds {
        max_records: within(req.max_records, limits.max_read_records),
        max_bytes: within(req.max_bytes, limits.max_read_bytes),
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::clientpb::AppendRequest;
    use crate::log::BatchBuilder;
    use crate::protocol::{encode_frame, split_frame};

    fn framed(req: &Request) -> Frame {
        let mut buf = BytesMut::new();
        encode_frame(9, req, &Limits::DEFAULT, &mut buf).unwrap();
        split_frame(&mut buf, &Limits::DEFAULT).unwrap().unwrap()
    }

    fn batch(records: &[&[u8]]) -> Bytes {
        let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
        let mut w = b.start(0, 0, 0);
        for r in records {
            w.push(r).unwrap();
        }
        w.finish().unwrap()
    }

    fn kind(e: clientpb::Error) -> Kind {
        e.kind.unwrap()
    }

    #[test]
    fn an_appended_batch_is_a_slice_of_the_receive_buffer() {
        let data = batch(&[b"hello", b"world"]);
        let f = framed(&Request {
            op: Some(Op::Append(AppendRequest {
                group: 4,
                batch: data.clone(),
            })),
        });
        let Ok(Op::Append(a)) = decode_request(&f, &BatchLimits::DEFAULT) else {
            panic!("not an append");
        };
        assert_eq!(a.group, 4);
        assert_eq!(a.batch, data);
        let payload = f.payload.as_ptr() as usize..f.payload.as_ptr() as usize + f.payload.len();
        assert!(payload.contains(&(a.batch.as_ptr() as usize)));
    }

    #[test]
    fn a_payload_that_is_not_a_request_is_malformed() {
        let f = Frame {
            request_id: 1,
            payload: Bytes::from_static(&[0x0a, 0xff]),
        };
        assert!(matches!(
            kind(decode_request(&f, &BatchLimits::DEFAULT).unwrap_err()),
            Kind::Malformed(_)
        ));
    }

    #[test]
    fn an_operation_this_build_does_not_know_is_named() {
        // Field 99 of Request: a newer client's operation.
        let f = Frame {
            request_id: 1,
            payload: Bytes::from_static(&[0x9a, 0x06, 0x00]),
        };
        assert_eq!(
            kind(decode_request(&f, &BatchLimits::DEFAULT).unwrap_err()),
            Kind::UnknownOperation(clientpb::UnknownOperation {})
        );
    }

    #[test]
    fn an_invalid_or_oversized_batch_is_refused_at_the_door() {
        let mut bad = batch(&[b"x"]).to_vec();
        bad[40] ^= 1;
        let f = framed(&Request {
            op: Some(Op::Append(AppendRequest {
                group: 1,
                batch: Bytes::from(bad),
            })),
        });
        let Kind::InvalidBatch(e) = kind(decode_request(&f, &BatchLimits::DEFAULT).unwrap_err())
        else {
            panic!("not InvalidBatch");
        };
        assert!(e.reason.contains("crc"), "{}", e.reason);

        let small = BatchLimits {
            max_records: 1,
            ..BatchLimits::DEFAULT
        };
        let f = framed(&Request {
            op: Some(Op::Append(AppendRequest {
                group: 1,
                batch: batch(&[b"a", b"b"]),
            })),
        });
        assert_eq!(
            kind(decode_request(&f, &small).unwrap_err()),
            Kind::TooLarge(clientpb::TooLarge {
                what: "records per batch".into(),
                value: 2,
                limit: 1
            })
        );
    }

    #[test]
    fn read_bounds_are_the_servers_when_unset_or_above() {
        let limits = Limits::DEFAULT;
        let r = |max_records, max_bytes| ReadRequest {
            max_records,
            max_bytes,
            ..ReadRequest::default()
        };
        assert_eq!(
            read_bounds(&r(0, 0), &limits),
            ReadBounds {
                max_records: 10_000,
                max_bytes: 1 << 20
            }
        );
        assert_eq!(
            read_bounds(&r(5, 100), &limits),
            ReadBounds {
                max_records: 5,
                max_bytes: 100
            }
        );
        assert_eq!(
            read_bounds(&r(u32::MAX, u32::MAX), &limits),
            read_bounds(&r(0, 0), &limits)
        );
    }
}
