//! The client protocol's codec on hostile bytes, and docs/protocol.md's
//! worked examples kept true: each example's hex is generated here from
//! the real encoders and compared with the block the document shows, so a
//! change of layout that forgets the document fails this test (the failure
//! prints the block to paste).

use bytes::{BufMut, Bytes, BytesMut};
use corelog::clientpb::{
    self, AppendRequest, AppendResponse, ReadRequest, Request, Response, error::Kind, request::Op,
    response::Result as Answer,
};
use corelog::log::{BatchBuilder, BatchLimits, Command};
use corelog::protocol::{Frame, Limits, decode_request, encode_frame, split_frame};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Random bytes on a connection: frames are cut or refused, never a
    /// panic, and nothing is reserved beyond the frame limit.
    #[test]
    fn random_bytes_never_panic_the_frame_reader(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8)) {
        let limits = Limits { max_frame_bytes: 256, ..Limits::DEFAULT };
        let mut buf = BytesMut::new();
        'feed: for c in chunks {
            buf.put_slice(&c);
            loop {
                match split_frame(&mut buf, &limits) {
                    Ok(Some(f)) => {
                        let _ = decode_request(&f, &BatchLimits::DEFAULT);
                    }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            prop_assert!(buf.capacity() <= 16 + 256 + 64 * 8);
        }
    }

    /// Any payload in a sound frame: a request or a typed error, never a panic.
    #[test]
    fn any_payload_decodes_or_is_answered(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let f = Frame { request_id: 1, payload: Bytes::from(payload) };
        if let Err(e) = decode_request(&f, &BatchLimits::DEFAULT) {
            prop_assert!(e.kind.is_some());
        }
    }

    /// Mutated append requests (the batch inside included): decoded with a
    /// batch that validates, or refused with a typed error.
    #[test]
    fn mutated_appends_are_checked_at_the_door(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut v = prost::Message::encode_to_vec(&append_request());
        for (at, b) in edits {
            let i = at.index(v.len());
            v[i] = b;
        }
        let f = Frame { request_id: 1, payload: Bytes::from(v) };
        match decode_request(&f, &BatchLimits::DEFAULT) {
            Ok(Op::Append(a)) => {
                prop_assert!(corelog::log::RecordBatch::parse(&a.batch, &BatchLimits::DEFAULT).is_ok());
            }
            Ok(_) => {}
            Err(e) => prop_assert!(e.kind.is_some()),
        }
    }
}

// ------------------------------------------------------------- examples

/// The example batch: producer 42's first two records, "hello" and
/// "world", stamped 2023-11-14T22:13:20Z.
fn example_batch() -> Bytes {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(42, 0, 1_700_000_000_000);
    w.push(b"hello").unwrap();
    w.push(b"world").unwrap();
    w.finish().unwrap()
}

fn append_request() -> Request {
    Request {
        op: Some(Op::Append(AppendRequest {
            group: 7,
            batch: example_batch(),
        })),
    }
}

fn frame(request_id: u64, msg: &impl prost::Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(request_id, msg, &Limits::DEFAULT, &mut out).unwrap();
    out.to_vec()
}

fn error_response(kind: Kind) -> Response {
    Response {
        result: Some(Answer::Error(clientpb::Error { kind: Some(kind) })),
    }
}

/// Every example of docs/protocol.md, by the name its marker carries, as
/// the text its block shows.
fn examples() -> Vec<(&'static str, String)> {
    let shards = [(7u64, 4u32), (7, 16), (1000, 16), (u64::MAX, 3)]
        .iter()
        .map(|&(g, n)| {
            format!(
                "shard_of({g}, {n}) = {}\n",
                corelog::cluster::shard_of(g, n)
            )
        })
        .collect::<String>();
    let mut all = vec![("shard-of", shards)];
    all.extend(bytes_examples().into_iter().map(|(n, b)| (n, hex(&b))));
    all
}

fn bytes_examples() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("batch", example_batch().to_vec()),
        ("append-request", frame(1, &append_request())),
        (
            "append-response",
            frame(
                1,
                &Response {
                    result: Some(Answer::Append(AppendResponse {
                        base_offset: 0,
                        count: 2,
                        duplicate: false,
                    })),
                },
            ),
        ),
        (
            "read-request",
            frame(
                2,
                &Request {
                    op: Some(Op::Read(ReadRequest {
                        group: 7,
                        offset: 100,
                        max_records: 0,
                        max_bytes: 65536,
                        consistency: clientpb::Consistency::AnyReplica as i32,
                    })),
                },
            ),
        ),
        (
            "not-leader",
            frame(
                3,
                &error_response(Kind::NotLeader(clientpb::NotLeader {
                    leader: 2,
                    leader_address: "10.0.0.2:7101".into(),
                })),
            ),
        ),
        (
            "offset-out-of-range",
            frame(
                2,
                &error_response(Kind::OffsetOutOfRange(clientpb::OffsetOutOfRange {
                    offset: 100,
                    earliest: 250,
                    latest: 900,
                })),
            ),
        ),
        (
            "truncate-command",
            Command::Truncate { before_offset: 250 }.encode().to_vec(),
        ),
        (
            "init-producer-request",
            frame(
                4,
                &Request {
                    op: Some(Op::InitProducer(clientpb::InitProducerRequest { group: 7 })),
                },
            ),
        ),
        (
            "producer-init-response",
            frame(
                4,
                &Response {
                    result: Some(Answer::ProducerInit(clientpb::ProducerInit {
                        producer_id: 5,
                    })),
                },
            ),
        ),
        (
            "init-producer-command",
            Command::InitProducer.encode().to_vec(),
        ),
        (
            "unauthorized",
            frame(
                1,
                &error_response(Kind::Unauthorized(clientpb::Unauthorized {
                    reason: "no auth".into(),
                })),
            ),
        ),
    ]
    .into_iter()
    .chain(auth_examples())
    .collect()
}

/// The handshake of docs/protocol.md section 9 with the secret
/// "corelog-example-secret-0123456789" (33 bytes), client nonce 0x11 x 32,
/// server nonce 0x22 x 32, member 2's shard 0 of cluster 77.
fn auth_examples() -> Vec<(&'static str, Vec<u8>)> {
    use corelog::auth::AuthKey;
    use corelog::auth::client_wire::{Challenge, Hello, Verdict, client_proof, server_proof};
    let secret = b"corelog-example-secret-0123456789";
    let key = AuthKey::from_secret(secret).unwrap();
    let hello = Hello { nonce: [0x11; 32] }.encode();
    let ch = Challenge {
        cluster_id: 77,
        member: 2,
        shard: 0,
        nonce: [0x22; 32],
    }
    .encode();
    let pc = client_proof(&key, &hello, &ch);
    let ps = server_proof(&key, &hello, &ch);
    vec![
        ("auth-key", sha256(secret)),
        ("auth-hello", hello.to_vec()),
        ("auth-challenge", ch.to_vec()),
        (
            "auth-proof",
            corelog::auth::client_wire::encode_proof(&pc).to_vec(),
        ),
        ("auth-verdict", Verdict::Accepted(ps).encode().to_vec()),
    ]
}

/// SHA-256 of `b`: the key a secret makes (docs/protocol.md section 9).
fn sha256(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

/// Offset, then 16 bytes per line in hex.
fn hex(b: &[u8]) -> String {
    b.chunks(16)
        .enumerate()
        .map(|(i, c)| {
            let bytes: Vec<String> = c.iter().map(|x| format!("{x:02x}")).collect();
            format!("{:04x}  {}\n", i * 16, bytes.join(" "))
        })
        .collect()
}

/// The contents of the ```text block after `<!-- example: NAME -->`.
fn documented(doc: &str, name: &str) -> Option<String> {
    let marker = format!("<!-- example: {name} -->");
    let after = &doc[doc.find(&marker)? + marker.len()..];
    let start = after.find("```text\n")? + "```text\n".len();
    let end = after[start..].find("```")?;
    Some(after[start..start + end].to_string())
}

#[test]
fn protocol_md_examples_are_what_the_code_encodes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/protocol.md exists");
    let mut wrong = Vec::new();
    for (name, want) in examples() {
        if documented(&doc, name).as_deref() != Some(want.as_str()) {
            wrong.push(format!("<!-- example: {name} -->\n```text\n{want}```\n"));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/protocol.md's examples differ from the encoders; expected:\n\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_auth_example_proofs_follow_the_documented_formula() {
    // Computed as a client written from the spec would: HMAC-SHA256 keyed
    // by SHA-256(secret) over label, a zero byte, hello, challenge.
    use hmac::{Hmac, Mac};
    let ex: std::collections::HashMap<_, _> = auth_examples().into_iter().collect();
    let key = &ex["auth-key"];
    let mac = |label: &[u8]| {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        m.update(label);
        m.update(&[0]);
        m.update(&ex["auth-hello"]);
        m.update(&ex["auth-challenge"]);
        m.finalize().into_bytes().to_vec()
    };
    assert_eq!(ex["auth-proof"][4..], mac(b"corelog-auth v1 client")[..]);
    assert_eq!(ex["auth-verdict"][8..], mac(b"corelog-auth v1 server")[..]);
}

#[test]
fn the_examples_decode_as_documented() {
    let mut buf = BytesMut::from(&frame(1, &append_request())[..]);
    let f = split_frame(&mut buf, &Limits::DEFAULT).unwrap().unwrap();
    assert_eq!(f.request_id, 1);
    let Op::Append(a) = decode_request(&f, &BatchLimits::DEFAULT).unwrap() else {
        panic!("not an append");
    };
    assert_eq!(a.group, 7);
    let b = corelog::log::RecordBatch::parse(&a.batch, &BatchLimits::DEFAULT).unwrap();
    assert_eq!(
        b.records().collect::<Vec<_>>(),
        vec![&b"hello"[..], b"world"]
    );
    assert_eq!(b.header().producer_id, 42);
}
