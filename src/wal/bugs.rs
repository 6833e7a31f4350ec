//! Deliberate bugs of the WAL, each one reintroducing a defect of issue 11
//! that the simulator (`corelog-sim --storage wal`) must catch
//! (tools/sim/tests/bugs.rs). Compiled in only with
//! `--cfg corelog_sim_bugs` (never a feature: see the workspace
//! Cargo.toml); in every other build `Options::bug` is a constant `false`
//! and the switches do not exist.

use super::Options;

/// The WAL's deliberate bugs, all off by default.
#[cfg(corelog_sim_bugs)]
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalBugs {
    /// Defect 1: recovery restarts flush numbering right after the last
    /// sound batch, ignoring the bases of segments prepared ahead and the
    /// header of a torn batch, so a sequence can be issued twice and later
    /// flushes fall below their segment's base.
    pub reuse_flush_seq: bool,
    /// Defect 2: records' crcs are not bound to their segment and flush
    /// (every seed is the same), so stale records of a recycled file can
    /// pass for part of a torn batch.
    pub unbound_records: bool,
    /// Defect 5: recovery applies each part of a flush that spans segments
    /// as it finds it, without waiting for the flush's last part.
    pub partial_flush: bool,
}

/// Names one switch of `WalBugs` (defined in every build, so that the
/// sites that test a bug compile without the cfg).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WalBug {
    ReuseFlushSeq,
    UnboundRecords,
    PartialFlush,
}

impl Options {
    /// Whether deliberate bug `b` is on: never, unless built with
    /// `--cfg corelog_sim_bugs` and switched on in `Options::bugs`.
    #[inline]
    pub(crate) fn bug(&self, b: WalBug) -> bool {
        #[cfg(corelog_sim_bugs)]
        {
            match b {
                WalBug::ReuseFlushSeq => self.bugs.reuse_flush_seq,
                WalBug::UnboundRecords => self.bugs.unbound_records,
                WalBug::PartialFlush => self.bugs.partial_flush,
            }
        }
        #[cfg(not(corelog_sim_bugs))]
        {
            let _ = b;
            false
        }
    }
}

#[cfg(corelog_sim_bugs)]
thread_local! {
    /// `unbound_records` for the record crcs of this thread: the seed is
    /// computed where no `Options` is at hand (format.rs), and a simulator
    /// runs one seed per thread.
    static UNBOUND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets `unbound_records` for this thread (the WAL does at open).
pub(crate) fn set_unbound_records(on: bool) {
    #[cfg(corelog_sim_bugs)]
    UNBOUND.with(|u| u.set(on));
    #[cfg(not(corelog_sim_bugs))]
    let _ = on;
}

/// Whether record crcs of this thread ignore segment and flush.
#[inline]
pub(crate) fn unbound_records() -> bool {
    #[cfg(corelog_sim_bugs)]
    {
        UNBOUND.with(|u| u.get())
    }
    #[cfg(not(corelog_sim_bugs))]
    {
        false
    }
}
