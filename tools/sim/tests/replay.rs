//! A seed is one history: replaying it gives the same events in the same
//! order (compared through the event log's hash), whatever else runs.

use corelog_sim::{Options, run_seed};

fn run(seed: u64, keep_all: bool) -> (u64, u64, u64, u64) {
    let mut o = Options::new(seed, 2_000);
    o.keep_all_events = keep_all;
    let out = run_seed(o);
    assert!(out.passed(), "seed {seed}: {:?}", out.failure);
    (
        out.event_hash,
        out.events,
        out.stats.ticks,
        out.stats.committed,
    )
}

#[test]
fn a_seed_replays_event_for_event() {
    for seed in [1, 42, 4_242] {
        let a = run(seed, false);
        let b = run(seed, false);
        assert_eq!(a, b, "seed {seed} did not replay identically");
    }
}

#[test]
fn keeping_the_full_log_does_not_change_the_history() {
    // `--seed N` keeps every event (and describes each Ready); the history
    // must be the one the sweep saw.
    assert_eq!(run(7, false), run(7, true));
}

#[test]
fn different_seeds_make_different_histories() {
    assert_ne!(run(1, false).0, run(2, false).0);
}

#[test]
fn replays_agree_across_threads() {
    // The sweep runs seeds on worker threads; a seed's history must not
    // depend on which thread runs it or what runs beside it.
    let here = run(11, false);
    let there = std::thread::spawn(|| run(11, false)).join().unwrap();
    assert_eq!(here, there);
}

#[test]
fn async_storage_writes_replay_event_for_event() {
    let run_async = |seed: u64| {
        let mut o = Options::new(seed, 2_000);
        o.async_writes = true;
        let out = run_seed(o);
        assert!(out.passed(), "seed {seed}: {:?}", out.failure);
        assert!(out.async_writes && out.stats.storage_appends > 0);
        (out.event_hash, out.events)
    };
    assert_eq!(run_async(4), run_async(4));
    // Forcing the mode makes another history than the seed's own (seed 4
    // is synchronous unless forced).
    assert!(!corelog_sim::seed_runs_async(4));
    assert_ne!(run_async(4).0, run(4, false).0);
}

#[test]
fn about_a_quarter_of_the_seeds_run_async() {
    let n = (0..4_000u64)
        .filter(|&s| corelog_sim::seed_runs_async(s))
        .count();
    assert!((800..1_200).contains(&n), "{n} of 4000 seeds run async");
    // The seeds the regression tests name keep their synchronous histories.
    for s in [7107, 7142, 7257, 6074, 1811, 2361] {
        assert!(!corelog_sim::seed_runs_async(s), "seed {s}");
    }
}

/// A `--storage wal` run with `wal_flush`.
fn run_wal(seed: u64, wal_flush: corelog_sim::WalFlush) -> corelog_sim::Outcome {
    let mut o = Options::new(seed, 2_000);
    o.storage = corelog_sim::StorageKind::Wal;
    o.wal_flush = wal_flush;
    let out = run_seed(o);
    assert!(out.passed(), "seed {seed}: {:?}", out.failure);
    out
}

#[test]
fn wal_runs_with_inline_flushes_replay_event_for_event() {
    use corelog_sim::WalFlush;
    for mode in [WalFlush::Mixed, WalFlush::Inline] {
        let (a, b) = (run_wal(3, mode), run_wal(3, mode));
        assert_eq!(
            (a.event_hash, a.events),
            (b.event_hash, b.events),
            "{mode:?}"
        );
        assert!(a.stats.inline_flushes > 0, "{mode:?}: {:?}", a.stats);
    }
}

/// Half the seeds mix the two flush paths; the others keep the ring alone,
/// and with it exactly the history a seed had before the inline path (its
/// draws come from streams of their own, and the simulated disk draws the
/// same whichever path a flush takes).
#[test]
fn half_the_wal_seeds_mix_flush_paths_and_the_rest_keep_their_histories() {
    use corelog_sim::{WalFlush, seed_mixes_flushes};
    let n = (0..4_000u64).filter(|&s| seed_mixes_flushes(s)).count();
    assert!((1_800..2_200).contains(&n), "{n} of 4000 seeds mix");
    // The seeds named for `--storage wal` keep their histories.
    for s in [
        4638, 9248, 10163, 21888, 32306, 47074, 56484, 64909, 89725, 92189, 387, 540, 499, 1059,
    ] {
        assert!(!seed_mixes_flushes(s), "seed {s}");
    }
    let ring = (0..).find(|&s| !seed_mixes_flushes(s)).unwrap();
    let (a, b) = (run_wal(ring, WalFlush::Seed), run_wal(ring, WalFlush::Ring));
    assert_eq!((a.event_hash, a.events), (b.event_hash, b.events));
    assert_eq!(a.stats.inline_flushes, 0);
    let mixed = (0..).find(|&s| seed_mixes_flushes(s)).unwrap();
    let (a, b) = (
        run_wal(mixed, WalFlush::Seed),
        run_wal(mixed, WalFlush::Mixed),
    );
    assert_eq!((a.event_hash, a.events), (b.event_hash, b.events));
    assert!(a.stats.inline_flushes > 0 && a.stats.inline_flushes < a.stats.flushes);
    assert_ne!(a.event_hash, run_wal(mixed, WalFlush::Ring).event_hash);
}
