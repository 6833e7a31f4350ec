//! Starting a shard (`spawn`: its thread, its WAL, its groups, its
//! network, its loop) and reaching it from outside (`ShardHandle`). The
//! shard's thread is one glommio `LocalExecutor`, pinned to a CPU when
//! asked; everything on it is `!Send` and lock-free, and the handle is the
//! one thing that crosses threads.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};

use super::appender::Appender;
use super::apply::{ApplyFactory, SnapshotFault};
use super::config::{ConfigError, RuntimeConfig};
use super::group::{Group, raft_config};
use super::mailbox::Mailbox;
use super::memlock::raise_memlock;
use super::oneshot;
use super::peers::{PeerEnv, PeersFactory};
use super::run::Loop;
use super::seed::os_random_u64;
use super::snapfile::{self, SnapFileError};
use super::state::{Shard, ShardReport};
use super::wake::FlushWake;
use crate::cluster::Cluster;
use crate::raft;
use crate::raftpb::ConfState;
use crate::wal::{self, Wal, WalStorage};

/// How a shard's groups come to be.
#[derive(Debug, Clone)]
pub enum Boot {
    /// A new member: its WAL directory is empty; each group starts with
    /// its initial configuration, and the groups listed in `campaign`
    /// campaign at once.
    New {
        groups: Vec<(u64, ConfState)>,
        campaign: Vec<u64>,
    },
    /// A restart: every group the WAL holds, as it holds it.
    Existing,
}

/// Everything a shard starts from.
#[derive(Clone)]
pub struct ShardSpec {
    pub index: u32,
    pub member: u64,
    pub cluster: Arc<Cluster>,
    pub cfg: RuntimeConfig,
    /// The shard's WAL directory (`<data>/shard-<index>`).
    pub wal_dir: PathBuf,
    /// The CPU to pin the shard's thread to (`None`: not pinned).
    pub cpu: Option<usize>,
    pub boot: Boot,
    pub apply: ApplyFactory,
    /// The shard's network (`None`: no peers, a one-member cluster).
    pub peers: Option<PeersFactory>,
    /// Start held: the loop (ticks, elections, the network) begins only
    /// at `ShardHandle::release`. Bootstrap holds every shard until the
    /// member's identity file is durable, so that nothing is promised
    /// (a vote, an acknowledged entry) from a directory a crash could
    /// leave without it.
    pub held: bool,
}

/// Why a shard did not start.
#[derive(Debug)]
pub enum StartError {
    Config(ConfigError),
    Memlock(io::Error),
    /// glommio could not make the executor (io_uring, memlock, CPU).
    Executor(String),
    Wal(wal::Error),
    Raft {
        group: u64,
        error: raft::Error,
    },
    Seed(io::Error),
    Peers(String),
    /// A group's snapshot, which the WAL names, could not be loaded: the
    /// group cannot start without it (never a silently empty state).
    Snapshot {
        group: u64,
        index: u64,
        error: SnapshotLoadError,
    },
    /// The shard's thread ended before saying whether it started.
    Died,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Memlock(e) => write!(f, "raising RLIMIT_MEMLOCK: {e}"),
            StartError::Executor(e) => write!(f, "starting the shard's executor: {e}"),
            StartError::Wal(e) => write!(f, "{e}"),
            StartError::Raft { group, error } => write!(f, "group {group}: {error}"),
            StartError::Seed(e) => write!(f, "reading OS randomness: {e}"),
            StartError::Peers(e) => write!(f, "starting the peer network: {e}"),
            StartError::Snapshot {
                group,
                index,
                error,
            } => write!(f, "group {group}: its snapshot at {index}: {error}"),
            StartError::Died => write!(f, "the shard's thread died while starting"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<wal::Error> for StartError {
    fn from(e: wal::Error) -> Self {
        StartError::Wal(e)
    }
}

/// Why a group's snapshot could not be loaded at a restart.
#[derive(Debug)]
pub enum SnapshotLoadError {
    /// The file is missing, unreadable or too large.
    File(SnapFileError),
    /// The state machine refused its contents (a crc error, a bad count).
    Refused(SnapshotFault),
}

impl fmt::Display for SnapshotLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotLoadError::File(e) => write!(f, "{e}"),
            SnapshotLoadError::Refused(e) => write!(f, "{e}"),
        }
    }
}

/// The shard is gone (stopped, or its thread ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardGone;

impl fmt::Display for ShardGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the shard is gone")
    }
}

impl std::error::Error for ShardGone {}

/// A running shard, seen from any thread.
pub struct ShardHandle {
    index: u32,
    mailbox: Arc<Mailbox>,
    report: Arc<ShardReport>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

impl ShardHandle {
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Runs `f` on the shard's thread and waits (blocking this thread)
    /// for the future it returns. For plain threads (the process, tests):
    /// called from another executor it would block that executor.
    pub fn call<F, Fut, R>(&self, f: F) -> Result<R, ShardGone>
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.mailbox
            .post(Box::new(move |shard: &Rc<Shard>| {
                let fut = f(shard.clone());
                glommio::spawn_local(async move {
                    let _ = tx.send(fut.await);
                })
                .detach();
            }))
            .map_err(|_| ShardGone)?;
        rx.recv().map_err(|_| ShardGone)
    }

    /// Why the shard stopped serving, if its WAL failed.
    pub fn failure(&self) -> Option<String> {
        self.report.failure()
    }

    /// Why the shard's WAL has no room, while it has none (it takes
    /// nothing new meanwhile; `Shard::storage_full` on its thread).
    pub fn storage_full(&self) -> Option<String> {
        self.report.storage_full()
    }

    /// Lets a shard started `held` begin its loop.
    pub fn release(&self) -> Result<(), ShardGone> {
        self.mailbox
            .post(Box::new(|s: &Rc<Shard>| {
                if let Some(tx) = s.gate.borrow_mut().take() {
                    tx.send(());
                }
            }))
            .map_err(|_| ShardGone)
    }

    /// Stops the shard (waiting requests fail with `ShuttingDown`; the
    /// flush in flight completes) and joins its thread. `Err` if the
    /// thread panicked.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), String> {
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        let _ = self.mailbox.post(Box::new(|s: &Rc<Shard>| {
            s.stopping.set(true);
            s.signal.ring();
            // A held shard never ran: dropping the gate ends it.
            drop(s.gate.borrow_mut().take());
        }));
        t.join().map_err(|e| e.to_string())
    }
}

impl Drop for ShardHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts a shard and returns once it serves (or why it could not).
pub fn spawn(spec: ShardSpec) -> Result<ShardHandle, StartError> {
    spec.cfg.validate().map_err(StartError::Config)?;
    raise_memlock().map_err(StartError::Memlock)?;
    let placement = match spec.cpu {
        Some(c) => Placement::Fixed(c),
        None => Placement::Unbound,
    };
    let mailbox = Arc::new(Mailbox::default());
    let report = Arc::new(ShardReport::default());
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), StartError>>(1);
    let index = spec.index;
    let (mb, rp) = (mailbox.clone(), report.clone());
    // One blocking thread, said here rather than left to glommio's
    // default (also one): the shard's blocking work runs there in the
    // order the loop spawns it, and relies on that. A snapshot file's
    // write and `snapfile::remove_older` of the same group (which deletes
    // the group's temporary files) never overlap; WAL segment deletion
    // (`Reclaim::run`, one round at a time) never races a snapshot write
    // for the disk's room. More threads would need explicit ordering.
    let pool = PoolPlacement::from(placement.clone());
    let thread = LocalExecutorBuilder::new(placement)
        .blocking_thread_pool_placement(pool)
        .name(&format!("shard-{index}"))
        .io_memory(spec.cfg.io_memory)
        .spawn(move || async move {
            let held = spec.held;
            let (shard, lp, wake) = match start(spec, rp).await {
                Ok(s) => s,
                Err(e) => {
                    mb.close();
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let gate = if held {
                let (tx, rx) = oneshot::channel();
                *shard.gate.borrow_mut() = Some(tx);
                Some(rx)
            } else {
                None
            };
            let _ = ready_tx.send(Ok(()));
            serve(shard, lp, wake, mb, gate).await;
        })
        .map_err(|e| StartError::Executor(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(ShardHandle {
            index,
            mailbox,
            report,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(StartError::Died)
        }
    }
}

/// Opens the WAL, builds the groups and the network: everything before
/// the first turn.
async fn start(
    spec: ShardSpec,
    report: Arc<ShardReport>,
) -> Result<(Rc<Shard>, Loop, Rc<FlushWake>), StartError> {
    let cfg = spec.cfg.clone();
    let mut opts = wal::Options::new(spec.cluster.id(), u64::from(spec.index));
    opts.segment_size = cfg.wal_segment_size;
    opts.max_flush_bytes = cfg.wal_max_flush_bytes;
    opts.cache_bytes = cfg.wal_cache_bytes;
    opts.max_disk_bytes = cfg.wal_max_disk_bytes;
    opts.unsafe_no_fsync = cfg.unsafe_no_fsync;
    // Opening recovers the directory and, when it is new, creates the
    // first segment: both on this thread, before the shard serves.
    let wal = Rc::new(RefCell::new(Wal::open(&spec.wal_dir, opts)?));
    let wake = Rc::new(FlushWake::register(&wal.borrow())?);

    let (ids, campaign) = match &spec.boot {
        Boot::New { groups, campaign } => {
            for (g, cs) in groups {
                let _ = WalStorage::new(wal.clone(), *g).set_conf_state(cs.clone())?;
            }
            // Durable before any group runs: a vote or an entry must never
            // precede the configuration it was cast in.
            let n = wal.borrow_mut().start_flush()?;
            if let Some(n) = n {
                while wal.borrow_mut().poll_flush()? < n {
                    wake.wait().await.map_err(|e| {
                        StartError::Wal(wal::Error::io("eventfd read", spec.wal_dir.clone(), e))
                    })?;
                }
            }
            (groups.iter().map(|(g, _)| *g).collect(), campaign.clone())
        }
        Boot::Existing => {
            let ids: Vec<u64> = wal.borrow().group_ids().collect();
            (ids, Vec::new())
        }
    };

    let snap_dir = snapfile::dir_of(&spec.wal_dir);
    let shard = Rc::new(Shard::new(
        spec.index,
        spec.member,
        cfg.clone(),
        wal.clone(),
        report,
        snap_dir.clone(),
    ));
    for id in ids {
        let seed = os_random_u64().map_err(StartError::Seed)?;
        let rc = raft_config(spec.member, &cfg, seed);
        let preferred = spec
            .cluster
            .replicas(id)
            .ok()
            .and_then(|r| r.first().copied());
        // Read contexts of this life start apart from any earlier one's.
        let read_ctx = os_random_u64().map_err(StartError::Seed)?;
        let mut g = Group::new(id, &rc, wal.clone(), (spec.apply)(id), preferred, read_ctx)
            .map_err(|error| StartError::Raft { group: id, error })?;
        // A compacted group: its state machine starts from the snapshot
        // the WAL names, then the loop hands it the entries after it. Read
        // here, before the shard serves, as the WAL's recovery is.
        let snap_index = wal.borrow().snapshot(id).map_or(0, |m| m.index);
        if snap_index > 0 {
            let bad = |error| StartError::Snapshot {
                group: id,
                index: snap_index,
                error,
            };
            let data = snapfile::read(&snap_dir, id, snap_index, cfg.max_snapshot_bytes)
                .map_err(|e| bad(SnapshotLoadError::File(e)))?;
            let first = wal.borrow().first_index(id);
            g.restore_at_start(snap_index, data, first)
                .map_err(|e| bad(SnapshotLoadError::Refused(e)))?;
        }
        let g = Rc::new(RefCell::new(g));
        shard.groups.borrow_mut().insert(id, g);
    }
    for id in campaign {
        if let Some(g) = shard.groups.borrow().get(&id) {
            let mut grp = g.borrow_mut();
            let _ = grp.raw.campaign();
            shard.mark_dirty(&mut grp, g);
        }
    }
    let peers = match &spec.peers {
        Some(f) => {
            let env = PeerEnv {
                cluster: spec.cluster.clone(),
                member: spec.member,
                shard: spec.index,
                seed: os_random_u64().map_err(StartError::Seed)?,
            };
            Some(f(&env).map_err(StartError::Peers)?)
        }
        None => None,
    };
    *shard.peers.borrow_mut() = peers.clone();
    let lp = Loop::new(shard.clone(), Appender::new(wal), peers);
    Ok((shard, lp, wake))
}

/// The shard's life after its start: the ticker, the flush watcher and
/// the mailbox beside the loop, until the loop ends.
async fn serve(
    shard: Rc<Shard>,
    lp: Loop,
    wake: Rc<FlushWake>,
    mailbox: Arc<Mailbox>,
    gate: Option<oneshot::Receiver<()>>,
) {
    let done = Rc::new(std::cell::Cell::new(false));
    let mb = mailbox.clone();
    let sh = shard.clone();
    let commands = glommio::spawn_local(async move { mb.serve(sh).await });
    if let Some(g) = gate {
        if g.await.is_none() {
            // Stopped before it was released.
            shard.fail_requests(&crate::node::ProposeError::ShuttingDown);
            mailbox.close();
            commands.await;
            return;
        }
    }
    let ticks = glommio::spawn_local(ticker(shard.clone(), done.clone()));
    let flushes = glommio::spawn_local(watch_flushes(shard.clone(), wake.clone(), done.clone()));
    // Something may be due already (campaigns at bootstrap).
    shard.signal.ring();
    lp.run().await;
    // Every task of the shard ends before its thread does, so that the
    // WAL (and its directory lock) is released before `stop` returns.
    done.set(true);
    mailbox.close();
    wake.poke();
    commands.await;
    ticks.await;
    flushes.await;
    shard.groups.borrow_mut().clear();
    shard.dirty.borrow_mut().clear();
    shard.peers.borrow_mut().take();
}

/// Counts ticks at `RuntimeConfig::tick` and rings the loop for each.
async fn ticker(shard: Rc<Shard>, done: Rc<std::cell::Cell<bool>>) {
    let tick = shard.cfg.tick;
    let mut next = Instant::now() + tick;
    while !done.get() {
        let now = Instant::now();
        if next > now {
            glommio::timer::sleep(next - now).await;
        }
        shard.ticks_due.set(shard.ticks_due.get().saturating_add(1));
        shard.signal.ring();
        next += tick;
        // After a stall, count from now: the loop caps the ticks it runs
        // per turn anyway.
        let now = Instant::now();
        if next < now {
            next = now + tick;
        }
    }
}

/// Rings the loop whenever the WAL's ring posts a completion.
async fn watch_flushes(shard: Rc<Shard>, wake: Rc<FlushWake>, done: Rc<std::cell::Cell<bool>>) {
    loop {
        let r = wake.wait().await;
        if done.get() {
            return;
        }
        if let Err(e) = r {
            shard.poison(format!("reading the WAL's completion eventfd: {e}"));
            shard.signal.ring();
            return;
        }
        shard.signal.ring();
    }
}
