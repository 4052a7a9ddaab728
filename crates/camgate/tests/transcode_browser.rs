//! Transcode profiles in headless Chromium (which has no HEVC decoder), against real peers:
//! GStreamer cameras (x265enc, x264enc), ffmpeg (libx264) as camgate's child. An H.265 camera
//! plays through `~h264` with hls.js and with the dashboard's MSE player
//! (tests/browser/play.mjs), the MSE player asked for the camera itself falls back to `~h264`,
//! while the H.265 original's playlist does not play there (the check can fail); hls.js on a camera's master playlist steps down to the lowest level of its ladder
//! when Chromium's network is throttled for real, and does not without the throttle
//! (tests/browser/abr.mjs). Needs `npm ci` at the workspace root and /usr/bin/chromium.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use support::{Camera, Gateway};

/// Each test runs a browser and ffmpeg children on a 2-core machine: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `node tests/browser/{script} BASE PATH [extra]` with `env`; its RESULT line.
async fn run_node(
    gw: &Gateway,
    script: &str,
    path: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> serde_json::Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let script = format!("{}/tests/browser/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .args([gw.base.as_str(), path])
        .args(extra)
        .envs(env.iter().copied())
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
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(r) = line.strip_prefix("RESULT ") {
                return serde_json::from_str::<serde_json::Value>(r).ok();
            }
        }
        None
    };
    let got = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser finished within 120 s");
    let _ = child.wait().await;
    let stderr = stderr.await.unwrap();
    let Some(got) = got else {
        panic!("{script} {path}: no RESULT line; stderr {stderr}")
    };
    eprintln!("{script} {path} {extra:?} {env:?}: {got} (stderr {stderr})");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_camera_plays_in_chromium_through_h264_with_hls_js_and_mse() {
    let _serial = SERIAL.lock().await;
    let cam = Camera::start_h265();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("h5", &cam.good_url(), true).await;

    for mode in ["hlsjs", "mse"] {
        let v = run_node(&gw, "play.mjs", "cam_h5~h264", &[mode], &[]).await;
        assert_eq!(v["ok"], true, "{mode} through ~h264 did not play: {v}");
        assert_eq!(v["dims"], serde_json::json!([320, 240]), "{mode}: {v}");
    }

    // The dashboard's MSE player asked for the camera itself learns the codec is H.265, which
    // this browser cannot play, and plays `~h264` instead.
    let v = run_node(&gw, "play.mjs", "cam_h5", &["mse"], &[]).await;
    assert_eq!(v["ok"], true, "MSE on the H.265 camera did not play: {v}");
    assert_eq!(v["dims"], serde_json::json!([320, 240]), "{v}");

    // The H.265 original itself does not play in this browser: what `~h264` is for, and
    // proof that the check above can fail.
    let v = run_node(&gw, "play.mjs", "cam_h5", &["hlsjs"], &[]).await;
    assert_eq!(v["ok"], false, "H.265 played in Chromium: {v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("bufferAddCodecError"), "{v}");
    drop(cam);
}

/// A two-profile ladder under a 320x240 camera: 240 and 120 lines at 10 fps (libx264, cheap).
fn with_ladder(c: &mut camgate::config::Config) {
    c.profiles = toml::from_str(concat!(
        "[hi]\nheight = 240\nfps = 10\nbitrate = \"600k\"\nencoder = \"libx264\"\n",
        "[lo]\nheight = 120\nfps = 10\nbitrate = \"100k\"\nencoder = \"libx264\"\n",
    ))
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_steps_down_the_ladder_when_the_network_is_throttled_and_not_otherwise() {
    let _serial = SERIAL.lock().await;
    let cam = Camera::start();
    let gw = Gateway::start(with_ladder).await;
    gw.provision_json(serde_json::json!({
        "camera_id": "ab",
        "rtsp_url": cam.good_url(),
        "on_demand": true,
        "profiles": ["hi", "lo"],
    }))
    .await;

    // Throttled to 200 kbit/s: above the lowest level's bandwidth, below every other's.
    let v = run_node(
        &gw,
        "abr.mjs",
        "cam_ab",
        &[],
        &[("THROTTLE_KBPS", "200"), ("WATCH_SECONDS", "30")],
    )
    .await;
    assert_eq!(v["ok"], true, "no step down under the throttle: {v}");
    let levels = v["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 3, "the original and two profiles: {v}");
    let lowest = &levels[v["lowest"].as_u64().unwrap() as usize];
    assert_eq!(
        lowest["height"], 120,
        "the lowest level is the 120-line profile: {v}"
    );
    assert_ne!(v["level_before"], v["lowest"], "{v}");

    // The control: the same run without the throttle stays above the lowest level.
    let v = run_node(
        &gw,
        "abr.mjs",
        "cam_ab",
        &[],
        &[("THROTTLE_KBPS", "0"), ("WATCH_SECONDS", "15")],
    )
    .await;
    assert_eq!(v["ok"], false, "stepped down without a throttle: {v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("no LEVEL_SWITCHED to the lowest level"),
        "{v}"
    );
    drop(cam);
}
