//! `[auth]`: the API keys and the viewer-token settings (secrets). Owns their defaults, checks,
//! redaction and redacting `Debug`; the access check that uses them is the HTTP layer's.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::secret;
use super::validate::{Invalid, Section};
use crate::redact::REDACTED;

/// API keys. Empty means protected mode: only loopback clients are answered.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(deserialize_with = "secret::list")]
    pub api_keys: Vec<String>,
    /// The key that signs viewer tokens and dashboard sessions (at least 32 characters).
    /// Empty: a random key kept in `{data_dir}/token.key` (mode 0600), created on first start
    /// and replaced by `camgate token-key rotate`.
    #[serde(deserialize_with = "secret::string")]
    pub token_key: String,
    /// How long a dashboard session (`POST /auth/session`) lasts.
    #[serde(with = "duration")]
    pub session_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            api_keys: Vec::new(),
            token_key: String::new(),
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field(
                "token_key",
                &if self.token_key.is_empty() {
                    ""
                } else {
                    REDACTED
                },
            )
            .field("session_ttl", &self.session_ttl)
            .finish()
    }
}

impl Section for AuthConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for key in &self.api_keys {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_graphic()) {
                return Err(Invalid::new(
                    "auth.api_keys",
                    "each key must be non-empty printable ASCII without spaces",
                ));
            }
        }
        if !self.token_key.is_empty() && self.token_key.len() < 32 {
            return Err(Invalid::new(
                "auth.token_key",
                "must be at least 32 characters (or empty to keep a random key in the data directory)",
            ));
        }
        if self.session_ttl < Duration::from_secs(60)
            || self.session_ttl > Duration::from_secs(7 * 86_400)
        {
            return Err(Invalid::new(
                "auth.session_ttl",
                "must be from 1 minute to 7 days",
            ));
        }
        Ok(())
    }

    fn redact(&mut self) {
        for key in &mut self.api_keys {
            *key = REDACTED.to_owned();
        }
        if !self.token_key.is_empty() {
            REDACTED.clone_into(&mut self.token_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_redact_hide_the_token_key() {
        let mut c = AuthConfig {
            token_key: "k".repeat(40),
            ..AuthConfig::default()
        };
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("kkkk"));
        c.redact();
        assert_eq!(c.token_key, REDACTED);
        let short = AuthConfig {
            token_key: "short".into(),
            ..AuthConfig::default()
        };
        assert!(short.validate().is_err());
    }
}
