//! Who may use the API. With no `[auth] api_keys` camgate is in protected mode: loopback
//! clients only, and a 403 telling anyone else how to configure keys. With keys, every request
//! carries one as `Authorization: Bearer KEY` or `X-API-Key: KEY`, compared in constant time.
//!
//! [`check_access`] is a pure function of (keys, peer address, headers) so that every branch is
//! unit-tested, including non-loopback peers that tests over 127.0.0.1 cannot produce.

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppError;

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Protected mode and the peer is not on this machine (or its address is unknown).
    NotLoopback,
    /// Protected mode and the request came through a proxy: the real client may be remote.
    Forwarded,
    /// Keys are configured and the request has none.
    MissingKey,
    /// Keys are configured and the request's key is not one of them.
    WrongKey,
}

/// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (`::ffff:127.0.0.1`).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Decides whether a request may proceed. `peer` is `None` when the connection's address is
/// unknown, which protected mode treats as remote (fail closed).
pub fn check_access(
    api_keys: &[String],
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<(), Denied> {
    if api_keys.is_empty() {
        if !peer.is_some_and(is_loopback) {
            return Err(Denied::NotLoopback);
        }
        // A reverse proxy on this machine makes every client look local.
        if headers.contains_key("forwarded") || headers.contains_key("x-forwarded-for") {
            return Err(Denied::Forwarded);
        }
        return Ok(());
    }
    let presented = presented_key(headers).ok_or(Denied::MissingKey)?;
    if key_matches(api_keys, presented) {
        Ok(())
    } else {
        Err(Denied::WrongKey)
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.as_bytes();
        if value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer ") {
            return Some(value[7..].trim_ascii());
        }
    }
    headers.get("x-api-key").map(|v| v.as_bytes().trim_ascii())
}

/// Compares against every key without stopping early, each comparison in constant time, so
/// the answer's timing says nothing about which key or how much of it matched.
fn key_matches(api_keys: &[String], presented: &[u8]) -> bool {
    api_keys
        .iter()
        .fold(subtle::Choice::from(0), |found, key| {
            found | key.as_bytes().ct_eq(presented)
        })
        .into()
}

impl From<Denied> for AppError {
    fn from(denied: Denied) -> Self {
        const HOW: &str = "set API keys in camgate.toml ([auth] api_keys = [\"a-long-random-key\"]) \
                           or the environment (CAMGATE_AUTH_API_KEYS=key1,key2), restart, and send \
                           `Authorization: Bearer KEY` or `X-API-Key: KEY`";
        match denied {
            Denied::NotLoopback => AppError::new(
                StatusCode::FORBIDDEN,
                "protected_mode",
                format!(
                    "camgate is in protected mode and answers only clients on its own machine; to allow others, {HOW}"
                ),
            ),
            Denied::Forwarded => AppError::new(
                StatusCode::FORBIDDEN,
                "protected_mode",
                format!(
                    "camgate is in protected mode and refuses proxied requests, whose client may be remote; {HOW}"
                ),
            ),
            Denied::MissingKey => AppError {
                www_authenticate: Some("Bearer"),
                ..AppError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "this server requires an API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`",
                )
            },
            Denied::WrongKey => AppError {
                www_authenticate: Some("Bearer"),
                ..AppError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_api_key",
                    "the API key is not valid",
                )
            },
        }
    }
}

/// What the access check needs: the configured API keys (empty = protected mode). Shared by
/// every router through the one layer `api` applies; no output checks access itself.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub api_keys: std::sync::Arc<[String]>,
}

impl Access {
    pub fn new(api_keys: &[String]) -> Access {
        Access {
            api_keys: api_keys.into(),
        }
    }
}

/// Middleware applying [`check_access`] to every route, including the 404 fallback.
pub async fn require_access(State(access): State<Access>, req: Request, next: Next) -> Response {
    // `MockConnectInfo` is how router tests (no socket) say who the peer is.
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .or_else(|| {
            req.extensions()
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|MockConnectInfo(addr)| addr.ip())
        });
    match check_access(&access.api_keys, peer, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(denied) => {
            tracing::info!(?denied, peer = ?peer, "request refused by access control");
            AppError::from(denied).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn protected_mode_admits_loopback_only() {
        let none: &[String] = &[];
        for local in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                check_access(none, ip(local), &headers(&[])),
                Ok(()),
                "{local}"
            );
        }
        for remote in [
            "192.168.1.20",
            "10.0.0.1",
            "0.0.0.0",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "fe80::1",
        ] {
            assert_eq!(
                check_access(none, ip(remote), &headers(&[])),
                Err(Denied::NotLoopback),
                "{remote}"
            );
        }
        assert_eq!(
            check_access(none, None, &headers(&[])),
            Err(Denied::NotLoopback)
        );
        assert_eq!(
            check_access(
                none,
                ip("127.0.0.1"),
                &headers(&[("x-forwarded-for", "203.0.113.9")])
            ),
            Err(Denied::Forwarded)
        );
    }

    #[test]
    fn protected_mode_answer_says_how_to_set_keys() {
        let e = AppError::from(Denied::NotLoopback);
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.contains("[auth] api_keys"), "{}", e.message);
    }

    #[test]
    fn keys_by_either_header_from_anywhere() {
        let keys = vec!["first-key-123".to_owned(), "second-key-456".to_owned()];
        let remote = ip("203.0.113.7");
        assert_eq!(
            check_access(&keys, remote, &headers(&[])),
            Err(Denied::MissingKey)
        );
        assert_eq!(
            check_access(&keys, remote, &headers(&[("authorization", "Bearer nope")])),
            Err(Denied::WrongKey)
        );
        assert_eq!(
            check_access(
                &keys,
                remote,
                &headers(&[("authorization", "Basic Zmlyc3Qta2V5LTEyMw==")])
            ),
            Err(Denied::MissingKey)
        );
        assert_eq!(
            check_access(
                &keys,
                remote,
                &headers(&[("authorization", "Bearer first-key-123")])
            ),
            Ok(())
        );
        assert_eq!(
            check_access(
                &keys,
                remote,
                &headers(&[("authorization", "bearer second-key-456")])
            ),
            Ok(())
        );
        assert_eq!(
            check_access(&keys, remote, &headers(&[("x-api-key", "second-key-456")])),
            Ok(())
        );
        assert_eq!(
            check_access(&keys, remote, &headers(&[("x-api-key", "second-key-45")])),
            Err(Denied::WrongKey)
        );
        assert_eq!(
            check_access(&keys, remote, &headers(&[("x-api-key", "second-key-4567")])),
            Err(Denied::WrongKey)
        );
        // With keys configured, loopback gets no free pass.
        assert_eq!(
            check_access(&keys, ip("127.0.0.1"), &headers(&[])),
            Err(Denied::MissingKey)
        );
    }
}
