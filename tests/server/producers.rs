//! Exactly-once producers under use the review found unsafe: one
//! `Client` appending to one group from many threads at once, and a
//! producer the group forgot (evicted from its table) that retries.
//! In process, one member.

use std::sync::Arc;
use std::time::Duration;

use corelog::client::{Client, ClientOptions};
use corelog::clientpb::Consistency;

use super::support::*;

/// Eight threads share one client and append to one group at once. Its
/// producer numbers their batches in one order; whatever order they
/// reach the group in, every append succeeds, at offsets of its own, and
/// the log holds each value exactly once.
#[test]
fn concurrent_appends_through_one_client_all_land_exactly_once() {
    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |_| {});
    let c = Arc::new(Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap());
    const THREADS: usize = 8;
    const EACH: usize = 40;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..EACH {
                    let v = format!("t{t}-{i}");
                    match c.append(0, &[v.as_bytes()]) {
                        Ok(a) => got.push((a.base_offset, v)),
                        Err(e) => panic!("append {v}: {e}"),
                    }
                }
                got
            })
        })
        .collect();
    let mut acked: Vec<(u64, String)> = Vec::new();
    for w in workers {
        acked.extend(w.join().expect("a worker failed"));
    }
    acked.sort();
    let log = read_all_from(srv.client_addrs()[0], 0, Consistency::AnyReplica);
    assert_eq!(log.len(), THREADS * EACH, "values written twice or lost");
    assert_eq!(acked, log, "an acknowledged offset does not hold its value");
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// A producer the group forgot (4,096 newer producers evicted it from the
/// table) retries: a batch past its first is refused `UnknownProducer`
/// and not written again; the client's next append starts over under a
/// new producer id and lands once.
#[test]
fn a_forgotten_producers_retry_is_refused_not_written_twice() {
    use corelog::clientpb::error::Kind;

    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |_| {});
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    const OLD: u64 = 0x5eed;
    let first = c.build_batch(OLD, 0, &[b"old-0"]).unwrap();
    let second = c.build_batch(OLD, 1, &[b"old-1"]).unwrap();
    assert_eq!(
        c.send_append(0, first.clone()).wait().unwrap().base_offset,
        0
    );
    assert_eq!(
        c.send_append(0, second.clone()).wait().unwrap().base_offset,
        1
    );
    // A retry while remembered: the original offsets.
    let again = c.send_append(0, second.clone()).wait().unwrap();
    assert!(again.duplicate && again.base_offset == 1, "{again:?}");
    // 4,096 newer producers (the group's table size) push it out.
    let pending: Vec<_> = (0..4096u64)
        .map(|k| {
            let b = c.build_batch(1_000_000 + k, 0, &[b"new"]).unwrap();
            c.send_append(0, b)
        })
        .collect();
    for p in pending {
        p.wait().unwrap();
    }
    match c.send_append(0, second).wait() {
        Err(corelog::client::ClientError::Server(Kind::UnknownProducer(_))) => {}
        other => panic!("a forgotten producer's retry: {other:?}"),
    }
    let log = read_all_from(srv.client_addrs()[0], 0, Consistency::AnyReplica);
    assert_eq!(log.len(), 2 + 4096);
    assert_eq!(log.iter().filter(|(_, v)| v == "old-1").count(), 1);
    // The client's own producer, forgotten the same way, starts over.
    let mine = c.append(0, &[b"mine-0"]).unwrap();
    let more: Vec<_> = (0..4096u64)
        .map(|k| {
            let b = c.build_batch(2_000_000 + k, 0, &[b"newer"]).unwrap();
            c.send_append(0, b)
        })
        .collect();
    for p in more {
        p.wait().unwrap();
    }
    assert!(matches!(
        c.append(0, &[b"mine-1"]),
        Err(corelog::client::ClientError::Server(Kind::UnknownProducer(
            _
        )))
    ));
    let next = c.append(0, &[b"mine-1"]).unwrap();
    assert!(next.base_offset > mine.base_offset && !next.duplicate);
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// A member that answers `ClusterStatus` (naming itself) and nothing else:
/// every append to it hangs until the client gives up.
fn silent_member() -> std::net::SocketAddr {
    use std::io::Read;

    use bytes::BytesMut;
    use corelog::clientpb::{self, Response, request::Op, response::Result as Answer};
    use corelog::protocol::{Limits, encode_frame, split_frame};

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = BytesMut::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Ok(Some(f)) = split_frame(&mut buf, &Limits::DEFAULT) {
                        let req: clientpb::Request = prost::Message::decode(f.payload).unwrap();
                        if let Some(Op::ClusterStatus(_)) = req.op {
                            let resp = Response {
                                result: Some(Answer::ClusterStatus(clientpb::ClusterStatus {
                                    cluster_id: 1,
                                    members: vec![clientpb::Member {
                                        id: 1,
                                        name: "silent".into(),
                                        client_address: addr.to_string(),
                                        shards: 1,
                                    }],
                                    group_count: 1,
                                    unsafe_no_fsync: false,
                                })),
                            };
                            let mut out = BytesMut::new();
                            encode_frame(f.request_id, &resp, &Limits::DEFAULT, &mut out).unwrap();
                            use std::io::Write;
                            if s.write_all(&out).is_err() {
                                return;
                            }
                        }
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// Appends to one group take turns on its producer, but the turn does not
/// stretch a call past its timeout: an append waiting behind another that
/// hangs gives up at its own deadline.
#[test]
fn an_append_waiting_for_its_turn_still_ends_at_its_timeout() {
    let addr = silent_member();
    let opts = ClientOptions {
        timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    };
    let c = Arc::new(Client::connect(&[addr], opts).unwrap());
    let c2 = c.clone();
    let first = std::thread::spawn(move || c2.append(0, &[b"first"]));
    std::thread::sleep(Duration::from_millis(100));
    let start = std::time::Instant::now();
    let second = c.append(0, &[b"second"]);
    let took = start.elapsed();
    assert!(second.is_err(), "{second:?}");
    assert!(first.join().unwrap().is_err());
    // Its own 2 s, not the first's remaining 1.9 s plus its own 2 s.
    assert!(took < Duration::from_millis(3000), "waited {took:?}");
}
