//! `WalStorage` answers Raft's `Storage` questions exactly as `MemStorage`
//! does for the same history, before and after a reopen of the WAL.

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

    // A snapshot past the log restarts it.
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
