//! The replication state a leader keeps for each follower. Only the names
//! and their etcd spelling live here; transitions belong to `Progress`.

use std::fmt;

/// How the leader currently replicates to a follower.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProgressState {
    /// The follower's last index is unknown: send one append per heartbeat
    /// interval and narrow it down from the rejection hints.
    #[default]
    Probe,
    /// The follower is known to match: stream appends optimistically, bounded
    /// by the inflight window.
    Replicate,
    /// The follower needs entries the leader no longer has: a snapshot is on
    /// its way, and appends wait for it.
    Snapshot,
}

impl fmt::Display for ProgressState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgressState::Probe => "StateProbe",
            ProgressState::Replicate => "StateReplicate",
            ProgressState::Snapshot => "StateSnapshot",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_with_etcd_names() {
        assert_eq!(ProgressState::Probe.to_string(), "StateProbe");
        assert_eq!(ProgressState::Replicate.to_string(), "StateReplicate");
        assert_eq!(ProgressState::Snapshot.to_string(), "StateSnapshot");
    }
}
