//! The simulated disk's knobs and tallies: which faults it injects and how
//! often (`Faults`, `SimOptions`), and how many it injected
//! (`FaultCounts`), so that tests and the simulator can report them.

/// What a failed sync does to the dirty pages it did not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPages {
    /// Marked clean without reaching the media (Linux): reads still show
    /// them until a crash, and no later sync writes them.
    Forget,
    /// Left dirty: a later sync may write them.
    Keep,
    /// One or the other, drawn per failure.
    Either,
}

/// Switches and rates of each fault kind. Rates are per million: per sync
/// for `sync_error_ppm` (data and directory syncs), per sector reaching the
/// media for `bit_flip_ppm` and `misdirect_ppm`; 0 turns a kind off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// A crash during a flush lands any subset of its in-flight write's
    /// sectors (off: none of them).
    pub torn_writes: bool,
    /// A crash may keep unsynced sectors and a prefix of unsynced
    /// directory operations (off: it keeps exactly the synced state).
    pub crash_writeback: bool,
    pub sync_error_ppm: u32,
    pub sync_error_pages: ErrorPages,
    pub bit_flip_ppm: u32,
    pub misdirect_ppm: u32,
}

impl Faults {
    /// A perfect disk that loses only what was not synced.
    pub const NONE: Faults = Faults {
        torn_writes: false,
        crash_writeback: false,
        sync_error_ppm: 0,
        sync_error_pages: ErrorPages::Either,
        bit_flip_ppm: 0,
        misdirect_ppm: 0,
    };

    /// Every kind on, at rates low enough that a run mostly works: one sync
    /// in a thousand fails, one sector in a hundred thousand rots or goes
    /// astray.
    pub const LOW: Faults = Faults {
        torn_writes: true,
        crash_writeback: true,
        sync_error_ppm: 1_000,
        sync_error_pages: ErrorPages::Either,
        bit_flip_ppm: 10,
        misdirect_ppm: 10,
    };
}

/// How a simulated disk behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Drives every choice of the disk.
    pub seed: u64,
    /// 512 or 4096; `None`: drawn from the seed.
    pub sector_size: Option<u64>,
    /// Bytes the files may hold in total (their lengths, unlinked files
    /// still open included); past it, `ENOSPC`.
    pub capacity: u64,
    /// A flush completes after between 0 and this many non-waiting polls
    /// (drawn per flush), so that completions interleave with other events.
    pub max_flush_polls: u32,
    pub faults: Faults,
}

impl SimOptions {
    /// No faults, unlimited capacity, flushes taking up to 3 polls.
    pub fn new(seed: u64) -> Self {
        SimOptions {
            seed,
            sector_size: None,
            capacity: u64::MAX,
            max_flush_polls: 3,
            faults: Faults::NONE,
        }
    }
}

/// Faults injected (and their consequences) since the disk was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub crashes: u64,
    /// In-flight writes cut by a crash.
    pub torn_writes: u64,
    /// Sectors of those writes that landed, and that did not.
    pub torn_sectors_kept: u64,
    pub torn_sectors_lost: u64,
    /// Unsynced sectors a crash dropped (the normal cost of a crash).
    pub unsynced_sectors_lost: u64,
    /// Unsynced sectors a crash kept (written back before it).
    pub written_back_sectors: u64,
    /// Unsynced directory operations a crash dropped, and kept.
    pub dir_ops_lost: u64,
    pub dir_ops_written_back: u64,
    /// Failed data or directory syncs.
    pub sync_errors: u64,
    /// Dirty sectors a failed sync marked clean without writing them.
    pub pages_forgotten: u64,
    pub enospc: u64,
    pub bit_flips: u64,
    pub misdirected_writes: u64,
}
