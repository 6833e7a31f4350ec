//! corelog's fault tests. This crate judges histories of appends and reads
//! against the replicas' final logs ([`check`]); its checker shares no
//! code with the client library whose behaviour it judges, so a bug there
//! cannot hide itself here. [`proxy`] is the fault proxy the harness puts
//! on every peer link.

pub mod check;
pub mod history;
pub mod proxy;
