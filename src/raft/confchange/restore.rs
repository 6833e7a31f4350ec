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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::tracker::ProgressTracker;

    fn cs(
        voters: &[u64],
        learners: &[u64],
        outgoing: &[u64],
        next: &[u64],
        auto: bool,
    ) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            voters_outgoing: outgoing.to_vec(),
            learners_next: next.to_vec(),
            auto_leave: auto,
        }
    }

    /// Restores `want` onto an empty tracker and checks that the tracker
    /// then reports exactly `want` (lists sorted).
    fn round_trip(want: &ConfState) {
        let empty = ProgressTracker::new(20, 0);
        let (config, progress) =
            restore(&empty, 10, want).unwrap_or_else(|e| panic!("restore of {want:?} failed: {e}"));
        let mut t = empty.clone();
        t.config = config;
        t.progress = progress;
        let mut sorted = want.clone();
        for l in [
            &mut sorted.voters,
            &mut sorted.learners,
            &mut sorted.voters_outgoing,
            &mut sorted.learners_next,
        ] {
            l.sort_unstable();
        }
        let got = t.conf_state();
        assert_eq!(got, sorted);
        assert_eq!(got.equivalent(want), Ok(()));
        assert_eq!(want.equivalent(&got), Ok(()));
        for (id, pr) in &t.progress {
            assert_eq!(pr.next_idx, 10, "peer {id} probed at the last index");
            assert_eq!(pr.is_learner, t.config.learners.contains(id), "peer {id}");
        }
    }

    #[test]
    fn restores_plain_and_joint_configurations() {
        round_trip(&ConfState::default());
        round_trip(&cs(&[1, 2, 3], &[], &[], &[], false));
        round_trip(&cs(&[1, 2, 3], &[4, 5, 6], &[], &[], false));
        round_trip(&cs(&[1, 2, 3], &[5], &[1, 2, 4, 6], &[4], false));
        round_trip(&cs(&[3, 1], &[], &[2], &[], true));
    }

    #[test]
    fn restores_random_valid_configurations() {
        // xorshift: deterministic, so a failure replays.
        let mut s: u64 = 0x2545_f491_4f6c_dd1d;
        let mut below = |n: u64| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s % n
        };
        for _ in 0..300 {
            let n_voters = 1 + below(5) as usize;
            let n_learners = below(5) as usize;
            let n_removed = below(3) as usize;
            // Distinct ids: a shuffled range, voters first.
            let mut ids: Vec<u64> = (1..=2 * (n_voters + n_learners + n_removed) as u64).collect();
            for i in (1..ids.len()).rev() {
                let j = below(i as u64 + 1) as usize;
                ids.swap(i, j);
            }
            let voters = ids[..n_voters].to_vec();
            let learners = ids[n_voters..n_voters + n_learners].to_vec();
            let removed = &ids[n_voters + n_learners..n_voters + n_learners + n_removed];
            let retained = below(n_voters as u64 + 1) as usize;
            let mut outgoing = voters[..retained].to_vec();
            outgoing.extend_from_slice(removed);
            // Only removed voters can be staged as learners (demotions).
            let next = removed[..below(n_removed as u64 + 1) as usize].to_vec();
            let auto = !outgoing.is_empty() && below(2) == 1;
            round_trip(&cs(&voters, &learners, &outgoing, &next, auto));
        }
    }

    #[test]
    fn a_configuration_that_cannot_exist_is_refused() {
        // A learner that is also a voter violates the invariants; restoring
        // it must fail rather than build something inconsistent.
        let empty = ProgressTracker::new(20, 0);
        let bad = cs(&[1], &[1], &[], &[], false);
        assert!(restore(&empty, 10, &bad).is_err());
    }
}
