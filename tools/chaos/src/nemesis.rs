//! The nemesis: a seeded schedule of faults, one at a time, each held for
//! a while and then healed, with a quiet spell between. The same seed
//! gives the same schedule (which faults, on which members, for how long);
//! what the cluster does under it still varies with the machine's timing.

use std::time::Duration;

use corelog::client::Client;
use corelog::clientpb::MembershipChange;

use crate::cluster::Cluster;
use crate::proxy::Fault;

/// xorshift64*: small, seedable, good enough to pick faults.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next_u64() % from.len() as u64) as usize]
    }
}

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// SIGKILL, then restart from the data directory when healed.
    Kill(u64),
    /// SIGKILL the leader of group 0 (whoever it is then).
    KillLeader,
    /// SIGSTOP for the hold, then SIGCONT.
    Pause(u64),
    /// Every link to and from the member black-holed.
    Isolate(u64),
    /// The leader of group 0 isolated.
    IsolateLeader,
    /// Only the member's outgoing links black-holed.
    OneWay(u64),
    /// The members listed cut off from the rest, both ways.
    Split(Vec<u64>),
    /// The member's links delayed.
    Delay(u64, Duration),
    /// The member's links throttled to bytes per second.
    Throttle(u64, u64),
    /// The member's connections reset, new ones refused for the hold.
    Reset(u64),
    /// Leadership of every group asked to move to the member.
    Transfer(u64),
    /// The member removed from group 0's voters, added back when healed.
    RemoveAndReadd(u64),
    /// The member's file system left without a free byte, given room
    /// when healed (only with `--disk-full`: each member on its own tmpfs).
    DiskFull(u64),
}

/// The least a full disk holds: the member meets it at its next segment,
/// and must be seen refusing, handing over and recovering.
pub const DISK_FULL_HOLD: Duration = Duration::from_secs(5);

/// What the nemesis did, for the log.
pub fn describe(s: &Step) -> String {
    format!("{s:?}")
}

/// Picks the next fault. With 3 members every fault touches one member;
/// with 5 a split may cut off two (a minority). `disk_full` adds full
/// disks to the faults (a schedule without it is the same as before it
/// existed).
pub fn next_step(rng: &mut Rng, members: &[u64], disk_full: bool) -> Step {
    let m = rng.pick(members);
    let kinds = if disk_full { 13 } else { 12 };
    match rng.next_u64() % kinds {
        0 => Step::Kill(m),
        1 => Step::KillLeader,
        2 => Step::Pause(m),
        3 => Step::Isolate(m),
        4 => Step::IsolateLeader,
        5 => Step::OneWay(m),
        6 if members.len() >= 5 => {
            let a = m;
            let b = loop {
                let b = rng.pick(members);
                if b != a {
                    break b;
                }
            };
            Step::Split(vec![a, b])
        }
        6 => Step::Isolate(m),
        7 => Step::Delay(m, Duration::from_millis(rng.range(20, 200))),
        8 => Step::Throttle(m, rng.range(20_000, 200_000)),
        9 => Step::Reset(m),
        10 => Step::Transfer(m),
        11 => Step::RemoveAndReadd(m),
        _ => Step::DiskFull(m),
    }
}

fn leader(client: Option<&Client>) -> Option<u64> {
    client
        .and_then(|c| c.group_status(0).ok())
        .map(|s| s.leader)
        .filter(|&l| l != 0)
}

/// Puts `step` in force. Returns what to undo at heal time beyond
/// `Cluster::heal` (a member to add back to group 0).
pub fn apply(
    step: &Step,
    cluster: &mut Cluster,
    client: Option<&Client>,
    groups: u64,
) -> std::io::Result<Option<u64>> {
    let ids = cluster.ids();
    let isolate = |c: &Cluster, m: u64, both: bool, fault: Fault| {
        for &o in &ids {
            if o != m {
                c.link(m, o, fault);
                if both {
                    c.link(o, m, fault);
                }
            }
        }
    };
    match step {
        Step::Kill(m) => cluster.kill(*m),
        Step::KillLeader => {
            if let Some(l) = leader(client) {
                cluster.kill(l);
            }
        }
        Step::Pause(m) => cluster.pause(*m),
        Step::Isolate(m) => isolate(cluster, *m, true, Fault::Blackhole),
        Step::IsolateLeader => {
            if let Some(l) = leader(client) {
                isolate(cluster, l, true, Fault::Blackhole);
            }
        }
        Step::OneWay(m) => isolate(cluster, *m, false, Fault::Blackhole),
        Step::Split(side) => {
            for &a in side {
                for &b in &ids {
                    if !side.contains(&b) {
                        cluster.link(a, b, Fault::Blackhole);
                        cluster.link(b, a, Fault::Blackhole);
                    }
                }
            }
        }
        Step::Delay(m, d) => isolate(cluster, *m, true, Fault::Delay(*d)),
        Step::Throttle(m, b) => isolate(cluster, *m, true, Fault::Throttle(*b)),
        Step::Reset(m) => isolate(cluster, *m, true, Fault::Reset),
        Step::Transfer(m) => {
            if let Some(c) = client {
                for g in 0..groups {
                    let _ = c.transfer_leader(g, *m);
                }
            }
        }
        Step::DiskFull(m) => {
            cluster.fill_disk(*m)?;
        }
        Step::RemoveAndReadd(m) => {
            // One of group 0's voters (with 5 members a group holds 3 of
            // them), and only with every member up: the schedule holds one
            // fault at a time, so the group keeps a quorum.
            if let Some(c) = client
                && let Ok(s) = c.group_status(0)
                && !s.voters.is_empty()
            {
                let victim = if s.voters.contains(m) {
                    *m
                } else {
                    s.voters[(*m as usize) % s.voters.len()]
                };
                if c.membership(0, MembershipChange::RemoveMember, victim)
                    .is_ok()
                {
                    return Ok(Some(victim));
                }
            }
        }
    }
    Ok(None)
}
