//! corelog: a replicated log service. Raft with etcd-raft's semantics
//! (`raft`), thread-per-core serving, a segment WAL.

pub mod auth;
pub mod client;
pub mod clientpb;
pub mod cluster;
pub mod log;
pub mod node;
pub mod protocol;
pub mod raft;
pub mod raftpb;
pub mod server;
pub mod shard;
pub mod transport;
pub mod wal;
