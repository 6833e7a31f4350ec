//! The simulator's runner.
//!
//! `corelog-sim --seeds N --steps M --seed-start S [--threads T]` runs seeds
//! S..S+N, one worker per core, shows progress on stderr, prints a report
//! for each failing seed and ends with `sim: N passed, M failed`; the exit
//! status is non-zero on any failure.
//!
//! `corelog-sim --seed N [--steps M]` replays one seed and prints its whole
//! event log and the log's hash.
//!
//! `--async-writes` runs every seed with asynchronous storage writes (by
//! default a quarter of the seeds do, see `seed_runs_async`).
//!
//! `--storage wal` runs every node on corelog's WAL over a simulated
//! faulty disk instead of `MemStorage` (see README, "The WAL on a
//! simulated disk"); `--wal-flush seed|ring|inline|mixed` says which path
//! its flushes take (default `seed`: half the runs draw each flush's path,
//! the others keep the ring; `ring` gives any seed the history it had
//! before the inline path existed).
//!
//! Built with `RUSTFLAGS="--cfg corelog_sim_bugs"` (best in a target
//! directory of its own), both take `--bug NAME` to switch on one of the
//! core's deliberate bugs (to replay a failure of tests/bugs.rs).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use corelog_sim::{
    DEFAULT_STEPS, Options, StorageKind, WalFlush, default_threads, failure_report, run_seed,
    run_seeds,
};

const USAGE: &str = "usage:
  corelog-sim --seeds N [--steps M] [--seed-start S] [--threads T] [--quiet] [--lease-reads] [--async-writes] [--storage mem|wal] [--wal-flush seed|ring|inline|mixed]
  corelog-sim --seed N [--steps M] [--lease-reads] [--async-writes] [--storage mem|wal] [--wal-flush seed|ring|inline|mixed]
  (built with RUSTFLAGS=\"--cfg corelog_sim_bugs\", both also take --bug NAME: vote_ignores_log,
  commit_any_term, unsynced_vote, read_without_quorum, follower_commit_to_last_index,
  heartbeat_commit_beyond_match, leader_skips_empty_entry, probe_one_too_far,
  restore_keeps_conflicting_log, vote_cleared_without_term_change,
  lease_always_holds; with --storage wal also: wal_reuse_flush_seq, wal_unbound_records,
  wal_partial_flush, ack_before_flush)";

struct Args {
    seed: Option<u64>,
    seeds: u64,
    seed_start: u64,
    steps: u64,
    threads: usize,
    quiet: bool,
    bug: Option<Bug>,
    lease_reads: bool,
    async_writes: bool,
    storage: StorageKind,
    wal_flush: WalFlush,
}

/// A deliberate bug: of the core, of the WAL, or of the driver.
#[derive(Clone, Copy)]
#[cfg_attr(not(corelog_sim_bugs), allow(dead_code))]
enum Bug {
    Core(fn(&mut corelog::raft::Config)),
    #[cfg(corelog_sim_bugs)]
    Wal(fn(&mut corelog::wal::Options)),
    #[cfg(corelog_sim_bugs)]
    AckBeforeFlush,
}

impl Bug {
    fn apply(self, o: &mut Options) {
        match self {
            Bug::Core(h) => o.config_hook = Some(h),
            #[cfg(corelog_sim_bugs)]
            Bug::Wal(h) => o.wal_hook = Some(h),
            #[cfg(corelog_sim_bugs)]
            Bug::AckBeforeFlush => o.driver_bugs.ack_before_flush = true,
        }
    }
}

/// The deliberate bug named `name` (see corelog's `Bugs`), as a config hook.
#[cfg(corelog_sim_bugs)]
fn bug_hook(name: &str) -> Result<Bug, String> {
    Ok(match name {
        "wal_reuse_flush_seq" => Bug::Wal(|o| o.bugs.reuse_flush_seq = true),
        "wal_unbound_records" => Bug::Wal(|o| o.bugs.unbound_records = true),
        "wal_partial_flush" => Bug::Wal(|o| o.bugs.partial_flush = true),
        "ack_before_flush" => Bug::AckBeforeFlush,
        other => Bug::Core(core_bug_hook(other)?),
    })
}

#[cfg(corelog_sim_bugs)]
fn core_bug_hook(name: &str) -> Result<fn(&mut corelog::raft::Config), String> {
    Ok(match name {
        "vote_ignores_log" => |c| c.bugs.vote_ignores_log = true,
        "commit_any_term" => |c| c.bugs.commit_any_term = true,
        "unsynced_vote" => |c| c.bugs.unsynced_vote = true,
        "read_without_quorum" => |c| c.bugs.read_without_quorum = true,
        "follower_commit_to_last_index" => |c| c.bugs.follower_commit_to_last_index = true,
        "heartbeat_commit_beyond_match" => |c| c.bugs.heartbeat_commit_beyond_match = true,
        "leader_skips_empty_entry" => |c| c.bugs.leader_skips_empty_entry = true,
        "probe_one_too_far" => |c| c.bugs.probe_one_too_far = true,
        "restore_keeps_conflicting_log" => |c| c.bugs.restore_keeps_conflicting_log = true,
        "vote_cleared_without_term_change" => |c| c.bugs.vote_cleared_without_term_change = true,
        "lease_always_holds" => |c| c.bugs.lease_always_holds = true,
        other => return Err(format!("unknown bug {other}")),
    })
}

#[cfg(not(corelog_sim_bugs))]
fn bug_hook(_: &str) -> Result<Bug, String> {
    Err("--bug needs a build with RUSTFLAGS=\"--cfg corelog_sim_bugs\"".to_string())
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seed: None,
        seeds: 100,
        seed_start: 0,
        steps: DEFAULT_STEPS,
        threads: default_threads(),
        quiet: false,
        bug: None,
        lease_reads: false,
        async_writes: false,
        storage: StorageKind::Mem,
        wal_flush: WalFlush::Seed,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse::<u64>().map_err(|e| format!("{name} {v}: {e}"))
        };
        match flag.as_str() {
            "--seed" => a.seed = Some(value("--seed")?),
            "--seeds" => a.seeds = value("--seeds")?,
            "--seed-start" => a.seed_start = value("--seed-start")?,
            "--steps" => a.steps = value("--steps")?,
            "--threads" => a.threads = value("--threads")?.max(1) as usize,
            "--quiet" => a.quiet = true,
            "--lease-reads" => a.lease_reads = true,
            "--async-writes" => a.async_writes = true,
            "--storage" => {
                a.storage = match it.next().as_deref() {
                    Some("mem") => StorageKind::Mem,
                    Some("wal") => StorageKind::Wal,
                    other => return Err(format!("--storage needs mem or wal, not {other:?}")),
                }
            }
            "--wal-flush" => {
                a.wal_flush = match it.next().as_deref() {
                    Some("seed") => WalFlush::Seed,
                    Some("ring") => WalFlush::Ring,
                    Some("inline") => WalFlush::Inline,
                    Some("mixed") => WalFlush::Mixed,
                    other => {
                        return Err(format!(
                            "--wal-flush needs seed, ring, inline or mixed, not {other:?}"
                        ));
                    }
                }
            }
            "--bug" => {
                let name = it.next().ok_or("--bug needs a name")?;
                a.bug = Some(bug_hook(&name)?);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match args.seed {
        Some(seed) => replay(seed, &args),
        None => sweep(&args),
    }
}

fn replay(seed: u64, a: &Args) -> ExitCode {
    let mut o = Options::new(seed, a.steps);
    o.lease_reads = a.lease_reads;
    o.async_writes = a.async_writes;
    o.keep_all_events = true;
    o.storage = a.storage;
    o.wal_flush = a.wal_flush;
    if let Some(b) = a.bug {
        b.apply(&mut o);
    }
    let out = run_seed(o);
    for line in out.log.as_deref().unwrap_or_default() {
        println!("{line}");
    }
    println!(
        "sim: seed {seed}: {} steps, {} ticks, {} events, event log hash {:016x}{}",
        out.steps,
        out.stats.ticks,
        out.events,
        out.event_hash,
        if out.async_writes {
            " (asynchronous storage writes)"
        } else {
            ""
        }
    );
    println!("sim: stats {:?}", out.stats);
    if out.passed() {
        println!("sim: 1 passed, 0 failed");
        ExitCode::SUCCESS
    } else {
        print!("{}", failure_report(&out));
        println!("sim: 0 passed, 1 failed");
        ExitCode::FAILURE
    }
}

fn sweep(a: &Args) -> ExitCode {
    let t0 = Instant::now();
    let mut last = Instant::now();
    let mut template = Options::new(0, a.steps);
    template.storage = a.storage;
    template.wal_flush = a.wal_flush;
    if let Some(b) = a.bug {
        b.apply(&mut template);
    }
    template.lease_reads = a.lease_reads;
    template.async_writes = a.async_writes;
    eprintln!(
        "sim: seeds {}..{} ({} steps each) on {} threads",
        a.seed_start,
        a.seed_start + a.seeds,
        a.steps,
        a.threads
    );
    let quiet = a.quiet;
    let total = a.seeds;
    // The slowest recovery of a calm phase, in election timeouts: how close
    // the sweep came to the liveness bound.
    let mut slowest: (u64, u64, u64) = (0, 0, 0); // (seed, ticks, election tick)
    let result = run_seeds(
        a.seed_start,
        a.seeds,
        &template,
        a.threads,
        |done, failed, out| {
            let (ticks, et) = (
                out.stats.max_liveness_ticks,
                out.params.election_tick as u64,
            );
            if ticks * slowest.2.max(1) > slowest.1 * et {
                slowest = (out.seed, ticks, et);
            }
            if !out.passed() {
                eprint!("{}", failure_report(out));
            } else if out.stats.wedged > 0 {
                eprintln!(
                    "sim: seed {} wedged by a membership change (liveness unchecked from then on)",
                    out.seed
                );
            }
            if !quiet && (last.elapsed() >= Duration::from_secs(2) || done == total) {
                last = Instant::now();
                let secs = t0.elapsed().as_secs_f64();
                eprintln!(
                    "sim: {done}/{total} seeds, {failed} failed, {:.1}s, {:.0} seeds/s",
                    secs,
                    done as f64 / secs.max(1e-9)
                );
            }
        },
    );
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("sim: {:.1}s; totals: {:?}", secs, result.stats);
    eprintln!(
        "sim: slowest recovery after healing: seed {}, {} ticks ({:.1} election timeouts; the bound is {})",
        slowest.0,
        slowest.1,
        slowest.1 as f64 / slowest.2.max(1) as f64,
        template.liveness_timeouts
    );
    for f in &result.failures {
        eprintln!("sim: failed seed {}: {}", f.seed, f.replay);
    }
    println!("sim: {} passed, {} failed", result.passed, result.failed);
    if result.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
