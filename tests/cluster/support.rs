//! What the cluster tests share: cluster descriptions, starting members on
//! temporary directories, waiting for leaders, reading what a group's
//! state machine applied.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::cluster::{Cluster, Member};
use corelog::node::{NodeStatus, ProposeError};
use corelog::raft::StateType;
use corelog::shard::{
    CpuPlacement, MemApply, MemberConfig, MemberRuntime, PeersFactory, RuntimeConfig,
};

/// A cluster of members 1..=n with `shards` shards each; ports from
/// `base` (each member 100 apart: peer ports `base + 100 * id + k`, client
/// ports `base + 50 + 100 * id + k`).
pub fn cluster(id: u64, n: u64, shards: u32, groups: u64, rf: u32, base: u16) -> Arc<Cluster> {
    let members = (1..=n)
        .map(|m| Member {
            id: m,
            name: format!("m{m}"),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], base + 100 * m as u16)),
            client_addr: SocketAddr::from(([127, 0, 0, 1], base + 50 + 100 * m as u16)),
            shards,
        })
        .collect();
    Arc::new(Cluster::new(id, members, groups, rf).unwrap())
}

/// A base port with `n` free consecutive ports after it (listeners bound
/// to :0 first, so that parallel tests, and other processes, do not
/// collide).
pub fn free_ports(n: u16) -> u16 {
    'retry: loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        let mut held = vec![first];
        for k in 1..n {
            let Some(port) = base.checked_add(k) else {
                continue 'retry;
            };
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => held.push(l),
                Err(_) => continue 'retry,
            }
        }
        return base;
    }
}

/// A cluster of members 1..=n with `shards` shards each, whose peer ports
/// are free ports of 127.0.0.1 (client ports on 127.0.0.2, never bound
/// here).
pub fn tcp_cluster(id: u64, n: u64, shards: u32, groups: u64, rf: u32) -> Arc<Cluster> {
    // Each base is free when picked, but the listeners that proved it are
    // closed again: two members could be handed overlapping ranges (the
    // cluster then refuses the duplicate address). Pick until disjoint.
    let mut bases: Vec<u16> = Vec::new();
    while bases.len() < n as usize {
        let b = free_ports(shards as u16);
        let w = shards as u16;
        if bases.iter().all(|&o| b + w <= o || o + w <= b) {
            bases.push(b);
        }
    }
    let members = (1..=n)
        .map(|m| Member {
            id: m,
            name: format!("m{m}"),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], bases[(m - 1) as usize])),
            client_addr: SocketAddr::from(([127, 0, 0, 2], 1000 + 10 * m as u16)),
            shards,
        })
        .collect();
    Arc::new(Cluster::new(id, members, groups, rf).unwrap())
}

/// Small segments and a fast clock, so that tests roll segments and elect
/// in milliseconds.
pub fn runtime() -> RuntimeConfig {
    RuntimeConfig {
        tick: Duration::from_millis(5),
        wal_segment_size: 1 << 20,
        wal_cache_bytes: 4 << 20,
        ..RuntimeConfig::default()
    }
}

pub fn member_config(
    dir: &Path,
    cluster: &Arc<Cluster>,
    member: u64,
    rt: RuntimeConfig,
    peers: Option<PeersFactory>,
) -> MemberConfig {
    MemberConfig {
        data_dir: dir.to_path_buf(),
        cluster: cluster.clone(),
        member,
        runtime: rt,
        apply: MemApply::factory(),
        peers,
        cpus: CpuPlacement::Unbound,
    }
}

/// The status of `group` on member `m`.
pub fn status(m: &MemberRuntime, group: u64) -> NodeStatus {
    m.shard_of(group)
        .call(move |s| async move { s.node(group).expect("group on its shard").status() })
        .expect("shard running")
}

/// Waits until `f` holds, or panics after `secs` seconds naming `what`.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The leader of `group` that one of `members` sees as itself leading at
/// the highest term, if any.
pub fn leader_of(members: &[&MemberRuntime], group: u64) -> Option<u64> {
    members
        .iter()
        .map(|m| status(m, group))
        .filter(|s| s.role == StateType::Leader)
        .max_by_key(|s| s.hard_state.term)
        .map(|s| s.id)
}

/// Proposes `payloads` to `group` on member `m` concurrently (one task
/// each, all on the group's shard) and returns each outcome, in order.
pub fn propose_all(
    m: &MemberRuntime,
    group: u64,
    payloads: Vec<Bytes>,
) -> Vec<Result<u64, ProposeError>> {
    m.shard_of(group)
        .call(move |s| async move {
            let node = s.node(group).expect("group on its shard");
            let tasks: Vec<_> = payloads
                .into_iter()
                .map(|p| {
                    let n = node.clone();
                    glommio::spawn_local(async move { n.propose(p).await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            out
        })
        .expect("shard running")
}

/// (index, data) of every non-empty normal entry `group`'s state machine
/// applied on member `m`, in order.
pub fn applied(m: &MemberRuntime, group: u64) -> Vec<(u64, Bytes)> {
    m.shard_of(group)
        .call(move |s| async move {
            s.node(group).expect("group on its shard").with_apply(|a| {
                let mem = a.as_any().downcast_ref::<MemApply>().expect("MemApply");
                mem.entries
                    .iter()
                    .filter(|e| e.r#type == 0 && !e.data.is_empty())
                    .map(|e| (e.index, e.data.clone()))
                    .collect()
            })
        })
        .expect("shard running")
}

/// A payload naming its group and sequence number.
pub fn payload(group: u64, i: u64) -> Bytes {
    Bytes::from(format!("g{group}-{i:06}"))
}

/// Lowers the WAL quota of every shard of `m` to what its files take now
/// (`None`: lifts it), so that the next segment after the spare cannot be
/// made: a full disk without root.
pub fn set_quota(m: &MemberRuntime, full: bool) {
    for s in m.shards() {
        s.call(move |s| async move {
            let mut w = s.wal_cell().borrow_mut();
            // The spare being prepared counts once it is there.
            w.wait_prepared();
            let limit = if full { w.disk_bytes() } else { u64::MAX };
            w.set_max_disk_bytes(limit).unwrap();
        })
        .unwrap();
    }
}
