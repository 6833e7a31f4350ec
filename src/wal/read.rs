//! Reads: what the WAL holds for a group (indexes, terms, hard state,
//! snapshot metadata, compaction mark) from the in-memory index, and
//! entries from the cache or as slices of the segment views.

use prost::Message as _;

use super::Wal;
use super::disk::Disk;
use super::error::{Error, Result};
use super::format;
use super::group::GroupState;
use super::segment;
use crate::raftpb::{Entry, HardState, SnapshotMetadata};

/// Summary of one group, for tools and status pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub hard_state: HardState,
    pub compacted: (u64, u64),
    pub snapshot: Option<SnapshotMetadata>,
}

impl<D: Disk> Wal<D> {
    pub(super) fn group(&self, group: u64) -> Option<&GroupState> {
        self.groups.get(&group)
    }

    /// Ids of the groups the WAL holds anything for.
    pub fn group_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.keys().copied()
    }

    /// A summary of `group`.
    pub fn summary(&self, group: u64) -> GroupSummary {
        GroupSummary {
            group,
            first_index: self.first_index(group),
            last_index: self.last_index(group),
            hard_state: self.hard_state(group),
            compacted: self.compacted(group),
            snapshot: self.snapshot(group),
        }
    }

    /// Index of the first entry held for `group` (last + 1 if none).
    pub fn first_index(&self, group: u64) -> u64 {
        self.group(group).map_or(1, |g| g.first)
    }

    /// Index of the last entry of `group` (the compaction point if none).
    pub fn last_index(&self, group: u64) -> u64 {
        self.group(group).map_or(0, |g| g.last_index())
    }

    /// Latest hard state of `group` (default if none was written).
    pub fn hard_state(&self, group: u64) -> HardState {
        self.group(group)
            .and_then(|g| g.hard_state)
            .unwrap_or_default()
    }

    /// Latest snapshot metadata of `group`.
    pub fn snapshot(&self, group: u64) -> Option<SnapshotMetadata> {
        self.group(group).and_then(|g| g.snapshot.clone())
    }

    /// `(index, term)` of `group`'s compaction mark, `(0, 0)` if none.
    pub fn compacted(&self, group: u64) -> (u64, u64) {
        self.group(group).map_or((0, 0), |g| g.compacted)
    }

    /// Term of entry `index` of `group`; the compaction point's term is
    /// known too (the entry before the first).
    pub fn term(&self, group: u64, index: u64) -> Result<u64> {
        let Some(g) = self.group(group) else {
            return if index == 0 {
                Ok(0)
            } else {
                Err(Error::Unavailable {
                    group,
                    index,
                    last: 0,
                })
            };
        };
        if index < g.first {
            if index == g.compacted.0 && index + 1 == g.first {
                return Ok(g.compacted.1);
            }
            return Err(Error::Compacted {
                group,
                index,
                first: g.first,
            });
        }
        let last = g.last_index();
        if index > last {
            return Err(Error::Unavailable { group, index, last });
        }
        Ok(g.locs[(index - g.first) as usize].term)
    }

    /// Entries `[lo, hi)` of `group`, stopping before the total encoded size
    /// exceeds `max_size` (at least one entry is returned). Cached entries
    /// are handed out as they were appended; older ones are slices of the
    /// segment map, not copies.
    pub fn entries(&self, group: u64, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        let empty = GroupState::default();
        let g = self.group(group).unwrap_or(&empty);
        if lo < g.first {
            return Err(Error::Compacted {
                group,
                index: lo,
                first: g.first,
            });
        }
        let last = g.last_index();
        if hi > last + 1 || g.locs.is_empty() {
            return Err(Error::Unavailable {
                group,
                index: hi.saturating_sub(1).max(lo),
                last,
            });
        }
        if lo >= hi {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(((hi - lo) as usize).min(1024));
        let mut size = 0u64;
        let cache_first = g.cache_first();
        for index in lo..hi {
            let e = if index >= cache_first {
                g.cache[(index - cache_first) as usize].0.clone()
            } else {
                self.read_entry(group, g, index)?
            };
            size += e.encoded_len() as u64;
            if !out.is_empty() && size > max_size {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    pub(super) fn read_entry(&self, group: u64, g: &GroupState, index: u64) -> Result<Entry> {
        let loc = g.locs[(index - g.first) as usize];
        let Some(seg) = self.segments.get(&loc.seg) else {
            return Err(Error::Corrupt {
                file: segment::path(&self.disk, &segment::file_name(loc.seg)),
                offset: loc.at as u64,
                what: format!("segment of group {group} entry {index} is gone"),
            });
        };
        match format::entry_at(&seg.map, loc.at as usize) {
            Some((term, ty, data)) if term == loc.term => Ok(Entry {
                term,
                index,
                r#type: ty as i32,
                data,
            }),
            _ => Err(Error::Corrupt {
                file: seg.path.clone(),
                offset: loc.at as u64,
                what: format!("group {group} entry {index} does not match the index"),
            }),
        }
    }
}
