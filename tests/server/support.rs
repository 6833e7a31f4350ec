//! What the server tests share: starting `corelog server` processes
//! (killed when dropped), free ports, raw frames, reading a group back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use corelog::client::{Client, ClientError, ClientOptions};
use corelog::clientpb::{
    self, Consistency, Request, Response, error::Kind, request::Op, response::Result as Answer,
};
use corelog::protocol::{Limits, encode_frame, split_frame};
use tempfile::TempDir;

pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    match ONE_AT_A_TIME.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Copies a directory tree (a stopped member's data).
pub fn copy_dir(from: &Path, to: &Path) {
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
pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// The first of `width` consecutive ports free right now on 127.0.0.1
/// (a member with `width` shards listens on `port .. port + width`).
pub fn free_range(width: u16) -> u16 {
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
pub struct Proc {
    pub child: Child,
    pub stderr: mpsc::Receiver<String>,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: a plain kill(2) of our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
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

    pub fn stderr_lines(&self) -> Vec<String> {
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
pub struct Three {
    pub dirs: Vec<TempDir>,
    pub peers: Vec<SocketAddr>,
    pub clients: Vec<SocketAddr>,
    pub groups: u64,
    pub procs: Vec<Option<Proc>>,
    /// Flags added to member `k + 1`'s command line.
    pub extra: Vec<Vec<String>>,
    /// Shards of every member (its ports: `peers[k] + s`, `clients[k] + s`).
    pub shards: u32,
}

impl Three {
    pub fn new(groups: u64) -> Three {
        let ports = free_ports(6);
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Three {
            dirs: (0..3).map(|_| tempfile::tempdir().unwrap()).collect(),
            peers: ports[0..3].iter().map(|&p| addr(p)).collect(),
            clients: ports[3..6].iter().map(|&p| addr(p)).collect(),
            groups,
            procs: vec![None, None, None],
            extra: vec![Vec::new(); 3],
            shards: 1,
        }
    }

    /// Three members of `shards` shards each (free port ranges).
    pub fn with_shards(groups: u64, shards: u32) -> Three {
        let width = u16::try_from(shards).unwrap();
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Three {
            peers: (0..3).map(|_| addr(free_range(width))).collect(),
            clients: (0..3).map(|_| addr(free_range(width))).collect(),
            shards,
            ..Three::new(groups)
        }
    }

    pub fn args(&self, id: u64, dir: &Path) -> Vec<String> {
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
            a.push(format!(
                "{m}=m{m}@{}/{}/{}",
                self.peers[k], self.clients[k], self.shards
            ));
        }
        a.extend(self.extra[(id - 1) as usize].iter().cloned());
        a
    }

    /// Gives every member `flags` and a metrics port of its own; returns
    /// the metrics addresses (member `k + 1`'s at `k`).
    pub fn with_metrics(&mut self, flags: &[&str]) -> Vec<SocketAddr> {
        let metrics: Vec<SocketAddr> = free_ports(3)
            .iter()
            .map(|&p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        for (extra, m) in self.extra.iter_mut().zip(&metrics) {
            *extra = flags.iter().map(|s| s.to_string()).collect();
            extra.push("--metrics-addr".into());
            extra.push(m.to_string());
        }
        metrics
    }

    /// Starts member `id` and waits (bounded) for its serving line.
    pub fn start(&mut self, id: u64) {
        let k = (id - 1) as usize;
        let args = self.args(id, self.dirs[k].path());
        self.procs[k] = Some(spawn_server(&args));
    }

    pub fn start_all(&mut self) {
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

    pub fn proc(&mut self, id: u64) -> &mut Proc {
        self.procs[(id - 1) as usize].as_mut().expect("running")
    }

    pub fn kill9(&mut self, id: u64) {
        let mut p = self.procs[(id - 1) as usize].take().expect("running");
        p.signal(libc::SIGKILL);
        p.wait_exit(10);
    }

    pub fn client(&self) -> Client {
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
    pub fn leader(&self, c: &Client, group: u64) -> u64 {
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

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_corelog")
}

pub fn spawn_server_nowait(args: &[String]) -> Proc {
    spawn_server_env(args, &[])
}

/// `spawn_server_nowait` with environment variables set for the child.
pub fn spawn_server_env(args: &[String], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(bin());
    cmd.args(args).envs(env.iter().copied());
    spawn_nowait(cmd)
}

/// Spawns `cmd` (a server, or something that execs one) with its output
/// piped as `spawn_server_nowait` does.
pub fn spawn_nowait(mut cmd: Command) -> Proc {
    let mut child = cmd
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
pub fn wait_serving(p: &mut Proc) {
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

pub fn spawn_server(args: &[String]) -> Proc {
    let mut p = spawn_server_nowait(args);
    wait_serving(&mut p);
    p
}

/// Appends `n` single-record batches `"{tag}-{i}"` to `group`; returns
/// (offset, value) of each, as acknowledged.
pub fn append_n(c: &Client, group: u64, tag: &str, n: usize) -> Vec<(u64, String)> {
    (0..n)
        .map(|i| {
            let v = format!("{tag}-{i}");
            let a = c.append(group, &[v.as_bytes()]).unwrap();
            assert_eq!(a.count, 1);
            (a.base_offset, v)
        })
        .collect()
}

/// Every record of `group` read from exactly the member at `addr` (its
/// client port for the group's shard; one shard here), on a connection
/// of its own: no client routing, so an any-replica read shows that
/// replica's log. A linearizable read there goes through the leader's
/// ReadIndex from that member.
pub fn read_all_from(addr: SocketAddr, group: u64, consistency: Consistency) -> Vec<(u64, String)> {
    read_from(addr, group, 0, consistency)
}

/// As `read_all_from`, from offset `from` on (a truncated group's
/// earliest offset, say). A replica whose log ends before `from` (one
/// still catching up) answers what it holds: nothing.
pub fn read_from(
    addr: SocketAddr,
    group: u64,
    from: u64,
    consistency: Consistency,
) -> Vec<(u64, String)> {
    let mut s = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    let mut from = from;
    let mut id = 0;
    loop {
        id += 1;
        let req = Request {
            op: Some(Op::Read(clientpb::ReadRequest {
                group,
                offset: from,
                max_records: 0,
                max_bytes: 0,
                consistency: consistency as i32,
            })),
        };
        let r = match raw_call(&mut s, id, &req).result {
            Some(Answer::Read(r)) => r,
            // No leader known here yet (a linearizable read needs one):
            // ask again shortly.
            Some(Answer::Error(clientpb::Error {
                kind: Some(Kind::NotLeader(_) | Kind::Unavailable(_) | Kind::Timeout(_)),
            })) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Some(Answer::Error(clientpb::Error {
                kind: Some(Kind::OffsetOutOfRange(o)),
            })) if o.offset > o.latest && o.offset >= o.earliest => return out,
            other => panic!("read of group {group} at {addr} from {from}: {other:?}"),
        };
        if r.batches.is_empty() {
            return out;
        }
        for b in r.batches {
            let batch =
                corelog::log::RecordBatch::parse(&b.batch, &corelog::log::BatchLimits::CEILING)
                    .unwrap();
            for (k, rec) in batch.records().enumerate() {
                let o = b.base_offset + k as u64;
                if o >= from {
                    out.push((o, String::from_utf8(rec.to_vec()).unwrap()));
                }
            }
        }
        from = out.last().map_or(from, |x| x.0 + 1);
    }
}

/// Sends one request on a raw connection and returns its answer.
pub fn raw_call(s: &mut TcpStream, id: u64, req: &Request) -> Response {
    let mut f = BytesMut::new();
    encode_frame(id, req, &Limits::DEFAULT, &mut f).unwrap();
    s.write_all(&f).unwrap();
    raw_answer(s, id)
}

pub fn raw_answer(s: &mut TcpStream, id: u64) -> Response {
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
pub fn closed_by_server(s: &mut TcpStream) -> bool {
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

/// `GET /metrics` from a member's metrics port: the text.
pub fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// The value of metric `name` with exactly `labels` (`shard="0",group="1"`)
/// in a scrape, if it is there.
pub fn metric(text: &str, name: &str, labels: &str) -> Option<u64> {
    let key = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim().parse().unwrap())
}

pub fn cluster_status_req() -> Request {
    Request {
        op: Some(Op::ClusterStatus(clientpb::ClusterStatusRequest {})),
    }
}

pub fn error_kind(r: Response) -> Kind {
    match r.result {
        Some(Answer::Error(clientpb::Error { kind: Some(k) })) => k,
        other => panic!("not an error: {other:?}"),
    }
}

/// A handle whose offset is already known (the test waited on it).
pub struct RecordHandleDone(pub u64);

pub enum Handle {
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
    pub fn wait(self) -> Result<u64, ClientError> {
        match self {
            Handle::Pending(h) => h.wait(),
            Handle::Done(o) => Ok(o),
        }
    }
}

/// One member in process (replication factor 1, 5 ms ticks) with
/// `shards` shards and `groups` groups; `tweak` sets limits. The data
/// directory lives as long as the returned `TempDir`.
pub fn solo_server(
    shards: u32,
    groups: u64,
    tweak: impl FnOnce(&mut corelog::server::FileConfig),
) -> (TempDir, corelog::server::Server) {
    use corelog::server::config::MemberEntry;
    use corelog::server::{FileConfig, Server};
    let dir = tempfile::tempdir().unwrap();
    let width = u16::try_from(shards).unwrap();
    let (peer, client) = (free_range(width), free_range(width));
    let mut f = FileConfig {
        cluster_id: Some(21),
        member_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        groups: Some(groups),
        replication_factor: Some(1),
        cpus: Some("none".into()),
        ..FileConfig::default()
    };
    f.members.push(MemberEntry {
        id: 1,
        name: "solo".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], peer)),
        client_addr: SocketAddr::from(([127, 0, 0, 1], client)),
        shards,
    });
    f.runtime.tick_ms = Some(5);
    tweak(&mut f);
    let srv = Server::start(f.check().unwrap()).unwrap();
    (dir, srv)
}

/// The `NotLeader` a follower answers `req` with on `s`, asked again
/// (at most 10 s) until it names a leader: a follower that has not yet
/// heard from the leader names none.
pub fn not_leader_answer(s: &mut TcpStream, req: &Request) -> clientpb::NotLeader {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut id = 0;
    loop {
        id += 1;
        let resp = raw_call(s, id, req);
        let Some(Answer::Error(clientpb::Error {
            kind: Some(Kind::NotLeader(nl)),
        })) = resp.result
        else {
            panic!("not NotLeader: {resp:?}");
        };
        if nl.leader != 0 || Instant::now() > deadline {
            return nl;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most 10 s) until `cond` holds; false if it never did.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Sends `req` under `id` on a raw connection without waiting.
pub fn raw_send(s: &mut TcpStream, id: u64, req: &Request) {
    let mut f = BytesMut::new();
    encode_frame(id, req, &Limits::DEFAULT, &mut f).unwrap();
    s.write_all(&f).unwrap();
}

pub fn tail_req(group: u64, offset: u64) -> Request {
    Request {
        op: Some(Op::Tail(clientpb::TailRequest {
            group,
            offset,
            max_bytes_in_flight: 0,
        })),
    }
}
