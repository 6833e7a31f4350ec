//! `process-append-thread <id>...` and `process-apply-thread <id>...`: the
//! storage threads of etcd's asynchronous storage writes. corelog's nodes
//! always use synchronous storage, so, as in etcd for such nodes, there is
//! never any work queued and each node reports so.

use crate::common::datadriven::TestCase;

use super::args::node_idxs;
use super::env::{CmdResult, Env};

pub fn handle_append(env: &mut Env, case: &TestCase) -> CmdResult {
    no_work(env, case, "append")
}

pub fn handle_apply(env: &mut Env, case: &TestCase) -> CmdResult {
    no_work(env, case, "apply")
}

fn no_work(env: &mut Env, case: &TestCase, thread: &str) -> CmdResult {
    let idxs = node_idxs(env, case)?;
    for &idx in &idxs {
        let msg = format!("no {thread} work to perform");
        if idxs.len() > 1 {
            env.out
                .line(&format!("> {} processing {thread} thread", idx + 1));
            env.with_indent(|env| env.out.push(&msg));
        } else {
            env.out.push(&msg);
        }
    }
    Ok(())
}
