//! Log compaction and catch-up by snapshot between real processes: three
//! `corelog server` members compacting at every chance
//! (`--compact-threshold-entries 1`), a follower killed with SIGKILL while
//! the others truncate and compact past everything it holds, then
//! restarted: it must catch up by snapshot (its metrics say so), serve
//! reads from its new earliest offset, refuse older offsets with the
//! right range, and, once it leads, answer an exactly-once retry of a
//! batch from before the snapshot with the batch's original offsets.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::client::{Appended, Client};
use corelog::clientpb::{self, Consistency, Request, error::Kind, request::Op};

use super::support::*;

const GROUP: u64 = 0;

fn wait_for(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A group metric of member `k + 1` (one shard: shard 0).
fn group_metric(metrics: &[SocketAddr], k: usize, name: &str) -> u64 {
    let text = scrape(metrics[k]);
    metric(&text, name, &format!("shard=\"0\",group=\"{GROUP}\"")).unwrap_or_else(|| {
        panic!("member {}: no {name} in\n{text}", k + 1);
    })
}

/// Appends `producer`'s batch of one record `value` at sequence `seq`;
/// the batch's bytes (for a retry) and its offset.
fn produce(c: &Client, producer: u64, seq: u64, value: &str) -> (Bytes, u64) {
    let b = c.build_batch(producer, seq, &[value.as_bytes()]).unwrap();
    let a = c.send_append(GROUP, b.clone()).wait().unwrap();
    assert_eq!((a.count, a.duplicate), (1, false), "{value}");
    (b, a.base_offset)
}

/// Waits until member `k + 1`'s any-replica read from `from` is `want`.
fn wait_replica(t: &Three, k: usize, from: u64, want: &[(u64, String)]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = read_from(t.clients[k], GROUP, from, Consistency::AnyReplica);
        if got == want {
            return;
        }
        assert!(
            got.len() < want.len() && want.starts_with(&got),
            "member {} diverged: {got:?}",
            k + 1
        );
        assert!(
            Instant::now() < deadline,
            "member {} did not catch up: {} of {} records",
            k + 1,
            got.len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_follower_killed_while_the_others_compact_catches_up_by_snapshot_and_keeps_exactly_once() {
    let _g = serial();
    let mut t = Three::new(1);
    let metrics = t.with_metrics(&["--compact-threshold-entries", "1"]);
    t.start_all();
    let c = t.client();

    // Offsets 0..18: plain appends and three of the producer's batches.
    let mut log = append_n(&c, GROUP, "a", 10);
    let mut batches = Vec::new();
    // An id the group gives (the client's own appends hold another).
    let producer = c.init_producer(GROUP).unwrap();
    for seq in 0..3 {
        let v = format!("p{seq}");
        let (b, o) = produce(&c, producer, seq, &v);
        log.push((o, v));
        batches.push((b, o));
    }
    log.extend(append_n(&c, GROUP, "b", 5));
    assert_eq!(
        log.iter().map(|x| x.0).collect::<Vec<_>>(),
        (0..18).collect::<Vec<_>>()
    );
    for k in 0..3 {
        wait_replica(&t, k, 0, &log);
    }

    // A first truncate: every replica compacts (a snapshot file, a
    // compaction in its WAL).
    assert_eq!(c.truncate(GROUP, 5).unwrap(), 5);
    for k in 0..3 {
        wait_for(20, "the first compaction", || {
            group_metric(&metrics, k, "corelog_group_snapshots_built_total") >= 1
        });
    }

    // A follower dies; the others go on, truncate past everything it
    // holds, and compact again.
    let leader = t.leader(&c, GROUP);
    let f = (1..=3).find(|&m| m != leader).unwrap();
    let fk = (f - 1) as usize;
    t.kill9(f);
    log.extend(append_n(&c, GROUP, "c", 10));
    let (b3, o3) = produce(&c, producer, 3, "p3");
    log.push((o3, "p3".into()));
    batches.push((b3, o3));
    log.extend(append_n(&c, GROUP, "d", 3));
    assert_eq!(log.last().unwrap().0, 31);
    let earliest = 29;
    assert_eq!(c.truncate(GROUP, earliest).unwrap(), earliest);
    for k in (0..3).filter(|&k| k != fk) {
        wait_for(20, "the second compaction", || {
            group_metric(&metrics, k, "corelog_group_snapshots_built_total") >= 2
        });
        assert_eq!(
            group_metric(&metrics, k, "corelog_group_earliest_offset"),
            earliest
        );
    }
    let kept: Vec<(u64, String)> = log.iter().filter(|x| x.0 >= earliest).cloned().collect();

    // Back: it catches up by snapshot, then serves from its new earliest
    // offset.
    t.start(f);
    wait_replica(&t, fk, earliest, &kept);
    assert_eq!(
        group_metric(&metrics, fk, "corelog_group_snapshots_installed_total"),
        1,
        "member {f} caught up without a snapshot"
    );
    assert_eq!(
        group_metric(&metrics, fk, "corelog_group_earliest_offset"),
        earliest
    );
    // Older offsets are out of range there, with its range named.
    let mut s = TcpStream::connect(t.clients[fk]).unwrap();
    let read = |offset| Request {
        op: Some(Op::Read(clientpb::ReadRequest {
            group: GROUP,
            offset,
            max_records: 0,
            max_bytes: 0,
            consistency: Consistency::AnyReplica as i32,
        })),
    };
    for (id, offset) in [(1, 0), (2, 11), (3, earliest - 1)] {
        match error_kind(raw_call(&mut s, id, &read(offset))) {
            Kind::OffsetOutOfRange(o) => {
                assert_eq!((o.offset, o.earliest, o.latest), (offset, earliest, 32))
            }
            k => panic!("read at {offset} on member {f}: {k:?}"),
        }
    }

    // It leads: its exactly-once table came with the snapshot. Retries of
    // batches from before the snapshot (their records truncated) get
    // their original offsets and are not written again.
    c.transfer_leader(GROUP, f).unwrap();
    wait_for(20, "the restarted member to lead", || {
        c.group_status(GROUP).is_ok_and(|s| s.leader == f)
    });
    for (b, o) in [&batches[1], &batches[3]] {
        let again = c.send_append(GROUP, b.clone()).wait().unwrap();
        assert_eq!(
            again,
            Appended {
                base_offset: *o,
                count: 1,
                duplicate: true
            }
        );
    }
    // The producer goes on at its next sequence, at the next offset.
    let (_, o4) = produce(&c, producer, 4, "p4");
    assert_eq!(o4, 32, "a retry was written again");
    let mut kept = kept;
    kept.push((o4, "p4".into()));
    kept.extend(append_n(&c, GROUP, "e", 2));

    // Every replica holds the same log from the earliest offset on.
    for k in 0..3 {
        wait_replica(&t, k, earliest, &kept);
    }
    assert_eq!(
        read_from(t.clients[fk], GROUP, earliest, Consistency::Linearizable),
        kept
    );
}
