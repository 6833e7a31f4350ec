//! `deliver-msgs <id>... [drop=(ids)] [type=MsgXxx]`: delivers (steps) the
//! in-flight messages addressed to the given nodes, in send order, or drops
//! those addressed to the `drop` nodes; `type` restricts both to one message
//! type. Prints each message handled, `no messages` when there was none.

use corelog::raft::describe::describe_message;
use corelog::raft::is_local_msg_target;
use corelog::raftpb::{Message, MessageType};

use crate::common::datadriven::TestCase;

use super::args::parse_num;
use super::env::{CmdResult, Env};

/// Whose messages to handle, and whether to drop rather than deliver them.
#[derive(Debug, Clone, Copy)]
pub struct Recipient {
    pub id: u64,
    pub drop: bool,
}

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let mut typ = None;
    let mut rs: Vec<Recipient> = Vec::new();
    for arg in &case.args {
        if arg.vals.is_empty() {
            let id = parse_num("deliver-msgs", &arg.key)?;
            rs.push(Recipient { id, drop: false });
        }
        for v in &arg.vals {
            match arg.key.as_str() {
                "drop" => {
                    let id = parse_num("drop", v)?;
                    if rs.iter().any(|r| r.id == id) {
                        return Err(format!("can't both deliver and drop msgs to {id}"));
                    }
                    rs.push(Recipient { id, drop: true });
                }
                "type" => {
                    typ = Some(
                        MessageType::from_str_name(v)
                            .ok_or_else(|| format!("unknown message type {v}"))?,
                    );
                }
                // etcd's harness skips arguments it does not know.
                _ => {}
            }
        }
    }
    if deliver_msgs(env, typ, &rs) == 0 {
        env.out.line("no messages");
    }
    Ok(())
}

/// Delivers or drops the messages of each recipient in turn (of type `typ`
/// only, if given); returns how many were handled. Errors of `step` are
/// printed, not returned, so that the remaining messages still go out.
pub fn deliver_msgs(env: &mut Env, typ: Option<MessageType>, rs: &[Recipient]) -> usize {
    let mut n = 0;
    for r in rs {
        let (msgs, rest) = split_msgs(std::mem::take(&mut env.messages), r.id, typ, r.drop);
        env.messages = rest;
        n += msgs.len();
        for m in msgs {
            if r.drop {
                env.out.push("dropped: ");
            }
            env.out.line(&describe_message(&m, None));
            if r.drop {
                // Dropping a message to a node not created yet is allowed.
                continue;
            }
            let to = m.to;
            let res = match to
                .checked_sub(1)
                .and_then(|i| env.nodes.get_mut(usize::try_from(i).ok()?))
            {
                Some(node) => node.raw.step(m).map_err(|e| e.to_string()),
                None => Err(format!("message to node {to}, which does not exist")),
            };
            if let Err(e) = res {
                env.out.line(&e);
            }
        }
    }
    n
}

/// Takes the messages to `to` (of type `typ`, if given) out of `msgs`,
/// keeping the order of both parts. When dropping, local messages (a node's
/// to itself, and those from its storage threads) stay: they need reliable
/// delivery.
pub fn split_msgs(
    msgs: Vec<Message>,
    to: u64,
    typ: Option<MessageType>,
    drop: bool,
) -> (Vec<Message>, Vec<Message>) {
    msgs.into_iter().partition(|m| {
        m.to == to && !(drop && is_local(m)) && typ.is_none_or(|t| m.r#type == t as i32)
    })
}

/// Whether `m` stays within one node: sent to itself, or from or to one of
/// its storage threads.
fn is_local(m: &Message) -> bool {
    m.from == m.to || is_local_msg_target(m.from) || is_local_msg_target(m.to)
}

/// Whether any in-flight message is addressed to `to`.
pub fn has_msgs_for(env: &Env, to: u64) -> bool {
    env.messages.iter().any(|m| m.to == to)
}
