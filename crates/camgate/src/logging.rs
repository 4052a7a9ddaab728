//! Log output: `tracing` events to stderr as text or JSON lines, filtered by `[log] level`
//! (or `LOG_LEVEL` / `CAMGATE_LOG_LEVEL` / `--log-level`). stdout stays free for command
//! output such as `camgate config`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Fails if the level is not a valid filter or a subscriber is
/// already installed.
pub fn init(config: &LogConfig) -> Result<(), String> {
    let filter = EnvFilter::builder()
        .parse(&config.level)
        .map_err(|e| format!("log.level `{}` is not a valid filter: {e}", config.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let result = match config.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}
