//! Carries a viewer token from a playlist's URL into every URI the playlist lists (media
//! segments, parts, the init segment, preload hints, renditions, variant playlists), so a
//! player given `index.m3u8?token=T` fetches everything else with it too. Applied by the
//! access layer to any `mpegurl` answer opened with `?token=`, so every output that serves
//! playlists (live, recordings, profiles) gets it without code of its own.

use axum::body::Body;
use axum::http::header;
use axum::response::Response;

/// Playlists are small; a larger body is passed through unchanged rather than buffered.
const MAX_PLAYLIST: usize = 4 * 1024 * 1024;

pub async fn carry_token(response: Response, token: &str) -> Response {
    let is_playlist = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("mpegurl"));
    if !is_playlist || !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PLAYLIST).await else {
        // The body failed or is larger than any playlist: nothing sensible to pass on.
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let rewritten = add_token(text, token);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(rewritten))
}

/// Adds `token=` to every URI line and every `URI="..."` attribute.
pub fn add_token(playlist: &str, token: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (
                b.strip_suffix('\r').unwrap_or(b),
                &line[b.trim_end_matches('\r').len()..],
            ),
            None => (line, ""),
        };
        if body.is_empty() {
            out.push_str(line);
            continue;
        }
        if body.starts_with('#') {
            out.push_str(&with_uri_attributes(body, token));
        } else {
            out.push_str(&with_token(body, token));
        }
        out.push_str(end);
    }
    out
}

fn with_token(uri: &str, token: &str) -> String {
    if uri.split(['?', '&']).any(|p| p.starts_with("token=")) {
        return uri.to_owned();
    }
    let (before, fragment) = match uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (uri, None),
    };
    let sep = if before.contains('?') { '&' } else { '?' };
    match fragment {
        Some(f) => format!("{before}{sep}token={token}#{f}"),
        None => format!("{before}{sep}token={token}"),
    }
}

fn with_uri_attributes(tag: &str, token: &str) -> String {
    const ATTR: &str = "URI=\"";
    let mut out = String::with_capacity(tag.len());
    let mut rest = tag;
    while let Some(i) = rest.find(ATTR) {
        let start = i + ATTR.len();
        let Some(len) = rest[start..].find('"') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&with_token(&rest[start..start + len], token));
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_gets_the_token() {
        let p = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-PART:DURATION=0.2,URI=\"p1.m4s?x=1\"\n\
                 #EXTINF:1.0,\nseg1.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p2.m4s\"\n\
                 #EXT-X-RENDITION-REPORT:URI=\"../cam_1~720p/index.m3u8\",LAST-MSN=3\n";
        let out = add_token(p, "T");
        assert!(out.contains("URI=\"init.mp4?token=T\""), "{out}");
        assert!(out.contains("URI=\"p1.m4s?x=1&token=T\""), "{out}");
        assert!(out.contains("\nseg1.m4s?token=T\n"), "{out}");
        assert!(out.contains("URI=\"p2.m4s?token=T\""), "{out}");
        assert!(out.contains("index.m3u8?token=T\",LAST-MSN=3"), "{out}");
        assert!(out.starts_with("#EXTM3U\n"));
        // Idempotent: a URI that already carries it is left alone.
        assert_eq!(add_token(&out, "T"), out);
        assert_eq!(add_token("a.m4s\r\n", "T"), "a.m4s?token=T\r\n");
    }

    #[test]
    fn arbitrary_text_never_panics() {
        use proptest::prelude::*;
        proptest!(ProptestConfig::with_cases(1000), |(s in "(?s).{0,300}")| {
            let _ = add_token(&s, "tok");
        });
    }
}
