//! The server's configuration: what `corelog server` reads from its TOML
//! file (`--config FILE`) and flags, checked once into what the runtime
//! and the client listeners start from. Every refusal names the field
//! (`ServerConfigError::field`), as the user wrote it in the file.
//!
//! The file (every field optional in the file; required ones must come
//! from the file or a flag):
//!
//! ```toml
//! cluster_id = 1            # required, non-zero
//! member_id = 1             # required: this member, one of [[members]]
//! data_dir = "/var/lib/corelog"   # required
//! groups = 16
//! replication_factor = 3
//! cpus = "auto"             # "auto" (shard k on the k-th allowed CPU), "none", or "0,2,4"
//! metrics_addr = "127.0.0.1:9100"  # Prometheus text on port + shard (off when absent)
//! unsafe_no_fsync = false   # benchmarks only: acknowledged writes can be lost
//!
//! [[members]]               # the static member list, the same on every member
//! id = 1
//! name = "a"
//! peer_addr = "10.0.0.1:7000"     # shard k listens for peers on port + k
//! client_addr = "10.0.0.1:7100"   # shard k listens for clients on port + k
//! shards = 2
//!
//! [runtime]                 # clocks (RuntimeConfig)
//! tick_ms = 10
//! election_ticks = 10
//! heartbeat_ticks = 1
//! request_timeout_ms = 10000
//! rebalance_leaders = true  # leadership goes back to placement's preferred leader
//! wal_segment_bytes = 67108864     # each shard's WAL segments (64 MiB)
//! wal_max_disk_bytes = 4294967296  # most each shard's WAL may take (none if absent)
//! compact_threshold_entries = 10000  # compact a group's log once this many entries are droppable
//!
//! [retention]               # every group's, enforced by its leader (none if absent)
//! max_bytes = 1073741824    # keep at most this many bytes of batches (the newest always kept)
//! max_age_ms = 604800000    # drop batches older than this (producers' timestamps)
//! check_interval_ms = 1000  # how often a leader judges its groups
//!
//! [limits]                  # the client door (defaults: docs/protocol.md section 7)
//! max_frame_bytes = 4194304
//! max_batch_bytes = 1048576
//! max_records_per_batch = 65536
//! max_record_bytes = 1048576
//! max_read_records = 10000
//! max_read_bytes = 1048576
//! max_connection_bytes = 16777216
//! max_shard_bytes = 268435456     # all of a shard's connections together
//! max_connections = 1024
//! idle_timeout_ms = 600000        # a connection with nothing in flight
//! max_inflight_proposals = 4096
//! max_uncommitted_bytes = 8388608
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::retention::Retention;
use crate::cluster::{Cluster, Member};
use crate::log::BatchLimits;
use crate::protocol::Limits;
use crate::shard::{CpuPlacement, RuntimeConfig};

/// The configuration as written (file, then flags over it): every field
/// optional until `check`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub cluster_id: Option<u64>,
    pub member_id: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub groups: Option<u64>,
    pub replication_factor: Option<u32>,
    pub cpus: Option<String>,
    /// Base address of the metrics ports (shard k: port + k); none: off.
    pub metrics_addr: Option<SocketAddr>,
    /// Benchmarks only: the WAL writes without fdatasync.
    pub unsafe_no_fsync: Option<bool>,
    #[serde(default)]
    pub members: Vec<MemberEntry>,
    #[serde(default)]
    pub runtime: RuntimeSection,
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(default)]
    pub limits: LimitsSection,
}

/// One member of the static member list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    pub id: u64,
    pub name: String,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    #[serde(default = "one")]
    pub shards: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    pub tick_ms: Option<u64>,
    pub election_ticks: Option<usize>,
    pub heartbeat_ticks: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub rebalance_leaders: Option<bool>,
    pub wal_segment_bytes: Option<u64>,
    pub wal_max_disk_bytes: Option<u64>,
    pub compact_threshold_entries: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    pub max_bytes: Option<u64>,
    pub max_age_ms: Option<u64>,
    pub check_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_frame_bytes: Option<u32>,
    pub max_batch_bytes: Option<u32>,
    pub max_records_per_batch: Option<u32>,
    pub max_record_bytes: Option<u32>,
    pub max_read_records: Option<u32>,
    pub max_read_bytes: Option<u32>,
    pub max_connection_bytes: Option<u64>,
    pub max_shard_bytes: Option<u64>,
    pub max_connections: Option<usize>,
    pub idle_timeout_ms: Option<u64>,
    pub max_inflight_proposals: Option<usize>,
    pub max_uncommitted_bytes: Option<u64>,
}

/// A configuration that cannot work: the field, as written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfigError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ServerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration: {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ServerConfigError {}

fn bad<T>(field: &str, reason: impl Into<String>) -> Result<T, ServerConfigError> {
    Err(ServerConfigError {
        field: field.to_string(),
        reason: reason.into(),
    })
}

/// Bounds of one client connection and of the client listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Frame and read bounds (the protocol's).
    pub protocol: Limits,
    /// The door's checks of an appended batch.
    pub batch: BatchLimits,
    /// Bytes a connection may have unanswered: its requests in flight plus
    /// the answers they may produce plus answers not yet written. The
    /// connection stops reading while it is at this bound.
    pub max_connection_bytes: u64,
    /// The same bytes summed over all of a shard's connections: at this
    /// bound every connection of the shard stops reading until answers
    /// drain, so the shard's memory for client requests is bounded, not
    /// only each connection's.
    pub max_shard_bytes: u64,
    /// Client connections one shard holds open; more are closed at once.
    pub max_connections: usize,
    /// A connection with nothing in flight (no request, no tail, no
    /// answer unwritten) that sends nothing for this long is closed.
    pub idle_timeout: Duration,
}

impl ConnLimits {
    pub const DEFAULT: ConnLimits = ConnLimits {
        protocol: Limits::DEFAULT,
        batch: BatchLimits::DEFAULT,
        max_connection_bytes: 16 << 20,
        max_shard_bytes: 256 << 20,
        max_connections: 1024,
        idle_timeout: Duration::from_secs(600),
    };
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits::DEFAULT
    }
}

/// A checked configuration: what the server starts from.
#[derive(Clone)]
pub struct ServerConfig {
    pub cluster: Arc<Cluster>,
    pub member: u64,
    pub data_dir: PathBuf,
    pub runtime: RuntimeConfig,
    pub cpus: CpuPlacement,
    pub limits: ConnLimits,
    /// Metrics over HTTP: shard k on this address's port + k.
    pub metrics_addr: Option<SocketAddr>,
    /// Size and age limits of every group (off by default).
    pub retention: Retention,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("cluster", &self.cluster.id())
            .field("member", &self.member)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl FileConfig {
    /// Reads and parses a TOML file (unknown keys refused, by name).
    pub fn read(path: &Path) -> Result<FileConfig, ServerConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServerConfigError {
            field: "--config".into(),
            reason: format!("{}: {e}", path.display()),
        })?;
        FileConfig::parse(&text)
    }

    /// Parses TOML text. An error names the key on the line it points at
    /// (with its `[section].`), since toml's own message does not always.
    pub fn parse(text: &str) -> Result<FileConfig, ServerConfigError> {
        toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            let (field, line) = match e.span() {
                Some(s) => key_at(text, s.start),
                None => ("config file".to_string(), 0),
            };
            ServerConfigError {
                field,
                reason: format!("{msg} (line {line})"),
            }
        })
    }

    /// Checks every field and builds what the server starts from.
    pub fn check(&self) -> Result<ServerConfig, ServerConfigError> {
        let Some(cluster_id) = self.cluster_id else {
            return bad("cluster_id", "required");
        };
        let Some(member) = self.member_id else {
            return bad("member_id", "required");
        };
        let Some(data_dir) = self.data_dir.clone() else {
            return bad("data_dir", "required");
        };
        if self.members.is_empty() {
            return bad("members", "at least one member is required");
        }
        if !self.members.iter().any(|m| m.id == member) {
            return bad("member_id", format!("{member} is not in the member list"));
        }
        let groups = self.groups.unwrap_or(1);
        let rf = self
            .replication_factor
            .unwrap_or((self.members.len() as u32).min(3));
        let members: Vec<Member> = self
            .members
            .iter()
            .map(|m| Member {
                id: m.id,
                name: m.name.clone(),
                peer_addr: m.peer_addr,
                client_addr: m.client_addr,
                shards: m.shards,
            })
            .collect();
        let cluster = Cluster::new(cluster_id, members, groups, rf).map_err(|e| {
            let text = e.to_string();
            // Cluster's errors name what they concern; point at the field.
            let field = if text.contains("replication") {
                "replication_factor"
            } else if text.contains("group") {
                "groups"
            } else if text.contains("cluster id") {
                "cluster_id"
            } else {
                "members"
            };
            ServerConfigError {
                field: field.into(),
                reason: text,
            }
        })?;

        let mut runtime = RuntimeConfig::default();
        let r = &self.runtime;
        if let Some(ms) = r.tick_ms {
            if ms == 0 {
                return bad("runtime.tick_ms", "0");
            }
            runtime.tick = Duration::from_millis(ms);
        }
        if let Some(t) = r.election_ticks {
            runtime.election_ticks = t;
        }
        if let Some(t) = r.heartbeat_ticks {
            runtime.heartbeat_ticks = t;
        }
        if let Some(b) = r.rebalance_leaders {
            runtime.rebalance_leaders = b;
        }
        if let Some(n) = r.wal_segment_bytes {
            runtime.wal_segment_size = n;
        }
        if let Some(n) = r.wal_max_disk_bytes {
            runtime.wal_max_disk_bytes = n;
        }
        if let Some(n) = r.compact_threshold_entries {
            runtime.compact_threshold_entries = n;
        }
        if let Some(ms) = r.request_timeout_ms {
            let tick = runtime.tick.as_millis().max(1) as u64;
            runtime.request_timeout_ticks = ms.div_ceil(tick);
        }
        let l = &self.limits;
        if let Some(n) = l.max_inflight_proposals {
            runtime.max_inflight_proposals = n;
        }
        if let Some(n) = l.max_uncommitted_bytes {
            runtime.max_uncommitted_bytes = n;
        }
        let mut limits = ConnLimits::DEFAULT;
        if let Some(n) = l.max_frame_bytes {
            limits.protocol.max_frame_bytes = n;
        }
        if let Some(n) = l.max_batch_bytes {
            limits.batch.max_batch_bytes = n;
        }
        if let Some(n) = l.max_records_per_batch {
            limits.batch.max_records = n;
        }
        if let Some(n) = l.max_record_bytes {
            limits.batch.max_record_bytes = n;
        }
        if let Some(n) = l.max_read_records {
            limits.protocol.max_read_records = n;
        }
        if let Some(n) = l.max_read_bytes {
            limits.protocol.max_read_bytes = n;
        }
        if let Some(n) = l.max_connection_bytes {
            limits.max_connection_bytes = n;
        }
        if let Some(n) = l.max_shard_bytes {
            limits.max_shard_bytes = n;
        }
        if let Some(n) = l.max_connections {
            limits.max_connections = n;
        }
        if let Some(ms) = l.idle_timeout_ms {
            if ms == 0 {
                return bad("limits.idle_timeout_ms", "0");
            }
            limits.idle_timeout = Duration::from_millis(ms);
        }
        check_limits(&limits, &mut runtime)?;
        runtime.validate().map_err(|e| {
            let field = match e.field {
                "tick" => "runtime.tick_ms".to_string(),
                "election_ticks" => "runtime.election_ticks".to_string(),
                "request_timeout_ticks" => "runtime.request_timeout_ms".to_string(),
                "compact_threshold_entries" => "runtime.compact_threshold_entries".to_string(),
                "max_inflight_proposals" | "max_uncommitted_bytes" => format!("limits.{}", e.field),
                "max_entry_bytes" => "limits.max_batch_bytes".to_string(),
                "wal_segment_size" => "runtime.wal_segment_bytes".to_string(),
                "wal_max_disk_bytes" => "runtime.wal_max_disk_bytes".to_string(),
                other => other.to_string(),
            };
            ServerConfigError {
                field,
                reason: e.reason,
            }
        })?;
        runtime.unsafe_no_fsync = self.unsafe_no_fsync.unwrap_or(false);
        let cpus = parse_cpus(self.cpus.as_deref().unwrap_or("auto"))?;
        let retention = self.retention.check()?;
        Ok(ServerConfig {
            cluster: Arc::new(cluster),
            member,
            data_dir,
            runtime,
            cpus,
            limits,
            metrics_addr: self.metrics_addr,
            retention,
        })
    }
}

impl RetentionSection {
    fn check(&self) -> Result<Retention, ServerConfigError> {
        let mut r = Retention::OFF;
        if let Some(n) = self.max_bytes {
            if n == 0 {
                return bad("retention.max_bytes", "0 (leave it out for no size limit)");
            }
            r.policy.max_bytes = Some(n);
        }
        if let Some(ms) = self.max_age_ms {
            if ms == 0 {
                return bad("retention.max_age_ms", "0 (leave it out for no age limit)");
            }
            r.policy.max_age_ms = Some(ms);
        }
        if let Some(ms) = self.check_interval_ms {
            if ms == 0 {
                return bad("retention.check_interval_ms", "0");
            }
            r.check_interval = Duration::from_millis(ms);
        }
        Ok(r)
    }
}

/// The key written on the line holding byte `at` of `text`, with the
/// section it is in, and the line's number (1-based).
fn key_at(text: &str, at: usize) -> (String, usize) {
    let at = at.min(text.len());
    let line_no = text[..at].matches('\n').count() + 1;
    let mut section = String::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            section = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
        if i + 1 == line_no {
            let key = l.split('=').next().unwrap_or("").trim();
            if key.is_empty() || key.starts_with('[') {
                return ("config file".into(), line_no);
            }
            return if section.is_empty() {
                (key.to_string(), line_no)
            } else {
                (format!("{section}.{key}"), line_no)
            };
        }
    }
    ("config file".into(), line_no)
}

/// The door's limits against each other and the runtime's: a batch the
/// door admits must fit a frame and one proposal.
fn check_limits(l: &ConnLimits, rt: &mut RuntimeConfig) -> Result<(), ServerConfigError> {
    let b = &l.batch;
    if b.max_batch_bytes < 64 {
        return bad("limits.max_batch_bytes", "below 64 bytes");
    }
    if b.max_records == 0 {
        return bad("limits.max_records_per_batch", "0");
    }
    if b.max_record_bytes == 0 {
        return bad("limits.max_record_bytes", "0");
    }
    if !b.within_ceiling() {
        return bad(
            "limits",
            format!(
                "batch limits above the format's ceiling {:?}",
                BatchLimits::CEILING
            ),
        );
    }
    // An append frame holds the batch plus a few bytes of protobuf.
    if u64::from(l.protocol.max_frame_bytes) < u64::from(b.max_batch_bytes) + 64 {
        return bad(
            "limits.max_frame_bytes",
            format!(
                "{} cannot carry a batch of max_batch_bytes {} (needs 64 more)",
                l.protocol.max_frame_bytes, b.max_batch_bytes
            ),
        );
    }
    if u64::from(l.protocol.max_frame_bytes) > 64 << 20 {
        return bad("limits.max_frame_bytes", "above 64 MiB");
    }
    if l.protocol.max_read_records == 0 {
        return bad("limits.max_read_records", "0");
    }
    if l.protocol.max_read_bytes == 0 {
        return bad("limits.max_read_bytes", "0");
    }
    // A read answer (up to max_read_bytes of batches, plus the first batch
    // if alone larger) must fit a frame.
    if u64::from(l.protocol.max_read_bytes) + u64::from(b.max_batch_bytes) + 1024
        > u64::from(l.protocol.max_frame_bytes)
    {
        return bad(
            "limits.max_read_bytes",
            format!(
                "{} plus one batch (max_batch_bytes {}) must fit max_frame_bytes {}",
                l.protocol.max_read_bytes, b.max_batch_bytes, l.protocol.max_frame_bytes
            ),
        );
    }
    if l.max_connection_bytes < 2 * u64::from(l.protocol.max_frame_bytes) {
        return bad(
            "limits.max_connection_bytes",
            format!(
                "{} is below two frames (max_frame_bytes {})",
                l.max_connection_bytes, l.protocol.max_frame_bytes
            ),
        );
    }
    if l.max_shard_bytes < l.max_connection_bytes {
        return bad(
            "limits.max_shard_bytes",
            format!(
                "{} is below one connection's max_connection_bytes {}",
                l.max_shard_bytes, l.max_connection_bytes
            ),
        );
    }
    if l.max_connections == 0 {
        return bad("limits.max_connections", "0");
    }
    // One batch is one proposal: the runtime must take the largest.
    rt.max_entry_bytes = rt.max_entry_bytes.max(b.max_batch_bytes as usize);
    Ok(())
}

/// "auto", "none", or a comma-separated list of CPU numbers.
pub fn parse_cpus(s: &str) -> Result<CpuPlacement, ServerConfigError> {
    match s.trim() {
        "auto" => Ok(CpuPlacement::Auto),
        "none" => Ok(CpuPlacement::Unbound),
        list => {
            let mut cpus = Vec::new();
            for part in list.split(',') {
                match part.trim().parse::<usize>() {
                    Ok(c) => cpus.push(c),
                    Err(_) => {
                        return bad(
                            "cpus",
                            format!(
                                "{s:?}: expected \"auto\", \"none\" or CPU numbers like \"0,2\""
                            ),
                        );
                    }
                }
            }
            Ok(CpuPlacement::Pinned(cpus))
        }
    }
}

/// A member given as `id=name@peer_addr/client_addr[/shards]` (the
/// `--member` flag).
pub fn parse_member(s: &str) -> Result<MemberEntry, ServerConfigError> {
    let fail = || {
        bad(
            "--member",
            format!("{s:?}: expected id=name@peer_addr/client_addr[/shards]"),
        )
    };
    let Some((id, rest)) = s.split_once('=') else {
        return fail();
    };
    let Some((name, addrs)) = rest.split_once('@') else {
        return fail();
    };
    let mut parts = addrs.split('/');
    let (Some(peer), Some(client)) = (parts.next(), parts.next()) else {
        return fail();
    };
    let shards = match parts.next() {
        Some(n) => match n.parse::<u32>() {
            Ok(n) => n,
            Err(_) => return fail(),
        },
        None => 1,
    };
    if parts.next().is_some() {
        return fail();
    }
    let (Ok(id), Ok(peer_addr), Ok(client_addr)) = (
        id.parse::<u64>(),
        peer.parse::<SocketAddr>(),
        client.parse::<SocketAddr>(),
    ) else {
        return fail();
    };
    Ok(MemberEntry {
        id,
        name: name.to_string(),
        peer_addr,
        client_addr,
        shards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
cluster_id = 7
member_id = 2
data_dir = "/tmp/x"
groups = 4
cpus = "none"
[[members]]
id = 1
name = "a"
peer_addr = "127.0.0.1:7000"
client_addr = "127.0.0.1:7100"
[[members]]
id = 2
name = "b"
peer_addr = "127.0.0.1:7010"
client_addr = "127.0.0.1:7110"
shards = 2
[runtime]
tick_ms = 5
rebalance_leaders = false
compact_threshold_entries = 50
[limits]
max_read_records = 100
"#;

    fn field(text: &str) -> String {
        FileConfig::parse(text)
            .and_then(|c| c.check())
            .unwrap_err()
            .field
    }

    #[test]
    fn a_good_file_gives_the_cluster_member_clock_and_limits() {
        let c = FileConfig::parse(GOOD).unwrap().check().unwrap();
        assert_eq!(c.cluster.id(), 7);
        assert_eq!(c.member, 2);
        assert_eq!(c.cluster.member(2).unwrap().shards, 2);
        assert_eq!(c.cluster.replication_factor(), 2);
        assert_eq!(c.runtime.tick, Duration::from_millis(5));
        assert!(!c.runtime.rebalance_leaders);
        assert_eq!(
            c.runtime.wal_max_disk_bytes,
            u64::MAX,
            "no quota unless set"
        );
        assert_eq!(c.runtime.compact_threshold_entries, 50);
        assert_eq!(c.limits.protocol.max_read_records, 100);
        let q = FileConfig::parse(&GOOD.replace(
            "tick_ms = 5",
            "wal_segment_bytes = 65536\nwal_max_disk_bytes = 1048576",
        ))
        .unwrap()
        .check()
        .unwrap();
        assert_eq!(q.runtime.wal_segment_size, 65536);
        assert_eq!(q.runtime.wal_max_disk_bytes, 1 << 20);
        assert_eq!(c.cpus, CpuPlacement::Unbound);
    }

    #[test]
    fn retention_is_off_unless_set_and_a_zero_limit_is_refused() {
        let c = FileConfig::parse(GOOD).unwrap().check().unwrap();
        assert!(c.retention.is_off());
        let with =
            |lines: &str| GOOD.replace("[limits]", &format!("[retention]\n{lines}\n[limits]"));
        let r = FileConfig::parse(&with(
            "max_bytes = 4096\nmax_age_ms = 60000\ncheck_interval_ms = 250",
        ))
        .unwrap()
        .check()
        .unwrap()
        .retention;
        assert_eq!(r.policy.max_bytes, Some(4096));
        assert_eq!(r.policy.max_age_ms, Some(60_000));
        assert_eq!(r.check_interval, Duration::from_millis(250));
        assert_eq!(field(&with("max_bytes = 0")), "retention.max_bytes");
        assert_eq!(field(&with("max_age_ms = 0")), "retention.max_age_ms");
        assert_eq!(
            field(&with("check_interval_ms = 0")),
            "retention.check_interval_ms"
        );
        assert_eq!(field(&with("max_size = 1")), "retention.max_size");
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(field(&GOOD.replace("cluster_id = 7", "")), "cluster_id");
        assert_eq!(
            field(&GOOD.replace("member_id = 2", "member_id = 9")),
            "member_id"
        );
        assert_eq!(
            field(&GOOD.replace("data_dir = \"/tmp/x\"", "")),
            "data_dir"
        );
        assert_eq!(
            field(&GOOD.replace("groups = 4", "groups = 4\nreplication_factor = 5")),
            "replication_factor"
        );
        assert_eq!(
            field(&GOOD.replace("cpus = \"none\"", "cpus = \"x\"")),
            "cpus"
        );
        assert_eq!(
            field(&GOOD.replace("tick_ms = 5", "tick_ms = 0")),
            "runtime.tick_ms"
        );
        assert_eq!(
            field(&GOOD.replace("tick_ms = 5", "election_ticks = 1")),
            "runtime.election_ticks"
        );
        assert_eq!(
            field(&GOOD.replace(
                "compact_threshold_entries = 50",
                "compact_threshold_entries = 0"
            )),
            "runtime.compact_threshold_entries"
        );
        assert_eq!(
            field(&GOOD.replace("max_read_records = 100", "max_frame_bytes = 100")),
            "limits.max_frame_bytes"
        );
        assert_eq!(
            field(&GOOD.replace("max_read_records = 100", "max_connection_bytes = 10")),
            "limits.max_connection_bytes"
        );
        assert_eq!(
            field(&GOOD.replace("tick_ms = 5", "wal_segment_bytes = 100")),
            "runtime.wal_segment_bytes"
        );
        assert_eq!(
            field(&GOOD.replace(
                "tick_ms = 5",
                "wal_segment_bytes = 65536\nwal_max_disk_bytes = 65536"
            )),
            "runtime.wal_max_disk_bytes"
        );
        assert_eq!(
            field(&GOOD.replace("max_read_records = 100", "max_shard_bytes = 1000")),
            "limits.max_shard_bytes"
        );
        assert_eq!(
            field(&GOOD.replace("max_read_records = 100", "idle_timeout_ms = 0")),
            "limits.idle_timeout_ms"
        );
        assert_eq!(
            field(&GOOD.replace("127.0.0.1:7010", "127.0.0.1:7000")),
            "members"
        );
        let e = FileConfig::parse(&GOOD.replace("groups = 4", "grops = 4")).unwrap_err();
        assert!(e.reason.contains("grops"), "{e}");
        let e = FileConfig::parse(&GOOD.replace("groups = 4", "groups = \"four\"")).unwrap_err();
        assert!(
            e.to_string().contains("groups") || e.reason.contains("integer"),
            "{e}"
        );
    }

    #[test]
    fn members_parse_from_the_flag_form() {
        assert_eq!(
            parse_member("3=c@127.0.0.1:7020/127.0.0.1:7120/4").unwrap(),
            MemberEntry {
                id: 3,
                name: "c".into(),
                peer_addr: "127.0.0.1:7020".parse().unwrap(),
                client_addr: "127.0.0.1:7120".parse().unwrap(),
                shards: 4
            }
        );
        assert_eq!(
            parse_member("3=c@127.0.0.1:7020/127.0.0.1:7120")
                .unwrap()
                .shards,
            1
        );
        for bad in [
            "c@1/2",
            "3=c",
            "x=c@127.0.0.1:1/127.0.0.1:2",
            "3=c@127.0.0.1:1",
            "3=c@a/b/1/2",
        ] {
            assert_eq!(parse_member(bad).unwrap_err().field, "--member", "{bad}");
        }
    }
}
