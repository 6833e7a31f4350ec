//! Runs etcd-raft's own scenario files against corelog's core (see
//! tests/testdata/etcd-raft/README.md): every `*.txt` of the interaction,
//! interaction-async, quorum and confchange directories, each file from a
//! fresh state, in relaxed comparison; plus the harness's own scenarios. The
//! files ship in the repository, so a clone needs nothing beside it.

mod common;
mod etcd;

use std::path::PathBuf;

use common::datadriven::run_dir;

/// The scenario directory named by `var`, or `default` (inside the
/// checkout).
fn scenario_dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

#[test]
fn interaction_scenarios() {
    let dir = scenario_dir(
        "CORELOG_ETCD_INTERACTION",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/testdata/etcd-raft/interaction"
        ),
    );
    let (_, failed) = run_dir("etcd-interaction", &dir, || {
        let mut env = etcd::env::Env::new();
        move |case| env.handle(case)
    });
    assert_eq!(
        failed, 0,
        "etcd-interaction: {failed} scenario files failed"
    );
}

/// etcd's scenario files of the asynchronous-storage-writes mode. Like any
/// interaction directory it may mix modes: each file runs in the mode its
/// `add-nodes` asks for.
#[test]
fn interaction_async_scenarios() {
    let dir = scenario_dir(
        "CORELOG_ETCD_INTERACTION_ASYNC",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/testdata/etcd-raft/interaction-async"
        ),
    );
    let (_, failed) = run_dir("etcd-interaction-async", &dir, || {
        let mut env = etcd::env::Env::new();
        move |case| env.handle(case)
    });
    assert_eq!(
        failed, 0,
        "etcd-interaction-async: {failed} scenario files failed"
    );
}

/// The harness's own scenarios: the commands etcd's files use rarely and the
/// error lines of malformed input.
#[test]
fn harness_commands() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/etcd/testdata");
    let (_, failed) = run_dir("etcd-harness", std::path::Path::new(dir), || {
        let mut env = etcd::env::Env::new();
        move |case| env.handle(case)
    });
    assert_eq!(failed, 0, "etcd-harness: {failed} scenario files failed");
}

#[test]
fn quorum_scenarios() {
    let dir = scenario_dir(
        "CORELOG_ETCD_QUORUM",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/testdata/etcd-raft/quorum"
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
            "/tests/testdata/etcd-raft/confchange"
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
