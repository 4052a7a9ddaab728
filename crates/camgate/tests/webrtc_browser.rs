//! Headless Chromium plays camgate's WebRTC output from GStreamer's RTSP server: the player
//! page (`GET /webrtc/{path}`, an on-demand camera started by the WHEP POST, then a second
//! viewer of the live camera), and a page on another origin posting to the WHEP URL (CORS).
//! Each asserts that currentTime advances, a canvas sample is not blank, the viewer count
//! while playing and that it drops to 0 when the pages go (tests/support/webrtc_play.mjs).
//! Needs `npm ci` at the workspace root (playwright-core) and /usr/bin/chromium.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::{Camera, Gateway};

async fn run(mode: &str, tweak: impl FnOnce(&mut camgate::config::Config)) -> Value {
    let cam = Camera::start();
    let gw = Gateway::start(tweak).await;
    let id = format!("rtc_{mode}");
    gw.provision(&id, &cam.good_url(), true).await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/webrtc_play.mjs");
    let child = tokio::process::Command::new("node")
        .arg(script)
        .args([gw.base.as_str(), &format!("cam_{id}"), mode])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node (see README: npm ci)");
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("the browser finished within 150 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line; stdout {stdout} stderr {stderr}"));
    let v: Value = serde_json::from_str(result).unwrap();
    assert_eq!(v["ok"], true, "{mode} did not play: {v} (stderr {stderr})");
    for p in v["players"].as_array().unwrap() {
        assert_eq!(p["dims"], serde_json::json!([320, 240]), "{v}");
        eprintln!(
            "{mode} {}: answer {} ms, connected {} ms, first frame {} ms",
            p["name"], p["answer_ms"], p["connected_ms"], p["ttff"]
        );
    }
    drop(cam);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_player_page() {
    let v = run("page", |_| {}).await;
    assert_eq!(v["viewers_playing"], 2, "{v}");
    assert_eq!(
        v["viewers_after"], 0,
        "the pages' DELETE ends the sessions: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_whep_from_another_origin() {
    let v = run("cross", |c| {
        c.http.cors_origins = vec!["http://cross.test".to_owned()];
    })
    .await;
    let p = &v["players"][0];
    assert_eq!(p["status"], 201, "{v}");
    assert!(
        p["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("/webrtc/")),
        "Location is readable cross-origin: {v}"
    );
    assert_eq!(v["viewers_playing"], 1, "{v}");
    assert_eq!(
        v["viewers_after"], 0,
        "closing the page ends the session: {v}"
    );
    eprintln!(
        "cross: the session ended {} ms after the page closed",
        v["ended_ms"]
    );
}
