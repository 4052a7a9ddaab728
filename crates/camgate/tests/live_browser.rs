//! Headless Chromium plays camgate's output from GStreamer's RTSP server: hls.js, the
//! browser's native HLS, and the dashboard's MSE player (web/player.js) over `WS /mse`. Each
//! asserts that currentTime advances and a canvas sample of the video is not blank
//! (tests/browser/play.mjs).
//! Needs `npm ci` at the workspace root (playwright-core, hls.js) and /usr/bin/chromium.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::{Camera, Gateway};

async fn play(mode: &str) {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    let id = format!("b_{mode}");
    gw.provision(&id, &cam.good_url(), true).await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/play.mjs");
    let child = tokio::process::Command::new("node")
        .arg(script)
        .args([gw.base.as_str(), &format!("cam_{id}"), mode])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node (see README: npm ci)");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the browser finished within 120 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line; stdout {stdout} stderr {stderr}"));
    let v: serde_json::Value = serde_json::from_str(result).unwrap();
    assert_eq!(v["ok"], true, "{mode} did not play: {v} (stderr {stderr})");
    assert_eq!(v["dims"], serde_json::json!([320, 240]), "{v}");
    drop(cam);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_hls_with_hls_js() {
    play("hlsjs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_hls_natively() {
    play("native").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_mse() {
    play("mse").await;
}
