//! `add-nodes <n> [voters=(..)] [learners=(..)] [index=i] [content=s]
//! [inflight=n] [prevote=b] [checkquorum=b] [read-only=safe|lease-based]
//! [step-down-on-removal=b] [disable-conf-change-validation=b]
//! [max-committed-size-per-ready=n] [async-storage-writes=b]`:
//! creates `n` nodes with the next free ids. With any of voters, learners,
//! index or content the nodes start from a snapshot at `index` (term 1)
//! holding that configuration; without, from an empty log. With
//! `async-storage-writes=true` the nodes hand their storage work to their
//! append and apply threads (`process-append-thread`,
//! `process-apply-thread`) instead of doing it in `process-ready`. Other
//! arguments are skipped, as etcd's harness does.

use bytes::Bytes;
use corelog::raft::{Config, Error, MemStorage, NO_LIMIT, RawNode, ReadOnlyOption, Storage};
use corelog::raftpb::{ConfState, Snapshot, SnapshotMetadata};

use crate::common::datadriven::TestCase;

use super::args::{first_as_int, parse_bool, parse_num};
use super::env::{CmdResult, Env, EnvStorage, Node};

/// The environment's config template: etcd's test defaults, no limits.
fn config_stub() -> Config {
    Config {
        election_tick: 3,
        heartbeat_tick: 1,
        max_size_per_msg: NO_LIMIT,
        max_inflight_msgs: i32::MAX as usize,
        ..Config::default()
    }
}

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let n = first_as_int(case)?;
    let n = usize::try_from(n).map_err(|_| format!("add-nodes: invalid count {n}"))?;
    let mut cs = ConfState::default();
    let mut index = 0u64;
    let mut data = Bytes::new();
    let mut cfg = config_stub();
    for arg in case.args.iter().skip(1) {
        let key = arg.key.as_str();
        // A plain argument has no values and, as in etcd, is skipped.
        for v in &arg.vals {
            match key {
                "voters" => cs.voters.push(parse_num(key, v)?),
                "learners" => cs.learners.push(parse_num(key, v)?),
                "inflight" => cfg.max_inflight_msgs = parse_num(key, v)?,
                "index" => {
                    index = parse_num(key, v)?;
                    cfg.applied = index;
                }
                "content" => data = Bytes::from(v.clone().into_bytes()),
                "async-storage-writes" => cfg.async_storage_writes = parse_bool(key, v)?,
                "prevote" => cfg.pre_vote = parse_bool(key, v)?,
                "checkquorum" => cfg.check_quorum = parse_bool(key, v)?,
                "max-committed-size-per-ready" => {
                    cfg.max_committed_size_per_ready = parse_num(key, v)?
                }
                "disable-conf-change-validation" => {
                    cfg.disable_conf_change_validation = parse_bool(key, v)?
                }
                "read-only" => {
                    cfg.read_only_option = match v.as_str() {
                        "safe" => ReadOnlyOption::Safe,
                        "lease-based" => ReadOnlyOption::LeaseBased,
                        _ => return Err(format!("invalid read-only option {v:?}")),
                    }
                }
                "step-down-on-removal" => cfg.step_down_on_removal = parse_bool(key, v)?,
                // etcd's harness skips arguments it does not know.
                _ => {}
            }
        }
    }
    let snap = Snapshot {
        data,
        metadata: Some(SnapshotMetadata {
            conf_state: Some(cs),
            index,
            term: 0,
        }),
    };
    add_nodes(env, n, cfg, snap)
}

/// Adds `n` nodes configured from `cfg`, bootstrapped from `snap` unless it
/// is empty.
pub fn add_nodes(env: &mut Env, n: usize, cfg: Config, mut snap: Snapshot) -> CmdResult {
    let bootstrap = !is_empty_snapshot(&snap);
    if bootstrap {
        // MemStorage cannot represent a snapshot at index 1 usefully.
        if snap.metadata.as_ref().map_or(0, |m| m.index) <= 1 {
            return Err("index must be specified as > 1 due to bootstrap".to_string());
        }
        if let Some(m) = snap.metadata.as_mut() {
            m.term = 1;
        }
    }
    for _ in 0..n {
        let id = env.nodes.len() as u64 + 1;
        let mut mem = MemStorage::new();
        if bootstrap {
            mem.apply_snapshot(snap.clone())
                .map_err(|e| e.to_string())?;
            let fi = mem.first_index().map_err(|e| e.to_string())?;
            let exp = snap.metadata.as_ref().map_or(0, |m| m.index) + 1;
            if fi != exp {
                return Err(format!("failed to establish first index {exp}; got {fi}"));
            }
        }
        let storage = EnvStorage::new(mem, vec![snap.clone()]);
        let mut cfg = cfg.clone();
        cfg.id = id;
        let raw = RawNode::new(&cfg, storage).map_err(|e| etcd_config_error(&e))?;
        env.nodes.push(Node {
            raw,
            config: cfg,
            append_work: Vec::new(),
            apply_work: Vec::new(),
        });
    }
    Ok(())
}

/// Whether `snap` equals the empty snapshot (no data, no metadata content).
fn is_empty_snapshot(snap: &Snapshot) -> bool {
    let meta = snap.metadata.clone().unwrap_or_default();
    snap.data.is_empty()
        && meta.index == 0
        && meta.term == 0
        && meta.conf_state.unwrap_or_default() == ConfState::default()
}

/// The text etcd's `Config.validate` gives for an invalid config, so that a
/// scenario exercising one prints what etcd prints.
fn etcd_config_error(e: &Error) -> String {
    match e {
        Error::ConfigInvalid { field, .. } => match *field {
            "id" => "cannot use none as id".to_string(),
            "heartbeat_tick" => "heartbeat tick must be greater than 0".to_string(),
            "election_tick" => "election tick must be greater than heartbeat tick".to_string(),
            "max_inflight_msgs" => "max inflight messages must be greater than 0".to_string(),
            "max_inflight_bytes" => "max inflight bytes must be >= max message size".to_string(),
            "read_only_option" => {
                "CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased".to_string()
            }
            _ => e.to_string(),
        },
        _ => e.to_string(),
    }
}
