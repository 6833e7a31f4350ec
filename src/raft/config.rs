//! `Config`: the parameters of one Raft node, validated before use.

use super::errors::{Error, Result};

/// How read-only requests are answered (see `RawNode::read_index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadOnlyOption {
    /// Confirm leadership with a heartbeat round before answering: always
    /// linearizable.
    #[default]
    Safe,
    /// Answer from the leader's lease when it holds (no round trip),
    /// otherwise confirm with a heartbeat round as `Safe` does. Requires
    /// `check_quorum`. Linearizable as long as the members' tick counts
    /// differ by at most `Config::max_clock_drift_ticks` over any span in
    /// which one of them counts `election_tick` ticks (see `lease.rs`).
    LeaseBased,
}

/// No limit: used for the size and count limits that may be unbounded.
pub const NO_LIMIT: u64 = u64::MAX;

/// Deliberate bugs, each breaking one Raft rule, so that the simulator can
/// show it catches them (tools/sim/tests/bugs.rs). Compiled only with the
/// `--cfg corelog_sim_bugs` flag (never a feature: see the workspace
/// Cargo.toml); all off by default.
#[cfg(corelog_sim_bugs)]
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Grant votes without comparing logs (Raft §5.4.1).
    pub vote_ignores_log: bool,
    /// Commit an entry of an earlier term by counting replicas (§5.4.2).
    pub commit_any_term: bool,
    /// Leave a vote out of the Ready's hard state when the term did not
    /// change: the grant is sent but not persisted.
    pub unsynced_vote: bool,
    /// Answer ReadIndex without confirming leadership, even in Safe mode.
    pub read_without_quorum: bool,
    /// A follower raises its commit index on MsgApp to the leader's commit
    /// capped by its own last index, not by the last entry the message
    /// matched: a divergent suffix gets committed.
    pub follower_commit_to_last_index: bool,
    /// The leader's heartbeat carries its commit index uncapped by the
    /// follower's match, so the follower commits beyond its matched prefix.
    pub heartbeat_commit_beyond_match: bool,
    /// A new leader does not append the empty entry of its term, so it
    /// commits nothing (and answers no read) until a proposal comes.
    pub leader_skips_empty_entry: bool,
    /// After a rejection, probing steps the next index one entry further
    /// back than the follower's hint allows.
    pub probe_one_too_far: bool,
    /// A follower given a snapshot whose index its log holds at another
    /// term keeps its conflicting log and commits up to the snapshot index.
    pub restore_keeps_conflicting_log: bool,
    /// A node clears its vote when it becomes follower in the same term,
    /// so it can vote twice in one term.
    pub vote_cleared_without_term_change: bool,
    /// Answer lease-based reads at once, whether the lease holds or not
    /// (etcd-raft's lease reads).
    pub lease_always_holds: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// This node's id; never 0.
    pub id: u64,
    /// Ticks without hearing from a leader before a follower campaigns. The
    /// real timeout is randomized in [election_tick, 2 * election_tick).
    pub election_tick: usize,
    /// Ticks between a leader's heartbeats; less than `election_tick`.
    pub heartbeat_tick: usize,
    /// The last applied index, when restarting.
    pub applied: u64,
    /// Byte limit of the entries in one MsgApp (at least one entry is sent).
    pub max_size_per_msg: u64,
    /// Byte limit of the committed entries in one Ready; 0 means
    /// `max_size_per_msg`.
    pub max_committed_size_per_ready: u64,
    /// Byte limit of the leader's uncommitted tail; proposals beyond it are
    /// dropped. 0 means no limit.
    pub max_uncommitted_entries_size: u64,
    /// Count limit of in-flight MsgApp per follower in Replicate state.
    pub max_inflight_msgs: usize,
    /// Byte limit of in-flight MsgApp payload per follower; 0 means no limit.
    pub max_inflight_bytes: u64,
    /// A leader steps down when it has not heard from a quorum for an
    /// election timeout.
    pub check_quorum: bool,
    /// Run a pre-election before a real one, so a partitioned node does not
    /// disrupt the cluster by raising its term.
    pub pre_vote: bool,
    pub read_only_option: ReadOnlyOption,
    /// The clock-drift bound of lease-based reads, in ticks: over any span
    /// of time in which one member counts `election_tick` ticks, every
    /// other member counts at least `election_tick -
    /// max_clock_drift_ticks`. A leader's lease lasts `election_tick -
    /// max_clock_drift_ticks` ticks from the heartbeat a quorum
    /// acknowledged. The default, 1, covers members whose tickers run at
    /// the same rate with any phase between them; add the rate difference
    /// over an election timeout on top. Less than `election_tick`; at
    /// least 1 under `ReadOnlyOption::LeaseBased`.
    pub max_clock_drift_ticks: usize,
    /// Followers drop proposals instead of forwarding them to the leader.
    pub disable_proposal_forwarding: bool,
    /// A leader that removes itself steps down when the change applies.
    pub step_down_on_removal: bool,
    /// Skip the leader's checks of a proposed conf change (pending change,
    /// joint state); the application then guarantees them.
    pub disable_conf_change_validation: bool,
    /// Seed of the core's own PRNG (randomized election timeouts); the core
    /// reads no global randomness so that runs replay exactly. 0 means
    /// "derive from `id`".
    pub random_seed: u64,
    /// etcd's AsyncStorageWrites: each `Ready` hands its storage work out as
    /// `MsgStorageAppend` / `MsgStorageApply` messages to the local append
    /// and apply threads, whose responses the driver steps back once the
    /// work is done; `advance` is not used, and further `Ready`s may be
    /// taken while writes are in flight (see `RawNode`).
    pub async_storage_writes: bool,
    #[cfg(corelog_sim_bugs)]
    #[doc(hidden)]
    pub bugs: Bugs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 0,
            election_tick: 10,
            heartbeat_tick: 1,
            applied: 0,
            max_size_per_msg: 1024 * 1024,
            max_committed_size_per_ready: 0,
            max_uncommitted_entries_size: 0,
            max_inflight_msgs: 256,
            max_inflight_bytes: 0,
            check_quorum: false,
            pre_vote: false,
            read_only_option: ReadOnlyOption::Safe,
            max_clock_drift_ticks: 1,
            disable_proposal_forwarding: false,
            step_down_on_removal: false,
            disable_conf_change_validation: false,
            random_seed: 0,
            async_storage_writes: false,
            #[cfg(corelog_sim_bugs)]
            bugs: Bugs::default(),
        }
    }
}

impl Config {
    pub fn new(id: u64) -> Self {
        Config {
            id,
            ..Default::default()
        }
    }

    /// Checks the config and resolves the "0 means ..." defaults.
    pub fn validate(&mut self) -> Result<()> {
        fn invalid(field: &'static str, reason: &str) -> Result<()> {
            Err(Error::ConfigInvalid {
                field,
                reason: reason.to_string(),
            })
        }
        if self.id == 0 {
            return invalid("id", "0 is reserved for \"no node\"");
        }
        if self.heartbeat_tick == 0 {
            return invalid("heartbeat_tick", "must be greater than 0");
        }
        if self.election_tick <= self.heartbeat_tick {
            return invalid("election_tick", "must be greater than heartbeat_tick");
        }
        if self.max_uncommitted_entries_size == 0 {
            self.max_uncommitted_entries_size = NO_LIMIT;
        }
        if self.max_committed_size_per_ready == 0 {
            self.max_committed_size_per_ready = self.max_size_per_msg;
        }
        if self.max_inflight_msgs == 0 {
            return invalid("max_inflight_msgs", "must be greater than 0");
        }
        if self.max_inflight_bytes == 0 {
            self.max_inflight_bytes = NO_LIMIT;
        } else if self.max_inflight_bytes < self.max_size_per_msg {
            return invalid("max_inflight_bytes", "must be at least max_size_per_msg");
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && !self.check_quorum {
            return invalid(
                "read_only_option",
                "LeaseBased requires check_quorum to be enabled",
            );
        }
        if self.max_clock_drift_ticks >= self.election_tick {
            return invalid(
                "max_clock_drift_ticks",
                "must be less than election_tick (a lease would never hold)",
            );
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && self.max_clock_drift_ticks == 0 {
            return invalid(
                "max_clock_drift_ticks",
                "must be at least 1 under LeaseBased (tickers of one rate differ by their phase)",
            );
        }
        if self.random_seed == 0 {
            self.random_seed = self.id;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(c: Config) -> &'static str {
        let mut c = c;
        match c.validate() {
            Err(Error::ConfigInvalid { field, .. }) => field,
            other => panic!("expected ConfigInvalid, got {other:?}"),
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        assert_eq!(field_of(Config::default()), "id");
        let base = Config::new(1);
        assert_eq!(
            field_of(Config {
                heartbeat_tick: 0,
                ..base.clone()
            }),
            "heartbeat_tick"
        );
        assert_eq!(
            field_of(Config {
                election_tick: 1,
                heartbeat_tick: 1,
                ..base.clone()
            }),
            "election_tick"
        );
        assert_eq!(
            field_of(Config {
                max_inflight_msgs: 0,
                ..base.clone()
            }),
            "max_inflight_msgs"
        );
        assert_eq!(
            field_of(Config {
                max_inflight_bytes: 1,
                ..base.clone()
            }),
            "max_inflight_bytes"
        );
        assert_eq!(
            field_of(Config {
                read_only_option: ReadOnlyOption::LeaseBased,
                ..base.clone()
            }),
            "read_only_option"
        );
        assert_eq!(
            field_of(Config {
                max_clock_drift_ticks: 10,
                ..base.clone()
            }),
            "max_clock_drift_ticks"
        );
        // Two tickers at one rate can differ by a tick over any span: a
        // lease-based read needs at least that much margin.
        assert_eq!(
            field_of(Config {
                read_only_option: ReadOnlyOption::LeaseBased,
                check_quorum: true,
                max_clock_drift_ticks: 0,
                ..base
            }),
            "max_clock_drift_ticks"
        );
    }

    #[test]
    fn zero_limits_resolve_to_defaults() {
        let mut c = Config::new(7);
        c.validate().unwrap();
        assert_eq!(c.max_uncommitted_entries_size, NO_LIMIT);
        assert_eq!(c.max_committed_size_per_ready, c.max_size_per_msg);
        assert_eq!(c.max_inflight_bytes, NO_LIMIT);
        assert_eq!(c.random_seed, 7);
    }
}
