//! `LogApply`: a log group's state machine in the runtime. The shard
//! hands it every committed entry of its group in order; it applies each
//! to the group's `LogState` (offsets, deduplication, retention) and
//! reports the `ApplyOutcome` for the entry's proposer. Reads look up the
//! offset index through it.
//!
//! After a restart the shard hands it the whole log again from the WAL's
//! first entry, and `LogState` being deterministic rebuilds the same
//! offsets and exactly-once table. The runtime has no snapshot streaming
//! yet, so nothing here restores from a snapshot: a log the WAL holds
//! from index 1 is all this needs today.
//!
//! An entry out of order (`ApplyError::NotNext`) is a runtime bug, not
//! bad input: the group stops applying (every later entry gets no
//! outcome, reads and appends answer `Unavailable`) and says so loudly,
//! rather than assign offsets that other replicas would not.

use std::any::Any;
use std::rc::Rc;
use std::sync::Arc;

use crate::log::{ApplyError, ApplyOutcome, LogConfig, LogState};
use crate::raftpb::Entry;
use crate::shard::{Apply, ApplyFactory};

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

    fn as_any(&self) -> &dyn Any {
        self
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
            entry(2, batch(9, 0, 3)),
            entry(3, batch(9, 0, 3)),
            entry(4, batch(9, 7, 1)),
        ];
        a.apply(&es, &mut out);
        assert_eq!(
            out,
            vec![
                ApplyOutcome::Empty,
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
}
