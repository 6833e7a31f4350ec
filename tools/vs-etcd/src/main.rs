//! `etcd-load`: etcd's side of scripts/bench-vs-etcd.sh. It loads an etcd
//! cluster with Puts of fixed-size values through the `etcd-client` crate,
//! in the shape `corelog bench` loads corelog (connections, requests in
//! flight per connection, warm-up, then a measured duration, closed loop),
//! and reports through the same report code (`bench_report.rs` of the
//! `corelog` binary, included by path), so both sides' figures and JSON
//! fields mean the same.
//!
//! `etcd-load --endpoints URL,... [--connections C] [--inflight N]
//!  [--value-bytes B] [--seconds S] [--warmup W] [--keys K] [--json]`
//!
//! One Put is one record: its value is the record (the key, `bench/<k>`
//! over `--keys` distinct keys, is not counted in the bytes). Each
//! connection is an etcd `Client` of its own (one gRPC channel); N tasks on
//! it each keep one Put in flight. `etcd-load --endpoints ... --wait 30`
//! only waits until a Put succeeds (the cluster has a leader).

#[allow(dead_code)]
#[path = "../../../src/bin/corelog/bench_report.rs"]
mod bench_report;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_report::{Counts, ERROR_KINDS, Report, Value, process_cpu_s};
use etcd_client::{Client, ConnectOptions, Error};

struct Opts {
    endpoints: Vec<String>,
    connections: usize,
    inflight: usize,
    value_bytes: usize,
    seconds: f64,
    warmup: f64,
    keys: u64,
    json: bool,
    wait: Option<f64>,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        endpoints: Vec::new(),
        connections: 1,
        inflight: 1,
        value_bytes: 128,
        seconds: 5.0,
        warmup: 0.5,
        keys: 100_000,
        json: false,
        wait: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name}: a value is needed"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a number"))
        }
        match a.as_str() {
            "--endpoints" => {
                o.endpoints = val("--endpoints")?.split(',').map(str::to_string).collect()
            }
            "--connections" => o.connections = num("--connections", val("--connections")?)?,
            "--inflight" => o.inflight = num("--inflight", val("--inflight")?)?,
            "--value-bytes" => o.value_bytes = num("--value-bytes", val("--value-bytes")?)?,
            "--seconds" => o.seconds = num("--seconds", val("--seconds")?)?,
            "--warmup" => o.warmup = num("--warmup", val("--warmup")?)?,
            "--keys" => o.keys = num("--keys", val("--keys")?)?,
            "--wait" => o.wait = Some(num("--wait", val("--wait")?)?),
            "--json" => o.json = true,
            other => return Err(format!("{other}: unknown option")),
        }
    }
    if o.endpoints.is_empty() || o.endpoints.iter().any(String::is_empty) {
        return Err("--endpoints: needed (URL,URL,...)".into());
    }
    if !(1..=256).contains(&o.connections) {
        return Err(format!("--connections: {} (1..=256)", o.connections));
    }
    if !(1..=65_536).contains(&o.inflight) {
        return Err(format!("--inflight: {} (1..=65536)", o.inflight));
    }
    if o.value_bytes > 1 << 20 {
        return Err(format!("--value-bytes: {} (at most 1 MiB)", o.value_bytes));
    }
    if !(o.seconds.is_finite() && o.seconds > 0.0) {
        return Err(format!("--seconds: {}", o.seconds));
    }
    if !(o.warmup.is_finite() && o.warmup >= 0.0) {
        return Err(format!("--warmup: {}", o.warmup));
    }
    if o.keys == 0 {
        return Err("--keys: 0".into());
    }
    Ok(o)
}

fn kind_of(e: &Error) -> usize {
    let name = match e {
        Error::GRpcStatus(s) => match format!("{:?}", s.code()).as_str() {
            "Unavailable" => "unavailable",
            "DeadlineExceeded" => "timeout",
            "ResourceExhausted" => "busy",
            _ => "server_other",
        },
        Error::TransportError(_) | Error::IoError(_) => "disconnected",
        _ => "other",
    };
    ERROR_KINDS
        .iter()
        .position(|k| *k == name)
        .unwrap_or(ERROR_KINDS.len() - 1)
}

async fn connect(o: &Opts) -> Result<Client, Error> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(10));
    Client::connect(&o.endpoints, Some(opts)).await
}

/// Waits until a Put succeeds (bounded by `secs`).
async fn wait_ready(o: &Opts, secs: f64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        match connect(o).await {
            Ok(c) => match c.kv_client().put("bench/ready", "1", None).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "etcd at {:?} not ready in {secs} s: {last}",
        o.endpoints
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("etcd-load: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(secs) = o.wait {
        return match wait_ready(&o, secs).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("etcd-load: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut clients = Vec::new();
    for _ in 0..o.connections {
        match connect(&o).await {
            Ok(c) => clients.push(c),
            Err(e) => {
                eprintln!("etcd-load: connecting to {:?}: {e}", o.endpoints);
                return ExitCode::from(1);
            }
        }
    }
    let cpu0 = process_cpu_s();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.seconds);
    let value: Arc<Vec<u8>> = Arc::new(vec![b'x'; o.value_bytes]);
    let mut tasks = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        for t in 0..o.inflight {
            let mut kv = client.kv_client();
            let value = value.clone();
            let (keys, vb) = (o.keys, o.value_bytes as u64);
            let worker = (c * o.inflight + t) as u64;
            let stride = (o.connections * o.inflight) as u64;
            tasks.push(tokio::spawn(async move {
                let mut counts = Counts::default();
                let mut last = None;
                let mut k = worker;
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    // etcd-client takes owned key and value (Into<Vec<u8>>).
                    let key = format!("bench/{}", k % keys);
                    k += stride;
                    let r = kv.put(key, value.as_slice(), None).await;
                    let done = Instant::now();
                    if sent < measure_from {
                        continue;
                    }
                    last = Some(done);
                    match r {
                        Ok(_) => {
                            counts.requests += 1;
                            counts.records += 1;
                            counts.bytes += vb;
                            bench_report::record_us(
                                &mut counts.hist,
                                done.duration_since(sent).as_micros() as u64,
                            );
                        }
                        Err(e) => counts.errors[kind_of(&e)] += 1,
                    }
                }
                (counts, last)
            }));
        }
    }
    let mut total = Counts::default();
    let mut last: Option<Instant> = None;
    for t in tasks {
        match t.await {
            Ok((c, l)) => {
                total.add(&c);
                last = last.max(l);
            }
            Err(e) => {
                eprintln!("etcd-load: a load task failed: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let elapsed = last.map_or(0.0, |l| {
        l.saturating_duration_since(measure_from).as_secs_f64()
    });
    let report = Report {
        workload: "put",
        title: format!(
            "etcd-load: Put, etcd at {}, {} connection{} x {} in flight, 1 x {} B value per request, closed loop, {:.1} s after {:.1} s warm-up",
            o.endpoints.join(","),
            o.connections,
            if o.connections == 1 { "" } else { "s" },
            o.inflight,
            o.value_bytes,
            o.seconds,
            o.warmup
        ),
        settings: vec![
            ("tool", Value::S("etcd-load".into())),
            ("target", Value::S("connect".into())),
            ("members", Value::U(o.endpoints.len() as u64)),
            ("groups", Value::U(1)),
            ("connections", Value::U(o.connections as u64)),
            ("inflight", Value::U(o.inflight as u64)),
            ("records_per_request", Value::U(1)),
            ("record_bytes", Value::U(o.value_bytes as u64)),
            ("loop", Value::S("closed".into())),
            ("rate", Value::Null),
            ("warmup_s", Value::F(o.warmup)),
        ],
        elapsed_s: elapsed,
        counts: total,
        client_cpu: Some((process_cpu_s() - cpu0, start.elapsed().as_secs_f64())),
        nested: Vec::new(),
    };
    if o.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if report.counts.errors_total() > 0 || report.counts.records == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
