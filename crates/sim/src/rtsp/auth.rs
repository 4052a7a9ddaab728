//! RTSP authentication as cameras do it: HTTP Basic, and Digest per RFC 2617 with MD5
//! (with or without `qop=auth`). Each connection gets its own nonce. Sans-IO.

use base64::Engine;
use md5::{Digest, Md5};

use crate::config::{AuthScheme, Credentials};

pub const REALM: &str = "camgate-sim";

/// Outcome of checking a request's `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Accepted,
    /// No usable credentials: answer 401 with challenges.
    Missing,
    /// Credentials given and wrong (or for a scheme we do not offer): answer 401.
    Rejected,
}

/// The credentials a server demands and the schemes it offers.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub credentials: Credentials,
    pub scheme: AuthScheme,
}

impl Authenticator {
    /// `WWW-Authenticate` header values for a 401, strongest first.
    pub fn challenges(&self, nonce: &str) -> Vec<String> {
        let digest = format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5");
        let basic = format!("Basic realm=\"{REALM}\"");
        match self.scheme {
            AuthScheme::Basic => vec![basic],
            AuthScheme::Digest => vec![digest],
            AuthScheme::Any => vec![digest, basic],
        }
    }

    /// Checks `authorization` (the header value, if any) for a request with `method`, against
    /// the connection's `nonce`.
    pub fn check(&self, method: &str, authorization: Option<&str>, nonce: &str) -> AuthOutcome {
        let Some(value) = authorization.map(str::trim) else {
            return AuthOutcome::Missing;
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let basic_ok = self.scheme != AuthScheme::Digest;
        let digest_ok = self.scheme != AuthScheme::Basic;
        let good = if scheme.eq_ignore_ascii_case("basic") && basic_ok {
            self.check_basic(rest.trim())
        } else if scheme.eq_ignore_ascii_case("digest") && digest_ok {
            self.check_digest(method, rest, nonce)
        } else {
            false
        };
        if good {
            AuthOutcome::Accepted
        } else {
            AuthOutcome::Rejected
        }
    }

    fn check_basic(&self, token: &str) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return false;
        };
        let expected = format!("{}:{}", self.credentials.user, self.credentials.password);
        constant_time_eq(&raw, expected.as_bytes())
    }

    fn check_digest(&self, method: &str, params: &str, nonce: &str) -> bool {
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
        if user != self.credentials.user || realm != REALM || their_nonce != nonce {
            return false;
        }
        let ha1 = md5_hex(&format!("{user}:{REALM}:{}", self.credentials.password));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let expected = match get("qop") {
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return false;
                };
                md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
            }
            Some(_) => return false,
            None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
        };
        constant_time_eq(
            response.to_ascii_lowercase().as_bytes(),
            expected.as_bytes(),
        )
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

    fn auth(scheme: AuthScheme) -> Authenticator {
        Authenticator {
            credentials: Credentials {
                user: "admin".into(),
                password: "s3cret".into(),
            },
            scheme,
        }
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
        let a = auth(AuthScheme::Any);
        let good = base64::engine::general_purpose::STANDARD.encode("admin:s3cret");
        let bad = base64::engine::general_purpose::STANDARD.encode("admin:nope");
        assert_eq!(
            a.check("DESCRIBE", Some(&format!("Basic {good}")), "n"),
            AuthOutcome::Accepted
        );
        assert_eq!(
            a.check("DESCRIBE", Some(&format!("Basic {bad}")), "n"),
            AuthOutcome::Rejected
        );
        assert_eq!(
            a.check("DESCRIBE", Some("Basic !!!"), "n"),
            AuthOutcome::Rejected
        );
        assert_eq!(a.check("DESCRIBE", None, "n"), AuthOutcome::Missing);
        let digest_only = auth(AuthScheme::Digest);
        assert_eq!(
            digest_only.check("DESCRIBE", Some(&format!("Basic {good}")), "n"),
            AuthOutcome::Rejected
        );
    }

    #[test]
    fn digest() {
        let a = auth(AuthScheme::Digest);
        let uri = "rtsp://127.0.0.1:8555/cam1";
        let h = digest_header("admin", "s3cret", "abc", "DESCRIBE", uri);
        assert_eq!(a.check("DESCRIBE", Some(&h), "abc"), AuthOutcome::Accepted);
        // Wrong method, nonce, password, user.
        assert_eq!(a.check("SETUP", Some(&h), "abc"), AuthOutcome::Rejected);
        assert_eq!(
            a.check("DESCRIBE", Some(&h), "other"),
            AuthOutcome::Rejected
        );
        let h = digest_header("admin", "wrong", "abc", "DESCRIBE", uri);
        assert_eq!(a.check("DESCRIBE", Some(&h), "abc"), AuthOutcome::Rejected);
        let h = digest_header("root", "s3cret", "abc", "DESCRIBE", uri);
        assert_eq!(a.check("DESCRIBE", Some(&h), "abc"), AuthOutcome::Rejected);
        assert!(a.challenges("abc")[0].contains("nonce=\"abc\""));
        assert_eq!(auth(AuthScheme::Basic).challenges("x").len(), 1);
    }

    #[test]
    fn digest_with_qop() {
        let a = auth(AuthScheme::Any);
        let (nonce, uri, nc, cnonce) = ("n1", "rtsp://h/cam2", "00000001", "c0ffee");
        let ha1 = md5_hex(&format!("admin:{REALM}:s3cret"));
        let ha2 = md5_hex(&format!("PLAY:{uri}"));
        let resp = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        let h = format!(
            "Digest username=\"admin\",realm=\"{REALM}\",nonce=\"{nonce}\",uri=\"{uri}\",\
             qop=auth,nc={nc},cnonce=\"{cnonce}\",response=\"{resp}\",algorithm=MD5"
        );
        assert_eq!(a.check("PLAY", Some(&h), nonce), AuthOutcome::Accepted);
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
            let a = auth(AuthScheme::Any);
            let _ = a.check("DESCRIBE", Some(&s), "n");
            let _ = a.check("DESCRIBE", Some(&format!("Digest {s}")), "n");
            let _ = parse_params(&s);
        }
    }
}
