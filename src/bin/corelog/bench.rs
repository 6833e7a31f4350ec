//! `corelog bench --local-cluster 3`: a short load test against a local
//! cluster this command starts itself. It runs three `corelog server`
//! processes from its own executable on free 127.0.0.1 ports with fresh
//! data directories (fsync on, as always), waits for every group's
//! leader, runs a closed-loop pipelined append load through the client
//! (one thread per group, `--inflight` appends in flight on each; with
//! `--producer`, single records through the batching `Producer`,
//! `--inflight` records outstanding), prints
//! records/s, MB/s and the latency percentiles, then stops the servers
//! (SIGTERM) and removes the data.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corelog::client::{Client, ClientOptions, Producer, ProducerOptions};
use hdrhistogram::Histogram;

use super::BenchArgs;

struct Servers {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for c in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let ls = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    ls.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

fn start(n: u64, groups: u64) -> Result<(Servers, Vec<SocketAddr>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let dir = std::env::temp_dir().join(format!("corelog-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ports = free_ports(2 * n as usize).map_err(|e| format!("free ports: {e}"))?;
    let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let clients: Vec<SocketAddr> = (0..n as usize)
        .map(|k| addr(ports[n as usize + k]))
        .collect();
    let mut servers = Servers {
        children: Vec::new(),
        dir: dir.clone(),
    };
    let (tx, rx) = mpsc::channel();
    for id in 1..=n {
        let mut cmd = Command::new(&exe);
        cmd.arg("server")
            .args(["--cluster-id", "1", "--cpus", "none"])
            .args(["--member-id", &id.to_string()])
            .args(["--groups", &groups.to_string()])
            .arg("--data-dir")
            .arg(dir.join(format!("m{id}")));
        for m in 1..=n {
            let k = (m - 1) as usize;
            cmd.arg("--member")
                .arg(format!("{m}=m{m}@{}/{}", addr(ports[k]), clients[k]));
        }
        // The servers' own messages (peers going away at the end, ...)
        // go to a file beside their data, shown if one fails to start.
        let log = std::fs::File::create(dir.join(format!("m{id}.log")))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting member {id}: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut r, &mut sink);
        });
        servers.children.push(child);
    }
    for _ in 0..n {
        let why = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l.starts_with("corelog: serving:") => continue,
            Ok(_) => "a member did not start",
            Err(_) => "a member did not start within 20 s",
        };
        let logs: String = (1..=n)
            .map(|id| std::fs::read_to_string(dir.join(format!("m{id}.log"))).unwrap_or_default())
            .collect();
        return Err(format!("{why}:\n{logs}"));
    }
    Ok((servers, clients))
}

pub fn run(a: BenchArgs) -> ExitCode {
    if a.local_cluster == 0 {
        eprintln!("corelog bench: --local-cluster must be at least 1");
        return ExitCode::from(2);
    }
    let groups = a.groups.max(1);
    let (servers, clients) = match start(a.local_cluster, groups) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corelog bench: {e}");
            return ExitCode::from(1);
        }
    };
    let client = match Client::connect(&clients, ClientOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corelog bench: {e}");
            return ExitCode::from(1);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    for g in 0..groups {
        while client.group_status(g).map_or(true, |s| s.leader == 0) {
            if Instant::now() > deadline {
                eprintln!("corelog bench: group {g} elected no leader in 20 s");
                return ExitCode::from(1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let record = vec![b'x'; a.record_bytes];
    let records: Vec<&[u8]> = (0..a.records_per_batch.max(1))
        .map(|_| &record[..])
        .collect();
    let batch = match client.build_batch(0, 0, &records) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("corelog bench: {e}");
            return ExitCode::from(2);
        }
    };
    let per_batch = if a.producer { 1 } else { records.len() as u64 };
    let client = std::sync::Arc::new(client);
    let run_for = Duration::from_secs(a.seconds);
    let warmup = Duration::from_millis(500);
    let inflight = a.inflight.max(1);
    // One thread per group: each keeps `inflight` appends in flight.
    let results: Vec<(Histogram<u64>, u64, u64)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..groups)
            .map(|g| {
                let (client, batch, record) = (&client, batch.clone(), &record);
                let producer = a.producer;
                s.spawn(move || {
                    let mut h =
                        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
                    let (mut ok, mut failed) = (0u64, 0u64);
                    let start = Instant::now();
                    let (measure_from, end) = (start + warmup, start + warmup + run_for);
                    if producer {
                        // Single records through the batching producer.
                        let p = Producer::new(client.clone(), g, ProducerOptions::default());
                        let mut q = VecDeque::new();
                        loop {
                            while Instant::now() < end && q.len() < inflight {
                                q.push_back((Instant::now(), p.send(record)));
                            }
                            let Some((sent, r)) = q.pop_front() else {
                                break;
                            };
                            let r = r.wait();
                            if sent >= measure_from && sent < end {
                                match r {
                                    Ok(_) => {
                                        ok += 1;
                                        let _ = h.record(sent.elapsed().as_micros() as u64);
                                    }
                                    Err(_) => failed += 1,
                                }
                            }
                        }
                        return (h, ok, failed);
                    }
                    let mut q = VecDeque::new();
                    loop {
                        let now = Instant::now();
                        while now < end && q.len() < inflight {
                            q.push_back((Instant::now(), client.send_append(g, batch.clone())));
                        }
                        let Some((sent, p)) = q.pop_front() else {
                            break;
                        };
                        let r = p.wait();
                        if sent >= measure_from && sent < end {
                            match r {
                                Ok(_) => {
                                    ok += 1;
                                    let _ = h.record(sent.elapsed().as_micros() as u64);
                                }
                                Err(_) => failed += 1,
                            }
                        }
                    }
                    (h, ok, failed)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("load thread"))
            .collect()
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let (mut ok, mut failed) = (0u64, 0u64);
    for (h, o, f) in &results {
        let _ = hist.add(h);
        ok += o;
        failed += f;
    }
    let secs = run_for.as_secs_f64();
    let recs = (ok * per_batch) as f64 / secs;
    if a.producer {
        println!(
            "corelog bench: {} members on 127.0.0.1 (fsync on), {groups} groups, single {} B records through the batching producer, {inflight} in flight per group, {:.1} s",
            a.local_cluster, a.record_bytes, secs
        );
    } else {
        println!(
            "corelog bench: {} members on 127.0.0.1 (fsync on), {groups} groups, {inflight} appends in flight per group, {} x {} B records per batch, {:.1} s",
            a.local_cluster, per_batch, a.record_bytes, secs
        );
    }
    if a.producer {
        println!(
            "  {:.0} records/s, {:.2} MB/s of records, {failed} failed",
            recs,
            recs * a.record_bytes as f64 / 1e6
        );
    } else {
        println!(
            "  {:.0} records/s, {:.2} MB/s of records, {:.0} appends/s, {failed} failed",
            recs,
            recs * a.record_bytes as f64 / 1e6,
            ok as f64 / secs
        );
    }
    println!(
        "  {} latency: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        if a.producer { "record" } else { "append" },
        hist.value_at_quantile(0.5) as f64 / 1e3,
        hist.value_at_quantile(0.99) as f64 / 1e3,
        hist.value_at_quantile(0.999) as f64 / 1e3,
        hist.max() as f64 / 1e3
    );
    drop(client);
    drop(servers);
    if failed > 0 || ok == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
