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
