//! Secret redaction for anything printed: logs, API answers, errors, events, `camgate config`.
//!
//! Camera URLs carry passwords inline (`rtsp://admin:secret@cam/...`). Every place that shows
//! a URL passes it through [`redact_url`] first. The function works on any string, valid URL or
//! not, because the strings that most need redacting are the malformed ones in error messages.

/// Replaces the password of a URL's userinfo with `***`: `rtsp://admin:***@host/path`.
///
/// Works on malformed input too. The userinfo ends at the later of two `@`s: the last one
/// before any `?` or `#` (a password holding a raw `@` or `/`), and the last one with no `/`
/// between it and `://` (a password holding a raw `?` or `#`, `rtsp://u:12?34@host/`). So a
/// password is hidden whichever delimiters it holds; when in doubt it hides more than needed,
/// never less. A userinfo without `:` (a bare user name) is kept.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let before_query = rest[..authority_end].rfind('@');
    let first_slash = rest.find('/').unwrap_or(rest.len());
    let before_slash = rest[..first_slash].rfind('@');
    let Some(at) = before_query.max(before_slash) else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..rest_start],
        &userinfo[..colon],
        &rest[at..]
    )
}

/// A value shown in place of a secret that must not be printed at all (API keys).
pub const REDACTED: &str = "***";

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn hides_passwords_and_keeps_the_rest() {
        let cases = [
            (
                "rtsp://admin:secret@cam.local:554/s1",
                "rtsp://admin:***@cam.local:554/s1",
            ),
            ("rtsps://u:p@10.0.0.1/a?b=c", "rtsps://u:***@10.0.0.1/a?b=c"),
            ("rtsp://admin:p@ss@cam/x", "rtsp://admin:***@cam/x"),
            ("rtsp://admin:pa/ss@cam/x", "rtsp://admin:***@cam/x"),
            ("rtsp://admin:@cam/x", "rtsp://admin:***@cam/x"),
            ("rtsp://cam.local/s1", "rtsp://cam.local/s1"),
            ("rtsp://admin@cam.local/s1", "rtsp://admin@cam.local/s1"),
            ("rtsp://cam/s?user=a@b", "rtsp://cam/s?user=a@b"),
            ("not a url", "not a url"),
            ("rtsp://admin:12?34@cam/s", "rtsp://admin:***@cam/s"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "input {input:?}");
        }
    }

    #[test]
    fn never_returns_the_password_for_awkward_urls() {
        for url in [
            "rtsp://u:hunter2@h",
            "rtsp://u:hunter2@h:1/p@q",
            "x://u:hunter2@",
            "rtsp://u:hunter2@@h/",
            "rtsp://:hunter2@h/",
            // Issue 16 #3: raw `?` / `#` in the password.
            "rtsp://admin:hunter2?x@cam/s",
            "rtsp://admin:1?hunter2@cam/s",
            "rtsp://admin:hun#ter2@cam/s",
            "rtsp://admin:hunter2@x?y@cam/s",
            "rtsp://u:p@hunter2?q@h/",
        ] {
            assert!(!redact_url(url).contains("hunter2"), "{url}");
        }
    }

    /// Any string: the text between `user:` and the `@` that ends the userinfo never survives.
    #[test]
    fn arbitrary_urls_hide_the_password() {
        use proptest::prelude::*;
        proptest!(ProptestConfig::with_cases(2000), |(user in "[a-z]{1,4}", pw in "[!-~&&[^@/:]]{0,12}", host in "[a-z0-9.]{1,8}", tail in "[ -~&&[^Z]]{0,12}")| {
            let secret = format!("Z{pw}Q");
            let url = format!("rtsp://{user}:{secret}@{host}/{tail}");
            prop_assert!(!redact_url(&url).contains(&secret), "{}", url);
        });
        proptest!(ProptestConfig::with_cases(1000), |(s in "(?s).{0,200}")| {
            let _ = redact_url(&s);
        });
    }
}
