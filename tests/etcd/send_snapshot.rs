//! `send-snapshot <from> <to>`: queues (does not deliver) a MsgSnap from
//! `from` to `to` carrying `from`'s latest state, and prints it.

use corelog::raft::Storage;
use corelog::raft::describe::describe_message;
use corelog::raftpb::{Message, MessageType};

use crate::common::datadriven::TestCase;

use super::args::node_idxs;
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idxs = node_idxs(env, case)?;
    let [from_idx, to_idx] = idxs[..] else {
        return Err("send-snapshot: expected two node ids: from and to".to_string());
    };
    let from = env.node(from_idx)?;
    let snapshot = from.raw.store().snapshot().map_err(|e| e.to_string())?;
    let msg = Message {
        r#type: MessageType::MsgSnap as i32,
        term: from.raw.raft.term,
        from: from_idx as u64 + 1,
        to: to_idx as u64 + 1,
        snapshot: Some(Box::new(snapshot)),
        ..Default::default()
    };
    let s = describe_message(&msg, None);
    env.messages.push(msg);
    env.out.push(&s);
    Ok(())
}
