//! `[webrtc]` settings: where the one UDP socket listens, which addresses are announced to
//! browsers, and the STUN/TURN servers handed to clients. Owns parsing and defaults only; the
//! socket and sessions are in `driver.rs`/`session.rs`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::duration;
use super::validate::{Invalid, Section};

/// The default UDP port, next to the HTTP listener's address.
pub const DEFAULT_PORT: u16 = 8189;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebrtcConfig {
    /// The UDP socket every WebRTC peer talks to. Unset: the HTTP listener's IP with port
    /// 8189 (a loopback-only gateway stays loopback-only), or an ephemeral port when the
    /// HTTP listener itself uses port 0 (tests, several gateways on one host). Written `""`
    /// when unset, so `camgate config` shows it and `CAMGATE_WEBRTC_LISTEN` can set it.
    #[serde(with = "optional_addr")]
    pub listen: Option<SocketAddr>,
    /// Addresses announced as host candidates instead of the listen address, for a server
    /// behind NAT (its public address, with the NAT forwarding the same UDP port).
    pub public_ips: Vec<IpAddr>,
    /// STUN/TURN servers for clients, sent in `Link` headers of the WHEP answer. The server
    /// itself is ICE-lite and uses none of them.
    pub ice_servers: Vec<IceServer>,
    /// A session whose peer has not connected (ICE and DTLS) this long after the answer ends.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// A session behind the camera by more than this skips to the next keyframe instead of
    /// delivering late video.
    #[serde(with = "duration")]
    pub max_lag: Duration,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            listen: None,
            public_ips: Vec::new(),
            ice_servers: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            max_lag: Duration::from_millis(500),
        }
    }
}

impl Section for WebrtcConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.connect_timeout < Duration::from_secs(1) {
            return Err(Invalid::new(
                "webrtc.connect_timeout",
                "must be at least 1s",
            ));
        }
        for s in &self.ice_servers {
            if !(s.url.starts_with("stun:")
                || s.url.starts_with("turn:")
                || s.url.starts_with("turns:"))
            {
                return Err(Invalid::new(
                    "webrtc.ice_servers",
                    "each url must start with stun:, turn: or turns:",
                ));
            }
        }
        Ok(())
    }

    fn redact(&mut self) {
        for s in &mut self.ice_servers {
            if let Some(c) = &mut s.credential {
                c.0 = crate::redact::REDACTED.to_owned();
            }
        }
    }
}

impl WebrtcConfig {
    /// The socket address to bind, given the HTTP listener's bound address.
    pub fn listen_addr(&self, http: SocketAddr) -> SocketAddr {
        self.listen.unwrap_or_else(|| {
            let port = if http.port() == 0 { 0 } else { DEFAULT_PORT };
            SocketAddr::new(http.ip(), port)
        })
    }
}

/// `Option<SocketAddr>` as a string, `""` for none.
mod optional_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(v: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.map(|a| a.to_string()).unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim().parse().map(Some).map_err(|_| {
            de::Error::custom(format!(
                "`{text}` is not an address with a port, e.g. \"0.0.0.0:8189\""
            ))
        })
    }
}

/// One STUN or TURN server as WHEP's `Link: <url>; rel="ice-server"` carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp` or `turns:...`.
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub credential: Option<Secret>,
}

/// A TURN credential. It goes to WHEP clients (that is its purpose) but never into a log or
/// `camgate config`: Debug and Serialize print `***`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl IceServer {
    /// The `Link` header value (draft-ietf-wish-whep §4.4, RFC 8288 quoting).
    pub fn link_header(&self) -> Option<String> {
        let ok = |s: &str| !s.chars().any(|c| c.is_control() || c == '"' || c == '>');
        if !ok(&self.url) {
            return None;
        }
        let mut v = format!("<{}>; rel=\"ice-server\"", self.url);
        if let (Some(user), Some(Secret(cred))) = (&self.username, &self.credential) {
            if !ok(user) || !ok(cred) {
                return None;
            }
            v.push_str(&format!(
                "; username=\"{user}\"; credential=\"{cred}\"; credential-type=\"password\""
            ));
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_http_listener() {
        let c = WebrtcConfig::default();
        assert_eq!(
            c.listen_addr("127.0.0.1:8080".parse().unwrap()),
            "127.0.0.1:8189".parse().unwrap()
        );
        assert_eq!(c.listen_addr("127.0.0.1:0".parse().unwrap()).port(), 0);
        let c: WebrtcConfig = toml::from_str("listen = \"0.0.0.0:9000\"").unwrap();
        assert_eq!(
            c.listen_addr("127.0.0.1:8080".parse().unwrap()).port(),
            9000
        );
        assert!(toml::from_str::<WebrtcConfig>("lisen = 1").is_err());
        assert!(toml::from_str::<WebrtcConfig>("listen = \"8189\"").is_err());
        let shown = toml::to_string(&WebrtcConfig::default()).unwrap();
        assert!(shown.contains("listen = \"\""), "{shown}");
        let back: WebrtcConfig = toml::from_str(&shown).unwrap();
        assert_eq!(back, WebrtcConfig::default());
    }

    #[test]
    fn turn_credential_is_in_the_link_but_not_in_logs() {
        let c: WebrtcConfig = toml::from_str(
            "[[ice_servers]]\nurl = \"turn:turn.example:3478\"\nusername = \"u\"\ncredential = \"pw9\"\n",
        )
        .unwrap();
        let s = &c.ice_servers[0];
        assert!(s.link_header().unwrap().contains("credential=\"pw9\""));
        assert!(!format!("{c:?}").contains("pw9"));
        assert!(!toml::to_string(&c).unwrap().contains("pw9"));
        let bad = IceServer {
            url: "stun:x>\"".into(),
            username: None,
            credential: None,
        };
        assert_eq!(bad.link_header(), None);
    }
}
