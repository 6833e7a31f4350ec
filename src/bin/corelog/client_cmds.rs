//! The command-line client: `append`, `read`, `tail`, `status`, through
//! `corelog::client`.

use std::process::ExitCode;
use std::time::Duration;

use corelog::client::{Client, ClientOptions};
use corelog::clientpb::{Consistency, MembershipChange};

use super::ConnArgs;

fn client(c: &ConnArgs) -> Result<Client, ExitCode> {
    let opts = ClientOptions {
        timeout: Duration::from_secs(c.timeout),
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
    loop {
        if let Ok(s) = cl.group_status(group) {
            if s.leader == to {
                println!("group {group}: leader {to}");
                return ExitCode::SUCCESS;
            }
            if std::time::Instant::now() >= deadline {
                println!("group {group}: leader still {}", s.leader);
                return ExitCode::from(1);
            }
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
