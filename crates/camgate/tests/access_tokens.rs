//! Viewer tokens and dashboard sessions with API keys set (issue 16 #6), over a real socket,
//! with GStreamer's RTSP server as the camera: the token plays its camera's LL-HLS (every URI
//! of the playlist carries it), opens nothing else, fails altered, expired or after
//! `token-key rotate`; the session cookie opens the API for the dashboard.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Camera, Gateway};

const KEY: &str = "test-key-0123456789";

async fn keyed() -> Gateway {
    Gateway::start(|c| c.auth.api_keys = vec![KEY.into()]).await
}

async fn provision(gw: &Gateway, id: &str, url: &str) {
    let r = reqwest::Client::new()
        .post(gw.url("/cameras/provision"))
        .bearer_auth(KEY)
        .json(&json!({"camera_id": id, "rtsp_url": url}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn token(gw: &Gateway, id: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(gw.url(&format!("/cameras/{id}/token")))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn status_of(url: &str) -> (StatusCode, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_plays_its_camera_and_opens_nothing_else() {
    let cam = Camera::start();
    let gw = keyed().await;
    provision(&gw, "1", &cam.good_url()).await;
    provision(&gw, "2", &cam.good_url()).await;
    let (status, issued) = token(&gw, "1", json!({"ttl_seconds": 600})).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let t = issued["token"].as_str().unwrap().to_owned();
    assert_eq!(issued["scope"], json!(["live", "snapshot"]));
    let hls = issued["hls_url"].as_str().unwrap();
    assert!(
        hls.ends_with(&format!("/hls/cam_1/index.m3u8?token={t}")),
        "{hls}"
    );
    assert!(issued["mse_url"].as_str().unwrap().starts_with("ws://"));

    // The playlist (an on-demand start) and every URI in it, with the token alone.
    let (status, playlist) = status_of(hls).await;
    assert_eq!(status, StatusCode::OK, "{playlist}");
    let uris: Vec<String> = playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .chain(
            playlist
                .split("URI=\"")
                .skip(1)
                .filter_map(|s| s.split('"').next().map(str::to_owned)),
        )
        .collect();
    assert!(!uris.is_empty(), "{playlist}");
    for uri in &uris {
        assert!(uri.contains(&format!("token={t}")), "{uri} in\n{playlist}");
    }
    let init = uris
        .iter()
        .find(|u| u.contains("init"))
        .expect("an init segment");
    let (status, _) = status_of(&gw.url(&format!("/hls/cam_1/{init}"))).await;
    assert_eq!(status, StatusCode::OK, "{init}");

    // Nothing else: another camera, the API, the dashboard socket.
    for other in [
        "/hls/cam_2/index.m3u8",
        "/cameras",
        "/cameras/1/info",
        "/streams",
        "/metrics",
        "/stats",
    ] {
        let (status, body) = status_of(&gw.url(&format!("{other}?token={t}"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{other}: {body}");
    }
    let r = reqwest::Client::new()
        .delete(gw.url(&format!("/cameras/1?token={t}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Not as a key either.
    let r = reqwest::Client::new()
        .get(gw.url("/cameras"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Altered: every kind of change is 401 invalid_token.
    let mut altered = t.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for bad in [altered.as_str(), &t[..t.len() - 2], "cgt1.e30.AAAA"] {
        let r = reqwest::get(gw.url(&format!("/hls/cam_1/index.m3u8?token={bad}")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_and_scope_are_checked_and_tokens_expire() {
    let gw = keyed().await;
    provision(&gw, "1", "rtsp://127.0.0.1:9/none").await;
    for bad in [
        json!({"ttl_seconds": 0}),
        json!({"ttl_seconds": 604_801}),
        json!({"ttl_seconds": -1}),
        json!({"scope": ["admin"]}),
        json!({"scope": []}),
    ] {
        let (status, body) = token(&gw, "1", bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = token(&gw, "nope", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without a key the token route itself is closed.
    let r = reqwest::Client::new()
        .post(gw.url("/cameras/1/token"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (_, issued) = token(&gw, "1", json!({"ttl_seconds": 1, "scope": ["snapshot"]})).await;
    let t = issued["token"].as_str().unwrap();
    // Scope: a snapshot token does not open live video.
    let (status, _) = status_of(&gw.url(&format!("/hls/cam_1/index.m3u8?token={t}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = status_of(&gw.url(&format!("/cameras/1/snapshot.jpg?token={t}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("invalid_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_invalidates_tokens_without_a_restart() {
    let gw = keyed().await;
    provision(&gw, "1", "rtsp://127.0.0.1:9/none").await;
    let dir = gw.app.config.data_dir.clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("token.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    let (_, issued) = token(&gw, "1", json!({})).await;
    let t = issued["token"].as_str().unwrap();
    // Accepted by the access layer (the events route then wants an upgrade: 400).
    let url = gw.url(&format!("/ws/events/cam_1?token={t}"));
    let (status, _) = status_of(&url).await;
    assert_ne!(status, StatusCode::UNAUTHORIZED);
    // The command the operator runs, while the server runs (it holds the data dir's lock).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_camgate"))
        .args(["token-key", "rotate", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server looks at the key file at most once a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _) = status_of(&url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_session_cookie() {
    let gw = keyed().await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    // No key: no session.
    let r = http
        .post(gw.url("/auth/session"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .post(gw.url("/auth/session"))
        .bearer_auth(KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "camgate_session=cgt1.",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains(KEY));
    // The cookie alone opens the API and the dashboard socket (as a browser would send it).
    let r = http.get(gw.url("/cameras")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http.delete(gw.url("/auth/session")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = http.get(gw.url("/cameras")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
