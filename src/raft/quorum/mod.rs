//! Quorum arithmetic: which log index a set of voters has committed, and how
//! an election stands given the votes received so far, for a plain majority
//! (`MajorityConfig`) and for joint consensus (`JointConfig`, both halves
//! must agree).
//!
//! This module owns only the math. It never looks at progress, messages or
//! configuration changes, and it imports nothing else of corelog: callers
//! hand it ids and an `AckedIndexer` that answers "how far has voter `id`
//! acknowledged the log".

mod joint;
mod majority;

use std::collections::BTreeMap;
use std::fmt;

pub use joint::JointConfig;
pub use majority::MajorityConfig;

/// The outcome of an election as far as the votes received so far can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteResult {
    /// Neither the "yes" nor the "no" votes have reached a quorum; the
    /// outcome depends on voters that have not answered yet.
    Pending,
    /// A quorum voted "no" (or can no longer vote "yes").
    Lost,
    /// A quorum voted "yes".
    Won,
}

impl fmt::Display for VoteResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // etcd's names, which its scenario files print.
        f.write_str(match self {
            VoteResult::Pending => "VotePending",
            VoteResult::Lost => "VoteLost",
            VoteResult::Won => "VoteWon",
        })
    }
}

/// Answers how far a voter has acknowledged the log. `None` means nothing is
/// known about that voter, which is different from `Some(0)`.
pub trait AckedIndexer {
    /// The highest index voter `id` is known to have durably appended.
    fn acked_index(&self, id: u64) -> Option<u64>;
}

impl AckedIndexer for BTreeMap<u64, u64> {
    fn acked_index(&self, id: u64) -> Option<u64> {
        self.get(&id).copied()
    }
}

impl<T: AckedIndexer + ?Sized> AckedIndexer for &T {
    fn acked_index(&self, id: u64) -> Option<u64> {
        (**self).acked_index(id)
    }
}

/// Formats a committed index the way etcd's scenario files print it: the
/// "everything is committed" answer of an empty configuration (`u64::MAX`)
/// reads as `∞`.
pub fn index_to_string(index: u64) -> String {
    if index == u64::MAX {
        "∞".to_string()
    } else {
        index.to_string()
    }
}
