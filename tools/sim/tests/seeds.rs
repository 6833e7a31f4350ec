//! The CI-sized sweep: many seeds of thousands of steps, every invariant
//! checked after every step, a quarter of them with asynchronous storage
//! writes. `cargo test --release --workspace` runs it in
//! seconds on two cores; a debug build runs a tenth of it.

use corelog_sim::{Options, default_threads, failure_report, run_seeds};

/// Seeds and steps of the release sweep (the issue asks for at least 500
/// seeds of at least 2,000 steps).
const SEEDS: u64 = 1_000;
const STEPS: u64 = 2_000;

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

#[test]
fn ci_sweep_finds_no_violation() {
    let seeds = if cfg!(debug_assertions) {
        SEEDS / 10
    } else {
        SEEDS
    };
    let template = Options::new(0, STEPS);
    let sweep = run_seeds(100_000, seeds, &template, default_threads(), |_, _, _| {});
    for f in &sweep.failures {
        eprint!("{}", failure_report(f));
    }
    eprintln!("sim: totals {:?}", sweep.stats);
    println!("sim: {} passed, {} failed", sweep.passed, sweep.failed);
    assert_eq!(
        sweep.failed, 0,
        "the simulator found violations (reports above)"
    );
    // The sweep must exercise what it claims to: faults, crashes,
    // membership changes, snapshots, reads and elections all happened.
    let s = &sweep.stats;
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
}
