//! `status <id>`: prints the node's progress map (one `id: progress` line
//! per peer; nothing unless the node leads).

use corelog::raft::tracker::progress_map_to_string;

use crate::common::datadriven::TestCase;

use super::args::first_as_node_idx;
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    let st = env.node(idx)?.raw.status();
    let s = progress_map_to_string(&st.progress);
    env.out.push(&s);
    Ok(())
}
