//! Rebuilding a tracker's configuration from a `ConfState` (what a snapshot
//! or the storage's initial state carries), by replaying it as a sequence of
//! ordinary configuration changes so that the result passes exactly the
//! validation any other change does.

use crate::raft::tracker::ProgressTracker;
use crate::raftpb::{ConfChangeSingle, ConfChangeType, ConfState};

use super::changer::{ChangeResult, Changer};

fn single(t: ConfChangeType, node_id: u64) -> ConfChangeSingle {
    ConfChangeSingle {
        r#type: t as i32,
        node_id,
    }
}

/// Splits a `ConfState` into the changes that build its outgoing voters
/// (`out`, applied one at a time from empty) and the changes that, entered
/// as a joint change on top of that, produce the incoming half, learners and
/// staged learners (`inc`). Without outgoing voters, `out` is empty and
/// `inc` builds the plain configuration.
fn to_conf_change_single(cs: &ConfState) -> (Vec<ConfChangeSingle>, Vec<ConfChangeSingle>) {
    use ConfChangeType::{ConfChangeAddLearnerNode, ConfChangeAddNode, ConfChangeRemoveNode};
    let out = cs
        .voters_outgoing
        .iter()
        .map(|&id| single(ConfChangeAddNode, id))
        .collect();
    // Starting from the outgoing voters: drop them all, then add back the
    // incoming voters, then the learners, then the staged learners (which
    // are outgoing voters, so they land in learners_next).
    let inc = cs
        .voters_outgoing
        .iter()
        .map(|&id| single(ConfChangeRemoveNode, id))
        .chain(cs.voters.iter().map(|&id| single(ConfChangeAddNode, id)))
        .chain(
            cs.learners
                .iter()
                .map(|&id| single(ConfChangeAddLearnerNode, id)),
        )
        .chain(
            cs.learners_next
                .iter()
                .map(|&id| single(ConfChangeAddLearnerNode, id)),
        )
        .collect();
    (out, inc)
}

/// The configuration and progress described by `cs`, built on `tracker`
/// (which must hold the empty configuration; its inflight bounds are used
/// for the new progresses, probed at `last_index`).
pub fn restore(tracker: &ProgressTracker, last_index: u64, cs: &ConfState) -> ChangeResult {
    let (outgoing, incoming) = to_conf_change_single(cs);
    let mut trk = tracker.clone();
    let step = |trk: &mut ProgressTracker, op: &dyn Fn(&Changer) -> ChangeResult| {
        let chg = Changer {
            tracker: trk,
            last_index,
        };
        let (config, progress) = op(&chg)?;
        trk.config = config;
        trk.progress = progress;
        Ok::<(), String>(())
    };
    if outgoing.is_empty() {
        for cc in &incoming {
            step(&mut trk, &|c| c.simple(std::slice::from_ref(cc)))?;
        }
    } else {
        // Build the outgoing voters as if they were the active config, then
        // enter the joint config that turns them into the outgoing half.
        for cc in &outgoing {
            step(&mut trk, &|c| c.simple(std::slice::from_ref(cc)))?;
        }
        step(&mut trk, &|c| c.enter_joint(cs.auto_leave, &incoming))?;
    }
    Ok((trk.config, trk.progress))
}
