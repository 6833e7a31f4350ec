//! `corelog-chaos`: judges a fault run's history and final logs (`check`).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use corelog_chaos::{check, history};

#[derive(Parser)]
#[command(name = "corelog-chaos", about = "Fault tests for corelog")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    }
}

fn run_check(history: &PathBuf, fin: &PathBuf, show: usize) -> ExitCode {
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
    for a in report.anomalies.iter().take(show) {
        println!("{a}");
    }
    if report.anomalies.len() > show {
        println!("... and {} more", report.anomalies.len() - show);
    }
    println!("{}", report.summary());
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
