//! Unit tests of [`check_access`]: every branch, including peers tests over 127.0.0.1 cannot be.

use super::*;
use crate::http::token::Scope;
use axum::http::HeaderValue;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn client(s: &str) -> Client {
    Client {
        ip: Some(s.parse().unwrap()),
        via_proxy: false,
        https: false,
    }
}

fn check(
    access: &Access,
    peer: &str,
    method: Method,
    uri: &str,
    h: &HeaderMap,
) -> Result<Granted, Denied> {
    let uri: Uri = uri.parse().unwrap();
    let c = client::resolve(client(peer).ip, h, &access.trusted_proxies);
    check_access(
        access,
        &c,
        &Head {
            method: &method,
            uri: &uri,
            headers: h,
        },
    )
}

fn get(access: &Access, peer: &str, h: &[(&'static str, &str)]) -> Result<Granted, Denied> {
    check(access, peer, Method::GET, "/cameras", &headers(h))
}

#[test]
fn protected_mode_admits_loopback_only() {
    let a = Access::new(&[]);
    for local in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
        assert_eq!(get(&a, local, &[]), Ok(Granted::Local), "{local}");
    }
    for remote in [
        "192.168.1.20",
        "10.0.0.1",
        "0.0.0.0",
        "::ffff:10.0.0.1",
        "2001:db8::1",
        "fe80::1",
    ] {
        assert_eq!(get(&a, remote, &[]), Err(Denied::NotLoopback), "{remote}");
    }
    let unknown = Client {
        ip: None,
        via_proxy: false,
        https: false,
    };
    let uri: Uri = "/".parse().unwrap();
    let h = HeaderMap::new();
    assert_eq!(
        check_access(
            &a,
            &unknown,
            &Head {
                method: &Method::GET,
                uri: &uri,
                headers: &h
            }
        ),
        Err(Denied::NotLoopback)
    );
    for proxy in ["x-forwarded-for", "x-real-ip", "forwarded"] {
        let v = if proxy == "forwarded" {
            "for=203.0.113.9"
        } else {
            "203.0.113.9"
        };
        assert_eq!(
            get(&a, "127.0.0.1", &[(proxy, v)]),
            Err(Denied::Forwarded),
            "{proxy}"
        );
    }
}

/// Issue 16 #12: X-Real-IP from a trusted proxy is the client; from loopback it is refused.
#[test]
fn trusted_proxies_forward_the_client() {
    let a = Access {
        trusted_proxies: vec![Cidr::parse("127.0.0.1").unwrap()].into(),
        ..Access::new(&[])
    };
    assert_eq!(
        get(&a, "127.0.0.1", &[("x-real-ip", "203.0.113.9")]),
        Err(Denied::NotLoopback)
    );
    assert_eq!(
        get(&a, "127.0.0.1", &[("x-forwarded-for", "127.0.0.1")]),
        Ok(Granted::Local)
    );
}

/// Issue 16 #2: DNS rebinding.
#[test]
fn protected_mode_refuses_foreign_hosts() {
    let a = Access {
        allowed_hosts: vec!["cams.lan".to_owned()].into(),
        ..Access::new(&[])
    };
    for ok in [
        "localhost",
        "localhost:8080",
        "127.0.0.1:8080",
        "[::1]:8080",
        "cams.lan:8080",
        "CAMS.LAN",
        "app.localhost",
    ] {
        assert_eq!(
            get(&a, "127.0.0.1", &[("host", ok)]),
            Ok(Granted::Local),
            "{ok}"
        );
    }
    for bad in [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "10.0.0.1",
    ] {
        assert_eq!(
            get(&a, "127.0.0.1", &[("host", bad)]),
            Err(Denied::HostNotAllowed),
            "{bad}"
        );
    }
    assert_eq!(
        AppError::from(Denied::HostNotAllowed).code,
        "host_not_allowed"
    );
}

/// Issue 16 #1: cross-site WebSocket hijacking, in both modes.
#[test]
fn websocket_upgrades_need_our_origin() {
    let keys = vec!["k-123456".to_owned()];
    for a in [Access::new(&[]), Access::new(&keys)] {
        let ws = |origin: &str| {
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("upgrade", "websocket"),
                ("origin", origin),
                ("x-api-key", "k-123456"),
            ])
        };
        for bad in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:9999",
            "file://",
        ] {
            assert_eq!(
                check(&a, "127.0.0.1", Method::GET, "/mse/cam_1", &ws(bad)),
                Err(Denied::OriginNotAllowed),
                "{bad}"
            );
        }
        assert!(
            check(
                &a,
                "127.0.0.1",
                Method::GET,
                "/mse/cam_1",
                &ws("http://127.0.0.1:8080")
            )
            .is_ok()
        );
    }
    let a = Access {
        cors_origins: vec!["https://nvr.example".to_owned()].into(),
        ..Access::new(&[])
    };
    let h = headers(&[
        ("upgrade", "websocket"),
        ("origin", "https://nvr.example"),
        ("host", "localhost"),
    ]);
    assert!(check(&a, "127.0.0.1", Method::GET, "/ws/dashboard", &h).is_ok());
}

#[test]
fn keys_by_either_header_from_anywhere() {
    let a = Access::new(&["first-key-123".to_owned(), "second-key-456".to_owned()]);
    let r = "203.0.113.7";
    assert_eq!(get(&a, r, &[]), Err(Denied::MissingKey));
    assert_eq!(
        get(&a, r, &[("authorization", "Bearer nope")]),
        Err(Denied::WrongKey)
    );
    assert_eq!(
        get(&a, r, &[("authorization", "Basic Zmlyc3Qta2V5LTEyMw==")]),
        Err(Denied::MissingKey)
    );
    assert_eq!(
        get(&a, r, &[("authorization", "Bearer first-key-123")]),
        Ok(Granted::ApiKey)
    );
    assert_eq!(
        get(&a, r, &[("authorization", "bearer second-key-456")]),
        Ok(Granted::ApiKey)
    );
    assert_eq!(
        get(&a, r, &[("x-api-key", "second-key-456")]),
        Ok(Granted::ApiKey)
    );
    assert_eq!(
        get(&a, r, &[("x-api-key", "second-key-45")]),
        Err(Denied::WrongKey)
    );
    assert_eq!(
        get(&a, r, &[("x-api-key", "second-key-4567")]),
        Err(Denied::WrongKey)
    );
    // With keys configured, loopback gets no free pass.
    assert_eq!(get(&a, "127.0.0.1", &[]), Err(Denied::MissingKey));
}

#[test]
fn tokens_open_their_camera_media_only() {
    let a = Access::new(&["key-123456".to_owned()]);
    let t = a.tokens.issue(
        &Grant::Viewer {
            camera_id: "1".into(),
            stream_path: "cam_1".into(),
            scope: Scope::LIVE,
        },
        u64::MAX / 2,
    );
    let r = "203.0.113.7";
    let none = HeaderMap::new();
    assert!(matches!(
        check(
            &a,
            r,
            Method::GET,
            &format!("/hls/cam_1/index.m3u8?token={t}"),
            &none
        ),
        Ok(Granted::Token {
            from_query: true,
            ..
        })
    ));
    let bearer = headers(&[("authorization", &format!("Bearer {t}"))]);
    assert!(matches!(
        check(&a, r, Method::GET, "/mse/cam_1", &bearer),
        Ok(Granted::Token {
            from_query: false,
            ..
        })
    ));
    for other in [
        "/hls/cam_2/index.m3u8",
        "/cameras",
        "/cameras/1/info",
        "/cameras/1/snapshot.jpg",
        "/metrics",
    ] {
        assert_eq!(
            check(&a, r, Method::GET, &format!("{other}?token={t}"), &none),
            Err(Denied::TokenNotAllowed),
            "{other}"
        );
    }
    assert_eq!(
        check(
            &a,
            r,
            Method::DELETE,
            &format!("/cameras/1?token={t}"),
            &none
        ),
        Err(Denied::TokenNotAllowed)
    );
    let expired = a.tokens.issue(
        &Grant::Viewer {
            camera_id: "1".into(),
            stream_path: "cam_1".into(),
            scope: Scope::LIVE,
        },
        1,
    );
    assert_eq!(
        check(
            &a,
            r,
            Method::GET,
            &format!("/hls/cam_1/index.m3u8?token={expired}"),
            &none
        ),
        Err(Denied::InvalidToken)
    );
    // A session token is a cookie, not a URL parameter.
    let session = a.tokens.issue(&Grant::Session, u64::MAX / 2);
    assert_eq!(
        check(
            &a,
            r,
            Method::GET,
            &format!("/hls/cam_1/index.m3u8?token={session}"),
            &none
        ),
        Err(Denied::TokenNotAllowed)
    );
    let cookie = headers(&[("cookie", &format!("other=1; {SESSION_COOKIE}={session}"))]);
    assert_eq!(
        check(&a, r, Method::GET, "/cameras", &cookie),
        Ok(Granted::Session)
    );
    let forged = headers(&[("cookie", &format!("{SESSION_COOKIE}={t}"))]);
    assert_eq!(
        check(&a, r, Method::GET, "/cameras", &forged),
        Err(Denied::MissingKey)
    );
}
