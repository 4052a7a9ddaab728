//! RTSP authentication as cameras do it: HTTP Basic, and Digest per RFC 2617 with MD5
//! (with or without `qop=auth`). Each connection gets its own nonce. Sans-IO: who may pass
//! is asked of a `Verifier` (one user for the simulator; API keys and viewer tokens for
//! camgate's restream), so this module owns the wire format only.

use std::sync::Arc;

use base64::Engine;
use md5::{Digest, Md5};

/// Outcome of checking a request's `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Accepted,
    /// No usable credentials: answer 401 with challenges.
    Missing,
    /// Credentials given and wrong (or for a scheme we do not offer): answer 401.
    Rejected,
}

/// Which schemes a 401 offers, and which are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schemes {
    /// Only `Basic` (password in clear base64, like many cheap cameras).
    Basic,
    /// Only `Digest` (RFC 2617, MD5).
    Digest,
    /// Offer both, Digest first; accept either.
    #[default]
    Any,
}

/// Decides who may pass. `uri` is the request URI (it may carry a `?token=` or name the
/// stream a credential is scoped to).
pub trait Verifier: Send + Sync {
    /// Basic: whether `user` with `password` may make this request.
    fn password(&self, uri: &str, user: &str, password: &str) -> bool;
    /// Digest: the passwords `user` may have hashed. Digest never shows us the password, so
    /// each candidate is tried; a secret we cannot recompute (a signed token) cannot be
    /// accepted this way.
    fn digest_passwords(&self, uri: &str, user: &str) -> Vec<String>;
    /// A request without `Authorization` whose URI carries `?token=` (or whose connection
    /// already showed one): whether that token opens this request URI. None do by default.
    fn token(&self, _uri: &str, _token: &str) -> bool {
        false
    }
}

/// One user name and password, as a camera has.
pub struct SingleUser {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SingleUser {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleUser")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl Verifier for SingleUser {
    fn password(&self, _uri: &str, user: &str, password: &str) -> bool {
        // Both compared, in constant time, so timing tells neither which one was wrong.
        let u = constant_time_eq(user.as_bytes(), self.user.as_bytes());
        let p = constant_time_eq(password.as_bytes(), self.password.as_bytes());
        u & p
    }

    fn digest_passwords(&self, _uri: &str, user: &str) -> Vec<String> {
        if user == self.user {
            vec![self.password.clone()]
        } else {
            Vec::new()
        }
    }
}

/// The realm, the schemes a server offers and who may pass.
#[derive(Clone)]
pub struct Authenticator {
    pub realm: String,
    pub schemes: Schemes,
    pub verifier: Arc<dyn Verifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.realm)
            .field("schemes", &self.schemes)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(realm: &str, schemes: Schemes, verifier: Arc<dyn Verifier>) -> Authenticator {
        Authenticator {
            realm: realm.to_string(),
            schemes,
            verifier,
        }
    }

    /// `WWW-Authenticate` header values for a 401, strongest first.
    pub fn challenges(&self, nonce: &str) -> Vec<String> {
        let realm = &self.realm;
        let digest = format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5");
        let basic = format!("Basic realm=\"{realm}\"");
        match self.schemes {
            Schemes::Basic => vec![basic],
            Schemes::Digest => vec![digest],
            Schemes::Any => vec![digest, basic],
        }
    }

    /// Checks `authorization` (the header value, if any) for a request with `method` and
    /// `uri`, against the connection's `nonce`.
    pub fn check(
        &self,
        method: &str,
        uri: &str,
        authorization: Option<&str>,
        nonce: &str,
    ) -> AuthOutcome {
        let Some(value) = authorization.map(str::trim) else {
            return AuthOutcome::Missing;
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let basic_ok = self.schemes != Schemes::Digest;
        let digest_ok = self.schemes != Schemes::Basic;
        let good = if scheme.eq_ignore_ascii_case("basic") && basic_ok {
            self.check_basic(uri, rest.trim())
        } else if scheme.eq_ignore_ascii_case("digest") && digest_ok {
            self.check_digest(method, uri, rest, nonce)
        } else {
            false
        };
        if good {
            AuthOutcome::Accepted
        } else {
            AuthOutcome::Rejected
        }
    }

    fn check_basic(&self, uri: &str, token: &str) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return false;
        };
        let Ok(raw) = std::str::from_utf8(&raw) else {
            return false;
        };
        // RFC 7617: the user-id cannot contain a colon, the password can.
        let Some((user, password)) = raw.split_once(':') else {
            return false;
        };
        self.verifier.password(uri, user, password)
    }

    fn check_digest(&self, method: &str, request_uri: &str, params: &str, nonce: &str) -> bool {
        let p = parse_params(params);
        let get = |k: &str| {
            p.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let (Some(user), Some(realm), Some(their_nonce), Some(uri), Some(response)) = (
            get("username"),
            get("realm"),
            get("nonce"),
            get("uri"),
            get("response"),
        ) else {
            return false;
        };
        if get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("md5")) {
            return false;
        }
        if realm != self.realm || their_nonce != nonce {
            return false;
        }
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let qop = match get("qop") {
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return false;
                };
                Some((qop, nc, cnonce))
            }
            Some(_) => return false,
            None => None,
        };
        let response = response.to_ascii_lowercase();
        let mut good = false;
        for password in self.verifier.digest_passwords(request_uri, user) {
            let ha1 = md5_hex(&format!("{user}:{}:{password}", self.realm));
            let expected = match qop {
                Some((qop, nc, cnonce)) => {
                    md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
                }
                None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
            };
            good |= constant_time_eq(response.as_bytes(), expected.as_bytes());
        }
        good
    }
}

/// Lower-case hex MD5, as Digest uses it.
pub fn md5_hex(s: &str) -> String {
    let d = Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh unguessable nonce for a connection.
pub fn new_nonce() -> String {
    let n: u128 = rand::random();
    format!("{n:032x}")
}

/// `k=v, k="v, with comma"` -> pairs. Tolerates stray spaces and commas; never panics.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        } else if chars.peek().is_none() && key.trim().is_empty() {
            break;
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REALM: &str = "camgate-sim";

    fn auth(scheme: Schemes) -> Authenticator {
        let user = SingleUser {
            user: "admin".into(),
            password: "s3cret".into(),
        };
        Authenticator::new(REALM, scheme, Arc::new(user))
    }

    fn digest_header(user: &str, pass: &str, nonce: &str, method: &str, uri: &str) -> String {
        let ha1 = md5_hex(&format!("{user}:{REALM}:{pass}"));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let resp = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{resp}\""
        )
    }

    #[test]
    fn md5_matches_rfc_1321() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn basic() {
        let a = auth(Schemes::Any);
        let good = base64::engine::general_purpose::STANDARD.encode("admin:s3cret");
        let bad = base64::engine::general_purpose::STANDARD.encode("admin:nope");
        assert_eq!(
            a.check(
                "DESCRIBE",
                "rtsp://h/cam1",
                Some(&format!("Basic {good}")),
                "n"
            ),
            AuthOutcome::Accepted
        );
        assert_eq!(
            a.check(
                "DESCRIBE",
                "rtsp://h/cam1",
                Some(&format!("Basic {bad}")),
                "n"
            ),
            AuthOutcome::Rejected
        );
        assert_eq!(
            a.check("DESCRIBE", "rtsp://h/cam1", Some("Basic !!!"), "n"),
            AuthOutcome::Rejected
        );
        assert_eq!(
            a.check("DESCRIBE", "rtsp://h/cam1", None, "n"),
            AuthOutcome::Missing
        );
        let digest_only = auth(Schemes::Digest);
        assert_eq!(
            digest_only.check(
                "DESCRIBE",
                "rtsp://h/cam1",
                Some(&format!("Basic {good}")),
                "n"
            ),
            AuthOutcome::Rejected
        );
    }

    #[test]
    fn digest() {
        let a = auth(Schemes::Digest);
        let uri = "rtsp://127.0.0.1:8555/cam1";
        let h = digest_header("admin", "s3cret", "abc", "DESCRIBE", uri);
        assert_eq!(
            a.check("DESCRIBE", "rtsp://h/cam1", Some(&h), "abc"),
            AuthOutcome::Accepted
        );
        // Wrong method, nonce, password, user.
        assert_eq!(
            a.check("SETUP", "rtsp://h/cam1", Some(&h), "abc"),
            AuthOutcome::Rejected
        );
        assert_eq!(
            a.check("DESCRIBE", "rtsp://h/cam1", Some(&h), "other"),
            AuthOutcome::Rejected
        );
        let h = digest_header("admin", "wrong", "abc", "DESCRIBE", uri);
        assert_eq!(
            a.check("DESCRIBE", "rtsp://h/cam1", Some(&h), "abc"),
            AuthOutcome::Rejected
        );
        let h = digest_header("root", "s3cret", "abc", "DESCRIBE", uri);
        assert_eq!(
            a.check("DESCRIBE", "rtsp://h/cam1", Some(&h), "abc"),
            AuthOutcome::Rejected
        );
        assert!(a.challenges("abc")[0].contains("nonce=\"abc\""));
        assert_eq!(auth(Schemes::Basic).challenges("x").len(), 1);
    }

    #[test]
    fn digest_with_qop() {
        let a = auth(Schemes::Any);
        let (nonce, uri, nc, cnonce) = ("n1", "rtsp://h/cam2", "00000001", "c0ffee");
        let ha1 = md5_hex(&format!("admin:{REALM}:s3cret"));
        let ha2 = md5_hex(&format!("PLAY:{uri}"));
        let resp = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        let h = format!(
            "Digest username=\"admin\",realm=\"{REALM}\",nonce=\"{nonce}\",uri=\"{uri}\",\
             qop=auth,nc={nc},cnonce=\"{cnonce}\",response=\"{resp}\",algorithm=MD5"
        );
        assert_eq!(
            a.check("PLAY", "rtsp://h/cam1", Some(&h), nonce),
            AuthOutcome::Accepted
        );
    }

    /// Restream's case: any user name, one of several keys as the password; a token that
    /// only Basic can check.
    struct Keys;

    impl Verifier for Keys {
        fn password(&self, uri: &str, _user: &str, password: &str) -> bool {
            ["k1", "k2"].contains(&password) || (password == "token" && uri.ends_with("/cam1"))
        }
        fn digest_passwords(&self, _uri: &str, _user: &str) -> Vec<String> {
            vec!["k1".into(), "k2".into()]
        }
    }

    #[test]
    fn a_verifier_decides_per_request() {
        let a = Authenticator::new(REALM, Schemes::Any, Arc::new(Keys));
        let basic = |up: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(up)
            )
        };
        let ok = AuthOutcome::Accepted;
        assert_eq!(
            a.check("PLAY", "rtsp://h/cam2", Some(&basic("any:k2")), "n"),
            ok
        );
        assert_eq!(
            a.check("PLAY", "rtsp://h/cam1", Some(&basic("x:token")), "n"),
            ok
        );
        let no = AuthOutcome::Rejected;
        assert_eq!(
            a.check("PLAY", "rtsp://h/cam2", Some(&basic("x:token")), "n"),
            no
        );
        assert_eq!(
            a.check("PLAY", "rtsp://h/cam2", Some(&basic("no-colon")), "n"),
            no
        );
        let uri = "rtsp://h/cam2";
        let h = digest_header("whoever", "k2", "n", "PLAY", uri);
        assert_eq!(a.check("PLAY", uri, Some(&h), "n"), ok);
        let h = digest_header("whoever", "token", "n", "PLAY", uri);
        assert_eq!(a.check("PLAY", uri, Some(&h), "n"), no);
    }

    #[test]
    fn parses_params() {
        let p = parse_params(r#"a="x, y", b=2 ,, c="q\"q""#);
        assert_eq!(
            p,
            vec![
                ("a".into(), "x, y".into()),
                ("b".into(), "2".into()),
                ("c".into(), "q\"q".into())
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let a = auth(Schemes::Any);
            let _ = a.check("DESCRIBE", "rtsp://h/cam1", Some(&s), "n");
            let _ = a.check("DESCRIBE", "rtsp://h/cam1", Some(&format!("Digest {s}")), "n");
            let _ = parse_params(&s);
        }
    }
}
