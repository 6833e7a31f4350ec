//! `transfer-leadership from=<id> to=<id>`: asks node `from` to hand its
//! leadership to node `to`.

use crate::common::datadriven::TestCase;

use super::args::{node_idx, parse_num, required};
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let from: i64 = parse_num("from", required(case, "from")?)?;
    let to: i64 = parse_num("to", required(case, "to")?)?;
    let from_idx =
        node_idx(env, from).map_err(|e| format!("expected valid \"from\" argument: {e}"))?;
    node_idx(env, to).map_err(|e| format!("expected valid \"to\" argument: {e}"))?;
    env.node(from_idx)?.raw.transfer_leader(to as u64);
    Ok(())
}
