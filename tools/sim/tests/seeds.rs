//! The CI-sized sweeps: many seeds of thousands of steps, every invariant
//! checked after every step, a quarter of them with asynchronous storage
//! writes. `cargo test --release --workspace` runs them in seconds on two
//! cores; a debug build runs a tenth of them.

use corelog_sim::{Options, Stats, StorageKind, default_threads, failure_report, run_seeds};

/// Seeds and steps of the release sweep (the issue asks for at least 500
/// seeds of at least 2,000 steps).
const SEEDS: u64 = 1_000;
const STEPS: u64 = 2_000;
/// The share of seeds run again with lease-based reads (`--lease-reads`:
/// the seeds that draw CheckQuorum read from the lease, each node ticking
/// at its own rate within the drift bound).
const LEASE_SEEDS: u64 = 500;
/// The share of seeds run on the WAL over a faulty simulated disk
/// (`--storage wal`): 0.8 s on two quiet cores, 4 to 5 s on a busy machine.
const WAL_SEEDS: u64 = 300;

/// The workspace build that CI tests is the code users run: the core's
/// deliberate bugs must not be in it (they build only under their own
/// `--cfg`, see tests/bugs.rs).
#[test]
fn the_tested_core_has_no_deliberate_bug_compiled_in() {
    assert!(
        !corelog::raft::deliberate_bugs_compiled(),
        "this build has the core's deliberate bugs: build without --cfg corelog_sim_bugs"
    );
}

/// Runs `seeds` seeds from `start` with `template`'s options, prints the
/// failures and the summary line, and fails on any violation. Returns the
/// totals and the number of seeds run.
fn sweep(name: &str, start: u64, seeds: u64, template: &Options) -> (Stats, u64) {
    let seeds = if cfg!(debug_assertions) {
        seeds / 10
    } else {
        seeds
    };
    let sweep = run_seeds(start, seeds, template, default_threads(), |_, _, _| {});
    for f in &sweep.failures {
        eprint!("{}", failure_report(f));
    }
    eprintln!("{name}: totals {:?}", sweep.stats);
    println!("{name}: {} passed, {} failed", sweep.passed, sweep.failed);
    assert_eq!(
        sweep.failed, 0,
        "the simulator found violations (reports above)"
    );
    (sweep.stats, seeds)
}

#[test]
fn ci_sweep_finds_no_violation() {
    let (s, seeds) = sweep("sim", 100_000, SEEDS, &Options::new(0, STEPS));
    // The sweep must exercise what it claims to: faults, crashes,
    // membership changes, snapshots, reads and elections all happened.
    assert!(s.crashes > 0 && s.partitions > 0 && s.dropped > 0 && s.duplicated > 0);
    assert!(s.conf_changes_applied > 0 && s.snapshots_applied > 0 && s.compactions > 0);
    assert!(s.reads_answered > 0 && s.transfers > 0 && s.leaders > seeds);
    assert!(s.calms >= seeds, "every run ends with a liveness check");
    // About a quarter of the seeds run with asynchronous storage writes,
    // whose writes complete out of step with the network and are lost by
    // crashes.
    assert!(
        s.async_runs >= seeds / 8 && s.async_runs <= seeds / 2,
        "async runs: {} of {seeds}",
        s.async_runs
    );
    assert!(s.storage_appends > 0 && s.storage_applies > 0 && s.lost_writes > 0);
    assert_eq!(s.lease_runs, 0, "lease reads are off by default");
}

#[test]
fn ci_lease_read_sweep_finds_no_violation() {
    let mut template = Options::new(0, STEPS);
    template.lease_reads = true;
    let (s, seeds) = sweep("sim-lease-reads", 200_000, LEASE_SEEDS, &template);
    // About half the seeds draw CheckQuorum and read from leases; some of
    // them with tick rates that differ, not only phases.
    assert!(s.lease_runs > 0 && s.drifting_runs > 0, "{s:?}");
    // Reads were answered from the lease, not only by heartbeat rounds.
    assert!(s.lease_reads_held > s.reads_answered / 10, "{s:?}");
    assert!(s.reads_answered > 0 && s.transfers > 0 && s.crashes > 0);
    assert!(s.calms >= seeds, "every run ends with a liveness check");
}

#[test]
fn ci_wal_sweep_finds_no_violation() {
    let mut template = Options::new(0, STEPS);
    template.storage = StorageKind::Wal;
    let (s, seeds) = sweep("sim-wal", 300_000, WAL_SEEDS, &template);
    assert_eq!(s.wal_runs, seeds, "every run is on the WAL");
    assert!(s.calms >= seeds, "every run ends with a liveness check");
    // Real recoveries after crashes, messages that waited for their flush,
    // and a WAL doing what it does over a run: rolls, GC.
    assert!(
        s.crashes > 0 && s.recoveries > 0 && s.held_msgs > 0,
        "{s:?}"
    );
    assert!(s.segment_rolls > seeds, "rolls in every run: {s:?}");
    assert!(s.segments_freed > 0, "{s:?}");
    // Half the runs flush on both paths: inline flushes ran, and power
    // losses cut some of them.
    assert!(
        s.inline_flushes > 0 && s.inline_flushes < s.flushes,
        "{s:?}"
    );
    assert!(s.inline_cuts > 0, "{s:?}");
    // Every fault kind of the disk happened: torn writes, write-back of
    // unsynced sectors and their loss at crashes, failed syncs (each one a
    // WAL failure, the node stopped), a full disk, bit flips and
    // misdirected writes; and the WAL found corruption.
    assert!(s.torn_writes > 0 && s.written_back_sectors > 0, "{s:?}");
    assert!(s.unsynced_sectors_lost > 0 && s.disk_crashes > 0, "{s:?}");
    // (A debug build runs a tenth of the seeds: too few for the rarer
    // kinds.)
    if !cfg!(debug_assertions) {
        assert!(
            s.sync_errors > 0 && s.wal_failures > 0 && s.enospc > 0,
            "{s:?}"
        );
        assert!(s.bit_flips > 0 && s.misdirected_writes > 0, "{s:?}");
        assert!(s.corruption_detected > 0, "{s:?}");
    }
}

/// A full disk no longer stops a node running with asynchronous storage
/// writes: its append thread keeps the write the WAL refused for lack of
/// room (`wal::Error::NoSpace`, nothing poisoned), holds its responses,
/// and tries again until there is room; every invariant holds meanwhile.
/// The sweep must reach that path and see writes go through after it.
#[test]
fn ci_wal_full_disk_sweep_waits_for_room_and_goes_on() {
    let mut template = Options::new(0, STEPS);
    template.storage = StorageKind::Wal;
    template.async_writes = true;
    let (s, _) = sweep("sim-wal-full-disk", 400_000, 1_000, &template);
    if !cfg!(debug_assertions) {
        assert!(s.no_space_waits > 0 && s.no_space_recoveries > 0, "{s:?}");
    }
}
