//! Log compaction of one group: building the snapshot at the compaction
//! point and making it durable, off the loop.
//!
//! For a log service the records are the Raft log, so a group may drop
//! entry `i` only when its state machine no longer needs it
//! (`Apply::compactable_index`: for a log, every record of entries up to
//! `i` lies below the retention offset). The snapshot at that index must
//! be the state AS OF it, not the current one: a follower restored from it
//! receives the entries after it by log and must compute exactly what the
//! leader computed. So it is rebuilt deterministically: the previous
//! snapshot (or the empty state) plus the entries after it, read from the
//! WAL in pieces, the task yielding between pieces.
//!
//! Then the data goes to its file on glommio's blocking thread pool
//! (snapfile.rs: durable before anything refers to it; a full disk there
//! only puts the next attempt off by `space_retry_ticks`), and the loop
//! queues the WAL's snapshot metadata and compaction mark
//! (`Loop::queue_compactions`) and, once those are durable, deletes the
//! group's older files.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use super::group::Group;
use super::signal::yield_now;
use super::snapfile;
use super::state::Shard;
use crate::raftpb::SnapshotMetadata;

/// Bytes of entries read from the WAL per piece of a rebuild.
const PIECE_BYTES: u64 = 4 << 20;

/// A snapshot whose file is durable, for the loop to record in the WAL.
pub(crate) struct Built {
    pub(crate) group: u64,
    pub(crate) meta: SnapshotMetadata,
    pub(crate) data: Bytes,
}

/// Builds `group`'s snapshot at `index`, writes its file and hands it to
/// the loop (`Shard::compactions`). The group is marked `compacting`
/// until the loop records it (or this gives up).
pub(crate) async fn build(shard: Rc<Shard>, g: Rc<RefCell<Group>>, index: u64) {
    let gid = g.borrow().id;
    match rebuild(&shard, &g, index).await {
        Ok(Some((meta, data))) => {
            let dir = shard.snap_dir.clone();
            let d = data.clone();
            let written = glommio::executor()
                .spawn_blocking(move || snapfile::write_durable(&dir, gid, index, &d))
                .await;
            match written {
                Ok(_) => {
                    shard.compactions.borrow_mut().push(Built {
                        group: gid,
                        meta,
                        data,
                    });
                    shard.signal.ring();
                }
                Err(e) if e.is_no_space() => {
                    // No room for the file: nothing names it and its
                    // partial file is gone. Compaction is how a full disk
                    // gets room back, so the shard goes on and the group
                    // tries again later (rebuilding: the state machine has
                    // moved meanwhile).
                    let mut grp = g.borrow_mut();
                    grp.compacting = false;
                    grp.compact_retry_at = shard.now.get() + shard.cfg.space_retry_ticks.max(1);
                    grp.stats.snapshot_files_no_room += 1;
                }
                Err(e) => {
                    // A snapshot file that cannot be made durable for any
                    // other reason is a disk failing under the shard, as a
                    // failed WAL flush.
                    g.borrow_mut().compacting = false;
                    shard.poison(format!("group {gid}: writing its snapshot: {e}"));
                    shard.signal.ring();
                }
            }
        }
        Ok(None) => g.borrow_mut().compacting = false,
        Err(e) => {
            g.borrow_mut().compacting = false;
            eprintln!("corelog: group {gid}: no snapshot at {index}: {e}");
        }
    }
}

/// The snapshot at `index`: its metadata and data. `None` when the group
/// moved past it meanwhile (a leader's snapshot was installed).
async fn rebuild(
    shard: &Rc<Shard>,
    g: &Rc<RefCell<Group>>,
    index: u64,
) -> Result<Option<(SnapshotMetadata, Bytes)>, String> {
    let (gid, base_index, mut builder) = {
        let grp = g.borrow();
        let (bi, bd) = &grp.snap;
        let base = (*bi > 0).then_some(bd);
        let b = grp
            .apply
            .snapshot_builder(base)
            .map_err(|e| e.to_string())?;
        (grp.id, *bi, b)
    };
    let mut next = base_index + 1;
    let mut term = 0;
    while next <= index {
        if g.borrow().snap.0 != base_index {
            return Ok(None);
        }
        let es = shard
            .wal
            .borrow()
            .entries(gid, next, index + 1, PIECE_BYTES)
            .map_err(|e| e.to_string())?;
        let Some(last) = es.last() else {
            return Err(format!("the WAL gave no entry at {next}"));
        };
        next = last.index + 1;
        term = last.term;
        builder.apply(&es).map_err(|e| e.to_string())?;
        yield_now().await;
    }
    let grp = g.borrow();
    if grp.snap.0 != base_index || builder.index() != index {
        return Ok(None);
    }
    let meta = SnapshotMetadata {
        conf_state: Some(grp.conf_state_at(index)),
        index,
        term,
    };
    Ok(Some((meta, builder.finish())))
}
