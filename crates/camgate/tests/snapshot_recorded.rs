//! `/recordings/{path}/frame.jpg?at=T` against real peers: our simulator as the camera, encoding
//! live so every frame carries its capture time in the clock band (crates/sim/src/band.rs),
//! camgate in-process recording it; each JPEG is read by an independent decoder (the `image`
//! crate's zune-jpeg) and its band must say `T` (the frame showing at `T` started at most a
//! frame, plus the camera-to-gateway latency, before it). Also the cache and every refusal.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Gateway, client, error_code};

const FPS: u32 = 10;

fn quick_recording(c: &mut camgate::config::Config) {
    c.record.file_duration = Duration::from_secs(3);
    c.record.flush_interval = Duration::from_millis(500);
    c.record.min_free = camgate::config::ByteSize(0);
}

fn unix(rfc3339: &str) -> f64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// (status, body, X-Frame-Time as Unix seconds).
async fn get(gw: &Gateway, path: &str) -> (u16, bytes::Bytes, Option<f64>) {
    let r = client().get(gw.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let frame_time = r
        .headers()
        .get("x-frame-time")
        .and_then(|v| v.to_str().ok())
        .map(unix);
    if status == 200 {
        assert_eq!(r.headers()["content-type"], "image/jpeg");
    }
    (status, r.bytes().await.unwrap(), frame_time)
}

/// The JPEG's size and the time (ms modulo the band's period) its clock band says.
fn band_of(jpeg: &[u8]) -> ((u32, u32), Option<u64>) {
    let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .expect("an independent decoder reads the JPEG")
        .to_rgb8();
    let (w, h) = img.dimensions();
    let band = sim::decode_band(img.as_raw(), w as usize, h as usize);
    ((w, h), band)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_frame_at_t_shows_the_clock_of_t() {
    let sim = sim::SimServer::start(sim::SimConfig {
        cameras: 1,
        width: 640,
        height: 360,
        fps: FPS,
        gop: Duration::from_secs(2),
        bitrate: 600_000,
        live: true,
        ..sim::SimConfig::default()
    })
    .await
    .unwrap();
    let gw = Gateway::start(quick_recording).await;
    gw.provision_json(json!({"camera_id": "r1", "rtsp_url": sim.url(1), "record": true}))
        .await;
    gw.wait_state("r1", "live", Duration::from_secs(20)).await;
    let mut t0 = None;
    for _ in 0..160 {
        let ranges = gw.get_json("/recordings/cam_r1").await;
        let list = ranges.as_array().unwrap();
        let total: f64 = list.iter().map(|r| r["duration"].as_f64().unwrap()).sum();
        if total >= 7.5 {
            t0 = Some(unix(list[0]["start"].as_str().unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let t0 = t0.expect("7.5 s recorded within 40 s");

    // Instants mid-GOP (the GOP is 2 s: up to 20 frames decoded forward), in two files.
    let mut bands = Vec::new();
    for offset in [1.55, 3.25, 5.95] {
        let at = t0 + offset;
        let (status, body, frame_time) =
            get(&gw, &format!("/recordings/cam_r1/frame.jpg?at={at:.3}")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let (size, band) = band_of(&body);
        assert_eq!(size, (640, 360));
        let band = band.expect("the clock band survives record, decode and JPEG");
        let at_ms = (at * 1000.0).round() as u64;
        // How long before `at` the frame was captured: within one frame (100 ms) plus the
        // camera-to-gateway latency; a frame after `at` would wrap to a huge age.
        let age = sim::band_age_ms(band, at_ms);
        assert!(age <= 400, "at {at:.3}: band {band} is {age} ms before it");
        // The header names the frame the JPEG shows: at or before `at`.
        let frame_time = frame_time.expect("X-Frame-Time");
        assert!(
            frame_time <= at + 0.001 && frame_time > at - 0.2,
            "X-Frame-Time {frame_time} for at {at}"
        );
        eprintln!("recorded frame at t0+{offset}: band {age} ms before at");
        bands.push(band);
    }
    // The pictures differ as their times do (a stale or a fixed picture would not).
    let apart = sim::band_age_ms(bands[0], bands[2]);
    assert!((4_200..=4_600).contains(&apart), "{bands:?}");

    // The same instant again is the kept JPEG: the same bytes, no decode.
    let at = format!("{:.3}", t0 + 1.55);
    let before = gw.get_json("/snapshots/stats").await;
    let (_, first, _) = get(&gw, &format!("/recordings/cam_r1/frame.jpg?at={at}")).await;
    let (_, again, _) = get(&gw, &format!("/recordings/cam_r1/frame.jpg?at={at}")).await;
    let after = gw.get_json("/snapshots/stats").await;
    assert_eq!(first, again);
    assert_eq!(after["decodes"], before["decodes"], "{after}");
    assert_eq!(
        after["cache_hits"].as_u64().unwrap(),
        before["cache_hits"].as_u64().unwrap() + 2,
        "{after}"
    );
    // ?width= scales, aspect kept; RFC 3339 works as Unix seconds do.
    let (status, body, _) = get(
        &gw,
        &format!("/recordings/cam_r1/frame.jpg?at={at}&width=320&quality=50"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(band_of(&body).0, (320, 180));
    let rfc = camgate::timestamps::rfc3339(
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t0 + 3.25),
    );
    let (status, body, _) = get(&gw, &format!("/recordings/cam_r1/frame.jpg?at={rfc}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(band_of(&body).1, Some(bands[1]));

    let past = t0 - 60.0;
    let future = t0 + 3600.0;
    for (path, want_status, want_code) in [
        (
            "/recordings/cam_r1/frame.jpg".to_owned(),
            400,
            "missing_time",
        ),
        (
            "/recordings/cam_r1/frame.jpg?at=soon".to_owned(),
            400,
            "invalid_time",
        ),
        (
            format!("/recordings/cam_r1/frame.jpg?at={at}&width=9"),
            400,
            "invalid_width",
        ),
        (
            format!("/recordings/cam_r1/frame.jpg?at={at}&quality=101"),
            400,
            "invalid_quality",
        ),
        (
            format!("/recordings/cam_r1/frame.jpg?at={past}"),
            404,
            "nothing_recorded",
        ),
        (
            format!("/recordings/cam_r1/frame.jpg?at={future}"),
            404,
            "nothing_recorded",
        ),
        (
            format!("/recordings/cam_nope/frame.jpg?at={at}"),
            404,
            "nothing_recorded",
        ),
        (
            format!("/recordings/bad%20path/frame.jpg?at={at}"),
            400,
            "invalid_stream_path",
        ),
    ] {
        let r = client().get(gw.url(&path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), want_status, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), want_code, "{path}");
    }
}
