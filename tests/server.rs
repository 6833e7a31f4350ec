//! `corelog server` processes on 127.0.0.1, driven through the Rust
//! client and raw sockets: replication and redirects, a leader killed
//! with SIGKILL and the client following the new one, a restarted member
//! catching up, SIGTERM and a restart with every acknowledged record, bad
//! input on the client port, exactly-once retries, a bad configuration.
//! `cargo test --release --test server`.
//!
//! Every wait is bounded; every child process is killed when its handle
//! drops (a failing test leaves none behind). The tests take a lock each:
//! three servers per test on a 2-CPU machine are enough.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use corelog::client::{Appended, Client, ClientError, ClientOptions};
use corelog::clientpb::{
    self, AppendRequest, Consistency, Request, Response, error::Kind, request::Op,
    response::Result as Answer,
};
use corelog::protocol::{Limits, encode_frame, split_frame};
use tempfile::TempDir;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    match ONE_AT_A_TIME.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Copies a directory tree (a stopped member's data).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dst = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).unwrap();
        }
    }
}

/// `n` ports free right now on 127.0.0.1.
fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// The first of `width` consecutive ports free right now on 127.0.0.1
/// (a member with `width` shards listens on `port .. port + width`).
fn free_range(width: u16) -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = first.local_addr().unwrap().port();
        if p.checked_add(width).is_none() {
            continue;
        }
        let rest: Vec<_> = (1..width)
            .map(|k| TcpListener::bind(("127.0.0.1", p + k)))
            .collect();
        if rest.iter().all(Result::is_ok) {
            return p;
        }
    }
    panic!("no {width} consecutive free ports");
}

/// A `corelog server` child, killed (SIGKILL) when dropped.
struct Proc {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Proc {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: a plain kill(2) of our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits (bounded) for the process to exit.
    fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit in {secs} s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three members, one shard each, on free ports and temporary data
/// directories.
struct Three {
    dirs: Vec<TempDir>,
    peers: Vec<SocketAddr>,
    clients: Vec<SocketAddr>,
    groups: u64,
    procs: Vec<Option<Proc>>,
}

impl Three {
    fn new(groups: u64) -> Three {
        let ports = free_ports(6);
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Three {
            dirs: (0..3).map(|_| tempfile::tempdir().unwrap()).collect(),
            peers: ports[0..3].iter().map(|&p| addr(p)).collect(),
            clients: ports[3..6].iter().map(|&p| addr(p)).collect(),
            groups,
            procs: vec![None, None, None],
        }
    }

    fn args(&self, id: u64, dir: &Path) -> Vec<String> {
        let mut a: Vec<String> = [
            "server",
            "--cluster-id",
            "77",
            "--member-id",
            &id.to_string(),
            "--data-dir",
            dir.to_str().unwrap(),
            "--groups",
            &self.groups.to_string(),
            "--replication-factor",
            "3",
            "--cpus",
            "none",
            "--tick-ms",
            "10",
            "--election-ticks",
            "20",
            "--request-timeout-ms",
            "5000",
            // Leadership stays where the tests move it.
            "--rebalance-leaders",
            "false",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for m in 1..=3u64 {
            let k = (m - 1) as usize;
            a.push("--member".into());
            a.push(format!("{m}=m{m}@{}/{}", self.peers[k], self.clients[k]));
        }
        a
    }

    /// Starts member `id` and waits (bounded) for its serving line.
    fn start(&mut self, id: u64) {
        let k = (id - 1) as usize;
        let args = self.args(id, self.dirs[k].path());
        self.procs[k] = Some(spawn_server(&args));
    }

    fn start_all(&mut self) {
        // Together, as a new cluster is bootstrapped.
        for id in 1..=3 {
            let k = (id - 1) as usize;
            let args = self.args(id, self.dirs[k].path());
            self.procs[k] = Some(spawn_server_nowait(&args));
        }
        for p in self.procs.iter_mut().flatten() {
            wait_serving(p);
        }
    }

    fn proc(&mut self, id: u64) -> &mut Proc {
        self.procs[(id - 1) as usize].as_mut().expect("running")
    }

    fn kill9(&mut self, id: u64) {
        let mut p = self.procs[(id - 1) as usize].take().expect("running");
        p.signal(libc::SIGKILL);
        p.wait_exit(10);
    }

    fn client(&self) -> Client {
        Client::connect(
            &self.clients,
            ClientOptions {
                timeout: Duration::from_secs(20),
                ..ClientOptions::default()
            },
        )
        .unwrap()
    }

    /// The member leading `group`, waiting (bounded) for one.
    fn leader(&self, c: &Client, group: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = c.group_status(group) {
                if s.leader != 0 {
                    return s.leader;
                }
            }
            assert!(Instant::now() < deadline, "group {group} has no leader");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_corelog")
}

fn spawn_server_nowait(args: &[String]) -> Proc {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Proc { child, stderr: rx }
}

/// Waits (bounded) for the serving line on the child's stdout.
fn wait_serving(p: &mut Proc) {
    let out = p.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the child never blocks on a full pipe.
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no serving line; stderr: {:?}", p.stderr_lines()));
    assert!(
        line.starts_with("corelog: serving:"),
        "{line:?}; stderr: {:?}",
        p.stderr_lines()
    );
}

fn spawn_server(args: &[String]) -> Proc {
    let mut p = spawn_server_nowait(args);
    wait_serving(&mut p);
    p
}

/// Appends `n` single-record batches `"{tag}-{i}"` to `group`; returns
/// (offset, value) of each, as acknowledged.
fn append_n(c: &Client, group: u64, tag: &str, n: usize) -> Vec<(u64, String)> {
    (0..n)
        .map(|i| {
            let v = format!("{tag}-{i}");
            let a = c.append(group, &[v.as_bytes()]).unwrap();
            assert_eq!(a.count, 1);
            (a.base_offset, v)
        })
        .collect()
}

/// Every record of `group` read from one replica (`addr`: a member's
/// client port for the group's shard, one shard here).
fn read_all_from(addr: SocketAddr, group: u64, consistency: Consistency) -> Vec<(u64, String)> {
    let c = Client::connect(&[addr], ClientOptions::default()).unwrap();
    // Pin the reads to this member: reads at any replica are served by
    // whichever member is asked first, the seed.
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let r = c.read(group, from, 0, consistency).unwrap();
        if r.records.is_empty() {
            return out;
        }
        for (o, v) in r.records {
            from = o + 1;
            out.push((o, String::from_utf8(v.to_vec()).unwrap()));
        }
    }
}

/// Sends one request on a raw connection and returns its answer.
fn raw_call(s: &mut TcpStream, id: u64, req: &Request) -> Response {
    let mut f = BytesMut::new();
    encode_frame(id, req, &Limits::DEFAULT, &mut f).unwrap();
    s.write_all(&f).unwrap();
    raw_answer(s, id)
}

fn raw_answer(s: &mut TcpStream, id: u64) -> Response {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(f) = split_frame(&mut buf, &Limits::DEFAULT).unwrap() {
            assert_eq!(f.request_id, id);
            return <Response as prost::Message>::decode(f.payload).unwrap();
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the answer");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closed `s` (read returns 0 or an error) in time.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

fn cluster_status_req() -> Request {
    Request {
        op: Some(Op::ClusterStatus(clientpb::ClusterStatusRequest {})),
    }
}

#[test]
fn appends_through_a_follower_are_redirected_and_every_replica_reads_every_record_back() {
    let _g = serial();
    let mut t = Three::new(3);
    t.start_all();
    let c = t.client();
    let group = 1;
    let leader = t.leader(&c, group);
    let follower = (1..=3).find(|&m| m != leader).unwrap();

    // A follower answers NotLeader naming the leader's client address.
    let mut s = TcpStream::connect(t.clients[(follower - 1) as usize]).unwrap();
    let batch = c.build_batch(0, 0, &[b"direct"]).unwrap();
    let resp = raw_call(
        &mut s,
        1,
        &Request {
            op: Some(Op::Append(AppendRequest { group, batch })),
        },
    );
    let Some(Answer::Error(clientpb::Error {
        kind: Some(Kind::NotLeader(nl)),
    })) = resp.result
    else {
        panic!("not NotLeader: {resp:?}");
    };
    assert_eq!(nl.leader, leader);
    assert_eq!(
        nl.leader_address,
        t.clients[(leader - 1) as usize].to_string()
    );

    // A client whose only seed is the follower follows the redirect.
    let fc = Client::connect(
        &[t.clients[(follower - 1) as usize]],
        ClientOptions::default(),
    )
    .unwrap();
    let mut acked = append_n(&fc, group, "a", 20);
    // A batch of several records gets consecutive offsets.
    let a = c.append(group, &[b"x0", b"x1", b"x2"]).unwrap();
    assert_eq!((a.base_offset, a.count, a.duplicate), (20, 3, false));
    for k in 0..3 {
        acked.push((20 + k, format!("x{k}")));
    }
    let want: Vec<(u64, String)> = acked.clone();
    assert_eq!(
        acked.iter().map(|a| a.0).collect::<Vec<_>>(),
        (0..23).collect::<Vec<_>>(),
        "dense offsets from 0"
    );
    // Linearizable reads (from any seed, through the leader's ReadIndex)
    // see everything acknowledged.
    assert_eq!(
        read_all_from(
            t.clients[(follower - 1) as usize],
            group,
            Consistency::Linearizable
        ),
        want
    );
    // Every replica's committed prefix reaches it too.
    for k in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = read_all_from(t.clients[k], group, Consistency::AnyReplica);
            if got == want {
                break;
            }
            assert!(
                got.len() < want.len() && want.starts_with(&got),
                "member {}: {got:?}",
                k + 1
            );
            assert!(
                Instant::now() < deadline,
                "member {} did not catch up",
                k + 1
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Offsets past the end are out of range, with the range named.
    match c.read(group, 24, 0, Consistency::Linearizable) {
        Err(ClientError::Server(Kind::OffsetOutOfRange(o))) => {
            assert_eq!((o.offset, o.earliest, o.latest), (24, 0, 23));
        }
        other => panic!("{other:?}"),
    }
    // A group that does not exist.
    let mut s = TcpStream::connect(t.clients[0]).unwrap();
    let resp = raw_call(
        &mut s,
        2,
        &Request {
            op: Some(Op::GroupStatus(clientpb::GroupStatusRequest { group: 99 })),
        },
    );
    assert!(
        matches!(
            resp.result,
            Some(Answer::Error(clientpb::Error {
                kind: Some(Kind::GroupNotFound(clientpb::GroupNotFound { group: 99 }))
            }))
        ),
        "{resp:?}"
    );
}

#[test]
fn a_leader_killed_with_sigkill_is_replaced_the_client_follows_and_the_member_catches_up() {
    let _g = serial();
    let mut t = Three::new(2);
    t.start_all();
    let c = t.client();
    let group = 0;
    let mut acked = append_n(&c, group, "before", 10);
    let old = t.leader(&c, group);
    t.kill9(old);
    // The client keeps appending: it finds the new leader by itself.
    acked.extend(append_n(&c, group, "after", 10));
    let new = t.leader(&c, group);
    assert_ne!(new, old);
    let offsets: Vec<u64> = acked.iter().map(|a| a.0).collect();
    assert_eq!(offsets, (0..20).collect::<Vec<_>>());
    assert_eq!(
        read_all_from(
            t.clients[(new - 1) as usize],
            group,
            Consistency::Linearizable
        ),
        acked
    );
    // The killed member comes back from its WAL and catches up.
    t.start(old);
    acked.extend(append_n(&c, group, "back", 5));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = read_all_from(
            t.clients[(old - 1) as usize],
            group,
            Consistency::AnyReplica,
        );
        if got == acked {
            break;
        }
        assert!(acked.starts_with(&got), "{got:?}");
        assert!(
            Instant::now() < deadline,
            "member {old} did not catch up: {} records",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_exits_0_and_a_restart_serves_every_acknowledged_record() {
    let _g = serial();
    let mut t = Three::new(2);
    t.start_all();
    let c = t.client();
    let mut acked = append_n(&c, 0, "g0", 15);
    let acked1 = append_n(&c, 1, "g1", 5);
    drop(c);
    for id in 1..=3 {
        t.proc(id).signal(libc::SIGTERM);
    }
    for id in 1..=3 {
        let st = t.proc(id).wait_exit(20);
        assert_eq!(
            st.code(),
            Some(0),
            "member {id}: {:?}",
            t.proc(id).stderr_lines()
        );
    }
    t.procs = vec![None, None, None];
    // Offline, every member's directory holds the records.
    for k in 0..3 {
        let out = Command::new(bin())
            .arg("wal-check")
            .arg(t.dirs[k].path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            text.contains("member ") && text.contains("wal-check: ok"),
            "{text}"
        );
        assert!(
            text.contains(" 15 records, next offset 15")
                && text.contains(" 5 records, next offset 5"),
            "{text}"
        );
    }
    // A copy with one flipped byte early in a segment (not the tail):
    // refused, naming the file.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(t.dirs[2].path(), copy.path());
    // The first segment (the other is the spare prepared ahead, empty).
    let seg = std::fs::read_dir(copy.path().join("shard-0"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let out = Command::new(bin())
        .arg("wal-check")
        .arg(copy.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(".wal"), "{text}");
    t.start_all();
    let c = t.client();
    assert_eq!(
        read_all_from(t.clients[0], 0, Consistency::Linearizable),
        acked
    );
    assert_eq!(
        read_all_from(t.clients[1], 1, Consistency::Linearizable),
        acked1
    );
    // And appends continue at the next offsets.
    let more = append_n(&c, 0, "again", 3);
    assert_eq!(
        more.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![15, 16, 17]
    );
    acked.extend(more);
    assert_eq!(
        read_all_from(t.clients[2], 0, Consistency::Linearizable),
        acked
    );
}

#[test]
fn bad_input_on_the_client_port_closes_only_that_connection() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let addr = t.clients[0];
    let mut good = TcpStream::connect(addr).unwrap();
    assert!(matches!(
        raw_call(&mut good, 1, &cluster_status_req()).result,
        Some(Answer::ClusterStatus(_))
    ));

    // Garbage: a header whose crc does not match.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[3, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3])
        .unwrap();
    assert!(closed_by_server(&mut s), "garbage kept the connection");

    // An oversized length: closed from the header alone.
    let mut s = TcpStream::connect(addr).unwrap();
    let mut h = Vec::new();
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(&[0; 12]);
    s.write_all(&h).unwrap();
    assert!(
        closed_by_server(&mut s),
        "an oversized frame kept the connection"
    );

    // An unknown operation (field 99 of Request) is answered, typed, and
    // the connection goes on.
    let mut s = TcpStream::connect(addr).unwrap();
    let payload = [0x9a, 0x06, 0x00];
    let mut f = Vec::new();
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&7u64.to_le_bytes());
    crc.update(&payload);
    f.extend_from_slice(&crc.finalize().to_le_bytes());
    f.extend_from_slice(&7u64.to_le_bytes());
    f.extend_from_slice(&payload);
    s.write_all(&f).unwrap();
    let r = raw_answer(&mut s, 7);
    assert!(
        matches!(
            r.result,
            Some(Answer::Error(clientpb::Error {
                kind: Some(Kind::UnknownOperation(_))
            }))
        ),
        "{r:?}"
    );
    assert!(matches!(
        raw_call(&mut s, 8, &cluster_status_req()).result,
        Some(Answer::ClusterStatus(_))
    ));

    // The first connection, and the process, are unaffected.
    assert!(matches!(
        raw_call(&mut good, 2, &cluster_status_req()).result,
        Some(Answer::ClusterStatus(_))
    ));
    let c = t.client();
    assert_eq!(c.append(0, &[b"still"]).unwrap().base_offset, 0);
    assert!(t.proc(1).child.try_wait().unwrap().is_none());
}

#[test]
fn a_retried_append_with_the_same_producer_sequence_returns_the_original_offsets() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    append_n(&c, 0, "x", 3);
    let producer = 0x5eed_0000_0000_0001;
    let b0 = c.build_batch(producer, 0, &[b"p0", b"p1"]).unwrap();
    let first = c.send_append(0, b0.clone()).wait().unwrap();
    assert_eq!(
        first,
        Appended {
            base_offset: 3,
            count: 2,
            duplicate: false
        }
    );
    append_n(&c, 0, "y", 2);
    // The retry: the same bytes again, after other appends.
    let again = c.send_append(0, b0).wait().unwrap();
    assert_eq!(
        again,
        Appended {
            base_offset: 3,
            count: 2,
            duplicate: true
        }
    );
    // A gap in the producer's sequence is refused, typed.
    let gap = c.build_batch(producer, 5, &[b"p5"]).unwrap();
    match c.send_append(0, gap).wait() {
        Err(ClientError::Server(Kind::SequenceGap(g))) => assert_eq!(g.expected, 2),
        other => panic!("{other:?}"),
    }
    let r = c.read(0, 0, 0, Consistency::Linearizable).unwrap();
    let values: Vec<&[u8]> = r.records.iter().map(|(_, v)| &v[..]).collect();
    assert_eq!(
        values,
        vec![&b"x-0"[..], b"x-1", b"x-2", b"p0", b"p1", b"y-0", b"y-1"],
        "written once"
    );
}

#[test]
fn a_bad_configuration_is_refused_naming_the_field() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let d = dir.path().to_str().unwrap();
    let m = "1=a@127.0.0.1:1/127.0.0.1:2";
    let (code, err) = run(&[
        "server",
        "--cluster-id",
        "1",
        "--data-dir",
        d,
        "--member",
        m,
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("member_id: required"), "{err}");
    let (code, err) = run(&[
        "server",
        "--cluster-id",
        "1",
        "--member-id",
        "2",
        "--data-dir",
        d,
        "--member",
        m,
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("member_id: 2 is not in the member list"),
        "{err}"
    );
    let (code, err) = run(&[
        "server",
        "--cluster-id",
        "1",
        "--member-id",
        "1",
        "--data-dir",
        d,
        "--member",
        "1=a@nowhere",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--member"), "{err}");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "cluster_id = 1\nmember_id = 1\n[runtime]\ntick = 5\n").unwrap();
    let (code, err) = run(&["server", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("runtime.tick"), "{err}");
}

/// In process: a member with two shards whose first shard's WAL fails
/// (an injected EIO) answers that shard's groups `Unavailable` (storage
/// failed), reports the shard once, and keeps serving the other shard.
#[test]
fn a_shard_whose_wal_failed_answers_unavailable_while_the_other_shard_serves() {
    use corelog::cluster::shard_of;
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};
    use corelog::wal::Fault;

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let (peer, client) = (free_range(2), free_range(2));
    let mut f = FileConfig {
        cluster_id: Some(9),
        member_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        groups: Some(8),
        replication_factor: Some(1),
        cpus: Some("none".into()),
        ..FileConfig::default()
    };
    f.members.push(MemberEntry {
        id: 1,
        name: "solo".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], peer)),
        client_addr: SocketAddr::from(([127, 0, 0, 1], client)),
        shards: 2,
    });
    f.runtime.tick_ms = Some(5);
    let mut srv = Server::start(f.check().unwrap()).unwrap();
    let on = |k: u32| (0..8).find(|&g| shard_of(g, 2) == k).unwrap();
    let (bad, ok) = (on(0), on(1));
    let c = Client::connect(&srv.client_addrs()[..1], ClientOptions::default()).unwrap();
    assert_eq!(c.append(bad, &[b"a"]).unwrap().base_offset, 0);
    assert_eq!(c.append(ok, &[b"a"]).unwrap().base_offset, 0);
    assert!(srv.new_failures().is_empty());

    srv.runtime().shards()[0]
        .call(|s| async move {
            s.wal_cell().borrow_mut().inject_fault(Fault {
                land_bytes: 0,
                errno: libc::EIO,
                scatter: None,
            });
        })
        .unwrap();
    let mut s = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    let batch = c.build_batch(0, 0, &[b"lost"]).unwrap();
    let r = raw_call(
        &mut s,
        1,
        &Request {
            op: Some(Op::Append(AppendRequest { group: bad, batch })),
        },
    );
    match r.result {
        Some(Answer::Error(clientpb::Error {
            kind: Some(Kind::Unavailable(u)),
        })) => assert!(u.reason.contains("storage failed"), "{}", u.reason),
        other => panic!("{other:?}"),
    }
    // Later requests too, on the same connection (it stays open).
    let batch = c.build_batch(0, 0, &[b"later"]).unwrap();
    let r = raw_call(
        &mut s,
        2,
        &Request {
            op: Some(Op::Append(AppendRequest { group: bad, batch })),
        },
    );
    assert!(matches!(r.result, Some(Answer::Error(_))), "{r:?}");
    let failures = srv.new_failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, 0);
    assert!(srv.new_failures().is_empty(), "reported once");
    // The other shard serves on.
    assert_eq!(c.append(ok, &[b"b"]).unwrap().base_offset, 1);
    srv.stop(Duration::from_secs(1)).unwrap();
}

#[test]
fn bench_runs_a_local_cluster_prints_throughput_and_latency_and_removes_its_data() {
    let _g = serial();
    let bench = |extra: &[&str]| {
        let child = Command::new(bin())
            .args(["bench", "--local-cluster", "3", "--seconds", "1"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("records/s") && text.contains("0 failed"),
            "{text}"
        );
        assert!(text.contains("p99.9"), "{text}");
        // Its data directory (named by its pid) is gone.
        let dir = std::env::temp_dir().join(format!("corelog-bench-{pid}"));
        assert!(!dir.exists(), "{} left behind", dir.display());
        text
    };
    let text = bench(&["--groups", "2"]);
    assert!(text.contains("2 groups, 32 appends in flight"), "{text}");
    // Single records through the batching producer.
    let text = bench(&["--groups", "1", "--producer", "--inflight", "512"]);
    assert!(text.contains("batching producer"), "{text}");
}

fn error_kind(r: Response) -> Kind {
    match r.result {
        Some(Answer::Error(clientpb::Error { kind: Some(k) })) => k,
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn the_door_refuses_typed_truncate_moves_the_earliest_offset_and_leadership_moves_on_request() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let leader = t.leader(&c, 0);
    let mut s = TcpStream::connect(t.clients[(leader - 1) as usize]).unwrap();
    let append = |batch: bytes::Bytes| Request {
        op: Some(Op::Append(AppendRequest { group: 0, batch })),
    };

    // Above the server's batch limit (1 MiB): TooLarge, named.
    let big = vec![b'z'; 600 << 10];
    let mut b = corelog::log::BatchBuilder::new(corelog::log::BatchLimits::CEILING);
    let mut w = b.start(0, 0, 0);
    w.push(&big).unwrap();
    w.push(&big).unwrap();
    let too_big = w.finish().unwrap();
    match error_kind(raw_call(&mut s, 1, &append(too_big))) {
        Kind::TooLarge(tl) => assert_eq!((tl.what.as_str(), tl.limit), ("batch bytes", 1 << 20)),
        k => panic!("{k:?}"),
    }
    // A flipped bit: InvalidBatch naming the crc.
    let mut bad = c.build_batch(0, 0, &[b"abc"]).unwrap().to_vec();
    bad[41] ^= 1;
    match error_kind(raw_call(&mut s, 2, &append(bad.into()))) {
        Kind::InvalidBatch(i) => assert!(i.reason.contains("crc"), "{}", i.reason),
        k => panic!("{k:?}"),
    }
    // A sound frame whose payload is not a Request: Malformed.
    let payload = [0x0a, 0xff];
    let mut f = Vec::new();
    f.extend_from_slice(&2u32.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&3u64.to_le_bytes());
    crc.update(&payload);
    f.extend_from_slice(&crc.finalize().to_le_bytes());
    f.extend_from_slice(&3u64.to_le_bytes());
    f.extend_from_slice(&payload);
    s.write_all(&f).unwrap();
    assert!(matches!(
        error_kind(raw_answer(&mut s, 3)),
        Kind::Malformed(_)
    ));
    // Not served yet, and said so.
    let create = Request {
        op: Some(Op::CreateGroup(clientpb::CreateGroupRequest {
            group: 5,
            replication_factor: 3,
        })),
    };
    match error_kind(raw_call(&mut s, 4, &create)) {
        Kind::Unavailable(u) => assert!(u.reason.contains("create"), "{}", u.reason),
        k => panic!("{k:?}"),
    }

    // A group no member has: the client asks each member once, then
    // answers GroupNotFound (not a retry until its timeout).
    let t0 = Instant::now();
    match c.append(99, &[b"x"]) {
        Err(ClientError::Server(Kind::GroupNotFound(g))) => assert_eq!(g.group, 99),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    // Truncate: the earliest offset moves; below it is out of range.
    append_n(&c, 0, "t", 10);
    assert_eq!(c.truncate(0, 4).unwrap(), 4);
    match c.read(0, 2, 0, Consistency::Linearizable) {
        Err(ClientError::Server(Kind::OffsetOutOfRange(o))) => {
            assert_eq!((o.earliest, o.latest), (4, 10));
        }
        other => panic!("{other:?}"),
    }
    let r = c.read(0, 4, 0, Consistency::Linearizable).unwrap();
    assert_eq!(r.records.first().map(|x| x.0), Some(4));
    assert_eq!(r.records.len(), 6);
    match c.truncate(0, 11) {
        Err(ClientError::Server(Kind::TruncateBeyondEnd(e))) => {
            assert_eq!((e.requested, e.latest), (11, 10));
        }
        other => panic!("{other:?}"),
    }

    // Transfer leadership to another member.
    let to = (1..=3).find(|&m| m != leader).unwrap();
    let tr = Request {
        op: Some(Op::TransferLeader(clientpb::TransferLeaderRequest {
            group: 0,
            to_member: to,
        })),
    };
    assert!(matches!(
        raw_call(&mut s, 5, &tr).result,
        Some(Answer::Done(_))
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.leader(&c, 0) != to {
        assert!(Instant::now() < deadline, "leadership did not move to {to}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The client follows; offsets go on.
    assert_eq!(c.append(0, &[b"after"]).unwrap().base_offset, 10);
}

#[test]
fn a_tail_streams_records_as_they_commit_across_a_leader_change_and_ends_on_cancel() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let acked = append_n(&c, 0, "old", 3);
    let leader = t.leader(&c, 0);
    let follower = (1..=3).find(|&m| m != leader).unwrap();
    // A client whose tail is served by the follower.
    let fc = Client::connect(
        &[t.clients[(follower - 1) as usize]],
        ClientOptions::default(),
    )
    .unwrap();
    let ids = fc.member_ids();
    let mut tail = fc.tail(0, 1);
    let mut got: Vec<(u64, String)> = Vec::new();
    let take = |tail: &mut corelog::client::Tail<'_>, n: usize, got: &mut Vec<(u64, String)>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < n {
            assert!(Instant::now() < deadline, "tail stalled at {got:?}");
            match tail.next(Duration::from_secs(5)) {
                Ok(recs) => got.extend(
                    recs.into_iter()
                        .map(|(o, v)| (o, String::from_utf8(v.to_vec()).unwrap())),
                ),
                Err(ClientError::Timeout) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    take(&mut tail, 2, &mut got);
    assert_eq!(got, acked[1..].to_vec(), "from the offset asked");
    let mut all = acked.clone();
    all.extend(append_n(&c, 0, "live", 5));
    take(&mut tail, 7, &mut got);
    assert_eq!(got, all[1..].to_vec());
    // The leader dies; the tail (on a survivor) goes on with the new
    // leader's records. Which member serves it: the first the client
    // lists, so kill a leader that is not it, or move leadership off it.
    let server = ids[0];
    let l = t.leader(&c, 0);
    if l == server {
        let other = (1..=3).find(|&m| m != server).unwrap();
        let tr = Request {
            op: Some(Op::TransferLeader(clientpb::TransferLeaderRequest {
                group: 0,
                to_member: other,
            })),
        };
        let mut s = TcpStream::connect(t.clients[(server - 1) as usize]).unwrap();
        raw_call(&mut s, 1, &tr);
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.leader(&c, 0) == server {
            assert!(Instant::now() < deadline, "leadership did not move");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let l = t.leader(&c, 0);
    assert_ne!(l, server);
    t.kill9(l);
    all.extend(append_n(&c, 0, "new", 4));
    assert_ne!(t.leader(&c, 0), l);
    take(&mut tail, 11, &mut got);
    assert_eq!(got, all[1..].to_vec());
    drop(tail);

    // Cancel, on a raw connection: Done, and no answer after it.
    let mut s = TcpStream::connect(t.clients[(server - 1) as usize]).unwrap();
    let mut f = BytesMut::new();
    let tail_req = Request {
        op: Some(Op::Tail(clientpb::TailRequest {
            group: 0,
            offset: all.len() as u64,
            max_bytes_in_flight: 0,
        })),
    };
    encode_frame(10, &tail_req, &Limits::DEFAULT, &mut f).unwrap();
    s.write_all(&f).unwrap();
    c.append(0, &[b"one"]).unwrap();
    let r = raw_answer(&mut s, 10);
    let Some(Answer::Read(rr)) = r.result else {
        panic!("{r:?}")
    };
    assert_eq!(rr.batches.len(), 1);
    assert_eq!(rr.batches[0].base_offset, all.len() as u64);
    let cancel = Request {
        op: Some(Op::Cancel(clientpb::CancelRequest { request_id: 10 })),
    };
    assert!(matches!(
        raw_call(&mut s, 11, &cancel).result,
        Some(Answer::Done(_))
    ));
    c.append(0, &[b"two"]).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("an answer after the cancel: {other:?}"),
    }
}

#[test]
fn appends_retried_across_a_killed_leader_are_each_written_exactly_once() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let leader = t.leader(&c, 0);
    let acked: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let failed: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..150 {
                let v = format!("v{i:03}");
                match c.append(0, &[v.as_bytes()]) {
                    Ok(a) => {
                        if a.duplicate {
                            // A retry whose first copy had committed.
                            eprintln!("{v}: answered as a duplicate at {}", a.base_offset);
                        }
                        acked.lock().unwrap().push((a.base_offset, v))
                    }
                    Err(_) => failed.lock().unwrap().push(v),
                }
            }
        });
        // Kill the leader while appends are in flight.
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked.lock().unwrap().len() < 40 {
            assert!(Instant::now() < deadline, "no progress before the kill");
            std::thread::sleep(Duration::from_millis(1));
        }
        t.kill9(leader);
    });
    let acked = acked.into_inner().unwrap();
    let failed = failed.into_inner().unwrap();
    assert!(
        acked.len() >= 140,
        "{} acked, failed: {failed:?}",
        acked.len()
    );
    let new = t.leader(&c, 0);
    let log = read_all_from(t.clients[(new - 1) as usize], 0, Consistency::Linearizable);
    // Every acknowledged append is in the log once, at its offset; no
    // value is there twice (a retry answered as a duplicate, not written
    // again); offsets are dense.
    for (o, v) in &acked {
        assert_eq!(log.get(*o as usize).map(|x| &x.1), Some(v), "offset {o}");
    }
    let mut values: Vec<&String> = log.iter().map(|x| &x.1).collect();
    values.sort();
    let n = values.len();
    values.dedup();
    assert_eq!(values.len(), n, "a value was written twice");
    assert_eq!(
        log.iter().map(|x| x.0).collect::<Vec<_>>(),
        (0..n as u64).collect::<Vec<_>>()
    );
    // The log is the acknowledged appends plus, at most, the failed ones.
    assert!(n <= acked.len() + failed.len());
}

#[test]
fn a_member_removed_from_a_group_and_added_back_catches_up() {
    use corelog::clientpb::MembershipChange;

    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let mut acked = append_n(&c, 0, "a", 5);
    let leader = t.leader(&c, 0);
    let out = (1..=3).find(|&m| m != leader).unwrap();
    c.membership(0, MembershipChange::RemoveMember, out)
        .unwrap();
    let voters = |c: &Client| {
        let mut v = c.group_status(0).unwrap().voters;
        v.sort_unstable();
        v
    };
    let rest: Vec<u64> = (1..=3).filter(|&m| m != out).collect();
    assert_eq!(voters(&c), rest);
    // Two voters commit on their own.
    acked.extend(append_n(&c, 0, "b", 5));
    // A member holding no replica of the group cannot be added (asked
    // raw: the client would retry an Unavailable until its timeout).
    let l = t.leader(&c, 0);
    let mut s = TcpStream::connect(t.clients[(l - 1) as usize]).unwrap();
    let add9 = Request {
        op: Some(Op::Membership(clientpb::MembershipRequest {
            group: 0,
            change: MembershipChange::AddVoter as i32,
            member: 9,
        })),
    };
    match error_kind(raw_call(&mut s, 1, &add9)) {
        Kind::Unavailable(u) => assert!(u.reason.contains("no replica"), "{}", u.reason),
        k => panic!("{k:?}"),
    }
    c.membership(0, MembershipChange::AddVoter, out).unwrap();
    assert_eq!(voters(&c), vec![1, 2, 3]);
    acked.extend(append_n(&c, 0, "c", 5));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = read_all_from(t.clients[(out - 1) as usize], 0, Consistency::AnyReplica);
        if got == acked {
            break;
        }
        assert!(acked.starts_with(&got), "{got:?}");
        assert!(Instant::now() < deadline, "member {out} did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_command_line_client_appends_reads_tails_truncates_and_changes_members() {
    let _g = serial();
    let mut t = Three::new(2);
    t.start_all();
    let seed = t.clients[1].to_string();
    let cli = |args: &[&str]| {
        let out = Command::new(bin())
            .args(args.iter().take(1))
            .args(["-s", &seed])
            .args(&args[1..])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(
        cli(&["append", "1", "hello", "world"]),
        "group 1: offsets 0..=1\n"
    );
    assert_eq!(cli(&["append", "1", "again"]), "group 1: offsets 2..=2\n");
    assert_eq!(cli(&["read", "1"]), "0\thello\n1\tworld\n2\tagain\n");
    assert_eq!(
        cli(&["read", "1", "--from", "1", "--any-replica"])
            .lines()
            .count(),
        2
    );
    assert_eq!(
        cli(&["tail", "1", "--from", "1", "--count", "2"]),
        "1\tworld\n2\tagain\n"
    );
    assert_eq!(cli(&["truncate", "1", "1"]), "group 1: earliest offset 1\n");
    assert!(cli(&["members", "1"]).starts_with("group 1: voters [1, 2, 3], learners []"));
    let status = cli(&["status"]);
    assert!(
        status.contains("cluster 0x4d: 3 members, 2 groups"),
        "{status}"
    );
    assert!(status.contains("1..3"), "{status}");
}

#[test]
fn a_producer_batches_single_records_and_writes_each_once_across_a_killed_leader() {
    use corelog::client::{Producer, ProducerOptions};
    use std::sync::Arc;

    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = Arc::new(t.client());
    let leader = t.leader(&c, 0);
    let p = Producer::new(
        c.clone(),
        0,
        ProducerOptions {
            max_batch_records: 16,
            ..ProducerOptions::default()
        },
    );
    let n = 3000;
    let mut handles = Vec::new();
    for i in 0..n {
        let h: Handle = p.send(format!("r{i:05}").as_bytes()).into();
        handles.push((format!("r{i:05}"), h));
        if i % 50 == 0 {
            // Keep batches flowing around the kill.
            std::thread::sleep(Duration::from_millis(1));
        }
        if i == n / 3 {
            // Let some commit, then kill the leader with batches in flight.
            let (_, h) = handles.pop().unwrap();
            let first = h.wait().unwrap();
            handles.push((format!("r{i:05}"), RecordHandleDone(first).into()));
            t.kill9(leader);
        }
    }
    let mut acked = Vec::new();
    let mut failed = 0;
    for (v, h) in handles {
        match h.wait() {
            Ok(o) => acked.push((o, v)),
            Err(_) => failed += 1,
        }
    }
    let stats = p.stats();
    drop(p);
    eprintln!("producer: {stats:?}, {failed} records failed");
    assert!(stats.batches < n as u64 / 8, "not batched: {stats:?}");
    assert!(
        acked.len() >= n - 100,
        "{} acked, {failed} failed, {stats:?}",
        acked.len()
    );
    // Offsets follow the order of sending.
    assert!(
        acked.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
        "out of order"
    );
    let new = t.leader(&c, 0);
    let log = read_all_from(t.clients[(new - 1) as usize], 0, Consistency::Linearizable);
    for (o, v) in &acked {
        assert_eq!(log.get(*o as usize).map(|x| &x.1), Some(v), "offset {o}");
    }
    let mut values: Vec<&String> = log.iter().map(|x| &x.1).collect();
    values.sort();
    let len = values.len();
    values.dedup();
    assert_eq!(values.len(), len, "a record was written twice ({stats:?})");
}

/// A handle whose offset is already known (the test waited on it).
struct RecordHandleDone(u64);

enum Handle {
    Pending(corelog::client::RecordHandle),
    Done(u64),
}

impl From<RecordHandleDone> for Handle {
    fn from(d: RecordHandleDone) -> Handle {
        Handle::Done(d.0)
    }
}

impl From<corelog::client::RecordHandle> for Handle {
    fn from(h: corelog::client::RecordHandle) -> Handle {
        Handle::Pending(h)
    }
}

impl Handle {
    fn wait(self) -> Result<u64, ClientError> {
        match self {
            Handle::Pending(h) => h.wait(),
            Handle::Done(o) => Ok(o),
        }
    }
}

/// In process: one member with metrics on; a scrape shows the appends,
/// the answers by kind and the group's offsets; another path is 404.
#[test]
fn each_shard_serves_its_metrics_in_prometheus_text() {
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(3);
    let mut f = FileConfig {
        cluster_id: Some(3),
        member_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        groups: Some(1),
        replication_factor: Some(1),
        cpus: Some("none".into()),
        metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], p[2]))),
        ..FileConfig::default()
    };
    f.members.push(MemberEntry {
        id: 1,
        name: "solo".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], p[0])),
        client_addr: SocketAddr::from(([127, 0, 0, 1], p[1])),
        shards: 1,
    });
    let srv = Server::start(f.check().unwrap()).unwrap();
    assert_eq!(srv.metrics_addrs().len(), 1);
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    c.append(0, &[b"a", b"b", b"c"]).unwrap();
    assert!(c.read(0, 9, 0, Consistency::AnyReplica).is_err());
    let get = |path: &str| {
        let mut s = TcpStream::connect(srv.metrics_addrs()[0]).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let m = get("/metrics");
    assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
    for line in [
        "corelog_appended_records_total{shard=\"0\"} 3",
        "corelog_client_answers_total{shard=\"0\",kind=\"append\"} 1",
        "corelog_client_answers_total{shard=\"0\",kind=\"offset_out_of_range\"} 1",
        "corelog_group_leader{shard=\"0\",group=\"0\"} 1",
        "corelog_group_next_offset{shard=\"0\",group=\"0\"} 3",
        "corelog_shard_wal_failed{shard=\"0\"} 0",
        "# TYPE corelog_client_requests_total counter",
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
    assert!(get("/other").starts_with("HTTP/1.1 404"));
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

/// In process: a group at its limit of proposals in flight answers Busy
/// (pipelined appends on one connection), and the others are appended.
#[test]
fn appends_beyond_the_groups_proposals_in_flight_are_answered_busy() {
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(2);
    let mut f = FileConfig {
        cluster_id: Some(4),
        member_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        groups: Some(1),
        replication_factor: Some(1),
        cpus: Some("none".into()),
        ..FileConfig::default()
    };
    f.limits.max_inflight_proposals = Some(2);
    f.members.push(MemberEntry {
        id: 1,
        name: "solo".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], p[0])),
        client_addr: SocketAddr::from(([127, 0, 0, 1], p[1])),
        shards: 1,
    });
    let srv = Server::start(f.check().unwrap()).unwrap();
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    c.append(0, &[b"first"]).unwrap(); // elected, serving
    let mut s = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    let mut frames = BytesMut::new();
    let n = 20u64;
    for id in 1..=n {
        let batch = c.build_batch(0, 0, &[b"x"]).unwrap();
        let req = Request {
            op: Some(Op::Append(AppendRequest { group: 0, batch })),
        };
        encode_frame(id, &req, &Limits::DEFAULT, &mut frames).unwrap();
    }
    s.write_all(&frames).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut busy, mut appended) = (0, 0);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    while busy + appended < n {
        if let Some(f) = split_frame(&mut buf, &Limits::DEFAULT).unwrap() {
            let r = <Response as prost::Message>::decode(f.payload).unwrap();
            match r.result {
                Some(Answer::Append(_)) => appended += 1,
                Some(Answer::Error(clientpb::Error {
                    kind: Some(Kind::Busy(_)),
                })) => busy += 1,
                other => panic!("{other:?}"),
            }
            continue;
        }
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "closed");
        buf.extend_from_slice(&chunk[..k]);
    }
    assert!(
        busy > 0 && appended >= 2,
        "busy {busy}, appended {appended}"
    );
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_tail_whose_member_is_killed_resumes_on_another_from_the_next_offset() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let c = t.client();
    let mut all = append_n(&c, 0, "a", 5);
    // The tail is served by the first member the client lists.
    let tc = t.client();
    let server = tc.member_ids()[0];
    let mut tail = tc.tail(0, 0);
    let mut got: Vec<(u64, String)> = Vec::new();
    let take = |tail: &mut corelog::client::Tail<'_>, n: usize, got: &mut Vec<(u64, String)>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < n {
            assert!(Instant::now() < deadline, "tail stalled at {}", got.len());
            match tail.next(Duration::from_secs(5)) {
                Ok(recs) => got.extend(
                    recs.into_iter()
                        .map(|(o, v)| (o, String::from_utf8(v.to_vec()).unwrap())),
                ),
                Err(ClientError::Timeout) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    take(&mut tail, 5, &mut got);
    t.kill9(server);
    all.extend(append_n(&c, 0, "b", 5));
    take(&mut tail, 10, &mut got);
    assert_eq!(got, all, "no record lost or repeated across the move");
    assert_eq!(tail.offset(), 10);
}

/// In process: read answers of a megabyte (many batches, written as
/// pieces around the batches' own buffers, more than a socket buffer)
/// arrive whole and in order, several in flight on one connection.
#[test]
fn large_read_answers_arrive_whole_with_many_in_flight() {
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(2);
    let mut f = FileConfig {
        cluster_id: Some(6),
        member_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        groups: Some(1),
        replication_factor: Some(1),
        cpus: Some("none".into()),
        ..FileConfig::default()
    };
    f.members.push(MemberEntry {
        id: 1,
        name: "solo".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], p[0])),
        client_addr: SocketAddr::from(([127, 0, 0, 1], p[1])),
        shards: 1,
    });
    let srv = Server::start(f.check().unwrap()).unwrap();
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    let record = |i: usize| vec![(i % 251) as u8; 32 << 10];
    let mut want = Vec::new();
    for b in 0..40 {
        let recs: Vec<Vec<u8>> = (0..2).map(|k| record(b * 2 + k)).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        assert_eq!(c.append(0, &refs).unwrap().base_offset, (b * 2) as u64);
        want.extend(recs);
    }
    let mut s = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    let mut frames = BytesMut::new();
    for id in 1..=4u64 {
        let req = Request {
            op: Some(Op::Read(clientpb::ReadRequest {
                group: 0,
                offset: (id - 1) * 10,
                max_records: 0,
                max_bytes: 1 << 20,
                consistency: Consistency::AnyReplica as i32,
            })),
        };
        encode_frame(id, &req, &Limits::DEFAULT, &mut frames).unwrap();
    }
    s.write_all(&frames).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut seen = 0;
    while seen < 4 {
        if let Some(f) = split_frame(&mut buf, &Limits::DEFAULT).unwrap() {
            let r = <Response as prost::Message>::decode(f.payload).unwrap();
            let Some(Answer::Read(rr)) = r.result else {
                panic!("{r:?}")
            };
            let from = (f.request_id - 1) * 10;
            let total: usize = rr.batches.iter().map(|b| b.batch.len()).sum();
            assert!(total > 900 << 10, "{total} bytes answered");
            assert_eq!(rr.batches[0].base_offset, from);
            for b in &rr.batches {
                let batch =
                    corelog::log::RecordBatch::parse(&b.batch, &corelog::log::BatchLimits::CEILING)
                        .unwrap();
                for (k, rec) in batch.records().enumerate() {
                    assert_eq!(&rec[..], &want[b.base_offset as usize + k][..]);
                }
            }
            seen += 1;
            continue;
        }
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "closed");
        buf.extend_from_slice(&chunk[..k]);
    }
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}
