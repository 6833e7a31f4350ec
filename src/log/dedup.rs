//! Exactly-once appends: per producer id, the last `REMEMBERED_BATCHES`
//! batches it appended (first sequence, count, base offset), so that a
//! retried batch is answered with its original offsets instead of being
//! written twice, and a sequence gap is refused.
//!
//! Producer ids are the group's to give: `register` (applying an
//! `InitProducer` command, `state.rs`) tracks a fresh id with no batch
//! yet. Only a tracked producer's batches are taken. So a batch of an id
//! not in the table, whatever its sequence, is one the group cannot
//! judge: the id was never given, or it was and its state was evicted
//! since. Either way it is refused (`UnknownProducer`), never written:
//! an evicted producer's retry, even of its first batch, cannot pass for
//! a new producer's, because a new producer is one the group registered.
//!
//! Decided when a committed entry is applied, identically on every
//! replica: a retry may have been proposed to two leaders in turn and both
//! copies committed; the second is then a no-op everywhere. The rules,
//! for a tracked producer whose last sequence is `l` (none before its
//! first batch, which must then start at 0):
//!
//! - a batch starting at `l + 1` is accepted;
//! - one whose range equals a remembered batch's is a duplicate;
//! - one starting after `l + 1` is a gap (`SequenceGap`);
//! - any other (an old sequence not remembered, or a range that overlaps
//!   one without equalling it) is stale (`StaleSequence`).
//!
//! The table is bounded (`capacity` producers, part of the group's
//! replicated configuration, never a replica's own setting). When it is
//! full, registering a producer evicts the one least recently used, where
//! "use" is its registration or any batch of it applied (accepted,
//! duplicate or refused): apply order, never a clock, so every replica
//! evicts the same one. Producer state is not dropped by retention: a
//! retry of a batch whose records were truncated is still answered with
//! its original offsets.
//!
//! O(1) per batch: a hash map from id to a slot, and the slots linked in
//! use order. The map's hash seed is random, but nothing ever iterates the
//! map: eviction and snapshots follow the linked order, so the seed never
//! changes an outcome or a byte.

use std::collections::HashMap;

/// Batches remembered per producer: a producer may have this many appends
/// in flight and still have any of them deduplicated when retried (as
/// Kafka's limit of five in-flight requests for idempotent producers).
pub const REMEMBERED_BATCHES: usize = 5;

const NIL: u32 = u32::MAX;

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqBatch {
    pub first_seq: u64,
    pub count: u32,
    pub base_offset: u64,
}

impl SeqBatch {
    /// Sequence of the batch's last record.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count) - 1
    }
}

/// What the table decided for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New: append it at the `base_offset` given (now remembered).
    Accepted,
    /// Already appended: answer with the original offsets.
    Duplicate { base_offset: u64, count: u32 },
    /// Sequences are missing before this batch.
    SequenceGap { expected: u64 },
    /// An old sequence, not (or not exactly) a remembered batch.
    StaleSequence { last_seq: u64 },
    /// The producer is not tracked: never registered, or evicted.
    UnknownProducer,
}

#[derive(Debug, Clone)]
struct Slot {
    producer_id: u64,
    /// Ring of remembered batches, `len` of them from `head` (oldest);
    /// none between registration and the first batch.
    ring: [SeqBatch; REMEMBERED_BATCHES],
    head: u8,
    len: u8,
    /// Neighbours in use order (toward the oldest, toward the newest).
    older: u32,
    newer: u32,
}

impl Slot {
    fn new(producer_id: u64) -> Slot {
        Slot {
            producer_id,
            ring: [SeqBatch::default(); REMEMBERED_BATCHES],
            head: 0,
            len: 0,
            older: NIL,
            newer: NIL,
        }
    }

    /// Remembered batches, oldest first.
    fn remembered(&self) -> impl Iterator<Item = SeqBatch> + '_ {
        (0..self.len as usize).map(|k| self.ring[(self.head as usize + k) % REMEMBERED_BATCHES])
    }

    fn newest(&self) -> Option<SeqBatch> {
        let last = (self.len as usize).checked_sub(1)?;
        Some(self.ring[(self.head as usize + last) % REMEMBERED_BATCHES])
    }

    fn remember(&mut self, b: SeqBatch) {
        let at = (self.head as usize + self.len as usize) % REMEMBERED_BATCHES;
        self.ring[at] = b;
        if (self.len as usize) < REMEMBERED_BATCHES {
            self.len += 1;
        } else {
            self.head = ((self.head as usize + 1) % REMEMBERED_BATCHES) as u8;
        }
    }
}

/// The deduplication table of one group (see the module doc).
#[derive(Debug, Clone)]
pub struct DedupTable {
    capacity: u32,
    map: HashMap<u64, u32>,
    slots: Vec<Slot>,
    oldest: u32,
    newest: u32,
}

impl DedupTable {
    /// An empty table for at most `capacity` producers (at least 1).
    pub fn new(capacity: u32) -> DedupTable {
        DedupTable {
            capacity: capacity.max(1),
            map: HashMap::new(),
            slots: Vec::new(),
            oldest: NIL,
            newest: NIL,
        }
    }

    /// Producers tracked at most.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Producers tracked now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The last sequence appended by `producer_id`, if it is tracked and
    /// has appended a batch.
    pub fn last_seq(&self, producer_id: u64) -> Option<u64> {
        let &i = self.map.get(&producer_id)?;
        Some(self.slots.get(i as usize)?.newest()?.last_seq())
    }

    /// Tracks `producer_id` (non-zero, newly given by the group: not
    /// tracked) as the most recently used, with no batch yet; evicts the
    /// least recently used producer if the table is full. An id already
    /// tracked is only touched (the group never gives one twice).
    pub fn register(&mut self, producer_id: u64) {
        if let Some(&i) = self.map.get(&producer_id) {
            self.touch(i);
            return;
        }
        self.insert(producer_id);
    }

    /// Decides the batch `[first_seq, first_seq + count)` of `producer_id`
    /// (non-zero), which would be appended at `base_offset`; remembers it
    /// if accepted. `count >= 1` and the range fits in a u64 (the batch
    /// was validated).
    pub fn admit(
        &mut self,
        producer_id: u64,
        first_seq: u64,
        count: u32,
        base_offset: u64,
    ) -> Admission {
        let batch = SeqBatch {
            first_seq,
            count,
            base_offset,
        };
        let Some(&i) = self.map.get(&producer_id) else {
            // Never registered, or evicted: its sequence cannot tell a
            // retry from a new batch, so nothing is written.
            return Admission::UnknownProducer;
        };
        self.touch(i);
        let slot = &mut self.slots[i as usize];
        let Some(newest) = slot.newest() else {
            // Registered, no batch yet: its first starts at 0.
            if first_seq == 0 {
                slot.remember(batch);
                return Admission::Accepted;
            }
            return Admission::SequenceGap { expected: 0 };
        };
        let last_seq = newest.last_seq();
        match last_seq.checked_add(1) {
            Some(expected) if first_seq == expected => {
                slot.remember(batch);
                Admission::Accepted
            }
            Some(expected) if first_seq > expected => Admission::SequenceGap { expected },
            _ => match slot
                .remembered()
                .find(|b| b.first_seq == first_seq && b.count == count)
            {
                Some(b) => Admission::Duplicate {
                    base_offset: b.base_offset,
                    count: b.count,
                },
                None => Admission::StaleSequence { last_seq },
            },
        }
    }

    /// Tracks a new producer as the most recently used, evicting the least
    /// recently used one if the table is full; its slot's index.
    fn insert(&mut self, producer_id: u64) -> u32 {
        let i = if self.slots.len() < self.capacity as usize {
            self.slots.push(Slot::new(producer_id));
            (self.slots.len() - 1) as u32
        } else {
            let i = self.oldest;
            self.unlink(i);
            let slot = &mut self.slots[i as usize];
            self.map.remove(&slot.producer_id);
            *slot = Slot::new(producer_id);
            i
        };
        self.map.insert(producer_id, i);
        self.link_newest(i);
        i
    }

    fn touch(&mut self, i: u32) {
        if self.newest != i {
            self.unlink(i);
            self.link_newest(i);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (older, newer) = {
            let s = &self.slots[i as usize];
            (s.older, s.newer)
        };
        match older {
            NIL => self.oldest = newer,
            o => self.slots[o as usize].newer = newer,
        }
        match newer {
            NIL => self.newest = older,
            n => self.slots[n as usize].older = older,
        }
    }

    fn link_newest(&mut self, i: u32) {
        let prev = self.newest;
        {
            let s = &mut self.slots[i as usize];
            s.older = prev;
            s.newer = NIL;
        }
        match prev {
            NIL => self.oldest = i,
            p => self.slots[p as usize].newer = i,
        }
        self.newest = i;
    }

    /// Producers from the least to the most recently used, each with its
    /// remembered batches oldest first: the order eviction follows, and
    /// the order a snapshot stores.
    pub fn producers(
        &self,
    ) -> impl Iterator<Item = (u64, impl Iterator<Item = SeqBatch> + '_)> + '_ {
        let mut at = self.oldest;
        std::iter::from_fn(move || {
            let s = self.slots.get(at as usize)?;
            at = s.newer;
            Some((s.producer_id, s.remembered()))
        })
    }

    /// Appends a producer restored from a snapshot as the most recently
    /// used, with its remembered batches (none if it has appended none).
    /// `snapshot.rs` checks ids, counts and sequences before, and that the
    /// table has room (no eviction).
    pub(crate) fn restore_producer(&mut self, producer_id: u64, batches: &[SeqBatch]) {
        let i = self.insert(producer_id);
        for b in batches {
            self.slots[i as usize].remember(*b);
        }
    }

    /// Whether `producer_id` is tracked.
    pub fn contains(&self, producer_id: u64) -> bool {
        self.map.contains_key(&producer_id)
    }
}

/// Two tables are equal when they would decide every future batch alike:
/// same capacity, same producers in the same use order, same remembered
/// batches. Slot positions are storage, not state.
impl PartialEq for DedupTable {
    fn eq(&self, other: &Self) -> bool {
        self.capacity == other.capacity
            && self.len() == other.len()
            && self
                .producers()
                .zip(other.producers())
                .all(|((a, ab), (b, bb))| a == b && ab.eq(bb))
    }
}

impl Eq for DedupTable {}

#[cfg(test)]
#[path = "dedup_tests.rs"]
mod tests;
