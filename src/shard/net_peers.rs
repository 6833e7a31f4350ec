//! The shard's `Peers` over the TCP peer network: `transport::net::PeerNet`
//! and its `Inbox`, one pair per shard, started on the shard's executor
//! by the factory `tcp_peers` makes.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::peers::{PeerEnv, Peers, PeersFactory};
use crate::raftpb::Message;
use crate::transport::{Inbox, Limits, NetConfig, NetOptions, NetStats, PeerNet};

/// How every shard's network is set up (the cluster, member, shard and
/// jitter seed come from the shard).
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    pub limits: Limits,
    /// Bytes queued toward one remote (member, shard) before sends to it
    /// are refused (and reported unreachable).
    pub max_queue_bytes: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub options: NetOptions,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            limits: Limits::default(),
            max_queue_bytes: 64 << 20,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            options: NetOptions::default(),
        }
    }
}

/// A shard's TCP network.
pub struct TcpPeers {
    net: Rc<PeerNet>,
    inbox: Inbox,
}

impl TcpPeers {
    /// The network's counters.
    pub fn stats(&self) -> NetStats {
        self.net.stats()
    }
}

impl Peers for TcpPeers {
    fn send(&self, to: u64, group: u64, msg: Message) -> bool {
        self.net.send(to, group, msg).is_ok()
    }

    fn flush(&self) {
        self.net.flush();
    }

    fn take_unreachable(&self, out: &mut Vec<(u64, u64)>) {
        self.net.take_unreachable(out);
    }

    fn take_snapshot_reports(&self, out: &mut Vec<(u64, u64, bool)>) {
        self.net.take_snapshot_reports(out);
    }

    fn drain_inbox(&self, out: &mut Vec<(u64, Message)>) {
        self.inbox.drain_into(out);
    }

    fn inbox_ready(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        let inbox = self.inbox.clone();
        Box::pin(async move { inbox.wait().await })
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        let net = self.net.clone();
        Box::pin(async move { net.shutdown().await })
    }

    fn net_stats(&self) -> Option<NetStats> {
        Some(self.net.stats())
    }
}

/// The factory of every shard's TCP network: binds the shard's peer port
/// (`peer_addr_of_shard`) on its executor.
pub fn tcp_peers(settings: TcpSettings) -> PeersFactory {
    Arc::new(move |env: &PeerEnv| {
        let cfg = NetConfig {
            cluster: env.cluster.clone(),
            member: env.member,
            shard: env.shard,
            limits: settings.limits,
            max_queue_bytes: settings.max_queue_bytes,
            backoff_min: settings.backoff_min,
            backoff_max: settings.backoff_max,
            seed: env.seed,
        };
        let inbox = Inbox::new();
        let net =
            PeerNet::start_with(cfg, settings.options, inbox.clone()).map_err(|e| e.to_string())?;
        let p: Rc<dyn Peers> = Rc::new(TcpPeers { net, inbox });
        Ok(p)
    })
}
