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

/// One small entry with a response held for its durability.
fn small_append(index: u64) -> Message {
    let mut m = append(vec![Entry {
        term: 1,
        index,
        data: Bytes::from_static(&[5u8; 128]),
        ..Default::default()
    }]);
    m.responses = vec![Message {
        r#type: MessageType::MsgAppResp as i32,
        to: 2,
        index,
        ..Default::default()
    }];
    m
}

/// A small flush the loop allows inline is left by `pump` (nothing
/// started on the ring, nothing durable yet), then made durable on this
/// thread by `flush_inline`: its response is due at once, no poll needed.
#[test]
fn a_small_flush_allowed_inline_is_left_by_pump_and_made_durable_by_flush_inline() {
    let d = tempfile::tempdir().unwrap();
    let w = wal(d.path());
    let mut a = Appender::new(w.clone());
    a.push(9, small_append(1));
    a.allow_inline(4096);
    let before = w.borrow().durable_flush();
    assert_eq!(a.pump().unwrap(), Waiting::No);
    assert!(
        a.inline_due(),
        "a small flush allowed inline was not left for it"
    );
    assert!(!a.flushing(), "the flush went to the ring");
    assert_eq!(w.borrow().durable_flush(), before);
    assert!(a.flush_inline().unwrap());
    assert!(!a.inline_due());
    assert_eq!(w.borrow().durable_flush(), before + 1);
    assert_eq!(a.durable(), before + 1);
    let mut due = Vec::new();
    a.take_due(&mut due);
    assert_eq!(
        due.len(),
        1,
        "the response of the write made durable inline"
    );
    assert_eq!(due[0].1.index, 1);
    assert_eq!((a.stats.flushes, a.stats.inline_flushes), (1, 1));
    assert!(!a.busy());
}

/// Without the loop's leave, a flush past the size allowed, or with a
/// leader's entries that followers could commit without it: the ring.
#[test]
fn a_flush_not_allowed_too_large_or_carrying_a_racing_leader_write_goes_to_the_ring() {
    for case in ["not allowed", "too large", "leader races"] {
        let d = tempfile::tempdir().unwrap();
        let w = wal(d.path());
        let mut a = Appender::new(w.clone());
        a.push_gated(9, small_append(1), None, case == "leader races");
        match case {
            "not allowed" => {}
            "too large" => a.allow_inline(64),
            _ => a.allow_inline(4096),
        }
        assert_eq!(a.pump().unwrap(), Waiting::No, "{case}");
        assert!(!a.inline_due(), "{case}: left for an inline flush");
        assert!(a.flushing(), "{case}: no flush started on the ring");
        assert!(!a.flush_inline().unwrap(), "{case}");
        for _ in 0..400 {
            if !a.flushing() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            a.poll().unwrap();
        }
        assert!(!a.flushing(), "{case}: the ring flush never completed");
        assert_eq!((a.stats.flushes, a.stats.inline_flushes), (1, 0), "{case}");
    }
}

/// The leave lasts one pump: the next pump without it starts the ring.
#[test]
fn the_inline_leave_lasts_one_pump() {
    let d = tempfile::tempdir().unwrap();
    let w = wal(d.path());
    let mut a = Appender::new(w.clone());
    a.push(9, small_append(1));
    a.allow_inline(4096);
    a.pump().unwrap();
    assert!(a.inline_due());
    // The loop did not run it (say, it was stopping); the next turn's
    // pump, not allowed inline, sends the records to the ring.
    a.pump().unwrap();
    assert!(!a.inline_due());
    assert!(a.flushing());
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
