//! `[log]`: level (or filter) and format. Owns these keys' defaults and checks; installing the
//! subscriber is `logging.rs`'s.

use serde::{Deserialize, Serialize};

use super::validate::{Invalid, Section};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A level (`info`, `debug`, ...) or a tracing filter (`info,camgate::api=debug`).
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Section for LogConfig {
    fn validate(&self) -> Result<(), Invalid> {
        check_log_level(&self.level).map_err(|e| {
            Invalid::new(
                "log.level",
                format!(
                    "expected trace, debug, info, warn, error, off or a filter such as info,camgate::api=debug ({e})"
                ),
            )
        })
    }
}

/// A level name, or a tracing filter whose directives each name a level (`target=level`).
/// A bare word that is not a level would be read as "everything from target `word`", which
/// is never what someone writing `level = "loud"` meant.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!("`{directive}` is not a level"));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map(drop)
        .map_err(|e| e.to_string())
}
