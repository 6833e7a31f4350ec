//! Properties of the log group state machine (src/log), over random
//! histories:
//!
//! (a) no bytes make a parser panic: record batches, commands, snapshots
//!     and `LogState::apply`, on random bytes and on mutated valid ones;
//! (b) replicas agree: one replica applies every entry; another snapshots
//!     and restores itself at random points (a restart: its log still
//!     holds the retained entries); a third restores from a snapshot as a
//!     lagging follower does (its log starts after the snapshot). All give
//!     the same outcome for every entry and end in the same replicated
//!     state; the first two in the same state, index included;
//! (c) offsets are dense and monotonic, every readable offset is found in
//!     the batch that holds it, and outcomes match an independent model of
//!     the exactly-once rules (a retry is answered with the original
//!     offsets, gaps and stale sequences are refused, ids come from the
//!     group's counter, an id not tracked is refused at any sequence, the
//!     producer table evicts the least recently used producer).

use std::collections::HashMap;

use bytes::Bytes;
use corelog::log::{
    ApplyOutcome, BatchBuilder, BatchLimits, Command, LogConfig, LogState, RecordBatch, Refusal,
};
use corelog::raftpb::{Entry, EntryType};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

fn build(producer_id: u64, seq: u64, records: &[Vec<u8>], timestamp_ms: u64) -> Bytes {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(producer_id, seq, timestamp_ms);
    for r in records {
        w.push(r).unwrap();
    }
    w.finish().unwrap()
}

// ---------------------------------------------------------------- (a)

fn valid_batch() -> impl Strategy<Value = Bytes> {
    (
        0..3u64,
        0..1000u64,
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
        any::<u64>(),
    )
        .prop_map(|(p, s, r, t)| build(p, s, &r, t))
}

/// A valid batch with some bytes overwritten; with `reseal` the crc is
/// recomputed, so the damage reaches the checks after it.
fn mutated_batch() -> impl Strategy<Value = Vec<u8>> {
    (
        valid_batch(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        any::<bool>(),
    )
        .prop_map(|(b, edits, reseal)| {
            let mut v = b.to_vec();
            for (at, byte) in edits {
                let i = at.index(v.len());
                v[i] = byte;
            }
            if reseal && v.len() >= 40 {
                let mut h = crc32fast::Hasher::new();
                h.update(&v[..36]);
                h.update(&v[40..]);
                let crc = h.finalize();
                v[36..40].copy_from_slice(&crc.to_le_bytes());
            }
            v
        })
}

/// What a parsed batch promises: its records fill `records_len` exactly.
fn check_parsed(batch: &RecordBatch) {
    let h = batch.header();
    let records: Vec<Bytes> = batch.records().collect();
    assert_eq!(records.len(), h.record_count as usize);
    let sum: usize = records.iter().map(|r| 4 + r.len()).sum();
    assert_eq!(sum, h.records_len as usize);
    assert_eq!(batch.len(), 40 + sum);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_any_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200), first in prop::sample::select(vec![0xB1u8, 0xC1, 0x43, 0x00])) {
        let mut v = bytes;
        if let Some(b) = v.first_mut() {
            *b = first;
        }
        let data = Bytes::from(v);
        if let Ok(b) = RecordBatch::parse(&data, &BatchLimits::CEILING) {
            check_parsed(&b);
        }
        let _ = Command::parse(&data);
        let _ = LogState::restore(&data, 1);
        let mut s = LogState::new(LogConfig::DEFAULT);
        let _ = s.apply(1, &data).unwrap();
    }

    #[test]
    fn mutated_batches_never_panic_and_parse_only_consistently(v in mutated_batch()) {
        let data = Bytes::from(v);
        for limits in [BatchLimits::DEFAULT, BatchLimits::CEILING] {
            if let Ok(b) = RecordBatch::parse(&data, &limits) {
                check_parsed(&b);
            }
        }
        let mut s = LogState::new(LogConfig::DEFAULT);
        let _ = s.apply(1, &data).unwrap();
    }

    #[test]
    fn mutated_snapshots_never_panic(ops in history(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut w = World::new();
        for op in &ops {
            w.step(op);
        }
        let mut v = w.full.snapshot().to_vec();
        for (at, byte) in edits {
            let i = at.index(v.len());
            v[i] = byte;
        }
        let _ = LogState::restore(&Bytes::from(v), 1);
    }
}

// ------------------------------------------------------------ (b), (c)

const PRODUCERS: u64 = 5;
const MAX_PRODUCERS: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    /// Client `producer` asks the group for an id (`InitProducer`) and
    /// numbers its records from 0 under it.
    Init {
        producer: u64,
    },
    /// A producer's next batch (producer 0: none). A client that has no
    /// id from the group yet uses one it made up (refused).
    Next {
        producer: u64,
        records: u8,
        ts: u64,
    },
    /// A retry: the exact bytes of one of the producer's recent batches.
    Retry {
        producer: u64,
        back: u8,
    },
    /// A batch skipping sequences.
    Gap {
        producer: u64,
        skip: u8,
    },
    /// The producer restarts its sequence at 0 under the same id (a
    /// client bug: stale or duplicate).
    Restart {
        producer: u64,
    },
    Truncate {
        ahead: u8,
        back: bool,
    },
    Empty,
    ConfChange,
    Garbage(Vec<u8>),
    /// The second replica snapshots and restores itself here.
    Restart2,
    /// The third replica catches up from a snapshot taken here.
    CatchUp3,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1..PRODUCERS).prop_map(|producer| Op::Init { producer }),
        8 => (0..PRODUCERS, 1..6u8, 0..10_000u64).prop_map(|(producer, records, ts)| Op::Next { producer, records, ts }),
        4 => (1..PRODUCERS, 0..7u8).prop_map(|(producer, back)| Op::Retry { producer, back }),
        1 => (1..PRODUCERS, 1..3u8).prop_map(|(producer, skip)| Op::Gap { producer, skip }),
        1 => (1..PRODUCERS).prop_map(|producer| Op::Restart { producer }),
        1 => (0..12u8, any::<bool>()).prop_map(|(ahead, back)| Op::Truncate { ahead, back }),
        1 => Just(Op::Empty),
        1 => Just(Op::ConfChange),
        1 => proptest::collection::vec(any::<u8>(), 1..50).prop_map(Op::Garbage),
        1 => Just(Op::Restart2),
        1 => Just(Op::CatchUp3),
    ]
}

fn history() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..120)
}

/// An independent statement of the rules `LogState` implements, as plainly
/// as possible (lists, linear scans): outcomes must match it exactly.
struct Model {
    next: u64,
    retention: u64,
    /// The id the next init gives.
    next_id: u64,
    /// Least recently used first.
    lru: Vec<u64>,
    /// Accepted batches since the producer was given its id: (first, count, base).
    accepted: HashMap<u64, Vec<(u64, u32, u64)>>,
    evictions: usize,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            next: 0,
            retention: 0,
            next_id: 1,
            lru: Vec::new(),
            accepted: HashMap::new(),
            evictions: 0,
        }
    }
}

impl Model {
    fn init(&mut self) -> ApplyOutcome {
        let id = self.next_id;
        self.next_id += 1;
        if self.lru.len() == MAX_PRODUCERS as usize {
            let evicted = self.lru.remove(0);
            self.accepted.remove(&evicted);
            self.evictions += 1;
        }
        self.lru.push(id);
        self.accepted.insert(id, Vec::new());
        ApplyOutcome::ProducerInit { producer_id: id }
    }

    fn batch(&mut self, producer: u64, seq: u64, count: u32) -> ApplyOutcome {
        let base = self.next;
        let accept = |m: &mut Model| {
            m.next += u64::from(count);
            ApplyOutcome::Appended {
                base_offset: base,
                count,
            }
        };
        if producer == 0 {
            return accept(self);
        }
        let Some(pos) = self.lru.iter().position(|&p| p == producer) else {
            return ApplyOutcome::Refused(Refusal::UnknownProducer);
        };
        self.lru.remove(pos);
        self.lru.push(producer);
        let list = self.accepted.get_mut(&producer).unwrap();
        let Some(&(f, c, _)) = list.last() else {
            if seq == 0 {
                list.push((seq, count, base));
                return accept(self);
            }
            return ApplyOutcome::Refused(Refusal::SequenceGap { expected: 0 });
        };
        let last = f + u64::from(c) - 1;
        if seq == last + 1 {
            list.push((seq, count, base));
            return accept(self);
        }
        if seq > last + 1 {
            return ApplyOutcome::Refused(Refusal::SequenceGap { expected: last + 1 });
        }
        let recent = &list[list.len().saturating_sub(5)..];
        match recent.iter().find(|&&(f, c, _)| f == seq && c == count) {
            Some(&(_, c, b)) => ApplyOutcome::Duplicate {
                base_offset: b,
                count: c,
            },
            None => ApplyOutcome::Refused(Refusal::StaleSequence { last_seq: last }),
        }
    }

    fn truncate(&mut self, before: u64) -> ApplyOutcome {
        if before > self.next {
            return ApplyOutcome::Refused(Refusal::TruncateBeyondEnd {
                requested: before,
                latest: self.next,
            });
        }
        self.retention = self.retention.max(before);
        ApplyOutcome::Truncated {
            earliest_offset: self.retention,
        }
    }
}

/// Three replicas, the client side that produces the entries, and the
/// model. Every entry is applied to all three.
struct World {
    full: LogState,
    restarted: LogState,
    caught_up: LogState,
    model: Model,
    entries: Vec<Bytes>,
    /// Per client producer: the id the group gave it (0: none yet), the
    /// next sequence it uses, and its batches sent.
    client_id: [u64; PRODUCERS as usize],
    client_seq: [u64; PRODUCERS as usize],
    sent: Vec<Vec<Bytes>>,
    /// (producer, first seq, count) -> base offset of every Appended.
    appended_at: HashMap<(u64, u64, u32), u64>,
    /// Records per offset, from the Appended outcomes (what reads must find).
    record_at: Vec<Bytes>,
    /// The first entry the caught-up replica's log holds.
    caught_up_from: u64,
    /// Outcomes seen, by kind.
    tally: HashMap<&'static str, usize>,
}

fn config() -> LogConfig {
    LogConfig {
        max_producers: MAX_PRODUCERS,
    }
}

impl World {
    fn new() -> World {
        World {
            full: LogState::new(config()),
            restarted: LogState::new(config()),
            caught_up: LogState::new(config()),
            model: Model::default(),
            entries: Vec::new(),
            client_id: [0; PRODUCERS as usize],
            client_seq: [0; PRODUCERS as usize],
            sent: vec![Vec::new(); PRODUCERS as usize],
            appended_at: HashMap::new(),
            record_at: Vec::new(),
            caught_up_from: 1,
            tally: HashMap::new(),
        }
    }

    /// The producer id client `producer` puts in its batches: 0 for
    /// client 0 (no deduplication), the id the group gave it, or before
    /// that one the group never gives.
    fn id_of(&self, producer: u64) -> u64 {
        match (producer, self.client_id[producer as usize]) {
            (0, _) => 0,
            (p, 0) => u64::MAX - p,
            (_, id) => id,
        }
    }

    fn step(&mut self, op: &Op) {
        let data = match op {
            Op::Init { producer } => {
                let before = self.full.next_producer_id();
                self.apply(Command::InitProducer.encode());
                assert_eq!(self.full.next_producer_id(), before + 1);
                self.client_id[*producer as usize] = before;
                self.client_seq[*producer as usize] = 0;
                self.sent[*producer as usize].clear();
                return;
            }
            Op::Next {
                producer,
                records,
                ts,
            } => {
                let p = *producer as usize;
                let recs: Vec<Vec<u8>> = (0..*records)
                    .map(|r| format!("p{p} s{} r{r}", self.client_seq[p]).into_bytes())
                    .collect();
                let b = build(self.id_of(*producer), self.client_seq[p], &recs, *ts);
                if *producer != 0 {
                    self.client_seq[p] += u64::from(*records);
                    self.sent[p].push(b.clone());
                }
                b
            }
            Op::Retry { producer, back } => {
                let sent = &self.sent[*producer as usize];
                let Some(i) = sent.len().checked_sub(1 + *back as usize) else {
                    return;
                };
                sent[i].clone()
            }
            Op::Gap { producer, skip } => {
                let p = *producer as usize;
                build(
                    self.id_of(*producer),
                    self.client_seq[p] + u64::from(*skip),
                    &[b"gap".to_vec()],
                    0,
                )
            }
            Op::Restart { producer } => {
                self.client_seq[*producer as usize] = 0;
                return;
            }
            Op::Truncate { ahead, back } => {
                let next = self.model.next;
                let before = if *back {
                    next.saturating_sub(u64::from(*ahead))
                } else {
                    next + u64::from(*ahead) / 4
                };
                Command::Truncate {
                    before_offset: before,
                }
                .encode()
            }
            Op::Empty => Bytes::new(),
            Op::ConfChange => {
                self.apply_conf_change();
                return;
            }
            Op::Garbage(g) => Bytes::from(g.clone()),
            Op::Restart2 => {
                // A restart: the snapshot, and a log holding every entry
                // from the first retained batch on.
                let first_held = self.restarted.compactable_index() + 1;
                self.restarted = LogState::restore(&self.restarted.snapshot(), first_held).unwrap();
                return;
            }
            Op::CatchUp3 => {
                // A follower installs the leader's snapshot: its log starts
                // after it.
                let at = self.full.applied_index();
                self.caught_up = LogState::restore(&self.full.snapshot(), at + 1).unwrap();
                self.caught_up_from = at + 1;
                return;
            }
        };
        self.apply(data);
    }

    fn apply_conf_change(&mut self) {
        let e = Entry {
            r#type: EntryType::EntryConfChange as i32,
            index: self.full.applied_index() + 1,
            term: 1,
            data: Bytes::from_static(&[0x08, 0x02]),
        };
        let a = self.full.apply_entry(&e).unwrap();
        assert_eq!(a, ApplyOutcome::Config);
        assert_eq!(self.restarted.apply_entry(&e).unwrap(), a);
        assert_eq!(self.caught_up.apply_entry(&e).unwrap(), a);
        self.entries.push(Bytes::new());
    }

    fn expected(&mut self, data: &Bytes) -> Option<ApplyOutcome> {
        if let Ok(b) = RecordBatch::parse(data, &BatchLimits::CEILING) {
            let h = b.header();
            return Some(
                self.model
                    .batch(h.producer_id, h.producer_seq, h.record_count),
            );
        }
        match Command::parse(data) {
            Ok(Command::Truncate { before_offset }) => Some(self.model.truncate(before_offset)),
            Ok(Command::InitProducer) => Some(self.model.init()),
            Err(_) => None,
        }
    }

    fn apply(&mut self, data: Bytes) {
        let i = self.full.applied_index() + 1;
        let before_next = self.full.next_offset();
        let out = self.full.apply(i, &data).unwrap();
        // (b) every replica decides the entry alike.
        assert_eq!(self.restarted.apply(i, &data).unwrap(), out, "entry {i}");
        assert_eq!(self.caught_up.apply(i, &data).unwrap(), out, "entry {i}");
        // (c) and as the model says.
        match self.expected(&data) {
            Some(want) => assert_eq!(out, want, "entry {i}"),
            None if data.is_empty() => assert_eq!(out, ApplyOutcome::Empty),
            None => assert!(matches!(out, ApplyOutcome::Refused(Refusal::Invalid(_)))),
        }
        let kind = match &out {
            ApplyOutcome::Appended { .. } => "appended",
            ApplyOutcome::Duplicate { .. } => "duplicate",
            ApplyOutcome::Refused(Refusal::SequenceGap { .. }) => "gap",
            ApplyOutcome::Refused(Refusal::StaleSequence { .. }) => "stale",
            ApplyOutcome::Refused(Refusal::UnknownProducer) => "unknown producer",
            ApplyOutcome::Refused(Refusal::TruncateBeyondEnd { .. }) => "truncate beyond end",
            ApplyOutcome::Refused(Refusal::Invalid(_)) => "invalid",
            ApplyOutcome::Refused(Refusal::OffsetsExhausted { .. }) => "offsets exhausted",
            ApplyOutcome::Refused(Refusal::ProducerIdsExhausted) => "producer ids exhausted",
            ApplyOutcome::ProducerInit { .. } => "producer init",
            ApplyOutcome::Truncated { .. } => "truncated",
            ApplyOutcome::Empty => "empty",
            ApplyOutcome::Config => "config",
        };
        *self.tally.entry(kind).or_default() += 1;
        match out {
            ApplyOutcome::Appended { base_offset, count } => {
                // Dense: every batch starts where the last one ended.
                assert_eq!(base_offset, before_next);
                assert_eq!(self.full.next_offset(), before_next + u64::from(count));
                let b = RecordBatch::parse(&data, &BatchLimits::CEILING).unwrap();
                let h = b.header();
                if h.producer_id != 0 {
                    self.appended_at
                        .insert((h.producer_id, h.producer_seq, count), base_offset);
                }
                self.record_at.extend(b.records());
            }
            ApplyOutcome::Duplicate { base_offset, count } => {
                // A retry is answered with the offsets it got the first time.
                let h = *RecordBatch::parse(&data, &BatchLimits::CEILING)
                    .unwrap()
                    .header();
                assert_eq!(
                    self.appended_at
                        .get(&(h.producer_id, h.producer_seq, count)),
                    Some(&base_offset)
                );
                assert_eq!(self.full.next_offset(), before_next);
            }
            _ => assert_eq!(self.full.next_offset(), before_next),
        }
        self.entries.push(data);
    }

    /// The end of a history: the three replicas, the model and the reads.
    fn check_end(&self) {
        let (full, restarted, caught_up) = (&self.full, &self.restarted, &self.caught_up);
        assert_eq!(restarted, full, "snapshot + replay differs from replay");
        for s in [restarted, caught_up] {
            assert_eq!(s.applied_index(), full.applied_index());
            assert_eq!(s.next_offset(), full.next_offset());
            assert_eq!(s.retention_offset(), full.retention_offset());
            assert_eq!(s.dedup(), full.dedup());
            assert_eq!(s.next_producer_id(), full.next_producer_id());
            assert_eq!(s.index().total_bytes(), full.index().total_bytes());
        }
        // A replay from the log (the restart with no snapshot at all).
        let mut replayed = LogState::new(config());
        for (k, e) in self.entries.iter().enumerate() {
            let _ = replayed.apply(k as u64 + 1, e).unwrap();
        }
        assert_eq!(replayed.next_offset(), full.next_offset());
        assert_eq!(replayed.dedup(), full.dedup());
        assert_eq!(replayed.next_producer_id(), full.next_producer_id());
        assert_eq!(full.next_producer_id(), self.model.next_id);
        assert_eq!(full.next_offset(), self.record_at.len() as u64);
        assert_eq!(full.retention_offset(), self.model.retention);
        assert_eq!(full.earliest_offset(), self.model.retention);
        // Every readable offset is in the batch the index names, and that
        // batch holds the record appended at it.
        for (s, holds_from) in [(full, 1), (caught_up, self.caught_up_from)] {
            for o in 0..full.next_offset() + 2 {
                match s.lookup(o) {
                    Ok(loc) => {
                        // Never a read of an entry this replica's log lacks.
                        assert!(
                            loc.entry_index >= holds_from,
                            "offset {o}: entry {} below {holds_from}",
                            loc.entry_index
                        );
                        assert!(o >= s.earliest_offset());
                        assert!(loc.base_offset <= o && o < loc.base_offset + loc.count);
                        let data = &self.entries[loc.entry_index as usize - 1];
                        let b = RecordBatch::parse(data, &BatchLimits::CEILING).unwrap();
                        assert_eq!(u64::from(b.record_count()), loc.count);
                        let rec = b.records().nth((o - loc.base_offset) as usize).unwrap();
                        assert_eq!(rec, self.record_at[o as usize]);
                    }
                    Err(e) => {
                        assert!(o < s.earliest_offset() || o >= s.next_offset(), "{e}");
                        assert_eq!(e.earliest, s.earliest_offset());
                        assert_eq!(e.latest, s.next_offset());
                    }
                }
            }
        }
        assert!(caught_up.earliest_offset() >= full.earliest_offset());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn replicas_agree_with_each_other_and_with_the_model(ops in history()) {
        let mut w = World::new();
        for op in &ops {
            w.step(op);
        }
        w.check_end();
    }
}

/// The histories above reach what they claim to test: every outcome,
/// evictions, restarts and catch-ups, reads below a caught-up replica's
/// start. A generator that stopped producing retries would make (b) and
/// (c) pass without testing deduplication.
#[test]
fn histories_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for _ in 0..64 {
        let ops = history().new_tree(&mut runner).unwrap().current();
        let mut w = World::new();
        for op in &ops {
            w.step(op);
        }
        w.check_end();
        for (k, n) in &w.tally {
            *seen.entry(k).or_default() += n;
        }
        *seen.entry("eviction").or_default() += w.model.evictions;
        if w.caught_up.earliest_offset() > w.full.earliest_offset() {
            *seen.entry("caught-up replica reads less").or_default() += 1;
        }
    }
    println!("{seen:?}");
    for kind in [
        "appended",
        "producer init",
        "duplicate",
        "gap",
        "stale",
        "unknown producer",
        "truncated",
        "truncate beyond end",
        "invalid",
        "empty",
        "eviction",
        "caught-up replica reads less",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "{kind} never reached: {seen:?}"
        );
    }
}
