//! The `simple`, `enter-joint` and `leave-joint` commands of etcd-raft's
//! confchange/testdata files, run against `corelog::raft::confchange`.
//!
//! Each file starts from an empty tracker (inflight window 10, no byte
//! bound) and a last index of 0 that grows by one after every command, so
//! `next=` in the output shows which command created a progress. Input is a
//! change list such as `v1 l2 r3 u4`. The output is the new configuration
//! and the progress map, or the error text.

use corelog::raft::confchange::Changer;
use corelog::raft::tracker::{ProgressTracker, progress_map_to_string};
use corelog::raftpb::conf_changes_from_string;

use crate::common::datadriven::TestCase;

/// The state one scenario file runs against.
pub struct ConfChangeEnv {
    tracker: ProgressTracker,
    last_index: u64,
}

impl Default for ConfChangeEnv {
    fn default() -> Self {
        ConfChangeEnv {
            tracker: ProgressTracker::new(10, 0),
            last_index: 0,
        }
    }
}

impl ConfChangeEnv {
    /// Runs one case; every command, failed or not, advances the last index.
    pub fn run(&mut self, case: &TestCase) -> String {
        let out = self.run_case(case);
        self.last_index += 1;
        out
    }

    fn run_case(&mut self, case: &TestCase) -> String {
        let ccs = match conf_changes_from_string(&case.input) {
            Ok(ccs) => ccs,
            Err(e) => return e,
        };
        let chg = Changer {
            tracker: &self.tracker,
            last_index: self.last_index,
        };
        let res = match case.cmd.as_str() {
            "simple" => chg.simple(&ccs),
            "enter-joint" => {
                let auto_leave = match case.scan::<bool>("autoleave") {
                    Ok(v) => v.unwrap_or(false),
                    Err(e) => return e,
                };
                chg.enter_joint(auto_leave, &ccs)
            }
            "leave-joint" => {
                if ccs.is_empty() {
                    chg.leave_joint()
                } else {
                    Err("this command takes no input".to_string())
                }
            }
            _ => return "unknown command".to_string(),
        };
        match res {
            Ok((config, progress)) => {
                self.tracker.config = config;
                self.tracker.progress = progress;
                format!(
                    "{}\n{}",
                    self.tracker.config,
                    progress_map_to_string(&self.tracker.progress)
                )
            }
            Err(e) => format!("{e}\n"),
        }
    }
}
