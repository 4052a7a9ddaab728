//! Headless Chromium plays camgate's output from GStreamer's RTSP server: hls.js, the
//! browser's native HLS, and the dashboard's MSE player (web/player.js) over `WS /mse`. Each
//! asserts that currentTime advances, a canvas sample of the video is not blank and the
//! player reported no fatal error (tests/browser/play.mjs); and that a fatal error after
//! playback started fails that check.
//! Needs `npm ci` at the workspace root (playwright-core, hls.js) and /usr/bin/chromium.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use support::{Camera, Gateway};

/// Runs tests/browser/play.mjs on `path` in `mode` with `play_seconds` to watch after
/// playback starts; `on_started` runs when the page says playback started. The RESULT.
async fn run_player(
    gw: &Gateway,
    path: &str,
    mode: &str,
    play_seconds: u32,
    on_started: impl AsyncFnOnce(),
) -> (serde_json::Value, Duration) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/play.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .args([gw.base.as_str(), path, mode])
        .env("PLAY_SECONDS", play_seconds.to_string())
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node (see README: npm ci)");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let run = async {
        let mut on_started = Some(on_started);
        let mut seen = Vec::new();
        let mut started_at = None;
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line == "STARTED" {
                started_at = Some(std::time::Instant::now());
                if let Some(f) = on_started.take() {
                    f().await;
                }
            }
            if let Some(r) = line.strip_prefix("RESULT ") {
                let v: serde_json::Value = serde_json::from_str(r).unwrap();
                let after = started_at.map(|t| t.elapsed()).unwrap_or_default();
                return Some((v, after));
            }
            seen.push(line);
        }
        eprintln!("no RESULT line; stdout {seen:?}");
        None
    };
    let got = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser finished within 120 s");
    let _ = child.wait().await;
    let stderr = stderr.await.unwrap();
    let Some(got) = got else {
        panic!("no RESULT line; stderr {stderr}")
    };
    eprintln!("{mode}: {} (stderr {stderr})", got.0);
    got
}

async fn play(mode: &str) {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    let id = format!("b_{mode}");
    gw.provision(&id, &cam.good_url(), true).await;
    let (v, _) = run_player(&gw, &format!("cam_{id}"), mode, 1, async || {}).await;
    assert_eq!(v["ok"], true, "{mode} did not play: {v}");
    assert_eq!(v["dims"], serde_json::json!([320, 240]), "{v}");
    drop(cam);
}

/// The check itself: a stream that breaks after playback started (its camera deleted, so
/// the player is told the stream is gone) fails the run at once with the player's error, not
/// by waiting out a timeout and not as a pass.
async fn breaks_after_start(mode: &str) {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    let id = format!("x_{mode}");
    gw.provision(&id, &cam.good_url(), true).await;
    let (v, after) = run_player(&gw, &format!("cam_{id}"), mode, 30, async || {
        let r = support::client()
            .delete(gw.url(&format!("/cameras/{id}")))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "delete: {}", r.status());
    })
    .await;
    assert_eq!(v["ok"], false, "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("fatal player error after playback started"),
        "{v}"
    );
    // Well before the 30 s it would have watched (and its 60 s wait).
    assert!(
        after < Duration::from_secs(20),
        "reported after {after:?}: {v}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_mse_error_after_playback_started_fails_the_check() {
    breaks_after_start("mse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_hls_js_error_after_playback_started_fails_the_check() {
    breaks_after_start("hlsjs").await;
}
