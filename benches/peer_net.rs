//! The peer network over one loopback connection: messages/s and MB/s of
//! MsgApps of 64 entries of 128 B (8 KiB of payload each), from one
//! shard's `PeerNet` to another's, each on its own glommio executor
//! thread, with 1, 8 and 64 messages per `flush` (a loop turn). The
//! sender keeps at most `WINDOW` messages queued but unwritten, as Raft's
//! inflight window would; the clock runs from the first send to the last
//! message drained from the receiver's `Inbox` (decoded, payloads sliced
//! out of the receive buffer).
//!
//! `cargo bench --bench peer_net` (one run of each; not criterion: each
//! run needs two executor threads and a connection).

#[path = "../tests/support/memlock.rs"]
mod memlock;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::cluster::{Cluster, Member};
use corelog::raftpb::{Entry, Message, MessageType};
use corelog::transport::{Inbox, Limits, NetConfig, PeerNet};
use glommio::{LocalExecutorBuilder, Placement};

const ENTRIES: usize = 64;
const PAYLOAD: usize = 128;
/// Messages queued and not yet written, at most.
const WINDOW: u64 = 256;

fn cluster() -> Arc<Cluster> {
    let port = |_| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let members = (1..=2u64)
        .map(|id| Member {
            id,
            name: format!("m{id}"),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], port(id))),
            client_addr: SocketAddr::from(([127, 0, 0, 2], 1000 + id as u16)),
            shards: 1,
        })
        .collect();
    Arc::new(Cluster::new(0xbe, members, 1024, 1).unwrap())
}

fn config(cluster: &Arc<Cluster>, member: u64) -> NetConfig {
    NetConfig {
        cluster: cluster.clone(),
        member,
        shard: 0,
        limits: Limits::default(),
        max_queue_bytes: 64 << 20,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        seed: member,
    }
}

fn msg_app(index: u64, payloads: &[Bytes]) -> Message {
    Message {
        r#type: MessageType::MsgApp as i32,
        to: 2,
        from: 1,
        term: 3,
        log_term: 3,
        index,
        commit: index,
        entries: payloads
            .iter()
            .enumerate()
            .map(|(i, p)| Entry {
                term: 3,
                index: index + 1 + i as u64,
                data: p.clone(),
                ..Entry::default()
            })
            .collect(),
        ..Message::default()
    }
}

/// One run: `total` messages, `per_flush` per turn. Returns seconds.
fn run(total: u64, per_flush: u64) -> f64 {
    let cluster = cluster();
    let ready = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (cluster, ready) = (cluster.clone(), ready.clone());
        LocalExecutorBuilder::new(Placement::Unbound)
            .name("receiver")
            .spawn(move || async move {
                let inbox = Inbox::new();
                let net = PeerNet::start(config(&cluster, 2), inbox.clone()).unwrap();
                ready.fetch_add(1, Ordering::SeqCst);
                let mut got = 0u64;
                let mut out = Vec::with_capacity(1024);
                let mut bytes = 0u64;
                while got < total {
                    inbox.wait().await;
                    inbox.drain_into(&mut out);
                    got += out.len() as u64;
                    for (_, m) in out.drain(..) {
                        bytes += m.entries.iter().map(|e| e.data.len() as u64).sum::<u64>();
                    }
                }
                assert_eq!(bytes, total * (ENTRIES * PAYLOAD) as u64);
                let done = Instant::now();
                ready.fetch_add(1, Ordering::SeqCst);
                net.shutdown().await;
                done
            })
            .unwrap()
    };
    let sender = {
        let (cluster, ready) = (cluster.clone(), ready.clone());
        LocalExecutorBuilder::new(Placement::Unbound)
            .name("sender")
            .spawn(move || async move {
                let net = PeerNet::start(config(&cluster, 1), Inbox::new()).unwrap();
                while ready.load(Ordering::SeqCst) == 0 {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                // Connect before the clock starts.
                net.send(2, 0, Message::default()).unwrap();
                net.flush();
                while net.stats().messages_sent == 0 {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                let payloads: Vec<Bytes> = (0..ENTRIES)
                    .map(|i| Bytes::from(vec![i as u8; PAYLOAD]))
                    .collect();
                let start = Instant::now();
                let mut sent = 0u64;
                while sent < total {
                    for _ in 0..per_flush.min(total - sent) {
                        net.send(2, 0, msg_app(sent * ENTRIES as u64, &payloads))
                            .unwrap();
                        sent += 1;
                    }
                    net.flush();
                    // The inflight window: wait for the writes to catch up.
                    while sent + 1 - net.stats().messages_sent > WINDOW {
                        glommio::timer::sleep(Duration::from_micros(20)).await;
                    }
                }
                while ready.load(Ordering::SeqCst) < 2 {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                let stats = net.stats();
                net.shutdown().await;
                (start, stats)
            })
            .unwrap()
    };
    let (start, stats) = sender.join().unwrap();
    let done = receiver.join().unwrap();
    let secs = done.duration_since(start).as_secs_f64();
    println!(
        "  {per_flush:>3} msgs/flush: {total} msgs in {secs:.3} s, frames {} writes {}",
        stats.frames_sent, stats.writes
    );
    secs
}

fn main() {
    memlock::raise_memlock_limit().unwrap();
    // `cargo test --benches` runs this binary without --bench: a smoke run.
    let total = if std::env::args().any(|a| a == "--bench") {
        200_000
    } else {
        2_000
    };
    println!(
        "peer_net: MsgApp of {ENTRIES} x {PAYLOAD} B over one loopback connection (window {WINDOW})"
    );
    let mb = (ENTRIES * PAYLOAD) as f64 / 1e6;
    for per_flush in [1u64, 8, 64] {
        let secs = run(total, per_flush);
        let rate = total as f64 / secs;
        println!(
            "  {per_flush:>3} msgs/flush: {:>9.0} msgs/s  {:>7.1} MB/s of payload",
            rate,
            rate * mb
        );
    }
}
