//! `corelog server`: the configuration (file, then flags), the member's
//! start, the serving line, and the wait for SIGTERM/SIGINT, watching for
//! shards whose WAL failed meanwhile.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use corelog::server::config::{FileConfig, ServerConfigError, parse_member};
use corelog::server::{Server, ServerConfig};
use tracing::{error, info, warn};

use super::ServerArgs;

/// How long requests in flight may take to be answered at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

fn config(a: &ServerArgs) -> Result<ServerConfig, ServerConfigError> {
    let mut f = match &a.config {
        Some(p) => FileConfig::read(p)?,
        None => FileConfig::default(),
    };
    macro_rules! over {
        ($($flag:ident => $($field:ident).+),* $(,)?) => {
            $(if let Some(v) = a.$flag.clone() { f.$($field).+ = Some(v); })*
        };
    }
    over!(
        member_id => member_id,
        cluster_id => cluster_id,
        data_dir => data_dir,
        groups => groups,
        replication_factor => replication_factor,
        cpus => cpus,
        metrics_addr => metrics_addr,
        tick_ms => runtime.tick_ms,
        election_ticks => runtime.election_ticks,
        heartbeat_ticks => runtime.heartbeat_ticks,
        request_timeout_ms => runtime.request_timeout_ms,
        rebalance_leaders => runtime.rebalance_leaders,
        wal_segment_bytes => runtime.wal_segment_bytes,
        wal_max_disk_bytes => runtime.wal_max_disk_bytes,
        compact_threshold_entries => runtime.compact_threshold_entries,
        retention_bytes => retention.max_bytes,
        retention_ms => retention.max_age_ms,
        max_frame_bytes => limits.max_frame_bytes,
        max_batch_bytes => limits.max_batch_bytes,
        max_connection_bytes => limits.max_connection_bytes,
        max_connections => limits.max_connections,
        max_shard_bytes => limits.max_shard_bytes,
        idle_timeout_ms => limits.idle_timeout_ms,
    );
    if a.unsafe_no_fsync {
        f.unsafe_no_fsync = Some(true);
    }
    if !a.members.is_empty() {
        f.members = a
            .members
            .iter()
            .map(|m| parse_member(m))
            .collect::<Result<_, _>>()?;
    }
    f.check()
}

/// Blocks SIGTERM and SIGINT in this thread, before any other starts, so
/// that every thread inherits the mask and the signals wait for
/// `sigtimedwait` here instead of killing the process mid-flush.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits up to `timeout` for one of `set`'s signals.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: valid set and timespec; no siginfo wanted.
    let s = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

pub fn run(a: ServerArgs) -> ExitCode {
    if let Err(e) = super::logging::init(a.log_format) {
        eprintln!("corelog server: {e}");
        return ExitCode::from(2);
    }
    let cfg = match config(&a) {
        Ok(c) => c,
        Err(e) => {
            error!("corelog server: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg.runtime.unsafe_no_fsync {
        // On stderr whatever the log filter: nobody may miss it.
        eprintln!("{}", corelog::server::run::UNSAFE_NO_FSYNC_BANNER);
        warn!(
            unsafe_no_fsync = true,
            "the WAL is never fsynced: benchmarks only"
        );
    }
    let signals = block_signals();
    let mut server = match Server::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            error!("corelog server: not started: {e}");
            return ExitCode::from(1);
        }
    };
    info!("{}", server.serving_line());
    println!("{}", server.serving_line());
    let _ = std::io::stdout().flush();
    let sig = loop {
        if let Some(s) = wait_signal(&signals, Duration::from_millis(500)) {
            break s;
        }
        for (shard, full) in server.space_changes() {
            match full {
                Some(cause) => eprintln!(
                    "corelog: WARN: shard {shard}: no room for its WAL ({cause}). \
                     It takes no new entries (appends answer Unavailable) and hands \
                     its leaderships over until there is room; free some space."
                ),
                None => eprintln!("corelog: shard {shard}: room for its WAL again; taking entries"),
            }
        }
        for (shard, cause) in server.new_failures() {
            error!(
                shard,
                cause = %cause,
                "shard stopped serving: its WAL failed. Its groups answer Unavailable; \
                 the other shards keep serving. Restart the process to recover the shard \
                 from its WAL."
            );
        }
    };
    let name = if sig == libc::SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    };
    info!(
        signal = name,
        "stopping (no new connections or requests; answering those in flight)"
    );
    match server.stop(SHUTDOWN_GRACE) {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(error = %e, "a shard's thread failed while stopping");
            ExitCode::from(1)
        }
    }
}
