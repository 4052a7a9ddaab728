//! Snapshots of real cameras (GStreamer's RTSP server, x264enc/x265enc), decoded by an
//! independent JPEG decoder (the `image` crate's zune-jpeg): size, `?width=`, a cold on-demand
//! camera, one decode for concurrent requests, clear refusals. Timings are printed (for
//! docs/snapshots.md), never asserted.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Camera, Gateway};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GETs a snapshot; (status, content type, body).
async fn get(gw: &Gateway, path: &str) -> (u16, String, bytes::Bytes, reqwest::header::HeaderMap) {
    let r = client().get(gw.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ct, r.bytes().await.unwrap(), headers)
}

fn decode(jpeg: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .expect("an independent decoder reads the JPEG")
        .to_rgb8()
}

async fn stats(gw: &Gateway) -> Value {
    gw.get_json("/snapshots/stats").await
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("errors are JSON");
    v["error"]["code"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_camera_snapshot_is_a_jpeg_of_its_size_and_width_scales() {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("s1", &cam.good_url(), false).await;
    gw.wait_state("s1", "live", Duration::from_secs(15)).await;

    let t = Instant::now();
    let (status, ct, body, headers) = get(&gw, "/cameras/s1/snapshot.jpg").await;
    let first = t.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "image/jpeg");
    assert_eq!(headers["cache-control"], "no-store");
    let frame_time = headers["x-frame-time"].to_str().unwrap().to_owned();
    assert!(
        frame_time.ends_with('Z') && frame_time.contains('T'),
        "{frame_time}"
    );
    let img = decode(&body);
    assert_eq!(img.dimensions(), (320, 240));
    // videotestsrc's colour bars: the picture is not one flat colour (a decoder that gave
    // nothing, or a JPEG of zeros, would be).
    let (left, right) = (img.get_pixel(10, 60), img.get_pixel(300, 60));
    assert_ne!(left, right, "left {left:?} right {right:?}");
    // The bars are bright: the limited-range video became full-range JPEG, not grey mush.
    assert!(left.0.iter().any(|&c| c > 150), "{left:?}");

    let (status, _, body, _) = get(&gw, "/cameras/s1/snapshot.jpg?width=160&quality=60").await;
    assert_eq!(status, 200);
    assert_eq!(decode(&body).dimensions(), (160, 120));
    let (status, _, body, _) = get(&gw, "/streams/cam_s1/snapshot.jpg?width=640").await;
    assert_eq!(status, 200);
    assert_eq!(decode(&body).dimensions(), (640, 480));

    // Warm: the decoder is kept, later requests decode only the frames since.
    let mut warm = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let t = Instant::now();
        let (status, _, body, _) = get(&gw, "/cameras/s1/snapshot.jpg").await;
        warm.push(t.elapsed());
        assert_eq!(status, 200);
        assert_eq!(decode(&body).dimensions(), (320, 240));
    }
    warm.sort();
    let s = stats(&gw).await;
    eprintln!(
        "snapshot 320x240 live: first {first:?}, warm median {:?} max {:?}; stats {s}",
        warm[warm.len() / 2],
        warm[warm.len() - 1]
    );
    assert!(s["warm_decoders"].as_u64().unwrap() >= 1, "{s}");
    // A warm decoder fed only new frames: far fewer frames than ten whole GOPs (25 each).
    assert!(s["frames_decoded"].as_u64().unwrap() < 11 * 25, "{s}");

    for (path, want_status, want_code) in [
        ("/cameras/s1/snapshot.jpg?width=abc", 400, "invalid_width"),
        ("/cameras/s1/snapshot.jpg?width=8", 400, "invalid_width"),
        ("/cameras/s1/snapshot.jpg?quality=0", 400, "invalid_quality"),
        ("/cameras/nope/snapshot.jpg", 404, "camera_not_found"),
        ("/streams/nope/snapshot.jpg", 404, "stream_not_found"),
        ("/cameras/s1/frames/1.jpg", 404, "frame_not_found"),
        ("/cameras/s1/frames/x.jpg", 400, "invalid_frame"),
    ] {
        let (status, ct, body, _) = get(&gw, path).await;
        assert_eq!(status, want_status, "{path}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        assert_eq!(error_code(&body), want_code, "{path}");
    }

    // /metrics has the same figures, errors by their code, and each decoder run's time.
    let _parses = gw.metrics().await;
    let text = client()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in /metrics"))
    };
    let s = stats(&gw).await;
    assert_eq!(
        value("camgate_snapshot_requests_total "),
        s["requests"].as_f64().unwrap()
    );
    assert_eq!(
        value("camgate_snapshot_cache_hits_total "),
        s["cache_hits"].as_f64().unwrap()
    );
    assert_eq!(
        value("camgate_snapshot_errors_total{reason=\"invalid_width\"} "),
        2.0
    );
    assert_eq!(
        value("camgate_snapshot_errors_total{reason=\"invalid_quality\"} "),
        1.0
    );
    assert_eq!(
        value("camgate_snapshot_errors_total{reason=\"frame_not_found\"} "),
        1.0
    );
    // Every decoder run and JPEG-only encode is timed: at least the decodes.
    let runs = value("camgate_snapshot_decode_seconds_count ");
    assert!(runs >= s["decodes"].as_f64().unwrap(), "{runs} {s}");
    assert_eq!(
        value("camgate_snapshot_decode_seconds_bucket{le=\"+Inf\"} "),
        runs
    );
    let mean_ms = value("camgate_snapshot_decode_seconds_sum ") / runs * 1000.0;
    assert!(mean_ms > 0.0, "{mean_ms}");
    eprintln!("snapshot decode runs {runs}, mean {mean_ms:.1} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_on_demand_camera_gives_a_picture_then_goes_idle() {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("c1", &cam.good_url(), true).await;
    assert_eq!(gw.state_of("c1").await, "idle");

    let t = Instant::now();
    let (status, _, body, _) = get(&gw, "/cameras/c1/snapshot.jpg").await;
    let cold = t.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(decode(&body).dimensions(), (320, 240));
    // Within the start timeout (10 s in the test gateway).
    assert!(cold < Duration::from_secs(10), "{cold:?}");
    let s = stats(&gw).await;
    assert_eq!(s["cold_starts"], 1, "{s}");
    // Not a viewer: the hold ends with the request, and the idle timeout (2 s) stops it.
    let status = gw.get_json("/cameras/c1/status").await;
    assert_eq!(status["viewers"], 0, "{status}");
    gw.wait_state("c1", "idle", Duration::from_secs(10)).await;
    // Idle again: the hub still holds the old GOP, but a snapshot starts the camera anew
    // rather than answer with that stale picture.
    let (status, _, _, headers) = get(&gw, "/cameras/c1/snapshot.jpg").await;
    assert_eq!(status, 200);
    assert_eq!(stats(&gw).await["cold_starts"], 2);
    let frame_time = headers["x-frame-time"].to_str().unwrap();
    let frame_time =
        time::OffsetDateTime::parse(frame_time, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let age = time::OffsetDateTime::now_utc() - frame_time;
    assert!(age < time::Duration::seconds(2), "a {age} old picture");
    eprintln!("snapshot 320x240 cold on-demand camera: {cold:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_requests_decode_once() {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("m1", &cam.good_url(), false).await;
    gw.wait_state("m1", "live", Duration::from_secs(15)).await;
    let before = stats(&gw).await;
    let c = client();
    let url = gw.url("/cameras/m1/snapshot.jpg");
    let t = Instant::now();
    let answers = futures::future::join_all((0..100).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap())
        }
    }))
    .await;
    let took = t.elapsed();
    let after = stats(&gw).await;
    assert!(answers.iter().all(|(s, _)| *s == 200));
    assert!(
        answers.iter().all(|(_, b)| *b == answers[0].1),
        "one picture for all"
    );
    assert_eq!(decode(&answers[0].1).dimensions(), (320, 240));
    let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    assert_eq!(delta("requests"), 100, "{after}");
    assert_eq!(delta("decodes"), 1, "{after}");
    assert_eq!(delta("jpeg_encodes"), 1, "{after}");
    assert_eq!(delta("cache_hits"), 99, "{after}");
    eprintln!("100 concurrent snapshots of a live camera: {took:?}; {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_h265_camera_is_pictured_through_its_h264_profile() {
    let cam = Camera::start_h265();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("h5", &cam.good_url(), false).await;
    gw.wait_state("h5", "live", Duration::from_secs(15)).await;
    // OpenH264 reads no H.265: the picture comes from `cam_h5~h264` (ffmpeg, started by the
    // request like an idle camera), not a 415.
    let (status, ct, body, _) = get(&gw, "/cameras/h5/snapshot.jpg").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "image/jpeg");
    let img = image::load_from_memory_with_format(&body, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (320, 240));
    let profile = gw
        .app
        .registry
        .get("cam_h5~h264")
        .expect("the ~h264 profile");
    assert_eq!(profile.state().state.as_str(), "live");
}
