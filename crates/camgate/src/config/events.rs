//! `[events]`: how often the event feeds send (dashboard stats, periodic status, WebSocket
//! pings). Owns these keys' defaults and checks; the feeds themselves are `crate::events`'.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::validate::{Invalid, Section};

/// The event feeds: WebSocket endpoints and the periodic status (see docs/events.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// `WS /ws/dashboard` sends a `stats` message this often.
    #[serde(with = "duration")]
    pub dashboard_interval: Duration,
    /// Every camera's full `status` goes to the bus (and so to NATS and event sockets) this
    /// often, besides every state change.
    #[serde(with = "duration")]
    pub status_interval: Duration,
    /// Event sockets get a WebSocket ping this often; a client that answers nothing for two
    /// intervals is taken for dead and closed.
    #[serde(with = "duration")]
    pub ws_ping_interval: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            dashboard_interval: Duration::from_secs(2),
            status_interval: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(15),
        }
    }
}

impl Section for EventsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for (key, d) in [
            ("events.dashboard_interval", self.dashboard_interval),
            ("events.status_interval", self.status_interval),
            ("events.ws_ping_interval", self.ws_ping_interval),
        ] {
            // A shorter period would spin a timer for nothing a client can follow.
            if d < Duration::from_millis(10) {
                return Err(Invalid::new(key, "must be at least 10ms"));
            }
        }
        Ok(())
    }
}
