//! `[rtsp]`: the RTSP restream's listener and its per-client limits. Owns these keys'
//! defaults and checks; the restream output (`restream/`) reads them, this file knows
//! nothing of it.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::size::ByteSize;
use super::validate::{Invalid, Section};

/// The default listen address: this machine only, the usual RTSP alternate port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8554";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtspConfig {
    /// Where RTSP clients connect (`rtsp://{listen}/{path}`). `""` or `"off"`: no restream.
    /// Left at the default while the HTTP listener uses port 0 (tests, several gateways on
    /// one host), an ephemeral port on 127.0.0.1, as `[webrtc]` does.
    pub listen: String,
    /// A session with no request and no RTCP from its client for this long is torn down.
    #[serde(with = "duration")]
    pub session_timeout: Duration,
    /// A session behind the camera by more than this skips to the next keyframe.
    #[serde(with = "duration")]
    pub max_lag: Duration,
    /// A TCP client with more than this not yet read skips to the next keyframe, so a slow
    /// client costs at most about this much memory. Must not be zero.
    pub max_backlog: ByteSize,
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            listen: DEFAULT_LISTEN.to_owned(),
            session_timeout: Duration::from_secs(60),
            max_lag: Duration::from_secs(3),
            max_backlog: ByteSize::mib(8),
        }
    }
}

impl RtspConfig {
    /// The address to bind given the HTTP listener's configured address, or `None` when the
    /// restream is off.
    pub fn listen_addr(&self, http: SocketAddr) -> Option<SocketAddr> {
        let l = self.listen.trim();
        if l.is_empty() || l.eq_ignore_ascii_case("off") {
            return None;
        }
        if l == DEFAULT_LISTEN && http.port() == 0 {
            return Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        l.parse().ok()
    }
}

impl Section for RtspConfig {
    fn validate(&self) -> Result<(), Invalid> {
        let l = self.listen.trim();
        if !(l.is_empty() || l.eq_ignore_ascii_case("off")) && l.parse::<SocketAddr>().is_err() {
            return Err(Invalid::new(
                "rtsp.listen",
                "must be an address with a port (\"127.0.0.1:8554\", \"0.0.0.0:8554\"), or \"off\"",
            ));
        }
        if self.session_timeout < Duration::from_secs(5) {
            return Err(Invalid::new("rtsp.session_timeout", "must be at least 5s"));
        }
        if self.max_lag < Duration::from_millis(100) {
            return Err(Invalid::new("rtsp.max_lag", "must be at least 100ms"));
        }
        if self.max_backlog.0 < 64 << 10 {
            return Err(Invalid::new(
                "rtsp.max_backlog",
                "must be at least 64KiB (a keyframe must fit)",
            ));
        }
        Ok(())
    }

    fn redact(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_an_address_or_off() {
        let mut c = RtspConfig::default();
        let http: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(c.listen_addr(http), Some("127.0.0.1:8554".parse().unwrap()));
        let ephemeral = "127.0.0.1:0".parse().unwrap();
        assert_eq!(c.listen_addr(ephemeral), Some(ephemeral));
        assert!(c.validate().is_ok());
        c.listen = "0.0.0.0:554".into();
        assert_eq!(
            c.listen_addr(ephemeral),
            Some("0.0.0.0:554".parse().unwrap())
        );
        for off in ["", "off", " OFF "] {
            c.listen = off.into();
            assert_eq!(c.listen_addr(http), None);
            assert!(c.validate().is_ok());
        }
        c.listen = "8554".into();
        assert_eq!(c.validate().unwrap_err().key, "rtsp.listen");
        c.listen = "0.0.0.0:0".into();
        c.max_backlog = ByteSize(10);
        assert_eq!(c.validate().unwrap_err().key, "rtsp.max_backlog");
    }
}
