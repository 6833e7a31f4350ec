//! Tails: records streamed as they commit, across a leader change and a
//! killed member, and cancelled.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use corelog::client::{Client, ClientError, ClientOptions};
use corelog::clientpb::{self, Request, request::Op, response::Result as Answer};
use corelog::protocol::{Limits, encode_frame};

use super::support::*;

#[test]
fn a_tail_streams_records_as_they_commit_across_a_leader_change_and_ends_on_cancel() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let acked = append_n(&c, 0, "old", 3);
    let leader = t.leader(&c, 0);
    let follower = (1..=3).find(|&m| m != leader).unwrap();
    // A client whose tail is served by the follower.
    let fc = Client::connect(
        &[t.clients[(follower - 1) as usize]],
        ClientOptions::default(),
    )
    .unwrap();
    let ids = fc.member_ids();
    let mut tail = fc.tail(0, 1);
    let mut got: Vec<(u64, String)> = Vec::new();
    let take = |tail: &mut corelog::client::Tail<'_>, n: usize, got: &mut Vec<(u64, String)>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < n {
            assert!(Instant::now() < deadline, "tail stalled at {got:?}");
            match tail.next(Duration::from_secs(5)) {
                Ok(recs) => got.extend(
                    recs.into_iter()
                        .map(|(o, v)| (o, String::from_utf8(v.to_vec()).unwrap())),
                ),
                Err(ClientError::Timeout) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    take(&mut tail, 2, &mut got);
    assert_eq!(got, acked[1..].to_vec(), "from the offset asked");
    let mut all = acked.clone();
    all.extend(append_n(&c, 0, "live", 5));
    take(&mut tail, 7, &mut got);
    assert_eq!(got, all[1..].to_vec());
    // The leader dies; the tail (on a survivor) goes on with the new
    // leader's records. Which member serves it: the first the client
    // lists, so kill a leader that is not it, or move leadership off it.
    let server = ids[0];
    let l = t.leader(&c, 0);
    if l == server {
        let other = (1..=3).find(|&m| m != server).unwrap();
        let tr = Request {
            op: Some(Op::TransferLeader(clientpb::TransferLeaderRequest {
                group: 0,
                to_member: other,
            })),
        };
        let mut s = TcpStream::connect(t.clients[(server - 1) as usize]).unwrap();
        raw_call(&mut s, 1, &tr);
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.leader(&c, 0) == server {
            assert!(Instant::now() < deadline, "leadership did not move");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let l = t.leader(&c, 0);
    assert_ne!(l, server);
    t.kill9(l);
    all.extend(append_n(&c, 0, "new", 4));
    assert_ne!(t.leader(&c, 0), l);
    take(&mut tail, 11, &mut got);
    assert_eq!(got, all[1..].to_vec());
    drop(tail);

    // Cancel, on a raw connection: Done, and no answer after it.
    let mut s = TcpStream::connect(t.clients[(server - 1) as usize]).unwrap();
    let mut f = BytesMut::new();
    let tail_req = Request {
        op: Some(Op::Tail(clientpb::TailRequest {
            group: 0,
            offset: all.len() as u64,
            max_bytes_in_flight: 0,
        })),
    };
    encode_frame(10, &tail_req, &Limits::DEFAULT, &mut f).unwrap();
    s.write_all(&f).unwrap();
    c.append(0, &[b"one"]).unwrap();
    let r = raw_answer(&mut s, 10);
    let Some(Answer::Read(rr)) = r.result else {
        panic!("{r:?}")
    };
    assert_eq!(rr.batches.len(), 1);
    assert_eq!(rr.batches[0].base_offset, all.len() as u64);
    let cancel = Request {
        op: Some(Op::Cancel(clientpb::CancelRequest { request_id: 10 })),
    };
    assert!(matches!(
        raw_call(&mut s, 11, &cancel).result,
        Some(Answer::Done(_))
    ));
    c.append(0, &[b"two"]).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("an answer after the cancel: {other:?}"),
    }
}

#[test]
fn a_tail_whose_member_is_killed_resumes_on_another_from_the_next_offset() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let mut all = append_n(&c, 0, "a", 5);
    // The tail is served by the first member the client lists.
    let tc = t.client();
    let server = tc.member_ids()[0];
    let mut tail = tc.tail(0, 0);
    let mut got: Vec<(u64, String)> = Vec::new();
    let take = |tail: &mut corelog::client::Tail<'_>, n: usize, got: &mut Vec<(u64, String)>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < n {
            assert!(Instant::now() < deadline, "tail stalled at {}", got.len());
            match tail.next(Duration::from_secs(5)) {
                Ok(recs) => got.extend(
                    recs.into_iter()
                        .map(|(o, v)| (o, String::from_utf8(v.to_vec()).unwrap())),
                ),
                Err(ClientError::Timeout) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    take(&mut tail, 5, &mut got);
    t.kill9(server);
    all.extend(append_n(&c, 0, "b", 5));
    take(&mut tail, 10, &mut got);
    assert_eq!(got, all, "no record lost or repeated across the move");
    assert_eq!(tail.offset(), 10);
}
