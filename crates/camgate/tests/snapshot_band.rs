//! Snapshots and frame messages against our simulator as the camera, encoding live so every
//! frame carries its capture time in the clock band (crates/sim/src/band.rs): each JPEG is read
//! by an independent decoder (the `image` crate's zune-jpeg) and its band must say the time of
//! the request (a live snapshot decodes forward to the newest frame, not the GOP's keyframe)
//! or the `timestamp` of the NATS message that announced it (a frame URL serves exactly that
//! frame).

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::Value;
use support::Gateway;
use support::nats::NatsServer;

const FPS: u32 = 10;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The time (ms modulo the band's period) a JPEG's clock band says.
fn band_of(jpeg: &[u8]) -> u64 {
    let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .expect("an independent decoder reads the JPEG")
        .to_rgb8();
    let (w, h) = img.dimensions();
    sim::decode_band(img.as_raw(), w as usize, h as usize)
        .expect("the clock band survives decode and JPEG")
}

/// A live-encoded camera with a 2 s GOP: a picture from the keyframe alone would be up to
/// 2 s old, so a band within a few frames of the request proves decoding forward.
async fn camera() -> sim::SimHandle {
    sim::SimServer::start(sim::SimConfig {
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
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_snapshot_shows_the_clock_of_the_request() {
    let sim = camera().await;
    // No reuse window: by default a picture decoded under 1 s ago answers without decoding
    // again (a hundred requests in a second decode once), which would make it up to 1 s old.
    let gw = Gateway::start(|c| c.snapshot.reuse = Duration::ZERO).await;
    gw.provision("b1", &sim.url(1), false).await;
    gw.wait_state("b1", "live", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut ages = Vec::new();
    // Spread over more than a GOP, so some requests fall late in it.
    for _ in 0..8 {
        let asked = unix_ms();
        let r = support::client()
            .get(gw.url("/cameras/b1/snapshot.jpg"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let jpeg = r.bytes().await.unwrap();
        ages.push(sim::band_age_ms(band_of(&jpeg), asked));
        tokio::time::sleep(Duration::from_millis(370)).await;
    }
    // The newest frame at the request: one frame interval plus the camera-to-gateway delay
    // (and a loaded machine's); a keyframe-only picture would reach 2 s.
    let worst = *ages.iter().max().unwrap();
    assert!(worst < 700, "picture ages at the request (ms): {ages:?}");
    eprintln!("snapshot picture age at the request (ms): {ages:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_frame_url_shows_the_clock_of_its_messages_timestamp() {
    let sim = camera().await;
    let nats = NatsServer::start();
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let watcher = async_nats::connect(&nats_url).await.unwrap();
    let mut sub = watcher.subscribe("camgate.camera.frame").await.unwrap();
    watcher.flush().await.unwrap();
    let gw = Gateway::start(|c| {
        c.nats.url = nats_url.clone();
        c.nats.subject_prefix = "camgate".into();
        c.nats.frame_interval = Duration::from_millis(700);
    })
    .await;
    gw.provision("b2", &sim.url(1), true).await;
    let mut messages = Vec::new();
    while messages.len() < 5 {
        let msg = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("frame messages within 30 s")
            .unwrap();
        messages.push(serde_json::from_slice::<Value>(&msg.payload).unwrap());
    }
    // Fetched after all five were announced: each URL is still its own frame, not the newest.
    for m in &messages {
        let url = m["url"].as_str().unwrap();
        let jpeg = support::client()
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let ts_ms = (m["timestamp"].as_f64().unwrap() * 1000.0).round() as u64;
        // The band is the capture time; `timestamp` is the frame's wall clock as camgate
        // has it (capture from sender reports, else arrival): a few ms apart, never a frame.
        let band = band_of(&jpeg);
        let off = sim::band_age_ms(band, ts_ms).min(sim::band_age_ms(ts_ms, band));
        assert!(
            off < 1000 / u64::from(FPS) / 2 + 40,
            "{url}: band {band} vs timestamp {ts_ms} ({off} ms apart)"
        );
    }
    gw.stop().await;
}
