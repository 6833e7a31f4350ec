//! `ShardServer`: one shard's client service, on the shard's thread. It
//! owns the shard's client listener (`client_addr + shard`), the accept
//! loop, and the registry of open connections, and stops them: first no
//! more accepting and no more reading (each connection answers what it
//! has in flight), then, past a grace period, closing what is left.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future::or;
use glommio::net::TcpListener;

use super::config::ConnLimits;
use super::conn::{self, ConnState, ShardBudget};
use super::retention::Retention;
use super::signal::{Latch, Notify};
use crate::cluster::Cluster;
use crate::shard::Shard;
use crate::shard::latency::Latency;
use crate::transport::accept;

/// Counters of one shard's client service.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    pub accepted: u64,
    /// Connections closed at once: the shard holds `max_connections`.
    pub refused_connections: u64,
    /// Connections closed for a frame that cannot be trusted (bad crc,
    /// length above the limit).
    pub bad_frames: u64,
    pub requests: u64,
    /// Records and batch bytes of appends answered as appended (not
    /// duplicates).
    pub appended_records: u64,
    pub appended_bytes: u64,
    /// Connections closed after `idle_timeout` with nothing in flight.
    pub idle_closed: u64,
    /// Truncates committed by size or age retention (retention.rs).
    pub retention_truncates: u64,
}

/// One shard's client service (see the module doc).
pub struct ShardServer {
    pub(crate) shard: Rc<Shard>,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) limits: ConnLimits,
    pub(crate) local_addr: SocketAddr,
    /// Set when the server stops: accept nothing, read nothing more.
    pub(crate) stopping: Latch,
    /// Bytes held by all the shard's connections, against
    /// `max_shard_bytes`.
    pub(crate) budget: Rc<ShardBudget>,
    /// Open connections, by id: told to stop, or closed.
    conns: RefCell<HashMap<u64, Rc<ConnState>>>,
    next_conn: Cell<u64>,
    /// A connection closed (for `stop`'s wait).
    closed: Notify,
    accept_done: Cell<bool>,
    pub(crate) stats: Cell<ServerStats>,
    /// Answers sent, by what they are (`append`, `read`, ..., or the
    /// error's kind: `not_leader`, `timeout`, ...).
    pub(crate) answers: RefCell<std::collections::BTreeMap<&'static str, u64>>,
    /// Error answers sent, by kind.
    errors: RefCell<std::collections::BTreeMap<&'static str, u64>>,
    /// Appends answered, from proposal to commit and apply.
    commit_latency: Cell<Latency>,
}

impl ShardServer {
    /// Binds the shard's client port and starts accepting, on the current
    /// (the shard's) executor.
    pub fn start(
        shard: Rc<Shard>,
        cluster: Arc<Cluster>,
        limits: ConnLimits,
        retention: Retention,
    ) -> std::io::Result<Rc<ShardServer>> {
        let member = cluster
            .member(shard.member())
            .ok_or_else(|| std::io::Error::other("this member is not in the cluster"))?;
        let addr = member
            .client_addr_of_shard(shard.index())
            .ok_or_else(|| std::io::Error::other("no client port for this shard"))?;
        // As the peer network's: a second process on the same port fails
        // to bind rather than silently sharing it.
        let (listener, local_addr) = accept::bind(addr)
            .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
        let srv = Rc::new(ShardServer {
            shard,
            cluster,
            limits,
            local_addr,
            stopping: Latch::default(),
            budget: Rc::new(ShardBudget::new(limits.max_shard_bytes)),
            conns: RefCell::default(),
            next_conn: Cell::new(0),
            closed: Notify::default(),
            accept_done: Cell::new(false),
            stats: Cell::new(ServerStats::default()),
            answers: RefCell::default(),
            errors: RefCell::default(),
            commit_latency: Cell::new(Latency::default()),
        });
        glommio::spawn_local(accept_loop(srv.clone(), listener)).detach();
        glommio::spawn_local(watch_storage(srv.clone())).detach();
        if !retention.is_off() {
            glommio::spawn_local(super::retention::enforce(srv.clone(), retention)).detach();
        }
        Ok(srv)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> ServerStats {
        self.stats.get()
    }

    /// Bytes the shard's connections hold now (requests in flight, the
    /// answers they may take, answers unwritten).
    pub fn bytes_held(&self) -> u64 {
        self.budget.used()
    }

    /// Client connections open now.
    pub fn connections(&self) -> usize {
        self.conns.borrow().len()
    }

    /// Answers sent so far, by kind.
    pub fn answers(&self) -> Vec<(&'static str, u64)> {
        self.answers
            .borrow()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    pub(crate) fn count_answer(&self, resp: &crate::clientpb::Response) {
        let kind = answer_kind(resp);
        *self.answers.borrow_mut().entry(kind).or_default() += 1;
        if let Some(crate::clientpb::response::Result::Error(_)) = &resp.result {
            *self.errors.borrow_mut().entry(kind).or_default() += 1;
        }
    }

    /// Error answers sent so far, by kind.
    pub fn errors(&self) -> Vec<(&'static str, u64)> {
        self.errors.borrow().iter().map(|(k, v)| (*k, *v)).collect()
    }

    pub(crate) fn record_commit(&self, d: Duration) {
        let mut l = self.commit_latency.get();
        l.record(d);
        self.commit_latency.set(l);
    }

    /// Appends answered so far, proposal to commit and apply.
    pub fn commit_latency(&self) -> Latency {
        self.commit_latency.get()
    }

    pub(crate) fn bump(&self, f: impl FnOnce(&mut ServerStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// How long a request may wait for the log: the runtime's timeout.
    pub(crate) fn request_timeout(&self) -> Duration {
        let cfg = self.shard.config();
        cfg.tick
            .saturating_mul(u32::try_from(cfg.request_timeout_ticks).unwrap_or(u32::MAX))
    }

    /// Stops accepting and reading; each connection answers what it has
    /// in flight and closes. Connections still open after `grace` are
    /// closed. Returns once every connection is closed.
    pub async fn stop(&self, grace: Duration) {
        self.stopping.set();
        for c in self.conns.borrow().values() {
            c.stop_signal();
        }
        let graceful = async {
            while !self.conns.borrow().is_empty() || !self.accept_done.get() {
                self.closed.notified().await;
            }
            true
        };
        let timed = async {
            glommio::timer::sleep(grace).await;
            false
        };
        if !or(graceful, timed).await {
            for c in self.conns.borrow().values() {
                c.close_now();
            }
            while !self.conns.borrow().is_empty() {
                self.closed.notified().await;
            }
        }
    }

    fn closed_conn(&self, id: u64) {
        self.conns.borrow_mut().remove(&id);
        self.closed.notify();
    }
}

/// How often the shard's WAL is looked at for a failure.
const STORAGE_WATCH: Duration = Duration::from_millis(50);

/// Wakes every connection's tails once the shard's WAL fails: a tail
/// waiting for records would otherwise wait for ever (no record comes
/// any more) instead of answering `Unavailable`.
async fn watch_storage(srv: Rc<ShardServer>) {
    while !srv.stopping.is_set() {
        if srv.shard.failure().is_some() {
            for c in srv.conns.borrow().values() {
                c.events.bump();
            }
            return;
        }
        or(glommio::timer::sleep(STORAGE_WATCH), srv.stopping.wait()).await;
    }
}

async fn accept_loop(srv: Rc<ShardServer>, listener: TcpListener) {
    let failed = |e: &std::io::Error| {
        tracing::error!(shard = srv.shard.index(), error = %e, "client accept failed");
    };
    while let Some(stream) = accept::next(&listener, || srv.stopping.wait(), failed).await {
        if srv.conns.borrow().len() >= srv.limits.max_connections {
            srv.bump(|s| s.refused_connections += 1);
            drop(stream);
            continue;
        }
        srv.bump(|s| s.accepted += 1);
        let _ = stream.set_nodelay(true);
        let id = srv.next_conn.get();
        srv.next_conn.set(id + 1);
        let state = Rc::new(ConnState::new(&srv.limits, srv.budget.clone()));
        srv.conns.borrow_mut().insert(id, state.clone());
        let srv2 = srv.clone();
        glommio::spawn_local(async move {
            conn::serve(&srv2, stream, &state).await;
            srv2.closed_conn(id);
        })
        .detach();
    }
    srv.accept_done.set(true);
    srv.closed.notify();
}

/// What an answer is, for the counters: the operation answered, or the
/// error's kind.
pub fn answer_kind(resp: &crate::clientpb::Response) -> &'static str {
    use crate::clientpb::error::Kind;
    use crate::clientpb::response::Result as A;
    match &resp.result {
        None => "empty",
        Some(A::Append(_)) => "append",
        Some(A::Read(_)) => "read",
        Some(A::Truncate(_)) => "truncate",
        Some(A::GroupStatus(_)) => "group_status",
        Some(A::ClusterStatus(_)) => "cluster_status",
        Some(A::Done(_)) => "done",
        Some(A::Error(e)) => match &e.kind {
            None => "error",
            Some(Kind::NotLeader(_)) => "not_leader",
            Some(Kind::GroupNotFound(_)) => "group_not_found",
            Some(Kind::OffsetOutOfRange(_)) => "offset_out_of_range",
            Some(Kind::TooLarge(_)) => "too_large",
            Some(Kind::Timeout(_)) => "timeout",
            Some(Kind::Unavailable(_)) => "unavailable",
            Some(Kind::Busy(_)) => "busy",
            Some(Kind::Unauthorized(_)) => "unauthorized",
            Some(Kind::InvalidBatch(_)) => "invalid_batch",
            Some(Kind::SequenceGap(_)) => "sequence_gap",
            Some(Kind::StaleSequence(_)) => "stale_sequence",
            Some(Kind::UnknownProducer(_)) => "unknown_producer",
            Some(Kind::UnknownOperation(_)) => "unknown_operation",
            Some(Kind::Malformed(_)) => "malformed",
            Some(Kind::TruncateBeyondEnd(_)) => "truncate_beyond_end",
        },
    }
}
