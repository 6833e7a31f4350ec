//! The outbound side toward one remote (member, shard): its bounded send
//! queue of frames and the task that owns its connection (dial, handshake,
//! write frames, reconnect with backoff).
//!
//! Queue: `send` pushes a message straight into the frame being built
//! (the `Encoder` takes the entries' buffers; nothing is copied above
//! `INLINE_MAX`), `flush` closes that frame and wakes the task, which
//! takes every closed frame at once and writes them with one vectored
//! write. Frames in the queue or being written count against
//! `max_queue_bytes` until written.
//!
//! States: `Connecting` (dialling or handshaking; sends are queued),
//! `Connected`, `Down` (between a failure and the next attempt; sends are
//! dropped and reported unreachable at once, since nothing could carry
//! them), `Closed` (shut down). On any failure the whole queue is dropped
//! and every (member, group) in it is recorded for `take_unreachable`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;

use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::backoff::Backoff;
use super::codec::Encoder;
use super::handshake::{HANDSHAKE_LEN, Handshake};
use super::heartbeats::{HeartbeatBatch, coalescible};
use super::net::{SendError, Shared, TaskGuard};
use super::peer_auth::Transcript;
use super::signal::Notify;
use super::snapchunk::{self, ChunkHeader};
use super::sock::{wait_readable, write_all_vectored};
use super::{Error, Limits};
use crate::auth::{NONCE_LEN, PROOF_LEN, nonce};
use crate::raftpb::{Message, MessageType};

/// Closed frames kept for reuse per peer: enough for the frames of a few
/// turns in flight; beyond it, encoders are freed.
const POOL_MAX: usize = 4;
/// Heartbeats in one batch record at most (a few tens of KiB).
const HEARTBEATS_PER_RECORD: usize = 4096;

/// One frame under construction or waiting to be written, with the group
/// of each of its messages (to report them unreachable if it is dropped;
/// a heartbeat batch record has one per heartbeat).
pub(crate) struct Batch {
    enc: Encoder,
    groups: Vec<u64>,
    /// Groups of the MsgSnaps whose last piece this frame carries:
    /// reported written (or lost) with it.
    snaps: Vec<u64>,
}

impl Batch {
    fn new(limits: Limits) -> Self {
        Batch {
            enc: Encoder::new(limits),
            groups: Vec::new(),
            snaps: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.enc.clear();
        self.groups.clear();
        self.snaps.clear();
    }
}

/// Where the connection toward a peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    Connecting,
    Connected,
    Down,
    Closed,
}

#[derive(Default)]
struct Queue {
    /// The frame `send` is filling (not yet flushed).
    open: Option<Batch>,
    /// Flushed frames, in order, waiting for the connection task.
    closed: VecDeque<Batch>,
    pool: Vec<Batch>,
    /// Heartbeats (index 0) and heartbeat responses (1) gathered since the
    /// last flush, coalesced into batch records by `flush`.
    heartbeats: [HeartbeatBatch; 2],
    /// Bytes of `open`, `closed` and the frames being written.
    bytes: u64,
    /// MsgSnaps whose data goes out in chunks, one chunk per flush, each
    /// followed by its message once its last chunk is queued.
    snaps: VecDeque<Outgoing>,
}

/// A MsgSnap on its way: the chunks of its data still to queue, then
/// itself (with its data taken out).
struct Outgoing {
    group: u64,
    chunks: VecDeque<(ChunkHeader, bytes::Bytes)>,
    msg: Message,
}

/// The outbound state toward one remote (member, shard).
pub(crate) struct Peer {
    pub(crate) member: u64,
    pub(crate) shard: u32,
    addr: SocketAddr,
    state: Cell<LinkState>,
    queue: RefCell<Queue>,
    /// Frames were flushed, or shutdown began.
    work: Notify,
    /// True while the peer is on the net's dirty list (sent to since the
    /// last flush).
    pub(crate) dirty: Cell<bool>,
}

impl Peer {
    pub(crate) fn new(member: u64, shard: u32, addr: SocketAddr) -> Self {
        Peer {
            member,
            shard,
            addr,
            state: Cell::new(LinkState::Connecting),
            queue: RefCell::default(),
            work: Notify::default(),
            dirty: Cell::new(false),
        }
    }

    /// Queues `msg` of `group` into the open frame (starting another when
    /// it is full). See `PeerNet::send`.
    pub(crate) fn send(&self, net: &Shared, group: u64, msg: Message) -> Result<(), SendError> {
        match self.state.get() {
            LinkState::Closed => return Err(SendError::Shutdown),
            LinkState::Down => {
                net.unreachable.borrow_mut().push((self.member, group));
                net.stats.bump(|s| s.dropped_unreachable += 1);
                return Ok(());
            }
            LinkState::Connecting | LinkState::Connected => {}
        }
        let mut q = self.queue.borrow_mut();
        let limit = net.cfg.max_queue_bytes as u64;
        if q.bytes >= limit {
            net.stats.bump(|s| s.send_queue_full += 1);
            return Err(SendError::QueueFull {
                member: self.member,
                shard: self.shard,
                queued_bytes: q.bytes,
                limit,
            });
        }
        let q = &mut *q;
        if msg.r#type == MessageType::MsgSnap as i32
            && msg.snapshot.as_ref().is_some_and(|s| !s.data.is_empty())
        {
            let mut msg = msg;
            let index = msg
                .snapshot
                .as_ref()
                .and_then(|s| s.metadata.as_ref())
                .map_or(0, |m| m.index);
            let data = msg
                .snapshot
                .as_mut()
                .map(|s| std::mem::take(&mut s.data))
                .unwrap_or_default();
            let chunks = snapchunk::split(group, index, &data, net.opts.snapshot_chunk_bytes);
            q.snaps.push_back(Outgoing {
                group,
                chunks: chunks.into(),
                msg,
            });
            return Ok(());
        }
        if net.opts.coalesce_heartbeats && coalescible(&msg) {
            let i = usize::from(msg.r#type == MessageType::MsgHeartbeatResp as i32);
            if q.heartbeats[i].push(group, &msg) {
                return Ok(());
            }
        }
        let mut msg = msg;
        // Ends: a fresh (empty) frame either takes the message or refuses
        // it for good, and a full frame is replaced by a fresh one.
        loop {
            let batch = q
                .open
                .get_or_insert_with(|| q.pool.pop().unwrap_or_else(|| Batch::new(net.cfg.limits)));
            let was_empty = batch.enc.is_empty();
            let before = if was_empty { 0 } else { batch.enc.frame_len() };
            match batch.enc.try_push(group, msg) {
                Ok(()) => {
                    batch.groups.push(group);
                    q.bytes += batch.enc.frame_len() - before;
                    return Ok(());
                }
                Err((Error::Limit { .. }, m)) if !was_empty => {
                    // The open frame is full: close it and start another.
                    if let Some(full) = q.open.take() {
                        q.closed.push_back(full);
                    }
                    msg = m;
                }
                Err((e, _)) => return Err(SendError::Encode(e)),
            }
        }
    }

    /// Puts the gathered heartbeats into the open frame as batch records,
    /// closes the frame and wakes the connection task. Returns true when
    /// there was something to flush.
    pub(crate) fn flush(&self, net: &Shared) -> bool {
        let mut q = self.queue.borrow_mut();
        for i in 0..2 {
            if !q.heartbeats[i].is_empty() {
                self.push_heartbeats(net, &mut q, i);
            }
        }
        if !q.snaps.is_empty() {
            self.push_snapshot_chunk(net, &mut q);
        }
        let Some(b) = q.open.take() else {
            return false;
        };
        if b.enc.is_empty() {
            q.open = Some(b);
            return false;
        }
        q.closed.push_back(b);
        drop(q);
        self.work.notify();
        true
    }

    fn push_heartbeats(&self, net: &Shared, q: &mut Queue, i: usize) {
        let hb = std::mem::take(&mut q.heartbeats[i]);
        let per = HEARTBEATS_PER_RECORD
            .min(net.cfg.limits.max_messages_per_frame as usize)
            .max(1);
        let mut start = 0;
        while start < hb.len() {
            let end = (start + per).min(hb.len());
            let batch = q
                .open
                .get_or_insert_with(|| q.pool.pop().unwrap_or_else(|| Batch::new(net.cfg.limits)));
            let was_empty = batch.enc.is_empty();
            let before = if was_empty { 0 } else { batch.enc.frame_len() };
            match batch.enc.push_heartbeats(&hb, start..end) {
                Ok(()) => {
                    batch
                        .groups
                        .extend(hb.groups().skip(start).take(end - start));
                    q.bytes += batch.enc.frame_len() - before;
                    net.stats
                        .bump(|s| s.heartbeats_coalesced += (end - start) as u64);
                    start = end;
                }
                Err(Error::Limit { .. }) if !was_empty => {
                    if let Some(full) = q.open.take() {
                        q.closed.push_back(full);
                    }
                }
                Err(_) => {
                    // Even a frame of its own cannot hold this record
                    // (limits far below any real one): the heartbeats are
                    // lost, as a dropped send would be.
                    let mut u = net.unreachable.borrow_mut();
                    u.extend(
                        hb.groups()
                            .skip(start)
                            .take(end - start)
                            .map(|g| (self.member, g)),
                    );
                    net.stats
                        .bump(|s| s.dropped_unreachable += (end - start) as u64);
                    start = end;
                }
            }
        }
        let mut hb = hb;
        hb.clear();
        q.heartbeats[i] = hb;
    }

    /// Whether snapshot chunks wait for the next flush.
    pub(crate) fn has_snapshot_chunks(&self) -> bool {
        !self.queue.borrow().snaps.is_empty()
    }

    /// Queues the next chunk of the first snapshot waiting (and, after
    /// its last chunk, its message), after the turn's other messages: a
    /// large snapshot holds a connection for one chunk per turn.
    fn push_snapshot_chunk(&self, net: &Shared, q: &mut Queue) {
        let Some(out) = q.snaps.front_mut() else {
            return;
        };
        if let Some((h, data)) = out.chunks.pop_front() {
            for _ in 0..2 {
                let batch = q.open.get_or_insert_with(|| {
                    q.pool.pop().unwrap_or_else(|| Batch::new(net.cfg.limits))
                });
                let was_empty = batch.enc.is_empty();
                let before = if was_empty { 0 } else { batch.enc.frame_len() };
                match batch.enc.push_snapshot_chunk(&h, data.clone()) {
                    Ok(()) => {
                        batch.groups.push(out.group);
                        q.bytes += batch.enc.frame_len() - before;
                        net.stats.bump(|s| s.snapshot_chunks_sent += 1);
                        break;
                    }
                    Err(Error::Limit { .. }) if !was_empty => {
                        if let Some(full) = q.open.take() {
                            q.closed.push_back(full);
                        }
                    }
                    Err(_) => {
                        // A chunk no frame can hold (limits below the
                        // chunk size): the snapshot is lost.
                        let group = out.group;
                        q.snaps.pop_front();
                        net.snapshot_reports
                            .borrow_mut()
                            .push((self.member, group, false));
                        return;
                    }
                }
            }
            if !out.chunks.is_empty() {
                return;
            }
        }
        let Some(out) = q.snaps.pop_front() else {
            return;
        };
        let mut msg = out.msg;
        loop {
            let batch = q
                .open
                .get_or_insert_with(|| q.pool.pop().unwrap_or_else(|| Batch::new(net.cfg.limits)));
            let was_empty = batch.enc.is_empty();
            let before = if was_empty { 0 } else { batch.enc.frame_len() };
            match batch.enc.try_push(out.group, msg) {
                Ok(()) => {
                    batch.groups.push(out.group);
                    batch.snaps.push(out.group);
                    q.bytes += batch.enc.frame_len() - before;
                    return;
                }
                Err((Error::Limit { .. }, m)) if !was_empty => {
                    if let Some(full) = q.open.take() {
                        q.closed.push_back(full);
                    }
                    msg = m;
                }
                Err(_) => {
                    net.snapshot_reports
                        .borrow_mut()
                        .push((self.member, out.group, false));
                    return;
                }
            }
        }
    }

    /// Wakes the connection task so it sees the shutdown.
    pub(crate) fn wake(&self) {
        self.work.notify();
    }

    /// Drops everything queued, recording each (member, group) once per
    /// frame for `take_unreachable`.
    fn drop_queue(&self, net: &Shared) {
        let mut q = self.queue.borrow_mut();
        let q = &mut *q;
        let mut dropped = 0u64;
        let mut unreachable = net.unreachable.borrow_mut();
        for hb in &mut q.heartbeats {
            dropped += hb.len() as u64;
            unreachable.extend(hb.groups().map(|g| (self.member, g)));
            hb.clear();
        }
        let mut reports = net.snapshot_reports.borrow_mut();
        for out in q.snaps.drain(..) {
            unreachable.push((self.member, out.group));
            reports.push((self.member, out.group, false));
        }
        for mut b in q.open.take().into_iter().chain(q.closed.drain(..)) {
            dropped += b.groups.len() as u64;
            reports.extend(b.snaps.iter().map(|&g| (self.member, g, false)));
            q.bytes -= if b.enc.is_empty() {
                0
            } else {
                b.enc.frame_len()
            };
            unreachable.extend(b.groups.iter().map(|&g| (self.member, g)));
            b.clear();
            if q.pool.len() < POOL_MAX {
                q.pool.push(b);
            }
        }
        net.stats.bump(|s| s.dropped_unreachable += dropped);
    }
}

/// Why a connection attempt or an established connection ended.
#[derive(Debug)]
pub(crate) enum LinkError {
    Io(io::Error),
    TimedOut(&'static str),
    Handshake(Error),
    /// The peer closed (or wrote to) a connection that only we write to.
    ClosedByPeer,
    Shutdown,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Io(e) => write!(f, "{e}"),
            LinkError::TimedOut(what) => write!(f, "{what} timed out"),
            LinkError::Handshake(e) => write!(f, "{e}"),
            LinkError::ClosedByPeer => write!(f, "closed by the peer"),
            LinkError::Shutdown => write!(f, "shutting down"),
        }
    }
}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        LinkError::Io(e)
    }
}

/// The connection task of `peer`: runs until shutdown.
pub(crate) async fn run(net: Rc<Shared>, peer: Rc<Peer>, _guard: TaskGuard) {
    let seed = net.cfg.seed ^ peer.member.rotate_left(32) ^ u64::from(peer.shard);
    let mut backoff = Backoff::new(net.cfg.backoff_min, net.cfg.backoff_max, seed);
    // Log a peer's failures on the way down, not on every retry.
    let mut logged_down = false;
    while !net.shutdown.is_set() {
        peer.state.set(LinkState::Connecting);
        match dial(&net, &peer).await {
            Ok(stream) => {
                net.stats.bump(|s| s.connects += 1);
                backoff.reset();
                if logged_down {
                    tracing::info!(
                        member = net.cfg.member,
                        shard = net.cfg.shard,
                        peer_member = peer.member,
                        peer_shard = peer.shard,
                        addr = %peer.addr,
                        "connected to peer"
                    );
                }
                peer.state.set(LinkState::Connected);
                match pump(&net, &peer, stream).await {
                    LinkError::Shutdown => break,
                    e => {
                        net.stats.bump(|s| s.connections_lost += 1);
                        tracing::warn!(
                            member = net.cfg.member,
                            shard = net.cfg.shard,
                            peer_member = peer.member,
                            peer_shard = peer.shard,
                            error = %e,
                            "connection to peer lost"
                        );
                        logged_down = true;
                    }
                }
            }
            Err(LinkError::Shutdown) => break,
            Err(e) => {
                net.stats.bump(|s| s.connect_failures += 1);
                if !logged_down {
                    tracing::warn!(
                        member = net.cfg.member,
                        shard = net.cfg.shard,
                        peer_member = peer.member,
                        peer_shard = peer.shard,
                        addr = %peer.addr,
                        error = %e,
                        "cannot connect to peer"
                    );
                    logged_down = true;
                }
            }
        }
        peer.state.set(LinkState::Down);
        peer.drop_queue(&net);
        let delay = backoff.next_delay();
        or(glommio::timer::sleep(delay), net.shutdown.wait()).await;
    }
    peer.state.set(LinkState::Closed);
    peer.drop_queue(&net);
}

/// Dials the peer and exchanges handshakes (and, with a secret, proofs).
async fn dial(net: &Shared, peer: &Peer) -> Result<TcpStream, LinkError> {
    let attempt = async {
        let connect_timeout = net.opts.connect_timeout;
        let mut stream = or(
            async {
                TcpStream::connect_timeout(peer.addr, connect_timeout)
                    .await
                    .map_err(|e| LinkError::Io(e.into()))
            },
            async {
                glommio::timer::sleep(connect_timeout).await;
                Err(LinkError::TimedOut("connect"))
            },
        )
        .await?;
        stream.set_nodelay(true).map_err(io::Error::from)?;
        // The whole exchange within one timeout.
        or(handshake(net, peer, &mut stream), async {
            glommio::timer::sleep(net.opts.handshake_timeout).await;
            Err(LinkError::TimedOut("handshake"))
        })
        .await?;
        Ok(stream)
    };
    let r = or(attempt, async {
        net.shutdown.wait().await;
        Err(LinkError::Shutdown)
    })
    .await;
    if let Err(LinkError::Handshake(
        Error::AuthMissing | Error::AuthUnexpected | Error::AuthRefused | Error::BadProof { .. },
    )) = &r
    {
        net.stats.bump(|s| s.auth_failures += 1);
    }
    r
}

/// Reads exactly `buf.len()` bytes; the end of the stream first means the
/// acceptor closed on us (it refused what we sent: the handshake has no
/// refusal field).
async fn read_exact(
    stream: &mut TcpStream,
    buf: &mut [u8],
    eof: LinkError,
) -> Result<(), LinkError> {
    match stream.read_exact(buf).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(eof),
        Err(e) => Err(LinkError::Io(e)),
    }
}

/// Our handshake, the acceptor's reply checked, and with a secret the
/// proofs: ours first, over the acceptor's nonce, then theirs checked
/// over ours before any frame is sent.
async fn handshake(net: &Shared, peer: &Peer, stream: &mut TcpStream) -> Result<(), LinkError> {
    let key = net.opts.auth;
    let hello = Handshake {
        cluster_id: net.cfg.cluster.id(),
        from_member: net.cfg.member,
        to_member: peer.member,
        from_shard: net.cfg.shard,
        to_shard: peer.shard,
        auth: key.is_some(),
    };
    let hb = hello.encode();
    let nd = match key {
        Some(_) => nonce()?,
        None => [0u8; NONCE_LEN],
    };
    let mut out = [0u8; HANDSHAKE_LEN + NONCE_LEN];
    out[..HANDSHAKE_LEN].copy_from_slice(&hb);
    out[HANDSHAKE_LEN..].copy_from_slice(&nd);
    let sent = if key.is_some() { &out[..] } else { &hb[..] };
    stream.write_all(sent).await?;
    let mut reply = [0u8; HANDSHAKE_LEN];
    read_exact(stream, &mut reply, LinkError::ClosedByPeer).await?;
    net.stats.bump(|s| s.bytes_received += HANDSHAKE_LEN as u64);
    let answer = Handshake::decode(&reply).map_err(LinkError::Handshake)?;
    answer.check_reply(&hello).map_err(LinkError::Handshake)?;
    let Some(key) = key else {
        return Ok(());
    };
    let mut na = [0u8; NONCE_LEN];
    read_exact(stream, &mut na, LinkError::ClosedByPeer).await?;
    let t = Transcript {
        hello: &hb,
        dialler_nonce: &nd,
        reply: &reply,
        acceptor_nonce: &na,
    };
    stream.write_all(&t.dialler_proof(&key)).await?;
    let mut proof = [0u8; PROOF_LEN];
    read_exact(stream, &mut proof, LinkError::Handshake(Error::AuthRefused)).await?;
    net.stats
        .bump(|s| s.bytes_received += (NONCE_LEN + PROOF_LEN) as u64);
    if !t.check_acceptor(&key, &proof) {
        return Err(LinkError::Handshake(Error::BadProof { from: "acceptor" }));
    }
    Ok(())
}

/// Writes flushed frames until the connection fails or shutdown begins;
/// returns why it stopped. The socket is shut down on the way out.
async fn pump(net: &Rc<Shared>, peer: &Rc<Peer>, mut stream: TcpStream) -> LinkError {
    // Nothing is ever read after the handshake on a connection we dialled:
    // a watcher task waits for the socket to become readable, which means
    // the peer closed it (or broke the protocol), so a dead peer is noticed
    // while the connection is idle, not at the next write. It waits on a
    // duplicate of the fd (glommio's stream needs `&mut` to write, and
    // its readiness wait outlives any one write).
    let closed = Rc::new(Cell::new(false));
    // SAFETY: dup returns a new fd (or -1, checked) that we own.
    let dup = unsafe { libc::dup(stream.as_raw_fd()) };
    if dup < 0 {
        return LinkError::Io(io::Error::last_os_error());
    }
    // SAFETY: `dup` is an open socket fd owned by nobody else.
    let watch = unsafe { TcpStream::from_raw_fd(dup) };
    let watcher = {
        let closed = closed.clone();
        let guard = net.task_guard();
        let latch = net.shutdown.clone();
        let peer = peer.clone();
        glommio::spawn_local(async move {
            let _guard = guard;
            or(
                async {
                    let _ = wait_readable(&watch).await;
                },
                latch.wait(),
            )
            .await;
            closed.set(true);
            peer.wake();
        })
        .detach()
    };
    let why = write_loop(net, peer, &mut stream, &closed).await;
    // Wakes the watcher (its read sees the end of the stream) and tells
    // the peer we are gone.
    // SAFETY: the fd is open (the stream is alive).
    unsafe { libc::shutdown(stream.as_raw_fd(), libc::SHUT_RDWR) };
    drop(watcher);
    why
}

async fn write_loop(
    net: &Shared,
    peer: &Peer,
    stream: &mut TcpStream,
    closed: &Cell<bool>,
) -> LinkError {
    let mut writing: Vec<Batch> = Vec::new();
    let mut iov: Vec<libc::iovec> = Vec::new();
    loop {
        if net.shutdown.is_set() {
            return LinkError::Shutdown;
        }
        if closed.get() {
            return LinkError::ClosedByPeer;
        }
        {
            let mut q = peer.queue.borrow_mut();
            writing.extend(q.closed.drain(..));
        }
        if writing.is_empty() {
            peer.work.notified().await;
            continue;
        }
        // Every flushed frame toward this peer, in one vectored write.
        let (mut bytes, mut messages) = (0u64, 0u64);
        iov.clear();
        for b in &mut writing {
            messages += b.groups.len() as u64;
            let frame = b.enc.finish();
            bytes += frame.len() as u64;
            iov.extend(frame.chunks().map(|c| libc::iovec {
                iov_base: c.as_ptr() as *mut libc::c_void,
                iov_len: c.len(),
            }));
        }
        let frames = writing.len() as u64;
        let r = or(
            async {
                write_all_vectored(stream, &mut iov)
                    .await
                    .map_err(LinkError::Io)
            },
            async {
                net.shutdown.wait().await;
                Err(LinkError::Shutdown)
            },
        )
        .await;
        // The pointers in `iov` die with this write.
        iov.clear();
        let mut q = peer.queue.borrow_mut();
        q.bytes -= bytes;
        match r {
            Ok(calls) => {
                net.stats.bump(|s| {
                    s.frames_sent += frames;
                    s.messages_sent += messages;
                    s.bytes_sent += bytes;
                    s.writes += calls;
                });
                let mut reports = net.snapshot_reports.borrow_mut();
                for mut b in writing.drain(..) {
                    reports.extend(b.snaps.iter().map(|&g| (peer.member, g, true)));
                    if q.pool.len() < POOL_MAX {
                        b.clear();
                        q.pool.push(b);
                    }
                }
            }
            Err(e) => {
                let mut unreachable = net.unreachable.borrow_mut();
                let mut reports = net.snapshot_reports.borrow_mut();
                for mut b in writing.drain(..) {
                    reports.extend(b.snaps.iter().map(|&g| (peer.member, g, false)));
                    unreachable.extend(b.groups.iter().map(|&g| (peer.member, g)));
                    if q.pool.len() < POOL_MAX {
                        b.clear();
                        q.pool.push(b);
                    }
                }
                net.stats.bump(|s| s.dropped_unreachable += messages);
                return e;
            }
        }
    }
}
