//! The corelog server: what serves clients on top of the runtime. A log
//! group's state machine (`log_apply`), and, built on it, the server's
//! configuration, its client listeners and their operation handlers.

pub mod answer_wire;
pub mod config;
pub mod conn;
pub mod listener;
pub mod log_apply;
pub mod metrics;
pub mod ops;
pub mod retention;
pub mod run;
pub mod signal;
pub mod tail;
pub mod wal_check;

pub use config::{ConnLimits, FileConfig, ServerConfig, ServerConfigError};
pub use listener::{ServerStats, ShardServer};
pub use log_apply::LogApply;
pub use retention::Retention;
pub use run::{Server, ServerError};
