//! The thread-per-core runtime. A shard is one glommio `LocalExecutor`
//! thread (pinned to a CPU when asked) that owns a set of groups outright:
//! their Raft nodes, one WAL shared by them, its network, and the loop
//! that drives them (run.rs). Nothing on the hot path is shared between
//! shards; the process reaches a shard through its `ShardHandle`
//! (handle.rs), the tasks on the shard reach a group through its `Node`
//! (src/node.rs).
//!
//! Files: `config` (clocks and limits), `memlock` (RLIMIT_MEMLOCK),
//! `wake` (the WAL's completion eventfd on glommio's ring), `signal` (the
//! loop's doorbell), `group` (one group: RawNode, state machine, waiting
//! requests), `waiters` and `oneshot` (requests waiting for the log),
//! `appender` (storage work into the WAL without waiting), `run` (the
//! loop), `join` (a group joining this member at run time), `peers` (what the loop needs of the network), `net_peers` (it,
//! over TCP), `mailbox` and
//! `handle` (starting a shard, reaching it), `member` and `meta` (a
//! member's data directory: bootstrap, restart, identity), `state` (what the shard's
//! tasks share), `apply` (the state machine trait), `compact` (building
//! a group's snapshot at its compaction point, off the loop's turn),
//! `snapfile` (snapshot data files), `seed` (OS randomness).

pub mod appender;
pub mod apply;
pub(crate) mod compact;
pub mod config;
pub mod group;
pub mod handle;
pub mod join;
pub mod latency;
pub mod mailbox;
pub mod member;
pub mod memlock;
pub mod meta;
pub mod net_peers;
pub(crate) mod oneshot;
pub mod peers;
pub mod run;
pub mod seed;
pub mod signal;
pub mod snapfile;
pub mod state;
pub(crate) mod waiters;
pub mod wake;

#[cfg(test)]
mod appender_tests;
#[cfg(test)]
mod wake_tests;

pub use apply::{Apply, ApplyFactory, MemApply, NullApply, SnapshotBuilder, SnapshotFault};
pub use config::{ConfigError, RuntimeConfig};
pub use group::{Group, GroupStats};
pub use handle::{Boot, ShardGone, ShardHandle, ShardSpec, SnapshotLoadError, StartError, spawn};
pub use join::JoinError;
pub use member::{
    BootError, CpuPlacement, MemberConfig, MemberRuntime, default_shard_count, shard_dir,
};
pub use memlock::{MemlockLimit, raise_memlock};
pub use meta::{MemberMeta, MetaError};
pub use net_peers::{TcpPeers, TcpSettings, tcp_peers};
pub use peers::{PeerEnv, Peers, PeersFactory};
pub use state::{Shard, ShardStats};
