//! `propose <id> <data>`: proposes a normal entry holding `data`.

use bytes::Bytes;

use crate::common::datadriven::TestCase;

use super::args::first_as_node_idx;
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    let data = match case.args.as_slice() {
        [_, d] if d.vals.is_empty() => Bytes::from(d.key.clone().into_bytes()),
        _ => return Err("propose: expected exactly one key with no vals".to_string()),
    };
    env.node(idx)?.raw.propose(data).map_err(|e| e.to_string())
}
