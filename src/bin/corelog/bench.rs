//! `corelog bench`: the load generator. It loads a local cluster it starts
//! itself (`--local-cluster N`, the default: three members) or an existing
//! one (`--connect ADDR,...`), prints a live line every second on stderr
//! and a final report on stdout (or one JSON object with `--json`), and can
//! write the latency distribution (`--hgrm FILE`) and its plot (`--plot
//! FILE.svg`).
//!
//! Why a subcommand of `corelog` rather than a tools/ binary: the local
//! cluster's servers are this same executable, so README's first command
//! (`cargo run --release -- bench --local-cluster 3`) builds one binary and
//! needs nothing else found or built; the bench cannot run against a
//! server of another build by mistake.
//!
//! Files: this one (options, checks, the workloads' sequence, output),
//! `bench_cluster.rs` (the local cluster), `bench_load.rs` (append
//! workers, closed and open loop, the live line), `bench_read.rs`
//! (catch-up reads and tails), `bench_report.rs` (counts, the text and
//! JSON reports, `--hgrm`), `bench_plot.rs` (`--plot`), `bench_interrupt.rs`
//! (Ctrl-C: report so far, then the usual clean-up).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use corelog::client::{Client, ClientOptions};

use super::bench_cluster::{self, Servers};
use super::bench_interrupt;
use super::bench_load::{self, LoadSpec, Shared, Stop};
use super::bench_plot::{self, Series};
use super::bench_read;
use super::bench_report::{Report, Value, hgrm, process_cpu_s};

/// What the bench measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Appends (the default).
    Append,
    /// Appends `--read-bytes` of records, then reads them all back from
    /// the first offset (one consumer per connection).
    CatchUp,
    /// Appends while one tail per group follows them: delivery latency
    /// from the append's send to the tail's hands.
    Tail,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Start a local cluster of this many members (from this executable,
    /// on 127.0.0.1, fresh data directories, removed afterwards). The
    /// default when `--connect` is not given: 3.
    #[arg(long, conflicts_with = "connect")]
    local_cluster: Option<u64>,
    /// Load an existing cluster instead: members' client addresses,
    /// comma separated (one is enough; the client learns the others).
    #[arg(long, value_delimiter = ',')]
    connect: Vec<SocketAddr>,
    /// Shards per member of the local cluster.
    #[arg(long, default_value_t = 1, conflicts_with = "connect")]
    shards: u32,
    /// Groups loaded: 0..GROUPS (a local cluster is created with them).
    #[arg(long, default_value_t = 3)]
    groups: u64,
    /// Client connections, each with its own worker (a `Client` of its
    /// own: one TCP connection to each member shard it sends to).
    #[arg(long, default_value_t = 3)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 32)]
    inflight: usize,
    /// Records in each append request.
    #[arg(long, alias = "records-per-batch", default_value_t = 16)]
    records_per_request: usize,
    /// Bytes of each record.
    #[arg(long, default_value_t = 128)]
    record_bytes: usize,
    /// Seconds of measured load (after the warm-up).
    #[arg(long, default_value_t = 5.0, conflicts_with = "records")]
    seconds: f64,
    /// Measure this many records instead of a duration.
    #[arg(long)]
    records: Option<u64>,
    /// Seconds of load before measuring (not in the report).
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Open loop: send this many requests per second in all (latency from
    /// each request's intended send time). Without it: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, value_enum, default_value = "append")]
    workload: Workload,
    /// The catch-up workload: bytes of records appended and read back.
    #[arg(long, default_value_t = 1 << 30)]
    read_bytes: u64,
    /// Single records through the client's batching `Producer` (then
    /// `--inflight` counts records; `--records-per-request` is unused).
    #[arg(long, conflicts_with = "rate")]
    producer: bool,
    /// Print the final report as one JSON object (docs/benchmarks.md).
    #[arg(long)]
    json: bool,
    /// Write the latency distribution (HdrHistogram percentile text).
    #[arg(long)]
    hgrm: Option<PathBuf>,
    /// Write a latency-by-percentile plot (SVG).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No live line every second.
    #[arg(long)]
    quiet: bool,
    /// The cluster's shared secret: the clients authenticate with it (and
    /// a local cluster's members require it).
    #[arg(long)]
    auth_secret_file: Option<PathBuf>,
    /// A local cluster requiring authentication, with a secret generated
    /// for the run (beside the members' data, removed afterwards).
    #[arg(long, conflicts_with_all = ["connect", "auth_secret_file"])]
    auth: bool,
}

/// The largest counts the options accept (each a bound on threads,
/// memory or processes the bench would create).
const MAX_MEMBERS: u64 = 9;
const MAX_SHARDS: u32 = 64;
const MAX_CONNECTIONS: usize = 256;
const MAX_INFLIGHT: usize = 1 << 16;
const MAX_GROUPS: u64 = 1 << 16;

/// Checks the options; the error names the option.
fn check(a: &BenchArgs) -> Result<LoadSpec, String> {
    if let Some(n) = a.local_cluster {
        if n == 0 || n > MAX_MEMBERS {
            return Err(format!("--local-cluster: {n} (1..={MAX_MEMBERS})"));
        }
    }
    if a.shards == 0 || a.shards > MAX_SHARDS {
        return Err(format!("--shards: {} (1..={MAX_SHARDS})", a.shards));
    }
    if a.groups == 0 || a.groups > MAX_GROUPS {
        return Err(format!("--groups: {} (1..={MAX_GROUPS})", a.groups));
    }
    if a.connections == 0 || a.connections > MAX_CONNECTIONS {
        return Err(format!(
            "--connections: {} (1..={MAX_CONNECTIONS})",
            a.connections
        ));
    }
    if a.inflight == 0 || a.inflight > MAX_INFLIGHT {
        return Err(format!("--inflight: {} (1..={MAX_INFLIGHT})", a.inflight));
    }
    if a.records_per_request == 0 {
        return Err("--records-per-request: 0 (at least 1)".into());
    }
    if !(a.seconds.is_finite() && a.seconds > 0.0 && a.seconds <= 86_400.0) {
        return Err(format!("--seconds: {} (above 0, at most a day)", a.seconds));
    }
    if !(a.warmup.is_finite() && a.warmup >= 0.0 && a.warmup <= 3_600.0) {
        return Err(format!("--warmup: {} (0 to an hour)", a.warmup));
    }
    if a.records == Some(0) {
        return Err("--records: 0 (at least 1)".into());
    }
    if let Some(r) = a.rate {
        if !(r.is_finite() && r > 0.0 && r <= 1e8) {
            return Err(format!("--rate: {r} (requests per second, above 0)"));
        }
    }
    if a.workload == Workload::Tail && a.record_bytes < 8 {
        return Err(format!(
            "--record-bytes: {} (the tail workload needs at least 8: each record carries its send time)",
            a.record_bytes
        ));
    }
    if a.workload == Workload::CatchUp && a.record_bytes == 0 {
        return Err("--record-bytes: 0 (the catch-up workload counts its fill in bytes)".into());
    }
    if a.workload == Workload::CatchUp && a.read_bytes < a.record_bytes as u64 {
        return Err(format!(
            "--read-bytes: {} (at least one record)",
            a.read_bytes
        ));
    }
    if a.producer && a.workload != Workload::Append {
        return Err("--producer: only with --workload append".into());
    }
    let spec = LoadSpec {
        groups: a.groups,
        inflight: a.inflight,
        records_per_request: a.records_per_request,
        record_bytes: a.record_bytes,
        rate: a.rate,
        warmup: Duration::from_secs_f64(a.warmup),
        stop: match a.records {
            Some(n) => Stop::Records(n),
            None => Stop::For(Duration::from_secs_f64(a.seconds)),
        },
        stamp: a.workload == Workload::Tail,
        producer: a.producer,
        live: !a.quiet,
        label: "append",
    };
    // A batch that does not fit is refused here, before any server starts.
    bench_load::batch_of(&spec)?;
    Ok(spec)
}

/// Where the load goes, as the reports say it.
struct Target {
    servers: Option<Servers>,
    addrs: Vec<SocketAddr>,
    /// The secret file the clients authenticate with, if any.
    secret: Option<PathBuf>,
}

impl Target {
    fn client_options(&self) -> Result<ClientOptions, String> {
        let auth = match &self.secret {
            Some(p) => Some(super::client_cmds::load_secret(p)?),
            None => None,
        };
        Ok(ClientOptions {
            auth,
            ..ClientOptions::default()
        })
    }
}

pub fn run(a: BenchArgs) -> ExitCode {
    let spec = match check(&a) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corelog bench: {e}");
            return ExitCode::from(2);
        }
    };
    bench_interrupt::install();
    let target = if a.connect.is_empty() {
        let n = a.local_cluster.unwrap_or(3);
        let secret = if a.auth {
            None
        } else {
            a.auth_secret_file.clone()
        };
        match bench_cluster::start(n, a.shards, a.groups, a.auth, secret) {
            Ok((s, addrs)) => Target {
                secret: s.secret.clone(),
                servers: Some(s),
                addrs,
            },
            Err(e) => {
                eprintln!("corelog bench: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        Target {
            servers: None,
            addrs: a.connect.clone(),
            secret: a.auth_secret_file.clone(),
        }
    };
    let code = match load(&a, &spec, &target) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("corelog bench: {e}");
            ExitCode::from(1)
        }
    };
    drop(target.servers);
    if bench_interrupt::interrupted() {
        // The report above covers the load up to the interruption.
        return ExitCode::from(130);
    }
    code
}

fn load(a: &BenchArgs, spec: &LoadSpec, target: &Target) -> Result<ExitCode, String> {
    let opts = target.client_options()?;
    let clients = (0..a.connections)
        .map(|_| Client::connect(&target.addrs, opts).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("connecting to {:?}: {e}", target.addrs))?;
    let status = clients[0]
        .cluster_status()
        .map_err(|e| format!("cluster status: {e}"))?;
    if status.group_count < a.groups {
        return Err(format!(
            "--groups: {} but the cluster has {} groups",
            a.groups, status.group_count
        ));
    }
    bench_cluster::wait_for_leaders(&clients[0], a.groups)?;
    let fsync = !status.unsafe_no_fsync;
    let members = status.members.len() as u64;
    let shards = status.members.iter().map(|m| m.shards).max().unwrap_or(1);
    let settings = settings(a, target, members, shards, fsync);
    let where_ = format!(
        "{members} members{} ({}), {shards} shard{} each",
        if target.servers.is_some() {
            " on 127.0.0.1"
        } else {
            ""
        },
        if fsync {
            "fsync on"
        } else {
            "fsync OFF: unsafe_no_fsync"
        },
        if shards == 1 { "" } else { "s" }
    );
    let shape = format!(
        "{} groups, {} connection{} x {} in flight, {}, {}",
        a.groups,
        a.connections,
        if a.connections == 1 { "" } else { "s" },
        a.inflight,
        if a.producer {
            format!(
                "single {} B records through the batching producer",
                a.record_bytes
            )
        } else {
            format!(
                "{} x {} B records per request",
                a.records_per_request, a.record_bytes
            )
        },
        match a.rate {
            Some(r) => format!("open loop at {r} requests/s"),
            None => "closed loop".into(),
        }
    );
    let span = match spec.stop {
        Stop::For(d) => format!("{:.1} s", d.as_secs_f64()),
        Stop::Records(n) => format!("{n} records"),
    };
    let (cpu0, wall0) = (process_cpu_s(), std::time::Instant::now());
    let mut report = match a.workload {
        Workload::Append => {
            let shared = Shared::new(spec);
            let (counts, elapsed) = bench_load::run(&clients, spec, &shared);
            Report {
                workload: "append",
                title: format!(
                    "corelog bench: append, {where_}, {shape}, {span} after {:.1} s warm-up",
                    a.warmup
                ),
                settings,
                elapsed_s: elapsed,
                counts,
                client_cpu: None,
                nested: Vec::new(),
            }
        }
        Workload::Tail => {
            let mut from = Vec::new();
            for g in 0..a.groups {
                let s = clients[0]
                    .group_status(g)
                    .map_err(|e| format!("group {g} status: {e}"))?;
                from.push(s.latest_offset);
            }
            let tails = Client::connect(&target.addrs, opts)
                .map_err(|e| format!("connecting the tails: {e}"))?;
            let shared = Shared::new(spec);
            let done = AtomicBool::new(false);
            let ((counts, elapsed), (tc, te)) = std::thread::scope(|s| {
                let (tails, from, shared, done) = (&tails, &from, &shared, &done);
                let t = s.spawn(move || bench_read::follow(tails, from, shared, done));
                let appended = bench_load::run(&clients, spec, shared);
                done.store(true, Ordering::Relaxed);
                let tailed = match t.join() {
                    Ok(r) => r,
                    Err(p) => std::panic::resume_unwind(p),
                };
                (appended, tailed)
            });
            let append = Report {
                workload: "append",
                title: format!("  under: append, {shape}"),
                settings: Vec::new(),
                elapsed_s: elapsed,
                counts,
                client_cpu: None,
                nested: Vec::new(),
            };
            Report {
                workload: "tail",
                title: format!(
                    "corelog bench: tails, one per group, following appends; {where_}, {shape}, {span} after {:.1} s warm-up; latency from append sent to record delivered",
                    a.warmup
                ),
                settings,
                elapsed_s: te,
                counts: tc,
                client_cpu: None,
                nested: vec![append],
            }
        }
        Workload::CatchUp => {
            let fill_spec = LoadSpec {
                warmup: Duration::ZERO,
                stop: Stop::Records(a.read_bytes.div_ceil(a.record_bytes.max(1) as u64)),
                rate: None,
                label: "fill",
                ..spec.clone()
            };
            let shared = Shared::new(&fill_spec);
            let (counts, elapsed) = bench_load::run(&clients, &fill_spec, &shared);
            let fill = Report {
                workload: "fill",
                title: format!("  after filling: append, {shape}"),
                settings: Vec::new(),
                elapsed_s: elapsed,
                counts,
                client_cpu: None,
                nested: Vec::new(),
            };
            let (rc, re) = bench_read::catch_up(&clients, a.groups, spec.live);
            Report {
                workload: "read",
                title: format!(
                    "corelog bench: catch-up reads, {} consumer{} reading {} groups from offset 0 (any replica); {where_}; latency per read answer",
                    a.connections,
                    if a.connections == 1 { "" } else { "s" },
                    a.groups
                ),
                settings,
                elapsed_s: re,
                counts: rc,
                client_cpu: None,
                nested: vec![fill],
            }
        }
    };
    drop(clients);
    report.client_cpu = Some((process_cpu_s() - cpu0, wall0.elapsed().as_secs_f64()));
    if a.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if let Some(p) = &a.hgrm {
        std::fs::write(p, hgrm(&report.counts.hist))
            .map_err(|e| format!("--hgrm {}: {e}", p.display()))?;
    }
    if let Some(p) = &a.plot {
        let mut series = vec![Series {
            name: format!("{} ({} samples)", report.workload, report.counts.hist.len()),
            hist: &report.counts.hist,
        }];
        for n in &report.nested {
            series.push(Series {
                name: format!("{} ({} samples)", n.workload, n.counts.hist.len()),
                hist: &n.counts.hist,
            });
        }
        let title = format!("corelog bench: {} latency by percentile", report.workload);
        std::fs::write(p, bench_plot::svg(&title, &shape, &series))
            .map_err(|e| format!("--plot {}: {e}", p.display()))?;
    }
    let failed = report.counts.errors_total()
        + report
            .nested
            .iter()
            .map(|n| n.counts.errors_total())
            .sum::<u64>();
    Ok(if failed > 0 || report.counts.records == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The run's settings, as the JSON report gives them.
fn settings(
    a: &BenchArgs,
    target: &Target,
    members: u64,
    shards: u32,
    fsync: bool,
) -> Vec<(&'static str, Value)> {
    vec![
        ("tool", Value::S("corelog bench".into())),
        (
            "target",
            Value::S(if target.servers.is_some() {
                "local-cluster".into()
            } else {
                "connect".into()
            }),
        ),
        ("members", Value::U(members)),
        ("shards", Value::U(u64::from(shards))),
        ("fsync", Value::B(fsync)),
        ("groups", Value::U(a.groups)),
        ("connections", Value::U(a.connections as u64)),
        ("inflight", Value::U(a.inflight as u64)),
        (
            "records_per_request",
            Value::U(if a.producer {
                1
            } else {
                a.records_per_request as u64
            }),
        ),
        ("record_bytes", Value::U(a.record_bytes as u64)),
        ("producer", Value::B(a.producer)),
        (
            "loop",
            Value::S(if a.rate.is_some() { "open" } else { "closed" }.into()),
        ),
        ("rate", a.rate.map_or(Value::Null, Value::F)),
        ("warmup_s", Value::F(a.warmup)),
    ]
}
