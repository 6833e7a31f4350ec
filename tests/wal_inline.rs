//! The inline flush (`Wal::flush_inline`: pwrite + fdatasync on the calling
//! thread) against the io_uring flush it stands beside: the same bytes on
//! disk whatever the mix of the two, the order of flushes kept when one is
//! still in flight, tickets and waiters completed as the ring path does.
//! Its behaviour under faults (torn writes, EIO, ENOSPC, power loss) is
//! tested by the fault tests themselves, run over both paths:
//! tests/wal_faults.rs on the real disk, tests/wal_sim.rs on the simulated
//! one.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use corelog::raftpb::{ConfState, Entry, HardState, SnapshotMetadata};
use corelog::wal::{Error, Options, Wal};

fn opts() -> Options {
    let mut o = Options::new(7, 3);
    o.segment_size = 64 << 10;
    o.max_flush_bytes = 16 << 10;
    o.relocate_bytes = 8 << 10;
    o
}

fn ent(index: u64, term: u64, len: usize, salt: u64) -> Entry {
    let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (term << 40) ^ salt | 1;
    Entry {
        term,
        index,
        r#type: 0,
        data: Bytes::from(
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect::<Vec<u8>>(),
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Ring,
    Inline,
    /// Inline and ring flushes in turn.
    Mixed,
}

/// Every segment file (live, and kept for recycling) by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".wal") || n.ends_with(".wal.free")
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// A small deterministic generator for the workload's choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One step of a workload whose choices depend only on `rng` (never on
/// the mode): appends with suffix rewrites over three groups, hard
/// states, snapshots, compactions and GC (which flushes on the ring path
/// itself), then a flush the way `mode` says. Returns the flush's number.
fn step(w: &mut Wal, rng: &mut Rng, k: u64, mode: Mode) -> u64 {
    for _ in 0..1 + rng.below(6) {
        let g = 1 + rng.below(3);
        match rng.below(10) {
            0..=6 => {
                let last = w.last_index(g);
                let back = rng.below(2).min(last.saturating_sub(w.first_index(g)));
                let first = last + 1 - back;
                let n = 1 + rng.below(4);
                let len = rng.below(2500) as usize;
                let es: Vec<Entry> = (first..first + n)
                    .map(|i| ent(i, 1 + k / 20, len, k))
                    .collect();
                let _ = w.append_entries(g, &es).unwrap();
            }
            7 => {
                let hs = HardState {
                    term: 1 + k / 20,
                    vote: rng.below(4),
                    commit: w.last_index(g),
                };
                let _ = w.set_hard_state(g, &hs).unwrap();
            }
            8 => {
                let last = w.last_index(g);
                let i = last.saturating_sub(rng.below(5)).max(w.first_index(g));
                if i >= w.first_index(g) && i <= last && last > 0 {
                    let t = w.term(g, i).unwrap();
                    let _ = w.compact(g, i, t).unwrap();
                    let _ = w.gc().unwrap();
                }
            }
            _ => {
                let meta = SnapshotMetadata {
                    conf_state: Some(ConfState {
                        voters: vec![1, 2, 3],
                        ..ConfState::default()
                    }),
                    index: w.last_index(g) + 1 + rng.below(3),
                    term: 1 + k / 20,
                };
                let _ = w.apply_snapshot(g, &meta).unwrap();
            }
        }
    }
    let inline = match mode {
        Mode::Ring => false,
        Mode::Inline => true,
        Mode::Mixed => k % 2 == 0,
    };
    if inline {
        w.flush_inline().unwrap()
    } else {
        w.flush().unwrap()
    }
}

/// The same workload flushed through the ring, inline, and both in turn
/// leaves the same files with the same bytes after every flush (rolls,
/// segments prepared ahead, GC, relocation and recycled files included),
/// and the same flush numbers.
#[test]
fn inline_and_ring_flushes_leave_the_same_bytes_on_disk() {
    let modes = [Mode::Ring, Mode::Inline, Mode::Mixed];
    let dirs: Vec<tempfile::TempDir> = modes.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let mut wals: Vec<Wal> = dirs
        .iter()
        .map(|d| Wal::open(d.path(), opts()).unwrap())
        .collect();
    let mut rngs: Vec<Rng> = modes.iter().map(|_| Rng(0x2545_f491_4f6c_dd1d)).collect();
    let mut compared = 0;
    for k in 0..160u64 {
        let mut numbers = Vec::new();
        for (i, mode) in modes.iter().enumerate() {
            numbers.push(step(&mut wals[i], &mut rngs[i], k, *mode));
            // The segment being prepared ahead is created by a helper
            // thread: let it finish before the files are compared.
            wals[i].wait_prepared();
        }
        assert!(
            numbers.iter().all(|n| *n == numbers[0]),
            "step {k}: {numbers:?}"
        );
        let want = files(dirs[0].path());
        for (i, mode) in modes.iter().enumerate().skip(1) {
            let got = files(dirs[i].path());
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>(),
                "step {k} {mode:?}: files"
            );
            for (name, bytes) in &want {
                if got[name] != *bytes {
                    let at = got[name].iter().zip(bytes).position(|(a, b)| a != b);
                    panic!("step {k} {mode:?}: {name} differs from the ring's at {at:?}");
                }
            }
        }
        compared += 1;
    }
    assert_eq!(compared, 160);
    // The workload did what it is for: several rolls, and GC that freed
    // segments for reuse.
    let names = files(dirs[0].path());
    assert!(
        wals[0].segment_seqs().iter().max().unwrap() > &6,
        "{names:?}"
    );
    drop(wals);
    // And every WAL recovers the same state.
    let reopened: Vec<Wal> = dirs
        .iter()
        .map(|d| Wal::open(d.path(), opts()).unwrap())
        .collect();
    for g in 1..=3 {
        let read = |w: &Wal| {
            let (lo, hi) = (w.first_index(g), w.last_index(g) + 1);
            (
                w.entries(g, lo, hi, u64::MAX).unwrap(),
                w.hard_state(g),
                w.snapshot(g),
                w.compacted(g),
            )
        };
        let want = read(&reopened[0]);
        for w in &reopened[1..] {
            assert_eq!(read(w), want, "group {g}");
        }
    }
}

/// An inline flush behind a flush still in flight on the ring waits for
/// it: the disk sees them in the order they were numbered (an inline
/// flush that overtook it would make the flusher panic), and both are
/// durable when it returns.
#[test]
fn an_inline_flush_waits_for_the_ring_flush_in_flight() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    let t1 = w.append_entries(1, &[ent(1, 1, 100, 0)]).unwrap();
    let started = w.start_flush().unwrap();
    assert_eq!(started, Some(t1.0));
    let t2 = w.append_entries(1, &[ent(2, 1, 100, 0)]).unwrap();
    assert_eq!(t2.0, t1.0 + 1);
    assert_eq!(w.flush_inline().unwrap(), t2.0);
    assert_eq!(w.durable_flush(), t2.0);
    let mut cx = Context::from_waker(Waker::noop());
    for t in [t1, t2] {
        let mut f = Box::pin(w.durable(t));
        assert!(matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    }
    // Nothing is left in flight: a poll changes nothing.
    assert_eq!(w.poll_flush().unwrap(), t2.0);
    drop(w);
    let w = Wal::open(d.path(), opts()).unwrap();
    assert_eq!(w.last_index(1), 2);
}

/// A waiter of an inline flush is pending until the call returns, then
/// complete; the next records get the next flush's ticket.
#[test]
fn an_inline_flush_completes_its_waiters_when_it_returns() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    for round in 1..=3u64 {
        let t = w.append_entries(1, &[ent(round, 1, 300, 0)]).unwrap();
        let hs = HardState {
            term: 1,
            vote: 2,
            commit: round,
        };
        assert_eq!(w.set_hard_state(1, &hs).unwrap(), t, "one flush");
        let mut f = Box::pin(w.durable(t));
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(w.flush_inline().unwrap(), t.0);
        assert!(matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
        assert_eq!(w.durable_flush(), round);
    }
}

/// Nothing pending: nothing written, no flush number used, whatever the
/// path.
#[test]
fn an_inline_flush_with_nothing_pending_does_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Wal::open(d.path(), opts()).unwrap();
    assert_eq!(w.flush_inline().unwrap(), 0);
    let t = w.append_entries(1, &[ent(1, 1, 10, 0)]).unwrap();
    assert_eq!(t.0, 1);
    assert_eq!(w.flush_inline().unwrap(), 1);
    // The spare segment is created in the background: wait for it, so the
    // directory can only change by what the empty flush does.
    w.wait_prepared();
    let before = files(d.path());
    assert_eq!(w.flush_inline().unwrap(), 1);
    assert_eq!(files(d.path()), before);
    let t = w.append_entries(1, &[ent(2, 1, 10, 0)]).unwrap();
    assert_eq!(t.0, 2, "no number was used by the empty flushes");
}

#[test]
fn a_read_only_wal_refuses_an_inline_flush() {
    let d = tempfile::tempdir().unwrap();
    drop(Wal::open(d.path(), opts()).unwrap());
    let mut o = opts();
    o.read_only = true;
    let mut w = Wal::open(d.path(), o).unwrap();
    assert!(matches!(w.flush_inline(), Err(Error::ReadOnly)));
}
