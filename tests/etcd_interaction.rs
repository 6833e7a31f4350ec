//! Runs etcd-raft's own scenario files against corelog's core (see
//! shared/conformance/etcd-raft/README.md): every `*.txt` of the
//! interaction directory, each with a fresh cluster, in relaxed comparison.

mod common;
mod etcd;

use std::path::PathBuf;

/// The directory named by `var`, or `default` beside the repository.
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
            "/../shared/conformance/etcd-raft/interaction"
        ),
    );
    let (_, failed) = common::datadriven::run_dir("etcd-interaction", &dir, || {
        let mut env = etcd::env::Env::new();
        move |case| env.handle(case)
    });
    assert_eq!(
        failed, 0,
        "etcd-interaction: {failed} scenario files failed"
    );
}

/// The harness's own scenarios: the commands etcd's files use rarely and the
/// error lines of malformed input.
#[test]
fn harness_commands() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/etcd/testdata");
    let (_, failed) =
        common::datadriven::run_dir("etcd-harness", std::path::Path::new(dir), || {
            let mut env = etcd::env::Env::new();
            move |case| env.handle(case)
        });
    assert_eq!(failed, 0, "etcd-harness: {failed} scenario files failed");
}
