//! `process-append-thread <id>...` and `process-apply-thread <id>...`: the
//! storage threads of a node with asynchronous storage writes. Each command
//! takes the oldest message of the node's append (apply) queue, prints it
//! and the responses it carries, does its work (persist hard state,
//! snapshot or entries; apply committed entries), then sends the responses.
//! A node with nothing queued (every synchronous node) says so.

use corelog::raft::describe::describe_message;
use corelog::raftpb::{HardState, Message};

use crate::common::datadriven::TestCase;

use super::args::node_idxs;
use super::env::{CmdResult, Env};
use super::process_ready::{process_append, process_apply};

/// Which storage thread of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread {
    Append,
    Apply,
}

impl Thread {
    fn name(self) -> &'static str {
        match self {
            Thread::Append => "append",
            Thread::Apply => "apply",
        }
    }
}

pub fn handle_append(env: &mut Env, case: &TestCase) -> CmdResult {
    handle(env, case, Thread::Append)
}

pub fn handle_apply(env: &mut Env, case: &TestCase) -> CmdResult {
    handle(env, case, Thread::Apply)
}

fn handle(env: &mut Env, case: &TestCase, thread: Thread) -> CmdResult {
    let idxs = node_idxs(env, case)?;
    for &idx in &idxs {
        if idxs.len() > 1 {
            env.out.line(&format!(
                "> {} processing {} thread",
                idx + 1,
                thread.name()
            ));
            env.with_indent(|env| process_thread(env, idx, thread))?;
        } else {
            process_thread(env, idx, thread)?;
        }
    }
    Ok(())
}

/// Whether node `idx` has work queued for `thread`.
pub fn has_work(env: &mut Env, idx: usize, thread: Thread) -> Result<bool, String> {
    let node = env.node(idx)?;
    Ok(match thread {
        Thread::Append => !node.append_work.is_empty(),
        Thread::Apply => !node.apply_work.is_empty(),
    })
}

/// Processes the oldest message queued for `thread` of node `idx`.
pub fn process_thread(env: &mut Env, idx: usize, thread: Thread) -> CmdResult {
    let node = env.node(idx)?;
    let queue = match thread {
        Thread::Append => &mut node.append_work,
        Thread::Apply => &mut node.apply_work,
    };
    if queue.is_empty() {
        let msg = format!("no {} work to perform", thread.name());
        env.out.push(&msg);
        return Ok(());
    }
    let mut m: Message = queue.remove(0);
    let resps = std::mem::take(&mut m.responses);
    env.out.line("Processing:");
    env.out.line(&describe_message(&m, None));
    let node = env.node(idx)?;
    match thread {
        Thread::Append => {
            let hs = HardState {
                term: m.term,
                vote: m.vote,
                commit: m.commit,
            };
            process_append(node, Some(&hs), &m.entries, m.snapshot.as_deref())?;
        }
        Thread::Apply => process_apply(node, &m.entries)?,
    }
    env.out.line("Responses:");
    for r in &resps {
        env.out.line(&describe_message(r, None));
    }
    env.messages.extend(resps);
    Ok(())
}
