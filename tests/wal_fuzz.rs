//! Recovery on hostile bytes: random overwrites anywhere in the segments
//! (headers included) must end in a typed error or a WAL whose every read
//! answers; never a panic, a hang or an out-of-bounds read. This is the
//! "no unwrap on data read from disk" rule, checked.

use std::os::unix::fs::FileExt;

use bytes::Bytes;
use corelog::raftpb::{Entry, HardState, SnapshotMetadata};
use corelog::wal::{Options, Wal};
use proptest::prelude::*;

fn opts(read_only: bool) -> Options {
    let mut o = Options::new(5, 6);
    o.segment_size = 8192;
    o.read_only = read_only;
    o
}

fn build(dir: &std::path::Path) {
    let mut w = Wal::open(dir, opts(false)).unwrap();
    for i in 1..60u64 {
        let g = i % 3;
        let idx = (i - 1) / 3 + 1;
        let e = Entry {
            term: i,
            index: idx,
            r#type: (i % 3) as i32,
            data: Bytes::from(vec![i as u8; (i * 7 % 90) as usize]),
        };
        let _ = w.append_entries(g, &[e]).unwrap();
        if i % 5 == 0 {
            let hs = HardState {
                term: i,
                vote: g,
                commit: idx,
            };
            let _ = w.set_hard_state(g, &hs).unwrap();
            let meta = SnapshotMetadata {
                conf_state: None,
                index: 0,
                term: 0,
            };
            let _ = w.set_snapshot(g, &meta).unwrap();
            w.flush().unwrap();
        }
    }
    w.flush().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(128), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn recovery_never_panics_on_overwritten_bytes(
        edits in proptest::collection::vec((0..2usize, 0..8192u64, proptest::collection::vec(any::<u8>(), 1..24)), 1..6)
    ) {
        let d = tempfile::tempdir().unwrap();
        build(d.path());
        let mut segs: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        segs.sort();
        for (seg, off, bytes) in &edits {
            let p = &segs[seg % segs.len()];
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            let off = (*off).min(8192 - bytes.len() as u64);
            f.write_all_at(bytes, off).unwrap();
        }
        for read_only in [true, false] {
            if let Ok(mut w) = Wal::open(d.path(), opts(read_only)) {
                for g in w.group_ids() {
                    let (lo, hi) = (w.first_index(g), w.last_index(g) + 1);
                    let _ = w.entries(g, lo, hi, u64::MAX);
                    for i in lo.saturating_sub(1)..hi {
                        let _ = w.term(g, i);
                    }
                    let _ = w.hard_state(g);
                    let _ = w.snapshot(g);
                }
                if !read_only {
                    // What opens read-write takes appends, and keeps them.
                    let next = w.last_index(1) + 1;
                    let e = Entry { term: 99, index: next, r#type: 0, data: Bytes::from_static(b"after") };
                    let _ = w.append_entries(1, std::slice::from_ref(&e)).unwrap();
                    w.flush().unwrap();
                    drop(w);
                    let w = Wal::open(d.path(), opts(true)).unwrap();
                    prop_assert_eq!(w.entries(1, next, next + 1, u64::MAX).unwrap(), vec![e]);
                }
            }
        }
    }
}
