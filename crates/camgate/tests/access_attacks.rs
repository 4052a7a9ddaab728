//! Issue 16's browser attacks replayed over a real socket against `camgate serve`'s server:
//! cross-site WebSocket hijacking (#1), DNS rebinding (#2), and answers that were not JSON
//! (#11). Each test failed before the fix: the upgrades answered 101, the rebound requests
//! 200/201/204, and `/mse/{path}` without an upgrade a plain-text body.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Gateway;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn ws_status(gw: &Gateway, path: &str, origin: Option<&str>) -> (u16, String) {
    let url = gw.url(path).replacen("http", "ws", 1);
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => (resp.status().as_u16(), String::new()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("{path}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_websockets_are_refused() {
    let gw = Gateway::start(|_| {}).await;
    gw.provision("1", "rtsp://127.0.0.1:9/none", true).await;
    let own = gw.base.clone();
    for path in ["/ws/dashboard", "/ws/events/cam_1", "/mse/cam_1"] {
        let (status, body) = ws_status(&gw, path, Some("http://evil.example")).await;
        assert_eq!(status, 403, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "origin_not_allowed", "{path}");
        let (status, _) = ws_status(&gw, path, Some("null")).await;
        assert_eq!(status, 403, "{path} with Origin: null");
    }
    // The dashboard's own pages and clients that are not browsers still connect.
    for origin in [Some(own.as_str()), None] {
        let (status, body) = ws_status(&gw, "/ws/dashboard", origin).await;
        assert_eq!(status, 101, "{origin:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_origins_may_open_websockets() {
    let gw = Gateway::start(|c| c.http.cors_origins = vec!["https://nvr.example".into()]).await;
    let (status, _) = ws_status(&gw, "/ws/dashboard", Some("https://nvr.example")).await;
    assert_eq!(status, 101);
    let (status, _) = ws_status(&gw, "/ws/dashboard", Some("https://other.example")).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_rebinding_cannot_reach_the_api() {
    let gw = Gateway::start(|c| c.http.allowed_hosts = vec!["cams.lan".into()]).await;
    gw.provision("1", "rtsp://127.0.0.1:9/none", true).await;
    let http = reqwest::Client::new();
    let rebound = [
        http.get(gw.url("/cameras")),
        http.post(gw.url("/cameras/provision"))
            .json(&json!({"camera_id": "2", "rtsp_url": "rtsp://h/s"})),
        http.delete(gw.url("/cameras/1")),
        http.get(gw.url("/hls/cam_1/index.m3u8")),
    ];
    for req in rebound {
        let r = req
            .header("host", "evil.example:8080")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "host_not_allowed");
    }
    // Nothing changed; loopback names and allowed hosts are served.
    for host in ["localhost:1", "127.0.0.1", "[::1]:8080", "cams.lan"] {
        let r = http
            .get(gw.url("/cameras"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{host}");
        let list: Value = r.json().await.unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json() {
    let gw = Gateway::start(|_| {}).await;
    gw.provision("1", "rtsp://127.0.0.1:9/none", true).await;
    for path in ["/mse/cam_1", "/ws/dashboard", "/ws/events/cam_1"] {
        let r = reqwest::get(gw.url(path)).await.unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("WebSocket"),
            "{body}"
        );
    }
}

/// Issue 16 #12: a proxy on this machine naming its client by `X-Real-IP` is refused in
/// protected mode (it was served: only `X-Forwarded-For` and `Forwarded` were recognised).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_real_ip_counts_as_a_proxy() {
    let gw = Gateway::start(|_| {}).await;
    let r = reqwest::Client::new()
        .get(gw.url("/cameras"))
        .header("x-real-ip", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
