//! The client port: bad input closes only its connection, the door's
//! typed refusals, truncate and transfer, Busy at the group's limit,
//! large read answers, metrics, a shard whose WAL failed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use corelog::client::{Client, ClientError, ClientOptions};
use corelog::clientpb::{
    self, AppendRequest, Consistency, Request, Response, error::Kind, request::Op,
    response::Result as Answer,
};
use corelog::protocol::{Limits, encode_frame, split_frame};

use super::support::*;

#[test]
fn bad_input_on_the_client_port_closes_only_that_connection() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let addr = t.clients[0];
    let mut good = TcpStream::connect(addr).unwrap();
    assert!(matches!(
        raw_call(&mut good, 1, &cluster_status_req()).result,
        Some(Answer::ClusterStatus(_))
    ));

    // Garbage: a header whose crc does not match.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[3, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3])
        .unwrap();
    assert!(closed_by_server(&mut s), "garbage kept the connection");

    // An oversized length: closed from the header alone.
    let mut s = TcpStream::connect(addr).unwrap();
    let mut h = Vec::new();
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(&[0; 12]);
    s.write_all(&h).unwrap();
    assert!(
        closed_by_server(&mut s),
        "an oversized frame kept the connection"
    );

    // An unknown operation (field 99 of Request) is answered, typed, and
    // the connection goes on.
    let mut s = TcpStream::connect(addr).unwrap();
    let payload = [0x9a, 0x06, 0x00];
    let mut f = Vec::new();
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&7u64.to_le_bytes());
    crc.update(&payload);
    f.extend_from_slice(&crc.finalize().to_le_bytes());
    f.extend_from_slice(&7u64.to_le_bytes());
    f.extend_from_slice(&payload);
    s.write_all(&f).unwrap();
    let r = raw_answer(&mut s, 7);
    assert!(
        matches!(
            r.result,
            Some(Answer::Error(clientpb::Error {
                kind: Some(Kind::UnknownOperation(_))
            }))
        ),
        "{r:?}"
    );
    assert!(matches!(
        raw_call(&mut s, 8, &cluster_status_req()).result,
        Some(Answer::ClusterStatus(_))
    ));

    // The first connection, and the process, are unaffected.
    assert!(matches!(
        raw_call(&mut good, 2, &cluster_status_req()).result,
        Some(Answer::ClusterStatus(_))
    ));
    let c = t.client();
    assert_eq!(c.append(0, &[b"still"]).unwrap().base_offset, 0);
    assert!(t.proc(1).child.try_wait().unwrap().is_none());
}

#[test]
fn the_door_refuses_typed_truncate_moves_the_earliest_offset_and_leadership_moves_on_request() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let leader = t.leader(&c, 0);
    let mut s = TcpStream::connect(t.clients[(leader - 1) as usize]).unwrap();
    let append = |batch: bytes::Bytes| Request {
        op: Some(Op::Append(AppendRequest { group: 0, batch })),
    };

    // Above the server's batch limit (1 MiB): TooLarge, named.
    let big = vec![b'z'; 600 << 10];
    let mut b = corelog::log::BatchBuilder::new(corelog::log::BatchLimits::CEILING);
    let mut w = b.start(0, 0, 0);
    w.push(&big).unwrap();
    w.push(&big).unwrap();
    let too_big = w.finish().unwrap();
    match error_kind(raw_call(&mut s, 1, &append(too_big))) {
        Kind::TooLarge(tl) => assert_eq!((tl.what.as_str(), tl.limit), ("batch bytes", 1 << 20)),
        k => panic!("{k:?}"),
    }
    // A flipped bit: InvalidBatch naming the crc.
    let mut bad = c.build_batch(0, 0, &[b"abc"]).unwrap().to_vec();
    bad[41] ^= 1;
    match error_kind(raw_call(&mut s, 2, &append(bad.into()))) {
        Kind::InvalidBatch(i) => assert!(i.reason.contains("crc"), "{}", i.reason),
        k => panic!("{k:?}"),
    }
    // A sound frame whose payload is not a Request: Malformed.
    let payload = [0x0a, 0xff];
    let mut f = Vec::new();
    f.extend_from_slice(&2u32.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&3u64.to_le_bytes());
    crc.update(&payload);
    f.extend_from_slice(&crc.finalize().to_le_bytes());
    f.extend_from_slice(&3u64.to_le_bytes());
    f.extend_from_slice(&payload);
    s.write_all(&f).unwrap();
    assert!(matches!(
        error_kind(raw_answer(&mut s, 3)),
        Kind::Malformed(_)
    ));
    // Not served yet, and said so.
    let create = Request {
        op: Some(Op::CreateGroup(clientpb::CreateGroupRequest {
            group: 5,
            replication_factor: 3,
        })),
    };
    match error_kind(raw_call(&mut s, 4, &create)) {
        Kind::Unavailable(u) => assert!(u.reason.contains("create"), "{}", u.reason),
        k => panic!("{k:?}"),
    }

    // A group no member has: the client asks each member once, then
    // answers GroupNotFound (not a retry until its timeout).
    let t0 = Instant::now();
    match c.append(99, &[b"x"]) {
        Err(ClientError::Server(Kind::GroupNotFound(g))) => assert_eq!(g.group, 99),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    // Truncate: the earliest offset moves; below it is out of range.
    append_n(&c, 0, "t", 10);
    assert_eq!(c.truncate(0, 4).unwrap(), 4);
    match c.read(0, 2, 0, Consistency::Linearizable) {
        Err(ClientError::Server(Kind::OffsetOutOfRange(o))) => {
            assert_eq!((o.earliest, o.latest), (4, 10));
        }
        other => panic!("{other:?}"),
    }
    let r = c.read(0, 4, 0, Consistency::Linearizable).unwrap();
    assert_eq!(r.records.first().map(|x| x.0), Some(4));
    assert_eq!(r.records.len(), 6);
    match c.truncate(0, 11) {
        Err(ClientError::Server(Kind::TruncateBeyondEnd(e))) => {
            assert_eq!((e.requested, e.latest), (11, 10));
        }
        other => panic!("{other:?}"),
    }

    // Transfer leadership to another member.
    let to = (1..=3).find(|&m| m != leader).unwrap();
    let tr = Request {
        op: Some(Op::TransferLeader(clientpb::TransferLeaderRequest {
            group: 0,
            to_member: to,
        })),
    };
    assert!(matches!(
        raw_call(&mut s, 5, &tr).result,
        Some(Answer::Done(_))
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.leader(&c, 0) != to {
        assert!(Instant::now() < deadline, "leadership did not move to {to}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The client follows; offsets go on.
    assert_eq!(c.append(0, &[b"after"]).unwrap().base_offset, 10);
}

/// In process: a group at its limit of proposals in flight answers Busy
/// (pipelined appends on one connection), and the others are appended.
#[test]
fn appends_beyond_the_groups_proposals_in_flight_are_answered_busy() {
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(2);
    let mut f = FileConfig {
        cluster_id: Some(4),
        member_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        groups: Some(1),
        replication_factor: Some(1),
        cpus: Some("none".into()),
        ..FileConfig::default()
    };
    f.limits.max_inflight_proposals = Some(2);
    f.members.push(MemberEntry {
        id: 1,
        name: "solo".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], p[0])),
        client_addr: SocketAddr::from(([127, 0, 0, 1], p[1])),
        shards: 1,
    });
    let srv = Server::start(f.check().unwrap()).unwrap();
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    c.append(0, &[b"first"]).unwrap(); // elected, serving
    let mut s = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    let mut frames = BytesMut::new();
    let n = 20u64;
    for id in 1..=n {
        let batch = c.build_batch(0, 0, &[b"x"]).unwrap();
        let req = Request {
            op: Some(Op::Append(AppendRequest { group: 0, batch })),
        };
        encode_frame(id, &req, &Limits::DEFAULT, &mut frames).unwrap();
    }
    s.write_all(&frames).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut busy, mut appended) = (0, 0);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    while busy + appended < n {
        if let Some(f) = split_frame(&mut buf, &Limits::DEFAULT).unwrap() {
            let r = <Response as prost::Message>::decode(f.payload).unwrap();
            match r.result {
                Some(Answer::Append(_)) => appended += 1,
                Some(Answer::Error(clientpb::Error {
                    kind: Some(Kind::Busy(_)),
                })) => busy += 1,
                other => panic!("{other:?}"),
            }
            continue;
        }
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "closed");
        buf.extend_from_slice(&chunk[..k]);
    }
    assert!(
        busy > 0 && appended >= 2,
        "busy {busy}, appended {appended}"
    );
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// In process: read answers of a megabyte (many batches, written as
/// pieces around the batches' own buffers, more than a socket buffer)
/// arrive whole and in order, several in flight on one connection.
#[test]
fn large_read_answers_arrive_whole_with_many_in_flight() {
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(2);
    let mut f = FileConfig {
        cluster_id: Some(6),
        member_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        groups: Some(1),
        replication_factor: Some(1),
        cpus: Some("none".into()),
        ..FileConfig::default()
    };
    f.members.push(MemberEntry {
        id: 1,
        name: "solo".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], p[0])),
        client_addr: SocketAddr::from(([127, 0, 0, 1], p[1])),
        shards: 1,
    });
    let srv = Server::start(f.check().unwrap()).unwrap();
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    let record = |i: usize| vec![(i % 251) as u8; 32 << 10];
    let mut want = Vec::new();
    for b in 0..40 {
        let recs: Vec<Vec<u8>> = (0..2).map(|k| record(b * 2 + k)).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        assert_eq!(c.append(0, &refs).unwrap().base_offset, (b * 2) as u64);
        want.extend(recs);
    }
    let mut s = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    let mut frames = BytesMut::new();
    for id in 1..=4u64 {
        let req = Request {
            op: Some(Op::Read(clientpb::ReadRequest {
                group: 0,
                offset: (id - 1) * 10,
                max_records: 0,
                max_bytes: 1 << 20,
                consistency: Consistency::AnyReplica as i32,
            })),
        };
        encode_frame(id, &req, &Limits::DEFAULT, &mut frames).unwrap();
    }
    s.write_all(&frames).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut seen = 0;
    while seen < 4 {
        if let Some(f) = split_frame(&mut buf, &Limits::DEFAULT).unwrap() {
            let r = <Response as prost::Message>::decode(f.payload).unwrap();
            let Some(Answer::Read(rr)) = r.result else {
                panic!("{r:?}")
            };
            let from = (f.request_id - 1) * 10;
            let total: usize = rr.batches.iter().map(|b| b.batch.len()).sum();
            assert!(total > 900 << 10, "{total} bytes answered");
            assert_eq!(rr.batches[0].base_offset, from);
            for b in &rr.batches {
                let batch =
                    corelog::log::RecordBatch::parse(&b.batch, &corelog::log::BatchLimits::CEILING)
                        .unwrap();
                for (k, rec) in batch.records().enumerate() {
                    assert_eq!(&rec[..], &want[b.base_offset as usize + k][..]);
                }
            }
            seen += 1;
            continue;
        }
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "closed");
        buf.extend_from_slice(&chunk[..k]);
    }
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// In process: one member with metrics on; a scrape shows the appends,
/// the answers by kind and the group's offsets; another path is 404.
#[test]
fn each_shard_serves_its_metrics_in_prometheus_text() {
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(3);
    let mut f = FileConfig {
        cluster_id: Some(3),
        member_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        groups: Some(1),
        replication_factor: Some(1),
        cpus: Some("none".into()),
        metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], p[2]))),
        ..FileConfig::default()
    };
    f.members.push(MemberEntry {
        id: 1,
        name: "solo".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], p[0])),
        client_addr: SocketAddr::from(([127, 0, 0, 1], p[1])),
        shards: 1,
    });
    let srv = Server::start(f.check().unwrap()).unwrap();
    assert_eq!(srv.metrics_addrs().len(), 1);
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    c.append(0, &[b"a", b"b", b"c"]).unwrap();
    assert!(c.read(0, 9, 0, Consistency::AnyReplica).is_err());
    let get = |path: &str| {
        let mut s = TcpStream::connect(srv.metrics_addrs()[0]).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let m = get("/metrics");
    assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
    for line in [
        "corelog_appended_records_total{shard=\"0\"} 3",
        "corelog_client_answers_total{shard=\"0\",kind=\"append\"} 1",
        // The client asked the group for its producer id first.
        "corelog_client_answers_total{shard=\"0\",kind=\"producer_init\"} 1",
        "corelog_client_answers_total{shard=\"0\",kind=\"offset_out_of_range\"} 1",
        "corelog_group_leader{shard=\"0\",group=\"0\"} 1",
        "corelog_group_next_offset{shard=\"0\",group=\"0\"} 3",
        "corelog_shard_wal_failed{shard=\"0\"} 0",
        "# TYPE corelog_client_requests_total counter",
        // Errors by kind, apart from the answers.
        "corelog_client_errors_total{shard=\"0\",kind=\"offset_out_of_range\"} 1",
        // One leader elected, once.
        "corelog_group_leader_changes_total{shard=\"0\",group=\"0\"} 1",
        // Histograms: one commit observed per proposal (the producer id's
        // and the append's), every one within the +Inf bucket.
        "# TYPE corelog_shard_commit_seconds histogram",
        "corelog_shard_commit_seconds_count{shard=\"0\"} 2",
        "corelog_shard_commit_seconds_bucket{shard=\"0\",le=\"+Inf\"} 2",
        "# TYPE corelog_shard_fsync_seconds histogram",
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
    // Every flush of the WAL is one fsync observation; buckets are
    // cumulative and end at the count.
    let value = |prefix: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{m}"))
            .trim()
            .parse()
            .unwrap()
    };
    let flushes = value("corelog_shard_wal_flushes_total{shard=\"0\"}");
    let fsyncs = value("corelog_shard_fsync_seconds_count{shard=\"0\"}");
    assert!(fsyncs >= 1 && fsyncs <= flushes, "{fsyncs} of {flushes}");
    let buckets: Vec<u64> = m
        .lines()
        .filter(|l| l.starts_with("corelog_shard_fsync_seconds_bucket{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(*buckets.last().unwrap(), fsyncs);
    assert!(m.contains("corelog_shard_fsync_seconds_sum{shard=\"0\"} "));
    assert!(get("/other").starts_with("HTTP/1.1 404"));
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// In process: a member with two shards whose first shard's WAL fails
/// (an injected EIO) answers that shard's groups `Unavailable` (storage
/// failed), reports the shard once, and keeps serving the other shard.
#[test]
fn a_shard_whose_wal_failed_answers_unavailable_while_the_other_shard_serves() {
    use corelog::cluster::shard_of;
    use corelog::wal::Fault;

    let _g = serial();
    let (_dir, mut srv) = solo_server(2, 8, |_| {});
    let on = |k: u32| (0..8).find(|&g| shard_of(g, 2) == k).unwrap();
    let (bad, ok) = (on(0), on(1));
    let c = Client::connect(&srv.client_addrs()[..1], ClientOptions::default()).unwrap();
    assert_eq!(c.append(bad, &[b"a"]).unwrap().base_offset, 0);
    assert_eq!(c.append(ok, &[b"a"]).unwrap().base_offset, 0);
    assert!(srv.new_failures().is_empty());
    // A tail of the failing shard's group, waiting for records.
    let mut t = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    let tail = Request {
        op: Some(Op::Tail(clientpb::TailRequest {
            group: bad,
            offset: 1,
            max_bytes_in_flight: 0,
        })),
    };
    let mut f = BytesMut::new();
    encode_frame(7, &tail, &Limits::DEFAULT, &mut f).unwrap();
    t.write_all(&f).unwrap();

    srv.runtime().shards()[0]
        .call(|s| async move {
            s.wal_cell().borrow_mut().inject_fault(Fault {
                land_bytes: 0,
                errno: libc::EIO,
                scatter: None,
            });
        })
        .unwrap();
    let mut s = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    let batch = c.build_batch(0, 0, &[b"lost"]).unwrap();
    let r = raw_call(
        &mut s,
        1,
        &Request {
            op: Some(Op::Append(AppendRequest { group: bad, batch })),
        },
    );
    match r.result {
        Some(Answer::Error(clientpb::Error {
            kind: Some(Kind::Unavailable(u)),
        })) => assert!(u.reason.contains("storage failed"), "{}", u.reason),
        other => panic!("{other:?}"),
    }
    // Later requests too, on the same connection (it stays open).
    let batch = c.build_batch(0, 0, &[b"later"]).unwrap();
    let r = raw_call(
        &mut s,
        2,
        &Request {
            op: Some(Op::Append(AppendRequest { group: bad, batch })),
        },
    );
    assert!(matches!(r.result, Some(Answer::Error(_))), "{r:?}");
    // Reads from this replica and tails end too: what it applied may be
    // ahead of what is durable, so it serves no read of any kind.
    let unavailable = |r: Response| match error_kind(r) {
        Kind::Unavailable(u) => assert!(u.reason.contains("storage failed"), "{}", u.reason),
        other => panic!("{other:?}"),
    };
    unavailable(raw_answer(&mut t, 7));
    let read = |consistency: Consistency| Request {
        op: Some(Op::Read(clientpb::ReadRequest {
            group: bad,
            offset: 0,
            max_records: 0,
            max_bytes: 0,
            consistency: consistency as i32,
        })),
    };
    unavailable(raw_call(&mut s, 3, &read(Consistency::AnyReplica)));
    unavailable(raw_call(&mut s, 4, &read(Consistency::Linearizable)));
    unavailable(raw_call(&mut s, 5, &tail));
    let failures = srv.new_failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, 0);
    assert!(srv.new_failures().is_empty(), "reported once");
    // The other shard serves on.
    assert_eq!(c.append(ok, &[b"b"]).unwrap().base_offset, 1);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// In process: a shard holding `max_connections` closes the next one at
/// once; the open ones are served, and a slot freed is taken again.
#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |f| f.limits.max_connections = Some(2));
    let addr = srv.client_addrs()[0];
    let mut a = TcpStream::connect(addr).unwrap();
    let mut b = TcpStream::connect(addr).unwrap();
    // Both served (so both were accepted before the third arrives).
    for (s, id) in [(&mut a, 1), (&mut b, 2)] {
        assert!(matches!(
            raw_call(s, id, &cluster_status_req()).result,
            Some(Answer::ClusterStatus(_))
        ));
    }
    let mut c = TcpStream::connect(addr).unwrap();
    assert!(closed_by_server(&mut c), "a third connection was kept");
    assert!(matches!(
        raw_call(&mut a, 3, &cluster_status_req()).result,
        Some(Answer::ClusterStatus(_))
    ));
    drop(b);
    // The freed slot is taken again (the close is noticed shortly).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut d = TcpStream::connect(addr).unwrap();
        d.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut f = BytesMut::new();
        encode_frame(4, &cluster_status_req(), &Limits::DEFAULT, &mut f).unwrap();
        if d.write_all(&f).is_ok() {
            let mut h = [0u8; 16];
            if d.read_exact(&mut h).is_ok() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the freed slot was not reused");
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// In process, three members: when the WAL of a group's leader fails, its
/// shard answers `Unavailable` (never `NotLeader`) and leaves the group's
/// network, so the others elect a new leader. The client must give up the
/// leader it remembered and find the new one: appends go on within their
/// timeout.
#[test]
fn a_client_leaves_a_leader_whose_wal_failed_for_the_new_leader() {
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};
    use corelog::wal::Fault;

    let _g = serial();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports = free_ports(6);
    let members: Vec<MemberEntry> = (0..3)
        .map(|i| MemberEntry {
            id: i as u64 + 1,
            name: format!("m{}", i + 1),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], ports[i])),
            client_addr: SocketAddr::from(([127, 0, 0, 1], ports[3 + i])),
            shards: 1,
        })
        .collect();
    let servers: Vec<Server> = (0..3)
        .map(|i| {
            let mut f = FileConfig {
                cluster_id: Some(11),
                member_id: Some(i as u64 + 1),
                data_dir: Some(dirs[i].path().to_path_buf()),
                groups: Some(1),
                replication_factor: Some(3),
                cpus: Some("none".into()),
                ..FileConfig::default()
            };
            f.members = members.clone();
            f.runtime.tick_ms = Some(5);
            f.runtime.rebalance_leaders = Some(false);
            Server::start(f.check().unwrap()).unwrap()
        })
        .collect();
    let addrs: Vec<SocketAddr> = members.iter().map(|m| m.client_addr).collect();
    let opts = ClientOptions {
        timeout: Duration::from_secs(15),
        ..ClientOptions::default()
    };
    let c = Client::connect(&addrs, opts).unwrap();
    assert_eq!(c.append(0, &[b"a"]).unwrap().base_offset, 0);
    let leader = c.group_status(0).unwrap().leader;
    assert!((1..=3).contains(&leader), "leader {leader}");
    // The client now remembers that leader; fail its WAL.
    servers[leader as usize - 1].runtime().shards()[0]
        .call(|s| async move {
            s.wal_cell().borrow_mut().inject_fault(Fault {
                land_bytes: 0,
                errno: libc::EIO,
                scatter: None,
            });
        })
        .unwrap();
    let mut next = 1;
    for v in [&b"b"[..], b"c", b"d"] {
        match c.append(0, &[v]) {
            // "b" may have been committed by the others before the failure
            // was seen, or lost with it: either way, later appends land.
            Ok(r) => {
                assert!(r.base_offset >= next, "{} < {next}", r.base_offset);
                next = r.base_offset + 1;
            }
            Err(e) => panic!("append {:?} after the leader's WAL failed: {e:?}", v),
        }
    }
    let now = c.group_status(0).unwrap().leader;
    assert_ne!(now, leader, "a new leader serves the group");
    for s in servers {
        let _ = s.stop(Duration::from_secs(1));
    }
}
