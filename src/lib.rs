//! corelog: a replicated log service. Raft with etcd-raft's semantics
//! (`raft`), thread-per-core serving, a segment WAL.

pub mod cluster;
pub mod log;
pub mod raft;
pub mod raftpb;
pub mod transport;
pub mod wal;
