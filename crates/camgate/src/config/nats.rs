//! `[nats]`: where events are published and with which credentials (secrets). Owns these keys'
//! defaults, checks, redaction and redacting `Debug`; the publisher is `crate::events::nats`'.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validate::{Invalid, Section};
use super::{duration, secret};
use crate::redact::REDACTED;

/// Publishing events to NATS. An empty `url` turns it off.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:4222` (several servers separated by commas); empty = no NATS.
    /// Secret: it may hold a password (`nats://user:pass@host`).
    #[serde(deserialize_with = "secret::string")]
    pub url: String,
    /// Subjects are `{subject_prefix}.camera.status`, ...
    pub subject_prefix: String,
    /// A NATS token (secret; empty = none).
    #[serde(deserialize_with = "secret::string")]
    pub token: String,
    /// A NATS `.creds` file (JWT + NKey seed); empty = none.
    pub credentials_file: String,
    /// A `{subject_prefix}.camera.frame` message per live camera this often (API.md); `0` =
    /// off. While on, every camera is kept connected (a demand hold): analytics needs frames
    /// whether or not anyone watches.
    #[serde(with = "duration")]
    pub frame_interval: Duration,
    /// How long a frame message's `url` answers with its frame (then `410`).
    #[serde(with = "duration")]
    pub frame_keep: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: String::new(),
            subject_prefix: "camgate".to_owned(),
            token: String::new(),
            credentials_file: String::new(),
            frame_interval: Duration::ZERO,
            frame_keep: Duration::from_secs(30),
        }
    }
}

impl NatsConfig {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The same settings with the token and any password in the URL replaced by `***`.
    pub fn redacted(&self) -> NatsConfig {
        NatsConfig {
            url: self
                .url
                .split(',')
                .map(crate::redact::redact_url)
                .collect::<Vec<_>>()
                .join(","),
            subject_prefix: self.subject_prefix.clone(),
            token: if self.token.is_empty() {
                String::new()
            } else {
                REDACTED.to_owned()
            },
            credentials_file: self.credentials_file.clone(),
            frame_interval: self.frame_interval,
            frame_keep: self.frame_keep,
        }
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.redacted();
        f.debug_struct("NatsConfig")
            .field("url", &shown.url)
            .field("subject_prefix", &shown.subject_prefix)
            .field("token", &shown.token)
            .field("credentials_file", &shown.credentials_file)
            .field("frame_interval", &shown.frame_interval)
            .field("frame_keep", &shown.frame_keep)
            .finish()
    }
}

impl Section for NatsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.enabled() {
            for server in self.url.split(',') {
                let server = server.trim();
                let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                    .iter()
                    .any(|s| server.starts_with(s))
                    || !server.contains("://");
                if server.is_empty() || !scheme_ok || server.contains(char::is_whitespace) {
                    return Err(Invalid::new(
                        "nats.url",
                        format!(
                            "`{}` is not a NATS server address; write nats://host:4222 (several separated by commas)",
                            crate::redact::redact_url(server)
                        ),
                    ));
                }
            }
        }
        let prefix_ok = !self.subject_prefix.is_empty()
            && self.subject_prefix.split('.').all(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if !prefix_ok {
            return Err(Invalid::new(
                "nats.subject_prefix",
                "must be dot-separated tokens of letters, digits, '_' and '-' (e.g. camgate or site1.camgate)",
            ));
        }
        if !self.token.is_empty() && !self.credentials_file.is_empty() {
            return Err(Invalid::new(
                "nats.token",
                "set either nats.token or nats.credentials_file, not both",
            ));
        }
        if !self.frame_interval.is_zero() && self.frame_interval < Duration::from_millis(40) {
            return Err(Invalid::new(
                "nats.frame_interval",
                "must be 0 (off) or at least 40ms (25 messages a second per camera)",
            ));
        }
        if self.frame_keep.is_zero() || self.frame_keep > Duration::from_secs(3600) {
            return Err(Invalid::new(
                "nats.frame_keep",
                "must be between 1s and 1h (frames are kept in memory)",
            ));
        }
        Ok(())
    }

    fn redact(&mut self) {
        *self = self.redacted();
    }
}
