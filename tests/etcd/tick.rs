//! `tick-election <id>` and `tick-heartbeat <id>`: tick the node
//! `election_tick` or `heartbeat_tick` times (beware: the node's own
//! election timeout is randomized above `election_tick`).

use crate::common::datadriven::TestCase;

use super::args::first_as_node_idx;
use super::env::{CmdResult, Env};

pub fn handle_election(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    let n = env.node(idx)?;
    for _ in 0..n.config.election_tick {
        n.raw.tick();
    }
    Ok(())
}

pub fn handle_heartbeat(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    let n = env.node(idx)?;
    for _ in 0..n.config.heartbeat_tick {
        n.raw.tick();
    }
    Ok(())
}
