//! The command switch of the interaction language: one arm per command of
//! etcd-raft's rafttest handler, each delegating to its own module.
//! An unknown command is an error in the output, like in etcd.

use crate::common::datadriven::TestCase;

use super::env::{CmdResult, Env};
use super::{
    add_nodes, campaign, compact, deliver_msgs, forget_leader, log_level, process_ready, propose,
    propose_conf_change, raft_log, raft_state, report_unreachable, send_snapshot,
    set_randomized_election_timeout, stabilize, status, storage_threads, tick, transfer_leadership,
};

/// Runs one command against the environment.
pub fn dispatch(env: &mut Env, case: &TestCase) -> CmdResult {
    match case.cmd.as_str() {
        // A no-op to hang a debugger breakpoint on.
        "_breakpoint" => Ok(()),
        "add-nodes" => add_nodes::handle(env, case),
        "campaign" => campaign::handle(env, case),
        "compact" => compact::handle(env, case),
        "deliver-msgs" => deliver_msgs::handle(env, case),
        "process-ready" => process_ready::handle(env, case),
        "process-append-thread" => storage_threads::handle_append(env, case),
        "process-apply-thread" => storage_threads::handle_apply(env, case),
        "log-level" => log_level::handle(env, case),
        "raft-log" => raft_log::handle(env, case),
        "raft-state" => raft_state::handle(env, case),
        "set-randomized-election-timeout" => set_randomized_election_timeout::handle(env, case),
        "stabilize" => stabilize::handle(env, case),
        "status" => status::handle(env, case),
        "tick-election" => tick::handle_election(env, case),
        "tick-heartbeat" => tick::handle_heartbeat(env, case),
        "transfer-leadership" => transfer_leadership::handle(env, case),
        "forget-leader" => forget_leader::handle(env, case),
        "send-snapshot" => send_snapshot::handle(env, case),
        "propose" => propose::handle(env, case),
        "propose-conf-change" => propose_conf_change::handle(env, case),
        "report-unreachable" => report_unreachable::handle(env, case),
        _ => Err("unknown command".to_string()),
    }
}
