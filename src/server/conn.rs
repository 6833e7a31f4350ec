//! One client connection: read frames, hand each request to a task of its
//! own (many in flight, answered in any order under their request ids),
//! write the answers. One task owns the socket; it reads when it may and
//! writes what the request tasks answered.
//!
//! Bounded: a connection may hold at most `max_connection_bytes`
//! unanswered: each request admitted is charged its frame's bytes plus
//! the most its answer can take (a read's byte bound plus one batch; a
//! small allowance for anything else), released when its answer is
//! written. At the bound the connection stops reading (TCP pushes back on
//! the client) until answers drain; a client that never reads its answers
//! exhausts only its own budget. The shard bounds the sum over its
//! connections too (`max_shard_bytes`): at that bound every connection
//! waiting to admit a request stops reading until some answer is written.
//!
//! A connection with nothing in flight, nothing to write and nothing
//! waiting for room that receives nothing for `idle_timeout` is closed.
//!
//! With a secret, the connection first authenticates (`auth_conn`); one
//! that fails is closed before any frame is read.
//!
//! What closes a connection (that one only, never the process): a frame
//! whose length is above `max_frame_bytes` (refused from its header,
//! before anything is reserved for it) or whose crc does not match. A
//! sound frame whose payload is not a request is answered `Malformed` or
//! `UnknownOperation` and the connection goes on.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures_lite::future::or;
use glommio::net::TcpStream;

use super::answer_wire::encode_answer;
use super::config::ConnLimits;
use super::listener::ShardServer;
use super::ops;
use super::signal::{Notify, Watch};
use super::tail;
use crate::clientpb::{self, error::Kind, request::Op};
use crate::protocol::{FRAME_HEADER_LEN, Frame, decode_request, split_frame};
use crate::transport::sock;

/// What one answer is charged besides its frame, unless it is a read's.
const ANSWER_ALLOWANCE: u64 = 1024;

/// Receive buffer reserved per read call.
const READ_CHUNK: usize = 64 << 10;

/// What a connection's request tasks share with the connection's task.
pub struct ConnState {
    /// Encoded answers not yet written, as pieces for one vectored write
    /// (a read answer's batches are their own buffers: not copied).
    out: RefCell<Vec<Bytes>>,
    /// Bytes in `out`.
    out_bytes: Cell<usize>,
    /// Where the small pieces are encoded before they are split off.
    scratch: RefCell<BytesMut>,
    /// Bytes charged to requests whose answers are not yet written.
    charged: Cell<u64>,
    /// Charges of answers in `out` (released once written).
    out_charge: Cell<u64>,
    /// Requests whose answers are not yet in `out`.
    inflight: Cell<usize>,
    /// An answer arrived, or the server stops.
    pub(crate) wake: Notify,
    /// Close at once (the server's grace period ended).
    close: Cell<bool>,
    closing: Notify,
    /// The connection's task ended: its tails end too.
    ended: Cell<bool>,
    /// Moved when answers are written, a tail is cancelled, or the
    /// connection stops or ends: what tails wait on besides new records.
    pub(crate) events: Watch,
    /// Running tails by request id, with their cancel flags.
    tails: RefCell<HashMap<u64, Rc<Cell<bool>>>>,
    limits: ConnLimits,
    /// The shard's budget, which `charged` counts in until the
    /// connection ends.
    budget: Rc<ShardBudget>,
    /// `charged` was given back to the shard (the connection ended): what
    /// its tasks still do is not the shard's any more.
    detached: Cell<bool>,
}

/// The bytes all of a shard's connections hold (the sum of their
/// `charged`), against `max_shard_bytes`.
pub struct ShardBudget {
    used: Cell<u64>,
    max: u64,
    /// Moved when bytes are given back: connections waiting for room.
    pub(crate) freed: Watch,
}

impl ShardBudget {
    pub(crate) fn new(max: u64) -> ShardBudget {
        ShardBudget {
            used: Cell::new(0),
            max,
            freed: Watch::default(),
        }
    }

    /// Bytes held by the shard's connections now.
    pub fn used(&self) -> u64 {
        self.used.get()
    }
}

impl ConnState {
    pub(crate) fn new(limits: &ConnLimits, budget: Rc<ShardBudget>) -> ConnState {
        ConnState {
            out: RefCell::new(Vec::new()),
            out_bytes: Cell::new(0),
            scratch: RefCell::new(BytesMut::new()),
            charged: Cell::new(0),
            out_charge: Cell::new(0),
            inflight: Cell::new(0),
            wake: Notify::default(),
            close: Cell::new(false),
            closing: Notify::default(),
            ended: Cell::new(false),
            events: Watch::default(),
            tails: RefCell::default(),
            limits: *limits,
            budget,
            detached: Cell::new(false),
        }
    }

    fn charge(&self, n: u64) {
        self.charged.set(self.charged.get() + n);
        if !self.detached.get() {
            self.budget.used.set(self.budget.used.get() + n);
        }
    }

    fn release(&self, n: u64) {
        self.charged.set(self.charged.get() - n);
        if !self.detached.get() {
            self.budget.used.set(self.budget.used.get() - n);
            self.budget.freed.bump();
        }
    }

    /// The connection ended: what it holds goes back to the shard (its
    /// answers will never be written; tasks still running finish on
    /// their own).
    fn detach(&self) {
        if !self.detached.replace(true) {
            let n = self.charged.get();
            self.budget.used.set(self.budget.used.get() - n);
            self.budget.freed.bump();
        }
    }

    pub(crate) fn close_now(&self) {
        self.close.set(true);
        self.closing.notify();
        self.wake.notify();
        self.events.bump();
    }

    /// The server stops: the connection's task and its tails look again.
    pub(crate) fn stop_signal(&self) {
        self.wake.notify();
        self.events.bump();
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended.get() || self.close.get()
    }

    /// Answer bytes queued and not yet written.
    pub(crate) fn unwritten(&self) -> usize {
        self.out_bytes.get()
    }

    /// Queues `resp`'s frame; its size, or the error if it is above the
    /// frame limit (nothing queued then).
    fn queue(
        &self,
        id: u64,
        resp: &clientpb::Response,
    ) -> Result<usize, crate::protocol::FrameError> {
        let mut out = self.out.borrow_mut();
        let before = out.len();
        encode_answer(
            id,
            resp,
            &self.limits.protocol,
            &mut self.scratch.borrow_mut(),
            &mut out,
        )?;
        let n: usize = out[before..].iter().map(Bytes::len).sum();
        self.out_bytes.set(self.out_bytes.get() + n);
        Ok(n)
    }

    pub(crate) fn register_tail(&self, id: u64) -> Rc<Cell<bool>> {
        let flag = Rc::new(Cell::new(false));
        self.tails.borrow_mut().insert(id, flag.clone());
        flag
    }

    pub(crate) fn cancel_tail(&self, id: u64) {
        if let Some(f) = self.tails.borrow().get(&id) {
            f.set(true);
        }
        self.events.bump();
    }

    fn cancel_all_tails(&self) {
        for f in self.tails.borrow().values() {
            f.set(true);
        }
        self.events.bump();
    }

    /// Tail `id` ended: its admission charge is released (once what it
    /// queued is written, or now if nothing waits).
    pub(crate) fn end_tail(&self, id: u64, charge: u64) {
        self.tails.borrow_mut().remove(&id);
        self.inflight.set(self.inflight.get() - 1);
        if self.out_bytes.get() == 0 {
            self.release(charge);
        } else {
            self.out_charge.set(self.out_charge.get() + charge);
        }
        self.wake.notify();
    }

    /// Queues one of a tail's answers under its request id; charged to
    /// the connection's budget until written. Nothing is queued if the
    /// answer is above the frame limit.
    pub(crate) fn stream(
        &self,
        id: u64,
        resp: &clientpb::Response,
    ) -> Result<(), crate::protocol::FrameError> {
        let n = self.queue(id, resp)? as u64;
        self.charge(n);
        self.out_charge.set(self.out_charge.get() + n);
        self.wake.notify();
        Ok(())
    }

    /// A tail's last answer (an error, usually): queued, or if it cannot
    /// be, `TooLarge` in its place, so the client learns the tail ended.
    pub(crate) fn end_with_answer(&self, id: u64, resp: &clientpb::Response) {
        if let Err(e) = self.stream(id, resp) {
            self.end_with(id, e);
        }
    }

    /// Ends a tail whose answer did not fit a frame with `TooLarge`.
    pub(crate) fn end_with(&self, id: u64, e: crate::protocol::FrameError) {
        let _ = self.stream(id, &self.too_large(e));
    }

    fn too_large(&self, e: crate::protocol::FrameError) -> clientpb::Response {
        ops::error(Kind::TooLarge(clientpb::TooLarge {
            what: "answer frame bytes".into(),
            value: match e {
                crate::protocol::FrameError::Limit { value, .. } => value,
                _ => 0,
            },
            limit: u64::from(self.limits.protocol.max_frame_bytes),
        }))
    }

    /// Queues the answer to request `id`, which was charged `charge`.
    fn answer(&self, id: u64, resp: &clientpb::Response, charge: u64) {
        if let Err(e) = self.queue(id, resp) {
            // An answer above the frame limit (the limits are checked
            // against each other at startup, so this is a bug): say so
            // rather than leave the request unanswered.
            let _ = self.queue(id, &self.too_large(e));
        }
        self.inflight.set(self.inflight.get() - 1);
        self.out_charge.set(self.out_charge.get() + charge);
        self.wake.notify();
    }

    /// Whether a tail may queue one more answer (at most a frame) and
    /// stay within the connection's budget and the shard's.
    pub(crate) fn room_for_frame(&self) -> bool {
        let frame = (FRAME_HEADER_LEN as u64) + u64::from(self.limits.protocol.max_frame_bytes);
        self.charged.get() + frame <= self.limits.max_connection_bytes
            && self.budget.used.get() + frame <= self.budget.max
    }

    /// Whether a request charged `charge` may be admitted now: within
    /// the connection's budget (always, if it holds nothing: else it
    /// would wait for ever) and the shard's.
    fn admit(&self, charge: u64) -> bool {
        let used = self.charged.get();
        let conn = used == 0 || used + charge <= self.limits.max_connection_bytes;
        conn && self.budget.used.get() + charge <= self.budget.max
    }
}

/// What a request is charged: its frame and the most its answer takes.
fn charge_of(frame: &Frame, op: Option<&Op>, limits: &ConnLimits) -> u64 {
    let answer = match op {
        Some(Op::Read(r)) => {
            let b = crate::protocol::read_bounds(r, &limits.protocol);
            u64::from(b.max_bytes) + u64::from(limits.batch.max_batch_bytes) + ANSWER_ALLOWANCE
        }
        _ => ANSWER_ALLOWANCE,
    };
    (FRAME_HEADER_LEN + frame.payload.len()) as u64 + answer
}

/// Serves one connection until the client closes it, it sends a frame
/// that cannot be trusted, or the server stops.
pub(crate) async fn serve(srv: &Rc<ShardServer>, mut stream: TcpStream, st: &Rc<ConnState>) {
    let admitted = match &srv.auth {
        Some(key) => super::auth_conn::authenticate(srv, &mut stream, key).await,
        None => true,
    };
    if admitted {
        serve_until_done(srv, stream, st).await;
    }
    st.detach();
    st.ended.set(true);
    st.events.bump();
}

async fn serve_until_done(srv: &Rc<ShardServer>, mut stream: TcpStream, st: &Rc<ConnState>) {
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    // A request decoded but waiting for the connection's budget.
    let mut parked: Option<(Frame, Result<Op, clientpb::Error>, u64)> = None;
    let mut eof = false;
    loop {
        if st.close.get() {
            return;
        }
        let stopping = srv.stopping.is_set();
        let budget_seen = st.budget.freed.get();
        // 1. Admit what was read, as the budgets allow.
        if !stopping {
            loop {
                if parked.is_none() {
                    match split_frame(&mut rbuf, &srv.limits.protocol) {
                        Ok(Some(f)) => {
                            let op = decode_request(&f, &srv.limits.batch);
                            let charge = charge_of(&f, op.as_ref().ok(), &srv.limits);
                            parked = Some((f, op, charge));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            srv.bump(|s| s.bad_frames += 1);
                            tracing::warn!(
                                shard = srv.shard.index(),
                                error = %e,
                                "client connection closed: a frame that cannot be trusted"
                            );
                            // Answers already queued still go out.
                            let _ = write_out(&mut stream, st).await;
                            return;
                        }
                    }
                }
                let Some((_, _, charge)) = &parked else { break };
                if !st.admit(*charge) {
                    break;
                }
                let Some((f, op, charge)) = parked.take() else {
                    break;
                };
                dispatch(srv, st, f, op, charge);
            }
        }
        // 2. Write what was answered.
        if write_out(&mut stream, st).await.is_err() {
            return;
        }
        // 3. Done, or wait for bytes or answers.
        let idle = st.inflight.get() == 0 && st.out_bytes.get() == 0;
        if (stopping || eof) && idle {
            return;
        }
        let can_read = !stopping && !eof && parked.is_none();
        if can_read {
            // Nothing in flight, nothing to write, nothing waiting for
            // room: the client may send for `idle_timeout`, then it goes.
            let timer = async {
                if idle {
                    glommio::timer::sleep(srv.limits.idle_timeout).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let got = or(
                async { Some(read_some(&stream, &mut rbuf).await) },
                or(
                    async {
                        st.wake.notified().await;
                        None
                    },
                    async {
                        timer.await;
                        Some(Err(io::Error::from(io::ErrorKind::TimedOut)))
                    },
                ),
            )
            .await;
            if let Some(Err(e)) = &got {
                if e.kind() == io::ErrorKind::TimedOut {
                    srv.bump(|s| s.idle_closed += 1);
                }
            }
            match got {
                Some(Ok(0)) => {
                    // The client sent its last byte (closed, or shut down
                    // its sending side): no `Cancel` can come any more, so
                    // its tails end now rather than when (if ever) their
                    // next record is applied. Answers in flight still go.
                    eof = true;
                    st.cancel_all_tails();
                }
                Some(Ok(_)) | None => {}
                Some(Err(_)) => return,
            }
        } else if parked.is_some() && !stopping {
            // Waiting for room: in this connection's budget (its answers
            // being written) or the shard's (any connection's).
            or(st.wake.notified(), st.budget.freed.changed(budget_seen)).await;
        } else {
            st.wake.notified().await;
        }
    }
}

/// Hands a request to a task of its own, or answers a refused one at once.
fn dispatch(
    srv: &Rc<ShardServer>,
    st: &Rc<ConnState>,
    f: Frame,
    op: Result<Op, clientpb::Error>,
    charge: u64,
) {
    srv.bump(|s| s.requests += 1);
    st.charge(charge);
    st.inflight.set(st.inflight.get() + 1);
    match op {
        Err(e) => {
            let resp = clientpb::Response {
                result: Some(clientpb::response::Result::Error(e)),
            };
            srv.count_answer(&resp);
            st.answer(f.request_id, &resp, charge);
        }
        Ok(Op::Tail(t)) => {
            glommio::spawn_local(tail::run(srv.clone(), st.clone(), f.request_id, t, charge))
                .detach();
        }
        Ok(Op::Cancel(c)) => {
            let resp = tail::cancel(st, c.request_id);
            srv.count_answer(&resp);
            st.answer(f.request_id, &resp, charge);
        }
        Ok(op) => {
            let (srv, st) = (srv.clone(), st.clone());
            glommio::spawn_local(async move {
                let resp = ops::handle(&srv, op).await;
                srv.count_answer(&resp);
                st.answer(f.request_id, &resp, charge);
            })
            .detach();
        }
    }
}

/// Writes every queued answer, then releases their charges.
async fn write_out(stream: &mut TcpStream, st: &ConnState) -> io::Result<()> {
    loop {
        let mut out = std::mem::take(&mut *st.out.borrow_mut());
        if out.is_empty() {
            return Ok(());
        }
        st.out_bytes.set(0);
        let charge = st.out_charge.replace(0);
        // A client that does not read blocks this write; the server's
        // stop ends it once its grace period is over.
        let r = or(async { Some(write_pieces(stream, &out).await) }, async {
            st.closing.notified().await;
            None
        })
        .await;
        match r {
            Some(Ok(())) => {
                st.release(charge);
                st.events.bump();
            }
            Some(Err(e)) => return Err(e),
            None => return Err(io::Error::other("closed by the server's stop")),
        }
        // Give the vector's capacity back for the next answers.
        out.clear();
        let mut o = st.out.borrow_mut();
        if o.is_empty() {
            *o = out;
        }
    }
}

/// Writes every byte of `pieces`, in order: one `iovec` per piece, written
/// by the peer network's vectored write (`sendmsg` of up to `MAX_IOV`
/// slices, non-blocking, waiting through glommio when the socket is full).
async fn write_pieces(stream: &mut TcpStream, pieces: &[Bytes]) -> io::Result<()> {
    let mut iov: Vec<libc::iovec> = pieces
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    // `pieces` outlives the call and is not touched meanwhile: the
    // buffers behind `iov` stay valid, as `write_all_vectored` requires.
    sock::write_all_vectored(stream, &mut iov).await.map(|_| ())
}

/// Reads what the socket has (at least one byte, or 0 at the end of the
/// stream) into `buf`'s spare capacity; sleeps until bytes arrive. The
/// wait is glommio's `peek`, which consumes nothing, so dropping this
/// future (an answer arrived first) loses no byte.
async fn read_some(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    sock::read_some(stream, buf, 4096, READ_CHUNK).await
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::clientpb::{AppendRequest, ReadRequest};

    fn frame(len: usize) -> Frame {
        Frame {
            request_id: 1,
            payload: Bytes::from(vec![0; len]),
        }
    }

    #[test]
    fn a_read_is_charged_the_most_its_answer_takes_anything_else_an_allowance() {
        let l = ConnLimits::DEFAULT;
        let read = Op::Read(ReadRequest {
            max_bytes: 1000,
            ..ReadRequest::default()
        });
        assert_eq!(
            charge_of(&frame(10), Some(&read), &l),
            (16 + 10) + 1000 + u64::from(l.batch.max_batch_bytes) + ANSWER_ALLOWANCE
        );
        // 0 asks for the server's bound: charged that.
        let unbounded = Op::Read(ReadRequest::default());
        assert_eq!(
            charge_of(&frame(10), Some(&unbounded), &l),
            (16 + 10)
                + u64::from(l.protocol.max_read_bytes)
                + u64::from(l.batch.max_batch_bytes)
                + ANSWER_ALLOWANCE
        );
        let append = Op::Append(AppendRequest::default());
        assert_eq!(
            charge_of(&frame(500), Some(&append), &l),
            16 + 500 + ANSWER_ALLOWANCE
        );
        assert_eq!(charge_of(&frame(3), None, &l), 16 + 3 + ANSWER_ALLOWANCE);
    }

    #[test]
    fn the_budget_admits_until_full_and_always_one_request() {
        let l = ConnLimits {
            max_connection_bytes: 10_000,
            ..ConnLimits::DEFAULT
        };
        let st = ConnState::new(&l, Rc::new(ShardBudget::new(u64::MAX)));
        // Alone, even a request above the budget is admitted (else it
        // would wait for ever).
        assert!(st.admit(50_000));
        st.charged.set(6_000);
        assert!(st.admit(4_000));
        assert!(!st.admit(4_001));
        // Answers written give the budget back.
        st.charged.set(0);
        assert!(st.admit(10_000));
    }

    #[test]
    fn the_shard_budget_bounds_admission_and_tails_across_connections() {
        let l = ConnLimits {
            max_connection_bytes: 100_000,
            max_shard_bytes: 150_000,
            protocol: crate::protocol::Limits {
                max_frame_bytes: 20_000,
                ..crate::protocol::Limits::DEFAULT
            },
            ..ConnLimits::DEFAULT
        };
        let budget = Rc::new(ShardBudget::new(l.max_shard_bytes));
        let (a, b) = (
            ConnState::new(&l, budget.clone()),
            ConnState::new(&l, budget.clone()),
        );
        a.charge(90_000);

        assert!(b.room_for_frame());
        b.charge(40_000);
        assert_eq!(budget.used(), 130_000);
        // b is far from its own bound, but the shard is not.
        assert!(!b.room_for_frame());
        assert!(!b.admit(30_000));
        assert!(b.admit(20_000));
        // Released bytes come back to the shard and are announced.
        let seen = budget.freed.get();
        a.release(50_000);
        assert_eq!(budget.used(), 80_000);
        assert_ne!(budget.freed.get(), seen);
        assert!(b.room_for_frame());
        // A connection that ends gives back what it held, once; what its
        // tasks do afterwards is not the shard's.
        a.detach();
        assert_eq!(budget.used(), 40_000);
        a.charge(1_000);
        a.release(1_000);
        a.detach();
        assert_eq!(budget.used(), 40_000);
    }
}
