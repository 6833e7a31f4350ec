//! What the shard loop needs of the peer network, as a trait so that the
//! loop does not depend on how messages travel: `transport::net::PeerNet`
//! (TCP between members, its `Inbox` for what arrives) implements it in
//! production (net_peers.rs); a test can put an in-process network
//! behind it. One
//! instance per shard, made on the shard's thread by a `PeersFactory`,
//! used only there (`Rc`, no locks).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::raftpb::Message;
use crate::transport::NetStats;

/// A shard's view of the other members.
pub trait Peers {
    /// Queues `msg` of `group` for member `to`, never blocking. `false`:
    /// the message is lost (unknown member, queue full); the loop reports
    /// `to` unreachable to the group and Raft retries.
    fn send(&self, to: u64, group: u64, msg: Message) -> bool;
    /// End of a loop turn: what was queued goes out.
    fn flush(&self);
    /// (member, group) pairs whose messages were dropped since the last
    /// call (a connection failed): reported unreachable.
    fn take_unreachable(&self, out: &mut Vec<(u64, u64)>);
    /// Moves what arrived into `out`, as (group, message).
    fn drain_inbox(&self, out: &mut Vec<(u64, Message)>);
    /// Completes once something has arrived (at once if it already has).
    fn inbox_ready(&self) -> Pin<Box<dyn Future<Output = ()>>>;
    /// Closes the listener and the connections.
    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()>>>;
    /// (member, group, written) of the MsgSnaps the network is done with
    /// since the last call: `true` once the whole snapshot was written to
    /// the peer's connection, `false` if it was lost on the way (the
    /// loop reports `report_snapshot` to the group). A network that says
    /// nothing leaves it to the follower's acknowledgement (or to the
    /// group's snapshot timeout).
    fn take_snapshot_reports(&self, out: &mut Vec<(u64, u64, bool)>) {
        let _ = out;
    }
    /// The TCP network's counters, if this is it.
    fn net_stats(&self) -> Option<NetStats> {
        None
    }
}

/// What a shard's network is made for.
#[derive(Debug, Clone)]
pub struct PeerEnv {
    pub cluster: Arc<Cluster>,
    pub member: u64,
    pub shard: u32,
    /// Jitter seed from the OS.
    pub seed: u64,
}

/// Makes a shard's network, on the shard's thread (inside its executor),
/// once per life of the shard. `Err` stops the shard's start.
pub type PeersFactory = Arc<dyn Fn(&PeerEnv) -> Result<Rc<dyn Peers>, String> + Send + Sync>;
