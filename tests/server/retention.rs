//! Size and age retention (`[retention]`, `--retention-bytes`,
//! `--retention-ms`): the leader truncates each group past a limit, every
//! replica applies the same truncate, and compaction then frees the WAL's
//! space below it, so a log written far beyond the limit holds about the
//! limit, on every member.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use corelog::client::{Client, ClientError, ClientOptions};
use corelog::clientpb::{
    self, Consistency, GroupStatusRequest, Request, error::Kind, request::Op,
    response::Result as Answer,
};

use super::support::*;

/// Member `addr`'s own view of group 0.
fn status_of(addr: SocketAddr) -> clientpb::GroupStatus {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = Request {
        op: Some(Op::GroupStatus(GroupStatusRequest { group: 0 })),
    };
    match raw_call(&mut s, 1, &req).result {
        Some(Answer::GroupStatus(g)) => g,
        other => panic!("{addr}: {other:?}"),
    }
}

#[test]
fn size_retention_truncates_every_replica_and_frees_the_wal_segments_below() {
    let _g = serial();
    let mut t = Three::new(1);
    let metrics = t.with_metrics(&[
        "--retention-bytes",
        "8192",
        "--compact-threshold-entries",
        "1",
        "--wal-segment-bytes",
        "65536",
    ]);
    t.start_all();
    let c = t.client();
    // 400 batches of one 1 KiB record: 400 KiB through 64 KiB segments.
    let record = vec![7u8; 1024];
    let mut last = 0;
    for _ in 0..400 {
        last = c.append(0, &[&record]).unwrap().base_offset;
    }
    assert_eq!(last, 399);
    // Every replica: the truncate applied (at most 8 KiB of batches kept,
    // so at most 8 records of these), and the segments below it gone.
    for (k, &addr) in t.clients.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = status_of(addr);
            let segments = metric(
                &scrape(metrics[k]),
                "corelog_shard_wal_segments",
                "shard=\"0\"",
            )
            .unwrap();
            if s.earliest_offset >= 392 && s.latest_offset == 400 && segments <= 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member {}: earliest {} latest {} with {segments} segments",
                k + 1,
                s.earliest_offset,
                s.latest_offset
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // What is kept reads back from the earliest offset; before it is
        // out of range, named.
        let s = status_of(addr);
        let kept = read_from(addr, 0, s.earliest_offset, Consistency::AnyReplica);
        assert_eq!(kept.len() as u64, 400 - s.earliest_offset);
        assert_eq!(kept.last().unwrap().0, 399);
        let mut sock = TcpStream::connect(addr).unwrap();
        let read0 = Request {
            op: Some(Op::Read(clientpb::ReadRequest {
                group: 0,
                offset: 0,
                max_records: 0,
                max_bytes: 0,
                consistency: Consistency::AnyReplica as i32,
            })),
        };
        match error_kind(raw_call(&mut sock, 2, &read0)) {
            Kind::OffsetOutOfRange(o) => assert_eq!(o.earliest, s.earliest_offset),
            k => panic!("{k:?}"),
        }
    }
    let leader = t.leader(&c, 0);
    let text = scrape(metrics[(leader - 1) as usize]);
    assert!(
        metric(&text, "corelog_retention_truncates_total", "shard=\"0\"").unwrap() >= 1,
        "{text}"
    );
}

#[test]
fn age_retention_drops_batches_older_than_the_limit_and_offsets_go_on() {
    let (_dir, srv) = solo_server(1, 1, |f| {
        f.retention.max_age_ms = Some(300);
        f.retention.check_interval_ms = Some(20);
    });
    let c = Client::connect(&srv.client_addrs()[..1], ClientOptions::default()).unwrap();
    for k in 0..5u64 {
        assert_eq!(c.append(0, &[b"old"]).unwrap().base_offset, k);
    }
    // Nothing younger than 300 ms is dropped: right after the appends
    // the five are there (a slow machine may already be past it).
    let t0 = Instant::now();
    let early = c.group_status(0).unwrap();
    if t0.elapsed() < Duration::from_millis(100) {
        assert_eq!(early.earliest_offset, 0);
    }
    // Past the limit every batch is old: the log is empty from offset 5.
    assert!(
        eventually(|| c.group_status(0).unwrap().earliest_offset == 5),
        "{:?}",
        c.group_status(0)
    );
    match c.read(0, 0, 10, Consistency::Linearizable) {
        Err(ClientError::Server(Kind::OffsetOutOfRange(o))) => assert_eq!(o.earliest, 5),
        other => panic!("{other:?}"),
    }
    // Offsets go on from where they were.
    assert_eq!(c.append(0, &[b"new"]).unwrap().base_offset, 5);
    let stats = srv.stats();
    assert!(stats[0].retention_truncates >= 1, "{stats:?}");
}
