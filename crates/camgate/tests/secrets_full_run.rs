//! Issue 16 "a secrets test over a full run": the real binary at debug level (text and JSON
//! logs), cameras provisioned with passwords of every shape (delimiters, percent signs,
//! quotes, unicode) against a real GStreamer camera that refuses them (401) and one that
//! accepts its own; then every kind of answer (API, HLS, snapshot, metrics, health, stats,
//! event and dashboard sockets) and every log line is searched for each password raw,
//! JSON-escaped, percent-encoded (as the stored URL holds it, and fully) and as the base64 of
//! `user:password` (what Basic auth sends).

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use support::serve::{Camgate, encodings};
use support::{Camera, client};

const USER: &str = "admin";

/// Each at least 8 characters, so no encoding of one is likely text of ours by chance.
const SHAPES: &[&str] = &[
    "p@ss:w/rd?#&=x",
    "100%25sure%40pw",
    "S3cr3t%40Pw-raw",
    "quo\"te'back\\sl",
    "sp ace+plus~!*",
    "semi;colon,comma$",
    "ünïcødé-密码-🔑",
    "[br]{ce}<gt>|^`",
];

async fn socket_messages(url: String, bound: Duration) -> Vec<String> {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        return Vec::new();
    };
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + bound;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Ok(text) = msg.to_text() {
            got.push(text.to_owned());
        }
    }
    got
}

async fn full_run(format: &str) {
    let camera = Camera::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Camgate::start(&dir.path().join("data"), format, &[]);
    let http = client();
    let cam_url = camera.good_url();
    let base = cam_url.split_once('@').unwrap().1.to_owned();
    let mut answers: Vec<String> = Vec::new();
    let mut record = |what: String| answers.push(what);

    // The camera that works, inline credentials (so its real password is checked too).
    let good = json!({"camera_id": "good", "rtsp_url": cam_url, "on_demand": false});
    let mut bodies = vec![good];
    for (i, password) in SHAPES.iter().enumerate() {
        // Always-on, so each is refused by the camera (401) and the failure path runs.
        bodies.push(json!({
            "camera_id": format!("c{i}"), "rtsp_url": format!("rtsp://{base}"),
            "username": USER, "password": password, "on_demand": false,
        }));
        // Invalid requests that carry it, refused with a message.
        bodies.push(
            json!({"camera_id": "bad id", "rtsp_url": format!("rtsp://{base}"),
            "username": USER, "password": password}),
        );
        bodies.push(json!({"camera_id": format!("d{i}"), "rtsp_url": format!("rtsp://{USER}:{password}@127.0.0.1:1/x")}));
    }
    for body in &bodies {
        let r = http
            .post(server.url("/cameras/provision"))
            .json(body)
            .send()
            .await
            .unwrap();
        record(format!("{} {}", r.status(), r.text().await.unwrap()));
    }
    // Sockets listen while the cameras connect, fail and go live.
    let events = tokio::spawn(socket_messages(
        format!("ws://{}/ws/events/cam_c0", server.addr),
        Duration::from_secs(6),
    ));
    let good_events = tokio::spawn(socket_messages(
        format!("ws://{}/ws/events/cam_good", server.addr),
        Duration::from_secs(6),
    ));
    let dashboard = tokio::spawn(socket_messages(
        format!("ws://{}/ws/dashboard", server.addr),
        Duration::from_secs(6),
    ));
    // Wait until every refused camera has reported its failure.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value = http
            .get(server.url("/streams"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut failing = 0;
        for i in 0..SHAPES.len() {
            let s: Value = http
                .get(server.url(&format!("/cameras/c{i}/status")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if s["state"] == "unauthorized" || !s["last_error"].is_null() {
                failing += 1;
            }
            record(s.to_string());
        }
        record(list.to_string());
        if failing == SHAPES.len() {
            break;
        }
        assert!(Instant::now() < deadline, "cameras never failed: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut paths: Vec<String> = [
        "/cameras",
        "/streams",
        "/stats",
        "/metrics",
        "/health",
        "/api/health",
        "/openapi.json",
        "/hls/cam_good/index.m3u8",
        "/hls/cam_good/master.m3u8",
        "/cameras/good/snapshot.jpg",
        "/hls/cam_c0/index.m3u8",
        "/cameras/nope/info",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    for i in 0..SHAPES.len() {
        for tail in ["", "/info", "/status"] {
            paths.push(format!("/cameras/c{i}{tail}"));
        }
        paths.push(format!("/streams/cam_c{i}/viewers"));
    }
    // A refused camera's snapshot waits for the start timeout before its error answer.
    paths.push("/cameras/c0/snapshot.jpg".into());
    let patient = support::client_bounded(Duration::from_secs(40));
    for path in &paths {
        let r = patient.get(server.url(path)).send().await.unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        record(format!(
            "{path} {status} {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    for socket in [events, good_events, dashboard] {
        for m in socket.await.unwrap() {
            record(m);
        }
    }
    for i in 0..SHAPES.len() {
        let r = http
            .delete(server.url(&format!("/cameras/c{i}")))
            .send()
            .await
            .unwrap();
        record(format!("{} {}", r.status(), r.text().await.unwrap()));
    }
    let logs = server.stop();

    // The run really went where secrets could leak.
    assert!(
        answers.iter().any(|a| a.contains("admin:***@")),
        "no redacted URL was shown"
    );
    assert!(
        answers.iter().any(|a| a.contains("unauthorized")),
        "no camera refused its credentials"
    );
    assert!(
        logs.iter().any(|l| l.contains("DEBUG")),
        "not at debug level"
    );
    assert!(logs.len() > 50, "too few log lines: {}", logs.len());
    let mut all: Vec<(&str, &str)> = SHAPES.iter().map(|p| (USER, *p)).collect();
    all.push((support::USER, support::PASSWORD));
    for (user, password) in all {
        for form in encodings(user, password) {
            for a in &answers {
                assert!(!a.contains(&form), "an answer leaks `{form}`: {a}");
            }
            for l in &logs {
                assert!(!l.contains(&form), "a log line leaks `{form}`: {l}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_leaks_in_a_full_run_with_json_logs() {
    full_run("json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_leaks_in_a_full_run_with_text_logs() {
    full_run("text").await;
}
