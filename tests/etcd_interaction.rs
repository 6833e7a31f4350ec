//! Runs etcd-raft's own scenario files against corelog's core (see
//! shared/conformance/etcd-raft/README.md).

mod common;
