//! Recordings in real players: GStreamer's RTSP server as the camera, camgate in-process
//! recording it; headless Chromium seeks inside `export.mp4` (`<video>`, Range requests) and
//! plays the VOD playlist with hls.js (tests/browser/recording.mjs), and ffmpeg decodes the
//! VOD playlist. Needs `npm ci` at the workspace root and /usr/bin/chromium.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Camera, Gateway};

fn quick_recording(c: &mut camgate::config::Config) {
    c.record.file_duration = Duration::from_secs(3);
    c.record.flush_interval = Duration::from_millis(500);
    c.record.min_free = camgate::config::ByteSize(0);
}

/// Records camera 1 until at least `seconds` are indexed: the first range (start, end) as
/// Unix seconds.
async fn record(gw: &Gateway, cam: &Camera, seconds: f64) -> (String, String) {
    gw.provision_json(json!({"camera_id": "1", "rtsp_url": cam.good_url(), "record": true}))
        .await;
    gw.wait_state("1", "live", Duration::from_secs(15)).await;
    for _ in 0..160 {
        let ranges = gw.get_json("/recordings/cam_1").await;
        let list = ranges.as_array().unwrap();
        if let Some(r) = list
            .first()
            .filter(|r| r["duration"].as_f64().unwrap() >= seconds)
        {
            return (
                r["start"].as_str().unwrap().to_owned(),
                r["end"].as_str().unwrap().to_owned(),
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{seconds} s were not recorded within 40 s");
}

async fn chromium(gw: &Gateway, url: &str, mode: &str) -> Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/recording.mjs");
    let child = tokio::process::Command::new("node")
        .arg(script)
        .args([gw.base.as_str(), url, mode])
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
    assert_eq!(v["ok"], true, "{mode}: {v} (stderr {stderr})");
    assert_eq!(v["dims"], json!([320, 240]), "{v}");
    eprintln!("{mode}: {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_seeks_inside_export_mp4() {
    let cam = Camera::start();
    let gw = Gateway::start(quick_recording).await;
    let (start, end) = record(&gw, &cam, 8.0).await;
    let url = format!("/recordings/cam_1/export.mp4?start={start}&end={end}");
    let v = chromium(&gw, &url, "export").await;
    let duration = v["duration"].as_f64().unwrap();
    assert!(duration >= 7.0, "the whole range: {v}");
    // The seek landed where asked, past anything played before it.
    assert!(
        v["landed"].as_f64().unwrap() > v["first"].as_f64().unwrap() + 2.0,
        "{v}"
    );
    assert!(
        v["partial"].as_u64().unwrap() >= 1,
        "Chromium asked with Range: {v}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_and_ffmpeg_play_the_vod_playlist() {
    let cam = Camera::start();
    let gw = Gateway::start(quick_recording).await;
    let (start, end) = record(&gw, &cam, 8.0).await;
    let path = format!("/recordings/cam_1/index.m3u8?start={start}&end={end}");
    let v = chromium(&gw, &path, "vod").await;
    assert_eq!(v["live"], false, "hls.js sees a VOD playlist: {v}");
    assert!(v["duration"].as_f64().unwrap() >= 7.0, "{v}");

    // ffmpeg decodes every segment of the playlist (byte ranges of the files, a discontinuity
    // at each file) without an error.
    let out = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            &gw.url(&path),
        ])
        .args(["-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("ffmpeg finished within 60 s")
        .expect("run ffmpeg");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
    let progress = String::from_utf8_lossy(&out.stdout);
    let frames: u64 = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .next_back()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {progress}"));
    let seconds = v["duration"].as_f64().unwrap();
    assert!(
        (frames as f64 - seconds * 25.0).abs() <= 13.0,
        "ffmpeg decoded {frames} frames of {seconds:.2} s at 25 fps"
    );
    eprintln!("ffmpeg: {frames} frames of the VOD playlist ({seconds:.2} s)");
    gw.stop().await;
}
