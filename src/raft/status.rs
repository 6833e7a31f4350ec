//! `Status` and `BasicStatus`: snapshots of one node's state for the
//! application (monitoring, leadership decisions). They copy; they never
//! expose the live tracker. `BasicStatus` allocates nothing, for callers
//! polling many groups.

use super::raft::{Raft, SoftState, StateType};
use super::storage::Storage;
use super::tracker::{ProgressMap, TrackerConfig};

use crate::raftpb::HardState;

/// The state of one node at the time `RawNode::status` was called.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub id: u64,
    pub hard_state: HardState,
    pub soft_state: SoftState,
    pub applied: u64,
    /// The progress of every peer; empty unless the node is leader.
    pub progress: ProgressMap,
    pub config: TrackerConfig,
    pub lead_transferee: u64,
}

impl Status {
    pub fn new<S: Storage>(r: &Raft<S>) -> Status {
        let soft_state = r.soft_state();
        let progress = if soft_state.raft_state == StateType::Leader {
            r.trk.progress.clone()
        } else {
            ProgressMap::new()
        };
        Status {
            id: r.id,
            hard_state: r.hard_state(),
            soft_state,
            applied: r.raft_log.applied,
            progress,
            config: r.trk.config.clone(),
            lead_transferee: r.lead_transferee,
        }
    }
}

/// The part of `Status` that costs no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicStatus {
    pub id: u64,
    pub hard_state: HardState,
    pub soft_state: SoftState,
    pub applied: u64,
    pub lead_transferee: u64,
}

impl BasicStatus {
    pub fn new<S: Storage>(r: &Raft<S>) -> BasicStatus {
        BasicStatus {
            id: r.id,
            hard_state: r.hard_state(),
            soft_state: r.soft_state(),
            applied: r.raft_log.applied,
            lead_transferee: r.lead_transferee,
        }
    }
}
