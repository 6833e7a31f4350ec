//! A connection's life on the server: what ends it (the client going
//! away with a tail open, idleness), what bounds it (the shard's bytes
//! across connections), tail answers within a frame. In process, one
//! member.

use std::net::TcpStream;
use std::time::Duration;

use super::support::*;

/// A tail on a group where nothing is appended: when the client closes
/// its connection, the server ends the tail and the connection at once,
/// not when (if ever) a record arrives.
#[test]
fn a_tail_on_an_idle_group_ends_with_its_connection() {
    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |_| {});
    let mut s = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    raw_send(&mut s, 1, &tail_req(0, 0));
    assert!(
        eventually(|| srv.connections() == vec![1]),
        "{:?}",
        srv.connections()
    );
    std::thread::sleep(Duration::from_millis(100));
    drop(s);
    assert!(
        eventually(|| srv.connections() == vec![0]),
        "the connection (and its tail) outlived the client: {:?}",
        srv.connections()
    );
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// Limits at the edge the configuration check allows: a frame holds
/// `max_read_bytes` plus one batch plus 1 KiB. Many one-record batches
/// (a 64-byte batch limit) make a read answer's framing, about 7 bytes
/// per batch, outgrow that slack: every answer must still fit a frame,
/// and a tail must hand out every record, in order, none skipped.
#[test]
fn read_and_tail_answers_fit_a_frame_and_a_tail_skips_no_record() {
    use corelog::client::{Client, ClientOptions};
    use corelog::clientpb::Consistency;

    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |f| {
        f.limits.max_batch_bytes = Some(64);
        f.limits.max_read_bytes = Some(16 << 10);
        f.limits.max_frame_bytes = Some((16 << 10) + 64 + 1024);
        f.limits.max_connection_bytes = Some(1 << 20);
    });
    let opts = ClientOptions {
        batch_limits: corelog::log::BatchLimits {
            max_batch_bytes: 64,
            ..corelog::log::BatchLimits::DEFAULT
        },
        ..ClientOptions::default()
    };
    let c = Client::connect(srv.client_addrs(), opts).unwrap();
    const N: u64 = 600;
    let pending: Vec<_> = (0..N)
        .map(|i| {
            let b = c.build_batch(0, 0, &[&[i as u8]]).unwrap();
            c.send_append(0, b)
        })
        .collect();
    for p in pending {
        p.wait().unwrap();
    }
    // A read from 0 answers (within a frame) a prefix of the records.
    let r = c.read(0, 0, 0, Consistency::AnyReplica).unwrap();
    assert!(!r.records.is_empty());
    for (k, (o, _)) in r.records.iter().enumerate() {
        assert_eq!(*o, k as u64);
    }
    // A tail from 0 hands out 0, 1, 2, ... N - 1.
    let mut t = c.tail(0, 0);
    let mut next = 0u64;
    while next < N {
        let got = t.next(Duration::from_secs(5)).unwrap();
        for (o, _) in got {
            assert_eq!(o, next, "the tail skipped records");
            next += 1;
        }
    }
    drop(t);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// A tail whose reader does not take its records: the client buffers a
/// bounded number of answers and stops reading its socket, the server's
/// tail stops with it, and once the reader takes records again every
/// one arrives, in order.
#[test]
fn a_tail_not_taken_buffers_a_bounded_amount_in_the_client() {
    use corelog::client::{Client, ClientOptions};

    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |_| {});
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    let mut t = c.tail(0, 0);
    // Opens the tail (nothing to take yet).
    assert!(t.next(Duration::from_millis(50)).is_err());
    let big = vec![7u8; 256 << 10];
    const N: u64 = 48; // 12 MiB, one batch each
    for _ in 0..N {
        c.append(0, &[&big]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let buffered = t.buffered();
    assert!(
        buffered <= corelog::client::TAIL_BUFFERED_ANSWERS,
        "{buffered} answers buffered in the client"
    );
    let mut next = 0;
    while next < N {
        for (o, r) in t.next(Duration::from_secs(5)).unwrap() {
            assert_eq!((o, r.len()), (next, big.len()));
            next += 1;
        }
    }
    drop(t);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// A connection with nothing in flight that sends nothing for
/// `idle_timeout_ms` is closed; one with a tail open is not idle.
#[test]
fn an_idle_connection_is_closed_a_tail_is_not_idle() {
    use corelog::client::{Client, ClientOptions};

    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |f| f.limits.idle_timeout_ms = Some(300));
    let mut idle = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    assert!(matches!(
        raw_call(&mut idle, 1, &cluster_status_req()).result,
        Some(corelog::clientpb::response::Result::ClusterStatus(_))
    ));
    let mut tailing = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    raw_send(&mut tailing, 1, &tail_req(0, 0));
    let start = std::time::Instant::now();
    assert!(closed_by_server(&mut idle), "an idle connection was kept");
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(eventually(|| srv.stats()[0].idle_closed == 1));
    std::thread::sleep(Duration::from_millis(500));
    // The tail's connection outlived the timeout and still streams.
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    c.append(0, &[b"late"]).unwrap();
    let r = raw_answer(&mut tailing, 1);
    assert!(
        matches!(r.result, Some(corelog::clientpb::response::Result::Read(_))),
        "{r:?}"
    );
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// The shard's bound across connections: one connection that never reads
/// its answers holds the shard's budget (here as large as one
/// connection's) but for less than a read's charge; another connection's
/// read then waits unread until the first drains, and is answered after.
#[test]
fn the_shards_byte_bound_holds_across_connections() {
    use std::io::Read;

    use corelog::clientpb::{Consistency, ReadRequest, Request, request::Op};

    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |f| {
        f.limits.max_batch_bytes = Some(64 << 10);
        f.limits.max_read_bytes = Some(128 << 10);
        f.limits.max_frame_bytes = Some(256 << 10);
        f.limits.max_connection_bytes = Some(1 << 20);
        f.limits.max_shard_bytes = Some(1 << 20);
    });
    let opts = corelog::client::ClientOptions {
        batch_limits: corelog::log::BatchLimits {
            max_batch_bytes: 64 << 10,
            ..corelog::log::BatchLimits::DEFAULT
        },
        ..corelog::client::ClientOptions::default()
    };
    let c = corelog::client::Client::connect(srv.client_addrs(), opts).unwrap();
    let rec = vec![1u8; 60 << 10];
    for _ in 0..3 {
        c.append(0, &[&rec]).unwrap();
    }
    // 400 reads of ~128 KiB answers each (50 MiB), never read back: more
    // than the sockets' buffers hold, so the server's writes block and
    // the connection's budget fills.
    let mut hog = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    let read = Request {
        op: Some(Op::Read(ReadRequest {
            group: 0,
            offset: 0,
            max_records: 0,
            max_bytes: 0,
            consistency: Consistency::AnyReplica as i32,
        })),
    };
    const READS: u64 = 400;
    for id in 1..=READS {
        raw_send(&mut hog, id, &read);
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut other = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    raw_send(&mut other, 1, &read);
    other
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut b = [0u8; 16];
    assert!(
        other.read_exact(&mut b).is_err(),
        "answered while the shard's budget was held by another connection"
    );
    // The hog reads everything: the budget drains, the other is answered.
    let mut got = 0;
    let mut buf = bytes::BytesMut::new();
    let mut chunk = vec![0u8; 1 << 16];
    hog.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while got < READS {
        let lim = corelog::protocol::Limits::DEFAULT;
        while let Some(_f) = corelog::protocol::split_frame(&mut buf, &lim).unwrap() {
            got += 1;
        }
        if got == READS {
            break;
        }
        let n = hog.read(&mut chunk).unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    other.read_exact(&mut b).unwrap();
    drop((hog, other, c));
    // Every connection gone, the shard holds nothing.
    assert!(eventually(|| srv.connections() == vec![0]));
    srv.stop(Duration::from_secs(1)).unwrap();
}
