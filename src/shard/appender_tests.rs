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

fn one_entry(index: u64, bytes: usize) -> Message {
    append(vec![Entry {
        term: 1,
        index,
        data: Bytes::from(vec![(index % 250) as u8; bytes]),
        ..Default::default()
    }])
}

/// Issue 7 (found by review, failed before the fix): a WAL at its quota gives room
/// back only by reclaiming dead segments, and the loop's reclaim waits for
/// the flush carrying the records that made them dead (a compaction mark,
/// state moved by `gc_plan`). While a write waits for room
/// (`Waiting::Space`), nothing starts that flush: `pump` starts one only
/// for a written write that needs a sync, `flush_idle` only when the queue
/// is empty, and the stuck write keeps it non-empty. So the compaction
/// that would free the space is never made durable, the dead segment is
/// never deleted, and the write waits for ever unless an operator raises
/// the quota. Now `pump` and `flush_idle` start a flush of what is
/// pending while the head write waits for room. This drives the appender
/// and the WAL as `Loop::turn` does, once per tick: poll, retry, pump,
/// flush_idle, reclaim.
#[test]
fn review7_a_compaction_on_a_full_wal_becomes_durable_and_its_reclaim_frees_the_waiting_write() {
    let d = tempfile::tempdir().unwrap();
    let mut o = wal::Options::new(1, 0);
    o.segment_size = 64 << 10;
    o.max_flush_bytes = 16 << 10;
    let mut raw = Wal::open(d.path(), o).unwrap();
    raw.wait_prepared();
    // The quota of `tests/cluster` `set_quota`: what the files take now
    // (the active segment and its spare): one roll, then no room.
    let quota = raw.disk_bytes();
    raw.set_max_disk_bytes(quota).unwrap();
    let w = Rc::new(RefCell::new(raw));
    let mut a = Appender::new(w.clone());
    let mut due = Vec::new();
    let settle = |a: &mut Appender, due: &mut Vec<(u64, Message)>| {
        for _ in 0..400 {
            a.poll().unwrap();
            a.take_due(due);
            let _ = a.pump().unwrap();
            if !a.busy() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("the appender never settled: {:?}", a.stats);
    };
    // Fill: small entries until the second (last allowed) segment is
    // active and has under 4 KiB left.
    let mut next = 1u64;
    loop {
        a.push(1, one_entry(next, 500));
        next += 1;
        settle(&mut a, &mut due);
        let segs = w.borrow().segment_seqs().len();
        let (_, pos) = w.borrow().write_position();
        if segs >= 2 && (64 << 10) - pos < 4000 {
            break;
        }
        assert!(next < 1000, "never filled");
    }
    assert!(a.no_space().is_none());
    let durable_last = next - 1;
    // An 8 KiB entry needs the next segment: refused, it waits.
    a.push(1, one_entry(next, 8000));
    let _ = a.pump().unwrap();
    assert!(a.no_space().is_some(), "the quota must refuse the roll");
    // The state machine compacts everything durable (the loop's
    // `queue_compactions`), and the tick's `gc_plan` finds the first
    // segment dead.
    let _ = w.borrow_mut().compact(1, durable_last, 1).unwrap();
    let plan = match w.borrow_mut().gc_plan().unwrap() {
        wal::GcPlanned::Plan(p) => p,
        other => panic!("the first segment is dead: {other:?}"),
    };
    // Ticks: what `Loop::turn` does with the appender, and its reclaim.
    let mut reclaimed = false;
    for _ in 0..300 {
        a.poll().unwrap();
        a.take_due(&mut due);
        a.retry_space();
        let _ = a.pump().unwrap();
        a.flush_idle().unwrap();
        if !reclaimed && a.durable() >= plan.ticket {
            let files = w.borrow_mut().gc_detach(&plan);
            assert!(!files.is_empty());
            let free = files.run().unwrap();
            w.borrow_mut().gc_recycled(free);
            reclaimed = true;
        }
        if reclaimed && a.no_space().is_none() && !a.busy() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        a.durable() >= plan.ticket,
        "the flush carrying the compaction mark (flush {}) never started while a write \
         waits for room (durable {}, WAL pending: {}): the dead segment can never go",
        plan.ticket,
        a.durable(),
        w.borrow().has_pending()
    );
    assert!(
        a.no_space().is_none() && w.borrow().last_index(1) == next,
        "the reclaimed segment did not make room for the waiting write"
    );
}
