//! `process-ready <id>...`: handles one Ready of each given node. A node with
//! synchronous storage does it all: print the Ready, persist hard state,
//! snapshot and entries, apply the committed entries (conf changes
//! included) to the node's "appender" state machine, queue the messages,
//! then `advance`. A node with asynchronous storage writes only prints the
//! Ready and routes its messages: those to its storage threads join their
//! work queues, the rest go to the network; there is no `advance`.

use bytes::Bytes;
use corelog::raft::describe::describe_ready;
use corelog::raft::{
    LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, is_empty_hard_state, is_empty_snap,
    is_local_msg_target,
};
use corelog::raftpb::{
    ConfChange, ConfChangeSingle, ConfChangeV2, ConfState, Entry, EntryType, HardState,
    MessageType, Snapshot, SnapshotMetadata,
};
use prost::Message as _;

use crate::common::datadriven::TestCase;

use super::args::node_idxs;
use super::env::{CmdResult, Env, Node, concat};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idxs = node_idxs(env, case)?;
    for &idx in &idxs {
        if idxs.len() > 1 {
            env.out.line(&format!("> {} handling Ready", idx + 1));
            env.with_indent(|env| process_ready(env, idx))?;
        } else {
            process_ready(env, idx)?;
        }
    }
    Ok(())
}

/// Handles one Ready of node `idx`.
pub fn process_ready(env: &mut Env, idx: usize) -> CmdResult {
    let Env {
        nodes,
        messages,
        out,
    } = env;
    let node = nodes
        .get_mut(idx)
        .ok_or_else(|| format!("node {} does not exist", idx + 1))?;
    let mut rd = node.raw.ready();
    out.push(&describe_ready(&rd, None));
    if node.config.async_storage_writes {
        for m in std::mem::take(&mut rd.messages) {
            match (m.to, MessageType::try_from(m.r#type)) {
                (LOCAL_APPEND_THREAD, Ok(MessageType::MsgStorageAppend)) => {
                    node.append_work.push(m)
                }
                (LOCAL_APPLY_THREAD, Ok(MessageType::MsgStorageApply)) => node.apply_work.push(m),
                (to, _) if is_local_msg_target(to) => {
                    return Err(format!(
                        "unexpected message type {} to a storage thread",
                        m.r#type
                    ));
                }
                _ => messages.push(m),
            }
        }
        return Ok(());
    }
    process_append(
        node,
        rd.hard_state.as_ref(),
        &rd.entries,
        rd.snapshot.as_ref(),
    )?;
    process_apply(node, &rd.committed_entries)?;
    if let Some(m) = rd.messages.iter().find(|m| is_local_msg_target(m.to)) {
        return Err(format!(
            "unexpected message to a storage thread from a synchronous node: {}",
            m.r#type
        ));
    }
    messages.append(&mut rd.messages);
    node.raw.advance(rd);
    Ok(())
}

/// Persists what a Ready (or a `MsgStorageAppend`) asks for: the hard
/// state, then either the snapshot or the entries (never both).
pub fn process_append(
    node: &mut Node,
    hs: Option<&HardState>,
    ents: &[Entry],
    snap: Option<&Snapshot>,
) -> CmdResult {
    let store = node.raw.store_mut();
    if let Some(hs) = hs.filter(|hs| !is_empty_hard_state(hs)) {
        store.mem.set_hard_state(*hs);
    }
    if let Some(snap) = snap.filter(|s| !is_empty_snap(s)) {
        if !ents.is_empty() {
            return Err("can't apply snapshot and entries at the same time".to_string());
        }
        // Only the log takes the snapshot. As in etcd's harness, the
        // node's history (its "latest snapshot") grows only by applying
        // committed entries: a node that caught up by snapshot keeps
        // offering the state it last reached by applying, and later
        // applications build on that state (tests/etcd/testdata/
        // snapshot_history.txt shows it).
        store
            .mem
            .apply_snapshot(snap.clone())
            .map_err(|e| e.to_string())?;
        store.restored = true;
        return Ok(());
    }
    store.mem.append(ents).map_err(|e| e.to_string())
}

/// Applies committed entries: conf changes go to the node, and every entry
/// extends the node's history with a new state whose data is the previous
/// data plus the entry's payload (conf changes: their context).
pub fn process_apply(node: &mut Node, ents: &[Entry]) -> CmdResult {
    for ent in ents {
        let (update, cs): (Bytes, Option<ConfState>) = match EntryType::try_from(ent.r#type) {
            Ok(EntryType::EntryConfChange) => {
                let cc = ConfChange::decode(ent.data.clone()).map_err(|e| e.to_string())?;
                let v2 = ConfChangeV2 {
                    changes: vec![ConfChangeSingle {
                        r#type: cc.r#type,
                        node_id: cc.node_id,
                    }],
                    context: cc.context.clone(),
                    ..Default::default()
                };
                let cs = node.raw.apply_conf_change(&v2);
                (cc.context, Some(cs))
            }
            Ok(EntryType::EntryConfChangeV2) => {
                let cc = ConfChangeV2::decode(ent.data.clone()).map_err(|e| e.to_string())?;
                let cs = node.raw.apply_conf_change(&cc);
                (cc.context, Some(cs))
            }
            _ => (ent.data.clone(), None),
        };
        let history = &mut node.raw.store_mut().history;
        let last = history.last().cloned().unwrap_or_default();
        let conf_state = cs.or_else(|| last.metadata.as_ref().and_then(|m| m.conf_state.clone()));
        history.push(Snapshot {
            data: concat(&last.data, &update),
            metadata: Some(SnapshotMetadata {
                conf_state,
                index: ent.index,
                term: ent.term,
            }),
        });
    }
    Ok(())
}
