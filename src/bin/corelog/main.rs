//! `corelog`: the server (`corelog server`) and its command-line client
//! (`append`, `read`, `tail`, `status`, `truncate`, `transfer-leader`,
//! `members`), `wal-check` and `bench`.

mod bench;
mod bench_cluster;
mod bench_interrupt;
mod bench_load;
mod bench_plot;
mod bench_read;
mod bench_report;
mod client_cmds;
mod logging;
mod server_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "corelog", version, about = "A replicated log service")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a member of a cluster: bootstraps a new data directory or
    /// restarts from an existing one, then serves until SIGTERM/SIGINT.
    Server(Box<ServerArgs>),
    /// Appends one batch of records (one per VALUE) to a group.
    Append {
        #[command(flatten)]
        conn: ConnArgs,
        group: u64,
        #[arg(required = true)]
        values: Vec<String>,
    },
    /// Reads committed records of a group from an offset.
    Read {
        #[command(flatten)]
        conn: ConnArgs,
        group: u64,
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Records at most (0: the server's limit).
        #[arg(long, default_value_t = 0)]
        max: u32,
        /// Read from any replica (a committed prefix, possibly stale)
        /// rather than through the leader's ReadIndex.
        #[arg(long)]
        any_replica: bool,
    },
    /// Follows a group: prints records as they are committed.
    Tail {
        #[command(flatten)]
        conn: ConnArgs,
        group: u64,
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Stop after this many records (0: never).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
    /// Drops a group's records below an offset.
    Truncate {
        #[command(flatten)]
        conn: ConnArgs,
        group: u64,
        before: u64,
    },
    /// Asks a group's leader to hand leadership to a member.
    TransferLeader {
        #[command(flatten)]
        conn: ConnArgs,
        group: u64,
        to: u64,
    },
    /// A group's voters and learners, or a change of them:
    /// `members GROUP [add-voter|add-learner|promote|remove MEMBER]`.
    Members {
        #[command(flatten)]
        conn: ConnArgs,
        group: u64,
        change: Option<String>,
        member: Option<u64>,
    },
    /// The cluster's members and each group's leader, term and offsets.
    Status {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Verifies a member's data directory offline (its WALs' crcs and
    /// chains, a torn tail, each group's entries, batches, records and
    /// offsets). Exits 1 on corruption.
    WalCheck { dir: PathBuf },
    /// The load generator: loads a local cluster it starts (default) or
    /// an existing one (`--connect`), prints throughput and latency.
    Bench(bench::BenchArgs),
}

/// Where the client connects first.
#[derive(Args)]
struct ConnArgs {
    /// A member's client address (repeatable); the client learns the
    /// others from it.
    #[arg(long = "server", short = 's', default_value = "127.0.0.1:7100")]
    servers: Vec<SocketAddr>,
    /// Seconds any call may take, retries included.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

/// `corelog server` flags; each overrides the config file's field.
#[derive(Args)]
pub struct ServerArgs {
    /// A TOML configuration file (docs/operations.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// This member's id.
    #[arg(long)]
    member_id: Option<u64>,
    #[arg(long)]
    cluster_id: Option<u64>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A member: id=name@peer_addr/client_addr[/shards] (repeat for each;
    /// replaces the file's list).
    #[arg(long = "member")]
    members: Vec<String>,
    /// Groups of a new cluster.
    #[arg(long)]
    groups: Option<u64>,
    #[arg(long)]
    replication_factor: Option<u32>,
    /// "auto", "none", or CPU numbers "0,2".
    #[arg(long)]
    cpus: Option<String>,
    /// Prometheus metrics over HTTP: shard k on this address's port + k.
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
    #[arg(long)]
    tick_ms: Option<u64>,
    #[arg(long)]
    election_ticks: Option<usize>,
    #[arg(long)]
    heartbeat_ticks: Option<usize>,
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// Whether leadership goes back to each group's preferred leader
    /// (placement's first replica) once it is caught up.
    #[arg(long)]
    rebalance_leaders: Option<bool>,
    /// Size of each shard's WAL segments, in bytes.
    #[arg(long)]
    wal_segment_bytes: Option<u64>,
    /// Most bytes each shard's WAL may take on disk; past it the shard
    /// takes nothing new (appends answered Unavailable) until there is room.
    #[arg(long)]
    wal_max_disk_bytes: Option<u64>,
    /// Compact a group's log (snapshot, then drop entries) once retention
    /// lets this many more entries go.
    #[arg(long)]
    compact_threshold_entries: Option<u64>,
    /// Keep at most this many bytes of each group's batches (the newest
    /// batch always kept); older batches are truncated by the leader.
    #[arg(long)]
    retention_bytes: Option<u64>,
    /// Truncate each group's batches older than this (by the producers'
    /// timestamps).
    #[arg(long)]
    retention_ms: Option<u64>,
    #[arg(long)]
    max_frame_bytes: Option<u32>,
    #[arg(long)]
    max_batch_bytes: Option<u32>,
    #[arg(long)]
    max_connection_bytes: Option<u64>,
    #[arg(long)]
    max_connections: Option<usize>,
    /// BENCHMARKS ONLY: the WAL never fdatasyncs; acknowledged appends can
    /// be lost to a power failure or kernel crash.
    #[arg(long)]
    unsafe_no_fsync: bool,
    /// Log lines as text or JSON (levels filtered by RUST_LOG, default
    /// info).
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// Unanswered bytes of all of a shard's client connections together.
    #[arg(long)]
    max_shard_bytes: Option<u64>,
    /// A client connection with nothing in flight is closed after this
    /// long without a request.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Server(a) => server_cmd::run(*a),
        Cmd::Append {
            conn,
            group,
            values,
        } => client_cmds::append(&conn, group, &values),
        Cmd::Read {
            conn,
            group,
            from,
            max,
            any_replica,
        } => client_cmds::read(&conn, group, from, max, any_replica),
        Cmd::Tail {
            conn,
            group,
            from,
            count,
        } => client_cmds::tail(&conn, group, from, count),
        Cmd::Status { conn } => client_cmds::status(&conn),
        Cmd::Truncate {
            conn,
            group,
            before,
        } => client_cmds::truncate(&conn, group, before),
        Cmd::TransferLeader { conn, group, to } => client_cmds::transfer(&conn, group, to),
        Cmd::Members {
            conn,
            group,
            change,
            member,
        } => client_cmds::members(&conn, group, change.as_deref(), member),
        Cmd::Bench(a) => bench::run(a),
        Cmd::WalCheck { dir } => match corelog::server::wal_check::check_dir(&dir) {
            Ok(c) => {
                print!("{}", c.render());
                println!("wal-check: ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("wal-check: {e}");
                ExitCode::from(1)
            }
        },
    }
}
