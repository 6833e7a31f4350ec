//! One simulated file's bytes: the page cache (what reads see) kept apart
//! from the media (what survives a crash), the dirty sectors between them,
//! and how sectors travel from one to the other, with the faults a real
//! drive adds on the way (bit flips, misdirected writes, failed syncs).
//! Knows nothing of names or of flushes: sim.rs owns those.

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;

use super::sim_faults::{ErrorPages, FaultCounts, Faults};
use crate::raft::Prng;

/// What a fault decision needs: the disk's generator, its switches, its
/// sector size and the counters to record what was injected.
pub(super) struct Ctx<'a> {
    pub rng: &'a mut Prng,
    pub faults: &'a Faults,
    pub sector: u64,
    pub counts: &'a mut FaultCounts,
}

impl Ctx<'_> {
    /// True with probability `ppm` / 1,000,000. Draws nothing when the
    /// fault is off, so turning one kind off leaves the others' draws alone
    /// only as far as it can; a seed replays either way.
    pub fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.below(1_000_000) < u64::from(ppm)
    }

    pub fn coin(&mut self) -> bool {
        self.rng.next_u64() & 1 == 1
    }
}

/// An inode of the simulated disk.
#[derive(Default)]
pub(super) struct Inode {
    /// What reads see: every write, synced or not.
    pub cache: Vec<u8>,
    /// What a crash leaves.
    pub media: Vec<u8>,
    /// Sectors of `cache` that differ from (or are not yet on) `media`.
    pub dirty: BTreeSet<u64>,
    /// Open handles (of the current life), so that an unlinked inode is
    /// dropped only once nobody can reach it.
    pub handles: usize,
    /// One reference per view alive (plus this one): `view_in_use`.
    pub views: Arc<()>,
}

impl Inode {
    /// Sectors covering `[from, to)`.
    fn sectors(sector: u64, from: u64, to: u64) -> std::ops::Range<u64> {
        if to <= from {
            return 0..0;
        }
        from / sector..to.div_ceil(sector)
    }

    /// Writes `buf` at `offset` into the page cache (growing the file with
    /// zeros up to `offset` if needed) and marks the sectors dirty. The
    /// caller checked the capacity.
    pub fn write(&mut self, buf: &[u8], offset: u64, sector: u64) {
        let end = offset + buf.len() as u64;
        let old_len = self.cache.len() as u64;
        if end > old_len {
            self.cache.resize(end as usize, 0);
        }
        self.cache[offset as usize..end as usize].copy_from_slice(buf);
        // A hole grown before `offset` is new data too.
        let from = offset.min(old_len);
        self.dirty.extend(Self::sectors(sector, from, end));
    }

    /// Grows the cache to `len` zeros (dirty); a longer file is left alone.
    pub fn grow(&mut self, len: u64, sector: u64) {
        let old = self.cache.len() as u64;
        if len > old {
            self.cache.resize(len as usize, 0);
            self.dirty.extend(Self::sectors(sector, old, len));
        }
    }

    /// Byte range of sector `s` within a file of `len` bytes.
    fn range(s: u64, sector: u64, len: usize) -> std::ops::Range<usize> {
        let from = ((s * sector) as usize).min(len);
        let to = (((s + 1) * sector) as usize).min(len);
        from..to
    }

    /// Copies sector `s` of the cache to the media, where a drive may
    /// misdirect it (it lands on another sector of the file, the intended
    /// one keeps its old bytes) or rot a bit of it.
    fn persist(&mut self, s: u64, ctx: &mut Ctx<'_>) {
        let len = self.cache.len();
        if self.media.len() < len {
            self.media.resize(len, 0);
        }
        let src = Self::range(s, ctx.sector, len);
        let nsectors = (len as u64).div_ceil(ctx.sector);
        let mut target = s;
        if nsectors > 1 && ctx.chance(ctx.faults.misdirect_ppm) {
            // Any other sector of the same file, uniformly.
            let t = ctx.rng.below(nsectors - 1);
            target = if t >= s { t + 1 } else { t };
            ctx.counts.misdirected_writes += 1;
        }
        let dst = Self::range(target, ctx.sector, len);
        let n = src.len().min(dst.len());
        self.media[dst.start..dst.start + n].copy_from_slice(&self.cache[src.start..src.start + n]);
        if n > 0 && ctx.chance(ctx.faults.bit_flip_ppm) {
            let bit = ctx.rng.below(n as u64 * 8);
            self.media[dst.start + (bit / 8) as usize] ^= 1 << (bit % 8);
            ctx.counts.bit_flips += 1;
        }
    }

    /// fdatasync: every dirty sector to the media, the length with them;
    /// or, when the disk fails the sync, `EIO` after any subset of them
    /// landed, the rest forgotten (marked clean while the cache keeps
    /// showing them, as Linux does) or kept dirty for a later sync.
    pub fn sync(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        if ctx.chance(ctx.faults.sync_error_ppm) {
            ctx.counts.sync_errors += 1;
            let forget = match ctx.faults.sync_error_pages {
                ErrorPages::Forget => true,
                ErrorPages::Keep => false,
                ErrorPages::Either => ctx.coin(),
            };
            let dirty = std::mem::take(&mut self.dirty);
            for s in dirty {
                if ctx.coin() {
                    self.persist(s, ctx);
                } else if forget {
                    ctx.counts.pages_forgotten += 1;
                } else {
                    self.dirty.insert(s);
                }
            }
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.media.resize(self.cache.len(), 0);
        let dirty = std::mem::take(&mut self.dirty);
        for s in dirty {
            self.persist(s, ctx);
        }
        Ok(())
    }

    /// Writes `buf` at `offset` into the cache and then lands a random
    /// subset of exactly the sectors it covers on the media (or, if `land`
    /// names them, those of them): a crash during that write's writeback.
    /// Other dirty sectors stay as they are.
    pub fn tear(&mut self, buf: &[u8], offset: u64, land: Option<&[u64]>, ctx: &mut Ctx<'_>) {
        self.write(buf, offset, ctx.sector);
        let end = offset + buf.len() as u64;
        for s in Self::sectors(ctx.sector, offset, end) {
            let lands = match land {
                Some(l) => l.contains(&s),
                None => ctx.coin(),
            };
            if lands {
                self.persist(s, ctx);
                self.dirty.remove(&s);
                ctx.counts.torn_sectors_kept += 1;
            } else {
                ctx.counts.torn_sectors_lost += 1;
            }
        }
    }

    /// A power cut: dirty sectors are lost, or (with `crash_writeback`)
    /// each may have been written back by the kernel before it. Then the
    /// cache is what the media holds.
    pub fn crash(&mut self, ctx: &mut Ctx<'_>) {
        let dirty = std::mem::take(&mut self.dirty);
        for s in dirty {
            if ctx.faults.crash_writeback && ctx.coin() {
                self.persist(s, ctx);
                ctx.counts.written_back_sectors += 1;
            } else {
                ctx.counts.unsynced_sectors_lost += 1;
            }
        }
        self.cache = self.media.clone();
        self.handles = 0;
    }
}
