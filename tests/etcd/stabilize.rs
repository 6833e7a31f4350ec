//! `stabilize [<id>...] [log-level=<level>]`: handles Readys of, delivers
//! messages to, and (asynchronous storage writes) runs the storage threads
//! of the given nodes (all nodes if none are given) until none of them has
//! anything left to do.

use crate::common::datadriven::TestCase;

use super::args::node_idxs;
use super::deliver_msgs::{Recipient, deliver_msgs, has_msgs_for};
use super::env::{CmdResult, Env};
use super::log_level::set_level;
use super::process_ready::process_ready;
use super::storage_threads::{Thread, has_work, process_thread};

/// A bound on the rounds of one `stabilize`, so that a core that never
/// quiesces fails the scenario instead of hanging the test.
const MAX_ROUNDS: usize = 10_000;

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idxs = node_idxs(env, case)?;
    let old_level = env.out.level;
    // The level given here holds for this command only, whatever happens.
    let res = set_levels(env, case).and_then(|()| stabilize(env, &idxs));
    env.out.level = old_level;
    res
}

fn set_levels(env: &mut Env, case: &TestCase) -> CmdResult {
    for arg in &case.args {
        // etcd's harness skips arguments it does not know.
        if arg.key == "log-level" {
            for v in &arg.vals {
                set_level(env, v)?;
            }
        }
    }
    Ok(())
}

/// Runs rounds of (Ready handling on every node, message delivery to every
/// node, then all queued append work, then all queued apply work) until a
/// round finds nothing to do.
pub fn stabilize(env: &mut Env, idxs: &[usize]) -> CmdResult {
    let idxs: Vec<usize> = if idxs.is_empty() {
        (0..env.nodes.len()).collect()
    } else {
        idxs.to_vec()
    };
    for _ in 0..MAX_ROUNDS {
        let mut done = true;
        for &idx in &idxs {
            if env.node(idx)?.raw.has_ready() {
                env.out.line(&format!("> {} handling Ready", idx + 1));
                env.with_indent(|env| process_ready(env, idx))?;
                done = false;
            }
        }
        for &idx in &idxs {
            let id = env.node(idx)?.config.id;
            if has_msgs_for(env, id) {
                env.out.line(&format!("> {id} receiving messages"));
                env.with_indent(|env| deliver_msgs(env, None, &[Recipient { id, drop: false }]));
                done = false;
            }
        }
        for thread in [Thread::Append, Thread::Apply] {
            for &idx in &idxs {
                if !has_work(env, idx, thread)? {
                    continue;
                }
                let name = match thread {
                    Thread::Append => "append",
                    Thread::Apply => "apply",
                };
                env.out
                    .line(&format!("> {} processing {name} thread", idx + 1));
                while has_work(env, idx, thread)? {
                    let res = env.with_indent(|env| process_thread(env, idx, thread));
                    // etcd's harness stops at an append error but goes on
                    // past an apply error, printing nothing for it.
                    if thread == Thread::Append {
                        res?;
                    }
                }
                done = false;
            }
        }
        if done {
            return Ok(());
        }
    }
    Err(format!(
        "stabilize: no fixed point after {MAX_ROUNDS} rounds"
    ))
}
