//! A member whose file system fills up, as a real process (issue 10's
//! disk-full fault): its data directory is a 3 MiB tmpfs mounted in a
//! private mount namespace (`unshare -m`), filled with ballast and freed
//! again from inside that namespace (`nsenter`). Needs root: CI runs as
//! root and sets `CORELOG_ROOT_TESTS=1` (.ci/run), and then the test
//! fails rather than skips without it.

use std::process::Command;
use std::time::{Duration, Instant};

use corelog::clientpb::{AppendRequest, Consistency, Request, error::Kind, request::Op};

use super::support::*;

/// Segments small enough that a few appends need a new one.
const SEGMENT: &str = "262144";

/// Whether this test can mount a tmpfs; if not, and CI says it must,
/// fail.
fn can_mount() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let required = std::env::var("CORELOG_ROOT_TESTS").is_ok_and(|v| v == "1");
    if !root {
        assert!(!required, "CORELOG_ROOT_TESTS=1 but not running as root");
        eprintln!("SKIPPED: needs root to mount a tmpfs (CI runs it as root)");
    }
    root
}

/// Runs `script` with `sh -c` inside the mount namespace of process `pid`.
fn in_namespace(pid: i32, script: &str) -> std::process::Output {
    Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "--", "sh", "-c", script])
        .output()
        .expect("run nsenter")
}

/// Appends `n` batches of 16 records of 4 KiB (64 KiB each) to `group`.
fn append_big(c: &corelog::client::Client, group: u64, tag: &str, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let recs: Vec<Vec<u8>> = (0..16)
                .map(|k| {
                    let mut v = format!("{tag}-{i}-{k}-").into_bytes();
                    v.resize(4096, b'.');
                    v
                })
                .collect();
            let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
            c.append(group, &refs)
                .unwrap_or_else(|e| panic!("append {tag}-{i}: {e}"))
                .base_offset
        })
        .collect()
}

#[test]
fn a_member_whose_file_system_fills_gives_up_leadership_the_others_go_on_and_it_catches_up_once_space_is_freed()
 {
    let _g = serial();
    if !can_mount() {
        return;
    }
    let mut t = Three::new(1);
    let args = |t: &Three, id: u64| {
        let mut a = t.args(id, t.dirs[(id - 1) as usize].path());
        a.extend(["--wal-segment-bytes".to_string(), SEGMENT.to_string()]);
        a
    };
    for id in 1..=2u64 {
        t.procs[(id - 1) as usize] = Some(spawn_server_nowait(&args(&t, id)));
    }
    // Member 3 on its own small file system: mount it over the data
    // directory in a new mount namespace, then exec the server there.
    let data3 = t.dirs[2].path().to_path_buf();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=3m corelog-full \"$0\" && exec \"$@\"")
        .arg(&data3)
        .arg(bin())
        .args(args(&t, 3));
    t.procs[2] = Some(spawn_nowait(cmd));
    for p in t.procs.iter_mut().flatten() {
        wait_serving(p);
    }
    let pid3 = t.proc(3).pid();
    let df = in_namespace(pid3, &format!("df -k {}", data3.display()));
    assert!(
        String::from_utf8_lossy(&df.stdout).contains("corelog-full"),
        "member 3 is not on its tmpfs: {df:?}"
    );

    let c = t.client();
    let before = append_big(&c, 0, "before", 2);
    c.transfer_leader(0, 3).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.leader(&c, 0) != 3 {
        assert!(Instant::now() < deadline, "member 3 never led");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Fill it: the ballast takes what its segments leave.
    let fill = in_namespace(
        pid3,
        &format!(
            "cat /dev/zero > {}/ballast; df -k {}",
            data3.display(),
            data3.display()
        ),
    );
    let df = String::from_utf8_lossy(&fill.stdout).to_string();
    assert!(df.contains("100%"), "the tmpfs did not fill: {df}");

    // Appends go on: member 3 takes them until it needs a segment it
    // cannot make, then refuses, hands leadership over, and the client
    // moves on. Every append is acknowledged.
    let during = append_big(&c, 0, "during", 16);
    assert_eq!(during.len(), 16);
    let leader = t.leader(&c, 0);
    assert_ne!(leader, 3, "member 3 still leads on a full disk");
    // Member 3 is alive and never stopped a shard.
    assert!(
        t.proc(3).child.try_wait().unwrap().is_none(),
        "member 3 exited"
    );
    // It said so (the process polls its shards twice a second).
    let mut err3 = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !err3
        .iter()
        .any(|l: &String| l.contains("no room for its WAL"))
    {
        assert!(
            Instant::now() < deadline,
            "no warning from member 3: {err3:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        err3.extend(t.proc(3).stderr_lines());
    }
    assert!(
        err3.iter().any(|l| l.contains("No space left on device")),
        "{err3:?}"
    );
    // Asked directly, it answers at once: who leads, or that it is full.
    let mut s = std::net::TcpStream::connect(t.clients[2]).unwrap();
    let batch = c.build_batch(0, 0, &[b"direct"]).unwrap();
    let r = raw_call(
        &mut s,
        1,
        &Request {
            op: Some(Op::Append(AppendRequest { group: 0, batch })),
        },
    );
    match error_kind(r) {
        Kind::NotLeader(n) => assert_ne!(n.leader, 3),
        Kind::Unavailable(u) => assert!(u.reason.contains("storage full"), "{}", u.reason),
        other => panic!("member 3 on a full disk answered {other:?}"),
    }
    // Its replica is behind what was acknowledged.
    let on_leader = read_all_from(t.clients[(leader - 1) as usize], 0, Consistency::AnyReplica);
    let last = *during.last().unwrap();
    assert!(on_leader.iter().any(|(o, _)| *o == last));
    assert!(before.iter().all(|b| on_leader.iter().any(|(o, _)| o == b)));
    let on3 = read_all_from(t.clients[2], 0, Consistency::AnyReplica);
    assert!(
        on3.len() < on_leader.len(),
        "member 3 holds what it had no room for"
    );

    // Space freed: it writes what waited, catches up, and leads again.
    let rm = in_namespace(pid3, &format!("rm {}/ballast", data3.display()));
    assert!(rm.status.success(), "{rm:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let on3 = read_all_from(t.clients[2], 0, Consistency::AnyReplica);
        if on3.len() >= on_leader.len() {
            assert_eq!(on3[..on_leader.len()], on_leader[..], "member 3's replica");
            break;
        }
        assert!(Instant::now() < deadline, "member 3 never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !err3.iter().any(|l| l.contains("room for its WAL again")) {
        assert!(
            Instant::now() < deadline,
            "member 3 never said so: {err3:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        err3.extend(t.proc(3).stderr_lines());
    }
    assert!(
        !err3.iter().any(|l| l.contains("stopped serving")),
        "{err3:?}"
    );
    c.transfer_leader(0, 3).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.leader(&c, 0) != 3 {
        assert!(Instant::now() < deadline, "member 3 never led again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = append_big(&c, 0, "after", 2);
    assert!(after[0] > last);
    assert!(t.proc(3).child.try_wait().unwrap().is_none());
}
