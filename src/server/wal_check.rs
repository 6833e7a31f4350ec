//! `corelog wal-check DIR`: a member's data directory verified offline.
//! Reads `member.meta` (or takes DIR as one WAL directory when it has
//! none), opens every shard's WAL read-only (recovery's checks: every
//! crc, the batch chain, a torn tail told apart from corruption, which is
//! refused naming the file and offset), and replays each group's entries
//! through a `LogState` to count its batches and records and find its
//! offsets, as the server would after a restart. Writes nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::log::LogState;
use crate::shard::{MemberMeta, shard_dir};
use crate::wal::{self, Options, Wal};

/// Entries read from the WAL at once.
const CHUNK: u64 = 1024;

/// What one group's log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCheck {
    pub group: u64,
    pub shard: u32,
    pub first_index: u64,
    pub last_index: u64,
    pub term: u64,
    pub commit: u64,
    /// Record batches and their records in the entries held.
    pub batches: u64,
    pub records: u64,
    /// The offset the next record gets, replaying every entry held (only
    /// when the log starts at index 1; a compacted log needs its
    /// snapshot).
    pub next_offset: Option<u64>,
    /// Entries whose data the log state refused (applied as no-ops).
    pub refused: u64,
}

/// What one shard's WAL holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCheck {
    pub shard: u32,
    pub dir: PathBuf,
    pub segments: usize,
    pub wal_records: u64,
    pub torn_bytes: u64,
    pub torn_at: Option<(PathBuf, u64)>,
    pub groups: Vec<GroupCheck>,
}

/// The whole directory's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirCheck {
    /// `member.meta`'s (cluster id, member id, shards), if there is one.
    pub meta: Option<(u64, u64, u32)>,
    pub shards: Vec<ShardCheck>,
}

/// Why a directory failed its check.
#[derive(Debug)]
pub enum CheckError {
    Meta(String),
    /// A WAL that does not open: corruption before the tail, a foreign
    /// file, an I/O error. The message names the file and offset when the
    /// WAL does.
    Wal {
        dir: PathBuf,
        error: wal::Error,
    },
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Meta(e) => write!(f, "{e}"),
            CheckError::Wal { dir, error } => write!(f, "{}: {error}", dir.display()),
        }
    }
}

impl std::error::Error for CheckError {}

/// Checks `dir` (see the module doc).
pub fn check_dir(dir: &Path) -> Result<DirCheck, CheckError> {
    let meta = MemberMeta::read(dir).map_err(|e| CheckError::Meta(e.to_string()))?;
    let dirs: Vec<(u32, PathBuf)> = match &meta {
        Some(m) => (0..m.shards).map(|k| (k, shard_dir(dir, k))).collect(),
        None => vec![(0, dir.to_path_buf())],
    };
    let mut shards = Vec::new();
    for (k, d) in dirs {
        shards.push(check_wal(k, &d)?);
    }
    Ok(DirCheck {
        meta: meta.map(|m| (m.cluster_id, m.member_id, m.shards)),
        shards,
    })
}

fn check_wal(shard: u32, dir: &Path) -> Result<ShardCheck, CheckError> {
    let mut o = Options::new(0, 0);
    o.read_only = true;
    o.adopt_identity = true;
    let werr = |error| CheckError::Wal {
        dir: dir.to_path_buf(),
        error,
    };
    let wal = Wal::open(dir, o).map_err(werr)?;
    let mut groups = Vec::new();
    for g in wal.group_ids() {
        let s = wal.summary(g);
        let mut c = GroupCheck {
            group: g,
            shard,
            first_index: s.first_index,
            last_index: s.last_index,
            term: s.hard_state.term,
            commit: s.hard_state.commit,
            batches: 0,
            records: 0,
            next_offset: None,
            refused: 0,
        };
        let mut state = (s.first_index == 1).then(|| LogState::new(Default::default()));
        let mut lo = s.first_index.max(1);
        while lo <= s.last_index && s.last_index > 0 {
            let hi = (lo + CHUNK).min(s.last_index + 1);
            let es = wal.entries(g, lo, hi, u64::MAX).map_err(werr)?;
            if es.is_empty() {
                break;
            }
            for e in &es {
                if e.data.first() == Some(&crate::log::BATCH_MAGIC) {
                    if let Some(n) = e.data.get(4..8) {
                        c.batches += 1;
                        c.records += u64::from(u32::from_le_bytes([n[0], n[1], n[2], n[3]]));
                    }
                }
                if let Some(st) = state.as_mut() {
                    match st.apply_entry(e) {
                        Ok(crate::log::ApplyOutcome::Refused(_)) => c.refused += 1,
                        Ok(_) => {}
                        // Not in order: the log is not replayable as is.
                        Err(_) => state = None,
                    }
                }
            }
            lo += es.len() as u64;
        }
        c.next_offset = state.map(|s| s.next_offset());
        groups.push(c);
    }
    let r = wal.recovery_report();
    Ok(ShardCheck {
        shard,
        dir: dir.to_path_buf(),
        segments: wal.segment_seqs().len(),
        wal_records: r.records,
        torn_bytes: r.torn_bytes,
        torn_at: r.torn_at.clone(),
        groups,
    })
}

impl DirCheck {
    /// The summary `corelog wal-check` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some((c, m, s)) = self.meta {
            let _ = writeln!(out, "member {m} of cluster {c:#x}, {s} shard(s)");
        }
        for sh in &self.shards {
            let _ = writeln!(
                out,
                "shard {}: {}: {} segment(s), {} WAL records, {}",
                sh.shard,
                sh.dir.display(),
                sh.segments,
                sh.wal_records,
                match &sh.torn_at {
                    Some((f, off)) => format!(
                        "torn tail of {} bytes at {} offset {off} (dropped, as recovery does)",
                        sh.torn_bytes,
                        f.display()
                    ),
                    None => "no torn tail".to_string(),
                }
            );
            for g in &sh.groups {
                let _ = writeln!(
                    out,
                    "  group {}: entries {}..={}, term {}, commit {}, {} batches, {} records, next offset {}{}",
                    g.group,
                    g.first_index,
                    g.last_index,
                    g.term,
                    g.commit,
                    g.batches,
                    g.records,
                    g.next_offset
                        .map_or("unknown (compacted log)".to_string(), |o| o.to_string()),
                    if g.refused > 0 {
                        format!(", {} refused entries", g.refused)
                    } else {
                        String::new()
                    }
                );
            }
        }
        out
    }
}
