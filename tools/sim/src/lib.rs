//! corelog-sim: a deterministic simulator of corelog's Raft core.
//!
//! 3 to 7 nodes run the real `RawNode` over `MemStorage`, connected by a
//! simulated network that drops, duplicates, delays and reorders messages
//! and can be partitioned; nodes crash (losing what the Ready contract did
//! not make durable) and restart; clients propose, read and change the
//! membership; logs are compacted so that lagging nodes catch up by
//! snapshot. With `Options::storage` set to `StorageKind::Wal`
//! (`--storage wal`) every node runs on corelog's WAL over a simulated
//! disk with faults, crashes go through real recovery (store.rs,
//! wal_store.rs, wal_run.rs). A quarter of the seeds run every node with asynchronous
//! storage writes, whose completions are steps of their own (a crash loses
//! the writes not yet completed). All choices come from one seeded PRNG and
//! time is counted in ticks, so a seed is one exact history: any failure
//! replays with
//! `cargo run --release -p corelog-sim -- --seed N`.
//!
//! After every step the invariants of `checker` are checked (election
//! safety, leader append-only, log matching, leader completeness, state
//! machine safety, durability across crashes, linearizable reads), and in
//! the calm phases liveness.
//!
//! Modules: `rng` (the PRNG), `net` (messages in flight, partitions),
//! `node` (one server and its disk; the only user of the core's API),
//! `checker` (the invariants), `event` (the event log and its hash), `sim`
//! (the loop). This crate must never influence the core beyond its public
//! API and the `Config` a test hook adjusts.

pub mod checker;
pub mod clock;
pub mod event;
pub mod net;
pub mod node;
pub mod rng;
pub mod sim;
pub mod store;
pub mod wal_run;
pub mod wal_store;

use std::cell::{Cell, RefCell};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

pub use checker::Violation;
#[cfg(corelog_sim_bugs)]
pub use sim::DriverBugs;
pub use sim::{Failure, Options, Outcome, Params, Sim, Stats, StorageKind, seed_runs_async};
pub use wal_run::{WalFlush, seed_mixes_flushes};

thread_local! {
    /// Set while a simulation runs on this thread: its panics are failures
    /// to report, not noise for stderr.
    static IN_SIM: Cell<bool> = const { Cell::new(false) };
    /// The message and location of the last panic inside a simulation.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that captures panics raised
/// inside simulations, with their location, and leaves every other panic to
/// the previous hook.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_SIM.with(|f| f.get()) {
                let loc = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let msg = payload_text(info.payload());
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("panic{loc}: {msg}")));
            } else {
                prev(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// The text of a panic caught by `Sim::run`, with its location when the
/// hook captured it.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| format!("panic: {}", payload_text(payload)))
}

/// Runs one seed.
pub fn run_seed(opts: Options) -> Outcome {
    install_panic_hook();
    IN_SIM.with(|f| f.set(true));
    let out = Sim::new(opts).run();
    IN_SIM.with(|f| f.set(false));
    out
}

/// What a sweep of many seeds found.
#[derive(Debug, Default)]
pub struct Sweep {
    pub passed: u64,
    pub failed: u64,
    /// The failing runs, in seed order.
    pub failures: Vec<Outcome>,
    /// Totals over all runs.
    pub stats: Stats,
}

/// Runs seeds `start .. start + count` on `threads` worker threads. Each
/// seed's run is independent, so which worker runs it changes nothing.
/// `progress` is called on the calling thread after each finished seed
/// with (done, failed so far, the outcome).
pub fn run_seeds(
    start: u64,
    count: u64,
    template: &Options,
    threads: usize,
    mut progress: impl FnMut(u64, u64, &Outcome),
) -> Sweep {
    let next = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel::<Outcome>();
    let mut sweep = Sweep::default();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let mut o = template.clone();
                    o.seed = start + i;
                    if tx.send(run_seed(o)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for out in rx {
            sweep.stats.add(&out.stats);
            if out.passed() {
                sweep.passed += 1;
            } else {
                sweep.failed += 1;
            }
            progress(sweep.passed + sweep.failed, sweep.failed, &out);
            if !out.passed() {
                sweep.failures.push(out);
            }
        }
    });
    sweep.failures.sort_by_key(|o| o.seed);
    sweep
}

/// The command that replays a run exactly.
pub fn replay_command(
    seed: u64,
    steps: u64,
    lease_reads: bool,
    async_writes: bool,
    wal: bool,
) -> String {
    let mut s = format!("cargo run --release -p corelog-sim -- --seed {seed}");
    if steps != DEFAULT_STEPS {
        s.push_str(&format!(" --steps {steps}"));
    }
    if lease_reads {
        s.push_str(" --lease-reads");
    }
    if async_writes {
        s.push_str(" --async-writes");
    }
    if wal {
        s.push_str(" --storage wal");
    }
    s
}

/// Steps per seed when none are given.
pub const DEFAULT_STEPS: u64 = 2_000;

/// A failing run's report: seed, invariant, last events, replay command.
pub fn failure_report(out: &Outcome) -> String {
    let Some(f) = &out.failure else {
        return format!("seed {}: passed", out.seed);
    };
    let mut s = format!(
        "sim: seed {} FAILED at step {} (tick {}): {}\n  params: {:?}{}\n  last events:\n",
        out.seed,
        f.step,
        f.tick,
        f.violation,
        out.params,
        if out.async_writes {
            " async-storage-writes"
        } else {
            ""
        }
    );
    for line in &f.tail {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s.push_str(&format!("  replay: {}\n", out.replay));
    s
}

/// The number of worker threads to use: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
