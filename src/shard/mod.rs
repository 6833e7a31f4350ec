//! The thread-per-core runtime: one pinned glommio executor per shard,
//! owning its groups, its WAL and its sockets (built up in this module).

pub mod config;
pub mod memlock;
pub mod wake;

#[cfg(test)]
mod wake_tests;

pub use config::{ConfigError, RuntimeConfig};
pub use memlock::{MemlockLimit, raise_memlock};
