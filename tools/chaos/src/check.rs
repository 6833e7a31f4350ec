//! Judges a history against the replicas' final logs. The promise checked:
//! an acknowledged append is never lost, never duplicated, never
//! reordered against real time, and every replica agrees.
//!
//! The reference log is the union of the replicas' logs, offset by offset
//! (replicas may start at different offsets after retention, and a
//! lagging one may end early); two replicas holding different values at
//! one offset, or a replica with a hole, is divergence. Against that log:
//!
//! - lost: an acknowledged value absent from it;
//! - misplaced: an acknowledged value found at another offset than the
//!   one the server answered;
//! - failed but present: a definitely failed append found in it;
//! - phantom: a value in it that no client ever appended;
//! - duplicated: a value at more than one offset;
//! - reordered: an append acknowledged before another was invoked, at a
//!   higher offset than that other one (real-time order, which a
//!   linearizable log keeps);
//! - bad read: a read whose values are not the log's at their offsets.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::history::{Event, Final, Kind, Op, Value};

/// One violation, with the values and offsets involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    Lost {
        value: Value,
        acked_offset: u64,
    },
    Misplaced {
        value: Value,
        acked_offset: u64,
        found_offset: u64,
    },
    FailedPresent {
        value: Value,
        offset: u64,
    },
    Phantom {
        value: Value,
        offset: u64,
    },
    Duplicated {
        value: Value,
        offsets: Vec<u64>,
    },
    /// `earlier` was acknowledged before `later` was invoked.
    Reordered {
        earlier: Value,
        earlier_offset: u64,
        later: Value,
        later_offset: u64,
    },
    /// Two replicas disagree at `offset`.
    Divergent {
        offset: u64,
        replica: String,
        value: Value,
        other_replica: String,
        other_value: Value,
    },
    /// A replica's log skips from `after` to `next`, or goes backwards.
    Hole {
        replica: String,
        after: u64,
        next: u64,
    },
    /// A read returned `read` at `offset` where the log holds `expected`
    /// (`None`: nothing there, or the value lives at another offset).
    BadRead {
        line: usize,
        process: u64,
        offset: u64,
        read: Value,
        expected: Option<Value>,
    },
    /// The history itself is malformed: an append's value invoked twice,
    /// or a completion with no invoke.
    BadHistory {
        line: usize,
        what: String,
    },
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::Lost {
                value,
                acked_offset,
            } => write!(
                f,
                "lost: value {value} acknowledged at offset {acked_offset} is in no replica"
            ),
            Anomaly::Misplaced {
                value,
                acked_offset,
                found_offset,
            } => write!(
                f,
                "misplaced: value {value} acknowledged at offset {acked_offset} lies at offset {found_offset}"
            ),
            Anomaly::FailedPresent { value, offset } => {
                write!(
                    f,
                    "failed but present: value {value} (its append definitely failed) lies at offset {offset}"
                )
            }
            Anomaly::Phantom { value, offset } => {
                write!(
                    f,
                    "phantom: value {value} at offset {offset} was never appended"
                )
            }
            Anomaly::Duplicated { value, offsets } => {
                write!(f, "duplicated: value {value} at offsets {offsets:?}")
            }
            Anomaly::Reordered {
                earlier,
                earlier_offset,
                later,
                later_offset,
            } => write!(
                f,
                "reordered: value {earlier} was acknowledged before value {later} was invoked, \
                 but lies at offset {earlier_offset} after {later}'s {later_offset}"
            ),
            Anomaly::Divergent {
                offset,
                replica,
                value,
                other_replica,
                other_value,
            } => write!(
                f,
                "divergent: at offset {offset} replica {replica} holds {value}, replica {other_replica} holds {other_value}"
            ),
            Anomaly::Hole {
                replica,
                after,
                next,
            } => write!(
                f,
                "divergent: replica {replica} goes from offset {after} to {next}"
            ),
            Anomaly::BadRead {
                line,
                process,
                offset,
                read,
                expected,
            } => match expected {
                Some(e) => write!(
                    f,
                    "bad read (history line {line}, process {process}): offset {offset} read {read}, the log holds {e}"
                ),
                None => write!(
                    f,
                    "bad read (history line {line}, process {process}): offset {offset} read {read}, which the log does not hold there"
                ),
            },
            Anomaly::BadHistory { line, what } => write!(f, "bad history (line {line}): {what}"),
        }
    }
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Report {
    /// Operations invoked (appends and reads; a read without an invoke
    /// event counts once, by its completion).
    pub ops: usize,
    /// Appends acknowledged.
    pub acked: usize,
    pub anomalies: Vec<Anomaly>,
}

impl Report {
    fn count(&self, f: impl Fn(&Anomaly) -> bool) -> usize {
        self.anomalies.iter().filter(|a| f(a)).count()
    }

    /// Adds `other`'s counts and anomalies (several groups of one run).
    pub fn merge(&mut self, other: Report) {
        self.ops += other.ops;
        self.acked += other.acked;
        self.anomalies.extend(other.anomalies);
    }

    /// Whether the run kept every promise.
    pub fn is_valid(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// `chaos: N ops, A acked, 0 lost, 0 duplicated, 0 reordered, 0
    /// divergent`, then the kinds that line has no name for.
    pub fn summary(&self) -> String {
        format!(
            "chaos: {} ops, {} acked, {} lost, {} duplicated, {} reordered, {} divergent, \
             {} misplaced, {} failed-but-present, {} phantom, {} bad reads, {} bad history",
            self.ops,
            self.acked,
            self.count(|a| matches!(a, Anomaly::Lost { .. })),
            self.count(|a| matches!(a, Anomaly::Duplicated { .. })),
            self.count(|a| matches!(a, Anomaly::Reordered { .. })),
            self.count(|a| matches!(a, Anomaly::Divergent { .. } | Anomaly::Hole { .. })),
            self.count(|a| matches!(a, Anomaly::Misplaced { .. })),
            self.count(|a| matches!(a, Anomaly::FailedPresent { .. })),
            self.count(|a| matches!(a, Anomaly::Phantom { .. })),
            self.count(|a| matches!(a, Anomaly::BadRead { .. })),
            self.count(|a| matches!(a, Anomaly::BadHistory { .. })),
        )
    }
}

/// One append, its invoke paired with its completion.
struct Append {
    invoked: u64,
    /// `(time, offset)` of its `ok`.
    acked: Option<(u64, u64)>,
    failed: bool,
}

/// Checks `history` against `fin` (see the module doc).
pub fn check(history: &[Event], fin: &Final) -> Report {
    let mut report = Report::default();
    let appends = pair_appends(history, &mut report);
    let log = reference_log(fin, &mut report);

    // Where each value lies in the reference log.
    let mut at: HashMap<&Value, Vec<u64>> = HashMap::new();
    for (&offset, (value, _)) in &log {
        at.entry(value).or_default().push(offset);
    }
    let mut sorted: Vec<(&Value, &Vec<u64>)> = at.iter().map(|(v, o)| (*v, o)).collect();
    sorted.sort_by_key(|(_, offsets)| offsets[0]);
    for &(value, offsets) in &sorted {
        if offsets.len() > 1 {
            report.anomalies.push(Anomaly::Duplicated {
                value: value.clone(),
                offsets: offsets.to_vec(),
            });
        }
        match appends.get(value) {
            None => report.anomalies.push(Anomaly::Phantom {
                value: value.clone(),
                offset: offsets[0],
            }),
            Some(a) if a.failed => report.anomalies.push(Anomaly::FailedPresent {
                value: value.clone(),
                offset: offsets[0],
            }),
            Some(_) => {}
        }
    }

    let mut acked: Vec<(&Value, &Append)> = appends
        .iter()
        .filter(|(_, a)| a.acked.is_some())
        .map(|(v, a)| (*v, a))
        .collect();
    acked.sort_by_key(|(_, a)| a.acked);
    report.acked = acked.len();
    for (value, a) in &acked {
        let (_, acked_offset) = a.acked.expect("filtered on acked");
        match at.get(value) {
            None => report.anomalies.push(Anomaly::Lost {
                value: (*value).clone(),
                acked_offset,
            }),
            Some(offsets) if !offsets.contains(&acked_offset) => {
                report.anomalies.push(Anomaly::Misplaced {
                    value: (*value).clone(),
                    acked_offset,
                    found_offset: offsets[0],
                })
            }
            Some(_) => {}
        }
    }

    reordered(&acked, &appends, &at, &mut report);
    reads(history, &log, &at, &mut report);
    report
}

/// Pairs every append's completion with its invoke, by value.
fn pair_appends<'h>(history: &'h [Event], report: &mut Report) -> HashMap<&'h Value, Append> {
    let mut appends: HashMap<&Value, Append> = HashMap::new();
    // Reads invoked and not yet completed, per process.
    let mut reading: HashMap<u64, usize> = HashMap::new();
    for e in history {
        let bad = |what: String| Anomaly::BadHistory { line: e.line, what };
        match (&e.op, e.kind) {
            (Op::Read { .. }, Kind::Invoke) => {
                report.ops += 1;
                *reading.entry(e.process).or_default() += 1;
            }
            (Op::Read { .. }, _) => match reading.get_mut(&e.process) {
                Some(n) if *n > 0 => *n -= 1,
                // A completion without an invoke event still counts.
                _ => report.ops += 1,
            },
            (Op::Append { value, .. }, Kind::Invoke) => {
                report.ops += 1;
                if appends
                    .insert(
                        value,
                        Append {
                            invoked: e.time,
                            acked: None,
                            failed: false,
                        },
                    )
                    .is_some()
                {
                    report
                        .anomalies
                        .push(bad(format!("value {value} appended twice")));
                }
            }
            (Op::Append { value, offset }, kind) => match appends.get_mut(value) {
                None => report
                    .anomalies
                    .push(bad(format!("completion of value {value}, never invoked"))),
                Some(a) if a.acked.is_some() || a.failed => report
                    .anomalies
                    .push(bad(format!("second completion of value {value}"))),
                Some(a) => match kind {
                    Kind::Ok => a.acked = Some((e.time, offset.unwrap_or(u64::MAX))),
                    Kind::Fail => a.failed = true,
                    _ => {}
                },
            },
        }
    }
    appends
}

/// The union of the replicas' logs; records divergence and holes.
fn reference_log<'f>(fin: &'f Final, report: &mut Report) -> BTreeMap<u64, (&'f Value, &'f str)> {
    let mut log: BTreeMap<u64, (&Value, &str)> = BTreeMap::new();
    for (replica, entries) in &fin.replicas {
        let mut prev: Option<u64> = None;
        for (offset, value) in entries {
            if let Some(p) = prev
                && p.checked_add(1) != Some(*offset)
            {
                report.anomalies.push(Anomaly::Hole {
                    replica: replica.clone(),
                    after: p,
                    next: *offset,
                });
            }
            prev = Some(*offset);
            match log.get(offset) {
                None => {
                    log.insert(*offset, (value, replica));
                }
                Some((v, other)) if *v != value => report.anomalies.push(Anomaly::Divergent {
                    offset: *offset,
                    replica: replica.clone(),
                    value: value.clone(),
                    other_replica: other.to_string(),
                    other_value: (*v).clone(),
                }),
                Some(_) => {}
            }
        }
    }
    log
}

/// An append acknowledged before another was invoked must lie at a lower
/// offset. Sweeps the appends present in the log by invoke time, keeping
/// the highest offset among those acknowledged earlier.
fn reordered(
    acked: &[(&Value, &Append)],
    appends: &HashMap<&Value, Append>,
    at: &HashMap<&Value, Vec<u64>>,
    report: &mut Report,
) {
    let mut present: Vec<(u64, &Value, u64)> = appends
        .iter()
        .filter_map(|(v, a)| at.get(v).map(|o| (a.invoked, *v, o[0])))
        .collect();
    present.sort();
    // `acked` is sorted by acknowledgement time.
    let mut k = 0;
    let mut highest: Option<(u64, &Value)> = None;
    for (invoked, value, offset) in present {
        while k < acked.len() && acked[k].1.acked.is_some_and(|(t, _)| t < invoked) {
            if let Some(o) = at.get(acked[k].0)
                && highest.is_none_or(|(h, _)| o[0] > h)
            {
                highest = Some((o[0], acked[k].0));
            }
            k += 1;
        }
        if let Some((h, earlier)) = highest
            && h > offset
        {
            report.anomalies.push(Anomaly::Reordered {
                earlier: earlier.clone(),
                earlier_offset: h,
                later: value.clone(),
                later_offset: offset,
            });
        }
    }
}

/// Every value a read returned must be the log's at its offset. Below
/// the earliest offset any replica still holds nothing can be compared,
/// except that the value must not lie elsewhere in the log.
fn reads(
    history: &[Event],
    log: &BTreeMap<u64, (&Value, &str)>,
    at: &HashMap<&Value, Vec<u64>>,
    report: &mut Report,
) {
    let earliest = log.keys().next().copied().unwrap_or(u64::MAX);
    for e in history {
        let (Kind::Ok, Op::Read { from, values }) = (e.kind, &e.op) else {
            continue;
        };
        for (i, read) in values.iter().enumerate() {
            let offset = from.saturating_add(i as u64);
            let expected = log.get(&offset).map(|(v, _)| *v);
            let ok = match expected {
                Some(v) => v == read,
                None if offset < earliest => at.get(read).is_none(),
                None => false,
            };
            if !ok {
                report.anomalies.push(Anomaly::BadRead {
                    line: e.line,
                    process: e.process,
                    offset,
                    read: read.clone(),
                    expected: expected.cloned(),
                });
            }
        }
    }
}
