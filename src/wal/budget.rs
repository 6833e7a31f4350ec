//! What a driver that must never wait on the disk needs to know before it
//! queues a write: whether the write would make the WAL start a flush
//! early (`reserve` flushes, waiting for the flush in flight and for its
//! own, once `max_flush_bytes` are pending) or roll onto a segment still
//! being prepared (`roll` joins the thread preparing it), and upper bounds
//! of the bytes a write frames into. The shard loop queues a write only
//! when `can_queue` (entries) or `can_queue_state` says yes, and otherwise
//! keeps it until a flush completes or the spare segment is ready, so
//! neither wait ever happens on its thread; when the spare could not be
//! made, `refused_at_once` says the write would be refused (with the
//! reason) without waiting.
//!
//! It also owns the state reserve: the last bytes of every segment
//! (`reserve_of`) take state records only (hard states, snapshot
//! metadata, compaction marks), never entries. Room runs out when a
//! segment cannot be made, and an append is refused at the reserve, so a
//! full WAL always has room left in its active segment for the records
//! that free it (a compaction, the state a reclaim moves); without it, the
//! tail a refused append left was often too short for them, and nothing
//! could ever become dead. Nothing here changes the WAL.

use prost::Message as _;

use super::Wal;
use super::disk::Disk;
use super::format::{
    BATCH_RECORD_SIZE, ENTRIES_FIXED, ENTRY_FIXED, HARD_STATE_PAYLOAD, RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE, SNAPSHOT_FIXED,
};
use super::frame::END_MARKER;
use crate::raftpb::{Entry, SnapshotMetadata};

/// Per write: a record may be split in two at a segment's end, and each
/// segment part opens with a batch record.
const SPLIT_OVERHEAD: usize = 2 * BATCH_RECORD_SIZE;

/// Which records may use a segment's state reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Entries (appended or relocated): they stop short of the reserve.
    Log,
    /// Hard states, snapshot metadata (and restarts), compaction marks:
    /// what a full WAL must still be able to record.
    State,
}

/// Fewest bytes of a segment's state reserve: a snapshot record of a
/// usual configuration, a compaction mark, a hard state, their batch
/// header, with room to spare.
const MIN_STATE_RESERVE: u64 = 512;
/// Most bytes of it (a 64 MiB segment keeps 2 MiB: some 5,000 groups'
/// compaction and moved state, at about 400 bytes each).
const MAX_STATE_RESERVE: u64 = 4 << 20;

/// Bytes at the end of every segment of `segment_size` bytes that
/// entries may not use: only state records (hard states, snapshot
/// metadata, compaction marks) go there.
pub fn state_reserve(segment_size: u64) -> u64 {
    reserve_of(Class::Log, segment_size)
}

/// Bytes at the end of a segment of `size` bytes that records of `class`
/// may not use: for entries, 1/32 of the segment (512 B..4 MiB); for
/// state records, none.
pub(super) fn reserve_of(class: Class, size: u64) -> u64 {
    match class {
        Class::Log => (size / 32).clamp(MIN_STATE_RESERVE, MAX_STATE_RESERVE),
        Class::State => 0,
    }
}

/// Most bytes `append_entries(entries)` adds to the pending flush.
pub fn entries_cost(entries: &[Entry]) -> usize {
    let data: usize = entries.iter().map(|e| ENTRY_FIXED + e.data.len()).sum();
    data + 2 * (RECORD_HEADER_SIZE + ENTRIES_FIXED) + SPLIT_OVERHEAD
}

/// Most bytes `set_hard_state` adds to the pending flush.
pub const HARD_STATE_COST: usize = RECORD_HEADER_SIZE + HARD_STATE_PAYLOAD + SPLIT_OVERHEAD;

/// Most bytes `set_snapshot` / `apply_snapshot` of `meta` add.
pub fn snapshot_cost(meta: &SnapshotMetadata) -> usize {
    RECORD_HEADER_SIZE + SNAPSHOT_FIXED + meta.encoded_len() + SPLIT_OVERHEAD
}

impl<D: Disk> Wal<D> {
    /// Whether a flush is started and not yet reaped.
    pub fn flush_in_flight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// Bytes queued for the next flush.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Whether queueing entries of at most `cost` bytes (the sum of the
    /// `*_cost` bounds) now keeps every wait off the caller's thread: the
    /// pending flush stays within `max_flush_bytes` (no early flush), and
    /// if the active segment cannot take them (short of its state
    /// reserve), the spare segment is ready and alone can take the rest
    /// (one roll, which joins nothing). When no spare is being prepared at
    /// all (its thread could not be started) a roll creates one inline;
    /// that cannot become any better by waiting, so it is allowed.
    pub fn can_queue(&self, cost: usize) -> bool {
        self.fits(cost, Class::Log)
    }

    /// As `can_queue`, for state records only (hard states, snapshot
    /// metadata, compaction marks): they may use the state reserve.
    pub fn can_queue_state(&self, cost: usize) -> bool {
        self.fits(cost, Class::State)
    }

    fn fits(&self, cost: usize, class: Class) -> bool {
        if self.pending_bytes + cost > self.opts.max_flush_bytes {
            return false;
        }
        if self.write_pos + (cost + END_MARKER) as u64 <= self.segment_limit(class) {
            return true;
        }
        let size = self.opts.segment_size;
        let fits_new =
            SEGMENT_HEADER_SIZE + (cost + END_MARKER) as u64 <= size - reserve_of(class, size);
        fits_new && self.spare_ready()
    }

    /// Whether the next roll finds its segment made, without waiting: the
    /// spare is prepared and its making succeeded (or no helper thread
    /// prepares one: the roll makes it inline). A thread still running,
    /// or done but not collected (`poll_spare`), is not ready; a making
    /// that failed is not either (`spare_failed`): a roll would be
    /// refused.
    pub fn spare_ready(&self) -> bool {
        match (&self.prepared, &self.preparing) {
            (Some((_, r)), _) => r.is_ok(),
            (None, Some(_)) => false,
            (None, None) => true,
        }
    }

    /// Whether the last attempt at the next segment failed (a full disk,
    /// the quota): a roll now is refused at once with the reason
    /// (`Error::NoSpace`), and starts another attempt.
    pub fn spare_failed(&self) -> bool {
        matches!(&self.prepared, Some((_, Err(_))))
    }

    /// Collects the outcome of the helper thread preparing the spare if it
    /// is done (never waits), so that `spare_ready` and `spare_failed`
    /// say what it found.
    pub fn poll_spare(&mut self) {
        if self
            .preparing
            .as_ref()
            .is_some_and(|(_, h)| h.is_finished())
        {
            self.wait_prepared();
        }
    }

    /// Whether a write of at most `cost` bytes that does not fit now
    /// (`can_queue` or `can_queue_state` said no) would be refused at
    /// once rather than wait: the spare failed, so the roll it needs
    /// fails without waiting on anything, and it does not overflow the
    /// pending flush (no early flush). Queueing it is how the caller
    /// learns why (`Error::NoSpace`) and asks for a new attempt.
    pub fn refused_at_once(&self, cost: usize) -> bool {
        self.spare_failed() && self.pending_bytes + cost <= self.opts.max_flush_bytes
    }

    /// Room came back (segments deleted or freed for recycling, a higher
    /// quota): a failed attempt at the spare is forgotten and a new one
    /// started, so the next roll need not be refused first.
    pub(super) fn spare_after_room(&mut self) {
        if matches!(&self.prepared, Some((_, Err(e))) if e.is_no_space()) {
            self.prepared = None;
            self.prepare_next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::HardState;
    use crate::wal::Options;
    use crate::wal::disk::{SimDisk, SimOptions};

    fn ents(first: u64, n: u64, bytes: usize) -> Vec<Entry> {
        (first..first + n)
            .map(|index| Entry {
                term: 1,
                index,
                data: vec![7u8; bytes].into(),
                ..Default::default()
            })
            .collect()
    }

    fn sim_wal(segment: u64, flush: usize) -> Wal<SimDisk> {
        let mut o = Options::new(1, 0);
        o.segment_size = segment;
        o.max_flush_bytes = flush;
        Wal::open_on(SimDisk::new(SimOptions::new(1)), o).unwrap()
    }

    /// Queues writes while `can_queue` allows, of random sizes, over many
    /// segment rolls: every write must land in the pending flush (same
    /// ticket, nothing flushed behind the caller's back), and the costs
    /// must bound what the WAL counts as pending.
    #[test]
    fn what_can_queue_allows_never_flushes_early() {
        let mut rng = crate::raft::Prng::new(5);
        let mut wal = sim_wal(16 << 10, 8 << 10);
        let mut next = 1u64;
        let mut flushes = 0;
        for _ in 0..2000 {
            let n = 1 + rng.next_u64() % 8;
            let bytes = (rng.next_u64() % 700) as usize;
            let es = ents(next, n, bytes);
            let cost = entries_cost(&es) + HARD_STATE_COST;
            if !wal.can_queue(cost) {
                assert!(wal.pending_bytes() > 0, "an empty flush must take {cost}");
                wal.flush().unwrap();
                flushes += 1;
                assert!(wal.can_queue(cost), "{cost} fits an empty flush");
            }
            let before = wal.pending_bytes();
            let pending_ticket = wal.noop_ticket();
            let t1 = wal.append_entries(3, &es).unwrap();
            let hs = HardState {
                term: 1,
                vote: 1,
                commit: next,
            };
            let t2 = wal.set_hard_state(3, &hs).unwrap();
            assert_eq!(t1, t2, "one flush for the whole write");
            if before > 0 {
                assert_eq!(t1, pending_ticket, "the write joined the pending flush");
            }
            assert!(
                wal.pending_bytes() <= before + cost,
                "cost {cost} under the {} bytes queued",
                wal.pending_bytes() - before
            );
            next += n;
        }
        assert!(flushes > 50, "the test must reach the limit: {flushes}");
        assert!(wal.segment_seqs().len() > 20, "and roll many segments");
    }

    #[test]
    fn can_queue_refuses_past_the_flush_limit_and_writes_larger_than_a_segment() {
        let mut wal = sim_wal(16 << 10, 8 << 10);
        assert!(wal.can_queue(8 << 10));
        assert!(!wal.can_queue((8 << 10) + 1));
        let _ = wal.append_entries(1, &ents(1, 1, 1000)).unwrap();
        let left = (8 << 10) - wal.pending_bytes();
        assert!(wal.can_queue(left));
        assert!(!wal.can_queue(left + 1));
        // A segment of 4 KiB cannot take a write of 5 KiB even after a roll.
        let mut small = sim_wal(4096, 8 << 10);
        assert!(!small.can_queue(5000));
        let _ = small.append_entries(1, &ents(1, 1, 100)).unwrap();
        assert!(small.can_queue(1000));
    }
}
