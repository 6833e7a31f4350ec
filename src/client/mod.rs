//! The Rust client of corelog: synchronous, usable from any thread
//! (`Client` is `Send + Sync`; share it in an `Arc`), and `AsyncClient`
//! for async code on any runtime.
//!
//! - **Shard-aware**: it learns the members (their client addresses and
//!   shard counts) from `ClusterStatus`, and sends a group's requests to
//!   the member's `client_addr + shard_of(group, shards)` port, so they
//!   never hop between cores on the server.
//! - **Follows the leader**: a `NotLeader` answer names the leader's
//!   address for that group; the client remembers it per group and
//!   resends there. With no leader known, or a member that does not hold
//!   the group (`GroupNotFound`), it tries the next member, backing off.
//! - **Pipelined**: each connection carries many requests at once
//!   (`Client::send_append` returns at once; `PendingAppend::wait` takes
//!   the answer), answered in any order.
//! - **Exactly-once**: `Client::append` numbers its batches per group
//!   under the client's random producer id; a retry (after a timeout, a
//!   lost connection, a redirect) resends the same batch, which the group
//!   answers with the offsets its first copy got. If an append fails for
//!   good, that group's producer starts over under a new id (its last
//!   batch's fate is unknown; a new id keeps later appends apart).
//!   Concurrent `append`s to one group take turns on its producer: the
//!   group accepts a producer's batches only in sequence order.
//! - **A timeout on every call** (`ClientOptions::timeout`), retries
//!   included.
//!
//! - **Batching**: `Producer` gathers single records into batches under
//!   load (linger and size knobs), up to 5 batches in flight, exactly once.
//!
//! - **Async**: `AsyncClient` serves the same calls as futures for any
//!   async runtime (tokio included) without blocking the polling thread;
//!   `Producer`'s record handles are futures too.
//!
//! Files: `conn.rs` (one connection: writer, reader thread, waiters),
//! `producer.rs`, `async_client.rs`, `completion.rs` (a value handed
//! between threads, waited for by blocking or awaiting), `error.rs`.

pub mod async_client;
pub mod completion;
pub mod conn;
pub mod error;
pub mod producer;
pub mod turn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use async_client::{AsyncClient, AsyncTail};
pub use conn::{Connection, Stream, Ticket};
pub use error::ClientError;

/// Answers (each at most a frame) a tail holds in the client before it
/// stops reading its socket: the bound on a tail's memory in the client,
/// besides the socket's buffers.
pub const TAIL_BUFFERED_ANSWERS: usize = 4;
pub use producer::{Producer, ProducerOptions, ProducerStats, RecordHandle};

use crate::clientpb::{
    self, AppendRequest, CancelRequest, ClusterStatusRequest, Consistency, GroupStatusRequest,
    MembershipChange, MembershipRequest, ReadRequest, Request, TailRequest, TransferLeaderRequest,
    TruncateRequest, error::Kind, request::Op, response::Result as Answer,
};
use crate::cluster::shard_of;
use crate::log::{BatchBuilder, BatchLimits, RecordBatch};
use crate::protocol::Limits;

/// How a client behaves.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// The longest any call takes, its retries included.
    pub timeout: Duration,
    /// The longest one attempt waits for its answer before the call tries
    /// another member (a leader that hangs without closing its
    /// connections: paused, partitioned). A retried append is the same
    /// batch, so with a producer id it is still written once.
    pub attempt_timeout: Duration,
    /// Connecting to one address.
    pub connect_timeout: Duration,
    /// Frame limit (both ways), as the server's.
    pub limits: Limits,
    /// The batches `append` builds.
    pub batch_limits: BatchLimits,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            limits: Limits::DEFAULT,
            batch_limits: BatchLimits::DEFAULT,
        }
    }
}

/// What an append got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The first record's offset; the batch holds `base_offset..base_offset + count`.
    pub base_offset: u64,
    pub count: u32,
    /// A retry answered with the offsets its first copy got.
    pub duplicate: bool,
}

/// Records read, each with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub records: Vec<(u64, Bytes)>,
    /// The readable range on the replica that answered.
    pub earliest: u64,
    pub latest: u64,
}

#[derive(Debug, Clone)]
struct MemberInfo {
    id: u64,
    client_addr: SocketAddr,
    shards: u32,
}

#[derive(Default)]
struct ProducerSeq {
    /// 0: not chosen yet (taken at the first append).
    id: u64,
    next_seq: u64,
}

#[derive(Default)]
struct State {
    members: Vec<MemberInfo>,
    conns: HashMap<SocketAddr, Arc<Connection>>,
    /// Where each group's leader was last seen.
    leaders: HashMap<u64, SocketAddr>,
    /// Each group's producer, taken in turns for a whole `append`.
    producers: HashMap<u64, Arc<turn::Turn<ProducerSeq>>>,
}

/// A corelog client (see the module doc).
pub struct Client {
    opts: ClientOptions,
    seeds: Vec<SocketAddr>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A random non-zero producer id (the OS's randomness).
pub(crate) fn random_producer_id() -> u64 {
    loop {
        let id = crate::shard::seed::os_random_u64().unwrap_or_else(|_| {
            // No OS randomness: the clock's nanoseconds and the thread.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            t ^ (std::process::id() as u64).rotate_left(32)
        });
        if id != 0 {
            return id;
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether an error answer means "try again, maybe elsewhere".
enum Verdict {
    Done(clientpb::Response),
    /// Resend to this address (a redirect).
    Redirect(SocketAddr),
    /// Resend to another member after a pause.
    Retry,
    /// This member has no such group; another may (with a replication
    /// factor below the member count), or none.
    NotFound(clientpb::Response),
}

impl Client {
    /// Connects through any of `servers` (client addresses of members;
    /// shard 0's is enough) and learns the cluster's members.
    pub fn connect(servers: &[SocketAddr], opts: ClientOptions) -> Result<Client, ClientError> {
        let c = Client {
            opts,
            seeds: servers.to_vec(),
            state: Mutex::new(State::default()),
        };
        c.refresh_members()?;
        Ok(c)
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Asks the seeds (then known members) for the cluster's status and
    /// remembers its members.
    pub fn cluster_status(&self) -> Result<clientpb::ClusterStatus, ClientError> {
        let deadline = Instant::now() + self.opts.timeout;
        let mut addrs = self.seeds.clone();
        addrs.extend(lock(&self.state).members.iter().map(|m| m.client_addr));
        let mut last = ClientError::NoMember("no server address given".into());
        for addr in addrs {
            let req = Request {
                op: Some(Op::ClusterStatus(ClusterStatusRequest {})),
            };
            match self.call(addr, &req, deadline) {
                Ok(clientpb::Response {
                    result: Some(Answer::ClusterStatus(s)),
                }) => return Ok(s),
                Ok(other) => last = ClientError::Protocol(format!("unexpected answer {other:?}")),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(last)
    }

    fn refresh_members(&self) -> Result<(), ClientError> {
        let s = self.cluster_status()?;
        let mut members = Vec::new();
        for m in s.members {
            let addr: SocketAddr = m.client_address.parse().map_err(|_| {
                ClientError::Protocol(format!("member {} address {:?}", m.id, m.client_address))
            })?;
            members.push(MemberInfo {
                id: m.id,
                client_addr: addr,
                shards: m.shards.max(1),
            });
        }
        lock(&self.state).members = members;
        Ok(())
    }

    fn member_count(&self) -> usize {
        lock(&self.state).members.len().max(1)
    }

    /// The members' ids, as the cluster last said.
    pub fn member_ids(&self) -> Vec<u64> {
        lock(&self.state).members.iter().map(|m| m.id).collect()
    }

    /// The client port of `group`'s shard on member `member`.
    pub fn address_of(&self, member: u64, group: u64) -> Option<SocketAddr> {
        let st = lock(&self.state);
        let m = st.members.iter().find(|m| m.id == member)?;
        let mut a = m.client_addr;
        a.set_port(a.port().checked_add(shard_of(group, m.shards) as u16)?);
        Some(a)
    }

    /// A connection to `addr`, reused while it lives.
    fn connection(&self, addr: SocketAddr) -> Result<Arc<Connection>, ClientError> {
        if let Some(c) = lock(&self.state).conns.get(&addr) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(Connection::open(
            addr,
            self.opts.connect_timeout,
            self.opts.limits,
        )?);
        lock(&self.state).conns.insert(addr, c.clone());
        Ok(c)
    }

    fn call(
        &self,
        addr: SocketAddr,
        req: &Request,
        deadline: Instant,
    ) -> Result<clientpb::Response, ClientError> {
        self.connection(addr)?.send(req)?.wait(deadline)
    }

    /// The addresses to try for `group`: its leader as last seen, then
    /// each member's shard for it, starting after `turn`.
    fn candidates(&self, group: u64, turn: usize) -> Vec<SocketAddr> {
        let st = lock(&self.state);
        let mut out = Vec::new();
        if let Some(a) = st.leaders.get(&group) {
            out.push(*a);
        }
        let n = st.members.len();
        for k in 0..n {
            let m = &st.members[(turn + k) % n];
            let mut a = m.client_addr;
            if let Some(p) = a.port().checked_add(shard_of(group, m.shards) as u16) {
                a.set_port(p);
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }

    fn judge(&self, group: u64, resp: clientpb::Response) -> Verdict {
        let Some(Answer::Error(e)) = &resp.result else {
            return Verdict::Done(resp);
        };
        match &e.kind {
            Some(Kind::NotLeader(nl)) => match nl.leader_address.parse::<SocketAddr>() {
                Ok(a) => {
                    lock(&self.state).leaders.insert(group, a);
                    Verdict::Redirect(a)
                }
                Err(_) => {
                    lock(&self.state).leaders.remove(&group);
                    Verdict::Retry
                }
            },
            Some(Kind::GroupNotFound(_)) => {
                lock(&self.state).leaders.remove(&group);
                Verdict::NotFound(resp)
            }
            // A member that cannot serve the group (its storage failed, it
            // could not commit in time) may be the leader we remembered and
            // never answer NotLeader: forget it, so the next attempt goes
            // round the members and finds who leads now. Busy is a leader
            // under load: keep it.
            Some(Kind::Unavailable(_) | Kind::Timeout(_)) => {
                lock(&self.state).leaders.remove(&group);
                Verdict::Retry
            }
            Some(Kind::Busy(_)) => Verdict::Retry,
            _ => Verdict::Done(resp),
        }
    }

    /// Sends `req` about `group` until an answer that is not a redirect
    /// or a passing refusal, or the deadline. `sent`: a ticket already in
    /// flight to `addr` (a pipelined request).
    fn call_group(
        &self,
        group: u64,
        req: &Request,
        deadline: Instant,
        mut sent: Option<(SocketAddr, Ticket)>,
    ) -> Result<clientpb::Response, ClientError> {
        let mut turn = 0usize;
        let mut pause = Duration::from_millis(5);
        let mut not_found = std::collections::HashSet::new();
        // A member that did not answer in time: tried last.
        let mut silent: Option<SocketAddr> = None;
        let mut next: Option<SocketAddr> = None;
        loop {
            let (addr, ticket) = match sent.take() {
                Some(s) => s,
                None => {
                    let addr = match next.take() {
                        Some(a) => a,
                        None => {
                            let c = self.candidates(group, turn);
                            turn += 1;
                            match c.iter().find(|a| Some(**a) != silent).or(c.first()) {
                                Some(a) => *a,
                                None => {
                                    return Err(ClientError::NoMember(
                                        "the cluster lists no members".into(),
                                    ));
                                }
                            }
                        }
                    };
                    match self.connection(addr).and_then(|c| c.send(req)) {
                        Ok(t) => (addr, t),
                        Err(e) => {
                            lock(&self.state).leaders.remove(&group);
                            if !self.pause(&mut pause, deadline) {
                                return Err(e);
                            }
                            continue;
                        }
                    }
                }
            };
            let attempt = deadline.min(Instant::now() + self.opts.attempt_timeout);
            match ticket.wait(attempt) {
                Ok(resp) => match self.judge(group, resp) {
                    Verdict::Done(r) => return Ok(r),
                    Verdict::NotFound(r) => {
                        // Every member said it has no such group: it
                        // does not exist (not a member without a replica).
                        not_found.insert(addr);
                        if not_found.len() >= self.member_count() {
                            return Ok(r);
                        }
                        if !self.pause(&mut pause, deadline) {
                            return Ok(r);
                        }
                    }
                    Verdict::Redirect(a) if a != addr => next = Some(a),
                    Verdict::Redirect(_) | Verdict::Retry => {
                        if !self.pause(&mut pause, deadline) {
                            return Err(ClientError::Timeout);
                        }
                    }
                },
                Err(ClientError::Timeout) if Instant::now() >= deadline => {
                    return Err(ClientError::Timeout);
                }
                Err(e) => {
                    // The connection failed, or this member did not
                    // answer in time: another member may lead now.
                    if e == ClientError::Timeout {
                        silent = Some(addr);
                    }
                    lock(&self.state).leaders.remove(&group);
                    if !self.pause(&mut pause, deadline) {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Sleeps before a retry (doubling up to 200 ms); false if the
    /// deadline passed.
    fn pause(&self, pause: &mut Duration, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((*pause).min(deadline - now));
        *pause = (*pause * 2).min(Duration::from_millis(200));
        Instant::now() < deadline
    }

    /// Appends `records` to `group` as one batch, exactly once: numbered
    /// under this client's producer id for the group, retried (same
    /// bytes) through redirects and failures until the timeout. Safe from
    /// many threads at once: calls for the same group take turns (one
    /// batch of a producer in flight at a time; `Producer` keeps several
    /// in flight, in order), calls for different groups do not wait for
    /// each other.
    pub fn append(&self, group: u64, records: &[&[u8]]) -> Result<Appended, ClientError> {
        let deadline = Instant::now() + self.opts.timeout;
        let producer = lock(&self.state)
            .producers
            .entry(group)
            .or_insert_with(|| Arc::new(turn::Turn::new(ProducerSeq::default())))
            .clone();
        // Held until the batch is settled: the group takes a producer's
        // batches only in sequence order, so a batch numbered after
        // another must not be sent (or resent, after a redirect) before
        // that one landed. Concurrent appends to one group through one
        // client therefore go one at a time (`Producer` pipelines them);
        // waiting for the turn counts in the call's timeout.
        let Some(mut p) = producer.take(deadline) else {
            return Err(ClientError::Timeout);
        };
        if p.id == 0 {
            p.id = random_producer_id();
        }
        let batch = self.build_batch(p.id, p.next_seq, records)?;
        let r = self.send_append_until(group, batch, deadline).wait();
        match &r {
            Ok(_) => p.next_seq += records.len() as u64,
            Err(_) => {
                // The batch's fate is unknown: start over under a new id,
                // so that a later batch is not refused for a gap (or
                // taken for this one).
                *p = ProducerSeq {
                    id: random_producer_id(),
                    next_seq: 0,
                };
            }
        }
        r
    }

    /// A batch of `records` (producer 0: no deduplication).
    pub fn build_batch(
        &self,
        producer_id: u64,
        seq: u64,
        records: &[&[u8]],
    ) -> Result<Bytes, ClientError> {
        let mut b = BatchBuilder::new(self.opts.batch_limits);
        let mut w = b.start(producer_id, seq, now_ms());
        for r in records {
            w.push(r)
                .map_err(|e| ClientError::TooLarge(e.to_string()))?;
        }
        w.finish().map_err(|e| ClientError::TooLarge(e.to_string()))
    }

    /// Sends a ready batch to `group`'s leader (as last seen) at once and
    /// returns; `PendingAppend::wait` takes the answer, following
    /// redirects and resending the same bytes on failures. Many may be in
    /// flight on one connection.
    pub fn send_append(&self, group: u64, batch: Bytes) -> PendingAppend<'_> {
        self.send_append_until(group, batch, Instant::now() + self.opts.timeout)
    }

    fn send_append_until(&self, group: u64, batch: Bytes, deadline: Instant) -> PendingAppend<'_> {
        let req = Request {
            op: Some(Op::Append(AppendRequest { group, batch })),
        };
        let sent = self.candidates(group, 0).first().copied().and_then(|addr| {
            let t = self.connection(addr).and_then(|c| c.send(&req)).ok()?;
            Some((addr, t))
        });
        PendingAppend {
            client: self,
            group,
            req,
            deadline,
            sent,
        }
    }

    /// Reads up to `max_records` committed records of `group` from
    /// `offset` (0: the server's limit).
    pub fn read(
        &self,
        group: u64,
        offset: u64,
        max_records: u32,
        consistency: Consistency,
    ) -> Result<ReadResult, ClientError> {
        let deadline = Instant::now() + self.opts.timeout;
        let req = Request {
            op: Some(Op::Read(ReadRequest {
                group,
                offset,
                max_records,
                max_bytes: 0,
                consistency: consistency as i32,
            })),
        };
        let resp = self.call_group(group, &req, deadline, None)?;
        let r = match resp.result {
            Some(Answer::Read(r)) => r,
            Some(Answer::Error(e)) => return Err(server_error(e)),
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected answer {other:?}"
                )));
            }
        };
        let mut records = Vec::new();
        for b in r.batches {
            let batch = RecordBatch::parse(&b.batch, &BatchLimits::CEILING)
                .map_err(|e| ClientError::Protocol(format!("a batch read back: {e}")))?;
            for (k, rec) in batch.records().enumerate() {
                let off = b.base_offset + k as u64;
                if off >= offset && (max_records == 0 || records.len() < max_records as usize) {
                    records.push((off, rec));
                }
            }
        }
        Ok(ReadResult {
            records,
            earliest: r.earliest,
            latest: r.latest,
        })
    }

    /// `group`'s status from its leader (or, without one, any member
    /// holding it).
    pub fn group_status(&self, group: u64) -> Result<clientpb::GroupStatus, ClientError> {
        let deadline = Instant::now() + self.opts.timeout;
        let req = Request {
            op: Some(Op::GroupStatus(GroupStatusRequest { group })),
        };
        // Any member holding the group answers; prefer the leader's view.
        let mut best: Option<clientpb::GroupStatus> = None;
        for addr in self.candidates(group, 0) {
            if let Ok(clientpb::Response {
                result: Some(Answer::GroupStatus(s)),
            }) = self.call(addr, &req, deadline)
            {
                let leads = s.leader != 0;
                if best
                    .as_ref()
                    .is_none_or(|b| s.term > b.term || (leads && b.leader == 0))
                {
                    best = Some(s);
                }
            }
        }
        best.ok_or_else(|| ClientError::NoMember(format!("no member answered for group {group}")))
    }

    /// Changes `group`'s membership (through its leader); returns once
    /// the change is applied there.
    pub fn membership(
        &self,
        group: u64,
        change: MembershipChange,
        member: u64,
    ) -> Result<(), ClientError> {
        let req = Request {
            op: Some(Op::Membership(MembershipRequest {
                group,
                change: change as i32,
                member,
            })),
        };
        self.call_done(group, &req)
    }

    /// Asks `group`'s leader to hand leadership to `to`; returns at once
    /// (the move takes up to an election timeout, or does not happen).
    pub fn transfer_leader(&self, group: u64, to: u64) -> Result<(), ClientError> {
        let req = Request {
            op: Some(Op::TransferLeader(TransferLeaderRequest {
                group,
                to_member: to,
            })),
        };
        self.call_done(group, &req)
    }

    fn call_done(&self, group: u64, req: &Request) -> Result<(), ClientError> {
        let deadline = Instant::now() + self.opts.timeout;
        match self.call_group(group, req, deadline, None)?.result {
            Some(Answer::Done(_)) => Ok(()),
            Some(Answer::Error(e)) => Err(server_error(e)),
            other => Err(ClientError::Protocol(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Drops `group`'s records below `before_offset`; the earliest offset
    /// afterwards.
    pub fn truncate(&self, group: u64, before_offset: u64) -> Result<u64, ClientError> {
        let deadline = Instant::now() + self.opts.timeout;
        let req = Request {
            op: Some(Op::Truncate(TruncateRequest {
                group,
                before_offset,
            })),
        };
        match self.call_group(group, &req, deadline, None)?.result {
            Some(Answer::Truncate(t)) => Ok(t.earliest_offset),
            Some(Answer::Error(e)) => Err(server_error(e)),
            other => Err(ClientError::Protocol(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }
}

impl Client {
    /// Follows `group` from `offset` on: `Tail::next` hands out records
    /// as they are committed, from one member holding the group (any
    /// replica: a committed prefix). If that member goes away the tail
    /// resumes on another from the next offset.
    pub fn tail(&self, group: u64, offset: u64) -> Tail<'_> {
        Tail {
            client: self,
            group,
            offset,
            open: None,
            turn: 0,
        }
    }
}

/// A tail (`Client::tail`).
pub struct Tail<'a> {
    client: &'a Client,
    group: u64,
    /// The offset of the next record to hand out.
    offset: u64,
    open: Option<(Arc<Connection>, Stream)>,
    turn: usize,
}

impl Tail<'_> {
    /// The offset the next record will have.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Answers received from the server and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.open.as_ref().map_or(0, |(_, s)| s.queued())
    }

    /// The next records (at least one), waiting at most `timeout`
    /// (`Timeout` if none was committed meanwhile). Typed errors from
    /// the server (`OffsetOutOfRange`, ...) end the call, not the tail.
    pub fn next(&mut self, timeout: Duration) -> Result<Vec<(u64, Bytes)>, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            if self.open.is_none() {
                if let Err(e) = self.open() {
                    if !self.client.pause(&mut pause, deadline) {
                        return Err(e);
                    }
                    continue;
                }
            }
            let Some((_, stream)) = &self.open else {
                continue;
            };
            match stream.next(deadline) {
                Ok(resp) => match resp.result {
                    Some(Answer::Read(r)) => {
                        let mut out = Vec::new();
                        for b in r.batches {
                            let batch = RecordBatch::parse(&b.batch, &BatchLimits::CEILING)
                                .map_err(|e| {
                                    ClientError::Protocol(format!("a tailed batch: {e}"))
                                })?;
                            for (k, rec) in batch.records().enumerate() {
                                let off = b.base_offset + k as u64;
                                if off >= self.offset {
                                    out.push((off, rec));
                                }
                            }
                        }
                        if let Some(last) = out.last() {
                            self.offset = last.0 + 1;
                            return Ok(out);
                        }
                    }
                    Some(Answer::Error(e)) => {
                        // The tail ended on the server.
                        self.close();
                        match e.kind {
                            Some(Kind::GroupNotFound(_) | Kind::Unavailable(_)) => {
                                self.turn += 1;
                                if !self.client.pause(&mut pause, deadline) {
                                    return Err(ClientError::Timeout);
                                }
                            }
                            _ => return Err(server_error(e)),
                        }
                    }
                    other => {
                        return Err(ClientError::Protocol(format!(
                            "unexpected answer {other:?}"
                        )));
                    }
                },
                Err(ClientError::Timeout) => return Err(ClientError::Timeout),
                Err(_) => {
                    // The member went away: resume on another.
                    self.open = None;
                    self.turn += 1;
                    if !self.client.pause(&mut pause, deadline) {
                        return Err(ClientError::Timeout);
                    }
                }
            }
        }
    }

    fn open(&mut self) -> Result<(), ClientError> {
        let req = Request {
            op: Some(Op::Tail(TailRequest {
                group: self.group,
                offset: self.offset,
                max_bytes_in_flight: 0,
            })),
        };
        // Members in turn, not the leader first: any replica serves.
        let st = lock(&self.client.state);
        let n = st.members.len().max(1);
        let m = st.members.get(self.turn % n).cloned();
        drop(st);
        let Some(m) = m else {
            return Err(ClientError::NoMember("the cluster lists no members".into()));
        };
        let mut addr = m.client_addr;
        addr.set_port(
            addr.port()
                .wrapping_add(shard_of(self.group, m.shards) as u16),
        );
        // A connection of its own: a consumer that stops taking records
        // stops this connection's reader, which must hold up nothing else.
        let o = &self.client.opts;
        let conn = Arc::new(Connection::open(addr, o.connect_timeout, o.limits)?);
        let stream = conn.send_stream(&req, TAIL_BUFFERED_ANSWERS)?;
        self.open = Some((conn, stream));
        Ok(())
    }

    /// Cancels the tail on the server (if open).
    fn close(&mut self) {
        if let Some((conn, stream)) = self.open.take() {
            let req = Request {
                op: Some(Op::Cancel(CancelRequest {
                    request_id: stream.id(),
                })),
            };
            let _ = conn.send(&req);
            conn.end_stream(stream.id());
        }
    }
}

impl Drop for Tail<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

fn server_error(e: clientpb::Error) -> ClientError {
    match e.kind {
        Some(k) => ClientError::Server(k),
        None => ClientError::Protocol("an error of no kind".into()),
    }
}

/// An append in flight (`Client::send_append`).
pub struct PendingAppend<'a> {
    client: &'a Client,
    group: u64,
    req: Request,
    deadline: Instant,
    sent: Option<(SocketAddr, Ticket)>,
}

impl PendingAppend<'_> {
    /// The append's offsets once committed; redirects followed and the
    /// same bytes resent on failures until the client's timeout.
    pub fn wait(self) -> Result<Appended, ClientError> {
        let resp = self
            .client
            .call_group(self.group, &self.req, self.deadline, self.sent)?;
        match resp.result {
            Some(Answer::Append(a)) => Ok(Appended {
                base_offset: a.base_offset,
                count: a.count,
                duplicate: a.duplicate,
            }),
            Some(Answer::Error(e)) => Err(server_error(e)),
            other => Err(ClientError::Protocol(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }
}
