//! `--storage wal`: what a run draws for its WALs and disks, and the fault
//! schedule of its disks.
//!
//! Drawn once per run, from a stream of its own (so that the seed's other
//! draws are those of a run without the WAL): the segment size (4 to 16
//! KiB: a node writes some tens of KiB in a run, so that rolls, recycling,
//! relocation and GC happen in every run),
//! flush and cache budgets, and each disk's faults. Every disk tears the
//! write in flight and writes back part of what was not synced when its
//! node crashes, and fails a sync now and then (EIO, with the dirty pages
//! kept or forgotten); the schedule fills a disk (ENOSPC) now and then.
//!
//! Each flush runs on the ring (`start_flush`, reaped by later polls of the
//! disk) or inline (`flush_inline`, complete when the call returns), as
//! `WalFlush` says. In a mixed run each flush draws its path, and an
//! inline flush is now and then cut by a power loss in its middle (aimed,
//! as crashes are on the ring, at flushes that reach a new segment). Those
//! draws come from a stream of their own, so a run on the ring alone has
//! exactly the history it had before the inline path existed. By default
//! half the runs are mixed (`seed_mixes_flushes`), the others on the ring.
//!
//! Faults that lose synced data (bit flips, misdirected writes, rot at
//! rest) go to one disk only, the fragile one, and only in runs with at
//! least five voters, whose membership changes then never go below five
//! voters while it is a member (`keeps_majority`): a node that finds its
//! WAL corrupt stays down for good, and the rest must still hold a
//! majority of every configuration.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use corelog::wal::disk::{ErrorPages, FaultCounts, Faults, SimDisk, SimOptions};
use corelog::wal::{self};

use crate::rng::Rng;

/// Mixed into the seed for the WAL's own stream.
const WAL_SALT: u64 = 0x3a1d_15c0_0000_0011;

/// Mixed into the seed for the stream of flush paths.
const FLUSH_SALT: u64 = 0x1711_7e00_0000_0011;

/// Mixed into the seed for the choice of mixed runs. Chosen so that the
/// seeds named for `--storage wal` stay on the ring and keep the histories
/// they were found with: the ten that fail on main when this was written
/// (4638, 9248, 10163, 21888, 32306, 47074, 56484, 64909, 89725, 92189),
/// 387 and 540 of tests/bugs.rs (`wal_partial_flush`), and 499 and 1059
/// of the README.
const MIXED_SALT: u64 = 0x1711_7e00_0001_4e51;

/// Whether a run flushes on both paths (`WalFlush::Seed`): one seed in two
/// (50.2% of seeds 0..100,000). Drawn apart from every stream of the run,
/// so that the other seeds' histories are those of the ring alone.
pub fn seed_mixes_flushes(seed: u64) -> bool {
    let mut x = seed ^ MIXED_SALT;
    crate::rng::splitmix64(&mut x) % 2 == 0
}

/// Which path a run's flushes take (`--wal-flush`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFlush {
    /// `Mixed` or `Ring` as `seed_mixes_flushes` says (the default).
    Seed,
    /// Each flush draws its path.
    Mixed,
    /// Every flush on the ring, reaped by polls: the histories of the runs
    /// before the inline path existed.
    Ring,
    /// Every flush inline.
    Inline,
}

/// Voters a run needs before one of its disks may lose synced data.
pub const FRAGILE_MIN_VOTERS: usize = 5;

pub struct WalRun {
    rng: Rng,
    flush: WalFlush,
    /// The draws of flush paths and of cuts into inline flushes.
    paths: Rng,
    pub segment_size: u64,
    pub max_flush_bytes: usize,
    pub cache_bytes: u64,
    pub relocate_bytes: u64,
    /// Failed syncs per million, on every disk.
    pub sync_error_ppm: u32,
    /// A flush completes after up to this many polls of the disk: slow
    /// disks let writes pile up behind a flush in flight (and roll into
    /// new segments meanwhile).
    pub max_flush_polls: u32,
    /// The node whose disk may lose synced data, if any.
    pub fragile: Option<u64>,
    hook: Option<fn(&mut wal::Options)>,
    /// Every disk of the run, by node (retired nodes' too: their counters
    /// still count).
    disks: BTreeMap<u64, SimDisk>,
    /// The highest segment sequence seen per node (rolls).
    max_seg: BTreeMap<u64, u64>,
    /// Segments GC removed, over every WAL of the run.
    pub segments_freed: Rc<Cell<u64>>,
    /// In a calm phase: every disk quiet.
    calm: bool,
}

impl WalRun {
    pub fn draw(
        seed: u64,
        voters: u64,
        hook: Option<fn(&mut wal::Options)>,
        flush: WalFlush,
    ) -> WalRun {
        let mut rng = Rng::new(seed ^ WAL_SALT);
        // A node writes some tens of KiB in a run: segments of 4 to 16 KiB
        // roll every few dozen flushes.
        let segment_size = [4u64 << 10, 4 << 10, 8 << 10][rng.below(3) as usize];
        let max_flush_bytes = [1usize << 10, 4 << 10, 16 << 10][rng.below(3) as usize];
        let cache_bytes = [0u64, 1 << 10, 16 << 10][rng.below(3) as usize];
        let relocate_bytes = [0u64, 512, 4 << 10][rng.below(3) as usize];
        let sync_error_ppm = [0u32, 300, 1_000, 3_000][rng.below(4) as usize];
        let max_flush_polls = [3u32, 30][rng.below(2) as usize];
        let fragile = (voters as usize >= FRAGILE_MIN_VOTERS && rng.chance(3, 4))
            .then(|| rng.range(1, voters));
        let flush = match flush {
            WalFlush::Seed if seed_mixes_flushes(seed) => WalFlush::Mixed,
            WalFlush::Seed => WalFlush::Ring,
            f => f,
        };
        WalRun {
            rng,
            flush,
            paths: Rng::new(seed ^ FLUSH_SALT),
            segment_size,
            max_flush_bytes,
            cache_bytes,
            relocate_bytes,
            sync_error_ppm,
            max_flush_polls,
            fragile,
            hook,
            disks: BTreeMap::new(),
            max_seg: BTreeMap::new(),
            segments_freed: Rc::default(),
            calm: false,
        }
    }

    /// The path the run's flushes take (`Seed` resolved).
    pub fn flush_mode(&self) -> WalFlush {
        self.flush
    }

    /// Whether the flush about to start runs inline (else on the ring).
    pub fn next_inline(&mut self) -> bool {
        match self.flush {
            WalFlush::Ring | WalFlush::Seed => false,
            WalFlush::Inline => true,
            WalFlush::Mixed => self.paths.chance(1, 2),
        }
    }

    /// Whether a power loss cuts the inline flush about to run: three
    /// times in four when it reaches a new segment (a crash then may keep
    /// one part of it: defect 5), one in 32 otherwise; never in a calm
    /// phase or a run without faults.
    pub fn cut_inline(&mut self, rolled: bool, faulty: bool) -> bool {
        if self.calm || !faulty {
            return false;
        }
        if rolled {
            self.paths.chance(3, 4)
        } else {
            self.paths.chance(1, 32)
        }
    }

    /// The WAL options of node `id`.
    pub fn options(&self, id: u64) -> wal::Options {
        let mut o = wal::Options::new(1, id);
        o.segment_size = self.segment_size;
        o.max_flush_bytes = self.max_flush_bytes;
        o.cache_bytes = self.cache_bytes;
        o.relocate_bytes = self.relocate_bytes;
        if let Some(h) = self.hook {
            h(&mut o);
        }
        o
    }

    /// The faults of node `id`'s disk outside calm phases.
    pub fn faults(&self, id: u64) -> Faults {
        if self.calm {
            return Self::calm_faults();
        }
        let fragile = self.fragile == Some(id);
        Faults {
            torn_writes: true,
            crash_writeback: true,
            sync_error_ppm: self.sync_error_ppm,
            sync_error_pages: ErrorPages::Either,
            bit_flip_ppm: if fragile { 1_000 } else { 0 },
            misdirect_ppm: if fragile { 20_000 } else { 0 },
        }
    }

    /// A calm phase: no failed syncs, nothing lost once synced, room on
    /// every disk (crashes do not happen then).
    fn calm_faults() -> Faults {
        Faults {
            torn_writes: true,
            crash_writeback: true,
            ..Faults::NONE
        }
    }

    /// A new, empty disk for node `id`, quiet until `arm` (its WAL is made
    /// and bootstrapped on a disk that does not fail).
    pub fn new_disk(&mut self, id: u64) -> SimDisk {
        let mut o = SimOptions::new(self.rng.next_u64());
        o.faults = Self::calm_faults();
        o.max_flush_polls = self.max_flush_polls;
        let d = SimDisk::new(o);
        self.disks.insert(id, d.clone());
        d
    }

    /// Node `id`'s disk takes its faults (and its room) from now on.
    pub fn arm(&self, id: u64) {
        if let Some(d) = self.disks.get(&id) {
            d.set_faults(self.faults(id));
            d.set_capacity(u64::MAX);
        }
    }

    /// As `arm`, but a full disk stays full.
    pub fn arm_keeping_room(&self, id: u64) {
        if let Some(d) = self.disks.get(&id) {
            d.set_faults(self.faults(id));
        }
    }

    /// Every disk goes quiet (a calm phase begins) or back to its faults.
    pub fn set_calm(&mut self, calm: bool) {
        self.calm = calm;
        for (&id, d) in &self.disks {
            d.set_faults(self.faults(id));
            if calm {
                d.set_capacity(u64::MAX);
            }
        }
    }

    /// Fills node `id`'s disk: what would grow a file fails with ENOSPC
    /// until its operator makes room (`free`, the next `DiskFull` step
    /// that picks it), the node restarts, or a calm phase begins.
    pub fn fill(&self, id: u64) {
        if let Some(d) = self.disks.get(&id) {
            d.set_capacity(d.usage());
        }
    }

    /// Whether node `id`'s disk is filled.
    pub fn is_full(&self, id: u64) -> bool {
        self.disks
            .get(&id)
            .is_some_and(|d| d.capacity() != u64::MAX)
    }

    /// Makes room on node `id`'s disk again (without a restart).
    pub fn free(&self, id: u64) {
        if let Some(d) = self.disks.get(&id) {
            d.set_capacity(u64::MAX);
        }
    }

    pub fn disk(&self, id: u64) -> Option<&SimDisk> {
        self.disks.get(&id)
    }

    /// Whether node `id`'s disk ever lost synced data (a bit flip, a
    /// misdirected write): only then may its WAL find corruption.
    pub fn lost_synced_data(&self, id: u64) -> bool {
        self.disks.get(&id).is_some_and(|d| {
            let c = d.counts();
            c.bit_flips > 0 || c.misdirected_writes > 0
        })
    }

    /// Notes the segments a WAL holds (for the roll count).
    pub fn note_segments(&mut self, id: u64, seqs: &[u64]) {
        if let Some(&top) = seqs.iter().max() {
            let m = self.max_seg.entry(id).or_default();
            *m = (*m).max(top);
        }
    }

    /// Whether a membership change leaving `voters_left` voters, one of
    /// them removed or demoted being `id`, keeps a majority alive should
    /// the fragile disk's node be lost.
    pub fn keeps_majority(&self, id: u64, voters_left: usize, fragile_member: bool) -> bool {
        !fragile_member || self.fragile == Some(id) || voters_left >= FRAGILE_MIN_VOTERS
    }

    /// A draw from the WAL's own stream (rot at rest, disk-full choices).
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.rng.chance(num, den)
    }

    /// The run's disk counters, summed over every disk.
    pub fn totals(&self) -> (FaultCounts, u64) {
        let mut t = FaultCounts::default();
        for d in self.disks.values() {
            let c = d.counts();
            t.crashes += c.crashes;
            t.torn_writes += c.torn_writes;
            t.written_back_sectors += c.written_back_sectors;
            t.unsynced_sectors_lost += c.unsynced_sectors_lost;
            t.sync_errors += c.sync_errors;
            t.enospc += c.enospc;
            t.bit_flips += c.bit_flips;
            t.misdirected_writes += c.misdirected_writes;
        }
        let rolls = self.max_seg.values().map(|m| m.saturating_sub(1)).sum();
        (t, rolls)
    }
}
