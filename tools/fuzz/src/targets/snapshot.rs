//! Log snapshots (`LogState::restore`, which runs `log::snapshot::decode`):
//! the bytes a follower installs from its leader and a restart reads back.
//! A snapshot that restores must encode to a snapshot that restores to the
//! same state.

use bytes::Bytes;
use corelog::log::{BatchBuilder, BatchLimits, Command, LogConfig, LogState};

use super::{Target, label};

pub const TARGET: Target = Target {
    name: "snapshot",
    seeds,
    fixup,
    run,
    max_alloc: MAX_ALLOC,
    alloc_per_input_byte: 0,
};

/// Every table is sized by counts checked against the bytes that hold
/// them; the state is at most a few times the input.
const MAX_ALLOC: usize = 8 * crate::mutate::MAX_INPUT + (64 << 10);

const HEADER: usize = 24;
const AT_CRC: usize = 16;

fn run(input: &[u8]) -> u64 {
    let bytes = Bytes::copy_from_slice(input);
    let first_held = input.first().map_or(0, |&b| u64::from(b % 4));
    let state = match LogState::restore(&bytes, first_held) {
        Ok(s) => s,
        Err(e) => return label(&format!("{e:?}")),
    };
    let again = state.snapshot();
    let back = LogState::restore(&again, first_held).expect("our own snapshot restores");
    assert_eq!(back, state, "snapshot round trip");
    assert_eq!(back.snapshot(), again, "snapshot encoding is stable");
    label(&format!("ok {}", state.next_offset().min(3)))
}

/// Recomputes the crc (header up to it, then the body).
fn fixup(b: &mut [u8]) {
    if b.len() < HEADER {
        return;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..AT_CRC]);
    h.update(&b[HEADER..]);
    let crc = h.finalize();
    b[AT_CRC..AT_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = vec![LogState::new(LogConfig::DEFAULT).snapshot().to_vec()];
    let mut s = LogState::new(LogConfig { max_producers: 3 });
    let mut index = 1;
    // The group gives ids 1..=4 (the fourth evicts the first, which has
    // appended nothing); 4 stays registered with no batch.
    for _ in 0..4 {
        s.apply(index, &Command::InitProducer.encode()).unwrap();
        index += 1;
    }
    for (producer, seq) in [(0u64, 0u64), (2, 0), (3, 0), (2, 3), (1, 0), (3, 3)] {
        let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
        let mut w = b.start(producer, seq, 1_000 + index);
        for r in [&b"x"[..], b"yy", b"zzz"] {
            w.push(r).unwrap();
        }
        s.apply(index, &w.finish().unwrap()).unwrap();
        index += 1;
    }
    out.push(s.snapshot().to_vec());
    s.apply(index, &Command::Truncate { before_offset: 7 }.encode())
        .unwrap();
    out.push(s.snapshot().to_vec());
    out
}
