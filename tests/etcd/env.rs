//! The interaction environment: a small cluster of `RawNode`s over in-memory
//! storage, the messages in flight between them, and the output buffer the
//! command handlers print into. It mirrors etcd-raft's `rafttest`
//! InteractionEnv so that etcd's scenario files run unchanged.
//!
//! Owns the nodes, their storage and the network; never interprets Raft
//! itself (everything goes through the `RawNode` API). A malformed scenario
//! line is an error string in the output, never a panic.

use std::cell::Cell;
use std::fmt;

use bytes::Bytes;
use corelog::raft::{Config, MemStorage, RawNode, Result as RaftResult, Storage};
use corelog::raft::{NO_LIMIT, RaftState};
use corelog::raftpb::{Entry, Message, Snapshot};

use crate::common::datadriven::TestCase;

/// What a command handler returns: an error is printed into the output.
pub type CmdResult = Result<(), String>;

/// The log levels of etcd's test logger, in order; `NONE` silences all
/// output but errors.
pub const LEVEL_NAMES: [&str; 6] = ["DEBUG", "INFO", "WARN", "ERROR", "FATAL", "NONE"];

/// The output of one command. corelog prints no log lines (the relaxed
/// comparison drops them), but the level still matters: at `NONE` nothing
/// but errors is printed.
#[derive(Default)]
pub struct Output {
    buf: String,
    /// Index into `LEVEL_NAMES`.
    pub level: usize,
}

impl Output {
    /// Whether everything but errors is silenced.
    pub fn quiet(&self) -> bool {
        self.level == LEVEL_NAMES.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn take(&mut self) -> String {
        std::mem::take(&mut self.buf)
    }

    /// Appends `s` unless the output is silenced.
    pub fn push(&mut self, s: &str) {
        if !self.quiet() {
            self.buf.push_str(s);
        }
    }

    /// Appends `s` and a newline unless the output is silenced.
    pub fn line(&mut self, s: &str) {
        self.push(s);
        self.push("\n");
    }
}

impl fmt::Write for Output {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s);
        Ok(())
    }
}

/// The storage of one node: a `MemStorage` whose `snapshot()` answers the
/// node's most recent applied state (as etcd's harness does) rather than
/// what `MemStorage` last compacted to.
pub struct EnvStorage {
    pub mem: MemStorage,
    /// Every state the node's "appender" state machine reached, oldest
    /// first: the bootstrap state, then one per applied committed entry.
    /// A snapshot restored from the leader does not enter it (as in etcd's
    /// harness). Never empty.
    pub history: Vec<Snapshot>,
    /// Whether the node restored a snapshot from a leader: from then on its
    /// history no longer describes its state (etcd's harness keeps it all
    /// the same).
    pub restored: bool,
    /// How often `snapshot()` answered from a history that `restored` made
    /// stale (a random run cannot trust what follows).
    pub stale_snapshots: Cell<usize>,
}

impl EnvStorage {
    /// A node's storage over `mem`, its state machine at `history`.
    pub fn new(mem: MemStorage, history: Vec<Snapshot>) -> EnvStorage {
        EnvStorage {
            mem,
            history,
            restored: false,
            stale_snapshots: Cell::new(0),
        }
    }
}

impl Storage for EnvStorage {
    fn initial_state(&self) -> RaftResult<RaftState> {
        self.mem.initial_state()
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> RaftResult<Vec<Entry>> {
        self.mem.entries(low, high, max_size)
    }

    fn term(&self, idx: u64) -> RaftResult<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> RaftResult<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> RaftResult<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self) -> RaftResult<Snapshot> {
        if self.restored {
            self.stale_snapshots.set(self.stale_snapshots.get() + 1);
        }
        Ok(self.history.last().cloned().unwrap_or_default())
    }
}

/// One member of the cluster.
pub struct Node {
    pub raw: RawNode<EnvStorage>,
    /// The config the node was created with (ticks per election/heartbeat).
    pub config: Config,
    /// Asynchronous storage writes: the `MsgStorageAppend`s handed out and
    /// not yet processed by the append thread, oldest first.
    pub append_work: Vec<Message>,
    /// Asynchronous storage writes: the `MsgStorageApply`s not yet processed
    /// by the apply thread, oldest first.
    pub apply_work: Vec<Message>,
}

/// The cluster under test: nodes `1..=nodes.len()` (node id = index + 1) and
/// the messages sent but not yet delivered, in send order.
#[derive(Default)]
pub struct Env {
    pub nodes: Vec<Node>,
    pub messages: Vec<Message>,
    pub out: Output,
}

impl Env {
    pub fn new() -> Env {
        Env::default()
    }

    /// Runs one scenario command and returns what it printed (`ok` when
    /// nothing).
    pub fn handle(&mut self, case: &TestCase) -> String {
        self.out.take();
        if let Err(e) = super::handler::dispatch(self, case) {
            if self.out.quiet() {
                return e;
            }
            // Go's harness writes the error without a newline.
            self.out.buf.push_str(&e);
        }
        if self.out.is_empty() {
            "ok".to_string()
        } else {
            self.out.take()
        }
    }

    /// Runs `f` and indents everything it printed by two spaces.
    pub fn with_indent<T>(&mut self, f: impl FnOnce(&mut Env) -> T) -> T {
        let outer = std::mem::take(&mut self.out.buf);
        let r = f(self);
        let inner = std::mem::replace(&mut self.out.buf, outer);
        for line in inner.lines() {
            self.out.buf.push_str("  ");
            self.out.buf.push_str(line);
            self.out.buf.push('\n');
        }
        r
    }

    /// The node with index `idx` (id `idx + 1`), or an error naming it.
    pub fn node(&mut self, idx: usize) -> Result<&mut Node, String> {
        let n = self.nodes.len();
        self.nodes
            .get_mut(idx)
            .ok_or_else(|| format!("node {} does not exist (there are {n} nodes)", idx + 1))
    }

    /// Prints the node's stable log, one entry per line.
    pub fn raft_log(&mut self, idx: usize) -> CmdResult {
        let store = self.node(idx)?.raw.store();
        let fi = store.first_index().map_err(|e| e.to_string())?;
        let li = store.last_index().map_err(|e| e.to_string())?;
        if li < fi {
            let s = format!("log is empty: first index={fi}, last index={li}");
            self.out.push(&s);
            return Ok(());
        }
        let ents = store
            .entries(fi, li + 1, NO_LIMIT)
            .map_err(|e| e.to_string())?;
        let s = corelog::raft::describe::describe_entries(&ents, None);
        self.out.push(&s);
        Ok(())
    }
}

/// `a` followed by `b`: how the "appender" state machine of etcd's harness
/// grows its state by one applied entry.
pub fn concat(a: &Bytes, b: &Bytes) -> Bytes {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    Bytes::from(v)
}
