//! `WalStorage` answers Raft's `Storage` questions as `MemStorage` does for
//! the same history, before and after a reopen of the WAL, but for one
//! stated divergence: the commit index `initial_state` reports after a
//! snapshot applied without a hard state committing it.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use corelog::raft::{MemStorage, Storage};
use corelog::raftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use corelog::wal::{Options, Wal, WalStorage};

fn opts() -> Options {
    let mut o = Options::new(1, 1);
    o.segment_size = 8192;
    o.cache_bytes = 500;
    o
}

fn ents(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..hi)
        .map(|i| Entry {
            term,
            index: i,
            r#type: 0,
            data: Bytes::from(format!("e{i}t{term}")),
        })
        .collect()
}

fn same(ws: &WalStorage, ms: &MemStorage, what: &str) {
    assert_eq!(
        ws.initial_state(),
        ms.initial_state(),
        "{what}: initial_state"
    );
    same_log(ws, ms, what);
}

/// Everything but `initial_state`.
fn same_log(ws: &WalStorage, ms: &MemStorage, what: &str) {
    let (first, last) = (ms.first_index().unwrap(), ms.last_index().unwrap());
    assert_eq!(ws.first_index().unwrap(), first, "{what}: first_index");
    assert_eq!(ws.last_index().unwrap(), last, "{what}: last_index");
    for i in 0..=last + 2 {
        assert_eq!(ws.term(i), ms.term(i), "{what}: term({i})");
    }
    for lo in first.saturating_sub(1)..=last + 1 {
        for hi in lo.max(first)..=last + 1 {
            for max in [0, 20, 40, u64::MAX] {
                assert_eq!(
                    ws.entries(lo, hi, max),
                    ms.entries(lo, hi, max),
                    "{what}: entries({lo}, {hi}, {max})"
                );
            }
        }
    }
    let (a, b) = (ws.snapshot().unwrap(), ms.snapshot().unwrap());
    assert_eq!(a.metadata, b.metadata, "{what}: snapshot metadata");
}

#[test]
fn wal_storage_answers_like_mem_storage_through_a_history() {
    let d = tempfile::tempdir().unwrap();
    let wal = Rc::new(RefCell::new(Wal::open(d.path(), opts()).unwrap()));
    let ws = WalStorage::new(wal.clone(), 42);
    let mut ms = MemStorage::new_with_conf_state(ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    });
    let _ = ws
        .set_conf_state(ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        })
        .unwrap();
    same(&ws, &ms, "fresh");

    let _ = ws.append(&ents(1, 30, 1)).unwrap();
    ms.append(&ents(1, 30, 1)).unwrap();
    let hs = HardState {
        term: 1,
        vote: 2,
        commit: 12,
    };
    let _ = ws.set_hard_state(&hs).unwrap();
    ms.set_hard_state(hs);
    wal.borrow_mut().flush().unwrap();
    same(&ws, &ms, "appended");

    // A new leader overwrites an uncommitted suffix.
    let _ = ws.append(&ents(20, 25, 2)).unwrap();
    ms.append(&ents(20, 25, 2)).unwrap();
    same(&ws, &ms, "rewritten");

    let _ = ws.compact(10).unwrap();
    ms.compact(10).unwrap();
    wal.borrow_mut().flush().unwrap();
    same(&ws, &ms, "compacted");

    // Entries overlapping the compaction point: the covered ones are skipped.
    let _ = ws.append(&ents(8, 26, 3)).unwrap();
    ms.append(&ents(8, 26, 3)).unwrap();
    wal.borrow_mut().flush().unwrap();
    same(&ws, &ms, "overlapping append");

    // One open of a directory at a time: every handle goes first.
    drop((ws, wal));
    let reopened = Rc::new(RefCell::new(Wal::open(d.path(), opts()).unwrap()));
    let ws = WalStorage::new(reopened.clone(), 42);
    same(&ws, &ms, "reopened");

    // A snapshot past the log restarts it. The Ready that carries it
    // carries a hard state committing it too (WalStorage reports a commit
    // index at least the snapshot's in any case: a crash may keep the
    // snapshot without the hard state queued after it, tests/wal_sim.rs).
    let meta = SnapshotMetadata {
        conf_state: Some(ConfState {
            voters: vec![1, 2, 3, 4],
            ..Default::default()
        }),
        index: 40,
        term: 4,
    };
    let _ = ws.apply_snapshot(&meta).unwrap();
    ms.apply_snapshot(Snapshot {
        data: Bytes::new(),
        metadata: Some(meta),
    })
    .unwrap();
    let hs = HardState {
        term: 4,
        vote: 0,
        commit: 40,
    };
    let _ = ws.set_hard_state(&hs).unwrap();
    ms.set_hard_state(hs);
    reopened.borrow_mut().flush().unwrap();
    same(&ws, &ms, "snapshot");
    let _ = ws.append(&ents(41, 45, 4)).unwrap();
    ms.append(&ents(41, 45, 4)).unwrap();
    reopened.borrow_mut().flush().unwrap();
    drop((ws, reopened));
    let ws = WalStorage::new(
        Rc::new(RefCell::new(Wal::open(d.path(), opts()).unwrap())),
        42,
    );
    same(&ws, &ms, "snapshot reopened");
}

/// The one documented divergence from `MemStorage`: after a snapshot past
/// the commit index, applied without a hard state committing it (a crash
/// can keep the snapshot and lose the hard state queued after it),
/// `MemStorage` reports the old commit index, below its first index, which
/// `RawNode::new` refuses; `WalStorage::initial_state` reports the
/// snapshot's index instead (what a snapshot holds was committed). The
/// rest of the answers, and the hard state the WAL holds, are the same.
/// (This is the scenario the equivalence test above ran before
/// `initial_state` raised the commit; it sets the hard state now.)
#[test]
fn a_snapshot_without_its_hard_state_raises_only_the_reported_commit() {
    let d = tempfile::tempdir().unwrap();
    let wal = Rc::new(RefCell::new(Wal::open(d.path(), opts()).unwrap()));
    let ws = WalStorage::new(wal.clone(), 42);
    let cs = ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    };
    let mut ms = MemStorage::new_with_conf_state(cs.clone());
    let _ = ws.set_conf_state(cs).unwrap();
    let _ = ws.append(&ents(1, 30, 1)).unwrap();
    ms.append(&ents(1, 30, 1)).unwrap();
    let hs = HardState {
        term: 1,
        vote: 2,
        commit: 12,
    };
    let _ = ws.set_hard_state(&hs).unwrap();
    ms.set_hard_state(hs);
    let meta = SnapshotMetadata {
        conf_state: Some(ConfState {
            voters: vec![1, 2, 3, 4],
            ..Default::default()
        }),
        index: 40,
        term: 4,
    };
    let _ = ws.apply_snapshot(&meta).unwrap();
    ms.apply_snapshot(Snapshot {
        data: Bytes::new(),
        metadata: Some(meta),
    })
    .unwrap();
    wal.borrow_mut().flush().unwrap();
    let check = |ws: &WalStorage, what: &str| {
        let (w, m) = (ws.initial_state().unwrap(), ms.initial_state().unwrap());
        assert_eq!(
            m.hard_state.commit, 12,
            "{what}: MemStorage keeps the old commit"
        );
        assert_eq!(
            w.hard_state.commit, 40,
            "{what}: WalStorage raises it to the snapshot's index"
        );
        let mut m_raised = m.clone();
        m_raised.hard_state.commit = 40;
        assert_eq!(w, m_raised, "{what}: nothing else of initial_state differs");
        same_log(ws, &ms, what);
    };
    check(&ws, "snapshot");
    assert_eq!(
        wal.borrow().hard_state(42),
        hs,
        "the WAL holds what was written"
    );
    drop((ws, wal));
    let wal = Rc::new(RefCell::new(Wal::open(d.path(), opts()).unwrap()));
    check(&WalStorage::new(wal.clone(), 42), "reopened");
    assert_eq!(wal.borrow().hard_state(42), hs, "reopened: as written");
}

/// Defect 8: a read that fails (bytes changed under the WAL) is an error
/// of that group's `Storage`, not a panic of the whole shard.
#[test]
fn an_unreadable_entry_is_an_error_not_a_panic() {
    use std::os::unix::fs::FileExt;
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.cache_bytes = 0;
    let wal = Rc::new(RefCell::new(Wal::open(d.path(), o).unwrap()));
    let ws = WalStorage::new(wal.clone(), 1);
    let _ = ws.append(&ents(1, 4, 1)).unwrap();
    wal.borrow_mut().flush().unwrap();
    // Overwrite the segment's records (the map sees the file).
    let (path, end) = wal.borrow().write_position();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&vec![0xee; (end - 64) as usize], 64)
        .unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ws.entries(1, 4, u64::MAX)));
    match r {
        Ok(Err(corelog::raft::Error::Storage(corelog::raft::StorageError::Unreadable))) => {}
        Ok(other) => panic!("expected Unreadable, got {other:?}"),
        Err(_) => panic!("WalStorage panicked on an unreadable entry"),
    }
    // The other questions still answer.
    assert_eq!(ws.last_index().unwrap(), 3);
}

/// Defect 8: a snapshot whose index falls inside the log replaces the
/// whole log, as `MemStorage` does (Raft needs that when the snapshot's
/// entry conflicts with ours), now and after a reopen.
#[test]
fn a_snapshot_inside_the_log_discards_the_whole_log_like_mem_storage() {
    let d = tempfile::tempdir().unwrap();
    let wal = Rc::new(RefCell::new(Wal::open(d.path(), opts()).unwrap()));
    let ws = WalStorage::new(wal.clone(), 5);
    let mut ms = MemStorage::new_with_conf_state(ConfState {
        voters: vec![1],
        ..Default::default()
    });
    let _ = ws
        .set_conf_state(ConfState {
            voters: vec![1],
            ..Default::default()
        })
        .unwrap();
    let _ = ws.append(&ents(1, 11, 1)).unwrap();
    ms.append(&ents(1, 11, 1)).unwrap();
    let meta = SnapshotMetadata {
        conf_state: Some(ConfState {
            voters: vec![1, 2],
            ..Default::default()
        }),
        index: 6,
        term: 2,
    };
    let _ = ws.apply_snapshot(&meta).unwrap();
    ms.apply_snapshot(Snapshot {
        data: Bytes::new(),
        metadata: Some(meta),
    })
    .unwrap();
    wal.borrow_mut().flush().unwrap();
    same(&ws, &ms, "snapshot inside the log");
    drop((ws, wal));
    let ws = WalStorage::new(
        Rc::new(RefCell::new(Wal::open(d.path(), opts()).unwrap())),
        5,
    );
    same(&ws, &ms, "snapshot inside the log, reopened");
}
