//! `report-unreachable <id> <peer>`: tells node `id` that `peer` is
//! unreachable.

use crate::common::datadriven::TestCase;

use super::args::node_idxs;
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idxs = node_idxs(env, case)?;
    let [on, peer] = idxs[..] else {
        return Err(
            "must specify exactly two node indexes: node on which to report, and reported node"
                .to_string(),
        );
    };
    let peer_id = env.node(peer)?.config.id;
    env.node(on)?.raw.report_unreachable(peer_id);
    Ok(())
}
