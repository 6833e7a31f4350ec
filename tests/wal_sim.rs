//! The real WAL on the simulated disk (`Wal::open_on(SimDisk)`): power loss
//! at any point of a flush never loses an acknowledged entry or hard state.

use bytes::Bytes;
use corelog::raftpb::{Entry, HardState};
use corelog::wal::disk::{Faults, SimDisk, SimOptions};
use corelog::wal::{Options, Wal};

fn opts() -> Options {
    let mut o = Options::new(7, 3);
    o.segment_size = 64 << 10;
    o.max_flush_bytes = 16 << 10;
    o
}

fn ent(index: u64, term: u64, len: usize) -> Entry {
    Entry {
        term,
        index,
        r#type: 0,
        data: Bytes::from(vec![(index as u8) | 1; len]),
    }
}

fn disk(seed: u64, faults: Faults) -> SimDisk {
    let mut o = SimOptions::new(seed);
    o.faults = faults;
    SimDisk::new(o)
}

#[test]
fn entries_flushed_on_the_simulated_disk_survive_a_crash_and_the_rest_do_not() {
    let d = disk(1, Faults::NONE);
    let mut w = Wal::open_on(d.clone(), opts()).unwrap();
    let hs = HardState {
        term: 2,
        vote: 1,
        commit: 3,
    };
    let _ = w.set_hard_state(1, &hs).unwrap();
    for i in 1..=40 {
        let _ = w.append_entries(1, &[ent(i, 2, 3000)]).unwrap();
    }
    w.flush().unwrap();
    // Rolled several segments, and every entry reads back.
    assert!(w.segment_seqs().len() > 1, "{:?}", w.segment_seqs());
    assert_eq!(w.entries(1, 1, 41, u64::MAX).unwrap().len(), 40);
    // Queued, never flushed: lost with the power.
    let _ = w.append_entries(1, &[ent(41, 2, 10)]).unwrap();
    d.crash();
    drop(w);
    let w = Wal::open_on(d.clone(), opts()).unwrap();
    assert_eq!(w.last_index(1), 40);
    assert_eq!(w.hard_state(1), hs);
    let got = w.entries(1, 1, 41, u64::MAX).unwrap();
    for (k, e) in got.iter().enumerate() {
        assert_eq!(*e, ent(k as u64 + 1, 2, 3000), "entry {}", k + 1);
    }
}
