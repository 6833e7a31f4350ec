//! `LogApply`: a log group's state machine in the runtime. The shard
//! hands it every committed entry of its group in order; it applies each
//! to the group's `LogState` (offsets, deduplication, retention) and
//! reports the `ApplyOutcome` for the entry's proposer. Reads look up the
//! offset index through it.
//!
//! Snapshots: the records are the Raft log, so the log may be compacted
//! up to the last entry whose records all lie below the retention offset
//! (`compactable_index`). A snapshot is the `LogState` as of such an
//! index (snapshot.rs: configuration, offsets, the live part of the
//! offset index, the exactly-once table), built from the previous
//! snapshot and the entries after it (`LogSnapshotBuilder`). A replica
//! restores from one when it installs a leader's snapshot (it reads from
//! the snapshot's next offset) and when it restarts on a compacted WAL
//! (it keeps every batch its log still holds); the shard then hands it
//! the entries after the snapshot, and `LogState` being deterministic
//! rebuilds the same offsets and exactly-once table.
//!
//! An entry out of order (`ApplyError::NotNext`) is a runtime bug, not
//! bad input: the group stops applying (every later entry gets no
//! outcome, reads and appends answer `Unavailable`) and says so loudly,
//! rather than assign offsets that other replicas would not.

use std::any::Any;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use crate::log::{ApplyError, ApplyOutcome, LogConfig, LogState};
use crate::raftpb::Entry;
use crate::shard::{Apply, ApplyFactory, SnapshotBuilder, SnapshotFault};

use super::signal::Watch;

/// One log group's state machine (see the module doc).
#[derive(Debug)]
pub struct LogApply {
    group: u64,
    state: LogState,
    broken: Option<ApplyError>,
    /// Moved after every apply call that appended or truncated: tails
    /// wait on it.
    changed: Rc<Watch>,
}

impl LogApply {
    /// The state machine of a new (or restarting) group.
    pub fn new(group: u64, config: LogConfig) -> LogApply {
        LogApply {
            group,
            state: LogState::new(config),
            broken: None,
            changed: Rc::new(Watch::default()),
        }
    }

    /// A factory making one `LogApply` per group, every group with the
    /// default replicated `LogConfig` (groups are made at bootstrap; no
    /// group carries another configuration yet).
    pub fn factory() -> ApplyFactory {
        Arc::new(|group| Box::new(LogApply::new(group, LogConfig::DEFAULT)))
    }

    /// The group's log state (offsets, the offset index, deduplication).
    pub fn state(&self) -> &LogState {
        &self.state
    }

    /// What moves when records are appended or truncated (tails wait on
    /// it).
    pub fn changes(&self) -> Rc<Watch> {
        self.changed.clone()
    }

    /// Why the group stopped applying, if it did (a runtime bug).
    pub fn broken(&self) -> Option<&ApplyError> {
        self.broken.as_ref()
    }
}

impl Apply for LogApply {
    fn apply(&mut self, entries: &[Entry], outcomes: &mut Vec<ApplyOutcome>) {
        if self.broken.is_some() {
            return;
        }
        let mut changed = false;
        for e in entries {
            match self.state.apply_entry(e) {
                Ok(o) => {
                    changed |= matches!(
                        o,
                        ApplyOutcome::Appended { .. } | ApplyOutcome::Truncated { .. }
                    );
                    outcomes.push(o);
                }
                Err(err) => {
                    tracing::error!(
                        group = self.group,
                        index = e.index,
                        error = %err,
                        "applying an entry failed: the group stops applying"
                    );
                    self.broken = Some(err);
                    // Tails learn the group stopped.
                    self.changed.bump();
                    return;
                }
            }
        }
        if changed {
            self.changed.bump();
        }
    }

    fn compactable_index(&self) -> u64 {
        if self.broken.is_some() {
            return 0;
        }
        self.state.compactable_index()
    }

    fn snapshot_builder(
        &self,
        base: Option<&Bytes>,
    ) -> Result<Box<dyn SnapshotBuilder>, SnapshotFault> {
        let state = match base {
            // Every batch of the base is kept (0): the builder computes the
            // replicated state, not what one replica can read.
            Some(b) => LogState::restore(b, 0).map_err(|e| SnapshotFault::Invalid(Box::new(e)))?,
            None => LogState::new(self.state.config()),
        };
        Ok(Box::new(LogSnapshotBuilder { state }))
    }

    fn check_snapshot(&self, data: &Bytes) -> Result<(), SnapshotFault> {
        LogState::restore(data, 0)
            .map(|_| ())
            .map_err(|e| SnapshotFault::Invalid(Box::new(e)))
    }

    fn restore(&mut self, data: &Bytes, index: u64, first_held: u64) -> Result<(), SnapshotFault> {
        let state =
            LogState::restore(data, first_held).map_err(|e| SnapshotFault::Invalid(Box::new(e)))?;
        if state.applied_index() != index {
            return Err(SnapshotFault::Invalid(
                format!(
                    "log snapshot at applied index {}, the runtime says {index}",
                    state.applied_index()
                )
                .into(),
            ));
        }
        self.state = state;
        self.broken = None;
        // Tails learn the earliest offset may have moved.
        self.changed.bump();
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Replays committed entries onto a log state restored from the previous
/// snapshot (see `Apply::snapshot_builder`).
struct LogSnapshotBuilder {
    state: LogState,
}

impl SnapshotBuilder for LogSnapshotBuilder {
    fn apply(&mut self, entries: &[Entry]) -> Result<(), SnapshotFault> {
        for e in entries {
            if let Err(ApplyError::NotNext { expected, got }) = self.state.apply_entry(e) {
                return Err(SnapshotFault::NotNext { expected, got });
            }
        }
        Ok(())
    }

    fn index(&self) -> u64 {
        self.state.applied_index()
    }

    fn finish(self: Box<Self>) -> Bytes {
        self.state.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::log::{BatchBuilder, BatchLimits, Refusal};

    fn entry(index: u64, data: Bytes) -> Entry {
        Entry {
            term: 1,
            index,
            data,
            ..Default::default()
        }
    }

    fn batch(producer: u64, seq: u64, n: usize) -> Bytes {
        let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
        let mut w = b.start(producer, seq, 0);
        for _ in 0..n {
            w.push(b"r").unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn each_entry_reports_its_outcome_in_order() {
        let mut a = LogApply::new(1, LogConfig::DEFAULT);
        let mut out = Vec::new();
        let es = [
            entry(1, Bytes::new()),
            entry(2, init()),
            entry(3, batch(1, 0, 3)),
            entry(4, batch(1, 0, 3)),
            entry(5, batch(1, 7, 1)),
        ];
        a.apply(&es, &mut out);
        assert_eq!(
            out,
            vec![
                ApplyOutcome::Empty,
                ApplyOutcome::ProducerInit { producer_id: 1 },
                ApplyOutcome::Appended {
                    base_offset: 0,
                    count: 3
                },
                ApplyOutcome::Duplicate {
                    base_offset: 0,
                    count: 3
                },
                ApplyOutcome::Refused(Refusal::SequenceGap { expected: 3 }),
            ]
        );
        assert_eq!(a.state().next_offset(), 3);
    }

    #[test]
    fn an_entry_out_of_order_stops_the_group_without_outcomes() {
        let mut a = LogApply::new(1, LogConfig::DEFAULT);
        let mut out = Vec::new();
        a.apply(&[entry(2, batch(0, 0, 1))], &mut out);
        assert!(out.is_empty());
        assert!(matches!(a.broken(), Some(ApplyError::NotNext { .. })));
        a.apply(&[entry(1, batch(0, 0, 1))], &mut out);
        assert!(out.is_empty(), "a broken group applies nothing more");
        assert_eq!(a.state().next_offset(), 0);
    }

    fn init() -> Bytes {
        crate::log::Command::InitProducer.encode()
    }

    fn truncate(before: u64) -> Bytes {
        crate::log::Command::Truncate {
            before_offset: before,
        }
        .encode()
    }

    #[test]
    fn a_snapshot_built_from_a_base_and_entries_is_the_state_as_of_its_index() {
        let es: Vec<Entry> = (1..=8)
            .map(|i| match i {
                1 => entry(i, init()),
                5 => entry(i, truncate(6)),
                // Consecutive sequences around entries 1 and 5.
                _ => entry(i, batch(1, (i - if i < 5 { 2 } else { 3 }) * 2, 2)),
            })
            .collect();
        let mut live = LogApply::new(1, LogConfig::DEFAULT);
        let mut out = Vec::new();
        live.apply(&es[..3], &mut out);
        let at3 = live.state().snapshot();
        live.apply(&es[3..6], &mut out);
        let at6 = live.state().snapshot();
        live.apply(&es[6..], &mut out);
        // From scratch to 3, then from the snapshot at 3 to 6.
        let mut b = live.snapshot_builder(None).unwrap();
        b.apply(&es[..3]).unwrap();
        assert_eq!(b.index(), 3);
        assert_eq!(b.finish(), at3);
        let mut b = live.snapshot_builder(Some(&at3)).unwrap();
        b.apply(&es[3..6]).unwrap();
        assert_eq!(b.finish(), at6, "not the state as of index 6");
        // A gap is refused.
        let mut b = live.snapshot_builder(Some(&at3)).unwrap();
        assert!(matches!(
            b.apply(&es[4..5]),
            Err(SnapshotFault::NotNext {
                expected: 4,
                got: 5
            })
        ));
        // Entries 2..=4 hold offsets 0..6, all below the retention
        // offset 6; entry 6 holds 6 and 7 (5 is the truncate).
        assert_eq!(live.compactable_index(), 5);
    }

    #[test]
    fn restoring_reads_from_the_snapshots_next_offset_and_keeps_deduplicating() {
        let mut leader = LogApply::new(1, LogConfig::DEFAULT);
        let mut out = Vec::new();
        leader.apply(
            &[
                entry(1, init()),
                entry(2, batch(1, 0, 3)),
                entry(3, batch(1, 3, 2)),
            ],
            &mut out,
        );
        let snap = leader.state().snapshot();
        let mut f = LogApply::new(1, LogConfig::DEFAULT);
        f.restore(&snap, 3, 4).unwrap();
        assert_eq!(f.state().earliest_offset(), 5);
        assert_eq!(f.state().next_offset(), 5);
        out.clear();
        f.apply(&[entry(4, batch(1, 3, 2))], &mut out);
        assert_eq!(
            out,
            vec![ApplyOutcome::Duplicate {
                base_offset: 3,
                count: 2
            }]
        );
        // The index the runtime names must be the snapshot's.
        assert!(matches!(
            f.restore(&snap, 4, 5),
            Err(SnapshotFault::Invalid(_))
        ));
        let mut bad = snap.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(f.check_snapshot(&Bytes::from(bad)).is_err());
        assert!(f.check_snapshot(&snap).is_ok());
    }
}
