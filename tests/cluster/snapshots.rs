//! Log compaction and snapshots, three members over TCP with the log
//! group's state machine (`server::log_apply::LogApply`): after a
//! truncate the members compact their logs (snapshot files, the WAL's
//! first index moves), a member that was down catches up by snapshot and
//! then by log, and a member restarted on its own compacted WAL restores
//! from its snapshot file. A snapshot file the WAL needs that is missing
//! or corrupt stops the member's start with a typed error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corelog::cluster::Cluster;
use corelog::log::{ApplyOutcome, BatchBuilder, BatchLimits, Command};
use corelog::node::ProposeError;
use corelog::server::log_apply::LogApply;
use corelog::shard::snapfile;
use corelog::shard::{
    BootError, MemberRuntime, PeersFactory, RuntimeConfig, SnapshotLoadError, StartError,
    TcpSettings, shard_dir, tcp_peers,
};
use corelog::transport::NetOptions;
use tempfile::TempDir;

use super::support::*;

fn tcp() -> PeersFactory {
    tcp_peers(TcpSettings {
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(100),
        options: NetOptions {
            connect_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_millis(500),
            // Snapshots of a few hundred bytes travel in several chunks.
            snapshot_chunk_bytes: 64,
            ..NetOptions::default()
        },
        ..TcpSettings::default()
    })
}

/// Compaction at every chance, so that one truncate compacts.
fn rt() -> RuntimeConfig {
    RuntimeConfig {
        compact_threshold_entries: 1,
        rebalance_leaders: false,
        ..runtime()
    }
}

struct Three {
    cluster: Arc<Cluster>,
    dirs: Vec<TempDir>,
    members: Vec<Option<MemberRuntime>>,
    rt: RuntimeConfig,
}

impl Three {
    fn start(cluster_id: u64) -> Three {
        Three::start_with(cluster_id, rt())
    }

    fn start_with(cluster_id: u64, rt: RuntimeConfig) -> Three {
        Three::start_in(cluster_id, rt, None)
    }

    /// As `start_with`, member 3's data directory inside `dir3` if given.
    fn start_in(cluster_id: u64, rt: RuntimeConfig, dir3: Option<&Path>) -> Three {
        let cluster = tcp_cluster(cluster_id, 3, 1, 1, 3);
        let dirs: Vec<TempDir> = (0..3)
            .map(|k| match dir3 {
                Some(d) if k == 2 => tempfile::tempdir_in(d).unwrap(),
                _ => tempfile::tempdir().unwrap(),
            })
            .collect();
        let mut t = Three {
            cluster,
            dirs,
            members: vec![None, None, None],
            rt,
        };
        let started: Vec<MemberRuntime> = std::thread::scope(|s| {
            let hs: Vec<_> = (1..=3u64)
                .map(|id| {
                    let cfg = t.config(id);
                    s.spawn(move || MemberRuntime::start(cfg).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, m) in started.into_iter().enumerate() {
            t.members[i] = Some(m);
        }
        t
    }

    fn config(&self, id: u64) -> corelog::shard::MemberConfig {
        let mut cfg = member_config(
            self.dirs[(id - 1) as usize].path(),
            &self.cluster,
            id,
            self.rt.clone(),
            Some(tcp()),
        );
        cfg.apply = LogApply::factory();
        cfg
    }

    fn try_start_member(&mut self, id: u64) -> Result<(), BootError> {
        let m = MemberRuntime::start(self.config(id))?;
        self.members[(id - 1) as usize] = Some(m);
        Ok(())
    }

    fn stop_member(&mut self, id: u64) {
        if let Some(m) = self.members[(id - 1) as usize].take() {
            m.stop().unwrap();
        }
    }

    fn m(&self, id: u64) -> &MemberRuntime {
        self.members[(id - 1) as usize].as_ref().expect("running")
    }

    fn running(&self) -> Vec<&MemberRuntime> {
        self.members.iter().flatten().collect()
    }

    fn leader(&self) -> u64 {
        let mut l = None;
        wait_until(20, "group 0 to elect", || {
            l = leader_of(&self.running(), 0);
            l.is_some()
        });
        l.unwrap()
    }

    /// Proposes `data` through the leader until it is applied; its outcome.
    fn propose(&self, data: Bytes) -> ApplyOutcome {
        for _ in 0..100 {
            let l = self.leader();
            let d = data.clone();
            let r = self
                .m(l)
                .shard_of(0)
                .call(move |s| async move { s.node(0).unwrap().propose_applied(d).await })
                .unwrap();
            match r {
                Ok(a) => return a.outcome.expect("LogApply reports every entry"),
                Err(ProposeError::NotLeader { .. } | ProposeError::Dropped) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("proposals kept being refused");
    }

    /// Appends `n` batches of 4 records of producer `PRODUCER` from
    /// sequence `seq`; returns the first offset. From sequence 0, the
    /// group first gives the producer its id (the group's first).
    fn append(&self, seq: u64, n: u64) -> u64 {
        if seq == 0 {
            assert_eq!(
                self.propose(Command::InitProducer.encode()),
                ApplyOutcome::ProducerInit {
                    producer_id: PRODUCER
                }
            );
        }
        let mut first = None;
        for k in 0..n {
            match self.propose(batch(PRODUCER, (seq + k) * 4)) {
                ApplyOutcome::Appended { base_offset, .. } => {
                    first.get_or_insert(base_offset);
                }
                o => panic!("batch {k}: {o:?}"),
            }
        }
        first.unwrap()
    }

    fn truncate(&self, before: u64) {
        let o = self.propose(
            Command::Truncate {
                before_offset: before,
            }
            .encode(),
        );
        assert_eq!(
            o,
            ApplyOutcome::Truncated {
                earliest_offset: before
            }
        );
    }

    fn stop_all(mut self) {
        for id in 1..=3 {
            self.stop_member(id);
        }
    }
}

/// The id the group gives its first producer.
const PRODUCER: u64 = 1;

fn batch(producer: u64, seq: u64) -> Bytes {
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(producer, seq, 0);
    for _ in 0..4 {
        w.push(&[7u8; 100]).unwrap();
    }
    w.finish().unwrap()
}

/// (earliest, retention, next offset, applied index, dedup table's last
/// sequence of producer `PRODUCER`) of group 0 on `m`.
fn log_view(m: &MemberRuntime) -> (u64, u64, u64, u64, Option<u64>) {
    m.shard_of(0)
        .call(|s| async move {
            s.node(0).unwrap().with_apply(|a| {
                let l = a.as_any().downcast_ref::<LogApply>().unwrap();
                let st = l.state();
                (
                    st.earliest_offset(),
                    st.retention_offset(),
                    st.next_offset(),
                    st.applied_index(),
                    st.dedup().last_seq(PRODUCER),
                )
            })
        })
        .unwrap()
}

/// (first index, snapshot index) of group 0 in `m`'s WAL.
fn wal_view(m: &MemberRuntime) -> (u64, u64) {
    m.shard_of(0)
        .call(|s| async move {
            let w = s.wal();
            (w.first_index(0), w.snapshot(0).map_or(0, |x| x.index))
        })
        .unwrap()
}

fn snap_dir(t: &Three, id: u64) -> PathBuf {
    snapfile::dir_of(&shard_dir(t.dirs[(id - 1) as usize].path(), 0))
}

/// Waits until every running member compacted past `index`.
fn wait_compacted(t: &Three, ids: &[u64], index: u64) {
    for &id in ids {
        wait_until(20, &format!("member {id} to compact past {index}"), || {
            wal_view(t.m(id)).0 > index
        });
    }
}

fn files(dir: &Path) -> Vec<(u64, u64)> {
    snapfile::list(dir).unwrap()
}

#[test]
fn a_member_behind_the_compaction_catches_up_by_snapshot_then_by_log() {
    let mut t = Three::start(71);
    t.append(0, 10);
    // 10 batches of 4 records: offsets 0..40.
    let idx = status(t.m(1), 0).applied;
    wait_until(20, "member 3 to apply", || status(t.m(3), 0).applied >= idx);
    t.stop_member(3);
    t.append(10, 10);
    t.truncate(60);
    let truncated_at = status(t.m(t.leader()), 0).applied;
    // Entries holding offsets below 60 (the first 15 batches) go.
    wait_compacted(&t, &[1, 2], idx);
    for id in [1, 2] {
        let (first, snap) = wal_view(t.m(id));
        assert!(
            snap > idx && first == snap + 1,
            "member {id}: {first} {snap}"
        );
        // Older files go once the newer compaction is durable.
        wait_until(20, "older snapshot files to go", || {
            files(&snap_dir(&t, id)) == vec![(0, snap)]
        });
    }
    t.try_start_member(3).unwrap();
    t.append(20, 5);
    let last = status(t.m(t.leader()), 0).applied;
    for id in 1..=3 {
        wait_until(20, &format!("member {id} to apply {last}"), || {
            status(t.m(id), 0).applied >= last
        });
    }
    let st = status(t.m(3), 0).stats;
    assert_eq!(st.snapshots_installed, 1, "member 3 caught up by snapshot");
    // In chunks of 64 bytes, reassembled.
    let net3 = t
        .m(3)
        .shard_of(0)
        .call(|s| async move { s.net_stats() })
        .unwrap()
        .unwrap();
    assert_eq!(net3.snapshots_assembled, 1);
    assert!(net3.snapshot_chunks_received > 2, "{net3:?}");
    assert_eq!(net3.dropped_snapshot_incomplete, 0);
    let (_, snap3) = wal_view(t.m(3));
    assert!(snap3 > idx && snap3 < truncated_at + 6);
    assert!(files(&snap_dir(&t, 3)).contains(&(0, snap3)));
    // Every replica agrees on the replicated state; member 3 reads from
    // the snapshot's next offset, the others from the retention offset.
    let views: Vec<_> = (1..=3).map(|id| log_view(t.m(id))).collect();
    for v in &views {
        assert_eq!((v.1, v.2, v.3, v.4), (60, 100, last, Some(99)), "{views:?}");
    }
    assert_eq!(views[0].0, 60);
    assert_eq!(views[1].0, 60);
    assert!(views[2].0 >= 60 && views[2].0 <= 80, "{views:?}");
    // A retry of a batch the snapshot's dedup table remembers is a
    // duplicate with its original offsets, on whichever member leads.
    assert_eq!(
        t.propose(batch(PRODUCER, 24 * 4)),
        ApplyOutcome::Duplicate {
            base_offset: 96,
            count: 4
        }
    );
    t.stop_all();
}

#[test]
fn a_member_restarted_on_its_compacted_wal_restores_from_its_snapshot_file() {
    let mut t = Three::start(72);
    t.append(0, 10);
    t.truncate(20);
    t.append(10, 3);
    let last = status(t.m(t.leader()), 0).applied;
    for id in 1..=3 {
        wait_until(20, "apply", || status(t.m(id), 0).applied >= last);
    }
    wait_compacted(&t, &[1, 2, 3], 5);
    let before = log_view(t.m(2));
    let (_, snap) = wal_view(t.m(2));
    t.stop_member(2);
    t.try_start_member(2).unwrap();
    wait_until(20, "member 2 to apply again", || {
        status(t.m(2), 0).applied >= last
    });
    assert_eq!(wal_view(t.m(2)).1, snap);
    assert_eq!(log_view(t.m(2)), before, "same offsets after the restart");
    assert_eq!(status(t.m(2), 0).stats.snapshots_installed, 0);
    t.stop_all();
}

#[test]
fn a_missing_or_corrupt_snapshot_file_stops_the_start_with_a_typed_error() {
    let mut t = Three::start(73);
    t.append(0, 6);
    t.truncate(16);
    wait_compacted(&t, &[1, 2, 3], 3);
    t.stop_member(3);
    let dir = snap_dir(&t, 3);
    // The file the WAL names (a newer one may exist whose WAL records
    // were not yet flushed when the member stopped).
    let index = {
        let w = corelog::wal::Wal::open(
            shard_dir(t.dirs[2].path(), 0),
            corelog::wal::Options::new(t.cluster.id(), 0),
        )
        .unwrap();
        w.snapshot(0).unwrap().index
    };
    assert!(index > 0 && files(&dir).contains(&(0, index)), "{index}");
    let g = 0;
    let path = snapfile::path_of(&dir, g, index);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    match t.try_start_member(3) {
        Err(BootError::Shard {
            error:
                StartError::Snapshot {
                    group: 0,
                    error: SnapshotLoadError::Refused(_),
                    ..
                },
            ..
        }) => {}
        Err(e) => panic!("unexpected error: {e}"),
        Ok(()) => panic!("started on a corrupt snapshot"),
    }
    std::fs::remove_file(&path).unwrap();
    match t.try_start_member(3) {
        Err(BootError::Shard {
            error:
                StartError::Snapshot {
                    group: 0,
                    error: SnapshotLoadError::File(snapfile::SnapFileError::Missing { path: p }),
                    ..
                },
            ..
        }) => assert_eq!(p, path),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(()) => panic!("started without its snapshot"),
    }
    std::fs::write(&path, &good).unwrap();
    t.try_start_member(3).unwrap();
    t.stop_all();
}

/// Segment files (`*.wal`) in member `id`'s shard directory: the ones
/// holding records and the spare prepared ahead (recycled ones wait
/// under another name).
fn segment_files(t: &Three, id: u64) -> usize {
    std::fs::read_dir(shard_dir(t.dirs[(id - 1) as usize].path(), 0))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".wal")))
        .count()
}

#[test]
fn compaction_gives_wal_segments_back_and_a_restart_recovers_the_rest() {
    // 16 KiB segments: 200 batches of about 450 bytes fill several.
    let mut t = Three::start_with(
        74,
        RuntimeConfig {
            wal_segment_size: 16 << 10,
            ..rt()
        },
    );
    t.append(0, 200);
    let last = status(t.m(t.leader()), 0).applied;
    for id in 1..=3 {
        wait_until(20, "apply", || status(t.m(id), 0).applied >= last);
    }
    let full: Vec<usize> = (1..=3).map(|id| segment_files(&t, id)).collect();
    assert!(full.iter().all(|&n| n >= 8), "{full:?}");
    // All but the last two batches go.
    t.truncate(792);
    t.append(200, 2);
    wait_compacted(&t, &[1, 2, 3], last - 3);
    for id in 1..=3 {
        let k = (id - 1) as usize;
        wait_until(
            20,
            &format!("member {id}'s WAL to give segments back"),
            || segment_files(&t, id) <= 4,
        );
        eprintln!(
            "member {id}: {} segment files, {} after compaction",
            full[k],
            segment_files(&t, id)
        );
    }
    // A restart recovers what is left, the same state.
    let last = status(t.m(t.leader()), 0).applied;
    for id in 1..=3 {
        wait_until(20, "apply", || status(t.m(id), 0).applied >= last);
    }
    let before = log_view(t.m(2));
    assert_eq!((before.0, before.2, before.4), (792, 808, Some(807)));
    t.stop_member(2);
    t.try_start_member(2).unwrap();
    wait_until(20, "member 2 to apply again", || {
        status(t.m(2), 0).applied >= last
    });
    assert_eq!(log_view(t.m(2)), before, "same offsets after the restart");
    assert_eq!(
        t.propose(batch(PRODUCER, 201 * 4)),
        ApplyOutcome::Duplicate {
            base_offset: 804,
            count: 4
        }
    );
    t.stop_all();
}

/// The directory the inner test runs in, set by the outer one.
const SNAP_TMPFS_DIR: &str = "CORELOG_SNAP_TMPFS_DIR";

/// Issue 7: a snapshot file that finds no room (ENOSPC) is not a disk
/// failing under the shard: the compaction is tried again later, and the
/// shard goes on. Member 3's data lives on a 4 MiB tmpfs in a private
/// mount namespace (`unshare -m`), where this test binary runs
/// `inner_snapshot_files_on_a_full_tmpfs`; needs root (CI is root and
/// says so with `CORELOG_ROOT_TESTS=1`, and then this fails instead of
/// skipping).
#[test]
fn a_snapshot_file_without_room_is_retried_and_stops_nothing() {
    let root = unsafe { libc::geteuid() } == 0;
    let required = std::env::var("CORELOG_ROOT_TESTS").is_ok_and(|v| v == "1");
    if !root {
        assert!(!required, "CORELOG_ROOT_TESTS=1 but not running as root");
        eprintln!("SKIPPED: needs root to mount a tmpfs (CI runs it as root)");
        return;
    }
    let mnt = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "mount -t tmpfs -o size=4m corelog-snap-test '{dir}' && exec '{exe}' \
         snapshots::inner_snapshot_files_on_a_full_tmpfs --exact --ignored --nocapture \
         --test-threads 1",
        dir = mnt.path().display(),
        exe = exe.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env(SNAP_TMPFS_DIR, mnt.path())
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inner test failed:\n{text}");
    assert!(
        text.contains("inner_snapshot_files_on_a_full_tmpfs ... ok"),
        "the inner test did not run:\n{text}"
    );
}

#[test]
#[ignore = "run by a_snapshot_file_without_room_is_retried_... inside its tmpfs"]
fn inner_snapshot_files_on_a_full_tmpfs() {
    let dir = PathBuf::from(std::env::var(SNAP_TMPFS_DIR).expect("run by the outer test"));
    let t = Three::start_in(81, rt(), Some(&dir));
    t.append(0, 10);
    let applied = status(t.m(t.leader()), 0).applied;
    for id in 1..=3 {
        wait_until(20, "apply", || status(t.m(id), 0).applied >= applied);
    }
    let first = wal_view(t.m(3)).0;
    // Ballast takes what member 3's WAL (its active segment and spare)
    // leaves of the tmpfs.
    let ballast = dir.join("ballast");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![7u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // Offsets below 20 go: every member compacts, member 3 finds no room
    // for its snapshot file.
    t.truncate(20);
    wait_compacted(&t, &[1, 2], first);
    let applied = status(t.m(t.leader()), 0).applied;
    wait_until(20, "member 3 to apply the truncate", || {
        status(t.m(3), 0).applied >= applied
    });
    // Time for several attempts (a tick is 5 ms, a retry 10 ticks).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        t.m(3).shard_of(0).failure(),
        None,
        "a full disk under a snapshot file stopped member 3's shard"
    );
    assert_eq!(wal_view(t.m(3)).0, first, "member 3 compacted with no room");
    // Room again: the compaction is tried again and goes through.
    std::fs::remove_file(&ballast).unwrap();
    wait_compacted(&t, &[3], first);
    let (_, snap) = wal_view(t.m(3));
    assert!(files(&snap_dir(&t, 3)).contains(&(0, snap)));
    assert_eq!(t.m(3).shard_of(0).failure(), None);
    t.stop_all();
}
