//! Command handlers for etcd-raft's datadriven scenario files, one file per
//! suite.

pub mod confchange;
pub mod quorum;
