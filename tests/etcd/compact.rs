//! `compact <id> <new-first-index>`: compacts the node's stable log so that
//! `new-first-index` becomes its first index, then prints the log.

use corelog::raft::Storage;

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
    let mem = &mut env.node(idx)?.raw.store_mut().mem;
    // MemStorage treats compacting past its last index as a broken caller
    // contract (a panic); here it is a malformed line.
    let last = mem.last_index().map_err(|e| e.to_string())?;
    if new_first > last {
        return Err(format!(
            "compact {new_first} is out of bound lastindex({last})"
        ));
    }
    mem.compact(new_first).map_err(|e| e.to_string())?;
    env.raft_log(idx)
}
