//! The invariants, written down once and checked against everything the
//! simulator sees.
//!
//! The checker keeps a global history that no single node has: every leader
//! of every term, every (index, term) ever written to a log, every committed
//! entry and the term at which it was first known committed, every read
//! request and what was committed when it was made. It sees nodes only
//! through `LogView`, so it knows nothing of how the core stores its log,
//! and it must never change a node.
//!
//! Each check is incremental (a cost per new fact, not per step times the
//! log's length) so that checking after every step stays cheap.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hasher;

use corelog::raftpb::Entry;

use crate::event::Fnv;

/// What the checker needs to read of one node's log (its in-memory log, or
/// what its storage holds).
pub trait LogView {
    /// The first index whose term is known (a snapshot's index counts).
    fn first_known(&self) -> u64;
    fn last_index(&self) -> u64;
    /// The term at `i`, or None if compacted or beyond the end.
    fn term(&self, i: u64) -> Option<u64>;
    /// The identity of the entry at `i` (`entry_hash`), if still held as an
    /// entry (not compacted).
    fn entry_hash(&self, i: u64) -> Option<u64>;
}

/// A broken invariant: its name, and what exactly broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant `{}` violated: {}",
            self.invariant, self.detail
        )
    }
}

pub type Check = Result<(), Violation>;

fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

pub const ELECTION_SAFETY: &str = "election safety";
pub const LEADER_APPEND_ONLY: &str = "leader append-only";
pub const LOG_MATCHING: &str = "log matching";
pub const LEADER_COMPLETENESS: &str = "leader completeness";
pub const COMMITMENT_RULE: &str = "leader commits only entries of its term";
pub const STATE_MACHINE_SAFETY: &str = "state machine safety";
pub const DURABILITY: &str = "no committed or acknowledged state lost across crashes";
pub const LINEARIZABLE_READS: &str = "linearizable read index";
/// Lease-based reads: while a leader's lease holds, no node leads a later
/// term (checked after every step; a stale lease read needs this first).
pub const LEASE_EXCLUSIVE: &str = "no leader of a later term while a lease holds";
pub const LIVENESS: &str = "liveness";
pub const COMMIT_IN_LEADER_LOG: &str =
    "a commit index lies within the prefix shared with the leader";
pub const ONE_VOTE_PER_TERM: &str = "a node votes at most once per term";
pub const PROBE_FROM_HINT: &str = "a rejected leader probes right after the follower's hint";
pub const READ_WAIT: &str = "a read waits only as long as the rules require";
/// `--storage wal`: a WAL refuses its disk (corruption) only if the disk
/// lost synced data (a bit flip, a misdirected write).
pub const WAL_INTEGRITY: &str = "a WAL finds corruption only where its disk lost synced data";
pub const CORE_PANIC: &str = "core did not panic";
pub const CORE_ERROR: &str = "core accepted a valid request";

/// The identity of an entry: what two logs must agree on at an index.
pub fn entry_hash(e: &Entry) -> u64 {
    let mut h = Fnv::default();
    h.write_u64(e.term);
    h.write_u64(e.index);
    h.write_i32(e.r#type);
    h.write(&e.data);
    h.finish()
}

/// The state machine's state after applying an entry on top of `prev`: a
/// hash chain, so two nodes agree on it iff they applied the same entries.
pub fn chain(prev: u64, entry_hash: u64) -> u64 {
    let mut h = Fnv::default();
    h.write_u64(prev);
    h.write_u64(entry_hash);
    h.finish()
}

#[derive(Debug, Clone, Copy)]
struct Committed {
    term: u64,
    entry_hash: u64,
    /// The state machine's hash after applying this entry.
    app_hash: u64,
    /// The term of the node that first applied it: it was committed at
    /// this term or before, so every leader of a later term must hold it.
    observed_term: u64,
}

#[derive(Debug, Clone, Copy)]
struct LeaderWatch {
    term: u64,
    /// Committed indexes up to here have been checked against this leader.
    checked_upto: u64,
    /// The leader's last entry when last seen: (index, term, hash).
    last: Option<(u64, u64, u64)>,
    /// The leader's commit index when first seen leading this term.
    commit_start: u64,
}

#[derive(Debug)]
pub struct Checker {
    /// term -> the one node that was leader in it.
    leaders: BTreeMap<u64, u64>,
    /// The bootstrap index: the state at it is `base_app_hash`, and nothing
    /// below it ever existed as entries.
    base: u64,
    base_app_hash: u64,
    /// Committed entries `base + 1 ..`, in index order.
    committed: Vec<Committed>,
    /// (index, term) -> (entry hash, term of index - 1): by induction, two
    /// logs that agree here for every entry they hold satisfy log matching.
    written: BTreeMap<(u64, u64), (u64, u64)>,
    leader_watch: BTreeMap<u64, LeaderWatch>,
    /// Read request context -> (node asked, the highest commit index anyone
    /// knew when it was asked).
    reads: BTreeMap<u64, (u64, u64)>,
    /// (node, term) -> the candidate it voted for in that term, from its
    /// persisted hard states and the grants it sent.
    votes: BTreeMap<(u64, u64), u64>,
}

impl Checker {
    pub fn new(base: u64, base_app_hash: u64) -> Checker {
        Checker {
            leaders: BTreeMap::new(),
            base,
            base_app_hash,
            committed: Vec::new(),
            written: BTreeMap::new(),
            leader_watch: BTreeMap::new(),
            reads: BTreeMap::new(),
            votes: BTreeMap::new(),
        }
    }

    /// The highest index known committed (applied by some node).
    pub fn committed_index(&self) -> u64 {
        self.base + self.committed.len() as u64
    }

    fn committed_at(&self, i: u64) -> Option<&Committed> {
        if i <= self.base {
            None
        } else {
            self.committed.get((i - self.base - 1) as usize)
        }
    }

    /// The state machine's hash after applying index `i`, if known.
    pub fn app_hash_at(&self, i: u64) -> Option<u64> {
        if i == self.base {
            Some(self.base_app_hash)
        } else {
            self.committed_at(i).map(|c| c.app_hash)
        }
    }

    /// Election safety: at most one leader per term, over the whole run.
    /// Returns whether this is the first sight of this term's leader.
    pub fn observe_leader(&mut self, id: u64, term: u64) -> Result<bool, Violation> {
        match self.leaders.get(&term) {
            Some(&other) if other != id => Err(violation(
                ELECTION_SAFETY,
                format!("term {term} has two leaders: {other} and {id}"),
            )),
            Some(_) => Ok(false),
            None => {
                self.leaders.insert(term, id);
                Ok(true)
            }
        }
    }

    /// Checks a node that is leader at `term` now, with commit index
    /// `committed`: its log only grew since it was last seen (leader
    /// append-only), it holds every entry known committed at an earlier
    /// term (leader completeness), and it moved its commit index only to an
    /// entry of its own term (Raft's commitment rule, §5.4.2: earlier
    /// entries commit only along with one; counting replicas of an old
    /// entry is how the paper's figure 8 loses it).
    pub fn check_leader(&mut self, id: u64, term: u64, committed: u64, log: &dyn LogView) -> Check {
        let mut w = match self.leader_watch.get(&id) {
            Some(w) if w.term == term => *w,
            _ => LeaderWatch {
                term,
                checked_upto: self.base,
                last: None,
                commit_start: committed,
            },
        };
        if committed != w.commit_start && log.term(committed) != Some(term) {
            return Err(violation(
                COMMITMENT_RULE,
                format!(
                    "leader {id} of term {term} moved its commit index from {} to {committed}, an entry of term {:?}",
                    w.commit_start,
                    log.term(committed)
                ),
            ));
        }
        if let Some((idx, t, h)) = w.last {
            let now_last = log.last_index();
            if now_last < idx {
                return Err(violation(
                    LEADER_APPEND_ONLY,
                    format!(
                        "leader {id} of term {term} had entries up to {idx}, now only up to {now_last}"
                    ),
                ));
            }
            if idx >= log.first_known() {
                let same_term = log.term(idx) == Some(t);
                let same_entry = log.entry_hash(idx).is_none_or(|x| x == h);
                if !same_term || !same_entry {
                    return Err(violation(
                        LEADER_APPEND_ONLY,
                        format!(
                            "leader {id} of term {term} overwrote its entry {idx} (term {t} -> {:?})",
                            log.term(idx)
                        ),
                    ));
                }
            }
        }
        let last = log.last_index();
        w.last = log
            .term(last)
            .map(|t| (last, t, log.entry_hash(last).unwrap_or(0)));

        let upto = self.committed_index();
        let first = log.first_known();
        for i in (w.checked_upto + 1)..=upto {
            let Some(c) = self.committed_at(i) else {
                continue;
            };
            if c.observed_term >= term || i < first {
                // Committed at this term or later (not required of this
                // leader), or compacted into its snapshot.
                continue;
            }
            match log.term(i) {
                Some(t) if t == c.term => {
                    if let Some(h) = log.entry_hash(i)
                        && h != c.entry_hash
                    {
                        return Err(violation(
                            LEADER_COMPLETENESS,
                            format!(
                                "leader {id} of term {term} holds a different entry at committed index {i}"
                            ),
                        ));
                    }
                }
                other => {
                    return Err(violation(
                        LEADER_COMPLETENESS,
                        format!(
                            "leader {id} of term {term} lacks entry {i} (term {}) committed by term {}; its log has {:?} there (last index {})",
                            c.term,
                            c.observed_term,
                            other,
                            log.last_index()
                        ),
                    ));
                }
            }
        }
        w.checked_upto = upto;
        self.leader_watch.insert(id, w);
        Ok(())
    }

    /// Log matching, checked on each write: `entries` were just appended by
    /// node `id` after an entry of term `prev_term` (None if unknown).
    pub fn check_appended(&mut self, id: u64, prev_term: Option<u64>, entries: &[Entry]) -> Check {
        let mut prev = prev_term;
        for e in entries {
            let h = entry_hash(e);
            match self.written.get(&(e.index, e.term)) {
                None => {
                    if let Some(p) = prev {
                        self.written.insert((e.index, e.term), (h, p));
                    }
                }
                Some(&(h0, p0)) => {
                    if h0 != h {
                        return Err(violation(
                            LOG_MATCHING,
                            format!(
                                "node {id} wrote a different entry at index {} term {} than another log holds",
                                e.index, e.term
                            ),
                        ));
                    }
                    if let Some(p) = prev
                        && p != p0
                    {
                        return Err(violation(
                            LOG_MATCHING,
                            format!(
                                "node {id} holds entry {}/{} after an entry of term {p}, another log after term {p0}",
                                e.index, e.term
                            ),
                        ));
                    }
                }
            }
            prev = Some(e.term);
        }
        Ok(())
    }

    /// State machine safety: node `id`, at term `node_term`, applies `e` on
    /// top of state `app_hash`. Returns the state after it.
    pub fn observe_apply(
        &mut self,
        id: u64,
        node_term: u64,
        applied: u64,
        app_hash: u64,
        e: &Entry,
    ) -> Result<u64, Violation> {
        if e.index != applied + 1 {
            return Err(violation(
                STATE_MACHINE_SAFETY,
                format!(
                    "node {id} applies index {} right after {applied}: entries must apply in order, without gaps",
                    e.index
                ),
            ));
        }
        let h = entry_hash(e);
        let next = chain(app_hash, h);
        let top = self.committed_index();
        if e.index <= top {
            let Some(c) = self.committed_at(e.index).copied() else {
                return Err(violation(
                    STATE_MACHINE_SAFETY,
                    format!(
                        "node {id} applies index {} at or below the bootstrap index {}",
                        e.index, self.base
                    ),
                ));
            };
            if c.term != e.term || c.entry_hash != h {
                return Err(violation(
                    STATE_MACHINE_SAFETY,
                    format!(
                        "node {id} applies a different entry at index {} (term {}) than was applied before (term {})",
                        e.index, e.term, c.term
                    ),
                ));
            }
            if c.app_hash != next {
                return Err(violation(
                    STATE_MACHINE_SAFETY,
                    format!(
                        "node {id} reaches a different state at index {} than other nodes",
                        e.index
                    ),
                ));
            }
        } else if e.index == top + 1 {
            if self.app_hash_at(top) != Some(app_hash) {
                return Err(violation(
                    STATE_MACHINE_SAFETY,
                    format!(
                        "node {id} applies index {} on a state that differs from the committed one at {top}",
                        e.index
                    ),
                ));
            }
            self.committed.push(Committed {
                term: e.term,
                entry_hash: h,
                app_hash: next,
                observed_term: node_term,
            });
        } else {
            return Err(violation(
                STATE_MACHINE_SAFETY,
                format!(
                    "node {id} applies index {} but only {top} is known committed and applied",
                    e.index
                ),
            ));
        }
        Ok(next)
    }

    /// A node restores a snapshot of the state at `index`: it must be a
    /// state some node reached by applying committed entries.
    pub fn observe_snapshot(&self, id: u64, index: u64, app_hash: u64) -> Check {
        match self.app_hash_at(index) {
            Some(h) if h == app_hash => Ok(()),
            Some(_) => Err(violation(
                STATE_MACHINE_SAFETY,
                format!("node {id} restores a snapshot at {index} whose state no node applied"),
            )),
            None => Err(violation(
                STATE_MACHINE_SAFETY,
                format!(
                    "node {id} restores a snapshot at {index}, beyond what was applied ({})",
                    self.committed_index()
                ),
            )),
        }
    }

    /// After a restart: the log that survived must hold, up to the commit
    /// index it persisted, exactly the committed entries.
    pub fn check_restarted(&self, id: u64, commit: u64, log: &dyn LogView) -> Check {
        if commit > log.last_index() {
            return Err(violation(
                DURABILITY,
                format!(
                    "node {id} restarted with commit {commit} beyond its last persisted index {}",
                    log.last_index()
                ),
            ));
        }
        let top = commit.min(self.committed_index());
        for i in log.first_known().max(self.base + 1)..=top {
            let Some(c) = self.committed_at(i) else {
                continue;
            };
            let ok =
                log.term(i) == Some(c.term) && log.entry_hash(i).is_none_or(|h| h == c.entry_hash);
            if !ok {
                return Err(violation(
                    DURABILITY,
                    format!(
                        "node {id} restarted without committed entry {i} (term {}): it has {:?}",
                        c.term,
                        log.term(i)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Node `id` voted for `cand` in `term` (a hard state it persisted, or a
    /// vote it granted): one vote per term, across crashes too, or two
    /// candidates may win the same term.
    pub fn observe_vote(&mut self, id: u64, term: u64, cand: u64) -> Check {
        match self.votes.get(&(id, term)) {
            Some(&prev) if prev != cand => Err(violation(
                ONE_VOTE_PER_TERM,
                format!("node {id} voted for {prev} and then for {cand} in term {term}"),
            )),
            Some(_) => Ok(()),
            None => {
                self.votes.insert((id, term), cand);
                Ok(())
            }
        }
    }

    /// A node at `node_term` with commit index `commit`, checked against a
    /// leader of `leader_term >= node_term`: whatever the node knows
    /// committed, it learned from a leader of its term or before, so every
    /// leader from then on holds it (leader completeness). Checked at every
    /// step, so a commit index raised past the prefix a follower shares with
    /// its leader is caught when it moves, not only when (and if) the wrong
    /// entry is applied.
    pub fn check_commit_in_leader_log(
        &self,
        id: u64,
        commit: u64,
        log: &dyn LogView,
        leader: u64,
        leader_log: &dyn LogView,
    ) -> Check {
        if commit < log.first_known().max(leader_log.first_known()) || commit <= self.base {
            // Compacted on one side: a snapshot vouches for it.
            return Ok(());
        }
        let (mine, theirs) = (log.term(commit), leader_log.term(commit));
        let same_entry = match (log.entry_hash(commit), leader_log.entry_hash(commit)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if mine.is_some() && (mine != theirs || !same_entry) {
            return Err(violation(
                COMMIT_IN_LEADER_LOG,
                format!(
                    "node {id} has commit index {commit} at an entry of term {mine:?}, leader {leader} has term {theirs:?} there (last index {})",
                    leader_log.last_index()
                ),
            ));
        }
        Ok(())
    }

    /// A leader got a genuine rejection from a probed follower (rejected
    /// index `rejected`, the follower's hint `hint` at term `hint_term`).
    /// If the leader's log holds the hinted entry, the follower's log
    /// matches the leader's up to it (log matching): the next probe must
    /// come right after it (`next`, the leader's next index for the
    /// follower once the rejection is handled, in `state_probe`), neither
    /// before (resending what matches, or a needless snapshot) nor beyond.
    #[allow(clippy::too_many_arguments)]
    pub fn check_probe(
        &self,
        leader: u64,
        follower: u64,
        rejected: u64,
        (hint, hint_term): (u64, u64),
        leader_term_at_hint: Option<u64>,
        matched: u64,
        (next, state_probe): (u64, bool),
    ) -> Check {
        if hint_term == 0 || leader_term_at_hint != Some(hint_term) {
            return Ok(());
        }
        let want = rejected.min(hint + 1).max(matched + 1);
        if !state_probe || next != want {
            return Err(violation(
                PROBE_FROM_HINT,
                format!(
                    "leader {leader} probing {follower}: rejected at {rejected} with hint {hint} (term {hint_term}, which the leader holds), match {matched}; next index now {next} (probing: {state_probe}), want {want}"
                ),
            ));
        }
        Ok(())
    }

    /// A read request: whatever it returns must be at least `min_index`.
    pub fn register_read(&mut self, ctx: u64, id: u64, min_index: u64) {
        self.reads.insert(ctx, (id, min_index));
    }

    /// A read answered at `index` on node `id`.
    pub fn check_read(&self, id: u64, ctx: u64, index: u64) -> Check {
        match self.reads.get(&ctx) {
            None => Err(violation(
                LINEARIZABLE_READS,
                format!("node {id} answered read {ctx}, which nobody requested"),
            )),
            Some(&(asked, min)) => {
                if asked != id {
                    return Err(violation(
                        LINEARIZABLE_READS,
                        format!("read {ctx} asked of node {asked} was answered on node {id}"),
                    ));
                }
                if index < min {
                    return Err(violation(
                        LINEARIZABLE_READS,
                        format!(
                            "read {ctx} on node {id} answered index {index}, but {min} was committed before it was requested"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ent(index: u64, term: u64, data: &'static str) -> Entry {
        Entry {
            index,
            term,
            data: Bytes::from_static(data.as_bytes()),
            ..Default::default()
        }
    }

    #[test]
    fn two_leaders_in_one_term_break_election_safety() {
        let mut c = Checker::new(2, 0);
        c.observe_leader(1, 3).unwrap();
        c.observe_leader(1, 3).unwrap();
        c.observe_leader(2, 4).unwrap();
        let v = c.observe_leader(2, 3).unwrap_err();
        assert_eq!(v.invariant, ELECTION_SAFETY);
    }

    #[test]
    fn conflicting_writes_at_one_index_and_term_break_log_matching() {
        let mut c = Checker::new(2, 0);
        c.check_appended(1, Some(1), &[ent(3, 2, "a"), ent(4, 2, "b")])
            .unwrap();
        c.check_appended(2, Some(1), &[ent(3, 2, "a")]).unwrap();
        assert_eq!(
            c.check_appended(3, Some(1), &[ent(3, 2, "x")])
                .unwrap_err()
                .invariant,
            LOG_MATCHING
        );
        assert_eq!(
            c.check_appended(3, Some(2), &[ent(3, 2, "a")])
                .unwrap_err()
                .invariant,
            LOG_MATCHING
        );
    }

    #[test]
    fn applying_a_different_entry_breaks_state_machine_safety() {
        let mut c = Checker::new(2, 7);
        let h = c.observe_apply(1, 2, 2, 7, &ent(3, 2, "a")).unwrap();
        assert_eq!(c.committed_index(), 3);
        assert_eq!(c.observe_apply(2, 2, 2, 7, &ent(3, 2, "a")).unwrap(), h);
        let v = c.observe_apply(3, 2, 2, 7, &ent(3, 2, "b")).unwrap_err();
        assert_eq!(v.invariant, STATE_MACHINE_SAFETY);
        let v = c.observe_apply(3, 2, 3, h, &ent(5, 2, "b")).unwrap_err();
        assert_eq!(v.invariant, STATE_MACHINE_SAFETY);
    }

    #[test]
    fn stale_read_breaks_linearizability() {
        let mut c = Checker::new(2, 0);
        c.register_read(9, 1, 10);
        c.check_read(1, 9, 10).unwrap();
        assert_eq!(
            c.check_read(1, 9, 9).unwrap_err().invariant,
            LINEARIZABLE_READS
        );
    }

    struct VecLog(Vec<(u64, u64)>); // (term, hash) from index 3
    impl LogView for VecLog {
        fn first_known(&self) -> u64 {
            3
        }
        fn last_index(&self) -> u64 {
            2 + self.0.len() as u64
        }
        fn term(&self, i: u64) -> Option<u64> {
            self.0.get((i as usize).checked_sub(3)?).map(|x| x.0)
        }
        fn entry_hash(&self, i: u64) -> Option<u64> {
            self.0.get((i as usize).checked_sub(3)?).map(|x| x.1)
        }
    }

    #[test]
    fn a_leader_missing_a_committed_entry_breaks_completeness() {
        let mut c = Checker::new(2, 0);
        let e = ent(3, 1, "a");
        c.observe_apply(1, 1, 2, 0, &e).unwrap();
        let good = VecLog(vec![(1, entry_hash(&e))]);
        c.check_leader(2, 2, 0, &good).unwrap();
        let bad = VecLog(vec![]);
        assert_eq!(
            c.check_leader(3, 3, 0, &bad).unwrap_err().invariant,
            LEADER_COMPLETENESS
        );
        // A leader of the term the entry was observed in is not required
        // to hold it by this check (it may be a stale leader's peer).
        c.check_leader(4, 1, 0, &bad).unwrap();
    }

    #[test]
    fn a_leader_committing_an_older_terms_entry_breaks_the_commitment_rule() {
        let mut c = Checker::new(2, 0);
        // Entries 3 (term 1) and 4 (term 2); the leader of term 2 starts
        // with commit 2.
        let log = VecLog(vec![(1, 5), (2, 6)]);
        c.check_leader(1, 2, 2, &log).unwrap();
        assert_eq!(
            c.check_leader(1, 2, 3, &log).unwrap_err().invariant,
            COMMITMENT_RULE
        );
        let mut c = Checker::new(2, 0);
        c.check_leader(1, 2, 2, &log).unwrap();
        c.check_leader(1, 2, 4, &log).unwrap();
    }

    #[test]
    fn a_second_vote_in_a_term_is_caught() {
        let mut c = Checker::new(2, 0);
        c.observe_vote(1, 3, 1).unwrap();
        c.observe_vote(1, 3, 1).unwrap();
        c.observe_vote(1, 4, 2).unwrap();
        c.observe_vote(2, 3, 2).unwrap();
        assert_eq!(
            c.observe_vote(1, 3, 2).unwrap_err().invariant,
            ONE_VOTE_PER_TERM
        );
    }

    #[test]
    fn a_commit_index_on_an_entry_the_leader_lacks_is_caught() {
        let c = Checker::new(2, 0);
        let leader = VecLog(vec![(1, 5), (2, 6), (2, 7)]);
        let follower = VecLog(vec![(1, 5), (1, 8), (1, 9)]);
        c.check_commit_in_leader_log(2, 3, &follower, 1, &leader)
            .unwrap();
        assert_eq!(
            c.check_commit_in_leader_log(2, 4, &follower, 1, &leader)
                .unwrap_err()
                .invariant,
            COMMIT_IN_LEADER_LOG
        );
        // Beyond the leader's log.
        let longer = VecLog(vec![(1, 5), (2, 6), (2, 7), (2, 10)]);
        assert_eq!(
            c.check_commit_in_leader_log(2, 6, &longer, 1, &leader)
                .unwrap_err()
                .invariant,
            COMMIT_IN_LEADER_LOG
        );
    }

    #[test]
    fn probing_anywhere_but_right_after_a_held_hint_is_caught() {
        let c = Checker::new(2, 0);
        // Rejected at 9, the follower holds 5 at term 2, as the leader does.
        c.check_probe(1, 2, 9, (5, 2), Some(2), 0, (6, true))
            .unwrap();
        for bad in [(5, true), (7, true), (6, false)] {
            assert_eq!(
                c.check_probe(1, 2, 9, (5, 2), Some(2), 0, bad)
                    .unwrap_err()
                    .invariant,
                PROBE_FROM_HINT
            );
        }
        // A hint the leader's log does not hold says nothing.
        c.check_probe(1, 2, 9, (5, 2), Some(3), 0, (3, true))
            .unwrap();
    }

    #[test]
    fn a_leader_losing_entries_breaks_append_only() {
        let mut c = Checker::new(2, 0);
        c.check_leader(1, 2, 0, &VecLog(vec![(2, 5), (2, 6)]))
            .unwrap();
        c.check_leader(1, 2, 0, &VecLog(vec![(2, 5), (2, 6), (2, 7)]))
            .unwrap();
        assert_eq!(
            c.check_leader(1, 2, 0, &VecLog(vec![(2, 5), (2, 6)]))
                .unwrap_err()
                .invariant,
            LEADER_APPEND_ONLY
        );
    }
}
