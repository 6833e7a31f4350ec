//! One client connection to one shard of one member: requests written
//! under fresh request ids by any thread, answers read by a thread of the
//! connection's own and handed to whoever waits for that id. So many
//! requests are in flight on one connection at once, answered in any
//! order. Every frame read is checked as the server checks its own
//! (length limit before anything is reserved, crc); a bad frame, a lost
//! connection or the server closing it fails every request waiting.
//!
//! With a secret, the connection first runs the client port's
//! authentication handshake (`auth::client_wire`): the client proves it
//! holds the secret over the server's fresh nonce, then checks the
//! server's proof over its own, so it never sends a request to a server
//! that does not hold the secret.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::error::ClientError;
use crate::auth::client_wire::{self, CHALLENGE_LEN, Challenge, Hello, VERDICT_LEN, Verdict};
use crate::auth::{AuthKey, nonce};
use crate::clientpb::{Request, Response};
use crate::protocol::{Limits, encode_frame, split_frame};

type Answer = Result<Response, ClientError>;

#[derive(Default)]
struct Waiting {
    by_id: HashMap<u64, SyncSender<Answer>>,
    /// Requests answered many times (tails), until cancelled: where their
    /// answers go and how many wait there.
    streams: HashMap<u64, (SyncSender<Answer>, Arc<AtomicUsize>)>,
    /// Why the connection ended, once it did.
    closed: Option<ClientError>,
}

/// A connection to one shard's client port.
pub struct Connection {
    addr: SocketAddr,
    writer: Mutex<TcpStream>,
    waiting: Arc<Mutex<Waiting>>,
    next_id: AtomicU64,
    limits: Limits,
}

/// A request answered many times (a tail): its answers as they come.
pub struct Stream {
    id: u64,
    rx: Receiver<Answer>,
    queued: Arc<AtomicUsize>,
}

impl Stream {
    /// The request id the stream's answers come under.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Answers received and not yet taken.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The next answer, waiting until `deadline`; `Timeout` if none came.
    pub fn next(&self, deadline: Instant) -> Answer {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(a) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                a
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(ClientError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(ClientError::Disconnected("the connection ended".into()))
            }
        }
    }
}

/// A request sent, its answer not yet taken.
pub struct Ticket {
    rx: Receiver<Answer>,
}

impl Ticket {
    /// Waits for the answer until `deadline`.
    pub fn wait(self, deadline: Instant) -> Answer {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(a) => a,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(ClientError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(ClientError::Disconnected("the connection ended".into()))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Connection {
    /// Connects (within `timeout`), authenticates with `auth` (within
    /// `timeout` again; see `handshake`) and starts the connection's
    /// reader.
    pub fn open(
        addr: SocketAddr,
        timeout: Duration,
        limits: Limits,
        auth: Option<AuthKey>,
    ) -> Result<Connection, ClientError> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| ClientError::Connect(format!("{addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        if let Some(key) = auth {
            handshake(&mut stream, addr, &key, timeout)?;
        }
        let reader = stream
            .try_clone()
            .map_err(|e| ClientError::Connect(format!("{addr}: {e}")))?;
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let w = waiting.clone();
        std::thread::Builder::new()
            .name(format!("corelog-client-{addr}"))
            .spawn(move || read_answers(reader, &w, limits))
            .map_err(|e| ClientError::Connect(format!("starting the reader thread: {e}")))?;
        Ok(Connection {
            addr,
            writer: Mutex::new(stream),
            waiting,
            next_id: AtomicU64::new(1),
            limits,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the connection ended (the next request would fail).
    pub fn is_closed(&self) -> bool {
        lock(&self.waiting).closed.is_some()
    }

    /// Sends `req` under a new request id.
    pub fn send(&self, req: &Request) -> Result<Ticket, ClientError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send_as(req, |w, id| {
            w.by_id.insert(id, tx);
        })?;
        Ok(Ticket { rx })
    }

    /// Sends `req` (a tail) whose answers keep coming under its id until
    /// `end_stream`. At most `max_queued` (at least 1) wait in the client
    /// to be taken (`Stream::next`), one of them in the reader's hands:
    /// then the reader stops reading the socket until one is taken, so a
    /// consumer that does not keep up pushes back on the server (TCP)
    /// rather than filling memory. Everything else on this connection
    /// waits too: a stream wants a connection of its own.
    pub fn send_stream(&self, req: &Request, max_queued: usize) -> Result<Stream, ClientError> {
        let (tx, rx) = mpsc::sync_channel(max_queued.max(1) - 1);
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let id = self.send_as(req, |w, id| {
            w.streams.insert(id, (tx, q));
        })?;
        Ok(Stream { id, rx, queued })
    }

    /// Stops delivering stream `id`'s answers (after cancelling it).
    pub fn end_stream(&self, id: u64) {
        lock(&self.waiting).streams.remove(&id);
    }

    fn send_as(
        &self,
        req: &Request,
        register: impl FnOnce(&mut Waiting, u64),
    ) -> Result<u64, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = BytesMut::new();
        encode_frame(id, req, &self.limits, &mut frame)
            .map_err(|e| ClientError::TooLarge(e.to_string()))?;
        {
            let mut w = lock(&self.waiting);
            if let Some(e) = &w.closed {
                return Err(e.clone());
            }
            register(&mut w, id);
        }
        let r = lock(&self.writer).write_all(&frame);
        if let Err(e) = r {
            let err = ClientError::Disconnected(format!("{}: {e}", self.addr));
            fail_all(&self.waiting, err.clone());
            return Err(err);
        }
        Ok(id)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Ends the reader thread (its read returns).
        let _ = lock(&self.writer).shutdown(Shutdown::Both);
    }
}

fn fail_all(waiting: &Mutex<Waiting>, err: ClientError) {
    let mut w = lock(waiting);
    if w.closed.is_none() {
        w.closed = Some(err.clone());
    }
    for (_, tx) in w.by_id.drain() {
        let _ = tx.try_send(Err(err.clone()));
    }
    for (_, (tx, q)) in w.streams.drain() {
        // Never blocks under the lock: a full stream learns of the end
        // when it has taken what it holds (its sender is gone then).
        q.fetch_add(1, Ordering::Relaxed);
        if tx.try_send(Err(err.clone())).is_err() {
            q.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The connection's reader: cuts frames, hands each answer to its waiter.
fn read_answers(mut stream: TcpStream, waiting: &Mutex<Waiting>, limits: Limits) {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let err = loop {
        match split_frame(&mut buf, &limits) {
            Ok(Some(f)) => {
                let answer = <Response as prost::Message>::decode(f.payload)
                    .map_err(|e| ClientError::Protocol(format!("undecodable answer: {e}")));
                let mut w = lock(waiting);
                if let Some(tx) = w.by_id.remove(&f.request_id) {
                    let _ = tx.try_send(answer);
                } else if let Some((tx, q)) = w.streams.get(&f.request_id).cloned() {
                    drop(w);
                    // Counted while in hand: the reader holds at most one.
                    q.fetch_add(1, Ordering::Relaxed);
                    // Blocks (the lock released) while the stream is full:
                    // the socket is not read meanwhile. Ends when taken or
                    // when the stream's receiver is dropped.
                    if tx.send(answer).is_err() {
                        q.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break ClientError::Protocol(e.to_string()),
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 << 10);
        }
        let len = buf.len();
        let cap = buf.capacity();
        buf.resize(cap, 0);
        match stream.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                break ClientError::Disconnected("the server closed the connection".into());
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                break ClientError::Disconnected(e.to_string());
            }
        }
    };
    fail_all(waiting, err);
}

/// The client port's authentication handshake, on a blocking socket,
/// within `timeout`: hello, challenge, our proof, the verdict with the
/// server's proof, checked. Every failure that says the other side does
/// not share our secret is `Unauthorized`; bytes that are no handshake
/// are `Protocol`.
fn handshake(
    stream: &mut TcpStream,
    addr: SocketAddr,
    key: &AuthKey,
    timeout: Duration,
) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::Connect(format!("{addr}: authenticating: {e}"));
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let nc = nonce().map_err(io)?;
    let hello = Hello { nonce: nc }.encode();
    stream.write_all(&hello).map_err(io)?;
    let mut ch = [0u8; CHALLENGE_LEN];
    read_or_closed(
        stream,
        &mut ch,
        addr,
        "the server closed the connection at our hello: it has no secret (authentication off there) or speaks another version",
    )?;
    Challenge::decode(&ch).map_err(|e| ClientError::Protocol(format!("{addr}: {e}")))?;
    let proof = client_wire::client_proof(key, &hello, &ch);
    stream
        .write_all(&client_wire::encode_proof(&proof))
        .map_err(io)?;
    let mut v = [0u8; VERDICT_LEN];
    read_or_closed(
        stream,
        &mut v,
        addr,
        "the server closed the connection before its verdict",
    )?;
    match Verdict::decode(&v).map_err(|e| ClientError::Protocol(format!("{addr}: {e}")))? {
        Verdict::Refused => {
            return Err(ClientError::Unauthorized(format!(
                "{addr}: the server refused our proof: it holds another secret"
            )));
        }
        Verdict::Accepted(p) => {
            if !client_wire::check_server_proof(key, &hello, &ch, &p) {
                return Err(ClientError::Unauthorized(format!(
                    "{addr}: the server's proof is wrong: it does not hold our secret"
                )));
            }
        }
    }
    // The reader thread blocks without a timeout: requests have their own.
    stream.set_read_timeout(None).map_err(io)?;
    stream.set_write_timeout(None).map_err(io)?;
    Ok(())
}

/// Reads `buf` whole; the end of the stream first is `Unauthorized`
/// saying `closed`, a timeout is `Timeout`.
fn read_or_closed(
    stream: &mut TcpStream,
    buf: &mut [u8],
    addr: SocketAddr,
    closed: &str,
) -> Result<(), ClientError> {
    match stream.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ClientError::Unauthorized(format!("{addr}: {closed}")))
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(ClientError::Timeout)
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Err(ClientError::Unauthorized(format!("{addr}: {closed}")))
        }
        Err(e) => Err(ClientError::Disconnected(format!("{addr}: {e}"))),
    }
}
