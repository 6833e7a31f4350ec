//! Tests of the simulated disk: each fault kind, what a crash keeps, and
//! that a seed replays exactly.

use std::io;

use super::*;

fn disk(seed: u64, sector: u64, faults: Faults) -> SimDisk {
    let mut o = SimOptions::new(seed);
    o.sector_size = Some(sector);
    o.faults = faults;
    SimDisk::new(o)
}

fn raw(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// A synced, named file of `len` bytes of `fill`.
fn synced_file(d: &SimDisk, name: &str, len: usize, fill: u8) -> SimFile {
    let f = d.create(name).unwrap();
    f.write_at(&vec![fill; len], 0).unwrap();
    f.sync_data().unwrap();
    d.sync_dir().unwrap();
    f
}

fn write(f: SimFile, offset: u64, len: usize, fill: u8) -> FlushWrite<SimFile> {
    FlushWrite {
        file: f,
        offset,
        buf: vec![fill; len],
    }
}

/// The two ways a flush runs: submitted and reaped later, or run inline.
#[derive(Debug, Clone, Copy)]
enum Run {
    Submitted,
    Inline,
}

const RUNS: [Run; 2] = [Run::Submitted, Run::Inline];

/// Runs a flush to its end the way `how` says.
fn run(fl: &mut SimFlusher, writes: Vec<FlushWrite<SimFile>>, how: Run) -> FlushPoll<SimFile> {
    match how {
        Run::Submitted => {
            fl.submit(writes);
            fl.poll(true)
        }
        Run::Inline => fl.run_inline(writes),
    }
}

/// A power loss in the middle of a flush: after submitting it, or armed
/// for the inline run (which then reports the dead handles).
fn crash_during(d: &SimDisk, fl: &mut SimFlusher, writes: Vec<FlushWrite<SimFile>>, how: Run) {
    match how {
        Run::Submitted => {
            fl.submit(writes);
            d.crash();
        }
        Run::Inline => {
            let life = d.life();
            d.crash_during_next_inline_flush();
            match fl.run_inline(writes) {
                FlushPoll::Failed { error, .. } => assert_eq!(raw(&error.error), libc::EBADF),
                other => panic!("an inline flush cut by a crash must fail: {other:?}"),
            }
            assert_eq!(d.life(), life + 1, "the disk crashed");
        }
    }
}

#[test]
fn crash_keeps_exactly_the_synced_state() {
    let d = disk(1, 512, Faults::NONE);
    let f = synced_file(&d, "a", 2000, 1);
    synced_file(&d, "c", 10, 3);
    // Unsynced: a write, a growth, a new file, a rename, a removal.
    f.write_at(&[9; 100], 300).unwrap();
    f.allocate(5000).unwrap();
    let g = d.create("b").unwrap();
    g.write_at(&[2; 10], 0).unwrap();
    g.sync_data().unwrap(); // data synced, name not
    d.rename("c", "c2").unwrap();
    d.remove("a").unwrap();
    assert_eq!(d.list().unwrap(), vec!["b", "c2"]);

    d.crash();
    assert_eq!(d.list().unwrap(), vec!["a", "c"]);
    let a = d.open("a", false).unwrap();
    assert_eq!(&a.view().unwrap()[..], &[1u8; 2000][..]);
    assert_eq!(a.size().unwrap(), 2000);
    assert_eq!(d.cached_bytes("c").unwrap(), vec![3; 10]);
    // Every handle of the crashed life is dead.
    assert_eq!(raw(&f.write_at(&[0], 0).unwrap_err()), libc::EBADF);
    assert_eq!(raw(&g.sync_data().unwrap_err()), libc::EBADF);
    let c = d.counts();
    assert_eq!(c.crashes, 1);
    assert!(c.unsynced_sectors_lost > 0);
    assert_eq!(c.dir_ops_lost, 3, "create b, rename c, remove a: {c:?}");
}

#[test]
fn synced_directory_operations_survive_a_crash() {
    let d = disk(2, 512, Faults::NONE);
    synced_file(&d, "a", 10, 1);
    synced_file(&d, "b", 10, 2);
    d.rename("a", "b").unwrap(); // replaces b
    d.sync_dir().unwrap();
    d.crash();
    assert_eq!(d.list().unwrap(), vec!["b"]);
    assert_eq!(d.cached_bytes("b").unwrap(), vec![1; 10]);
}

#[test]
fn name_errors_carry_the_os_error() {
    let d = disk(3, 512, Faults::NONE);
    synced_file(&d, "a", 1, 1);
    assert_eq!(raw(&d.create("a").unwrap_err()), libc::EEXIST);
    assert_eq!(raw(&d.open("x", false).unwrap_err()), libc::ENOENT);
    assert_eq!(raw(&d.rename("x", "y").unwrap_err()), libc::ENOENT);
    assert_eq!(raw(&d.remove("x").unwrap_err()), libc::ENOENT);
    let ro = d.open("a", false).unwrap();
    assert_eq!(raw(&ro.write_at(&[1], 0).unwrap_err()), libc::EBADF);
    assert_eq!(raw(&ro.allocate(100).unwrap_err()), libc::EBADF);
}

#[test]
fn an_unlinked_file_stays_readable_while_open() {
    let d = disk(4, 512, Faults::NONE);
    let f = synced_file(&d, "a", 10, 7);
    d.remove("a").unwrap();
    d.sync_dir().unwrap();
    assert_eq!(&f.view().unwrap()[..], &[7u8; 10][..]);
    f.write_at(&[8], 0).unwrap();
    assert_eq!(f.size().unwrap(), 10);
    assert_eq!(d.usage(), 10);
    drop(f);
    assert_eq!(d.usage(), 0, "closed and unnamed: the inode is gone");
}

#[test]
fn the_directory_lock_is_exclusive_and_dies_with_its_holder_or_a_crash() {
    let d = disk(5, 512, Faults::NONE);
    let l = d.lock(false).unwrap();
    for shared in [false, true] {
        match d.lock(shared) {
            Err(crate::wal::Error::Locked {
                holder: Some(_), ..
            }) => {}
            other => panic!("shared {shared}: expected Locked, got {:?}", other.is_ok()),
        }
    }
    drop(l);
    // Read-only opens share it, never with a writer.
    let s1 = d.lock(true).unwrap();
    let s2 = d.lock(true).unwrap();
    assert!(matches!(
        d.lock(false),
        Err(crate::wal::Error::Locked { holder: None, .. })
    ));
    drop((s1, s2));
    let _l2 = d.lock(false).unwrap();
    d.crash();
    let _l3 = d.lock(false).unwrap();
}

#[test]
fn a_view_shows_writes_before_it_and_counts_as_in_use_while_alive() {
    let d = disk(6, 512, Faults::NONE);
    let f = synced_file(&d, "a", 8, 0);
    f.write_at(&[1, 2], 0).unwrap();
    let v = f.view().unwrap();
    f.write_at(&[3], 0).unwrap();
    assert_eq!(&v[..3], &[1, 2, 0]);
    assert_eq!(f.view().unwrap()[0], 3);
    let slice = v.slice(1..2);
    drop(v);
    assert!(f.view_in_use(), "a slice keeps the view alive");
    drop(slice);
    assert!(!f.view_in_use());
}

#[test]
fn enospc_past_the_capacity_and_overwrites_still_fit() {
    let mut o = SimOptions::new(7);
    o.capacity = 10_000;
    let d = SimDisk::new(o);
    let f = d.create("a").unwrap();
    f.allocate(8192).unwrap();
    assert_eq!(raw(&f.allocate(20_000).unwrap_err()), libc::ENOSPC);
    assert_eq!(
        raw(&f.write_at(&[1; 2000], 9000).unwrap_err()),
        libc::ENOSPC
    );
    assert_eq!(f.size().unwrap(), 8192, "a refused write changes nothing");
    f.write_at(&[1; 2000], 100).unwrap();
    let g = d.create("b").unwrap();
    g.write_at(&[1; 1808], 0).unwrap(); // exactly full
    let mut fl = d.flusher().unwrap();
    for (k, how) in RUNS.into_iter().enumerate() {
        let ws = vec![write(f.clone(), 0, 10, 5), write(g.clone(), 1808, 1, 5)];
        match run(&mut fl, ws, how) {
            FlushPoll::Failed { error, writes } => {
                assert_eq!((error.write, error.sync), (1, false), "{how:?}");
                assert_eq!(raw(&error.error), libc::ENOSPC);
                assert_eq!(writes[1].buf, vec![5], "buffers come back");
            }
            other => panic!("{how:?}: expected Failed, got {other:?}"),
        }
        assert_eq!(d.counts().enospc, 3 + k as u64);
    }
}

#[test]
fn a_flush_completes_on_a_later_poll_and_hands_its_buffers_back() {
    let d = disk(8, 512, Faults::NONE);
    let f = synced_file(&d, "a", 4096, 0);
    let mut polls_seen = std::collections::BTreeSet::new();
    for round in 0..40u8 {
        let mut fl = d.flusher().unwrap();
        assert!(matches!(fl.poll(false), FlushPoll::Idle));
        let round = round + 1;
        fl.submit(vec![write(f.clone(), 100, 50, round)]);
        assert!(fl.busy());
        let mut pending = 0;
        let back = loop {
            match fl.poll(false) {
                FlushPoll::Pending => {
                    // Nothing lands before completion.
                    assert_ne!(d.cached_bytes("a").unwrap()[100], round);
                    pending += 1;
                }
                FlushPoll::Done(w) => break w,
                other => panic!("{other:?}"),
            }
        };
        assert!(pending <= 3);
        polls_seen.insert(pending);
        assert_eq!(back[0].buf, vec![round; 50]);
        assert!(!fl.busy());
        assert_eq!(d.durable_bytes("a").unwrap()[100..150], [round; 50]);
    }
    assert!(
        polls_seen.len() > 1,
        "latency varies with the seed: {polls_seen:?}"
    );
}

#[test]
fn dropping_a_flusher_completes_its_flush() {
    let d = disk(9, 512, Faults::NONE);
    let f = synced_file(&d, "a", 100, 0);
    let mut fl = d.flusher().unwrap();
    fl.submit(vec![write(f.clone(), 0, 10, 4)]);
    drop(fl);
    assert_eq!(d.durable_bytes("a").unwrap()[..10], [4; 10]);
}

#[test]
#[should_panic(expected = "already in flight")]
fn a_second_flush_in_flight_is_refused() {
    let d = disk(10, 512, Faults::NONE);
    let f = synced_file(&d, "a", 100, 0);
    let mut fl = d.flusher().unwrap();
    fl.submit(vec![write(f.clone(), 0, 1, 1)]);
    fl.submit(vec![write(f, 0, 1, 1)]);
}

/// Crashes a one-write flush in flight, on a file of `old` bytes where an
/// unsynced write also sits elsewhere; returns the durable bytes.
fn crash_in_flight(seed: u64, sector: u64, faults: Faults, how: Run) -> (Vec<u8>, FaultCounts) {
    let d = disk(seed, sector, faults);
    let f = synced_file(&d, "a", 16 * 4096, 0xAA);
    f.write_at(&[0x11; 700], 40_000).unwrap(); // unsynced, not in flight
    let mut fl = d.flusher().unwrap();
    // Three sectors and a bit, starting mid-sector.
    let ws = vec![write(f.clone(), 1000, 3 * sector as usize + 300, 0x55)];
    crash_during(&d, &mut fl, ws, how);
    match fl.poll(false) {
        FlushPoll::Failed { error, .. } => assert_eq!(raw(&error.error), libc::EBADF),
        FlushPoll::Idle => assert!(matches!(how, Run::Inline), "nothing left in flight"),
        other => panic!("a crashed flight must fail: {other:?}"),
    }
    (d.durable_bytes("a").unwrap(), d.counts())
}

#[test]
fn a_crash_tears_only_the_write_in_flight_in_whole_sectors() {
    for (sector, how) in [512u64, 4096]
        .into_iter()
        .flat_map(|s| RUNS.map(|h| (s, h)))
    {
        let (mut kept, mut lost) = (0, 0);
        for seed in 0..64 {
            let faults = Faults {
                torn_writes: true,
                ..Faults::NONE
            };
            let (m, c) = crash_in_flight(seed, sector, faults, how);
            assert_eq!(m.len(), 16 * 4096);
            let (from, to) = (1000usize, 1000 + 3 * sector as usize + 300);
            if c.torn_writes == 0 {
                // The crash came after the flush's sync: all of it is
                // durable, and so is every other dirty sector of the file.
                assert!(m[from..to].iter().all(|&b| b == 0x55), "seed {seed}");
                assert!(m[40_000..40_700].iter().all(|&b| b == 0x11), "seed {seed}");
                continue;
            }
            for (i, b) in m.iter().enumerate() {
                if i < from || i >= to {
                    assert_eq!(*b, 0xAA, "seed {seed}: byte {i} outside the write changed");
                }
            }
            // Within the write: each sector all old or all new.
            let s = sector as usize;
            for first in (from / s * s..to).step_by(s) {
                let lo = first.max(from);
                let hi = (first + s).min(to);
                let new = m[lo..hi].iter().all(|&b| b == 0x55);
                let old = m[lo..hi].iter().all(|&b| b == 0xAA);
                assert!(new || old, "seed {seed}: sector at {first} half written");
            }
            kept += c.torn_sectors_kept;
            lost += c.torn_sectors_lost;
            assert_eq!(c.written_back_sectors, 0);
        }
        assert!(
            kept > 0 && lost > 0,
            "{sector} {how:?}: kept {kept} lost {lost}"
        );
    }
}

#[test]
fn a_planned_tear_lands_exactly_the_sectors_it_names() {
    for torn_writes in [false, true] {
        let faults = Faults {
            torn_writes,
            ..Faults::NONE
        };
        let d = disk(9, 512, faults);
        let a = synced_file(&d, "a", 4096, 0xAA);
        let b = synced_file(&d, "b", 4096, 0xBB);
        let mut fl = d.flusher().unwrap();
        // Write 0 completes; write 1 covers sectors 1..=3 of b and only
        // sector 2 lands; nothing after it runs.
        fl.submit(vec![
            write(a.clone(), 100, 50, 0x11),
            write(b.clone(), 1000, 1000, 0x22),
            write(a.clone(), 3000, 50, 0x33),
        ]);
        d.plan_tear(1, &[2]);
        d.crash();
        let (ma, mb) = (d.durable_bytes("a").unwrap(), d.durable_bytes("b").unwrap());
        assert!(ma[100..150].iter().all(|&x| x == 0x11), "write 0 completed");
        assert!(
            ma[3000..3050].iter().all(|&x| x == 0xAA),
            "write 2 never ran"
        );
        for (i, &x) in mb.iter().enumerate() {
            let want = if (1024..1536).contains(&i) {
                0x22
            } else {
                0xBB
            };
            assert_eq!(x, want, "torn_writes {torn_writes}: byte {i} of b");
        }
        assert_eq!(d.counts().torn_writes, 1);
        // The plan was for that crash only.
        let b = d.open("b", true).unwrap();
        let mut fl = d.flusher().unwrap();
        fl.submit(vec![write(b, 1000, 1000, 0x44)]);
        d.crash();
        let mb = d.durable_bytes("b").unwrap();
        let landed = mb[1000..2000].iter().filter(|&&x| x == 0x44).count();
        if !torn_writes {
            assert_eq!(landed, 0, "without torn writes the write lands not at all");
        }
    }
}

#[test]
fn without_torn_writes_a_crash_keeps_a_write_whole_or_not_at_all() {
    for how in RUNS {
        let (mut whole, mut none) = (0, 0);
        for seed in 0..32 {
            let (m, c) = crash_in_flight(seed, 512, Faults::NONE, how);
            let w = &m[1000..1000 + 3 * 512 + 300];
            if w.iter().all(|&b| b == 0x55) {
                whole += 1;
            } else {
                assert!(w.iter().all(|&b| b == 0xAA), "seed {seed} {how:?}: torn");
                none += 1;
            }
            assert_eq!(c.torn_writes, 0);
        }
        assert!(whole > 0 && none > 0, "{how:?}");
    }
}

#[test]
fn a_flush_over_two_files_makes_the_first_durable_before_writing_the_second() {
    for how in RUNS {
        let (mut second_seen, mut first_only) = (0, 0);
        for seed in 0..64 {
            let faults = Faults {
                torn_writes: true,
                ..Faults::NONE
            };
            let d = disk(seed, 512, faults);
            let a = synced_file(&d, "a", 8192, 0);
            let b = synced_file(&d, "b", 8192, 0);
            let mut fl = d.flusher().unwrap();
            let ws = vec![write(a, 0, 2048, 1), write(b, 0, 2048, 2)];
            crash_during(&d, &mut fl, ws, how);
            let (ma, mb) = (d.durable_bytes("a").unwrap(), d.durable_bytes("b").unwrap());
            if mb[..2048].contains(&2) {
                assert!(
                    ma[..2048].iter().all(|&x| x == 1),
                    "seed {seed} {how:?}: b before a"
                );
                second_seen += 1;
            } else if ma[..2048].iter().all(|&x| x == 1) {
                first_only += 1;
            }
        }
        assert!(second_seen > 0 && first_only > 0, "{how:?}");
    }
}

/// A crash in the middle of a flush whose first sync fails: as in the
/// kernel's linked chain, nothing after the failed step runs, so the second
/// file never gets the flush's bytes (found by corelog-sim --storage wal,
/// seed 499: the second part of a flush was durable while the first had
/// lost a sector to its failed sync).
#[test]
fn a_crash_after_a_failed_sync_in_flight_writes_nothing_after_it() {
    for (seed, how) in (0..64).flat_map(|s| RUNS.map(|h| (s, h))) {
        let d = disk(seed, 512, Faults::NONE);
        let a = synced_file(&d, "a", 8192, 0);
        let b = synced_file(&d, "b", 8192, 0);
        d.set_faults(Faults {
            torn_writes: true,
            sync_error_ppm: 1_000_000,
            ..Faults::NONE
        });
        let mut fl = d.flusher().unwrap();
        let ws = vec![write(a, 0, 2048, 1), write(b, 0, 2048, 2)];
        crash_during(&d, &mut fl, ws, how);
        let mb = d.durable_bytes("b").unwrap();
        assert!(
            !mb[..2048].contains(&2),
            "seed {seed} {how:?}: the second write ran after the first one's sync failed"
        );
    }
}

#[test]
fn crash_writeback_keeps_some_unsynced_sectors_and_a_prefix_of_directory_operations() {
    let faults = Faults {
        crash_writeback: true,
        ..Faults::NONE
    };
    let mut outcomes = std::collections::BTreeSet::new();
    let mut sectors_back = 0;
    for seed in 0..64 {
        let d = disk(seed, 512, faults);
        let f = synced_file(&d, "f", 4096, 0);
        f.write_at(&[1; 4096], 0).unwrap();
        d.create("a").unwrap();
        d.create("b").unwrap();
        d.create("c").unwrap();
        d.crash();
        let names = d.list().unwrap().join(",");
        assert!(
            ["f", "a,f", "a,b,f", "a,b,c,f"].contains(&names.as_str()),
            "seed {seed}: not a prefix: {names}"
        );
        outcomes.insert(names);
        sectors_back += d.counts().written_back_sectors;
        let m = d.durable_bytes("f").unwrap();
        for s in m.chunks(512) {
            assert!(s.iter().all(|&x| x == s[0]), "seed {seed}: half a sector");
        }
    }
    assert!(outcomes.len() >= 3, "{outcomes:?}");
    assert!(sectors_back > 0);
}

/// A file "a" of 4096 zeros, synced, then 4096 ones written, then a sync
/// that fails; returns the disk and the file.
fn failed_sync(seed: u64, pages: ErrorPages) -> (SimDisk, SimFile) {
    let d = disk(seed, 512, Faults::NONE);
    let f = synced_file(&d, "a", 4096, 0);
    f.write_at(&[1; 4096], 0).unwrap();
    d.set_faults(Faults {
        sync_error_ppm: 1_000_000,
        sync_error_pages: pages,
        ..Faults::NONE
    });
    assert_eq!(raw(&f.sync_data().unwrap_err()), libc::EIO);
    d.set_faults(Faults::NONE);
    (d, f)
}

#[test]
fn a_failed_sync_that_forgets_its_pages_is_not_reported_by_the_next_sync() {
    let mut forgotten = 0;
    for seed in 0..16 {
        let (d, f) = failed_sync(seed, ErrorPages::Forget);
        // Linux: the next sync succeeds and the cache still shows the data,
        // but what did not land before the error never will.
        f.sync_data().unwrap();
        assert_eq!(d.cached_bytes("a").unwrap(), vec![1; 4096]);
        let before = d.durable_bytes("a").unwrap();
        d.crash();
        let after = d.cached_bytes("a").unwrap();
        assert_eq!(before, after);
        forgotten += d.counts().pages_forgotten;
        assert_eq!(
            after.iter().filter(|&&x| x == 0).count() as u64 / 512,
            d.counts().pages_forgotten,
            "seed {seed}: exactly the forgotten sectors are old"
        );
    }
    assert!(forgotten > 0);
}

#[test]
fn a_failed_sync_that_keeps_its_pages_lets_a_later_sync_write_them() {
    for seed in 0..16 {
        let (d, f) = failed_sync(seed, ErrorPages::Keep);
        f.sync_data().unwrap();
        d.crash();
        assert_eq!(d.cached_bytes("a").unwrap(), vec![1; 4096], "seed {seed}");
        assert_eq!(d.counts().sync_errors, 1);
        assert_eq!(d.counts().pages_forgotten, 0);
    }
}

#[test]
fn a_failed_sync_inside_a_flush_fails_the_flush_at_that_write() {
    for how in RUNS {
        let d = disk(11, 512, Faults::NONE);
        let a = synced_file(&d, "a", 1024, 0);
        let b = synced_file(&d, "b", 1024, 0);
        d.set_faults(Faults {
            sync_error_ppm: 1_000_000,
            ..Faults::NONE
        });
        let mut fl = d.flusher().unwrap();
        match run(&mut fl, vec![write(a, 0, 10, 1), write(b, 0, 10, 2)], how) {
            FlushPoll::Failed { error, writes } => {
                assert_eq!((error.write, error.sync), (0, true));
                assert_eq!(raw(&error.error), libc::EIO);
                assert_eq!(writes.len(), 2);
            }
            other => panic!("{how:?}: {other:?}"),
        }
        assert_eq!(
            d.cached_bytes("b").unwrap()[0],
            0,
            "{how:?}: the link stops the rest"
        );
    }
}

#[test]
fn an_inline_flush_is_durable_when_it_returns_and_hands_its_buffers_back() {
    let d = disk(13, 512, Faults::NONE);
    let a = synced_file(&d, "a", 4096, 0);
    let b = synced_file(&d, "b", 4096, 0);
    let mut fl = d.flusher().unwrap();
    for round in 1..=5u8 {
        let ws = vec![
            write(a.clone(), 100, 700, round),
            write(b.clone(), 9, 50, round),
        ];
        match fl.run_inline(ws) {
            FlushPoll::Done(back) => {
                assert_eq!(back[0].buf, vec![round; 700]);
                assert_eq!(back[1].buf, vec![round; 50]);
            }
            other => panic!("{other:?}"),
        }
        assert!(!fl.busy() && !d.in_flight());
        assert_eq!(d.durable_bytes("a").unwrap()[100..800], [round; 700]);
        assert_eq!(d.durable_bytes("b").unwrap()[9..59], [round; 50]);
    }
}

#[test]
fn a_crash_before_the_inline_flush_disarms_its_crash() {
    let d = disk(14, 512, Faults::NONE);
    d.crash_during_next_inline_flush();
    d.crash();
    let a = synced_file(&d, "a", 1024, 0);
    let mut fl = d.flusher().unwrap();
    assert!(matches!(
        fl.run_inline(vec![write(a, 0, 10, 7)]),
        FlushPoll::Done(_)
    ));
    assert_eq!(d.durable_bytes("a").unwrap()[..10], [7; 10]);
}

#[test]
#[should_panic(expected = "a flush is in flight")]
fn an_inline_flush_behind_one_in_flight_is_refused() {
    let d = disk(15, 512, Faults::NONE);
    let f = synced_file(&d, "a", 100, 0);
    let mut fl = d.flusher().unwrap();
    fl.submit(vec![write(f.clone(), 0, 1, 1)]);
    let _ = fl.run_inline(vec![write(f, 0, 1, 1)]);
}

#[test]
fn a_failed_directory_sync_makes_a_prefix_durable_and_reports_eio() {
    let d = disk(12, 512, Faults::NONE);
    d.create("a").unwrap();
    d.create("b").unwrap();
    d.set_faults(Faults {
        sync_error_ppm: 1_000_000,
        ..Faults::NONE
    });
    assert_eq!(raw(&d.sync_dir().unwrap_err()), libc::EIO);
    let durable = d.durable_names();
    assert!(durable.is_empty() || durable == ["a"] || durable == ["a", "b"]);
    d.set_faults(Faults::NONE);
    d.sync_dir().unwrap();
    assert_eq!(d.durable_names(), ["a", "b"]);
}

#[test]
fn bit_flips_rot_the_media_not_the_cache() {
    let d = disk(13, 512, Faults::NONE);
    let f = synced_file(&d, "a", 2048, 0);
    d.set_faults(Faults {
        bit_flip_ppm: 1_000_000,
        ..Faults::NONE
    });
    f.write_at(&[0xFF; 512], 512).unwrap();
    f.sync_data().unwrap();
    assert_eq!(d.cached_bytes("a").unwrap()[512..1024], [0xFF; 512]);
    d.crash();
    let m = d.cached_bytes("a").unwrap();
    let flipped: u32 = m[512..1024].iter().map(|b| (!b).count_ones()).sum();
    assert_eq!(flipped, 1, "one bit of the sector rotted");
    assert!(m[..512].iter().chain(&m[1024..]).all(|&b| b == 0));
    assert_eq!(d.counts().bit_flips, 1);
}

#[test]
fn rot_at_rest_flips_one_durable_bit_seen_after_a_crash() {
    let d = disk(15, 512, Faults::NONE);
    assert_eq!(d.rot_at_rest(), None, "nothing durable to rot");
    synced_file(&d, "a", 1000, 0);
    d.create("unsynced").unwrap();
    let (name, at) = d.rot_at_rest().unwrap();
    assert_eq!(name, "a");
    assert_eq!(d.cached_bytes("a").unwrap(), vec![0; 1000], "cache intact");
    d.crash();
    let m = d.cached_bytes("a").unwrap();
    assert_eq!(m[at as usize].count_ones(), 1);
    assert_eq!(m.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
    assert_eq!(d.counts().bit_flips, 1);
}

#[test]
fn a_misdirected_write_lands_elsewhere_in_the_same_file() {
    let d = disk(14, 4096, Faults::NONE);
    let f = synced_file(&d, "a", 4 * 4096, 0);
    d.set_faults(Faults {
        misdirect_ppm: 1_000_000,
        ..Faults::NONE
    });
    f.write_at(&[7; 4096], 4096).unwrap();
    f.sync_data().unwrap();
    let m = d.durable_bytes("a").unwrap();
    assert!(
        m[4096..8192].iter().all(|&b| b == 0),
        "the intended sector is stale"
    );
    let landed: Vec<usize> = (0..4)
        .filter(|s| m[s * 4096..(s + 1) * 4096].iter().all(|&b| b == 7))
        .collect();
    assert_eq!(landed.len(), 1);
    assert_ne!(landed[0], 1);
    assert_eq!(d.counts().misdirected_writes, 1);
}

#[test]
fn the_sector_size_is_drawn_from_the_seed_when_not_given() {
    let sizes: std::collections::BTreeSet<u64> = (0..16)
        .map(|s| SimDisk::new(SimOptions::new(s)).sector_size())
        .collect();
    assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![512, 4096]);
}

/// A workload touching every fault kind at high rates; returns every
/// observable outcome.
/// Files left (name, bytes), counters, and the log of every call's result.
type Outcome = (Vec<(String, Vec<u8>)>, FaultCounts, Vec<String>);

fn workload(seed: u64) -> Outcome {
    let mut o = SimOptions::new(seed);
    o.capacity = 200_000;
    o.faults = Faults {
        torn_writes: true,
        crash_writeback: true,
        sync_error_ppm: 100_000,
        sync_error_pages: ErrorPages::Either,
        bit_flip_ppm: 20_000,
        misdirect_ppm: 20_000,
    };
    let d = SimDisk::new(o);
    let mut log = Vec::new();
    for round in 0..6u8 {
        let name = format!("f{round}");
        let f = match d.create(&name) {
            Ok(f) => f,
            Err(e) => {
                log.push(format!("create {e}"));
                continue;
            }
        };
        log.push(format!(
            "allocate {:?}",
            f.allocate(40_000).map_err(|e| raw(&e))
        ));
        log.push(format!("sync {:?}", f.sync_data().map_err(|e| raw(&e))));
        log.push(format!("dir {:?}", d.sync_dir().map_err(|e| raw(&e))));
        let mut fl = d.flusher().unwrap();
        for k in 0..5u8 {
            fl.submit(vec![write(f.clone(), u64::from(k) * 3000, 2500, round ^ k)]);
            loop {
                match fl.poll(false) {
                    FlushPoll::Pending => log.push("pending".into()),
                    FlushPoll::Done(_) => break log.push("done".into()),
                    FlushPoll::Failed { error, .. } => {
                        break log.push(format!("failed {} {}", error.write, raw(&error.error)));
                    }
                    FlushPoll::Idle => unreachable!(),
                }
            }
        }
        fl.submit(vec![write(f.clone(), 20_000, 5000, round)]);
        if round % 2 == 1 {
            d.crash();
        }
        drop(fl);
    }
    d.crash();
    let files = d
        .list()
        .unwrap()
        .into_iter()
        .map(|n| {
            let b = d.cached_bytes(&n).unwrap();
            (n, b)
        })
        .collect();
    (files, d.counts(), log)
}

#[test]
fn the_same_seed_gives_the_same_outcome() {
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..8 {
        let a = workload(seed);
        assert_eq!(a, workload(seed), "seed {seed} did not replay");
        distinct.insert(format!("{:?}", a.1));
    }
    assert!(distinct.len() > 1, "seeds must matter");
}

#[test]
fn the_fault_workload_injects_every_kind() {
    let mut total = FaultCounts::default();
    for seed in 0..8 {
        let c = workload(seed).1;
        total.torn_writes += c.torn_writes;
        total.sync_errors += c.sync_errors;
        total.bit_flips += c.bit_flips;
        total.misdirected_writes += c.misdirected_writes;
        total.enospc += c.enospc;
        total.written_back_sectors += c.written_back_sectors;
    }
    assert!(total.torn_writes > 0, "{total:?}");
    assert!(total.sync_errors > 0, "{total:?}");
    assert!(total.bit_flips > 0, "{total:?}");
    assert!(total.misdirected_writes > 0, "{total:?}");
    assert!(total.enospc > 0, "{total:?}");
    assert!(total.written_back_sectors > 0, "{total:?}");
}
