//! Tails: a stream of `ReadResponse`s under one request id, each sent as
//! records are applied on this replica (the one the client chose), from
//! the tail's offset on, until the client cancels it (`Cancel` with the
//! tail's request id), an error ends it (answered under its id), the
//! connection closes or the server stops.
//!
//! Flow control: the tail sends more only while the connection's answers
//! not yet written are below `max_bytes_in_flight` (the request's, or the
//! read byte limit when 0), so a client that stops reading stops its
//! tails; and only while the connection's budget and the shard's have
//! room for a whole frame, which its next answer fits in (the check and
//! the queueing happen without a yield between them: no other task can
//! take that room meanwhile). Both budgets count what it queued until
//! written.
//!
//! A tail follows its group across leader changes by itself: it reads
//! what this replica applied, whoever leads. If this member goes away,
//! the client resumes elsewhere from the next offset (`client::Tail`).

use std::rc::Rc;

use futures_lite::future::or;

use super::conn::ConnState;
use super::listener::ShardServer;
use super::log_apply::LogApply;
use super::ops::{self, read_committed, unavailable};
use crate::clientpb::{self, response::Result as Answer};
use crate::protocol::ReadBounds;

/// The offset after the last record of a read answer's batches.
fn next_offset(r: &clientpb::ReadResponse) -> Option<u64> {
    let last = r.batches.last()?;
    let count = u32::from_le_bytes(last.batch.get(4..8)?.try_into().ok()?);
    Some(last.base_offset + u64::from(count))
}

/// Serves tail `id` (charged `charge` at admission) until it ends.
pub(crate) async fn run(
    srv: Rc<ShardServer>,
    st: Rc<ConnState>,
    id: u64,
    req: clientpb::TailRequest,
    charge: u64,
) {
    let cancelled = st.register_tail(id);
    serve(&srv, &st, id, &req, &cancelled).await;
    st.end_tail(id, charge);
}

async fn serve(
    srv: &Rc<ShardServer>,
    st: &Rc<ConnState>,
    id: u64,
    req: &clientpb::TailRequest,
    cancelled: &std::cell::Cell<bool>,
) {
    let node = match srv.node(req.group) {
        Ok(n) => n,
        Err(resp) => return st.end_with_answer(id, &resp),
    };
    let changes = node.with_apply(|a| a.as_any().downcast_ref::<LogApply>().map(|l| l.changes()));
    let Some(changes) = changes else {
        return st.end_with_answer(id, &unavailable("the group's state machine is not a log"));
    };
    let limits = srv.limits.protocol;
    let in_flight = match req.max_bytes_in_flight {
        0 => limits.max_read_bytes,
        n => n.min(limits.max_read_bytes),
    } as usize;
    let bounds = ReadBounds {
        max_records: limits.max_read_records,
        max_bytes: limits.max_read_bytes,
    };
    let mut offset = req.offset;
    loop {
        let conn_seen = st.events.get();
        let budget_seen = srv.budget.freed.get();
        if cancelled.get() || st.is_ended() || srv.stopping.is_set() {
            return;
        }
        if st.unwritten() >= in_flight {
            st.events.changed(conn_seen).await;
            continue;
        }
        if !st.room_for_frame() {
            // The connection's or the shard's budget has no room for one
            // more answer: wait until answers are written somewhere.
            or(
                st.events.changed(conn_seen),
                srv.budget.freed.changed(budget_seen),
            )
            .await;
            continue;
        }
        let seen = changes.get();
        let resp = read_committed(srv, &node, offset, bounds);
        match &resp.result {
            Some(Answer::Read(r)) if !r.batches.is_empty() => {
                let Some(next) = next_offset(r) else {
                    return st.end_with_answer(id, &unavailable("a batch read back has no header"));
                };
                // The offset moves only past records queued for the
                // client: an answer that could not be queued ends the
                // tail with an error instead of skipping them.
                if let Err(e) = st.stream(id, &resp) {
                    return st.end_with(id, e);
                }
                offset = next;
            }
            Some(Answer::Read(_)) => {
                // Nothing new: wait for records, or for the connection
                // (cancel, close, stop).
                or(changes.changed(seen), st.events.changed(conn_seen)).await;
            }
            _ => return st.end_with_answer(id, &resp),
        }
    }
}

/// The answer to a `Cancel` of tail `request_id`: the tail ends (if it
/// is this connection's and still running), `Done` either way.
pub(crate) fn cancel(st: &ConnState, request_id: u64) -> clientpb::Response {
    st.cancel_tail(request_id);
    ops::done()
}
