//! In-process cluster tests over real glommio executors: one member's
//! shards, groups, WAL and restart (`one_member`), and members talking to
//! each other (`three_members`). `cargo test --release --test cluster`.

mod loopback;
mod one_member;
mod snapshots;
mod support;
mod three_members;
