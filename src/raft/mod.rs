//! The pure consensus core: etcd-raft's behaviour driven by `tick`/`step` and
//! `Ready`/`advance`. It never does I/O, never reads a clock, never spawns;
//! given the same inputs it produces the same outputs.

pub mod confchange;
pub mod describe;
pub mod quorum;
pub mod tracker;

mod conf_change;
mod config;
mod election;
mod errors;
mod lease;
#[cfg(test)]
mod lease_tests;
mod log_unstable;
mod prng;
#[allow(clippy::module_inception)]
mod raft;
mod raft_log;
#[cfg(test)]
mod raft_tests;
mod raw_node;
#[cfg(test)]
mod raw_node_async_tests;
#[cfg(test)]
mod raw_node_tests;
mod read_only;
mod status;
mod step_follower;
mod step_leader;
mod storage;
mod types;

#[cfg(corelog_sim_bugs)]
pub use config::Bugs;
/// Whether this build carries the deliberate bugs of the simulator's
/// self-test (`--cfg corelog_sim_bugs`); false in every build users run.
pub fn deliberate_bugs_compiled() -> bool {
    cfg!(corelog_sim_bugs)
}
pub use config::{Config, NO_LIMIT, ReadOnlyOption};
pub use errors::{Error, Result, StorageError};
pub use lease::Lease;
pub use log_unstable::Unstable;
pub use prng::Prng;
pub use raft::{
    LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, MAX_INDEX, NONE, Raft, SnapshotStatus, SoftState,
    StateType, is_empty_hard_state, is_empty_snap, is_local_msg_target,
};
pub use raft_log::RaftLog;
pub use raw_node::{RawNode, Ready, must_sync};
pub use read_only::{ReadIndexRequest, ReadOnly, ReadState};
pub use status::{BasicStatus, Status};
pub use storage::{MemStorage, RaftState, Storage};
pub use types::{
    EntryId, LogSlice, entry_encoding_size, entry_payload_size, ents_size, limit_size,
    limit_size_len, payloads_size,
};
