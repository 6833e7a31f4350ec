//! `PeerNet`: one shard's peer network, on the shard's glommio executor.
//! It owns the shard's listener (inbound connections, `conn_in`) and one
//! outbound connection per remote (member, shard) it sends to
//! (`conn_out`), opened on the first send. Everything runs on the shard's
//! thread: `Rc`, `Cell`, `RefCell`, no locks, no atomics.
//!
//! The shard loop's view, once per turn: drain the [`Inbox`], `send` what
//! Raft produced (queued into per-peer frames, payloads not copied),
//! `flush` (every peer's frame goes out, one vectored write per
//! connection), `take_unreachable` (the (member, group) pairs whose
//! messages were dropped, for `report_unreachable`).
//!
//! Connections are one-way: a shard writes frames only on connections it
//! dialled and reads them only on connections it accepted, so two shards
//! that talk both ways hold two connections (one per direction), and
//! neither side ever has to decide which of two crossing dials wins.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::conn_out::{self, Peer};
use super::signal::{Latch, Notify};
use super::stats::Stats;
use super::{Error, Limits, conn_in};
use crate::cluster::{Cluster, Member, shard_of};
use crate::raftpb::Message;

pub use super::inbox::Inbox;
pub use super::stats::NetStats;

/// What a shard's peer network needs to know.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The cluster: members, their addresses and shard counts.
    pub cluster: Arc<Cluster>,
    /// This member's id.
    pub member: u64,
    /// This shard's index.
    pub shard: u32,
    /// Bounds of every frame, both ways.
    pub limits: Limits,
    /// Bound of the bytes queued toward one remote (member, shard) and
    /// not yet written. A send is refused once the queue holds this much,
    /// so the queue exceeds it by at most one message.
    pub max_queue_bytes: usize,
    /// First reconnect delay after a failure (jittered, see `backoff`).
    pub backoff_min: Duration,
    /// Cap of the doubling reconnect delay.
    pub backoff_max: Duration,
    /// Seed of the reconnect jitter (from the OS at startup).
    pub seed: u64,
}

/// Tuning of the connections, with defaults fit for a server; tests
/// shorten the timeouts.
#[derive(Debug, Clone, Copy)]
pub struct NetOptions {
    /// How long a dial may take.
    pub connect_timeout: Duration,
    /// How long either side waits for the other's handshake.
    pub handshake_timeout: Duration,
    /// Inbound connections open at once (a peer that opens more is
    /// closed at once).
    pub max_inbound_connections: usize,
    /// Receive buffer bytes reserved per read (frames larger than this
    /// reserve their own size).
    pub read_buffer_bytes: usize,
    /// Carry the plain heartbeats (and responses) of a turn toward one
    /// peer as one batch record per frame (heartbeats.rs) rather than one
    /// message each.
    pub coalesce_heartbeats: bool,
    /// Bytes of one snapshot an inbound connection assembles at most
    /// (snapchunk.rs); a chunk announcing more closes the connection.
    pub max_snapshot_bytes: u64,
    /// Bytes of snapshots all inbound connections of the shard assemble
    /// at once, at most.
    pub max_snapshot_bytes_total: u64,
    /// Data bytes per snapshot chunk sent (at most one chunk per
    /// connection per flush, so a snapshot shares the connection with
    /// the other groups' messages).
    pub snapshot_chunk_bytes: usize,
    /// The cluster's shared secret: every connection, both ways, runs
    /// the shared-secret exchange (`peer_auth`) and a peer without the
    /// secret is refused. `None`: no exchange, and a peer that offers
    /// one is refused.
    pub auth: Option<crate::auth::AuthKey>,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
            max_inbound_connections: 1024,
            read_buffer_bytes: 64 << 10,
            coalesce_heartbeats: true,
            max_snapshot_bytes: 256 << 20,
            max_snapshot_bytes_total: 512 << 20,
            snapshot_chunk_bytes: super::snapchunk::CHUNK_BYTES,
            auth: None,
        }
    }
}

/// Why a message was not queued. The caller treats the message as lost
/// (Raft retries) and reports the member unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// `to` is not a member of the cluster.
    UnknownMember { member: u64 },
    /// The queue toward the member's shard holds `max_queue_bytes`.
    QueueFull {
        member: u64,
        shard: u32,
        queued_bytes: u64,
        limit: u64,
    },
    /// The encoder refused the message: a local-only message, or one that
    /// alone breaks a frame limit.
    Encode(Error),
    /// The network is shut down.
    Shutdown,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownMember { member } => {
                write!(f, "peer-net: no member {member} in the cluster")
            }
            SendError::QueueFull {
                member,
                shard,
                queued_bytes,
                limit,
            } => write!(
                f,
                "peer-net: queue to member {member} shard {shard} holds {queued_bytes} bytes (limit {limit})"
            ),
            SendError::Encode(e) => write!(f, "peer-net: {e}"),
            SendError::Shutdown => write!(f, "peer-net: shut down"),
        }
    }
}

impl std::error::Error for SendError {}

/// State shared by the `PeerNet` handle and its tasks.
pub(crate) struct Shared {
    pub(crate) cfg: NetConfig,
    pub(crate) opts: NetOptions,
    /// This member, as the cluster describes it.
    pub(crate) local: Member,
    pub(crate) stats: Stats,
    /// (member, group) pairs dropped since the last `take_unreachable`.
    pub(crate) unreachable: RefCell<Vec<(u64, u64)>>,
    /// (member, group, written) of MsgSnaps done with since the last
    /// `take_snapshot_reports`.
    pub(crate) snapshot_reports: RefCell<Vec<(u64, u64, bool)>>,
    /// Snapshot bytes the inbound connections are assembling.
    pub(crate) snapshot_bytes: Rc<Cell<u64>>,
    pub(crate) shutdown: Latch,
    /// Inbound connections open.
    pub(crate) inbound: Cell<usize>,
    /// Tasks alive, and the signal of one ending (for `shutdown`).
    tasks: Cell<usize>,
    task_ended: Notify,
}

impl Shared {
    /// Counts a task alive until the guard drops (when the task ends or
    /// is dropped).
    pub(crate) fn task_guard(self: &Rc<Self>) -> TaskGuard {
        self.tasks.set(self.tasks.get() + 1);
        TaskGuard { net: self.clone() }
    }
}

/// Held by every task of a `PeerNet`; `shutdown` waits for all to drop.
pub(crate) struct TaskGuard {
    net: Rc<Shared>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.net.tasks.set(self.net.tasks.get() - 1);
        self.net.task_ended.notify();
    }
}

/// One shard's peer network. See the module doc.
pub struct PeerNet {
    shared: Rc<Shared>,
    peers: RefCell<HashMap<(u64, u32), Rc<Peer>>>,
    /// Peers sent to since the last flush.
    dirty: RefCell<Vec<Rc<Peer>>>,
    local_addr: SocketAddr,
}

impl PeerNet {
    /// Binds the listener on `cluster.member(member).peer_addr_of_shard(shard)`
    /// and spawns the accept loop on the current glommio executor, with
    /// the default [`NetOptions`]. Inbound frames are decoded and pushed
    /// to `inbox`.
    pub fn start(cfg: NetConfig, inbox: Inbox) -> Result<Rc<PeerNet>, Error> {
        Self::start_with(cfg, NetOptions::default(), inbox)
    }

    /// As [`PeerNet::start`], with explicit options.
    pub fn start_with(
        cfg: NetConfig,
        opts: NetOptions,
        inbox: Inbox,
    ) -> Result<Rc<PeerNet>, Error> {
        let Some(local) = cfg.cluster.member(cfg.member).cloned() else {
            return Err(Error::UnknownMember {
                role: "local",
                id: cfg.member,
            });
        };
        let Some(addr) = local.peer_addr_of_shard(cfg.shard) else {
            return Err(Error::UnknownShard {
                member: local.id,
                shard: cfg.shard,
                shard_count: local.shards,
            });
        };
        let (listener, local_addr) = super::accept::bind(addr).map_err(|e| Error::Bind {
            addr,
            kind: e.kind(),
        })?;
        let shared = Rc::new(Shared {
            cfg,
            opts,
            local,
            stats: Stats::default(),
            unreachable: RefCell::default(),
            snapshot_reports: RefCell::default(),
            snapshot_bytes: Rc::new(Cell::new(0)),
            shutdown: Latch::default(),
            inbound: Cell::new(0),
            tasks: Cell::new(0),
            task_ended: Notify::default(),
        });
        let guard = shared.task_guard();
        glommio::spawn_local(conn_in::accept_loop(shared.clone(), listener, inbox, guard)).detach();
        Ok(Rc::new(PeerNet {
            shared,
            peers: RefCell::default(),
            dirty: RefCell::default(),
            local_addr,
        }))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues `msg` of `group` for member `to` (its shard is
    /// `shard_of(group, to.shards)`). Never blocks, never copies entry
    /// payloads above the encoder's inline size. `Err` when the member is
    /// unknown, the queue toward it is full, the encoder refuses the
    /// message or the network is shut down: the caller treats the message
    /// as lost (Raft retries) and calls `report_unreachable`. A message
    /// toward a peer that is down is dropped at once and reported through
    /// [`PeerNet::take_unreachable`] (returns `Ok`).
    pub fn send(&self, to: u64, group: u64, msg: Message) -> Result<(), SendError> {
        if self.shared.shutdown.is_set() {
            return Err(SendError::Shutdown);
        }
        let peer = self.peer_for(to, group)?;
        let r = peer.send(&self.shared, group, msg);
        if !peer.dirty.replace(true) {
            self.dirty.borrow_mut().push(peer);
        }
        r
    }

    fn peer_for(&self, to: u64, group: u64) -> Result<Rc<Peer>, SendError> {
        let Some(m) = self.shared.cfg.cluster.member(to) else {
            return Err(SendError::UnknownMember { member: to });
        };
        let shard = shard_of(group, m.shards);
        if let Some(p) = self.peers.borrow().get(&(to, shard)) {
            return Ok(p.clone());
        }
        let Some(addr) = m.peer_addr_of_shard(shard) else {
            // shard_of is below the shard count, and Cluster::new checked
            // every shard's port: this cannot happen with a valid cluster.
            return Err(SendError::UnknownMember { member: to });
        };
        let peer = Rc::new(Peer::new(to, shard, addr));
        self.peers.borrow_mut().insert((to, shard), peer.clone());
        let guard = self.shared.task_guard();
        glommio::spawn_local(conn_out::run(self.shared.clone(), peer.clone(), guard)).detach();
        Ok(peer)
    }

    /// End of a loop turn: everything queued since the last flush goes
    /// out, per remote (member, shard), as frames written with one
    /// vectored write per connection.
    pub fn flush(&self) {
        let mut dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        for p in &dirty {
            p.dirty.set(false);
            p.flush(&self.shared);
        }
        // A peer with snapshot chunks left stays on the list: one chunk
        // goes out per flush.
        dirty.retain(|p| p.has_snapshot_chunks());
        for p in &dirty {
            p.dirty.set(true);
        }
        self.dirty.borrow_mut().append(&mut dirty);
        // Give the vector's capacity back for the next turn.
        let mut d = self.dirty.borrow_mut();
        if d.is_empty() {
            let mut dirty = dirty;
            dirty.clear();
            *d = dirty;
        }
    }

    /// (member, group) pairs whose queued messages were dropped since the
    /// last call (connection failed, not connected), each pair once: the
    /// shard calls `RawNode::report_unreachable` for each.
    pub fn take_unreachable(&self, out: &mut Vec<(u64, u64)>) {
        let mut u = self.shared.unreachable.borrow_mut();
        if u.is_empty() {
            return;
        }
        u.sort_unstable();
        u.dedup();
        out.append(&mut u);
    }

    /// (member, group, written) of the MsgSnaps done with since the last
    /// call: written whole to the peer's socket (`true`), or dropped with
    /// the queue (`false`).
    pub fn take_snapshot_reports(&self, out: &mut Vec<(u64, u64, bool)>) {
        out.append(&mut self.shared.snapshot_reports.borrow_mut());
    }

    /// Whether snapshot chunks wait to be sent (the shard's loop turns
    /// again for them).
    pub fn sending_snapshots(&self) -> bool {
        !self.dirty.borrow().is_empty()
    }

    /// The counters so far.
    pub fn stats(&self) -> NetStats {
        self.shared.stats.get()
    }

    /// Closes the listener and every connection and waits until every
    /// task of this network has stopped. Queued messages are dropped (and
    /// reported unreachable). Sends afterwards fail with `Shutdown`.
    pub async fn shutdown(&self) {
        self.shared.shutdown.set();
        for p in self.peers.borrow().values() {
            p.wake();
        }
        while self.shared.tasks.get() > 0 {
            self.shared.task_ended.notified().await;
        }
    }
}

impl Drop for PeerNet {
    /// Without `shutdown`, the tasks are still told to stop.
    fn drop(&mut self) {
        self.shared.shutdown.set();
        for p in self.peers.borrow().values() {
            p.wake();
        }
    }
}
