//! `compact <id> <new-first-index>`: compacts the node's stable log so that
//! `new-first-index` becomes its first index, then prints the log.

use crate::common::datadriven::TestCase;

use super::args::{first_as_node_idx, parse_num};
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    let arg = case
        .args
        .get(1)
        .ok_or_else(|| "compact: missing new first index".to_string())?;
    let new_first: u64 = parse_num("compact", &arg.key)?;
    env.node(idx)?
        .raw
        .store_mut()
        .mem
        .compact(new_first)
        .map_err(|e| e.to_string())?;
    env.raft_log(idx)
}
