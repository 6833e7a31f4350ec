//! Exactly-once producers under use the review found unsafe: one
//! `Client` appending to one group from many threads at once, and a
//! producer the group forgot (evicted from its table) that retries, even
//! its first batch. Producer ids are the group's to give. In process, one
//! member, and through real processes, three.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corelog::client::{Client, ClientError, ClientOptions};
use corelog::clientpb::Consistency;
use corelog::clientpb::error::Kind;

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

/// `n` new producer ids of `group`, asked of the member at `addr` (its
/// leader's client port for the group) in pipelined rounds of 256 on one
/// connection; an ask refused in passing (`Busy`, say) is asked again
/// through `c`, which follows redirects and retries.
fn init_many(c: &Client, addr: SocketAddr, group: u64, n: usize) -> Vec<u64> {
    use corelog::client::Connection;
    use corelog::clientpb::{InitProducerRequest, Request, request::Op, response::Result};
    use corelog::protocol::Limits;

    let conn = Connection::open(addr, Duration::from_secs(2), Limits::DEFAULT, None).unwrap();
    let req = Request {
        op: Some(Op::InitProducer(InitProducerRequest { group })),
    };
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let round = (n - ids.len()).min(256);
        let tickets: Vec<_> = (0..round).map(|_| conn.send(&req).unwrap()).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        for t in tickets {
            match t.wait(deadline).map(|r| r.result) {
                Ok(Some(Result::ProducerInit(p))) => ids.push(p.producer_id),
                _ => ids.push(c.init_producer(group).unwrap()),
            }
        }
    }
    ids
}

/// The ids are new: each above `above`, none twice.
fn assert_fresh(ids: &[u64], above: u64) {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "an id given twice");
    assert!(sorted[0] > above, "id {} not above {above}", sorted[0]);
}

fn unknown_producer(r: std::result::Result<corelog::client::Appended, ClientError>) -> bool {
    matches!(r, Err(ClientError::Server(Kind::UnknownProducer(_))))
}

/// A producer the group forgot (4,096 newer producer ids evicted it from
/// the table) retries: its batches, even its first (sequence 0), are
/// refused `UnknownProducer` and not written again; an id the group
/// never gave is refused at sequence 0 too; the client's own producer,
/// forgotten the same way, reports the batch refused and its next append
/// lands once under a new id.
#[test]
fn a_forgotten_producers_retry_is_refused_not_written_twice() {
    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |_| {});
    let addr = srv.client_addrs()[0];
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    let old = c.init_producer(0).unwrap();
    let first = c.build_batch(old, 0, &[b"old-0"]).unwrap();
    let second = c.build_batch(old, 1, &[b"old-1"]).unwrap();
    assert_eq!(
        c.send_append(0, first.clone()).wait().unwrap().base_offset,
        0
    );
    assert_eq!(
        c.send_append(0, second.clone()).wait().unwrap().base_offset,
        1
    );
    // A retry while remembered: the original offsets.
    let again = c.send_append(0, first.clone()).wait().unwrap();
    assert!(again.duplicate && again.base_offset == 0, "{again:?}");
    // 4,096 new ids (the group's table size) push it out.
    assert_fresh(&init_many(&c, addr, 0, 4096), old);
    assert!(unknown_producer(c.send_append(0, first).wait()));
    assert!(unknown_producer(c.send_append(0, second).wait()));
    // An id the group never gave, at sequence 0.
    let made_up = c.build_batch(u64::MAX / 3, 0, &[b"made-up"]).unwrap();
    assert!(unknown_producer(c.send_append(0, made_up).wait()));
    let log = read_all_from(addr, 0, Consistency::AnyReplica);
    let values: Vec<&str> = log.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec!["old-0", "old-1"], "written once, nothing else");
    // The client's own producer, forgotten the same way, starts over.
    let mine = c.append(0, &[b"mine-0"]).unwrap();
    init_many(&c, addr, 0, 4096);
    assert!(unknown_producer(c.append(0, &[b"mine-1"])));
    let next = c.append(0, &[b"mine-1"]).unwrap();
    assert!(next.base_offset == mine.base_offset + 1 && !next.duplicate);
    let log = read_all_from(addr, 0, Consistency::AnyReplica);
    assert_eq!(log.len(), 4, "{log:?}");
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// Real processes, three members: the group gives producer ids; an
/// evicted producer's retry of its first batch is refused, not written
/// twice; a retry across a killed leader is still answered with its
/// original offsets; and the id counter goes on, never giving an id
/// twice, across the leader change and a restart of every member.
#[test]
fn group_given_ids_keep_exactly_once_across_eviction_a_killed_leader_and_a_restart() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let leader = t.leader(&c, 0);
    let at_leader = c.address_of(leader, 0).unwrap();

    // Eviction, then the retry of the first batch.
    let p = c.init_producer(0).unwrap();
    let first = c.build_batch(p, 0, &[b"p-0"]).unwrap();
    let a = c.send_append(0, first.clone()).wait().unwrap();
    assert_eq!((a.base_offset, a.duplicate), (0, false));
    let ids = init_many(&c, at_leader, 0, 4096);
    assert_fresh(&ids, p);
    assert!(unknown_producer(c.send_append(0, first).wait()));

    // A batch committed, its leader killed, the same bytes again.
    let q = c.init_producer(0).unwrap();
    assert_fresh(&[q], *ids.iter().max().unwrap());
    let q0 = c.build_batch(q, 0, &[b"q-0"]).unwrap();
    let a0 = c.send_append(0, q0.clone()).wait().unwrap();
    assert_eq!((a0.base_offset, a0.duplicate), (1, false));
    t.kill9(leader);
    let again = c.send_append(0, q0).wait().unwrap();
    assert_eq!((again.base_offset, again.duplicate), (1, true));
    let q1 = c.build_batch(q, 1, &[b"q-1"]).unwrap();
    assert_eq!(c.send_append(0, q1).wait().unwrap().base_offset, 2);
    let r = c.init_producer(0).unwrap();
    assert!(r > q, "the new leader gave {r}, not above {q}");

    // Every member restarted: the counter is rebuilt, ids go on.
    for id in 1..=3 {
        if t.procs[(id - 1) as usize].is_some() {
            t.kill9(id);
        }
    }
    t.start_all();
    let c = t.client();
    let s = c.init_producer(0).unwrap();
    assert!(s > r, "after the restart {s}, not above {r}");
    let leader = t.leader(&c, 0);
    let log = read_all_from(
        t.clients[(leader - 1) as usize],
        0,
        Consistency::Linearizable,
    );
    let values: Vec<&str> = log.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec!["p-0", "q-0", "q-1"]);
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
