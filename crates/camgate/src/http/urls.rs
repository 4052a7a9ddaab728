//! Absolute URLs handed back to clients (provision answers), built from the request's `Host`
//! so they work from wherever the client reached us. A `Host` that is not a plain
//! `host[:port]` is ignored in favour of the listen address, so a hostile header cannot put
//! arbitrary text into the URLs we return.

use std::net::SocketAddr;

use axum::http::{HeaderMap, header};

/// The `host[:port]` to put in URLs: the request's `Host` if it is well-formed, else the
/// address the server listens on (`127.0.0.1` standing in for an unspecified address).
pub fn public_authority(headers: &HeaderMap, listen: SocketAddr) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| is_valid_authority(host))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut addr = listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            addr.to_string()
        })
}

/// `name[:port]`, `1.2.3.4[:port]` or `[v6][:port]`; nothing else.
fn is_valid_authority(host: &str) -> bool {
    if host.is_empty() || host.len() > 255 {
        return false;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_host(host: &str) -> String {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        public_authority(&h, "0.0.0.0:8080".parse().unwrap())
    }

    #[test]
    fn keeps_good_hosts_and_replaces_bad_ones() {
        for good in [
            "example.com",
            "cam-gw.local:8080",
            "10.0.0.5:80",
            "[::1]:8080",
            "[fe80::1]",
        ] {
            assert_eq!(with_host(good), good);
        }
        for bad in [
            "evil.com/path",
            "a@b",
            "x:99999",
            "x:",
            "[::1",
            "a b",
            "<script>",
            ":80",
            "[zz]:1",
        ] {
            assert_eq!(with_host(bad), "127.0.0.1:8080", "{bad}");
        }
        assert_eq!(
            public_authority(&HeaderMap::new(), "192.168.1.2:9000".parse().unwrap()),
            "192.168.1.2:9000"
        );
    }
}
