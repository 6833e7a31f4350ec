//! The peer network over real sockets on 127.0.0.1: members as glommio
//! executors on their own threads in this process, exchanging messages of
//! many groups; refused handshakes, garbage on the peer port, a peer that
//! goes away and comes back, full queues. Every wait has a deadline, so a
//! broken network fails a test instead of hanging it.

#[path = "support/memlock.rs"]
mod memlock;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::cluster::{Cluster, Member};
use corelog::raftpb::{Entry, Message, MessageType};
use corelog::transport::handshake::PROTOCOL_VERSION;
use corelog::transport::{
    Encoder, Handshake, Inbox, Limits, NetConfig, NetOptions, NetStats, PeerNet, SendError,
};
use glommio::{LocalExecutorBuilder, Placement};
use prost::Message as _;

/// Upper bound of any one wait in these tests.
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- setup

/// A base port with `n` free consecutive ports after it (std listeners
/// bound to :0 first, so parallel tests do not collide).
fn free_ports(n: u16) -> u16 {
    'retry: loop {
        let first = StdListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        let mut held = vec![first];
        for k in 1..n {
            let Some(port) = base.checked_add(k) else {
                continue 'retry;
            };
            match StdListener::bind(("127.0.0.1", port)) {
                Ok(l) => held.push(l),
                Err(_) => continue 'retry,
            }
        }
        return base;
    }
}

/// A cluster of members `1..=shards.len()`, member `i + 1` with
/// `shards[i]` shards, on free ports.
fn cluster_with(id: u64, shards: &[u32]) -> Arc<Cluster> {
    let members = shards
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let mid = i as u64 + 1;
            Member {
                id: mid,
                name: format!("m{mid}"),
                peer_addr: SocketAddr::from(([127, 0, 0, 1], free_ports(n as u16))),
                // Never bound here: another address keeps it clear of the
                // peer ports.
                client_addr: SocketAddr::from(([127, 0, 0, 2], 1000 + 10 * mid as u16)),
                shards: n,
            }
        })
        .collect();
    Arc::new(Cluster::new(id, members, 1 << 20, 1).unwrap())
}

fn config(cluster: &Arc<Cluster>, member: u64, shard: u32) -> NetConfig {
    NetConfig {
        cluster: cluster.clone(),
        member,
        shard,
        limits: Limits::default(),
        max_queue_bytes: 8 << 20,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        seed: member * 1000 + u64::from(shard),
    }
}

fn options() -> NetOptions {
    NetOptions {
        handshake_timeout: Duration::from_millis(300),
        ..NetOptions::default()
    }
}

/// Runs `f` on a glommio executor of its own thread.
fn on_executor<T, F, Fut>(name: &str, f: F) -> glommio::ExecutorJoinHandle<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    memlock::raise_memlock_limit().unwrap();
    LocalExecutorBuilder::new(Placement::Unbound)
        .name(name)
        .spawn(f)
        .unwrap()
}

/// Sleeps on the executor until `cond` holds; panics after [`DEADLINE`].
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// The same from a plain thread.
fn wait_until_blocking(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A counter threads meet at.
#[derive(Clone, Default)]
struct Count(Arc<AtomicU64>);

impl Count {
    fn add(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    async fn reach(&self, n: u64, what: &str) {
        wait_until(what, || self.get() >= n).await
    }
}

// ------------------------------------------------------------- messages

/// Deterministic payload bytes of entry `k` of message `seq` of `group`.
fn pattern(group: u64, seq: u64, k: u64, len: usize) -> Bytes {
    (0..len)
        .map(|i| (group * 31 + seq * 7 + k * 13 + i as u64) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Entry sizes of test messages: one copied by the encoder (below
/// INLINE_MAX), one referenced.
const SMALL: usize = 100;
const LARGE: usize = 3000;

fn app(from: u64, to: u64, group: u64, seq: u64) -> Message {
    Message {
        r#type: MessageType::MsgApp as i32,
        to,
        from,
        term: 1,
        log_term: 1,
        index: seq,
        commit: seq,
        entries: vec![
            Entry {
                term: 1,
                index: 2 * seq,
                data: pattern(group, seq, 0, SMALL),
                ..Entry::default()
            },
            Entry {
                term: 1,
                index: 2 * seq + 1,
                data: pattern(group, seq, 1, LARGE),
                ..Entry::default()
            },
        ],
        ..Message::default()
    }
}

/// Checks a received `app(from, to, group, seq)`: fields, payload bytes,
/// and that its two payloads sit in one buffer exactly as far apart as
/// the wire put them (so both are slices of the receive buffer, not
/// copies).
fn check_app(group: u64, m: &Message, seq: u64) {
    assert_eq!(m.r#type, MessageType::MsgApp as i32);
    assert_eq!((m.index, m.commit, m.term), (seq, seq, 1));
    assert_eq!(m.entries.len(), 2);
    let (e0, e1) = (&m.entries[0], &m.entries[1]);
    assert_eq!(
        e0.data,
        pattern(group, seq, 0, SMALL),
        "group {group} seq {seq}"
    );
    assert_eq!(
        e1.data,
        pattern(group, seq, 1, LARGE),
        "group {group} seq {seq}"
    );
    // On the wire, e1's data follows e0's data after e1's field key, its
    // length varint and e1's fields before `data` (its last field).
    let elen = e1.encoded_len();
    let wire_gap = e0.data.len() + 1 + prost::length_delimiter_len(elen) + (elen - e1.data.len());
    let gap = e1.data.as_ptr() as usize - e0.data.as_ptr() as usize;
    assert_eq!(
        gap, wire_gap,
        "payloads are not slices of one receive buffer"
    );
}

// -------------------------------------------------------------- exchange

/// Every member sends `per_group` messages of every group it runs to
/// every other member; each member checks that each message arrives at
/// the shard that runs its group, in order per sender, bytes intact.
fn exchange(shards: &[u32], groups: u64, per_group: u64) -> Vec<NetStats> {
    let cluster = cluster_with(0xc1, shards);
    let started = Count::default();
    let done = Count::default();
    let total: u64 = shards.iter().map(|&n| u64::from(n)).sum();
    let mut handles = Vec::new();
    for m in cluster.members().iter().cloned() {
        for s in 0..m.shards {
            let (cluster, started, done) = (cluster.clone(), started.clone(), done.clone());
            let m = m.clone();
            handles.push(on_executor(&format!("m{}s{s}", m.id), move || async move {
                let inbox = Inbox::new();
                let net = PeerNet::start_with(config(&cluster, m.id, s), options(), inbox.clone())
                    .unwrap();
                started.add();
                started.reach(total, "every listener").await;
                let others: Vec<Member> = cluster
                    .members()
                    .iter()
                    .filter(|o| o.id != m.id)
                    .cloned()
                    .collect();
                let mine: Vec<u64> = (0..groups).filter(|&g| m.shard_of(g) == s).collect();
                // What arrives here: from every other member, the groups
                // this shard runs.
                let expected = (others.len() * mine.len()) as u64 * per_group;
                let mut next: HashMap<(u64, u64), u64> = HashMap::new();
                let mut got = 0u64;
                let mut out = Vec::new();
                let mut receive = |inbox: &Inbox| {
                    inbox.drain_into(&mut out);
                    for (g, msg) in out.drain(..) {
                        assert_eq!(m.shard_of(g), s, "group {g} landed on shard {s}");
                        assert_eq!(msg.to, m.id);
                        let seq = next.entry((msg.from, g)).or_insert(1);
                        check_app(g, &msg, *seq);
                        *seq += 1;
                        got += 1;
                    }
                    got
                };
                // One turn per sequence number: send, flush, let the
                // connections write while reading what arrived.
                for seq in 1..=per_group {
                    for &g in &mine {
                        for o in &others {
                            net.send(o.id, g, app(m.id, o.id, g, seq)).unwrap();
                        }
                    }
                    net.flush();
                    glommio::executor().yield_task_queue_now().await;
                    receive(&inbox);
                }
                let start = Instant::now();
                while receive(&inbox) < expected {
                    assert!(
                        start.elapsed() < DEADLINE,
                        "member {} shard {s}: {got} of {expected} messages",
                        m.id
                    );
                    futures_lite::future::or(inbox.wait(), glommio::timer::sleep(DEADLINE)).await;
                }
                assert_eq!(got, expected);
                done.add();
                // Keep serving until everyone has everything.
                done.reach(total, "every member's messages").await;
                net.shutdown().await;
                let mut unreachable = Vec::new();
                net.take_unreachable(&mut unreachable);
                assert!(unreachable.is_empty(), "{unreachable:?}");
                net.stats()
            }));
        }
    }
    let stats: Vec<NetStats> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let sent: u64 = stats.iter().map(|s| s.messages_sent).sum();
    let received: u64 = stats.iter().map(|s| s.messages_received).sum();
    assert_eq!(sent, received);
    for s in &stats {
        assert_eq!(s.dropped_unreachable + s.send_queue_full, 0, "{s:?}");
        assert_eq!(
            s.dropped_wrong_shard + s.dropped_wrong_to + s.dropped_wrong_from,
            0,
            "{s:?}"
        );
        assert_eq!(
            s.closed_bad_crc + s.closed_malformed + s.closed_oversized,
            0
        );
    }
    stats
}

#[test]
fn two_members_one_shard_exchange_many_groups_in_order() {
    let stats = exchange(&[1, 1], 32, 20);
    // 32 groups x 20 messages each way.
    let sent: u64 = stats.iter().map(|s| s.messages_sent).sum();
    assert_eq!(sent, 2 * 32 * 20);
    // Batched: far fewer frames than messages.
    let frames: u64 = stats.iter().map(|s| s.frames_sent).sum();
    assert!(frames <= 2 * 20, "{frames} frames for 20 turns per member");
}

#[test]
fn three_members_of_one_and_two_shards_exchange_many_groups_in_order() {
    let stats = exchange(&[1, 2, 2], 48, 10);
    let sent: u64 = stats.iter().map(|s| s.messages_sent).sum();
    // Each member sends each of the 48 groups to the two others.
    assert_eq!(sent, 3 * 48 * 2 * 10);
    // Member 1 (one shard) dials each shard of members 2 and 3.
    assert_eq!(stats[0].connects, 4);
}

// ------------------------------------------------------- raw peer clients

/// A plain blocking connection to a peer port, as a hostile or broken
/// peer would open it.
fn raw_connect(addr: SocketAddr) -> StdStream {
    let s = StdStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Asserts that the other end closes `s` without sending a byte.
fn expect_closed(s: &mut StdStream, what: &str) {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("{what}: got {n} bytes, expected the connection closed"),
        Err(e) => panic!("{what}: expected the connection closed, got {e}"),
    }
}

/// Opens a connection and completes `hello`'s handshake (checking the
/// reply).
fn raw_hello(addr: SocketAddr, hello: Handshake) -> StdStream {
    let mut s = raw_connect(addr);
    s.write_all(&hello.encode()).unwrap();
    let mut reply = [0u8; corelog::transport::HANDSHAKE_LEN];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply, hello.reply().encode());
    s
}

/// The bytes of one frame of `msgs`.
fn frame(msgs: Vec<(u64, Message)>) -> Vec<u8> {
    let mut enc = Encoder::new(Limits::default());
    for (g, m) in msgs {
        enc.push(g, m).unwrap();
    }
    enc.finish().to_vec()
}

/// A group that member `m` runs on shard `s`.
fn group_on(m: &Member, s: u32, nth: usize) -> u64 {
    (0..).filter(|&g| m.shard_of(g) == s).nth(nth).unwrap()
}

// ------------------------------------------------------------ handshakes

#[test]
fn refused_handshakes_are_closed_and_counted_and_good_peers_keep_working() {
    // Member 1 (two shards) is dialled at shard 0; member 2 is a good
    // peer; a member 2 of another cluster dials member 1 too.
    let cluster = cluster_with(0xc1, &[2, 1]);
    let foreign = {
        let mut members = cluster.members().to_vec();
        members[1].peer_addr.set_port(free_ports(1));
        Arc::new(Cluster::new(0xbad, members, 1 << 20, 1).unwrap())
    };
    let m1 = cluster.member(1).unwrap().clone();
    let g = group_on(&m1, 0, 0);
    let target = m1.peer_addr_of_shard(0).unwrap();
    let (started, attacked, done) = (Count::default(), Count::default(), Count::default());

    let receiver = {
        let (cluster, started, attacked, done) = (
            cluster.clone(),
            started.clone(),
            attacked.clone(),
            done.clone(),
        );
        on_executor("m1s0", move || async move {
            let inbox = Inbox::new();
            let net =
                PeerNet::start_with(config(&cluster, 1, 0), options(), inbox.clone()).unwrap();
            started.add();
            attacked.reach(1, "the attacks").await;
            let mut got = Vec::new();
            wait_until("member 2's ten messages", || {
                inbox.drain_into(&mut got);
                got.len() >= 10
            })
            .await;
            for (i, (group, m)) in got.iter().enumerate() {
                assert_eq!(*group, g);
                check_app(g, m, i as u64 + 1);
            }
            done.add();
            done.reach(3, "the senders").await;
            net.shutdown().await;
            net.stats()
        })
    };
    let good = {
        let (cluster, started, attacked, done) = (
            cluster.clone(),
            started.clone(),
            attacked.clone(),
            done.clone(),
        );
        on_executor("m2s0", move || async move {
            let net = PeerNet::start_with(config(&cluster, 2, 0), options(), Inbox::new()).unwrap();
            started.add();
            started.reach(3, "every listener").await;
            for seq in 1..=10 {
                if seq == 6 {
                    // Half before the attacks, half after.
                    attacked.reach(1, "the attacks").await;
                }
                net.send(1, g, app(2, 1, g, seq)).unwrap();
                net.flush();
                glommio::timer::sleep(Duration::from_millis(2)).await;
            }
            done.add();
            done.reach(3, "the receiver").await;
            net.shutdown().await;
            net.stats()
        })
    };
    let stranger = {
        let (foreign, started, done) = (foreign.clone(), started.clone(), done.clone());
        on_executor("foreign", move || async move {
            let net = PeerNet::start_with(config(&foreign, 2, 0), options(), Inbox::new()).unwrap();
            started.add();
            started.reach(3, "every listener").await;
            let mut unreachable = Vec::new();
            let start = Instant::now();
            while unreachable.is_empty() {
                assert!(start.elapsed() < DEADLINE, "the refusal was never reported");
                net.send(1, g, app(2, 1, g, 1)).unwrap();
                net.flush();
                glommio::timer::sleep(Duration::from_millis(10)).await;
                net.take_unreachable(&mut unreachable);
            }
            done.add();
            net.shutdown().await;
            (net.stats(), unreachable)
        })
    };

    wait_until_blocking("every listener", || started.get() >= 3);
    let hello = Handshake {
        cluster_id: 0xc1,
        from_member: 2,
        to_member: 1,
        from_shard: 0,
        to_shard: 0,
        auth: false,
    };
    let refused = [
        (
            "foreign cluster",
            Handshake {
                cluster_id: 0xbad,
                ..hello
            }
            .encode(),
        ),
        (
            "unknown member",
            Handshake {
                from_member: 9,
                ..hello
            }
            .encode(),
        ),
        (
            "another shard's port",
            Handshake {
                to_shard: 1,
                ..hello
            }
            .encode(),
        ),
        (
            "a shard member 1 lacks",
            Handshake {
                to_shard: 5,
                ..hello
            }
            .encode(),
        ),
        (
            "another member",
            Handshake {
                to_member: 2,
                ..hello
            }
            .encode(),
        ),
        ("another version", {
            let mut b = hello.encode();
            b[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
            b
        }),
        ("not a handshake", {
            let mut b = [b' '; 44];
            b[..16].copy_from_slice(b"GET / HTTP/1.1\r\n");
            b
        }),
    ];
    for (what, bytes) in refused {
        let mut s = raw_connect(target);
        s.write_all(&bytes).unwrap();
        expect_closed(&mut s, what);
    }
    // Ten bytes, then the end of the stream.
    let mut s = raw_connect(target);
    s.write_all(&hello.encode()[..10]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    expect_closed(&mut s, "a truncated handshake");
    // Nothing at all: closed after the handshake timeout.
    let mut s = raw_connect(target);
    expect_closed(&mut s, "a silent peer");
    // A good handshake is still answered.
    drop(raw_hello(target, hello));
    attacked.add();

    let stats = receiver.join().unwrap();
    let good = good.join().unwrap();
    let (stranger, unreachable) = stranger.join().unwrap();
    assert!(stats.refused_foreign_cluster >= 2, "{stats:?}");
    assert_eq!(stats.refused_unknown_member, 1, "{stats:?}");
    assert_eq!(stats.refused_wrong_shard, 2, "{stats:?}");
    assert_eq!(stats.refused_wrong_member, 1, "{stats:?}");
    assert_eq!(stats.refused_version, 1, "{stats:?}");
    assert_eq!(stats.refused_bad_handshake, 2, "{stats:?}");
    assert_eq!(stats.refused_handshake_timeout, 1, "{stats:?}");
    // Member 2 and the good raw handshake.
    assert_eq!(stats.accepted, 2, "{stats:?}");
    assert_eq!(good.messages_sent, 10);
    assert_eq!(good.dropped_unreachable, 0);
    // The refused dialler never connected and reported the member.
    assert_eq!(stranger.connects, 0);
    assert!(stranger.connect_failures >= 1, "{stranger:?}");
    assert_eq!(unreachable, vec![(1, g)]);
}

// --------------------------------------------------------------- garbage

#[test]
fn garbage_bad_crc_oversized_and_malformed_frames_close_only_their_connection() {
    // Member 1 (two shards) is read at shard 0; member 2 is a good peer;
    // raw connections speak as member 3.
    let cluster = cluster_with(0xc1, &[2, 1, 1]);
    let m1 = cluster.member(1).unwrap().clone();
    let g = group_on(&m1, 0, 0);
    let g_other_shard = group_on(&m1, 1, 0);
    let target = m1.peer_addr_of_shard(0).unwrap();
    let (started, attacked, done) = (Count::default(), Count::default(), Count::default());

    let receiver = {
        let (cluster, started, done) = (cluster.clone(), started.clone(), done.clone());
        on_executor("m1s0", move || async move {
            let inbox = Inbox::new();
            let net =
                PeerNet::start_with(config(&cluster, 1, 0), options(), inbox.clone()).unwrap();
            started.add();
            let mut got = Vec::new();
            // Ten from member 2, two from the raw member 3.
            wait_until("twelve messages", || {
                inbox.drain_into(&mut got);
                got.len() >= 12
            })
            .await;
            done.add();
            done.reach(2, "the sender").await;
            net.shutdown().await;
            (net.stats(), got)
        })
    };
    let good = {
        let (cluster, started, attacked, done) = (
            cluster.clone(),
            started.clone(),
            attacked.clone(),
            done.clone(),
        );
        on_executor("m2s0", move || async move {
            let net = PeerNet::start_with(config(&cluster, 2, 0), options(), Inbox::new()).unwrap();
            started.add();
            started.reach(2, "every listener").await;
            for seq in 1..=10 {
                if seq == 6 {
                    attacked.reach(1, "the attacks").await;
                }
                net.send(1, g, app(2, 1, g, seq)).unwrap();
                net.flush();
                glommio::timer::sleep(Duration::from_millis(2)).await;
            }
            done.add();
            done.reach(2, "the receiver").await;
            net.shutdown().await;
            net.stats()
        })
    };

    wait_until_blocking("every listener", || started.get() >= 2);
    let hello = Handshake {
        cluster_id: 0xc1,
        from_member: 3,
        to_member: 1,
        from_shard: 0,
        to_shard: 0,
        auth: false,
    };
    // One good frame with three messages that are not for this shard,
    // then another good frame: the connection stays.
    let mut s = raw_hello(target, hello);
    let wrong_to = app(3, 2, g, 1);
    let wrong_from = app(2, 1, g, 1);
    let other_shard = app(3, 1, g_other_shard, 1);
    s.write_all(&frame(vec![
        (g, wrong_to),
        (g, app(3, 1, g, 1)),
        (g_other_shard, other_shard),
        (g, wrong_from),
    ]))
    .unwrap();
    s.write_all(&frame(vec![(g, app(3, 1, g, 2))])).unwrap();
    let good_raw = s;

    let mut bad_crc = frame(vec![(g, app(3, 1, g, 3))]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x40;
    let mut oversized = Vec::new();
    oversized.extend_from_slice(&(Limits::default().max_frame_bytes + 1).to_le_bytes());
    oversized.extend_from_slice(&[0u8; 4]);
    // A payload with a valid crc announcing one message of 1,000 bytes
    // and carrying three.
    let mut payload = Vec::new();
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(&g.to_le_bytes());
    payload.extend_from_slice(&1000u32.to_le_bytes());
    payload.extend_from_slice(&[8, 3, 16]);
    let mut malformed = Vec::new();
    malformed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    malformed.extend_from_slice(&corelog::transport::frame::checksum(&payload).to_le_bytes());
    malformed.extend_from_slice(&payload);
    for (what, bytes) in [
        ("garbage", vec![0xff; 64]),
        ("a bad crc", bad_crc),
        ("an oversized length", oversized),
        ("a malformed payload", malformed),
    ] {
        let mut s = raw_hello(target, hello);
        s.write_all(&bytes).unwrap();
        expect_closed(&mut s, what);
    }
    attacked.add();

    let (stats, got) = receiver.join().unwrap();
    good.join().unwrap();
    drop(good_raw);
    let from2: Vec<&Message> = got
        .iter()
        .filter(|(_, m)| m.from == 2)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(from2.len(), 10);
    for (i, m) in from2.iter().enumerate() {
        check_app(g, m, i as u64 + 1);
    }
    let from3: Vec<u64> = got
        .iter()
        .filter(|(_, m)| m.from == 3)
        .map(|(_, m)| m.index)
        .collect();
    assert_eq!(from3, vec![1, 2]);
    assert_eq!(stats.closed_oversized, 2, "{stats:?}");
    assert_eq!(stats.closed_bad_crc, 1, "{stats:?}");
    assert_eq!(stats.closed_malformed, 1, "{stats:?}");
    assert_eq!(stats.dropped_wrong_to, 1, "{stats:?}");
    assert_eq!(stats.dropped_wrong_from, 1, "{stats:?}");
    assert_eq!(stats.dropped_wrong_shard, 1, "{stats:?}");
    // Member 2 and five raw connections.
    assert_eq!(stats.accepted, 6, "{stats:?}");
}

// ----------------------------------------------------- going and coming back

#[test]
fn a_peer_that_goes_away_is_reported_unreachable_and_reconnected_when_back() {
    let cluster = cluster_with(0xc1, &[1, 1]);
    let g = 7;
    let (started, down, back) = (Count::default(), Count::default(), Count::default());

    let b = {
        let (cluster, started, down, back) =
            (cluster.clone(), started.clone(), down.clone(), back.clone());
        on_executor("m2", move || async move {
            let inbox = Inbox::new();
            let net =
                PeerNet::start_with(config(&cluster, 2, 0), options(), inbox.clone()).unwrap();
            started.add();
            let mut got = Vec::new();
            wait_until("the first three messages", || {
                inbox.drain_into(&mut got);
                got.len() >= 3
            })
            .await;
            net.shutdown().await;
            drop(net);
            down.add();
            // Away until member 1 has seen the loss.
            down.reach(2, "member 1 to report the loss").await;
            let inbox = Inbox::new();
            let net =
                PeerNet::start_with(config(&cluster, 2, 0), options(), inbox.clone()).unwrap();
            let mut after = Vec::new();
            wait_until("messages after the restart", || {
                inbox.drain_into(&mut after);
                after.len() >= 3
            })
            .await;
            back.add();
            net.shutdown().await;
            (got, after)
        })
    };
    let a = {
        let (cluster, started, down, back) =
            (cluster.clone(), started.clone(), down.clone(), back.clone());
        on_executor("m1", move || async move {
            let net = PeerNet::start_with(config(&cluster, 1, 0), options(), Inbox::new()).unwrap();
            started.add();
            started.reach(2, "both listeners").await;
            let mut seq = 0;
            let mut unreachable = Vec::new();
            let mut send = |net: &PeerNet| {
                seq += 1;
                net.send(2, g, app(1, 2, g, seq)).unwrap();
                net.flush();
            };
            for _ in 0..3 {
                send(&net);
                glommio::timer::sleep(Duration::from_millis(2)).await;
            }
            down.reach(1, "member 2 to go away").await;
            // Keep sending: the loss is noticed and what is sent while
            // member 2 is away is reported.
            let start = Instant::now();
            while unreachable.is_empty() {
                assert!(start.elapsed() < DEADLINE, "the loss was never reported");
                send(&net);
                glommio::timer::sleep(Duration::from_millis(5)).await;
                net.take_unreachable(&mut unreachable);
            }
            assert_eq!(unreachable, vec![(2, g)], "each pair once");
            let lost_by = net.stats();
            down.add();
            let start = Instant::now();
            while back.get() == 0 {
                assert!(start.elapsed() < DEADLINE, "never reconnected");
                send(&net);
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            net.shutdown().await;
            (lost_by, net.stats())
        })
    };
    let (got, after) = b.join().unwrap();
    let (lost_by, stats) = a.join().unwrap();
    for (i, (group, m)) in got.iter().take(3).enumerate() {
        assert_eq!(*group, g);
        check_app(g, m, i as u64 + 1);
    }
    // After the restart: in order, later than anything before it.
    let seqs: Vec<u64> = after.iter().map(|(_, m)| m.index).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seqs[0] > 3, "{seqs:?}");
    assert!(lost_by.dropped_unreachable >= 1, "{lost_by:?}");
    assert!(
        lost_by.connections_lost + lost_by.connect_failures >= 1,
        "{lost_by:?}"
    );
    assert_eq!(stats.connects, 2, "{stats:?}");
}

// ---------------------------------------------------------------- queues

#[test]
fn a_full_queue_refuses_sends_until_flushed_and_written() {
    let cluster = cluster_with(0xc1, &[1, 1]);
    let started = Count::default();
    let done = Count::default();
    let b = {
        let (cluster, started, done) = (cluster.clone(), started.clone(), done.clone());
        on_executor("m2", move || async move {
            let inbox = Inbox::new();
            let net =
                PeerNet::start_with(config(&cluster, 2, 0), options(), inbox.clone()).unwrap();
            started.add();
            done.reach(1, "member 1").await;
            net.shutdown().await;
            inbox.len()
        })
    };
    let a = {
        let (cluster, started, done) = (cluster.clone(), started.clone(), done.clone());
        on_executor("m1", move || async move {
            let cfg = NetConfig {
                max_queue_bytes: 16 << 10,
                ..config(&cluster, 1, 0)
            };
            let net = PeerNet::start_with(cfg, options(), Inbox::new()).unwrap();
            started.add();
            started.reach(2, "both listeners").await;
            // Unflushed messages of ~3.2 KB: the sixth passes 16 KiB.
            let mut accepted = 0;
            let err = loop {
                match net.send(2, 1, app(1, 2, 1, accepted + 1)) {
                    Ok(()) => accepted += 1,
                    Err(e) => break e,
                }
                assert!(accepted < 100, "the queue never filled");
            };
            assert!(
                matches!(err, SendError::QueueFull { member: 2, shard: 0, limit, .. } if limit == 16 << 10),
                "{err:?}"
            );
            assert_eq!(accepted, 6);
            net.flush();
            wait_until("the queue written", || {
                net.stats().messages_sent == accepted
            })
            .await;
            net.send(2, 1, app(1, 2, 1, accepted + 1)).unwrap();
            net.flush();
            wait_until("the last one written", || {
                net.stats().messages_sent == accepted + 1
            })
            .await;
            // Other refusals.
            assert_eq!(
                net.send(99, 1, app(1, 99, 1, 1)),
                Err(SendError::UnknownMember { member: 99 })
            );
            let local = Message {
                r#type: MessageType::MsgStorageAppend as i32,
                to: 2,
                ..Message::default()
            };
            assert!(matches!(
                net.send(2, 1, local),
                Err(SendError::Encode(
                    corelog::transport::Error::LocalOnly { .. }
                ))
            ));
            let stats = net.stats();
            done.add();
            net.shutdown().await;
            assert_eq!(net.send(2, 1, app(1, 2, 1, 1)), Err(SendError::Shutdown));
            stats
        })
    };
    let stats = a.join().unwrap();
    assert_eq!(b.join().unwrap(), 7);
    assert_eq!(stats.send_queue_full, 1);
    assert_eq!(stats.dropped_unreachable, 0);
}

#[test]
fn a_peer_that_stops_reading_fills_the_queue_and_its_loss_reports_the_queue() {
    // Member 2 is a plain thread that answers the handshake, then reads
    // nothing until told to go.
    let cluster = cluster_with(0xc1, &[1, 1]);
    let addr = cluster.member(2).unwrap().peer_addr;
    let listener = StdListener::bind(addr).unwrap();
    let release = Count::default();
    let stalled = {
        let release = release.clone();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut hello = [0u8; corelog::transport::HANDSHAKE_LEN];
            s.read_exact(&mut hello).unwrap();
            let hello = Handshake::decode(&hello).unwrap();
            s.write_all(&hello.reply().encode()).unwrap();
            wait_until_blocking("the release", || release.get() > 0);
            // Closing with unread bytes: the writer sees a reset.
        })
    };
    let a = {
        let (cluster, release) = (cluster.clone(), release.clone());
        on_executor("m1", move || async move {
            let cfg = NetConfig {
                max_queue_bytes: 1 << 20,
                ..config(&cluster, 1, 0)
            };
            let net = PeerNet::start_with(cfg, options(), Inbox::new()).unwrap();
            let big = |seq: u64| Message {
                r#type: MessageType::MsgApp as i32,
                to: 2,
                from: 1,
                index: seq,
                entries: vec![Entry {
                    data: Bytes::from(vec![7u8; 64 << 10]),
                    ..Entry::default()
                }],
                ..Message::default()
            };
            let mut seq = 0;
            let start = Instant::now();
            let err = loop {
                assert!(start.elapsed() < DEADLINE, "the queue never filled");
                seq += 1;
                match net.send(2, 5, big(seq)) {
                    Ok(()) => {}
                    Err(e) => break e,
                }
                net.flush();
                glommio::timer::sleep(Duration::from_millis(1)).await;
            };
            assert!(matches!(err, SendError::QueueFull { .. }), "{err:?}");
            let full = net.stats();
            release.add();
            let mut unreachable = Vec::new();
            wait_until("the loss reported", || {
                net.take_unreachable(&mut unreachable);
                !unreachable.is_empty()
            })
            .await;
            net.shutdown().await;
            (full, net.stats(), unreachable)
        })
    };
    let (full, stats, unreachable) = a.join().unwrap();
    stalled.join().unwrap();
    assert_eq!(full.send_queue_full, 1);
    // Bytes went out until the kernel's buffers filled, then queued.
    assert!(full.messages_sent > 0, "{full:?}");
    assert_eq!(unreachable, vec![(2, 5)]);
    assert!(stats.dropped_unreachable > 0, "{stats:?}");
    assert_eq!(stats.connections_lost, 1, "{stats:?}");
}

/// The heartbeats of one turn: 1,000 groups' heartbeats and 1,000
/// responses, and one heartbeat with a ReadIndex context.
fn heartbeats_of_a_turn() -> Vec<(u64, Message)> {
    let mut out = Vec::new();
    for g in 0..1000u64 {
        out.push((
            g,
            Message {
                r#type: MessageType::MsgHeartbeat as i32,
                to: 2,
                from: 1,
                term: 3 + g % 2,
                commit: g * 10,
                ..Message::default()
            },
        ));
        out.push((
            g + 5000,
            Message {
                r#type: MessageType::MsgHeartbeatResp as i32,
                to: 2,
                from: 1,
                term: 4,
                ..Message::default()
            },
        ));
    }
    out.push((
        77,
        Message {
            r#type: MessageType::MsgHeartbeat as i32,
            to: 2,
            from: 1,
            term: 3,
            context: Bytes::from_static(b"read-index-ctx"),
            ..Message::default()
        },
    ));
    out
}

/// Sends [`heartbeats_of_a_turn`] in one turn; returns what member 2
/// received and both sides' counters.
fn one_turn_of_heartbeats(coalesce: bool) -> (Vec<(u64, Message)>, NetStats, NetStats) {
    let cluster = cluster_with(0xc1, &[1, 1]);
    let started = Count::default();
    let opts = NetOptions {
        coalesce_heartbeats: coalesce,
        ..options()
    };
    let n = heartbeats_of_a_turn().len();
    let b = {
        let (cluster, started) = (cluster.clone(), started.clone());
        on_executor("m2", move || async move {
            let inbox = Inbox::new();
            let net = PeerNet::start_with(config(&cluster, 2, 0), opts, inbox.clone()).unwrap();
            started.add();
            let mut got = Vec::new();
            wait_until("every heartbeat", || {
                inbox.drain_into(&mut got);
                got.len() >= n
            })
            .await;
            net.shutdown().await;
            (got, net.stats())
        })
    };
    let a = {
        let (cluster, started) = (cluster.clone(), started.clone());
        on_executor("m1", move || async move {
            let net = PeerNet::start_with(config(&cluster, 1, 0), opts, Inbox::new()).unwrap();
            started.add();
            started.reach(2, "both listeners").await;
            for (g, m) in heartbeats_of_a_turn() {
                net.send(2, g, m).unwrap();
            }
            net.flush();
            wait_until("the frame written", || {
                net.stats().messages_sent == n as u64
            })
            .await;
            net.shutdown().await;
            net.stats()
        })
    };
    let sent = a.join().unwrap();
    let (got, received) = b.join().unwrap();
    (got, sent, received)
}

#[test]
fn everything_toward_one_peer_in_a_turn_is_one_frame_and_one_write() {
    for coalesce in [false, true] {
        let (mut got, sent, received) = one_turn_of_heartbeats(coalesce);
        assert_eq!((sent.frames_sent, sent.writes), (1, 1), "{sent:?}");
        assert_eq!(received.frames_received, 1, "{received:?}");
        assert_eq!(received.messages_received, 2001);
        // The same messages arrive, whichever way they travelled.
        let key = |(g, m): &(u64, Message)| (m.r#type, *g, m.context.clone());
        got.sort_by_key(key);
        let mut want = heartbeats_of_a_turn();
        want.sort_by_key(key);
        let first_difference = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            got.len() == want.len() && first_difference.is_none(),
            "coalesce {coalesce}: {} received; first difference at {first_difference:?}",
            got.len()
        );
    }
}

#[test]
fn coalesced_heartbeats_take_a_fraction_of_the_bytes() {
    let (_, plain, _) = one_turn_of_heartbeats(false);
    let (got, coalesced, _) = one_turn_of_heartbeats(true);
    assert_eq!(plain.heartbeats_coalesced, 0);
    // All but the one with a context.
    assert_eq!(coalesced.heartbeats_coalesced, 2000);
    println!(
        "2,001 heartbeats in one frame: {} bytes plain, {} coalesced",
        plain.bytes_sent, coalesced.bytes_sent
    );
    assert!(
        coalesced.bytes_sent * 3 < plain.bytes_sent,
        "{} bytes coalesced, {} plain",
        coalesced.bytes_sent,
        plain.bytes_sent
    );
    // Within a batch, the order of sending is kept.
    let beats: Vec<u64> = got
        .iter()
        .filter(|(_, m)| m.r#type == MessageType::MsgHeartbeat as i32 && m.context.is_empty())
        .map(|(g, _)| *g)
        .collect();
    assert_eq!(beats, (0..1000).collect::<Vec<u64>>());
}

#[test]
fn an_idle_connection_notices_its_peer_going_away_without_a_send() {
    let cluster = cluster_with(0xc1, &[1, 1]);
    let (started, down) = (Count::default(), Count::default());
    let b = {
        let (cluster, started, down) = (cluster.clone(), started.clone(), down.clone());
        on_executor("m2", move || async move {
            let inbox = Inbox::new();
            let net =
                PeerNet::start_with(config(&cluster, 2, 0), options(), inbox.clone()).unwrap();
            started.add();
            wait_until("one message", || !inbox.is_empty()).await;
            net.shutdown().await;
            down.add();
        })
    };
    let a = {
        let (cluster, started, down) = (cluster.clone(), started.clone(), down.clone());
        on_executor("m1", move || async move {
            let cfg = NetConfig {
                // Long enough that no reconnect attempt follows the loss
                // within the test.
                backoff_min: Duration::from_secs(30),
                backoff_max: Duration::from_secs(30),
                ..config(&cluster, 1, 0)
            };
            let net = PeerNet::start_with(cfg, options(), Inbox::new()).unwrap();
            started.add();
            started.reach(2, "both listeners").await;
            net.send(2, 1, app(1, 2, 1, 1)).unwrap();
            net.flush();
            down.reach(1, "member 2 to go away").await;
            // No send: the connection's watcher sees the end of the stream.
            wait_until("the loss noticed", || net.stats().connections_lost == 1).await;
            let stats = net.stats();
            net.shutdown().await;
            stats
        })
    };
    b.join().unwrap();
    let stats = a.join().unwrap();
    assert_eq!(stats.connects, 1);
    assert_eq!(stats.messages_sent, 1);
}
