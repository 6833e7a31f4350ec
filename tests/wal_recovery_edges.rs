//! Recovery edges that mutation testing of src/wal found untested (each
//! fails under a one-line change every other WAL test let through): an
//! acknowledged flush whose first sector was lost in the newest segment
//! (the spare position) is refused, not zeroed; bit rot before a record
//! that ends in zeros of its own is reported, not taken for a torn tail.

use bytes::Bytes;
use corelog::raftpb::{Entry, HardState};
use corelog::wal::disk::{Faults, SimDisk, SimOptions};
use corelog::wal::{Error, Options, Wal};

fn opts() -> Options {
    let mut o = Options::new(7, 3);
    o.segment_size = 8192;
    o.max_flush_bytes = 16 << 10;
    o.cache_bytes = 8 << 10;
    o.relocate_bytes = 0;
    o
}

/// Never-zero payload bytes, so that zeros in a batch mean bytes that
/// never landed.
fn ent(index: u64, len: usize) -> Entry {
    let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let data = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect::<Vec<u8>>();
    Entry {
        term: 1,
        index,
        r#type: 0,
        data: Bytes::from(data),
    }
}

fn append_flush(w: &mut Wal<SimDisk>, len: usize) {
    let i = w.last_index(1) + 1;
    let _ = w.append_entries(1, &[ent(i, len)]).unwrap();
    w.flush().unwrap();
}

fn active_name(w: &Wal<SimDisk>) -> String {
    let (p, _) = w.write_position();
    p.file_name().unwrap().to_str().unwrap().to_string()
}

/// Rule 6 (b) in the spare. When the segment after the active one could
/// not be prepared (a full disk), the active segment is the newest file.
/// An acknowledged flush F at its start whose first sector never reached
/// the media makes the segment read as holding no data: recovery sets it
/// aside as the spare and clears it. G, acknowledged after F, lies right
/// past that "end": recovery must refuse the disk, not zero F and G.
/// (Survived mutation M04, which drops the refusal in the spare: every
/// other test puts the lost first sector in the segment written on.)
#[test]
fn an_acknowledged_flush_past_a_lost_first_sector_of_the_spare_is_refused() {
    let mut so = SimOptions::new(11);
    so.sector_size = Some(512);
    so.faults = Faults::NONE;
    let d = SimDisk::new(so);
    let o = opts();
    let mut w = Wal::open_on(d.clone(), o.clone()).unwrap();
    let first = active_name(&w);
    while w.write_position().1 + 1200 < o.segment_size {
        append_flush(&mut w, 500);
    }
    // The next segment exists already; the one after it cannot be made.
    d.set_capacity(d.usage());
    // F: rolls, and starts right after the header (sector 0) of the new
    // segment, running into sector 2.
    append_flush(&mut w, 1300);
    let name = active_name(&w);
    assert_ne!(name, first, "F rolled to the next segment");
    assert_eq!(
        *w.segment_seqs().last().unwrap(),
        2,
        "no segment was prepared after it"
    );
    d.set_capacity(u64::MAX);
    let (_, g_at) = w.write_position();
    // G: acknowledged after F.
    append_flush(&mut w, 300);
    let (_, g_end) = w.write_position();
    let acked_last = w.last_index(1);
    d.crash();
    drop(w);
    assert!(
        d.durable_names()
            .iter()
            .all(|n| !n.starts_with("00000000000000000003")),
        "no third segment: {:?}",
        d.durable_names()
    );
    // F's first sector never reached the media (its zeros stay).
    let media = d.durable_bytes(&name).unwrap();
    for off in 64..512u64 {
        let b = media[off as usize];
        if b != 0 {
            assert!(d.rot_durable_byte(&name, off, b));
        }
    }
    d.crash();
    match Wal::open_on(d.clone(), o) {
        Err(Error::Corrupt { what, .. }) => assert!(
            what.starts_with("end of log at offset") && what.contains("followed by a sound batch"),
            "the error names the end of the log and the batch past it: {what}"
        ),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(w) => panic!(
            "acknowledged flushes F and G silently lost: recovered last index {} of {acked_last}; \
             G's bytes on the media all zero: {}",
            w.last_index(1),
            d.durable_bytes(&name).unwrap()[g_at as usize..g_end as usize]
                .iter()
                .all(|&b| b == 0)
        ),
    }
}

/// Rule 4 (c): bit rot inside a complete-looking last flush is reported,
/// even when the flush's last record ends in zero bytes of its own (a hard
/// state with small numbers: the high bytes of its u64s are zero). Zeros
/// at the end of a batch prove a torn write only if they run from within
/// the defective record; a zero tail after it is the records' own.
/// (Survived mutation M01, which takes any zero tail of the batch as a
/// torn write, silently dropping an acknowledged flush.)
#[test]
fn bit_rot_before_a_record_ending_in_zeros_is_reported_not_truncated() {
    let mut so = SimOptions::new(12);
    so.sector_size = Some(512);
    so.faults = Faults::NONE;
    let d = SimDisk::new(so);
    let o = opts();
    let mut w = Wal::open_on(d.clone(), o.clone()).unwrap();
    let name = active_name(&w);
    append_flush(&mut w, 300);
    let before = w.last_index(1);
    // The last flush: an entry, then a hard state ending in zero bytes.
    let e = ent(before + 1, 300);
    let _ = w.append_entries(1, std::slice::from_ref(&e)).unwrap();
    let hs = HardState {
        term: 1,
        vote: 1,
        commit: before + 1,
    };
    let _ = w.set_hard_state(1, &hs).unwrap();
    w.flush().unwrap();
    d.crash();
    drop(w);
    // One bit flips in the entry's data on the media.
    let media = d.durable_bytes(&name).unwrap();
    let at = media
        .windows(32)
        .position(|win| win == &e.data[..32])
        .expect("the entry's data is on the media") as u64
        + 100;
    assert!(d.rot_durable_byte(&name, at, 0x10));
    d.crash();
    match Wal::open_on(d.clone(), o) {
        Err(Error::Corrupt { what, .. }) => assert!(
            what.contains("bit rot"),
            "the error says a complete-looking flush changed: {what}"
        ),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(w) => panic!(
            "bit rot in an acknowledged flush taken for a torn write: recovered last index {} \
             (acknowledged {}), hard state {:?}, torn bytes {}",
            w.last_index(1),
            before + 1,
            w.hard_state(1),
            w.recovery_report().torn_bytes
        ),
    }
}
