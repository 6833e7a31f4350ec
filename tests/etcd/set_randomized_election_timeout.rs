//! `set-randomized-election-timeout <id> timeout=<ticks>`: overrides the
//! node's randomized election timeout until its next state change.

use crate::common::datadriven::TestCase;

use super::args::{first_as_node_idx, parse_num, required};
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    let timeout: usize = parse_num("timeout", required(case, "timeout")?)?;
    if timeout == 0 {
        return Err("set-randomized-election-timeout: timeout must not be 0".to_string());
    }
    env.node(idx)?.raw.raft.randomized_election_timeout = timeout;
    Ok(())
}
