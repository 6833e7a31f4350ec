//! Argument parsing shared by the command handlers, with the value syntax of
//! Go's datadriven package (decimal integers, Go's boolean spellings). Every
//! failure is an error string for the output, never a panic.

use crate::common::datadriven::{CmdArg, TestCase};

use super::env::Env;

/// Parses a Go `strconv.ParseBool` boolean.
pub fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("{key}: invalid boolean {v:?}")),
    }
}

/// Parses a decimal number of any integer type.
pub fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{key}: invalid number {v:?}"))
}

/// The first argument as a number (`add-nodes 3`, `campaign 1`).
pub fn first_as_int(case: &TestCase) -> Result<i64, String> {
    let arg = case
        .args
        .first()
        .ok_or_else(|| format!("{} needs a first argument", case.cmd))?;
    if !arg.vals.is_empty() {
        return Err(format!(
            "first argument of {} must be a plain number, not {}=...",
            case.cmd, arg.key
        ));
    }
    parse_num(&case.cmd, &arg.key)
}

/// The first argument as the index of an existing node (node id - 1).
pub fn first_as_node_idx(env: &Env, case: &TestCase) -> Result<usize, String> {
    let id = first_as_int(case)?;
    node_idx(env, id)
}

/// Converts a node id to an index into `env.nodes`, checking it exists.
pub fn node_idx(env: &Env, id: i64) -> Result<usize, String> {
    if id < 1 || id as u64 > env.nodes.len() as u64 {
        return Err(format!(
            "node {id} does not exist (there are {} nodes)",
            env.nodes.len()
        ));
    }
    Ok((id - 1) as usize)
}

/// The plain (valueless) arguments as node indexes (`stabilize 1 3`).
pub fn node_idxs(env: &Env, case: &TestCase) -> Result<Vec<usize>, String> {
    plain_args(case)
        .map(|a| parse_num::<i64>(&case.cmd, &a.key).and_then(|id| node_idx(env, id)))
        .collect()
}

/// The arguments without values.
pub fn plain_args(case: &TestCase) -> impl Iterator<Item = &CmdArg> {
    case.args.iter().filter(|a| a.vals.is_empty())
}

/// The single value of a required `key=value` argument.
pub fn required<'a>(case: &'a TestCase, key: &str) -> Result<&'a str, String> {
    match case.arg(key) {
        Some([v]) => Ok(v.as_str()),
        Some(vs) => Err(format!("argument {key} wants one value, has {}", vs.len())),
        None => Err(format!("missing argument {key}=")),
    }
}
