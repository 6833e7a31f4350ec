//! etcd-raft's datadriven test environments for corelog: the interaction
//! environment (`rafttest`: env, argument parsing, command switch, one module
//! per command) and the quorum and confchange suites. One line per module.

pub mod add_nodes;
pub mod args;
pub mod campaign;
pub mod compact;
pub mod confchange;
pub mod deliver_msgs;
pub mod env;
pub mod forget_leader;
pub mod handler;
pub mod log_level;
pub mod process_ready;
pub mod propose;
pub mod propose_conf_change;
pub mod quorum;
pub mod raft_log;
pub mod raft_state;
pub mod report_unreachable;
pub mod send_snapshot;
pub mod set_randomized_election_timeout;
pub mod stabilize;
pub mod status;
pub mod storage_threads;
pub mod tick;
pub mod transfer_leadership;
