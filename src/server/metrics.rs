//! Metrics in Prometheus' text format, served over HTTP by each shard on
//! its own port (`metrics_addr + shard`, as clients and peers are): the
//! shard reads its own counters on its own thread, so a scrape crosses
//! no core and takes no lock. `GET /metrics` answers them; anything else
//! is 404. One request per connection (`Connection: close`), its head
//! read up to 8 KiB, a few seconds at most.
//!
//! What a shard reports: its loop and WAL counters, whether its WAL
//! failed, its client service's counters (connections, requests,
//! answers by kind, appended records and bytes, bad frames), and per
//! group: role, term, commit and applied index, proposals and reads
//! waiting, offsets, entries applied, leader changes, refused peer
//! messages, snapshots built, installed and sent; errors answered by
//! kind; histograms of commit latency (appends, proposal to apply) and of
//! the WAL's flushes (writes + fdatasync). Not yet: peer network counters
//! per peer.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::listener::ShardServer;
use super::log_apply::LogApply;
use crate::raft::StateType;
use crate::shard::latency::Latency;
use crate::transport::accept;

/// Largest request head read.
const MAX_HEAD: usize = 8 << 10;

/// Binds the shard's metrics port and serves it until the server stops.
pub(crate) fn start(srv: &Rc<ShardServer>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let (listener, local) = accept::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    let srv = srv.clone();
    glommio::spawn_local(async move {
        let failed = |e: &std::io::Error| {
            tracing::warn!(shard = srv.shard.index(), error = %e, "metrics accept failed");
        };
        while let Some(s) = accept::next(&listener, || srv.stopping.wait(), failed).await {
            let srv = srv.clone();
            glommio::spawn_local(async move {
                let _ = or(answer(&srv, s), async {
                    glommio::timer::sleep(Duration::from_secs(5)).await;
                    Ok(())
                })
                .await;
            })
            .detach();
        }
    })
    .detach();
    Ok(local)
}

async fn answer(srv: &ShardServer, mut s: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let ok = line.starts_with(b"GET /metrics ") || line == b"GET /metrics";
    let (status, body) = if ok {
        ("200 OK", render(srv))
    } else {
        ("404 Not Found", "GET /metrics\n".to_string())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(resp.as_bytes()).await?;
    s.close().await
}

/// The shard's metrics, in Prometheus' text format.
pub fn render(srv: &ShardServer) -> String {
    let shard = &srv.shard;
    let k = shard.index();
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: &[(String, u64)]| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(o, "{name}{{{labels}}} {v}");
        }
    };
    let sl = format!("shard=\"{k}\"");
    let st = shard.stats();
    let c = |v: u64| vec![(sl.clone(), v)];
    metric(
        "corelog_shard_turns_total",
        "counter",
        "Loop turns.",
        &c(st.turns.turns),
    );
    metric(
        "corelog_shard_messages_sent_total",
        "counter",
        "Raft messages sent to peers.",
        &c(st.turns.sent),
    );
    metric(
        "corelog_shard_messages_lost_total",
        "counter",
        "Raft messages the peer network refused.",
        &c(st.turns.lost),
    );
    metric(
        "corelog_shard_messages_received_total",
        "counter",
        "Raft messages received from peers.",
        &c(st.turns.received),
    );
    metric(
        "corelog_shard_wal_flushes_total",
        "counter",
        "WAL flushes (write + fdatasync).",
        &c(st.wal.flushes),
    );
    metric(
        "corelog_shard_wal_writes_total",
        "counter",
        "Storage writes queued into the WAL.",
        &c(st.wal.writes),
    );
    metric(
        "corelog_shard_compactions_total",
        "counter",
        "Log compactions recorded in the WAL (a snapshot built and durable).",
        &c(st.turns.compactions),
    );
    metric(
        "corelog_shard_wal_segments",
        "gauge",
        "Segment files holding the shard's WAL records (the spare prepared ahead not counted).",
        &c(shard.wal().segment_seqs().len() as u64),
    );
    metric(
        "corelog_shard_wal_failed",
        "gauge",
        "1 if the shard's WAL failed (the shard answers Unavailable).",
        &c(u64::from(shard.failure().is_some())),
    );
    metric(
        "corelog_unsafe_no_fsync",
        "gauge",
        "1 if the WAL runs without fdatasync (--unsafe-no-fsync, benchmarks only).",
        &c(u64::from(shard.config().unsafe_no_fsync)),
    );
    let ss = srv.stats();
    metric(
        "corelog_client_connections",
        "gauge",
        "Client connections open.",
        &c(srv.connections() as u64),
    );
    metric(
        "corelog_client_connections_accepted_total",
        "counter",
        "Client connections accepted.",
        &c(ss.accepted),
    );
    metric(
        "corelog_client_connections_refused_total",
        "counter",
        "Client connections closed at once (max_connections).",
        &c(ss.refused_connections),
    );
    metric(
        "corelog_client_bad_frames_total",
        "counter",
        "Client connections closed for a frame that cannot be trusted.",
        &c(ss.bad_frames),
    );
    metric(
        "corelog_client_idle_closed_total",
        "counter",
        "Client connections closed after idle_timeout_ms with nothing in flight.",
        &c(ss.idle_closed),
    );
    metric(
        "corelog_client_bytes_held",
        "gauge",
        "Bytes the shard's client connections hold, against max_shard_bytes.",
        &c(srv.bytes_held()),
    );
    metric(
        "corelog_client_requests_total",
        "counter",
        "Client requests admitted.",
        &c(ss.requests),
    );
    metric(
        "corelog_appended_records_total",
        "counter",
        "Records appended (duplicates not counted).",
        &c(ss.appended_records),
    );
    metric(
        "corelog_retention_truncates_total",
        "counter",
        "Truncates committed by size or age retention (this shard's leaders).",
        &c(ss.retention_truncates),
    );
    metric(
        "corelog_appended_bytes_total",
        "counter",
        "Batch bytes appended.",
        &c(ss.appended_bytes),
    );
    let answers: Vec<(String, u64)> = srv
        .answers()
        .into_iter()
        .map(|(kind, v)| (format!("{sl},kind=\"{kind}\""), v))
        .collect();
    metric(
        "corelog_client_answers_total",
        "counter",
        "Answers sent, by operation or error kind.",
        &answers,
    );

    let errors: Vec<(String, u64)> = srv
        .errors()
        .into_iter()
        .map(|(kind, v)| (format!("{sl},kind=\"{kind}\""), v))
        .collect();
    metric(
        "corelog_client_errors_total",
        "counter",
        "Error answers sent, by kind.",
        &errors,
    );
    let mut h = String::new();
    histogram(
        &mut h,
        "corelog_shard_commit_seconds",
        "Appends and truncates from proposal to commit and apply on this member.",
        &sl,
        &srv.commit_latency(),
    );
    histogram(
        &mut h,
        "corelog_shard_fsync_seconds",
        "WAL flushes (writes + fdatasync) from submission to completion.",
        &sl,
        &st.wal.flush_latency,
    );

    // Per-group values: `vals` below must have exactly ROWS of them.
    const ROWS: usize = 15;
    let mut rows: Vec<Vec<(String, u64)>> = vec![Vec::new(); ROWS];
    for g in shard.group_ids() {
        let Some(node) = shard.node(g) else { continue };
        let s = node.status();
        let (earliest, latest) = node.with_apply(|a| {
            a.as_any().downcast_ref::<LogApply>().map_or((0, 0), |l| {
                (l.state().earliest_offset(), l.state().next_offset())
            })
        });
        let gl = format!("{sl},group=\"{g}\"");
        let vals: [u64; ROWS] = [
            u64::from(s.role == StateType::Leader),
            s.hard_state.term,
            s.hard_state.commit,
            s.applied,
            s.last_index,
            s.inflight_proposals as u64,
            s.inflight_bytes,
            earliest,
            latest,
            s.stats.applied_entries,
            s.stats.leader_changes,
            s.stats.step_errors,
            s.stats.snapshots_built,
            s.stats.snapshots_installed,
            s.stats.snapshots_sent,
        ];
        for (r, v) in rows.iter_mut().zip(vals) {
            r.push((gl.clone(), v));
        }
    }
    let names = [
        (
            "corelog_group_leader",
            "gauge",
            "1 if this member leads the group.",
        ),
        ("corelog_group_term", "gauge", "The group's Raft term here."),
        (
            "corelog_group_commit_index",
            "gauge",
            "The group's commit index (as last persisted).",
        ),
        (
            "corelog_group_applied_index",
            "gauge",
            "The last entry applied here.",
        ),
        (
            "corelog_group_last_index",
            "gauge",
            "The last entry of the group's log here.",
        ),
        (
            "corelog_group_inflight_proposals",
            "gauge",
            "Proposals waiting for commit.",
        ),
        (
            "corelog_group_inflight_bytes",
            "gauge",
            "Bytes of the proposals waiting.",
        ),
        (
            "corelog_group_earliest_offset",
            "gauge",
            "The first offset readable here.",
        ),
        (
            "corelog_group_next_offset",
            "gauge",
            "The offset the next record gets.",
        ),
        (
            "corelog_group_applied_entries_total",
            "counter",
            "Entries applied here.",
        ),
        (
            "corelog_group_leader_changes_total",
            "counter",
            "Times this member learned of a new leader of the group.",
        ),
        (
            "corelog_group_step_errors_total",
            "counter",
            "Peer messages Raft refused.",
        ),
        (
            "corelog_group_snapshots_built_total",
            "counter",
            "Snapshots built here (the log compacted to them).",
        ),
        (
            "corelog_group_snapshots_installed_total",
            "counter",
            "Leaders' snapshots installed here (caught up by snapshot).",
        ),
        (
            "corelog_group_snapshots_sent_total",
            "counter",
            "Snapshots sent to followers behind the log.",
        ),
    ];
    // One row per value above and one name per row: a value added
    // without its name (or a row count left short) would vanish silently.
    assert_eq!(names.len(), rows.len(), "metrics: names and rows");
    for ((name, kind, help), r) in names.iter().zip(&rows) {
        metric(name, kind, help, r);
    }
    o.push_str(&h);
    o
}

/// One Prometheus histogram: cumulative `_bucket`s by `le` (seconds),
/// `_sum` (seconds) and `_count`.
fn histogram(o: &mut String, name: &str, help: &str, labels: &str, l: &Latency) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} histogram");
    for (le, n) in l.cumulative() {
        match le {
            Some(s) => {
                let _ = writeln!(o, "{name}_bucket{{{labels},le=\"{s}\"}} {n}");
            }
            None => {
                let _ = writeln!(o, "{name}_bucket{{{labels},le=\"+Inf\"}} {n}");
            }
        }
    }
    let _ = writeln!(o, "{name}_sum{{{labels}}} {}", l.sum_us as f64 / 1e6);
    let _ = writeln!(o, "{name}_count{{{labels}}} {}", l.count);
}
