//! A one-member cluster (replication factor 1): no network, every group's
//! commit is its own durable write. Proposals commit and apply, survive a
//! restart from the WAL, fail with the right typed error when the WAL
//! fails or the group is at its limit, and a data directory refuses to
//! start as another cluster or member.

use bytes::Bytes;
use corelog::node::ProposeError;
use corelog::shard::{BootError, CpuPlacement, MemberConfig, MemberRuntime, RuntimeConfig};
use corelog::wal::Fault;

use super::support::*;

/// Waits until every group has its (only) member as leader.
fn wait_leaders(m: &MemberRuntime, groups: u64) {
    for g in 0..groups {
        wait_until(10, &format!("group {g} to elect"), || {
            leader_of(&[m], g) == Some(1)
        });
    }
}

fn groups_commit_apply_and_survive_a_restart(shards: u32) {
    const GROUPS: u64 = 6;
    const PER_GROUP: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(11, 1, shards, GROUPS, 1, 20_000);
    // Pinned, one shard per CPU of the process (as a server runs).
    let pinned = |dir: &std::path::Path| MemberConfig {
        cpus: CpuPlacement::Auto,
        ..member_config(dir, &c, 1, runtime(), None)
    };
    let m = MemberRuntime::start(pinned(dir.path())).unwrap();
    assert_eq!(m.shards().len(), shards as usize);
    wait_leaders(&m, GROUPS);

    let mut acked: Vec<Vec<(u64, Bytes)>> = Vec::new();
    for g in 0..GROUPS {
        let ps: Vec<Bytes> = (0..PER_GROUP).map(|i| payload(g, i)).collect();
        let got = propose_all(&m, g, ps.clone());
        let mut ok = Vec::new();
        for (p, r) in ps.into_iter().zip(got) {
            let index = r.unwrap_or_else(|e| panic!("group {g}: {e}"));
            ok.push((index, p));
        }
        // Indexes are distinct and increasing in proposal order.
        assert!(ok.windows(2).all(|w| w[0].0 < w[1].0), "group {g}: {ok:?}");
        // Applied here, in order, exactly what was acknowledged.
        assert_eq!(applied(&m, g), ok, "group {g} applied");
        acked.push(ok);
    }
    m.stop().unwrap();

    // A new life of the same directory: every acknowledged entry is back.
    let m = MemberRuntime::start(pinned(dir.path())).unwrap();
    wait_leaders(&m, GROUPS);
    for g in 0..GROUPS {
        let last = acked[g as usize].last().unwrap().0;
        // The new term's empty entry commits everything before it.
        wait_until(10, &format!("group {g} to reapply"), || {
            status(&m, g).applied > last
        });
        assert_eq!(applied(&m, g), acked[g as usize], "group {g} after restart");
        // And it takes new proposals after them.
        let r = propose_all(&m, g, vec![payload(g, 999)]);
        assert!(matches!(r[0], Ok(i) if i > last), "{r:?}");
    }
    m.stop().unwrap();
}

#[test]
fn one_member_groups_on_one_shard_commit_apply_and_survive_a_restart() {
    groups_commit_apply_and_survive_a_restart(1);
}

#[test]
fn one_member_groups_on_two_shards_commit_apply_and_survive_a_restart() {
    groups_commit_apply_and_survive_a_restart(2);
}

#[test]
fn a_failed_wal_fails_proposals_with_storage_failed_and_the_shard_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(12, 1, 1, 2, 1, 20_000);
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, runtime(), None)).unwrap();
    wait_until(10, "group 0 to elect", || leader_of(&[&m], 0) == Some(1));
    assert!(propose_all(&m, 0, vec![payload(0, 1)])[0].is_ok());
    assert_eq!(m.shards()[0].failure(), None);

    // The next flush fails with EIO.
    m.shards()[0]
        .call(|s| async move {
            s.wal_cell().borrow_mut().inject_fault(Fault {
                land_bytes: 0,
                errno: libc::EIO,
                scatter: None,
            });
        })
        .unwrap();
    let r = propose_all(&m, 0, vec![payload(0, 2), payload(0, 3)]);
    for x in &r {
        assert!(
            matches!(x, Err(ProposeError::StorageFailed(c)) if c.contains("Input/output")),
            "{r:?}"
        );
    }
    let failure = m.shards()[0]
        .failure()
        .expect("the shard reports its failure");
    assert!(failure.contains("Input/output"), "{failure}");
    // Every later request, on every group of the shard, fails the same way.
    for g in 0..2 {
        let r = propose_all(&m, g, vec![payload(g, 4)]);
        assert!(
            matches!(&r[0], Err(ProposeError::StorageFailed(_))),
            "{r:?}"
        );
    }
    m.stop().unwrap();
}

#[test]
fn a_group_at_its_limit_of_proposals_in_flight_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(13, 1, 1, 1, 1, 20_000);
    let rt = RuntimeConfig {
        max_inflight_proposals: 4,
        ..runtime()
    };
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, rt, None)).unwrap();
    wait_until(10, "group 0 to elect", || leader_of(&[&m], 0) == Some(1));
    // Ten proposals started in one go (their tasks run before the loop's
    // next turn, and a commit needs a flush): four fit, six are refused.
    let r = propose_all(&m, 0, (0..10).map(|i| payload(0, i)).collect());
    let ok = r.iter().filter(|x| x.is_ok()).count();
    let busy = r.iter().filter(|x| **x == Err(ProposeError::Busy)).count();
    assert_eq!((ok, busy), (4, 6), "{r:?}");
    // Once they are applied the group takes proposals again.
    assert!(propose_all(&m, 0, vec![payload(0, 10)])[0].is_ok());
    m.stop().unwrap();
}

#[test]
fn a_group_at_its_limit_of_bytes_in_flight_answers_busy_and_too_large_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(14, 1, 1, 1, 1, 20_000);
    let rt = RuntimeConfig {
        max_entry_bytes: 1000,
        max_uncommitted_bytes: 2500,
        ..runtime()
    };
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, rt, None)).unwrap();
    wait_until(10, "group 0 to elect", || leader_of(&[&m], 0) == Some(1));
    let big = Bytes::from(vec![1u8; 1000]);
    let r = propose_all(&m, 0, vec![big.clone(), big.clone(), big.clone()]);
    assert_eq!(r.iter().filter(|x| x.is_ok()).count(), 2, "{r:?}");
    assert_eq!(r[2], Err(ProposeError::Busy));
    let r = propose_all(&m, 0, vec![Bytes::from(vec![1u8; 1001])]);
    assert_eq!(
        r[0],
        Err(ProposeError::TooLarge {
            bytes: 1001,
            limit: 1000
        })
    );
    m.stop().unwrap();
}

#[test]
fn a_data_directory_refuses_another_cluster_member_or_shard_count() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(15, 2, 1, 4, 1, 20_000);
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, runtime(), None)).unwrap();
    m.stop().unwrap();

    let other = cluster(16, 2, 1, 4, 1, 20_000);
    match MemberRuntime::start(member_config(dir.path(), &other, 1, runtime(), None)) {
        Err(BootError::ForeignCluster {
            found, expected, ..
        }) => assert_eq!((found, expected), (15, 16)),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started under another cluster id"),
    }
    match MemberRuntime::start(member_config(dir.path(), &c, 2, runtime(), None)) {
        Err(BootError::WrongMember {
            found, expected, ..
        }) => assert_eq!((found, expected), (1, 2)),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started as another member"),
    }
    let more_shards = cluster(15, 2, 2, 4, 1, 20_000);
    match MemberRuntime::start(member_config(dir.path(), &more_shards, 1, runtime(), None)) {
        Err(BootError::ShardCountChanged {
            found, expected, ..
        }) => assert_eq!((found, expected), (1, 2)),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started with another shard count"),
    }
    // Bootstrap refuses a directory that is a member's already, restart
    // one that is not.
    assert!(matches!(
        MemberRuntime::bootstrap(member_config(dir.path(), &c, 1, runtime(), None)),
        Err(BootError::AlreadyBootstrapped { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        MemberRuntime::restart(member_config(empty.path(), &c, 1, runtime(), None)),
        Err(BootError::NotBootstrapped { .. })
    ));
    // The right identity still starts.
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, runtime(), None)).unwrap();
    m.stop().unwrap();
}

#[test]
fn a_lone_proposal_costs_one_flush_and_its_commit_index_follows_at_the_next_tick() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(17, 1, 1, 1, 1, 20_000);
    // A slow clock: the group leads at once (it campaigns at bootstrap),
    // and no tick comes while the proposals run.
    let rt = RuntimeConfig {
        tick: std::time::Duration::from_secs(1),
        ..runtime()
    };
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, rt, None)).unwrap();
    wait_until(10, "group 0 to elect", || leader_of(&[&m], 0) == Some(1));
    let (flushes, pending) = m.shards()[0]
        .call(|s| async move {
            let node = s.node(0).unwrap();
            let before = s.stats().wal.flushes;
            for i in 0..5 {
                node.propose(payload(0, i)).await.unwrap();
            }
            (s.stats().wal.flushes - before, s.wal().has_pending())
        })
        .unwrap();
    // One flush per proposal: the hard state that commits an entry waits
    // in the WAL and goes out with the next proposal's entries.
    assert_eq!(flushes, 5);
    assert!(pending, "the last commit index is queued, not flushed");
    // The next tick flushes it.
    wait_until(10, "the tick's flush", || {
        m.shards()[0]
            .call(|s| async move { !s.wal().has_pending() && !s.wal().flush_in_flight() })
            .unwrap()
    });
    m.stop().unwrap();
}

type Slot = std::sync::Arc<std::sync::Mutex<Option<Result<u64, ProposeError>>>>;

/// Starts a proposal on `group`'s shard; its outcome lands in the slot.
fn start_proposal(m: &MemberRuntime, group: u64, p: Bytes) -> Slot {
    let slot = Slot::default();
    let out = slot.clone();
    m.shard_of(group)
        .call(move |s| async move {
            let n = s.node(group).unwrap();
            glommio::spawn_local(async move {
                let r = n.propose(p).await;
                *out.lock().unwrap() = Some(r);
            })
            .detach();
        })
        .unwrap();
    slot
}

/// A full disk on a one-member cluster (nobody to hand leadership to):
/// proposals fail fast with `StorageFull` (not a timeout, not a failed
/// shard), everything acknowledged before stays applied, and once there
/// is room the refused write goes through and proposals are taken again.
#[test]
fn a_full_disk_fails_proposals_fast_with_storage_full_and_recovers_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(16, 1, 1, 1, 1, 20_000);
    let rt = RuntimeConfig {
        wal_segment_size: 64 << 10,
        wal_max_flush_bytes: 16 << 10,
        max_entry_bytes: 4 << 10,
        request_timeout_ticks: 2000,
        ..runtime()
    };
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, rt, None)).unwrap();
    wait_until(10, "group 0 to elect", || leader_of(&[&m], 0) == Some(1));
    set_quota(&m, true);
    // Fill it: 4 KiB entries, one at a time, until one is not answered.
    // The proposal that met the full disk waits (its entry is in the log,
    // not on disk: never acknowledged); the next ones fail at once.
    let big = |i: u64| Bytes::from(vec![(i % 250) as u8 + 1; 4 << 10]);
    let mut acked = Vec::new();
    let mut i = 0;
    let pending = loop {
        let slot = start_proposal(&m, 0, big(i));
        let t = std::time::Instant::now();
        while slot.lock().unwrap().is_none() && t.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let got = slot.lock().unwrap().clone();
        match got {
            Some(Ok(idx)) => acked.push((idx, big(i))),
            Some(Err(e)) => panic!("proposal {i} on a filling disk: {e} (it must wait)"),
            None => break slot,
        }
        i += 1;
        assert!(i < 200, "the WAL never filled");
    };
    assert!(
        m.shards()[0].failure().is_none(),
        "a full disk is not a failure"
    );
    // Fails fast, typed.
    let start = std::time::Instant::now();
    let r = propose_all(&m, 0, vec![payload(0, 1000)]);
    match &r[0] {
        Err(ProposeError::StorageFull(cause)) => {
            assert!(cause.contains("max_disk_bytes"), "{cause}")
        }
        other => panic!("expected StorageFull, got {other:?}"),
    }
    assert!(
        m.shards()[0]
            .call(|s| async move { s.storage_full() })
            .unwrap()
            .is_some()
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    // Nothing unacknowledged was applied; everything acknowledged is.
    assert_eq!(applied(&m, 0), acked);
    // Room again: the waiting proposal completes, new ones are taken.
    set_quota(&m, false);
    wait_until(10, "the waiting proposal to complete", || {
        pending.lock().unwrap().is_some()
    });
    let idx = pending
        .lock()
        .unwrap()
        .clone()
        .unwrap()
        .expect("the proposal that met the full disk completes once there is room");
    acked.push((idx, big(i)));
    let more = propose_all(&m, 0, (0..5).map(|k| payload(0, 2000 + k)).collect());
    for (k, r) in more.into_iter().enumerate() {
        acked.push((r.expect("taken again"), payload(0, 2000 + k as u64)));
    }
    assert_eq!(applied(&m, 0), acked);
    assert!(
        m.shards()[0]
            .call(|s| async move { s.storage_full() })
            .unwrap()
            .is_none()
    );
    assert!(
        m.shards()[0]
            .call(|s| async move { s.stats().wal.no_space })
            .unwrap()
            > 0
    );
    m.stop().unwrap();
    // And a restart recovers all of it.
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, runtime(), None)).unwrap();
    wait_until(10, "group 0 to elect", || leader_of(&[&m], 0) == Some(1));
    let last = acked.last().unwrap().0;
    wait_until(10, "group 0 to reapply", || status(&m, 0).applied >= last);
    assert_eq!(applied(&m, 0), acked);
    m.stop().unwrap();
}

/// With `inline_flush_bytes`, a lone proposal's flush runs on the shard's
/// thread (a one-member group's leader races nobody), and each proposal is
/// answered. (A slow clock, as above: no tick's flush joins in.)
#[test]
fn lone_proposals_flush_inline_on_the_shards_thread_and_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(18, 1, 1, 1, 1, 20_000);
    let rt = RuntimeConfig {
        tick: std::time::Duration::from_secs(1),
        inline_flush_bytes: 4096,
        ..runtime()
    };
    let m = MemberRuntime::start(member_config(dir.path(), &c, 1, rt, None)).unwrap();
    wait_until(10, "group 0 to elect", || leader_of(&[&m], 0) == Some(1));
    let stats = |m: &MemberRuntime| {
        m.shards()[0]
            .call(|s| async move { s.stats().wal })
            .unwrap()
    };
    let before = stats(&m);
    let mut last = 0;
    for i in 0..5 {
        let slot = start_proposal(&m, 0, payload(0, i));
        wait_until(10, &format!("proposal {i} to be answered"), || {
            slot.lock().unwrap().is_some()
        });
        let index = slot.lock().unwrap().take().unwrap().unwrap();
        assert!(index > last);
        last = index;
    }
    let after = stats(&m);
    // Every proposal's flush inline (a tick's ring flush may add one
    // carrying a commit index).
    assert_eq!(after.inline_flushes - before.inline_flushes, 5, "{after:?}");
    assert!(after.flushes - before.flushes >= 5, "{after:?}");
    m.stop().unwrap();
}
