//! Recovery: rebuilds every group's state from the segments, in order,
//! verifying every checksum. The rules (docs/architecture.md, "Recovery",
//! gives the reason for each):
//!
//! - a batch is checked as a unit (its header and every record, their crcs
//!   seeded with the segment and the flush sequence, their exact tiling
//!   and count) before any of it is used;
//! - each batch names its predecessor (`prev_seq`): the last batch of the
//!   last complete flush, or the last part of the flush being assembled;
//!   sequences only grow;
//! - a flush is applied only whole: its continued parts are held until its
//!   last part is found; parts of a flush that never got its last part are
//!   dropped (and zeroed unless read-only);
//! - a bad batch is a **torn tail** only if it is in the newest segment
//!   holding data, no later flush follows within `MAX_BATCH_BYTES`, and
//!   (in a zero-filled file) bytes that never landed can explain it; the
//!   torn bytes are dropped (and zeroed unless read-only). Anything else,
//!   bit rot in the last flush included, is refused as corruption, naming
//!   the file and offset;
//! - numbering restarts above every sequence recovery can see on disk (the
//!   last batch, a torn batch's header, every segment's base), so that
//!   none of them is issued twice (the one it cannot see, that of a lost
//!   flush whose batch header never landed, is the next rule's);
//! - unless read-only, what a lost flush may have left past the end of the
//!   log (its later sectors, when its first one, with its batch header,
//!   never landed) is zeroed in the segment written on next and in the
//!   spare, so that a flush is only ever written over zeros or over bytes
//!   of a recycled file's previous life (the torn-tail rule relies on it).
//!
//! A torn flush was never acknowledged (its fdatasync had not returned), so
//! dropping it loses nothing that a caller was told is durable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message as _;

use super::disk::{Disk, DiskFile};
use super::error::{Error, Result};
use super::format::{
    self, BATCH_RECORD_SIZE, COMPACT_PAYLOAD, HARD_STATE_PAYLOAD, HeaderError, MAX_SNAPSHOT_META,
    RECORD_HEADER_SIZE, RecordType, SEGMENT_HEADER_SIZE, SNAPSHOT_FIXED, SegmentHeader,
};
use super::group::{GroupState, Loc};
use super::segment::{self, Segment};
use super::{MAX_BATCH_BYTES, MAX_INDEX, Options};
use crate::raftpb::{HardState, SnapshotMetadata};

/// What recovery found, for logs and for `corelog-wal verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments scanned.
    pub segments: usize,
    /// Records applied (batch headers not counted).
    pub records: u64,
    /// Bytes of the torn tail that were dropped.
    pub torn_bytes: u64,
    /// Where the torn tail started, if there was one.
    pub torn_at: Option<(PathBuf, u64)>,
    /// Leftover temporary files of an interrupted segment creation.
    pub temporaries: usize,
    /// Bytes past the end of the log zeroed so that nothing a lost flush
    /// wrote stays where the next flushes go (in a recycled segment, its
    /// previous life's bytes there count too); read-write opens only.
    pub cleared_bytes: u64,
}

pub(crate) struct Recovered<F> {
    pub segments: BTreeMap<u64, Segment<F>>,
    pub groups: BTreeMap<u64, GroupState>,
    /// Offset after the last good batch of the newest segment.
    pub write_pos: u64,
    /// Flush sequence the next batch gets: above every sequence that could
    /// be on disk (the last batch, a torn one, every segment's base).
    pub next_batch_seq: u64,
    /// Sequence of the last sound batch (0 if none): the next batch's
    /// predecessor.
    pub last_batch_seq: u64,
    pub cluster_id: u64,
    pub shard_id: u64,
    pub report: RecoveryReport,
    /// Deleted segments kept for recycling, by name (read-write opens
    /// only).
    pub free: Vec<String>,
    /// The newest segment, if it holds no data of its life and is not the
    /// only one: the spare a previous run prepared ahead, to be used by the
    /// next roll rather than joined by another (read-write opens only).
    pub spare: Option<Segment<F>>,
}

fn corrupt(file: &Path, offset: u64, what: impl Into<String>) -> Error {
    Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        what: what.into(),
    }
}

/// Opens and checks every segment of the directory, then replays them.
pub(crate) fn recover<D: Disk>(disk: &D, opts: &Options) -> Result<Recovered<D::File>> {
    let dir = disk.dir();
    let listing = segment::list(disk)?;
    let mut report = RecoveryReport {
        temporaries: listing.temporaries.len(),
        ..Default::default()
    };
    if !opts.read_only && !listing.temporaries.is_empty() {
        // A creation that crashed before its rename: never part of the log.
        for t in &listing.temporaries {
            disk.remove(t)
                .map_err(|e| Error::io("remove temporary segment", segment::path(disk, t), e))?;
        }
        segment::sync_dir(disk)?;
    }
    for w in listing.segments.windows(2) {
        if w[1].0 != w[0].0 + 1 {
            return Err(Error::MissingSegment {
                dir: dir.to_path_buf(),
                seq: w[0].0 + 1,
            });
        }
    }
    let (mut cluster_id, mut shard_id) = (opts.cluster_id, opts.shard_id);
    let mut segments = BTreeMap::new();
    for (i, (seq, name)) in listing.segments.iter().enumerate() {
        let path = &segment::path(disk, name);
        let file = segment::open(disk, name, opts.read_only)?;
        let len = file
            .size()
            .map_err(|e| Error::io("stat segment", path, e))?;
        if len < SEGMENT_HEADER_SIZE {
            return Err(Error::TruncatedSegment {
                file: path.clone(),
                len,
                expected: opts.segment_size,
            });
        }
        let map = segment::view(&file, path)?;
        let h =
            SegmentHeader::decode(&map[..SEGMENT_HEADER_SIZE as usize]).map_err(|e| match e {
                HeaderError::Short => Error::TruncatedSegment {
                    file: path.clone(),
                    len,
                    expected: opts.segment_size,
                },
                HeaderError::BadMagic => Error::BadMagic { file: path.clone() },
                HeaderError::BadCrc => corrupt(path, 0, "segment header checksum mismatch"),
                HeaderError::UnknownVersion(v) => Error::UnknownVersion {
                    file: path.clone(),
                    found: v,
                    supported: format::VERSION,
                },
            })?;
        if i == 0 && opts.adopt_identity {
            cluster_id = h.cluster_id;
            shard_id = h.shard_id;
        }
        if h.cluster_id != cluster_id {
            return Err(Error::Foreign {
                file: path.clone(),
                field: "cluster id",
                expected: cluster_id,
                found: h.cluster_id,
            });
        }
        if h.shard_id != shard_id {
            return Err(Error::Foreign {
                file: path.clone(),
                field: "shard id",
                expected: shard_id,
                found: h.shard_id,
            });
        }
        if h.sequence != *seq {
            return Err(corrupt(
                path,
                32,
                format!("header sequence {} but file name says {seq}", h.sequence),
            ));
        }
        if !(format::MIN_SEGMENT_SIZE..=format::MAX_SEGMENT_SIZE).contains(&h.segment_size) {
            return Err(Error::Limit {
                what: "segment size in header",
                value: h.segment_size,
                limit: format::MAX_SEGMENT_SIZE,
            });
        }
        if len < h.segment_size {
            return Err(Error::TruncatedSegment {
                file: path.clone(),
                len,
                expected: h.segment_size,
            });
        }
        if len > h.segment_size {
            return Err(corrupt(
                path,
                h.segment_size,
                format!("segment is {len} bytes, header says {}", h.segment_size),
            ));
        }
        segments.insert(
            *seq,
            Segment {
                seq: *seq,
                path: path.clone(),
                file,
                map,
                size: h.segment_size,
                base_flush_seq: h.base_flush_seq,
                recycled: h.recycled,
            },
        );
    }
    report.segments = segments.len();

    // The newest segment holding any data of its current life: only there
    // may a batch be torn. (A recycled segment starts with stale bytes of
    // its previous life: a sound batch older than its base, or garbage
    // that was torn over it.)
    let data_start = SEGMENT_HEADER_SIZE as usize;
    let newest_with_data = segments
        .values()
        .rev()
        .find(|s| {
            !matches!(
                format::read_batch(&s.map, data_start, s.size as usize, s.seq),
                Err(format::RecordError::End)
            )
        })
        .map(|s| s.seq);

    // The highest base is taken before the spare is set aside: the next
    // flush may be written into it.
    let max_base = segments
        .values()
        .map(|s| s.base_flush_seq)
        .max()
        .unwrap_or(0);
    let newest = segments.keys().next_back().copied();
    let spare = if !opts.read_only && segments.len() >= 2 && newest != newest_with_data {
        segments.pop_last().map(|(_, s)| s)
    } else {
        None
    };

    let mut groups: BTreeMap<u64, GroupState> = BTreeMap::new();
    // The chain: the last batch of the last complete flush, and the parts
    // (checked, not applied) of a flush whose last part has not been seen.
    let mut applied: Option<u64> = None;
    let mut held: Vec<Held> = Vec::new();
    // The highest sequence that may exist on disk: a segment prepared ahead
    // was given the sequence then next as its base even if the flushes
    // issued before it never landed; a torn batch may carry one too. New
    // batches are numbered above all of them, so that none is ever issued
    // twice or falls below the base of the segment it is written in.
    let mut max_seen = max_base;
    let mut write_pos = SEGMENT_HEADER_SIZE;
    // The segment whose torn tail was zeroed: past its end all is clear.
    let mut tail_cleared = None;
    for seg in segments.values() {
        let m = &seg.map[..];
        let size = seg.size as usize;
        let mut pos = data_start;
        let end = loop {
            let chain = Chain {
                applied,
                held: held.last().map(|h| h.seq),
                floor: max_sound(applied, &held),
            };
            match check_batch(m, pos, size, &chain, seg.seq, seg.base_flush_seq) {
                Ok(Some((b, body_end))) => {
                    if held.last().is_some_and(|h| b.prev_seq != h.seq) {
                        // The held parts' flush lost its later part in a
                        // crash, and this flush was written after the
                        // recovery that dropped them (it names the last
                        // complete flush as its predecessor).
                        held.clear();
                    }
                    max_seen = max_seen.max(b.flush_seq);
                    held.push(Held {
                        seg: seg.seq,
                        body: (pos + BATCH_RECORD_SIZE, body_end),
                        seq: b.flush_seq,
                    });
                    if b.flags & format::BATCH_CONTINUED == 0
                        || opts.bug(super::bugs::WalBug::PartialFlush)
                    {
                        // The flush is complete: apply all its parts, in order.
                        for h in held.drain(..) {
                            let Some(hs) = segments.get(&h.seg) else {
                                unreachable!("held parts are in scanned segments")
                            };
                            let seed = format::record_seed(h.seg, h.seq);
                            report.records +=
                                apply_batch(hs, h.body.0, h.body.1, seed, &mut groups)?;
                        }
                        applied = Some(b.flush_seq);
                    }
                    pos = body_end;
                }
                Ok(None) => break pos,
                Err((off, what)) => {
                    if Some(seg.seq) != newest_with_data {
                        return Err(corrupt(&seg.path, off as u64, what));
                    }
                    if let Ok((b, _)) = format::read_batch(m, pos, size, seg.seq) {
                        max_seen = max_seen.max(b.flush_seq);
                    }
                    if !seg.recycled && !looks_torn(m, pos, off, size) {
                        return Err(corrupt(
                            &seg.path,
                            off as u64,
                            format!(
                                "{what}, inside a complete-looking last flush (no unwritten \
                                 sector, no zeros to its end): bit rot or a misdirected \
                                 write, not a torn write"
                            ),
                        ));
                    }
                    let torn = torn_tail(seg, pos, chain.floor)
                        .map_err(|(_, w)| corrupt(&seg.path, off as u64, format!("{what}; {w}")))?;
                    report.torn_bytes = torn.bytes;
                    report.torn_at = Some((seg.path.clone(), pos as u64));
                    if !opts.read_only {
                        zero(seg, pos, torn.window_end)?;
                        tail_cleared = Some(seg.seq);
                    }
                    break pos;
                }
            }
        };
        write_pos = end as u64;
    }
    // Held parts at the end of the last segment are dropped below: the
    // next flush is written where the first of them starts.
    let last_seg = segments.keys().next_back().copied();
    if let Some(h) = held.iter().find(|h| Some(h.seg) == last_seg) {
        write_pos = (h.body.0 - BATCH_RECORD_SIZE) as u64;
    }
    // Rule 6 (b): what reads as the end of the log must be its end. A
    // sound batch of a later flush within a flush's reach past it means
    // that the "end" is the lost or misdirected first sector of an
    // acknowledged flush; zeroing past it would destroy that flush and the
    // ones after it, so refuse, as rule 4 (b) does for a bad batch.
    let floor = max_sound(applied, &held);
    let last = last_seg.and_then(|q| segments.get(&q));
    if let Some(s) = last
        && tail_cleared != last_seg
    {
        refuse_sound_batch_past_end(s, write_pos as usize, floor)?;
    }
    if let Some(s) = &spare {
        refuse_sound_batch_past_end(s, data_start, floor)?;
    }
    if !opts.read_only {
        // What a lost flush left past the end of the log, where the next
        // flushes are written: the segment written on and the spare that
        // follows it (see `clear_past_end`).
        if let Some(s) = last
            && tail_cleared != last_seg
        {
            report.cleared_bytes += clear_past_end(s, write_pos as usize)?;
        }
        if let Some(s) = &spare {
            report.cleared_bytes += clear_past_end(s, data_start)?;
        }
        // Parts of a flush whose last part never landed: that flush was
        // never acknowledged and is dropped whole. (Should a crash stop
        // this, the next batch names `applied` as its predecessor, which
        // tells a later recovery to skip them.)
        zero_held_parts(&segments, &held, last_seg)?;
    }
    if let Some(first) = held.first() {
        report.torn_bytes += held
            .iter()
            .map(|h| (h.body.1 - h.body.0 + BATCH_RECORD_SIZE) as u64)
            .sum::<u64>();
        report.torn_at = Some((
            segment::path(disk, &segment::file_name(first.seg)),
            (first.body.0 - BATCH_RECORD_SIZE) as u64,
        ));
    }
    let free = if opts.read_only {
        Vec::new()
    } else {
        listing.free
    };
    Ok(Recovered {
        free,
        spare,
        segments,
        groups,
        write_pos,
        next_batch_seq: if opts.bug(super::bugs::WalBug::ReuseFlushSeq) {
            max_sound(applied, &held).max(1) + 1
        } else {
            max_seen.max(max_sound(applied, &held)).max(1) + 1
        },
        last_batch_seq: applied.unwrap_or(0),
        cluster_id,
        shard_id,
        report,
    })
}

/// A checked part of a flush, waiting for the flush's last part.
struct Held {
    seg: u64,
    /// Offsets of its records: `[body.0, body.1)`.
    body: (usize, usize),
    seq: u64,
}

/// The highest sequence of a sound batch seen so far.
fn max_sound(applied: Option<u64>, held: &[Held]) -> u64 {
    held.last().map_or(applied.unwrap_or(0), |h| h.seq)
}

/// What the next batch may follow: the last batch of the last complete
/// flush (`applied`), or the last held part of an incomplete one (`held`);
/// its sequence must exceed `floor`. Before the first batch (older ones
/// deleted by GC) anything goes.
struct Chain {
    applied: Option<u64>,
    held: Option<u64>,
    floor: u64,
}

/// Checks the batch at `pos`: `Ok(None)` at the end of the segment's data
/// (an all-zero record header), `Ok(Some((header, body_end)))` if the
/// batch and all its records are sound and it follows the chain, else the
/// offset and nature of the first defect.
fn check_batch(
    m: &[u8],
    pos: usize,
    size: usize,
    chain: &Chain,
    seq_of_segment: u64,
    base: u64,
) -> std::result::Result<Option<(format::BatchHeader, usize)>, (usize, String)> {
    let (b, body_start) = match format::read_batch(m, pos, size, seq_of_segment) {
        Ok(r) => r,
        Err(format::RecordError::End) => return Ok(None),
        Err(e) => return Err((pos, format!("batch header: {e}"))),
    };
    // The crc is seeded with this segment's sequence: this batch was
    // written in this life of the file, so it cannot be older than it.
    if b.flush_seq < base {
        return Err((
            pos,
            format!("batch {} below the segment's base {base}", b.flush_seq),
        ));
    }
    // Sequences grow but may jump (numbering restarts above everything
    // that could be on disk after a crash); the predecessor link is what
    // proves that no batch is missing in between.
    // (With held parts but no complete flush before them, the flush they
    // follow was in a segment GC deleted: any predecessor may be it.)
    let follows = Some(b.prev_seq) == chain.held || chain.applied.is_none_or(|a| a == b.prev_seq);
    let known = chain.applied.is_some() || chain.held.is_some();
    if known && (b.flush_seq <= chain.floor || !follows) {
        return Err((
            pos,
            format!(
                "batch {} follows batch {}, which is not the log's last complete flush ({:?}) \
                 nor the last part of an incomplete one ({:?})",
                b.flush_seq, b.prev_seq, chain.applied, chain.held
            ),
        ));
    }
    if b.flags & !format::BATCH_CONTINUED != 0 {
        return Err((pos, format!("unknown batch flags {:#x}", b.flags)));
    }
    if b.body_len as usize > MAX_BATCH_BYTES || body_start + b.body_len as usize > size {
        return Err((pos, format!("batch length {} out of bounds", b.body_len)));
    }
    // The whole batch is checked as a unit before any of it is applied:
    // every record's crc (seeded with this segment and this flush, so no
    // record of another life or flush passes), the records tiling the body
    // exactly, and their number.
    let seed = format::record_seed(seq_of_segment, b.flush_seq);
    let body_end = body_start + b.body_len as usize;
    let mut at = body_start;
    let mut n = 0u32;
    while at < body_end {
        match format::read_record(m, at, body_end, seed) {
            Ok(rec) if rec.ty == RecordType::Batch => {
                return Err((at, "batch record nested in a batch".into()));
            }
            Ok(rec) => at = rec.next,
            Err(e) => return Err((at, format!("record: {e}"))),
        }
        n += 1;
    }
    if n != b.records {
        return Err((
            pos,
            format!("batch holds {n} records, its header says {}", b.records),
        ));
    }
    Ok(Some((b, body_end)))
}

/// Applies the records of a checked batch body; returns how many.
fn apply_batch<F>(
    seg: &Segment<F>,
    mut at: usize,
    end: usize,
    seed: u32,
    groups: &mut BTreeMap<u64, GroupState>,
) -> Result<u64> {
    let m = &seg.map[..];
    let mut n = 0;
    while at < end {
        let rec = format::read_record(m, at, end, seed).map_err(|e| {
            corrupt(
                &seg.path,
                at as u64,
                format!("record changed under recovery: {e}"),
            )
        })?;
        let payload_at = at + RECORD_HEADER_SIZE;
        let p = rec.payload;
        let bad = |what: &str| corrupt(&seg.path, at as u64, what.to_string());
        match rec.ty {
            RecordType::Batch => return Err(bad("batch record nested in a batch")),
            RecordType::Entries => {
                let (group, first, count) = format::check_entries(p).map_err(bad)?;
                let last_new = first + count as u64 - 1;
                if last_new > MAX_INDEX {
                    return Err(bad("entry index above the largest index"));
                }
                let g = groups.entry(group).or_default();
                let eff_first = first.max(g.compacted.0 + 1);
                if eff_first <= last_new {
                    let last = g.last_index();
                    if eff_first > last + 1 {
                        if !g.locs.is_empty() {
                            return Err(bad(&format!(
                                "entries of group {group} start at {first} but its log ends at {last}"
                            )));
                        }
                        // The first entries seen of a group whose older
                        // segments were deleted after compaction: the log
                        // starts here (its compaction mark follows).
                        g.first = eff_first;
                    } else {
                        g.truncate_from(eff_first);
                        if g.locs.is_empty() {
                            g.first = eff_first;
                        }
                    }
                    for e in format::entries_iter(p) {
                        if e.index < eff_first {
                            continue;
                        }
                        g.locs.push_back(Loc {
                            term: e.term,
                            seg: seg.seq,
                            at: (payload_at + e.at) as u32,
                        });
                    }
                }
            }
            RecordType::HardState => {
                if p.len() != HARD_STATE_PAYLOAD {
                    return Err(bad("hard state record of the wrong size"));
                }
                let g = groups.entry(format::u64_at(p, 0)).or_default();
                g.hard_state = Some(HardState {
                    term: format::u64_at(p, 8),
                    vote: format::u64_at(p, 16),
                    commit: format::u64_at(p, 24),
                });
                g.hs_seg = seg.seq;
            }
            RecordType::Snapshot | RecordType::Restart => {
                if p.len() < SNAPSHOT_FIXED {
                    return Err(bad("snapshot record shorter than its fixed part"));
                }
                let len = format::u32_at(p, 8) as usize;
                if len > MAX_SNAPSHOT_META || len != p.len() - SNAPSHOT_FIXED {
                    return Err(bad("snapshot metadata length out of bounds"));
                }
                let meta = SnapshotMetadata::decode(&p[SNAPSHOT_FIXED..])
                    .map_err(|e| bad(&format!("snapshot metadata: {e}")))?;
                if rec.ty == RecordType::Restart && meta.index > MAX_INDEX {
                    return Err(bad("snapshot index above the largest index"));
                }
                let g = groups.entry(format::u64_at(p, 0)).or_default();
                if rec.ty == RecordType::Restart {
                    g.restart(meta.index, meta.term);
                    g.compact_seg = seg.seq;
                }
                g.snapshot = Some(meta);
                g.snap_seg = seg.seq;
            }
            RecordType::Relocate => {
                let (group, first, count) = format::check_entries(p).map_err(bad)?;
                if first + count as u64 - 1 > MAX_INDEX {
                    return Err(bad("entry index above the largest index"));
                }
                let g = groups.entry(group).or_default();
                let c = g.compacted.0;
                // Allocates per record: recovery only, and relocations are rare.
                let moved: Vec<(u64, Loc)> = format::entries_iter(p)
                    .filter(|e| e.index > c)
                    .map(|e| {
                        let loc = Loc {
                            term: e.term,
                            seg: seg.seq,
                            at: (payload_at + e.at) as u32,
                        };
                        (e.index, loc)
                    })
                    .collect();
                if let (Some(&(a, _)), Some(&(b, _))) = (moved.first(), moved.last()) {
                    if g.locs.is_empty() {
                        // The originals were in deleted segments.
                        g.first = a;
                        g.locs.extend(moved.iter().map(|m| m.1));
                    } else {
                        let (first, last) = (g.first, g.last_index());
                        if b > last || b + 1 < first {
                            return Err(bad(&format!(
                                "relocated entries {a}..={b} of group {group} do not meet its log {first}..={last}"
                            )));
                        }
                        // Entries before the log's first: their originals
                        // were deleted with an old segment; put them back.
                        let before = moved.iter().take_while(|m| m.0 < first).count();
                        for m in moved[..before].iter().rev() {
                            g.locs.push_front(m.1);
                        }
                        g.first = first - before as u64;
                        for (i, loc) in &moved[before..] {
                            match g.locs.get_mut((i - g.first) as usize) {
                                Some(l) if l.term == loc.term => *l = *loc,
                                _ => {
                                    return Err(bad(&format!(
                                        "relocated entry {i} of group {group} does not match its log"
                                    )));
                                }
                            }
                        }
                    }
                }
            }
            RecordType::Compact => {
                if p.len() != COMPACT_PAYLOAD {
                    return Err(bad("compaction record of the wrong size"));
                }
                let g = groups.entry(format::u64_at(p, 0)).or_default();
                let (index, term) = (format::u64_at(p, 8), format::u64_at(p, 16));
                if index > MAX_INDEX {
                    return Err(bad("compaction index above the largest index"));
                }
                if index >= g.compacted.0 {
                    g.compact(index, term);
                    g.compact_seg = seg.seq;
                }
            }
        }
        n += 1;
        at = rec.next;
    }
    Ok(n)
}

/// Whether the bad batch at `pos` (first defect at `off`) of a segment
/// that was zero-filled can be a torn write. A flush's bytes that never
/// landed read as zeros there: either whole 512-byte sectors (any sector
/// of the batch, or its part of one, all zero) or, for a write cut at a
/// byte, everything from within the defective record to the batch's end.
/// A defect with neither is a crc mismatch inside a complete-looking
/// batch, which a torn write cannot produce: bit rot (reported, as etcd's
/// WAL does, rather than silently truncated). A batch whose records end in
/// zero bytes of their own may be taken for torn: the rule errs that way.
fn looks_torn(m: &[u8], pos: usize, off: usize, size: usize) -> bool {
    let size = size.min(m.len());
    let hdr_end = pos + BATCH_RECORD_SIZE;
    if hdr_end > size {
        return true;
    }
    // The batch's extent as its header claims, if the claim is sane.
    let claimed = format::u32_at(m, pos) == format::BATCH_PAYLOAD_SIZE as u32
        && m[pos + 8] == RecordType::Batch as u8;
    let body = format::u32_at(m, pos + RECORD_HEADER_SIZE + 16) as usize;
    let end = if claimed && body <= MAX_BATCH_BYTES {
        (hdr_end + body).min(size)
    } else {
        hdr_end
    };
    let mut chunk = pos & !511;
    while chunk < end {
        let (a, b) = (chunk.max(pos), (chunk + 512).min(end));
        if m[a..b].iter().all(|&x| x == 0) {
            return true;
        }
        chunk += 512;
    }
    let zeros_from = |to: usize| {
        m[pos..to]
            .iter()
            .rposition(|&x| x != 0)
            .map_or(pos, |k| pos + k + 1)
    };
    if !claimed {
        // A batch header cut before its type byte: nothing after the cut
        // landed, so its whole payload is zeros. (Its last field, the
        // flags, is zero anyway: a zero tail alone proves nothing here.)
        return zeros_from(hdr_end) <= pos + RECORD_HEADER_SIZE;
    }
    // Zeros from within the defective record to the end of the batch.
    let rec_end = if off + RECORD_HEADER_SIZE <= end {
        (off + RECORD_HEADER_SIZE + format::u32_at(m, off) as usize).min(end)
    } else {
        end
    };
    let z = zeros_from(end);
    z < end && z <= rec_end.max(off)
}

struct Torn {
    bytes: u64,
    window_end: usize,
}

/// Where the bytes a flush started at `pos` can reach, at most: room for
/// its batch in this segment at its largest and the whole next batch
/// header right after it (more than its end marker).
fn lost_flush_end(pos: usize, size: usize) -> usize {
    size.min(pos + BATCH_RECORD_SIZE + MAX_BATCH_BYTES + BATCH_RECORD_SIZE)
}

/// Zeroes (and syncs) what a lost flush may have left past the end of a
/// segment's log, from `from` (where the next flush will be written) to
/// the last non-zero byte of the window such a flush can reach.
///
/// Why: a flush lost in a crash can land its later sectors and not its
/// first; its batch header then reads as the end of the log and nothing
/// marks its other bytes as torn, so they stay past the end. The next
/// flushes are written over them, and one torn in turn would leave them
/// under its unwritten sectors: in a zero-filled segment recovery tells a
/// torn write by zeros there (rule 4 (c)), and it would refuse the disk as
/// corrupt (seeds 9248, 10163, ... of `corelog-sim --storage wal`). Their
/// records may also carry the sequence the next flush is given (that
/// flush's batch header, which would have shown its number, never
/// landed), so that a torn flush could be completed by them. Cleared,
/// the space a flush is written into holds zeros, or in a recycled
/// segment bytes of its previous life, whose crcs are seeded with another
/// segment; a read-write recovery leaves nothing else. In a recycled
/// segment the window is zeroed whole (its previous life's bytes cannot
/// be told from a lost flush's by content): at most `MAX_BATCH_BYTES` and
/// a little, once per open.
///
/// Returns how many bytes it zeroed.
fn clear_past_end<F: DiskFile>(seg: &Segment<F>, from: usize) -> Result<u64> {
    let end = lost_flush_end(from, (seg.size as usize).min(seg.map.len()));
    if from >= end {
        return Ok(0);
    }
    match seg.map[from..end].iter().rposition(|&b| b != 0) {
        Some(k) => zero(seg, from, from + k + 1).map(|()| k as u64 + 1),
        None => Ok(0),
    }
}

/// Decides whether the bad batch at `pos` of the newest data segment is a
/// torn tail (see the module comment); `Err` with an offset and reason if
/// bytes after it prove it was not the last flush.
fn torn_tail<F>(
    seg: &Segment<F>,
    pos: usize,
    floor: u64,
) -> std::result::Result<Torn, (usize, String)> {
    let m = &seg.map[..];
    let size = seg.size as usize;
    let window_end = lost_flush_end(pos, size);
    // The flush after a completed one would carry a higher sequence number
    // and start right after it, so within the window.
    if let Some(found) = later_sound_batch(seg, pos + 1, window_end, floor) {
        return Err((
            found.offset,
            format!(
                "a later flush (sequence {}) follows at offset {}, so this is not a torn tail",
                found.flush_seq, found.offset
            ),
        ));
    }
    let last_nonzero = m[pos..window_end].iter().rposition(|&b| b != 0);
    Ok(Torn {
        bytes: last_nonzero.map_or(0, |k| k as u64 + 1),
        window_end,
    })
}

/// `op` of a failed write of recovery's zeroing.
const ZERO_WRITE: &str = "recovery: zero past the end of the log";
/// `op` of a failed fdatasync of recovery's zeroing.
const ZERO_SYNC: &str = "recovery: fdatasync of zeroed bytes";

/// Whether `e` is a failed write or fdatasync of recovery's zeroing.
///
/// Why it matters: as after a failed flush (fsyncgate), the page cache may
/// then show zeros that never reached the media, over bytes of a lost
/// flush or a torn one. A reopen in this process would recover from that
/// cache and trust it, so the caller poisons the directory: only a new
/// process (whose reads come from the media) may recover it.
pub(crate) fn left_unsynced_zeros(e: &Error) -> bool {
    matches!(e, Error::Io { op, .. } if *op == ZERO_WRITE || *op == ZERO_SYNC)
}

/// Zeroes `[from, to)` of a segment and makes it durable.
fn zero<F: DiskFile>(seg: &Segment<F>, from: usize, to: usize) -> Result<()> {
    let zeros = vec![0u8; (to - from).min(1 << 20)];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len());
        seg.file
            .write_at(&zeros[..n], at as u64)
            .map_err(|e| Error::io(ZERO_WRITE, &seg.path, e))?;
        at += n;
    }
    seg.file
        .sync_data()
        .map_err(|e| Error::io(ZERO_SYNC, &seg.path, e))
}

/// Rule 6 (b): `Err(Corrupt)` if a sound batch of `seg`'s current life,
/// of a flush above `floor` (the last sound one recovered), lies within
/// the reach of a flush written at `from`, where the log reads as ending.
///
/// Why: a flush whose first sector was lost (or written elsewhere) reads
/// as the end of the log, and the flushes acknowledged after it lie just
/// past that end. Nothing but a later, sound, higher-numbered batch tells
/// this apart from an unacknowledged flush torn in a crash, and only the
/// latter may be cleared.
fn refuse_sound_batch_past_end<F>(seg: &Segment<F>, from: usize, floor: u64) -> Result<()> {
    let window_end = lost_flush_end(from, (seg.size as usize).min(seg.map.len()));
    match later_sound_batch(seg, from, window_end, floor) {
        Some(found) => Err(corrupt(
            &seg.path,
            from as u64,
            format!(
                "end of log at offset {from} of segment {} followed by a sound batch of flush {} \
                 at offset {}: a lost or misdirected write of an acknowledged flush, not the end \
                 of the log",
                seg.seq, found.flush_seq, found.offset
            ),
        )),
        None => Ok(()),
    }
}

/// A sound batch found past a point that should end the log.
struct LaterBatch {
    offset: usize,
    flush_seq: u64,
}

/// The first sound batch header in `[from, window_end)` of `seg` that
/// belongs to its current life (sequence at least its base) and to a
/// flush above `floor`: proof that a later flush was written after `from`.
/// (Beyond the window a recycled segment may hold stale bytes, so nothing
/// is concluded there.)
fn later_sound_batch<F>(
    seg: &Segment<F>,
    from: usize,
    window_end: usize,
    floor: u64,
) -> Option<LaterBatch> {
    let m = &seg.map[..];
    let size = (seg.size as usize).min(m.len());
    let last_start = window_end.min(size).saturating_sub(BATCH_RECORD_SIZE - 1);
    (from..last_start).find_map(|p| {
        // Cheap filters first: a batch record's length and type bytes.
        if m[p + 8] != RecordType::Batch as u8
            || format::u32_at(m, p) != format::BATCH_PAYLOAD_SIZE as u32
        {
            return None;
        }
        match format::read_batch(m, p, size, seg.seq) {
            Ok((b, _)) if b.flush_seq >= seg.base_flush_seq && b.flush_seq > floor => {
                Some(LaterBatch {
                    offset: p,
                    flush_seq: b.flush_seq,
                })
            }
            _ => None,
        }
    })
}

/// Zeroes the held parts of a flush whose last part never landed, except
/// those of the last segment (`clear_past_end` covers them).
///
/// Newest first, after the last segment and the spare: a crash in the
/// middle then leaves whole held parts only in older segments than a
/// half-zeroed one, and a half-zeroed part only as the newest data, where
/// the next recovery reads it as a torn tail. Oldest first, a half-zeroed
/// part would sit before a whole later one, which every later recovery
/// refuses as corruption (rule 4 (b)).
fn zero_held_parts<F: DiskFile>(
    segments: &BTreeMap<u64, Segment<F>>,
    held: &[Held],
    last_seg: Option<u64>,
) -> Result<()> {
    for h in held.iter().rev().filter(|h| Some(h.seg) != last_seg) {
        if let Some(s) = segments.get(&h.seg) {
            zero(s, h.body.0 - BATCH_RECORD_SIZE, h.body.1)?;
        }
    }
    Ok(())
}
