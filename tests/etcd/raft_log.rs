//! `raft-log <id>`: prints the node's stable log (its storage), one entry
//! per line, or `log is empty: ...`.

use crate::common::datadriven::TestCase;

use super::args::first_as_node_idx;
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    env.raft_log(idx)
}
