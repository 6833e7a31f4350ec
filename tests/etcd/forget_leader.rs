//! `forget-leader <id>`: a follower forgets its leader (etcd's
//! `RawNode.ForgetLeader`).

use crate::common::datadriven::TestCase;

use super::args::first_as_node_idx;
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    env.node(idx)?
        .raw
        .forget_leader()
        .map_err(|e| e.to_string())
}
