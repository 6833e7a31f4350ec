//! The fuzz loop: pick a pool input, mutate it, usually fix up its
//! checksums, run the target under `catch_unwind` with allocations
//! measured. An input that gives an outcome not seen before joins the pool
//! (the only feedback: no coverage instrumentation on stable). The first
//! failure (panic, or an allocation above the target's bound) is written
//! to the crash directory and ends the run.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::alloc;
use crate::corpus;
use crate::mutate::mutate;
use crate::rng::Rng;
use crate::targets::Target;

/// Inputs kept in memory at most (older discoveries are replaced).
const POOL_MAX: usize = 4096;

/// Runs `t` on `input` as given: `Ok(outcome label)`, or why it failed.
pub fn execute(t: &Target, input: &[u8]) -> Result<u64, String> {
    let r = panic::catch_unwind(AssertUnwindSafe(|| alloc::measure(|| (t.run)(input))));
    let bound = t
        .max_alloc
        .saturating_add(t.alloc_per_input_byte.saturating_mul(input.len()));
    match r {
        Ok((outcome, peak)) if peak <= bound => Ok(outcome),
        Ok((_, peak)) => Err(format!(
            "an allocation of {peak} bytes, above the target's bound of {bound} bytes"
        )),
        Err(payload) => {
            alloc::disarm();
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            Err(format!("panic: {msg}"))
        }
    }
}

/// Runs `t` on `input` as given and with its checksums fixed up (how the
/// tests replay corpus and regression files).
pub fn execute_both(t: &Target, input: &[u8]) -> Result<(), String> {
    execute(t, input)?;
    let mut fixed = input.to_vec();
    (t.fixup)(&mut fixed);
    execute(t, &fixed)
        .map(|_| ())
        .map_err(|e| format!("(fixed up) {e}"))
}

/// What one run did.
#[derive(Debug)]
pub struct Report {
    pub executions: u64,
    pub elapsed: Duration,
    /// The input that failed, where it was written, and why.
    pub crash: Option<(PathBuf, String)>,
    /// Distinct outcomes seen.
    pub outcomes: usize,
    /// Inputs that reached a new outcome (beyond the starting corpus).
    pub discoveries: Vec<Vec<u8>>,
}

/// Fuzzes `t` from `start` (never empty: the target's seeds are used if
/// it is) for `budget` or `max_execs`, whichever ends first.
pub fn fuzz(
    t: &Target,
    start: Vec<Vec<u8>>,
    seed: u64,
    budget: Duration,
    max_execs: u64,
    crash_dir: &Path,
) -> Report {
    let mut pool = if start.is_empty() { (t.seeds)() } else { start };
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let base = pool.len();
    let mut rng = Rng::new(seed);
    let mut seen = HashSet::new();
    let mut discoveries = Vec::new();
    let began = Instant::now();
    let mut executions = 0u64;
    // Panics are expected and reported by us, once: keep the default hook
    // from printing a backtrace for each.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut crash = None;
    // The starting corpus first, as given and fixed up.
    for input in pool.clone() {
        let mut fixed = input.clone();
        (t.fixup)(&mut fixed);
        for i in [input, fixed] {
            executions += 1;
            match execute(t, &i) {
                Ok(o) => {
                    seen.insert(o);
                }
                Err(why) => {
                    crash = Some(write_crash(t, crash_dir, &i, why));
                    break;
                }
            }
        }
        if crash.is_some() {
            break;
        }
    }
    while crash.is_none() && executions < max_execs {
        if executions.is_multiple_of(256) && began.elapsed() >= budget {
            break;
        }
        let a = rng.below(pool.len());
        let b = rng.below(pool.len());
        let mut input = pool[a].clone();
        mutate(&mut rng, &mut input, &pool[b]);
        if !rng.one_in(4) {
            (t.fixup)(&mut input);
        }
        executions += 1;
        match execute(t, &input) {
            Ok(o) => {
                if seen.insert(o) {
                    discoveries.push(input.clone());
                    if pool.len() < POOL_MAX {
                        pool.push(input);
                    } else {
                        let at = base + rng.below(POOL_MAX - base);
                        pool[at] = input;
                    }
                }
            }
            Err(why) => crash = Some(write_crash(t, crash_dir, &input, why)),
        }
    }
    panic::set_hook(hook);
    Report {
        executions,
        elapsed: began.elapsed(),
        crash,
        outcomes: seen.len(),
        discoveries,
    }
}

fn write_crash(t: &Target, dir: &Path, input: &[u8], why: String) -> (PathBuf, String) {
    let path = corpus::save(dir, &format!("{}-", t.name), input)
        .unwrap_or_else(|e| PathBuf::from(format!("<not written: {e}>")));
    (path, why)
}
