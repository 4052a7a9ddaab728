//! Who may use the API: the one access check, applied by `api::merge` to every router.
//!
//! - Every WebSocket upgrade whose `Origin` is neither this server nor in `cors_origins` is
//!   refused (cross-site WebSocket hijacking), whatever the mode.
//! - With no `[auth] api_keys` camgate is in protected mode: loopback clients only, a `Host`
//!   that is a loopback name or address or in `[http] allowed_hosts` (DNS rebinding), no proxy
//!   headers except from `[http] trusted_proxies`; a 403 tells anyone else how to configure keys.
//! - With keys, a request carries one (`Authorization: Bearer KEY` or `X-API-Key`, compared in
//!   constant time), or the dashboard's session cookie, or, on a media URL only
//!   (`media_paths`), a viewer token as `?token=` or `Authorization: Bearer`. A playlist
//!   opened with `?token=` gets the token appended to every URI it lists (`playlist`), so a
//!   `<video src>` keeps working without headers.
//!
//! [`check_access`] is a pure function of (settings, peer address, request head) so that every
//! branch is unit-tested, including non-loopback peers that tests over 127.0.0.1 cannot produce.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppError;
use super::client::{self, Client, PROXY_HEADERS, PublicBase};
use super::media_paths::{grant_opens, media_target};
use super::token::{Grant, TokenError, TokenKeys};
use crate::config::Cidr;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "camgate_session";

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Protected mode and the peer is not on this machine (or its address is unknown).
    NotLoopback,
    /// Protected mode and the request came through an untrusted proxy: the real client may be
    /// remote.
    Forwarded,
    /// Protected mode and the `Host` is not ours (DNS rebinding).
    HostNotAllowed,
    /// A WebSocket upgrade from a page of another origin.
    OriginNotAllowed,
    /// Keys are configured and the request has none.
    MissingKey,
    /// Keys are configured and the request's key is not one of them.
    WrongKey,
    /// An expired, altered or foreign token.
    InvalidToken,
    /// A valid token used where it does not open (another camera, another scope, the API).
    TokenNotAllowed,
    /// A browser marked the request cross-site on a GET that changes state
    /// (`GET /api/stream/start`), which a page of any site could otherwise send.
    CrossSite,
}

/// How a request was let in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Granted {
    /// Protected mode, loopback client.
    Local,
    ApiKey,
    Session,
    /// A viewer token; `from_query` when it came as `?token=` (playlists then carry it on).
    Token {
        token: String,
        from_query: bool,
    },
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

/// What the access check needs. Shared by every router through the one layer `api` applies;
/// no output checks access itself.
#[derive(Clone, Debug)]
pub struct Access {
    /// Empty: protected mode.
    pub api_keys: Arc<[String]>,
    pub tokens: Arc<TokenKeys>,
    /// Origins besides this server's own that may open WebSockets (`[http] cors_origins`).
    pub cors_origins: Arc<[String]>,
    /// Host names accepted in protected mode besides loopback ones.
    pub allowed_hosts: Arc<[String]>,
    pub trusted_proxies: Arc<[Cidr]>,
    /// `[http] public_url`, when set.
    pub public_url: Option<Arc<str>>,
    /// The listener's address: URLs fall back to it when a request has no usable `Host`.
    pub listen: SocketAddr,
}

impl Access {
    /// Keys only, everything else default (an ephemeral token key): for tests of one area.
    pub fn new(api_keys: &[String]) -> Access {
        Access {
            api_keys: api_keys.into(),
            tokens: Arc::new(TokenKeys::ephemeral()),
            cors_origins: Arc::new([]),
            allowed_hosts: Arc::new([]),
            trusted_proxies: Arc::new([]),
            public_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// The request head the check reads.
pub struct Head<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

/// Decides whether a request may proceed. `client` is the peer (or, from a trusted proxy, the
/// forwarded client); an unknown address is treated as remote (fail closed).
pub fn check_access(access: &Access, client: &Client, head: &Head<'_>) -> Result<Granted, Denied> {
    check_origin(access, head.headers)?;
    check_fetch_site(head)?;
    if access.api_keys.is_empty() {
        if !client.ip.is_some_and(is_loopback) {
            return Err(Denied::NotLoopback);
        }
        // A reverse proxy on this machine makes every client look local.
        if !client.via_proxy && PROXY_HEADERS.iter().any(|h| head.headers.contains_key(*h)) {
            return Err(Denied::Forwarded);
        }
        if !host_allowed(&access.allowed_hosts, head) {
            return Err(Denied::HostNotAllowed);
        }
        return Ok(Granted::Local);
    }
    let bearer = bearer(head.headers);
    let query_token = query_token(head.uri);
    if let Some(presented) = bearer.or_else(|| {
        head.headers
            .get("x-api-key")
            .map(|v| v.as_bytes().trim_ascii())
    }) && key_matches(&access.api_keys, presented)
    {
        return Ok(Granted::ApiKey);
    }
    if let Some(cookie) = session_cookie(head.headers)
        && let Ok(claims) = access.tokens.verify(cookie)
        && claims.grant == Grant::Session
    {
        return Ok(Granted::Session);
    }
    let (token, from_query) = match (query_token, bearer) {
        (Some(t), _) => (t.to_owned(), true),
        (None, Some(b)) if b.starts_with(b"cgt1.") => {
            (String::from_utf8_lossy(b).into_owned(), false)
        }
        (None, Some(_)) => return Err(Denied::WrongKey),
        (None, None) if head.headers.contains_key("x-api-key") => return Err(Denied::WrongKey),
        (None, None) => return Err(Denied::MissingKey),
    };
    let claims = access.tokens.verify(&token).map_err(|e| match e {
        TokenError::Invalid | TokenError::Expired => Denied::InvalidToken,
    })?;
    if !matches!(claims.grant, Grant::Viewer { .. }) {
        return Err(Denied::TokenNotAllowed);
    }
    match media_target(head.method, head.uri.path()) {
        Some((target, scope)) if grant_opens(&claims.grant, target, scope) => {
            Ok(Granted::Token { token, from_query })
        }
        _ => Err(Denied::TokenNotAllowed),
    }
}

/// Browsers send `Origin` on every WebSocket handshake and scripts cannot forge it; programs
/// that send none are not browsers and pass.
fn check_origin(access: &Access, headers: &HeaderMap) -> Result<(), Denied> {
    let upgrade = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if !upgrade {
        return Ok(());
    }
    let origin = origin.to_str().map_err(|_| Denied::OriginNotAllowed)?;
    if access
        .cors_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or(Denied::OriginNotAllowed)?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or(Denied::OriginNotAllowed)?;
    if authority.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(Denied::OriginNotAllowed)
    }
}

/// GETs that change state, which simple cross-site requests (an `<img>`, a link) can send.
const STATE_CHANGING_GETS: &[&str] = &["/api/stream/start"];

/// Browsers mark every request with `Sec-Fetch-Site` and pages cannot forge it; programs
/// (curl, a Laravel backend) send none and pass.
fn check_fetch_site(head: &Head<'_>) -> Result<(), Denied> {
    let cross_site = head
        .headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site && STATE_CHANGING_GETS.contains(&head.uri.path().trim_end_matches('/')) {
        return Err(Denied::CrossSite);
    }
    Ok(())
}

/// The host part of `Host` (or of the URI's authority, as HTTP/2 carries it), without port.
fn request_host<'a>(head: &'a Head<'_>) -> Option<&'a str> {
    let raw = head
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| head.uri.authority().map(|a| a.as_str()))?;
    Some(if let Some(rest) = raw.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    })
}

/// A request without any Host (HTTP/1.0, router tests) cannot come from a rebinding page:
/// browsers always send one.
fn host_allowed(allowed: &[String], head: &Head<'_>) -> bool {
    let Some(host) = request_host(head) else {
        return !head.headers.contains_key(header::HOST);
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(is_loopback)
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(&host))
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    (value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer "))
        .then(|| value[7..].trim_ascii())
}

fn query_token(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
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
        let unauthorized = |code, message: &str| AppError {
            www_authenticate: Some("Bearer"),
            ..AppError::new(StatusCode::UNAUTHORIZED, code, message)
        };
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
                    "camgate is in protected mode and refuses proxied requests, whose client may be remote; list the proxy in [http] trusted_proxies, or {HOW}"
                ),
            ),
            Denied::HostNotAllowed => AppError::new(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                "in protected mode camgate answers only requests for localhost or a loopback address; add the name to [http] allowed_hosts to serve it",
            ),
            Denied::OriginNotAllowed => AppError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "WebSocket connections are accepted from this server's own pages and the origins in [http] cors_origins only",
            ),
            Denied::MissingKey => unauthorized(
                "missing_api_key",
                "this server requires an API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`, or a viewer token as ?token=",
            ),
            Denied::WrongKey => unauthorized("invalid_api_key", "the API key is not valid"),
            Denied::InvalidToken => unauthorized(
                "invalid_token",
                "the token is expired, altered or was signed with a key since rotated; ask for a new one (POST /cameras/{id}/token)",
            ),
            Denied::CrossSite => AppError::new(
                StatusCode::FORBIDDEN,
                "cross_site_request",
                "this request changes state and a browser marked it cross-site (Sec-Fetch-Site); call it from your backend or from this server's own pages",
            ),
            Denied::TokenNotAllowed => AppError::new(
                StatusCode::FORBIDDEN,
                "token_not_allowed",
                "this token opens only its own camera's media URLs in its scope; the API needs an API key",
            ),
        }
    }
}

/// Middleware applying [`check_access`] to every route, including the 404 fallback. It puts
/// the [`Client`] and the [`PublicBase`] into the request for handlers to read.
pub async fn require_access(
    State(access): State<Access>,
    mut req: Request,
    next: Next,
) -> Response {
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
    let client = client::resolve(peer, req.headers(), &access.trusted_proxies);
    let head = Head {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
    };
    match check_access(&access, &client, &head) {
        Ok(granted) => {
            let base = PublicBase::compute(
                access.public_url.as_deref(),
                req.headers(),
                access.listen,
                &client,
            );
            req.extensions_mut().insert(client);
            req.extensions_mut().insert(base);
            let response = next.run(req).await;
            match granted {
                Granted::Token {
                    token,
                    from_query: true,
                } => super::playlist::carry_token(response, &token).await,
                _ => response,
            }
        }
        Err(denied) => {
            // Never the token or key itself: only why and from where.
            tracing::info!(?denied, peer = ?peer, client = ?client.ip, "request refused by access control");
            AppError::from(denied).into_response()
        }
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
