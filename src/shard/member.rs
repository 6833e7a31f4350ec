//! One member's process: its data directory and its shards. A new
//! directory is bootstrapped (every group this member holds by the
//! cluster's placement is created, on the shard `shard_of` names, with
//! its replicas as the initial configuration; then `member.meta` records
//! whose directory this is); an existing one is restarted (every group is
//! rebuilt from its shard's WAL) only under the cluster id, member id and
//! shard count it was made with.
//!
//! Layout: `<data>/member.meta`, `<data>/shard-<k>/` (shard k's WAL).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::apply::ApplyFactory;
use super::config::{ConfigError, RuntimeConfig};
use super::handle::{Boot, ShardHandle, ShardSpec, StartError, spawn};
use super::meta::{META_FILE, MemberMeta, MetaError};
use super::peers::PeersFactory;
use crate::cluster::{self, Cluster};
use crate::raftpb::ConfState;

/// Which CPU each shard's thread is pinned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuPlacement {
    /// Shard `k` on the `k % n`-th of the `n` CPUs this process may run on.
    Auto,
    /// Shard `k` on `cpus[k % cpus.len()]`.
    Pinned(Vec<usize>),
    /// Not pinned (tests that run several members in one process).
    Unbound,
}

/// How to start a member.
#[derive(Clone)]
pub struct MemberConfig {
    pub data_dir: PathBuf,
    pub cluster: Arc<Cluster>,
    /// This member's id in `cluster`.
    pub member: u64,
    pub runtime: RuntimeConfig,
    pub apply: ApplyFactory,
    /// Each shard's network (`None`: no peers, for one-member clusters).
    pub peers: Option<PeersFactory>,
    pub cpus: CpuPlacement,
}

/// Why a member did not start.
#[derive(Debug)]
pub enum BootError {
    Config(ConfigError),
    /// The member is not in the cluster description.
    UnknownMember {
        member: u64,
    },
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    Meta(MetaError),
    /// The directory belongs to another cluster.
    ForeignCluster {
        dir: PathBuf,
        found: u64,
        expected: u64,
    },
    /// The directory belongs to another member.
    WrongMember {
        dir: PathBuf,
        found: u64,
        expected: u64,
    },
    /// The directory was made with another shard count: its groups sit on
    /// other shards than `shard_of` now names.
    ShardCountChanged {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },
    /// Bootstrap of a directory that already is a member's.
    AlreadyBootstrapped {
        dir: PathBuf,
    },
    /// Restart of a directory that is no member's yet.
    NotBootstrapped {
        dir: PathBuf,
    },
    /// Shard directories without `member.meta`: a bootstrap that did not
    /// finish, or foreign files. Nothing in it was promised to anyone (a
    /// bootstrap holds its shards until the meta is durable): remove it
    /// and bootstrap again.
    UnexpectedData {
        path: PathBuf,
    },
    /// A shard did not start.
    Shard {
        shard: u32,
        error: StartError,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Config(e) => write!(f, "{e}"),
            BootError::UnknownMember { member } => {
                write!(f, "member {member} is not in the cluster")
            }
            BootError::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            BootError::Meta(e) => write!(f, "{e}"),
            BootError::ForeignCluster {
                dir,
                found,
                expected,
            } => write!(
                f,
                "{} belongs to cluster {found:#x}, not to cluster {expected:#x}",
                dir.display()
            ),
            BootError::WrongMember {
                dir,
                found,
                expected,
            } => write!(
                f,
                "{} belongs to member {found}, not to member {expected}",
                dir.display()
            ),
            BootError::ShardCountChanged {
                dir,
                found,
                expected,
            } => write!(
                f,
                "{} was made with {found} shards, the member now has {expected}",
                dir.display()
            ),
            BootError::AlreadyBootstrapped { dir } => {
                write!(f, "{} is already a member's data directory", dir.display())
            }
            BootError::NotBootstrapped { dir } => {
                write!(f, "{} has no {META_FILE}: not bootstrapped", dir.display())
            }
            BootError::UnexpectedData { path } => write!(
                f,
                "{} exists without {META_FILE} (an unfinished bootstrap?)",
                path.display()
            ),
            BootError::Shard { shard, error } => write!(f, "shard {shard}: {error}"),
        }
    }
}

impl std::error::Error for BootError {}

impl From<MetaError> for BootError {
    fn from(e: MetaError) -> Self {
        BootError::Meta(e)
    }
}

/// A running member: its shards.
pub struct MemberRuntime {
    member: u64,
    cluster: Arc<Cluster>,
    shards: Vec<ShardHandle>,
}

/// The directory of shard `k`'s WAL.
pub fn shard_dir(data: &Path, k: u32) -> PathBuf {
    data.join(format!("shard-{k}"))
}

/// The CPUs this process may run on (its affinity mask), in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ok != 0 {
        return vec![0];
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    if cpus.is_empty() { vec![0] } else { cpus }
}

/// The shard count a member gets by default: one per CPU it may use.
pub fn default_shard_count() -> u32 {
    allowed_cpus().len() as u32
}

impl MemberRuntime {
    /// Bootstraps `cfg.data_dir` if it holds no `member.meta`, else
    /// restarts it.
    pub fn start(cfg: MemberConfig) -> Result<MemberRuntime, BootError> {
        match MemberMeta::read(&cfg.data_dir)? {
            None => MemberRuntime::bootstrap(cfg),
            Some(_) => MemberRuntime::restart(cfg),
        }
    }

    /// Creates every group this member holds, then writes `member.meta`;
    /// the shards start serving only once it is durable.
    pub fn bootstrap(cfg: MemberConfig) -> Result<MemberRuntime, BootError> {
        let shards = check(&cfg)?;
        let dir = &cfg.data_dir;
        if MemberMeta::read(dir)?.is_some() {
            return Err(BootError::AlreadyBootstrapped { dir: dir.clone() });
        }
        fs::create_dir_all(dir).map_err(|source| BootError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        for k in 0..shards {
            let p = shard_dir(dir, k);
            if p.exists() {
                return Err(BootError::UnexpectedData { path: p });
            }
        }
        let groups = cfg
            .cluster
            .groups_of(cfg.member)
            .map_err(|_| BootError::UnknownMember { member: cfg.member })?;
        let mut boots: Vec<Boot> = (0..shards)
            .map(|_| Boot::New {
                groups: Vec::new(),
                campaign: Vec::new(),
            })
            .collect();
        for g in groups {
            let replicas = cfg
                .cluster
                .replicas(g)
                .map_err(|_| BootError::UnknownMember { member: cfg.member })?;
            let k = cluster::shard_of(g, shards) as usize;
            let Boot::New { groups, campaign } = &mut boots[k] else {
                unreachable!("every boot above is New");
            };
            if cfg.runtime.campaign_on_bootstrap && replicas.first() == Some(&cfg.member) {
                campaign.push(g);
            }
            let mut voters = replicas;
            voters.sort_unstable();
            groups.push((
                g,
                ConfState {
                    voters,
                    ..Default::default()
                },
            ));
        }
        let rt = MemberRuntime::spawn_all(&cfg, boots, true)?;
        MemberMeta {
            cluster_id: cfg.cluster.id(),
            member_id: cfg.member,
            shards,
        }
        .write(dir)?;
        for s in &rt.shards {
            s.release().map_err(|_| BootError::Shard {
                shard: s.index(),
                error: StartError::Died,
            })?;
        }
        Ok(rt)
    }

    /// Rebuilds every group from the WALs of a bootstrapped directory.
    /// Refuses a directory of another cluster, member or shard count.
    pub fn restart(cfg: MemberConfig) -> Result<MemberRuntime, BootError> {
        let shards = check(&cfg)?;
        let dir = &cfg.data_dir;
        let Some(meta) = MemberMeta::read(dir)? else {
            return Err(BootError::NotBootstrapped { dir: dir.clone() });
        };
        if meta.cluster_id != cfg.cluster.id() {
            return Err(BootError::ForeignCluster {
                dir: dir.clone(),
                found: meta.cluster_id,
                expected: cfg.cluster.id(),
            });
        }
        if meta.member_id != cfg.member {
            return Err(BootError::WrongMember {
                dir: dir.clone(),
                found: meta.member_id,
                expected: cfg.member,
            });
        }
        if meta.shards != shards {
            return Err(BootError::ShardCountChanged {
                dir: dir.clone(),
                found: meta.shards,
                expected: shards,
            });
        }
        let boots = (0..shards).map(|_| Boot::Existing).collect();
        MemberRuntime::spawn_all(&cfg, boots, false)
    }

    fn spawn_all(
        cfg: &MemberConfig,
        boots: Vec<Boot>,
        held: bool,
    ) -> Result<MemberRuntime, BootError> {
        let cpus = match &cfg.cpus {
            CpuPlacement::Auto => Some(allowed_cpus()),
            CpuPlacement::Pinned(c) if !c.is_empty() => Some(c.clone()),
            _ => None,
        };
        let mut rt = MemberRuntime {
            member: cfg.member,
            cluster: cfg.cluster.clone(),
            shards: Vec::new(),
        };
        for (k, boot) in boots.into_iter().enumerate() {
            let k = k as u32;
            let spec = ShardSpec {
                index: k,
                member: cfg.member,
                cluster: cfg.cluster.clone(),
                cfg: cfg.runtime.clone(),
                wal_dir: shard_dir(&cfg.data_dir, k),
                cpu: cpus.as_ref().map(|c| c[k as usize % c.len()]),
                boot,
                apply: cfg.apply.clone(),
                peers: cfg.peers.clone(),
                held,
            };
            // On failure the shards started so far stop as `rt` drops.
            let h = spawn(spec).map_err(|error| BootError::Shard { shard: k, error })?;
            rt.shards.push(h);
        }
        Ok(rt)
    }

    pub fn member(&self) -> u64 {
        self.member
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub fn shards(&self) -> &[ShardHandle] {
        &self.shards
    }

    /// The shard that runs `group` on this member.
    pub fn shard_of(&self, group: u64) -> &ShardHandle {
        let k = cluster::shard_of(group, self.shards.len() as u32);
        &self.shards[k as usize]
    }

    /// Stops every shard; the first thread that panicked, if any.
    pub fn stop(mut self) -> Result<(), String> {
        let mut r = Ok(());
        for s in self.shards.drain(..) {
            if let Err(e) = s.stop() {
                r = r.and(Err(e));
            }
        }
        r
    }
}

/// Checks the configuration; returns the member's shard count.
fn check(cfg: &MemberConfig) -> Result<u32, BootError> {
    cfg.runtime.validate().map_err(BootError::Config)?;
    let m = cfg
        .cluster
        .member(cfg.member)
        .ok_or(BootError::UnknownMember { member: cfg.member })?;
    Ok(m.shards)
}
