//! The web dashboard's static files (crates/camgate/web/), embedded in the binary at compile
//! time and served at `/` (the page) and `/ui/{file}` (its modules and stylesheet).
//!
//! The files hold no data: the page fetches everything from the API with the visitor's own
//! credentials, so they are served outside access control (a browser must load the page before
//! it can ask its user for an API key). Owns no API route and no state.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::{AppError, RouteDoc, Routes};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the dashboard. A file missing here is a 404, whatever is on disk.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("player.js", JS),
    asset!("live.js", JS),
    asset!("grid.js", JS),
    asset!("camera.js", JS),
    asset!("recordings.js", JS),
    asset!("form.js", JS),
];

/// The page may run only its own scripts and styles and talk only to its own origin: even if
/// a camera name slipped into markup, no injected script or remote request would run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .get("/", "The web dashboard", index)
        .get("/ui/{file}", "The dashboard's modules and stylesheet", file)
        .build()
}

async fn index(headers: HeaderMap) -> Response {
    // `index.html` is in ASSETS; see the test below.
    serve(&ASSETS[0], &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset, &headers),
        None => AppError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such dashboard file; the dashboard is at /",
        )
        .into_response(),
    }
}

/// Answers with the file, or `304` when the browser's copy is current. `no-cache` makes
/// browsers revalidate every time, so a new binary's dashboard is never mixed with an old
/// cached module; the ETag keeps that revalidation to a few bytes.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let etag = etag(asset.body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let h = response.headers_mut();
    // A quoted hex digest is always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if asset.name == "index.html" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// A strong validator from the content (64-bit FNV-1a): it changes whenever the file does.
fn etag(body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        router()
            .0
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn index_is_first_and_names_are_unique() {
        assert_eq!(ASSETS[0].name, "index.html");
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
    }

    #[tokio::test]
    async fn files_have_types_validators_and_revalidate() {
        let page = get("/", None).await;
        assert_eq!(page.status(), 200);
        let h = page.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert!(h.contains_key(header::CONTENT_SECURITY_POLICY));
        let tag = h[header::ETAG].to_str().unwrap().to_string();
        assert_eq!(get("/", Some(&tag)).await.status(), 304);
        assert_eq!(get("/", Some("\"other\"")).await.status(), 200);

        let js = get("/ui/app.js", None).await;
        assert_eq!(js.status(), 200);
        assert_eq!(js.headers()[header::CONTENT_TYPE], JS);
        let css = get("/ui/style.css", None).await;
        assert_eq!(
            css.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        for missing in ["/ui/nope.js", "/ui/..%2fCargo.toml", "/ui/"] {
            assert_eq!(get(missing, None).await.status(), 404, "{missing}");
        }
    }

    #[tokio::test]
    async fn the_page_loads_without_a_key_but_the_api_does_not() {
        use axum::extract::connect_info::MockConnectInfo;
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config::default();
        config.auth.api_keys = vec!["k".into()];
        let db = crate::db::Db::open(dir.path()).unwrap();
        let addr: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let app = crate::app::App::build(std::sync::Arc::new(config), db, addr);
        let app = app.router().layer(MockConnectInfo(addr));
        let call = |path: &str| {
            app.clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
        };
        assert_eq!(call("/").await.unwrap().status(), 200);
        assert_eq!(call("/ui/app.js").await.unwrap().status(), 200);
        assert_eq!(call("/cameras").await.unwrap().status(), 401);
    }

    #[test]
    fn modules_never_use_inner_html() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", a.name);
            }
        }
    }
}
