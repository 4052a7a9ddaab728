//! `[http]`: the one listener and CORS. Owns these keys' defaults and checks; nothing else.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::validate::{Invalid, Section};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The one listener for the API, HLS, WHEP, WebSockets and the web UI.
    pub listen: SocketAddr,
    /// Exact origins allowed by CORS; empty means no CORS headers. Never `*`.
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
        }
    }
}

impl Section for HttpConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for origin in &self.cors_origins {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && url::Url::parse(origin).is_ok_and(|u| u.path() == "/" && !origin.ends_with('/'));
            if !ok {
                return Err(Invalid::new(
                    "http.cors_origins",
                    format!(
                        "`{origin}` is not an exact origin such as https://example.com (no wildcard, no path)"
                    ),
                ));
            }
        }
        Ok(())
    }
}
