//! Property test: the WAL against an in-memory model of per-group logs.
//! Random appends (including suffix rewrites), hard states, compactions
//! (within and past the log), flushes, segment GC and reopens; after every
//! step the WAL must answer exactly as the model does, and a reopen must
//! bring back exactly what the last flush made durable.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::crash::crash_image;
use corelog::raftpb::{Entry, HardState};
use corelog::wal::{Fault, Options, Wal};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append {
        group: u64,
        back: u64,
        n: u64,
        term: u64,
        len: usize,
    },
    Hard {
        group: u64,
        term: u64,
        commit: u64,
    },
    Compact {
        group: u64,
        back: u64,
    },
    CompactPast {
        group: u64,
        ahead: u64,
    },
    Flush,
    /// Start a flush and go on without waiting for it.
    StartFlush,
    /// Complete the flush in flight if the disk is done, without waiting.
    Poll,
    Gc,
    Reopen,
    /// A flush that lands only `frac`/256 of its bytes, then fails (a crash
    /// in the middle of the write), then a reopen: the flush must be
    /// recovered whole or not at all.
    TornFlush {
        frac: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3u64, 0..4u64, 1..6u64, 1..5u64, 0..300usize)
            .prop_map(|(group, back, n, term, len)| Op::Append { group, back, n, term, len }),
        2 => (0..3u64, 0..9u64, 0..50u64).prop_map(|(group, term, commit)| Op::Hard { group, term, commit }),
        1 => (0..3u64, 0..8u64).prop_map(|(group, back)| Op::Compact { group, back }),
        1 => (0..3u64, 1..4u64).prop_map(|(group, ahead)| Op::CompactPast { group, ahead }),
        2 => Just(Op::Flush),
        2 => Just(Op::StartFlush),
        1 => Just(Op::Poll),
        1 => Just(Op::Gc),
        1 => Just(Op::Reopen),
        1 => (0..256usize).prop_map(|frac| Op::TornFlush { frac }),
    ]
}

#[derive(Debug, Clone, Default)]
struct Group {
    entries: BTreeMap<u64, (u64, Bytes)>,
    compacted: (u64, u64),
    hard: Option<HardState>,
}

impl Group {
    fn last(&self) -> u64 {
        self.entries
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.compacted.0)
    }
    fn first(&self) -> u64 {
        self.compacted.0 + 1
    }
    fn term(&self, i: u64) -> u64 {
        if i == self.compacted.0 {
            self.compacted.1
        } else {
            self.entries[&i].0
        }
    }
}

fn opts() -> Options {
    let mut o = Options::new(1, 0);
    o.segment_size = 4096;
    o.max_flush_bytes = 1 << 20;
    o.cache_bytes = 3000;
    o
}

fn check(w: &Wal, model: &BTreeMap<u64, Group>, step: usize) -> Result<(), TestCaseError> {
    // Every group either side knows of; a group one side lacks is empty.
    let empty = Group::default();
    let ids: std::collections::BTreeSet<u64> = model.keys().copied().chain(w.group_ids()).collect();
    for g in &ids {
        let m = model.get(g).unwrap_or(&empty);
        prop_assert_eq!(w.last_index(*g), m.last(), "last of {} at step {}", g, step);
        if m.last() >= m.first() {
            prop_assert_eq!(
                w.first_index(*g),
                m.first(),
                "first of {} at step {}",
                g,
                step
            );
            let got = w.entries(*g, m.first(), m.last() + 1, u64::MAX).unwrap();
            let want: Vec<Entry> = m
                .entries
                .iter()
                .map(|(i, (t, d))| Entry {
                    term: *t,
                    index: *i,
                    r#type: 0,
                    data: d.clone(),
                })
                .collect();
            prop_assert_eq!(got, want, "entries of {} at step {}", g, step);
        }
        prop_assert_eq!(w.term(*g, m.compacted.0).unwrap(), m.compacted.1);
        prop_assert_eq!(w.compacted(*g), m.compacted);
        prop_assert_eq!(w.hard_state(*g), m.hard.unwrap_or_default());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn wal_matches_a_model_of_per_group_logs(ops in proptest::collection::vec(op(), 1..60)) {
        let mut d = tempfile::tempdir().unwrap();
        let mut w = Wal::open(d.path(), opts()).unwrap();
        let mut live: BTreeMap<u64, Group> = BTreeMap::new();
        let mut durable = live.clone();
        // The flush in flight (its number) and the state it makes durable.
        let mut inflight: Option<(u64, BTreeMap<u64, Group>)> = None;
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Append { group, back, n, term, len } => {
                    let m = live.entry(group).or_default();
                    let start = (m.last() + 1).saturating_sub(back).max(m.first());
                    let es: Vec<Entry> = (start..start + n)
                        .map(|i| Entry {
                            term,
                            index: i,
                            r#type: 0,
                            data: Bytes::from(vec![(i as u8) ^ (term as u8); len]),
                        })
                        .collect();
                    let _ = w.append_entries(group, &es).unwrap();
                    m.entries.retain(|i, _| *i < start);
                    for e in es {
                        m.entries.insert(e.index, (e.term, e.data));
                    }
                }
                Op::Hard { group, term, commit } => {
                    let hs = HardState { term, vote: 1, commit };
                    let _ = w.set_hard_state(group, &hs).unwrap();
                    live.entry(group).or_default().hard = Some(hs);
                }
                Op::Compact { group, back } => {
                    let m = live.entry(group).or_default();
                    let index = m.last().saturating_sub(back);
                    if index > m.compacted.0 {
                        let term = m.term(index);
                        let _ = w.compact(group, index, term).unwrap();
                        m.compacted = (index, term);
                        m.entries.retain(|i, _| *i > index);
                    }
                }
                Op::CompactPast { group, ahead } => {
                    let m = live.entry(group).or_default();
                    let index = m.last() + ahead;
                    let _ = w.compact(group, index, 9).unwrap();
                    m.compacted = (index, 9);
                    m.entries.clear();
                }
                Op::Flush => {
                    w.flush().unwrap();
                    durable = live.clone();
                    inflight = None;
                }
                Op::StartFlush => {
                    if let Some((_, snap)) = inflight.take() {
                        // Starting waits for the one in flight.
                        durable = snap;
                    }
                    if let Some(n) = w.start_flush().unwrap() {
                        inflight = Some((n, live.clone()));
                    }
                }
                Op::Poll => {
                    w.poll_flush().unwrap();
                }
                Op::Gc => {
                    w.gc().unwrap();
                    durable = live.clone();
                    inflight = None;
                }
                Op::TornFlush { frac } => {
                    // A flush is all or nothing, even when it spans
                    // segments: tear it anywhere.
                    if let Some((_, snap)) = inflight.take() {
                        w.wait_flush().unwrap();
                        durable = snap;
                    }
                    let total: usize = w.pending_parts().iter().sum();
                    if total == 0 {
                        continue;
                    }
                    w.inject_fault(Fault { land_bytes: total * frac / 256, errno: libc::EIO, scatter: None });
                    prop_assert!(w.flush().is_err());
                    drop(w);
                    // The directory is poisoned in this process: recover
                    // from the disk a restarted process would find.
                    d = crash_image(d.path());
                    w = Wal::open(d.path(), opts()).unwrap();
                    // A flush is all or nothing. (All, when the bytes that
                    // did not land happen to equal what was on disk: zeros.)
                    if check(&w, &durable, step).is_ok() {
                        live = durable.clone();
                    } else {
                        check(&w, &live, step)?;
                        durable = live.clone();
                    }
                }
                Op::Reopen => {
                    // Dropping waits for the flush in flight: it completes.
                    if let Some((_, snap)) = inflight.take() {
                        durable = snap;
                    }
                    drop(w);
                    w = Wal::open(d.path(), opts()).unwrap();
                    prop_assert_eq!(w.recovery_report().torn_bytes, 0);
                    live = durable.clone();
                }
            }
            if let Some((n, _)) = &inflight
                && w.durable_flush() >= *n
                && let Some((_, snap)) = inflight.take()
            {
                durable = snap;
            }
            check(&w, &live, step)?;
        }
        w.flush().unwrap();
        drop(w);
        let w = Wal::open(d.path(), opts()).unwrap();
        check(&w, &live, usize::MAX)?;
    }
}
