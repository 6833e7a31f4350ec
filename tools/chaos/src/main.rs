//! `corelog-chaos`: fault runs against real `corelog server` processes
//! (`run`), and the checker of a run's files (`check`).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use corelog_chaos::check::Report;
use corelog_chaos::run::{RunSpec, run};
use corelog_chaos::{check, history};

#[derive(Parser)]
#[command(name = "corelog-chaos", about = "Fault tests for corelog")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Starts a local cluster behind fault proxies, appends and reads
    /// through the client library while a seeded nemesis kills, pauses and
    /// partitions members, heals, reads every replica back and checks the
    /// history. Exits 1 on any anomaly, 2 if the run could not be made.
    Run {
        /// The nemesis's schedule comes from it.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds of faults (then heal, converge and check).
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// 3 or 5.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
        members: u64,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=16))]
        groups: u64,
        /// Appending processes per group.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
        processes: u64,
        /// The corelog executable (default: $CORELOG_BIN, else `corelog`
        /// beside this executable or one directory up).
        #[arg(long)]
        corelog: Option<PathBuf>,
        /// Where data and member logs go (default: a new temporary
        /// directory, removed after a clean run).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The history, JSON lines (default: DIR/history.jsonl).
        #[arg(long)]
        history: Option<PathBuf>,
        /// Every replica's final log (default: DIR/final.json).
        #[arg(long = "final")]
        fin: Option<PathBuf>,
        /// Milliseconds a fault holds: MIN,MAX.
        #[arg(long, default_value = "1000,4000")]
        hold: String,
        /// Milliseconds of quiet between faults: MIN,MAX.
        #[arg(long, default_value = "500,2000")]
        quiet: String,
        /// Full disks among the faults: each member's data on a tmpfs of
        /// its own in a private mount namespace (needs root).
        #[arg(long)]
        disk_full: bool,
    },
    /// Checks a history against the replicas' final logs; exits 1 on any
    /// anomaly, 2 on a file that cannot be read.
    Check {
        /// JSON lines: invoke/ok/fail/info events of appends and reads.
        #[arg(long)]
        history: PathBuf,
        /// {"replicas": {"<member>": [[offset, value], ...]}}.
        #[arg(long = "final")]
        fin: PathBuf,
        /// Anomalies printed in full (all are counted).
        #[arg(long, default_value_t = 50)]
        show: usize,
    },
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Check { history, fin, show } => run_check(&history, &fin, show),
        Cmd::Run {
            seed,
            duration,
            members,
            groups,
            processes,
            corelog,
            dir,
            history,
            fin,
            hold,
            quiet,
            disk_full,
        } => {
            // Before any thread exists: a mount namespace is entered by
            // the whole (single-threaded) process.
            if disk_full && let Err(e) = corelog_chaos::disk::enter_private_mounts() {
                eprintln!("corelog-chaos: --disk-full: {e}");
                return ExitCode::from(2);
            }
            let (Some(hold), Some(quiet)) = (range(&hold), range(&quiet)) else {
                eprintln!(
                    "corelog-chaos: --hold and --quiet take MIN,MAX milliseconds, MIN <= MAX"
                );
                return ExitCode::from(2);
            };
            let Some(binary) = corelog.or_else(find_corelog) else {
                eprintln!(
                    "corelog-chaos: no corelog executable found: pass --corelog PATH or set CORELOG_BIN \
                     (cargo build --release builds target/release/corelog)"
                );
                return ExitCode::from(2);
            };
            let temp = dir.is_none();
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("corelog-chaos-{}-{seed}", std::process::id()))
            });
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("corelog-chaos: {}: {e}", dir.display());
                return ExitCode::from(2);
            }
            let spec = RunSpec {
                seed,
                duration: Duration::from_secs(duration),
                members,
                groups,
                processes,
                binary,
                history: history.unwrap_or_else(|| dir.join("history.jsonl")),
                fin: fin.unwrap_or_else(|| dir.join("final.json")),
                dir: dir.clone(),
                hold,
                quiet,
                disk_full,
            };
            println!(
                "corelog-chaos: seed {seed}, {duration} s, {members} members, {groups} group(s), data in {}",
                dir.display()
            );
            let outcome = match run(&spec) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!(
                        "corelog-chaos: the run failed: {e} (logs in {})",
                        dir.display()
                    );
                    return ExitCode::from(2);
                }
            };
            let mut all = Report::default();
            for (g, r) in outcome.reports.into_iter().enumerate() {
                print_report(&r, 50);
                if groups > 1 {
                    println!("group {g}: {}", r.summary());
                }
                all.merge(r);
            }
            println!("{}", all.summary());
            for p in &outcome.problems {
                println!("corelog-chaos: {p}");
            }
            if all.is_valid() && outcome.problems.is_empty() {
                if temp {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                ExitCode::SUCCESS
            } else {
                println!("corelog-chaos: files kept in {}", dir.display());
                ExitCode::FAILURE
            }
        }
    }
}

fn range(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(',')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

fn find_corelog() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CORELOG_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("corelog"), dir.parent()?.join("corelog")]
        .into_iter()
        .find(|p| p.is_file())
}

fn print_report(report: &Report, show: usize) {
    for a in report.anomalies.iter().take(show) {
        println!("{a}");
    }
    if report.anomalies.len() > show {
        println!("... and {} more", report.anomalies.len() - show);
    }
}

fn run_check(history: &Path, fin: &Path, show: usize) -> ExitCode {
    let events = match File::open(history)
        .map_err(history::ParseError::Io)
        .and_then(|f| history::read_history(BufReader::new(f)))
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("corelog-chaos: {}: {e}", history.display());
            return ExitCode::from(2);
        }
    };
    let logs = match File::open(fin)
        .map_err(history::ParseError::Io)
        .and_then(|f| history::read_final(BufReader::new(f)))
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("corelog-chaos: {}: {e}", fin.display());
            return ExitCode::from(2);
        }
    };
    let report = check::check(&events, &logs);
    print_report(&report, show);
    println!("{}", report.summary());
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
