//! The simulation loop: one seed, one history.
//!
//! A run bootstraps a cluster from the seed's parameters, then takes
//! `steps` steps, each one action drawn from the seeded `Rng` (deliver,
//! drop, duplicate, delay or reorder a message; cut or heal links; crash or
//! restart a node; tick; propose; read; transfer leadership; change the
//! membership; compact a log; handle a node's Ready; with asynchronous
//! storage writes, complete a node's oldest queued write or apply). After
//! every step the
//! checker's invariants are checked. Every few hundred steps, and at the
//! end, the faults stop and the network heals (a calm phase): a leader must
//! then be elected, answer a read before any proposal, and commit a
//! proposal within `Options::liveness_timeouts` election timeouts.
//!
//! A quarter of the seeds (those for which `seed_runs_async` says so), and
//! every seed with `Options::async_writes`, run every node with etcd's
//! asynchronous storage writes: a Ready's storage work is queued on the
//! node's append and apply "threads", whose completions are separate random
//! steps, delayed and reordered against network deliveries, and a crash
//! loses the queued writes.
//!
//! Nothing here reads a clock, the environment or global randomness, and
//! every collection iterated is ordered: the run is a pure function of the
//! seed and the options.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use corelog::raft::{
    Config, LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, MemStorage, ReadOnlyOption, SnapshotStatus,
    StateType, is_local_msg_target,
};
use corelog::raftpb::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
    Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata,
};
use prost::Message as _;

use crate::checker::{self, Check, Checker, Violation};
use crate::clock::Clocks;
use crate::event::{Event, EventLog, MsgSummary};
use crate::net::Net;
use crate::node::{App, Down, Held, RaftLogView, SimNode, StoreView, Vouch, snap_meta, state_name};
use crate::rng::Rng;
use crate::store::{SimStore, StoreError, is_out_of_date};
use crate::wal_run::{WalFlush, WalRun};
use crate::wal_store::{RecoverError, WalStore};

/// The bootstrap snapshot's index: the initial configuration is a snapshot
/// at (index 2, term 1), as etcd's interaction tests bootstrap (index 1
/// does not play well with a storage whose dummy entry is at 0).
pub const BOOT_INDEX: u64 = 2;
/// The state machine's hash at the bootstrap index.
pub const BOOT_HASH: u64 = 0x5eed_5eed_5eed_5eed;
/// Most nodes a configuration may hold (voters and learners).
pub const MAX_MEMBERS: usize = 7;
/// The calm loop of one tick stops after this many deliveries even if
/// messages keep coming: a bound against a message storm.
const CALM_DELIVERIES_PER_TICK: usize = 20_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Steps of the faulty phase (calm phases come on top).
    pub steps: u64,
    /// Keep every event (for a replay's full log), not only the last ones.
    pub keep_all_events: bool,
    /// How many of the last events a failure report shows.
    pub tail: usize,
    /// Adjusts every node's `Config` after the simulator has set it up: the
    /// hook through which tests turn on deliberate bugs.
    pub config_hook: Option<fn(&mut Config)>,
    /// Calm phases must elect a leader and commit a proposal within this
    /// many ticks, in multiples of the election timeout.
    pub liveness_timeouts: u64,
    /// Seeds that draw CheckQuorum answer reads from the leader lease
    /// (ReadOnlyOption::LeaseBased), and every node ticks at its own rate
    /// within the drift bound the nodes are configured with (`clock.rs`).
    /// Off by default, so that the default histories stay those of the
    /// long runs; `tests/seeds.rs` runs a share of seeds with it.
    pub lease_reads: bool,
    /// Run every node with asynchronous storage writes, whatever the seed
    /// (otherwise only the seeds `seed_runs_async` picks do).
    pub async_writes: bool,
    /// What every node stores its log on (`--storage mem|wal`).
    pub storage: StorageKind,
    /// `--storage wal`: which path each flush takes (`--wal-flush`).
    pub wal_flush: WalFlush,
    /// Adjusts every node's WAL options (`--storage wal`) after the
    /// simulator has drawn them: the hook through which tests turn on the
    /// WAL's deliberate bugs.
    pub wal_hook: Option<fn(&mut corelog::wal::Options)>,
    /// Deliberate bugs of the simulator's own driver (`--storage wal`).
    #[cfg(corelog_sim_bugs)]
    pub driver_bugs: DriverBugs,
}

/// How `Sim::start_wal_flush` went.
enum Started {
    /// The flush that makes everything queued durable (started on the
    /// ring, or done inline: the `bool`).
    Flush(u64, bool),
    /// A power loss cut the inline flush: the node is down.
    Cut,
    /// The WAL failed (an I/O error): the caller stops the node.
    Failed(StoreError),
}

/// What the nodes of a run store their logs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// `MemStorage`: a perfect disk holding what was written before
    /// `advance` (the default, and the histories of the long runs).
    Mem,
    /// corelog's WAL on a simulated disk with faults (wal_store.rs).
    Wal,
}

/// Deliberate bugs of the driver, to show the simulator catches a driver
/// that breaks the WAL's contract. Compiled only under
/// `--cfg corelog_sim_bugs`.
#[cfg(corelog_sim_bugs)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DriverBugs {
    /// Send a Ready's messages (MsgAppResp and vote responses included)
    /// before the flush carrying its writes is durable.
    pub ack_before_flush: bool,
}

/// Mixed into the seed for the asynchronous-writes draw. Chosen so that
/// the seeds named by regression tests (7107, 7142, 7257 and 6074 in
/// tests/regressions.rs; 1811 and 2361 of `--lease-reads`) stay
/// synchronous and keep the histories they were found with.
const ASYNC_SALT: u64 = 0xa5f0_57a6_e000_0006;

/// Whether `seed` runs with asynchronous storage writes without being
/// forced to: when `splitmix64(seed ^ ASYNC_SALT) % 4 == 0`, about one seed
/// in four (24.9% of seeds 0..100,000). Drawn apart from the run's own
/// stream, so that the other seeds' histories are exactly those of a
/// simulator without the mode.
pub fn seed_runs_async(seed: u64) -> bool {
    let mut x = seed ^ ASYNC_SALT;
    crate::rng::splitmix64(&mut x) % 4 == 0
}

impl Options {
    pub fn new(seed: u64, steps: u64) -> Options {
        Options {
            seed,
            steps,
            keep_all_events: false,
            tail: 40,
            config_hook: None,
            // Elections succeed with some probability per timeout, so any
            // bound is a trade: the slowest of 100,000 seeds took 39.4
            // timeouts (seed 22798: without PreVote, a node with a stale
            // log kept starting elections it could not win, and resetting
            // the others' timers). A stuck cluster fails any bound.
            liveness_timeouts: 100,
            lease_reads: false,
            async_writes: false,
            storage: StorageKind::Mem,
            wal_flush: WalFlush::Seed,
            wal_hook: None,
            #[cfg(corelog_sim_bugs)]
            driver_bugs: DriverBugs::default(),
        }
    }
}

/// The parameters drawn for one seed: cluster shape, core configuration and
/// how hostile the environment is.
#[derive(Debug, Clone)]
pub struct Params {
    pub voters: u64,
    pub learners: u64,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub step_down_on_removal: bool,
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
    /// Scales the weights of faults (0 = a reliable network, no crashes).
    pub fault_level: u64,
    /// Steps between calm phases.
    pub calm_every: u64,
}

impl Params {
    fn draw(rng: &mut Rng) -> Params {
        let voters = *[3, 3, 3, 4, 5, 5, 7]
            .get(rng.below(7) as usize)
            .expect("index below len");
        let learners = if voters < 7 && rng.chance(1, 3) { 1 } else { 0 };
        let election_tick = rng.range(4, 10) as usize;
        let heartbeat_tick = if rng.chance(1, 4) { 2 } else { 1 };
        Params {
            voters,
            learners,
            election_tick,
            heartbeat_tick,
            pre_vote: rng.chance(1, 2),
            check_quorum: rng.chance(1, 2),
            step_down_on_removal: rng.chance(1, 2),
            max_size_per_msg: *[64u64, 256, 4096, 1 << 20]
                .get(rng.below(4) as usize)
                .expect("index below len"),
            max_inflight_msgs: *[1usize, 2, 4, 256]
                .get(rng.below(4) as usize)
                .expect("index below len"),
            fault_level: rng.range(0, 4),
            calm_every: rng.range(250, 700),
        }
    }
}

/// How a run ended badly: the broken invariant, the step, and the events
/// that led there.
#[derive(Debug, Clone)]
pub struct Failure {
    pub violation: Violation,
    pub step: u64,
    pub tick: u64,
    pub tail: Vec<String>,
}

/// Counters of what a run exercised, so a sweep can show that the faults
/// and features it claims to test actually happened.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub ticks: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub leaders: u64,
    pub committed: u64,
    pub reads_answered: u64,
    pub conf_changes_applied: u64,
    pub snapshots_applied: u64,
    pub compactions: u64,
    pub transfers: u64,
    pub calms: u64,
    /// The longest a calm phase took to elect a leader and commit.
    pub max_liveness_ticks: u64,
    /// Runs wedged by a membership change (see `Sim::calm`).
    pub wedged: u64,
    /// Steps during which two nodes both believed they led (in different
    /// terms): the histories where stale reads and lost writes hide.
    pub two_leader_steps: u64,
    /// Runs with asynchronous storage writes.
    pub async_runs: u64,
    /// Writes (`MsgStorageAppend`) completed by append threads.
    pub storage_appends: u64,
    /// Applies (`MsgStorageApply`) completed by apply threads.
    pub storage_applies: u64,
    /// Queued writes a crash lost before they were completed.
    pub lost_writes: u64,
    /// Runs with lease-based reads, each node ticking at its own rate.
    pub lease_runs: u64,
    /// Of those, runs whose drift bound let the rates differ (2 ticks or
    /// more per election timeout; 1 is the phase between tickers alone).
    pub drifting_runs: u64,
    /// Reads asked of a leader whose lease held: answered at once, from
    /// the lease (the others take a heartbeat round).
    pub lease_reads_held: u64,
    /// `--storage wal`: runs on the WAL, and what their disks and WALs did.
    pub wal_runs: u64,
    pub flushes: u64,
    /// Flushes run inline, and inline flushes cut by a power loss.
    pub inline_flushes: u64,
    pub inline_cuts: u64,
    /// Messages that waited for a flush before they were sent.
    pub held_msgs: u64,
    /// Restarts through WAL recovery.
    pub recoveries: u64,
    /// WAL failures (I/O errors: the node stopped and restarted later).
    pub wal_failures: u64,
    /// Restarts refused by an I/O error (tried again later).
    pub recovery_io_errors: u64,
    /// Nodes down for good: their WAL reported corruption it could not
    /// repair (on a disk that lost synced data).
    pub corruption_detected: u64,
    /// Nodes whose disk lost synced data that recovery could not tell from
    /// a torn write (what they had vouched for was gone): kept down for
    /// good, counted apart.
    pub undetected_losses: u64,
    /// Segments the WALs created beyond the first (rolls), and segments GC
    /// removed.
    pub segment_rolls: u64,
    pub segments_freed: u64,
    /// The disks' fault counters, summed (`FaultCounts`).
    pub disk_crashes: u64,
    pub torn_writes: u64,
    pub written_back_sectors: u64,
    pub unsynced_sectors_lost: u64,
    pub sync_errors: u64,
    pub enospc: u64,
    pub bit_flips: u64,
    pub misdirected_writes: u64,
    /// Writes of an append thread refused for lack of room (kept and tried
    /// again; the WAL not poisoned), and writes that then went through.
    pub no_space_waits: u64,
    pub no_space_recoveries: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.ticks += o.ticks;
        self.delivered += o.delivered;
        self.dropped += o.dropped;
        self.duplicated += o.duplicated;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.leaders += o.leaders;
        self.committed += o.committed;
        self.reads_answered += o.reads_answered;
        self.conf_changes_applied += o.conf_changes_applied;
        self.snapshots_applied += o.snapshots_applied;
        self.compactions += o.compactions;
        self.transfers += o.transfers;
        self.calms += o.calms;
        self.max_liveness_ticks = self.max_liveness_ticks.max(o.max_liveness_ticks);
        self.wedged += o.wedged;
        self.two_leader_steps += o.two_leader_steps;
        self.async_runs += o.async_runs;
        self.storage_appends += o.storage_appends;
        self.storage_applies += o.storage_applies;
        self.lost_writes += o.lost_writes;
        self.lease_runs += o.lease_runs;
        self.drifting_runs += o.drifting_runs;
        self.lease_reads_held += o.lease_reads_held;
        self.wal_runs += o.wal_runs;
        self.inline_flushes += o.inline_flushes;
        self.inline_cuts += o.inline_cuts;
        self.flushes += o.flushes;
        self.held_msgs += o.held_msgs;
        self.recoveries += o.recoveries;
        self.wal_failures += o.wal_failures;
        self.recovery_io_errors += o.recovery_io_errors;
        self.corruption_detected += o.corruption_detected;
        self.undetected_losses += o.undetected_losses;
        self.segment_rolls += o.segment_rolls;
        self.segments_freed += o.segments_freed;
        self.disk_crashes += o.disk_crashes;
        self.torn_writes += o.torn_writes;
        self.written_back_sectors += o.written_back_sectors;
        self.unsynced_sectors_lost += o.unsynced_sectors_lost;
        self.sync_errors += o.sync_errors;
        self.enospc += o.enospc;
        self.bit_flips += o.bit_flips;
        self.misdirected_writes += o.misdirected_writes;
        self.no_space_waits += o.no_space_waits;
        self.no_space_recoveries += o.no_space_recoveries;
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    pub steps: u64,
    pub params: Params,
    /// The run used asynchronous storage writes.
    pub async_writes: bool,
    pub events: u64,
    /// Hash of the whole event log: equal for identical histories.
    pub event_hash: u64,
    pub failure: Option<Failure>,
    pub stats: Stats,
    /// Every event, if `keep_all_events`.
    pub log: Option<Vec<String>>,
    /// The command that replays this run (without any config hook).
    pub replay: String,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The actions a step chooses among.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Deliver,
    Reorder,
    Ready,
    Tick,
    TickOne,
    Propose,
    Read,
    Drop,
    Duplicate,
    Delay,
    Partition,
    Heal,
    Crash,
    Restart,
    Transfer,
    ConfChange,
    Compact,
    /// Asynchronous storage writes: a node's append thread completes its
    /// oldest queued write.
    StorageAppend,
    /// Asynchronous storage writes: a node's apply thread completes its
    /// oldest queued apply.
    StorageApply,
    /// Asynchronous storage writes: a node's disk stalls; its append thread
    /// completes nothing for a while, so its writes pile up in flight.
    StallDisk,
    /// `--storage wal`: a node's disk completes (or fails) the flush in
    /// flight, if it is done with it; the messages waiting for it go out.
    DiskPoll,
    /// `--storage wal`: a node's disk fills up (ENOSPC until it restarts).
    DiskFull,
}

// The storage actions come last: with their weights at 0 (synchronous
// runs) every other action is drawn exactly as before they existed.
const ACTIONS: [Action; 22] = [
    Action::Deliver,
    Action::Reorder,
    Action::Ready,
    Action::Tick,
    Action::TickOne,
    Action::Propose,
    Action::Read,
    Action::Drop,
    Action::Duplicate,
    Action::Delay,
    Action::Partition,
    Action::Heal,
    Action::Crash,
    Action::Restart,
    Action::Transfer,
    Action::ConfChange,
    Action::Compact,
    Action::StorageAppend,
    Action::StorageApply,
    Action::StallDisk,
    Action::DiskPoll,
    Action::DiskFull,
];

pub struct Sim {
    opts: Options,
    params: Params,
    rng: Rng,
    now: u64,
    step: u64,
    nodes: BTreeMap<u64, SimNode>,
    /// Ids that left the configuration: never started again, never re-added.
    retired: BTreeSet<u64>,
    next_id: u64,
    net: Net,
    checker: Checker,
    log: EventLog,
    next_prop: u64,
    next_read: u64,
    /// The index of the newest configuration change applied anywhere: older
    /// ones, applied late by a lagging node, say nothing new about who is a
    /// member.
    latest_conf_index: u64,
    /// Membership changes to act on once the current Ready is handled.
    pending_conf: Option<ConfState>,
    /// The members of the newest configuration.
    members: BTreeSet<u64>,
    /// Removed nodes still running, with the index of the change that
    /// removed them: they are retired once every member has committed it.
    leaving: Vec<(u64, u64)>,
    /// What the last handled Ready did: (granted a vote, a leader appended
    /// entries). Crashes are aimed at those moments (see
    /// `maybe_crash_after_ready`).
    last_ready: (bool, bool, bool),
    /// Lease-based reads (`Options::lease_reads` and CheckQuorum drawn).
    lease_reads: bool,
    /// Every node uses asynchronous storage writes.
    async_writes: bool,
    /// Each node's tick rate, under lease-based reads; otherwise all nodes
    /// tick together (and `TickOne` skews them).
    clocks: Option<Clocks>,
    /// `--storage wal`: the WALs' parameters and the disks' faults.
    wal: Option<WalRun>,
    /// When the current partitions heal by themselves.
    heal_at: Option<u64>,
    /// A membership change wedged the cluster (see `calm`): liveness is no
    /// longer checked.
    wedged: bool,
    /// In a calm phase: proposals numbered from here are liveness markers.
    marker_floor: Option<u64>,
    marker_applied: bool,
    /// In a calm phase: the read asked of the current leader before any
    /// proposal (see `calm_read`).
    calm_read: Option<CalmRead>,
    stats: Stats,
}

/// The read of a calm phase: asked of `leader` at `term` at tick `since`.
#[derive(Debug, Clone, Copy)]
struct CalmRead {
    leader: u64,
    term: u64,
    ctx: u64,
    since: u64,
    answered: bool,
}

/// How long, in election timeouts, the calm phase's read may wait at one
/// leader: the rules need one commit of the leader's term (its empty entry,
/// which a quorum of a healed network acknowledges within a few round
/// trips, some of them delayed) and one heartbeat round.
const READ_WAIT_TIMEOUTS: u64 = 20;

/// A leader's probe rejected, as `Sim::probe_rejection` found it.
struct ProbeRejection {
    leader: u64,
    follower: u64,
    rejected: u64,
    hint: (u64, u64),
    leader_term_at_hint: Option<u64>,
    matched: u64,
}

/// Liveness markers are proposals whose payload starts with this byte;
/// ordinary proposals start with `P`.
const MARKER: u8 = b'M';

fn ctx_bytes(ctx: u64) -> Bytes {
    Bytes::copy_from_slice(&ctx.to_be_bytes())
}

fn ctx_of(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

fn core_error(detail: String) -> Violation {
    Violation {
        invariant: checker::CORE_ERROR,
        detail,
    }
}

fn ccs_to_string(ccs: &[ConfChangeSingle]) -> String {
    let mut s = String::new();
    for cc in ccs {
        if !s.is_empty() {
            s.push(' ');
        }
        let p = match ConfChangeType::try_from(cc.r#type) {
            Ok(ConfChangeType::ConfChangeAddNode) => 'v',
            Ok(ConfChangeType::ConfChangeRemoveNode) => 'r',
            Ok(ConfChangeType::ConfChangeAddLearnerNode) => 'l',
            _ => 'u',
        };
        s.push(p);
        s.push_str(&cc.node_id.to_string());
    }
    s
}

fn single(t: ConfChangeType, id: u64) -> ConfChangeSingle {
    ConfChangeSingle {
        r#type: t as i32,
        node_id: id,
    }
}

impl Sim {
    pub fn new(opts: Options) -> Sim {
        let mut rng = Rng::new(opts.seed);
        let params = Params::draw(&mut rng);
        let log = EventLog::new(opts.tail, opts.keep_all_events);
        let lease_reads = opts.lease_reads && params.check_quorum;
        let async_writes = opts.async_writes || seed_runs_async(opts.seed);
        let clocks = lease_reads.then(|| Clocks::draw(&mut rng, params.election_tick as u64));
        let wal = (opts.storage == StorageKind::Wal)
            .then(|| WalRun::draw(opts.seed, params.voters, opts.wal_hook, opts.wal_flush));
        Sim {
            wal,
            opts,
            params,
            rng,
            now: 0,
            step: 0,
            nodes: BTreeMap::new(),
            retired: BTreeSet::new(),
            next_id: 1,
            net: Net::new(),
            checker: Checker::new(BOOT_INDEX, BOOT_HASH),
            log,
            next_prop: 0,
            next_read: 0,
            latest_conf_index: 0,
            pending_conf: None,
            members: BTreeSet::new(),
            leaving: Vec::new(),
            wedged: false,
            heal_at: None,
            lease_reads,
            async_writes,
            clocks,
            last_ready: (false, false, false),
            marker_floor: None,
            marker_applied: false,
            calm_read: None,
            stats: Stats::default(),
        }
    }

    fn ev(&mut self, e: Event) {
        self.log.push(self.step, e);
    }

    /// Runs the whole history and reports it. A panic inside the core (or
    /// the simulator) is a failure of the run, not of the caller.
    pub fn run(mut self) -> Outcome {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_inner()));
        let result = match r {
            Ok(r) => r,
            Err(payload) => {
                let msg = crate::panic_message(&*payload);
                Err(Violation {
                    invariant: checker::CORE_PANIC,
                    detail: msg,
                })
            }
        };
        let failure = result.err().map(|violation| Failure {
            violation,
            step: self.step,
            tick: self.now,
            tail: self.log.tail_lines(),
        });
        self.stats.ticks = self.now;
        if let Some(c) = &self.clocks {
            self.stats.lease_runs = 1;
            self.stats.drifting_runs = u64::from(c.drift >= 2);
        }
        self.stats.committed = self.checker.committed_index();
        self.stats.async_runs = u64::from(self.async_writes);
        if let Some(w) = self.wal.as_mut() {
            for n in self.nodes.values() {
                if let Some(ws) = n.raw.as_ref().and_then(|r| r.store().as_wal()) {
                    w.note_segments(n.id, &ws.segments());
                }
            }
            let (c, rolls) = w.totals();
            let st = &mut self.stats;
            st.wal_runs = 1;
            st.segment_rolls = rolls;
            st.segments_freed = w.segments_freed.get();
            st.disk_crashes = c.crashes;
            st.torn_writes = c.torn_writes;
            st.written_back_sectors = c.written_back_sectors;
            st.unsynced_sectors_lost = c.unsynced_sectors_lost;
            st.sync_errors = c.sync_errors;
            st.enospc = c.enospc;
            st.bit_flips = c.bit_flips;
            st.misdirected_writes = c.misdirected_writes;
        }
        Outcome {
            seed: self.opts.seed,
            steps: self.step,
            params: self.params.clone(),
            async_writes: self.async_writes,
            events: self.log.count(),
            event_hash: self.log.hash(),
            failure,
            replay: crate::replay_command(
                self.opts.seed,
                self.opts.steps,
                self.opts.lease_reads,
                self.opts.async_writes,
                self.opts.storage == StorageKind::Wal,
            ),
            stats: self.stats.clone(),
            log: self.log.all.as_ref().map(|all| {
                all.iter()
                    .map(|(step, e, detail)| match detail {
                        Some(d) => {
                            format!("step {step}: {e:?}\n        {}", crate::event::indent(d))
                        }
                        None => format!("step {step}: {e:?}"),
                    })
                    .collect()
            }),
        }
    }

    fn run_inner(&mut self) -> Check {
        self.bootstrap()?;
        let mut next_calm = self.params.calm_every;
        while self.step < self.opts.steps {
            self.step += 1;
            if self.step >= next_calm {
                next_calm += self.params.calm_every;
                self.calm()?;
            } else {
                self.random_step()?;
            }
            self.check_step()?;
        }
        self.calm()
    }

    /// The node's config: the seed's parameters, a fresh core seed from the
    /// run's stream, then the test hook.
    fn config(&mut self, id: u64, applied: u64) -> Config {
        let p = &self.params;
        let mut c = Config::new(id);
        c.election_tick = p.election_tick;
        c.heartbeat_tick = p.heartbeat_tick;
        c.applied = applied;
        c.max_size_per_msg = p.max_size_per_msg;
        c.max_inflight_msgs = p.max_inflight_msgs;
        c.check_quorum = p.check_quorum;
        c.pre_vote = p.pre_vote;
        c.step_down_on_removal = p.step_down_on_removal;
        // Lease-based reads are only linearizable with bounded clock drift:
        // seeds with them tick each node at its own rate within the bound
        // they are configured with, and never skew clocks beyond it
        // (TickOne).
        c.read_only_option = if self.lease_reads {
            ReadOnlyOption::LeaseBased
        } else {
            ReadOnlyOption::Safe
        };
        if let Some(clocks) = &self.clocks {
            c.max_clock_drift_ticks = clocks.drift as usize;
        }
        c.random_seed = self.rng.fork_seed();
        c.async_storage_writes = self.async_writes;
        if let Some(hook) = self.opts.config_hook {
            hook(&mut c);
        }
        c
    }

    fn bootstrap(&mut self) -> Check {
        let n = self.params.voters + self.params.learners;
        let voters: Vec<u64> = (1..=self.params.voters).collect();
        let learners: Vec<u64> = (self.params.voters + 1..=n).collect();
        self.next_id = n + 1;
        self.members = voters.iter().chain(&learners).copied().collect();
        let cs = ConfState {
            voters,
            learners,
            ..Default::default()
        };
        let app = App {
            applied: BOOT_INDEX,
            hash: BOOT_HASH,
            conf_state: cs.clone(),
        };
        let mode = if self.async_writes {
            " async-storage-writes"
        } else {
            ""
        };
        let clocks = self
            .clocks
            .as_ref()
            .map_or(String::new(), |c| format!(" clock_drift={}", c.drift));
        // (Said only when not the ring alone, so that those runs keep the
        // event log they had before the inline path.)
        let flushes = match self.wal.as_ref().map(|w| w.flush_mode()) {
            Some(WalFlush::Mixed) => " wal-flush=mixed",
            Some(WalFlush::Inline) => " wal-flush=inline",
            _ => "",
        };
        self.ev(Event::Start {
            params: format!("{:?} conf={:?}{mode}{clocks}{flushes}", self.params, cs),
        });
        for id in 1..=n {
            let boot = Snapshot {
                data: app.encode(),
                metadata: Some(SnapshotMetadata {
                    conf_state: Some(cs.clone()),
                    index: BOOT_INDEX,
                    term: 1,
                }),
            };
            let disk = self.new_store(id, Some(boot))?;
            let cfg = self.config(id, BOOT_INDEX);
            let node = SimNode::start(id, &cfg, disk, app.clone())?;
            self.nodes.insert(id, node);
        }
        Ok(())
    }

    /// A new node's storage: empty, or bootstrapped with `boot` (durable
    /// before the node starts).
    fn new_store(&mut self, id: u64, boot: Option<Snapshot>) -> Result<SimStore, Violation> {
        let Some(w) = self.wal.as_mut() else {
            let mut m = MemStorage::new();
            if let Some(b) = boot {
                m.apply_snapshot(b)
                    .map_err(|e| core_error(format!("bootstrap snapshot refused: {e:?}")))?;
            }
            return Ok(SimStore::Mem(m));
        };
        let disk = w.new_disk(id);
        let opts = w.options(id);
        let made = WalStore::create(disk, opts, w.segments_freed.clone()).and_then(|mut ws| {
            if let Some(b) = boot {
                ws.apply_snapshot(b)?;
                ws.flush()?;
            }
            Ok(ws)
        });
        let ws = made.map_err(|e| core_error(format!("node {id}: new WAL: {e}")))?;
        w.arm(id);
        Ok(SimStore::Wal(Box::new(ws)))
    }

    fn up_ids(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_up())
            .map(|n| n.id)
            .collect()
    }

    /// Nodes that are down and may be restarted (not those whose WAL was
    /// found corrupt).
    fn down_ids(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| !n.is_up() && !n.is_dead())
            .map(|n| n.id)
            .collect()
    }

    /// Where a client sends a request: mostly to a node that believes it
    /// leads (of any term: a stale leader is where requests go wrong),
    /// otherwise to any running node (which forwards or drops it).
    fn client_target(&mut self) -> Option<u64> {
        let leaders: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.is_leader())
            .map(|n| n.id)
            .collect();
        if !leaders.is_empty() && self.rng.chance(2, 3) {
            self.rng.pick(&leaders)
        } else {
            self.rng.pick(&self.up_ids())
        }
    }

    /// The leader of the highest term among running nodes, if any.
    fn leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_leader())
            .max_by_key(|n| n.term())
            .map(|n| n.id)
    }

    /// Whether the calm phase's leader is a stale one left over from a
    /// wedging membership change: a running node has moved to a later
    /// term, and the configuration has not settled. Such a leader may never
    /// hear of that term (without CheckQuorum or PreVote, nodes of a higher
    /// term ignore its messages, and no candidate asks a learner for its
    /// vote), so it is not waited on: the run counts as wedged.
    fn wedged_under_stale_leader(&self, l: u64) -> bool {
        let term = self.nodes[&l].term();
        !self.config_settled() && self.nodes.values().any(|n| n.is_up() && n.term() > term)
    }

    fn random_step(&mut self) -> Check {
        let f = self.params.fault_level;
        let deliverable = self.net.first_deliverable(self.now).is_some();
        let any_ready = self.nodes.values().any(|n| n.ready_now());
        let any_down = self.nodes.values().any(|n| !n.is_up() && !n.is_dead());
        let any_flushing = self.flushing_ids().next().is_some();
        let wal = u64::from(self.wal.is_some());
        let now = self.now;
        let any_append = self
            .nodes
            .values()
            .any(|n| !n.append_work.is_empty() && n.disk_stalled_until <= now);
        let any_apply = self.nodes.values().any(|n| !n.apply_work.is_empty());
        let any_cut = !self.net.cut.is_empty();
        let d = u64::from(deliverable);
        let weights: Vec<u64> = ACTIONS
            .iter()
            .map(|a| match a {
                // Weights per mille of a busy step. Faults scale with the
                // seed's fault level; at the highest, a node crashes about
                // every hundred ticks and partitions come every few dozen,
                // so that elections and commits still happen between them.
                Action::Deliver => 600 * d,
                Action::Reorder => 60 * d,
                Action::Ready => 500 * u64::from(any_ready),
                Action::Tick => 140,
                Action::TickOne => 10 * u64::from(!self.lease_reads),
                Action::Propose => 80,
                Action::Read => 50,
                Action::Drop => 20 * f * d,
                Action::Duplicate => 8 * f * d,
                Action::Delay => 8 * f * d,
                Action::Partition => 3 * f,
                Action::Heal => 3 * u64::from(any_cut),
                Action::Crash => 2 * f,
                Action::Restart => 15 * u64::from(any_down),
                Action::Transfer => 8,
                Action::ConfChange => 15,
                Action::Compact => 20,
                // About as often as a Ready: writes complete at the pace
                // they are handed out, but in any order against the network.
                Action::StorageAppend => 400 * u64::from(any_append),
                Action::StorageApply => 300 * u64::from(any_apply),
                Action::StallDisk => 4 * f * u64::from(self.async_writes),
                // About as often as a Ready: each Ready starts a flush.
                Action::DiskPoll => 400 * u64::from(any_flushing),
                // More often with asynchronous writes, whose append thread
                // waits out a full disk (the others stop the node).
                Action::DiskFull => f * wal * (1 + 3 * u64::from(self.async_writes)),
            })
            .collect();
        let Some(i) = self.rng.weighted(&weights) else {
            return Ok(());
        };
        match ACTIONS[i] {
            Action::Deliver => {
                // The oldest message due, and every other message due on
                // its link, in order: a link delivers in batches, so the
                // network keeps up with a cluster that sends every tick.
                let pos = self
                    .net
                    .first_deliverable(self.now)
                    .expect("weighted on it");
                let link = {
                    let m = &self.net.get(pos).msg;
                    (m.from, m.to)
                };
                self.deliver(pos)?;
                while let Some(p) = self.net.first_deliverable_on(self.now, link) {
                    self.deliver(p)?;
                }
                Ok(())
            }
            Action::Reorder => {
                let ds = self.net.deliverable(self.now);
                let pos = self.rng.pick(&ds).expect("weighted on it");
                self.deliver(pos)
            }
            Action::Ready => {
                let ids: Vec<u64> = self
                    .nodes
                    .values()
                    .filter(|n| n.ready_now())
                    .map(|n| n.id)
                    .collect();
                // One node surely, the others each with even odds: nodes
                // work in parallel, in a random interleaving.
                let first = self.rng.pick(&ids).expect("weighted on it");
                for id in ids {
                    if id == first || self.rng.chance(1, 2) {
                        self.handle_ready(id)?;
                        self.maybe_crash_after_ready(id)?;
                    }
                }
                Ok(())
            }
            Action::Tick => {
                if self.tick_all() {
                    self.compact_leader_on_heal()?;
                }
                Ok(())
            }
            Action::TickOne => {
                if let Some(id) = self.rng.pick(&self.up_ids()) {
                    self.ev(Event::TickOne { id });
                    self.nodes.get_mut(&id).expect("up").raw().tick();
                }
                Ok(())
            }
            Action::Propose => {
                if let Some(id) = self.client_target() {
                    // A leader cut off from a majority, or of an older term
                    // than the newest: clients keep writing to it, and the
                    // burst grows the divergent tail it will have to give up.
                    let stale = self.nodes[&id].is_leader()
                        && (self.leader() != Some(id) || self.cut_off(id));
                    let n = if stale { self.rng.range(4, 16) } else { 1 };
                    for _ in 0..n {
                        self.propose(id, b'P');
                    }
                }
                Ok(())
            }
            Action::Read => {
                self.read_index();
                Ok(())
            }
            Action::Drop => {
                let ds = self.net.deliverable(self.now);
                let pos = self.rng.pick(&ds).expect("weighted on it");
                let m = self.net.take(pos).msg;
                self.lose(m, "chance");
                Ok(())
            }
            Action::Duplicate => {
                let ds = self.net.deliverable(self.now);
                let pos = self.rng.pick(&ds).expect("weighted on it");
                let at = self.now + self.rng.range(0, 3);
                let m = MsgSummary::of(&self.net.get(pos).msg);
                if self.net.duplicate(pos, at) {
                    self.stats.duplicated += 1;
                    self.ev(Event::Duplicate { m });
                }
                Ok(())
            }
            Action::Delay => {
                let ds = self.net.deliverable(self.now);
                let pos = self.rng.pick(&ds).expect("weighted on it");
                let until = self.now + self.rng.range(1, 3 * self.params.election_tick as u64);
                self.net.get_mut(pos).deliver_at = until;
                let m = MsgSummary::of(&self.net.get(pos).msg);
                self.ev(Event::Delay { m, until });
                Ok(())
            }
            Action::Partition => self.partition(),
            Action::Heal => {
                self.heal_at = None;
                self.net.heal();
                self.ev(Event::Heal);
                self.compact_leader_on_heal()
            }
            Action::Crash => match self.rng.pick(&self.up_ids()) {
                Some(id) => self.crash(id),
                None => Ok(()),
            },
            Action::Restart => match self.rng.pick(&self.down_ids()) {
                Some(id) => self.restart(id),
                None => Ok(()),
            },
            Action::Transfer => {
                self.transfer();
                Ok(())
            }
            Action::ConfChange => self.conf_change(),
            Action::Compact => self.compact(),
            Action::StorageAppend => {
                let ids: Vec<u64> = self
                    .nodes
                    .values()
                    .filter(|n| !n.append_work.is_empty() && n.disk_stalled_until <= now)
                    .map(|n| n.id)
                    .collect();
                let id = self.rng.pick(&ids).expect("weighted on it");
                self.complete_append(id)
            }
            Action::StorageApply => {
                let ids: Vec<u64> = self
                    .nodes
                    .values()
                    .filter(|n| !n.apply_work.is_empty())
                    .map(|n| n.id)
                    .collect();
                let id = self.rng.pick(&ids).expect("weighted on it");
                self.complete_apply(id)
            }
            Action::StallDisk => {
                if let Some(id) = self.rng.pick(&self.up_ids()) {
                    let until = self.now + self.rng.range(1, 3 * self.params.election_tick as u64);
                    self.nodes.get_mut(&id).expect("up").disk_stalled_until = until;
                    self.ev(Event::StallDisk { id, until });
                }
                Ok(())
            }
            Action::DiskPoll => {
                let ids: Vec<u64> = self.flushing_ids().collect();
                let id = self.rng.pick(&ids).expect("weighted on it");
                self.poll_disk(id, false)
            }
            Action::DiskFull => {
                if let (Some(id), Some(w)) = (self.rng.pick(&self.up_ids()), self.wal.as_ref()) {
                    // A full disk stays full until its operator makes room
                    // (one in four of the later such steps that pick it;
                    // no restart needed: the WAL was never poisoned), the
                    // node restarts, or a calm phase begins.
                    let kind = if w.is_full(id) && self.rng.chance(1, 4) {
                        w.free(id);
                        "disk-freed"
                    } else if !w.is_full(id) {
                        w.fill(id);
                        "disk-full"
                    } else {
                        "disk-still-full"
                    };
                    self.ev(Event::DiskFault {
                        id,
                        kind,
                        file: String::new(),
                        at: 0,
                    });
                }
                Ok(())
            }
        }
    }

    /// Running nodes whose WAL has a flush started and not known complete.
    fn flushing_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.nodes
            .values()
            .filter(|n| {
                n.raw
                    .as_ref()
                    .and_then(|r| r.store().as_wal())
                    .is_some_and(|w| w.flushing())
            })
            .map(|n| n.id)
    }

    /// Node `id`'s disk completes its flush in flight if it is done with
    /// it (`wait`: it is made to be done); the messages waiting for it go
    /// out. A failed flush stops the node.
    fn poll_disk(&mut self, id: u64, wait: bool) -> Check {
        let Some(ws) = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.raw.as_mut())
            .and_then(|r| r.store_mut().as_wal_mut())
        else {
            return Ok(());
        };
        let r = if wait { ws.flush() } else { ws.poll_flush() };
        if let Err(e) = r {
            self.fail_node(id, e);
            return Ok(());
        }
        // What was queued while the flush was in flight goes out next.
        if !ws.flushing() && ws.has_pending() {
            match self.start_wal_flush(id, false)? {
                Started::Flush(..) => {}
                Started::Cut => return Ok(()),
                Started::Failed(e) => {
                    self.fail_node(id, e);
                    return Ok(());
                }
            }
        }
        self.release_held(id)
    }

    /// Sends the messages of node `id` whose flush is durable, in order,
    /// recording what they vouch for.
    fn release_held(&mut self, id: u64) -> Check {
        let node = self.nodes.get_mut(&id).expect("exists");
        let Some(durable) = node
            .raw
            .as_ref()
            .and_then(|r| r.store().as_wal())
            .map(|w| w.durable_flush())
        else {
            return Ok(());
        };
        let mut out = Vec::new();
        let mut votes = Vec::new();
        while node.held.front().is_some_and(|h| h.flush <= durable) {
            let h = node.held.pop_front().expect("checked");
            if let Some(rd) = h.ready {
                node.raw().advance(rd);
            }
            for (m, v) in h.msgs {
                match v {
                    Some(Vouch::Ack(t, i, et)) => node.last_ack = Some((t, i, et)),
                    Some(Vouch::Vote(t, c)) => {
                        node.last_vote = Some((t, c));
                        votes.push((t, c));
                    }
                    None => {}
                }
                out.push(m);
            }
        }
        for (t, c) in votes {
            self.checker.observe_vote(id, t, c)?;
        }
        // Asynchronous storage writes: the node's own responses are
        // stepped, not sent.
        let (own, out): (Vec<Message>, Vec<Message>) = out.into_iter().partition(|m| m.to == id);
        let node = self.nodes.get_mut(&id).expect("exists");
        for m in own {
            if let Err(e) = node.raw().step(m) {
                self.log.push(
                    self.step,
                    Event::StepError {
                        id,
                        what: format!("{e:?}"),
                    },
                );
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        self.stats.held_msgs += out.len() as u64;
        self.ev(Event::FlushDone {
            id,
            durable,
            released: out.len(),
        });
        for m in out {
            self.send(m);
        }
        Ok(())
    }

    /// Node `id`'s append thread found no room for the WAL's next segment:
    /// the write `m` (what of it is not yet written) goes back to the head
    /// of its queue and its responses wait with it; the thread tries again
    /// after a short while (not at every step, as a real one would not).
    fn wait_for_space(&mut self, id: u64, m: Message) {
        self.stats.no_space_waits += 1;
        let until = self.now + 1 + self.params.election_tick as u64 / 2;
        let node = self.nodes.get_mut(&id).expect("exists");
        node.append_work.push_front(m);
        node.no_space = true;
        node.disk_stalled_until = node.disk_stalled_until.max(until);
        self.ev(Event::WalNoSpace { id, until });
    }

    /// Node `id`'s WAL failed (an I/O error poisoned it): the node stops,
    /// as its process would. Its machine restarts too, so that recovery
    /// reads only what reached the media: a process restart alone could
    /// read pages a failed sync forgot to write but the page cache still
    /// shows (PostgreSQL's fsyncgate), which no WAL can tell from durable
    /// data; the simulator does not model that.
    fn fail_node(&mut self, id: u64, e: StoreError) {
        self.stats.wal_failures += 1;
        self.ev(Event::WalFailed {
            id,
            what: e.to_string(),
        });
        let node = self.nodes.get_mut(&id).expect("exists");
        if node.is_up() {
            self.stats.lost_writes += node.append_work.len() as u64;
            if let Some(ws) = node.raw.as_ref().and_then(|r| r.store().as_wal())
                && let Some(w) = self.wal.as_mut()
            {
                w.note_segments(id, &ws.segments());
            }
            // A crash of a WAL node checks nothing until its restart.
            let _ = node.crash();
        }
    }

    /// Stops node `id` if its WAL failed while it was handled.
    fn stop_if_failed(&mut self, id: u64) {
        if let Some(what) = self.nodes.get_mut(&id).and_then(|n| n.failed.take()) {
            self.fail_node(id, StoreError::Failed(what));
        }
    }

    /// Advances time by a tick; returns whether the partitions healed.
    fn tick_all(&mut self) -> bool {
        self.now += 1;
        self.ev(Event::Tick { now: self.now });
        let healed = self.heal_at.is_some_and(|t| t <= self.now);
        if healed {
            self.heal_at = None;
            self.net.heal();
            self.ev(Event::Heal);
        }
        for n in self.nodes.values_mut() {
            let ticks = match self.clocks.as_mut() {
                Some(c) => c.ticks(&mut self.rng, n.id, self.now),
                None => 1,
            };
            if let Some(r) = n.raw.as_mut() {
                for _ in 0..ticks {
                    r.tick();
                }
            }
        }
        healed
    }

    /// Delivers the message at `pos`, unless its link is cut or its
    /// destination is down.
    fn deliver(&mut self, pos: usize) -> Check {
        let m = self.net.take(pos).msg;
        let up = self.nodes.get(&m.to).is_some_and(|n| n.is_up());
        if !up {
            self.lose(m, "down");
            return Ok(());
        }
        if !self.net.link_up(m.from, m.to) {
            self.lose(m, "partition");
            return Ok(());
        }
        self.stats.delivered += 1;
        self.ev(Event::Deliver {
            m: MsgSummary::of(&m),
        });
        let (from, to) = (m.from, m.to);
        let is_snap = m.r#type == MessageType::MsgSnap as i32;
        let probe = self.probe_rejection(&m);
        let node = self.nodes.get_mut(&to).expect("checked up");
        if let Err(e) = node.raw().step(m) {
            self.ev(Event::StepError {
                id: to,
                what: format!("{e:?}"),
            });
        }
        if let Some(p) = probe {
            self.check_probe(p)?;
        }
        if is_snap {
            // The transport got the snapshot across: the sender may resume
            // replicating (etcd's ReportSnapshot after a successful send).
            if let Some(s) = self.nodes.get_mut(&from).filter(|n| n.is_up()) {
                s.raw().report_snapshot(to, SnapshotStatus::Finish);
            }
        }
        Ok(())
    }

    /// A message is lost. The sender hears of it as a real transport would
    /// tell it: a failed snapshot always, an unreachable peer sometimes.
    fn lose(&mut self, m: Message, why: &'static str) {
        self.stats.dropped += 1;
        self.ev(Event::Drop {
            m: MsgSummary::of(&m),
            why,
        });
        let is_snap = m.r#type == MessageType::MsgSnap as i32;
        let report_unreachable = self.rng.chance(1, 4);
        if let Some(s) = self.nodes.get_mut(&m.from).filter(|n| n.is_up()) {
            if is_snap {
                s.raw().report_snapshot(m.to, SnapshotStatus::Failure);
            } else if report_unreachable {
                s.raw().report_unreachable(m.to);
            }
        }
    }

    fn send(&mut self, m: Message) {
        // Most messages arrive at the next delivery; a few take a while.
        let delay = if self.rng.chance(1, 16) {
            self.rng.range(1, self.params.election_tick as u64)
        } else {
            0
        };
        let s = MsgSummary::of(&m);
        // A message into a cut link or to a node that is down is lost at
        // once: queued, it would only clog the network until delivery.
        if !self.net.link_up(m.from, m.to) || !self.nodes.get(&m.to).is_some_and(|n| n.is_up()) {
            let why = if self.net.link_up(m.from, m.to) {
                "down"
            } else {
                "partition"
            };
            self.lose(m, why);
            return;
        }
        if self.net.send(m, self.now + delay) {
            self.ev(Event::Send { m: s, delay });
        } else {
            self.ev(Event::Overflow { m: s });
        }
    }

    fn partition(&mut self) -> Check {
        self.stats.partitions += 1;
        let ids = self.up_ids();
        if ids.len() < 2 {
            return Ok(());
        }
        // A new partition mostly replaces the current one: piling them up
        // soon leaves no majority connected anywhere, and nothing happens.
        if self.rng.chance(3, 4) && !self.net.cut.is_empty() {
            self.net.heal();
            self.ev(Event::Heal);
            self.compact_leader_on_heal()?;
        }
        // Isolating the leader is drawn most: it makes stale leaders, where
        // stale reads and lost writes hide.
        let kind = match self.rng.weighted(&[3, 1, 4, 1, 2]).expect("weights") {
            0 => {
                // Symmetric split into two sides.
                let mut shuffled = ids.clone();
                for i in (1..shuffled.len()).rev() {
                    let j = self.rng.below(i as u64 + 1) as usize;
                    shuffled.swap(i, j);
                }
                let k = self.rng.range(1, shuffled.len() as u64 - 1) as usize;
                let (a, b) = shuffled.split_at(k);
                self.net.cut_between(a, b);
                "split"
            }
            1 => {
                let a = self.rng.pick(&ids).expect("non-empty");
                let b = self.rng.pick(&ids).expect("non-empty");
                self.net.cut_one_way(a, b);
                "one-way"
            }
            2 => match self.leader() {
                Some(l) => {
                    let others: Vec<u64> = ids.iter().copied().filter(|&x| x != l).collect();
                    self.net.cut_between(&[l], &others);
                    "isolate-leader"
                }
                None => return Ok(()),
            },
            3 => {
                // A node that hears nobody but is heard by all.
                let x = self.rng.pick(&ids).expect("non-empty");
                for &y in &ids {
                    self.net.cut_one_way(y, x);
                }
                "deaf"
            }
            _ => {
                let x = self.rng.pick(&ids).expect("non-empty");
                let others: Vec<u64> = ids.iter().copied().filter(|&y| y != x).collect();
                self.net.cut_between(&[x], &others);
                "isolate"
            }
        };
        // Partitions last long enough for elections to happen on both
        // sides (a few election timeouts), unless healed earlier at random.
        let et = self.params.election_tick as u64;
        let until = self.now + self.rng.range(et, 6 * et);
        self.heal_at = Some(self.heal_at.map_or(until, |t| t.max(until)));
        let cut: Vec<(u64, u64)> = self.net.cut.iter().copied().collect();
        self.ev(Event::Partition { kind, cut });
        Ok(())
    }

    fn crash(&mut self, id: u64) -> Check {
        self.stats.crashes += 1;
        self.stats.lost_writes += self.nodes[&id].append_work.len() as u64;
        self.ev(Event::Crash { id });
        if let (Some(w), Some(ws)) = (
            self.wal.as_mut(),
            self.nodes[&id]
                .raw
                .as_ref()
                .and_then(|r| r.store().as_wal()),
        ) {
            w.note_segments(id, &ws.segments());
        }
        self.nodes.get_mut(&id).expect("exists").crash()?;
        // The fragile disk may also rot while its node is down.
        if let Some(w) = self.wal.as_mut()
            && w.fragile == Some(id)
            && w.chance(1, 8)
            && let Some((file, at)) = w.disk(id).and_then(|d| d.rot_at_rest())
        {
            self.ev(Event::DiskFault {
                id,
                kind: "rot",
                file,
                at,
            });
        }
        Ok(())
    }

    /// Restarts a crashed node over its disk: the application state is
    /// rebuilt from the disk's snapshot, and the committed entries after it
    /// are applied again as the core hands them out.
    fn restart(&mut self, id: u64) -> Check {
        let node = self.nodes.get_mut(&id).expect("exists");
        let disk = match node.disk.take().expect("restart of a node that is up") {
            Down::Mem(m) => SimStore::Mem(m),
            Down::Wal(down) => match self.recover_wal(id, down)? {
                Some(ws) => SimStore::Wal(Box::new(ws)),
                None => return Ok(()),
            },
        };
        let snap = corelog::raft::Storage::snapshot(&disk)
            .map_err(|e| core_error(format!("snapshot of node {id}'s disk: {e:?}")))?;
        // A node added to the cluster starts with an empty disk and may
        // crash before its first snapshot arrives.
        let app = if snap_meta(&snap).index == 0 {
            App::default()
        } else {
            App::decode(&snap).ok_or_else(|| {
                core_error(format!(
                    "node {id}'s disk holds a snapshot that is not the application's: {:?}",
                    snap_meta(&snap)
                ))
            })?
        };
        let mut disk = disk;
        let mut hs = disk.hard_state();
        if self.async_writes && !corelog::raft::is_empty_hard_state(&hs) && app.applied > hs.commit
        {
            // Asynchronous storage writes: the apply thread may have made
            // its state (a snapshot on the disk) durable before the append
            // thread wrote the hard state that committed those entries.
            // They were committed (only committed entries are handed out
            // for applying, and only once on this disk), so the commit
            // index is raised to match: etcd's raft, like ours, refuses to
            // start with `applied` beyond the commit index. (A disk that
            // never wrote a hard state is a bootstrapped one: the core takes
            // its commit from the snapshot.)
            hs.commit = app.applied;
            if let Err(e) = disk.set_hard_state(hs) {
                // Only the WAL fails here (a full disk at the roll): the
                // node stays down and tries again later.
                let node = self.nodes.get_mut(&id).expect("exists");
                if let SimStore::Wal(ws) = disk {
                    node.disk = Some(Down::Wal(ws.crash()));
                }
                self.stats.wal_failures += 1;
                self.ev(Event::WalFailed {
                    id,
                    what: e.to_string(),
                });
                return Ok(());
            }
        }
        let view = StoreView(&disk);
        if let Err(v) = self.checker.check_restarted(id, hs.commit, &view) {
            // A disk that lost synced data may have lost committed entries
            // in a way recovery cannot see (a misdirected sector leaves
            // what reads as the end of the log): as in `recover_wal`, the
            // node is kept down for good and counted apart.
            if let SimStore::Wal(ws) = disk
                && self.wal.as_ref().is_some_and(|w| w.lost_synced_data(id))
            {
                self.undetected_loss(id, v.detail, Down::Wal(ws.crash()));
                return Ok(());
            }
            return Err(v);
        }
        let last = crate::checker::LogView::last_index(&view);
        let cfg = self.config(id, app.applied);
        let incarnation = self.nodes[&id].incarnation + 1;
        let mut fresh = SimNode::start(id, &cfg, disk, app)?;
        fresh.incarnation = incarnation;
        self.nodes.insert(id, fresh);
        self.ev(Event::Restart {
            id,
            term: hs.term,
            commit: hs.commit,
            last,
        });
        Ok(())
    }

    /// `--storage wal`: recovers node `id`'s WAL from what its disk kept
    /// (real recovery: `Wal::open_on`), and checks it against what the
    /// node vouched for before it went down. `None`: the node stays down
    /// (an I/O error: for now, and its disk is power-cycled before the
    /// next try; corruption on a disk that lost synced data: for good).
    fn recover_wal(
        &mut self,
        id: u64,
        down: crate::wal_store::WalDown,
    ) -> Result<Option<WalStore>, Violation> {
        let w = self.wal.as_mut().expect("a WAL run");
        // A restart does not make room: the operator made some before
        // restarting one time in two, else the node recovers on its full
        // disk (a full disk no longer stops a node; it waits for room).
        if w.is_full(id) && w.chance(1, 2) {
            w.arm_keeping_room(id);
        } else {
            w.arm(id);
        }
        let lost_synced = w.lost_synced_data(id);
        self.stats.recoveries += 1;
        let store = match WalStore::recover(&down) {
            Ok(ws) => SimStore::Wal(Box::new(ws)),
            Err(RecoverError::Transient(what)) => {
                self.stats.recovery_io_errors += 1;
                self.ev(Event::RecoveryFailed {
                    id,
                    transient: true,
                    what,
                });
                // The machine restarts before the retry, as after a WAL
                // failure: recovery's zeroing may have failed its write or
                // fdatasync, and then its zeros sit in the page cache only
                // (the WAL poisoned the directory for this process). A retry
                // on the same cache would recover from bytes the media never
                // got; a power cycle keeps only what reached the media.
                down.disk.crash();
                self.nodes.get_mut(&id).expect("exists").disk = Some(Down::Wal(down));
                return Ok(None);
            }
            Err(RecoverError::Corrupt(what)) => {
                if !lost_synced {
                    return Err(Violation {
                        invariant: checker::WAL_INTEGRITY,
                        detail: format!(
                            "node {id}'s WAL refused a disk that lost no synced data: {what}"
                        ),
                    });
                }
                self.stats.corruption_detected += 1;
                self.ev(Event::RecoveryFailed {
                    id,
                    transient: false,
                    what: what.clone(),
                });
                let node = self.nodes.get_mut(&id).expect("exists");
                node.dead = Some(what);
                node.disk = Some(Down::Wal(down));
                return Ok(None);
            }
        };
        let hs = store.hard_state();
        if hs.vote != 0 {
            self.checker.observe_vote(id, hs.term, hs.vote)?;
        }
        let d = down.durable_hs;
        let node = &self.nodes[&id];
        let behind = hs.term < d.term
            || (hs.term == d.term && d.vote != 0 && hs.vote != d.vote)
            || hs.commit < d.commit;
        let check = if behind {
            Err(Violation {
                invariant: checker::DURABILITY,
                detail: format!(
                    "node {id} recovered hard state {:?}, behind {:?}, durable before its crash",
                    (hs.term, hs.vote, hs.commit),
                    (d.term, d.vote, d.commit)
                ),
            })
        } else {
            node.check_vouched(hs, &StoreView(&store))
        };
        match check {
            Ok(()) => match store {
                SimStore::Wal(ws) => Ok(Some(*ws)),
                SimStore::Mem(_) => unreachable!("made above"),
            },
            // The disk lost synced data in a way recovery cannot tell from
            // a torn write (a misdirected sector of the last flush leaves
            // what looks like a sector that never landed): the node would
            // run on having forgotten what it vouched for. It is kept down
            // for good and counted apart.
            Err(v) if lost_synced => {
                if let SimStore::Wal(ws) = store {
                    self.undetected_loss(id, v.detail, Down::Wal(ws.crash()));
                }
                Ok(None)
            }
            Err(v) => Err(v),
        }
    }

    /// Node `id`'s disk lost synced data that its WAL could not detect:
    /// the node stays down for good (see `recover_wal`).
    fn undetected_loss(&mut self, id: u64, detail: String, disk: Down) {
        self.stats.undetected_losses += 1;
        self.ev(Event::RecoveryFailed {
            id,
            transient: false,
            what: format!("undetected loss of synced data: {detail}"),
        });
        let node = self.nodes.get_mut(&id).expect("exists");
        node.dead = Some(detail);
        node.disk = Some(disk);
    }

    fn propose(&mut self, id: u64, tag: u8) {
        let seq = self.next_prop;
        self.next_prop += 1;
        // Payload sizes vary so that the byte limits of messages and
        // inflight windows are exercised.
        let pad = self.rng.below(48) as usize;
        let mut data = Vec::with_capacity(9 + pad);
        data.push(tag);
        data.extend_from_slice(&seq.to_be_bytes());
        data.resize(9 + pad, b'.');
        self.ev(Event::Propose { id, seq });
        let node = self.nodes.get_mut(&id).expect("up");
        if let Err(e) = node.raw().propose(Bytes::from(data)) {
            self.ev(Event::StepError {
                id,
                what: format!("propose: {e:?}"),
            });
        }
    }

    /// The highest commit index any node knows, up or down: a read must
    /// return at least this.
    fn max_known_commit(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| n.committed())
            .max()
            .unwrap_or(0)
            .max(self.checker.committed_index())
    }

    fn read_index(&mut self) {
        let Some(id) = self.client_target() else {
            return;
        };
        let ctx = self.next_read;
        self.next_read += 1;
        let min_index = self.max_known_commit();
        self.checker.register_read(ctx, id, min_index);
        self.ev(Event::ReadIndex { id, ctx, min_index });
        let raw = self.nodes.get_mut(&id).expect("up").raw();
        let r = &raw.raft;
        if r.state == StateType::Leader && r.lease.holds(r.id, &r.trk.config.voters) {
            self.stats.lease_reads_held += 1;
        }
        raw.read_index(ctx_bytes(ctx));
    }

    fn transfer(&mut self) {
        let Some(l) = self.leader() else {
            return;
        };
        let voters: Vec<u64> = {
            let raw = self.nodes[&l].raw.as_ref().expect("leader is up");
            raw.raft.trk.config.voters.ids().into_iter().collect()
        };
        let Some(to) = self.rng.pick(&voters) else {
            return;
        };
        self.stats.transfers += 1;
        self.ev(Event::TransferLeader { id: l, to });
        self.nodes
            .get_mut(&l)
            .expect("up")
            .raw()
            .transfer_leader(to);
    }

    /// Proposes a membership change at the leader, valid against its
    /// configuration. Only the leader: it refuses a change while another is
    /// pending, so the configuration a change is checked against here is the
    /// one it will be applied to.
    fn conf_change(&mut self) -> Check {
        let Some(l) = self.leader() else {
            return Ok(());
        };
        let (incoming, outgoing, learners, auto_leave) = {
            let raw = self.nodes[&l].raw.as_ref().expect("leader is up");
            let c = &raw.raft.trk.config;
            let v = |s: &BTreeSet<u64>| s.iter().copied().collect::<Vec<u64>>();
            (
                v(c.voters.incoming.ids()),
                v(c.voters.outgoing.ids()),
                v(&c.learners),
                c.auto_leave,
            )
        };
        if !outgoing.is_empty() {
            // Joint: the only valid change is leaving, which the leader does
            // by itself when auto_leave is set.
            if !auto_leave {
                let cc = ConfChangeV2::default();
                return self.propose_cc(l, &cc, "leave-joint".to_string());
            }
            return Ok(());
        }
        let members = incoming.len() + learners.len();
        let can_add = members < MAX_MEMBERS;
        use ConfChangeType::*;
        let mut changes: Vec<ConfChangeSingle> = Vec::new();
        let joint = self.rng.chance(1, 3);
        let kinds = if joint { self.rng.range(1, 3) } else { 1 };
        // Voters left after the changes so far (never zero) and voter
        // changes made (at most one without joint consensus).
        // The voters and learners after the changes so far, and the ids
        // already touched: touching an id twice in one change would make
        // this bookkeeping (and the change) ambiguous.
        let mut voters_left: Vec<u64> = incoming.clone();
        let mut learners_left: Vec<u64> = learners.clone();
        let mut touched: BTreeSet<u64> = BTreeSet::new();
        // The leader itself is removed or demoted only sometimes: that is
        // the change most likely to wedge the cluster (see `calm`).
        if self.rng.chance(3, 4) {
            touched.insert(l);
        }
        let mut added = 0usize;
        for _ in 0..kinds {
            let untouched = |xs: &[u64], t: &BTreeSet<u64>| -> Vec<u64> {
                xs.iter().copied().filter(|x| !t.contains(x)).collect()
            };
            let free_voters = untouched(&voters_left, &touched);
            let free_learners = untouched(&learners_left, &touched);
            match self.rng.below(6) {
                k @ (0 | 1) if can_add && members + added < MAX_MEMBERS => {
                    let id = self.next_id;
                    self.next_id += 1;
                    added += 1;
                    touched.insert(id);
                    if k == 0 {
                        voters_left.push(id);
                        changes.push(single(ConfChangeAddNode, id));
                    } else {
                        learners_left.push(id);
                        changes.push(single(ConfChangeAddLearnerNode, id));
                    }
                }
                2 if !free_learners.is_empty() => {
                    let id = self.rng.pick(&free_learners).expect("non-empty");
                    touched.insert(id);
                    learners_left.retain(|&x| x != id);
                    voters_left.push(id);
                    changes.push(single(ConfChangeAddNode, id));
                }
                3 if voters_left.len() >= 2 && !free_voters.is_empty() => {
                    let id = self.rng.pick(&free_voters).expect("non-empty");
                    if !self.keeps_majority(id, voters_left.len() - 1) {
                        continue;
                    }
                    touched.insert(id);
                    voters_left.retain(|&x| x != id);
                    changes.push(single(ConfChangeRemoveNode, id));
                }
                4 if !free_learners.is_empty() => {
                    let id = self.rng.pick(&free_learners).expect("non-empty");
                    touched.insert(id);
                    learners_left.retain(|&x| x != id);
                    changes.push(single(ConfChangeRemoveNode, id));
                }
                5 if voters_left.len() >= 2 && !free_voters.is_empty() => {
                    let id = self.rng.pick(&free_voters).expect("non-empty");
                    if !self.keeps_majority(id, voters_left.len() - 1) {
                        continue;
                    }
                    touched.insert(id);
                    voters_left.retain(|&x| x != id);
                    learners_left.push(id);
                    changes.push(single(ConfChangeAddLearnerNode, id));
                }
                _ => {}
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let desc = ccs_to_string(&changes);
        if joint {
            let transition = if self.rng.chance(1, 2) {
                ConfChangeTransition::ConfChangeTransitionJointImplicit
            } else {
                ConfChangeTransition::ConfChangeTransitionJointExplicit
            };
            let cc = ConfChangeV2 {
                transition: transition as i32,
                changes,
                context: Bytes::new(),
            };
            self.propose_cc(l, &cc, format!("joint {desc} {transition:?}"))
        } else if changes.len() == 1 && self.rng.chance(1, 2) {
            let cc = ConfChange {
                r#type: changes[0].r#type,
                node_id: changes[0].node_id,
                ..Default::default()
            };
            self.propose_cc(l, &cc, format!("v1 {desc}"))
        } else {
            let cc = ConfChangeV2 {
                transition: ConfChangeTransition::ConfChangeTransitionAuto as i32,
                changes,
                context: Bytes::new(),
            };
            self.propose_cc(l, &cc, format!("v2 {desc}"))
        }
    }

    /// `--storage wal`: whether removing or demoting voter `id`, leaving
    /// `voters_left`, keeps a majority of every configuration alive should
    /// the fragile disk's node be lost (see wal_run.rs).
    fn keeps_majority(&self, id: u64, voters_left: usize) -> bool {
        self.wal.as_ref().is_none_or(|w| {
            let member = w
                .fragile
                .is_some_and(|f| self.nodes.contains_key(&f) && !self.retired.contains(&f));
            w.keeps_majority(id, voters_left, member)
        })
    }

    fn propose_cc(&mut self, l: u64, cc: &dyn corelog::raftpb::ConfChangeI, desc: String) -> Check {
        self.ev(Event::ProposeConfChange {
            id: l,
            change: desc,
        });
        if let Err(e) = self
            .nodes
            .get_mut(&l)
            .expect("up")
            .raw()
            .propose_conf_change(cc)
        {
            self.ev(Event::StepError {
                id: l,
                what: format!("propose_conf_change: {e:?}"),
            });
        }
        Ok(())
    }

    /// Snapshots a node's applied state and discards some of its log, so
    /// that lagging nodes must catch up by snapshot.
    fn compact(&mut self) -> Check {
        let Some(id) = self.rng.pick(&self.up_ids()) else {
            return Ok(());
        };
        let keep = self.rng.range(0, 8);
        self.compact_node(id, keep)
    }

    /// Whether node `id` reaches less than a majority of the nodes (itself
    /// included) both ways.
    fn cut_off(&self, id: u64) -> bool {
        let reach = self
            .nodes
            .keys()
            .filter(|&&x| x == id || (self.net.link_up(id, x) && self.net.link_up(x, id)))
            .count();
        2 * reach <= self.nodes.len()
    }

    /// When a partition heals, the newest leader often compacts its whole
    /// applied log: the nodes that come back, old leaders with long
    /// divergent tails among them, must then catch up by snapshot, where a
    /// snapshot restored over a conflicting log shows.
    fn compact_leader_on_heal(&mut self) -> Check {
        match self.leader() {
            Some(l) if self.rng.chance(3, 4) => self.compact_node(l, 0),
            _ => Ok(()),
        }
    }

    /// Snapshots node `id`'s applied state and compacts its log, keeping
    /// `keep` applied entries.
    fn compact_node(&mut self, id: u64, keep: u64) -> Check {
        let node = self.nodes.get_mut(&id).expect("up");
        let app = node.app.clone();
        let raw = node.raw.as_mut().expect("up");
        let snap_index =
            snap_meta(&corelog::raft::Storage::snapshot(raw.store()).unwrap_or_default()).index;
        if app.applied <= snap_index {
            return Ok(());
        }
        match raw.store_mut().create_snapshot(
            app.applied,
            Some(app.conf_state.clone()),
            app.encode(),
        ) {
            Ok(()) => {}
            Err(e @ (StoreError::Failed(_) | StoreError::NoSpace(_))) => {
                self.fail_node(id, e);
                return Ok(());
            }
            Err(e) => {
                return Err(core_error(format!(
                    "create_snapshot({}) on node {id}: {e}",
                    app.applied
                )));
            }
        }
        let first = corelog::raft::Storage::first_index(raw.store()).unwrap_or(1);
        let compact_index = app.applied.saturating_sub(keep).max(first);
        if compact_index >= first {
            match raw.store_mut().compact(compact_index) {
                Ok(()) => {}
                Err(e @ (StoreError::Failed(_) | StoreError::NoSpace(_))) => {
                    self.fail_node(id, e);
                    return Ok(());
                }
                Err(e) => {
                    return Err(core_error(format!(
                        "compact({compact_index}) on node {id}: {e}"
                    )));
                }
            }
            // GC (run by the compaction) completed every flush started.
            if raw.store().as_wal().is_some() {
                self.release_held(id)?;
            }
        }
        self.stats.compactions += 1;
        self.ev(Event::Compact {
            id,
            snap_index: app.applied,
            compact_index,
        });
        Ok(())
    }

    /// Crashes aimed at the moments where durability bugs show: right
    /// after a node granted a vote (was it persisted?), and right after a
    /// leader appended entries it has not replicated yet (the setting of the
    /// Raft paper's figure 8, where committing by counting replicas loses
    /// entries), and, on the WAL, right after a flush that spans two
    /// segments started (a crash then may keep one part of it).
    fn maybe_crash_after_ready(&mut self, id: u64) -> Check {
        if self.params.fault_level == 0 || !self.nodes.get(&id).is_some_and(|n| n.is_up()) {
            return Ok(());
        }
        let (voted, appended, rolled) = self.last_ready;
        if (voted && self.rng.chance(1, 4))
            || (appended && self.rng.chance(1, 24))
            || (rolled && self.rng.chance(3, 4))
        {
            self.crash(id)?;
        }
        Ok(())
    }

    /// Handles one Ready of node `id` under the contract: persist the
    /// snapshot, entries and hard state; send; apply; advance.
    fn handle_ready(&mut self, id: u64) -> Check {
        self.last_ready = (false, false, false);
        let node = self.nodes.get_mut(&id).expect("exists");
        if !node.ready_now() {
            return Ok(());
        }
        let raw = node.raw.as_mut().expect("a node with a Ready is up");
        let mut rd = raw.ready();
        let term = raw.raft.term;
        let range = |ents: &[Entry]| match (ents.first(), ents.last()) {
            (Some(a), Some(b)) => Some((a.index, b.index)),
            _ => None,
        };
        let ev = Event::Ready {
            id,
            term,
            state: state_name(raw.raft.state),
            entries: range(&rd.entries),
            hard_state: rd.hard_state.map(|h| (h.term, h.vote, h.commit)),
            snapshot: rd.snapshot.as_ref().map(|s| snap_meta(s).index),
            committed: range(&rd.committed_entries),
            msgs: rd.messages.len(),
        };
        self.log.push_detailed(self.step, ev, || {
            Some(corelog::raft::describe::describe_ready(&rd, None))
        });

        self.last_ready.1 = raw.raft.state == StateType::Leader && !rd.entries.is_empty();

        if self.async_writes {
            return self.queue_storage_work(id, rd);
        }

        // 1. Persist. The snapshot first: entries may follow it. The WAL
        // makes a flush all or nothing, even across segments, and starts
        // one early only once `max_flush_bytes` are pending; so when a
        // Ready's records surely fit in one flush (each Ready starts its
        // own), the driver may queue the hard state before the entries it
        // commits. Drawn half the time, to hold the WAL to that promise.
        let hs_first = rd.hard_state.is_some()
            && (!rd.entries.is_empty() || rd.snapshot.is_some())
            && self.wal.as_mut().is_some_and(|w| {
                let bytes: usize = rd.entries.iter().map(|e| e.data.len() + 64).sum();
                bytes + 512 <= w.max_flush_bytes / 2 && w.chance(3, 4)
            });
        let segment_before = raw.store().as_wal().and_then(|w| w.active_segment());
        let mut wal_err: Option<StoreError> = None;
        if hs_first
            && let Some(hs) = rd.hard_state
            && let Err(e) = raw.store_mut().set_hard_state(hs)
        {
            wal_err = Some(e);
        }
        if let Some(snap) = rd.snapshot.take()
            && wal_err.is_none()
        {
            let app = App::decode(&snap).ok_or_else(|| {
                core_error(format!(
                    "node {id} got a snapshot that is not the application's: {:?}",
                    snap_meta(&snap)
                ))
            })?;
            self.checker.observe_snapshot(id, app.applied, app.hash)?;
            match raw.store_mut().apply_snapshot(snap) {
                Ok(()) => {
                    node.app = app;
                    self.stats.snapshots_applied += 1;
                }
                Err(e @ (StoreError::Failed(_) | StoreError::NoSpace(_))) => wal_err = Some(e),
                Err(e) => return Err(core_error(format!("node {id} apply_snapshot: {e}"))),
            }
        }
        // A vote counts once it is on disk: at once on MemStorage; on the
        // WAL when its grant leaves (after the flush) or recovery reads it.
        let on_wal = raw.store().as_wal().is_some();
        if let Some(hs) = rd.hard_state
            && hs.vote != 0
            && !on_wal
        {
            self.checker.observe_vote(id, hs.term, hs.vote)?;
        }
        if !rd.entries.is_empty() && wal_err.is_none() {
            let before = rd.entries[0].index - 1;
            let prev_term = raw.raft.raft_log.term(before).ok();
            self.checker.check_appended(id, prev_term, &rd.entries)?;
            let entries = std::mem::take(&mut rd.entries);
            match raw.store_mut().append_owned(entries) {
                Ok(()) => {}
                Err(e @ (StoreError::Failed(_) | StoreError::NoSpace(_))) => wal_err = Some(e),
                Err(e) => return Err(core_error(format!("node {id} append: {e}"))),
            }
        }
        if !hs_first
            && wal_err.is_none()
            && let Some(hs) = rd.hard_state
            && let Err(e) = raw.store_mut().set_hard_state(hs)
        {
            wal_err = Some(e);
        }
        if let Some(e) = wal_err {
            self.fail_node(id, e);
            return Ok(());
        }

        // 2. Note what each message vouches for: it must be on disk when
        // the message leaves.
        let msgs = std::mem::take(&mut rd.messages);
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            let mut v = None;
            if !m.reject && m.r#type == MessageType::MsgAppResp as i32 {
                let et = corelog::raft::Storage::term(raw.store(), m.index).unwrap_or(0);
                v = Some(Vouch::Ack(m.term, m.index, et));
            } else if !m.reject && m.r#type == MessageType::MsgVoteResp as i32 {
                v = Some(Vouch::Vote(m.term, m.to));
                self.last_ready.0 = true;
                if !on_wal {
                    self.checker.observe_vote(id, m.term, m.to)?;
                }
            }
            out.push((m, v));
        }

        // 3. Apply.
        let committed = std::mem::take(&mut rd.committed_entries);
        let read_states = std::mem::take(&mut rd.read_states);
        self.apply_entries(id, term, committed, false)?;
        self.answer_reads(id, &read_states)?;
        if self.nodes[&id].failed.is_some() {
            self.stop_if_failed(id);
            if let Some(cs) = self.pending_conf.take() {
                self.membership(cs)?;
            }
            return Ok(());
        }

        // 4. Advance. On MemStorage everything is on disk: advance, then
        // the messages go. On the WAL, `advance` (which tells the core the
        // Ready is persisted: a leader counts its own entries then) and the
        // messages wait for the flush that makes the Ready durable; the
        // node takes no other Ready meanwhile, and goes on stepping
        // messages and ticking.
        let node = self.nodes.get_mut(&id).expect("exists");
        let raw = node.raw();
        let Some(ws) = raw.store_mut().as_wal_mut() else {
            raw.advance(rd);
            self.send_vouched(id, out)?;
            if let Some(cs) = self.pending_conf.take() {
                self.membership(cs)?;
            }
            return Ok(());
        };
        let rolled = segment_before.is_some() && ws.active_segment() != segment_before;
        match self.start_wal_flush(id, rolled)? {
            Started::Cut => {}
            Started::Failed(e) => self.fail_node(id, e),
            Started::Flush(flush, inline) => {
                // A flush on the ring that reached a new segment: a crash
                // in flight may tear it across the two (aimed at, see
                // `maybe_crash_after_ready`; an inline one was aimed at by
                // `start_wal_flush`).
                self.last_ready.2 = rolled && !inline;
                let out = if self.ack_before_flush() {
                    self.send_vouched(id, out)?;
                    Vec::new()
                } else {
                    out
                };
                let node = self.nodes.get_mut(&id).expect("exists");
                node.held.push_back(Held {
                    flush,
                    msgs: out,
                    ready: Some(rd),
                });
                self.release_held(id)?;
            }
        }
        if let Some(cs) = self.pending_conf.take() {
            self.membership(cs)?;
        }
        Ok(())
    }

    /// Starts node `id`'s flush of what its WAL has queued, on the path the
    /// run draws (wal_run.rs): on the ring, reaped by later polls of the
    /// disk, or inline, complete when the call returns, and now and then
    /// cut by a power loss in its middle (`rolled`: the flush reaches a new
    /// segment), after which the node is down (its crash is recorded here).
    fn start_wal_flush(&mut self, id: u64, rolled: bool) -> Result<Started, Violation> {
        let faulty = self.params.fault_level > 0;
        let (inline, cut) = match self.wal.as_mut() {
            Some(w) => {
                let inline = w.next_inline();
                (inline, inline && w.cut_inline(rolled, faulty))
            }
            None => (false, false),
        };
        let Some(ws) = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.raw.as_mut())
            .and_then(|r| r.store_mut().as_wal_mut())
        else {
            return Err(core_error(format!(
                "node {id} flushed a WAL it does not have"
            )));
        };
        let before = ws.durable_flush().max(ws.last_started());
        let r = if inline {
            ws.flush_inline(cut)
        } else {
            ws.start_flush()
        };
        let crashed = ws.crashed();
        match r {
            Ok(flush) => {
                if flush > before {
                    self.stats.flushes += 1;
                    if inline {
                        self.stats.inline_flushes += 1;
                        self.ev(Event::FlushInline { id, flush });
                    } else {
                        self.ev(Event::FlushStart { id, flush });
                    }
                }
                Ok(Started::Flush(flush, inline))
            }
            Err(_) if crashed => {
                self.stats.inline_cuts += 1;
                self.ev(Event::FlushCut { id });
                self.crash(id)?;
                Ok(Started::Cut)
            }
            Err(e) => Ok(Started::Failed(e)),
        }
    }

    /// Sends `out` from node `id`, first recording what each message
    /// vouches for (it must be on the node's disk from now on).
    fn send_vouched(&mut self, id: u64, out: Vec<(Message, Option<Vouch>)>) -> Check {
        let node = self.nodes.get_mut(&id).expect("exists");
        let on_wal = node
            .raw
            .as_ref()
            .is_some_and(|r| r.store().as_wal().is_some());
        let mut votes = Vec::new();
        for (_, v) in &out {
            match *v {
                Some(Vouch::Ack(t, i, et)) => node.last_ack = Some((t, i, et)),
                Some(Vouch::Vote(t, c)) => {
                    node.last_vote = Some((t, c));
                    votes.push((t, c));
                }
                None => {}
            }
        }
        if on_wal {
            for (t, c) in votes {
                self.checker.observe_vote(id, t, c)?;
            }
        }
        for (m, _) in out {
            self.send(m);
        }
        Ok(())
    }

    /// The driver bug `ack_before_flush` (`--cfg corelog_sim_bugs`).
    fn ack_before_flush(&self) -> bool {
        #[cfg(corelog_sim_bugs)]
        {
            self.opts.driver_bugs.ack_before_flush
        }
        #[cfg(not(corelog_sim_bugs))]
        {
            false
        }
    }

    /// Asynchronous storage writes: a Ready's storage work joins the node's
    /// append and apply queues, its other messages go to the network (they
    /// need nothing durable), its read states are answered.
    fn queue_storage_work(&mut self, id: u64, mut rd: corelog::raft::Ready) -> Check {
        let read_states = std::mem::take(&mut rd.read_states);
        self.answer_reads(id, &read_states)?;
        let node = self.nodes.get_mut(&id).expect("exists");
        let mut net = Vec::new();
        for m in std::mem::take(&mut rd.messages) {
            match (m.to, MessageType::try_from(m.r#type)) {
                (LOCAL_APPEND_THREAD, Ok(MessageType::MsgStorageAppend)) => {
                    node.append_work.push_back(m)
                }
                (LOCAL_APPLY_THREAD, Ok(MessageType::MsgStorageApply)) => {
                    node.apply_work.push_back(m)
                }
                (to, _) if is_local_msg_target(to) => {
                    return Err(core_error(format!(
                        "node {id} handed its storage threads a message of type {}",
                        m.r#type
                    )));
                }
                _ => net.push(m),
            }
        }
        for m in net {
            self.send(m);
        }
        Ok(())
    }

    /// The append thread of node `id` completes its oldest queued write:
    /// snapshot, entries and hard state reach the disk, then the responses
    /// go out (to the node itself: stepped at once; to peers: sent).
    fn complete_append(&mut self, id: u64) -> Check {
        let node = self.nodes.get_mut(&id).expect("exists");
        let Some(mut m) = node.append_work.pop_front() else {
            return Ok(());
        };
        let raw = node
            .raw
            .as_mut()
            .expect("queued work only on a running node");
        let segment_before = raw.store().as_wal().and_then(|w| w.active_segment());
        let range = |ents: &[Entry]| match (ents.first(), ents.last()) {
            (Some(a), Some(b)) => Some((a.index, b.index)),
            _ => None,
        };
        let hs = corelog::raftpb::HardState {
            term: m.term,
            vote: m.vote,
            commit: m.commit,
        };
        let hs = (!corelog::raft::is_empty_hard_state(&hs)).then_some(hs);
        let snapshot = m.snapshot.take().filter(|s| snap_meta(s).index > 0);
        self.stats.storage_appends += 1;
        self.log.push(
            self.step,
            Event::StorageAppend {
                id,
                entries: range(&m.entries),
                hard_state: hs.map(|h| (h.term, h.vote, h.commit)),
                snapshot: snapshot.as_ref().map(|s| snap_meta(s).index),
                responses: m.responses.len(),
            },
        );
        if let Some(snap) = snapshot {
            let app = App::decode(&snap).ok_or_else(|| {
                core_error(format!(
                    "node {id} got a snapshot that is not the application's: {:?}",
                    snap_meta(&snap)
                ))
            })?;
            self.checker.observe_snapshot(id, app.applied, app.hash)?;
            let kept = snap.clone();
            match raw.store_mut().apply_snapshot(*snap) {
                Ok(()) => {}
                Err(StoreError::NoSpace(_)) => {
                    // Refused whole: tried again, all of it, later.
                    m.snapshot = Some(kept);
                    self.wait_for_space(id, m);
                    return Ok(());
                }
                Err(e @ StoreError::Failed(_)) => {
                    self.fail_node(id, e);
                    return Ok(());
                }
                Err(e) => return Err(core_error(format!("node {id} apply_snapshot: {e}"))),
            }
            // The apply thread may have gone past nothing newer: committed
            // entries wait while a snapshot is in flight.
            if app.applied > node.app.applied {
                node.app = app;
            }
            self.stats.snapshots_applied += 1;
        }
        if !m.entries.is_empty() {
            // The disk holds what the entries follow: every earlier write
            // is complete (the in-memory log may have moved on since).
            let before = m.entries[0].index - 1;
            let prev_term = corelog::raft::Storage::term(raw.store(), before).ok();
            self.checker.check_appended(id, prev_term, &m.entries)?;
            let entries = if raw.store().as_wal().is_some() {
                m.entries.clone()
            } else {
                std::mem::take(&mut m.entries)
            };
            match raw.store_mut().append_owned(entries) {
                Ok(()) => m.entries.clear(),
                Err(StoreError::NoSpace(_)) => {
                    // The snapshot, if any, is written; the entries go
                    // again (what a longer-than-a-segment append left
                    // queued is superseded by the same entries).
                    self.wait_for_space(id, m);
                    return Ok(());
                }
                Err(e @ StoreError::Failed(_)) => {
                    self.fail_node(id, e);
                    return Ok(());
                }
                Err(e) => return Err(core_error(format!("node {id} append: {e}"))),
            }
        }
        if let Some(hs) = hs {
            match raw.store_mut().set_hard_state(hs) {
                Ok(()) => {}
                Err(StoreError::NoSpace(_)) => {
                    self.wait_for_space(id, m);
                    return Ok(());
                }
                Err(e) => {
                    self.fail_node(id, e);
                    return Ok(());
                }
            }
        }
        if std::mem::take(&mut self.nodes.get_mut(&id).expect("exists").no_space) {
            self.stats.no_space_recoveries += 1;
        }
        let node = self.nodes.get_mut(&id).expect("exists");
        let raw = node.raw.as_mut().expect("up");
        if let Some(ws) = raw.store_mut().as_wal_mut() {
            // On the WAL the write is done when its flush is: its
            // responses (the node's own included) wait for it. The append
            // thread commits in groups: it starts a flush only when none
            // is in flight, and what it queues meanwhile goes out in the
            // next one, started when the disk completes this one.
            let target = ws.ticket();
            let rolled = ws.active_segment() != segment_before;
            if !ws.flushing() {
                match self.start_wal_flush(id, rolled)? {
                    Started::Flush(..) => {}
                    Started::Cut => return Ok(()),
                    Started::Failed(e) => {
                        self.fail_node(id, e);
                        return Ok(());
                    }
                }
            }
            let node = self.nodes.get_mut(&id).expect("exists");
            let raw = node.raw.as_mut().expect("a node that flushed is up");
            let mut out = Vec::new();
            for r in std::mem::take(&mut m.responses) {
                let v = if r.to == id || r.reject {
                    None
                } else if r.r#type == MessageType::MsgAppResp as i32 {
                    let et = corelog::raft::Storage::term(raw.store(), r.index).unwrap_or(0);
                    Some(Vouch::Ack(r.term, r.index, et))
                } else if r.r#type == MessageType::MsgVoteResp as i32 {
                    Some(Vouch::Vote(r.term, r.to))
                } else {
                    None
                };
                out.push((r, v));
            }
            node.held.push_back(Held {
                flush: target,
                msgs: out,
                ready: None,
            });
            self.release_held(id)?;
            // A write that rolled into a new segment while a flush was in
            // flight: the moment a lost flush and a segment prepared ahead
            // meet (issue 11, defect 1). Crashes are aimed at it.
            if rolled
                && self.params.fault_level > 0
                && self.nodes[&id].is_up()
                && self.rng.chance(1, 2)
            {
                self.crash(id)?;
            }
            return Ok(());
        }
        let mut net = Vec::new();
        for r in std::mem::take(&mut m.responses) {
            if r.to == id {
                if let Err(e) = raw.step(r) {
                    self.log.push(
                        self.step,
                        Event::StepError {
                            id,
                            what: format!("{e:?}"),
                        },
                    );
                }
                continue;
            }
            // What this node vouches for to others is on its disk now.
            if !r.reject && r.r#type == MessageType::MsgAppResp as i32 {
                let et = corelog::raft::Storage::term(raw.store(), r.index).unwrap_or(0);
                node.last_ack = Some((r.term, r.index, et));
            } else if !r.reject && r.r#type == MessageType::MsgVoteResp as i32 {
                node.last_vote = Some((r.term, r.to));
            }
            net.push(r);
        }
        for r in net {
            self.send(r);
        }
        Ok(())
    }

    /// The apply thread of node `id` applies its oldest queued batch, then
    /// answers the node. Entries a snapshot installed meanwhile already
    /// covers are skipped.
    fn complete_apply(&mut self, id: u64) -> Check {
        let node = self.nodes.get_mut(&id).expect("exists");
        let Some(mut m) = node.apply_work.pop_front() else {
            return Ok(());
        };
        let term = node.term();
        let range = match (m.entries.first(), m.entries.last()) {
            (Some(a), Some(b)) => Some((a.index, b.index)),
            _ => None,
        };
        self.stats.storage_applies += 1;
        self.ev(Event::StorageApply {
            id,
            committed: range,
        });
        self.apply_entries(id, term, std::mem::take(&mut m.entries), true)?;
        if self.nodes[&id].failed.is_some() {
            self.stop_if_failed(id);
            if let Some(cs) = self.pending_conf.take() {
                self.membership(cs)?;
            }
            return Ok(());
        }
        let raw = self.nodes.get_mut(&id).expect("exists").raw();
        for r in std::mem::take(&mut m.responses) {
            if let Err(e) = raw.step(r) {
                self.log.push(
                    self.step,
                    Event::StepError {
                        id,
                        what: format!("{e:?}"),
                    },
                );
            }
        }
        if let Some(cs) = self.pending_conf.take() {
            self.membership(cs)?;
        }
        Ok(())
    }

    /// Applies committed entries to node `id`'s state machine (conf changes
    /// to its core), checking state machine safety. With `skip_applied`
    /// (asynchronous storage writes), entries at or below what the state
    /// machine holds, or at or below a snapshot the core accepted since (and
    /// whose write is pending), are skipped: the snapshot supersedes them,
    /// and the core took its configuration when it accepted it.
    fn apply_entries(
        &mut self,
        id: u64,
        term: u64,
        committed: Vec<Entry>,
        skip_applied: bool,
    ) -> Check {
        let node = self.nodes.get_mut(&id).expect("exists");
        let raw = node.raw.as_mut().expect("applies only on a running node");
        let pending_snap = raw
            .raft
            .raft_log
            .unstable
            .snapshot
            .as_ref()
            .map_or(0, |s| snap_meta(s).index);
        for e in committed {
            if node.failed.is_some() {
                break;
            }
            if skip_applied && e.index <= node.app.applied.max(pending_snap) {
                continue;
            }
            let h = self
                .checker
                .observe_apply(id, term, node.app.applied, node.app.hash, &e)?;
            node.app.applied = e.index;
            node.app.hash = h;
            let cc = match EntryType::try_from(e.r#type) {
                Ok(EntryType::EntryNormal) => {
                    if let (Some(floor), Some(&MARKER)) = (self.marker_floor, e.data.first())
                        && e.data.len() >= 9
                    {
                        let seq = u64::from_be_bytes(e.data[1..9].try_into().expect("8 bytes"));
                        if seq >= floor {
                            self.marker_applied = true;
                        }
                    }
                    None
                }
                Ok(EntryType::EntryConfChange) => Some(
                    ConfChange::decode(e.data.clone())
                        .map(|c| c.as_v2())
                        .map_err(|err| {
                            core_error(format!("node {id}: bad ConfChange at {}: {err}", e.index))
                        })?,
                ),
                Ok(EntryType::EntryConfChangeV2) => {
                    Some(ConfChangeV2::decode(e.data.clone()).map_err(|err| {
                        core_error(format!("node {id}: bad ConfChangeV2 at {}: {err}", e.index))
                    })?)
                }
                Err(_) => {
                    return Err(core_error(format!(
                        "node {id}: unknown entry type {}",
                        e.r#type
                    )));
                }
            };
            if let Some(cc) = cc {
                let cs = raw.apply_conf_change(&cc);
                node.app.conf_state = cs.clone();
                // Snapshot the state right away: a node this change adds
                // can only restore a snapshot whose configuration contains
                // it (the core ignores others, as etcd does), and the
                // leader sends the storage's latest snapshot.
                match raw.store_mut().create_snapshot(
                    node.app.applied,
                    Some(cs.clone()),
                    node.app.encode(),
                ) {
                    Ok(()) => {}
                    Err(err) if is_out_of_date(&err) => {}
                    // The WAL failed: the driver stops the node once this
                    // Ready (or apply) is over; nothing more is applied.
                    Err(StoreError::Failed(what) | StoreError::NoSpace(what)) => {
                        node.failed = Some(what)
                    }
                    Err(err) => {
                        return Err(core_error(format!("node {id} create_snapshot: {err}")));
                    }
                }
                self.stats.conf_changes_applied += 1;
                self.log.push(
                    self.step,
                    Event::ApplyConfChange {
                        id,
                        index: e.index,
                        conf: format!("{:?}", cs),
                    },
                );
                if e.index > self.latest_conf_index {
                    self.latest_conf_index = e.index;
                    self.pending_conf = Some(cs);
                }
            }
        }
        Ok(())
    }

    /// Checks and records the answers to reads a Ready of node `id` gave.
    fn answer_reads(&mut self, id: u64, read_states: &[corelog::raft::ReadState]) -> Check {
        for rs in read_states {
            let ctx = ctx_of(&rs.request_ctx).ok_or_else(|| {
                core_error(format!(
                    "node {id} answered a read with a context nobody sent"
                ))
            })?;
            self.checker.check_read(id, ctx, rs.index)?;
            if let Some(r) = self.calm_read.as_mut().filter(|r| r.ctx == ctx) {
                r.answered = true;
            }
            self.stats.reads_answered += 1;
            self.log.push(
                self.step,
                Event::ReadAnswered {
                    id,
                    ctx,
                    index: rs.index,
                },
            );
        }
        Ok(())
    }

    /// Acts on the newest configuration: starts the nodes it added (with
    /// empty disks: they catch up from the leader) and shuts down for good
    /// the nodes it no longer contains.
    fn membership(&mut self, cs: ConfState) -> Check {
        let members: BTreeSet<u64> = cs
            .voters
            .iter()
            .chain(&cs.voters_outgoing)
            .chain(&cs.learners)
            .chain(&cs.learners_next)
            .copied()
            .collect();
        for &id in &members {
            if self.retired.contains(&id) || self.leaving.iter().any(|&(x, _)| x == id) {
                return Err(core_error(format!(
                    "configuration {cs:?} contains node {id}, which was removed before"
                )));
            }
            if !self.nodes.contains_key(&id) {
                let cfg = self.config(id, 0);
                let disk = self.new_store(id, None)?;
                let node = SimNode::start(id, &cfg, disk, App::default())?;
                self.nodes.insert(id, node);
                self.ev(Event::Spawn { id });
            }
        }
        for &id in self.nodes.keys() {
            if !members.contains(&id) && !self.leaving.iter().any(|&(x, _)| x == id) {
                self.leaving.push((id, self.latest_conf_index));
            }
        }
        self.members = members;
        Ok(())
    }

    /// Whether every member of the newest configuration has it committed
    /// on disk: until then some may still run an older one.
    fn config_settled(&self) -> bool {
        self.members
            .iter()
            .filter_map(|id| self.nodes.get(id))
            .filter(|n| !n.is_dead())
            .all(|n| n.durable_commit() >= self.latest_conf_index)
    }

    /// Shuts down for good the removed nodes whose removal every member
    /// knows committed, durably (a crash must not make it forget). Not
    /// sooner: a removed leader that stops at once can
    /// leave the others holding the change uncommitted, still needing the
    /// removed nodes' votes (the operator's rule is the same: stop a removed
    /// member only once the rest of the cluster has the change).
    fn retire_leaving(&mut self) {
        if self.leaving.is_empty() {
            return;
        }
        let min_commit = self
            .members
            .iter()
            .filter_map(|id| self.nodes.get(id))
            .filter(|n| !n.is_dead())
            .map(|n| n.durable_commit())
            .min()
            .unwrap_or(0);
        let go: Vec<u64> = self
            .leaving
            .iter()
            .filter(|&&(_, idx)| min_commit >= idx)
            .map(|&(id, _)| id)
            .collect();
        self.leaving.retain(|&(_, idx)| min_commit < idx);
        for id in go {
            self.nodes.remove(&id);
            self.retired.insert(id);
            self.ev(Event::Retire { id });
        }
    }

    /// The invariants that are about every node's current state.
    fn check_step(&mut self) -> Check {
        self.retire_leaving();
        if self.nodes.values().filter(|n| n.is_leader()).count() > 1 {
            self.stats.two_leader_steps += 1;
        }
        for n in self.nodes.values() {
            let Some(raw) = n.raw.as_ref() else {
                continue;
            };
            if raw.raft.state == StateType::Leader {
                let term = raw.raft.term;
                if self.checker.observe_leader(n.id, term)? {
                    self.stats.leaders += 1;
                }
                let committed = raw.raft.raft_log.committed;
                self.checker
                    .check_leader(n.id, term, committed, &RaftLogView(raw))?;
            }
        }
        self.check_commits_in_leader_logs()?;
        if self.lease_reads {
            self.check_leases()?;
        }
        Ok(())
    }

    /// Every running node's commit index against every running leader of
    /// its term or later (see `Checker::check_commit_in_leader_log`).
    fn check_commits_in_leader_logs(&self) -> Check {
        let leaders: Vec<&SimNode> = self.nodes.values().filter(|n| n.is_leader()).collect();
        for n in self.nodes.values() {
            let Some(raw) = n.raw.as_ref() else {
                continue;
            };
            for l in leaders
                .iter()
                .filter(|l| l.id != n.id && l.term() >= n.term())
            {
                let lraw = l.raw.as_ref().expect("a leader is up");
                self.checker.check_commit_in_leader_log(
                    n.id,
                    raw.raft.raft_log.committed,
                    &RaftLogView(raw),
                    l.id,
                    &RaftLogView(lraw),
                )?;
            }
        }
        Ok(())
    }

    /// A leader whose lease holds would answer a read at once: no node may
    /// lead a later term meanwhile, or that read could miss its writes.
    /// Checked on the lease itself, after every step, so that a lease held
    /// too long is caught whether or not a read and a commit happen to
    /// fall in the window.
    fn check_leases(&self) -> Check {
        let leaders = || {
            self.nodes
                .values()
                .filter_map(|n| n.raw.as_ref())
                .map(|raw| &raw.raft)
                .filter(|r| r.state == StateType::Leader)
        };
        let Some(newest) = leaders().max_by_key(|r| r.term) else {
            return Ok(());
        };
        for r in leaders() {
            if r.term < newest.term && r.lease.holds(r.id, &r.trk.config.voters) {
                return Err(Violation {
                    invariant: checker::LEASE_EXCLUSIVE,
                    detail: format!(
                        "node {} (term {}) holds its lease at tick {} while node {} leads term {}",
                        r.id,
                        r.term,
                        r.lease.now(),
                        newest.id,
                        newest.term
                    ),
                });
            }
        }
        Ok(())
    }

    /// Faults stop, the network heals and every crashed node restarts; a
    /// leader must be elected and a proposal committed within the bound.
    fn calm(&mut self) -> Check {
        if self.wedged {
            return Ok(());
        }
        self.stats.calms += 1;
        self.ev(Event::Calm);
        self.heal_at = None;
        self.net.heal();
        if let Some(w) = self.wal.as_mut() {
            w.set_calm(true);
        }
        let result = self.calm_inner();
        if let Some(w) = self.wal.as_mut() {
            w.set_calm(false);
        }
        result
    }

    fn calm_inner(&mut self) -> Check {
        for id in self.down_ids() {
            self.restart(id)?;
        }
        let start = self.now;
        let bound = self.opts.liveness_timeouts * self.params.election_tick as u64;
        self.marker_floor = Some(self.next_prop);
        self.marker_applied = false;
        let mut last_try: Option<(u64, u64, u64)> = None; // (leader, term, tick)
        let result = loop {
            // Deliver everything due, handling Readies as they come.
            let mut budget = CALM_DELIVERIES_PER_TICK;
            loop {
                let ids: Vec<u64> = self.nodes.keys().copied().collect();
                let mut progressed = false;
                for id in ids {
                    if self.nodes.get(&id).is_some_and(|n| n.ready_now()) {
                        self.handle_ready(id)?;
                        progressed = true;
                    }
                }
                if let Some(pos) = self.net.first_deliverable(self.now) {
                    self.deliver(pos)?;
                    progressed = true;
                }
                let flushing: Vec<u64> = self.flushing_ids().collect();
                for id in flushing {
                    self.poll_disk(id, false)?;
                    progressed = true;
                }
                // A WAL that fails even now (a roll reporting the disk full
                // that its segment's preparation met before the calm) stops
                // its node; its supervisor restarts it at once.
                if self.wal.is_some() {
                    for id in self.down_ids() {
                        self.restart(id)?;
                        progressed = true;
                    }
                }
                let ids: Vec<u64> = self.nodes.keys().copied().collect();
                for id in ids {
                    while self
                        .nodes
                        .get(&id)
                        .is_some_and(|n| !n.append_work.is_empty())
                    {
                        self.complete_append(id)?;
                        progressed = true;
                    }
                    while self
                        .nodes
                        .get(&id)
                        .is_some_and(|n| !n.apply_work.is_empty())
                    {
                        self.complete_apply(id)?;
                        progressed = true;
                    }
                }
                self.check_step()?;
                if !progressed || budget == 0 {
                    break;
                }
                budget -= 1;
            }
            if self.marker_applied {
                break Ok(());
            }
            if self.now - start >= bound {
                let stale = self
                    .leader()
                    .is_some_and(|l| self.wedged_under_stale_leader(l));
                if (self.leader().is_none() || stale) && !self.config_settled() {
                    // Wedged by a membership change, a limitation of the
                    // protocol as etcd-raft defines it, not a bug: nodes
                    // apply a configuration only once they know it is
                    // committed, and a removed or demoted node never
                    // campaigns again. If the remaining voters have not
                    // learned that the change committed, they still need
                    // the old voters' votes, and an old voter holding a
                    // longer (uncommitted) tail refuses them for ever. Such
                    // a run goes on checking safety, not liveness.
                    self.wedged = true;
                    self.stats.wedged += 1;
                    self.ev(Event::Wedged {
                        leaving: self.leaving.iter().map(|&(id, _)| id).collect(),
                        nodes: self.describe_nodes(),
                    });
                    break Ok(());
                }
                break Err(Violation {
                    invariant: checker::LIVENESS,
                    detail: format!(
                        "no proposal committed within {bound} ticks of healing; nodes: {}",
                        self.describe_nodes()
                    ),
                });
            }
            if let Some(l) = self.leader() {
                let term = self.nodes[&l].term();
                match self.calm_read(l, term) {
                    Err(v) => break Err(v),
                    Ok(false) => {
                        self.tick_all();
                        continue;
                    }
                    Ok(true) => {}
                }
                let retry = match last_try {
                    Some((pl, pt, at)) => {
                        pl != l || pt != term || self.now - at >= self.params.election_tick as u64
                    }
                    None => true,
                };
                if retry {
                    last_try = Some((l, term, self.now));
                    self.propose(l, MARKER);
                    continue;
                }
            }
            self.tick_all();
        };
        self.marker_floor = None;
        self.calm_read = None;
        result?;
        if self.wedged {
            return Ok(());
        }
        let took = self.now - start;
        self.stats.max_liveness_ticks = self.stats.max_liveness_ticks.max(took);
        self.ev(Event::Live { ticks: took });
        Ok(())
    }

    /// Before the calm phase proposes anything, a read asked of the leader
    /// must be answered: a leader needs no proposal to serve reads (its
    /// empty entry commits an entry of its term), and a leader elected with
    /// uncommitted entries of earlier terms must commit them by itself.
    /// Returns whether the read was answered; asks again of each new
    /// leader (a read asked of a deposed one may be dropped).
    fn calm_read(&mut self, leader: u64, term: u64) -> Result<bool, Violation> {
        match self.calm_read {
            Some(r) if r.answered => return Ok(true),
            Some(r) if r.leader == leader && r.term == term => {
                let waited = self.now - r.since;
                let bound = READ_WAIT_TIMEOUTS * self.params.election_tick as u64;
                if waited < bound || self.wedged_under_stale_leader(leader) {
                    return Ok(false);
                }
                let raw = self.nodes[&leader].raw.as_ref().expect("a leader is up");
                return Err(Violation {
                    invariant: checker::READ_WAIT,
                    detail: format!(
                        "read {} asked of leader {leader} of term {term} unanswered after {waited} ticks of a healed network, no proposal made; leader commit {} last index {}; nodes: {}",
                        r.ctx,
                        raw.raft.raft_log.committed,
                        raw.raft.raft_log.last_index(),
                        self.describe_nodes()
                    ),
                });
            }
            _ => {}
        }
        let ctx = self.next_read;
        self.next_read += 1;
        let min_index = self.max_known_commit();
        self.checker.register_read(ctx, leader, min_index);
        self.ev(Event::ReadIndex {
            id: leader,
            ctx,
            min_index,
        });
        self.nodes
            .get_mut(&leader)
            .expect("up")
            .raw()
            .read_index(ctx_bytes(ctx));
        self.calm_read = Some(CalmRead {
            leader,
            term,
            ctx,
            since: self.now,
            answered: false,
        });
        Ok(false)
    }

    /// If `m` is a genuine rejection of a leader's probe (the leader is
    /// probing its sender, and `m` rejects the one probe in flight), what
    /// the probing rule needs to judge the leader's next probe.
    fn probe_rejection(&self, m: &Message) -> Option<ProbeRejection> {
        if m.r#type != MessageType::MsgAppResp as i32 || !m.reject {
            return None;
        }
        let raw = self.nodes.get(&m.to)?.raw.as_ref()?;
        if raw.raft.state != StateType::Leader || raw.raft.term != m.term {
            return None;
        }
        let pr = raw.raft.trk.progress.get(&m.from)?;
        let probing = pr.state == corelog::raft::tracker::ProgressState::Probe;
        if !probing || pr.next_idx.wrapping_sub(1) != m.index {
            return None;
        }
        Some(ProbeRejection {
            leader: m.to,
            follower: m.from,
            rejected: m.index,
            hint: (m.reject_hint, m.log_term),
            leader_term_at_hint: crate::checker::LogView::term(&RaftLogView(raw), m.reject_hint),
            matched: pr.matched,
        })
    }

    /// The leader's progress for the follower once it handled the
    /// rejection `p`.
    fn check_probe(&self, p: ProbeRejection) -> Check {
        let Some(raw) = self.nodes.get(&p.leader).and_then(|n| n.raw.as_ref()) else {
            return Ok(());
        };
        let Some(pr) = raw.raft.trk.progress.get(&p.follower) else {
            return Ok(());
        };
        let probing = pr.state == corelog::raft::tracker::ProgressState::Probe;
        self.checker.check_probe(
            p.leader,
            p.follower,
            p.rejected,
            p.hint,
            p.leader_term_at_hint,
            p.matched,
            (pr.next_idx, probing),
        )
    }

    fn describe_nodes(&self) -> String {
        let mut s = String::new();
        for n in self.nodes.values() {
            match n.raw.as_ref() {
                Some(r) => s.push_str(&format!(
                    "[{} {} term {} lead {} commit {} last {} applied {}] ",
                    n.id,
                    state_name(r.raft.state),
                    r.raft.term,
                    r.raft.lead,
                    r.raft.raft_log.committed,
                    r.raft.raft_log.last_index(),
                    n.app.applied
                )),
                None => s.push_str(&format!("[{} down] ", n.id)),
            }
        }
        s
    }
}
