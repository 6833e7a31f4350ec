//! The peer port's shared-secret exchange over real sockets on
//! 127.0.0.1: members with the secret exchange messages; a member with
//! another secret, or none, is refused and counted while the others go
//! on; a replayed or reflected proof, a dialler that never proves, one
//! too slow, and garbage in place of a handshake each cost only their own
//! connection. Members are glommio executors on threads of this process;
//! the attacker is a plain socket that computes proofs from the spec
//! (`transport::peer_auth`). Every wait has a deadline.

#[path = "support/memlock.rs"]
mod memlock;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corelog::auth::{AuthKey, NONCE_LEN, PROOF_LEN};
use corelog::cluster::{Cluster, Member};
use corelog::raftpb::{Message, MessageType};
use corelog::transport::peer_auth::Transcript;
use corelog::transport::{
    HANDSHAKE_LEN, Handshake, Inbox, Limits, NetConfig, NetOptions, NetStats, PeerNet,
};
use glommio::{LocalExecutorBuilder, Placement};

const DEADLINE: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Members `1..=n`, one shard each.
fn cluster(n: u64) -> Arc<Cluster> {
    let members = (1..=n)
        .map(|id| Member {
            id,
            name: format!("m{id}"),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            client_addr: SocketAddr::from(([127, 0, 0, 2], 1000 + id as u16)),
            shards: 1,
        })
        .collect();
    Arc::new(Cluster::new(0xc1, members, 1 << 20, 1).unwrap())
}

fn config(cluster: &Arc<Cluster>, member: u64) -> NetConfig {
    NetConfig {
        cluster: cluster.clone(),
        member,
        shard: 0,
        limits: Limits::default(),
        max_queue_bytes: 8 << 20,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        seed: member,
    }
}

fn options(auth: Option<AuthKey>) -> NetOptions {
    NetOptions {
        handshake_timeout: Duration::from_millis(300),
        auth,
        ..NetOptions::default()
    }
}

fn key(b: u8) -> AuthKey {
    AuthKey::from_secret(&[b; 32]).unwrap()
}

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

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        glommio::timer::sleep(Duration::from_millis(2)).await;
    }
}

fn wait_until_blocking(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

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

fn msg(from: u64, to: u64, commit: u64) -> Message {
    Message {
        r#type: MessageType::MsgApp as i32,
        from,
        to,
        term: 1,
        index: commit,
        commit,
        ..Message::default()
    }
}

// ---------------------------------------------------------------- members

/// A member that sends `n` messages of group 1 to member 1 (one a turn,
/// until `stop`), returning its counters and the unreachable reports.
fn sender(
    cluster: &Arc<Cluster>,
    id: u64,
    auth: Option<AuthKey>,
    started: &Count,
    stop: &Count,
) -> glommio::ExecutorJoinHandle<(NetStats, usize)> {
    let (cluster, started, stop) = (cluster.clone(), started.clone(), stop.clone());
    on_executor(&format!("m{id}"), move || async move {
        let net = PeerNet::start_with(config(&cluster, id), options(auth), Inbox::new()).unwrap();
        started.add();
        let mut unreachable = Vec::new();
        let mut seq = 0;
        while stop.get() == 0 {
            seq += 1;
            let _ = net.send(1, 1, msg(id, 1, seq));
            net.flush();
            net.take_unreachable(&mut unreachable);
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        net.shutdown().await;
        (net.stats(), unreachable.len())
    })
}

#[test]
fn members_with_the_secret_talk_and_a_wrong_or_missing_secret_is_refused_and_counted() {
    // Member 1 receives; 2 holds the same secret, 3 another, 4 none.
    let c = cluster(4);
    let (started, stop) = (Count::default(), Count::default());
    let from2 = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (c, started, stop, from2) = (c.clone(), started.clone(), stop.clone(), from2.clone());
        on_executor("m1", move || async move {
            let inbox = Inbox::new();
            let net = PeerNet::start_with(config(&c, 1), options(Some(key(b'a'))), inbox.clone())
                .unwrap();
            started.add();
            let mut got = Vec::new();
            wait_until("member 2's messages and both refusals", || {
                inbox.drain_into(&mut got);
                let s = net.stats();
                got.len() >= 20 && s.refused_auth_bad_proof >= 2 && s.refused_auth_missing >= 2
            })
            .await;
            for (_, m) in &got {
                // Nothing from the members without the secret.
                assert_eq!(m.from, 2, "{m:?}");
            }
            from2.store(got.len() as u64, Ordering::SeqCst);
            stop.add();
            net.shutdown().await;
            net.stats()
        })
    };
    let good = sender(&c, 2, Some(key(b'a')), &started, &stop);
    let wrong = sender(&c, 3, Some(key(b'b')), &started, &stop);
    let none = sender(&c, 4, None, &started, &stop);
    wait_until_blocking("every listener", || started.get() >= 4);

    // A handshake offering the exchange to member 4, which has no secret.
    let m4 = c.member(4).unwrap().peer_addr;
    let mut s = raw_connect(m4);
    let hello = Handshake {
        cluster_id: 0xc1,
        from_member: 2,
        to_member: 4,
        from_shard: 0,
        to_shard: 0,
        auth: true,
    };
    s.write_all(&hello.encode()).unwrap();
    s.write_all(&[7u8; NONCE_LEN]).unwrap();
    expect_closed(&mut s, "an exchange offered to a member without a secret");

    let m1 = receiver.join().unwrap();
    let (good, _) = good.join().unwrap();
    let (wrong, wrong_unreachable) = wrong.join().unwrap();
    let (none, none_unreachable) = none.join().unwrap();

    assert!(from2.load(Ordering::SeqCst) >= 20);
    assert!(m1.accepted >= 1, "{m1:?}");
    assert!(m1.refused_auth_bad_proof >= 2, "{m1:?}");
    assert!(m1.refused_auth_missing >= 2, "{m1:?}");
    assert_eq!(m1.refused_auth_unexpected, 0, "{m1:?}");
    assert!(good.connects >= 1 && good.auth_failures == 0, "{good:?}");
    // Refused members never connected, knew why, and reported member 1
    // unreachable for their messages.
    assert_eq!(wrong.connects, 0, "{wrong:?}");
    assert!(wrong.auth_failures >= 2, "{wrong:?}");
    assert!(wrong_unreachable >= 1);
    assert_eq!(none.connects, 0, "{none:?}");
    assert!(none.connect_failures >= 2, "{none:?}");
    assert!(none_unreachable >= 1);
    assert_eq!(none.refused_auth_unexpected, 1, "{none:?}");
}

// ---------------------------------------------------------------- attacks

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

/// Sends `hello` with nonce `nd`; returns the reply's bytes and nonce.
fn open(
    addr: SocketAddr,
    hello: &[u8; HANDSHAKE_LEN],
    nd: &[u8; NONCE_LEN],
) -> (StdStream, [u8; HANDSHAKE_LEN], [u8; NONCE_LEN]) {
    let mut s = raw_connect(addr);
    s.write_all(hello).unwrap();
    s.write_all(nd).unwrap();
    let mut reply = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut reply).unwrap();
    let mut na = [0u8; NONCE_LEN];
    s.read_exact(&mut na).unwrap();
    (s, reply, na)
}

#[test]
fn replayed_reflected_missing_slow_and_garbage_proofs_close_only_their_connection() {
    let c = cluster(2);
    let k = key(b'a');
    let target = c.member(1).unwrap().peer_addr;
    let (started, attacked) = (Count::default(), Count::default());
    let receiver = {
        let (c, started, attacked) = (c.clone(), started.clone(), attacked.clone());
        on_executor("m1", move || async move {
            let inbox = Inbox::new();
            let net = PeerNet::start_with(config(&c, 1), options(Some(k)), inbox.clone()).unwrap();
            started.add();
            attacked.reach(1, "the attacks").await;
            let mut got = Vec::new();
            wait_until("the authenticated frame", || {
                inbox.drain_into(&mut got);
                !got.is_empty()
            })
            .await;
            // Let the slow one time out.
            wait_until("the timeout", || net.stats().refused_handshake_timeout >= 1).await;
            net.shutdown().await;
            (net.stats(), got)
        })
    };
    wait_until_blocking("the listener", || started.get() >= 1);

    let hello = Handshake {
        cluster_id: 0xc1,
        from_member: 2,
        to_member: 1,
        from_shard: 0,
        to_shard: 0,
        auth: true,
    }
    .encode();
    let nd = [0x5a; NONCE_LEN];

    // 1. An honest exchange, recorded.
    let (mut honest, reply, na) = open(target, &hello, &nd);
    let t = Transcript {
        hello: &hello,
        dialler_nonce: &nd,
        reply: &reply,
        acceptor_nonce: &na,
    };
    let recorded = t.dialler_proof(&k);
    honest.write_all(&recorded).unwrap();
    let mut pa = [0u8; PROOF_LEN];
    honest.read_exact(&mut pa).unwrap();
    assert!(t.check_acceptor(&k, &pa), "the acceptor proved itself");

    // 2. The recorded proof replayed on a new connection with the same
    // hello and nonce: the acceptor's nonce is new, the proof is stale.
    let (mut s, reply2, na2) = open(target, &hello, &nd);
    assert_eq!(reply2, reply);
    assert_ne!(na2, na, "a fresh acceptor nonce");
    s.write_all(&recorded).unwrap();
    expect_closed(&mut s, "a replayed proof");

    // 3. The acceptor's own proof reflected back as the dialler's.
    let (mut s, reply3, na3) = open(target, &hello, &nd);
    let t3 = Transcript {
        hello: &hello,
        dialler_nonce: &nd,
        reply: &reply3,
        acceptor_nonce: &na3,
    };
    s.write_all(&t3.acceptor_proof(&k)).unwrap();
    expect_closed(&mut s, "a reflected proof");

    // 4. No proof: the end of the stream after the nonce.
    let (mut s, _, _) = open(target, &hello, &nd);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    expect_closed(&mut s, "a dialler that never proves");

    // 5. Garbage, a megabyte of it, in place of a handshake.
    let mut s = raw_connect(target);
    let _ = s.write_all(&vec![0xff; 1 << 20]);
    expect_closed(&mut s, "garbage");

    // 6. A handshake without the exchange.
    let mut s = raw_connect(target);
    let plain = Handshake {
        cluster_id: 0xc1,
        from_member: 2,
        to_member: 1,
        from_shard: 0,
        to_shard: 0,
        auth: false,
    };
    s.write_all(&plain.encode()).unwrap();
    expect_closed(&mut s, "a dialler without the secret");

    // 7. Too slow: the hello and nonce, then silence past the timeout.
    let (mut slow, _, _) = open(target, &hello, &nd);
    expect_closed(&mut slow, "a slow dialler");

    // The honest connection still carries frames.
    let mut enc = corelog::transport::Encoder::new(Limits::default());
    enc.push(1, msg(2, 1, 9)).unwrap();
    honest.write_all(&enc.finish().to_vec()).unwrap();
    attacked.add();

    let (stats, got) = receiver.join().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].1.from, got[0].1.commit), (2, 9));
    assert_eq!(stats.accepted, 1, "{stats:?}");
    assert_eq!(stats.refused_auth_bad_proof, 3, "{stats:?}");
    assert_eq!(stats.refused_bad_handshake, 1, "{stats:?}");
    assert_eq!(stats.refused_auth_missing, 1, "{stats:?}");
    assert_eq!(stats.refused_handshake_timeout, 1, "{stats:?}");
}
