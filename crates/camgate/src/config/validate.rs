//! Checking a deserialized [`Config`]: the contract every `[section]` implements ([`Section`]),
//! the checks of the top-level keys, and turning a failed check into a [`ConfigError`] that
//! names the key and the source its value came from. The checks of a section's own keys live in
//! that section's file; this file must not grow any of them. A check that spans sections (none
//! yet) belongs in [`check`].

use std::collections::BTreeMap;

use super::{Config, ConfigError};

/// A value that failed a check: its full key (`section.key`, or `section.name` for an entry
/// of a named-table section) and what is wrong with it. The message must not quote a secret.
#[derive(Debug)]
pub(super) struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub(super) fn new(key: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// What each `[section]` struct of [`Config`] provides besides its fields and `Default`.
pub(super) trait Section {
    /// Checks the section's values on their own; the first failure is returned.
    fn validate(&self) -> Result<(), Invalid>;

    /// Replaces every secret value with `***`, for `camgate config`. Most sections hold none.
    /// A secret field also needs `#[serde(deserialize_with = "secret::...")]` so that a value
    /// of the wrong type is not quoted in the error (see `secret.rs`).
    fn redact(&mut self) {}
}

/// Every check of the whole configuration, in order: top-level keys, then each section.
pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    if config.data_dir.as_os_str().is_empty() {
        return Err(Invalid::new("data_dir", "must not be empty"));
    }
    for section in config.sections() {
        section.validate()?;
    }
    Ok(())
}

/// [`check`], with the failure attributed to the source of the key's value.
pub(super) fn validate(
    config: &Config,
    origins: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    check(config).map_err(|Invalid { key, message }| ConfigError::Invalid {
        origin: origins
            .get(&key)
            .cloned()
            .unwrap_or_else(|| "defaults".into()),
        key,
        message,
    })
}
