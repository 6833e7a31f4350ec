//! The server's logs: `tracing` events on stderr, filtered by `RUST_LOG`
//! (tracing-subscriber's `EnvFilter` syntax: `warn`,
//! `corelog=debug,corelog::transport=warn`, ...; `info` when unset), as
//! text lines or, with `--log-format json`, one JSON object per line.

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`).
    Json,
}

/// Installs the process's subscriber; an error if `RUST_LOG` does not
/// parse (naming it) or one is installed already.
pub fn init(format: LogFormat) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG={v:?}: {e}"))?
        }
        _ => EnvFilter::new("info"),
    };
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let r = match format {
        LogFormat::Text => b.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => b.json().with_ansi(false).try_init(),
    };
    r.map_err(|e| format!("installing the log subscriber: {e}"))
}
