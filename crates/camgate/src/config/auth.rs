//! `[auth]`: the API keys (secrets). Owns their default, check, redaction and redacting
//! `Debug`; the access check that uses them is the HTTP layer's.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::secret;
use super::validate::{Invalid, Section};
use crate::redact::REDACTED;

/// API keys. Empty means protected mode: only loopback clients are answered.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(deserialize_with = "secret::list")]
    pub api_keys: Vec<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
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
        Ok(())
    }

    fn redact(&mut self) {
        for key in &mut self.api_keys {
            *key = REDACTED.to_owned();
        }
    }
}
