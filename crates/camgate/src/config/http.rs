//! `[http]`: the one listener, CORS, the hosts and proxies we believe,
//! and the public URL. Owns these keys' defaults and checks; nothing else.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::validate::{Invalid, Section};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The one listener for the API, HLS, WHEP, WebSockets and the web UI.
    pub listen: SocketAddr,
    /// Exact origins allowed by CORS (and to open WebSockets); empty means no CORS headers.
    /// Never `*`.
    pub cors_origins: Vec<String>,
    /// Host names (without port) accepted in protected mode besides loopback names and
    /// addresses; anything else gets `403 host_not_allowed` (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Addresses or CIDRs of reverse proxies whose `X-Forwarded-For`, `X-Real-IP`,
    /// `Forwarded` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<String>,
    /// The base of every URL camgate builds (`https://cams.example.com`); empty: from the
    /// request's Host and, from a trusted proxy, its forwarded scheme.
    pub public_url: String,
    /// A connection must finish each request's headers this long after it opens or after
    /// the first byte of the request, else it is closed (slow-header clients hold sockets).
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this long.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Connections open at once from one client address (the forwarded one from
    /// `trusted_proxies`, else the peer, loopback included); 0 = no cap.
    pub max_connections_per_client: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            public_url: String::new(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections_per_client: 256,
        }
    }
}

/// An address or CIDR (`10.0.0.0/8`, `::1`), as `trusted_proxies` holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub net: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl HttpConfig {
    /// The trusted proxies, parsed (validation has refused any that do not parse).
    pub fn trusted_proxy_nets(&self) -> Vec<Cidr> {
        self.trusted_proxies
            .iter()
            .filter_map(|s| Cidr::parse(s))
            .collect()
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
        for host in &self.allowed_hosts {
            let ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
            if !ok {
                return Err(Invalid::new(
                    "http.allowed_hosts",
                    format!("`{host}` is not a host name or address such as cams.example.com"),
                ));
            }
        }
        for proxy in &self.trusted_proxies {
            if Cidr::parse(proxy).is_none() {
                return Err(Invalid::new(
                    "http.trusted_proxies",
                    format!("`{proxy}` is not an address or CIDR such as 10.0.0.0/8"),
                ));
            }
        }
        for (key, value) in [
            ("http.header_read_timeout", self.header_read_timeout),
            ("http.idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(Invalid::new(key, "must be more than 0, e.g. \"10s\""));
            }
        }
        if !self.public_url.is_empty() {
            let ok = (self.public_url.starts_with("http://")
                || self.public_url.starts_with("https://"))
                && url::Url::parse(&self.public_url).is_ok_and(|u| {
                    u.host_str().is_some()
                        && u.query().is_none()
                        && u.fragment().is_none()
                        && u.username().is_empty()
                });
            if !ok {
                return Err(Invalid::new(
                    "http.public_url",
                    "must be an http:// or https:// URL such as https://cams.example.com",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let one = Cidr::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "x", "1.2.3.4/", "::/129", ""] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn checks_new_keys() {
        let bad = [
            HttpConfig {
                trusted_proxies: vec!["nope".into()],
                ..HttpConfig::default()
            },
            HttpConfig {
                allowed_hosts: vec!["a b".into()],
                ..HttpConfig::default()
            },
            HttpConfig {
                public_url: "ftp://x".into(),
                ..HttpConfig::default()
            },
            HttpConfig {
                header_read_timeout: Duration::ZERO,
                ..HttpConfig::default()
            },
            HttpConfig {
                idle_timeout: Duration::ZERO,
                ..HttpConfig::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
