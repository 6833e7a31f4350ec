//! The pure consensus core: etcd-raft's behaviour driven by `tick`/`step` and
//! `Ready`/`advance`. It never does I/O, never reads a clock, never spawns;
//! given the same inputs it produces the same outputs.

pub mod confchange;
pub mod quorum;
pub mod tracker;

mod config;
mod errors;
mod log_unstable;
mod raft_log;
mod storage;
mod types;

pub use config::{Config, ReadOnlyOption};
pub use errors::{Error, Result, StorageError};
pub use log_unstable::Unstable;
pub use raft_log::RaftLog;
pub use storage::{MemStorage, RaftState, Storage};
pub use types::{
    EntryId, LogSlice, entry_encoding_size, entry_payload_size, ents_size, limit_size,
    limit_size_len, payloads_size,
};
