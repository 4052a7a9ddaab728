//! [`ConfigError`]: every way loading the configuration fails, each naming the key (or variable)
//! and the source of its value. Messages never quote a secret value: the loader and the
//! sections' checks see to that; this file only shapes the text.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {} is not valid TOML: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("unknown configuration key `{key}` in {origin}; known keys: {known}")]
    UnknownKey {
        key: String,
        origin: String,
        known: String,
    },
    #[error("invalid value for `{key}` (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

impl ConfigError {
    /// The key (or variable) the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}
