//! `log-level <DEBUG|INFO|WARN|ERROR|FATAL|NONE>`: sets the output level.
//! corelog prints no log lines, so only `NONE` (silence everything but
//! errors) changes the output.

use crate::common::datadriven::TestCase;

use super::env::{CmdResult, Env, LEVEL_NAMES};

pub fn handle(env: &mut Env, case: &TestCase) -> CmdResult {
    let name = case
        .args
        .first()
        .map(|a| a.key.as_str())
        .ok_or_else(|| "log-level: missing level".to_string())?;
    set_level(env, name)
}

/// Sets the level by (case-insensitive) name.
pub fn set_level(env: &mut Env, name: &str) -> CmdResult {
    match LEVEL_NAMES
        .iter()
        .position(|l| l.eq_ignore_ascii_case(name))
    {
        Some(level) => {
            env.out.level = level;
            Ok(())
        }
        None => Err(format!(
            "log levels must be either of [{}]",
            LEVEL_NAMES.join(" ")
        )),
    }
}
