//! How a WAL is opened: `Options`, with the checks that refuse a
//! combination that cannot work before anything touches the disk.

use super::error::{Error, Result};
use super::{MAX_BATCH_BYTES, format};

/// How a WAL is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every segment carries these; a segment of another cluster or shard is
    /// refused.
    pub cluster_id: u64,
    pub shard_id: u64,
    /// Size of new segments (existing ones keep the size in their header).
    pub segment_size: u64,
    /// A flush is started early when this many bytes are pending
    /// (at most `MAX_BATCH_BYTES`).
    pub max_flush_bytes: usize,
    /// Budget of the cache of recent entries (data bytes + 64 per entry).
    pub cache_bytes: u64,
    /// At most this many bytes of live entries are copied forward per `gc`
    /// to free old segments that only a few entries hold (0: never).
    pub relocate_bytes: u64,
    /// Most bytes the WAL's files may take on disk (its segments, the
    /// free ones kept for recycling, the one prepared ahead); a new
    /// segment that would go past it is refused with `Error::NoSpace`,
    /// exactly as a full disk refuses it. `u64::MAX`: no limit but the
    /// disk's. At least two segments (the active one and the next).
    pub max_disk_bytes: u64,
    /// Open for reading only: nothing is written, created or deleted (a
    /// torn tail is reported but not zeroed).
    pub read_only: bool,
    /// Read-only inspection: take cluster and shard id from the oldest
    /// segment instead of checking them against the fields above.
    pub adopt_identity: bool,
    /// Benchmarks only: flushes write but never fdatasync, so an
    /// acknowledged write can be lost to a power failure or a kernel
    /// crash. Never on by default; every output that reports on the
    /// member says so.
    pub unsafe_no_fsync: bool,
    /// Deliberate bugs for the simulator's self-test (bugs.rs).
    #[cfg(corelog_sim_bugs)]
    #[doc(hidden)]
    pub bugs: super::WalBugs,
}

impl Options {
    /// Defaults: 64 MiB segments, 4 MiB flushes, 64 MiB cache.
    pub fn new(cluster_id: u64, shard_id: u64) -> Self {
        Options {
            cluster_id,
            shard_id,
            segment_size: 64 << 20,
            max_flush_bytes: 4 << 20,
            cache_bytes: 64 << 20,
            relocate_bytes: 16 << 20,
            max_disk_bytes: u64::MAX,
            read_only: false,
            adopt_identity: false,
            unsafe_no_fsync: false,
            #[cfg(corelog_sim_bugs)]
            bugs: super::WalBugs::default(),
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        if !(format::MIN_SEGMENT_SIZE..=format::MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(Error::InvalidOptions {
                field: "segment_size",
                reason: format!(
                    "{} not in {}..={}",
                    self.segment_size,
                    format::MIN_SEGMENT_SIZE,
                    format::MAX_SEGMENT_SIZE
                ),
            });
        }
        if !(1024..=MAX_BATCH_BYTES).contains(&self.max_flush_bytes) {
            return Err(Error::InvalidOptions {
                field: "max_flush_bytes",
                reason: format!("{} not in 1024..={MAX_BATCH_BYTES}", self.max_flush_bytes),
            });
        }
        if self.max_disk_bytes < self.segment_size.saturating_mul(2) {
            return Err(Error::InvalidOptions {
                field: "max_disk_bytes",
                reason: format!(
                    "{} is below two segments of {} (the active one and the next)",
                    self.max_disk_bytes, self.segment_size
                ),
            });
        }
        if self.adopt_identity && !self.read_only {
            return Err(Error::InvalidOptions {
                field: "adopt_identity",
                reason: "only for read-only inspection".into(),
            });
        }
        Ok(())
    }
}
