//! The cluster's identity and membership (`Cluster`, `Member`) and where
//! things live: which members hold a group's replicas (placement) and
//! which shard of a member runs a group (`shard_of`). Pure functions of
//! the configuration, so every member and every client computes the same
//! answer; no I/O, no clock, no randomness. Connection state toward a
//! remote member (`Peer`) belongs to the runtime, not here.
//!
//! Placement, the rule (members sorted by id, `n` of them, replication
//! factor `rf`, groups numbered `0..group_count`):
//!
//! ```text
//! steps       = [s for s in 1..=max(1, n/2) if s*i % n != 0 for every i in 1..rf]
//! block(g)    = g / n
//! step(g)     = steps[block(g) % len(steps)]
//! replica i   = members[(g + i*step(g)) % n]        for i in 0..rf
//! ```
//!
//! Within a block of `n` consecutive groups the step is fixed, so for each
//! `i` the `i`-th replicas run over every member exactly once: each member
//! holds exactly `rf` replicas per full block, and is the first replica
//! (the natural preferred leader) of exactly one. With `n` dividing the
//! group count, every member holds `rf * groups / n` groups; otherwise the
//! counts differ by at most `rf`. The step condition keeps a group's `rf`
//! replicas distinct (`s*i` is never a multiple of `n`); `s = 1` always
//! qualifies since `rf <= n`. Changing the step from block to block varies
//! which members share groups, so when a member fails its groups'
//! leadership and catch-up traffic spread over many members rather than
//! its two ring neighbours. Steps above `n/2` are left out: step `n - s`
//! yields the same replica sets as `s`, shifted.
//!
//! This is the placement a new cluster is bootstrapped with. Once a group
//! exists its Raft configuration is the truth, and membership changes move
//! replicas from there.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Replication factor of a cluster that names none.
pub const DEFAULT_REPLICATION_FACTOR: u32 = 3;
/// Most members of one cluster.
pub const MAX_MEMBERS: usize = 1024;
/// Most shards of one member (the handshake carries a u32 shard).
pub const MAX_SHARDS: u32 = 1024;
/// Most groups of one cluster.
pub const MAX_GROUPS: u64 = 1 << 24;

/// One server of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// Raft node id of this member in every group it holds; never 0 (Raft's
    /// "no node").
    pub id: u64,
    /// A name for people and logs; unique in the cluster.
    pub name: String,
    /// Base address of the peer port: shard `k` listens on port
    /// `peer_addr.port() + k`, so a connection lands on its shard.
    pub peer_addr: SocketAddr,
    /// Base address of the client port, shard `k` on `port + k`.
    pub client_addr: SocketAddr,
    /// Shards (pinned executors) this member runs; at least 1.
    pub shards: u32,
}

impl Member {
    /// The shard of this member that runs `group`.
    pub fn shard_of(&self, group: u64) -> u32 {
        shard_of(group, self.shards)
    }

    /// The peer address of shard `shard`, if the member has that shard.
    pub fn peer_addr_of_shard(&self, shard: u32) -> Option<SocketAddr> {
        shard_addr(self.peer_addr, shard, self.shards)
    }

    /// The client address of shard `shard`, if the member has that shard.
    pub fn client_addr_of_shard(&self, shard: u32) -> Option<SocketAddr> {
        shard_addr(self.client_addr, shard, self.shards)
    }
}

fn shard_addr(base: SocketAddr, shard: u32, shards: u32) -> Option<SocketAddr> {
    if shard >= shards {
        return None;
    }
    let port = u32::from(base.port()) + shard;
    let port = u16::try_from(port).ok()?;
    Some(SocketAddr::new(base.ip(), port))
}

/// The shard of a member with `shard_count` shards that runs `group`: the
/// splitmix64 finalizer of the group id, scaled to `0..shard_count` by a
/// 128-bit multiply (Lemire's reduction). Clients compute it too, so it
/// must never change; tests pin its values. A mix rather than
/// `group % shard_count`, because placement already assigns groups to a
/// member by residue modulo the member count, and a second residue would
/// correlate with it (9 members and 3 shards: every group a member leads
/// would land on one shard).
pub fn shard_of(group: u64, shard_count: u32) -> u32 {
    debug_assert!(shard_count > 0, "a member has at least one shard");
    let n = u128::from(shard_count.max(1));
    ((u128::from(mix64(group)) * n) >> 64) as u32
}

/// splitmix64's output function: a bijective, well-avalanched 64-bit mix.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Why a cluster description was refused, or a question about it could
/// not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Cluster id 0 is reserved for "none".
    ZeroClusterId,
    /// A cluster needs at least one member.
    NoMembers,
    /// A count above its limit (`what`: "members", "groups", "shards").
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// Member id 0 is Raft's "no node".
    ZeroMemberId,
    /// Two members with one id.
    DuplicateMemberId { id: u64 },
    /// A member without a name.
    EmptyName { member: u64 },
    /// Two members with one name.
    DuplicateName { name: String },
    /// A member with no shard.
    ZeroShards { member: u64 },
    /// Port 0 cannot be dialled.
    ZeroPort { member: u64, which: &'static str },
    /// `port + shards - 1` does not fit in a port number.
    PortRangeOverflow {
        member: u64,
        which: &'static str,
        port: u16,
        shards: u32,
    },
    /// Two port ranges on one IP address overlap: two listeners would
    /// claim one port.
    AddressOverlap {
        addr: SocketAddr,
        first: (u64, &'static str),
        second: (u64, &'static str),
    },
    /// A replication factor of 0.
    ZeroReplicationFactor,
    /// More replicas per group than members to put them on.
    ReplicationFactorTooLarge {
        replication_factor: u32,
        members: u32,
    },
    /// A group id at or above the group count.
    UnknownGroup { group: u64, groups: u64 },
    /// A member id that is not in the cluster.
    UnknownMember { id: u64 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ZeroClusterId => write!(f, "cluster: cluster id 0 is reserved"),
            Error::NoMembers => write!(f, "cluster: no members"),
            Error::Limit { what, value, limit } => {
                write!(f, "cluster: {value} {what} exceed the limit {limit}")
            }
            Error::ZeroMemberId => write!(f, "cluster: member id 0 is reserved"),
            Error::DuplicateMemberId { id } => write!(f, "cluster: member id {id} appears twice"),
            Error::EmptyName { member } => write!(f, "cluster: member {member} has no name"),
            Error::DuplicateName { name } => {
                write!(f, "cluster: member name {name:?} appears twice")
            }
            Error::ZeroShards { member } => write!(f, "cluster: member {member} has no shard"),
            Error::ZeroPort { member, which } => {
                write!(f, "cluster: member {member}'s {which} address has port 0")
            }
            Error::PortRangeOverflow {
                member,
                which,
                port,
                shards,
            } => write!(
                f,
                "cluster: member {member}'s {which} ports {port}..{port}+{shards} pass 65535"
            ),
            Error::AddressOverlap {
                addr,
                first,
                second,
            } => write!(
                f,
                "cluster: {addr} is in member {}'s {} ports and member {}'s {} ports",
                first.0, first.1, second.0, second.1
            ),
            Error::ZeroReplicationFactor => write!(f, "cluster: replication factor 0"),
            Error::ReplicationFactorTooLarge {
                replication_factor,
                members,
            } => write!(
                f,
                "cluster: replication factor {replication_factor} exceeds the {members} members"
            ),
            Error::UnknownGroup { group, groups } => {
                write!(f, "cluster: no group {group} (groups are 0..{groups})")
            }
            Error::UnknownMember { id } => write!(f, "cluster: no member {id}"),
        }
    }
}

impl std::error::Error for Error {}

/// A validated cluster description: identity, members, groups and their
/// placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    id: u64,
    /// Sorted by id: placement depends on this order, never on the order
    /// the members were listed in.
    members: Vec<Member>,
    group_count: u64,
    replication_factor: u32,
    /// The placement steps of the rule in the module doc.
    steps: Vec<u64>,
}

impl Cluster {
    /// Validates and builds a cluster. `members` may come in any order.
    pub fn new(
        id: u64,
        mut members: Vec<Member>,
        group_count: u64,
        replication_factor: u32,
    ) -> Result<Self, Error> {
        if id == 0 {
            return Err(Error::ZeroClusterId);
        }
        if members.is_empty() {
            return Err(Error::NoMembers);
        }
        if members.len() > MAX_MEMBERS {
            return Err(Error::Limit {
                what: "members",
                value: members.len() as u64,
                limit: MAX_MEMBERS as u64,
            });
        }
        if group_count > MAX_GROUPS {
            return Err(Error::Limit {
                what: "groups",
                value: group_count,
                limit: MAX_GROUPS,
            });
        }
        if replication_factor == 0 {
            return Err(Error::ZeroReplicationFactor);
        }
        if replication_factor as usize > members.len() {
            return Err(Error::ReplicationFactorTooLarge {
                replication_factor,
                members: members.len() as u32,
            });
        }
        members.sort_by_key(|m| m.id);
        validate_members(&members)?;
        let steps = placement_steps(members.len() as u64, u64::from(replication_factor));
        Ok(Cluster {
            id,
            members,
            group_count,
            replication_factor,
            steps,
        })
    }

    /// The cluster id every handshake and data directory carries.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The members, sorted by id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member with `id`.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members
            .binary_search_by_key(&id, |m| m.id)
            .ok()
            .map(|i| &self.members[i])
    }

    /// Groups are numbered `0..group_count()`.
    pub fn group_count(&self) -> u64 {
        self.group_count
    }

    /// Replicas per group.
    pub fn replication_factor(&self) -> u32 {
        self.replication_factor
    }

    /// Member ids of `group`'s replicas, the first being the natural
    /// preferred leader.
    pub fn replicas(&self, group: u64) -> Result<Vec<u64>, Error> {
        if group >= self.group_count {
            return Err(Error::UnknownGroup {
                group,
                groups: self.group_count,
            });
        }
        Ok((0..u64::from(self.replication_factor))
            .map(|i| self.members[self.position(group, i)].id)
            .collect())
    }

    /// True when `member` holds a replica of `group`.
    pub fn holds(&self, member: u64, group: u64) -> bool {
        group < self.group_count
            && (0..u64::from(self.replication_factor))
                .any(|i| self.members[self.position(group, i)].id == member)
    }

    /// The groups `member` holds, in increasing order.
    pub fn groups_of(&self, member: u64) -> Result<Vec<u64>, Error> {
        if self.member(member).is_none() {
            return Err(Error::UnknownMember { id: member });
        }
        Ok((0..self.group_count)
            .filter(|&g| self.holds(member, g))
            .collect())
    }

    /// Index in `members` of replica `i` of `group`.
    fn position(&self, group: u64, i: u64) -> usize {
        let n = self.members.len() as u64;
        let step = self.steps[((group / n) % self.steps.len() as u64) as usize];
        // i < rf <= n and step <= n, so the product cannot overflow.
        ((group % n + i * step) % n) as usize
    }
}

/// The steps `s` in `1..=max(1, n/2)` that keep `rf` replicas distinct.
fn placement_steps(n: u64, rf: u64) -> Vec<u64> {
    (1..=(n / 2).max(1))
        .filter(|&s| (1..rf).all(|i| (s * i) % n != 0))
        .collect()
}

fn validate_members(members: &[Member]) -> Result<(), Error> {
    let mut names = HashSet::new();
    // (ip) -> list of (first port, last port, member, which)
    let mut ranges: HashMap<IpAddr, Vec<(u32, u32, u64, &'static str)>> = HashMap::new();
    let mut prev_id = None;
    for m in members {
        if m.id == 0 {
            return Err(Error::ZeroMemberId);
        }
        if prev_id == Some(m.id) {
            return Err(Error::DuplicateMemberId { id: m.id });
        }
        prev_id = Some(m.id);
        if m.name.is_empty() {
            return Err(Error::EmptyName { member: m.id });
        }
        if !names.insert(m.name.as_str()) {
            return Err(Error::DuplicateName {
                name: m.name.clone(),
            });
        }
        if m.shards == 0 {
            return Err(Error::ZeroShards { member: m.id });
        }
        if m.shards > MAX_SHARDS {
            return Err(Error::Limit {
                what: "shards",
                value: u64::from(m.shards),
                limit: u64::from(MAX_SHARDS),
            });
        }
        for (which, addr) in [("peer", m.peer_addr), ("client", m.client_addr)] {
            if addr.port() == 0 {
                return Err(Error::ZeroPort {
                    member: m.id,
                    which,
                });
            }
            let first = u32::from(addr.port());
            let last = first + m.shards - 1;
            if last > u32::from(u16::MAX) {
                return Err(Error::PortRangeOverflow {
                    member: m.id,
                    which,
                    port: addr.port(),
                    shards: m.shards,
                });
            }
            ranges
                .entry(addr.ip())
                .or_default()
                .push((first, last, m.id, which));
        }
    }
    // Sorted by first port, two ranges overlap exactly when one starts at
    // or before the end of the one before it. Checked per IP in a fixed
    // order so the error named is deterministic.
    let mut ips: Vec<_> = ranges.into_iter().collect();
    ips.sort_by_key(|(ip, _)| *ip);
    for (ip, mut rs) in ips {
        rs.sort();
        for w in rs.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b.0 <= a.1 {
                return Err(Error::AddressOverlap {
                    addr: SocketAddr::new(ip, b.0 as u16),
                    first: (a.2, a.3),
                    second: (b.2, b.3),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, shards: u32) -> Member {
        Member {
            id,
            name: format!("m{id}"),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], 20_000 + 100 * id as u16)),
            client_addr: SocketAddr::from(([127, 0, 0, 1], 40_000 + 100 * id as u16)),
            shards,
        }
    }

    fn cluster(n: u64, groups: u64, rf: u32) -> Cluster {
        Cluster::new(7, (1..=n).map(|id| member(id, 2)).collect(), groups, rf).unwrap()
    }

    #[test]
    fn nine_members_hold_groups_of_three_exactly_evenly() {
        let c = cluster(9, 900, 3);
        let mut held = HashMap::<u64, u64>::new();
        let mut first = HashMap::<u64, u64>::new();
        for g in 0..900 {
            let r = c.replicas(g).unwrap();
            assert_eq!(r.len(), 3);
            let distinct: HashSet<_> = r.iter().collect();
            assert_eq!(distinct.len(), 3, "group {g} replicas {r:?} not distinct");
            for id in &r {
                *held.entry(*id).or_default() += 1;
            }
            *first.entry(r[0]).or_default() += 1;
        }
        for id in 1..=9 {
            assert_eq!(held[&id], 300, "member {id} holds");
            assert_eq!(first[&id], 100, "member {id} is first replica of");
        }
    }

    #[test]
    fn replica_sets_are_distinct_and_spread_within_rf_for_every_shape() {
        for n in 1..=12u64 {
            for rf in 1..=n as u32 {
                for groups in [0, 1, n - 1, n, 2 * n + 1, 37, 100] {
                    let c = cluster(n, groups, rf);
                    let mut held = vec![0u64; n as usize];
                    for g in 0..groups {
                        let r = c.replicas(g).unwrap();
                        let distinct: HashSet<_> = r.iter().collect();
                        assert_eq!(distinct.len(), rf as usize, "n={n} rf={rf} g={g} {r:?}");
                        for id in r {
                            held[(id - 1) as usize] += 1;
                        }
                    }
                    let (min, max) = (held.iter().min().unwrap(), held.iter().max().unwrap());
                    assert!(
                        max - min <= u64::from(rf),
                        "n={n} rf={rf} groups={groups}: {held:?}"
                    );
                    if groups % n == 0 {
                        assert_eq!(min, max, "n={n} rf={rf} groups={groups}: {held:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_members_groups_are_shared_with_many_members_not_two_neighbours() {
        let c = cluster(9, 36, 3);
        for m in 1..=9 {
            let mut partners = HashSet::new();
            for g in c.groups_of(m).unwrap() {
                partners.extend(c.replicas(g).unwrap());
            }
            partners.remove(&m);
            assert_eq!(
                partners.len(),
                8,
                "member {m} shares groups with {partners:?}"
            );
        }
    }

    #[test]
    fn placement_is_pinned_and_independent_of_member_order() {
        // Ids 10..50: the rule of the module doc worked by hand. n = 5,
        // rf = 3, steps [1, 2]. Group 10: block 2, step 1, positions 0,1,2.
        // Group 7: block 1, step 2, positions 2,4,1.
        let ids = [30u64, 10, 50, 20, 40];
        let c = Cluster::new(1, ids.iter().map(|&id| member(id, 1)).collect(), 20, 3).unwrap();
        assert_eq!(c.replicas(10).unwrap(), vec![10, 20, 30]);
        assert_eq!(c.replicas(7).unwrap(), vec![30, 50, 20]);
        let mut sorted = ids;
        sorted.sort();
        let d = Cluster::new(1, sorted.iter().map(|&id| member(id, 1)).collect(), 20, 3).unwrap();
        for g in 0..20 {
            assert_eq!(c.replicas(g), d.replicas(g));
        }
    }

    #[test]
    fn groups_of_agrees_with_replicas() {
        let c = cluster(5, 50, 3);
        for m in 1..=5 {
            for g in c.groups_of(m).unwrap() {
                assert!(c.replicas(g).unwrap().contains(&m));
            }
        }
        let total: usize = (1..=5).map(|m| c.groups_of(m).unwrap().len()).sum();
        assert_eq!(total, 150);
        assert_eq!(c.groups_of(6), Err(Error::UnknownMember { id: 6 }));
        assert_eq!(
            c.replicas(50),
            Err(Error::UnknownGroup {
                group: 50,
                groups: 50
            })
        );
    }

    #[test]
    fn shard_of_is_pinned() {
        // Clients compute this: a change here is a protocol change.
        let got: Vec<u32> = (0..8).map(|g| shard_of(g, 4)).collect();
        assert_eq!(mix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(got, PINNED_SHARDS_OF_0_TO_7_ON_4);
        assert_eq!(shard_of(u64::MAX, 7), PINNED_SHARD_OF_MAX_ON_7);
        for g in 0..1000 {
            assert_eq!(shard_of(g, 1), 0);
        }
    }

    // Computed independently (a few lines of Python over big integers) from
    // the formula in `shard_of`'s doc; mix64(0) is splitmix64's well-known
    // first output for seed 0, 0xe220a8397b1dcdaf.
    const PINNED_SHARDS_OF_0_TO_7_ON_4: [u32; 8] = [3, 2, 2, 0, 1, 1, 2, 1];
    const PINNED_SHARD_OF_MAX_ON_7: u32 = 6;

    #[test]
    fn shard_of_spreads_groups_over_shards() {
        for shards in [2u32, 3, 4, 8, 16] {
            let mut count = vec![0u32; shards as usize];
            for g in 0..10_000u64 {
                let s = shard_of(g, shards);
                assert!(s < shards);
                count[s as usize] += 1;
            }
            let expect = 10_000 / shards;
            for c in &count {
                // Within 10% of even: a uniform mix gives ~1-3% here.
                assert!(
                    c.abs_diff(expect) * 10 <= expect,
                    "{shards} shards: {count:?}"
                );
            }
        }
    }

    #[test]
    fn a_members_led_groups_spread_over_its_shards() {
        // 9 members, 3 shards each: with `group % shards` every group a
        // member is first replica of would sit on one shard.
        let c = Cluster::new(1, (1..=9).map(|id| member(id, 3)).collect(), 900, 3).unwrap();
        let mut per_shard = [0u32; 3];
        for g in 0..900 {
            if c.replicas(g).unwrap()[0] == 1 {
                per_shard[c.member(1).unwrap().shard_of(g) as usize] += 1;
            }
        }
        assert!(per_shard.iter().all(|&n| n >= 20), "{per_shard:?}");
    }

    #[test]
    fn shard_addresses_are_base_plus_shard() {
        let m = member(1, 3);
        assert_eq!(
            m.peer_addr_of_shard(2),
            Some(SocketAddr::from(([127, 0, 0, 1], 20_102)))
        );
        assert_eq!(
            m.client_addr_of_shard(0),
            Some(SocketAddr::from(([127, 0, 0, 1], 40_100)))
        );
        assert_eq!(m.peer_addr_of_shard(3), None);
    }

    #[test]
    fn invalid_descriptions_are_refused_with_what_is_wrong() {
        let ok = || (1..=3).map(|id| member(id, 2)).collect::<Vec<_>>();
        assert_eq!(Cluster::new(0, ok(), 1, 3), Err(Error::ZeroClusterId));
        assert_eq!(Cluster::new(1, vec![], 1, 1), Err(Error::NoMembers));
        assert_eq!(
            Cluster::new(1, ok(), 1, 0),
            Err(Error::ZeroReplicationFactor)
        );
        assert_eq!(
            Cluster::new(1, ok(), 1, 4),
            Err(Error::ReplicationFactorTooLarge {
                replication_factor: 4,
                members: 3
            })
        );
        assert_eq!(
            Cluster::new(1, ok(), MAX_GROUPS + 1, 3),
            Err(Error::Limit {
                what: "groups",
                value: MAX_GROUPS + 1,
                limit: MAX_GROUPS
            })
        );

        let mut m = ok();
        m[1].id = 0;
        assert_eq!(Cluster::new(1, m, 1, 3), Err(Error::ZeroMemberId));

        let mut m = ok();
        m[2].id = 1;
        m[2].name = "other".into();
        assert_eq!(
            Cluster::new(1, m, 1, 3),
            Err(Error::DuplicateMemberId { id: 1 })
        );

        let mut m = ok();
        m[2].name = "m1".into();
        assert_eq!(
            Cluster::new(1, m, 1, 3),
            Err(Error::DuplicateName { name: "m1".into() })
        );

        let mut m = ok();
        m[0].name.clear();
        assert_eq!(
            Cluster::new(1, m, 1, 3),
            Err(Error::EmptyName { member: 1 })
        );

        let mut m = ok();
        m[1].shards = 0;
        assert_eq!(
            Cluster::new(1, m, 1, 3),
            Err(Error::ZeroShards { member: 2 })
        );

        let mut m = ok();
        m[1].shards = MAX_SHARDS + 1;
        assert!(matches!(
            Cluster::new(1, m, 1, 3),
            Err(Error::Limit { what: "shards", .. })
        ));

        let mut m = ok();
        m[0].client_addr.set_port(0);
        assert_eq!(
            Cluster::new(1, m, 1, 3),
            Err(Error::ZeroPort {
                member: 1,
                which: "client"
            })
        );

        let mut m = ok();
        m[2].peer_addr.set_port(u16::MAX);
        assert_eq!(
            Cluster::new(1, m, 1, 3),
            Err(Error::PortRangeOverflow {
                member: 3,
                which: "peer",
                port: u16::MAX,
                shards: 2
            })
        );
    }

    #[test]
    fn overlapping_port_ranges_are_refused_distinct_ips_are_not() {
        let mut m: Vec<_> = (1..=3).map(|id| member(id, 2)).collect();
        // Member 2's peer ports 20200..=20201; member 3's start at 20201.
        m[2].peer_addr.set_port(20_201);
        assert_eq!(
            Cluster::new(1, m.clone(), 1, 3),
            Err(Error::AddressOverlap {
                addr: SocketAddr::from(([127, 0, 0, 1], 20_201)),
                first: (2, "peer"),
                second: (3, "peer")
            })
        );
        // The same ports on another address are fine.
        m[2].peer_addr = SocketAddr::from(([127, 0, 0, 2], 20_201));
        assert!(Cluster::new(1, m.clone(), 1, 3).is_ok());
        // A member's client range may not overlap its own peer range.
        let mut m: Vec<_> = (1..=3).map(|id| member(id, 2)).collect();
        m[0].client_addr = m[0].peer_addr;
        assert!(matches!(
            Cluster::new(1, m, 1, 3),
            Err(Error::AddressOverlap { .. })
        ));
    }
}
