//! A leader's view of one follower: how far its log matches, what to send
//! next, and the flow-control state (probe / replicate / snapshot, the
//! inflight window, pausing). The transitions here are the ones etcd-raft's
//! `Progress` makes; deciding *when* to make them is the leader's job in
//! `raft`, and this file never sends anything itself.

use std::collections::BTreeMap;
use std::fmt;

use super::inflights::Inflights;
use super::state::ProgressState;

/// What the leader knows about one follower (or learner).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The highest index known to match the leader's log.
    pub matched: u64,
    /// The next index to send. Entries in (matched, next_idx) are in flight.
    /// Invariant: `matched < next_idx`. In `Snapshot` state,
    /// `next_idx == pending_snapshot + 1`.
    pub next_idx: u64,
    /// The highest commit index sent to the follower. Usually grows, but
    /// regresses when the leader falls back to probing or sees a rejection.
    /// In `Snapshot` state it equals `pending_snapshot`.
    pub sent_commit: u64,
    pub state: ProgressState,
    /// In `Snapshot` state: the leader's last index when it decided a
    /// snapshot was needed. Replication resumes on any append response that
    /// reconnects the follower, whatever snapshot index it actually got.
    pub pending_snapshot: u64,
    /// Whether the follower was heard from since the last check-quorum
    /// round. Always true for the leader itself.
    pub recent_active: bool,
    /// Set when appends to the follower are throttled: in `Probe` after a
    /// probe was sent, in `Replicate` when the inflight window is full. A
    /// heartbeat response clears it so that progress is still made.
    pub msg_app_flow_paused: bool,
    /// The unacknowledged appends.
    pub ins: Inflights,
    pub is_learner: bool,
}

impl Progress {
    /// A fresh progress in `Probe` state, about to probe at `next_idx`.
    pub fn new(next_idx: u64, ins: Inflights) -> Progress {
        Progress {
            next_idx,
            ins,
            ..Progress::default()
        }
    }

    /// Moves to `state`, unpausing and forgetting any pending snapshot and
    /// every inflight message.
    pub fn reset_state(&mut self, state: ProgressState) {
        self.msg_app_flow_paused = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.ins.reset();
    }

    /// Falls back to probing from `matched + 1`, or, when coming from a
    /// snapshot that was sent, from just past the snapshot.
    pub fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            let pending = self.pending_snapshot;
            self.reset_state(ProgressState::Probe);
            self.next_idx = (self.matched + 1).max(pending + 1);
        } else {
            self.reset_state(ProgressState::Probe);
            self.next_idx = self.matched + 1;
        }
        self.sent_commit = self.sent_commit.min(self.next_idx - 1);
    }

    /// Starts streaming from `matched + 1`.
    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next_idx = self.matched + 1;
    }

    /// Waits for a snapshot at `snapshot_index`.
    pub fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
        self.next_idx = snapshot_index + 1;
        self.sent_commit = snapshot_index;
    }

    /// Accounts for a MsgApp carrying `entries` consecutive entries (of
    /// `bytes` payload) starting at `next_idx`.
    ///
    /// # Panics
    /// In `Snapshot` state, where no appends may be sent.
    pub fn sent_entries(&mut self, entries: usize, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if entries > 0 {
                    self.next_idx += entries as u64;
                    self.ins.add(self.next_idx - 1, bytes);
                }
                // A message that fills the window (or is sent into a full
                // one) counts as a probe: the flow pauses until an ack.
                self.msg_app_flow_paused = self.ins.full();
            }
            ProgressState::Probe => {
                // Like etcd: only a probe that carries entries pauses.
                if entries > 0 {
                    self.msg_app_flow_paused = true;
                }
            }
            ProgressState::Snapshot => {
                panic!(
                    "Progress::sent_entries in {}: no appends while a snapshot is pending",
                    self.state
                )
            }
        }
    }

    /// Whether sending commit index `index` could advance the follower's
    /// commit: only if it is news and the follower has not already been told
    /// a commit covering everything sent (`next_idx - 1`).
    pub fn can_bump_commit(&self, index: u64) -> bool {
        index > self.sent_commit && self.sent_commit < self.next_idx.wrapping_sub(1)
    }

    /// Records that commit index `commit` was sent.
    pub fn sent_commit(&mut self, commit: u64) {
        self.sent_commit = commit;
    }

    /// Handles an append acknowledged up to `n`. Returns false (and changes
    /// nothing) if the ack is stale, i.e. not beyond `matched`.
    pub fn maybe_update(&mut self, n: u64) -> bool {
        if n <= self.matched {
            return false;
        }
        self.matched = n;
        self.next_idx = self.next_idx.max(n + 1);
        self.msg_app_flow_paused = false;
        true
    }

    /// Handles a rejection of the append at index `rejected`, with the
    /// follower's hint that its log may match up to `match_hint`. Returns
    /// false (and changes nothing) if the rejection is stale; otherwise lowers
    /// `next_idx` and clears the flow to send again.
    pub fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            // Anything at or below `matched` was acknowledged already.
            if rejected <= self.matched {
                return false;
            }
            self.next_idx = self.matched + 1;
            self.sent_commit = self.sent_commit.min(self.next_idx - 1);
            return true;
        }
        // Outside Replicate one append is probed at a time, at next_idx - 1;
        // a rejection of anything else is a reordered or duplicated message.
        if self.next_idx.wrapping_sub(1) != rejected {
            return false;
        }
        self.next_idx = rejected
            .min(match_hint.wrapping_add(1))
            .max(self.matched + 1);
        self.sent_commit = self.sent_commit.min(self.next_idx - 1);
        self.msg_app_flow_paused = false;
        true
    }

    /// Whether appends to this follower are throttled right now.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe | ProgressState::Replicate => self.msg_app_flow_paused,
            ProgressState::Snapshot => true,
        }
    }
}

impl fmt::Display for Progress {
    /// etcd's one-line form, e.g.
    /// `StateReplicate match=5 next=6 paused inflight=2[full]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} match={} next={}",
            self.state, self.matched, self.next_idx
        )?;
        if self.is_learner {
            f.write_str(" learner")?;
        }
        if self.is_paused() {
            f.write_str(" paused")?;
        }
        if self.pending_snapshot > 0 {
            write!(f, " pendingSnap={}", self.pending_snapshot)?;
        }
        if !self.recent_active {
            f.write_str(" inactive")?;
        }
        let n = self.ins.count();
        if n > 0 {
            write!(f, " inflight={n}")?;
            if self.ins.full() {
                f.write_str("[full]")?;
            }
        }
        Ok(())
    }
}

/// The progress of every tracked peer, by id.
pub type ProgressMap = BTreeMap<u64, Progress>;

/// etcd's multi-line form of a progress map: `id: progress` per line in id
/// order (ids in decimal), each line ending in a newline.
pub fn progress_map_to_string(m: &ProgressMap) -> String {
    let mut out = String::new();
    for (id, pr) in m {
        out.push_str(&format!("{id}: {pr}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_state(state: ProgressState, matched: u64, next_idx: u64) -> Progress {
        Progress {
            state,
            matched,
            next_idx,
            ins: Inflights::new(256, 0),
            ..Progress::default()
        }
    }

    #[test]
    fn display_shows_every_flag_in_etcd_order() {
        let mut ins = Inflights::new(1, 0);
        ins.add(123, 1);
        let pr = Progress {
            matched: 1,
            next_idx: 2,
            state: ProgressState::Snapshot,
            pending_snapshot: 123,
            recent_active: false,
            msg_app_flow_paused: true,
            is_learner: true,
            ins,
            ..Progress::default()
        };
        assert_eq!(
            pr.to_string(),
            "StateSnapshot match=1 next=2 learner paused pendingSnap=123 inactive inflight=1[full]"
        );
    }

    #[test]
    fn display_of_a_healthy_follower_is_short() {
        let mut pr = with_state(ProgressState::Replicate, 4, 5);
        pr.recent_active = true;
        assert_eq!(pr.to_string(), "StateReplicate match=4 next=5");
    }

    #[test]
    fn is_paused_depends_on_state_and_flag() {
        let cases = [
            (ProgressState::Probe, false, false),
            (ProgressState::Probe, true, true),
            (ProgressState::Replicate, false, false),
            (ProgressState::Replicate, true, true),
            (ProgressState::Snapshot, false, true),
            (ProgressState::Snapshot, true, true),
        ];
        for (i, (state, paused, want)) in cases.into_iter().enumerate() {
            let mut p = with_state(state, 0, 0);
            p.msg_app_flow_paused = paused;
            assert_eq!(p.is_paused(), want, "case {i}");
        }
    }

    #[test]
    fn update_and_decrement_resume_the_flow() {
        let mut p = Progress {
            next_idx: 2,
            msg_app_flow_paused: true,
            ..Progress::default()
        };
        p.maybe_decr_to(1, 1);
        assert!(!p.msg_app_flow_paused);
        p.msg_app_flow_paused = true;
        p.maybe_update(2);
        assert!(!p.msg_app_flow_paused);
    }

    #[test]
    fn become_probe_restarts_after_match_or_after_a_sent_snapshot() {
        let cases = [
            (with_state(ProgressState::Replicate, 1, 5), 0, 2),
            // Snapshot finished: probe right after it.
            (with_state(ProgressState::Snapshot, 1, 5), 10, 11),
            // Snapshot failed (pending reset to 0): probe after match.
            (with_state(ProgressState::Snapshot, 1, 5), 0, 2),
        ];
        for (i, (mut p, pending, want_next)) in cases.into_iter().enumerate() {
            p.pending_snapshot = pending;
            p.become_probe();
            assert_eq!(p.state, ProgressState::Probe, "case {i}");
            assert_eq!(p.matched, 1, "case {i}");
            assert_eq!(p.next_idx, want_next, "case {i}");
        }
    }

    #[test]
    fn become_probe_caps_sent_commit_below_next() {
        let mut p = with_state(ProgressState::Replicate, 3, 10);
        p.sent_commit = 8;
        p.become_probe();
        assert_eq!(p.next_idx, 4);
        assert_eq!(p.sent_commit, 3);
    }

    #[test]
    fn become_replicate_streams_from_match() {
        let mut p = with_state(ProgressState::Probe, 1, 5);
        p.become_replicate();
        assert_eq!(p.state, ProgressState::Replicate);
        assert_eq!(p.matched, 1);
        assert_eq!(p.next_idx, 2);
    }

    #[test]
    fn become_snapshot_waits_past_the_snapshot() {
        let mut p = with_state(ProgressState::Probe, 1, 5);
        p.become_snapshot(10);
        assert_eq!(p.state, ProgressState::Snapshot);
        assert_eq!(p.matched, 1);
        assert_eq!(p.pending_snapshot, 10);
        assert_eq!(p.next_idx, 11);
        assert_eq!(p.sent_commit, 10);
    }

    #[test]
    fn reset_state_clears_pause_snapshot_and_window() {
        let mut p = with_state(ProgressState::Replicate, 1, 2);
        p.ins.add(3, 10);
        p.msg_app_flow_paused = true;
        p.pending_snapshot = 7;
        p.reset_state(ProgressState::Probe);
        assert_eq!(p.state, ProgressState::Probe);
        assert!(!p.msg_app_flow_paused);
        assert_eq!(p.pending_snapshot, 0);
        assert_eq!(p.ins.count(), 0);
    }

    #[test]
    fn maybe_update_moves_match_and_never_lowers_next() {
        let (prev_m, prev_n) = (3, 5);
        let cases = [
            (prev_m - 1, prev_m, prev_n, false),
            (prev_m, prev_m, prev_n, false),
            (prev_m + 1, prev_m + 1, prev_n, true),
            (prev_m + 2, prev_m + 2, prev_n + 1, true),
        ];
        for (i, (update, want_m, want_n, want_ok)) in cases.into_iter().enumerate() {
            let mut p = Progress {
                matched: prev_m,
                next_idx: prev_n,
                ..Progress::default()
            };
            assert_eq!(p.maybe_update(update), want_ok, "case {i}");
            assert_eq!(p.matched, want_m, "case {i}");
            assert_eq!(p.next_idx, want_n, "case {i}");
        }
    }

    #[test]
    fn maybe_decr_to_ignores_stale_rejections_and_follows_hints() {
        use ProgressState::{Probe, Replicate};
        // (state, match, next, rejected, hint, accepted, want next)
        let cases = [
            // Replicate: a rejection at or below match is stale.
            (Replicate, 5, 10, 5, 5, false, 10),
            (Replicate, 5, 10, 4, 4, false, 10),
            // Replicate: a genuine rejection goes straight back to match + 1.
            (Replicate, 5, 10, 9, 9, true, 6),
            // Probe: only a rejection of next - 1 is genuine.
            (Probe, 0, 0, 0, 0, false, 0),
            (Probe, 0, 10, 5, 5, false, 10),
            // Probe: step back by one...
            (Probe, 0, 10, 9, 9, true, 9),
            (Probe, 0, 2, 1, 1, true, 1),
            // ...never below match + 1...
            (Probe, 0, 1, 0, 0, true, 1),
            // ...or jump to the hint + 1 when it is lower.
            (Probe, 0, 10, 9, 2, true, 3),
            (Probe, 0, 10, 9, 0, true, 1),
        ];
        for (i, (state, m, n, rejected, hint, want_ok, want_n)) in cases.into_iter().enumerate() {
            let mut p = Progress {
                state,
                matched: m,
                next_idx: n,
                ..Progress::default()
            };
            assert_eq!(p.maybe_decr_to(rejected, hint), want_ok, "case {i}");
            assert_eq!(p.matched, m, "case {i}");
            assert_eq!(p.next_idx, want_n, "case {i}");
        }
    }

    #[test]
    fn sent_entries_in_replicate_fills_the_window_and_pauses_when_full() {
        let mut p = with_state(ProgressState::Replicate, 0, 1);
        p.ins = Inflights::new(2, 0);
        p.sent_entries(3, 30);
        assert_eq!(p.next_idx, 4);
        assert_eq!(p.ins.count(), 1);
        assert!(!p.msg_app_flow_paused);
        p.sent_entries(1, 10);
        assert_eq!(p.next_idx, 5);
        assert!(p.msg_app_flow_paused, "a full window pauses the flow");
        // An empty append (commit-only) does not touch the window.
        p.ins.free_le(4);
        p.sent_entries(0, 0);
        assert_eq!(p.next_idx, 5);
        assert!(!p.msg_app_flow_paused);
    }

    #[test]
    fn sent_entries_in_probe_pauses_only_with_entries() {
        let mut p = with_state(ProgressState::Probe, 0, 1);
        p.sent_entries(0, 0);
        assert!(!p.msg_app_flow_paused);
        p.sent_entries(1, 10);
        assert!(p.msg_app_flow_paused);
        assert_eq!(p.next_idx, 1, "probing does not advance next");
    }

    #[test]
    #[should_panic(expected = "no appends while a snapshot is pending")]
    fn sent_entries_in_snapshot_is_a_broken_contract() {
        let mut p = with_state(ProgressState::Snapshot, 0, 1);
        p.sent_entries(1, 1);
    }

    #[test]
    fn can_bump_commit_only_when_news_and_not_yet_covering_next() {
        let mut p = with_state(ProgressState::Replicate, 0, 6);
        p.sent_commit(3);
        assert!(p.can_bump_commit(4));
        assert!(!p.can_bump_commit(3));
        p.sent_commit(5);
        assert!(!p.can_bump_commit(9), "commit 5 already covers next-1");
    }

    #[test]
    fn progress_map_prints_one_line_per_id_in_order() {
        let mut m = ProgressMap::new();
        m.insert(10, with_state(ProgressState::Probe, 0, 1));
        m.insert(2, with_state(ProgressState::Replicate, 3, 4));
        m.get_mut(&10).unwrap().recent_active = true;
        m.get_mut(&2).unwrap().recent_active = true;
        assert_eq!(
            progress_map_to_string(&m),
            "2: StateReplicate match=3 next=4\n10: StateProbe match=0 next=1\n"
        );
    }
}
