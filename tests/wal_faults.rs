//! The WAL under the failures a code review found it mishandled (issue 11):
//! a flush lost while the next segment was prepared, stale records of a
//! recycled file completing a torn flush, a flush torn across segments,
//! interrupted waits, poisoned directories, two opens of one directory, a
//! failed roll, and the smaller ones. Each test failed before its fix.
//!
//! The tests of a flush's failures (torn, EIO, ENOSPC, signals) and the
//! recycled-file test run over both flush paths (`Via`): the io_uring
//! submission (`flush`) and the inline one (`flush_inline`).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

mod common;

use bytes::Bytes;
use common::crash::crash_image;
use corelog::raftpb::{Entry, HardState};
use corelog::wal::{Options, Wal};

fn opts() -> Options {
    let mut o = Options::new(7, 3);
    o.segment_size = 64 << 10;
    o.max_flush_bytes = 16 << 10;
    o
}

fn ro() -> Options {
    let mut o = opts();
    o.read_only = true;
    o
}

fn ent(index: u64, term: u64, len: usize) -> Entry {
    Entry {
        term,
        index,
        r#type: 0,
        data: Bytes::from(
            (0..len)
                .map(|k| (k as u8) ^ (index as u8) ^ (term as u8) | 1)
                .collect::<Vec<u8>>(),
        ),
    }
}

fn all(w: &Wal, g: u64) -> Vec<Entry> {
    let (lo, hi) = (w.first_index(g), w.last_index(g) + 1);
    w.entries(g, lo, hi, u64::MAX).expect("read entries")
}

fn zero_range(path: &Path, from: u64, to: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&vec![0u8; (to - from) as usize], from)
        .unwrap();
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// The two flush paths.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `flush`: one io_uring submission, reaped.
    Ring,
    /// `flush_inline`: pwrite + fdatasync on the calling thread.
    Inline,
}

const VIAS: [Via; 2] = [Via::Ring, Via::Inline];

fn flush_via(w: &mut Wal, via: Via) -> corelog::wal::Result<u64> {
    match via {
        Via::Ring => w.flush(),
        Via::Inline => w.flush_inline(),
    }
}

/// Appends one 1000-byte entry to group 1 and flushes it.
fn push_one(w: &mut Wal) {
    push_one_via(w, Via::Ring);
}

fn push_one_via(w: &mut Wal, via: Via) {
    let i = w.last_index(1) + 1;
    let _ = w.append_entries(1, &[ent(i, 1, 1000)]).unwrap();
    flush_via(w, via).unwrap();
}

/// Defect 1. A flush T is in flight when a roll prepares the next segment
/// (whose header base then counts T as issued); T never reaches the disk.
/// Everything acknowledged after the recovery must survive the next one.
#[test]
fn flushes_after_a_lost_in_flight_flush_are_never_taken_for_stale_bytes() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    while w.write_position().1 < 60_000 {
        push_one(&mut w);
    }
    let durable = w.last_index(1);
    let (seg1, lost_from) = w.write_position();
    let _ = w.append_entries(1, &[ent(durable + 1, 1, 1000)]).unwrap();
    let lost_to = w.write_position().1;
    let t = w.start_flush().unwrap().expect("flush T started");
    // While T is in flight: appends that roll into the next segment, which
    // prepares the one after it.
    let mut i = durable + 2;
    while w.write_position().0 == seg1 {
        let _ = w.append_entries(1, &[ent(i, 1, 1000)]).unwrap();
        i += 1;
    }
    w.wait_prepared();
    assert!(
        files(d.path(), ".wal").len() >= 3,
        "a segment prepared ahead"
    );
    drop(w);
    // The power cut: T's bytes never reached the disk (nor anything after).
    zero_range(&seg1, lost_from, lost_to + 64);
    let _ = t;

    let mut w = Wal::open(d.path(), opts()).unwrap();
    assert_eq!(w.last_index(1), durable, "T was lost");
    let hs = HardState {
        term: 2,
        vote: 1,
        commit: durable + 3,
    };
    let _ = w
        .append_entries(1, &[ent(durable + 1, 2, 900), ent(durable + 2, 2, 900)])
        .unwrap();
    let _ = w.set_hard_state(1, &hs).unwrap();
    w.flush().unwrap();
    let _ = w.append_entries(1, &[ent(durable + 3, 2, 900)]).unwrap();
    w.flush().unwrap();
    let want = all(&w, 1);
    drop(w);

    for pass in 0..2 {
        let w = Wal::open(d.path(), opts()).unwrap_or_else(|e| panic!("pass {pass}: {e}"));
        assert_eq!(
            w.last_index(1),
            durable + 3,
            "pass {pass}: acknowledged entries lost"
        );
        assert_eq!(all(&w, 1), want, "pass {pass}");
        assert_eq!(
            w.hard_state(1),
            hs,
            "pass {pass}: acknowledged hard state lost"
        );
        assert_eq!(w.recovery_report().torn_bytes, 0, "pass {pass}");
    }
}

/// One flush of exactly `FLUSH` bytes, laid out so that a record boundary
/// falls on the 512-byte sector boundary 448 bytes in (flushes start at
/// 64 + k * FLUSH): `Entries(group 1) | HardState(group 1)` in the first
/// sector part, `Entries(group 2)` after. Returns nothing; the caller
/// flushes.
const FLUSH: u64 = 1024;

/// Returns the hard state written, and the segment and offset of the flush.
fn aligned_flush(w: &mut Wal, term: u64, vote: u64, via: Via) -> (HardState, PathBuf, u64) {
    use corelog::wal::format::{
        BATCH_RECORD_SIZE, ENTRIES_FIXED, ENTRY_FIXED, HARD_STATE_PAYLOAD, RECORD_HEADER_SIZE,
    };
    let rec = RECORD_HEADER_SIZE + ENTRIES_FIXED + ENTRY_FIXED;
    let hs_len = RECORD_HEADER_SIZE + HARD_STATE_PAYLOAD;
    let a = 448 - BATCH_RECORD_SIZE - rec;
    let c = FLUSH as usize - 448 - hs_len - rec;
    let i1 = w.last_index(1) + 1;
    let i2 = w.last_index(2) + 1;
    let _ = w.append_entries(1, &[ent(i1, term, a)]).unwrap();
    let (path, at) = w.write_position();
    let before = at - (a + rec + BATCH_RECORD_SIZE) as u64;
    let hs = HardState {
        term,
        vote,
        commit: i1,
    };
    let _ = w.set_hard_state(1, &hs).unwrap();
    let _ = w.append_entries(2, &[ent(i2, term, c)]).unwrap();
    let (_, after) = w.write_position();
    assert_eq!(after - before, FLUSH, "flush layout");
    assert_eq!(w.write_position().0, path, "one segment");
    flush_via(w, via).unwrap();
    (hs, path, before)
}

/// Makes the next `aligned_flush` start at `64 + k * FLUSH` of a segment:
/// if what is left of the active segment (short of its state reserve)
/// cannot take a whole one, a filler flush takes all of it (so the next
/// flush rolls).
fn align(w: &mut Wal, seg_size: u64, via: Via) {
    use corelog::wal::format::{BATCH_RECORD_SIZE, ENTRIES_FIXED, ENTRY_FIXED, RECORD_HEADER_SIZE};
    let end_marker = RECORD_HEADER_SIZE as u64;
    let min = (BATCH_RECORD_SIZE + RECORD_HEADER_SIZE + ENTRIES_FIXED + ENTRY_FIXED) as u64;
    let (_, pos) = w.write_position();
    // Entries end short of the segment's state reserve.
    let end = seg_size - corelog::wal::state_reserve(seg_size);
    let left = end - pos - end_marker;
    if left >= FLUSH || left < min {
        return;
    }
    let i = w.last_index(3) + 1;
    let _ = w
        .append_entries(3, &[ent(i, 1, (left - min) as usize)])
        .unwrap();
    flush_via(w, via).unwrap();
    assert_eq!(w.write_position().1, end - end_marker, "filler");
}

/// Defect 2. A recycled file keeps its previous life's records. A flush
/// whose first sector lands while the rest keeps the old bytes (a power
/// cut before its fdatasync returned) must be dropped: the old records
/// there must never pass for the new flush's, or the hard state goes back
/// in time and the log is rewritten with entries of another life.
#[test]
fn stale_records_of_a_recycled_file_never_complete_a_torn_flush() {
    for via in VIAS {
        stale_records_never_complete_a_torn_flush(via);
    }
}

fn stale_records_never_complete_a_torn_flush(via: Via) {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.relocate_bytes = 0;
    let size = o.segment_size;
    let mut w = Wal::open(d.path(), o.clone()).unwrap();
    // Life 1 of the file: segment 1, hard states of term 1.
    let seg1 = w.write_position().0;
    while w.write_position().0 == seg1 {
        align(&mut w, size, via);
        let _ = aligned_flush(&mut w, 1, 1, via);
    }
    let life1 = std::fs::read(&seg1).unwrap();
    for g in [1, 2, 3] {
        let last = w.last_index(g);
        let _ = w.compact(g, last, w.term(g, last).unwrap()).unwrap();
    }
    assert!(w.gc().unwrap() >= 1);
    assert_eq!(
        files(d.path(), ".wal.free").len(),
        1,
        "segment 1 kept for reuse"
    );
    // On until the recycled file is the active segment, a few flushes in.
    let mut n_in_recycled = 0;
    let mut last_durable = None;
    let mut torn_at = 0;
    let seg4 = d.path().join("00000000000000000004.wal");
    while n_in_recycled < 6 {
        align(&mut w, size, via);
        let term = 2 + n_in_recycled;
        let last_one = n_in_recycled == 5;
        let (hs, path, at) = aligned_flush(&mut w, if last_one { 90 } else { term }, 1, via);
        if path == seg4 {
            assert!(
                files(d.path(), ".wal.free").is_empty(),
                "segment 4 is the recycled file"
            );
            assert_eq!((at - 64) % FLUSH, 0);
            n_in_recycled += 1;
            if last_one {
                torn_at = at;
            } else {
                last_durable = Some((hs, w.last_index(1), w.last_index(2)));
            }
        }
    }
    let (hs, last1, last2) = last_durable.unwrap();
    assert!(torn_at > 64 && (torn_at - 64) % FLUSH == 0);
    assert_eq!(w.write_position(), (seg4.clone(), torn_at + FLUSH));
    drop(w);
    // The power cut: of the last flush only its first sector landed; the
    // file still holds life 1's bytes after it.
    let from = (torn_at + 448) as usize;
    let to = (torn_at + FLUSH) as usize;
    let f = OpenOptions::new().write(true).open(&seg4).unwrap();
    f.write_all_at(&life1[from..to], from as u64).unwrap();
    drop(f);

    let w = Wal::open(d.path(), ro()).unwrap();
    assert_eq!(w.hard_state(1), hs, "hard state of the last durable flush");
    assert_eq!(
        (w.last_index(1), w.last_index(2)),
        (last1, last2),
        "logs of the last durable flush"
    );
    assert!(w.recovery_report().torn_bytes > 0);
}

/// Defect 5. A flush spanning two segments whose second part is torn must
/// come back whole or not at all: its first part alone (synced first)
/// would hold a hard state committing entries that are in the second.
#[test]
fn a_flush_torn_across_segments_comes_back_whole_or_not_at_all() {
    use corelog::wal::Fault;
    for (via, quarter) in VIAS.into_iter().flat_map(|v| (0..4).map(move |q| (v, q))) {
        let d = tempfile::tempdir().unwrap();
        let mut w = Wal::open(d.path(), opts()).unwrap();
        while w.write_position().1 < 60_000 {
            push_one_via(&mut w, via);
        }
        let durable = w.last_index(1);
        let hs0 = w.hard_state(1);
        let hs = HardState {
            term: 3,
            vote: 1,
            commit: durable + 10,
        };
        // The hard state first: a driver may queue it before the entries
        // it commits when both go into the same flush.
        let _ = w.set_hard_state(1, &hs).unwrap();
        let es: Vec<Entry> = (durable + 1..=durable + 10)
            .map(|i| ent(i, 3, 1000))
            .collect();
        let _ = w.append_entries(1, &es).unwrap();
        let parts = w.pending_parts();
        assert_eq!(parts.len(), 2, "the flush spans two segments: {parts:?}");
        w.inject_fault(Fault {
            land_bytes: parts[0] + parts[1] * quarter / 4,
            errno: libc::EIO,
            scatter: None,
        });
        assert!(flush_via(&mut w, via).is_err(), "{via:?}");
        drop(w);
        let img = crash_image(d.path());
        let w = Wal::open(img.path(), opts())
            .unwrap_or_else(|e| panic!("{via:?} quarter {quarter}: {e}"));
        assert_eq!(
            (w.last_index(1), w.hard_state(1)),
            (durable, hs0),
            "{via:?} quarter {quarter}: a part of the torn flush came back"
        );
        drop(w);
        // The recovered WAL takes appends, and the next recovery keeps them.
        let mut w = Wal::open(img.path(), opts()).unwrap();
        let _ = w.append_entries(1, &[ent(durable + 1, 4, 10)]).unwrap();
        flush_via(&mut w, via).unwrap();
        drop(w);
        let w = Wal::open(img.path(), opts())
            .unwrap_or_else(|e| panic!("{via:?} quarter {quarter}: {e}"));
        assert_eq!(w.last_index(1), durable + 1, "{via:?} quarter {quarter}");
        assert_eq!(w.hard_state(1), hs0, "{via:?} quarter {quarter}");
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// Defect 3. A signal delivered while the shard waits for a flush makes
/// `io_uring_enter` return EINTR with the flush still in the kernel: the
/// wait must be retried (and the buffers kept), never turned into a failed
/// flush. The inline path's pwrite and fdatasync retry EINTR too (a
/// regular file's writes are rarely interrupted; the unit tests of
/// uring_inline.rs force it).
#[test]
fn signals_during_a_flush_wait_are_retried_not_fatal() {
    // SAFETY: installs a handler that does nothing, without SA_RESTART, so
    // that an interrupted wait returns EINTR; no other test uses SIGUSR1.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    for via in VIAS {
        signals_during_flushes(via);
    }
}

fn signals_during_flushes(via: Via) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.segment_size = 16 << 20;
    o.max_flush_bytes = 4 << 20;
    let mut w = Wal::open(d.path(), o.clone()).unwrap();
    w.wait_prepared();
    // SAFETY: the id of this thread, to signal it from another.
    let me = unsafe { libc::pthread_self() };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let pinger = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: the target thread outlives this one (joined below).
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
                sent.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        })
    };
    let mut result = Ok(());
    for round in 0..12u64 {
        let es: Vec<Entry> = (0..30)
            .map(|k| ent(round * 30 + k + 1, 1, 64 << 10))
            .collect();
        let _ = w.append_entries(1, &es).unwrap();
        if let Err(e) = flush_via(&mut w, via) {
            result = Err(format!("{via:?} round {round}: {e}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    pinger.join().unwrap();
    assert!(
        sent.load(Ordering::Relaxed) > 10,
        "{via:?}: signals were sent"
    );
    result.unwrap();
    let want = all(&w, 1);
    drop(w);
    let w = Wal::open(d.path(), o).unwrap();
    assert_eq!(all(&w, 1), want);
}

/// Defect 4. After a failed flush the page cache may hold pages that never
/// reached the disk, and a new descriptor's fsync does not report the old
/// error: a WAL that failed stays failed, and its directory is not
/// reopened by the process that saw the failure (a restarted process
/// recovers it). Here, a crash image of the directory stands for the disk
/// a restarted process finds.
#[test]
fn a_poisoned_wal_stays_poisoned_and_its_directory_is_not_reopened_in_process() {
    for via in VIAS {
        poisoned_stays_poisoned(via);
    }
}

fn poisoned_stays_poisoned(via: Via) {
    use corelog::wal::{Error, Fault};
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    push_one_via(&mut w, via);
    let t = w.append_entries(1, &[ent(2, 1, 100)]).unwrap();
    let mut waiter = Box::pin(w.durable(t));
    w.inject_fault(Fault {
        land_bytes: 0,
        errno: libc::EIO,
        scatter: None,
    });
    assert!(flush_via(&mut w, via).is_err());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        matches!(
            waiter.as_mut().poll(&mut cx),
            Poll::Ready(Err(Error::Poisoned { .. }))
        ),
        "{via:?}: the waiter of a failed flush is told"
    );
    for v in VIAS {
        assert!(matches!(flush_via(&mut w, v), Err(Error::Poisoned { .. })));
    }
    assert!(matches!(
        w.append_entries(1, &[ent(2, 1, 100)]),
        Err(Error::Poisoned { .. })
    ));
    drop(w);
    for read_only in [false, true] {
        let mut o = opts();
        o.read_only = read_only;
        match Wal::open(d.path(), o) {
            Err(Error::PoisonedDirectory { dir, cause }) => {
                assert_eq!(dir, d.path().canonicalize().unwrap());
                assert!(cause.contains("Input/output error"), "{cause}");
            }
            other => panic!(
                "read_only {read_only}: expected PoisonedDirectory, got {:?}",
                other.map(|_| "an open WAL")
            ),
        }
    }
    let img = crash_image(d.path());
    let w = Wal::open(img.path(), opts()).unwrap();
    assert_eq!(w.last_index(1), 1);
}

/// A full disk under a flush (`ENOSPC` from its write, after part of it
/// landed) fails that flush, poisons the WAL, and loses nothing
/// acknowledged before it.
#[test]
fn enospc_from_a_flush_poisons_and_keeps_the_acknowledged_state() {
    use corelog::wal::{Error, Fault};
    for via in VIAS {
        let d = tempfile::tempdir().unwrap();
        let mut w = Wal::open(d.path(), opts()).unwrap();
        for _ in 0..5 {
            push_one_via(&mut w, via);
        }
        let acked = all(&w, 1);
        let _ = w.append_entries(1, &[ent(6, 1, 3000)]).unwrap();
        let part = w.pending_parts()[0];
        w.inject_fault(Fault {
            land_bytes: part / 2,
            errno: libc::ENOSPC,
            scatter: None,
        });
        match flush_via(&mut w, via) {
            Err(Error::Io { op, source, .. }) => {
                assert_eq!(op, "write", "{via:?}");
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{via:?}");
            }
            other => panic!("{via:?}: expected ENOSPC, got {other:?}"),
        }
        assert!(w.poisoned().is_some());
        assert!(matches!(
            flush_via(&mut w, via),
            Err(Error::Poisoned { .. })
        ));
        drop(w);
        let img = crash_image(d.path());
        let w = Wal::open(img.path(), opts()).unwrap();
        assert_eq!(all(&w, 1), acked, "{via:?}");
    }
}

/// Defect 6. One `Wal` per directory: a second open, read-write or
/// read-only, while one is open is refused with an error naming the
/// holder; once it is dropped the directory opens again.
#[test]
fn a_second_open_of_a_directory_is_refused_naming_the_holder() {
    use corelog::wal::Error;
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    push_one(&mut w);
    for o in [opts(), ro()] {
        match Wal::open(d.path(), o.clone()) {
            Err(Error::Locked { dir, holder }) => {
                assert_eq!(dir, d.path());
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!(
                "read_only {}: expected Locked, got {:?}",
                o.read_only,
                other.map(|_| "an open WAL")
            ),
        }
    }
    drop(w);
    // Read-only inspections may share the directory, never with a writer.
    let r1 = Wal::open(d.path(), ro()).unwrap();
    let r2 = Wal::open(d.path(), ro()).unwrap();
    assert!(matches!(
        Wal::open(d.path(), opts()),
        Err(Error::Locked { holder: None, .. })
    ));
    drop((r1, r2));
    let w = Wal::open(d.path(), opts()).unwrap();
    assert_eq!(w.last_index(1), 1);
}

/// Defect 7. A roll that cannot create the next segment (a full disk; here
/// a directory squatting on its temporary name) in the middle of a long
/// append: the append must not stand half applied on a WAL that goes on.
/// It poisons the WAL; a restart recovers the last durable state.
#[test]
fn a_roll_that_fails_mid_append_poisons_the_wal() {
    use corelog::wal::Error;
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    // Segment 2 is being prepared already; segment 3's creation will fail.
    std::fs::create_dir(d.path().join("00000000000000000003.wal.tmp")).unwrap();
    let seg2 = d.path().join("00000000000000000002.wal");
    while w.write_position().0 != seg2 || w.write_position().1 < 60_000 {
        push_one(&mut w);
    }
    let durable = w.last_index(1);
    let es: Vec<Entry> = (durable + 1..durable + 11)
        .map(|i| ent(i, 2, 1000))
        .collect();
    match w.append_entries(1, &es) {
        Err(Error::Io { .. }) => {}
        other => panic!("expected the roll's I/O error, got {other:?}"),
    }
    assert!(
        matches!(
            w.append_entries(1, &[ent(w.last_index(1) + 1, 2, 10)]),
            Err(Error::Poisoned { .. })
        ),
        "the WAL went on with a half-applied append (last index {})",
        w.last_index(1)
    );
    assert!(matches!(w.flush(), Err(Error::Poisoned { .. })));
    drop(w);
    std::fs::remove_dir(d.path().join("00000000000000000003.wal.tmp")).unwrap();
    let img = crash_image(d.path());
    let w = Wal::open(img.path(), opts()).unwrap();
    assert_eq!(w.last_index(1), durable);
}

/// Defect 8: a call that queues nothing returns a ticket no earlier than
/// the records queued before it.
#[test]
fn a_call_that_changes_nothing_waits_for_what_was_queued_before_it() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    let _ = w.append_entries(1, &[ent(1, 1, 10)]).unwrap();
    let _ = w.compact(1, 1, 1).unwrap();
    w.flush().unwrap();
    // A flush in flight, then records pending for the next one.
    let _ = w.append_entries(1, &[ent(2, 1, 10)]).unwrap();
    let in_flight = w.start_flush().unwrap().unwrap();
    let queued = w.append_entries(1, &[ent(3, 1, 10)]).unwrap();
    assert!(queued.0 > in_flight);
    let noop_compact = w.compact(1, 1, 1).unwrap();
    let empty_append = w.append_entries(2, &[]).unwrap();
    assert!(
        noop_compact >= queued,
        "no-op compact: {noop_compact:?} before {queued:?}"
    );
    assert!(
        empty_append >= queued,
        "empty append: {empty_append:?} before {queued:?}"
    );
    w.flush().unwrap();
}

/// Defect 8: dropping the WAL fails the waiters of flushes that will now
/// never happen, instead of leaving them pending for ever.
#[test]
fn dropping_the_wal_fails_the_waiters_of_records_never_flushed() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    let t1 = w.append_entries(1, &[ent(1, 1, 10)]).unwrap();
    w.flush().unwrap();
    let t2 = w.append_entries(1, &[ent(2, 1, 10)]).unwrap();
    let _ = w.start_flush().unwrap();
    let t3 = w.append_entries(1, &[ent(3, 1, 10)]).unwrap();
    let mut done = Box::pin(w.durable(t1));
    let mut in_flight = Box::pin(w.durable(t2));
    let mut never = Box::pin(w.durable(t3));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(never.as_mut().poll(&mut cx).is_pending());
    drop(w);
    assert!(matches!(done.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    assert!(
        matches!(in_flight.as_mut().poll(&mut cx), Poll::Ready(Ok(()))),
        "the flush in flight completes at drop, and says so"
    );
    assert!(
        matches!(never.as_mut().poll(&mut cx), Poll::Ready(Err(_))),
        "a waiter of a flush that will never happen is still pending"
    );
}

/// Defect 8: reopening (a crash loop, say) does not create one more spare
/// segment each time.
#[test]
fn reopening_does_not_add_a_spare_segment_each_time() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    push_one(&mut w);
    w.wait_prepared();
    drop(w);
    let before = files(d.path(), ".wal").len();
    for round in 0..5 {
        let mut w = Wal::open(d.path(), opts()).unwrap();
        w.wait_prepared();
        assert_eq!(w.last_index(1), 1);
        drop(w);
        assert_eq!(
            files(d.path(), ".wal").len(),
            before,
            "round {round}: segments on disk grew"
        );
    }
    // And the adopted spare is used by the next roll.
    let mut w = Wal::open(d.path(), opts()).unwrap();
    while w.segment_seqs().len() < 3 {
        push_one(&mut w);
    }
    let last = w.last_index(1);
    drop(w);
    let w = Wal::open(d.path(), opts()).unwrap();
    assert_eq!(w.last_index(1), last);
}

/// Defect 8: a flipped bit inside a complete-looking last flush (every
/// sector of it written, every record header in place) is bit rot, not a
/// torn write: reported, not silently dropped.
#[test]
fn bit_rot_in_the_last_flush_is_reported_not_truncated() {
    use corelog::wal::Error;
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    push_one(&mut w);
    let (path, start) = w.write_position();
    let _ = w.append_entries(1, &[ent(2, 1, 1500)]).unwrap();
    w.flush().unwrap();
    let (_, end) = w.write_position();
    drop(w);
    // A bit in the entry's data, well inside the flush.
    let at = (start + end) / 2;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], at).unwrap();
    match Wal::open(d.path(), ro()) {
        Err(Error::Corrupt { file, offset, .. }) => {
            assert_eq!(file, path);
            assert!((start..end).contains(&offset), "offset {offset}");
        }
        other => panic!(
            "expected Corrupt, got {:?}",
            other.map(|w| (w.last_index(1), w.recovery_report().torn_bytes))
        ),
    }
}

/// Defect 8: indexes near `u64::MAX` are refused with a typed error
/// instead of overflowing.
#[test]
fn indexes_near_the_top_of_u64_are_refused_not_overflowed() {
    use corelog::wal::Error;
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    assert!(matches!(
        w.append_entries(1, &[ent(u64::MAX, 1, 1)]),
        Err(Error::NotContiguous { .. } | Error::Limit { .. })
    ));
    assert!(matches!(
        w.compact(1, u64::MAX, 1),
        Err(Error::Limit { .. })
    ));
    let _ = w.compact(1, u64::MAX - 2, 1).unwrap();
    let _ = w.append_entries(1, &[ent(u64::MAX - 1, 1, 1)]).unwrap();
    assert!(matches!(
        w.append_entries(1, &[ent(u64::MAX, 1, 1)]),
        Err(Error::Limit { .. })
    ));
    assert_eq!(w.last_index(1), u64::MAX - 1);
    assert_eq!(w.term(1, u64::MAX - 1).unwrap(), 1);
    assert!(w.entries(1, u64::MAX - 1, u64::MAX, u64::MAX).is_ok());
    w.flush().unwrap();
    drop(w);
    let w = Wal::open(d.path(), opts()).unwrap();
    assert_eq!(w.last_index(1), u64::MAX - 1);
}
