//! The corelog server: what serves clients on top of the runtime. A log
//! group's state machine (`log_apply`), and, built on it, the server's
//! configuration, its client listeners and their operation handlers.

pub mod config;
pub mod log_apply;

pub use config::{ConnLimits, FileConfig, ServerConfig, ServerConfigError};
pub use log_apply::LogApply;
