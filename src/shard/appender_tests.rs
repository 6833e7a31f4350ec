//! The appender never waits on the disk on the shard's thread: what it
//! queues into the WAL never makes the WAL flush early (a flush the
//! caller would wait for), even for an entry too large for any flush
//! budget, which is queued alone once nothing else is pending.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use super::appender::{Appender, Waiting};
use crate::raftpb::{Entry, Message, MessageType};
use crate::wal::{self, Wal};

fn wal(dir: &std::path::Path) -> Rc<RefCell<Wal>> {
    let mut o = wal::Options::new(1, 0);
    o.segment_size = 64 << 10;
    o.max_flush_bytes = 4096;
    let mut w = Wal::open(dir, o).unwrap();
    w.wait_prepared();
    Rc::new(RefCell::new(w))
}

fn append(entries: Vec<Entry>) -> Message {
    Message {
        r#type: MessageType::MsgStorageAppend as i32,
        entries,
        ..Default::default()
    }
}

/// Three entries of 4,000 bytes under a 4 KiB flush budget: each fits a
/// record of its own, none fits `can_queue`'s bound. Queued all at once,
/// the WAL would flush (and wait for) the first before it took the
/// second; queued one at a time, each goes in a flush the appender
/// starts without waiting and reaps when the disk says so.
#[test]
fn entries_larger_than_the_flush_budget_never_make_the_wal_flush_behind_the_appender() {
    let d = tempfile::tempdir().unwrap();
    let w = wal(d.path());
    let mut a = Appender::new(w.clone());
    let es: Vec<Entry> = (1..=3)
        .map(|index| Entry {
            term: 1,
            index,
            data: Bytes::from(vec![7u8; 4000]),
            ..Default::default()
        })
        .collect();
    a.push(9, append(es));
    let before = w.borrow().durable_flush();
    let waiting = a.pump().unwrap();
    assert_eq!(
        w.borrow().durable_flush(),
        before,
        "the WAL completed a flush inside pump: it waited on the disk"
    );
    assert_eq!(waiting, Waiting::Flush);
    // The disk completes each flush; the appender queues the next entry.
    for _ in 0..100 {
        if w.borrow().last_index(9) == 3 && !a.busy() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        a.poll().unwrap();
        let d0 = w.borrow().durable_flush();
        let _ = a.pump().unwrap();
        assert_eq!(w.borrow().durable_flush(), d0, "a flush inside pump");
    }
    assert_eq!(w.borrow().last_index(9), 3);
    assert!(a.stats.flushes >= 3, "{:?}", a.stats);
}

/// A write's responses (a follower's MsgAppResp, a vote) vouch that its
/// records are on disk: they are handed out only once the flush carrying
/// them is durable, never when it merely started.
#[test]
fn a_writes_responses_wait_until_its_flush_is_durable() {
    let d = tempfile::tempdir().unwrap();
    let w = wal(d.path());
    let mut a = Appender::new(w.clone());
    let mut m = append(vec![Entry {
        term: 1,
        index: 1,
        data: Bytes::from_static(b"x"),
        ..Default::default()
    }]);
    m.term = 1;
    m.responses = vec![ack(1)];
    a.push(9, m);
    a.pump().unwrap();
    assert!(a.flushing(), "the entry needs a flush");
    let mut due = Vec::new();
    a.take_due(&mut due);
    assert!(
        due.is_empty(),
        "a response left before its flush was reaped: {due:?}"
    );
    let released = reap_until_due(&mut a, &mut due);
    assert!(
        released,
        "the response never came once the flush was durable"
    );
    assert_eq!(due.len(), 1);
    assert!(w.borrow().durable_flush() >= 1);
}

/// A hard state that changes only the vote (same term) must be durable
/// before the vote response goes: a vote granted, forgotten by a crash,
/// could be granted again to another candidate of the same term.
#[test]
fn a_vote_alone_is_flushed_before_its_response_goes() {
    let d = tempfile::tempdir().unwrap();
    let w = wal(d.path());
    let mut a = Appender::new(w.clone());
    // Term 2 with no vote, made durable first.
    let mut m = append(Vec::new());
    m.term = 2;
    a.push(9, m);
    a.pump().unwrap();
    let mut due = Vec::new();
    reap_until_due(&mut a, &mut due);
    assert!(!a.flushing());
    let flushes = a.stats.flushes;
    // Then a vote in the same term, with its response.
    let mut m = append(Vec::new());
    m.term = 2;
    m.vote = 3;
    m.responses = vec![ack(2)];
    a.push(9, m);
    a.pump().unwrap();
    due.clear();
    a.take_due(&mut due);
    assert!(
        due.is_empty(),
        "the vote's response left before the vote was durable: {due:?}"
    );
    assert!(a.flushing(), "a vote change needs its own flush");
    assert!(reap_until_due(&mut a, &mut due));
    assert_eq!(a.stats.flushes, flushes + 1);
    assert_eq!(w.borrow().hard_state(9).vote, 3);
}

fn ack(n: u64) -> Message {
    Message {
        r#type: MessageType::MsgAppResp as i32,
        to: 2,
        from: 1,
        index: n,
        ..Default::default()
    }
}

/// Reaps flushes (waiting for the disk here, as the loop would for its
/// completion) until some response is due; whether one came.
fn reap_until_due(a: &mut Appender, due: &mut Vec<(u64, Message)>) -> bool {
    for _ in 0..200 {
        a.poll().unwrap();
        a.take_due(due);
        if !due.is_empty() || !a.busy() {
            return !due.is_empty();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}
