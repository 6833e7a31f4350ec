//! The command-line client: `append`, `read`, `tail`, `status`, through
//! `corelog::client`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use corelog::auth::AuthKey;
use corelog::client::{Client, ClientOptions};
use corelog::clientpb::{Consistency, MembershipChange};

use super::ConnArgs;

/// The key of a secret file for a client, with a warning on stderr if
/// the file is readable by every user.
pub fn load_secret(path: &Path) -> Result<AuthKey, String> {
    let l = AuthKey::load(path).map_err(|e| e.to_string())?;
    if l.world_readable {
        eprintln!(
            "corelog: WARN: {} is readable by every user of this machine: chmod 600 it",
            path.display()
        );
    }
    Ok(l.key)
}

fn client(c: &ConnArgs) -> Result<Client, ExitCode> {
    let auth = match &c.auth_secret_file {
        Some(p) => Some(load_secret(p).map_err(|e| {
            eprintln!("corelog: {e}");
            ExitCode::from(2)
        })?),
        None => None,
    };
    let opts = ClientOptions {
        timeout: Duration::from_secs(c.timeout),
        auth,
        ..ClientOptions::default()
    };
    Client::connect(&c.servers, opts).map_err(|e| {
        eprintln!(
            "corelog: cannot reach the cluster through {:?}: {e}",
            c.servers
        );
        ExitCode::from(1)
    })
}

pub fn append(c: &ConnArgs, group: u64, values: &[String]) -> ExitCode {
    let cl = match client(c) {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    let records: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    match cl.append(group, &records) {
        Ok(a) => {
            let last = a.base_offset + u64::from(a.count) - 1;
            println!(
                "group {group}: offsets {}..={last}{}",
                a.base_offset,
                if a.duplicate { " (duplicate)" } else { "" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelog: append to group {group}: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn read(c: &ConnArgs, group: u64, from: u64, max: u32, any_replica: bool) -> ExitCode {
    let cl = match client(c) {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    let consistency = if any_replica {
        Consistency::AnyReplica
    } else {
        Consistency::Linearizable
    };
    match cl.read(group, from, max, consistency) {
        Ok(r) => {
            for (off, rec) in &r.records {
                println!("{off}\t{}", String::from_utf8_lossy(rec));
            }
            eprintln!(
                "group {group}: {} records; readable offsets {}..{}",
                r.records.len(),
                r.earliest,
                r.latest
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelog: read group {group}: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn tail(c: &ConnArgs, group: u64, from: u64, count: u64) -> ExitCode {
    let cl = match client(c) {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    let mut tail = cl.tail(group, from);
    let mut seen = 0u64;
    loop {
        match tail.next(Duration::from_secs(c.timeout)) {
            Ok(recs) => {
                for (off, rec) in recs {
                    println!("{off}\t{}", String::from_utf8_lossy(&rec));
                    seen += 1;
                    if count != 0 && seen >= count {
                        return ExitCode::SUCCESS;
                    }
                }
            }
            // Nothing committed for a while: keep following.
            Err(corelog::client::ClientError::Timeout) => {}
            Err(e) => {
                eprintln!("corelog: tail group {group}: {e}");
                return ExitCode::from(1);
            }
        }
    }
}

pub fn status(c: &ConnArgs) -> ExitCode {
    let cl = match client(c) {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    let s = match cl.cluster_status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corelog: status: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "cluster {:#x}: {} members, {} groups{}",
        s.cluster_id,
        s.members.len(),
        s.group_count,
        if s.unsafe_no_fsync {
            " (UNSAFE: no fsync)"
        } else {
            ""
        }
    );
    for m in &s.members {
        println!(
            "  member {} ({}): clients {} (+{} shards)",
            m.id, m.name, m.client_address, m.shards
        );
    }
    println!("  group  leader  term  commit  applied  offsets");
    for g in 0..s.group_count {
        match cl.group_status(g) {
            Ok(gs) => println!(
                "  {:>5}  {:>6}  {:>4}  {:>6}  {:>7}  {}..{}",
                g,
                gs.leader,
                gs.term,
                gs.commit_index,
                gs.applied_index,
                gs.earliest_offset,
                gs.latest_offset
            ),
            Err(e) => println!("  {g:>5}  unknown: {e}"),
        }
    }
    ExitCode::SUCCESS
}

fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("corelog: {what}: {e}");
    ExitCode::from(1)
}

pub fn truncate(c: &ConnArgs, group: u64, before: u64) -> ExitCode {
    let cl = match client(c) {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    match cl.truncate(group, before) {
        Ok(earliest) => {
            println!("group {group}: earliest offset {earliest}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("truncate group {group}"), e),
    }
}

pub fn transfer(c: &ConnArgs, group: u64, to: u64) -> ExitCode {
    let cl = match client(c) {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    if let Err(e) = cl.transfer_leader(group, to) {
        return fail(&format!("transfer group {group}"), e);
    }
    // The move takes up to an election timeout: report where it landed.
    let deadline = std::time::Instant::now() + Duration::from_secs(c.timeout);
    match wait_for_leader(to, deadline, || {
        cl.group_status(group)
            .map(|s| s.leader)
            .map_err(|e| e.to_string())
    }) {
        LeaderWait::Moved => {
            println!("group {group}: leader {to}");
            ExitCode::SUCCESS
        }
        LeaderWait::Still(l) => {
            println!("group {group}: leader still {l}");
            ExitCode::from(1)
        }
        LeaderWait::NoAnswer(e) => fail(&format!("status of group {group}"), e),
    }
}

/// Where a leadership transfer landed by its deadline.
#[derive(Debug, PartialEq, Eq)]
enum LeaderWait {
    Moved,
    /// The leader last seen (not the target).
    Still(u64),
    /// No status call succeeded: the last error.
    NoAnswer(String),
}

/// Asks `status` (the group's leader) until it names `to` or `deadline`
/// passes.
fn wait_for_leader(
    to: u64,
    deadline: std::time::Instant,
    mut status: impl FnMut() -> Result<u64, String>,
) -> LeaderWait {
    let mut last = LeaderWait::NoAnswer("no status call was made".into());
    loop {
        match status() {
            Ok(leader) if leader == to => return LeaderWait::Moved,
            Ok(leader) => last = LeaderWait::Still(leader),
            // A failed call does not reset a leader already seen.
            Err(e) if !matches!(last, LeaderWait::Still(_)) => last = LeaderWait::NoAnswer(e),
            Err(_) => {}
        }
        // Checked after every call, answered or not: a member that never
        // answers must not keep the command waiting past its deadline.
        if std::time::Instant::now() >= deadline {
            return last;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn members(c: &ConnArgs, group: u64, change: Option<&str>, member: Option<u64>) -> ExitCode {
    let cl = match client(c) {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    if let Some(ch) = change {
        let kind = match ch {
            "add-voter" => MembershipChange::AddVoter,
            "add-learner" => MembershipChange::AddLearner,
            "promote" => MembershipChange::PromoteLearner,
            "remove" => MembershipChange::RemoveMember,
            other => {
                eprintln!(
                    "corelog: members: unknown change {other:?} (add-voter, add-learner, promote, remove)"
                );
                return ExitCode::from(2);
            }
        };
        let Some(m) = member else {
            eprintln!("corelog: members: {ch} needs a MEMBER");
            return ExitCode::from(2);
        };
        if let Err(e) = cl.membership(group, kind, m) {
            return fail(&format!("members of group {group}"), e);
        }
    }
    match cl.group_status(group) {
        Ok(s) => {
            println!(
                "group {group}: voters {:?}, learners {:?}, leader {}",
                s.voters, s.learners, s.leader
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("members of group {group}"), e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Runs `wait_for_leader` on a thread; `None` if it did not return
    /// within `limit`.
    fn bounded(
        to: u64,
        deadline: Instant,
        status: impl FnMut() -> Result<u64, String> + Send + 'static,
        limit: Duration,
    ) -> Option<LeaderWait> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(wait_for_leader(to, deadline, status));
        });
        rx.recv_timeout(limit).ok()
    }

    #[test]
    fn a_member_that_never_answers_ends_the_wait_at_its_deadline() {
        let deadline = Instant::now() + Duration::from_millis(200);
        let r = bounded(
            2,
            deadline,
            || Err("no answer".to_string()),
            Duration::from_secs(5),
        );
        assert_eq!(r, Some(LeaderWait::NoAnswer("no answer".into())));
    }

    #[test]
    fn the_wait_ends_when_the_leader_moves_or_at_the_deadline() {
        let mut calls = 0;
        let r = bounded(
            2,
            Instant::now() + Duration::from_secs(5),
            move || {
                calls += 1;
                Ok(if calls < 3 { 1 } else { 2 })
            },
            Duration::from_secs(5),
        );
        assert_eq!(r, Some(LeaderWait::Moved));
        let r = bounded(
            2,
            Instant::now() + Duration::from_millis(100),
            || Ok(1),
            Duration::from_secs(5),
        );
        assert_eq!(r, Some(LeaderWait::Still(1)));
    }
}
