//! The log state's outcomes and errors as protocol answers: what the
//! server sends the proposer of an entry once it is applied, and the typed
//! error for each refusal (docs/protocol.md lists them with what a client
//! does about each).

use crate::clientpb::{self, error::Kind, response::Result as Answer};
use crate::log::{ApplyOutcome, BatchError, EntryError, OffsetOutOfRange, Refusal};

fn error(kind: Kind) -> clientpb::Error {
    clientpb::Error { kind: Some(kind) }
}

/// The answer to the proposer of an applied entry.
pub fn apply_answer(outcome: &ApplyOutcome) -> clientpb::Response {
    let result = match outcome {
        ApplyOutcome::Appended { base_offset, count } => Answer::Append(clientpb::AppendResponse {
            base_offset: *base_offset,
            count: *count,
            duplicate: false,
        }),
        ApplyOutcome::Duplicate { base_offset, count } => {
            Answer::Append(clientpb::AppendResponse {
                base_offset: *base_offset,
                count: *count,
                duplicate: true,
            })
        }
        ApplyOutcome::Refused(r) => Answer::Error(refusal(r)),
        ApplyOutcome::Truncated { earliest_offset } => {
            Answer::Truncate(clientpb::TruncateResponse {
                earliest_offset: *earliest_offset,
            })
        }
        ApplyOutcome::ProducerInit { producer_id } => {
            Answer::ProducerInit(clientpb::ProducerInit {
                producer_id: *producer_id,
            })
        }
        // Not proposed by clients; answered as done if ever waited on.
        ApplyOutcome::Empty | ApplyOutcome::Config => Answer::Done(clientpb::Done {}),
    };
    clientpb::Response {
        result: Some(result),
    }
}

/// A refused entry's error.
pub fn refusal(r: &Refusal) -> clientpb::Error {
    match r {
        Refusal::Invalid(EntryError::Batch(e)) => batch_error(e),
        Refusal::Invalid(e) => error(Kind::InvalidBatch(clientpb::InvalidBatch {
            reason: e.to_string(),
        })),
        Refusal::SequenceGap { expected } => error(Kind::SequenceGap(clientpb::SequenceGap {
            expected: *expected,
        })),
        Refusal::StaleSequence { last_seq } => {
            error(Kind::StaleSequence(clientpb::StaleSequence {
                last_seq: *last_seq,
            }))
        }
        Refusal::UnknownProducer => error(Kind::UnknownProducer(clientpb::UnknownProducer {})),
        Refusal::TruncateBeyondEnd { requested, latest } => {
            error(Kind::TruncateBeyondEnd(clientpb::TruncateBeyondEnd {
                requested: *requested,
                latest: *latest,
            }))
        }
        Refusal::OffsetsExhausted { next_offset, count } => {
            error(Kind::Unavailable(clientpb::Unavailable {
                reason: format!(
                    "the group's offsets are exhausted at {next_offset} ({count} records asked)"
                ),
            }))
        }
        Refusal::ProducerIdsExhausted => error(Kind::Unavailable(clientpb::Unavailable {
            reason: "the group has given every producer id".into(),
        })),
    }
}

/// A batch refused at the door or at apply: a limit is `TooLarge`, any
/// other fault `InvalidBatch` with its reason.
pub fn batch_error(e: &BatchError) -> clientpb::Error {
    match e {
        BatchError::Limit { what, value, limit } => error(Kind::TooLarge(clientpb::TooLarge {
            what: (*what).to_string(),
            value: *value,
            limit: *limit,
        })),
        other => error(Kind::InvalidBatch(clientpb::InvalidBatch {
            reason: other.to_string(),
        })),
    }
}

/// A read outside the readable range.
pub fn offset_out_of_range(e: &OffsetOutOfRange) -> clientpb::Error {
    error(Kind::OffsetOutOfRange(clientpb::OffsetOutOfRange {
        offset: e.offset,
        earliest: e.earliest,
        latest: e.latest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_kind(r: clientpb::Response) -> Kind {
        match r.result {
            Some(Answer::Error(e)) => e.kind.unwrap(),
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn appends_and_duplicates_answer_their_offsets() {
        let a = apply_answer(&ApplyOutcome::Appended {
            base_offset: 10,
            count: 3,
        });
        assert_eq!(
            a.result,
            Some(Answer::Append(clientpb::AppendResponse {
                base_offset: 10,
                count: 3,
                duplicate: false
            }))
        );
        let d = apply_answer(&ApplyOutcome::Duplicate {
            base_offset: 10,
            count: 3,
        });
        assert_eq!(
            d.result,
            Some(Answer::Append(clientpb::AppendResponse {
                base_offset: 10,
                count: 3,
                duplicate: true
            }))
        );
        let t = apply_answer(&ApplyOutcome::Truncated { earliest_offset: 7 });
        assert_eq!(
            t.result,
            Some(Answer::Truncate(clientpb::TruncateResponse {
                earliest_offset: 7
            }))
        );
        let p = apply_answer(&ApplyOutcome::ProducerInit { producer_id: 12 });
        assert_eq!(
            p.result,
            Some(Answer::ProducerInit(clientpb::ProducerInit {
                producer_id: 12
            }))
        );
    }

    #[test]
    fn every_refusal_has_its_typed_error() {
        let r = |x| error_kind(apply_answer(&ApplyOutcome::Refused(x)));
        assert_eq!(
            r(Refusal::SequenceGap { expected: 4 }),
            Kind::SequenceGap(clientpb::SequenceGap { expected: 4 })
        );
        assert_eq!(
            r(Refusal::StaleSequence { last_seq: 2 }),
            Kind::StaleSequence(clientpb::StaleSequence { last_seq: 2 })
        );
        assert_eq!(
            r(Refusal::UnknownProducer),
            Kind::UnknownProducer(clientpb::UnknownProducer {})
        );
        assert_eq!(
            r(Refusal::TruncateBeyondEnd {
                requested: 9,
                latest: 5
            }),
            Kind::TruncateBeyondEnd(clientpb::TruncateBeyondEnd {
                requested: 9,
                latest: 5
            })
        );
        assert!(matches!(
            r(Refusal::OffsetsExhausted {
                next_offset: 1,
                count: 2
            }),
            Kind::Unavailable(_)
        ));
        assert!(matches!(
            r(Refusal::ProducerIdsExhausted),
            Kind::Unavailable(_)
        ));
        assert!(matches!(
            r(Refusal::Invalid(EntryError::UnknownKind { magic: 1 })),
            Kind::InvalidBatch(_)
        ));
        assert!(matches!(
            r(Refusal::Invalid(EntryError::Batch(BatchError::NoRecords))),
            Kind::InvalidBatch(_)
        ));
        assert!(matches!(
            r(Refusal::Invalid(EntryError::Batch(BatchError::Limit {
                what: "batch bytes",
                value: 2,
                limit: 1
            }))),
            Kind::TooLarge(_)
        ));
    }

    #[test]
    fn out_of_range_names_the_readable_range() {
        let e = offset_out_of_range(&OffsetOutOfRange {
            offset: 1,
            earliest: 5,
            latest: 9,
        });
        assert_eq!(
            e.kind,
            Some(Kind::OffsetOutOfRange(clientpb::OffsetOutOfRange {
                offset: 1,
                earliest: 5,
                latest: 9
            }))
        );
    }
}
