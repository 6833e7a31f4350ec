//! `raft-state`: one line per node, from that node's own view:
//! `<id>: <state> (Voter|Non-Voter) Term:<t> Lead:<l>`.

use crate::common::datadriven::TestCase;

use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, _case: &TestCase) -> CmdResult {
    let mut s = String::new();
    for n in &env.nodes {
        let st = n.raw.status();
        let voter = if st.config.voters.ids().contains(&st.id) {
            "(Voter)"
        } else {
            "(Non-Voter)"
        };
        s.push_str(&format!(
            "{}: {} {} Term:{} Lead:{}\n",
            st.id, st.soft_state.raft_state, voter, st.hard_state.term, st.soft_state.lead
        ));
    }
    env.out.push(&s);
    Ok(())
}
