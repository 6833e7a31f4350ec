//! The binary's other faces: a bad configuration refused naming the
//! field, the command-line client, `corelog bench`.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::*;

#[test]
fn a_bad_configuration_is_refused_naming_the_field() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let d = dir.path().to_str().unwrap();
    let m = "1=a@127.0.0.1:1/127.0.0.1:2";
    let (code, err) = run(&[
        "server",
        "--cluster-id",
        "1",
        "--data-dir",
        d,
        "--member",
        m,
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("member_id: required"), "{err}");
    let (code, err) = run(&[
        "server",
        "--cluster-id",
        "1",
        "--member-id",
        "2",
        "--data-dir",
        d,
        "--member",
        m,
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("member_id: 2 is not in the member list"),
        "{err}"
    );
    let (code, err) = run(&[
        "server",
        "--cluster-id",
        "1",
        "--member-id",
        "1",
        "--data-dir",
        d,
        "--member",
        "1=a@nowhere",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--member"), "{err}");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "cluster_id = 1\nmember_id = 1\n[runtime]\ntick = 5\n").unwrap();
    let (code, err) = run(&["server", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("runtime.tick"), "{err}");
}

#[test]
fn the_command_line_client_appends_reads_tails_truncates_and_changes_members() {
    let _g = serial();
    let mut t = Three::new(2);
    t.start_all();
    let seed = t.clients[1].to_string();
    let cli = |args: &[&str]| {
        let out = Command::new(bin())
            .args(args.iter().take(1))
            .args(["-s", &seed])
            .args(&args[1..])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(
        cli(&["append", "1", "hello", "world"]),
        "group 1: offsets 0..=1\n"
    );
    assert_eq!(cli(&["append", "1", "again"]), "group 1: offsets 2..=2\n");
    assert_eq!(cli(&["read", "1"]), "0\thello\n1\tworld\n2\tagain\n");
    assert_eq!(
        cli(&["read", "1", "--from", "1", "--any-replica"])
            .lines()
            .count(),
        2
    );
    assert_eq!(
        cli(&["tail", "1", "--from", "1", "--count", "2"]),
        "1\tworld\n2\tagain\n"
    );
    assert_eq!(cli(&["truncate", "1", "1"]), "group 1: earliest offset 1\n");
    assert!(cli(&["members", "1"]).starts_with("group 1: voters [1, 2, 3], learners []"));
    let status = cli(&["status"]);
    assert!(
        status.contains("cluster 0x4d: 3 members, 2 groups"),
        "{status}"
    );
    assert!(status.contains("1..3"), "{status}");
}

#[test]
fn bench_runs_a_local_cluster_prints_throughput_and_latency_and_removes_its_data() {
    let _g = serial();
    let bench = |extra: &[&str]| {
        let child = Command::new(bin())
            .args(["bench", "--local-cluster", "3", "--seconds", "1"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("records/s")
                && text.contains("0 failed")
                && text.contains("errors: none"),
            "{text}"
        );
        assert!(text.contains("p99.9"), "{text}");
        // Its data directory (named by its pid) is gone.
        let dir = std::env::temp_dir().join(format!("corelog-bench-{pid}"));
        assert!(!dir.exists(), "{} left behind", dir.display());
        text
    };
    let text = bench(&["--groups", "2"]);
    assert!(
        text.contains("3 members on 127.0.0.1 (fsync on)")
            && text.contains("2 groups, 3 connections x 32 in flight"),
        "{text}"
    );
    // Single records through the batching producer.
    let text = bench(&["--groups", "1", "--producer", "--inflight", "512"]);
    assert!(text.contains("batching producer"), "{text}");
}

/// `--unsafe-no-fsync` (benchmarks only) says so at start, in the serving
/// line, and in every status answer; the member still appends and reads.
/// Without it, status says nothing of the kind.
#[test]
fn unsafe_no_fsync_is_printed_at_start_and_in_every_status_answer() {
    use corelog::client::{Client, ClientOptions};

    let _g = serial();
    let (_d, srv) = solo_server(1, 1, |f| f.unsafe_no_fsync = Some(true));
    assert!(srv.serving_line().contains("UNSAFE: NO FSYNC"));
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    assert!(c.cluster_status().unwrap().unsafe_no_fsync);
    assert_eq!(c.append(0, &[b"fast"]).unwrap().base_offset, 0);
    let r = c
        .read(0, 0, 0, corelog::clientpb::Consistency::Linearizable)
        .unwrap();
    assert_eq!(r.records.len(), 1);
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();

    let (_d, srv) = solo_server(1, 1, |_| {});
    assert!(!srv.serving_line().contains("UNSAFE"));
    let c = Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap();
    assert!(!c.cluster_status().unwrap().unsafe_no_fsync);
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();

    // The binary prints the banner on stderr before it serves.
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(2);
    let child = spawn_server(&[
        "server".into(),
        "--cluster-id".into(),
        "5".into(),
        "--member-id".into(),
        "1".into(),
        "--data-dir".into(),
        dir.path().display().to_string(),
        "--member".into(),
        format!("1=a@127.0.0.1:{}/127.0.0.1:{}", p[0], p[1]),
        "--cpus".into(),
        "none".into(),
        "--unsafe-no-fsync".into(),
    ]);
    let mut err = String::new();
    while let Ok(l) = child.stderr.recv_timeout(Duration::from_secs(2)) {
        err.push_str(&l);
        err.push('\n');
    }
    assert!(err.contains("UNSAFE: --unsafe-no-fsync"), "{err}");
    let out = std::process::Command::new(bin())
        .args(["status", "--server", &format!("127.0.0.1:{}", p[1])])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("UNSAFE: no fsync"), "{out}");
}

/// The server logs through `tracing`: `--log-format json` writes one JSON
/// object per line with its level; `RUST_LOG` filters by level (at `warn`
/// the info lines of a clean stop are gone, at `info` they are there).
#[test]
fn server_logs_are_leveled_filtered_by_rust_log_and_json_on_request() {
    let _g = serial();
    let run = |format: &str, filter: &str| -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = free_ports(2);
        let args: Vec<String> = [
            "server",
            "--cluster-id",
            "6",
            "--member-id",
            "1",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--member",
            &format!("1=a@127.0.0.1:{}/127.0.0.1:{}", p[0], p[1]),
            "--cpus",
            "none",
            "--log-format",
            format,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut child = spawn_server_env(&args, &[("RUST_LOG", filter)]);
        wait_serving(&mut child);
        child.signal(libc::SIGTERM);
        assert!(child.wait_exit(20).success());
        let mut lines = Vec::new();
        while let Ok(l) = child.stderr.recv_timeout(Duration::from_secs(1)) {
            lines.push(l);
        }
        lines
    };
    let json = run("json", "info");
    let stop = json
        .iter()
        .find(|l| l.contains("stopping (no new connections"))
        .unwrap_or_else(|| panic!("no stop line in {json:?}"));
    assert!(
        stop.starts_with('{') && stop.ends_with('}'),
        "not a JSON object: {stop}"
    );
    assert!(stop.contains("\"level\":\"INFO\""), "{stop}");
    assert!(stop.contains("\"signal\":\"SIGTERM\""), "{stop}");
    assert!(json.iter().any(|l| l.contains("\"message\":\"stopped\"")));

    let text = run("text", "info");
    let stop = text
        .iter()
        .find(|l| l.contains("stopping (no new connections"))
        .unwrap_or_else(|| panic!("no stop line in {text:?}"));
    assert!(stop.contains("INFO") && !stop.starts_with('{'), "{stop}");

    let quiet = run("text", "warn");
    assert!(
        !quiet.iter().any(|l| l.contains("stopping")),
        "info lines at RUST_LOG=warn: {quiet:?}"
    );
}
