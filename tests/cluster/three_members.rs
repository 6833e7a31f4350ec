//! Three members, replication factor 3, in one process, over real
//! sockets on 127.0.0.1 (`transport::net::PeerNet`): elections,
//! replication, leadership transfer, a member stopped and restarted from
//! its WAL catching up, many groups electing with their leaders spread,
//! an idle cluster sleeping. A partition needs a network that can cut a
//! running member off: that test runs on `loopback`, a test-only
//! in-process stand-in.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corelog::cluster::Cluster;
use corelog::node::ProposeError;
use corelog::raftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};
use corelog::shard::{MemberRuntime, PeersFactory, RuntimeConfig, TcpSettings, tcp_peers};
use corelog::transport::NetOptions;
use corelog::wal::Fault;
use tempfile::TempDir;

use super::loopback::Loopback;
use super::support::*;

/// How the members of a test talk.
enum Net {
    Tcp,
    Loopback(Arc<Loopback>),
}

/// The TCP network with test timings: quick reconnects after a restart.
fn tcp() -> PeersFactory {
    tcp_peers(TcpSettings {
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(100),
        options: NetOptions {
            connect_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_millis(500),
            ..NetOptions::default()
        },
        ..TcpSettings::default()
    })
}

struct Three {
    cluster: Arc<Cluster>,
    rt: RuntimeConfig,
    net: Net,
    factory: PeersFactory,
    dirs: Vec<TempDir>,
    members: Vec<Option<MemberRuntime>>,
}

impl Three {
    /// Three members of `shards` shards holding `groups` groups, over TCP.
    fn start(cluster_id: u64, groups: u64, shards: u32) -> Three {
        Three::start_with(cluster_id, groups, shards, runtime())
    }

    fn start_with(cluster_id: u64, groups: u64, shards: u32, rt: RuntimeConfig) -> Three {
        let cluster = tcp_cluster(cluster_id, 3, shards, groups, 3);
        Three::start_on(cluster, rt, Net::Tcp, tcp())
    }

    /// The same over the in-process loopback network.
    fn start_loopback(cluster_id: u64, groups: u64, base: u16) -> Three {
        Three::start_loopback_with(cluster_id, groups, base, runtime())
    }

    fn start_loopback_with(cluster_id: u64, groups: u64, base: u16, rt: RuntimeConfig) -> Three {
        let cluster = cluster(cluster_id, 3, 1, groups, 3, base);
        let lb = Loopback::new();
        let factory = lb.factory();
        Three::start_on(cluster, rt, Net::Loopback(lb), factory)
    }

    fn start_on(
        cluster: Arc<Cluster>,
        rt: RuntimeConfig,
        net: Net,
        factory: PeersFactory,
    ) -> Three {
        // Three members, or as many as the cluster has.
        let n = cluster.members().len() as u64;
        let dirs: Vec<TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut t = Three {
            cluster,
            rt,
            net,
            factory,
            dirs,
            members: (0..n).map(|_| None).collect(),
        };
        // Together, as a new cluster is bootstrapped: a member that starts
        // alone campaigns for its groups before anyone can vote.
        let started: Vec<MemberRuntime> = std::thread::scope(|s| {
            let hs: Vec<_> = (1..=n)
                .map(|id| {
                    let cfg = member_config(
                        t.dirs[(id - 1) as usize].path(),
                        &t.cluster,
                        id,
                        t.rt.clone(),
                        Some(t.factory.clone()),
                    );
                    s.spawn(move || MemberRuntime::start(cfg).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, m) in started.into_iter().enumerate() {
            t.members[i] = Some(m);
        }
        t
    }

    fn loopback(&self) -> &Loopback {
        match &self.net {
            Net::Loopback(l) => l,
            Net::Tcp => panic!("this test needs the loopback network"),
        }
    }

    fn start_member(&mut self, id: u64) {
        let dir: &Path = self.dirs[(id - 1) as usize].path();
        let cfg = member_config(
            dir,
            &self.cluster,
            id,
            self.rt.clone(),
            Some(self.factory.clone()),
        );
        self.members[(id - 1) as usize] = Some(MemberRuntime::start(cfg).unwrap());
    }

    fn stop_member(&mut self, id: u64) {
        if let Some(m) = self.members[(id - 1) as usize].take() {
            m.stop().unwrap();
        }
    }

    fn m(&self, id: u64) -> &MemberRuntime {
        self.members[(id - 1) as usize].as_ref().expect("running")
    }

    fn running(&self) -> Vec<&MemberRuntime> {
        self.members.iter().flatten().collect()
    }

    /// Waits until a running member leads `group`; returns it.
    fn leader(&self, group: u64) -> u64 {
        let mut l = None;
        wait_until(20, &format!("group {group} to elect"), || {
            l = leader_of(&self.running(), group);
            l.is_some()
        });
        l.unwrap()
    }

    /// Proposes `n` payloads (numbered from `from`) to `group` through its
    /// leader, retrying those refused (NotLeader, Dropped: never applied)
    /// while leadership moves; returns the acknowledged (index, payload),
    /// by index.
    fn propose(&self, group: u64, from: u64, n: u64) -> Vec<(u64, Bytes)> {
        let mut todo: Vec<Bytes> = (from..from + n).map(|k| payload(group, k)).collect();
        let mut acked = Vec::new();
        for _ in 0..100 {
            if todo.is_empty() {
                acked.sort();
                return acked;
            }
            let l = self.leader(group);
            let got = propose_all(self.m(l), group, todo.clone());
            let mut again = Vec::new();
            for (p, r) in todo.into_iter().zip(got) {
                match r {
                    Ok(i) => acked.push((i, p)),
                    Err(ProposeError::NotLeader { .. } | ProposeError::Dropped) => again.push(p),
                    Err(e) => panic!("group {group}: {e}"),
                }
            }
            todo = again;
        }
        panic!("group {group}: proposals kept being refused");
    }

    /// Waits until member `id` applied exactly `acked` in `group`.
    fn wait_applied(&self, id: u64, group: u64, acked: &[(u64, Bytes)]) {
        let last = acked.last().map_or(0, |a| a.0);
        wait_until(20, &format!("member {id} to apply group {group}"), || {
            status(self.m(id), group).applied >= last
        });
        assert_eq!(
            applied(self.m(id), group),
            acked,
            "member {id}, group {group}"
        );
    }

    fn stop_all(mut self) {
        for id in 1..=self.members.len() as u64 {
            self.stop_member(id);
        }
    }
}

#[test]
fn three_members_elect_and_replicate_every_group() {
    let t = Three::start(31, 4, 1);
    for g in 0..4 {
        let acked = t.propose(g, 0, 25);
        assert_eq!(acked.len(), 25);
        for id in 1..=3 {
            t.wait_applied(id, g, &acked);
        }
    }
    // It all went over the members' sockets.
    for id in 1..=3 {
        let st = t.m(id).shards()[0]
            .call(|s| async move { s.net_stats() })
            .unwrap()
            .expect("a TCP network");
        assert!(st.connects >= 2, "member {id}: {st:?}");
        assert!(
            st.messages_sent > 0 && st.messages_received > 0,
            "member {id}: {st:?}"
        );
    }
    t.stop_all();
}

#[test]
fn leadership_moves_to_the_member_asked_for() {
    // Rebalancing would hand leadership back to the preferred leader.
    let rt = RuntimeConfig {
        rebalance_leaders: false,
        ..runtime()
    };
    let t = Three::start_with(32, 1, 1, rt);
    let first = t.propose(0, 0, 5);
    let l = t.leader(0);
    let target = if l == 3 { 1 } else { l + 1 };
    t.m(l)
        .shard_of(0)
        .call(move |s| async move { s.node(0).unwrap().transfer_leader(target) })
        .unwrap()
        .unwrap();
    wait_until(20, "the transfer", || {
        leader_of(&t.running(), 0) == Some(target)
    });
    // The old leader now names the new one.
    wait_until(20, "the old leader to learn of the new one", || {
        status(t.m(l), 0).leader == Some(target)
    });
    let r = propose_all(t.m(l), 0, vec![Bytes::from_static(b"x")]);
    assert_eq!(
        r[0],
        Err(ProposeError::NotLeader {
            leader: Some(target)
        })
    );
    // And the new one takes proposals after the old ones.
    let r = propose_all(t.m(target), 0, vec![payload(0, 100)]);
    assert!(
        matches!(r[0], Ok(i) if i > first.last().unwrap().0),
        "{r:?}"
    );
    t.stop_all();
}

#[test]
fn a_member_stopped_and_restarted_from_its_wal_catches_up() {
    let mut t = Three::start(33, 3, 1);
    let mut acked: Vec<Vec<(u64, Bytes)>> = (0..3).map(|g| t.propose(g, 0, 10)).collect();
    for g in 0..3 {
        t.wait_applied(3, g, &acked[g as usize]);
    }
    t.stop_member(3);
    // Members 1 and 2 go on (electing again where 3 led).
    for g in 0..3 {
        let more = t.propose(g, 10, 30);
        acked[g as usize].extend(more);
        acked[g as usize].sort();
    }
    t.start_member(3);
    for g in 0..3 {
        for id in 1..=3 {
            t.wait_applied(id, g, &acked[g as usize]);
        }
    }
    // And leads again the groups placement gave it.
    for g in 0..3 {
        let preferred = t.cluster.replicas(g).unwrap()[0];
        wait_until(20, &format!("group {g} back to member {preferred}"), || {
            leader_of(&t.running(), g) == Some(preferred)
        });
    }
    t.stop_all();
}

/// Per member: the leader each of its shard's groups knows, the index
/// each has applied (one call per shard, not per group).
fn shard_views(m: &MemberRuntime) -> Vec<(u64, Option<u64>, u64)> {
    m.shards()
        .iter()
        .flat_map(|h| {
            h.call(|s| async move {
                s.group_ids()
                    .into_iter()
                    .map(|g| {
                        let st = s.node(g).unwrap().status();
                        let lead = (st.role == corelog::raft::StateType::Leader).then_some(st.id);
                        (g, lead, st.applied)
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap()
        })
        .collect()
}

/// The sum of the members' peer network counters.
fn net_totals(t: &Three) -> corelog::transport::NetStats {
    let mut sum = corelog::transport::NetStats::default();
    for m in t.running() {
        for h in m.shards() {
            let n = h.call(|s| async move { s.net_stats() }).unwrap().unwrap();
            sum.frames_sent += n.frames_sent;
            sum.messages_sent += n.messages_sent;
            sum.bytes_sent += n.bytes_sent;
            sum.writes += n.writes;
            sum.heartbeats_coalesced += n.heartbeats_coalesced;
        }
    }
    sum
}

/// Issue 7's scale test: 1,000 groups on three members all elect, leaders
/// end spread as placement intends (a third each), every group
/// replicates a proposal to all three, and an idle cluster's peer traffic
/// is what coalesced heartbeats cost: per heartbeat interval and peer a
/// few frames, whatever the number of groups (1,000 groups heartbeating
/// on their own would be 1,000 messages per interval and peer).
#[test]
fn a_thousand_groups_on_three_members_elect_spread_replicate_and_idle_on_coalesced_heartbeats() {
    const GROUPS: u64 = 1000;
    let rt = RuntimeConfig {
        tick: Duration::from_millis(10),
        election_ticks: 30,
        ..runtime()
    };
    let started = std::time::Instant::now();
    let t = Three::start_with(34, GROUPS, 1, rt.clone());
    // Every group elects its preferred leader (placement's first replica:
    // a third of the groups each); leaders that won a race hand over.
    let mut led = [0u32; 3];
    wait_until(45, "leadership spread as placement intends", || {
        led = [0; 3];
        let mut right = 0;
        for m in t.running() {
            for (g, lead, _) in shard_views(m) {
                if let Some(l) = lead {
                    led[(l - 1) as usize] += 1;
                    right += u64::from(t.cluster.replicas(g).unwrap()[0] == l);
                }
            }
        }
        right == GROUPS && led.iter().sum::<u32>() == GROUPS as u32
    });
    assert_eq!(led, [334, 333, 333], "placement's thirds");
    let elected = started.elapsed();
    // One proposal to every group, all at once on each leader's shard.
    let mut acked: Vec<(u64, u64)> = Vec::new();
    for id in 1..=3u64 {
        let mine: Vec<u64> = (0..GROUPS)
            .filter(|&g| t.cluster.replicas(g).unwrap()[0] == id)
            .collect();
        let got = t.m(id).shards()[0]
            .call(move |s| async move {
                let tasks: Vec<_> = mine
                    .into_iter()
                    .map(|g| {
                        let n = s.node(g).unwrap();
                        glommio::spawn_local(async move { (g, n.propose(payload(g, 0)).await) })
                    })
                    .collect();
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await);
                }
                out
            })
            .unwrap();
        for (g, r) in got {
            acked.push((g, r.unwrap_or_else(|e| panic!("group {g}: {e}"))));
        }
    }
    assert_eq!(acked.len() as u64, GROUPS);
    // Replicated: every member applied every group's entry.
    let want: std::collections::HashMap<u64, u64> = acked.iter().copied().collect();
    for m in t.running() {
        wait_until(20, "every member to apply every group's entry", || {
            shard_views(m)
                .iter()
                .all(|(g, _, applied)| *applied >= want[g])
        });
    }
    for g in [0, 1, 499, 998, 999] {
        for id in 1..=3 {
            assert!(
                applied(t.m(id), g).contains(&(want[&g], payload(g, 0))),
                "member {id} group {g}"
            );
        }
    }
    // Idle: what the peer network sends over 2 s of nothing to do.
    std::thread::sleep(Duration::from_millis(500));
    let (n0, t0) = (net_totals(&t), std::time::Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let (n1, idle) = (net_totals(&t), t0.elapsed());
    let frames = n1.frames_sent - n0.frames_sent;
    let writes = n1.writes - n0.writes;
    let messages = n1.messages_sent - n0.messages_sent;
    let coalesced = n1.heartbeats_coalesced - n0.heartbeats_coalesced;
    let bytes = n1.bytes_sent - n0.bytes_sent;
    // Heartbeat intervals in the window (heartbeat_ticks ticks each), and
    // directed peer links (3 members, 2 peers each).
    let intervals =
        idle.as_millis() as u64 / (rt.tick.as_millis() as u64 * rt.heartbeat_ticks as u64);
    let links = 6;
    eprintln!(
        "1000 groups: elected in {elected:?}; idle {idle:?}: {frames} frames, {writes} writes, \
         {messages} messages ({coalesced} coalesced heartbeats), {bytes} bytes; \
         {intervals} heartbeat intervals x {links} links; whole test {:?}",
        started.elapsed()
    );
    // Per interval and link: the heartbeats of the groups a member leads,
    // then their responses, each one frame (and one write) at most, with
    // room for a turn that splits them.
    let bound = 3 * (intervals + 1) * links;
    assert!(frames <= bound, "{frames} frames > {bound}");
    assert!(writes <= bound, "{writes} writes > {bound}");
    // Nothing travels as a message of its own: every heartbeat and
    // response is a few bytes of a shared record.
    let plain = messages - coalesced;
    assert!(
        plain <= (intervals + 1) * links,
        "{plain} plain messages while idle"
    );
    assert!(coalesced > 0);
    // Bytes: each coalesced heartbeat or response a few varints; framing
    // per frame. Far below 1,000 messages per interval and link.
    assert!(
        bytes <= frames * 64 + coalesced * 16,
        "{bytes} bytes for {frames} frames and {coalesced} heartbeats"
    );
    t.stop_all();
}

#[test]
fn a_proposal_whose_slot_another_leader_took_fails_with_dropped() {
    let t = Three::start_loopback(35, 1, 25_000);
    let before = t.propose(0, 0, 3);
    let old = t.leader(0);
    // Cut the leader off, then propose to it: the entry gets an index in
    // the old term that no other member will ever see.
    t.loopback().cut(old);
    let (tx, rx) = std::sync::mpsc::channel();
    t.m(old)
        .shard_of(0)
        .call(move |s| async move {
            let n = s.node(0).unwrap();
            glommio::spawn_local(async move {
                let _ = tx.send(n.propose(Bytes::from_static(b"lost")).await);
            })
            .detach();
        })
        .unwrap();
    let others: Vec<u64> = (1..=3).filter(|&i| i != old).collect();
    let mut new = None;
    wait_until(20, "the others to elect", || {
        new = leader_of(&[t.m(others[0]), t.m(others[1])], 0);
        new.is_some()
    });
    let new = new.unwrap();
    let r = propose_all(t.m(new), 0, vec![payload(0, 50), payload(0, 51)]);
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    // Back together, the old leader takes the new term's log: its entry's
    // slot holds another term's entry, so the proposal was dropped.
    t.loopback().heal(old);
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the proposal was answered");
    assert_eq!(got, Err(ProposeError::Dropped));
    assert!(
        applied(t.m(old), 0)
            .iter()
            .all(|(_, p)| p.as_ref() != b"lost"),
        "the dropped entry was applied"
    );
    assert!(applied(t.m(old), 0).starts_with(&before));
    t.stop_all();
}

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Three {
    /// CPU time used by every shard thread of the running members (read
    /// on each shard's own thread; other tests of this process do not
    /// count).
    fn shards_cpu(&self) -> Duration {
        self.running()
            .iter()
            .flat_map(|m| m.shards())
            .map(|h| h.call(|_| async { thread_cpu() }).unwrap())
            .sum()
    }
}

#[test]
fn an_idle_cluster_sleeps_between_ticks() {
    // Three members with two shards each: six shard threads, more than
    // this machine's CPUs, every one of which must sleep when idle.
    let t = Three::start(36, 30, 2);
    for g in 0..30 {
        t.leader(g);
    }
    let (cpu0, t0) = (t.shards_cpu(), std::time::Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let (cpu, wall) = (t.shards_cpu() - cpu0, t0.elapsed());
    // Ticks every 5 ms with a heartbeat each: some work, far from the
    // 2 s of CPU per second that six spinning threads would take here.
    assert!(
        cpu < wall / 2,
        "an idle cluster used {cpu:?} of CPU in {wall:?}"
    );
    eprintln!("idle: {cpu:?} of CPU in {wall:?}");
    t.stop_all();
}

#[test]
fn a_member_whose_wal_fails_stops_serving_and_closes_its_peer_port() {
    let t = Three::start(37, 3, 1);
    // A group member 3 does not lead (rebalancing may move leaders, so
    // look now and propose through whoever leads).
    let g = (0..3)
        .find(|&g| t.leader(g) != 3)
        .expect("3 does not lead all");
    t.propose(g, 0, 3);
    t.m(3).shards()[0]
        .call(|s| async move {
            s.wal_cell().borrow_mut().inject_fault(Fault {
                land_bytes: 0,
                errno: libc::EIO,
                scatter: None,
            });
        })
        .unwrap();
    // The next entries reach member 3, whose flush of them fails.
    t.propose(g, 3, 3);
    wait_until(20, "member 3 to report its failure", || {
        t.m(3).shards()[0].failure().is_some()
    });
    let r = propose_all(t.m(3), g, vec![payload(g, 99)]);
    assert!(
        matches!(&r[0], Err(ProposeError::StorageFailed(_))),
        "{r:?}"
    );
    // Its peer port is closed: nobody is served from a failed disk.
    let addr = t.cluster.member(3).unwrap().peer_addr_of_shard(0).unwrap();
    wait_until(20, "member 3's peer port to close", || {
        std::net::TcpStream::connect(addr).is_err()
    });
    // The other two go on.
    let more = t.propose(g, 6, 3);
    assert_eq!(more.len(), 3);
    t.stop_all();
}

#[test]
fn read_index_answers_at_least_every_acknowledged_index_on_leader_and_follower() {
    let t = Three::start(38, 1, 1);
    let acked = t.propose(0, 0, 5);
    let last = acked.last().unwrap().0;
    let l = t.leader(0);
    let f = if l == 1 { 2 } else { 1 };
    for id in [l, f] {
        wait_until(20, &format!("member {id} to know the leader"), || {
            status(t.m(id), 0).leader == Some(l)
        });
        let r = t
            .m(id)
            .shard_of(0)
            .call(|s| async move { s.node(0).unwrap().read_index().await })
            .unwrap();
        // A follower asks the leader; both answer an index that covers
        // every write acknowledged before the read was asked.
        assert!(matches!(r, Ok(i) if i >= last), "member {id}: {r:?}");
    }
    t.stop_all();
}

#[test]
fn a_conf_change_removes_a_member_and_the_other_two_go_on() {
    let t = Three::start(39, 1, 1);
    let acked = t.propose(0, 0, 3);
    // Remove a member that does not lead.
    let l = t.leader(0);
    let gone = if l == 3 { 2 } else { 3 };
    let cc = ConfChangeV2 {
        changes: vec![ConfChangeSingle {
            r#type: ConfChangeType::ConfChangeRemoveNode as i32,
            node_id: gone,
        }],
        ..Default::default()
    };
    let r = t
        .m(l)
        .shard_of(0)
        .call(move |s| async move { s.node(0).unwrap().propose_conf_change(cc).await })
        .unwrap();
    assert!(matches!(r, Ok(i) if i > acked.last().unwrap().0), "{r:?}");
    // In force on the leader once applied there.
    let cs = status(t.m(l), 0).conf_state;
    assert!(!cs.voters.contains(&gone), "{cs:?}");
    assert_eq!(cs.voters.len(), 2, "{cs:?}");
    // The two left commit on their own.
    let more = propose_all(t.m(l), 0, vec![payload(0, 10)]);
    assert!(more[0].is_ok(), "{more:?}");
    t.stop_all();
}

#[test]
fn a_proposal_unanswered_within_the_request_timeout_fails_with_timeout() {
    let rt = RuntimeConfig {
        request_timeout_ticks: 40,
        ..runtime()
    };
    let t = Three::start_loopback_with(40, 1, 25_200, rt);
    t.propose(0, 0, 2);
    let l = t.leader(0);
    // Cut off, the leader can commit nothing; nobody else takes the slot
    // while the cut lasts, so only the deadline answers.
    t.loopback().cut(l);
    let t0 = std::time::Instant::now();
    let r = propose_all(t.m(l), 0, vec![payload(0, 7)]);
    assert_eq!(r[0], Err(ProposeError::Timeout));
    // 40 ticks of 5 ms, give or take a tick.
    assert!(
        t0.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t0.elapsed()
    );
    t.loopback().heal(l);
    t.stop_all();
}

/// 4 KiB payloads, numbered, so that a few dozen fill a 64 KiB segment.
fn big(group: u64, i: u64) -> Bytes {
    let mut v = format!("g{group}-{i:06}-").into_bytes();
    v.resize(4 << 10, b'.');
    Bytes::from(v)
}

/// Member 3 leads a group when its disk fills (its WAL quota, lowered to
/// what it holds): it refuses proposals with `StorageFull` (never
/// `StorageFailed`: it has not failed), hands leadership to a member that
/// can take entries, and the other two go on committing. Once there is
/// room it catches up by log, holds exactly what the others hold, and
/// acknowledges again (it leads and commits once more).
#[test]
fn a_member_whose_disk_fills_hands_over_leadership_the_others_go_on_and_it_catches_up() {
    let rt = RuntimeConfig {
        rebalance_leaders: false,
        wal_segment_size: 64 << 10,
        wal_max_flush_bytes: 16 << 10,
        max_entry_bytes: 4 << 10,
        request_timeout_ticks: 400,
        ..runtime()
    };
    let t = Three::start_with(40, 1, 1, rt);
    let g = 0;
    let l = t.leader(g);
    if l != 3 {
        t.m(l)
            .shard_of(g)
            .call(move |s| async move { s.node(g).unwrap().transfer_leader(3) })
            .unwrap()
            .unwrap();
        wait_until(20, "member 3 to lead", || {
            leader_of(&t.running(), g) == Some(3)
        });
    }
    set_quota(t.m(3), true);
    // Proposals one by one through whoever leads. Those refused (not the
    // leader, no room, dropped) were never in the log and are retried; one
    // that timed out may or may not be committed and is left alone.
    let mut acked: Vec<(u64, Bytes)> = Vec::new();
    let mut full_answers = 0;
    let mut uncertain = Vec::new();
    for i in 0..80u64 {
        let p = big(g, i);
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries < 2000, "proposal {i} kept being refused");
            let Some(l) = leader_of(&t.running(), g) else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            match propose_all(t.m(l), g, vec![p.clone()]).remove(0) {
                Ok(idx) => {
                    acked.push((idx, p));
                    break;
                }
                Err(ProposeError::StorageFull(_)) => {
                    assert_eq!(l, 3, "only member 3 is full");
                    full_answers += 1;
                }
                Err(ProposeError::NotLeader { .. } | ProposeError::Dropped) => {}
                Err(ProposeError::Timeout) => {
                    uncertain.push(p);
                    break;
                }
                Err(e) => panic!("proposal {i} at member {l}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let full = t.m(3).shards()[0]
        .call(|s| async move { s.storage_full() })
        .unwrap();
    assert!(full.is_some(), "member 3's WAL never filled");
    assert!(
        t.m(3).shards()[0].failure().is_none(),
        "a full disk is not a failure"
    );
    // Leadership left member 3, and the others committed without it.
    let new = t.leader(g);
    assert_ne!(new, 3);
    let last = acked.last().unwrap().0;
    assert!(
        status(t.m(3), g).applied < last,
        "member 3 applied what it cannot hold"
    );
    // Asked directly, member 3 answers at once: no room, or who leads.
    let start = std::time::Instant::now();
    match propose_all(t.m(3), g, vec![big(g, 999)]).remove(0) {
        Err(ProposeError::StorageFull(_)) => full_answers += 1,
        Err(ProposeError::NotLeader { leader: Some(x) }) => assert_ne!(x, 3),
        other => panic!("member 3 while full: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    eprintln!(
        "full disk: {} acked, {} uncertain, {full_answers} StorageFull answers",
        acked.len(),
        uncertain.len()
    );
    // Room again: member 3 catches up by log and holds what the others do.
    set_quota(t.m(3), false);
    for id in 1..=3 {
        wait_until(20, &format!("member {id} to apply {last}"), || {
            status(t.m(id), g).applied >= last
        });
    }
    wait_until(20, "member 3's WAL to take writes again", || {
        t.m(3).shards()[0]
            .call(|s| async move { s.storage_full() })
            .unwrap()
            .is_none()
    });
    let on_new = applied(t.m(new), g);
    for (idx, p) in &acked {
        assert!(
            on_new.contains(&(*idx, p.clone())),
            "acknowledged {idx} lost"
        );
    }
    wait_until(20, "member 3 to hold what the leader holds", || {
        applied(t.m(3), g) == applied(t.m(new), g)
    });
    // And it acknowledges again: it leads and commits.
    t.m(new)
        .shard_of(g)
        .call(move |s| async move { s.node(g).unwrap().transfer_leader(3) })
        .unwrap()
        .unwrap();
    wait_until(20, "member 3 to lead again", || {
        leader_of(&t.running(), g) == Some(3)
    });
    let r = propose_all(t.m(3), g, vec![big(g, 1000)]);
    assert!(matches!(r[0], Ok(i) if i > last), "{r:?}");
    t.stop_all();
}

/// Placement as docs/architecture.md states it, computed here on its own:
/// replica `i` of group `g` is `members[(g + i * step(g)) % n]`, with
/// `step(g) = steps[(g / n) % len]` and `steps` the `s` in
/// `1..=max(1, n / 2)` with `s * i % n != 0` for every `i` in `1..rf`.
fn placement_rule(ids: &[u64], rf: u64, g: u64) -> Vec<u64> {
    let n = ids.len() as u64;
    let steps: Vec<u64> = (1..=(n / 2).max(1))
        .filter(|s| (1..rf).all(|i| s * i % n != 0))
        .collect();
    let step = steps[((g / n) % steps.len() as u64) as usize];
    (0..rf)
        .map(|i| ids[((g + i * step) % n) as usize])
        .collect()
}

/// Five members of two shards, replication factor 3: placement follows
/// the rule; each member runs exactly the groups placed on it, each on
/// the shard `shard_of` names, with the placed replicas as its voters;
/// every group elects its preferred leader (placement's first replica)
/// and replicates a proposal to its three replicas, and to no one else.
#[test]
fn five_members_with_replication_factor_three_run_exactly_their_placed_groups() {
    const GROUPS: u64 = 40;
    let cluster = tcp_cluster(41, 5, 2, GROUPS, 3);
    let t = Three::start_on(cluster.clone(), runtime(), Net::Tcp, tcp());
    let ids: Vec<u64> = (1..=5).collect();
    for g in 0..GROUPS {
        assert_eq!(
            cluster.replicas(g).unwrap(),
            placement_rule(&ids, 3, g),
            "group {g}"
        );
    }
    for id in 1..=5u64 {
        let mut ran = Vec::new();
        for h in t.m(id).shards() {
            let k = h.index();
            let here = h.call(|s| async move { s.group_ids() }).unwrap();
            for &g in &here {
                assert_eq!(corelog::cluster::shard_of(g, 2), k, "member {id} group {g}");
            }
            ran.extend(here);
        }
        ran.sort_unstable();
        assert_eq!(ran, cluster.groups_of(id).unwrap(), "member {id}");
        // rf 3 of 5: each member holds 3/5 of the groups.
        assert_eq!(ran.len() as u64, GROUPS * 3 / 5, "member {id}");
    }
    let running = t.running();
    wait_until(30, "every group to elect its preferred leader", || {
        (0..GROUPS).all(|g| {
            let reps = cluster.replicas(g).unwrap();
            let holders: Vec<&MemberRuntime> =
                reps.iter().map(|&r| running[(r - 1) as usize]).collect();
            leader_of(&holders, g) == Some(reps[0])
        })
    });
    for g in 0..GROUPS {
        let reps = cluster.replicas(g).unwrap();
        let mut voters = status(t.m(reps[0]), g).conf_state.voters;
        voters.sort_unstable();
        let mut want = reps.clone();
        want.sort_unstable();
        assert_eq!(voters, want, "group {g}'s voters");
        let r = propose_all(t.m(reps[0]), g, vec![payload(g, 0)]);
        let idx = *r[0].as_ref().unwrap_or_else(|e| panic!("group {g}: {e}"));
        for &m in &reps {
            wait_until(20, &format!("member {m} to apply group {g}"), || {
                status(t.m(m), g).applied >= idx
            });
            assert!(applied(t.m(m), g).contains(&(idx, payload(g, 0))));
        }
        for m in (1..=5).filter(|m| !reps.contains(m)) {
            let has = t
                .m(m)
                .shard_of(g)
                .call(move |s| async move { s.node(g).is_some() })
                .unwrap();
            assert!(!has, "member {m} runs group {g}, not placed on it");
        }
    }
    t.stop_all();
}

/// A configuration change on `group`'s leader `l`; its index.
fn change(t: &Three, l: u64, group: u64, ty: ConfChangeType, node: u64) -> u64 {
    let cc = ConfChangeV2 {
        changes: vec![ConfChangeSingle {
            r#type: ty as i32,
            node_id: node,
        }],
        ..Default::default()
    };
    t.m(l)
        .shard_of(group)
        .call(move |s| async move { s.node(group).unwrap().propose_conf_change(cc).await })
        .unwrap()
        .unwrap_or_else(|e| panic!("{ty:?} {node}: {e}"))
}

/// A member that holds no replica of a group joins it: the group is
/// created empty on it (`Shard::join_group`, under the group's bootstrap
/// configuration), the leader adds it as a learner and it catches up by
/// log to exactly what the leader applied, then it is promoted to voter.
/// Two of the original replicas leave (one removed by a change, then
/// stopped; the other stopped), and the group still commits: the new
/// member is part of every quorum now.
#[test]
fn a_member_joins_a_group_as_learner_then_voter_catches_up_by_log_and_counts_in_quorums() {
    let rt = RuntimeConfig {
        rebalance_leaders: false,
        ..runtime()
    };
    let cluster = tcp_cluster(42, 4, 1, 4, 3);
    let mut t = Three::start_on(cluster.clone(), rt, Net::Tcp, tcp());
    let g = (0..4)
        .find(|&g| !cluster.holds(4, g))
        .expect("a group member 4 does not hold");
    let reps = cluster.replicas(g).unwrap();
    let holders = |t: &Three, ids: &[u64]| -> Option<u64> {
        let ms: Vec<&MemberRuntime> = ids.iter().map(|&i| t.m(i)).collect();
        leader_of(&ms, g)
    };
    let mut l = None;
    wait_until(20, "the group to elect", || {
        l = holders(&t, &reps);
        l.is_some()
    });
    let l = l.unwrap();
    let mut acked = Vec::new();
    for (k, r) in propose_all(t.m(l), g, (0..10).map(|i| payload(g, i)).collect())
        .into_iter()
        .enumerate()
    {
        acked.push((r.unwrap(), payload(g, k as u64)));
    }
    // Member 4 runs no replica yet.
    let has = |t: &Three| {
        t.m(4)
            .shard_of(g)
            .call(move |s| async move { s.node(g).is_some() })
            .unwrap()
    };
    assert!(!has(&t));
    let boot = corelog::raftpb::ConfState {
        voters: reps.clone(),
        ..Default::default()
    };
    t.m(4)
        .shard_of(g)
        .call(move |s| async move {
            let apply = corelog::shard::MemApply::factory()(g);
            s.join_group(g, boot, apply).map(|_| ())
        })
        .unwrap()
        .unwrap();
    assert!(has(&t));
    // Joined twice: refused.
    let again = t
        .m(4)
        .shard_of(g)
        .call(move |s| async move {
            let apply = corelog::shard::MemApply::factory()(g);
            s.join_group(g, Default::default(), apply).map(|_| ())
        })
        .unwrap();
    assert!(
        matches!(again, Err(corelog::shard::JoinError::Exists { .. })),
        "{again:?}"
    );
    // A configuration holding the joiner is refused (on another group).
    let other = (0..4).find(|&h| h != g && cluster.holds(4, h)).unwrap();
    let bad = t
        .m(4)
        .shard_of(other)
        .call(move |s| async move {
            let cs = corelog::raftpb::ConfState {
                voters: vec![4],
                ..Default::default()
            };
            s.join_group(other + 100, cs, corelog::shard::MemApply::factory()(other))
                .map(|_| ())
        })
        .unwrap();
    assert!(
        matches!(
            bad,
            Err(corelog::shard::JoinError::InConfig { member: 4, .. })
        ),
        "{bad:?}"
    );
    // A learner first: it catches up by log, votes in nothing.
    let at = change(&t, l, g, ConfChangeType::ConfChangeAddLearnerNode, 4);
    wait_until(20, "member 4 to catch up as a learner", || {
        status(t.m(4), g).applied >= at
    });
    assert_eq!(applied(t.m(4), g), acked, "the learner's log");
    let cs = status(t.m(4), g).conf_state;
    assert_eq!(cs.learners, vec![4], "{cs:?}");
    // Then a voter.
    let at = change(&t, l, g, ConfChangeType::ConfChangeAddNode, 4);
    wait_until(20, "member 4 to apply its promotion", || {
        status(t.m(4), g).applied >= at
    });
    let mut voters = status(t.m(l), g).conf_state.voters;
    voters.sort_unstable();
    let mut want = reps.clone();
    want.push(4);
    want.sort_unstable();
    assert_eq!(voters, want);
    // Two original replicas go: one removed, then stopped; one stopped.
    let others: Vec<u64> = reps.iter().copied().filter(|&m| m != l).collect();
    let _ = change(&t, l, g, ConfChangeType::ConfChangeRemoveNode, others[0]);
    t.stop_member(others[0]);
    t.stop_member(others[1]);
    // Voters: the leader, others[1] (down) and member 4: a quorum needs 4.
    let more = propose_all(t.m(l), g, vec![payload(g, 100)]);
    let idx = *more[0].as_ref().unwrap_or_else(|e| panic!("{e}"));
    acked.push((idx, payload(g, 100)));
    wait_until(20, "member 4 to apply it", || {
        status(t.m(4), g).applied >= idx
    });
    assert_eq!(applied(t.m(4), g), acked);
    assert_eq!(applied(t.m(l), g), acked);
    t.stop_all();
}

/// With rebalancing on, a member whose disk is full is handed no
/// leadership back, even of the groups it is the preferred leader of (it
/// would refuse every proposal), idle ones included: the new leader's
/// empty entry is one the full member cannot make durable, so rebalancing
/// never finds it caught up. Leadership leaves it, stays away for twenty
/// election timeouts while it is full, and returns once it has room.
#[test]
fn a_full_member_takes_no_leadership_back_from_rebalancing_until_it_has_room() {
    let rt = RuntimeConfig {
        wal_segment_size: 64 << 10,
        wal_max_flush_bytes: 16 << 10,
        max_entry_bytes: 4 << 10,
        request_timeout_ticks: 400,
        ..runtime()
    };
    let cluster = tcp_cluster(43, 3, 1, 6, 3);
    let t = Three::start_on(cluster.clone(), rt.clone(), Net::Tcp, tcp());
    // Two groups member 3 is the preferred leader of: one to fill its
    // disk through, one that stays idle (caught up, so rebalancing would
    // pick it).
    let mine: Vec<u64> = (0..6)
        .filter(|&g| cluster.replicas(g).unwrap()[0] == 3)
        .collect();
    let (g, idle) = (mine[0], mine[1]);
    wait_until(20, "member 3 to lead its preferred groups", || {
        leader_of(&t.running(), g) == Some(3) && leader_of(&t.running(), idle) == Some(3)
    });
    set_quota(t.m(3), true);
    // Fill member 3 through its group: proposals until it is full.
    let full = || {
        t.m(3).shards()[0]
            .call(|s| async move { s.storage_full() })
            .unwrap()
            .is_some()
    };
    let mut i = 0;
    while !full() {
        if let Some(l) = leader_of(&t.running(), g) {
            let _ = propose_all(t.m(l), g, vec![big(g, i)]);
        }
        i += 1;
        assert!(i < 500, "member 3 never filled");
    }
    wait_until(20, "leadership to leave member 3", || {
        [g, idle]
            .iter()
            .all(|&h| leader_of(&t.running(), h).is_some_and(|l| l != 3))
    });
    // Twenty election timeouts: rebalancing runs at each one.
    let until = std::time::Instant::now() + rt.tick * rt.election_ticks as u32 * 20;
    let mut led = 0;
    while std::time::Instant::now() < until {
        for h in [g, idle] {
            if status(t.m(3), h).role == corelog::raft::StateType::Leader {
                led += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(led, 0, "member 3 led {led} times while full");
    set_quota(t.m(3), false);
    wait_until(30, "member 3 to lead its preferred groups again", || {
        leader_of(&t.running(), g) == Some(3) && leader_of(&t.running(), idle) == Some(3)
    });
    t.stop_all();
}
