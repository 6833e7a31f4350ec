//! One fault run: start the cluster, run the clients and the nemesis for
//! the duration, heal everything, let the replicas converge, read every
//! replica's log back, write the history and final files, and check them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corelog::client::{Client, ClientOptions, Connection};
use corelog::clientpb::request::Op;
use corelog::clientpb::response::Result as Answer;
use corelog::clientpb::{Consistency, MembershipChange, ReadRequest, Request};
use corelog::log::{BatchLimits, RecordBatch};
use corelog::protocol::Limits;
use serde_json::{Value as Json, json};

use crate::check::{self, Report};
use crate::cluster::{Cluster, ClusterSpec};
use crate::history::{read_final, read_history};
use crate::nemesis::{self, Rng};
use crate::workload::{History, Workload, record_value};

/// A run's settings (the command line's).
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub seed: u64,
    pub duration: Duration,
    pub members: u64,
    pub groups: u64,
    /// Appending processes per group.
    pub processes: u64,
    pub binary: PathBuf,
    /// Where the data, the members' logs and (by default) the history go.
    pub dir: PathBuf,
    /// History and final files; with several groups, `.g<k>` is put
    /// before the extension of each.
    pub history: PathBuf,
    pub fin: PathBuf,
    /// Faults: how long each holds, and the quiet between them.
    pub hold: (u64, u64),
    pub quiet: (u64, u64),
    /// Full disks among the faults (each member on a tmpfs of its own;
    /// the caller has entered a private mount namespace).
    pub disk_full: bool,
}

/// What a run found: the checker's report of each group, and what the
/// harness saw go wrong beyond the history (a replica that never caught
/// up, a full disk the member never reported).
#[derive(Debug, Default)]
pub struct Outcome {
    pub reports: Vec<Report>,
    pub problems: Vec<String>,
}

/// `path` for group `g` of `groups`.
pub fn per_group(path: &Path, g: u64, groups: u64) -> PathBuf {
    if groups == 1 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(e) => format!("{stem}.g{g}.{}", e.to_string_lossy()),
        None => format!("{stem}.g{g}"),
    };
    path.with_file_name(name)
}

fn log(start: Instant, what: &str) {
    println!("[{:>7.2}s] {what}", start.elapsed().as_secs_f64());
}

fn admin_client(servers: &[SocketAddr]) -> Option<Client> {
    Client::connect(
        servers,
        ClientOptions {
            timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(1),
            ..ClientOptions::default()
        },
    )
    .ok()
}

/// Runs the schedule and judges it.
pub fn run(spec: &RunSpec) -> io::Result<Outcome> {
    let start = Instant::now();
    let mut cluster = Cluster::start(ClusterSpec {
        binary: spec.binary.clone(),
        members: spec.members,
        groups: spec.groups,
        dir: spec.dir.clone(),
        tick_ms: 10,
        election_ticks: 10,
        own_disks: spec.disk_full,
    })?;
    log(start, &format!("{} members serving", spec.members));
    let servers = cluster.client_addrs();
    wait_leaders(&servers, spec.groups, Duration::from_secs(30))?;
    log(start, "every group has a leader");

    let values = Arc::new(AtomicU64::new(1));
    let mut histories = Vec::new();
    let mut loads = Vec::new();
    for g in 0..spec.groups {
        let h = Arc::new(History::create(
            &per_group(&spec.history, g, spec.groups),
            start,
        )?);
        loads.push(Workload::start(
            servers.clone(),
            g,
            spec.processes,
            h.clone(),
            values.clone(),
        ));
        histories.push(h);
    }

    let mut rng = Rng::new(spec.seed);
    let ids = cluster.ids();
    let end = start + spec.duration;
    let admin = admin_client(&servers);
    // Members a fault removed from group 0 and not yet added back.
    let mut removed: Vec<u64> = Vec::new();
    let mut fills = 0u64;
    while Instant::now() < end {
        let quiet = Duration::from_millis(rng.range(spec.quiet.0, spec.quiet.1));
        std::thread::sleep(quiet.min(end.saturating_duration_since(Instant::now())));
        if Instant::now() >= end {
            break;
        }
        let step = nemesis::next_step(&mut rng, &ids, spec.disk_full);
        let mut hold = Duration::from_millis(rng.range(spec.hold.0, spec.hold.1));
        if matches!(step, nemesis::Step::DiskFull(_)) {
            hold = hold.max(nemesis::DISK_FULL_HOLD);
            fills += 1;
        }
        log(
            start,
            &format!("nemesis: {} for {hold:?}", nemesis::describe(&step)),
        );
        if let Some(m) = nemesis::apply(&step, &mut cluster, admin.as_ref(), spec.groups)? {
            removed.push(m);
        }
        std::thread::sleep(hold);
        cluster.heal()?;
        removed.retain(|&m| {
            let back = restore_voter(admin.as_ref(), 0, m);
            if !back {
                log(
                    start,
                    &format!("member {m} is not a voter of group 0 again yet"),
                );
            }
            !back
        });
        for (id, st) in cluster.exited() {
            log(
                start,
                &format!(
                    "member {id} exited by itself: {st} (see its log in {})",
                    cluster.log_dir().display()
                ),
            );
            cluster.restart(id)?;
        }
        log(start, "healed");
    }

    cluster.heal()?;
    let mut out = Outcome::default();
    for m in removed {
        if !restore_voter(admin.as_ref(), 0, m) {
            // Every fault is healed: a group that cannot take a
            // configuration change now is wedged.
            out.problems.push(format!(
                "member {m} could not be added back to group 0 after healing"
            ));
        }
    }
    // Let the clients append on a healed cluster for a moment, so every
    // member is seen catching up.
    std::thread::sleep(Duration::from_secs(2));
    let mut totals = (0, 0, 0);
    for l in loads {
        let c = l.stop();
        totals.0 += c.invoked.load(Ordering::Relaxed);
        totals.1 += c.ok.load(Ordering::Relaxed);
        totals.2 += c.info.load(Ordering::Relaxed);
    }
    for h in &histories {
        h.flush();
    }
    log(
        start,
        &format!(
            "clients stopped: {} appends invoked, {} acknowledged, {} indeterminate",
            totals.0, totals.1, totals.2
        ),
    );

    for g in 0..spec.groups {
        let (logs, statuses) = converge(&cluster, g, Duration::from_secs(60))?;
        let ends: BTreeMap<u64, u64> = logs
            .iter()
            .map(|(m, l)| (*m, l.last().map_or(0, |(o, _)| o + 1)))
            .collect();
        if ends.values().min() != ends.values().max() {
            out.problems.push(format!(
                "group {g}: the replicas did not converge within 60 s of healing \
                 (log ends by member: {ends:?}); their own status:{statuses}"
            ));
        }
        let mut replicas = serde_json::Map::new();
        for (m, entries) in &logs {
            let pairs: Vec<Json> = entries.iter().map(|(o, v)| json!([o, v])).collect();
            replicas.insert(m.to_string(), Json::Array(pairs));
        }
        let fin_path = per_group(&spec.fin, g, spec.groups);
        let mut f = File::create(&fin_path)?;
        writeln!(f, "{}", json!({"replicas": replicas}))?;
        drop(f);
        // Judge the files as written, as another checker would.
        let events = read_history(BufReader::new(File::open(per_group(
            &spec.history,
            g,
            spec.groups,
        ))?))
        .map_err(|e| io::Error::other(format!("history of group {g}: {e}")))?;
        let fin = read_final(BufReader::new(File::open(&fin_path)?))
            .map_err(|e| io::Error::other(format!("final logs of group {g}: {e}")))?;
        out.reports.push(check::check(&events, &fin));
    }
    if fills > 0 {
        let (full, room) = space_reports(cluster.log_dir())?;
        log(
            start,
            &format!(
                "full disks: {fills} filled; members reported no room {full} times, room again {room} times"
            ),
        );
        if full == 0 {
            out.problems.push(format!(
                "{fills} disks filled and no member reported a full disk: the fault did not bite"
            ));
        }
        if room < full {
            out.problems.push(format!(
                "members reported no room {full} times but room again only {room} times"
            ));
        }
    }
    if !out.problems.is_empty() || out.reports.iter().any(|r| !r.is_valid()) {
        // The members' data lives on tmpfs mounts that vanish with this
        // process: keep a copy beside the logs for `corelog wal-check`.
        for (id, to) in cluster.preserve_disks()? {
            log(
                start,
                &format!("member {id}'s data copied to {}", to.display()),
            );
        }
    }
    Ok(out)
}

/// How many times the members' logs say a shard ran out of room for its
/// WAL, and how many times it had room again.
fn space_reports(dir: &Path) -> io::Result<(u64, u64)> {
    let (mut full, mut room) = (0, 0);
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "log") {
            let text = String::from_utf8_lossy(&std::fs::read(&p)?).into_owned();
            full += text.matches("no room for its WAL").count() as u64;
            room += text.matches("room for its WAL again").count() as u64;
        }
    }
    Ok((full, room))
}

/// Waits until every group has a leader that answers status.
fn wait_leaders(servers: &[SocketAddr], groups: u64, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(c) = admin_client(servers)
            && (0..groups).all(|g| c.group_status(g).is_ok_and(|s| s.leader != 0))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no leader for every group",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Adds `member` back to `group`'s voters (several tries for about 10 s:
/// the group may be electing). Whether it is a voter again.
fn restore_voter(client: Option<&Client>, group: u64, member: u64) -> bool {
    let Some(c) = client else { return false };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match c.group_status(group) {
            Ok(s) if s.voters.contains(&member) => return true,
            Ok(s) if s.leader != 0 => {
                let _ = c.membership(group, MembershipChange::AddVoter, member);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// Each member's copy of a group: `(offset, value)` in offset order.
type ReplicaLogs = BTreeMap<u64, Vec<(u64, Json)>>;

/// Waits until every member holding `group` reports the same log end
/// (its own view: `GroupStatus` asked of it alone) twice in a row, or the
/// limit passes; then reads every member's copy once (the checker judges
/// them as they are). Also returns the members' last status answers, for
/// a report of replicas that did not converge.
fn converge(cluster: &Cluster, group: u64, limit: Duration) -> io::Result<(ReplicaLogs, String)> {
    let deadline = Instant::now() + limit;
    let mut last_ends: Option<Vec<u64>> = None;
    let mut seen = String::new();
    loop {
        let mut ends = Vec::new();
        let mut all_answered = true;
        seen.clear();
        for id in cluster.ids() {
            match status_of(cluster.client_addr(id), group) {
                Ok(Some(s)) => {
                    ends.push(s.latest_offset);
                    seen.push_str(&format!(
                        "\n  member {id}: term {} leader {} commit {} applied {} offsets {}..{} voters {:?} learners {:?}",
                        s.term,
                        s.leader,
                        s.commit_index,
                        s.applied_index,
                        s.earliest_offset,
                        s.latest_offset,
                        s.voters,
                        s.learners
                    ));
                }
                Ok(None) => seen.push_str(&format!("\n  member {id}: holds no replica")),
                Err(e) => {
                    all_answered = false;
                    seen.push_str(&format!("\n  member {id}: {e}"));
                }
            }
        }
        let same = all_answered && ends.windows(2).all(|w| w[0] == w[1]);
        if (same && last_ends.as_ref() == Some(&ends)) || Instant::now() > deadline {
            break;
        }
        last_ends = Some(ends);
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut logs = BTreeMap::new();
    for id in cluster.ids() {
        if let Some(log) = read_replica(cluster.client_addr(id), group)? {
            logs.insert(id, log);
        }
    }
    Ok((logs, seen))
}

/// `group`'s status as one member sees it; `None` if it holds no replica.
fn status_of(addr: SocketAddr, group: u64) -> io::Result<Option<corelog::clientpb::GroupStatus>> {
    let conn = Connection::open(addr, Duration::from_secs(2), Limits::DEFAULT)
        .map_err(|e| io::Error::other(format!("{addr}: {e}")))?;
    let req = Request {
        op: Some(Op::GroupStatus(corelog::clientpb::GroupStatusRequest {
            group,
        })),
    };
    let answer = conn
        .send(&req)
        .map_err(|e| io::Error::other(format!("{addr}: {e}")))?
        .wait(Instant::now() + Duration::from_secs(5))
        .map_err(|e| io::Error::other(format!("{addr}: {e}")))?;
    match answer.result {
        Some(Answer::GroupStatus(s)) => Ok(Some(s)),
        Some(Answer::Error(e)) => match e.kind {
            Some(corelog::clientpb::error::Kind::GroupNotFound(_)) => Ok(None),
            k => Err(io::Error::other(format!(
                "{addr}: status of group {group}: {k:?}"
            ))),
        },
        other => Err(io::Error::other(format!(
            "{addr}: unexpected answer {other:?}"
        ))),
    }
}

/// Every committed record one member holds of `group`, read from it alone
/// (any-replica reads, from its earliest offset to its end); `None` if the
/// member holds no replica of the group.
fn read_replica(addr: SocketAddr, group: u64) -> io::Result<Option<Vec<(u64, Json)>>> {
    let conn = Connection::open(addr, Duration::from_secs(2), Limits::DEFAULT)
        .map_err(|e| io::Error::other(format!("{addr}: {e}")))?;
    let mut out = Vec::new();
    let mut from = 0u64;
    loop {
        let req = Request {
            op: Some(Op::Read(ReadRequest {
                group,
                offset: from,
                max_records: 0,
                max_bytes: 0,
                consistency: Consistency::AnyReplica as i32,
            })),
        };
        let answer = conn
            .send(&req)
            .map_err(|e| io::Error::other(format!("{addr}: {e}")))?
            .wait(Instant::now() + Duration::from_secs(5))
            .map_err(|e| io::Error::other(format!("{addr}: {e}")))?;
        let r = match answer.result {
            Some(Answer::Read(r)) => r,
            // Below the earliest offset: start there.
            Some(Answer::Error(e)) => match e.kind {
                Some(corelog::clientpb::error::Kind::OffsetOutOfRange(o)) if from < o.earliest => {
                    from = o.earliest;
                    continue;
                }
                Some(corelog::clientpb::error::Kind::GroupNotFound(_)) if out.is_empty() => {
                    return Ok(None);
                }
                k => {
                    return Err(io::Error::other(format!(
                        "{addr}: read of group {group} from {from}: {k:?}"
                    )));
                }
            },
            other => {
                return Err(io::Error::other(format!(
                    "{addr}: unexpected answer {other:?}"
                )));
            }
        };
        if r.batches.is_empty() {
            return Ok(Some(out));
        }
        for b in r.batches {
            let batch = RecordBatch::parse(&b.batch, &BatchLimits::CEILING)
                .map_err(|e| io::Error::other(format!("{addr}: a batch read back: {e}")))?;
            for (k, rec) in batch.records().enumerate() {
                let o = b.base_offset + k as u64;
                if o >= from {
                    out.push((o, record_value(&rec)));
                }
            }
        }
        from = out.last().map_or(from, |(o, _)| o + 1);
    }
}
