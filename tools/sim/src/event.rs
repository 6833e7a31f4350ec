//! The event log of a run: what the simulator did, step by step.
//!
//! Every event feeds a running FNV-1a hash, so two runs of one seed can be
//! compared event for event by comparing one number; the last events are
//! kept in a ring for failure reports, and the whole log only when asked
//! (replay with `--seed`), because formatting millions of events per second
//! of a seed sweep would cost more than simulating them.

use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};

use corelog::raftpb::{Message, MessageType};

/// Indents the continuation lines of a long description.
pub fn indent(s: &str) -> String {
    s.replace('\n', "\n        ")
}

/// FNV-1a, 64 bit: deterministic across processes and Rust versions (std's
/// `DefaultHasher` promises neither), and fast on the short inputs hashed
/// here.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// FNV-1a of a byte string.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.write(bytes);
    h.finish()
}

/// The fields of a message that matter to a reader of the log; the entries
/// themselves are summarized by their index range.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MsgSummary {
    pub ty: i32,
    pub from: u64,
    pub to: u64,
    pub term: u64,
    pub log_term: u64,
    pub index: u64,
    pub commit: u64,
    pub reject: bool,
    pub reject_hint: u64,
    /// First and last index of the entries carried, if any.
    pub ents: Option<(u64, u64)>,
    /// Index of the snapshot carried, if any.
    pub snap: Option<u64>,
}

impl MsgSummary {
    pub fn of(m: &Message) -> MsgSummary {
        MsgSummary {
            ty: m.r#type,
            from: m.from,
            to: m.to,
            term: m.term,
            log_term: m.log_term,
            index: m.index,
            commit: m.commit,
            reject: m.reject,
            reject_hint: m.reject_hint,
            ents: match (m.entries.first(), m.entries.last()) {
                (Some(a), Some(b)) => Some((a.index, b.index)),
                _ => None,
            },
            snap: m
                .snapshot
                .as_ref()
                .and_then(|s| s.metadata.as_ref())
                .map(|md| md.index)
                .filter(|&i| i > 0),
        }
    }
}

impl fmt::Debug for MsgSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = MessageType::try_from(self.ty)
            .map(|t| t.as_str_name().to_string())
            .unwrap_or_else(|_| format!("type{}", self.ty));
        write!(
            f,
            "{}->{} {} Term:{} Log:{}/{} Commit:{}",
            self.from, self.to, ty, self.term, self.log_term, self.index, self.commit
        )?;
        if self.reject {
            write!(f, " Rejected (Hint: {})", self.reject_hint)?;
        }
        if let Some((a, b)) = self.ents {
            write!(f, " Entries:[{a}..={b}]")?;
        }
        if let Some(s) = self.snap {
            write!(f, " Snapshot:{s}")?;
        }
        Ok(())
    }
}

/// One thing the simulator did or saw.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// The start of a run, with the parameters drawn for it.
    Start {
        params: String,
    },
    /// Every live node ticked; `now` is the new time.
    Tick {
        now: u64,
    },
    /// Only this node ticked (its clock runs fast).
    TickOne {
        id: u64,
    },
    Send {
        m: MsgSummary,
        delay: u64,
    },
    /// The network was full: the message was lost on send.
    Overflow {
        m: MsgSummary,
    },
    Deliver {
        m: MsgSummary,
    },
    /// The message was lost; `why` says whether by chance, by a partition,
    /// or because its destination is down.
    Drop {
        m: MsgSummary,
        why: &'static str,
    },
    Duplicate {
        m: MsgSummary,
    },
    Delay {
        m: MsgSummary,
        until: u64,
    },
    /// Links now cut, as (from, to) pairs, after a partition change.
    Partition {
        kind: &'static str,
        cut: Vec<(u64, u64)>,
    },
    Heal,
    Crash {
        id: u64,
    },
    Restart {
        id: u64,
        term: u64,
        commit: u64,
        last: u64,
    },
    /// A node was added to the cluster and started with empty storage.
    Spawn {
        id: u64,
    },
    /// A node left the configuration and was shut down for good.
    Retire {
        id: u64,
    },
    Propose {
        id: u64,
        seq: u64,
    },
    ProposeConfChange {
        id: u64,
        change: String,
    },
    ReadIndex {
        id: u64,
        ctx: u64,
        min_index: u64,
    },
    ReadAnswered {
        id: u64,
        ctx: u64,
        index: u64,
    },
    TransferLeader {
        id: u64,
        to: u64,
    },
    Compact {
        id: u64,
        snap_index: u64,
        compact_index: u64,
    },
    /// A node handled a Ready.
    Ready {
        id: u64,
        term: u64,
        state: &'static str,
        entries: Option<(u64, u64)>,
        hard_state: Option<(u64, u64, u64)>,
        snapshot: Option<u64>,
        committed: Option<(u64, u64)>,
        msgs: usize,
    },
    ApplyConfChange {
        id: u64,
        index: u64,
        conf: String,
    },
    /// Faults stop and the network heals: liveness is measured from here.
    Calm,
    /// A leader was elected and a proposal committed this many ticks after
    /// the calm began.
    Live {
        ticks: u64,
    },
    /// No liveness within the bound, and removed nodes still hold the
    /// cluster (a membership change wedged it): liveness checks stop.
    Wedged {
        leaving: Vec<u64>,
        nodes: String,
    },
    /// A step call returned an error (not a failure: stale messages and
    /// dropped proposals are refused this way).
    StepError {
        id: u64,
        what: String,
    },
    // New variants go last: the hash covers each variant's position, and
    // the histories of seeds that never use them keep their hashes.
    /// Asynchronous storage writes: a node's append thread completed one
    /// `MsgStorageAppend` (now on its disk) and delivered its responses.
    StorageAppend {
        id: u64,
        entries: Option<(u64, u64)>,
        hard_state: Option<(u64, u64, u64)>,
        snapshot: Option<u64>,
        responses: usize,
    },
    /// Asynchronous storage writes: a node's apply thread applied one
    /// `MsgStorageApply` and answered.
    StorageApply {
        id: u64,
        committed: Option<(u64, u64)>,
    },
    /// Asynchronous storage writes: node `id`'s append thread completes
    /// nothing before tick `until`.
    StallDisk {
        id: u64,
        until: u64,
    },
    /// `--storage wal`: node `id` started flush `flush` of its WAL.
    FlushStart {
        id: u64,
        flush: u64,
    },
    /// `--storage wal`: node `id` ran flush `flush` of its WAL inline: it
    /// is durable.
    FlushInline {
        id: u64,
        flush: u64,
    },
    /// `--storage wal`: a power loss cut node `id`'s inline flush (the
    /// node's crash follows).
    FlushCut {
        id: u64,
    },
    /// `--storage wal`: node `id`'s WAL completed flushes up to `durable`;
    /// `released` messages that waited for them were sent.
    FlushDone {
        id: u64,
        durable: u64,
        released: usize,
    },
    /// `--storage wal`: node `id`'s WAL failed (an I/O error poisoned it):
    /// the node stops, as its process would, and its machine restarts (the
    /// disk loses what was not synced).
    WalFailed {
        id: u64,
        what: String,
    },
    /// `--storage wal`: node `id`'s append thread found no room for a
    /// segment; its write waits (nothing poisoned) and is tried again once
    /// its disk is free again (`until`: not before this tick).
    WalNoSpace {
        id: u64,
        until: u64,
    },
    /// `--storage wal`: node `id`'s restart found its WAL unusable
    /// (`transient`: an I/O error, it stays down and tries again later;
    /// otherwise corruption it cannot repair: it stays down for good).
    RecoveryFailed {
        id: u64,
        transient: bool,
        what: String,
    },
    /// `--storage wal`: a disk fault the schedule chose: `disk-full` (no
    /// more space until the node restarts), `rot` (a bit of durable data
    /// flipped at rest, at `at` of `file`).
    DiskFault {
        id: u64,
        kind: &'static str,
        file: String,
        at: u64,
    },
}

/// The running log of a run.
#[derive(Debug, Clone)]
pub struct EventLog {
    hash: Fnv,
    count: u64,
    tail: VecDeque<(u64, Event)>,
    tail_len: usize,
    /// Every event, kept only for replays (`--seed`), each with an
    /// optional long description (not hashed: it is derived from the
    /// same values).
    pub all: Option<Vec<(u64, Event, Option<String>)>>,
}

impl EventLog {
    pub fn new(tail_len: usize, keep_all: bool) -> EventLog {
        EventLog {
            hash: Fnv::default(),
            count: 0,
            tail: VecDeque::with_capacity(tail_len),
            tail_len,
            all: keep_all.then(Vec::new),
        }
    }

    pub fn push(&mut self, step: u64, e: Event) {
        self.push_detailed(step, e, || None);
    }

    /// Whether every event is kept (a replay): then long descriptions are
    /// worth computing.
    pub fn keeps_all(&self) -> bool {
        self.all.is_some()
    }

    /// Pushes an event with a long description, computed only if every
    /// event is kept.
    pub fn push_detailed(&mut self, step: u64, e: Event, detail: impl FnOnce() -> Option<String>) {
        step.hash(&mut self.hash);
        e.hash(&mut self.hash);
        self.count += 1;
        if let Some(all) = &mut self.all {
            all.push((step, e.clone(), detail()));
        }
        if self.tail_len > 0 {
            if self.tail.len() == self.tail_len {
                self.tail.pop_front();
            }
            self.tail.push_back((step, e));
        }
    }

    /// The hash of every event so far: equal for two runs iff (barring
    /// collisions) they did the same thing in the same order.
    pub fn hash(&self) -> u64 {
        self.hash.0
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The last events, formatted one per line.
    pub fn tail_lines(&self) -> Vec<String> {
        self.tail
            .iter()
            .map(|(step, e)| format!("step {step}: {e:?}"))
            .collect()
    }
}
