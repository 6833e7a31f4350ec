//! WAL recovery on arbitrary segment bytes: the input is cut into segment
//! files (each header's `segment_size` says where the next begins), laid
//! on a simulated disk, and `Wal::open_on` scans them (segment headers,
//! batch records, entries, hard states, snapshots, compactions, the
//! torn-tail rule). A WAL that opens is read back (every group's summary,
//! terms and entries), and opening it a second time must succeed and find
//! the same groups: recovery's repairs (zeroed torn tails) are stable.

use corelog::raftpb::{Entry, HardState, SnapshotMetadata};
use corelog::wal::disk::{Disk, DiskFile, SimDisk, SimOptions};
use corelog::wal::format::{
    BATCH_RECORD_SIZE, MIN_SEGMENT_SIZE, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, SegmentHeader,
    record_seed,
};
use corelog::wal::{GroupSummary, Options, Wal};

use super::{Target, label, mix};

pub const TARGET: Target = Target {
    name: "wal",
    seeds,
    fixup,
    run,
    max_alloc: MAX_ALLOC,
    alloc_per_input_byte: 0,
};

/// Segments the target lays out are at most this big (the seeds' size).
const SEGMENT: u64 = 16 << 10;
/// Largest segment file the fixup pads an input's segment to.
const MAX_FIXED_SEGMENT: u64 = 64 << 10;
/// Recovery maps whole segments and holds one batch at a time; reads are
/// bounded by `READ_BYTES`.
const MAX_ALLOC: usize = 4 << 20;
const READ_BYTES: u64 = 64 << 10;

fn options() -> Options {
    let mut o = Options::new(1, 1);
    o.segment_size = SEGMENT;
    o.max_flush_bytes = 8 << 10;
    o
}

/// Where each segment of `b` lies: by its header's size if it decodes,
/// else the rest of the input.
fn segments(b: &[u8]) -> Vec<(u64, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut seq = 1;
    while at < b.len() && out.len() < 8 {
        let size = match SegmentHeader::decode(&b[at..]) {
            Ok(h) if (MIN_SEGMENT_SIZE..=MAX_FIXED_SEGMENT).contains(&h.segment_size) => {
                seq = h.sequence;
                h.segment_size as usize
            }
            _ => b.len() - at,
        };
        let end = (at + size).min(b.len());
        out.push((seq, at..end));
        seq = seq.wrapping_add(1);
        at = end;
    }
    out
}

fn file_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

fn run(input: &[u8]) -> u64 {
    let mut opts = SimOptions::new(1);
    opts.sector_size = Some(4096);
    let disk = SimDisk::new(opts);
    let mut used = std::collections::HashSet::new();
    for (i, (mut seq, r)) in segments(input).into_iter().enumerate() {
        // Two segments claiming one sequence: the second under a name of
        // its own (recovery checks names against headers).
        if !used.insert(seq) {
            seq = 1_000_000 + i as u64;
        }
        let f = disk.create(&file_name(seq)).expect("sim create");
        f.write_at(&input[r], 0).expect("sim write");
        f.sync_data().expect("sim sync");
    }
    disk.sync_dir().expect("sim sync dir");
    let first = match open(&disk) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let second = open(&disk)
        .unwrap_or_else(|e| panic!("a WAL that opened once does not open again (outcome {e:#x})"));
    assert_eq!(first, second, "a second recovery finds other groups");
    mix(2, first.len().min(4) as u64)
}

/// Opens the WAL on `disk` and reads everything back; `Err` is the label
/// of the error that refused it.
fn open(disk: &SimDisk) -> Result<Vec<GroupSummary>, u64> {
    let wal = Wal::open_on(disk.clone(), options()).map_err(|e| label(&format!("{e:?}")))?;
    let groups: Vec<u64> = wal.group_ids().collect();
    let mut out = Vec::new();
    for g in groups {
        let s = wal.summary(g);
        assert!(
            s.first_index <= s.last_index.saturating_add(1),
            "group {g}: first index {} past last {} + 1",
            s.first_index,
            s.last_index
        );
        if s.last_index >= s.first_index {
            let hi = s.last_index.min(s.first_index.saturating_add(64)) + 1;
            let _ = wal.term(g, s.first_index);
            let _ = wal.entries(g, s.first_index, hi, READ_BYTES);
        }
        out.push(s);
    }
    Ok(out)
}

fn seeded_crc(seed: u32, b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(b);
    h.finalize()
}

/// Per segment: the header's crc, then every batch's and record's crc
/// (seeded with the segment and the batch's flush sequence), so that a
/// mutated field reaches the checks behind the crcs.
fn fixup(b: &mut [u8]) {
    for (_, r) in segments(b) {
        fix_segment(&mut b[r]);
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn fix_segment(s: &mut [u8]) {
    let head = SEGMENT_HEADER_SIZE as usize;
    if s.len() < head {
        return;
    }
    let crc = crc32fast::hash(&s[0..56]);
    s[56..60].copy_from_slice(&crc.to_le_bytes());
    let seq = u64_at(s, 32);
    let mut at = head;
    while at + BATCH_RECORD_SIZE <= s.len() {
        if u32_at(s, at) == 0 && u32_at(s, at + 4) == 0 && s[at + 8] == 0 {
            return;
        }
        let flush_seq = u64_at(s, at + RECORD_HEADER_SIZE);
        let body_len = u32_at(s, at + RECORD_HEADER_SIZE + 16) as usize;
        let seed = record_seed(seq, flush_seq);
        let c = seeded_crc(seed, &s[at + 8..at + BATCH_RECORD_SIZE]);
        s[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
        let body = at + BATCH_RECORD_SIZE;
        let Some(end) = body.checked_add(body_len).filter(|&e| e <= s.len()) else {
            return;
        };
        let mut p = body;
        while p + RECORD_HEADER_SIZE <= end {
            let len = u32_at(s, p) as usize;
            let Some(rend) = (p + RECORD_HEADER_SIZE)
                .checked_add(len)
                .filter(|&e| e <= end)
            else {
                break;
            };
            let c = seeded_crc(seed, &s[p + 8..rend]);
            s[p + 4..p + 8].copy_from_slice(&c.to_le_bytes());
            p = rend;
        }
        at = end;
    }
}

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Entry::default()
    }
}

/// The segment files of a WAL written by our own code: entries of two
/// groups, hard states, a snapshot, a compaction, a flush in parts, and
/// enough data to roll over to a second segment.
fn seeds() -> Vec<Vec<u8>> {
    let mut opts = SimOptions::new(1);
    opts.sector_size = Some(4096);
    let disk = SimDisk::new(opts);
    let mut out = Vec::new();
    {
        let mut wal = Wal::open_on(disk.clone(), options()).expect("open");
        let _flushed_below = wal
            .append_entries(1, &[entry(1, 1, b"a"), entry(2, 1, b"bb")])
            .unwrap();
        let _flushed_below = wal
            .set_hard_state(
                1,
                &HardState {
                    term: 1,
                    vote: 2,
                    commit: 1,
                },
            )
            .unwrap();
        let _flushed_below = wal.append_entries(7, &[entry(1, 2, &[9; 100])]).unwrap();
        wal.flush().unwrap();
        out.push(durable(&disk));
        let _flushed_below = wal.append_entries(1, &[entry(3, 2, b"ccc")]).unwrap();
        let _flushed_below = wal
            .set_snapshot(
                7,
                &SnapshotMetadata {
                    index: 1,
                    term: 2,
                    ..SnapshotMetadata::default()
                },
            )
            .unwrap();
        let _flushed_below = wal.compact(1, 2, 1).unwrap();
        wal.flush().unwrap();
        out.push(durable(&disk));
        for i in 0..40u64 {
            let _flushed_below = wal
                .append_entries(1, &[entry(4 + i, 2, &[i as u8; 500])])
                .unwrap();
            wal.flush().unwrap();
        }
        out.push(durable(&disk));
    }
    out
}

/// The durable `.wal` files of `disk`, in order, concatenated.
fn durable(disk: &SimDisk) -> Vec<u8> {
    let mut names: Vec<String> = disk
        .durable_names()
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|n| disk.durable_bytes(n).unwrap_or_default())
        .collect()
}
