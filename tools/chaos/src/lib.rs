//! corelog's fault tests. [`run`] starts a cluster of `corelog server`
//! processes behind fault proxies on every peer link ([`cluster`],
//! [`proxy`]), loads it with clients that record a history
//! ([`workload`]) while a seeded nemesis injects faults ([`nemesis`]),
//! heals, and reads every replica back; with full disks among the
//! faults each member's data sits on a tmpfs of its own ([`disk`]). [`check`] judges the history
//! against the replicas' final logs; it and [`history`] share no code
//! with the client library whose behaviour they judge, so a bug there
//! cannot hide itself here.

pub mod check;
pub mod cluster;
pub mod disk;
pub mod history;
pub mod nemesis;
pub mod proxy;
pub mod run;
pub mod workload;
