//! What a driver that must never wait on the disk needs to know before it
//! queues a write: whether the write would make the WAL start a flush
//! early (`reserve` flushes, waiting for the flush in flight and for its
//! own, once `max_flush_bytes` are pending) or roll onto a segment still
//! being prepared (`roll` joins the thread preparing it), and upper bounds
//! of the bytes a write frames into. The shard loop queues a write only
//! when `can_queue` says yes, and otherwise keeps it until a flush
//! completes or the spare segment is ready, so neither wait ever happens
//! on its thread. Nothing here changes the WAL.

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

    /// Whether queueing writes of at most `cost` bytes (the sum of the
    /// `*_cost` bounds) now keeps every wait off the caller's thread: the
    /// pending flush stays within `max_flush_bytes` (no early flush), and
    /// if the active segment cannot take them, the spare segment is ready
    /// and alone can take the rest (one roll, which joins nothing). When no
    /// spare is being prepared at all (its thread could not be started) a
    /// roll creates one inline; that cannot become any better by waiting,
    /// so it is allowed.
    pub fn can_queue(&self, cost: usize) -> bool {
        if self.pending_bytes + cost > self.opts.max_flush_bytes {
            return false;
        }
        let seg = self.segment_size();
        if self.write_pos + (cost + END_MARKER) as u64 <= seg {
            return true;
        }
        let fits_new = SEGMENT_HEADER_SIZE + (cost + END_MARKER) as u64 <= self.opts.segment_size;
        fits_new && self.spare_ready()
    }

    /// Whether the next roll finds its segment without waiting.
    pub fn spare_ready(&self) -> bool {
        match (&self.prepared, &self.preparing) {
            (Some(_), _) => true,
            (None, Some((_, h))) => h.is_finished(),
            (None, None) => true,
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
