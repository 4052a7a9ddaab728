//! Arbitrary bytes as the head of an HTTP request to camgate: the access check (protected
//! mode and with API keys), the client address from forwarded headers, the media URL a viewer
//! token may open, the `Host` that goes into URLs we build, and the token carried into a
//! playlist's URIs. Nothing panics, and:
//! - a media URL names one plain path segment (no `/`, `%`, `.` or `..`, not empty);
//! - a viewer token of camera `cam1` (stream `cam_1`) in the query opens only that camera's
//!   media URLs (its stream, its profiles `cam_1~x`, its snapshots), never the control API;
//! - the authority put in URLs is `host[:port]` with none of `/ ? # @ \` or whitespace;
//! - every URI line of a playlist carries `token=` afterwards, and no line is added or lost.
//!
//! Input: byte 0 picks the method and the peer; then text: line 1 is the request target,
//! each further line `name: value` is a header (at most 32).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use camgate::config::Cidr;
use camgate::http::access::{Access, Granted, Head, check_access};
use camgate::http::client::resolve;
use camgate::http::media_paths::{Target, media_target};
use camgate::http::playlist::add_token;
use camgate::http::token::{Grant, Scope, TokenKeys};
use camgate::http::urls::public_authority;

const API_KEY: &str = "fuzz-api-key-0123456789";
/// Far in the future, so the token never expires during a run.
const EXPIRES: u64 = 4_000_000_000;

fn check_target(method: &Method, path: &str) {
    if let Some((target, _scope)) = media_target(method, path) {
        let name = match target {
            Target::Stream(p) | Target::Camera(p) => p,
        };
        assert!(
            !name.is_empty() && !name.contains(['/', '%']) && name != "." && name != "..",
            "{path:?} -> {target:?}"
        );
    }
}

/// The fuzz target's body: `fuzz/fuzz_targets/http_request.rs` runs it under libFuzzer, and
/// `crates/camgate/tests/fuzz_corpus.rs` replays `fuzz/corpus/http_request/` through it.
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::PUT,
    ];
    let method = methods[usize::from(sel & 7) % methods.len()].clone();
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let target = lines.next().unwrap_or("").trim_end_matches('\r');
    let mut headers = HeaderMap::new();
    for line in lines.take(32) {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }

    check_target(&method, target);
    let listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let authority = public_authority(&headers, listen);
    assert!(
        !authority.is_empty()
            && !authority.contains(['/', '?', '#', '@', '\\'])
            && !authority.chars().any(char::is_whitespace),
        "{authority:?}"
    );
    let playlist = add_token(&text, "T0K");
    assert_eq!(playlist.lines().count(), text.lines().count());
    for line in playlist.lines() {
        let line = line.trim_end_matches('\r');
        assert!(
            line.is_empty() || line.starts_with('#') || line.contains("token="),
            "{line:?}"
        );
    }

    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    check_target(&method, uri.path());
    // Peers: loopback, a stranger, a trusted proxy (whose forwarded headers count).
    let peer: IpAddr = match sel >> 6 {
        0 => [127, 0, 0, 1].into(),
        1 => [192, 0, 2, 7].into(),
        _ => [10, 0, 0, 1].into(),
    };
    let trusted = [Cidr::parse("10.0.0.0/8").expect("a valid CIDR")];
    let client = resolve(Some(peer), &headers, &trusted);
    let head = Head {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let protected = Access::new(&[]);
    let _ = check_access(&protected, &client, &head);

    let keys = Arc::new(TokenKeys::fixed("fuzz token key"));
    let keyed = Access {
        tokens: keys.clone(),
        ..Access::new(&[API_KEY.to_owned()])
    };
    let _ = check_access(&keyed, &client, &head);
    let token = keys.issue(
        &Grant::Viewer {
            camera_id: "cam1".into(),
            stream_path: "cam_1".into(),
            scope: Scope::LIVE.with(Scope::SNAPSHOT),
        },
        EXPIRES,
    );
    let with_token = match uri.query() {
        Some(q) => format!("{}?token={token}&{q}", uri.path()),
        None => format!("{}?token={token}", uri.path()),
    };
    let Ok(uri) = Uri::try_from(with_token) else {
        return;
    };
    let head = Head {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    if let Ok(Granted::Token { .. }) = check_access(&keyed, &client, &head) {
        let opened = media_target(&method, uri.path()).map(|(t, _)| t);
        let ours = match opened {
            Some(Target::Camera(id)) => id == "cam1",
            Some(Target::Stream(p)) => {
                p == "cam_1" || p.strip_prefix("cam_1").is_some_and(|r| r.starts_with('~'))
            }
            None => false,
        };
        assert!(ours, "cam1's token opened {method} {uri} ({opened:?})");
    }
}
