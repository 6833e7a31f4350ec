//! The operation handlers: one decoded request in, its `Response` out.
//! They run as tasks on the group's shard (the client connected to the
//! shard that owns the group: docs/protocol.md section 1) and reach the
//! group through its `Node`; a group this shard does not run is
//! `GroupNotFound`.
//!
//! - Append: the batch (checked at the door by `decode_request`) is
//!   proposed as one entry; the answer is what applying it did (offsets, a
//!   duplicate's original offsets, a refusal), after commit.
//! - Read: whole batches from the offset index, their bytes fetched from
//!   the WAL as they were appended. `ANY_REPLICA` reads what this replica
//!   applied (a committed prefix); `LINEARIZABLE` and `LEASE` first get
//!   the leader's ReadIndex and wait until this replica applied it
//!   (`LEASE` takes the ReadIndex path too: the runtime runs its groups
//!   with safe read-only requests). A shard whose WAL failed serves no
//!   read, of any consistency, and no tail: `Unavailable`.
//! - Truncate and InitProducer: a command proposed like an append,
//!   answered with what applying it did (the earliest offset, the
//!   producer id the group gave).
//! - Transfer leader, membership changes (of the group's placement
//!   replicas), group and cluster status.
//! - Group create/delete are not served yet: `Unavailable` says so.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::answer_wire::{READ_ANSWER_FIXED_MAX, read_batch_wire_len};
use super::listener::ShardServer;
use super::log_apply::LogApply;
use crate::clientpb::{self, Consistency, error::Kind, request::Op, response::Result as Answer};
use crate::log::{BATCH_MAGIC, Command, LogState};
use crate::node::{Node, ProposeError};
use crate::protocol::{ReadBounds, apply_answer, offset_out_of_range, read_bounds};

fn answer(result: Answer) -> clientpb::Response {
    clientpb::Response {
        result: Some(result),
    }
}

/// `Done`.
pub fn done() -> clientpb::Response {
    answer(Answer::Done(clientpb::Done {}))
}

/// A response carrying error `kind`.
pub fn error(kind: Kind) -> clientpb::Response {
    answer(Answer::Error(clientpb::Error { kind: Some(kind) }))
}

pub(crate) fn unavailable(reason: impl Into<String>) -> clientpb::Response {
    error(Kind::Unavailable(clientpb::Unavailable {
        reason: reason.into(),
    }))
}

/// Answers one operation.
pub async fn handle(srv: &Rc<ShardServer>, op: Op) -> clientpb::Response {
    match op {
        Op::Append(a) => match srv.node(a.group) {
            Ok(node) => append(srv, &node, a.batch).await,
            Err(r) => r,
        },
        Op::Read(r) => read(srv, r).await,
        Op::Truncate(t) => match srv.node(t.group) {
            Ok(node) => {
                let cmd = Command::Truncate {
                    before_offset: t.before_offset,
                }
                .encode();
                append(srv, &node, cmd).await
            }
            Err(r) => r,
        },
        Op::InitProducer(i) => match srv.node(i.group) {
            Ok(node) => append(srv, &node, Command::InitProducer.encode()).await,
            Err(r) => r,
        },
        Op::GroupStatus(g) => group_status(srv, g.group),
        Op::ClusterStatus(_) => cluster_status(srv),
        Op::TransferLeader(t) => match srv.node(t.group) {
            Ok(node) => match node.transfer_leader(t.to_member) {
                Ok(()) => answer(Answer::Done(clientpb::Done {})),
                Err(e) => srv.propose_error(t.group, e),
            },
            Err(r) => r,
        },
        // Connections serve tails and cancels themselves (tail.rs).
        Op::Tail(_) => unavailable("a tail is served by its connection"),
        Op::CreateGroup(_) | Op::DeleteGroup(_) => {
            unavailable("groups are fixed at bootstrap: create/delete is not served yet")
        }
        Op::Membership(m) => match srv.node(m.group) {
            Ok(node) => membership(srv, &node, &m).await,
            Err(r) => r,
        },
        Op::Cancel(_) => answer(Answer::Done(clientpb::Done {})),
    }
}

/// Proposes `data` (a batch or a command) and answers with what applying
/// it did.
async fn append(srv: &Rc<ShardServer>, node: &Node, data: Bytes) -> clientpb::Response {
    let group = node.group();
    let bytes = data.len() as u64;
    let began = Instant::now();
    match node.propose_applied(data).await {
        Ok(applied) => match applied.outcome {
            Some(o) => {
                srv.record_commit(began.elapsed());
                if let crate::log::ApplyOutcome::Appended { count, .. } = o {
                    srv.bump(|s| {
                        s.appended_records += u64::from(count);
                        s.appended_bytes += bytes;
                    });
                }
                apply_answer(&o)
            }
            None => unavailable(format!(
                "group {group} stopped applying entries (see the server's log)"
            )),
        },
        Err(e) => srv.propose_error(group, e),
    }
}

/// The group's log state, unless the group stopped applying.
pub(crate) fn with_state<R>(
    node: &Node,
    f: impl FnOnce(&LogState) -> R,
) -> Result<R, clientpb::Response> {
    node.with_apply(|a| {
        let Some(la) = a.as_any().downcast_ref::<LogApply>() else {
            return Err(unavailable("the group's state machine is not a log"));
        };
        if let Some(e) = la.broken() {
            return Err(unavailable(format!("group stopped applying: {e}")));
        }
        Ok(f(la.state()))
    })
}

async fn read(srv: &Rc<ShardServer>, r: clientpb::ReadRequest) -> clientpb::Response {
    let node = match srv.node(r.group) {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    let Ok(consistency) = Consistency::try_from(r.consistency) else {
        return error(Kind::Malformed(clientpb::Malformed {
            reason: format!("unknown consistency {}", r.consistency),
        }));
    };
    if consistency != Consistency::AnyReplica {
        let index = match node.read_index().await {
            Ok(i) => i,
            Err(e) => return srv.propose_error(r.group, e),
        };
        if let Err(resp) = wait_applied(srv, &node, index).await {
            return resp;
        }
    }
    let bounds = read_bounds(&r, &srv.limits.protocol);
    read_committed(srv, &node, r.offset, bounds)
}

/// Whole batches of `node`'s group from `offset`, within `bounds`, from
/// what this replica applied: their bytes as the WAL holds them.
pub(crate) fn read_committed(
    srv: &ShardServer,
    node: &Node,
    offset: u64,
    bounds: ReadBounds,
) -> clientpb::Response {
    let group = node.group();
    // A shard whose WAL failed may have applied entries that never became
    // durable here (the flush that failed held them, or a later one
    // would have): what it holds is no committed prefix it can vouch for.
    if let Err(e) = srv.shard.check() {
        return srv.propose_error(group, e);
    }
    // Where the batches are: entry indexes, at most max_records batches.
    let found = with_state(node, |st| {
        let (earliest, latest) = (st.earliest_offset(), st.next_offset());
        if offset == latest && offset >= earliest {
            return Ok((Vec::new(), earliest, latest));
        }
        let locs = st.index().locations_from(offset)?;
        let mut out = Vec::new();
        let mut records = 0u64;
        for l in locs {
            records += l.count - offset.saturating_sub(l.base_offset).min(l.count);
            out.push(l);
            if records >= u64::from(bounds.max_records) {
                break;
            }
        }
        Ok((out, earliest, latest))
    });
    let (locs, earliest, latest) = match found {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return answer(Answer::Error(offset_out_of_range(&e))),
        Err(resp) => return resp,
    };
    let mut batches = Vec::with_capacity(locs.len());
    let mut bytes = 0u64;
    // The answer must fit one frame, framing included (a few bytes per
    // batch, which the byte bound does not count): a tail that advanced
    // past an answer too large to send would lose its records.
    let frame_room =
        (srv.limits.protocol.max_frame_bytes as usize).saturating_sub(READ_ANSWER_FIXED_MAX);
    let mut wire = 0usize;
    for l in locs {
        let entry = {
            let wal = srv.shard.wal();
            wal.entries(group, l.entry_index, l.entry_index + 1, u64::MAX)
        };
        let data = match entry {
            Ok(mut es) if es.len() == 1 && es[0].data.first() == Some(&BATCH_MAGIC) => {
                std::mem::take(&mut es[0].data)
            }
            Ok(_) => {
                return unavailable(format!(
                    "group {}: entry {} is not the batch the offset index names",
                    group, l.entry_index
                ));
            }
            Err(e) => return unavailable(format!("reading the WAL: {e}")),
        };
        bytes += data.len() as u64;
        if !batches.is_empty() && bytes > u64::from(bounds.max_bytes) {
            break;
        }
        let w = read_batch_wire_len(l.base_offset, data.len());
        if wire + w > frame_room {
            if batches.is_empty() {
                // One batch above the frame (appended under larger
                // limits): it cannot be answered; say so, skip nothing.
                return error(Kind::TooLarge(clientpb::TooLarge {
                    what: "batch in a read answer".into(),
                    value: data.len() as u64,
                    limit: u64::from(srv.limits.protocol.max_frame_bytes),
                }));
            }
            break;
        }
        wire += w;
        batches.push(clientpb::ReadBatch {
            base_offset: l.base_offset,
            batch: data,
        });
    }
    answer(Answer::Read(clientpb::ReadResponse {
        batches,
        earliest,
        latest,
    }))
}

/// Waits until the group applied `index` here (a linearizable read's
/// ReadIndex). Usually at once: the read's answer and the entries up to
/// it come in the same loop turn. Otherwise it looks again every
/// millisecond, up to the request timeout.
async fn wait_applied(
    srv: &ShardServer,
    node: &Node,
    index: u64,
) -> Result<(), clientpb::Response> {
    let deadline = Instant::now() + srv.request_timeout();
    loop {
        if with_state(node, |st| st.applied_index())? >= index {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(error(Kind::Timeout(clientpb::Timeout {})));
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

fn group_status(srv: &Rc<ShardServer>, group: u64) -> clientpb::Response {
    let node = match srv.node(group) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let st = node.status();
    let offsets = with_state(&node, |s| (s.earliest_offset(), s.next_offset()));
    let (earliest, latest) = match offsets {
        Ok(o) => o,
        Err(r) => return r,
    };
    answer(Answer::GroupStatus(clientpb::GroupStatus {
        group,
        leader: st.leader.unwrap_or(0),
        term: st.hard_state.term,
        commit_index: st.hard_state.commit,
        applied_index: st.applied,
        earliest_offset: earliest,
        latest_offset: latest,
        voters: st.conf_state.voters.clone(),
        learners: st.conf_state.learners.clone(),
    }))
}

/// A membership change of the group, proposed as a configuration change
/// and answered once applied here. Groups are created at bootstrap on
/// their placement's replicas only, so a member can be added (back) only
/// if it is one of them: another member runs no copy of the group.
async fn membership(
    srv: &Rc<ShardServer>,
    node: &Node,
    m: &clientpb::MembershipRequest,
) -> clientpb::Response {
    use crate::raftpb::{ConfChangeSingle, ConfChangeType};
    let group = node.group();
    let Ok(change) = clientpb::MembershipChange::try_from(m.change) else {
        return error(Kind::Malformed(clientpb::Malformed {
            reason: format!("unknown membership change {}", m.change),
        }));
    };
    let kind = match change {
        clientpb::MembershipChange::AddVoter | clientpb::MembershipChange::PromoteLearner => {
            ConfChangeType::ConfChangeAddNode
        }
        clientpb::MembershipChange::AddLearner => ConfChangeType::ConfChangeAddLearnerNode,
        clientpb::MembershipChange::RemoveMember => ConfChangeType::ConfChangeRemoveNode,
    };
    if kind != ConfChangeType::ConfChangeRemoveNode
        && !srv
            .cluster
            .replicas(group)
            .unwrap_or_default()
            .contains(&m.member)
    {
        return unavailable(format!(
            "member {} runs no replica of group {group} (groups are placed at bootstrap)",
            m.member
        ));
    }
    let cc = crate::raftpb::ConfChangeV2 {
        changes: vec![ConfChangeSingle {
            r#type: kind as i32,
            node_id: m.member,
        }],
        ..Default::default()
    };
    match node.propose_conf_change(cc).await {
        Ok(_) => done(),
        Err(e) => srv.propose_error(group, e),
    }
}

fn cluster_status(srv: &Rc<ShardServer>) -> clientpb::Response {
    answer(Answer::ClusterStatus(clientpb::ClusterStatus {
        cluster_id: srv.cluster.id(),
        members: srv
            .cluster
            .members()
            .iter()
            .map(|m| clientpb::Member {
                id: m.id,
                name: m.name.clone(),
                client_address: m.client_addr.to_string(),
                shards: m.shards,
            })
            .collect(),
        group_count: srv.cluster.group_count(),
        unsafe_no_fsync: srv.shard.config().unsafe_no_fsync,
    }))
}

impl ShardServer {
    /// The group's node on this shard, or `GroupNotFound`.
    pub(crate) fn node(&self, group: u64) -> Result<Node, clientpb::Response> {
        self.shard
            .node(group)
            .ok_or_else(|| error(Kind::GroupNotFound(clientpb::GroupNotFound { group })))
    }

    /// A runtime refusal as the protocol's typed error.
    pub(crate) fn propose_error(&self, group: u64, e: ProposeError) -> clientpb::Response {
        match e {
            ProposeError::NotLeader { leader } => {
                let leader_address = leader
                    .and_then(|l| self.cluster.member(l))
                    .and_then(|m| m.client_addr_of_shard(m.shard_of(group)))
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                error(Kind::NotLeader(clientpb::NotLeader {
                    leader: leader.unwrap_or(0),
                    leader_address,
                }))
            }
            ProposeError::TooLarge { bytes, limit } => error(Kind::TooLarge(clientpb::TooLarge {
                what: "batch bytes".into(),
                value: bytes as u64,
                limit: limit as u64,
            })),
            ProposeError::Busy => error(Kind::Busy(clientpb::Busy {})),
            ProposeError::Timeout => error(Kind::Timeout(clientpb::Timeout {})),
            ProposeError::Dropped => unavailable(
                "the entry lost its slot to another leader's (leadership changed): retry",
            ),
            ProposeError::ShuttingDown => unavailable("the server is shutting down"),
            ProposeError::StorageFailed(cause) => {
                unavailable(format!("storage failed on this shard: {cause}"))
            }
            ProposeError::StorageFull(cause) => {
                unavailable(format!("storage full on this shard: {cause}"))
            }
        }
    }
}
