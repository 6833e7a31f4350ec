//! What a shard runs with: its clock (tick length, election and heartbeat
//! ticks), the limits of every queue it keeps (proposals in flight and
//! their bytes per group, entry size, time a proposal may wait), the Raft
//! settings its groups share, and how its WAL and executor are sized.
//! Checked once, before any shard starts (`RuntimeConfig::validate`).

use std::fmt;
use std::time::Duration;

use crate::wal::MAX_BATCH_BYTES;

/// How every shard of a member runs. The defaults suit tests and the
/// benchmarks on one machine; every field is a limit or a clock.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Length of one Raft tick.
    pub tick: Duration,
    /// Ticks without a leader before a follower campaigns (randomized by
    /// the core in `[election_ticks, 2 * election_ticks)`).
    pub election_ticks: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// Most proposals of one group waiting to be applied; one more is
    /// refused with `Busy`.
    pub max_inflight_proposals: usize,
    /// Most payload bytes of one group's proposals waiting to be applied;
    /// a proposal that would pass it is refused with `Busy`.
    pub max_uncommitted_bytes: u64,
    /// Largest payload of one proposal (`TooLarge` above it). Bounded by
    /// what one WAL flush can hold.
    pub max_entry_bytes: usize,
    /// Ticks a proposal or read may wait for its answer (`Timeout`).
    pub request_timeout_ticks: u64,
    /// Raft's `max_size_per_msg`: bytes of entries in one MsgApp.
    pub max_size_per_msg: u64,
    /// Raft's `max_inflight_msgs`: MsgApps in flight per follower.
    pub max_inflight_msgs: usize,
    /// Most ticks one loop turn catches up on after a stall; the rest are
    /// dropped (a stalled shard must not tick its groups into elections
    /// all at once when it resumes).
    pub max_ticks_per_turn: u32,
    /// At bootstrap, the first replica of each group (its preferred leader
    /// by placement) campaigns at once instead of waiting out an election
    /// timeout, which spreads leadership as placement intends.
    pub campaign_on_bootstrap: bool,
    /// A leader that is not its group's preferred leader (placement's
    /// first replica) hands leadership to it once it is an active voter
    /// caught up to the commit index; looked at once per election
    /// timeout. Keeps leadership spread as placement intends after
    /// elections that raced (members starting apart) or a member's
    /// restart.
    pub rebalance_leaders: bool,
    /// WAL segment size of new segments.
    pub wal_segment_size: u64,
    /// WAL: a flush never carries more than this many bytes.
    pub wal_max_flush_bytes: usize,
    /// WAL: budget of its cache of recent entries.
    pub wal_cache_bytes: u64,
    /// Most bytes each shard's WAL may take on disk
    /// (`wal::Options::max_disk_bytes`): past it the shard behaves as on
    /// a full disk. `u64::MAX`: only the disk's room.
    pub wal_max_disk_bytes: u64,
    /// While its WAL has no room for a segment, the shard tries again
    /// this often (in ticks): never on every turn, which would retry as
    /// fast as messages arrive.
    pub space_retry_ticks: u64,
    /// Benchmarks only: the WAL never fdatasyncs (`wal::Options`).
    pub unsafe_no_fsync: bool,
    /// glommio's registered I/O memory per shard. The shard does its disk
    /// writes through the WAL's own ring; glommio only reads an eventfd
    /// and serves sockets, so the minimum (64 KiB) is enough, and it is
    /// charged against RLIMIT_MEMLOCK (8 MiB here, shared by the user).
    pub io_memory: usize,
    /// A group builds a snapshot and compacts its log once the index its
    /// state machine allows compacting to moved this many entries past
    /// its latest snapshot (1: at every chance; tests).
    pub compact_threshold_entries: u64,
    /// Bytes of one snapshot a shard accepts (the file read at a restart;
    /// the peer network's own limits bound what it receives).
    pub max_snapshot_bytes: u64,
    /// A turn's flush of at most this many bytes, when the shard has
    /// nothing else to do, runs on the shard's thread (`Wal::flush_inline`:
    /// pwrite + fdatasync) after the turn's sends went out, instead of
    /// through the ring: no io-wq worker and no completion wakeup. 0: every
    /// flush goes through the ring.
    pub inline_flush_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            tick: Duration::from_millis(10),
            election_ticks: 10,
            heartbeat_ticks: 1,
            max_inflight_proposals: 4096,
            max_uncommitted_bytes: 8 << 20,
            max_entry_bytes: 1 << 20,
            request_timeout_ticks: 1000,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            max_ticks_per_turn: 10,
            campaign_on_bootstrap: true,
            rebalance_leaders: true,
            wal_segment_size: 64 << 20,
            wal_max_flush_bytes: 4 << 20,
            wal_cache_bytes: 64 << 20,
            wal_max_disk_bytes: u64::MAX,
            space_retry_ticks: 10,
            unsafe_no_fsync: false,
            io_memory: 64 << 10,
            compact_threshold_entries: 10_000,
            max_snapshot_bytes: 256 << 20,
            inline_flush_bytes: 0,
        }
    }
}

/// A field of `RuntimeConfig` that cannot work, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "runtime config: {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl RuntimeConfig {
    /// Refuses a configuration that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: String| Err(ConfigError { field, reason });
        if self.tick.is_zero() {
            return bad("tick", "0".into());
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return bad(
                "election_ticks",
                format!(
                    "{} must exceed heartbeat_ticks {} (> 0)",
                    self.election_ticks, self.heartbeat_ticks
                ),
            );
        }
        if self.max_inflight_proposals == 0 {
            return bad("max_inflight_proposals", "0".into());
        }
        if self.max_inflight_msgs == 0 {
            return bad("max_inflight_msgs", "0".into());
        }
        if self.request_timeout_ticks == 0 {
            return bad("request_timeout_ticks", "0".into());
        }
        if self.max_ticks_per_turn == 0 {
            return bad("max_ticks_per_turn", "0".into());
        }
        if !(1024..=MAX_BATCH_BYTES).contains(&self.wal_max_flush_bytes) {
            return bad(
                "wal_max_flush_bytes",
                format!(
                    "{} not in 1024..={MAX_BATCH_BYTES}",
                    self.wal_max_flush_bytes
                ),
            );
        }
        // One proposal must fit one flush with room for its framing, so
        // that queueing it never needs a flush the loop would wait for.
        if self.max_entry_bytes == 0 || self.max_entry_bytes > self.wal_max_flush_bytes / 2 {
            return bad(
                "max_entry_bytes",
                format!(
                    "{} not in 1..={} (half of wal_max_flush_bytes)",
                    self.max_entry_bytes,
                    self.wal_max_flush_bytes / 2
                ),
            );
        }
        if self.compact_threshold_entries == 0 {
            return bad("compact_threshold_entries", "0".into());
        }
        if self.max_snapshot_bytes == 0 {
            return bad("max_snapshot_bytes", "0".into());
        }
        if !(crate::wal::format::MIN_SEGMENT_SIZE..=crate::wal::format::MAX_SEGMENT_SIZE)
            .contains(&self.wal_segment_size)
        {
            return bad(
                "wal_segment_size",
                format!(
                    "{} not in {}..={}",
                    self.wal_segment_size,
                    crate::wal::format::MIN_SEGMENT_SIZE,
                    crate::wal::format::MAX_SEGMENT_SIZE
                ),
            );
        }
        if self.wal_max_disk_bytes < self.wal_segment_size.saturating_mul(2) {
            return bad(
                "wal_max_disk_bytes",
                format!(
                    "{} is below two segments of {}",
                    self.wal_max_disk_bytes, self.wal_segment_size
                ),
            );
        }
        if self.space_retry_ticks == 0 {
            return bad("space_retry_ticks", "0".into());
        }
        if self.max_uncommitted_bytes < self.max_entry_bytes as u64 {
            return bad(
                "max_uncommitted_bytes",
                format!(
                    "{} is below max_entry_bytes {}",
                    self.max_uncommitted_bytes, self.max_entry_bytes
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_each_bad_field_is_named() {
        RuntimeConfig::default().validate().unwrap();
        let field = |f: fn(&mut RuntimeConfig)| {
            let mut c = RuntimeConfig::default();
            f(&mut c);
            c.validate().unwrap_err().field
        };
        assert_eq!(field(|c| c.tick = Duration::ZERO), "tick");
        assert_eq!(field(|c| c.election_ticks = 1), "election_ticks");
        assert_eq!(field(|c| c.heartbeat_ticks = 0), "election_ticks");
        assert_eq!(
            field(|c| c.max_inflight_proposals = 0),
            "max_inflight_proposals"
        );
        assert_eq!(field(|c| c.max_inflight_msgs = 0), "max_inflight_msgs");
        assert_eq!(
            field(|c| c.request_timeout_ticks = 0),
            "request_timeout_ticks"
        );
        assert_eq!(field(|c| c.max_ticks_per_turn = 0), "max_ticks_per_turn");
        assert_eq!(field(|c| c.wal_max_flush_bytes = 10), "wal_max_flush_bytes");
        assert_eq!(field(|c| c.max_entry_bytes = 3 << 20), "max_entry_bytes");
        assert_eq!(field(|c| c.max_entry_bytes = 0), "max_entry_bytes");
        assert_eq!(
            field(|c| c.max_uncommitted_bytes = 10),
            "max_uncommitted_bytes"
        );
    }
}
