//! A userspace fault proxy for one directed peer link (member A's
//! connections to member B): the harness points A's member list at the
//! proxy for B, so every byte A sends B crosses it, and it can pass,
//! black-hole, reset, delay or throttle them on command. (`tc netem` is not
//! available here; iptables would need a network namespace per member.)
//!
//! Faults act on byte chunks in both directions of each connection:
//! - `Pass`: forward as they come;
//! - `Blackhole`: stop forwarding (and so reading) until the fault
//!   changes; nothing is dropped, so TCP's stream stays whole and the
//!   link resumes in order when healed, as a partition shorter than TCP's
//!   timeouts looks to both ends; new connections are accepted and wait;
//! - `Reset`: close every connection and refuse new ones;
//! - `Delay(d)`: forward each chunk `d` after it was read, in order;
//! - `Throttle(b)`: forward at most `b` bytes a second.
//!
//! Threads, not async: a proxy is test machinery with a handful of
//! connections, and blocking code is the easiest to get right.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// What the link does to its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Blackhole,
    Reset,
    Delay(Duration),
    /// Bytes per second, at least 1.
    Throttle(u64),
}

/// Chunks in flight per direction inside the proxy (a bound on its
/// memory: at most this many reads of `CHUNK` bytes).
const QUEUE: usize = 64;
const CHUNK: usize = 64 << 10;

struct Shared {
    fault: Mutex<Fault>,
    changed: Condvar,
    /// Every live connection's two sockets, to close them on `Reset`.
    conns: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
    next_id: AtomicU64,
    stop: AtomicBool,
    /// Bytes forwarded, both directions.
    forwarded: AtomicU64,
}

impl Shared {
    fn fault(&self) -> MutexGuard<'_, Fault> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn conns(&self) -> MutexGuard<'_, Vec<(u64, TcpStream, TcpStream)>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits while the link is black-holed; the fault then in force.
    fn wait_open(&self) -> Fault {
        let mut f = self.fault();
        while *f == Fault::Blackhole && !self.stop.load(Ordering::Relaxed) {
            f = self
                .changed
                .wait_timeout(f, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *f
    }
}

/// One directed link's proxy: listens on `addr()`, forwards to `target`.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Proxy> {
        Proxy::start_on("127.0.0.1:0".parse().expect("literal address"), target)
    }

    /// A proxy listening on `listen` (port 0: any free one).
    pub fn start_on(listen: SocketAddr, target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        // Non-blocking accept so that `Drop` can stop the acceptor.
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            fault: Mutex::new(Fault::Pass),
            changed: Condvar::new(),
            conns: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
        });
        let s = shared.clone();
        let acceptor = thread::Builder::new()
            .name(format!("proxy-{addr}"))
            .spawn(move || accept_loop(listener, target, s))?;
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where A connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes forwarded so far, both directions.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }

    /// Live connections through the proxy.
    pub fn connections(&self) -> usize {
        self.shared.conns().len()
    }

    pub fn fault(&self) -> Fault {
        *self.shared.fault()
    }

    /// Puts `fault` in force at once (a `Reset` closes every connection).
    pub fn set(&self, fault: Fault) {
        *self.shared.fault() = fault;
        self.shared.changed.notify_all();
        if fault == Fault::Reset {
            close_all(&self.shared);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
        close_all(&self.shared);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn close_all(shared: &Shared) {
    for (_, a, b) in shared.conns().drain(..) {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        if *shared.fault() == Fault::Reset {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let s = shared.clone();
        let _ = thread::Builder::new()
            .name("proxy-conn".into())
            .spawn(move || connect(client, target, s));
    }
}

/// Connects onward (once the link is not black-holed) and starts the two
/// directions' pumps.
fn connect(client: TcpStream, target: SocketAddr, shared: Arc<Shared>) {
    if shared.wait_open() == Fault::Reset || shared.stop.load(Ordering::Relaxed) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    shared.conns().push((id, c2, s2));
    let pumps = [
        (client.try_clone(), server.try_clone()),
        (server.try_clone(), client.try_clone()),
    ];
    let mut handles = Vec::new();
    for (from, to) in pumps {
        let (Ok(from), Ok(to)) = (from, to) else {
            continue;
        };
        let s = shared.clone();
        if let Ok(h) = thread::Builder::new()
            .name("proxy-pump".into())
            .spawn(move || pump(from, to, s))
        {
            handles.push(h);
        }
    }
    for h in handles {
        let _ = h.join();
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    shared.conns().retain(|(i, _, _)| *i != id);
}

/// One direction: a reader that stamps chunks, and a writer that forwards
/// each when the fault allows.
fn pump(mut from: TcpStream, to: TcpStream, shared: Arc<Shared>) {
    let (tx, rx): (SyncSender<(Instant, Vec<u8>)>, Receiver<_>) = sync_channel(QUEUE);
    let s = shared.clone();
    let writer = thread::Builder::new()
        .name("proxy-write".into())
        .spawn(move || forward(rx, to, s));
    let mut buf = vec![0u8; CHUNK];
    loop {
        // A black-holed link reads nothing either, so the sender's socket
        // buffers fill and it blocks, as behind a dead network.
        if shared.wait_open() == Fault::Reset {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = from.shutdown(Shutdown::Both);
    if let Ok(w) = writer {
        let _ = w.join();
    }
}

fn forward(rx: Receiver<(Instant, Vec<u8>)>, mut to: TcpStream, shared: Arc<Shared>) {
    while let Ok((read_at, chunk)) = rx.recv() {
        match shared.wait_open() {
            Fault::Reset => break,
            Fault::Delay(d) => {
                let due = read_at + d;
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
            }
            Fault::Throttle(rate) => {
                let secs = chunk.len() as f64 / rate.max(1) as f64;
                thread::sleep(Duration::from_secs_f64(secs.min(10.0)));
            }
            Fault::Pass | Fault::Blackhole => {}
        }
        if to.write_all(&chunk).is_err() {
            break;
        }
        shared
            .forwarded
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown(Shutdown::Write);
}
