//! `corelog bench`, the load generator, as a user runs it (real
//! processes): its JSON report and the figures in it, the `--hgrm` and
//! `--plot` files, the open loop's rate, an existing cluster through
//! `--connect`, the catch-up and tail workloads, and bad options refused
//! naming the option before anything starts.

use std::process::{Command, Stdio};

use serde_json::Value;

use super::support::*;

/// Runs `corelog bench ARGS`; its exit code, stdout, stderr.
fn bench(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin())
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs a bench that must succeed and print one JSON object.
fn bench_json(args: &[&str]) -> Value {
    let (code, out, err) = bench(args);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(out.lines().count(), 1, "one line of JSON: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} not an integer: {v}"))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} not a number: {v}"))
}

/// The fields every report has, with values that agree with each other.
fn check_report(r: &Value, record_bytes: u64) {
    let (records, bytes, requests) = (u(r, "records"), u(r, "bytes"), u(r, "requests"));
    assert!(records > 0 && requests > 0, "{r}");
    assert_eq!(bytes, records * record_bytes, "{r}");
    let elapsed = f(r, "elapsed_s");
    assert!(elapsed > 0.0, "{r}");
    let rps = f(r, "records_per_s");
    assert!((rps - records as f64 / elapsed).abs() <= rps * 1e-6, "{r}");
    assert!(
        (f(r, "mb_per_s") - bytes as f64 / elapsed / 1e6).abs() < 1e-6 * rps,
        "{r}"
    );
    let lat = &r["latency_us"];
    let p: Vec<u64> = ["min", "p50", "p90", "p99", "p99_9", "p99_99", "max"]
        .iter()
        .map(|k| u(lat, k))
        .collect();
    assert!(p[0] >= 1, "{lat}");
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "percentiles in order: {lat}"
    );
    // Under a minute: the histogram's top (a clamped value would sit there).
    assert!(p[6] < 60_000_000, "{lat}");
    assert_eq!(u(r, "errors_total"), 0, "{r}");
    let kinds = r["errors"].as_object().expect("errors by kind");
    assert!(
        kinds.contains_key("timeout") && kinds.contains_key("busy"),
        "{r}"
    );
    assert_eq!(kinds.values().filter_map(Value::as_u64).sum::<u64>(), 0);
}

#[test]
fn json_report_has_the_documented_fields_with_values_that_agree() {
    let _g = serial();
    let r = bench_json(&[
        "--seconds",
        "1",
        "--groups",
        "2",
        "--connections",
        "2",
        "--inflight",
        "8",
        "--records-per-request",
        "4",
        "--record-bytes",
        "100",
        "--json",
    ]);
    assert_eq!(r["tool"], "corelog bench");
    assert_eq!(r["workload"], "append");
    assert_eq!(r["target"], "local-cluster");
    assert_eq!(r["loop"], "closed");
    assert_eq!(r["fsync"], true);
    assert!(r["rate"].is_null());
    for (k, want) in [
        ("members", 3),
        ("shards", 1),
        ("groups", 2),
        ("connections", 2),
        ("inflight", 8),
        ("records_per_request", 4),
        ("record_bytes", 100),
    ] {
        assert_eq!(u(&r, k), want, "{k}: {r}");
    }
    check_report(&r, 100);
    assert_eq!(u(&r, "records"), 4 * u(&r, "requests"), "{r}");
    // Every counted request is in the histogram.
    assert_eq!(u(&r["latency_us"], "count"), u(&r, "requests"), "{r}");
    // About the second asked for (the last answers come a little later).
    let e = f(&r, "elapsed_s");
    assert!((0.9..3.0).contains(&e), "{r}");
    // The load generator's own CPU time over the whole run (warm-up in).
    let (cpu, wall) = (f(&r, "client_cpu_s"), f(&r, "client_wall_s"));
    assert!(cpu > 0.0 && wall >= e && cpu < 3.0 * wall, "{r}");
}

/// HdrHistogram's percentile text: header, rows of value, percentile,
/// total count and 1/(1-p) rising together, the last at 100%, footer.
fn check_hgrm(text: &str, count: u64) {
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"],
        "{text}"
    );
    assert_eq!(lines.next(), Some(""), "{text}");
    let mut rows = Vec::new();
    let mut footer = Vec::new();
    for l in lines {
        if l.starts_with("#[") {
            footer.push(l);
            continue;
        }
        assert!(footer.is_empty(), "a row after the footer: {l}");
        let cols: Vec<&str> = l.split_whitespace().collect();
        assert!(cols.len() == 3 || cols.len() == 4, "{l}");
        let value: f64 = cols[0].parse().unwrap();
        let pct: f64 = cols[1].parse().unwrap();
        let total: u64 = cols[2].parse().unwrap();
        rows.push((value, pct, total, cols.len()));
    }
    assert!(rows.len() >= 10, "{text}");
    assert!(
        rows.windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2),
        "rows rise together: {text}"
    );
    let last = rows.last().unwrap();
    assert_eq!((last.1, last.2, last.3), (1.0, count, 3), "{text}");
    assert!(rows[..rows.len() - 1].iter().all(|r| r.3 == 4), "{text}");
    assert_eq!(footer.len(), 3, "{text}");
    assert!(footer[0].starts_with("#[Mean    ="), "{text}");
    assert!(
        footer[1].contains(&format!("Total count    = {count:>12}]")),
        "{text}"
    );
}

/// The SVG is well formed (every tag closed, in order) and draws a line
/// of at least ten points inside its view box.
fn check_svg(svg: &str) {
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        let j = rest[i..].find('>').expect("a tag closes") + i;
        let tag = &rest[i + 1..j];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name),
                "closing tag out of order"
            );
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
        assert!(!rest[i + 1..j].contains('<'), "a stray '<' in {tag}");
        rest = &rest[j + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(rest.trim().is_empty());
    let i = svg.find("<polyline").expect("a polyline");
    let pts = &svg[i..];
    let pts = &pts[pts.find("points=\"").unwrap() + 8..];
    let pts = &pts[..pts.find('"').unwrap()];
    let xy: Vec<(f64, f64)> = pts
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    assert!(xy.len() >= 10, "{pts}");
    assert!(
        xy.iter()
            .all(|&(x, y)| (0.0..=800.0).contains(&x) && (0.0..=480.0).contains(&y)),
        "{pts}"
    );
    // Left to right, never falling (SVG's y grows downwards).
    assert!(
        xy.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1),
        "{pts}"
    );
    assert!(
        svg.contains(">percentile</text>") && svg.contains("99.9%"),
        "{svg}"
    );
}

#[test]
fn hgrm_and_plot_files_are_written_and_well_formed() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let hgrm = dir.path().join("lat.hgrm");
    let plot = dir.path().join("lat.svg");
    let r = bench_json(&[
        "--seconds",
        "1",
        "--json",
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let count = u(&r["latency_us"], "count");
    check_hgrm(&std::fs::read_to_string(&hgrm).unwrap(), count);
    check_svg(&std::fs::read_to_string(&plot).unwrap());
}

#[test]
fn open_loop_at_a_low_rate_sends_about_that_rate() {
    let _g = serial();
    let r = bench_json(&[
        "--seconds",
        "2",
        "--rate",
        "100",
        "--records-per-request",
        "2",
        "--json",
    ]);
    assert_eq!(r["loop"], "open");
    assert_eq!(f(&r, "rate"), 100.0);
    check_report(&r, 128);
    // 2 s at 100 requests/s: 200 requests (one interval's rounding either
    // way per worker); a closed loop would have sent thousands.
    let n = u(&r, "requests");
    assert!((195..=205).contains(&n), "{r}");
    let rps = f(&r, "requests_per_s");
    assert!((85.0..=105.0).contains(&rps), "{r}");
}

#[test]
fn connect_loads_an_existing_cluster() {
    let _g = serial();
    let mut t = Three::new(2);
    t.start_all();
    let addrs = format!("{},{}", t.clients[0], t.clients[2]);
    let r = bench_json(&[
        "--connect",
        &addrs,
        "--groups",
        "2",
        "--seconds",
        "1",
        "--json",
    ]);
    assert_eq!(r["target"], "connect");
    assert_eq!(u(&r, "members"), 3);
    check_report(&r, 128);
    // The records are in the cluster.
    let c = t.client();
    let total: u64 = (0..2)
        .map(|g| c.group_status(g).unwrap().latest_offset)
        .sum();
    assert!(total >= u(&r, "records"), "{total} < {r}");
    // More groups than the cluster has: refused naming --groups.
    let (code, _, err) = bench(&["--connect", &addrs, "--groups", "3", "--seconds", "1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--groups: 3 but the cluster has 2 groups"),
        "{err}"
    );
}

#[test]
fn catch_up_reads_back_every_record_the_fill_appended() {
    let _g = serial();
    let r = bench_json(&[
        "--workload",
        "catch-up",
        "--read-bytes",
        "4000000",
        "--groups",
        "2",
        "--connections",
        "1",
        "--records-per-request",
        "64",
        "--json",
    ]);
    assert_eq!(r["workload"], "read");
    check_report(&r, 128);
    let fill = &r["fill"];
    check_report(fill, 128);
    // 4,000,000 / 128 = 31,250 records asked, in requests of 64.
    assert_eq!(u(fill, "records"), 31_250u64.div_ceil(64) * 64, "{fill}");
    assert_eq!(u(&r, "records"), u(fill, "records"), "{r}");
}

#[test]
fn tails_deliver_every_appended_record_with_its_latency() {
    let _g = serial();
    let r = bench_json(&[
        "--workload",
        "tail",
        "--seconds",
        "1",
        "--groups",
        "2",
        "--records-per-request",
        "8",
        "--json",
    ]);
    assert_eq!(r["workload"], "tail");
    check_report(&r, 128);
    let appended = &r["append"];
    check_report(appended, 128);
    assert_eq!(u(&r, "records"), u(appended, "records"), "{r}");
    // One latency per record delivered.
    assert_eq!(u(&r["latency_us"], "count"), u(&r, "records"), "{r}");
}

#[test]
fn bad_options_are_refused_naming_the_option_before_anything_starts() {
    let _g = serial();
    for (args, want) in [
        (&["--groups", "0"][..], "--groups: 0"),
        (&["--connections", "0"], "--connections: 0"),
        (&["--connections", "100000"], "--connections: 100000"),
        (&["--inflight", "0"], "--inflight: 0"),
        (&["--records-per-request", "0"], "--records-per-request: 0"),
        (&["--seconds", "0"], "--seconds: 0"),
        (&["--seconds", "nan"], "--seconds: NaN"),
        (&["--warmup=-1"], "--warmup: -1"),
        (&["--rate", "0"], "--rate: 0"),
        (&["--records", "0"], "--records: 0"),
        (&["--local-cluster", "0"], "--local-cluster: 0"),
        (&["--shards", "0"], "--shards: 0"),
        (
            &["--workload", "tail", "--record-bytes", "4"],
            "--record-bytes: 4",
        ),
        (
            &["--records-per-request", "2000", "--record-bytes", "1000"],
            "--records-per-request x --record-bytes",
        ),
        (&["--producer", "--workload", "tail"], "--producer"),
        (
            &["--workload", "catch-up", "--record-bytes", "0"],
            "--record-bytes: 0",
        ),
        // clap's own refusals name the option too.
        (&["--groups", "many"], "--groups"),
        (&["--connect", "nowhere"], "--connect"),
        (&["--workload", "sideways"], "--workload"),
        (
            &["--local-cluster", "3", "--connect", "127.0.0.1:1"],
            "--connect",
        ),
        (&["--rate", "10", "--producer"], "--producer"),
    ] {
        let t = std::time::Instant::now();
        let (code, out, err) = bench(args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        // Refused at once: no cluster was started.
        assert!(t.elapsed().as_secs() < 5, "{args:?}");
    }
}

#[test]
fn an_open_loop_rate_out_of_reach_ends_on_time_and_counts_what_it_could_not_send() {
    let _g = serial();
    // A million requests/s with one in flight: the generator falls behind
    // at once. It must stop at the end of the run (not send every overdue
    // request first) and say how many it could not send.
    let mut child = Command::new(bin())
        .args([
            "bench",
            "--quiet",
            "--json",
            "--seconds",
            "1",
            "--warmup",
            "0",
        ])
        .args(["--rate", "1000000", "--connections", "1", "--inflight", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed().as_secs() > 30 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still sending overdue requests after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Requests the rate called for went unsent: the run failed its rate.
    assert_eq!(out.status.code(), Some(1), "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    let unsent = u(&r["errors"], "not_sent");
    assert!(unsent > 100_000, "{r}");
    assert_eq!(u(&r, "errors_total"), unsent, "{r}");
    // Sent and not sent: the million the rate called for in the second.
    let sent = u(&r, "requests");
    assert!(sent > 0, "{r}");
    assert!((999_990..=1_000_010).contains(&(sent + unsent)), "{r}");
}

/// Pids of processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Starts a long bench and waits (bounded) for its first live line.
fn long_bench() -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bin())
        .args(["bench", "--seconds", "60", "--warmup", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(err).lines();
        while let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(30));
    assert!(
        first.as_ref().is_ok_and(|l| l.contains("records/s")),
        "{first:?}"
    );
    child
}

fn wait_gone(needle: &str, secs: u64) -> Vec<u32> {
    let t = std::time::Instant::now();
    loop {
        let left = processes_with(needle);
        if left.is_empty() || t.elapsed().as_secs() >= secs {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_prints_the_report_so_far_stops_the_members_and_removes_their_data() {
    let _g = serial();
    let child = long_bench();
    let pid = child.id();
    let dir = format!("corelog-bench-{pid}");
    assert_eq!(processes_with(&dir).len(), 3, "three members running");
    let t = std::time::Instant::now();
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        text.contains("records/s") && text.contains("p99.9"),
        "{text}"
    );
    assert!(wait_gone(&dir, 5).is_empty(), "members left running");
    assert!(
        !std::env::temp_dir().join(&dir).exists(),
        "data left behind"
    );
}

#[test]
fn the_members_do_not_outlive_a_killed_bench() {
    let _g = serial();
    let mut child = long_bench();
    let pid = child.id();
    let dir = format!("corelog-bench-{pid}");
    assert_eq!(processes_with(&dir).len(), 3, "three members running");
    child.kill().unwrap();
    child.wait().unwrap();
    // SIGKILLed, it cannot stop them: the kernel does (PR_SET_PDEATHSIG).
    let left = wait_gone(&dir, 15);
    for p in &left {
        // SAFETY: kill(2); cleaning up after a failed check.
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&dir));
    assert!(left.is_empty(), "members {left:?} outlived the bench");
}
