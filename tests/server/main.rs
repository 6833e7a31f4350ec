//! `corelog server` processes on 127.0.0.1 (and, where a fault must be
//! injected or a limit set, a `Server` in process), driven through the
//! Rust client, the command line and raw sockets: `async_client` (the
//! async client from tokio), `replication`
//! (redirects, a SIGKILLed leader, SIGTERM and restart, membership,
//! exactly-once), `snapshots` (a SIGKILLed follower catching up by
//! snapshot after the others compacted), `retention` (size and age limits
//! truncating every replica and freeing WAL segments), `client_port` (bad input, typed refusals, limits,
//! large reads, metrics, a failed WAL), `tails`, `cli` (configuration,
//! the command-line client, README's bench command), `bench` (the load
//! generator's reports, files, open loop and refusals), `faults` (kills and pauses while
//! clients append, then a checker). `support` starts and stops the
//! processes. `cargo test --release --test server`.
//!
//! Every wait is bounded; every child process is killed when its handle
//! drops (a failing test leaves none behind). The tests take a lock each:
//! three servers per test on a 2-CPU machine are enough.

mod async_client;
mod bench;
mod cli;
mod client_port;
mod conns;
mod faults;
mod full_disk;
mod producers;
mod replication;
mod retention;
mod snapshots;
mod support;
mod tails;
