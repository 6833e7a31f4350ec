//! The pure consensus core: etcd-raft's behaviour driven by `tick`/`step` and
//! `Ready`/`advance`. It never does I/O, never reads a clock, never spawns;
//! given the same inputs it produces the same outputs.

pub mod confchange;
pub mod describe;
pub mod quorum;
pub mod tracker;

mod config;
mod errors;

pub use config::{Config, ReadOnlyOption};
pub use errors::{Error, Result, StorageError};
