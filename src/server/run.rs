//! `Server`: one member's whole process. Starts the member's runtime on
//! its data directory (bootstrapped if new, restarted if not: the
//! runtime's `MemberRuntime::start`) with the log state machine and the
//! TCP peer network, then a client service (`ShardServer`) on every
//! shard's executor. Stopping reverses it: the client services stop
//! (nothing more accepted or read; requests in flight answered, within a
//! grace period), then the runtime (waiting requests fail, the flush in
//! flight completes, the WAL is released).

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::config::ServerConfig;
use super::listener::{ServerStats, ShardServer};
use super::log_apply::LogApply;
use crate::shard::{BootError, MemberConfig, MemberRuntime, TcpSettings, tcp_peers};

thread_local! {
    /// The client service of the shard whose thread this is.
    static SHARD_SERVER: RefCell<Option<Rc<ShardServer>>> = const { RefCell::new(None) };
}

/// What `corelog server --unsafe-no-fsync` prints at start, on stderr.
pub const UNSAFE_NO_FSYNC_BANNER: &str = "\
corelog: ************************************************************
corelog: UNSAFE: --unsafe-no-fsync: the WAL is never fsynced.
corelog: Acknowledged appends can be lost to a power failure or a
corelog: kernel crash. For benchmarks only; never for data you keep.
corelog: ************************************************************";

/// Why the server did not start.
#[derive(Debug)]
pub enum ServerError {
    /// The runtime did not start (data directory, WAL, peer port, ...).
    Boot(BootError),
    /// A shard's client listener did not start (its port is taken, ...).
    Listener { shard: u32, reason: String },
    /// A shard's thread is gone.
    ShardGone { shard: u32 },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Boot(e) => write!(f, "{e}"),
            ServerError::Listener { shard, reason } => {
                write!(f, "shard {shard}: client listener: {reason}")
            }
            ServerError::ShardGone { shard } => write!(f, "shard {shard}: its thread is gone"),
        }
    }
}

impl std::error::Error for ServerError {}

/// A running member serving clients.
pub struct Server {
    cfg: ServerConfig,
    runtime: Option<MemberRuntime>,
    client_addrs: Vec<SocketAddr>,
    metrics_addrs: Vec<SocketAddr>,
    /// Shards whose WAL failure was reported already.
    reported: Vec<bool>,
    /// Shards last reported without room for their WAL.
    full: Vec<bool>,
}

impl Server {
    /// Starts the member and its client listeners; returns once every
    /// shard serves.
    pub fn start(cfg: ServerConfig) -> Result<Server, ServerError> {
        let runtime = MemberRuntime::start(MemberConfig {
            data_dir: cfg.data_dir.clone(),
            cluster: cfg.cluster.clone(),
            member: cfg.member,
            runtime: cfg.runtime.clone(),
            apply: LogApply::factory(),
            peers: Some(tcp_peers(TcpSettings::default())),
            cpus: cfg.cpus.clone(),
        })
        .map_err(ServerError::Boot)?;
        let mut client_addrs = Vec::new();
        let mut metrics_addrs = Vec::new();
        for h in runtime.shards() {
            let (cluster, limits, retention) = (cfg.cluster.clone(), cfg.limits, cfg.retention);
            let shard = h.index();
            let metrics = cfg.metrics_addr.map(|mut a| {
                a.set_port(a.port().wrapping_add(shard as u16));
                a
            });
            let r = h
                .call(move |s| async move {
                    let srv = ShardServer::start(s, cluster, limits, retention)
                        .map_err(|e| e.to_string())?;
                    let addr = srv.local_addr();
                    let m = match metrics {
                        Some(a) => Some(
                            super::metrics::start(&srv, a).map_err(|e| format!("metrics: {e}"))?,
                        ),
                        None => None,
                    };
                    SHARD_SERVER.with(|c| *c.borrow_mut() = Some(srv));
                    Ok::<(SocketAddr, Option<SocketAddr>), String>((addr, m))
                })
                .map_err(|_| ServerError::ShardGone { shard })?;
            let (a, m) = r.map_err(|reason| ServerError::Listener { shard, reason })?;
            client_addrs.push(a);
            metrics_addrs.extend(m);
        }
        let n = runtime.shards().len();
        Ok(Server {
            cfg,
            runtime: Some(runtime),
            client_addrs,
            metrics_addrs,
            reported: vec![false; n],
            full: vec![false; n],
        })
    }

    /// The member's runtime (tests and tools reach its shards through it).
    pub fn runtime(&self) -> &MemberRuntime {
        self.runtime.as_ref().expect("running until stopped")
    }

    /// The metrics address of each shard (empty: metrics off).
    pub fn metrics_addrs(&self) -> &[SocketAddr] {
        &self.metrics_addrs
    }

    /// The client address of each shard, in shard order.
    pub fn client_addrs(&self) -> &[SocketAddr] {
        &self.client_addrs
    }

    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The one line that says the member serves, and where.
    pub fn serving_line(&self) -> String {
        let c = &self.cfg.cluster;
        let m = c.member(self.cfg.member).expect("checked at startup");
        let groups = c.groups_of(m.id).map(|g| g.len()).unwrap_or(0);
        let metrics = match self.cfg.metrics_addr {
            Some(a) => format!(", metrics on {a}..+{}", m.shards),
            None => String::new(),
        };
        format!(
            "corelog: serving: member {} ({}) of cluster {:#x}, {} shard(s), clients on {}..+{}, peers on {}..+{}, {} of {} groups here, data {}{metrics}",
            m.id,
            m.name,
            c.id(),
            m.shards,
            m.client_addr,
            m.shards,
            m.peer_addr,
            m.shards,
            groups,
            c.group_count(),
            self.cfg.data_dir.display()
        ) + if self.cfg.runtime.unsafe_no_fsync {
            " UNSAFE: NO FSYNC (--unsafe-no-fsync, benchmarks only)"
        } else {
            ""
        }
    }

    /// Shards whose WAL failed since the last call, with the cause: each
    /// reported once. The shard answers its requests `Unavailable`; the
    /// other shards keep serving.
    pub fn new_failures(&mut self) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        if let Some(rt) = &self.runtime {
            for (k, h) in rt.shards().iter().enumerate() {
                if self.reported[k] {
                    continue;
                }
                if let Some(cause) = h.failure() {
                    self.reported[k] = true;
                    out.push((h.index(), cause));
                }
            }
        }
        out
    }

    /// Shards whose WAL ran out of room (`Some(cause)`) or has room again
    /// (`None`) since the last call: each change reported once.
    pub fn space_changes(&mut self) -> Vec<(u32, Option<String>)> {
        let mut out = Vec::new();
        if let Some(rt) = &self.runtime {
            for (k, h) in rt.shards().iter().enumerate() {
                let now = h.storage_full();
                if now.is_some() != self.full[k] {
                    self.full[k] = now.is_some();
                    out.push((h.index(), now));
                }
            }
        }
        out
    }

    /// Each shard's client service counters.
    pub fn stats(&self) -> Vec<ServerStats> {
        let Some(rt) = &self.runtime else {
            return Vec::new();
        };
        rt.shards()
            .iter()
            .filter_map(|h| {
                h.call(|_| async { SHARD_SERVER.with(|c| c.borrow().as_ref().map(|s| s.stats())) })
                    .ok()
                    .flatten()
            })
            .collect()
    }

    /// Client connections open on each shard.
    pub fn connections(&self) -> Vec<usize> {
        let Some(rt) = &self.runtime else {
            return Vec::new();
        };
        rt.shards()
            .iter()
            .filter_map(|h| {
                h.call(|_| async {
                    SHARD_SERVER.with(|c| c.borrow().as_ref().map(|s| s.connections()))
                })
                .ok()
                .flatten()
            })
            .collect()
    }

    /// Stops serving: the client services first (requests in flight are
    /// answered, for at most `grace`), then the runtime. `Err` if a
    /// shard's thread panicked.
    pub fn stop(mut self, grace: Duration) -> Result<(), String> {
        self.stop_inner(grace)
    }

    fn stop_inner(&mut self, grace: Duration) -> Result<(), String> {
        let Some(rt) = self.runtime.take() else {
            return Ok(());
        };
        // Every shard's service stops at once (each call blocks its
        // thread until that shard's connections are done).
        std::thread::scope(|sc| {
            for h in rt.shards() {
                sc.spawn(move || {
                    let _ = h.call(move |_| async move {
                        let srv = SHARD_SERVER.with(|c| c.borrow_mut().take());
                        if let Some(srv) = srv {
                            srv.stop(grace).await;
                        }
                    });
                });
            }
        });
        rt.stop()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_inner(Duration::from_millis(100));
    }
}
