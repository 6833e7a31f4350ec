//! etcd-raft's interaction test environment (`rafttest`) for corelog: the
//! environment itself, its argument parsing and command switch, and one
//! module per command.

pub mod add_nodes;
pub mod args;
pub mod campaign;
pub mod compact;
pub mod deliver_msgs;
pub mod env;
pub mod forget_leader;
pub mod handler;
pub mod log_level;
pub mod process_ready;
pub mod propose;
pub mod propose_conf_change;
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
