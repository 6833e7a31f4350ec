//! Configuration changes: computing the next `TrackerConfig` and
//! `ProgressMap` from the current ones and a list of single changes, with
//! etcd-raft's validation (one voter at a time outside joint consensus, no
//! overlapping roles, never zero voters), and rebuilding a configuration from
//! a `ConfState`.
//!
//! It only computes: the tracker it reads is never mutated, and installing
//! the result (and deciding whether a change is allowed at all right now,
//! e.g. while another is pending) is the caller's job. Errors are the exact
//! texts etcd-raft produces.

mod changer;
mod restore;

pub use changer::{Changer, describe};
pub use restore::restore;
