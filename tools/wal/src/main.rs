//! `corelog-wal`: the operator's tool for a shard's WAL directory, so that
//! crash and corruption experiments can be run from outside the test suite.
//!
//! - `fill DIR --groups G --records N --size B` appends N records of B bytes
//!   spread round-robin over groups 1..=G, fsync on, and after every
//!   completed flush prints `durable group=<g> index=<i>` for each group the
//!   flush advanced (only after the flush returned: a printed index is on
//!   disk). Run again on the same directory, it continues each group's log.
//! - `verify DIR` recovers the directory read-only and prints each group's
//!   `group=<g> first=<i> last=<i> term=<t> commit=<c>`, then
//!   `verify: ok, R records, T torn bytes truncated`, or
//!   `verify: corrupt <file> at offset <o>: <what>` and exits 1.
//!
//! Entry data is a pattern of (group, index), so that a later check can
//! tell a right entry from a wrong one; `fill` never prints an index it has
//! not seen durable.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use corelog::raftpb::{Entry, HardState};
use corelog::wal::{Error, Options, Wal};

#[derive(Parser)]
#[command(name = "corelog-wal", about = "Fill or verify a corelog WAL directory")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Append records with fsync, printing what each flush made durable.
    Fill {
        dir: PathBuf,
        #[arg(long, default_value_t = 4)]
        groups: u64,
        #[arg(long, default_value_t = 10_000)]
        records: u64,
        #[arg(long, default_value_t = 128)]
        size: usize,
        /// Records per flush.
        #[arg(long, default_value_t = 16)]
        batch: u64,
        #[arg(long, default_value_t = 1)]
        cluster: u64,
        #[arg(long, default_value_t = 0)]
        shard: u64,
        /// Size of new segments in bytes.
        #[arg(long, default_value_t = 64 << 20)]
        segment_size: u64,
    },
    /// Recover read-only and report each group and the tail.
    Verify { dir: PathBuf },
}

/// The data of entry `index` of `group`: `size` bytes that depend on both.
pub fn pattern(group: u64, index: u64, size: usize) -> Bytes {
    let seed = group.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index;
    Bytes::from(
        (0..size)
            .map(|k| (seed.rotate_left((k % 64) as u32) as u8) ^ (k as u8))
            .collect::<Vec<u8>>(),
    )
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Fill {
            dir,
            groups,
            records,
            size,
            batch,
            cluster,
            shard,
            segment_size,
        } => {
            let mut o = Options::new(cluster, shard);
            o.segment_size = segment_size;
            match fill(dir, o, groups.max(1), records, size, batch.max(1)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fill: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Verify { dir } => verify(dir),
    }
}

fn fill(
    dir: PathBuf,
    opts: Options,
    groups: u64,
    records: u64,
    size: usize,
    batch: u64,
) -> Result<(), Error> {
    let mut wal = Wal::open(&dir, opts)?;
    let mut next: Vec<u64> = (1..=groups).map(|g| wal.last_index(g) + 1).collect();
    let mut advanced = vec![false; groups as usize];
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut entry = [Entry::default()];
    let mut r = 0;
    while r < records {
        let end = (r + batch).min(records);
        for k in r..end {
            let g = (k % groups) as usize;
            let group = g as u64 + 1;
            entry[0] = Entry {
                term: 1,
                index: next[g],
                r#type: 0,
                data: pattern(group, next[g], size),
            };
            let _ = wal.append_entries(group, &entry)?;
            next[g] += 1;
            advanced[g] = true;
        }
        for (g, adv) in advanced.iter().enumerate() {
            if *adv {
                let hs = HardState {
                    term: 1,
                    vote: 0,
                    commit: next[g] - 1,
                };
                let _ = wal.set_hard_state(g as u64 + 1, &hs)?;
            }
        }
        wal.flush()?;
        for (g, adv) in advanced.iter_mut().enumerate() {
            if *adv {
                // Printed only now: the flush has returned, so it is durable.
                let _ = writeln!(out, "durable group={} index={}", g + 1, next[g] - 1);
                *adv = false;
            }
        }
        let _ = out.flush();
        r = end;
    }
    Ok(())
}

/// Where and what, for every error that describes the directory's content.
fn locate(e: &Error) -> Option<(PathBuf, u64, String)> {
    Some(match e {
        Error::Corrupt { file, offset, what } => (file.clone(), *offset, what.clone()),
        Error::TruncatedSegment { file, len, .. } => (file.clone(), *len, e.to_string()),
        Error::BadMagic { file } | Error::UnknownVersion { file, .. } => {
            (file.clone(), 0, e.to_string())
        }
        Error::Foreign { file, .. } => (file.clone(), 0, e.to_string()),
        Error::MissingSegment { dir, seq } => (
            dir.join(format!("{seq:020}.wal")),
            0,
            "segment missing".to_string(),
        ),
        _ => return None,
    })
}

fn verify(dir: PathBuf) -> ExitCode {
    let mut o = Options::new(0, 0);
    o.read_only = true;
    o.adopt_identity = true;
    let wal = match Wal::open(&dir, o) {
        Ok(w) => w,
        Err(e) => {
            if let Some((file, offset, what)) = locate(&e) {
                println!(
                    "verify: corrupt {} at offset {offset}: {what}",
                    file.display()
                );
            } else {
                println!("verify: error: {e}");
            }
            return ExitCode::from(1);
        }
    };
    for g in wal.group_ids() {
        let s = wal.summary(g);
        println!(
            "group={g} first={} last={} term={} commit={}",
            s.first_index, s.last_index, s.hard_state.term, s.hard_state.commit
        );
    }
    let r = wal.recovery_report();
    println!(
        "verify: ok, {} records, {} torn bytes truncated",
        r.records, r.torn_bytes
    );
    ExitCode::SUCCESS
}
