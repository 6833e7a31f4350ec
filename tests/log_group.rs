//! A log group in the runtime (one member, in process): proposers of a
//! batch learn its offsets from the applied entry, a retried batch its
//! original offsets, a gap its typed refusal; after a restart the log
//! state is rebuilt by replaying the WAL, and exactly-once still holds.
//! `cargo test --release --test log_group`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::cluster::{Cluster, Member};
use corelog::log::{ApplyOutcome, BatchBuilder, BatchLimits, Command, Refusal};
use corelog::node::Applied;
use corelog::raft::StateType;
use corelog::server::LogApply;
use corelog::shard::{CpuPlacement, MemberConfig, MemberRuntime, RuntimeConfig};

fn one_member() -> Arc<Cluster> {
    let m = Member {
        id: 1,
        name: "m1".into(),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], 41000)),
        client_addr: SocketAddr::from(([127, 0, 0, 1], 41100)),
        shards: 1,
    };
    Arc::new(Cluster::new(7, vec![m], 2, 1).unwrap())
}

fn start(dir: &std::path::Path) -> MemberRuntime {
    MemberRuntime::start(MemberConfig {
        data_dir: dir.to_path_buf(),
        cluster: one_member(),
        member: 1,
        runtime: RuntimeConfig {
            tick: Duration::from_millis(5),
            wal_segment_size: 1 << 20,
            ..RuntimeConfig::default()
        },
        apply: LogApply::factory(),
        peers: None,
        cpus: CpuPlacement::Unbound,
    })
    .unwrap()
}

fn batch(producer: u64, seq: u64, records: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(producer, seq, 0);
    for r in records {
        w.push(r.as_bytes()).unwrap();
    }
    w.finish().unwrap()
}

fn wait_leader(m: &MemberRuntime, group: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let role = m
            .shard_of(group)
            .call(move |s| async move { s.node(group).unwrap().status().role })
            .unwrap();
        if role == StateType::Leader {
            return;
        }
        assert!(Instant::now() < deadline, "group {group} elected no leader");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Proposes each batch in turn; the outcome each one applied with.
fn append(m: &MemberRuntime, group: u64, batches: Vec<Bytes>) -> Vec<ApplyOutcome> {
    m.shard_of(group)
        .call(move |s| async move {
            let node = s.node(group).unwrap();
            let mut out = Vec::new();
            for b in batches {
                let Applied { outcome, .. } = node.propose_applied(b).await.expect("committed");
                out.push(outcome.expect("the log state machine reports every entry"));
            }
            out
        })
        .unwrap()
}

/// (next offset, earliest offset) of `group`'s log state.
fn offsets(m: &MemberRuntime, group: u64) -> (u64, u64) {
    m.shard_of(group)
        .call(move |s| async move {
            s.node(group).unwrap().with_apply(|a| {
                let st = a.as_any().downcast_ref::<LogApply>().unwrap().state();
                (st.next_offset(), st.earliest_offset())
            })
        })
        .unwrap()
}

fn appended(base_offset: u64, count: u32) -> ApplyOutcome {
    ApplyOutcome::Appended { base_offset, count }
}

#[test]
fn proposers_learn_offsets_duplicates_and_refusals_and_a_restart_rebuilds_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path());
    wait_leader(&m, 0);
    let got = append(
        &m,
        0,
        vec![
            batch(0, 0, &["a", "b"]),
            Command::InitProducer.encode(),
            batch(1, 0, &["c", "d", "e"]),
            batch(1, 0, &["c", "d", "e"]),
            batch(1, 9, &["x"]),
            batch(1, 3, &["f"]),
        ],
    );
    assert_eq!(
        got,
        vec![
            appended(0, 2),
            ApplyOutcome::ProducerInit { producer_id: 1 },
            appended(2, 3),
            ApplyOutcome::Duplicate {
                base_offset: 2,
                count: 3
            },
            ApplyOutcome::Refused(Refusal::SequenceGap { expected: 3 }),
            appended(5, 1),
        ]
    );
    assert_eq!(offsets(&m, 0), (6, 0));
    m.stop().unwrap();

    let m = start(dir.path());
    wait_leader(&m, 0);
    // Replayed from the WAL once the new term's first entry commits.
    let deadline = Instant::now() + Duration::from_secs(10);
    while offsets(&m, 0) != (6, 0) {
        assert!(
            Instant::now() < deadline,
            "not replayed: {:?}",
            offsets(&m, 0)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = append(
        &m,
        0,
        vec![
            batch(1, 3, &["f"]),
            batch(1, 4, &["g"]),
            batch(0, 0, &["h"]),
            // The id counter was rebuilt from the log too.
            Command::InitProducer.encode(),
        ],
    );
    assert_eq!(
        got,
        vec![
            ApplyOutcome::Duplicate {
                base_offset: 5,
                count: 1
            },
            appended(6, 1),
            appended(7, 1),
            ApplyOutcome::ProducerInit { producer_id: 2 },
        ]
    );
    m.stop().unwrap();
}
