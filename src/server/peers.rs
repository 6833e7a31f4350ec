//! The shard's peer network for the server: `transport::net::PeerNet`
//! (TCP between members) behind the runtime's `Peers` trait, made on each
//! shard's thread by the `PeersFactory` the member starts with.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use crate::raftpb::Message;
use crate::shard::{PeerEnv, Peers, PeersFactory};
use crate::transport::{self, Inbox, NetConfig, PeerNet};

struct NetPeers {
    net: Rc<PeerNet>,
    inbox: Inbox,
}

impl Peers for NetPeers {
    fn send(&self, to: u64, group: u64, msg: Message) -> bool {
        self.net.send(to, group, msg).is_ok()
    }

    fn flush(&self) {
        self.net.flush();
    }

    fn take_unreachable(&self, out: &mut Vec<(u64, u64)>) {
        self.net.take_unreachable(out);
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
}

/// Each shard's TCP peer network, listening on its member's
/// `peer_addr + shard`, with the transport's default limits.
pub fn tcp_peers() -> PeersFactory {
    Arc::new(|env: &PeerEnv| {
        let inbox = Inbox::new();
        let cfg = NetConfig {
            cluster: env.cluster.clone(),
            member: env.member,
            shard: env.shard,
            limits: transport::Limits::default(),
            max_queue_bytes: 64 << 20,
            backoff_min: std::time::Duration::from_millis(20),
            backoff_max: std::time::Duration::from_secs(1),
            seed: env.seed,
        };
        let net = PeerNet::start(cfg, inbox.clone()).map_err(|e| e.to_string())?;
        Ok(Rc::new(NetPeers { net, inbox }) as Rc<dyn Peers>)
    })
}
