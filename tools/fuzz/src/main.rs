//! `corelog-fuzz`: runs the fuzz targets (see the library's doc).
//!
//! - `corelog-fuzz run --target peer --seconds 600 --seed 1`: fuzzes one
//!   target (or `all`, one after another); exits 1 if an input failed,
//!   after writing it to `tools/fuzz/crashes/<target>-<hash>`.
//!   `--save-corpus` adds the inputs that reached new outcomes (up to a
//!   few small ones) to `tools/fuzz/corpus/<target>/`.
//! - `corelog-fuzz seed`: writes every target's seeds into its corpus.
//! - `corelog-fuzz replay --target T FILE...`: runs files through a target.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use corelog_fuzz::{corpus, engine, targets};

#[derive(Parser)]
#[command(about = "Fuzz corelog's decoders (stable Rust, no coverage)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fuzz a target (or `all`, one after another).
    Run {
        #[arg(long)]
        target: String,
        /// Time budget per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Add inputs that reached new outcomes to the corpus.
        #[arg(long)]
        save_corpus: bool,
    },
    /// Write every target's seeds into its corpus directory.
    Seed,
    /// Run files through a target (as given and fixed up).
    Replay {
        #[arg(long)]
        target: String,
        files: Vec<PathBuf>,
    },
}

/// Discoveries added to the corpus per run at most, and their size bound:
/// the committed corpus stays small.
const SAVE_MAX: usize = 48;
const SAVE_MAX_BYTES: usize = 8 << 10;

fn pick(name: &str) -> Result<Vec<&'static targets::Target>, String> {
    if name == "all" {
        return Ok(targets::ALL.iter().collect());
    }
    targets::by_name(name)
        .map(|t| vec![t])
        .ok_or_else(|| format!("no target {name:?}"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("corelog-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool, String> {
    match cli.cmd {
        Cmd::Seed => {
            for t in targets::ALL {
                let dir = corpus::corpus_dir(t.name);
                for s in (t.seeds)() {
                    corpus::save(&dir, "seed-", &s).map_err(|e| e.to_string())?;
                }
                println!("{}: seeds written to {}", t.name, dir.display());
            }
            Ok(true)
        }
        Cmd::Replay { target, files } => {
            let mut ok = true;
            for t in pick(&target)? {
                for f in &files {
                    let b = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
                    match engine::execute_both(t, &b) {
                        Ok(()) => println!("{} {}: ok", t.name, f.display()),
                        Err(e) => {
                            ok = false;
                            println!("{} {}: FAILED: {e}", t.name, f.display());
                        }
                    }
                }
            }
            Ok(ok)
        }
        Cmd::Run {
            target,
            seconds,
            seed,
            save_corpus,
        } => {
            let mut ok = true;
            for t in pick(&target)? {
                let start: Vec<Vec<u8>> = corpus::load(&corpus::corpus_dir(t.name))
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .chain(
                        corpus::load(&corpus::regressions_dir(t.name))
                            .map_err(|e| e.to_string())?,
                    )
                    .map(|(_, b)| b)
                    .collect();
                let r = engine::fuzz(
                    t,
                    start,
                    seed,
                    Duration::from_secs(seconds),
                    u64::MAX,
                    &corpus::crashes_dir(),
                );
                let secs = r.elapsed.as_secs_f64();
                println!(
                    "target {}: {} executions in {:.0} s ({:.0}/s), {} outcomes, {} new, crashes: {}",
                    t.name,
                    r.executions,
                    secs,
                    r.executions as f64 / secs.max(1e-9),
                    r.outcomes,
                    r.discoveries.len(),
                    if r.crash.is_some() { 1 } else { 0 },
                );
                if let Some((path, why)) = &r.crash {
                    ok = false;
                    println!("  CRASH {}: {why}", path.display());
                }
                if save_corpus {
                    let dir = corpus::corpus_dir(t.name);
                    let mut small: Vec<&Vec<u8>> = r
                        .discoveries
                        .iter()
                        .filter(|d| d.len() <= SAVE_MAX_BYTES)
                        .collect();
                    small.sort_by_key(|d| d.len());
                    for d in small.into_iter().take(SAVE_MAX) {
                        corpus::save(&dir, "found-", d).map_err(|e| e.to_string())?;
                    }
                }
            }
            Ok(ok)
        }
    }
}
