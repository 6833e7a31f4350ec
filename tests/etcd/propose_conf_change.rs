//! `propose-conf-change <id> [v1=<bool>] [transition=auto|implicit|explicit]`
//! with the changes as input (`v2 l3 r4 u5`): proposes a v1 conf change
//! (exactly one change, no transition) or a v2 one. With no changes, a v2
//! proposal leaves a joint configuration explicitly.

use corelog::raftpb::{ConfChange, ConfChangeTransition, ConfChangeV2, conf_changes_from_string};

use crate::common::datadriven::TestCase;

use super::args::{first_as_node_idx, parse_bool};
use super::env::{CmdResult, Env};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let idx = first_as_node_idx(env, case)?;
    let mut v1 = false;
    let mut transition = ConfChangeTransition::ConfChangeTransitionAuto;
    for arg in case.args.iter().skip(1) {
        for v in &arg.vals {
            match arg.key.as_str() {
                "v1" => v1 = parse_bool("v1", v)?,
                "transition" => {
                    transition = match v.as_str() {
                        "auto" => ConfChangeTransition::ConfChangeTransitionAuto,
                        "implicit" => ConfChangeTransition::ConfChangeTransitionJointImplicit,
                        "explicit" => ConfChangeTransition::ConfChangeTransitionJointExplicit,
                        _ => return Err(format!("unknown transition {v}")),
                    }
                }
                k => return Err(format!("unknown command {k}")),
            }
        }
    }
    let ccs = conf_changes_from_string(&case.input)?;
    let raw = &mut env.node(idx)?.raw;
    let res = if v1 {
        let [cc] = ccs.as_slice() else {
            return Err("v1 conf change can only have one operation and no transition".to_string());
        };
        if transition != ConfChangeTransition::ConfChangeTransitionAuto {
            return Err("v1 conf change can only have one operation and no transition".to_string());
        }
        raw.propose_conf_change(&ConfChange {
            r#type: cc.r#type,
            node_id: cc.node_id,
            ..Default::default()
        })
    } else {
        raw.propose_conf_change(&ConfChangeV2 {
            transition: transition as i32,
            changes: ccs,
            ..Default::default()
        })
    };
    res.map_err(|e| e.to_string())
}
