//! Who may read the restream, by the rules of the HTTP side and with its own checks
//! (`http::access::check_access`, `is_loopback`), never a second implementation:
//!
//! - No `[auth] api_keys` (protected mode): loopback clients only; others get 403.
//! - With keys: Basic with any user name and an API key or a viewer token (live scope, its
//!   camera's streams) as the password; or no credentials and `?token=` in the URL; or Digest
//!   with an API key as the password. Digest never shows us the password, so it cannot carry
//!   a signed token (we cannot recompute a token's hash without knowing the token).
//!
//! An RTSP request is checked as the HTTP request for the same stream's live media
//! (`GET /mse/{path}`) with the password as `Authorization: Bearer`, or the token as
//! `?token=`: keys are compared in constant time, tokens are verified, scoped and expired
//! exactly as for HLS, MSE and WHEP.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};

use crate::http::Access;
use crate::http::access::{Head, check_access, is_loopback};
use crate::http::client::Client;
use crate::http::refuse::check_stream_path;

/// The realm of Basic and Digest challenges.
const REALM: &str = "camgate";

/// Which peers the RTSP server answers at all (`rtsp::Settings::allow_peer`).
pub(super) type PeerFilter = fn(std::net::IpAddr) -> bool;

/// The RTSP server's authenticator and peer filter for these access settings.
pub(super) fn rtsp_access(access: &Access) -> (Option<rtsp::Authenticator>, Option<PeerFilter>) {
    if access.api_keys.is_empty() {
        return (None, Some(is_loopback));
    }
    let verifier = Arc::new(Keys {
        access: access.clone(),
    });
    let auth = rtsp::Authenticator::new(REALM, rtsp::Schemes::Any, verifier);
    (Some(auth), None)
}

/// How an RTSP client showed who it is.
enum Credential<'a> {
    /// A Basic password: an API key or a viewer token.
    Password(&'a str),
    /// `?token=`.
    Token(&'a str),
}

struct Keys {
    access: Access,
}

impl Keys {
    /// Whether `credential` opens the stream the RTSP request URI names.
    fn allows(&self, uri: &str, credential: Credential<'_>) -> bool {
        let Some(path) = rtsp::control::stream_name(uri) else {
            return false;
        };
        if check_stream_path(path).is_err() {
            return false;
        }
        let mut headers = HeaderMap::new();
        let target = match credential {
            Credential::Password(p) => {
                let Ok(v) = HeaderValue::from_str(&format!("Bearer {p}")) else {
                    return false;
                };
                headers.insert(header::AUTHORIZATION, v);
                format!("/mse/{path}")
            }
            Credential::Token(t) => {
                if !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                {
                    return false;
                }
                format!("/mse/{path}?token={t}")
            }
        };
        let Ok(uri) = target.parse::<Uri>() else {
            return false;
        };
        // In keys mode the client's address plays no part.
        let client = Client {
            ip: None,
            via_proxy: false,
            https: false,
        };
        let head = Head {
            method: &Method::GET,
            uri: &uri,
            headers: &headers,
        };
        check_access(&self.access, &client, &head).is_ok()
    }
}

impl rtsp::Verifier for Keys {
    fn password(&self, uri: &str, _user: &str, password: &str) -> bool {
        self.allows(uri, Credential::Password(password))
    }

    fn digest_passwords(&self, uri: &str, _user: &str) -> Vec<String> {
        let Some(path) = rtsp::control::stream_name(uri) else {
            return Vec::new();
        };
        if check_stream_path(path).is_err() {
            return Vec::new();
        }
        self.access.api_keys.to_vec()
    }

    fn token(&self, uri: &str, token: &str) -> bool {
        self.allows(uri, Credential::Token(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::token::{Grant, Scope};
    use rtsp::Verifier;

    fn keys() -> Keys {
        Keys {
            access: Access::new(&["key-1".to_owned(), "key-2".to_owned()]),
        }
    }

    fn token(keys: &Keys, path: &str, scope: Scope, expires: u64) -> String {
        keys.access.tokens.issue(
            &Grant::Viewer {
                camera_id: "1".into(),
                stream_path: path.into(),
                scope,
            },
            expires,
        )
    }

    #[test]
    fn api_keys_and_viewer_tokens_open_their_streams() {
        let k = keys();
        let far = 4_000_000_000;
        let live = token(&k, "cam_1", Scope::LIVE, far);
        let snap = token(&k, "cam_1", Scope::SNAPSHOT, far);
        let expired = token(&k, "cam_1", Scope::LIVE, 1);
        let uri = "rtsp://127.0.0.1:8554/cam_1";
        let track = "rtsp://127.0.0.1:8554/cam_1~720p/trackID=0";
        assert!(k.password(uri, "anyone", "key-1"));
        assert!(k.password(track, "", "key-2"));
        assert!(k.password(uri, "x", &live));
        assert!(k.password(track, "x", &live));
        assert!(k.token(uri, &live));
        for (uri, pw) in [
            (uri, "key-3"),
            (uri, ""),
            (uri, "key-1\r\nX: y"),
            (uri, snap.as_str()),
            (uri, expired.as_str()),
            ("rtsp://h/cam_2", live.as_str()),
            ("rtsp://h/cam_10", live.as_str()),
            ("rtsp://h/", "key-1"),
            ("rtsp://h/%63am_1", live.as_str()),
        ] {
            assert!(!k.password(uri, "x", pw), "{uri} {pw}");
        }
        assert!(!k.token(uri, "key-1"), "an API key is not a token");
        assert!(!k.token(uri, &format!("{live}&x=1")));
        assert_eq!(k.digest_passwords(uri, "u"), ["key-1", "key-2"]);
        assert!(k.digest_passwords("rtsp://h/", "u").is_empty());
    }

    #[test]
    fn protected_mode_answers_loopback_only() {
        let (auth, allow) = rtsp_access(&Access::new(&[]));
        assert!(auth.is_none());
        let allow = allow.unwrap();
        assert!(allow("127.0.0.1".parse().unwrap()));
        assert!(allow("::1".parse().unwrap()));
        assert!(!allow("192.168.1.20".parse().unwrap()));
        let (auth, allow) = rtsp_access(&Access::new(&["k".into()]));
        assert!(auth.is_some() && allow.is_none());
    }
}
