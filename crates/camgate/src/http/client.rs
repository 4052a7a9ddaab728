//! Who the client is and how it reached us: its address (the forwarded one only when the
//! connection comes from a `[http] trusted_proxies` address), whether it used TLS (a trusted
//! proxy's `X-Forwarded-Proto` / `Forwarded: proto=`), and the base of the URLs we hand it.
//!
//! The access layer computes a [`Client`] once per request and puts it (and the [`PublicBase`])
//! in the request's extensions; handlers read them, nothing parses proxy headers again.

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::urls::public_authority;
use crate::config::Cidr;

/// Headers by which a proxy names the client. Any of them from an untrusted peer in protected
/// mode means a proxy on this machine may be relaying a remote client.
pub const PROXY_HEADERS: &[&str] = &["forwarded", "x-forwarded-for", "x-real-ip"];

/// The client as the access layer established it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the peer's, or from a trusted proxy the forwarded one. `None`
    /// when unknown (router tests without a peer).
    pub ip: Option<IpAddr>,
    /// The connection came from a trusted proxy.
    pub via_proxy: bool,
    /// The client used https (as a trusted proxy says; we serve plain HTTP ourselves).
    pub https: bool,
}

pub fn is_trusted(trusted: &[Cidr], ip: IpAddr) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// Establishes the client of a request from its peer address and headers.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Client {
    let Some(peer_ip) = peer.filter(|ip| is_trusted(trusted, *ip)) else {
        return Client {
            ip: peer,
            via_proxy: false,
            https: false,
        };
    };
    let forwarded = forwarded_for(headers, trusted)
        .or_else(|| header_ip(headers, "x-real-ip"))
        .unwrap_or(peer_ip);
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .or_else(|| forwarded_param(headers, "proto"));
    Client {
        ip: Some(forwarded),
        via_proxy: true,
        https: proto.as_deref() == Some("https"),
    }
}

fn header_ip(headers: &HeaderMap, name: &str) -> Option<IpAddr> {
    parse_ip(headers.get(name)?.to_str().ok()?)
}

/// `1.2.3.4`, `[::1]:80`, `1.2.3.4:80`, `"[::1]"` (as `Forwarded` quotes it).
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The client in `X-Forwarded-For` (else `Forwarded: for=`): the rightmost address that is
/// not one of our proxies, since everything left of it was written by the client itself.
fn forwarded_for(headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let mut hops: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(v) = v.to_str() else { return None };
        for part in v.split(',') {
            hops.push(parse_ip(part)?);
        }
    }
    if hops.is_empty() {
        for v in headers.get_all("forwarded") {
            let Ok(v) = v.to_str() else { return None };
            for element in v.split(',') {
                for pair in element.split(';') {
                    if let Some((k, val)) = pair.split_once('=')
                        && k.trim().eq_ignore_ascii_case("for")
                    {
                        hops.push(parse_ip(val)?);
                    }
                }
            }
        }
    }
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(trusted, **ip))
        .or(hops.first())
        .copied()
}

fn forwarded_param(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get("forwarded")?.to_str().ok()?;
    // The last element is the one our proxy wrote.
    let element = v.rsplit(',').next()?;
    element.split(';').find_map(|pair| {
        let (k, val) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// `scheme://host[:port]` for every URL we build: `[http] public_url` when set, else the
/// request's Host (checked) and the client's scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicBase(pub String);

impl PublicBase {
    pub fn compute(
        public_url: Option<&str>,
        headers: &HeaderMap,
        listen: SocketAddr,
        client: &Client,
    ) -> PublicBase {
        if let Some(url) = public_url {
            return PublicBase(url.trim_end_matches('/').to_owned());
        }
        let scheme = if client.https { "https" } else { "http" };
        PublicBase(format!("{scheme}://{}", public_authority(headers, listen)))
    }

    /// `http(s)://...` + path.
    pub fn http(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// `ws(s)://...` + path.
    pub fn ws(&self, path: &str) -> String {
        let rest = self
            .0
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| self.0.strip_prefix("http://").map(|r| format!("ws://{r}")))
            .unwrap_or_else(|| self.0.clone());
        format!("{rest}{path}")
    }
}

/// Extracts the [`PublicBase`] the access layer computed (or `http://127.0.0.1` plus the Host
/// when a router runs without it, as unit tests of one area do).
impl<S: Send + Sync> FromRequestParts<S> for PublicBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<PublicBase>()
            .cloned()
            .unwrap_or_else(|| {
                PublicBase::compute(
                    None,
                    &parts.headers,
                    SocketAddr::from(([127, 0, 0, 1], 8080)),
                    &Client {
                        ip: None,
                        via_proxy: false,
                        https: false,
                    },
                )
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_address_only_from_trusted_proxies() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let h = headers(&[
            ("x-forwarded-for", "127.0.0.1, 203.0.113.5"),
            ("x-forwarded-proto", "https"),
        ]);
        // Untrusted peer: headers ignored.
        let c = resolve(ip("192.0.2.1"), &h, &trusted);
        assert_eq!(c.ip, ip("192.0.2.1"));
        assert!(!c.https && !c.via_proxy);
        // Trusted: the rightmost untrusted hop, not the client-written leftmost one.
        let c = resolve(ip("10.1.1.1"), &h, &trusted);
        assert_eq!(c.ip, ip("203.0.113.5"));
        assert!(c.https && c.via_proxy);
        let c = resolve(
            ip("10.1.1.1"),
            &headers(&[("x-real-ip", "198.51.100.7")]),
            &trusted,
        );
        assert_eq!(c.ip, ip("198.51.100.7"));
        let c = resolve(
            ip("10.1.1.1"),
            &headers(&[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")]),
            &trusted,
        );
        assert_eq!(c.ip, ip("2001:db8::1"));
        assert!(c.https);
    }

    #[test]
    fn public_base_prefers_public_url_then_scheme() {
        let h = headers(&[("host", "cams.example.com")]);
        let listen = "127.0.0.1:8080".parse().unwrap();
        let plain = Client {
            ip: None,
            via_proxy: false,
            https: false,
        };
        let tls = Client {
            https: true,
            ..plain
        };
        assert_eq!(
            PublicBase::compute(None, &h, listen, &plain).ws("/x"),
            "ws://cams.example.com/x"
        );
        assert_eq!(
            PublicBase::compute(None, &h, listen, &tls).ws("/x"),
            "wss://cams.example.com/x"
        );
        assert_eq!(
            PublicBase::compute(Some("https://a.example/"), &h, listen, &plain).http("/y"),
            "https://a.example/y"
        );
    }
}
