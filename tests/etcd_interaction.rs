//! Runs etcd-raft's own scenario files against corelog's core (see
//! shared/conformance/etcd-raft/README.md).

mod common;
mod etcd;

use std::path::PathBuf;

use common::datadriven::run_dir;

/// The scenario directory named by `var`, or `default` (relative to the
/// checkout, so a clean clone placed beside shared/ finds it).
fn scenario_dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

#[test]
fn quorum_scenarios() {
    let dir = scenario_dir(
        "CORELOG_ETCD_QUORUM",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/etcd-raft/quorum"
        ),
    );
    let (_, failed) = run_dir("etcd-quorum", &dir, || etcd::quorum::run);
    assert_eq!(failed, 0, "etcd-quorum: {failed} scenario file(s) failed");
}

#[test]
fn confchange_scenarios() {
    let dir = scenario_dir(
        "CORELOG_ETCD_CONFCHANGE",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/etcd-raft/confchange"
        ),
    );
    let (_, failed) = run_dir("etcd-confchange", &dir, || {
        let mut env = etcd::confchange::ConfChangeEnv::default();
        move |case| env.run(case)
    });
    assert_eq!(
        failed, 0,
        "etcd-confchange: {failed} scenario file(s) failed"
    );
}
