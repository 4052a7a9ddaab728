//! Who may read the RTSP restream, over a real socket with GStreamer's RTSP server as the
//! camera. With API keys: Basic with any user and a key or a viewer token as the password,
//! `?token=` in the URL (also on the SETUP/PLAY that follow, whose URLs carry no query),
//! Digest with a key; nothing else. Protected mode (no keys) answers loopback clients; that
//! other peers get 403 is unit-tested (`restream::access`, `rtsp` control tests), since a test
//! over 127.0.0.1 cannot be another machine.

mod support;

use std::time::Duration;

use base64::Engine;
use serde_json::json;
use support::{Camera, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

const KEY: &str = "rtsp-test-key-0123456789";

/// The status of one RTSP request on a fresh connection.
async fn status(addr: std::net::SocketAddr, method: &str, uri: &str, auth: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {uri} RTSP/1.0\r\nCSeq: 1\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before an answer");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("an answer in time");
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn basic(user: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b}")
}

async fn probe_ok(url: &str) -> bool {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-show_streams"])
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ffprobe ends in time")
    .unwrap();
    out.status.success()
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

async fn token(gw: &Gateway, id: &str, scope: &[&str]) -> String {
    let r = reqwest::Client::new()
        .post(gw.url(&format!("/cameras/{id}/token")))
        .bearer_auth(KEY)
        .json(&json!({"ttl_seconds": 600, "scope": scope}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let v: serde_json::Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_viewer_tokens_open_the_restream_and_nothing_else_does() {
    let cam = Camera::start();
    let gw = Gateway::start(|c| c.auth.api_keys = vec![KEY.into()]).await;
    provision(&gw, "1", &cam.good_url()).await;
    provision(&gw, "2", &cam.good_url()).await;
    let live = token(&gw, "1", &["live"]).await;
    let snapshot_only = token(&gw, "1", &["snapshot"]).await;
    let other = token(&gw, "2", &["live"]).await;
    let addr = gw.app.restream.as_ref().unwrap().local_addr();
    let cam1 = format!("rtsp://{addr}/cam_1");
    let q = |t: &str| format!("{cam1}?token={t}");

    let table: Vec<(&str, String, Option<String>, u16)> = vec![
        ("no credentials", cam1.clone(), None, 401),
        (
            "a key, any user",
            cam1.clone(),
            Some(basic("anyone", KEY)),
            200,
        ),
        ("a key, empty user", cam1.clone(), Some(basic("", KEY)), 200),
        ("a wrong key", cam1.clone(), Some(basic("u", "nope")), 401),
        ("a live token", cam1.clone(), Some(basic("x", &live)), 200),
        (
            "a snapshot token",
            cam1.clone(),
            Some(basic("x", &snapshot_only)),
            401,
        ),
        (
            "another camera's token",
            cam1.clone(),
            Some(basic("x", &other)),
            401,
        ),
        ("?token=", q(&live), None, 200),
        ("?token= of another camera", q(&other), None, 401),
        ("?token= altered", q(&format!("{live}x")), None, 401),
        ("an API key as ?token=", q(KEY), None, 401),
        (
            "a bearer header",
            cam1.clone(),
            Some(format!("Bearer {KEY}")),
            401,
        ),
    ];
    for (what, uri, auth, want) in &table {
        assert_eq!(
            status(addr, "DESCRIBE", uri, auth.as_deref()).await,
            *want,
            "{what}"
        );
    }
    // OPTIONS is open, as on cameras; it says nothing about streams.
    assert_eq!(status(addr, "OPTIONS", "*", None).await, 200);

    // Real clients: ffmpeg answers the challenge with Digest (we offer it first), which
    // carries an API key but cannot carry a signed token; `?token=` works for the whole
    // session (DESCRIBE, then SETUP and PLAY on URLs without the query).
    let hostport = addr.to_string();
    assert!(probe_ok(&format!("rtsp://any:{KEY}@{hostport}/cam_1")).await);
    assert!(probe_ok(&q(&live)).await);
    assert!(!probe_ok(&format!("rtsp://any:{live}@{hostport}/cam_1")).await);
    assert!(!probe_ok(&cam1).await);
    assert!(!probe_ok(&format!("rtsp://any:wrong@{hostport}/cam_1")).await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_mode_answers_loopback_clients_without_credentials() {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("1", &cam.good_url(), true).await;
    let addr = gw.app.restream.as_ref().unwrap().local_addr();
    assert!(
        addr.ip().is_loopback(),
        "the default listens on this machine only"
    );
    assert_eq!(
        status(addr, "DESCRIBE", &format!("rtsp://{addr}/cam_1"), None).await,
        200
    );
    assert!(probe_ok(&format!("rtsp://{addr}/cam_1")).await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restream_can_be_turned_off() {
    let gw = Gateway::start(|c| c.rtsp.listen = "off".into()).await;
    assert!(gw.app.restream.is_none());
    gw.stop().await;
}
