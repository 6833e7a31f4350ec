//! The `committed` and `vote` commands of etcd-raft's quorum/testdata files,
//! run against `corelog::raft::quorum`.
//!
//! Arguments: `cfg=(ids)` is the majority config; `cfgj=(ids)` (or
//! `cfgj=zero` for the empty one) makes the case a joint quorum; `idx=(..)`
//! gives each voter's acked index and `votes=(y|n|_ ..)` each voter's vote,
//! in order of first appearance in `cfg` then `cfgj`, `_` meaning unknown.
//!
//! Like etcd's driver, every case also cross-checks results that must not
//! change (an independent committed-index computation, joining with the
//! empty or the same config, lowering indexes that are not decisive,
//! swapping the halves of a joint config) and prints any disagreement, which
//! the expected output never contains.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use corelog::raft::quorum::{AckedIndexer, JointConfig, MajorityConfig, index_to_string};

use crate::common::datadriven::TestCase;

/// Runs one case of a quorum scenario file.
pub fn run(case: &TestCase) -> String {
    match run_case(case) {
        Ok(out) | Err(out) => out,
    }
}

fn parse_u64(key: &str, v: &str) -> Result<u64, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("error: argument {key}={v} is not a number\n"))
}

fn run_case(case: &TestCase) -> Result<String, String> {
    let mut joint = false;
    let (mut ids, mut idsj) = (Vec::new(), Vec::new());
    // Acked indexes (0 = placeholder `_`) or votes (0 = `_`, 1 = no, 2 =
    // yes), in order of the voters' first appearance.
    let mut idxs: Vec<u64> = Vec::new();
    let mut votes: Vec<u64> = Vec::new();
    for arg in &case.args {
        for v in &arg.vals {
            match arg.key.as_str() {
                "cfg" => ids.push(parse_u64("cfg", v)?),
                "cfgj" => {
                    joint = true;
                    if v == "zero" {
                        if arg.vals.len() != 1 {
                            return Err("error: cannot mix 'zero' into configuration\n".into());
                        }
                    } else {
                        idsj.push(parse_u64("cfgj", v)?);
                    }
                }
                "idx" => {
                    if v == "_" {
                        idxs.push(0);
                    } else {
                        let n = parse_u64("idx", v)?;
                        if n == 0 {
                            return Err("error: cannot use 0 as idx\n".into());
                        }
                        idxs.push(n);
                    }
                }
                "votes" => votes.push(match v.as_str() {
                    "y" => 2,
                    "n" => 1,
                    "_" => 0,
                    other => return Err(format!("error: unknown vote: {other}\n")),
                }),
                other => return Err(format!("error: unknown arg {other}\n")),
            }
        }
    }

    let c: MajorityConfig = ids.iter().copied().collect();
    let cj: MajorityConfig = idsj.iter().copied().collect();
    let both = JointConfig {
        incoming: c.clone(),
        outgoing: cj.clone(),
    };

    let input = if case.cmd == "vote" { &votes } else { &idxs };
    let voters = both.ids();
    if voters.len() != input.len() {
        return Err(format!(
            "error: mismatched input (explicit or _) for voters {}: {}\n",
            go_set(&voters),
            go_list(input)
        ));
    }

    let mut buf = String::new();
    match case.cmd.as_str() {
        "committed" => {
            let l = make_lookuper(&idxs, &ids, &idsj);
            if !joint {
                let idx = c.committed_index(&l);
                buf.push_str(&c.describe(&l));
                let alt = alternative_majority_committed_index(&c, &l);
                if alt != idx {
                    let _ = writeln!(
                        buf,
                        "{} <-- via alternative computation",
                        index_to_string(alt)
                    );
                }
                let zero_joint = JointConfig::new(c.clone()).committed_index(&l);
                if zero_joint != idx {
                    let _ = writeln!(
                        buf,
                        "{} <-- via zero-joint quorum",
                        index_to_string(zero_joint)
                    );
                }
                let self_joint = JointConfig {
                    incoming: c.clone(),
                    outgoing: c.clone(),
                }
                .committed_index(&l);
                if self_joint != idx {
                    let _ = writeln!(
                        buf,
                        "{} <-- via self-joint quorum",
                        index_to_string(self_joint)
                    );
                }
                for id in c.iter() {
                    let iidx = l.acked_index(id).unwrap_or(0);
                    if idx > iidx && iidx > 0 {
                        // This voter's index is below the committed one, so
                        // lowering it further must not change the result.
                        let lo = overlay(&c, &l, id, iidx - 1);
                        let a = c.committed_index(&lo);
                        if a != idx {
                            let _ =
                                write!(buf, "{} <-- overlaying {id}->{iidx}", index_to_string(a));
                        }
                        let lo = overlay(&c, &l, id, 0);
                        let a = c.committed_index(&lo);
                        if a != idx {
                            let _ = write!(buf, "{} <-- overlaying {id}->0", index_to_string(a));
                        }
                    }
                }
                let _ = writeln!(buf, "{}", index_to_string(idx));
            } else {
                buf.push_str(&both.describe(&l));
                let idx = both.committed_index(&l);
                let swapped = JointConfig {
                    incoming: cj.clone(),
                    outgoing: c.clone(),
                }
                .committed_index(&l);
                if swapped != idx {
                    let _ = writeln!(buf, "{} <-- via symmetry", index_to_string(swapped));
                }
                let _ = writeln!(buf, "{}", index_to_string(idx));
            }
        }
        "vote" => {
            let votes: BTreeMap<u64, bool> = make_lookuper(&votes, &ids, &idsj)
                .into_iter()
                .map(|(id, v)| (id, v != 1))
                .collect();
            if !joint {
                let _ = writeln!(buf, "{}", c.vote_result(&votes));
            } else {
                let r = both.vote_result(&votes);
                let swapped = JointConfig {
                    incoming: cj.clone(),
                    outgoing: c.clone(),
                }
                .vote_result(&votes);
                if swapped != r {
                    let _ = writeln!(buf, "{swapped} <-- via symmetry");
                }
                let _ = writeln!(buf, "{r}");
            }
        }
        other => return Err(format!("error: unknown command: {other}\n")),
    }
    Ok(buf)
}

/// Maps the voters, in order of first appearance in `ids` then `idsj`, to
/// the given values; placeholders (0) are left out, since "unknown" is not
/// "acked 0".
fn make_lookuper(vals: &[u64], ids: &[u64], idsj: &[u64]) -> BTreeMap<u64, u64> {
    let mut l = BTreeMap::new();
    let mut next = vals.iter();
    for &id in ids.iter().chain(idsj) {
        if l.contains_key(&id) {
            continue;
        }
        if let Some(&v) = next.next() {
            l.insert(id, v);
        }
    }
    l.retain(|_, v| *v != 0);
    l
}

/// `l` restricted to the voters of `c`, with voter `id` acking `idx`.
fn overlay(c: &MajorityConfig, l: &BTreeMap<u64, u64>, id: u64, idx: u64) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for iid in c.iter() {
        if iid == id {
            out.insert(iid, idx);
        } else if let Some(v) = l.acked_index(iid) {
            out.insert(iid, v);
        }
    }
    out
}

/// A committed index computed the slow, obvious way: the highest acked
/// index that at least a majority of voters acked or exceeded.
fn alternative_majority_committed_index(c: &MajorityConfig, l: &BTreeMap<u64, u64>) -> u64 {
    if c.is_empty() {
        return u64::MAX;
    }
    let acked: Vec<u64> = c.iter().filter_map(|id| l.acked_index(id)).collect();
    let quorum = c.len() / 2 + 1;
    acked
        .iter()
        .copied()
        .filter(|&idx| acked.iter().filter(|&&other| other >= idx).count() >= quorum)
        .max()
        .unwrap_or(0)
}

/// How Go prints a `map[uint64]struct{}`: `map[1:{} 2:{}]`.
fn go_set(ids: &BTreeSet<u64>) -> String {
    let items: Vec<String> = ids.iter().map(|id| format!("{id}:{{}}")).collect();
    format!("map[{}]", items.join(" "))
}

/// How Go prints a `[]Index`: `[1 2 ∞]`.
fn go_list(vals: &[u64]) -> String {
    let items: Vec<String> = vals.iter().map(|&v| index_to_string(v)).collect();
    format!("[{}]", items.join(" "))
}
